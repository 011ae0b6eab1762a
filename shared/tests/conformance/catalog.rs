//! `CatalogStore`: providers with their models and keys, and routes.

use std::collections::BTreeMap;
use std::sync::Arc;

use maestro_shared::cache::{CachePolicy, CacheScope};
use maestro_shared::domain::{
    ApiKey, Catalog, Conditions, KeyLimits, KeyStatus, Model, Prices, Provider, ProviderEntry, ProviderKind, Route,
    RouteRule, Strategy,
};
use maestro_shared::store::{CatalogStore, StoreError};

use super::at;

fn provider(code: &str, sort_order: i64) -> Provider {
    Provider {
        code: code.to_string(),
        kind: ProviderKind::OpenaiCompatible,
        name: format!("{code} (test)"),
        base_url: format!("https://{code}.example/v1"),
        headers: BTreeMap::new(),
        is_active: true,
        sort_order,
    }
}

fn model(provider: &str, name: &str) -> Model {
    Model {
        provider: provider.to_string(),
        model: name.to_string(),
        model_type: "chat".to_string(),
        context_window: None,
        max_output_tokens: None,
        supports_streaming: true,
        supports_tools: false,
        supports_vision: false,
        prices: Prices { input: 150_000, cached_input: None, cache_write: None, output: 600_000 },
        is_active: true,
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
        secret_ref: format!("maestro/keys/{id}"),
        masked: "sk-…abcd".to_string(),
        priority: 0,
        is_active: true,
        status: KeyStatus::Normal,
        cooldown_until: None,
        limits: KeyLimits::default(),
    }
}

async fn load(store: &dyn CatalogStore) -> Catalog {
    store.load_catalog().await.expect("load_catalog")
}

fn only_key<'a>(catalog: &'a Catalog, id: &str) -> &'a ApiKey {
    catalog.key(id).unwrap_or_else(|| panic!("key {id} in {catalog:?}"))
}

pub async fn given_a_new_store_then_the_catalog_is_empty(store: Arc<dyn CatalogStore>) {
    assert!(store.is_empty().await.expect("is_empty"));
    assert_eq!(load(&*store).await, Catalog::default());
    store.upsert_provider(&provider("openai", 1)).await.expect("upsert");
    assert!(!store.is_empty().await.expect("is_empty"));
}

pub async fn given_a_full_catalog_when_loaded_then_it_round_trips_in_sort_order(store: Arc<dyn CatalogStore>) {
    let openrouter = Provider {
        kind: ProviderKind::OpenaiCompatible,
        headers: BTreeMap::from([
            ("HTTP-Referer".to_string(), "https://maestro.example".to_string()),
            ("X-Title".to_string(), "Maestro ✓".to_string()),
        ]),
        ..provider("openrouter", 1)
    };
    let anthropic = Provider { kind: ProviderKind::Anthropic, is_active: false, ..provider("anthropic", 2) };
    let deepseek = Provider { kind: ProviderKind::Deepseek, ..provider("deepseek", 1) };
    let sonnet = Model {
        model_type: "chat".into(),
        context_window: Some(200_000),
        max_output_tokens: Some(64_000),
        supports_tools: true,
        supports_vision: true,
        prices: Prices {
            input: 3_000_000,
            cached_input: Some(300_000),
            cache_write: Some(3_750_000),
            output: 15_000_000,
        },
        is_default: true,
        ..model("anthropic", "claude-sonnet-4-5")
    };
    let haiku = Model { supports_streaming: false, is_active: false, ..model("anthropic", "claude-haiku-4-5") };
    let flash = Model {
        prices: Prices { input: 270_000, cached_input: Some(70_000), cache_write: None, output: 1_100_000 },
        drop_params: true,
        created: 1_764_000_000,
        cache: CachePolicy { ttl_secs: Some(86_400), scope: CacheScope::Global, sampled: true },
        ..model("deepseek", "deepseek-v4-flash")
    };
    let limited = ApiKey {
        priority: 10,
        status: KeyStatus::RateLimited,
        cooldown_until: Some(at("2026-11-26T06:15:00Z")),
        limits: KeyLimits { rpm: Some(50), tpm: Some(40_000), rpd: Some(1_000) },
        ..key("key-b", "anthropic")
    };
    let plain = ApiKey { is_active: false, priority: -1, ..key("key-a", "anthropic") };
    let invalid = ApiKey { status: KeyStatus::Invalid, ..key("key-c", "deepseek") };
    // Every field round-trips: drop_params, the strategy, weights and rules with each condition.
    let smart = Route {
        drop_params: true,
        strategy: Strategy::Weighted,
        weights: vec![3, 1],
        rules: vec![
            RouteRule {
                when: Conditions {
                    cjk_share_at_least: Some(0.3),
                    has_images: Some(false),
                    has_tools: Some(true),
                    prompt_tokens_over: Some(100_000),
                    tag: Some("lyrics".into()),
                    user: Some("vip-*".into()),
                },
                targets: vec!["deepseek/deepseek-v4-flash".into()],
                strategy: Some(Strategy::Fastest),
                weights: vec![],
            },
            RouteRule {
                when: Conditions { has_images: Some(true), ..Conditions::default() },
                targets: vec!["anthropic/claude-sonnet-4-5".into(), "deepseek/deepseek-v4-flash".into()],
                strategy: None,
                weights: vec![1, 0],
            },
        ],
        cache_ttl_secs: Some(600),
        ..Route::fallback("smart", vec!["anthropic/claude-sonnet-4-5".into(), "deepseek/deepseek-v4-flash".into()])
    };
    // A plain chain with only a cache stores its settings all the same.
    let cheap = Route {
        cache_ttl_secs: Some(3_600),
        cache_scope: CacheScope::Global,
        ..Route::fallback("cheap", vec!["deepseek/deepseek-v4-flash".into()])
    };

    // Written in no particular order.
    for p in [&anthropic, &openrouter, &deepseek] {
        store.upsert_provider(p).await.expect("upsert_provider");
    }
    for m in [&sonnet, &flash, &haiku] {
        store.upsert_model(m).await.expect("upsert_model");
    }
    for k in [&limited, &invalid, &plain] {
        store.upsert_key(k).await.expect("upsert_key");
    }
    for r in [&smart, &cheap] {
        store.upsert_route(r).await.expect("upsert_route");
    }

    // Providers by sort order then code; models by name; keys by id; routes by name.
    let expected = Catalog {
        providers: vec![
            ProviderEntry { provider: deepseek, models: vec![flash], keys: vec![invalid] },
            ProviderEntry { provider: openrouter, models: vec![], keys: vec![] },
            ProviderEntry { provider: anthropic, models: vec![haiku, sonnet], keys: vec![plain, limited] },
        ],
        routes: vec![cheap, smart],
    };
    assert_eq!(load(&*store).await, expected);
}

