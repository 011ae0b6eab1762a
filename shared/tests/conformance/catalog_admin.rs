//! `CatalogAdminStore`: versioned catalog writes for the admin API, and what the aggregator
//! records about a key's use.

use std::collections::BTreeMap;
use std::sync::Arc;

use maestro_shared::domain::{
    ApiKey, Conditions, KeyLimits, KeyStatus, Model, Prices, Provider, ProviderKind, Route, RouteRule, Strategy,
};
use maestro_shared::logs::{CallStatus, LogEvent};
use maestro_shared::store::{CatalogAdminStore, CatalogStore, KeyError, StatsStore, StoreError};

use super::{at, event};

fn provider(code: &str) -> Provider {
    Provider {
        code: code.to_string(),
        kind: ProviderKind::OpenaiCompatible,
        name: format!("{code} (test)"),
        base_url: format!("https://{code}.example/v1"),
        headers: BTreeMap::new(),
        is_active: true,
        sort_order: 1,
    }
}

fn model(provider: &str, name: &str) -> Model {
    Model {
        provider: provider.to_string(),
        model: name.to_string(),
        model_type: "chat".to_string(),
        context_window: Some(128_000),
        max_output_tokens: None,
        supports_streaming: true,
        supports_tools: false,
        supports_vision: false,
        prices: Prices::default(),
        is_active: false,
        is_default: false,
        drop_params: false,
        created: 0,
        cache: Default::default(),
    }
}

fn key(id: &str, provider: &str) -> ApiKey {
    ApiKey {
        id: id.to_string(),
        provider: provider.to_string(),
        name: format!("{id} name"),
        secret_ref: format!("admin/{id}/1"),
        masked: "sk-…abcd".to_string(),
        priority: 0,
        is_active: true,
        status: KeyStatus::Normal,
        cooldown_until: None,
        limits: KeyLimits::default(),
    }
}

fn is_conflict<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

fn is_not_found<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound(_)))
}

pub async fn given_a_created_provider_when_updated_with_its_version_then_it_moves_on_and_stale_or_unknown_writes_fail<
    S: CatalogAdminStore + CatalogStore + 'static,
>(
    store: Arc<S>,
) {
    let p = provider("vllm");
    assert_eq!(store.create_provider(&p, Some("the lab's box")).await.expect("create"), 1);
    assert!(is_conflict(&store.create_provider(&p, None).await), "a second create is a conflict");

    let renamed = Provider { name: "vLLM".into(), sort_order: 5, ..p.clone() };
    assert_eq!(store.update_provider(&renamed, None, 1).await.expect("update at 1"), 2);
    let stale = store.update_provider(&p, Some("late"), 1).await;
    assert!(is_conflict(&stale), "{stale:?}");
    let ghost = store.update_provider(&provider("ghost"), None, 1).await;
    assert!(is_not_found(&ghost), "{ghost:?}");

    let catalog = store.load_admin_catalog().await.expect("admin catalog");
    let record = &catalog.provider("vllm").expect("provider").provider;
    assert_eq!((&record.provider, record.description.as_deref(), record.version), (&renamed, None, 2));
    assert_eq!(store.load_catalog().await.expect("catalog").providers[0].provider, renamed);

    // Any other write of the row (the bootstrap's upsert) moves the version on too, and keeps the
    // admin-only description.
    assert_eq!(store.update_provider(&renamed, Some("described"), 2).await.expect("describe"), 3);
    store.upsert_provider(&renamed).await.expect("upsert");
    let catalog = store.load_admin_catalog().await.expect("admin catalog");
    let record = &catalog.provider("vllm").expect("provider").provider;
    assert_eq!((record.description.as_deref(), record.version), (Some("described"), 4));
}

pub async fn given_models_when_one_becomes_the_default_then_the_others_lose_it_and_versions_guard_every_write<
    S: CatalogAdminStore + CatalogStore + 'static,
