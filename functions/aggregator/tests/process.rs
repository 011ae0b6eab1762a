//! The aggregator over the embedded store: redelivery changes nothing, a poison message fails
//! alone.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use maestro_aggregator::{Message, Outcome, process_batch, process_message};
use maestro_shared::logs::{LOG_EVENT_VERSION, LogEvent};
use maestro_shared::stats::StatsQuery;
use maestro_shared::store::StatsStore;
use maestro_shared::store::embedded::EmbeddedStore;

fn event(request_id: &str, cost: u64) -> LogEvent {
    LogEvent {
        ts_ms: 1_795_651_200_000, // 2026-11-26T00:00:00Z
        user_id: Some("u1".into()),
        model: "gpt-4o".into(),
        key_id: Some("openai-k".into()),
        prompt_tokens: 19,
        completion_tokens: 10,
        cached_tokens: 0,
        cost_micros: cost,
        ..LogEvent::sample(request_id, 0)
    }
}

fn message(id: &str, e: &LogEvent) -> Message {
    Message { id: id.into(), body: serde_json::to_string(e).unwrap() }
}

async fn day_total(store: &EmbeddedStore) -> maestro_shared::stats::Counters {
    let q = StatsQuery { from_date: "2026-11-26".into(), to_date: "2026-11-26".into(), ..Default::default() };
    maestro_shared::stats::total(&store.stats_rows(&q).await.unwrap())
}

#[tokio::test]
async fn the_same_batch_delivered_twice_counts_once() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let batch = vec![message("m1", &event("req_a", 148)), message("m2", &event("req_b", 148))];
    assert!(process_batch(&store, &batch).await.is_empty());
    assert!(process_batch(&store, &batch).await.is_empty(), "a redelivery is not a failure");
    let total = day_total(&store).await;
    assert_eq!(total.requests, 2);
    assert_eq!(total.prompt_tokens, 38);
    assert_eq!(total.cost_micros, 296);
    assert_eq!(process_message(&store, &batch[0]).await, Outcome::Duplicate);
}

#[tokio::test]
async fn a_poison_message_fails_alone_and_the_rest_is_recorded() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let mut future = event("req_future", 1);
    future.v = LOG_EVENT_VERSION + 1;
    let batch = vec![
        message("good-1", &event("req_1", 10)),
        Message { id: "poison".into(), body: "{\"not\": \"an event\"}".into() },
        message("from-the-future", &future),
        message("good-2", &event("req_2", 20)),
    ];
    let failed = process_batch(&store, &batch).await;
    assert_eq!(failed, ["poison", "from-the-future"]);
    let total = day_total(&store).await;
    assert_eq!(total.requests, 2);
    assert_eq!(total.cost_micros, 30);
}
