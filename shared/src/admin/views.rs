//! The admin API's JSON, in one place: what each response shows (`*View`) and what each request
//! may send (`Create*`, `Update*`), with the field names of the original tables (issue 5 §4).
//! Conversions to and from the domain types live here and nowhere else.
//!
//! Writes are partial: a field left out keeps its value; `null` clears a field that may be empty
//! (a description, a limit, a cached-input price). Unknown fields are refused with a 400, so a
//! typo never passes silently. A secret goes in only as `api_key` and never comes out: responses
//! show `masked_key`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::cache::{CachePolicy, CacheScope};
use crate::domain::{ApiKey, KeyStatus, Model, Prices, Provider, ProviderKind, Route, RouteRule, Strategy};
use crate::store::{KeyRecord, ModelRecord, ProviderRecord, RouteRecord, WindowUsage};

/// `Some(None)` for an explicit `null`, `Some(Some(v))` for a value, `None` (via `default`) when
/// the field is absent.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A key's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatusView {
    Normal,
    RateLimited,
    Invalid,
    Error,
}

impl From<KeyStatus> for KeyStatusView {
    fn from(s: KeyStatus) -> Self {
        match s {
            KeyStatus::Normal => Self::Normal,
            KeyStatus::RateLimited => Self::RateLimited,
            KeyStatus::Invalid => Self::Invalid,
            KeyStatus::Error => Self::Error,
        }
    }
}

/// Provider settings beyond the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfigView {
    /// Extra headers sent on every call (an OpenRouter `HTTP-Referer`, a gateway's own auth).
    /// In responses, values of credential-like headers (`authorization`, `*key*`, `*token*`,
    /// `*secret*`, `*auth*`) are masked; sending a masked value back keeps the stored one.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A provider, with its models and keys.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProviderView {
    /// The provider's stable id: `provider/model` names and the `:id` in provider paths.
    pub provider_code: String,
    pub provider_name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub is_active: bool,
    /// Lower first, when a bare model name is served by several providers.
    pub sort_order: i64,
    pub description: Option<String>,
    pub config: ProviderConfigView,
    /// Send it back with an update (`version` or `If-Match`).
    pub version: u64,
    pub models: Vec<ModelView>,
    pub keys: Vec<KeyView>,
}

/// Whether a header's value is a credential, by its name.
pub fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["auth", "key", "token", "secret", "cookie", "password"].iter().any(|part| name.contains(part))
}

/// Headers as responses show them.
pub fn shown_headers(headers: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| {
            let shown = if is_credential_header(k) { crate::secret::mask(v) } else { v.clone() };
            (k.clone(), shown)
        })
        .collect()
}

impl ProviderView {
    pub fn new(record: &ProviderRecord, models: Vec<ModelView>, keys: Vec<KeyView>) -> Self {
        let p = &record.provider;
        Self {
            provider_code: p.code.clone(),
            provider_name: p.name.clone(),
            kind: p.kind,
            base_url: p.base_url.clone(),
            is_active: p.is_active,
            sort_order: p.sort_order,
            description: record.description.clone(),
            config: ProviderConfigView { headers: shown_headers(&p.headers) },
            version: record.version,
            models,
            keys,
        }
    }
}

/// Prices in micro-USD per million tokens (`1500000` = $1.50 per 1M tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct PricesView {
    pub input_price: u64,
    /// Prompt-cache reads; `null` bills them as input.
    pub cached_input_price: Option<u64>,
    /// Prompt-cache writes (Anthropic); `null` bills them as input.
    pub cache_write_price: Option<u64>,
    pub output_price: u64,
}

impl From<Prices> for PricesView {
    fn from(p: Prices) -> Self {
        Self {
            input_price: p.input,
            cached_input_price: p.cached_input,
            cache_write_price: p.cache_write,
            output_price: p.output,
        }
    }
}

