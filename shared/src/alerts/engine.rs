//! One evaluation round: take the lease (one process at a time, across containers), read the
//! numbers once, evaluate every rule, move each instance's state (pending → firing → resolved)
//! in the store, and notify its channels: once when it fires, every `repeat_minutes` while it
//! keeps firing, once when it resolves. A notification no channel took is sent again next round.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::channels::{Notification, NotificationState};
use super::evaluate::{self, Breach, Inputs};
use super::rules::{AlertKind, AlertRule, AlertingConfig};
use crate::stats::StatsQuery;
use crate::store::{AlertRecordKind, AlertStore, CatalogStore, StatsStore, StoreError};

/// Sends a notification to one named channel (the alert channels; a fake in tests).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// `Err` with a message that holds no secret.
    async fn notify(&self, channel: &str, notification: &Notification) -> Result<(), String>;
}

/// One rule instance's state, kept in the store between rounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceState {
    pub rule: String,
    pub instance: String,
    /// When the condition was first seen holding (pending until the rule's hold passes).
    pub since_ms: i64,
    pub firing: bool,
    /// The observed value last round.
    pub value: String,
    /// When the last firing notification or reminder went out.
    #[serde(default)]
    pub last_sent_ms: Option<i64>,
    /// Whether at least one channel took the last notification; if not, it is sent again.
    #[serde(default)]
    pub delivered: bool,
}

impl InstanceState {
    fn record_name(&self) -> String {
        format!("{}#{}", self.rule, self.instance)
    }
}

/// One line of the alert history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub ts_ms: i64,
    pub rule: String,
    pub instance: String,
    pub kind: String,
    /// `firing`, `reminder` or `resolved`.
    pub event: String,
    pub value: String,
    pub title: String,
    /// Channels that took it, and `<channel>: <error>` of those that did not.
    pub delivered: Vec<String>,
    pub failed: Vec<String>,
}

/// What a round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RoundReport {
    /// `false` when another process holds the lease (nothing was evaluated).
    pub evaluated: bool,
    pub rules: usize,
    pub fired: Vec<String>,
    pub reminded: Vec<String>,
    pub resolved: Vec<String>,
    /// Notifications no channel took (sent again next round).
    pub undelivered: usize,
}

/// The evaluator: stores, channels and settings.
pub struct AlertEngine {
    pub alerts: Arc<dyn AlertStore>,
    pub stats: Arc<dyn StatsStore>,
    pub catalog: Arc<dyn CatalogStore>,
    pub notifier: Arc<dyn Notifier>,
    pub config: AlertingConfig,
    /// Who this process is, for the lease.
    pub holder: String,
}

/// Reads the rules stored by the TOML and the admin API; a record this build cannot read is
/// skipped with a warning (never stops the others).
pub async fn stored_rules(alerts: &dyn AlertStore) -> Result<Vec<(AlertRule, u64)>, StoreError> {
    let mut rules = Vec::new();
    for record in alerts.alert_records(AlertRecordKind::Rule).await? {
        match serde_json::from_str::<AlertRule>(&record.body) {
            Ok(rule) => rules.push((rule, record.version)),
            Err(e) => tracing::warn!(rule = %record.name, error = %e, "unreadable alert rule skipped"),
        }
    }
    Ok(rules)
}

impl AlertEngine {
    /// The lease outlives a round by a margin, and a dead holder's lease runs out within two
    /// intervals.
    fn lease_ms(&self) -> i64 {
        i64::try_from(self.config.interval_secs.max(30) * 2_000).unwrap_or(120_000)
    }

