//! The admin API's rules: validation of every field, the JSON views, version checks, where key
//! secrets go, model sync and key validation. `functions/admin` turns HTTP into calls of
//! [`Admin`] and its results back into HTTP; nothing here knows about requests.
//!
//! Secrets: a key's secret goes into the [`SecretStore`] under a reference that is new at every
//! rotation (`admin/<key id>/<random>`), so a container that cached the old value by reference
//! can never serve it for the new one; the old secret is deleted once the key points elsewhere.
//! No secret is ever put in a response, an error or a log line.

pub mod views;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use crate::bootstrap::{built_in_models, key_id};
use crate::domain::{
    ApiKey, ChatRequest, KINDS, KeyLimits, KeyStatus, Model, Prices, Provider, ProviderKind, Route, Usage,
};
use crate::error::ApiError;
use crate::logs::{CallStatus, KeyAttempts, LOG_EVENT_VERSION, LogEvent, LogSink};
use crate::providers::{Call, ListedModel, ProviderClient, ProviderErrorKind};
use crate::secret::SecretString;
use crate::stats::StatsQuery;
use crate::store::{
    AdminCatalog, AdminProviderEntry, CatalogAdminStore, CatalogStore, CounterStore, KeyRecord, Reservation,
    SecretStore, StatsStore, StoreError, WindowUsage,
};
use views::{
    CreateKey, CreateProvider, CreateRoute, KeyTestOutcome, KeyTestReport, KeyView, KindView, ModelListSource,
    ModelView, ProviderConfigView, ProviderView, RouteView, SyncReport, TestKey, UpdateKey, UpdateModel,
    UpdateProvider, UpdateRoute, ValidationOutcome, ValidationReport,
};

/// Longest names, descriptions, URLs and secrets accepted.
const MAX_NAME_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 2_000;
const MAX_URL_CHARS: usize = 2_000;
const MAX_SECRET_CHARS: usize = 4_096;
const MAX_HEADERS: usize = 32;
/// Largest price accepted: $1,000,000 per million tokens, far above any real one (and within
/// what every store keeps exactly).
const MAX_PRICE: u64 = 1_000_000_000_000;
/// Largest token limit or rate limit accepted.
const MAX_LIMIT: u64 = 1_000_000_000_000;
/// Largest |priority| and |sort_order| accepted.
const MAX_ORDER: i64 = 1_000_000;
/// How long a model-list call (sync, validation) or a key's test call may take.
pub const PROVIDER_CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// `request_type` of a key's test call in the call log.
pub const REQUEST_TYPE_KEY_TEST: &str = "key_test";
/// What a key's test call asks: one word back at most.
const TEST_PROMPT: &str = "Reply with one word: ok";
/// Tokens a test call reserves in the key's windows (a short prompt, one token out).
const TEST_TOKENS: u64 = 32;

/// The admin API over the stores it needs.
#[derive(Clone)]
pub struct Admin {
    pub catalog: Arc<dyn CatalogAdminStore>,
    /// For key health (`set_key_status`), shared with the gateway.
    pub health: Arc<dyn CatalogStore>,
    pub counters: Arc<dyn CounterStore>,
    /// Today's use of each key, from the daily stats (the ledger; the windows count only limits).
    pub stats: Arc<dyn StatsStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub client: ProviderClient,
    /// Where a key's test call is recorded, as the gateway records its calls.
    pub log_sink: Arc<dyn LogSink>,
}

/// The version an update is based on: the body's `version` or the `If-Match` header; both must
/// agree when both are sent.
pub fn expected_version(body: Option<u64>, if_match: Option<u64>) -> Result<u64, ApiError> {
    if let Some(v) = body {
        check_version("version", v)?;
    }
    match (body, if_match) {
        (Some(a), Some(b)) if a != b => Err(ApiError::invalid_param(
            "version",
            format!("The body's `version` ({a}) and `If-Match` ({b}) disagree."),
        )),
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Err(ApiError::version_required()),
    }
}

/// Reads an `If-Match` value: `"3"`, `W/"3"` or `3`. `Err` for anything else.
pub fn parse_if_match(value: &str) -> Result<u64, ApiError> {
    let v = value.trim();
    let v = v.strip_prefix("W/").unwrap_or(v).trim_matches('"');
    let version = v.parse().map_err(|_| {
        ApiError::invalid_param("If-Match", "`If-Match` must be the version you read, e.g. `\"3\"`.".to_string())
    })?;
    check_version("If-Match", version)?;
    Ok(version)
}

/// Largest version a store can hold (and far above any real one).
const MAX_VERSION: u64 = 1 << 53;

fn check_version(field: &str, version: u64) -> Result<(), ApiError> {
    if version > MAX_VERSION {
        return Err(ApiError::invalid_param(field, format!("`{field}` is not a version any item can have.")));
    }
    Ok(())
}

// ---- Validation -----------------------------------------------------------------------------

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_param(field, message)
}

fn check_code(field: &str, code: &str) -> Result<(), ApiError> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && code.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        // `/api/admin/ai-providers/keys/…` names keys and `…/kinds` the kinds, not a provider.
        && code != "keys"
        && code != "kinds";
    if ok {
        Ok(())
    } else {
        Err(bad(field, format!("`{field}` must be 1–64 of a-z 0-9 _ -, starting with a letter or digit.")))
    }
}

fn check_text(field: &str, value: &str, max: usize, required: bool) -> Result<(), ApiError> {
    if required && value.trim().is_empty() {
        return Err(bad(field, format!("`{field}` must not be empty.")));
    }
    if value.chars().count() > max {
        return Err(bad(field, format!("`{field}` must be at most {max} characters.")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(bad(field, format!("`{field}` must not contain control characters.")));
    }
    Ok(())
}

fn check_url(field: &str, url: &str) -> Result<(), ApiError> {
    let url = url.trim();
    let written_out = url.starts_with("http://") || url.starts_with("https://");
    let parsed = reqwest::Url::parse(url).ok().filter(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()) && u.query().is_none()
    });
    let ok = written_out && url.len() <= MAX_URL_CHARS && parsed.is_some() && url.is_ascii();
    if ok {
        Ok(())
    } else {
        Err(bad(field, format!("`{field}` must be an http:// or https:// URL (ASCII, no query string).")))
    }
}