/// A model of a provider.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelView {
    /// `<provider_code>/<model_code>`: the `:id` of `PUT /api/admin/ai-models/:id` (URL-encode the `/`).
    pub id: String,
    pub provider_code: String,
    /// The provider's own model name, sent upstream.
    pub model_code: String,
    /// A display name, when known.
    pub model_name: Option<String>,
    /// `chat` for the models the gateway serves.
    pub model_type: String,
    /// The context window: tokens of input the model takes.
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub supports_streaming: bool,
    /// Tools (function calling).
    pub supports_function_call: bool,
    /// Image input.
    pub supports_vision: bool,
    pub prices: PricesView,
    pub is_active: bool,
    /// The provider that serves the bare model name.
    pub is_default: bool,
    /// Parameters the provider cannot honour (`n` > 1, `logprobs`) are dropped, not refused.
    pub drop_params: bool,
    /// Unix seconds the model entered the catalog.
    pub created: i64,
    /// Calls naming this model are answered from the response cache for this long (`null`: only
    /// when a caller sends `x-maestro-cache: on`).
    pub cache_ttl_secs: Option<u64>,
    /// `user`: an answer serves only the user who asked; `global`: every caller.
    pub cache_scope: CacheScope,
    /// Requests with `temperature` > 0 are cached too.
    pub cache_sampled: bool,
    pub version: u64,
}

impl From<&ModelRecord> for ModelView {
    fn from(r: &ModelRecord) -> Self {
        let m = &r.model;
        Self {
            id: format!("{}/{}", m.provider, m.model),
            provider_code: m.provider.clone(),
            model_code: m.model.clone(),
            model_name: r.model_name.clone(),
            model_type: m.model_type.clone(),
            max_input_tokens: m.context_window,
            max_output_tokens: m.max_output_tokens,
            supports_streaming: m.supports_streaming,
            supports_function_call: m.supports_tools,
            supports_vision: m.supports_vision,
            prices: m.prices.into(),
            is_active: m.is_active,
            is_default: m.is_default,
            drop_params: m.drop_params,
            created: m.created,
            cache_ttl_secs: m.cache.ttl_secs,
            cache_scope: m.cache.scope,
            cache_sampled: m.cache.sampled,
            version: r.version,
        }
    }
}

/// A provider key. The secret itself is never shown, only `masked_key`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub provider_code: String,
    pub key_name: String,
    /// `sk-…abcd`: the only form of the secret anyone is shown.
    pub masked_key: String,
    /// Higher first.
    pub priority: i64,
    pub is_active: bool,
    pub status: KeyStatusView,
    /// Requests per minute; `null`: not limited.
    pub rate_limit_rpm: Option<u64>,
    /// Tokens per minute; `null`: not limited.
    pub rate_limit_tpm: Option<u64>,
    /// Requests per UTC day; `null`: not limited.
    pub rate_limit_rpd: Option<u64>,
    /// Unix ms until which a `rate_limited` or `error` key is skipped.
    pub cooldown_until: Option<i64>,
    /// Unix ms: start of the newest recorded call with this key.
    pub last_used_at: Option<i64>,
    /// Unix ms: start of the newest recorded failed call with this key.
    pub last_error_at: Option<i64>,
    /// Why the key failed last, as the provider said it (the key masked): noted by a validation,
    /// a test call, or the gateway when it took the key out of use.
    pub last_error_message: Option<String>,
    /// Unix ms: when `last_error_message` was noted.
    pub last_error_message_at: Option<i64>,
    /// Calls recorded on this key in the current UTC day (the daily stats).
    pub requests_count_today: u64,
    /// Prompt and completion tokens recorded on this key in the current UTC day.
    pub tokens_count_today: u64,
    pub version: u64,
}

impl KeyView {
    pub fn new(record: &KeyRecord, today: WindowUsage) -> Self {
        let k = &record.key;
        Self {
            id: k.id.clone(),
            provider_code: k.provider.clone(),
            key_name: k.name.clone(),
            masked_key: k.masked.clone(),
            priority: k.priority,
            is_active: k.is_active,
            status: k.status.into(),
            rate_limit_rpm: k.limits.rpm,
            rate_limit_tpm: k.limits.tpm,
            rate_limit_rpd: k.limits.rpd,
            cooldown_until: k.cooldown_until,
            last_used_at: record.last_used_at,
            last_error_at: record.last_error_at,
            last_error_message: record.last_error.as_ref().map(|e| e.message.clone()),
            last_error_message_at: record.last_error.as_ref().map(|e| e.at_ms),
            requests_count_today: today.requests,
            tokens_count_today: today.tokens,
            version: record.version,
        }
    }
}

