//! The store conformance suite (see `conformance/`) against the AWS backend on moto server:
//! DynamoDB for the catalog, counters and stats (a fresh table per test), Secrets Manager for
//! secrets (a fresh name prefix per test); plus what only the AWS backend promises.
//!
//! Needs `MAESTRO_TEST_AWS_ENDPOINT` (e.g. `http://127.0.0.1:5599`, started by `infra/moto.sh`).
//! Without it, and `CI` not `true`, every test prints a loud `SKIPPED: moto not running` and
//! runs against an in-memory embedded store instead (the shared macro has no early return), so
//! nothing about AWS is checked; with `CI=true` an unreachable emulator fails every test.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used, reason = "tests")]

use crate::conformance;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use maestro_shared::aws::{DynamoStore, SecretsManagerStore, emulator, provision};
use maestro_shared::domain::{ApiKey, Catalog, KeyLimits, KeyStatus, Model, Prices, Provider, ProviderKind, Route};
use maestro_shared::logs::LogEvent;
use maestro_shared::secret::SecretString;
use maestro_shared::stats::{CallerKeyRow, CallerRow, StatsQuery, StatsRow};
use maestro_shared::store::embedded::EmbeddedStore;
use maestro_shared::store::{
    AdminCatalog, AlertRecord, AlertRecordKind, AlertStore, BudgetLimits, BudgetUsage, CachedAnswer, CallerKey,
    CallerKeyStore, CatalogAdminStore, CatalogStore, CounterStore, CreditAccount, CreditStore, Grant, LedgerEntry,
    LogQuery, Reservation, ResponseCacheStore, SecretStore, Settlement, StatsStore, StoreError, TopUp, WindowKind,
    WindowUsage,
};

use conformance::{at, event};

/// The AWS stores behind one value, as the suite wants; or the embedded stand-in when skipped.
enum TestStore {
    Aws { dynamo: DynamoStore, secrets: SecretsManagerStore },
    Skipped(EmbeddedStore),
}

/// Deletes the test's table when the test ends (moto keeps everything in memory).
struct Guard {
    table: Option<(aws_sdk_dynamodb::Client, String)>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some((client, table)) = self.table.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
            && runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| {
                let _ = runtime.block_on(provision::delete_table(&client, &table));
            });
        }
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The emulator's endpoint, `None` when the test is skipped; panics (fails) when an emulator is
/// expected but does not answer.
fn endpoint(test: &str) -> Option<String> {
    emulator::test_endpoint(test).unwrap_or_else(|message| panic!("{message}"))
}

/// A fresh table (created like `maestro init-aws` does) and a fresh secret prefix.
async fn aws_stores(endpoint: &str) -> (Guard, DynamoStore, SecretsManagerStore) {
    let sdk = emulator::sdk_config(endpoint).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique("maestro-test");
    assert!(provision::create_table(&client, &table).await.expect("create the table"), "a new table");
    let dynamo = DynamoStore::new(client.clone(), table.clone());
    let secrets =
        SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(&sdk), format!("{}/", unique("maestro-test")));
    (Guard { table: Some((client, table)) }, dynamo, secrets)
}

async fn fresh_store() -> (Guard, Arc<TestStore>) {
    match endpoint("aws_conformance (the suite runs on an in-memory embedded store instead, checking nothing of AWS)") {
        Some(endpoint) => {
            let (guard, dynamo, secrets) = aws_stores(&endpoint).await;
            (guard, Arc::new(TestStore::Aws { dynamo, secrets }))
        }
        None => {
            let store = EmbeddedStore::open_in_memory().expect("embedded stand-in");
            (Guard { table: None }, Arc::new(TestStore::Skipped(store)))
        }
    }
}

conformance_suite!(crate::aws_conformance::fresh_store);

/// Forwards one trait method to whichever store the test has.
macro_rules! forward {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            TestStore::Aws { dynamo: $store, .. } => $call,
            TestStore::Skipped($store) => $call,
        }
    };
}

