//! `StatsStore`: call logs and daily stats, each event counted exactly once.

use std::sync::Arc;

use maestro_shared::logs::{Attempt, KeyAttempts, LogEvent, SkippedKey};
use maestro_shared::stats::{Counters, LATENCY_BUCKETS_MS, StatsQuery, StatsRow, latency_bucket};
use maestro_shared::store::{LogQuery, StatsStore};

use super::{at, event, failed_event};

async fn record(store: &dyn StatsStore, e: &LogEvent) -> bool {
    store.record_event(e).await.expect("record_event")
}

async fn rows(store: &dyn StatsStore, query: StatsQuery) -> Vec<StatsRow> {
    store.stats_rows(&query).await.expect("stats_rows")
}

fn days(from: &str, to: &str) -> StatsQuery {
    StatsQuery { from_date: from.to_string(), to_date: to.to_string(), ..StatsQuery::default() }
}

async fn logs(store: &dyn StatsStore, query: LogQuery) -> Vec<LogEvent> {
    store.logs(&query).await.expect("logs")
}

fn ids(events: &[LogEvent]) -> Vec<&str> {
    events.iter().map(|e| e.request_id.as_str()).collect()
}

/// A histogram with one call in each listed latency's bucket.
fn hist(latencies: &[u64]) -> [u64; LATENCY_BUCKETS_MS.len()] {
    let mut h = [0; LATENCY_BUCKETS_MS.len()];
    for latency in latencies {
        h[latency_bucket(*latency)] += 1;
    }
    h
}

pub async fn given_the_same_event_twice_then_it_is_recorded_and_counted_once(store: Arc<dyn StatsStore>) {
    let e = event("req-once", at("2026-11-26T06:14:10Z"));
    assert!(record(&*store, &e).await, "first delivery is recorded");
    assert!(!record(&*store, &e).await, "a redelivery changes nothing");
    // Even a redelivery with other numbers is the same request: it must not count.
    let altered = LogEvent { prompt_tokens: 9_999, cost_micros: 9_999, ..e.clone() };
    assert!(!record(&*store, &altered).await);

    let expected = StatsRow {
        date: "2026-11-26".into(),
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        key_id: "key-1".into(),
        route: None,
        counters: Counters {
            requests: 1,
            successes: 1,
            errors: 0,
            prompt_tokens: 120,
            completion_tokens: 30,
            cached_tokens: 20,
            cost_micros: 4_500,
            latency_ms_sum: 420,
            latency_hist: hist(&[420]),
            ..Counters::default()
        },
    };
    assert_eq!(rows(&*store, days("2026-11-26", "2026-11-26")).await, [expected]);
    assert_eq!(logs(&*store, LogQuery::default()).await, [e]);
}

pub async fn given_batches_with_redelivered_events_then_each_event_counts_once_even_when_batches_race(
    store: Arc<dyn StatsStore>,
) {
    let t = at("2026-11-26T06:14:10Z");
    let e = |i: i64| event(&format!("req-batch-{i}"), t + i);
    assert!(record(&*store, &e(0)).await);
    // A redelivered event, a new one twice in the same batch, and another new one.
    let recorded = store.record_events(&[e(0), e(1), e(1), e(2)]).await.expect("record_events");
    assert_eq!(recorded, [false, true, false, true]);
    // Two overlapping batches at once (a redelivery racing the first delivery): every event
    // is recorded by exactly one of them.
    let first = [e(3), e(4), e(5), e(2)];
    let second = [e(5), e(6), e(3), e(0)];
    let (a, b) = tokio::join!(store.record_events(&first), store.record_events(&second));
    let (a, b) = (a.expect("first batch"), b.expect("second batch"));
    assert_eq!((a[0] as u8 + b[2] as u8, a[2] as u8 + b[0] as u8), (1, 1), "{a:?} {b:?}");
    assert_eq!((a[1], a[3], b[1], b[3]), (true, false, true, false));

    let stats = rows(&*store, days("2026-11-26", "2026-11-26")).await;
    assert_eq!(stats.len(), 1);
    let one = Counters::from_event(&e(0));
    assert_eq!(stats[0].counters.requests, 7);
    assert_eq!(stats[0].counters.prompt_tokens, 7 * one.prompt_tokens);
    assert_eq!(stats[0].counters.cost_micros, 7 * one.cost_micros);
    let logged = logs(&*store, LogQuery::default()).await;
    assert_eq!(ids(&logged), (0..7).rev().map(|i| format!("req-batch-{i}")).collect::<Vec<_>>());
}

