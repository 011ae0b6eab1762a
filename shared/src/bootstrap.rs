//! Bringing a store up to date at start: the seed catalog on first start, then the config file's
//! providers, models, routes and keys, and the keys found in the SDK environment variables.
//!
//! A store that is busy or unavailable ([`StoreError::Unavailable`]) does not end the start: each
//! call is tried again with backoff until [`STARTUP_PATIENCE`] has passed since bootstrap began.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::time::Instant;

use crate::config::{Env, FileConfig};
use crate::domain::{ApiKey, Catalog, KINDS, KeyLimits, KeyStatus, Model, Prices, Provider, ProviderKind, Route};
use crate::secret::SecretString;
use crate::store::{CatalogStore, SecretStore, StoreError};

/// How long start-up waits out a busy or unavailable backend before it gives up.
pub const STARTUP_PATIENCE: Duration = Duration::from_secs(30);
/// Waits between start-up attempts: full jitter over a bound that doubles from the first to the last.
const FIRST_WAIT: Duration = Duration::from_millis(100);
const MAX_WAIT: Duration = Duration::from_secs(4);

/// Runs `call` until it succeeds or fails with an error `transient` does not accept, or until
/// `patience` has passed (then its last error); waits with full jitter and exponential backoff.
pub(crate) async fn patiently<T, E, F, Fut>(
    what: &str,
    patience: Duration,
    transient: impl Fn(&E) -> bool,
    mut call: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + patience;
    let mut bound = FIRST_WAIT;
    loop {
        match call().await {
            Err(e) if transient(&e) && Instant::now() < deadline => {
                tracing::warn!(error = %e, "{what}: backend busy or unavailable; trying again");
                let ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
                let wait = Duration::from_millis(fastrand::u64(0..=ms));
                tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now()))).await;
                bound = (bound * 2).min(MAX_WAIT);
            }
            other => return other,
        }
    }
}

/// The seed catalog: the built-in providers and their current models with prices (micro-USD per
/// 1M tokens), each price with its source and date.
const SEED_CATALOG: &str = include_str!("../../infra/seed/catalog.json");

/// The variables the official SDKs read, per built-in provider (its code is its kind's id):
/// (code, key var, URL var), from the kinds table.
pub fn sdk_env() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    KINDS.iter().filter_map(|spec| spec.sdk_env.map(|(key, url)| (spec.id, key, url)))
}

#[derive(Deserialize)]
struct Seed {
    providers: Vec<SeedProvider>,
    models: Vec<SeedModel>,
}

#[derive(Deserialize)]
struct SeedProvider {
    code: String,
    kind: ProviderKind,
    name: String,
    /// Empty: the kind's public endpoint.
    #[serde(default)]
    base_url: String,
    sort_order: i64,
}

#[derive(Deserialize)]
struct SeedModel {
    provider: String,
    model: String,
    /// `chat` unless said (`embedding`).
    #[serde(default = "chat_model_type")]
    model_type: String,
    context_window: Option<u64>,
    max_output_tokens: Option<u64>,
    #[serde(default)]
    supports_tools: bool,
    #[serde(default)]
    supports_vision: bool,
    input_price: u64,
    cached_input_price: Option<u64>,
    cache_write_price: Option<u64>,
    output_price: u64,
    #[serde(default)]
    is_default: bool,
    /// A model whose price could not be verified is seeded inactive, for an admin to price.
    #[serde(default = "active")]
    is_active: bool,
    /// Where the prices come from, and when they were read.
    #[allow(dead_code, reason = "checked by a test; kept in the seed for the people who update it")]
    #[serde(default)]
    price_source: Option<String>,
    #[allow(dead_code, reason = "checked by a test; kept in the seed for the people who update it")]
    #[serde(default)]
    price_date: Option<String>,
}

fn active() -> bool {
    true
}

fn chat_model_type() -> String {
    crate::domain::CHAT_MODEL_TYPE.to_string()
}

/// What bootstrap did, for the start-up banner.
#[derive(Debug, Default)]
pub struct BootstrapReport {
    pub seeded: bool,
    /// Masked keys imported, as `(provider, masked)`.
    pub imported_keys: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("seed catalog is invalid: {0}")]
    Seed(String),
    #[error("{0}")]
    Config(String),
}