#[async_trait]
impl CatalogStore for TestStore {
    async fn load_catalog(&self) -> Result<Catalog, StoreError> {
        forward!(self, s => s.load_catalog().await)
    }
    async fn is_empty(&self) -> Result<bool, StoreError> {
        forward!(self, s => s.is_empty().await)
    }
    async fn upsert_provider(&self, provider: &Provider) -> Result<(), StoreError> {
        forward!(self, s => s.upsert_provider(provider).await)
    }
    async fn upsert_model(&self, model: &Model) -> Result<(), StoreError> {
        forward!(self, s => s.upsert_model(model).await)
    }
    async fn insert_model_if_absent(&self, model: &Model) -> Result<bool, StoreError> {
        forward!(self, s => s.insert_model_if_absent(model).await)
    }
    async fn upsert_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        forward!(self, s => s.upsert_key(key).await)
    }
    async fn delete_key(&self, key_id: &str) -> Result<(), StoreError> {
        forward!(self, s => s.delete_key(key_id).await)
    }
    async fn upsert_route(&self, route: &Route) -> Result<(), StoreError> {
        forward!(self, s => s.upsert_route(route).await)
    }
    async fn set_key_status(&self, key_id: &str, status: KeyStatus, until: Option<i64>) -> Result<(), StoreError> {
        forward!(self, s => s.set_key_status(key_id, status, until).await)
    }
    async fn note_key_error(&self, key_id: &str, message: &str, at_ms: i64) -> Result<(), StoreError> {
        forward!(self, s => s.note_key_error(key_id, message, at_ms).await)
    }
}

#[async_trait]
impl CatalogAdminStore for TestStore {
    async fn load_admin_catalog(&self) -> Result<AdminCatalog, StoreError> {
        forward!(self, s => s.load_admin_catalog().await)
    }
    async fn create_provider(&self, provider: &Provider, description: Option<&str>) -> Result<u64, StoreError> {
        forward!(self, s => s.create_provider(provider, description).await)
    }
    async fn update_provider(&self, provider: &Provider, description: Option<&str>, v: u64) -> Result<u64, StoreError> {
        forward!(self, s => s.update_provider(provider, description, v).await)
    }
    async fn create_model_if_absent(&self, model: &Model, name: Option<&str>) -> Result<bool, StoreError> {
        forward!(self, s => s.create_model_if_absent(model, name).await)
    }
    async fn update_model(&self, model: &Model, name: Option<&str>, v: u64) -> Result<u64, StoreError> {
        forward!(self, s => s.update_model(model, name, v).await)
    }
    async fn create_key(&self, key: &ApiKey) -> Result<u64, StoreError> {
        forward!(self, s => s.create_key(key).await)
    }
    async fn update_key(&self, key: &ApiKey, v: u64) -> Result<u64, StoreError> {
        forward!(self, s => s.update_key(key, v).await)
    }
    async fn delete_key_versioned(&self, key_id: &str, v: Option<u64>) -> Result<(), StoreError> {
        forward!(self, s => s.delete_key_versioned(key_id, v).await)
    }
    async fn delete_provider(&self, code: &str, v: Option<u64>) -> Result<usize, StoreError> {
        forward!(self, s => s.delete_provider(code, v).await)
    }
    async fn create_route(&self, route: &Route) -> Result<u64, StoreError> {
        forward!(self, s => s.create_route(route).await)
    }
    async fn update_route(&self, route: &Route, v: u64) -> Result<u64, StoreError> {
        forward!(self, s => s.update_route(route, v).await)
    }
    async fn delete_route(&self, name: &str, v: Option<u64>) -> Result<(), StoreError> {
        forward!(self, s => s.delete_route(name, v).await)
    }
}

#[async_trait]
impl CounterStore for TestStore {
    async fn reserve(
        &self,
        key_id: &str,
        limits: &KeyLimits,
        now_ms: i64,
        tokens: u64,
    ) -> Result<Reservation, StoreError> {
        forward!(self, s => s.reserve(key_id, limits, now_ms, tokens).await)
    }
    async fn reconcile(&self, grant: &Grant, delta: i64) -> Result<(), StoreError> {
        forward!(self, s => s.reconcile(grant, delta).await)
    }
    async fn usage(&self, key_id: &str, now_ms: i64) -> Result<(WindowUsage, WindowUsage), StoreError> {
        forward!(self, s => s.usage(key_id, now_ms).await)
    }
    async fn reserve_budget(
        &self,
        key_id: &str,
        limits: &BudgetLimits,
        now_ms: i64,
        tokens: u64,
        cost_micros: u64,
    ) -> Result<Reservation, StoreError> {
        forward!(self, s => s.reserve_budget(key_id, limits, now_ms, tokens, cost_micros).await)
    }
    async fn reconcile_budget(&self, grant: &Grant, tokens_delta: i64, cost_delta: i64) -> Result<(), StoreError> {
        forward!(self, s => s.reconcile_budget(grant, tokens_delta, cost_delta).await)
    }
    async fn budget_usage(&self, key_id: &str, now_ms: i64) -> Result<BudgetUsage, StoreError> {
        forward!(self, s => s.budget_usage(key_id, now_ms).await)
    }
}