    /// One round at `now_ms`.
    pub async fn run_once(&self, now_ms: i64) -> Result<RoundReport, StoreError> {
        let mut report = RoundReport::default();
        if !self.alerts.acquire_alert_lease(&self.holder, now_ms, self.lease_ms()).await? {
            return Ok(report);
        }
        report.evaluated = true;
        let rules: Vec<AlertRule> =
            stored_rules(self.alerts.as_ref()).await?.into_iter().map(|(r, _)| r).filter(|r| r.enabled).collect();
        report.rules = rules.len();
        let mut states: BTreeMap<String, InstanceState> = BTreeMap::new();
        for record in self.alerts.alert_records(AlertRecordKind::State).await? {
            match serde_json::from_str::<InstanceState>(&record.body) {
                Ok(state) => {
                    states.insert(record.name, state);
                }
                Err(e) => tracing::warn!(state = %record.name, error = %e, "unreadable alert state dropped"),
            }
        }

        // The numbers, read once for every rule.
        let longest = rules.iter().map(|r| i64::from(r.window_minutes)).max().unwrap_or(1);
        let minute_rows = self.stats.minute_rows(now_ms - longest * 60_000, now_ms + 1).await?;
        let today = crate::time::stats_date(now_ms);
        let today_rows = match rules.iter().any(|r| r.kind == AlertKind::Spend) {
            true => {
                let query = StatsQuery { from_date: today.clone(), to_date: today.clone(), ..StatsQuery::default() };
                self.stats.stats_rows(&query).await?
            }
            false => Vec::new(),
        };
        let today_callers = match rules.iter().any(|r| r.kind == AlertKind::Spend) {
            true => self.stats.caller_rows(&today, &today, None).await?,
            false => Vec::new(),
        };
        let catalog = self.catalog.load_catalog().await?;
        let inputs = Inputs {
            now_ms,
            minute_rows: &minute_rows,
            today_rows: &today_rows,
            today_callers: &today_callers,
            catalog: &catalog,
        };

        for rule in &rules {
            let breaches = evaluate::evaluate(rule, &inputs);
            for breach in &breaches {
                let name = format!("{}#{}", rule.name, breach.instance);
                let state = states.remove(&name);
                self.on_breach(rule, breach, state, now_ms, &mut report).await?;
            }
            // What this rule had and no longer breaches has resolved (or was only pending).
            let prefix = format!("{}#", rule.name);
            let gone: Vec<String> = states.keys().filter(|k| k.starts_with(&prefix)).cloned().collect();
            for name in gone {
                if let Some(state) = states.remove(&name) {
                    self.on_clear(rule, state, now_ms, &mut report).await?;
                }
            }
        }
        // States of rules deleted or disabled since: dropped without a word.
        for name in states.into_keys() {
            self.alerts.delete_alert_record(AlertRecordKind::State, &name, None).await?;
        }
        Ok(report)
    }

    async fn on_breach(
        &self,
        rule: &AlertRule,
        breach: &Breach,
        state: Option<InstanceState>,
        now_ms: i64,
        report: &mut RoundReport,
    ) -> Result<(), StoreError> {
        let mut state = state.unwrap_or_else(|| InstanceState {
            rule: rule.name.clone(),
            instance: breach.instance.clone(),
            since_ms: now_ms,
            firing: false,
            value: breach.value.clone(),
            last_sent_ms: None,
            delivered: false,
        });
        state.value = breach.value.clone();
        let repeat_ms = i64::from(rule.repeat_minutes.unwrap_or(self.config.repeat_minutes)) * 60_000;
        let event = match (state.firing, state.delivered, state.last_sent_ms) {
            (false, _, _) if now_ms - state.since_ms >= breach.hold_ms => Some("firing"),
            (false, _, _) => None,
            (true, false, _) => Some("firing"),
            (true, true, Some(sent)) if repeat_ms > 0 && now_ms - sent >= repeat_ms => Some("reminder"),
            (true, true, _) => None,
        };
        let Some(event) = event else {
            return self.save(&state).await;
        };
        // Saved before sending: a crash in between sends it again next round, never loses it.
        state.firing = true;
        state.delivered = false;
        self.save(&state).await?;
        let delivered = self.notify(rule, &state, event, now_ms).await?;
        state.last_sent_ms = Some(now_ms);
        state.delivered = delivered;
        if !delivered {
            report.undelivered += 1;
        }
        let label = format!("{}#{}", rule.name, state.instance);
        match event {
            "reminder" => report.reminded.push(label),
            _ => report.fired.push(label),
        }
        self.save(&state).await
    }

    async fn on_clear(
        &self,
        rule: &AlertRule,
        state: InstanceState,
        now_ms: i64,
        report: &mut RoundReport,
    ) -> Result<(), StoreError> {
        if state.firing {
            // A resolution no channel took is tried again next round (the state stays).
            if !self.notify(rule, &state, "resolved", now_ms).await? {
                report.undelivered += 1;
                return Ok(());
            }
            report.resolved.push(state.record_name());
        }
        self.alerts.delete_alert_record(AlertRecordKind::State, &state.record_name(), None).await
    }