pub async fn given_existing_rows_when_upserted_again_then_they_are_replaced_by_primary_key(
    store: Arc<dyn CatalogStore>,
) {
    let original_model = model("openai", "gpt-4o-mini");
    let original_key =
        ApiKey { limits: KeyLimits { rpm: Some(10), tpm: Some(1_000), rpd: Some(100) }, ..key("key-1", "openai") };
    store.upsert_provider(&provider("openai", 5)).await.expect("provider");
    store.upsert_model(&original_model).await.expect("model");
    store.upsert_key(&original_key).await.expect("key");
    store.upsert_route(&Route::fallback("fast", vec!["openai/gpt-4o-mini".into()])).await.expect("route");

    let renamed = Provider { name: "OpenAI".into(), sort_order: 0, ..provider("openai", 5) };
    let repriced =
        Model { prices: Prices { input: 1, cached_input: Some(2), cache_write: Some(3), output: 4 }, ..original_model };
    let unlimited = ApiKey { name: "renamed".into(), limits: KeyLimits::default(), ..original_key };
    let rerouted = Route::fallback("fast", vec!["openai/gpt-4o".into(), "openai/gpt-4o-mini".into()]);
    store.upsert_provider(&renamed).await.expect("provider again");
    store.upsert_model(&repriced).await.expect("model again");
    store.upsert_key(&unlimited).await.expect("key again");
    store.upsert_route(&rerouted).await.expect("route again");

    // Re-upserting a provider keeps its models and keys.
    let expected = Catalog {
        providers: vec![ProviderEntry { provider: renamed, models: vec![repriced], keys: vec![unlimited] }],
        routes: vec![rerouted],
    };
    assert_eq!(load(&*store).await, expected);
}

pub async fn given_an_admin_edit_when_seeding_inserts_the_model_again_then_the_edit_stays(
    store: Arc<dyn CatalogStore>,
) {
    store.upsert_provider(&provider("deepseek", 1)).await.expect("provider");
    let seeded = model("deepseek", "deepseek-v4-flash");
    assert!(store.insert_model_if_absent(&seeded).await.expect("first seed"));
    let edited = Model {
        is_active: false,
        prices: Prices { input: 1, cached_input: None, cache_write: None, output: 2 },
        ..seeded.clone()
    };
    store.upsert_model(&edited).await.expect("admin edit");

    assert!(!store.insert_model_if_absent(&seeded).await.expect("second seed"));
    let other = model("deepseek", "deepseek-v4-pro");
    assert!(store.insert_model_if_absent(&other).await.expect("new model"));

    let catalog = load(&*store).await;
    assert_eq!(catalog.providers[0].models, [edited, other]);
}

pub async fn given_a_key_when_its_status_is_set_then_status_and_cooldown_change_and_unknown_keys_are_not_found(
    store: Arc<dyn CatalogStore>,
) {
    let limits = KeyLimits { rpm: Some(3), tpm: None, rpd: None };
    let original = ApiKey { limits, ..key("key-1", "openai") };
    store.upsert_provider(&provider("openai", 1)).await.expect("provider");
    store.upsert_key(&original).await.expect("key");

    let until = at("2026-11-26T06:15:00Z");
    store.set_key_status("key-1", KeyStatus::RateLimited, Some(until)).await.expect("rate limited");
    let catalog = load(&*store).await;
    let k = only_key(&catalog, "key-1");
    assert_eq!((k.status, k.cooldown_until), (KeyStatus::RateLimited, Some(until)));
    assert_eq!(*k, ApiKey { status: KeyStatus::RateLimited, cooldown_until: Some(until), ..original.clone() });

    store.set_key_status("key-1", KeyStatus::Normal, None).await.expect("normal again");
    assert_eq!(*only_key(&load(&*store).await, "key-1"), original);

    let missing = store.set_key_status("key-nope", KeyStatus::Invalid, None).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
}

pub async fn given_a_key_when_deleted_then_it_is_gone_and_a_second_delete_is_not_found(store: Arc<dyn CatalogStore>) {
    store.upsert_provider(&provider("openai", 1)).await.expect("provider");
    store.upsert_key(&key("key-1", "openai")).await.expect("key 1");
    store.upsert_key(&key("key-2", "openai")).await.expect("key 2");

    store.delete_key("key-1").await.expect("delete");
    let catalog = load(&*store).await;
    assert_eq!(catalog.providers[0].keys, [key("key-2", "openai")]);

    let again = store.delete_key("key-1").await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
}
