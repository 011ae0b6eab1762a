//! The scheduled event in `events/` through the roll-up handler, on an embedded store: the
//! payload is deserialised as the real `aws_lambda_events` EventBridge type.

#![allow(clippy::expect_used, clippy::panic, reason = "test helpers: a failed expectation is a failed test")]

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{Context, LambdaEvent};
use maestro_rollup::handle;
use maestro_shared::domain::{ApiKey, KeyLimits, KeyStatus, Provider, ProviderKind};
use maestro_shared::logs::LogEvent;
use maestro_shared::stats::Counters;
use maestro_shared::stats::Summary;
use maestro_shared::stats::rollup::RollupOptions;
use maestro_shared::store::embedded::EmbeddedStore;
use maestro_shared::store::{CatalogStore, StatsStore};

const SCHEDULED: &str = include_str!("../../../events/rollup-eventbridge-scheduled.json");

/// The event's `time`: 2026-11-26T06:15:00Z.
const EVENT_MS: i64 = 1_795_673_700_000;
const HOUR_MS: i64 = 3_600_000;

fn scheduled_event() -> LambdaEvent<EventBridgeEvent> {
    let payload: EventBridgeEvent = serde_json::from_str(SCHEDULED).expect("a valid EventBridge event");
    LambdaEvent::new(payload, Context::default())
}

fn key(id: &str, status: KeyStatus, cooldown_until: Option<i64>) -> ApiKey {
    ApiKey {
        id: id.into(),
        provider: "openai".into(),
        name: id.into(),
        secret_ref: format!("local/{id}"),
        masked: "sk-…abcd".into(),
        priority: 0,
        is_active: true,
        status,
        cooldown_until,
        limits: KeyLimits::default(),
    }
}

fn call(request_id: &str, ts_ms: i64, provider: &str, cost_micros: u64) -> LogEvent {
    LogEvent {
        provider: provider.into(),
        model: "m".into(),
        key_id: Some("k".into()),
        prompt_tokens: 10,
        completion_tokens: 5,
        cached_tokens: 0,
        cost_micros,
        latency_ms: 300,
        ttfb_ms: None,
        ..LogEvent::sample(request_id, ts_ms)
    }
}

async fn store_with_keys_and_calls() -> EmbeddedStore {
    let store = EmbeddedStore::open_in_memory().expect("store");
    store
        .upsert_provider(&Provider {
            code: "openai".into(),
            kind: ProviderKind::Openai,
            name: "OpenAI".into(),
            base_url: "https://api.openai.com/v1".into(),
            headers: Default::default(),
            is_active: true,
            sort_order: 1,
        })
        .await
        .expect("provider");
    for k in [
        key("expired-429", KeyStatus::RateLimited, Some(EVENT_MS - 1_000)),
        key("expired-5xx", KeyStatus::Error, Some(EVENT_MS - 60_000)),
        key("still-cooling", KeyStatus::RateLimited, Some(EVENT_MS + 60_000)),
        key("revoked", KeyStatus::Invalid, None),
        key("healthy", KeyStatus::Normal, None),
    ] {
        store.upsert_key(&k).await.expect("key");
    }
    // Yesterday (2026-11-25) and today (2026-11-26), two providers; one call three days back.
    for (id, ts, provider, cost) in [
        ("r1", EVENT_MS - 20 * HOUR_MS, "openai", 100),
        ("r2", EVENT_MS - 19 * HOUR_MS, "anthropic", 200),
        ("r3", EVENT_MS - HOUR_MS, "openai", 40),
        ("r4", EVENT_MS - 2 * HOUR_MS, "openai", 2),
        ("old", EVENT_MS - 72 * HOUR_MS, "openai", 9_999),
    ] {
        assert!(store.record_event(&call(id, ts, provider, cost)).await.expect("record"));
    }
    store
}

fn summary_line(s: &Summary) -> (&str, &str, u64, u64) {
    (s.date.as_str(), s.provider.as_str(), s.counters.requests, s.counters.cost_micros)
}