/// The id of a key named in config or the environment: stable across restarts.
pub fn key_id(provider: &str, name: &str) -> String {
    let slug: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    format!("{provider}-{slug}")
}

/// Applies seed, config and environment to the stores (the process environment in the runner,
/// [`Env::from_pairs`] in tests). Safe to run at every start: the seed is applied
/// only to an empty catalog, seeded models never overwrite edited ones.
pub async fn bootstrap(
    catalog: &dyn CatalogStore,
    secrets: &dyn SecretStore,
    config: &FileConfig,
    env: &Env,
    with_demo: bool,
) -> Result<BootstrapReport, BootstrapError> {
    let patient = Patient { catalog, secrets, deadline: Instant::now() + STARTUP_PATIENCE };
    let (catalog, secrets): (&dyn CatalogStore, &dyn SecretStore) = (&patient, &patient);
    let mut report = BootstrapReport::default();
    if catalog.is_empty().await? {
        seed(catalog).await?;
        report.seeded = true;
    }
    let mut current = catalog.load_catalog().await?;
    for (code, key_var, url_var) in sdk_env() {
        if current.provider(code).is_none() && (env.get(key_var).is_some() || env.get(url_var).is_some()) {
            add_missing_built_in(catalog, code).await?;
            current = catalog.load_catalog().await?;
        }
    }

    for (code, key_var, url_var) in sdk_env() {
        if let Some(url) = env.get(url_var)
            && let Some(entry) = current.provider(code)
            && entry.provider.base_url != url
        {
            catalog
                .upsert_provider(&Provider {
                    base_url: url.trim_end_matches('/').to_string(),
                    ..entry.provider.clone()
                })
                .await?;
        }
        if let Some(secret) = env.get(key_var) {
            let key = import_key(
                catalog,
                secrets,
                &current,
                code,
                key_var,
                SecretString::new(secret),
                0,
                KeyLimits::default(),
                true,
            )
            .await?;
            report.imported_keys.push((code.to_string(), key.masked));
        }
    }

    for p in &config.providers {
        catalog
            .upsert_provider(&Provider {
                code: p.code.clone(),
                kind: p.kind,
                name: p.name.clone().unwrap_or_else(|| p.code.clone()),
                base_url: p.base_url.clone().unwrap_or_else(|| p.kind.spec().default_base_url.to_string()),
                headers: p.headers.clone(),
                is_active: p.is_active,
                sort_order: p.sort_order,
            })
            .await?;
    }
    for m in &config.models {
        catalog
            .upsert_model(&Model {
                provider: m.provider.clone(),
                model: m.model.clone(),
                model_type: m.model_type.clone(),
                context_window: m.context_window,
                max_output_tokens: m.max_output_tokens,
                supports_streaming: m.supports_streaming,
                supports_tools: m.supports_tools,
                supports_vision: m.supports_vision,
                prices: Prices {
                    input: m.input_price,
                    cached_input: m.cached_input_price,
                    cache_write: m.cache_write_price,
                    output: m.output_price,
                },
                is_active: m.is_active,
                is_default: m.is_default,
                drop_params: m.drop_params,
                created: crate::time::now_ms() / 1000,
                cache: m.cache(),
            })
            .await?;
    }
    for r in &config.routes {
        catalog.upsert_route(r).await?;
    }
    let current = catalog.load_catalog().await?;
    for k in &config.keys {
        if current.provider(&k.provider).is_none() {
            return Err(BootstrapError::Config(format!("key `{}` names unknown provider `{}`", k.name, k.provider)));
        }
        let secret = match (&k.secret, &k.secret_env) {
            (Some(s), _) => s.clone(),
            (None, Some(var)) => env
                .get(var)
                .ok_or_else(|| BootstrapError::Config(format!("key `{}` reads ${var}, which is not set", k.name)))?,
            (None, None) => return Err(BootstrapError::Config(format!("key `{}` has no secret", k.name))),
        };
        let limits = KeyLimits { rpm: k.rpm, tpm: k.tpm, rpd: k.rpd };
        let key = import_key(
            catalog,
            secrets,
            &current,
            &k.provider,
            &k.name,
            SecretString::new(secret),
            k.priority,
            limits,
            k.is_active,
        )
        .await?;
        report.imported_keys.push((k.provider.clone(), key.masked));
    }
    if with_demo {
        install_demo(catalog, secrets).await?;
    }
    Ok(report)
}