pub async fn given_two_events_on_the_same_day_provider_model_key_and_route_then_their_counters_sum_exactly(
    store: Arc<dyn StatsStore>,
) {
    // Through the same route as the failed call (a rule of its own: the rule is not a dimension).
    let ok = LogEvent {
        route: Some("smart".into()),
        route_rule: Some("0".into()),
        ..event("req-ok", at("2026-11-26T00:00:00Z"))
    };
    let failed = failed_event("req-failed", at("2026-11-26T23:59:59.999Z"));
    assert!(record(&*store, &ok).await);
    assert!(record(&*store, &failed).await);

    let found = rows(&*store, days("2026-11-26", "2026-11-26")).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].counters,
        Counters {
            requests: 2,
            successes: 1,
            errors: 1,
            prompt_tokens: 200,
            completion_tokens: 30,
            cached_tokens: 20,
            cost_micros: 4_500,
            latency_ms_sum: 1_920,
            latency_hist: hist(&[420, 1_500]),
            ..Counters::default()
        }
    );
    assert_eq!(found[0].route.as_deref(), Some("smart"));
    assert_eq!(found[0].counters.latency_percentile(50), Some(500));
    assert_eq!(found[0].counters.latency_percentile(100), Some(1_500));
}

pub async fn given_rows_on_several_days_then_stats_rows_filter_by_inclusive_dates_and_exact_fields_in_key_order(
    store: Arc<dyn StatsStore>,
) {
    let with = |id: &str, ts: &str, provider: &str, model: &str, key: Option<&str>| LogEvent {
        provider: provider.to_string(),
        model: model.to_string(),
        key_id: key.map(str::to_string),
        ..event(id, at(ts))
    };
    let events = [
        with("r1", "2026-11-24T12:00:00Z", "openai", "gpt-4o-mini", Some("key-1")),
        with("r2", "2026-11-25T23:59:59.999Z", "openai", "gpt-4o-mini", Some("key-1")),
        with("r3", "2026-11-26T00:00:00Z", "openai", "gpt-4o-mini", Some("key-2")),
        with("r4", "2026-11-26T08:00:00Z", "anthropic", "claude-sonnet-4-5", Some("key-3")),
        with("r5", "2026-11-26T09:00:00Z", "openai", "gpt-4o", None),
        with("r6", "2026-11-26T10:00:00Z", "openai", "gpt-4o-mini", Some("key-1")),
        with("r7", "2026-11-27T01:00:00Z", "deepseek", "deepseek-chat", Some("key-4")),
        with("r8", "2026-11-28T01:00:00Z", "deepseek", "deepseek-chat", Some("key-4")),
    ];
    for e in &events {
        assert!(record(&*store, e).await);
    }
    let keys = |found: Vec<StatsRow>| -> Vec<String> {
        found.into_iter().map(|r| format!("{} {}/{} {}", r.date, r.provider, r.model, r.key_id)).collect()
    };

    assert_eq!(
        keys(rows(&*store, days("2026-11-25", "2026-11-27")).await),
        [
            "2026-11-25 openai/gpt-4o-mini key-1",
            "2026-11-26 anthropic/claude-sonnet-4-5 key-3",
            "2026-11-26 openai/gpt-4o -",
            "2026-11-26 openai/gpt-4o-mini key-1",
            "2026-11-26 openai/gpt-4o-mini key-2",
            "2026-11-27 deepseek/deepseek-chat key-4",
        ]
    );
    let openai = StatsQuery { provider: Some("openai".into()), ..days("2026-11-24", "2026-11-26") };
    assert_eq!(
        keys(rows(&*store, openai).await),
        [
            "2026-11-24 openai/gpt-4o-mini key-1",
            "2026-11-25 openai/gpt-4o-mini key-1",
            "2026-11-26 openai/gpt-4o -",
            "2026-11-26 openai/gpt-4o-mini key-1",
            "2026-11-26 openai/gpt-4o-mini key-2",
        ]
    );
    let model = StatsQuery { model: Some("gpt-4o".into()), ..days("2026-11-01", "2026-11-30") };
    assert_eq!(keys(rows(&*store, model).await), ["2026-11-26 openai/gpt-4o -"]);
    let no_key = StatsQuery { key_id: Some("-".into()), ..days("2026-11-01", "2026-11-30") };
    assert_eq!(keys(rows(&*store, no_key).await), ["2026-11-26 openai/gpt-4o -"]);
    let all_three = StatsQuery {
        provider: Some("openai".into()),
        model: Some("gpt-4o-mini".into()),
        key_id: Some("key-1".into()),
        ..days("2026-11-26", "2026-11-28")
    };
    assert_eq!(keys(rows(&*store, all_three).await), ["2026-11-26 openai/gpt-4o-mini key-1"]);
    assert!(rows(&*store, days("2026-12-01", "2026-12-31")).await.is_empty());
}