#[async_trait]
impl CallerKeyStore for TestStore {
    async fn create_caller_key(&self, key: &CallerKey) -> Result<(), StoreError> {
        forward!(self, s => s.create_caller_key(key).await)
    }
    async fn caller_key_by_hash(&self, key_hash: &str) -> Result<Option<CallerKey>, StoreError> {
        forward!(self, s => s.caller_key_by_hash(key_hash).await)
    }
    async fn list_caller_keys(&self) -> Result<Vec<CallerKey>, StoreError> {
        forward!(self, s => s.list_caller_keys().await)
    }
    async fn revoke_caller_key(&self, id: &str, at_ms: i64) -> Result<CallerKey, StoreError> {
        forward!(self, s => s.revoke_caller_key(id, at_ms).await)
    }
}

#[async_trait]
impl CreditStore for TestStore {
    async fn top_up(&self, t: &TopUp<'_>) -> Result<LedgerEntry, StoreError> {
        forward!(self, s => s.top_up(t).await)
    }
    async fn credit_account(&self, user_id: &str) -> Result<CreditAccount, StoreError> {
        forward!(self, s => s.credit_account(user_id).await)
    }
    async fn hold_credits(&self, user_id: &str, amount_micros: i64) -> Result<bool, StoreError> {
        forward!(self, s => s.hold_credits(user_id, amount_micros).await)
    }
    async fn settle_credits(&self, settlement: &Settlement<'_>) -> Result<(), StoreError> {
        forward!(self, s => s.settle_credits(settlement).await)
    }
    async fn credit_ledger(
        &self,
        user_id: &str,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        forward!(self, s => s.credit_ledger(user_id, before.clone(), limit).await)
    }
}

#[async_trait]
impl ResponseCacheStore for TestStore {
    async fn get_answer(&self, key: &str, now_ms: i64) -> Result<Option<CachedAnswer>, StoreError> {
        forward!(self, s => s.get_answer(key, now_ms).await)
    }
    async fn put_answer(&self, key: &str, answer: &CachedAnswer) -> Result<(), StoreError> {
        forward!(self, s => s.put_answer(key, answer).await)
    }
}