fn check_order(field: &str, value: i64) -> Result<(), ApiError> {
    if !(-MAX_ORDER..=MAX_ORDER).contains(&value) {
        return Err(bad(field, format!("`{field}` must be between -{MAX_ORDER} and {MAX_ORDER}.")));
    }
    Ok(())
}

fn check_limit(field: &str, value: Option<u64>) -> Result<(), ApiError> {
    match value {
        Some(0) => Err(bad(field, format!("`{field}` must be at least 1 (send null for no limit)."))),
        Some(v) if v > MAX_LIMIT => Err(bad(field, format!("`{field}` must be at most {MAX_LIMIT}."))),
        _ => Ok(()),
    }
}

fn check_price(field: &str, value: Option<u64>) -> Result<(), ApiError> {
    match value {
        Some(v) if v > MAX_PRICE => {
            Err(bad(field, format!("`{field}` must be at most {MAX_PRICE} micro-USD per million tokens.")))
        }
        _ => Ok(()),
    }
}

fn check_headers(config: &ProviderConfigView) -> Result<(), ApiError> {
    if config.headers.len() > MAX_HEADERS {
        return Err(bad("config.headers", format!("At most {MAX_HEADERS} headers.")));
    }
    for (name, value) in &config.headers {
        if http::HeaderName::from_bytes(name.trim().as_bytes()).is_err() || name.trim().is_empty() {
            return Err(bad("config.headers", format!("`{name}` is not a valid HTTP header name.")));
        }
        // The value may be a credential: only its header's name is ever named.
        if http::HeaderValue::from_str(value.trim()).is_err() {
            return Err(bad(
                "config.headers",
                format!("The value of header `{name}` is not a valid HTTP header value."),
            ));
        }
    }
    Ok(())
}

/// The kinds an admin may create: every real provider, never the local runner's demo.
fn creatable(kind: ProviderKind) -> Result<ProviderKind, ApiError> {
    if kind.spec().creatable {
        return Ok(kind);
    }
    let kinds: Vec<&str> = KINDS.iter().filter(|s| s.creatable).map(|s| s.id).collect();
    Err(bad("kind", format!("`kind` must be one of {}; {} is built in.", kinds.join(", "), kind.as_str())))
}

fn check_secret(field: &str, secret: &str) -> Result<SecretString, ApiError> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(bad(field, format!("`{field}` must not be empty.")));
    }
    // The value is never echoed: not in this message, not in any other.
    if secret.chars().count() > MAX_SECRET_CHARS || http::HeaderValue::from_str(secret).is_err() {
        return Err(bad(
            field,
            format!("`{field}` must be at most {MAX_SECRET_CHARS} printable characters that can be sent in a header."),
        ));
    }
    Ok(SecretString::new(secret))
}

/// `provider/model` → its parts; the provider code never holds a `/`, the model may.
pub fn split_model_id(id: &str) -> Option<(&str, &str)> {
    id.split_once('/').filter(|(p, m)| !p.is_empty() && !m.is_empty())
}

fn check_route_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if ok { Ok(()) } else { Err(bad("name", "`name` must be 1–64 of A-Z a-z 0-9 . _ : - (no `/`).")) }
}

/// A route's shape ([`Route::check`]) and that every target, its rules' too, is in the catalog.
fn check_route(catalog: &AdminCatalog, route: &Route) -> Result<(), ApiError> {
    route.check().map_err(|p| bad(&p.field, p.message))?;
    let lists = std::iter::once(("targets".to_string(), &route.targets))
        .chain(route.rules.iter().enumerate().map(|(i, r)| (format!("rules[{i}].targets"), &r.targets)));
    for (list, targets) in lists {
        for (i, target) in targets.iter().enumerate() {
            let field = format!("{list}[{i}]");
            let Some((provider, model)) = split_model_id(target) else {
                return Err(bad(&field, format!("`{field}` must be `provider/model`.")));
            };
            if catalog.model(provider, model).is_none() {
                return Err(bad(&field, format!("`{field}`: the catalog has no model `{target}`.")));
            }
        }
    }
    Ok(())
}

/// Headers to store: a value sent back masked (as responses show it) keeps the stored value.
fn merged_headers(stored: &BTreeMap<String, String>, sent: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    sent.iter()
        .map(|(name, value)| {
            let name = name.trim().to_string();
            let kept = stored
                .get(&name)
                .filter(|old| views::is_credential_header(&name) && crate::secret::mask(old) == *value)
                .cloned();
            (name, kept.unwrap_or_else(|| value.trim().to_string()))
        })
        .collect()
}

// ---- Operations -----------------------------------------------------------------------------

impl Admin {
    async fn load(&self) -> Result<AdminCatalog, ApiError> {
        self.catalog.load_admin_catalog().await.map_err(ApiError::from)
    }