async fn seed(catalog: &dyn CatalogStore) -> Result<(), BootstrapError> {
    let seed = parse_seed()?;
    for p in &seed.providers {
        install_seeded(catalog, &seed, p).await?;
    }
    Ok(())
}

fn parse_seed() -> Result<Seed, BootstrapError> {
    serde_json::from_str(SEED_CATALOG).map_err(|e| BootstrapError::Seed(e.to_string()))
}

/// Adds a built-in provider the catalog lacks (one added to Maestro after the catalog was
/// seeded), with its seeded models, when its SDK variables are set; otherwise a seeded catalog is
/// not changed unasked.
async fn add_missing_built_in(catalog: &dyn CatalogStore, code: &str) -> Result<(), BootstrapError> {
    let seed = parse_seed()?;
    match seed.providers.iter().find(|p| p.code == code) {
        Some(p) => install_seeded(catalog, &seed, p).await,
        None => Ok(()),
    }
}

/// The models Maestro ships for a kind, as its seed lists them (prices included, each model
/// active or not as seeded): the list a sync falls back to when the provider's API lists none.
pub fn built_in_models(kind: ProviderKind) -> Vec<Model> {
    let Ok(seed) = parse_seed() else { return Vec::new() };
    seed.models.iter().filter(|m| m.provider == kind.as_str()).map(seeded_model).collect()
}

fn seeded_model(m: &SeedModel) -> Model {
    Model {
        provider: m.provider.clone(),
        model: m.model.clone(),
        model_type: m.model_type.clone(),
        context_window: m.context_window,
        max_output_tokens: m.max_output_tokens,
        supports_streaming: true,
        supports_tools: m.supports_tools,
        supports_vision: m.supports_vision,
        prices: Prices {
            input: m.input_price,
            cached_input: m.cached_input_price,
            cache_write: m.cache_write_price,
            output: m.output_price,
        },
        is_active: m.is_active,
        is_default: m.is_default,
        drop_params: false,
        created: crate::time::now_ms() / 1000,
        cache: crate::cache::CachePolicy::default(),
    }
}

async fn install_seeded(catalog: &dyn CatalogStore, seed: &Seed, p: &SeedProvider) -> Result<(), BootstrapError> {
    let base_url = match p.base_url.as_str() {
        "" => p.kind.spec().default_base_url.to_string(),
        url => url.to_string(),
    };
    catalog
        .upsert_provider(&Provider {
            code: p.code.clone(),
            kind: p.kind,
            name: p.name.clone(),
            base_url,
            headers: BTreeMap::new(),
            is_active: true,
            sort_order: p.sort_order,
        })
        .await?;
    for m in seed.models.iter().filter(|m| m.provider == p.code) {
        catalog.insert_model_if_absent(&seeded_model(m)).await?;
    }
    Ok(())
}

/// Stores a key's secret and its catalog entry. A key whose secret is unchanged keeps its status
/// (a restart must not clear an `invalid` mark); a new secret starts `normal`.
#[allow(clippy::too_many_arguments)]
async fn import_key(
    catalog: &dyn CatalogStore,
    secrets: &dyn SecretStore,
    current: &crate::domain::Catalog,
    provider: &str,
    name: &str,
    secret: SecretString,
    priority: i64,
    limits: KeyLimits,
    is_active: bool,
) -> Result<ApiKey, BootstrapError> {
    let id = key_id(provider, name);
    let secret_ref = format!("local/{id}");
    let unchanged = match secrets.get_secret(&secret_ref).await {
        Ok(existing) => existing == secret,
        Err(StoreError::NotFound(_)) => false,
        Err(e) => return Err(e.into()),
    };
    if !unchanged {
        secrets.put_secret(&secret_ref, &secret).await?;
    }
    let previous = current.key(&id).filter(|_| unchanged);
    let key = ApiKey {
        id,
        provider: provider.to_string(),
        name: name.to_string(),
        secret_ref,
        masked: secret.masked(),
        priority,
        is_active,
        status: previous.map_or(KeyStatus::Normal, |k| k.status),
        cooldown_until: previous.and_then(|k| k.cooldown_until),
        limits,
    };
    catalog.upsert_key(&key).await?;
    Ok(key)
}