/// A route: callers send `"model": "<name>"`; its rules pick targets by the request, its
/// strategy orders them, and each target falls back to the next.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RouteView {
    pub name: String,
    /// `provider/model` targets for requests no rule matches.
    pub targets: Vec<String>,
    /// Parameters a target cannot honour (`n` > 1, `logprobs`) are dropped, not refused.
    pub drop_params: bool,
    pub strategy: Strategy,
    /// One per target with `weighted` (empty: equal weights).
    pub weights: Vec<u32>,
    /// Evaluated in order; the first that matches chooses the targets.
    pub rules: Vec<RouteRule>,
    /// Calls through this route are answered from the response cache for this long.
    pub cache_ttl_secs: Option<u64>,
    pub cache_scope: CacheScope,
    pub cache_sampled: bool,
    pub version: u64,
}

impl From<&RouteRecord> for RouteView {
    fn from(r: &RouteRecord) -> Self {
        Self {
            name: r.route.name.clone(),
            targets: r.route.targets.clone(),
            drop_params: r.route.drop_params,
            strategy: r.route.strategy,
            weights: r.route.weights.clone(),
            rules: r.route.rules.clone(),
            cache_ttl_secs: r.route.cache_ttl_secs,
            cache_scope: r.route.cache_scope,
            cache_sampled: r.route.cache_sampled,
            version: r.version,
        }
    }
}

/// A provider kind (`GET /api/admin/ai-providers/kinds`), from the kinds table.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KindView {
    pub kind: ProviderKind,
    pub label: &'static str,
    /// Whether admins may create providers of this kind (the demo is built in).
    pub creatable: bool,
    /// The endpoint used when a provider names none; empty when `base_url` is required.
    pub default_base_url: &'static str,
}

impl From<&crate::domain::KindSpec> for KindView {
    fn from(spec: &crate::domain::KindSpec) -> Self {
        Self { kind: spec.kind, label: spec.label, creatable: spec.creatable, default_base_url: spec.default_base_url }
    }
}

/// `{"data": [...]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DataList<T> {
    pub data: Vec<T>,
}

// ---- Requests -------------------------------------------------------------------------------

/// `POST /api/admin/ai-providers`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProvider {
    /// 1–64 of `a-z 0-9 _ -`, starting with a letter or digit (not `keys`).
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    pub provider_code: String,
    #[schema(min_length = 1, max_length = 200)]
    pub provider_name: String,
    /// `openai`, `anthropic`, `deepseek` or `openai_compatible`.
    pub kind: ProviderKind,
    /// `http(s)://…`; defaults to the kind's public endpoint, required for `openai_compatible`.
    #[serde(default)]
    #[schema(pattern = "^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$", max_length = 2000)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    #[schema(minimum = -1000000, maximum = 1000000)]
    pub sort_order: Option<i64>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[serde(default)]
    pub config: Option<ProviderConfigView>,
}

/// `PUT /api/admin/ai-providers/:id`: every field optional; `version` (or `If-Match`) required.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProvider {
    /// The version this update is based on (or send `If-Match: "<version>"`).
    #[serde(default)]
    #[schema(maximum = 9007199254740992u64)]
    pub version: Option<u64>,
    /// Must equal the path's id when sent (codes cannot change).
    #[serde(default)]
    pub provider_code: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub provider_name: Option<String>,
    #[serde(default)]
    pub kind: Option<ProviderKind>,
    #[serde(default)]
    #[schema(pattern = "^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$", max_length = 2000)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    #[schema(minimum = -1000000, maximum = 1000000)]
    pub sort_order: Option<i64>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub description: Option<Option<String>>,
    /// Replaces the whole config.
    #[serde(default)]
    pub config: Option<ProviderConfigView>,
}

/// `POST /api/admin/ai-providers/:id/keys`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// 1–64 characters; unique within the provider (the key's id is `<provider>-<slug of the name>`).
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")]
    pub key_name: String,
    /// The provider's secret key. Stored in the secret store; never shown again.
    #[schema(pattern = "^[!-~]{1,4096}$")]
    pub api_key: String,
    #[serde(default)]
    #[schema(minimum = -1000000, maximum = 1000000)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000000000000u64)]
    pub rate_limit_rpm: Option<u64>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000000000000u64)]
    pub rate_limit_tpm: Option<u64>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000000000000u64)]
    pub rate_limit_rpd: Option<u64>,
}