    /// Today's calls and tokens of each key, from today's stats rows (one read for all keys); a
    /// failed read shows zeros (and is logged).
    async fn today(&self, keys: &[&KeyRecord]) -> Vec<WindowUsage> {
        let date = crate::time::stats_date(crate::time::now_ms());
        let query = StatsQuery { from_date: date.clone(), to_date: date, ..StatsQuery::default() };
        let rows = self.stats.stats_rows(&query).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read today's stats for the keys");
            Vec::new()
        });
        let mut by_key: std::collections::HashMap<&str, WindowUsage> = std::collections::HashMap::new();
        for row in &rows {
            let used = by_key.entry(row.key_id.as_str()).or_default();
            used.requests += row.counters.requests;
            used.tokens += row.counters.prompt_tokens + row.counters.completion_tokens;
        }
        keys.iter().map(|k| by_key.get(k.key.id.as_str()).copied().unwrap_or_default()).collect()
    }

    async fn key_views(&self, keys: &[&KeyRecord]) -> Vec<KeyView> {
        let today = self.today(keys).await;
        keys.iter().zip(today).map(|(k, t)| KeyView::new(k, t)).collect()
    }

    async fn provider_view(&self, entry: &AdminProviderEntry) -> ProviderView {
        let keys: Vec<&KeyRecord> = entry.keys.iter().collect();
        let models = entry.models.iter().map(ModelView::from).collect();
        ProviderView::new(&entry.provider, models, self.key_views(&keys).await)
    }

    async fn provider_by_code(&self, code: &str) -> Result<ProviderView, ApiError> {
        let catalog = self.load().await?;
        let entry = catalog.provider(code).ok_or_else(|| no_provider(code))?;
        Ok(self.provider_view(entry).await)
    }

    /// The provider kinds, from the kinds table (the console's choice of kind).
    pub fn list_kinds(&self) -> Vec<KindView> {
        KINDS.iter().map(KindView::from).collect()
    }

    pub async fn list_providers(&self) -> Result<Vec<ProviderView>, ApiError> {
        let catalog = self.load().await?;
        Ok(join_all(catalog.providers.iter().map(|e| self.provider_view(e))).await)
    }

    pub async fn create_provider(&self, body: CreateProvider) -> Result<ProviderView, ApiError> {
        let code = body.provider_code.trim().to_string();
        check_code("provider_code", &code)?;
        check_text("provider_name", &body.provider_name, MAX_NAME_CHARS, true)?;
        let kind = creatable(body.kind)?;
        let base_url = match body.base_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => {
                check_url("base_url", url)?;
                views::normalize_url(url)
            }
            None if kind == ProviderKind::OpenaiCompatible => {
                return Err(bad("base_url", "`base_url` is required for an openai_compatible provider."));
            }
            None => kind.spec().default_base_url.to_string(),
        };
        if let Some(d) = &body.description {
            check_text("description", d, MAX_DESCRIPTION_CHARS, false)?;
        }
        let config = body.config.unwrap_or_default();
        check_headers(&config)?;
        let sort_order = body.sort_order.unwrap_or(100);
        check_order("sort_order", sort_order)?;
        let provider = Provider {
            code: code.clone(),
            kind,
            name: body.provider_name.trim().to_string(),
            base_url,
            headers: merged_headers(&BTreeMap::new(), &config.headers),
            is_active: body.is_active.unwrap_or(true),
            sort_order,
        };
        let description = body.description.as_deref().map(str::trim).filter(|d| !d.is_empty());
        self.catalog.create_provider(&provider, description).await.map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::conflict(format!("A provider `{code}` exists already.")),
            other => ApiError::from(other),
        })?;
        self.provider_by_code(&code).await
    }

    pub async fn update_provider(
        &self,
        code: &str,
        body: UpdateProvider,
        if_match: Option<u64>,
    ) -> Result<ProviderView, ApiError> {
        let expected = expected_version(body.version, if_match)?;
        if let Some(sent) = body.provider_code.as_deref().filter(|c| *c != code) {
            return Err(bad(
                "provider_code",
                format!("`provider_code` `{sent}` is not the path's `{code}`; codes cannot change."),
            ));
        }
        if let Some(name) = &body.provider_name {
            check_text("provider_name", name, MAX_NAME_CHARS, true)?;
        }
        if let Some(url) = &body.base_url {
            check_url("base_url", url)?;
        }
        if let Some(Some(d)) = &body.description {
            check_text("description", d, MAX_DESCRIPTION_CHARS, false)?;
        }
        if let Some(config) = &body.config {
            check_headers(config)?;
        }
        if let Some(order) = body.sort_order {
            check_order("sort_order", order)?;
        }
        let catalog = self.load().await?;
        let current = catalog.provider(code).ok_or_else(|| no_provider(code))?;
        let old = &current.provider.provider;
        match (old.kind, body.kind) {
            (ProviderKind::Demo, Some(k)) if k != ProviderKind::Demo => {
                return Err(bad("kind", "The demo provider's kind cannot change."));
            }
            (ProviderKind::Demo, _) => {}
            (_, Some(k)) => {
                creatable(k)?;
            }
            _ => {}
        }
        let mut provider = views::provider_with(old, &body);
        if let Some(config) = &body.config {
            provider.headers = merged_headers(&old.headers, &config.headers);
        }
        if provider.kind == ProviderKind::OpenaiCompatible && provider.base_url.is_empty() {
            return Err(bad("base_url", "`base_url` is required for an openai_compatible provider."));
        }
        let description = match &body.description {
            None => current.provider.description.clone(),
            Some(d) => d.as_deref().map(str::trim).filter(|d| !d.is_empty()).map(str::to_string),
        };
        self.catalog.update_provider(&provider, description.as_deref(), expected).await.map_err(ApiError::from)?;
        self.provider_by_code(code).await
    }

    /// Reads the provider's model list with one of its keys and adds the models the catalog
    /// lacks: inactive, with the limits and display name the list gives, and the prices Maestro
    /// ships for that model if it ships any (else none: the list does not tell them). A built-in
    /// kind whose API has no model list (404/405) gets Maestro's own list for it instead
    /// (`source: "built_in"`). Nothing already in the catalog changes.
    pub async fn sync_models(&self, code: &str) -> Result<SyncReport, ApiError> {
        let catalog = self.load().await?;
        let entry = catalog.provider(code).ok_or_else(|| no_provider(code))?;
        let provider = &entry.provider.provider;
        let secret = self.sync_key(entry).await?;
        let shipped = built_in_models(provider.kind);
        let (listed, source) = match self.client.list_models(provider, &secret, PROVIDER_CALL_TIMEOUT).await {
            Ok(listed) => (listed.iter().map(|m| listed_model(code, m, &shipped)).collect(), ModelListSource::Provider),
            Err(e) if matches!(e.status, Some(404 | 405)) && !shipped.is_empty() => {
                let own = shipped.iter().map(|m| {
                    (Model { provider: code.to_string(), is_active: false, is_default: false, ..m.clone() }, None)
                });
                (own.collect::<Vec<_>>(), ModelListSource::BuiltIn)
            }
            Err(e) => return Err(upstream(code, e.kind, e.status, &scrubbed(&e.message, &secret, provider))),
        };
        let known: HashSet<&str> = entry.models.iter().map(|m| m.model.model.as_str()).collect();
        let mut seen = HashSet::new();
        let (mut added, mut existing) = (Vec::new(), Vec::new());
        for (new, name) in &listed {
            if !seen.insert(new.model.as_str()) {
                continue;
            }
            if known.contains(new.model.as_str()) {
                existing.push(new.model.clone());
                continue;
            }
            if self.catalog.create_model_if_absent(new, name.as_deref()).await.map_err(ApiError::from)? {
                added.push(new.model.clone());
            } else {
                existing.push(new.model.clone());
            }
        }
        let not_listed =
            entry.models.iter().map(|m| m.model.model.clone()).filter(|m| !seen.contains(m.as_str())).collect();
        let after = self.load().await?;
        let added = added.iter().filter_map(|m| after.model(code, m)).map(ModelView::from).collect();
        Ok(SyncReport { provider_code: code.to_string(), source, listed: seen.len(), added, existing, not_listed })
    }

    /// The secret a sync calls with: the best active key (normal first, then by priority); an
    /// OpenAI-compatible server without any key is called without one (local servers need none).
    async fn sync_key(&self, entry: &AdminProviderEntry) -> Result<SecretString, ApiError> {
        let mut keys: Vec<&KeyRecord> = entry.keys.iter().filter(|k| k.key.is_active).collect();
        keys.sort_by_key(|k| (k.key.status != KeyStatus::Normal, -k.key.priority));
        match keys.first() {
            Some(k) => self.secret_of(&k.key).await,
            None if matches!(entry.provider.provider.kind, ProviderKind::OpenaiCompatible | ProviderKind::Demo) => {
                Ok(SecretString::new(""))
            }
            None => Err(ApiError::conflict(format!(
                "Provider `{}` has no active key to read its model list with; add one first.",
                entry.provider.provider.code
            ))),
        }
    }

    async fn secret_of(&self, key: &ApiKey) -> Result<SecretString, ApiError> {
        self.secrets.get_secret(&key.secret_ref).await.map_err(|e| {
            tracing::error!(key_id = %key.id, error = %e, "cannot read a key's secret");
            match e {
                StoreError::NotFound(_) => ApiError::conflict(format!(
                    "The secret of key `{}` is missing from the secret store; rotate it with a new `api_key`.",
                    key.id
                )),
                _ => ApiError::internal(),
            }
        })
    }

    pub async fn list_keys(&self, code: &str) -> Result<Vec<KeyView>, ApiError> {
        let catalog = self.load().await?;
        let entry = catalog.provider(code).ok_or_else(|| no_provider(code))?;
        let keys: Vec<&KeyRecord> = entry.keys.iter().collect();
        Ok(self.key_views(&keys).await)
    }

    async fn key_view(&self, key_id: &str) -> Result<KeyView, ApiError> {
        let catalog = self.load().await?;
        let record = catalog.key(key_id).ok_or_else(|| no_key(key_id))?;
        Ok(self.key_views(&[record]).await.remove(0))
    }

    pub async fn create_key(&self, code: &str, body: CreateKey) -> Result<KeyView, ApiError> {
        check_text("key_name", &body.key_name, 64, true)?;
        let name = body.key_name.trim().to_string();
        if !name.chars().any(|c| c.is_ascii_alphanumeric()) {
            return Err(bad("key_name", "`key_name` must contain at least one letter or digit."));
        }
        let secret = check_secret("api_key", &body.api_key)?;
        let priority = body.priority.unwrap_or(0);
        check_order("priority", priority)?;
        check_limit("rate_limit_rpm", body.rate_limit_rpm)?;
        check_limit("rate_limit_tpm", body.rate_limit_tpm)?;
        check_limit("rate_limit_rpd", body.rate_limit_rpd)?;
        let catalog = self.load().await?;
        let entry = catalog.provider(code).ok_or_else(|| no_provider(code))?;
        let id = key_id(code, &name);
        if catalog.key(&id).is_some() || entry.keys.iter().any(|k| k.key.name.eq_ignore_ascii_case(&name)) {
            return Err(ApiError::conflict(format!("Provider `{code}` has a key named `{name}` (id `{id}`) already.")));
        }
        let secret_ref = new_secret_ref(&id);
        self.secrets.put_secret(&secret_ref, &secret).await.map_err(ApiError::from)?;
        let key = ApiKey {
            id: id.clone(),
            provider: code.to_string(),
            name,
            secret_ref: secret_ref.clone(),
            masked: secret.masked(),
            priority,
            is_active: body.is_active.unwrap_or(true),
            status: KeyStatus::Normal,
            cooldown_until: None,
            limits: KeyLimits { rpm: body.rate_limit_rpm, tpm: body.rate_limit_tpm, rpd: body.rate_limit_rpd },
        };
        if let Err(e) = self.catalog.create_key(&key).await {
            self.forget_secret(&secret_ref).await;
            return Err(match e {
                StoreError::Conflict(_) => ApiError::conflict(format!("A key with id `{id}` exists already.")),
                StoreError::NotFound(_) => no_provider(code),
                other => ApiError::from(other),
            });
        }
        self.key_view(&id).await
    }

    pub async fn update_key(&self, key_id: &str, body: UpdateKey, if_match: Option<u64>) -> Result<KeyView, ApiError> {
        let expected = expected_version(body.version, if_match)?;
        if let Some(name) = &body.key_name {
            check_text("key_name", name, 64, true)?;
        }
        let secret = body.api_key.as_deref().map(|s| check_secret("api_key", s)).transpose()?;
        if let Some(p) = body.priority {
            check_order("priority", p)?;
        }
        check_limit("rate_limit_rpm", body.rate_limit_rpm.flatten())?;
        check_limit("rate_limit_tpm", body.rate_limit_tpm.flatten())?;
        check_limit("rate_limit_rpd", body.rate_limit_rpd.flatten())?;
        let catalog = self.load().await?;
        let current = catalog.key(key_id).ok_or_else(|| no_key(key_id))?;
        let mut key = views::key_with(&current.key, &body);
        if let Some(name) = &body.key_name {
            let taken = catalog.provider(&key.provider).is_some_and(|p| {
                p.keys.iter().any(|k| k.key.id != key_id && k.key.name.eq_ignore_ascii_case(name.trim()))
            });
            if taken {
                return Err(ApiError::conflict(format!(
                    "Provider `{}` has a key named `{}` already.",
                    key.provider,
                    name.trim()
                )));
            }
        }
        let old_ref = current.key.secret_ref.clone();
        if let Some(secret) = &secret {
            key.secret_ref = new_secret_ref(key_id);
            key.masked = secret.masked();
            self.secrets.put_secret(&key.secret_ref, secret).await.map_err(ApiError::from)?;
        }
        match self.catalog.update_key(&key, expected).await {
            Ok(_) if secret.is_some() => self.forget_secret(&old_ref).await,
            Ok(_) => {}
            Err(e) => {
                if secret.is_some() {
                    self.forget_secret(&key.secret_ref).await;
                }
                return Err(ApiError::from(e));
            }
        }
        self.key_view(key_id).await
    }

    pub async fn delete_key(&self, key_id: &str, if_match: Option<u64>) -> Result<(), ApiError> {
        let catalog = self.load().await?;
        let current = catalog.key(key_id).ok_or_else(|| no_key(key_id))?;
        self.catalog.delete_key_versioned(key_id, if_match).await.map_err(ApiError::from)?;
        // Only a secret this key alone used (the demo key's and config-imported ones are
        // rewritten by the next start anyway).
        self.forget_secret(&current.key.secret_ref).await;
        Ok(())
    }

    /// A cheap, real call with the key (the provider's model list); sets the key's status from
    /// what the provider said.
    pub async fn validate_key(&self, key_id: &str) -> Result<ValidationReport, ApiError> {
        let catalog = self.load().await?;
        let record = catalog.key(key_id).ok_or_else(|| no_key(key_id))?;
        let entry = catalog.provider(&record.key.provider).ok_or_else(|| no_key(key_id))?;
        let secret = self.secret_of(&record.key).await?;
        let result = self.client.list_models(&entry.provider.provider, &secret, PROVIDER_CALL_TIMEOUT).await;
        let (outcome, http_status, message, listed) = match &result {
            Ok(models) => (ValidationOutcome::Valid, Some(200), None, Some(models.len())),
            Err(e) => {
                let outcome = match e.kind {
                    ProviderErrorKind::Auth => ValidationOutcome::Invalid,
                    ProviderErrorKind::RateLimited | ProviderErrorKind::QuotaExceeded => ValidationOutcome::RateLimited,
                    _ => ValidationOutcome::Unreachable,
                };
                (outcome, e.status, Some(scrubbed(&e.message, &secret, &entry.provider.provider)), None)
            }
        };
        let status = match outcome {
            ValidationOutcome::Valid => Some(KeyStatus::Normal),
            ValidationOutcome::Invalid => Some(KeyStatus::Invalid),
            _ => None,
        };
        if let Some(status) = status {
            self.health.set_key_status(key_id, status, None).await.map_err(ApiError::from)?;
        }
        if let Some(message) = &message {
            self.note_error(key_id, &key_error_note(http_status, message)).await;
        }
        tracing::info!(key_id, outcome = ?outcome, http_status, "key validated");
        Ok(ValidationReport {
            outcome,
            valid: outcome == ValidationOutcome::Valid,
            http_status,
            message,
            models_listed: listed,
            key: self.key_view(key_id).await?,
        })
    }

    /// A real call with this key alone: a chat completion of at most one output token to one of
    /// the provider's models, through the provider client as the gateway sends it. The key's
    /// windows count it (refused when they are full: nothing is sent), its status follows what
    /// the provider said (normal, or invalid on 401/403), a failure is noted as the key's last
    /// error, and the call is recorded in the call log like any call (`request_type: key_test`,
    /// under the admin's user id, costed at the model's prices; it holds no user's credits).
    pub async fn test_key(&self, key_id: &str, body: TestKey, admin: &str) -> Result<KeyTestReport, ApiError> {
        let catalog = self.load().await?;
        let record = catalog.key(key_id).ok_or_else(|| no_key(key_id))?;
        let entry = catalog.provider(&record.key.provider).ok_or_else(|| no_key(key_id))?;
        let provider = &entry.provider.provider;
        let model = test_model(entry, body.model.as_deref())?;
        let model_id = format!("{}/{}", provider.code, model.model);
        let secret = self.secret_of(&record.key).await?;
        let request: ChatRequest = serde_json::from_value(serde_json::json!({
            "model": model.model,
            "messages": [{"role": "user", "content": TEST_PROMPT}],
            "max_tokens": 1,
        }))
        .map_err(|e| {
            tracing::error!(error = %e, "cannot build a key's test call");
            ApiError::internal()
        })?;
        let now = crate::time::now_ms();
        let reservation =
            self.counters.reserve(key_id, &record.key.limits, now, TEST_TOKENS).await.map_err(ApiError::from)?;
        let grant = match reservation {
            Reservation::Granted(grant) => grant,
            Reservation::Refused { until_ms, .. } => {
                let until = chrono::DateTime::from_timestamp_millis(until_ms)
                    .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
                return Ok(KeyTestReport {
                    outcome: KeyTestOutcome::AtLimit,
                    ok: false,
                    model: model_id,
                    http_status: None,
                    message: Some(format!("The key is at one of its limits in Maestro until {until}.")),
                    latency_ms: 0,
                    cost_micros: 0,
                    request_id: None,
                    key: self.key_view(key_id).await?,
                });
            }
        };
        let started = std::time::Instant::now();
        let call = Call {
            provider,
            model,
            api_key: &secret,
            request: &request,
            default_max_tokens: 1,
            timeout: PROVIDER_CALL_TIMEOUT,
        };
        let result = self.client.chat(call).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let request_id = format!("req_{}", uuid::Uuid::now_v7().simple());
        let (outcome, usage, http_status, message, sent) = match &result {
            Ok(reply) => (KeyTestOutcome::Ok, reply.usage, Some(200), None, true),
            Err(e) => {
                let outcome = match e.kind {
                    ProviderErrorKind::Auth => KeyTestOutcome::Invalid,
                    ProviderErrorKind::RateLimited | ProviderErrorKind::QuotaExceeded => KeyTestOutcome::RateLimited,
                    _ => KeyTestOutcome::Failed,
                };
                // Refused by Maestro before sending (no status): nothing reached the provider.
                let sent = !(e.kind == ProviderErrorKind::InvalidRequest && e.status.is_none());
                (outcome, Usage::default(), e.status, Some(scrubbed(&e.message, &secret, provider)), sent)
            }
        };
        let used = i64::try_from(usage.total()).unwrap_or(i64::MAX);
        if let Err(e) = self.counters.reconcile(&grant, used - i64::try_from(TEST_TOKENS).unwrap_or(0)).await {
            tracing::warn!(key_id, error = %e, "a test call's tokens were not reconciled");
        }
        let cost = crate::pricing::cost_micros(&model.prices, &usage);
        match outcome {
            KeyTestOutcome::Ok if record.key.status != KeyStatus::Normal => {
                self.health.set_key_status(key_id, KeyStatus::Normal, None).await.map_err(ApiError::from)?;
            }
            KeyTestOutcome::Invalid => {
                self.health.set_key_status(key_id, KeyStatus::Invalid, None).await.map_err(ApiError::from)?;
            }
            _ => {}
        }
        if let Some(message) = &message {
            self.note_error(key_id, &key_error_note(http_status, message)).await;
        }
        if sent {
            let failed = outcome != KeyTestOutcome::Ok;
            let error_status = match &result {
                Err(e) if e.kind == ProviderErrorKind::Timeout => 504,
                _ => 502,
            };
            self.log_sink
                .send(
                    LogEvent {
                        v: LOG_EVENT_VERSION,
                        request_id: request_id.clone(),
                        ts_ms: now,
                        user_id: Some(admin.to_string()),
                        caller_key_id: None,
                        provider: provider.code.clone(),
                        model: model.model.clone(),
                        key_id: Some(key_id.to_string()),
                        route: None,
                        route_rule: None,
                        request_type: REQUEST_TYPE_KEY_TEST.to_string(),
                        stream: false,
                        status: if failed { CallStatus::Error } else { CallStatus::Success },
                        http_status: if failed { http_status.unwrap_or(error_status) } else { 200 },
                        error_code: result.as_ref().err().map(|e| e.kind.as_str().to_string()),
                        error_message: message.as_deref().map(LogEvent::clip_message),
                        prompt_tokens: usage.prompt_tokens,
                        completion_tokens: usage.completion_tokens,
                        cached_tokens: usage.cached_tokens,
                        cost_micros: cost,
                        latency_ms,
                        ttfb_ms: None,
                        attempts: 1,
                        cache_write_tokens: usage.cache_write_tokens,
                        key_attempts: vec![KeyAttempts {
                            provider: provider.code.clone(),
                            model: model.model.clone(),
                            key_id: key_id.to_string(),
                            attempts: 1,
                            errors: u32::from(failed),
                        }],
                        cache: None,
                        saved_micros: 0,
                        attempt_log: vec![crate::logs::Attempt {
                            provider: provider.code.clone(),
                            model: model.model.clone(),
                            key_id: Some(key_id.to_string()),
                            outcome: result
                                .as_ref()
                                .err()
                                .map_or(crate::logs::ATTEMPT_OK, |e| e.kind.as_str())
                                .to_string(),
                            http_status,
                            message: message.as_deref().map(|m| {
                                crate::logs::clip(
                                    &crate::secret::scrub_credentials(m),
                                    crate::logs::MAX_ATTEMPT_MESSAGE_CHARS,
                                )
                            }),
                            latency_ms,
                            skipped: Vec::new(),
                        }],
                    }
                    .bounded(),
                )
                .await;
        }
        tracing::info!(key_id, outcome = ?outcome, http_status, "key test call");
        Ok(KeyTestReport {
            outcome,
            ok: outcome == KeyTestOutcome::Ok,
            model: model_id,
            http_status,
            message,
            latency_ms,
            cost_micros: cost,
            request_id: sent.then_some(request_id),
            key: self.key_view(key_id).await?,
        })
    }

    /// Notes a key's error; a failure to is logged (the answer says it anyway).
    async fn note_error(&self, key_id: &str, message: &str) {
        if let Err(e) = self.health.note_key_error(key_id, message, crate::time::now_ms()).await {
            tracing::warn!(key_id, error = %e, "a key's error was not noted");
        }
    }

    /// Deletes a provider and its models. Refused (409) for the built-in demo, while the provider
    /// has keys (each is deleted on its own, with its secret), and while a route targets one of
    /// its models. Returns how many models went with it.
    pub async fn delete_provider(&self, code: &str, if_match: Option<u64>) -> Result<usize, ApiError> {
        let catalog = self.load().await?;
        let entry = catalog.provider(code).ok_or_else(|| no_provider(code))?;
        if entry.provider.provider.kind == ProviderKind::Demo {
            return Err(ApiError::conflict("The demo provider is built in: deactivate it instead."));
        }
        if !entry.keys.is_empty() {
            let names: Vec<&str> = entry.keys.iter().map(|k| k.key.id.as_str()).collect();
            return Err(ApiError::conflict(format!(
                "Provider `{code}` still has keys ({}): delete them first.",
                names.join(", ")
            )));
        }
        let prefix = format!("{code}/");
        let routes: Vec<&str> = catalog
            .routes
            .iter()
            .filter(|r| r.route.all_targets().iter().any(|t| t.starts_with(&prefix)))
            .map(|r| r.route.name.as_str())
            .collect();
        if !routes.is_empty() {
            return Err(ApiError::conflict(format!(
                "Routes target models of provider `{code}` ({}): change them first.",
                routes.join(", ")
            )));
        }
        self.catalog.delete_provider(code, if_match).await.map_err(ApiError::from)
    }

    pub async fn list_models(&self, provider: Option<&str>, active: Option<bool>) -> Result<Vec<ModelView>, ApiError> {
        let catalog = self.load().await?;
        if let Some(code) = provider
            && catalog.provider(code).is_none()
        {
            return Err(no_provider(code));
        }
        Ok(catalog
            .providers
            .iter()
            .filter(|e| provider.is_none_or(|p| e.provider.provider.code == p))
            .flat_map(|e| e.models.iter())
            .filter(|m| active.is_none_or(|a| m.model.is_active == a))
            .map(ModelView::from)
            .collect())
    }

    pub async fn update_model(
        &self,
        id: &str,
        body: UpdateModel,
        if_match: Option<u64>,
    ) -> Result<ModelView, ApiError> {
        let expected = expected_version(body.version, if_match)?;
        let (code, model_code) = split_model_id(id)
            .ok_or_else(|| ApiError::not_found(format!("No model `{id}`: model ids are `provider/model`.")))?;
        if let Some(Some(name)) = &body.model_name {
            check_text("model_name", name, MAX_NAME_CHARS, false)?;
        }
        if let Some(t) = &body.model_type {
            let ok = !t.is_empty() && t.len() <= 32 && t.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if !ok {
                return Err(bad("model_type", "`model_type` must be 1–32 of a-z _ (e.g. `chat`)."));
            }
        }
        check_limit("max_input_tokens", body.max_input_tokens.flatten())?;
        check_limit("max_output_tokens", body.max_output_tokens.flatten())?;
        if let Some(p) = &body.prices {
            check_price("prices.input_price", p.input_price)?;
            check_price("prices.cached_input_price", p.cached_input_price.flatten())?;
            check_price("prices.cache_write_price", p.cache_write_price.flatten())?;
            check_price("prices.output_price", p.output_price)?;
        }
        let catalog = self.load().await?;
        let current = catalog
            .model(code, model_code)
            .ok_or_else(|| ApiError::not_found(format!("No model `{id}` in the catalog.")))?;
        let model = views::model_with(&current.model, &body);
        if let Some((field, message)) = model.cache.problem() {
            return Err(bad(field, message));
        }
        let name = match &body.model_name {
            None => current.model_name.clone(),
            Some(n) => n.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string),
        };
        self.catalog.update_model(&model, name.as_deref(), expected).await.map_err(ApiError::from)?;
        let after = self.load().await?;
        after
            .model(code, model_code)
            .map(ModelView::from)
            .ok_or_else(|| ApiError::not_found(format!("No model `{id}` in the catalog.")))
    }

    pub async fn list_routes(&self) -> Result<Vec<RouteView>, ApiError> {
        Ok(self.load().await?.routes.iter().map(RouteView::from).collect())
    }

    async fn route_view(&self, name: &str) -> Result<RouteView, ApiError> {
        let catalog = self.load().await?;
        catalog.route(name).map(RouteView::from).ok_or_else(|| no_route(name))
    }

    pub async fn create_route(&self, body: CreateRoute) -> Result<RouteView, ApiError> {
        let name = body.name.trim().to_string();
        check_route_name(&name)?;
        let catalog = self.load().await?;
        let route = views::new_route(&name, &body);
        check_route(&catalog, &route)?;
        self.catalog.create_route(&route).await.map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::conflict(format!("A route `{name}` exists already.")),
            other => ApiError::from(other),
        })?;
        self.route_view(&name).await
    }

    pub async fn update_route(
        &self,
        name: &str,
        body: UpdateRoute,
        if_match: Option<u64>,
    ) -> Result<RouteView, ApiError> {
        let expected = expected_version(body.version, if_match)?;
        if let Some(sent) = body.name.as_deref().filter(|n| *n != name) {
            return Err(bad("name", format!("`name` `{sent}` is not the path's `{name}`; names cannot change.")));
        }
        let catalog = self.load().await?;
        let current = catalog.route(name).ok_or_else(|| no_route(name))?;
        let route = views::route_with(&current.route, &body);
        check_route(&catalog, &route)?;
        self.catalog.update_route(&route, expected).await.map_err(ApiError::from)?;
        self.route_view(name).await
    }

    pub async fn delete_route(&self, name: &str, if_match: Option<u64>) -> Result<(), ApiError> {
        self.catalog.delete_route(name, if_match).await.map_err(ApiError::from)
    }

    /// Deletes a secret no key points at any more; a failure leaves an orphan, logged.
    async fn forget_secret(&self, secret_ref: &str) {
        if let Err(e) = self.secrets.delete_secret(secret_ref).await {
            tracing::warn!(secret_ref, error = %e, "cannot delete a secret no key uses");
        }
    }
}

