//! Maestro API keys for callers (`mk-…`): created by an admin for a user (the owner, who then
//! appears as `user_id` in every log), stored only as the SHA-256 of the key, with the models the
//! key may use and optional limits (requests per minute, tokens and cost per UTC day) that the
//! gateway enforces with the same exact window counters as provider keys (docs/ARCHITECTURE.md §4).
//!
//! [`CallerKeyStore`] is implemented by both backends; [`CachedCallerKeys`] wraps either so a warm
//! container answers look-ups from memory (see its doc for how long a revocation takes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::StoreError;
use crate::domain::Resolution;
use crate::secret::SecretString;

/// Every Maestro API key starts with this.
pub const CALLER_KEY_PREFIX: &str = "mk-";

/// Limits of a caller's key, each checked only when set: requests per minute window, and tokens
/// and cost (integer micro-USD) per UTC day window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetLimits {
    pub rpm: Option<u64>,
    pub tokens_per_day: Option<u64>,
    pub cost_micros_per_day: Option<u64>,
}

/// What a caller key's current windows hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetUsage {
    /// Requests in the current minute window.
    pub minute_requests: u64,
    /// Requests, tokens and micro-USD in the current UTC day window (reserved estimates of calls
    /// still running included).
    pub day_requests: u64,
    pub day_tokens: u64,
    pub day_cost_micros: u64,
}

/// A caller key as stored: everything but the key itself, which exists only in the creation
/// response and, as its SHA-256, in `key_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerKey {
    /// `ck_<uuid v7>`: sortable by creation.
    pub id: String,
    /// Hex SHA-256 of the full key text.
    pub key_hash: String,
    /// `mk-…abcd`: the only form of the key anyone is shown after its creation.
    pub masked: String,
    /// The user id the key acts as (`user_id` in logs and stats).
    pub owner: String,
    pub name: String,
    /// `provider/model`, bare model names or route names; empty means every model.
    pub allowed_models: Vec<String>,
    pub limits: BudgetLimits,
    pub created_at_ms: i64,
    /// Set once, by the first revocation.
    pub revoked_at_ms: Option<i64>,
}

impl CallerKey {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at_ms.is_some()
    }

    /// The id of this key's windows in the [`super::CounterStore`], kept apart from provider key
    /// ids by its prefix.
    pub fn counter_id(&self) -> String {
        format!("CK#{}", self.id)
    }

    /// Whether the key may call what `requested` resolved to. An entry naming exactly what was
    /// asked (a route, `provider/model` or a bare model) allows it; otherwise every target must be
    /// allowed by a `provider/model` entry or a bare model entry (that model on any provider), so
    /// a route of allowed models may be used without being listed.
    pub fn allows(&self, requested: &str, resolution: &Resolution<'_>) -> bool {
        if self.allowed_models.is_empty() || self.allowed_models.iter().any(|m| m == requested) {
            return true;
        }
        !resolution.targets.is_empty()
            && resolution.targets.iter().all(|t| self.allows_model(&t.entry.provider.code, &t.model.model))
    }

    /// Whether `provider/model` itself is allowed (by its full name or its bare model name).
    pub fn allows_model(&self, provider: &str, model: &str) -> bool {
        self.allowed_models.is_empty()
            || self
                .allowed_models
                .iter()
                .any(|m| m == model || m.split_once('/').is_some_and(|(p, rest)| p == provider && rest == model))
    }
}

/// A new key: its one-time text, and the record to store.
pub struct NewCallerKey {
    pub key: SecretString,
    pub record: CallerKey,
}

/// What an admin asks for when creating a key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerKeySpec {
    pub owner: String,
    pub name: String,
    pub allowed_models: Vec<String>,
    pub limits: BudgetLimits,
}