>(
    store: Arc<S>,
) {
    for code in ["a", "b", "c"] {
        store.create_provider(&provider(code), None).await.expect("provider");
    }
    let a = model("a", "shared");
    let b = Model { is_default: true, ..model("b", "shared") };
    let other = Model { is_default: true, ..model("c", "other") };
    assert!(store.create_model_if_absent(&a, Some("Shared (A)")).await.expect("a"));
    assert!(store.create_model_if_absent(&b, None).await.expect("b"));
    assert!(store.create_model_if_absent(&other, None).await.expect("other"));
    assert!(!store.create_model_if_absent(&a, None).await.expect("again"), "present: not inserted");
    assert!(is_not_found(&store.create_model_if_absent(&model("ghost", "m"), None).await));

    let priced = Model {
        is_default: true,
        is_active: true,
        context_window: None,
        prices: Prices { input: 1, cached_input: Some(2), cache_write: None, output: 3 },
        ..a.clone()
    };
    assert_eq!(store.update_model(&priced, Some("Shared"), 1).await.expect("update"), 2);
    assert!(is_conflict(&store.update_model(&priced, None, 1).await), "stale");
    assert!(is_not_found(&store.update_model(&model("a", "nope"), None, 1).await));

    let catalog = store.load_admin_catalog().await.expect("admin catalog");
    let ma = catalog.model("a", "shared").expect("a/shared");
    assert_eq!((&ma.model, ma.model_name.as_deref(), ma.version), (&priced, Some("Shared"), 2));
    let mb = catalog.model("b", "shared").expect("b/shared");
    assert_eq!((mb.model.is_default, mb.version), (false, 2), "b lost its default in the same write");
    let mc = catalog.model("c", "other").expect("c/other");
    assert_eq!((mc.model.is_default, mc.version), (true, 1), "another model code is untouched");

    // The seed's insert-if-absent and the config's upsert leave the display name alone.
    store.upsert_model(&priced).await.expect("upsert");
    let catalog = store.load_admin_catalog().await.expect("admin catalog");
    let ma = catalog.model("a", "shared").expect("a/shared");
    assert_eq!((ma.model_name.as_deref(), ma.version), (Some("Shared"), 3));
    let resolved = store.load_catalog().await.expect("catalog");
    assert_eq!(resolved.resolve("shared").expect("bare name").targets[0].entry.provider.code, "a");
}

pub async fn given_a_created_key_then_versioned_updates_keep_its_health_and_deletes_check_the_version<
    S: CatalogAdminStore + CatalogStore + 'static,
>(
    store: Arc<S>,
) {
    store.create_provider(&provider("openai"), None).await.expect("provider");
    let k = key("openai-team", "openai");
    assert_eq!(store.create_key(&k).await.expect("create"), 1);
    assert!(is_conflict(&store.create_key(&k).await), "duplicate id");
    assert!(is_not_found(&store.create_key(&key("x", "ghost")).await), "unknown provider");

    // The gateway marks the key: no version change, and an admin's update keeps the mark.
    let until = at("2026-11-26T06:15:00Z");
    store.set_key_status(&k.id, KeyStatus::RateLimited, Some(until)).await.expect("status");
    let edited = ApiKey {
        name: "team".into(),
        secret_ref: "admin/openai-team/2".into(),
        masked: "sk-…wxyz".into(),
        priority: 7,
        is_active: false,
        limits: KeyLimits { rpm: Some(10), tpm: None, rpd: Some(1_000) },
        ..k.clone()
    };
    assert_eq!(store.update_key(&edited, 1).await.expect("update"), 2);
    assert!(is_conflict(&store.update_key(&edited, 1).await), "stale");
    assert!(is_not_found(&store.update_key(&key("nope", "openai"), 1).await));
    let catalog = store.load_admin_catalog().await.expect("admin catalog");
    let record = catalog.key(&k.id).expect("key");
    let expected = ApiKey { status: KeyStatus::RateLimited, cooldown_until: Some(until), ..edited.clone() };
    assert_eq!((&record.key, record.version), (&expected, 2));

    // Limits can be removed again.
    let unlimited = ApiKey { limits: KeyLimits::default(), ..edited };
    assert_eq!(store.update_key(&unlimited, 2).await.expect("unlimit"), 3);
    let catalog = store.load_catalog().await.expect("catalog");
    assert_eq!(catalog.key(&k.id).expect("key").limits, KeyLimits::default());

    assert!(is_conflict(&store.delete_key_versioned(&k.id, Some(2)).await), "stale delete");
    store.delete_key_versioned(&k.id, Some(3)).await.expect("delete at 3");
    assert!(is_not_found(&store.delete_key_versioned(&k.id, None).await), "gone");
    assert!(store.load_catalog().await.expect("catalog").key(&k.id).is_none());
}