/// `PUT /api/admin/ai-providers/keys/:id`: every field optional; `version` (or `If-Match`)
/// required. A new `api_key` rotates the secret.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    #[serde(default)]
    #[schema(maximum = 9007199254740992u64)]
    pub version: Option<u64>,
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")]
    pub key_name: Option<String>,
    /// A new secret: rotates the key (its status starts over only after a validation).
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,4096}$")]
    pub api_key: Option<String>,
    #[serde(default)]
    #[schema(minimum = -1000000, maximum = 1000000)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub is_active: Option<bool>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 1000000000000u64)]
    pub rate_limit_rpm: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 1000000000000u64)]
    pub rate_limit_tpm: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 1000000000000u64)]
    pub rate_limit_rpd: Option<Option<u64>>,
}

/// Prices to change (micro-USD per million tokens); fields left out keep their value.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePrices {
    #[serde(default)]
    #[schema(maximum = 1000000000000u64)]
    pub input_price: Option<u64>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>, maximum = 1000000000000u64)]
    pub cached_input_price: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>, maximum = 1000000000000u64)]
    pub cache_write_price: Option<Option<u64>>,
    #[serde(default)]
    #[schema(maximum = 1000000000000u64)]
    pub output_price: Option<u64>,
}

/// `PUT /api/admin/ai-models/:id`: every field optional; `version` (or `If-Match`) required.
/// `is_default: true` takes the default for this model code away from every other provider.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateModel {
    #[serde(default)]
    #[schema(maximum = 9007199254740992u64)]
    pub version: Option<u64>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub model_name: Option<Option<String>>,
    #[serde(default)]
    #[schema(pattern = "^[a-z_]{1,32}$")]
    pub model_type: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 1000000000000u64)]
    pub max_input_tokens: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 1000000000000u64)]
    pub max_output_tokens: Option<Option<u64>>,
    #[serde(default)]
    pub supports_streaming: Option<bool>,
    #[serde(default)]
    pub supports_function_call: Option<bool>,
    #[serde(default)]
    pub supports_vision: Option<bool>,
    #[serde(default)]
    pub prices: Option<UpdatePrices>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    pub is_default: Option<bool>,
    /// Drop parameters the provider cannot honour (`n` > 1, `logprobs`) instead of refusing them.
    #[serde(default)]
    pub drop_params: Option<bool>,
    /// `null` turns the model's response cache off.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>, maximum = 2592000u64)]
    pub cache_ttl_secs: Option<Option<u64>>,
    #[serde(default)]
    pub cache_scope: Option<CacheScope>,
    #[serde(default)]
    pub cache_sampled: Option<bool>,
}

/// `POST /api/admin/ai-routes`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoute {
    /// 1–64 of `A-Z a-z 0-9 . _ : -` (no `/`): what callers send as `model`.
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,64}$")]
    pub name: String,
    /// 1–20 distinct `provider/model` targets of the catalog, tried in order.
    #[schema(min_items = 1, max_items = 20)]
    pub targets: Vec<String>,
    /// Drop parameters a target cannot honour (`n` > 1, `logprobs`) instead of refusing them.
    #[serde(default)]
    pub drop_params: bool,
    /// `fallback` when left out.
    #[serde(default)]
    pub strategy: Strategy,
    /// One per target, with `weighted` only (left out: equal weights).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub weights: Vec<u32>,
    /// Up to 20 rules, evaluated in order.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub rules: Vec<RouteRule>,
    /// Answer calls through the route from the response cache for this long (left out: only
    /// when a caller sends `x-maestro-cache: on`).
    #[serde(default)]
    #[schema(maximum = 2592000u64)]
    pub cache_ttl_secs: Option<u64>,
    #[serde(default)]
    pub cache_scope: CacheScope,
    #[serde(default)]
    pub cache_sampled: bool,
}