    async fn save(&self, state: &InstanceState) -> Result<(), StoreError> {
        let body = serde_json::to_string(state)
            .map_err(|e| StoreError::backend_caused("alerts: cannot serialize an instance state", e))?;
        self.alerts.put_alert_record(AlertRecordKind::State, &state.record_name(), &body, None).await.map(|_| ())
    }

    /// Sends one notification to each of the rule's channels and adds it to the history;
    /// `true` when at least one channel took it.
    async fn notify(
        &self,
        rule: &AlertRule,
        state: &InstanceState,
        event: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let notification = notification(rule, state, event, now_ms);
        let sends = rule.channels.iter().map(|channel| {
            let notifier = self.notifier.clone();
            let notification = notification.clone();
            let channel = channel.clone();
            async move {
                let outcome = notifier.notify(&channel, &notification).await;
                (channel, outcome)
            }
        });
        let mut delivered = Vec::new();
        let mut failed = Vec::new();
        for (channel, outcome) in futures_util::future::join_all(sends).await {
            match outcome {
                Ok(()) => delivered.push(channel),
                Err(e) => {
                    tracing::warn!(alert = %rule.name, channel = %channel, error = %e, "alert notification not delivered");
                    failed.push(format!("{channel}: {e}"));
                }
            }
        }
        let entry = HistoryEntry {
            ts_ms: now_ms,
            rule: rule.name.clone(),
            instance: state.instance.clone(),
            kind: rule.kind.as_str().to_string(),
            event: event.to_string(),
            value: state.value.clone(),
            title: notification.title.clone(),
            delivered: delivered.clone(),
            failed,
        };
        let body = serde_json::to_string(&entry)
            .map_err(|e| StoreError::backend_caused("alerts: cannot serialize a history entry", e))?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.alerts.append_alert_history(now_ms, &id, &body).await?;
        Ok(!delivered.is_empty())
    }
}

/// The threshold as people read it.
fn threshold_text(rule: &AlertRule) -> String {
    match rule.kind {
        AlertKind::ErrorRate => format!("{}%", rule.threshold),
        AlertKind::Spend => evaluate::usd(rule.threshold),
        AlertKind::LatencyP95 => format!("{} ms", rule.threshold),
        AlertKind::KeyState => "invalid at once; rate_limited or error for the window".to_string(),
        AlertKind::ProviderDown => format!("no success and at least {} failed calls", rule.min_calls().max(1)),
    }
}

/// The notification of one event of one instance.
pub fn notification(rule: &AlertRule, state: &InstanceState, event: &str, now_ms: i64) -> Notification {
    let (label, notification_state) = match event {
        "resolved" => ("RESOLVED", NotificationState::Resolved),
        "reminder" => ("FIRING (reminder)", NotificationState::Firing),
        _ => ("FIRING", NotificationState::Firing),
    };
    let title = format!("[{label}] {}: {} on {} — {}", rule.name, rule.kind.as_str(), state.instance, state.value);
    let window = match rule.kind {
        AlertKind::Spend => "today (UTC)".to_string(),
        _ => format!("{} min", rule.window_minutes),
    };
    Notification {
        alert: rule.name.clone(),
        kind: rule.kind.as_str().to_string(),
        state: notification_state,
        repeat: event == "reminder",
        title,
        details: vec![
            ("Value".to_string(), state.value.clone()),
            ("Threshold".to_string(), threshold_text(rule)),
            ("Scope".to_string(), state.instance.clone()),
            ("Window".to_string(), window),
            ("Since".to_string(), crate::time::rfc3339(state.since_ms)),
        ],
        started_at_ms: state.since_ms,
        at_ms: now_ms,
    }
}

/// Runs a round every `config.interval_secs` until the task is aborted (the local runner's
/// background task; on AWS the scheduled roll-up runs [`AlertEngine::run_once`]). A failing round
/// is logged and the next one tries again.
pub async fn run_every_interval(engine: Arc<AlertEngine>) {
    let every = std::time::Duration::from_secs(engine.config.interval_secs.max(1));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match engine.run_once(crate::time::now_ms()).await {
            Ok(report) if report.fired.is_empty() && report.resolved.is_empty() && report.reminded.is_empty() => {}
            Ok(report) => tracing::info!(
                fired = ?report.fired, resolved = ?report.resolved, reminded = ?report.reminded,
                undelivered = report.undelivered, "alerts evaluated"
            ),
            Err(e) => tracing::warn!(error = %e, "alert evaluation failed; the next round tries again"),
        }
    }
}