pub async fn given_logged_calls_then_logs_come_newest_first_and_filter_by_time_provider_user_and_request_id(
    store: Arc<dyn StatsStore>,
) {
    let t = at("2026-11-26T06:00:00Z");
    let mut events = vec![
        event("r-0", t),
        LogEvent { provider: "anthropic".into(), ..event("r-1", t + 1_000) },
        LogEvent { user_id: Some("user-2".into()), ..event("r-2", t + 2_000) },
        failed_event("r-3", t + 3_000),
        // Two calls in the same millisecond: the larger request id comes first.
        event("r-4a", t + 4_000),
        event("r-4b", t + 4_000),
        LogEvent { provider: "anthropic".into(), user_id: Some("user-2".into()), ..event("r-5", t + 3_600_000) },
    ];
    // Recorded out of order: the order of reads must not depend on the order of writes.
    events.reverse();
    for e in &events {
        assert!(record(&*store, e).await);
    }

    let all = logs(&*store, LogQuery::default()).await;
    assert_eq!(ids(&all), ["r-5", "r-4b", "r-4a", "r-3", "r-2", "r-1", "r-0"]);

    let window = LogQuery { from_ms: Some(t + 1_000), to_ms: Some(t + 4_000), ..LogQuery::default() };
    assert_eq!(ids(&logs(&*store, window).await), ["r-3", "r-2", "r-1"], "from inclusive, to exclusive");
    let anthropic = LogQuery { provider: Some("anthropic".into()), ..LogQuery::default() };
    assert_eq!(ids(&logs(&*store, anthropic).await), ["r-5", "r-1"]);
    let user = LogQuery { user_id: Some("user-2".into()), from_ms: Some(t), ..LogQuery::default() };
    assert_eq!(ids(&logs(&*store, user).await), ["r-5", "r-2"]);
    let newest_two = LogQuery { limit: 2, ..LogQuery::default() };
    assert_eq!(ids(&logs(&*store, newest_two).await), ["r-5", "r-4b"]);

    // Every field round-trips, the unset ones too.
    let one = LogQuery { request_id: Some("r-3".into()), ..LogQuery::default() };
    assert_eq!(logs(&*store, one).await, [failed_event("r-3", t + 3_000)]);
    let none = LogQuery { request_id: Some("r-3".into()), provider: Some("anthropic".into()), ..LogQuery::default() };
    assert!(logs(&*store, none).await.is_empty());
}

pub async fn given_more_than_a_thousand_logs_then_the_limit_defaults_to_100_and_caps_at_1000(
    store: Arc<dyn StatsStore>,
) {
    let t = at("2026-11-26T06:00:00Z");
    for i in 0..1_001 {
        assert!(record(&*store, &event(&format!("req-{i:04}"), t + i)).await);
    }
    let default = logs(&*store, LogQuery::default()).await;
    assert_eq!(default.len(), 100);
    assert_eq!(default[0].request_id, "req-1000");
    assert_eq!(logs(&*store, LogQuery { limit: 5_000, ..LogQuery::default() }).await.len(), 1_000);
    assert_eq!(rows(&*store, days("2026-11-26", "2026-11-26")).await[0].counters.requests, 1_001);
}