#[async_trait]
impl StatsStore for TestStore {
    async fn record_event(&self, event: &LogEvent) -> Result<bool, StoreError> {
        forward!(self, s => s.record_event(event).await)
    }
    async fn stats_rows(&self, query: &StatsQuery) -> Result<Vec<StatsRow>, StoreError> {
        forward!(self, s => s.stats_rows(query).await)
    }
    async fn logs(&self, query: &LogQuery) -> Result<Vec<LogEvent>, StoreError> {
        forward!(self, s => s.logs(query).await)
    }
    async fn minute_rows(&self, from_ms: i64, to_ms: i64) -> Result<Vec<StatsRow>, StoreError> {
        forward!(self, s => s.minute_rows(from_ms, to_ms).await)
    }
    async fn caller_rows(
        &self,
        from_date: &str,
        to_date: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<CallerRow>, StoreError> {
        forward!(self, s => s.caller_rows(from_date, to_date, user_id).await)
    }
    async fn caller_key_rows(&self, from_date: &str, to_date: &str) -> Result<Vec<CallerKeyRow>, StoreError> {
        forward!(self, s => s.caller_key_rows(from_date, to_date).await)
    }
}

#[async_trait]
impl AlertStore for TestStore {
    async fn alert_records(&self, kind: AlertRecordKind) -> Result<Vec<AlertRecord>, StoreError> {
        forward!(self, s => s.alert_records(kind).await)
    }
    async fn put_alert_record(
        &self,
        kind: AlertRecordKind,
        name: &str,
        body: &str,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        forward!(self, s => s.put_alert_record(kind, name, body, expected).await)
    }
    async fn delete_alert_record(
        &self,
        kind: AlertRecordKind,
        name: &str,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        forward!(self, s => s.delete_alert_record(kind, name, expected).await)
    }
    async fn append_alert_history(&self, ts_ms: i64, id: &str, body: &str) -> Result<(), StoreError> {
        forward!(self, s => s.append_alert_history(ts_ms, id, body).await)
    }
    async fn alert_history(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        forward!(self, s => s.alert_history(limit).await)
    }
    async fn acquire_alert_lease(&self, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool, StoreError> {
        forward!(self, s => s.acquire_alert_lease(holder, now_ms, ttl_ms).await)
    }
}

#[async_trait]
impl SecretStore for TestStore {
    async fn get_secret(&self, secret_ref: &str) -> Result<SecretString, StoreError> {
        match self {
            TestStore::Aws { secrets, .. } => secrets.get_secret(secret_ref).await,
            TestStore::Skipped(s) => s.get_secret(secret_ref).await,
        }
    }
    async fn put_secret(&self, secret_ref: &str, value: &SecretString) -> Result<(), StoreError> {
        match self {
            TestStore::Aws { secrets, .. } => secrets.put_secret(secret_ref, value).await,
            TestStore::Skipped(s) => s.put_secret(secret_ref, value).await,
        }
    }
    async fn delete_secret(&self, secret_ref: &str) -> Result<(), StoreError> {
        match self {
            TestStore::Aws { secrets, .. } => secrets.delete_secret(secret_ref).await,
            TestStore::Skipped(s) => s.delete_secret(secret_ref).await,
        }
    }
}

// ---- What only the AWS backend promises -------------------------------------------------------

/// The AWS stores for an AWS-only test, or `None` (after the loud SKIPPED line) when skipped.
async fn aws_only(test: &str) -> Option<(Guard, DynamoStore, SecretsManagerStore)> {
    let endpoint = endpoint(test)?;
    Some(aws_stores(&endpoint).await)
}

fn provider(code: &str) -> Provider {
    Provider {
        code: code.into(),
        kind: ProviderKind::OpenaiCompatible,
        name: code.into(),
        base_url: format!("https://{code}.example/v1"),
        headers: Default::default(),
        is_active: true,
        sort_order: 1,
    }
}

fn api_key(id: &str, provider: &str) -> ApiKey {
    ApiKey {
        id: id.into(),
        provider: provider.into(),
        name: id.into(),
        secret_ref: format!("maestro/keys/{id}"),
        masked: "sk-…abcd".into(),
        priority: 0,
        is_active: true,
        status: KeyStatus::Normal,
        cooldown_until: None,
        limits: KeyLimits::default(),
    }
}

async fn raw_item(
    dynamo: &DynamoStore,
    pk: &str,
    sk: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    dynamo
        .client()
        .get_item()
        .table_name(dynamo.table())
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get_item")
        .item()
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_no_such_provider_when_a_model_or_key_is_written_then_it_is_not_found_and_nothing_is_written() {
    let Some((_guard, dynamo, _)) = aws_only("aws_no_such_provider").await else { return };
    let result = dynamo.upsert_key(&api_key("key-1", "ghost")).await;
    assert!(matches!(&result, Err(StoreError::NotFound(m)) if m.contains("ghost")), "{result:?}");
    let model = Model {
        provider: "ghost".into(),
        model: "m".into(),
        model_type: "chat".into(),
        context_window: None,
        max_output_tokens: None,
        supports_streaming: true,
        supports_tools: false,
        supports_vision: false,
        prices: Prices::default(),
        is_active: true,
        is_default: false,
        drop_params: false,
        created: 0,
        cache: Default::default(),
    };
    assert!(matches!(dynamo.upsert_model(&model).await, Err(StoreError::NotFound(_))));
    assert!(matches!(dynamo.insert_model_if_absent(&model).await, Err(StoreError::NotFound(_))));
    assert!(raw_item(&dynamo, "KEYREF#key-1", "META").await.is_none(), "the transaction wrote nothing");
    assert!(dynamo.is_empty().await.expect("is_empty"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_key_moved_to_another_provider_then_it_is_listed_only_there_and_its_reference_follows() {
    let Some((_guard, dynamo, _)) = aws_only("aws_key_moves").await else { return };
    for code in ["a", "b"] {
        dynamo.upsert_provider(&provider(code)).await.expect("provider");
    }
    dynamo.upsert_key(&api_key("key-1", "a")).await.expect("key under a");
    dynamo.upsert_key(&api_key("key-1", "b")).await.expect("key moved to b");

    let catalog = dynamo.load_catalog().await.expect("catalog");
    assert!(catalog.provider("a").expect("a").keys.is_empty());
    assert_eq!(catalog.provider("b").expect("b").keys, [api_key("key-1", "b")]);
    assert!(raw_item(&dynamo, "PROVIDER#a", "KEY#key-1").await.is_none());
    let reference = raw_item(&dynamo, "KEYREF#key-1", "META").await.expect("reference");
    assert_eq!(reference["provider"], AttributeValue::S("b".into()));

    dynamo.set_key_status("key-1", KeyStatus::Invalid, None).await.expect("status through the reference");
    dynamo.delete_key("key-1").await.expect("delete");
    assert!(raw_item(&dynamo, "KEYREF#key-1", "META").await.is_none(), "the reference goes with the key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_window_and_log_items_then_they_carry_their_ttl_in_epoch_seconds() {
    let Some((_guard, dynamo, _)) = aws_only("aws_ttl").await else { return };
    let t = at("2026-11-26T06:14:10Z");
    let limits = KeyLimits { rpm: Some(10), tpm: None, rpd: Some(50) };
    assert!(matches!(dynamo.reserve("key-1", &limits, t, 5).await.expect("reserve"), Reservation::Granted(_)));
    assert!(dynamo.record_event(&event("req-ttl", t)).await.expect("record"));

    let ttl = |item: &std::collections::HashMap<String, AttributeValue>| -> i64 {
        match &item["expires_at"] {
            AttributeValue::N(n) => n.parse().expect("number"),
            other => panic!("expires_at is {other:?}"),
        }
    };
    let minute = raw_item(&dynamo, "USE#key-1#M#202611260614", "-").await.expect("minute item");
    assert_eq!(ttl(&minute), at("2026-11-26T06:25:00Z") / 1000, "window end + 10 minutes");
    let day = raw_item(&dynamo, "USE#key-1#D#20261126", "-").await.expect("day item");
    assert_eq!(ttl(&day), at("2026-11-29T00:00:00Z") / 1000, "window end + 2 days");
    let sk = format!("{t:013}#req-ttl");
    let (pk, log) = sharded_log(&dynamo, "2026-11-26T06", &sk).await.expect("log item");
    assert_eq!(ttl(&log), t / 1000 + 90 * 86_400);
    let shard = pk.rsplit('#').next().expect("shard");
    assert_eq!(log["gsi2pk"], AttributeValue::S(format!("PROVIDERLOG#openai#{shard}")), "the same shard");
    assert!(raw_item(&dynamo, "LOG#2026-11-26T06", &sk).await.is_none(), "not in the unsharded partition");
    let stats = raw_item(&dynamo, "STAT#2026-11-26", "P#openai#M#gpt-4o-mini#K#key-1").await.expect("stats item");
    assert_eq!(ttl(&stats), t / 1000 + 365 * 86_400);
    assert!(raw_item(&dynamo, "REQ#req-ttl", "-").await.is_none(), "the log is its own guard");
    assert!(raw_item(&dynamo, "LOGHOURS", "2026-11-26T06").await.is_some(), "the hour is listed");
}

/// The log item with sort key `sk` in one of the hour's 16 shards, with its pk; there must be
/// at most one.
async fn sharded_log(
    dynamo: &DynamoStore,
    hour: &str,
    sk: &str,
) -> Option<(String, std::collections::HashMap<String, AttributeValue>)> {
    let mut found = Vec::new();
    for shard in 0..16 {
        let pk = format!("LOG#{hour}#{shard:02}");
        if let Some(item) = raw_item(dynamo, &pk, sk).await {
            found.push((pk, item));
        }
    }
    assert!(found.len() <= 1, "one log in one shard: {:?}", found.iter().map(|(pk, _)| pk).collect::<Vec<_>>());
    found.pop()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_logs_written_before_the_sharding_then_every_read_still_finds_them_once() {
    let Some((_guard, dynamo, _)) = aws_only("aws_legacy_logs").await else { return };
    let t = at("2026-11-26T06:00:00Z");
    for (id, ts) in [("req-old", t + 1_000), ("req-a", t), ("req-b", t + 2_000), ("req-c", t + 3_600_000)] {
        assert!(dynamo.record_event(&event(id, ts)).await.expect("record"));
    }
    // Move req-old's log to where it was written before the sharding: `LOG#<hour>`, indexed
    // under `PROVIDERLOG#<provider>`.
    let sk = format!("{:013}#req-old", t + 1_000);
    let (pk, mut item) = sharded_log(&dynamo, "2026-11-26T06", &sk).await.expect("log item");
    let client = dynamo.client();
    let key = |pk: &str| {
        std::collections::HashMap::from([
            ("pk".to_string(), AttributeValue::S(pk.into())),
            ("sk".to_string(), AttributeValue::S(sk.clone())),
        ])
    };
    client.delete_item().table_name(dynamo.table()).set_key(Some(key(&pk))).send().await.expect("delete");
    item.insert("pk".into(), AttributeValue::S("LOG#2026-11-26T06".into()));
    item.insert("gsi2pk".into(), AttributeValue::S("PROVIDERLOG#openai".into()));
    client.put_item().table_name(dynamo.table()).set_item(Some(item)).send().await.expect("legacy put");

    let ids = |events: Vec<LogEvent>| events.into_iter().map(|e| e.request_id).collect::<Vec<_>>();
    let expected = ["req-c", "req-b", "req-old", "req-a"];
    assert_eq!(ids(dynamo.logs(&LogQuery::default()).await.expect("logs")), expected);
    let openai = LogQuery { provider: Some("openai".into()), ..LogQuery::default() };
    assert_eq!(ids(dynamo.logs(&openai).await.expect("by provider")), expected);
    let one = LogQuery { request_id: Some("req-old".into()), ..LogQuery::default() };
    assert_eq!(dynamo.logs(&one).await.expect("by id"), [event("req-old", t + 1_000)]);
    for first in [LogQuery::default(), openai] {
        let mut query = LogQuery { limit: 1, ..first };
        let mut seen = Vec::new();
        while let Some(last) = dynamo.logs(&query).await.expect("page").pop() {
            query.before = Some((last.ts_ms, last.request_id.clone()));
            seen.push(last.request_id);
        }
        assert_eq!(seen, expected, "pages of one, the legacy log in its place");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_logs_older_than_a_week_then_an_unfiltered_query_still_finds_them_newest_first() {
    let Some((_guard, dynamo, _)) = aws_only("aws_old_logs").await else { return };
    let old = at("2026-01-02T03:04:05Z");
    let new = at("2026-11-26T06:00:00Z");
    for (id, ts) in [("old", old), ("new", new), ("older", old - 86_400_000 * 30)] {
        assert!(dynamo.record_event(&event(id, ts)).await.expect("record"));
    }
    let all = dynamo.logs(&LogQuery::default()).await.expect("logs");
    let ids: Vec<&str> = all.iter().map(|e| e.request_id.as_str()).collect();
    assert_eq!(ids, ["new", "old", "older"]);
    let before = LogQuery { to_ms: Some(new), limit: 1, ..LogQuery::default() };
    assert_eq!(dynamo.logs(&before).await.expect("logs")[0].request_id, "old");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_key_refused_by_rpm_then_later_refusals_in_that_minute_come_from_memory_and_a_new_limit_is_seen() {
    let Some((_guard, dynamo, _)) = aws_only("aws_full_window_memory").await else { return };
    let t = at("2026-11-26T06:14:10Z");
    let one = KeyLimits { rpm: Some(1), tpm: None, rpd: None };
    assert!(matches!(dynamo.reserve("key-1", &one, t, 1).await.expect("first"), Reservation::Granted(_)));
    let refused = Reservation::Refused { window: WindowKind::Minute, until_ms: at("2026-11-26T06:15:00Z") };
    assert_eq!(dynamo.reserve("key-1", &one, t + 1, 1).await.expect("second"), refused);
    // Someone else's writes cannot make a full minute less full: memory may answer.
    assert_eq!(dynamo.reserve("key-1", &one, t + 2, 1).await.expect("third"), refused);
    assert_eq!(dynamo.usage("key-1", t).await.expect("usage").0, WindowUsage { requests: 1, tokens: 0 });
    // A raised limit is a different window identity: DynamoDB decides again.
    let two = KeyLimits { rpm: Some(2), ..one };
    assert!(matches!(dynamo.reserve("key-1", &two, t + 3, 1).await.expect("raised"), Reservation::Granted(_)));
    // The next minute starts empty.
    assert!(matches!(
        dynamo.reserve("key-1", &one, t + 60_000, 1).await.expect("next minute"),
        Reservation::Granted(_)
    ));
}

/// Everything `tracing` writes, at every level and from every target (the SDK's too).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Current-thread runtime: the thread-local subscriber sees the SDK's own tasks too.
#[tokio::test]
async fn given_secrets_manager_when_a_secret_is_created_read_rotated_and_deleted_then_its_value_is_in_no_log_line_or_error()
 {
    let Some(endpoint) = endpoint("aws_secret_round_trip") else { return };
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let sdk = emulator::sdk_config(&endpoint).await;
    let prefix = format!("{}/", unique("maestro-test"));
    let first = "sk-live-FIRST-c0ffee0123456789abcdef";
    let second = "sk-live-SECOND-deadbeef9876543210fedc";
    let store = SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(&sdk), prefix.clone());
    // Another container with no cache, to see what Secrets Manager itself holds.
    let other = SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(&sdk), prefix.clone())
        .with_cache_ttl(Duration::ZERO);
    let mut errors = Vec::new();

    assert_eq!(store.secret_id("key-1"), format!("{prefix}key-1"));
    store.put_secret("key-1", &SecretString::new(first)).await.expect("create");
    assert_eq!(other.get_secret("key-1").await.expect("read").expose(), first);
    store.put_secret("key-1", &SecretString::new(second)).await.expect("rotate");
    assert_eq!(store.get_secret("key-1").await.expect("read own rotation").expose(), second);
    assert_eq!(other.get_secret("key-1").await.expect("read rotated").expose(), second);

    // A rotation made elsewhere reaches a caching container only after its TTL.
    other.put_secret("key-1", &SecretString::new(first)).await.expect("rotate elsewhere");
    assert_eq!(store.get_secret("key-1").await.expect("cached").expose(), second);

    store.delete_secret("key-1").await.expect("delete");
    let gone = other.get_secret("key-1").await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    errors.push(format!("{gone:?}"));
    store.delete_secret("key-1").await.expect("delete again");
    let missing = store.get_secret("key-1").await;
    errors.push(format!("{missing:?} {}", missing.as_ref().err().map(ToString::to_string).unwrap_or_default()));

    // A failing call: a secret name Secrets Manager refuses.
    let refused = store.put_secret("bad name ~ with spaces?*", &SecretString::new(first)).await;
    if let Err(e) = &refused {
        errors.push(format!("{e:?} {e}"));
    }
    // A Debug of the store and of the values shows no value either.
    errors.push(format!("{store:?} {:?}", SecretString::new(second)));

    let logs = captured.text();
    assert!(logs.lines().count() > 10, "the SDK's trace lines were captured:\n{logs}");
    for value in [first, second] {
        assert!(!logs.contains(value), "a log line holds a secret value");
        for error in &errors {
            assert!(!error.contains(value), "an error holds a secret value: {error}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_provisioned_table_then_it_has_both_log_indexes_ttl_and_on_demand_billing() {
    let Some((_guard, dynamo, _)) = aws_only("aws_table_definition").await else { return };
    let table = dynamo.client().describe_table().table_name(dynamo.table()).send().await.expect("describe");
    let table = table.table().expect("table");
    let mut indexes: Vec<&str> = table.global_secondary_indexes().iter().filter_map(|i| i.index_name()).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [provision::GSI_USER, provision::GSI_PROVIDER]);
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
    );
    let ttl = dynamo.client().describe_time_to_live().table_name(dynamo.table()).send().await.expect("ttl");
    let ttl = ttl.time_to_live_description().expect("ttl description");
    assert_eq!(ttl.attribute_name(), Some(provision::TTL_ATTRIBUTE));
    // Creating it again finds it and changes nothing.
    assert!(!provision::create_table(dynamo.client(), dynamo.table()).await.expect("again"));
    let _ = std::io::stderr().flush();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_legacy_roll_up_summary_in_a_days_partition_then_the_stats_rows_leave_it_out() {
    let Some((_guard, dynamo, _)) = aws_only("aws_legacy_summary").await else { return };
    let t = at("2026-11-26T06:14:10Z");
    assert!(dynamo.record_event(&event("req-1", t)).await.expect("record"));
    // What earlier versions' roll-up wrote next to the day's stats rows.
    let summary = std::collections::HashMap::from([
        ("pk".to_string(), AttributeValue::S("STAT#2026-11-26".into())),
        ("sk".to_string(), AttributeValue::S("SUM#ALL".into())),
        ("entity".to_string(), AttributeValue::S("summary".into())),
        ("date".to_string(), AttributeValue::S("2026-11-26".into())),
        ("provider".to_string(), AttributeValue::S("ALL".into())),
        ("requests".to_string(), AttributeValue::N("7".into())),
    ]);
    dynamo.client().put_item().table_name(dynamo.table()).set_item(Some(summary)).send().await.expect("legacy put");

    let day = StatsQuery { from_date: "2026-11-26".into(), to_date: "2026-11-26".into(), ..StatsQuery::default() };
    let rows = dynamo.stats_rows(&day).await.expect("rows");
    assert_eq!(rows.len(), 1, "a summary is not a stats row");
    assert_eq!(rows[0].counters.requests, 1);
}

/// A stats item written before the latency buckets were refined holds `h0`…`h11` (bounds 100 ms
/// … 120 s and the rest): it keeps counting, its old counts read into the buckets with the same
/// bounds, and new calls add to the new attributes of the same item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_stats_item_with_the_legacy_latency_buckets_when_new_calls_add_to_it_then_the_histogram_merges_exactly()
{
    let Some((_guard, dynamo, _)) = aws_only("aws_legacy_latency_buckets").await else { return };
    let (pk, sk) = ("STAT#2026-11-26", "P#openai#M#gpt-4o-mini#K#key-1");
    let number = |v: u64| AttributeValue::N(v.to_string());
    let mut legacy = std::collections::HashMap::from([
        ("pk".to_string(), AttributeValue::S(pk.into())),
        ("sk".to_string(), AttributeValue::S(sk.into())),
        ("date".to_string(), AttributeValue::S("2026-11-26".into())),
        ("provider".to_string(), AttributeValue::S("openai".into())),
        ("model".to_string(), AttributeValue::S("gpt-4o-mini".into())),
        ("key_id".to_string(), AttributeValue::S("key-1".into())),
        ("requests".to_string(), number(10)),
        ("successes".to_string(), number(10)),
        ("latency_ms_sum".to_string(), number(50_000)),
    ]);
    // 4 calls up to 100 ms, 3 up to 500 ms, 2 up to 2 s, 1 past 120 s.
    for (bucket, count) in [(0, 4), (2, 3), (4, 2), (11, 1)] {
        legacy.insert(format!("h{bucket}"), number(count));
    }
    dynamo.client().put_item().table_name(dynamo.table()).set_item(Some(legacy)).send().await.expect("legacy put");

    let t = at("2026-11-26T06:14:10Z");
    let calls = [
        LogEvent { latency_ms: 3, ..event("req-fast", t) },
        LogEvent { latency_ms: 90, ..event("req-100", t + 1) },
        LogEvent { latency_ms: 1_800, ..event("req-2s", t + 2) },
    ];
    assert_eq!(dynamo.record_events(&calls).await.expect("record"), [true; 3]);
    assert!(!dynamo.record_event(&calls[0]).await.expect("redelivery"), "a redelivery adds nothing");

    let day = StatsQuery { from_date: "2026-11-26".into(), to_date: "2026-11-26".into(), ..StatsQuery::default() };
    let rows = dynamo.stats_rows(&day).await.expect("rows");
    assert_eq!(rows.len(), 1, "the new calls add to the legacy item: {rows:?}");
    let c = &rows[0].counters;
    assert_eq!((c.requests, c.latency_ms_sum), (13, 51_893));
    let mut expected = [0; maestro_shared::stats::LATENCY_BUCKETS_MS.len()];
    // 3 ms; up to 100 ms (4 legacy + 1 new); 500 ms; 2 s (2 legacy + 1 new); the rest.
    for (bucket, count) in [(2, 1), (10, 5), (13, 3), (17, 3), (29, 1)] {
        expected[bucket] = count;
    }
    assert_eq!(c.latency_hist, expected);
    let percentiles = [1, 50, 95, 99].map(|p| c.latency_percentile(p));
    assert_eq!(percentiles, [Some(3), Some(500), Some(u64::MAX), Some(u64::MAX)]);

    // The legacy attributes are left as they were; the new counts went to the new names.
    let item = raw_item(&dynamo, pk, sk).await.expect("the item");
    let attribute = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).map(String::as_str);
    assert_eq!((attribute("h0"), attribute("h4"), attribute("h11")), (Some("4"), Some("2"), Some("1")));
    assert_eq!(
        (attribute("l2"), attribute("l10"), attribute("l17"), attribute("l29")),
        (Some("1"), Some("1"), Some("1"), None)
    );
}