/// `PUT /api/admin/ai-routes/:name`; `version` (or `If-Match`) required.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoute {
    #[serde(default)]
    #[schema(maximum = 9007199254740992u64)]
    pub version: Option<u64>,
    /// Must equal the path's name when sent (names cannot change).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(min_items = 1, max_items = 20)]
    pub targets: Option<Vec<String>>,
    #[serde(default)]
    pub drop_params: Option<bool>,
    #[serde(default)]
    pub strategy: Option<Strategy>,
    /// Replaces the weights (`[]`: equal weights).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub weights: Option<Vec<u32>>,
    /// Replaces every rule (`[]`: none).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub rules: Option<Vec<RouteRule>>,
    /// `null` turns the route's response cache off.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u64>, maximum = 2592000u64)]
    pub cache_ttl_secs: Option<Option<u64>>,
    #[serde(default)]
    pub cache_scope: Option<CacheScope>,
    #[serde(default)]
    pub cache_sampled: Option<bool>,
}

/// What `POST /api/admin/ai-providers/:id/sync-models` did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SyncReport {
    pub provider_code: String,
    /// Where the list came from: the provider's API, or Maestro's own list for a built-in kind
    /// whose API lists no models.
    pub source: ModelListSource,
    /// How many models the provider listed.
    pub listed: usize,
    /// Models added, inactive and without prices: set prices, then activate them.
    pub added: Vec<ModelView>,
    /// Listed models the catalog already had (left as they are).
    pub existing: Vec<String>,
    /// Catalog models the provider did not list (left as they are).
    pub not_listed: Vec<String>,
}

/// Where a synced model list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelListSource {
    Provider,
    BuiltIn,
}

/// What a validation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValidationOutcome {
    /// The provider accepted the key: its status is `normal` now.
    Valid,
    /// The provider refused the key (401/403): its status is `invalid` now.
    Invalid,
    /// The key is limited or out of quota right now; its status is unchanged.
    RateLimited,
    /// The provider failed or could not be reached; nothing is known about the key.
    Unreachable,
}

/// The answer of `POST /api/admin/ai-providers/keys/:id/validate`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ValidationReport {
    pub outcome: ValidationOutcome,
    pub valid: bool,
    /// The provider's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// The provider's error message (the key masked), when it failed.
    pub message: Option<String>,
    /// Models the provider listed for this key, when it worked.
    pub models_listed: Option<usize>,
    pub key: KeyView,
}

/// What a key's test call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyTestOutcome {
    /// The provider answered the call: the key works (its status is `normal` now).
    Ok,
    /// The provider refused the key (401/403): its status is `invalid` now.
    Invalid,
    /// The key is limited or out of quota at the provider right now; its status is unchanged.
    RateLimited,
    /// Maestro's own limits for the key are full: nothing was sent.
    AtLimit,
    /// The provider failed otherwise (a model it does not serve, a 5xx, a timeout); the key's
    /// status is unchanged.
    Failed,
}

/// `POST /api/admin/ai-providers/keys/:id/test`: optionally which model to call.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestKey {
    /// `provider/model` or the model's code; default: the provider's first active chat model
    /// (else its first chat model).
    #[serde(default)]
    pub model: Option<String>,
}

/// The answer of a key's test call: one real chat completion of at most 1 output token with this
/// key alone, recorded in the call log (`request_type: key_test`) and costed like any call.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyTestReport {
    pub outcome: KeyTestOutcome,
    pub ok: bool,
    /// The model called, `provider/model`.
    pub model: String,
    /// The provider's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// The provider's error message (the key masked), when it failed.
    pub message: Option<String>,
    /// How long the call took, ms (0 when nothing was sent).
    pub latency_ms: u64,
    /// What the call cost, micro-USD, at the model's prices.
    pub cost_micros: u64,
    /// The call's id in the log (`null` when nothing was sent).
    pub request_id: Option<String>,
    pub key: KeyView,
}

/// The domain values an update starts from, for [`crate::admin`]'s merges.
pub(crate) fn prices_with(current: Prices, update: &UpdatePrices) -> Prices {
    Prices {
        input: update.input_price.unwrap_or(current.input),
        cached_input: update.cached_input_price.unwrap_or(current.cached_input),
        cache_write: update.cache_write_price.unwrap_or(current.cache_write),
        output: update.output_price.unwrap_or(current.output),
    }
}