pub async fn given_logs_of_several_models_and_outcomes_then_they_filter_by_model_and_status_and_page_with_a_cursor(
    store: Arc<dyn StatsStore>,
) {
    use maestro_shared::logs::CallStatus;

    let t = at("2026-11-26T06:00:00Z");
    let mini = |id: &str, ts: i64| event(id, ts);
    let big = |id: &str, ts: i64| LogEvent { model: "gpt-4o".into(), ..event(id, ts) };
    let events = [
        mini("a", t),
        big("b", t + 1_000),
        failed_event("c", t + 2_000),
        mini("d1", t + 3_000),
        mini("d2", t + 3_000),
        big("e", t + 3_600_000),
        LogEvent { user_id: Some("user-2".into()), ..failed_event("f", t + 7_200_000) },
        LogEvent { provider: "anthropic".into(), ..big("g", t + 7_200_001) },
    ];
    for e in &events {
        assert!(record(&*store, e).await);
    }

    let by_model = LogQuery { model: Some("gpt-4o".into()), ..LogQuery::default() };
    assert_eq!(ids(&logs(&*store, by_model).await), ["g", "e", "b"]);
    let errors = LogQuery { status: Some(CallStatus::Error), ..LogQuery::default() };
    assert_eq!(ids(&logs(&*store, errors).await), ["f", "c"]);
    let errors_of_user =
        LogQuery { status: Some(CallStatus::Error), user_id: Some("user-2".into()), ..LogQuery::default() };
    assert_eq!(ids(&logs(&*store, errors_of_user).await), ["f"]);
    let provider_model =
        LogQuery { provider: Some("openai".into()), model: Some("gpt-4o".into()), ..LogQuery::default() };
    assert_eq!(ids(&logs(&*store, provider_model).await), ["e", "b"]);
    // A filter that drops most of an hour's logs still finds every match across hours.
    let successes_limit_2 = LogQuery { status: Some(CallStatus::Success), limit: 2, ..LogQuery::default() };
    assert_eq!(ids(&logs(&*store, successes_limit_2).await), ["g", "e"]);

    // Pages of two, each after the last of the one before: every log once, newest first, even
    // across two logs of the same millisecond.
    let mut seen = Vec::new();
    let mut query = LogQuery { limit: 2, ..LogQuery::default() };
    loop {
        let page = logs(&*store, query.clone()).await;
        seen.extend(ids(&page).into_iter().map(str::to_string));
        match page.last() {
            Some(last) if page.len() == 2 => query.before = Some((last.ts_ms, last.request_id.clone())),
            _ => break,
        }
    }
    assert_eq!(seen, ["g", "f", "e", "d2", "d1", "c", "b", "a"]);

    // The cursor combines with the other filters.
    let after_d2 =
        LogQuery { before: Some((t + 3_000, "d2".into())), model: Some("gpt-4o-mini".into()), ..LogQuery::default() };
    assert_eq!(ids(&logs(&*store, after_d2).await), ["d1", "c", "a"]);
    let per_user_after = LogQuery {
        user_id: Some("user-1".into()),
        before: Some((t + 3_600_000, "e".into())),
        limit: 1,
        ..LogQuery::default()
    };
    assert_eq!(ids(&logs(&*store, per_user_after).await), ["d2"]);
    let per_provider_after =
        LogQuery { provider: Some("openai".into()), before: Some((t + 1_000, "b".into())), ..LogQuery::default() };
    assert_eq!(ids(&logs(&*store, per_provider_after).await), ["a"]);
}

pub async fn given_a_call_that_tried_several_keys_then_each_key_row_counts_its_attempts_and_cache_writes_are_kept(
    store: Arc<dyn StatsStore>,
) {
    // key-a failed twice, key-b served the call (with a prompt-cache write of 418 tokens).
    let attempt = |key: &str, attempts, errors| KeyAttempts {
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        key_id: key.into(),
        attempts,
        errors,
    };
    let e = LogEvent {
        key_id: Some("key-b".into()),
        attempts: 3,
        cache_write_tokens: 418,
        key_attempts: vec![attempt("key-a", 2, 2), attempt("key-b", 1, 0)],
        ..event("req-tries", at("2026-11-26T08:00:00Z"))
    };
    assert!(record(&*store, &e).await);
    assert!(!record(&*store, &e).await, "a redelivery adds no attempts");

    let found = rows(&*store, days("2026-11-26", "2026-11-26")).await;
    let row = |key: &str| found.iter().find(|r| r.key_id == key).map(|r| r.counters.clone()).unwrap_or_default();
    let (a, b) = (row("key-a"), row("key-b"));
    assert_eq!((a.requests, a.attempts, a.attempt_errors), (0, 2, 2), "the failing key shows its failed tries");
    assert_eq!((b.requests, b.attempts, b.attempt_errors), (1, 1, 0));
    assert_eq!((b.cache_write_tokens, a.cache_write_tokens), (418, 0));
    let total: u64 = found.iter().map(|r| r.counters.requests).sum();
    assert_eq!(total, 1, "calls are counted once, on the key that ended them");
    assert_eq!(logs(&*store, LogQuery::default()).await, [e], "the log keeps attempts and cache writes");
}