pub async fn given_routes_then_create_update_and_delete_are_versioned_and_the_catalog_follows<
    S: CatalogAdminStore + CatalogStore + 'static,
>(
    store: Arc<S>,
) {
    let smart = Route::fallback("smart", vec!["a/x".into(), "b/y".into()]);
    assert_eq!(store.create_route(&smart).await.expect("create"), 1);
    assert!(is_conflict(&store.create_route(&smart).await));
    // An update gives it a policy; the upsert below takes it away again.
    let reordered = Route {
        strategy: Strategy::Cheapest,
        rules: vec![RouteRule {
            when: Conditions { tag: Some("draft".into()), ..Conditions::default() },
            targets: vec!["a/x".into()],
            strategy: None,
            weights: vec![],
        }],
        ..Route::fallback("smart", vec!["b/y".into(), "a/x".into()])
    };
    assert_eq!(store.update_route(&reordered, 1).await.expect("update"), 2);
    assert!(is_conflict(&store.update_route(&smart, 1).await));
    assert!(is_not_found(&store.update_route(&Route::fallback("nope", vec![]), 1).await));

    let catalog = store.load_admin_catalog().await.expect("admin catalog");
    let record = catalog.route("smart").expect("route");
    assert_eq!((&record.route, record.version), (&reordered, 2));
    assert_eq!(store.load_catalog().await.expect("catalog").routes, std::slice::from_ref(&reordered));

    // The config's upsert moves the version on as well.
    store.upsert_route(&smart).await.expect("upsert");
    let upserted = store.load_admin_catalog().await.expect("admin").route("smart").expect("route").clone();
    assert_eq!((&upserted.route, upserted.version), (&smart, 3), "a plain chain again: the policy is gone");

    assert!(is_conflict(&store.delete_route("smart", Some(2)).await));
    store.delete_route("smart", Some(3)).await.expect("delete");
    assert!(is_not_found(&store.delete_route("smart", None).await));
    assert!(store.load_catalog().await.expect("catalog").routes.is_empty());
}

pub async fn given_recorded_calls_then_their_key_shows_when_it_was_last_used_and_last_failed<
    S: CatalogAdminStore + CatalogStore + StatsStore + 'static,
>(
    store: Arc<S>,
) {
    store.create_provider(&provider("openai"), None).await.expect("provider");
    store.create_key(&key("key-1", "openai")).await.expect("key");
    let t = at("2026-11-26T06:00:00Z");
    let failed = LogEvent { status: CallStatus::Error, http_status: 502, ..event("req-2", t + 1_000) };
    for e in [event("req-1", t), failed, event("req-3", t + 2_000), event("req-old", t - 60_000)] {
        assert!(store.record_event(&e).await.expect("record"));
    }
    // A call on a deleted key is still recorded.
    assert!(store.record_event(&LogEvent { key_id: Some("gone".into()), ..event("req-4", t) }).await.expect("gone"));

    let catalog = store.load_admin_catalog().await.expect("admin catalog");
    let record = catalog.key("key-1").expect("key");
    assert_eq!((record.last_used_at, record.last_error_at), (Some(t + 2_000), Some(t + 1_000)));
    assert_eq!(record.version, 1, "usage is not an edit");
    assert!(catalog.key("gone").is_none(), "no key appears for a call on a deleted one");
}

