//! The DynamoDB store behind a proxy that refuses a share of DynamoDB writes the way a busy
//! DynamoDB does (throttling, 500, transactions cancelled by `ThrottlingError` or
//! `TransactionConflict`; see `support/fault_proxy.rs`), on moto server: reservations stay exact
//! and move on to the next key, events are recorded exactly once, bootstrap gets through.
//!
//! Needs `MAESTRO_TEST_AWS_ENDPOINT` (see `maestro_shared::aws::emulator::test_endpoint`):
//! without it (and `CI` not `true`) each test prints `SKIPPED: moto not running` and returns.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used, reason = "tests")]

use crate::fault_proxy;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fault_proxy::FaultProxy;
use maestro_shared::aws::{DynamoStore, SecretsManagerStore, emulator, provision};
use maestro_shared::bootstrap::bootstrap;
use maestro_shared::config::FileConfig;
use maestro_shared::domain::{ApiKey, KeyLimits, KeyStatus};
use maestro_shared::keys::{KeyPool, Pick, Skip, SkipReason};
use maestro_shared::logs::LogEvent;
use maestro_shared::stats::{StatsQuery, total};
use maestro_shared::store::{CatalogStore, CounterStore, LogQuery, StatsStore, StoreError};

/// A fresh table on moto, a store that reaches it directly (to check what was written) and one
/// that goes through a fault proxy. Deletes the table at the end.
struct Env {
    proxy: FaultProxy,
    direct: DynamoStore,
    faulty: Arc<DynamoStore>,
    endpoint: String,
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current()
            && runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| {
                let _ = runtime.block_on(provision::delete_table(&self.client, &self.table));
            });
        }
    }
}

async fn fresh(test: &str) -> Option<Env> {
    let endpoint = emulator::test_endpoint(test).unwrap_or_else(|message| panic!("{message}"))?;
    let client = aws_sdk_dynamodb::Client::new(&emulator::sdk_config(&endpoint).await);
    let table = format!("maestro-faults-{}", uuid::Uuid::new_v4().simple());
    assert!(provision::create_table(&client, &table).await.expect("create the table"));
    let proxy = FaultProxy::start(&endpoint).await;
    let through_proxy = aws_sdk_dynamodb::Client::new(&emulator::sdk_config(&proxy.url).await);
    Some(Env {
        direct: DynamoStore::new(client.clone(), table.clone()),
        faulty: Arc::new(DynamoStore::new(through_proxy, table.clone())),
        proxy,
        endpoint,
        client,
        table,
    })
}

fn key(id: &str, priority: i64, rpm: Option<u64>) -> ApiKey {
    ApiKey {
        id: id.into(),
        provider: "p".into(),
        name: id.into(),
        secret_ref: id.into(),
        masked: "…".into(),
        priority,
        is_active: true,
        status: KeyStatus::Normal,
        cooldown_until: None,
        limits: KeyLimits { rpm, tpm: None, rpd: None },
    }
}

fn now_ms() -> i64 {
    maestro_shared::time::now_ms()
}

/// Waits for the next minute when less than `needed` is left of this one, so the windows a test
/// fills and then reads are one minute window.
async fn within_one_minute(needed: Duration) {
    let into_minute = Duration::from_millis(u64::try_from(now_ms().rem_euclid(60_000)).unwrap());
    if into_minute + needed > Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(60) - into_minute + Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_reservations_stay_throttled_hands_over_to_the_next_and_unavailable_comes_back_only_when_all_fail()
{
    let Some(env) = fresh("aws_faults_hand_over").await else { return };
    within_one_minute(Duration::from_secs(15)).await;
    let pool = KeyPool::default();
    let keys = vec![key("key-a", 2, Some(10)), key("key-b", 1, Some(10))];

    // Every write to key-a's window items is refused (throttled, 500, cancelled…), however often.
    env.proxy.only_containing(Some("USE#key-a#"));
    env.proxy.fail_share(1.0);
    let now = now_ms();
    let started = Instant::now();
    let mut skipped = Vec::new();
    let picked =
        pool.pick(env.faulty.as_ref(), &keys, now, 10, &HashSet::new(), &mut skipped).await.expect("key-b has room");
    let Pick::Reserved { key, grant } = picked else { panic!("not reserved: {picked:?}") };
    assert_eq!((key.id.as_str(), grant.reserved_tokens), ("key-b", 10));
    assert!(started.elapsed() < Duration::from_secs(3), "bounded retries: {:?}", started.elapsed());
    // The call's attempt log says why key-a was passed over.
    assert_eq!(skipped, [Skip { key_id: "key-a".into(), reason: SkipReason::CountersUnavailable }]);
    assert_eq!(env.proxy.faults_total(), 8, "key-a was tried 8 times: {:?}", env.proxy.faults());
    let (a, _) = env.direct.usage("key-a", now).await.expect("usage");
    let (b, b_day) = env.direct.usage("key-b", now).await.expect("usage");
    // rpm only: the minute counts requests; the day, without a limit, nothing.
    assert_eq!((a.requests, b.requests, b.tokens, b_day.requests), (0, 1, 0, 0));

    // Every write refused: the store's error, typed as unavailable.
    env.proxy.only_containing(None);
    let result = pool.pick(env.faulty.as_ref(), &keys, now, 10, &HashSet::new(), &mut Vec::new()).await;
    assert!(matches!(&result, Err(StoreError::Unavailable(m)) if m.contains("reserve in a window")), "{result:?}");
    let (b, _) = env.direct.usage("key-b", now).await.expect("usage");
    assert_eq!(b.requests, 1, "nothing was counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reservations_through_30_percent_throttled_writes_all_pass_and_the_counts_are_exact() {
    let Some(env) = fresh("aws_faults_reservations").await else { return };
    within_one_minute(Duration::from_secs(30)).await;
    env.proxy.fail_share(0.3);
    let store = env.faulty.clone();
    let pool = Arc::new(KeyPool::default());
    let keys = Arc::new(vec![key("key-a", 2, Some(40)), key("key-b", 1, Some(1_000))]);
    let now = now_ms();
    let mut tasks = Vec::new();
    for _ in 0..150 {
        let (store, pool, keys) = (store.clone(), pool.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            pool.pick(store.as_ref(), &keys, now, 7, &HashSet::new(), &mut Vec::new()).await
        }));
    }
    let mut on = std::collections::BTreeMap::<String, u64>::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(Pick::Reserved { key, .. }) => *on.entry(key.id).or_default() += 1,
            other => panic!("a key had room, yet: {other:?}"),
        }
    }
    assert_eq!(on.get("key-a"), Some(&40), "{on:?}");
    assert_eq!(on.get("key-b"), Some(&110), "{on:?}");
    let (a, a_day) = env.direct.usage("key-a", now).await.expect("usage");
    let (b, b_day) = env.direct.usage("key-b", now).await.expect("usage");
    assert_eq!((a.requests, a_day.requests), (40, 0), "never over rpm, nothing lost");
    assert_eq!((b.requests, b_day.requests), (110, 0));
    let faults = env.proxy.faults();
    assert!(env.proxy.faults_total() >= 30, "faults were injected: {faults:?}");
    assert!(faults.contains_key("ThrottlingException"), "{faults:?}");
}