pub async fn given_logs_over_several_hours_when_paged_by_seven_then_every_log_comes_once_newest_first(
    store: Arc<dyn StatsStore>,
) {
    let t = at("2026-11-26T06:00:00Z");
    let provider = |i: usize| if i.is_multiple_of(3) { "anthropic" } else { "openai" };
    // 40 calls in one hour (two of them in the same millisecond), a few in the two hours before
    // and one in the hour after: on DynamoDB they spread over the hours' shards.
    let mut events: Vec<LogEvent> = (0..40)
        .map(|i| {
            let ts = if i == 21 { t + 20 * 61_000 } else { t + i as i64 * 61_000 };
            LogEvent { provider: provider(i).into(), ..event(&format!("req-{i:02}"), ts) }
        })
        .collect();
    for (i, ts) in [(40, t - 3_600_000), (41, t - 3_599_999), (42, t - 2 * 3_600_000 + 5), (43, t + 3_600_000 + 7)] {
        events.push(LogEvent { provider: provider(i).into(), ..event(&format!("req-{i:02}"), ts) });
    }
    let recorded = store.record_events(&events).await.expect("record_events");
    assert!(recorded.iter().all(|new| *new), "{recorded:?}");

    let newest_first = |keep: &dyn Fn(&LogEvent) -> bool| -> Vec<String> {
        let mut kept: Vec<&LogEvent> = events.iter().filter(|e| keep(e)).collect();
        kept.sort_by(|a, b| (b.ts_ms, &b.request_id).cmp(&(a.ts_ms, &a.request_id)));
        kept.iter().map(|e| e.request_id.clone()).collect()
    };
    let paged = |first: LogQuery| {
        let store = store.clone();
        async move {
            let mut seen = Vec::new();
            let mut query = LogQuery { limit: 7, ..first };
            for _ in 0..20 {
                let page = logs(&*store, query.clone()).await;
                assert!(page.len() <= 7, "{}", page.len());
                seen.extend(ids(&page).into_iter().map(str::to_string));
                match page.last() {
                    Some(last) if page.len() == 7 => query.before = Some((last.ts_ms, last.request_id.clone())),
                    _ => return seen,
                }
            }
            panic!("paging did not end: {seen:?}");
        }
    };

    let all = paged(LogQuery::default()).await;
    assert_eq!(all.len(), 44);
    assert_eq!(all, newest_first(&|_| true));
    assert_eq!(&all[..3], ["req-43", "req-39", "req-38"]);
    let same_ms: Vec<&str> = all.iter().map(String::as_str).filter(|id| ["req-20", "req-21"].contains(id)).collect();
    assert_eq!(same_ms, ["req-21", "req-20"], "the same millisecond: the larger request id first");
    for p in ["openai", "anthropic"] {
        let by_provider = paged(LogQuery { provider: Some(p.into()), ..LogQuery::default() }).await;
        assert_eq!(by_provider, newest_first(&|e| e.provider == p), "{p}");
    }
    let by_user = paged(LogQuery { user_id: Some("user-1".into()), ..LogQuery::default() }).await;
    assert_eq!(by_user, all, "every call has user-1");
    // A time window that cuts an hour in the middle pages the same way.
    let (from, to) = (t - 3_600_000, t + 30 * 61_000);
    let window = paged(LogQuery { from_ms: Some(from), to_ms: Some(to), ..LogQuery::default() }).await;
    assert_eq!(window, newest_first(&|e| e.ts_ms >= from && e.ts_ms < to));
}

/// Three calls through two routes (one retried on another key) and one that named a model.
fn routed_calls(t: i64) -> [LogEvent; 4] {
    let routed = |id: &str, ts: i64, route: &str, rule: &str, latency_ms: u64| LogEvent {
        route: Some(route.into()),
        route_rule: Some(rule.into()),
        latency_ms,
        ..event(id, ts)
    };
    let attempt = |key: &str, errors| KeyAttempts {
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        key_id: key.into(),
        attempts: 1,
        errors,
    };
    [
        // key-a failed once before key-1 served the first call of `smart`.
        LogEvent {
            attempts: 2,
            key_attempts: vec![attempt("key-a", 1), attempt("key-1", 0)],
            ..routed("s-1", t, "smart", "0", 7)
        },
        routed("s-2", t + 1_000, "smart", "default", 130),
        routed("c-1", t + 2_000, "cheap", "default", 2),
        LogEvent { latency_ms: 3, ..event("plain", t + 3_000) },
    ]
}

pub async fn given_calls_through_routes_then_logs_keep_the_rule_and_filter_by_the_exact_route(
    store: Arc<dyn StatsStore>,
) {
    let t = at("2026-11-26T06:00:00Z");
    let calls = routed_calls(t);
    assert_eq!(store.record_events(&calls).await.expect("record_events"), [true; 4]);

    let by_route = |route: &str| LogQuery { route: Some(route.into()), ..LogQuery::default() };
    let smart = logs(&*store, by_route("smart")).await;
    assert_eq!(ids(&smart), ["s-2", "s-1"]);
    assert_eq!(smart[1], calls[0], "every field round-trips, the rule too");
    assert_eq!(smart[0].route_rule.as_deref(), Some("default"));
    assert_eq!(ids(&logs(&*store, by_route("cheap")).await), ["c-1"]);
    assert!(logs(&*store, by_route("sma")).await.is_empty(), "an exact match, not a prefix");
    // With the filters that pick another index or partition on DynamoDB, and with a page limit.
    let smart_of_user = LogQuery { user_id: Some("user-1".into()), limit: 1, ..by_route("smart") };
    assert_eq!(ids(&logs(&*store, smart_of_user).await), ["s-2"]);
    let smart_of_provider = LogQuery { provider: Some("openai".into()), ..by_route("smart") };
    assert_eq!(ids(&logs(&*store, smart_of_provider).await), ["s-2", "s-1"]);
    let smart_before_s2 = LogQuery { before: Some((t + 1_000, "s-2".into())), ..by_route("smart") };
    assert_eq!(ids(&logs(&*store, smart_before_s2).await), ["s-1"]);
    assert_eq!(ids(&logs(&*store, LogQuery::default()).await), ["plain", "c-1", "s-2", "s-1"]);
}

