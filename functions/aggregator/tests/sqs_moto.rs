//! The aggregator behind the real queue, on moto server: log events sent by the SQS sink,
//! received from the queue and recorded in DynamoDB exactly once, however often they arrive;
//! a malformed message is reported alone and, after `maxReceiveCount` receives, dead-lettered.
//!
//! Needs `MAESTRO_TEST_AWS_ENDPOINT` (see `maestro_shared::aws::emulator::test_endpoint`):
//! without it (and `CI` not `true`) each test prints `SKIPPED: moto not running` and returns.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use maestro_aggregator::{Message, process_batch};
use maestro_shared::aws::{
    AwsBackend, AwsConfig, QueueConsumer, ReceivedMessage, SinkMode, SqsLogSink, emulator, provision,
};
use maestro_shared::logs::{LogEvent, LogSink};
use maestro_shared::stats::{StatsQuery, total};
use maestro_shared::store::{LogQuery, StatsStore};

struct Env {
    aws: AwsBackend,
    queue_url: String,
    dlq_url: String,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A fresh table and a fresh queue pair, provisioned the way `maestro init-aws` does; `None`
/// when the test is skipped.
async fn fresh(test: &str) -> Option<Env> {
    let endpoint = emulator::test_endpoint(test).unwrap_or_else(|message| panic!("{message}"))?;
    let sdk = emulator::sdk_config(&endpoint).await;
    let table = unique("maestro-test");
    let config =
        AwsConfig { table: table.clone(), log_queue_url: "unused".into(), secret_prefix: "maestro-test/".into() };
    let mut aws = AwsBackend::connect(&sdk, config, SinkMode::Inline).await.expect("connect");
    let provisioned =
        provision::provision(&aws.dynamodb, &aws.sqs, &table, &unique("maestro-logs")).await.expect("provision");
    aws.config.log_queue_url = provisioned.log_queue_url.clone();
    Some(Env { queue_url: provisioned.log_queue_url, dlq_url: provisioned.log_dlq_url, aws })
}

impl Drop for Env {
    fn drop(&mut self) {
        let (dynamodb, table) = (self.aws.dynamodb.clone(), self.aws.config.table.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current()
            && runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| {
                let _ = runtime.block_on(provision::delete_table(&dynamodb, &table));
            });
        }
    }
}

fn event(request_id: &str, latency_ms: u64) -> LogEvent {
    LogEvent {
        prompt_tokens: 100,
        completion_tokens: 20,
        cached_tokens: 0,
        cost_micros: 1_000,
        latency_ms,
        ttfb_ms: None,
        ..LogEvent::sample(request_id, 1_795_000_000_000)
    }
}

/// Receives until `n` messages have arrived (SQS may hand out fewer than are there).
async fn receive(consumer: &QueueConsumer, n: usize) -> Vec<ReceivedMessage> {
    let mut got: Vec<ReceivedMessage> = Vec::new();
    for _ in 0..20 {
        for m in consumer.receive(1).await.expect("receive") {
            if !got.iter().any(|g| g.message_id == m.message_id) {
                got.push(m);
            }
        }
        if got.len() >= n {
            break;
        }
    }
    assert_eq!(got.len(), n, "messages received");
    got
}

fn messages(received: &[ReceivedMessage]) -> Vec<Message> {
    received.iter().map(|m| Message { id: m.message_id.clone(), body: m.body.clone() }).collect()
}

