//! One rule against the numbers: which of its instances (all, a provider, a model, a key, a
//! caller) are in breach right now. Pure: the evaluator reads the stats and the catalog once per
//! round and hands them in, so every rule is tested without a store.

use std::collections::BTreeMap;

use super::rules::{AlertKind, AlertRule, AlertScope};
use crate::domain::{Catalog, KeyStatus};
use crate::stats::{CallerRow, Counters, StatsRow};

/// What one evaluation round reads.
pub struct Inputs<'a> {
    pub now_ms: i64,
    /// Minute rows covering the longest window of the rules, up to now.
    pub minute_rows: &'a [StatsRow],
    /// Today's daily rows (UTC).
    pub today_rows: &'a [StatsRow],
    /// Today's rows per caller.
    pub today_callers: &'a [CallerRow],
    pub catalog: &'a Catalog,
}

/// An instance of a rule whose condition holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    /// `all`, or `<scope>=<value>` (`provider=openai`).
    pub instance: String,
    /// How long the condition must hold before the rule fires (a key rate-limited for a
    /// moment is not news).
    pub hold_ms: i64,
    /// The observed value, for people (`35.0% of 20 calls`).
    pub value: String,
}

/// The instances of `rule` in breach at `inputs.now_ms`.
pub fn evaluate(rule: &AlertRule, inputs: &Inputs<'_>) -> Vec<Breach> {
    match rule.kind {
        AlertKind::ErrorRate => per_instance(rule, window_rows(rule, inputs), |c| {
            let breached = c.requests >= rule.min_calls() && c.errors * 100 > rule.threshold * c.requests;
            breached.then(|| format!("{} of {} calls failed ({})", c.errors, c.requests, percent(c.errors, c.requests)))
        }),
        AlertKind::LatencyP95 => per_instance(rule, window_rows(rule, inputs), |c| {
            let p95 = c.latency_percentile(95)?;
            (c.requests >= rule.min_calls() && p95 > rule.threshold)
                .then(|| format!("p95 {} over {} calls", bound_text(p95), c.requests))
        }),
        AlertKind::ProviderDown => per_instance(rule, window_rows(rule, inputs), |c| {
            (c.successes == 0 && c.errors >= rule.min_calls().max(1))
                .then(|| format!("{} failed calls and none succeeded", c.errors))
        }),
        AlertKind::Spend if rule.scope == AlertScope::Caller => {
            let mut per_caller: BTreeMap<&str, u64> = BTreeMap::new();
            for row in inputs.today_callers {
                if rule.only.as_ref().is_none_or(|only| *only == row.user_id) {
                    *per_caller.entry(&row.user_id).or_default() += row.counters.cost_micros;
                }
            }
            per_caller
                .into_iter()
                .filter(|(_, cost)| *cost > rule.threshold)
                .map(|(user, cost)| Breach { instance: format!("caller={user}"), hold_ms: 0, value: usd(cost) })
                .collect()
        }
        AlertKind::Spend => per_instance(rule, inputs.today_rows.iter().collect(), |c| {
            (c.cost_micros > rule.threshold).then(|| format!("{} today", usd(c.cost_micros)))
        }),
        AlertKind::KeyState => key_states(rule, inputs),
    }
}

/// The minute rows inside the rule's window: its last `window_minutes` minutes, this one
/// included.
fn window_rows<'a>(rule: &AlertRule, inputs: &Inputs<'a>) -> Vec<&'a StatsRow> {
    let first = crate::time::stats_minute(inputs.now_ms - (i64::from(rule.window_minutes) - 1) * 60_000);
    inputs.minute_rows.iter().filter(|row| row.date >= first).collect()
}

/// Sums rows per instance of the rule's scope (only the `only` one, if set) and keeps the
/// instances `breached` describes. Rows of calls that reached no provider or key (`none`, `-`)
/// belong to no provider or key instance.
fn per_instance(rule: &AlertRule, rows: Vec<&StatsRow>, breached: impl Fn(&Counters) -> Option<String>) -> Vec<Breach> {
    let mut sums: BTreeMap<String, Counters> = BTreeMap::new();
    for row in rows {
        let value = match rule.scope {
            AlertScope::All | AlertScope::Caller => None,
            AlertScope::Provider => Some(row.provider.as_str()),
            AlertScope::Model => Some(row.model.as_str()),
            AlertScope::Key => Some(row.key_id.as_str()),
        };
        if value.is_some_and(|v| v == "none" || v == "-") {
            continue;
        }
        if let (Some(only), Some(value)) = (&rule.only, value)
            && only != value
        {
            continue;
        }
        let instance = value.map_or_else(|| "all".to_string(), |v| format!("{}={v}", rule.scope.as_str()));
        sums.entry(instance).or_default().add(&row.counters);
    }
    sums.into_iter()
        .filter_map(|(instance, counters)| breached(&counters).map(|value| Breach { instance, hold_ms: 0, value }))
        .collect()
}

