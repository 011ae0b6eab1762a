//! Every aggregator event in `events/` through the Lambda handler, on an embedded store: the
//! payload is deserialised as the real `aws_lambda_events` SQS type, exactly as the runtime does.

#![allow(clippy::expect_used, clippy::panic, reason = "test helpers: a failed expectation is a failed test")]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Context, LambdaEvent};
use maestro_aggregator::handle;
use maestro_shared::stats::StatsQuery;
use maestro_shared::store::embedded::EmbeddedStore;
use maestro_shared::store::{LogQuery, StatsStore};

const BATCH: &str = include_str!("../../../events/aggregator-sqs-batch.json");
const BATCH_WITH_POISON: &str = include_str!("../../../events/aggregator-sqs-batch-with-poison.json");
/// The one record of `aggregator-sqs-batch-with-poison.json` whose body is a cut-off event.
const POISON_ID: &str = "9d123e5a-6f71-4293-8e3f-4a5b6c7d8e9f";

fn sqs_event(json: &str) -> LambdaEvent<SqsEvent> {
    let payload: SqsEvent = serde_json::from_str(json).expect("the event file is a valid SQS event");
    LambdaEvent::new(payload, Context::default())
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
    response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
}

async fn total_requests(store: &EmbeddedStore) -> u64 {
    let query = StatsQuery { from_date: "2026-11-01".into(), to_date: "2026-11-30".into(), ..StatsQuery::default() };
    store.stats_rows(&query).await.expect("stats").iter().map(|r| r.counters.requests).sum()
}

#[tokio::test]
async fn given_a_batch_of_three_log_events_when_handled_then_none_fails_and_all_three_are_recorded() {
    let store = EmbeddedStore::open_in_memory().expect("store");

    let response = handle(&store, sqs_event(BATCH)).await.expect("handled");

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let logs = store.logs(&LogQuery { limit: 10, ..LogQuery::default() }).await.expect("logs");
    assert_eq!(logs.len(), 3);
    assert_eq!(total_requests(&store).await, 3);
    // The JSON the runtime sends back: `batchItemFailures`, as Lambda reads it.
    assert_eq!(serde_json::to_value(&response).expect("json"), serde_json::json!({"batchItemFailures": []}));
}

#[tokio::test]
async fn given_a_batch_with_a_poison_record_when_handled_then_exactly_that_message_id_is_reported() {
    let store = EmbeddedStore::open_in_memory().expect("store");

    let response = handle(&store, sqs_event(BATCH_WITH_POISON)).await.expect("handled");

    assert_eq!(failed_ids(&response), [POISON_ID]);
    assert_eq!(
        serde_json::to_value(&response).expect("json"),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": POISON_ID}]})
    );
    assert_eq!(total_requests(&store).await, 2, "the two good records are counted");
}

#[tokio::test]
async fn given_a_redelivered_batch_when_handled_again_then_nothing_is_counted_twice() {
    let store = EmbeddedStore::open_in_memory().expect("store");
    handle(&store, sqs_event(BATCH_WITH_POISON)).await.expect("first delivery");

    let again = handle(&store, sqs_event(BATCH_WITH_POISON)).await.expect("redelivery");

    assert_eq!(failed_ids(&again), [POISON_ID], "duplicates are successes; only the poison comes back");
    assert_eq!(total_requests(&store).await, 2);
}