#[tokio::test]
async fn given_the_scheduled_event_when_the_rollup_runs_then_expired_cooldowns_end_and_summaries_are_recomputed() {
    let store = store_with_keys_and_calls().await;
    // A stale summary (a partial earlier run, a lost write): the roll-up must replace it.
    let stale = Summary {
        date: "2026-11-26".into(),
        provider: "ALL".into(),
        counters: Counters { requests: 999, ..Counters::default() },
    };
    store.put_summaries("2026-11-26", &[stale]).await.expect("stale summary");

    let report = handle(&store, &store, RollupOptions::default(), scheduled_event()).await.expect("rollup ran");

    assert_eq!((report.from_date.as_str(), report.to_date.as_str()), ("2026-11-25", "2026-11-26"));
    assert_eq!(report.recovered_keys, ["expired-429", "expired-5xx"]);
    assert_eq!((report.fine_rows, report.summaries), (3, 5));
    assert_eq!((report.requests, report.cost_micros), (4, 342));
    assert!(report.errors.is_empty());

    let catalog = store.load_catalog().await.expect("catalog");
    let status = |id: &str| catalog.key(id).map(|k| (k.status, k.cooldown_until));
    assert_eq!(status("expired-429"), Some((KeyStatus::Normal, None)));
    assert_eq!(status("expired-5xx"), Some((KeyStatus::Normal, None)));
    assert_eq!(status("still-cooling"), Some((KeyStatus::RateLimited, Some(EVENT_MS + 60_000))));
    assert_eq!(status("revoked"), Some((KeyStatus::Invalid, None)), "only an admin's validation clears invalid");

    let summaries = store.summaries("2026-11-20", "2026-11-30").await.expect("summaries");
    let lines: Vec<_> = summaries.iter().map(summary_line).collect();
    assert_eq!(
        lines,
        [
            ("2026-11-25", "ALL", 2, 300),
            ("2026-11-25", "anthropic", 1, 200),
            ("2026-11-25", "openai", 1, 100),
            ("2026-11-26", "ALL", 2, 42),
            ("2026-11-26", "openai", 2, 42),
        ],
        "the stale ALL row is gone and the day three back is outside the range"
    );
}

#[tokio::test]
async fn given_a_finished_rollup_when_it_runs_again_then_nothing_changes() {
    let store = store_with_keys_and_calls().await;
    handle(&store, &store, RollupOptions::default(), scheduled_event()).await.expect("first run");
    let before = store.summaries("2026-11-20", "2026-11-30").await.expect("summaries");

    let again = handle(&store, &store, RollupOptions::default(), scheduled_event()).await.expect("second run");

    assert!(again.recovered_keys.is_empty());
    assert_eq!(store.summaries("2026-11-20", "2026-11-30").await.expect("summaries"), before);
}

#[tokio::test]
async fn given_a_longer_lookback_when_the_rollup_runs_then_older_days_are_summarised_too() {
    let store = store_with_keys_and_calls().await;

    let report = handle(&store, &store, RollupOptions { days: 4 }, scheduled_event()).await.expect("rollup ran");

    assert_eq!(report.from_date, "2026-11-23");
    assert_eq!(report.requests, 5);
    let old = store.summaries("2026-11-23", "2026-11-23").await.expect("summaries");
    assert_eq!(
        old.iter().map(summary_line).collect::<Vec<_>>(),
        [("2026-11-23", "ALL", 1, 9_999), ("2026-11-23", "openai", 1, 9_999)]
    );
}

/// A stats store that keeps no summaries (the trait's default), like a backend that has not
/// implemented them yet.
struct NoSummaries(EmbeddedStore);

#[async_trait::async_trait]
impl StatsStore for NoSummaries {
    async fn record_event(&self, event: &LogEvent) -> Result<bool, maestro_shared::store::StoreError> {
        self.0.record_event(event).await
    }
    async fn stats_rows(
        &self,
        query: &maestro_shared::stats::StatsQuery,
    ) -> Result<Vec<maestro_shared::stats::StatsRow>, maestro_shared::store::StoreError> {
        self.0.stats_rows(query).await
    }
    async fn logs(
        &self,
        query: &maestro_shared::store::LogQuery,
    ) -> Result<Vec<LogEvent>, maestro_shared::store::StoreError> {
        self.0.logs(query).await
    }
}

#[tokio::test]
async fn given_a_store_without_summaries_when_the_rollup_runs_then_keys_still_recover_and_the_invocation_fails() {
    let store = store_with_keys_and_calls().await;
    let stats = NoSummaries(EmbeddedStore::open_in_memory().expect("store"));

    let err = handle(&store, &stats, RollupOptions::default(), scheduled_event()).await.expect_err("incomplete");

    assert_eq!(err.report.recovered_keys, ["expired-429", "expired-5xx"]);
    assert_eq!(err.report.errors.len(), 1);
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "RollupIncomplete");
    assert!(diagnostic.error_message.contains("keeps no roll-up summaries"), "{}", diagnostic.error_message);
}