/// The `demo` provider: an in-process echo model, so a new user sees a full round trip offline.
async fn install_demo(catalog: &dyn CatalogStore, secrets: &dyn SecretStore) -> Result<(), BootstrapError> {
    catalog
        .upsert_provider(&Provider {
            code: "demo".to_string(),
            kind: ProviderKind::Demo,
            name: "Demo (offline echo, no tokens spent)".to_string(),
            base_url: ProviderKind::Demo.spec().default_base_url.to_string(),
            headers: BTreeMap::new(),
            is_active: true,
            sort_order: 1_000,
        })
        .await?;
    catalog
        .insert_model_if_absent(&Model {
            provider: "demo".to_string(),
            model: "echo".to_string(),
            model_type: "chat".to_string(),
            context_window: Some(32_768),
            max_output_tokens: Some(4_096),
            supports_streaming: true,
            supports_tools: false,
            supports_vision: false,
            prices: Prices::default(),
            is_active: true,
            is_default: true,
            drop_params: false,
            created: crate::time::now_ms() / 1000,
            cache: crate::cache::CachePolicy::default(),
        })
        .await?;
    let secret = SecretString::new("demo-key-not-a-secret");
    secrets.put_secret("local/demo-key", &secret).await?;
    let existing = catalog.load_catalog().await?;
    if existing.key("demo-key").is_none() {
        catalog
            .upsert_key(&ApiKey {
                id: "demo-key".to_string(),
                provider: "demo".to_string(),
                name: "demo".to_string(),
                secret_ref: "local/demo-key".to_string(),
                masked: secret.masked(),
                priority: 0,
                is_active: true,
                status: KeyStatus::Normal,
                cooldown_until: None,
                limits: KeyLimits { rpm: Some(600), tpm: None, rpd: None },
            })
            .await?;
    }
    Ok(())
}

/// The stores as bootstrap uses them: every call that fails with [`StoreError::Unavailable`] is
/// tried again (see [`patiently`]) until the shared deadline. Every step is safe to repeat.
struct Patient<'a> {
    catalog: &'a dyn CatalogStore,
    secrets: &'a dyn SecretStore,
    deadline: Instant,
}

impl Patient<'_> {
    async fn call<T, F, Fut>(&self, what: &str, call: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let patience = self.deadline.saturating_duration_since(Instant::now());
        patiently(what, patience, |e| matches!(e, StoreError::Unavailable(_)), call).await
    }
}

#[async_trait]
impl CatalogStore for Patient<'_> {
    async fn load_catalog(&self) -> Result<Catalog, StoreError> {
        self.call("load the catalog", || self.catalog.load_catalog()).await
    }
    async fn is_empty(&self) -> Result<bool, StoreError> {
        self.call("read the catalog", || self.catalog.is_empty()).await
    }
    async fn upsert_provider(&self, provider: &Provider) -> Result<(), StoreError> {
        self.call("write a provider", || self.catalog.upsert_provider(provider)).await
    }
    async fn upsert_model(&self, model: &Model) -> Result<(), StoreError> {
        self.call("write a model", || self.catalog.upsert_model(model)).await
    }
    async fn insert_model_if_absent(&self, model: &Model) -> Result<bool, StoreError> {
        self.call("insert a model", || self.catalog.insert_model_if_absent(model)).await
    }
    async fn upsert_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.call("write a key", || self.catalog.upsert_key(key)).await
    }
    async fn delete_key(&self, key_id: &str) -> Result<(), StoreError> {
        self.call("delete a key", || self.catalog.delete_key(key_id)).await
    }
    async fn upsert_route(&self, route: &Route) -> Result<(), StoreError> {
        self.call("write a route", || self.catalog.upsert_route(route)).await
    }
    async fn set_key_status(
        &self,
        key_id: &str,
        status: KeyStatus,
        cooldown_until: Option<i64>,
    ) -> Result<(), StoreError> {
        self.call("set a key's status", || self.catalog.set_key_status(key_id, status, cooldown_until)).await
    }
    async fn note_key_error(&self, key_id: &str, message: &str, at_ms: i64) -> Result<(), StoreError> {
        self.call("note a key's error", || self.catalog.note_key_error(key_id, message, at_ms)).await
    }
}

