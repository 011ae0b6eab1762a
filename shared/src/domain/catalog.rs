//! The catalog: providers, their models and keys, and named routes. Plain data; the stores load
//! and save it, the gateway reads a cached snapshot of it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub use super::kinds::ProviderKind;
use super::routes::Route;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    /// Short stable id used in `provider/model` and in stats: `openai`, `anthropic`, `my-vllm`.
    pub code: String,
    pub kind: ProviderKind,
    pub name: String,
    pub base_url: String,
    /// Extra headers sent on every call (e.g. an OpenRouter `HTTP-Referer`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub is_active: bool,
    pub sort_order: i64,
}

/// Prices in micro-USD per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prices {
    pub input: u64,
    /// Price of prompt-cache reads; `None` bills them as plain input.
    #[serde(default)]
    pub cached_input: Option<u64>,
    /// Price of prompt-cache writes (Anthropic); `None` bills them as plain input.
    #[serde(default)]
    pub cache_write: Option<u64>,
    pub output: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub provider: String,
    /// The provider's own model name, sent upstream.
    pub model: String,
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub context_window: Option<u64>,
    pub max_output_tokens: Option<u64>,
    #[serde(default = "yes")]
    pub supports_streaming: bool,
    #[serde(default)]
    pub supports_tools: bool,
    #[serde(default)]
    pub supports_vision: bool,
    pub prices: Prices,
    pub is_active: bool,
    /// The provider that serves a bare model name when several have it.
    pub is_default: bool,
    /// Parameters this model's provider cannot honour (`n` > 1, `logprobs`) are dropped instead
    /// of refused with a 400, as if every request to it said `drop_params: true` (LiteLLM's name).
    #[serde(default)]
    pub drop_params: bool,
    /// Unix seconds the model entered the catalog (`created` in `/v1/models`).
    #[serde(default)]
    pub created: i64,
    /// The response cache for calls that name this model (a route has its own).
    #[serde(default, flatten)]
    pub cache: crate::cache::CachePolicy,
}

fn default_model_type() -> String {
    CHAT_MODEL_TYPE.to_string()
}

/// `model_type` of a model served by the chat endpoints (`/v1/chat/completions`, `/v1/messages`).
pub const CHAT_MODEL_TYPE: &str = "chat";
/// `model_type` of an embedding model (`text-embedding-3-small`, …): served by `POST
/// /v1/embeddings` only, billed by its input price alone.
pub const EMBEDDING_MODEL_TYPE: &str = "embedding";

impl Model {
    /// Whether this is an embedding model (its `model_type` is [`EMBEDDING_MODEL_TYPE`]).
    pub fn is_embedding(&self) -> bool {
        self.model_type == EMBEDDING_MODEL_TYPE
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Normal,
    /// The provider said 429 (or out of quota); usable again after `cooldown_until`.
    RateLimited,
    /// The provider said 401/403; unusable until an admin validates it.
    Invalid,
    /// Repeated 5xx or timeouts; usable again after a short `cooldown_until`.
    Error,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::RateLimited => "rate_limited",
            Self::Invalid => "invalid",
            Self::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "normal" => Self::Normal,
            "rate_limited" => Self::RateLimited,
            "invalid" => Self::Invalid,
            "error" => Self::Error,
            _ => return None,
        })
    }
}

/// Per-key limits; `None` means the limit is not checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLimits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub rpd: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub provider: String,
    pub name: String,
    /// Where the secret lives (a Secrets Manager id, or a row of the embedded secret table).
    pub secret_ref: String,
    /// `sk-…abcd`: the only form of the secret anyone is shown.
    pub masked: String,
    pub priority: i64,
    pub is_active: bool,
    pub status: KeyStatus,
    /// Unix ms until which a `rate_limited` or `error` key is skipped.
    pub cooldown_until: Option<i64>,
    pub limits: KeyLimits,
}

impl ApiKey {
    /// Whether selection may try this key at `now_ms`.
    pub fn is_usable(&self, now_ms: i64) -> bool {
        if !self.is_active {
            return false;
        }
        match self.status {
            KeyStatus::Normal => true,
            KeyStatus::Invalid => false,
            KeyStatus::RateLimited | KeyStatus::Error => self.cooldown_until.is_none_or(|until| until <= now_ms),
        }
    }
}

/// A provider with its models and keys: what one DynamoDB Query on `PROVIDER#<code>` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEntry {
    pub provider: Provider,
    pub models: Vec<Model>,
    pub keys: Vec<ApiKey>,
}

impl ProviderEntry {
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.model == name)
    }
}

/// An immutable snapshot of the whole catalog.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub providers: Vec<ProviderEntry>,
    pub routes: Vec<Route>,
}

/// One place a request can be sent: a provider and one of its models.
#[derive(Debug, Clone, PartialEq)]
pub struct Target<'a> {
    pub entry: &'a ProviderEntry,
    pub model: &'a Model,
}

/// What a request's `model` resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution<'a> {
    pub route: Option<String>,
    pub targets: Vec<Target<'a>>,
    /// The route drops parameters its targets cannot honour (`drop_params = true`).
    pub drop_params: bool,
}

