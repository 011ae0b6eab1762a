//! What one chat call costs on the AWS backend, counted at the SDK (an interceptor sees every
//! request that goes on the wire, retries included) against moto server: DynamoDB, Secrets
//! Manager and SQS requests per call on a cold and a warm container, and what the aggregator
//! spends per event. The README's "AWS cost per call" figures come from this test; run it with
//! `--nocapture` to see the counts.
//!
//! Needs `MAESTRO_TEST_AWS_ENDPOINT`; without it (and `CI` not `true`) it prints `SKIPPED`.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use maestro_shared::aws::{DynamoStore, QueueConsumer, SecretsManagerStore, SinkMode, SqsLogSink, emulator, provision};
use maestro_shared::bootstrap::bootstrap;
use maestro_shared::config::FileConfig;
use maestro_shared::domain::ChatRequest;
use maestro_shared::gateway::{Backends, Caller, Gateway, GatewayOptions};
use maestro_shared::providers::ProviderClient;
use maestro_shared::store::StatsStore;

/// Every AWS request sent, as `Service.Operation` (from the `x-amz-target` header all three
/// services' JSON protocols carry).
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "request recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("unknown").to_string();
        self.0.lock().unwrap().push(target);
        Ok(())
    }
}

impl Recorder {
    /// The requests since the last call, counted by operation.
    fn take(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for target in self.0.lock().unwrap().drain(..) {
            let operation = match target.split_once('.') {
                Some(("DynamoDB_20120810", op)) => format!("DynamoDB {op}"),
                Some(("AmazonSQS", op)) => format!("SQS {op}"),
                Some(("secretsmanager", op)) => format!("SecretsManager {op}"),
                _ => target,
            };
            *counts.entry(operation).or_insert(0) += 1;
        }
        counts
    }
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn hello() -> ChatRequest {
    serde_json::from_value(serde_json::json!({
        "model": "demo/echo",
        "messages": [{"role": "user", "content": "How much does this call cost?"}],
    }))
    .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_warm_container_then_a_chat_call_reads_nothing_and_writes_one_transaction_one_reconcile_and_one_message()
 {
    let Some(endpoint) = emulator::test_endpoint("aws_cost").unwrap_or_else(|m| panic!("{m}")) else { return };
    let sdk = emulator::sdk_config(&endpoint).await;
    let recorder = Recorder::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(recorder.clone()).build(),
    );
    let sqs =
        aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(&sdk).interceptor(recorder.clone()).build());
    let secretsmanager = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&sdk).interceptor(recorder.clone()).build(),
    );
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let table = format!("maestro-cost-{suffix}");
    let done =
        provision::provision(&dynamodb, &sqs, &table, &format!("maestro-logs-{suffix}")).await.expect("provision");

    let prefix = format!("maestro-cost-{suffix}/");
    // Seeded by someone else (an admin, a deploy step): the container below starts cold.
    let seeding =
        (DynamoStore::new(dynamodb.clone(), &table), SecretsManagerStore::new(secretsmanager.clone(), &prefix));
    bootstrap(&seeding.0, &seeding.1, &FileConfig::default(), &|_| None, true).await.expect("bootstrap");

    let dynamo = Arc::new(DynamoStore::new(dynamodb.clone(), &table));
    let secrets = Arc::new(SecretsManagerStore::new(secretsmanager, prefix));
    let sink = Arc::new(SqsLogSink::new(sqs.clone(), &done.log_queue_url, SinkMode::Inline));
    let backends = Backends {
        catalog: dynamo.clone(),
        counters: dynamo.clone(),
        secrets: secrets.clone(),
        log_sink: sink.clone(),
        caller_keys: dynamo.clone(),
    };
    let options =
        GatewayOptions { catalog_ttl: Duration::from_secs(60), allow_demo: true, ..GatewayOptions::default() };
    let gateway = Arc::new(Gateway::new(backends, ProviderClient::new().expect("http client"), options));
    let caller = Caller::user("user-1");
    recorder.take();

    // A cold container: the catalog and the key's secret are read once.
    let outcome = gateway.chat(&caller, hello()).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result.err());
    let cold = recorder.take();
    eprintln!("AWS requests of a chat call, cold container: {cold:?}");
    assert_eq!(cold.get("DynamoDB TransactWriteItems"), Some(&1));
    assert_eq!(cold.get("SecretsManager GetSecretValue"), Some(&1));

    // A warm container: no read at all.
    let outcome = gateway.chat(&caller, hello()).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result.err());
    let warm = recorder.take();
    eprintln!("AWS requests of a chat call, warm container: {warm:?}");
    let reconcile = warm.get("DynamoDB UpdateItem").copied().unwrap_or(0);
    assert!(reconcile <= 2, "the reconcile is one UpdateItem per window: {warm:?}");
    let mut expected = counts(&[("DynamoDB TransactWriteItems", 1), ("SQS SendMessage", 1)]);
    if reconcile > 0 {
        expected.insert("DynamoDB UpdateItem".into(), reconcile);
    }
    assert_eq!(warm, expected);

    // The aggregator: one transaction per event, plus one listing Put per hour and container;
    // one receive and one delete per batch of up to 10.
    let consumer = QueueConsumer::new(sqs.clone(), &done.log_queue_url);
    let mut received = Vec::new();
    for _ in 0..10 {
        received.extend(consumer.receive(1).await.expect("receive"));
        if received.len() >= 2 {
            break;
        }
    }
    assert_eq!(received.len(), 2);
    recorder.take();
    for message in &received {
        let event = serde_json::from_str(&message.body).expect("event");
        assert!(dynamo.record_event(&event).await.expect("record"));
    }
    let aggregated = recorder.take();
    eprintln!("AWS requests of the aggregator for 2 events of one hour: {aggregated:?}");
    // Per event one transaction and one UpdateItem (the key's `last_used_at`); per hour one Put.
    assert_eq!(
        aggregated,
        counts(&[("DynamoDB PutItem", 1), ("DynamoDB TransactWriteItems", 2), ("DynamoDB UpdateItem", 2)])
    );
    // One line for bench/run.py, which copies these counts into bench/RESULTS.md.
    eprintln!("BENCH_AWS_COST {}", serde_json::json!({"cold": cold, "warm": warm, "aggregator_2_events": aggregated}));

    provision::delete_table(&dynamodb, &table).await.expect("delete the table");
}
