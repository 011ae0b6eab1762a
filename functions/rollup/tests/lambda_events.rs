//! The scheduled event in `events/` through the roll-up handler, on an embedded store: the
//! payload is deserialised as the real `aws_lambda_events` EventBridge type.

#![allow(clippy::expect_used, clippy::panic, reason = "test helpers: a failed expectation is a failed test")]

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{Context, LambdaEvent};
use maestro_rollup::handle;
use maestro_shared::domain::{ApiKey, Catalog, KeyLimits, KeyStatus, Model, Provider, ProviderKind, Route};
use maestro_shared::store::embedded::EmbeddedStore;
use maestro_shared::store::{CatalogStore, StoreError};

const SCHEDULED: &str = include_str!("../../../events/rollup-eventbridge-scheduled.json");

/// The event's `time`: 2026-11-26T06:15:00Z.
const EVENT_MS: i64 = 1_795_673_700_000;

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

async fn store_with_keys() -> EmbeddedStore {
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
    store
}

fn statuses(catalog: &Catalog) -> Vec<(String, KeyStatus, Option<i64>)> {
    catalog.providers.iter().flat_map(|p| &p.keys).map(|k| (k.id.clone(), k.status, k.cooldown_until)).collect()
}

#[tokio::test]
async fn given_the_scheduled_event_when_the_rollup_runs_then_expired_cooldowns_end_and_the_others_stay() {
    let store = store_with_keys().await;

    let report = handle(&store, None, scheduled_event()).await.expect("rollup ran");

    assert_eq!(report.recovered_keys, ["expired-429", "expired-5xx"]);
    assert!(report.errors.is_empty());
    let catalog = store.load_catalog().await.expect("catalog");
    let status = |id: &str| catalog.key(id).map(|k| (k.status, k.cooldown_until));
    assert_eq!(status("expired-429"), Some((KeyStatus::Normal, None)));
    assert_eq!(status("expired-5xx"), Some((KeyStatus::Normal, None)));
    assert_eq!(status("still-cooling"), Some((KeyStatus::RateLimited, Some(EVENT_MS + 60_000))));
    assert_eq!(status("revoked"), Some((KeyStatus::Invalid, None)), "only an admin's validation clears invalid");
    assert_eq!(status("healthy"), Some((KeyStatus::Normal, None)));
}

#[tokio::test]
async fn given_a_finished_rollup_when_it_runs_again_then_nothing_changes() {
    let store = store_with_keys().await;
    handle(&store, None, scheduled_event()).await.expect("first run");
    let before = statuses(&store.load_catalog().await.expect("catalog"));

    let again = handle(&store, None, scheduled_event()).await.expect("second run");

    assert!(again.recovered_keys.is_empty());
    assert_eq!(statuses(&store.load_catalog().await.expect("catalog")), before);
}

/// A catalog store that cannot be read (a backend outage); its writes would go through.
struct UnreadableCatalog(EmbeddedStore);

#[async_trait::async_trait]
impl CatalogStore for UnreadableCatalog {
    async fn load_catalog(&self) -> Result<Catalog, StoreError> {
        Err(StoreError::backend("catalog unreadable"))
    }
    async fn is_empty(&self) -> Result<bool, StoreError> {
        self.0.is_empty().await
    }
    async fn upsert_provider(&self, provider: &Provider) -> Result<(), StoreError> {
        self.0.upsert_provider(provider).await
    }
    async fn upsert_model(&self, model: &Model) -> Result<(), StoreError> {
        self.0.upsert_model(model).await
    }
    async fn insert_model_if_absent(&self, model: &Model) -> Result<bool, StoreError> {
        self.0.insert_model_if_absent(model).await
    }
    async fn upsert_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.0.upsert_key(key).await
    }
    async fn delete_key(&self, key_id: &str) -> Result<(), StoreError> {
        self.0.delete_key(key_id).await
    }
    async fn upsert_route(&self, route: &Route) -> Result<(), StoreError> {
        self.0.upsert_route(route).await
    }
    async fn set_key_status(
        &self,
        key_id: &str,
        status: KeyStatus,
        cooldown_until: Option<i64>,
    ) -> Result<(), StoreError> {
        self.0.set_key_status(key_id, status, cooldown_until).await
    }
    async fn note_key_error(&self, key_id: &str, message: &str, at_ms: i64) -> Result<(), StoreError> {
        self.0.note_key_error(key_id, message, at_ms).await
    }
}

#[tokio::test]
async fn given_an_unreadable_catalog_when_the_rollup_runs_then_the_invocation_fails_and_no_key_changes() {
    let store = UnreadableCatalog(store_with_keys().await);

    let err = handle(&store, None, scheduled_event()).await.expect_err("incomplete");

    assert!(err.report.recovered_keys.is_empty());
    assert_eq!(err.report.errors.len(), 1);
    let still = store.0.load_catalog().await.expect("catalog");
    assert_eq!(still.key("expired-429").map(|k| k.status), Some(KeyStatus::RateLimited));
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "RollupIncomplete");
    assert!(diagnostic.error_message.starts_with("rollup incomplete: key recovery:"), "{}", diagnostic.error_message);
    assert!(diagnostic.error_message.ends_with("catalog unreadable"), "{}", diagnostic.error_message);
}