/// Generates a key (`mk-` + 43 base64url characters: 32 bytes from the OS's random source via
/// UUID v4, 244 random bits) and its record.
pub fn generate(spec: CallerKeySpec, now_ms: i64) -> NewCallerKey {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let key = SecretString::new(format!(
        "{CALLER_KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ));
    let record = CallerKey {
        id: format!("ck_{}", uuid::Uuid::now_v7().simple()),
        key_hash: hash_key(key.expose()),
        masked: key.masked(),
        owner: spec.owner,
        name: spec.name,
        allowed_models: spec.allowed_models,
        limits: spec.limits,
        created_at_ms: now_ms,
        revoked_at_ms: None,
    };
    NewCallerKey { key, record }
}

/// The stored form of a key: lowercase hex SHA-256 of its text. Keys carry 244 random bits, so
/// a fast hash is enough (nothing to brute-force).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Caller keys, by id and by hash.
#[async_trait]
pub trait CallerKeyStore: Send + Sync {
    /// Stores a new key; `Conflict` when its id or hash exists already.
    async fn create_caller_key(&self, key: &CallerKey) -> Result<(), StoreError>;
    /// The key whose hash this is, revoked or not; `None` when there is none.
    async fn caller_key_by_hash(&self, key_hash: &str) -> Result<Option<CallerKey>, StoreError>;
    /// Every key, revoked ones included, newest first.
    async fn list_caller_keys(&self) -> Result<Vec<CallerKey>, StoreError>;
    /// Revokes a key at `at_ms` and returns it; revoking a revoked key changes nothing (it keeps
    /// its first `revoked_at_ms`). `NotFound` for an unknown id.
    async fn revoke_caller_key(&self, id: &str, at_ms: i64) -> Result<CallerKey, StoreError>;
}

/// How long a container trusts what it read about a key ([`CachedCallerKeys`]).
pub const CALLER_KEY_CACHE_TTL: Duration = Duration::from_secs(30);
/// Most look-ups remembered at once; beyond, expired ones are dropped (all, if need be), so
/// a flood of made-up keys cannot grow memory without bound.
const CACHE_MAX_ENTRIES: usize = 10_000;

/// A [`CallerKeyStore`] that remembers look-ups by hash (found, revoked or unknown) for a TTL, so
/// a warm request reads nothing. A revocation through this same value takes effect at once; one
/// made elsewhere (the admin function, another container) is seen within the TTL (30 s by
/// default), when the entry expires.
pub struct CachedCallerKeys {
    inner: Arc<dyn CallerKeyStore>,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Option<CallerKey>)>>,
}

impl CachedCallerKeys {
    pub fn new(inner: Arc<dyn CallerKeyStore>, ttl: Duration) -> Self {
        Self { inner, ttl, entries: Mutex::new(HashMap::new()) }
    }

    fn cached(&self, key_hash: &str) -> Option<Option<CallerKey>> {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.get(key_hash).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, key)| key.clone())
    }

    fn remember(&self, key_hash: &str, key: Option<CallerKey>) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= CACHE_MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= CACHE_MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key_hash.to_string(), (Instant::now(), key));
    }

    fn forget(&self, key_hash: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.remove(key_hash);
    }
}

#[async_trait]
impl CallerKeyStore for CachedCallerKeys {
    async fn create_caller_key(&self, key: &CallerKey) -> Result<(), StoreError> {
        self.inner.create_caller_key(key).await?;
        self.forget(&key.key_hash);
        Ok(())
    }

    async fn caller_key_by_hash(&self, key_hash: &str) -> Result<Option<CallerKey>, StoreError> {
        if let Some(known) = self.cached(key_hash) {
            return Ok(known);
        }
        let found = self.inner.caller_key_by_hash(key_hash).await?;
        self.remember(key_hash, found.clone());
        Ok(found)
    }

    async fn list_caller_keys(&self) -> Result<Vec<CallerKey>, StoreError> {
        self.inner.list_caller_keys().await
    }

    async fn revoke_caller_key(&self, id: &str, at_ms: i64) -> Result<CallerKey, StoreError> {
        let revoked = self.inner.revoke_caller_key(id, at_ms).await?;
        self.remember(&revoked.key_hash, Some(revoked.clone()));
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Catalog, Model, Prices, Provider, ProviderEntry, ProviderKind, Route};

    fn key(allowed: &[&str]) -> CallerKey {
        generate(
            CallerKeySpec {
                owner: "user-1".into(),
                name: "ci".into(),
                allowed_models: allowed.iter().map(|m| m.to_string()).collect(),
                limits: BudgetLimits::default(),
            },
            0,
        )
        .record
    }

    fn model(provider: &str, name: &str) -> Model {
        Model {
            provider: provider.into(),
            model: name.into(),
            model_type: "chat".into(),
            context_window: None,
            max_output_tokens: None,
            supports_streaming: true,
            supports_tools: false,
            supports_vision: false,
            prices: Prices::default(),
            is_active: true,
            is_default: true,
            drop_params: false,
            created: 0,
            cache: Default::default(),
        }
    }

    fn catalog() -> Catalog {
        let entry = |code: &str, models: &[&str]| ProviderEntry {
            provider: Provider {
                code: code.into(),
                kind: ProviderKind::OpenaiCompatible,
                name: code.into(),
                base_url: "http://x".into(),
                headers: Default::default(),
                is_active: true,
                sort_order: 1,
            },
            models: models.iter().map(|m| model(code, m)).collect(),
            keys: vec![],
        };
        Catalog {
            providers: vec![entry("openai", &["gpt-4o", "gpt-4o-mini"]), entry("deepseek", &["deepseek-chat"])],
            routes: vec![
                Route::fallback("cheap", vec!["openai/gpt-4o-mini".into()]),
                Route::fallback("any", vec!["openai/gpt-4o".into(), "deepseek/deepseek-chat".into()]),
            ],
        }
    }