/// A model's domain value with an update applied (validation is the caller's).
pub(crate) fn model_with(current: &Model, u: &UpdateModel) -> Model {
    Model {
        provider: current.provider.clone(),
        model: current.model.clone(),
        model_type: u.model_type.clone().unwrap_or_else(|| current.model_type.clone()),
        context_window: u.max_input_tokens.unwrap_or(current.context_window),
        max_output_tokens: u.max_output_tokens.unwrap_or(current.max_output_tokens),
        supports_streaming: u.supports_streaming.unwrap_or(current.supports_streaming),
        supports_tools: u.supports_function_call.unwrap_or(current.supports_tools),
        supports_vision: u.supports_vision.unwrap_or(current.supports_vision),
        prices: u.prices.as_ref().map_or(current.prices, |p| prices_with(current.prices, p)),
        is_active: u.is_active.unwrap_or(current.is_active),
        is_default: u.is_default.unwrap_or(current.is_default),
        drop_params: u.drop_params.unwrap_or(current.drop_params),
        created: current.created,
        cache: CachePolicy {
            ttl_secs: u.cache_ttl_secs.unwrap_or(current.cache.ttl_secs),
            scope: u.cache_scope.unwrap_or(current.cache.scope),
            sampled: u.cache_sampled.unwrap_or(current.cache.sampled),
        },
    }
}

/// A key's domain value with an update applied; the secret fields are the caller's.
pub(crate) fn key_with(current: &ApiKey, u: &UpdateKey) -> ApiKey {
    ApiKey {
        name: u.key_name.as_deref().map_or_else(|| current.name.clone(), |n| n.trim().to_string()),
        priority: u.priority.unwrap_or(current.priority),
        is_active: u.is_active.unwrap_or(current.is_active),
        limits: crate::domain::KeyLimits {
            rpm: u.rate_limit_rpm.unwrap_or(current.limits.rpm),
            tpm: u.rate_limit_tpm.unwrap_or(current.limits.tpm),
            rpd: u.rate_limit_rpd.unwrap_or(current.limits.rpd),
        },
        ..current.clone()
    }
}

/// Targets as stored: trimmed.
fn trimmed(targets: &[String]) -> Vec<String> {
    targets.iter().map(|t| t.trim().to_string()).collect()
}

/// A new route's domain value.
pub(crate) fn new_route(name: &str, body: &CreateRoute) -> Route {
    Route {
        name: name.to_string(),
        targets: trimmed(&body.targets),
        drop_params: body.drop_params,
        strategy: body.strategy,
        weights: body.weights.clone(),
        rules: body.rules.iter().map(|r| RouteRule { targets: trimmed(&r.targets), ..r.clone() }).collect(),
        cache_ttl_secs: body.cache_ttl_secs,
        cache_scope: body.cache_scope,
        cache_sampled: body.cache_sampled,
    }
}

/// A route's domain value with an update applied.
pub(crate) fn route_with(current: &Route, u: &UpdateRoute) -> Route {
    let rules = u.rules.as_ref().unwrap_or(&current.rules);
    Route {
        name: current.name.clone(),
        targets: trimmed(u.targets.as_ref().unwrap_or(&current.targets)),
        drop_params: u.drop_params.unwrap_or(current.drop_params),
        strategy: u.strategy.unwrap_or(current.strategy),
        weights: u.weights.clone().unwrap_or_else(|| current.weights.clone()),
        rules: rules.iter().map(|r| RouteRule { targets: trimmed(&r.targets), ..r.clone() }).collect(),
        cache_ttl_secs: u.cache_ttl_secs.unwrap_or(current.cache_ttl_secs),
        cache_scope: u.cache_scope.unwrap_or(current.cache_scope),
        cache_sampled: u.cache_sampled.unwrap_or(current.cache_sampled),
    }
}

/// A provider's domain value with an update applied; headers are merged by the caller.
pub(crate) fn provider_with(current: &Provider, u: &UpdateProvider) -> Provider {
    Provider {
        code: current.code.clone(),
        kind: u.kind.unwrap_or(current.kind),
        name: u.provider_name.as_deref().map_or_else(|| current.name.clone(), |n| n.trim().to_string()),
        base_url: u.base_url.as_deref().map_or_else(|| current.base_url.clone(), normalize_url),
        headers: current.headers.clone(),
        is_active: u.is_active.unwrap_or(current.is_active),
        sort_order: u.sort_order.unwrap_or(current.sort_order),
    }
}

/// A base URL as stored: trimmed, without a trailing `/`.
pub(crate) fn normalize_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}