pub async fn given_key_errors_then_the_newest_is_kept_apart_from_the_version_and_unknown_keys_are_not_found<
    S: CatalogAdminStore + CatalogStore + 'static,
>(
    store: Arc<S>,
) {
    store.create_provider(&provider("openai"), None).await.expect("provider");
    store.create_key(&key("key-1", "openai")).await.expect("key");
    let t = at("2026-11-26T06:00:00Z");
    let error_of =
        |catalog: &maestro_shared::store::AdminCatalog| catalog.key("key-1").expect("key").last_error.clone();
    assert_eq!(error_of(&store.load_admin_catalog().await.expect("catalog")), None);

    store.note_key_error("key-1", "  Incorrect API key provided (401)  ", t).await.expect("note");
    let catalog = store.load_admin_catalog().await.expect("catalog");
    assert_eq!(error_of(&catalog), Some(KeyError { message: "Incorrect API key provided (401)".into(), at_ms: t }));
    assert_eq!(catalog.key("key-1").expect("key").version, 1, "an error is not an edit");

    // An older error arriving late does not replace a newer one; a newer one does.
    store.note_key_error("key-1", "older", t - 1_000).await.expect("older");
    assert_eq!(
        error_of(&store.load_admin_catalog().await.expect("catalog")).expect("error").message,
        "Incorrect API key provided (401)"
    );
    let long = "x".repeat(600);
    store.note_key_error("key-1", &long, t + 1_000).await.expect("newer");
    let noted = error_of(&store.load_admin_catalog().await.expect("catalog")).expect("error");
    assert_eq!((noted.message.chars().count(), noted.at_ms), (501, t + 1_000), "500 characters and an ellipsis");
    assert!(noted.message.ends_with('…'));

    // An admin's edit keeps it; an unknown key is not found.
    let edited = ApiKey { priority: 3, ..key("key-1", "openai") };
    store.update_key(&edited, 1).await.expect("update");
    assert_eq!(error_of(&store.load_admin_catalog().await.expect("catalog")).expect("error").at_ms, t + 1_000);
    assert!(is_not_found(&store.note_key_error("nope", "x", t).await));
}

pub async fn given_a_provider_with_models_then_it_is_deleted_with_them_only_once_it_has_no_key_and_at_its_version<
    S: CatalogAdminStore + CatalogStore + 'static,
>(
    store: Arc<S>,
) {
    store.create_provider(&provider("gone"), Some("to delete")).await.expect("provider");
    store.create_provider(&provider("kept"), None).await.expect("provider");
    for (p, m) in [("gone", "a"), ("gone", "b"), ("kept", "a")] {
        assert!(store.create_model_if_absent(&model(p, m), None).await.expect("model"));
    }
    store.create_key(&key("gone-k", "gone")).await.expect("key");

    let refused = store.delete_provider("gone", None).await;
    assert!(is_conflict(&refused), "a key is left: {refused:?}");
    let catalog = store.load_admin_catalog().await.expect("catalog");
    assert_eq!(catalog.provider("gone").expect("still there").models.len(), 2, "nothing deleted");

    store.delete_key_versioned("gone-k", None).await.expect("key deleted");
    assert!(is_conflict(&store.delete_provider("gone", Some(7)).await), "stale version");
    assert_eq!(store.delete_provider("gone", Some(1)).await.expect("deleted"), 2);
    let catalog = store.load_admin_catalog().await.expect("catalog");
    assert!(catalog.provider("gone").is_none());
    assert_eq!(catalog.provider("kept").expect("kept").models.len(), 1, "another provider's models stay");
    assert!(store.load_catalog().await.expect("catalog").provider("gone").is_none());
    assert!(is_not_found(&store.delete_provider("gone", None).await), "gone");

    // The code is free again, with no model of the old provider.
    store.create_provider(&provider("gone"), None).await.expect("again");
    assert!(store.load_admin_catalog().await.expect("catalog").provider("gone").expect("new").models.is_empty());
}