impl Catalog {
    pub fn provider(&self, code: &str) -> Option<&ProviderEntry> {
        self.providers.iter().find(|p| p.provider.code == code)
    }

    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// The active targets among `provider/model` names, each with its place in `names` (to
    /// find its weight).
    pub fn active_targets<'c>(&'c self, names: &[String]) -> Vec<(usize, Target<'c>)> {
        names
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.split_once('/').and_then(|(p, m)| self.active_target(p, m)).map(|t| (i, t)))
            .collect()
    }

    pub fn key(&self, key_id: &str) -> Option<&ApiKey> {
        self.providers.iter().flat_map(|p| p.keys.iter()).find(|k| k.id == key_id)
    }

    fn active_target(&self, provider: &str, model: &str) -> Option<Target<'_>> {
        let entry = self.provider(provider).filter(|e| e.provider.is_active)?;
        let model = entry.model(model).filter(|m| m.is_active)?;
        Some(Target { entry, model })
    }

    /// Resolves a request's `model`: a route name, `provider/model`, or a bare model name (its
    /// default provider first, then the others in `sort_order`).
    pub fn resolve(&self, requested: &str) -> Result<Resolution<'_>, ApiError> {
        if let Some(route) = self.route(requested) {
            let targets: Vec<Target<'_>> = self.active_targets(&route.targets).into_iter().map(|(_, t)| t).collect();
            if targets.is_empty() {
                return Err(ApiError::model_not_found(requested));
            }
            return Ok(Resolution { route: Some(route.name.clone()), targets, drop_params: route.drop_params });
        }
        if let Some((provider, model)) = requested.split_once('/')
            && let Some(target) = self.active_target(provider, model)
        {
            return Ok(Resolution { route: None, targets: vec![target], drop_params: false });
        }
        let mut candidates: Vec<Target<'_>> =
            self.providers.iter().filter_map(|e| self.active_target(&e.provider.code, requested)).collect();
        if candidates.is_empty() {
            return Err(ApiError::model_not_found(requested));
        }
        candidates.sort_by_key(|t| (!t.model.is_default, t.entry.provider.sort_order));
        candidates.truncate(1);
        Ok(Resolution { route: None, targets: candidates, drop_params: false })
    }

    /// Active chat models a caller may name, as `(provider, model)`.
    pub fn active_models(&self) -> Vec<(&Provider, &Model)> {
        let mut out: Vec<(&Provider, &Model)> = self
            .providers
            .iter()
            .filter(|e| e.provider.is_active)
            .flat_map(|e| e.models.iter().filter(|m| m.is_active).map(move |m| (&e.provider, m)))
            .collect();
        out.sort_by(|a, b| (a.0.sort_order, &a.1.model).cmp(&(b.0.sort_order, &b.1.model)));
        out
    }

    /// Index of keys by id, for quick status look-ups.
    pub fn keys_by_id(&self) -> HashMap<&str, &ApiKey> {
        self.providers.iter().flat_map(|p| p.keys.iter()).map(|k| (k.id.as_str(), k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(provider: &str, name: &str, default: bool) -> Model {
        Model {
            provider: provider.into(),
            model: name.into(),
            model_type: "chat".into(),
            context_window: None,
            max_output_tokens: Some(1000),
            supports_streaming: true,
            supports_tools: false,
            supports_vision: false,
            prices: Prices::default(),
            is_active: true,
            is_default: default,
            drop_params: false,
            created: 0,
            cache: Default::default(),
        }
    }

    fn entry(code: &str, order: i64, models: Vec<Model>) -> ProviderEntry {
        ProviderEntry {
            provider: Provider {
                code: code.into(),
                kind: ProviderKind::OpenaiCompatible,
                name: code.into(),
                base_url: "http://x".into(),
                headers: BTreeMap::new(),
                is_active: true,
                sort_order: order,
            },
            models,
            keys: vec![],
        }
    }

    fn catalog() -> Catalog {
        Catalog {
            providers: vec![
                entry("a", 1, vec![model("a", "shared", false), model("a", "only-a", false)]),
                entry("b", 2, vec![model("b", "shared", true)]),
            ],
            routes: vec![Route::fallback("smart", vec!["a/only-a".into(), "gone/x".into(), "b/shared".into()])],
        }
    }

    #[test]
    fn resolves_routes_prefixed_and_bare_names() {
        let c = catalog();
        let r = c.resolve("smart").expect("route");
        assert_eq!(r.route.as_deref(), Some("smart"));
        let names: Vec<_> = r.targets.iter().map(|t| format!("{}/{}", t.entry.provider.code, t.model.model)).collect();
        assert_eq!(names, ["a/only-a", "b/shared"]);

        let r = c.resolve("a/shared").expect("prefixed");
        assert_eq!(r.targets[0].entry.provider.code, "a");
        // bare name: the default provider wins over sort order
        let r = c.resolve("shared").expect("bare");
        assert_eq!(r.targets[0].entry.provider.code, "b");
        assert_eq!(c.resolve("nope").expect_err("unknown").status(), 404);
    }

    #[test]
    fn cooled_down_keys_become_usable_again_but_invalid_ones_do_not() {
        let mut k = ApiKey {
            id: "k".into(),
            provider: "a".into(),
            name: "k".into(),
            secret_ref: "s".into(),
            masked: "…".into(),
            priority: 0,
            is_active: true,
            status: KeyStatus::RateLimited,
            cooldown_until: Some(1000),
            limits: KeyLimits::default(),
        };
        assert!(!k.is_usable(999));
        assert!(k.is_usable(1000));
        k.status = KeyStatus::Invalid;
        assert!(!k.is_usable(10_000));
    }
}