fn no_provider(code: &str) -> ApiError {
    ApiError::not_found(format!("No provider `{code}`."))
}

fn no_key(id: &str) -> ApiError {
    ApiError::not_found(format!("No key `{id}`."))
}

fn no_route(name: &str) -> ApiError {
    ApiError::not_found(format!("No route `{name}`."))
}

/// A fresh secret reference for a key: new at every rotation.
fn new_secret_ref(key_id: &str) -> String {
    format!("admin/{key_id}/{}", uuid::Uuid::new_v4().simple())
}

/// The model a key's test call goes to: the one asked for (`provider/model` or the model's code),
/// else the provider's first active chat model, else its first chat model.
fn test_model<'a>(entry: &'a AdminProviderEntry, wanted: Option<&str>) -> Result<&'a Model, ApiError> {
    let code = &entry.provider.provider.code;
    let chat = |m: &&crate::store::ModelRecord| !m.model.is_embedding();
    if let Some(wanted) = wanted.map(str::trim).filter(|w| !w.is_empty()) {
        let name = wanted.strip_prefix(&format!("{code}/")).unwrap_or(wanted);
        return entry
            .models
            .iter()
            .filter(chat)
            .find(|m| m.model.model == name)
            .map(|m| &m.model)
            .ok_or_else(|| bad("model", format!("Provider `{code}` has no chat model `{name}`.")));
    }
    entry
        .models
        .iter()
        .filter(chat)
        .find(|m| m.model.is_active)
        .or_else(|| entry.models.iter().find(chat))
        .map(|m| &m.model)
        .ok_or_else(|| {
            ApiError::conflict(format!("Provider `{code}` has no chat model to call: sync or add its models first."))
        })
}