async fn day_total(store: &dyn StatsStore) -> maestro_shared::stats::Counters {
    let day = StatsQuery { from_date: "2026-11-18".into(), to_date: "2026-11-18".into(), ..StatsQuery::default() };
    total(&store.stats_rows(&day).await.expect("stats"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_events_from_the_sqs_sink_when_the_aggregator_processes_the_batch_twice_then_the_stats_count_them_once() {
    let Some(env) = fresh("sqs_moto_twice").await else { return };
    // GIVEN three events sent through the batching sink
    let sink = SqsLogSink::new(env.aws.sqs.clone(), &env.queue_url, SinkMode::Batched);
    for (i, latency) in [120, 480, 2_400].into_iter().enumerate() {
        sink.send(event(&format!("req-{i}"), latency)).await;
    }
    sink.flush().await;
    assert_eq!((sink.sent(), sink.undelivered()), (3, 0));
    assert!(sink.requests() <= 3, "batched: {} requests for 3 events", sink.requests());

    // WHEN the aggregator processes what it received, and then the same messages again
    let consumer = QueueConsumer::new(env.aws.sqs.clone(), &env.queue_url);
    let received = receive(&consumer, 3).await;
    let store = env.aws.dynamo.as_ref();
    assert!(process_batch(store, &messages(&received)).await.is_empty());
    let once = day_total(store).await;
    assert!(process_batch(store, &messages(&received)).await.is_empty(), "a redelivery is not a failure");

    // THEN the stats and logs hold each event once
    assert_eq!(day_total(store).await, once);
    assert_eq!((once.requests, once.prompt_tokens, once.latency_ms_sum), (3, 300, 3_000));
    assert_eq!(store.logs(&LogQuery::default()).await.expect("logs").len(), 3);
    consumer.delete(&received).await.expect("delete");
    assert!(consumer.receive(0).await.expect("receive").is_empty(), "the queue is drained");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_batch_with_one_malformed_message_then_exactly_that_one_fails_the_rest_are_recorded_and_it_is_dead_lettered()
 {
    let Some(env) = fresh("sqs_moto_malformed").await else { return };
    let sink = SqsLogSink::new(env.aws.sqs.clone(), &env.queue_url, SinkMode::Inline);
    sink.send(event("req-a", 100)).await;
    env.aws
        .sqs
        .send_message()
        .queue_url(&env.queue_url)
        .message_body("{\"v\":1,\"request_id\":")
        .send()
        .await
        .expect("send");
    sink.send(event("req-b", 100)).await;

    let consumer = QueueConsumer::new(env.aws.sqs.clone(), &env.queue_url);
    let received = receive(&consumer, 3).await;
    let bad = received.iter().find(|m| !m.body.ends_with('}')).expect("the malformed message").message_id.clone();
    let failed = process_batch(env.aws.dynamo.as_ref(), &messages(&received)).await;
    assert_eq!(failed, std::slice::from_ref(&bad));
    assert_eq!(day_total(env.aws.dynamo.as_ref()).await.requests, 2);

    // Only the processed messages are deleted; the malformed one keeps coming back until the
    // redrive policy (maxReceiveCount 5) moves it to the dead-letter queue.
    let (failed, done): (Vec<ReceivedMessage>, Vec<ReceivedMessage>) =
        received.into_iter().partition(|m| m.message_id == bad);
    consumer.delete(&done).await.expect("delete");
    // Instead of waiting out the 180 s visibility timeout, make it visible again now.
    env.aws
        .sqs
        .change_message_visibility()
        .queue_url(&env.queue_url)
        .receipt_handle(&failed[0].receipt_handle)
        .visibility_timeout(0)
        .send()
        .await
        .expect("change visibility");
    let mut receives = 1;
    loop {
        let again = env
            .aws
            .sqs
            .receive_message()
            .queue_url(&env.queue_url)
            .visibility_timeout(0)
            .send()
            .await
            .expect("receive again");
        if again.messages().is_empty() {
            break;
        }
        assert!(again.messages().iter().all(|m| m.message_id() == Some(bad.as_str())));
        receives += 1;
        assert!(receives <= provision::MAX_RECEIVE_COUNT + 1, "never dead-lettered");
    }
    assert_eq!(receives, provision::MAX_RECEIVE_COUNT);
    let dead = QueueConsumer::new(env.aws.sqs.clone(), &env.dlq_url);
    let dead = receive(&dead, 1).await;
    assert_eq!(dead[0].message_id, bad);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_queue_that_does_not_exist_then_the_sink_keeps_the_event_in_the_log_and_counts_it() {
    let Some(env) = fresh("sqs_moto_undelivered").await else { return };
    let missing = format!("{}-gone", env.queue_url);
    for mode in [SinkMode::Inline, SinkMode::Batched] {
        let sink = SqsLogSink::new(env.aws.sqs.clone(), &missing, mode);
        sink.send(event("req-lost-1", 10)).await;
        sink.send(event("req-lost-2", 10)).await;
        tokio::time::timeout(Duration::from_secs(30), sink.flush()).await.expect("flush");
        assert_eq!((sink.sent(), sink.undelivered()), (0, 2), "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_batching_sink_when_a_send_returns_then_its_event_is_already_in_the_queue() {
    let Some(env) = fresh("sqs_moto_sent_before_return").await else { return };
    let sink = SqsLogSink::new(env.aws.sqs.clone(), &env.queue_url, SinkMode::Batched);
    // Twenty calls answering at once: each waits for its batch, and they share batches.
    let sends = (0..20).map(|i| sink.send(event(&format!("req-{i}"), 100)));
    futures_util::future::join_all(sends).await;
    assert_eq!((sink.sent(), sink.undelivered()), (20, 0), "every event left before its send returned");
    assert!(sink.requests() < 20, "concurrent sends share batches: {} requests", sink.requests());
}