fn event(request_id: &str, ts_ms: i64) -> LogEvent {
    LogEvent {
        provider: "p".into(),
        model: "m".into(),
        key_id: Some("key-a".into()),
        prompt_tokens: 10,
        completion_tokens: 5,
        cached_tokens: 0,
        cost_micros: 3,
        latency_ms: 100,
        ttfb_ms: None,
        ..LogEvent::sample(request_id, ts_ms)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recorded_through_30_percent_throttled_writes_count_once_even_when_delivered_twice() {
    let Some(env) = fresh("aws_faults_events").await else { return };
    env.proxy.fail_share(0.3);
    let store = env.faulty.clone();
    let ts = 1_795_000_000_000;
    let record_all = |expect_new: bool| {
        let store = store.clone();
        async move {
            let mut tasks = Vec::new();
            for i in 0..100 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    // The store's own retries (8 tries) almost always get through; when they do
                    // not, the aggregator leaves the message to SQS, which delivers it again: the
                    // same here, a few times, so the test is not a lottery on 0.3^8 per write.
                    let e = event(&format!("req-{i}"), ts + i);
                    let mut redeliveries = 0;
                    loop {
                        match store.record_event(&e).await {
                            Err(StoreError::Unavailable(_)) if redeliveries < 5 => redeliveries += 1,
                            other => return other,
                        }
                    }
                }));
            }
            for task in tasks {
                assert_eq!(task.await.expect("task").expect("recorded despite the faults"), expect_new);
            }
        }
    };
    record_all(true).await;
    record_all(false).await;

    let day = StatsQuery { from_date: "2026-11-18".into(), to_date: "2026-11-18".into(), ..StatsQuery::default() };
    let counted = total(&env.direct.stats_rows(&day).await.expect("stats"));
    assert_eq!((counted.requests, counted.prompt_tokens, counted.cost_micros), (100, 1_000, 300));
    let logs = env.direct.logs(&LogQuery { limit: 500, ..LogQuery::default() }).await.expect("logs");
    let ids: HashSet<_> = logs.iter().map(|l| l.request_id.clone()).collect();
    assert_eq!((logs.len(), ids.len()), (100, 100));
    assert!(env.proxy.faults_total() >= 30, "faults were injected: {:?}", env.proxy.faults());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_gets_through_throttled_writes_and_an_outage_longer_than_the_store_retries() {
    let Some(env) = fresh("aws_faults_bootstrap").await else { return };
    let sdk = emulator::sdk_config(&env.endpoint).await;
    let secrets = SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        format!("maestro-faults-{}/", uuid::Uuid::new_v4().simple()),
    );
    let config = FileConfig::parse(
        r#"
[[providers]]
code = "acme"
kind = "openai_compatible"
base_url = "http://127.0.0.1:9"

[[models]]
provider = "acme"
model = "m1"
input_price = 1
output_price = 2

[[keys]]
provider = "acme"
name = "main"
secret = "sk-acme-0123456789"
rpm = 60
"#,
    )
    .expect("config");
    // The first 20 writes all fail (the store alone gives up after 8), then 30% of them.
    env.proxy.fail_next(20);
    env.proxy.fail_share(0.3);
    let started = Instant::now();
    let report = bootstrap(env.faulty.as_ref(), &secrets, &config, &maestro_shared::config::Env::from_pairs(&[]), true)
        .await
        .expect("bootstrap");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(report.seeded);
    assert!(env.proxy.faults_total() >= 20, "{:?}", env.proxy.faults());

    let catalog = env.direct.load_catalog().await.expect("catalog");
    for code in ["openai", "anthropic", "deepseek", "acme", "demo"] {
        assert!(catalog.provider(code).is_some(), "provider {code}");
    }
    assert!(catalog.key("acme-main").is_some_and(|k| k.limits.rpm == Some(60)));
    assert!(catalog.key("demo-key").is_some());
    assert!(catalog.provider("acme").is_some_and(|p| p.models.iter().any(|m| m.model == "m1")));
    let seeded = catalog.provider("openai").map_or(0, |p| p.models.len());
    assert!(seeded >= 3, "the seed's models are all there: {seeded}");
}