/// A key's error as it is noted: the provider's HTTP status, when it answered, then its words.
pub(crate) fn key_error_note(status: Option<u16>, message: &str) -> String {
    match status {
        Some(status) => format!("HTTP {status}: {message}"),
        None => message.to_string(),
    }
}

/// A provider's message with every credential masked, however it got there: the key's secret,
/// and the values of the provider's credential headers (a gateway's own token may be echoed too).
pub(crate) fn scrubbed(message: &str, secret: &SecretString, provider: &Provider) -> String {
    let mut out = message.to_string();
    let mut credentials: Vec<&str> = provider
        .headers
        .iter()
        .filter(|(name, _)| views::is_credential_header(name))
        .flat_map(|(_, value)| {
            let value = value.trim();
            let token = value.split_once(' ').map(|(_, t)| t.trim());
            std::iter::once(value).chain(token)
        })
        .collect();
    if !secret.is_empty() {
        credentials.push(secret.expose());
    }
    // Longest first, so a whole value is masked before a part of it.
    credentials.sort_by_key(|c| std::cmp::Reverse(c.len()));
    for credential in credentials.into_iter().filter(|c| c.len() >= 4) {
        out = out.replace(credential, &crate::secret::mask(credential));
    }
    out
}

/// A provider's failure to list models, as this API's error.
fn upstream(code: &str, kind: ProviderErrorKind, status: Option<u16>, message: &str) -> ApiError {
    let status = status.map_or_else(String::new, |s| format!(" ({s})"));
    let text = format!("Provider `{code}` did not list its models{status}: {message}");
    match kind {
        ProviderErrorKind::Timeout => ApiError::gateway_timeout(text),
        other => ApiError::bad_gateway(other.as_str(), text),
    }
}