#[async_trait]
impl SecretStore for Patient<'_> {
    async fn get_secret(&self, secret_ref: &str) -> Result<SecretString, StoreError> {
        self.call("read a secret", || self.secrets.get_secret(secret_ref)).await
    }
    async fn put_secret(&self, secret_ref: &str, value: &SecretString) -> Result<(), StoreError> {
        self.call("write a secret", || self.secrets.put_secret(secret_ref, value)).await
    }
    async fn delete_secret(&self, secret_ref: &str) -> Result<(), StoreError> {
        self.call("delete a secret", || self.secrets.delete_secret(secret_ref)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicU32, Ordering};

    /// A backend that is always busy; counts the calls it refused.
    #[derive(Default)]
    struct AlwaysBusy(AtomicU32);

    impl AlwaysBusy {
        fn refuse<T>(&self) -> Result<T, StoreError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::Unavailable("dynamodb: ThrottlingException".into()))
        }
    }

    #[async_trait]
    impl CatalogStore for AlwaysBusy {
        async fn load_catalog(&self) -> Result<Catalog, StoreError> {
            self.refuse()
        }
        async fn is_empty(&self) -> Result<bool, StoreError> {
            self.refuse()
        }
        async fn upsert_provider(&self, _: &Provider) -> Result<(), StoreError> {
            self.refuse()
        }
        async fn upsert_model(&self, _: &Model) -> Result<(), StoreError> {
            self.refuse()
        }
        async fn insert_model_if_absent(&self, _: &Model) -> Result<bool, StoreError> {
            self.refuse()
        }
        async fn upsert_key(&self, _: &ApiKey) -> Result<(), StoreError> {
            self.refuse()
        }
        async fn delete_key(&self, _: &str) -> Result<(), StoreError> {
            self.refuse()
        }
        async fn upsert_route(&self, _: &Route) -> Result<(), StoreError> {
            self.refuse()
        }
        async fn set_key_status(&self, _: &str, _: KeyStatus, _: Option<i64>) -> Result<(), StoreError> {
            self.refuse()
        }
        async fn note_key_error(&self, _: &str, _: &str, _: i64) -> Result<(), StoreError> {
            self.refuse()
        }
    }

    #[async_trait]
    impl SecretStore for AlwaysBusy {
        async fn get_secret(&self, _: &str) -> Result<SecretString, StoreError> {
            self.refuse()
        }
        async fn put_secret(&self, _: &str, _: &SecretString) -> Result<(), StoreError> {
            self.refuse()
        }
        async fn delete_secret(&self, _: &str) -> Result<(), StoreError> {
            self.refuse()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_backend_that_stays_busy_fails_the_start_after_the_patience_not_before() {
        let busy = AlwaysBusy::default();
        let started = Instant::now();
        let result = bootstrap(&busy, &busy, &FileConfig::default(), &Env::from_pairs(&[]), true).await;
        assert!(matches!(result, Err(BootstrapError::Store(StoreError::Unavailable(_)))), "{result:?}");
        let waited = started.elapsed();
        assert!(waited >= STARTUP_PATIENCE && waited < STARTUP_PATIENCE + Duration::from_secs(1), "{waited:?}");
        let tries = busy.0.load(Ordering::SeqCst);
        assert!((8..=300).contains(&tries), "tried again with backoff, not in a tight loop: {tries}");
    }

    #[test]
    fn every_sdk_provider_is_seeded_with_one_default_and_every_price_says_where_it_is_from() {
        let seed: Seed = serde_json::from_str(SEED_CATALOG).expect("seed parses");
        let seeded: Vec<&str> = seed.providers.iter().map(|p| p.code.as_str()).collect();
        let with_sdk_env: Vec<&str> = sdk_env().map(|(code, _, _)| code).collect();
        assert_eq!(seeded, with_sdk_env, "one seeded provider per kind with SDK variables, in the kinds' order");
        for p in &seed.providers {
            assert_eq!(p.kind.as_str(), p.code, "a built-in provider's code is its kind's id");
            assert!(p.base_url.is_empty() || p.base_url == p.kind.spec().default_base_url, "{}", p.code);
            let models: Vec<&SeedModel> = seed.models.iter().filter(|m| m.provider == p.code).collect();
            assert!(models.len() >= 2, "{} has models", p.code);
            assert_eq!(models.iter().filter(|m| m.is_default).count(), 1, "{} has one default", p.code);
        }
        assert!(seed.models.iter().any(|m| m.model == "deepseek-v4-flash"));
        let embedding_price =
            |name: &str| seed.models.iter().find(|m| m.model == name && m.provider == "openai").map(|m| m.input_price);
        // $0.02 and $0.13 per 1M input tokens, in micro-USD.
        assert_eq!(embedding_price("text-embedding-3-small"), Some(20_000));
        assert_eq!(embedding_price("text-embedding-3-large"), Some(130_000));
        let original = ["openai", "anthropic", "deepseek"];
        for m in &seed.models {
            // Only a model whose price is unknown may be free, and then it is not active; one
            // model is free by its vendor's own price list and says so. An embedding model bills
            // its input alone.
            let embedding = m.model_type == crate::domain::EMBEDDING_MODEL_TYPE;
            assert!(embedding || m.model_type == crate::domain::CHAT_MODEL_TYPE, "{}: {}", m.model, m.model_type);
            let priced = match embedding {
                true => m.input_price > 0 && m.output_price == 0,
                false => m.input_price > 0 && m.output_price > 0,
            };
            let says_free = m.price_source.as_deref().is_some_and(|s| s.ends_with("free"));
            assert!(priced || !m.is_active || says_free, "{} is active at $0", m.model);
            if !original.contains(&m.provider.as_str()) || embedding {
                let source = m.price_source.as_deref().unwrap_or("");
                let date = m.price_date.as_deref().unwrap_or("");
                assert!(source.len() > 10, "{} says where its price is from", m.model);
                assert!(chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(), "{}: price_date {date}", m.model);
            }
        }
    }

    #[tokio::test]
    async fn a_built_in_provider_added_after_seeding_arrives_when_its_key_is_exported() {
        let store = crate::store::embedded::EmbeddedStore::open_in_memory().expect("store");
        // A catalog seeded before Qwen was built in.
        let openai = Provider {
            code: "openai".into(),
            kind: ProviderKind::Openai,
            name: "OpenAI".into(),
            base_url: ProviderKind::Openai.spec().default_base_url.into(),
            headers: BTreeMap::new(),
            is_active: true,
            sort_order: 10,
        };
        store.upsert_provider(&openai).await.expect("older catalog");
        let none = Env::from_pairs(&[]);
        bootstrap(&store, &store, &FileConfig::default(), &none, false).await.expect("restart");
        assert!(store.load_catalog().await.expect("catalog").provider("qwen").is_none(), "not added unasked");

        let with_key = Env::from_pairs(&[("QWEN_API_KEY", "sk-qwen-0123456789abcdef")]);
        let report = bootstrap(&store, &store, &FileConfig::default(), &with_key, false).await.expect("with key");
        assert_eq!(report.imported_keys.len(), 1);
        let catalog = store.load_catalog().await.expect("catalog");
        let qwen = catalog.provider("qwen").expect("qwen is added");
        assert_eq!(qwen.provider.base_url, "https://dashscope.aliyuncs.com/compatible-mode/v1");
        assert!(qwen.models.iter().any(|m| m.model == "qwen-plus" && m.is_default && m.prices.input == 400_000));
        assert_eq!(qwen.keys.len(), 1);
    }

    #[test]
    fn key_ids_are_stable_slugs() {
        assert_eq!(key_id("openai", "OPENAI_API_KEY"), "openai-openai-api-key");
        assert_eq!(key_id("anthropic", "Team B"), "anthropic-team-b");
    }
}