fn key_states(rule: &AlertRule, inputs: &Inputs<'_>) -> Vec<Breach> {
    let mut breaches = Vec::new();
    for entry in &inputs.catalog.providers {
        for key in entry.keys.iter().filter(|k| k.is_active) {
            let in_scope = match (rule.scope, &rule.only) {
                (AlertScope::Provider, Some(only)) => *only == key.provider,
                (AlertScope::Key, Some(only)) => *only == key.id,
                _ => true,
            };
            let hold_ms = match key.status {
                KeyStatus::Normal => continue,
                KeyStatus::Invalid => 0,
                KeyStatus::RateLimited | KeyStatus::Error => i64::from(rule.window_minutes) * 60_000,
            };
            if in_scope {
                breaches.push(Breach {
                    instance: format!("key={}", key.id),
                    hold_ms,
                    value: format!("{} ({}, {})", key.status.as_str(), key.provider, key.name),
                });
            }
        }
    }
    breaches
}

/// `a / b` as a percentage with one decimal, exact to the tenth (rounded down).
fn percent(a: u64, b: u64) -> String {
    let tenths = (a * 1_000).checked_div(b).unwrap_or(0);
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// Micro-USD as dollars with six decimals.
pub fn usd(micros: u64) -> String {
    format!("${}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// A histogram bucket's upper bound as people read it (`≤ 1500 ms`; the last bucket is open).
fn bound_text(ms: u64) -> String {
    match ms {
        u64::MAX => "over 600000 ms".to_string(),
        ms => format!("≤ {ms} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ApiKey, KeyLimits, Provider, ProviderEntry, ProviderKind};
    use crate::stats::latency_bucket;

    const NOW: i64 = 1_795_000_000_000; // 2026-11-18T09:46:40Z

    fn rule(kind: AlertKind, threshold: u64, scope: AlertScope) -> AlertRule {
        AlertRule {
            name: "r".into(),
            kind,
            threshold,
            window_minutes: 5,
            min_calls: None,
            scope,
            only: None,
            channels: vec!["c".into()],
            repeat_minutes: None,
            enabled: true,
        }
    }

    fn row(minutes_ago: i64, provider: &str, key: &str, ok: u64, failed: u64, latency_ms: u64) -> StatsRow {
        let mut latency_hist = [0; crate::stats::LATENCY_BUCKETS_MS.len()];
        latency_hist[latency_bucket(latency_ms)] = ok + failed;
        StatsRow {
            date: crate::time::stats_minute(NOW - minutes_ago * 60_000),
            provider: provider.into(),
            model: "m".into(),
            key_id: key.into(),
            route: None,
            counters: Counters {
                requests: ok + failed,
                successes: ok,
                errors: failed,
                cost_micros: (ok + failed) * 1_000,
                latency_hist,
                ..Counters::default()
            },
        }
    }

    fn run(rule: &AlertRule, minute_rows: &[StatsRow], catalog: &Catalog) -> Vec<Breach> {
        let inputs = Inputs { now_ms: NOW, minute_rows, today_rows: minute_rows, today_callers: &[], catalog };
        evaluate(rule, &inputs)
    }

    #[test]
    fn error_rate_fires_per_provider_above_the_threshold_with_enough_calls_in_the_window() {
        let rows = [
            row(0, "openai", "k1", 6, 4, 100),    // 40 % of 10
            row(4, "openai", "k1", 0, 1, 100),    // still in a 5-minute window: 5 of 11
            row(5, "openai", "k1", 0, 50, 100),   // the sixth minute back: outside
            row(1, "deepseek", "k2", 8, 2, 100),  // 20 %: not over 20
            row(1, "anthropic", "k3", 0, 9, 100), // 100 % but 9 calls < min_calls 10
            row(1, "none", "-", 0, 30, 1),        // never reached a provider
        ];
        let breaches = run(&rule(AlertKind::ErrorRate, 20, AlertScope::Provider), &rows, &Catalog::default());
        assert_eq!(
            breaches,
            [Breach { instance: "provider=openai".into(), hold_ms: 0, value: "5 of 11 calls failed (45.4%)".into() }]
        );
        // Over everything: 5 + 2 + 9 + 30 failed of 11 + 10 + 9 + 30.
        let all = run(&rule(AlertKind::ErrorRate, 20, AlertScope::All), &rows, &Catalog::default());
        assert_eq!(all[0].instance, "all");
        assert_eq!(all[0].value, "46 of 60 calls failed (76.6%)");
        let only = AlertRule { only: Some("deepseek".into()), ..rule(AlertKind::ErrorRate, 10, AlertScope::Provider) };
        assert_eq!(run(&only, &rows, &Catalog::default())[0].instance, "provider=deepseek");
    }

    #[test]
    fn latency_p95_and_provider_down_read_the_window() {
        let rows =
            [row(0, "openai", "k1", 20, 0, 1_200), row(1, "deepseek", "k2", 0, 3, 10), row(2, "qwen", "k3", 1, 5, 10)];
        let slow = run(&rule(AlertKind::LatencyP95, 1_000, AlertScope::Provider), &rows, &Catalog::default());
        assert_eq!(
            slow,
            [Breach { instance: "provider=openai".into(), hold_ms: 0, value: "p95 ≤ 1500 ms over 20 calls".into() }]
        );
        let down = run(&rule(AlertKind::ProviderDown, 0, AlertScope::Provider), &rows, &Catalog::default());
        assert_eq!(down.iter().map(|b| b.instance.as_str()).collect::<Vec<_>>(), ["provider=deepseek"]);
    }

    #[test]
    fn spend_is_todays_cost_over_the_threshold_and_per_caller_from_the_caller_rows() {
        let rows = [row(0, "openai", "k1", 3, 0, 1), row(0, "deepseek", "k2", 1, 0, 1)];
        let spend = run(&rule(AlertKind::Spend, 2_999, AlertScope::Provider), &rows, &Catalog::default());
        assert_eq!(spend.len(), 1);
        assert_eq!(spend[0].value, "$0.003000 today");
        let callers = [
            CallerRow {
                date: "d".into(),
                user_id: "alice".into(),
                counters: Counters { cost_micros: 7, ..Counters::default() },
            },
            CallerRow {
                date: "d".into(),
                user_id: "bob".into(),
                counters: Counters { cost_micros: 5, ..Counters::default() },
            },
        ];
        let catalog = Catalog::default();
        let inputs =
            Inputs { now_ms: NOW, minute_rows: &[], today_rows: &[], today_callers: &callers, catalog: &catalog };
        let per_caller = evaluate(&rule(AlertKind::Spend, 5, AlertScope::Caller), &inputs);
        assert_eq!(per_caller, [Breach { instance: "caller=alice".into(), hold_ms: 0, value: "$0.000007".into() }]);
    }

    #[test]
    fn key_state_fires_at_once_for_invalid_keys_and_after_the_window_for_rate_limited_ones() {
        let key = |id: &str, status: KeyStatus, active: bool| ApiKey {
            id: id.into(),
            provider: "openai".into(),
            name: format!("{id} name"),
            secret_ref: "ref".into(),
            masked: "sk-…1234".into(),
            priority: 0,
            is_active: active,
            status,
            cooldown_until: None,
            limits: KeyLimits::default(),
        };
        let catalog = Catalog {
            providers: vec![ProviderEntry {
                provider: Provider {
                    code: "openai".into(),
                    kind: ProviderKind::Openai,
                    name: "OpenAI".into(),
                    base_url: "http://127.0.0.1:1".into(),
                    headers: Default::default(),
                    is_active: true,
                    sort_order: 0,
                },
                models: Vec::new(),
                keys: vec![
                    key("k-ok", KeyStatus::Normal, true),
                    key("k-bad", KeyStatus::Invalid, true),
                    key("k-slow", KeyStatus::RateLimited, true),
                    key("k-off", KeyStatus::Invalid, false),
                ],
            }],
            routes: Vec::new(),
        };
        let breaches = run(&rule(AlertKind::KeyState, 0, AlertScope::All), &[], &catalog);
        assert_eq!(
            breaches,
            [
                Breach { instance: "key=k-bad".into(), hold_ms: 0, value: "invalid (openai, k-bad name)".into() },
                Breach {
                    instance: "key=k-slow".into(),
                    hold_ms: 300_000,
                    value: "rate_limited (openai, k-slow name)".into()
                },
            ]
        );
    }

    #[test]
    fn rules_are_checked_field_by_field() {
        let channels = ["c"];
        assert!(rule(AlertKind::ErrorRate, 20, AlertScope::All).validate(&channels).is_ok());
        let field = |r: AlertRule| r.validate(&channels).expect_err("invalid").0;
        assert_eq!(field(rule(AlertKind::ErrorRate, 0, AlertScope::All)), "threshold");
        assert_eq!(field(rule(AlertKind::ErrorRate, 20, AlertScope::Caller)), "scope");
        assert_eq!(
            field(AlertRule { window_minutes: 0, ..rule(AlertKind::Spend, 1, AlertScope::All) }),
            "window_minutes"
        );
        assert_eq!(
            field(AlertRule { channels: vec!["x".into()], ..rule(AlertKind::Spend, 1, AlertScope::All) }),
            "channels"
        );
        assert_eq!(field(AlertRule { only: Some("a".into()), ..rule(AlertKind::Spend, 1, AlertScope::All) }), "only");
        assert_eq!(field(AlertRule { name: "a b".into(), ..rule(AlertKind::Spend, 1, AlertScope::All) }), "name");
    }
}