/// A listed model as the catalog adds it: inactive; priced as Maestro ships it when it does.
fn listed_model(code: &str, m: &ListedModel, shipped: &[Model]) -> (Model, Option<String>) {
    let known = shipped.iter().find(|s| s.model == m.id);
    let model = Model {
        provider: code.to_string(),
        model: m.id.clone(),
        // A model Maestro ships keeps its type (an embedding model stays one).
        model_type: known.map_or_else(|| crate::domain::CHAT_MODEL_TYPE.to_string(), |k| k.model_type.clone()),
        context_window: m.context_window.or(known.and_then(|k| k.context_window)),
        max_output_tokens: m.max_output_tokens.or(known.and_then(|k| k.max_output_tokens)),
        supports_streaming: true,
        supports_tools: known.is_some_and(|k| k.supports_tools),
        supports_vision: m.supports_vision.or(known.map(|k| k.supports_vision)).unwrap_or(false),
        prices: known.map_or_else(Prices::default, |k| k.prices),
        is_active: false,
        is_default: false,
        drop_params: false,
        created: crate::time::now_ms() / 1000,
        cache: crate::cache::CachePolicy::default(),
    };
    (model, m.display_name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_the_body_or_if_match_and_must_agree() {
        assert_eq!(expected_version(Some(3), None).expect("body"), 3);
        assert_eq!(expected_version(None, Some(4)).expect("header"), 4);
        assert_eq!(expected_version(Some(5), Some(5)).expect("both"), 5);
        assert_eq!(expected_version(Some(5), Some(6)).expect_err("disagree").status(), 400);
        assert_eq!(expected_version(None, None).expect_err("none").status(), 428);
        assert_eq!(parse_if_match("\"7\"").expect("quoted"), 7);
        assert_eq!(parse_if_match("W/\"8\"").expect("weak"), 8);
        assert_eq!(parse_if_match("9").expect("bare"), 9);
        assert!(parse_if_match("*").is_err());
    }

    #[test]
    fn codes_urls_and_limits_are_checked() {
        assert!(check_code("c", "my-vllm_2").is_ok());
        for bad in ["", "My", "-x", "a/b", &"x".repeat(65)] {
            assert!(check_code("c", bad).is_err(), "{bad}");
        }
        assert!(check_url("u", "http://127.0.0.1:8000/v1").is_ok());
        for bad in ["ftp://x", "https://", "https://a b", "x"] {
            assert!(check_url("u", bad).is_err(), "{bad}");
        }
        assert!(check_limit("l", Some(0)).is_err());
        assert!(check_limit("l", None).is_ok());
        assert!(check_price("p", Some(MAX_PRICE + 1)).is_err());
    }

    #[test]
    fn masked_credential_headers_sent_back_keep_their_stored_value() {
        let stored = BTreeMap::from([
            ("Authorization".to_string(), "Bearer gw-secret-0123456789".to_string()),
            ("X-Title".to_string(), "Maestro".to_string()),
        ]);
        let shown = views::shown_headers(&stored);
        assert!(!shown["Authorization"].contains("gw-secret"));
        assert_eq!(shown["X-Title"], "Maestro");
        assert_eq!(merged_headers(&stored, &shown), stored);
        let changed = BTreeMap::from([("Authorization".to_string(), "Bearer other".to_string())]);
        assert_eq!(merged_headers(&stored, &changed)["Authorization"], "Bearer other");
    }

    #[test]
    fn provider_messages_lose_the_key_and_credential_header_values() {
        let provider = Provider {
            code: "gw".into(),
            kind: ProviderKind::OpenaiCompatible,
            name: "gw".into(),
            base_url: "http://gw".into(),
            headers: BTreeMap::from([
                ("Authorization".to_string(), "Bearer gw-token-0123456789".to_string()),
                ("X-Title".to_string(), "Maestro".to_string()),
            ]),
            is_active: true,
            sort_order: 0,
        };
        let key = SecretString::new("sk-live-abcdefghijkl");
        let message = "bad key sk-live-abcdefghijkl or gw-token-0123456789 (Maestro)";
        let out = scrubbed(message, &key, &provider);
        assert!(!out.contains("abcdefghijkl") && !out.contains("0123456789"), "{out}");
        assert!(out.contains("Maestro"), "{out}");
        assert!(check_url("u", "http://é.example").is_err());
        assert!(check_order("o", i64::MIN).is_err());
        assert!(expected_version(Some(u64::MAX), None).is_err());
        assert!(parse_if_match(&u64::MAX.to_string()).is_err());
    }

    #[test]
    fn model_ids_split_at_the_first_slash() {
        assert_eq!(split_model_id("openrouter/meta/llama"), Some(("openrouter", "meta/llama")));
        assert_eq!(split_model_id("nope"), None);
        assert_eq!(split_model_id("/x"), None);
    }
}