pub async fn given_calls_through_routes_then_stats_rows_count_per_route_exactly_once(store: Arc<dyn StatsStore>) {
    let t = at("2026-11-26T06:00:00Z");
    let calls = routed_calls(t);
    assert_eq!(store.record_events(&calls).await.expect("record_events"), [true; 4]);
    assert!(!record(&*store, &calls[0]).await, "a redelivered routed call counts once");

    let day = || days("2026-11-26", "2026-11-26");
    let found = rows(&*store, day()).await;
    let keys: Vec<(&str, Option<&str>, u64, u64, u64)> = found
        .iter()
        .map(|r| {
            (r.key_id.as_str(), r.route.as_deref(), r.counters.requests, r.counters.attempts, r.counters.attempt_errors)
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("key-1", None, 1, 0, 0),
            ("key-1", Some("cheap"), 1, 0, 0),
            ("key-1", Some("smart"), 2, 1, 0),
            ("key-a", Some("smart"), 0, 1, 1),
        ]
    );
    let smart = &found[2].counters;
    assert_eq!(smart.latency_hist, hist(&[7, 130]));
    assert_eq!((smart.latency_ms_sum, smart.cost_micros), (137, 9_000));
    let plain = &found[0].counters;
    assert_eq!((plain.latency_hist[2], plain.latency_percentile(99)), (1, Some(3)));

    // The route filter alone, and with every other filter.
    let smart_rows = rows(&*store, StatsQuery { route: Some("smart".into()), ..day() }).await;
    assert_eq!(smart_rows.iter().map(|r| r.key_id.as_str()).collect::<Vec<_>>(), ["key-1", "key-a"]);
    let exact = StatsQuery {
        provider: Some("openai".into()),
        model: Some("gpt-4o-mini".into()),
        key_id: Some("key-1".into()),
        route: Some("cheap".into()),
        ..day()
    };
    let cheap = rows(&*store, exact).await;
    assert_eq!(cheap.len(), 1);
    assert_eq!((cheap[0].route.as_deref(), cheap[0].counters.latency_hist), (Some("cheap"), hist(&[2])));
    assert!(rows(&*store, StatsQuery { route: Some("smar".into()), ..day() }).await.is_empty());
}