    fn allows(key: &CallerKey, requested: &str) -> bool {
        let catalog = catalog();
        let resolution = catalog.resolve(requested).expect("resolves");
        key.allows(requested, &resolution)
    }

    #[test]
    fn generated_keys_are_prefixed_random_and_stored_only_as_their_hash() {
        let a = generate(CallerKeySpec::default(), 1);
        let b = generate(CallerKeySpec::default(), 1);
        assert!(a.key.expose().starts_with("mk-"));
        assert_eq!(a.key.expose().len(), 3 + 43);
        assert_ne!(a.key.expose(), b.key.expose());
        assert_ne!(a.record.id, b.record.id);
        assert_eq!(a.record.key_hash, hash_key(a.key.expose()));
        assert_eq!(a.record.key_hash.len(), 64);
        assert!(a.record.masked.starts_with("mk-…"));
        let stored = serde_json::to_string(&a.record).expect("json");
        assert!(!stored.contains(&a.key.expose()[3..]), "the record never holds the key");
    }

    #[test]
    fn an_empty_list_allows_everything() {
        let any = key(&[]);
        assert!(allows(&any, "gpt-4o") && allows(&any, "any") && allows(&any, "deepseek/deepseek-chat"));
    }

    #[test]
    fn full_names_bare_names_and_routes_allow_what_they_name() {
        let k = key(&["openai/gpt-4o-mini", "deepseek-chat", "any"]);
        assert!(allows(&k, "openai/gpt-4o-mini"));
        assert!(allows(&k, "gpt-4o-mini"), "the bare name resolves to an allowed target");
        assert!(allows(&k, "cheap"), "an unlisted route whose targets are all allowed");
        assert!(allows(&k, "deepseek/deepseek-chat"), "a bare entry allows the model on its provider");
        assert!(allows(&k, "any"), "a listed route");
        assert!(!allows(&k, "openai/gpt-4o"));
        assert!(!allows(&k, "gpt-4o"));
        let narrow = key(&["openai/gpt-4o"]);
        assert!(!allows(&narrow, "any"), "a route with one target not allowed");
    }

    struct Counting {
        key: CallerKey,
        reads: Mutex<u32>,
    }

    #[async_trait]
    impl CallerKeyStore for Counting {
        async fn create_caller_key(&self, _: &CallerKey) -> Result<(), StoreError> {
            Ok(())
        }
        async fn caller_key_by_hash(&self, key_hash: &str) -> Result<Option<CallerKey>, StoreError> {
            *self.reads.lock().expect("lock") += 1;
            Ok((key_hash == self.key.key_hash).then(|| self.key.clone()))
        }
        async fn list_caller_keys(&self) -> Result<Vec<CallerKey>, StoreError> {
            Ok(vec![self.key.clone()])
        }
        async fn revoke_caller_key(&self, _: &str, at_ms: i64) -> Result<CallerKey, StoreError> {
            Ok(CallerKey { revoked_at_ms: Some(at_ms), ..self.key.clone() })
        }
    }

    #[tokio::test]
    async fn look_ups_are_cached_for_the_ttl_and_a_revocation_here_is_seen_at_once() {
        let inner = Arc::new(Counting { key: key(&[]), reads: Mutex::new(0) });
        let cache = CachedCallerKeys::new(inner.clone(), Duration::from_secs(60));
        let hash = inner.key.key_hash.clone();
        for _ in 0..3 {
            assert!(cache.caller_key_by_hash(&hash).await.expect("read").is_some());
            assert!(cache.caller_key_by_hash("unknown").await.expect("read").is_none());
        }
        assert_eq!(*inner.reads.lock().expect("lock"), 2, "one read per hash");
        cache.revoke_caller_key(&inner.key.id, 5).await.expect("revoke");
        let after = cache.caller_key_by_hash(&hash).await.expect("read").expect("known");
        assert_eq!(after.revoked_at_ms, Some(5));

        let expired = CachedCallerKeys::new(inner.clone(), Duration::ZERO);
        expired.caller_key_by_hash(&hash).await.expect("read");
        expired.caller_key_by_hash(&hash).await.expect("read");
        assert_eq!(*inner.reads.lock().expect("lock"), 4, "a zero TTL reads every time");
    }
}