pub async fn given_calls_in_several_minutes_then_minute_caller_and_caller_key_rows_count_each_call_once(
    store: Arc<dyn StatsStore>,
) {
    let t = at("2026-11-26T06:59:10Z");
    let of = |id: &str, ts: i64, user: Option<&str>| LogEvent { user_id: user.map(str::to_string), ..event(id, ts) };
    // Alice calls with two Maestro API keys, then with a JWT; bob with a key.
    let keyed = |e: LogEvent, key: &str| LogEvent { caller_key_id: Some(key.into()), ..e };
    let calls = [
        keyed(of("m-1", t, Some("alice")), "ck_alice_app"),
        keyed(of("m-2", t + 20_000, Some("bob")), "ck_bob"),
        // The next hour's first minute: another DynamoDB partition.
        keyed(LogEvent { user_id: Some("alice".into()), ..failed_event("m-3", t + 60_000) }, "ck_alice_ci"),
        of("m-4", t + 125_000, None),
        of("m-5", t + 130_000, Some("alice")),
        // The next day.
        keyed(of("m-6", at("2026-11-27T00:00:01Z"), Some("alice")), "ck_alice_app"),
    ];
    assert_eq!(store.record_events(&calls).await.expect("record"), [true; 6]);
    // A redelivery adds nothing to either.
    assert_eq!(store.record_events(&calls[..1]).await.expect("record"), [false]);

    let minutes = store.minute_rows(t - 60_000, t + 180_000).await.expect("minute rows");
    let seen: Vec<(&str, &str, u64, u64, u64)> = minutes
        .iter()
        .map(|r| (r.date.as_str(), r.key_id.as_str(), r.counters.requests, r.counters.errors, r.counters.cost_micros))
        .collect();
    assert_eq!(
        seen,
        [
            ("2026-11-26T06:59", "key-1", 2, 0, 9_000),
            ("2026-11-26T07:00", "key-1", 1, 1, 0),
            ("2026-11-26T07:01", "key-1", 2, 0, 9_000),
        ]
    );
    assert!(minutes.iter().all(|r| r.route.is_none() && r.provider == "openai"));
    assert_eq!(minutes[0].counters.latency_hist, hist(&[420, 420]));
    // The minutes of [from, to): the minute `to` starts is out.
    let one = store.minute_rows(at("2026-11-26T07:00:00Z"), at("2026-11-26T07:01:00Z")).await.expect("minute rows");
    assert_eq!(one.iter().map(|r| r.date.as_str()).collect::<Vec<_>>(), ["2026-11-26T07:00"]);
    assert!(store.minute_rows(t + 300_000, t + 360_000).await.expect("minute rows").is_empty());

    let callers = store.caller_rows("2026-11-26", "2026-11-26", None).await.expect("caller rows");
    let seen: Vec<(&str, u64, u64, u64)> = callers
        .iter()
        .map(|r| (r.user_id.as_str(), r.counters.requests, r.counters.errors, r.counters.cost_micros))
        .collect();
    assert_eq!(seen, [("alice", 3, 1, 9_000), ("bob", 1, 0, 4_500)], "a call for no user has no caller row");
    let bob = store.caller_rows("2026-11-25", "2026-11-27", Some("bob")).await.expect("caller rows");
    assert_eq!(bob.len(), 1);
    assert_eq!((bob[0].date.as_str(), bob[0].counters.prompt_tokens), ("2026-11-26", 120));
    assert!(store.caller_rows("2026-11-28", "2026-11-28", None).await.expect("caller rows").is_empty());

    // Per Maestro API key and day: calls without a key have none; a redelivery adds nothing.
    let keys = store.caller_key_rows("2026-11-26", "2026-11-27").await.expect("caller key rows");
    let seen: Vec<(&str, &str, u64, u64, u64)> = keys
        .iter()
        .map(|r| {
            (r.date.as_str(), r.caller_key_id.as_str(), r.counters.requests, r.counters.errors, r.counters.cost_micros)
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("2026-11-26", "ck_alice_app", 1, 0, 4_500),
            ("2026-11-26", "ck_alice_ci", 1, 1, 0),
            ("2026-11-26", "ck_bob", 1, 0, 4_500),
            ("2026-11-27", "ck_alice_app", 1, 0, 4_500),
        ]
    );
    assert_eq!(keys[0].counters.latency_hist, hist(&[420]));
    let one_day = store.caller_key_rows("2026-11-27", "2026-11-27").await.expect("caller key rows");
    assert_eq!(one_day.len(), 1);
    // The key each call came with is in its log.
    let logged = store.logs(&LogQuery { limit: 10, ..LogQuery::default() }).await.expect("logs");
    let key_of = |id: &str| logged.iter().find(|e| e.request_id == id).and_then(|e| e.caller_key_id.clone());
    assert_eq!((key_of("m-3").as_deref(), key_of("m-5")), (Some("ck_alice_ci"), None));
}

pub async fn given_logs_of_several_models_and_users_then_partial_matches_ignore_case_and_counts_stop_at_the_cap(
    store: Arc<dyn StatsStore>,
) {
    use maestro_shared::logs::CallStatus;

    let t = at("2026-11-26T06:00:00Z");
    let with = |id: &str, ts: i64, model: &str, user: Option<&str>| LogEvent {
        model: model.into(),
        user_id: user.map(str::to_string),
        ..event(id, ts)
    };
    let events = [
        with("a", t, "gpt-4o-mini", Some("Alice@Example.com")),
        with("b", t + 1_000, "GPT-4o", Some("bob")),
        with("c", t + 3_600_000, "claude-sonnet-4", Some("alice-ci")),
        with("d", t + 3_600_001, "deepseek-chat", None),
        LogEvent { provider: "anthropic".into(), ..with("e", t + 7_200_000, "claude-opus-4", Some("carol")) },
        LogEvent { status: CallStatus::Error, ..with("f", t + 7_200_001, "gpt-4.1", Some("ALICE")) },
    ];
    for e in &events {
        assert!(record(&*store, e).await);
    }
    let q = |model: Option<&str>, user: Option<&str>| LogQuery {
        model_contains: model.map(str::to_string),
        user_contains: user.map(str::to_string),
        ..LogQuery::default()
    };
    assert_eq!(ids(&logs(&*store, q(Some("gpt-4"), None)).await), ["f", "b", "a"]);
    assert_eq!(ids(&logs(&*store, q(Some("Gpt-4O"), None)).await), ["b", "a"], "case does not matter");
    assert_eq!(ids(&logs(&*store, q(Some("claude"), None)).await), ["e", "c"]);
    assert_eq!(ids(&logs(&*store, q(None, Some("alice"))).await), ["f", "c", "a"]);
    assert_eq!(ids(&logs(&*store, q(None, Some("EXAMPLE.COM"))).await), ["a"]);
    assert!(logs(&*store, q(Some("llama"), None)).await.is_empty());
    // With the exact filters, the other partial match and a page size.
    let both = LogQuery { provider: Some("openai".into()), ..q(Some("4"), Some("alice")) };
    assert_eq!(ids(&logs(&*store, both).await), ["f", "c", "a"]);
    let errors = LogQuery { status: Some(CallStatus::Error), ..q(None, Some("ali")) };
    assert_eq!(ids(&logs(&*store, errors).await), ["f"]);
    let page = LogQuery { limit: 1, before: Some((t + 7_200_001, "f".into())), ..q(None, Some("alice")) };
    assert_eq!(ids(&logs(&*store, page).await), ["c"]);

    // Counts: the same filters, every page, up to the cap.
    let count = |query: LogQuery, cap: u64| {
        let store = store.clone();
        async move { store.count_logs(&query, cap).await.expect("count_logs") }
    };
    let all = count(LogQuery::default(), 100).await;
    assert_eq!((all.count, all.capped), (6, false));
    let gpt = count(q(Some("GPT"), None), 100).await;
    assert_eq!((gpt.count, gpt.capped), (3, false));
    let capped = count(LogQuery::default(), 4).await;
    assert_eq!((capped.count, capped.capped), (4, true));
    let exactly = count(q(None, Some("alice")), 3).await;
    assert_eq!((exactly.count, exactly.capped), (3, false), "as many as the cap is not past it");
    // A cursor or a limit in the query does not narrow the count.
    let paged = count(LogQuery { limit: 1, before: Some((t, "a".into())), ..LogQuery::default() }, 100).await;
    assert_eq!(paged.count, 6);
    let none = count(q(Some("llama"), None), 100).await;
    assert_eq!((none.count, none.capped), (0, false));
}

/// One entry of an attempt log.
fn tried(
    provider: &str,
    key_id: Option<&str>,
    outcome: &str,
    http_status: Option<u16>,
    message: Option<&str>,
) -> Attempt {
    Attempt {
        provider: provider.into(),
        model: "gpt-4o".into(),
        key_id: key_id.map(str::to_string),
        outcome: outcome.into(),
        http_status,
        message: message.map(str::to_string),
        latency_ms: 0,
        skipped: Vec::new(),
    }
}

pub async fn given_a_call_with_an_attempt_log_then_every_entry_reads_back_in_order(store: Arc<dyn StatsStore>) {
    let t = at("2026-11-26T06:14:10Z");
    // Three attempts on two keys, a pick that found none of the first provider's keys, and the
    // fallback that served; every optional field of an entry used at least once.
    let skipped = |reason: &str| vec![SkippedKey { key_id: "key-c".into(), reason: reason.into() }];
    let log = vec![
        Attempt {
            latency_ms: 812,
            skipped: skipped("cooling_down"),
            ..tried("openai", Some("key-a"), "upstream_server_error", Some(500), Some("The server had an error."))
        },
        Attempt { latency_ms: 20_001, ..tried("openai", Some("key-b"), "upstream_timeout", None, None) },
        Attempt {
            latency_ms: 95,
            ..tried("openai", Some("key-a"), "upstream_overloaded", Some(529), Some("Overloaded: sk-…9f3a, 请稍后"))
        },
        Attempt {
            skipped: [skipped("rpm_limit"), vec![SkippedKey { key_id: "key-b".into(), reason: "tpm_limit".into() }]]
                .concat(),
            ..tried("openai", None, "no_key", None, None)
        },
        Attempt { latency_ms: 388, ..tried("anthropic", Some("key-z"), "ok", Some(200), None) },
    ];
    let with_log = LogEvent { attempts: 4, attempt_log: log, ..event("req-tried", t) };
    let without = event("req-plain", t + 1);
    assert!(record(&*store, &with_log).await);
    assert!(record(&*store, &without).await);
    let by_id = |id: &str| LogQuery { request_id: Some(id.into()), ..LogQuery::default() };
    assert_eq!(logs(&*store, by_id("req-tried")).await, std::slice::from_ref(&with_log));
    assert_eq!(logs(&*store, by_id("req-plain")).await, std::slice::from_ref(&without));
    // In a page of logs too.
    assert_eq!(logs(&*store, LogQuery::default()).await, [without, with_log]);
}
