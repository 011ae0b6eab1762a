//! Maestro API keys for callers (`mk-…`), managed by admins:
//!
//! - `POST /api/admin/api-keys` creates a key for a user (`owner`) and returns it in full, this
//!   once (`api_key`); only its SHA-256 is stored.
//! - `GET /api/admin/api-keys` lists keys, masked (`mk-…abcd`), newest first.
//! - `DELETE /api/admin/api-keys/{id}` revokes a key; callers using it get 401 (in other
//!   containers within their 30-second look-up cache).
//!
//! A key acts as its owner on the business API, limited to `allowed_models` (empty: all) and to
//! its optional `rate_limit_rpm`, `daily_token_budget` and `daily_cost_budget_micros`, which the
//! gateway enforces with exact window counters.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use maestro_shared::auth::JwtAuth;
use maestro_shared::auth::admin_guard::{self, AdminCaller};
use maestro_shared::error::ApiError;
use maestro_shared::http::JsonBody;
use maestro_shared::openapi::{AdminErrors, ErrorDetail, ErrorResponse};
use maestro_shared::store::caller_keys::{CallerKeySpec, generate};
use maestro_shared::store::{BudgetLimits, CallerKey, CallerKeyStore, StoreError};
use maestro_shared::time;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

const MAX_OWNER_CHARS: usize = 256;
const MAX_NAME_CHARS: usize = 200;
const MAX_ALLOWED_MODELS: usize = 100;
const MAX_MODEL_CHARS: usize = 200;
/// Largest rpm and token budget accepted.
const MAX_LIMIT: u64 = 1_000_000_000_000;
/// Largest daily cost budget accepted: $1,000,000,000 in micro-USD.
const MAX_COST_MICROS: u64 = 1_000_000_000_000_000;

/// What the API-key routes need: the (cached) key store and the admin token check.
#[derive(Clone)]
struct ApiKeysState {
    keys: Arc<dyn CallerKeyStore>,
}

/// The routes, with their own state, to merge into the admin router (of any state type).
pub(crate) fn router<S: Clone + Send + Sync + 'static>(keys: Arc<dyn CallerKeyStore>, auth: Arc<JwtAuth>) -> Router<S> {
    let routes = Router::new()
        .route("/api/admin/api-keys", get(list_api_keys).post(create_api_key))
        .route("/api/admin/api-keys/{id}", delete(revoke_api_key));
    admin_guard::guard(routes, auth).with_state(ApiKeysState { keys })
}

/// The OpenAPI description of these routes (merge it into the admin document).
#[derive(OpenApi)]
#[openapi(
    paths(create_api_key, list_api_keys, revoke_api_key),
    components(schemas(ErrorResponse, ErrorDetail)),
    tags((name = "api-keys", description = "Maestro API keys (`mk-…`) for callers of the business API (admin token)"))
)]
pub(crate) struct ApiKeysApi;

/// A new key: for whom, and what it may do.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKey {
    /// The user id the key acts as: `user_id` in every log and stat of its calls.
    #[serde(alias = "user_id")]
    pub owner: String,
    /// A name to tell the owner's keys apart (e.g. `ci`, `backend-prod`).
    #[serde(alias = "name")]
    pub key_name: String,
    /// `provider/model`, bare model names or route names the key may call; empty or absent: all.
    #[serde(default)]
    pub allowed_models: Vec<String>,
    /// Requests per minute, counted exactly across every container.
    #[serde(default)]
    pub rate_limit_rpm: Option<u64>,
    /// Tokens (prompt + completion) per UTC day.
    #[serde(default)]
    pub daily_token_budget: Option<u64>,
    /// Cost per UTC day in micro-USD (1,000,000 = $1), at the catalog's prices.
    #[serde(default)]
    pub daily_cost_budget_micros: Option<u64>,
}

/// A key as admins see it: never the key itself.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ApiKeyView {
    /// `ck_…`, the id in `DELETE /api/admin/api-keys/{id}`.
    pub id: String,
    pub key_name: String,
    pub owner: String,
    /// `mk-…abcd`.
    pub masked_key: String,
    /// Empty: every model.
    pub allowed_models: Vec<String>,
    pub rate_limit_rpm: Option<u64>,
    pub daily_token_budget: Option<u64>,
    pub daily_cost_budget_micros: Option<u64>,
    /// `false` once revoked.
    pub is_active: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<&CallerKey> for ApiKeyView {
    fn from(k: &CallerKey) -> Self {
        Self {
            id: k.id.clone(),
            key_name: k.name.clone(),
            owner: k.owner.clone(),
            masked_key: k.masked.clone(),
            allowed_models: k.allowed_models.clone(),
            rate_limit_rpm: k.limits.rpm,
            daily_token_budget: k.limits.tokens_per_day,
            daily_cost_budget_micros: k.limits.cost_micros_per_day,
            is_active: !k.is_revoked(),
            created_at: time::rfc3339(k.created_at_ms),
            revoked_at: k.revoked_at_ms.map(time::rfc3339),
        }
    }
}

/// The creation answer: the key's view plus the key itself, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// The full key (`mk-…`). It is not stored and cannot be shown again: hand it to its owner now.
    pub api_key: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ApiKeyList {
    pub data: Vec<ApiKeyView>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Only this owner's keys.
    pub owner: Option<String>,
    /// Also revoked keys (default `true`).
    pub include_revoked: Option<bool>,
}

/// The store's errors as this API says them: its own words for a missing key and a colliding
/// new one, the common mapping for the rest.
fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(_) => ApiError::not_found("No Maestro API key has this id."),
        StoreError::Conflict(_) => ApiError::conflict("The new key collided with an existing one; try again."),
        other => other.into(),
    }
}

/// A trimmed, non-empty text of at most `max` characters without control characters.
fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::invalid_param(field, format!("`{field}` must not be empty.")));
    }
    if value.chars().count() > max {
        return Err(ApiError::invalid_param(field, format!("`{field}` is longer than {max} characters.")));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid_param(field, format!("`{field}` must not contain control characters.")));
    }
    Ok(value.to_string())
}

fn limit(field: &str, value: Option<u64>, max: u64) -> Result<Option<u64>, ApiError> {
    match value {
        Some(v) if v == 0 || v > max => Err(ApiError::invalid_param(
            field,
            format!("`{field}` must be between 1 and {max} (leave it out for no limit; revoke a key to stop it)."),
        )),
        other => Ok(other),
    }
}

impl CreateApiKey {
    /// The validated spec: every field checked, models trimmed and deduplicated in order.
    fn validate(self) -> Result<CallerKeySpec, ApiError> {
        let owner = text("owner", &self.owner, MAX_OWNER_CHARS)?;
        let name = text("key_name", &self.key_name, MAX_NAME_CHARS)?;
        if self.allowed_models.len() > MAX_ALLOWED_MODELS {
            return Err(ApiError::invalid_param(
                "allowed_models",
                format!("`allowed_models` holds at most {MAX_ALLOWED_MODELS} entries."),
            ));
        }
        let mut seen = HashSet::new();
        let mut allowed_models = Vec::new();
        for (i, model) in self.allowed_models.iter().enumerate() {
            let model = text(&format!("allowed_models[{i}]"), model, MAX_MODEL_CHARS)?;
            if model.chars().any(char::is_whitespace) {
                return Err(ApiError::invalid_param(
                    "allowed_models",
                    format!("`allowed_models[{i}]` must be a model or route name without spaces."),
                ));
            }
            if seen.insert(model.clone()) {
                allowed_models.push(model);
            }
        }
        Ok(CallerKeySpec {
            owner,
            name,
            allowed_models,
            limits: BudgetLimits {
                rpm: limit("rate_limit_rpm", self.rate_limit_rpm, MAX_LIMIT)?,
                tokens_per_day: limit("daily_token_budget", self.daily_token_budget, MAX_LIMIT)?,
                cost_micros_per_day: limit("daily_cost_budget_micros", self.daily_cost_budget_micros, MAX_COST_MICROS)?,
            },
        })
    }
}

/// Creates a key for a user. The answer holds the full key (`api_key`) this one time.
#[utoipa::path(post, path = "/api/admin/api-keys", tag = "api-keys", security(("bearer" = [])),
    request_body = CreateApiKey,
    responses((status = 201, description = "Created; `api_key` is shown only here", body = CreatedApiKey), AdminErrors))]
async fn create_api_key(
    State(state): State<ApiKeysState>,
    AdminCaller(admin): AdminCaller,
    body: Result<JsonBody<CreateApiKey>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonBody(body) = body?;
    let new = generate(body.validate()?, time::now_ms());
    state.keys.create_caller_key(&new.record).await.map_err(store_error)?;
    tracing::info!(admin = %admin.user_id, key_id = %new.record.id, owner = %new.record.owner, masked = %new.record.masked, "caller key created");
    let created = CreatedApiKey { key: ApiKeyView::from(&new.record), api_key: new.key.expose().to_string() };
    let mut response = (StatusCode::CREATED, Json(created)).into_response();
    // The body holds a credential: no cache may keep it.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Lists keys (masked), newest first.
#[utoipa::path(get, path = "/api/admin/api-keys", tag = "api-keys", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, description = "The keys, masked", body = ApiKeyList), AdminErrors))]
async fn list_api_keys(
    State(state): State<ApiKeysState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ApiKeyList>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let include_revoked = query.include_revoked.unwrap_or(true);
    let keys = state.keys.list_caller_keys().await.map_err(store_error)?;
    let data = keys
        .iter()
        .filter(|k| query.owner.as_deref().is_none_or(|owner| k.owner == owner))
        .filter(|k| include_revoked || !k.is_revoked())
        .map(ApiKeyView::from)
        .collect();
    Ok(Json(ApiKeyList { data }))
}

/// Revokes a key: it stops working at once here, within 30 seconds everywhere. Revoking a
/// revoked key changes nothing.
#[utoipa::path(delete, path = "/api/admin/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id (`ck_…`)")),
    responses((status = 200, description = "Revoked", body = ApiKeyView), AdminErrors))]
async fn revoke_api_key(
    State(state): State<ApiKeysState>,
    AdminCaller(admin): AdminCaller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let revoked = state.keys.revoke_caller_key(&id, time::now_ms()).await.map_err(store_error)?;
    tracing::info!(admin = %admin.user_id, key_id = %revoked.id, masked = %revoked.masked, "caller key revoked");
    Ok(Json(ApiKeyView::from(&revoked)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> Result<CallerKeySpec, ApiError> {
        serde_json::from_value::<CreateApiKey>(json).map_err(|e| ApiError::invalid_request(e.to_string()))?.validate()
    }

    #[test]
    fn a_valid_body_is_trimmed_and_deduplicated() {
        let spec = body(serde_json::json!({
            "owner": " user-9 ", "key_name": "ci", "allowed_models": ["demo/echo", " smart ", "demo/echo"],
            "rate_limit_rpm": 2, "daily_token_budget": 1000
        }))
        .expect("valid");
        assert_eq!(spec.owner, "user-9");
        assert_eq!(spec.allowed_models, ["demo/echo", "smart"]);
        assert_eq!(spec.limits, BudgetLimits { rpm: Some(2), tokens_per_day: Some(1000), cost_micros_per_day: None });
    }

    #[test]
    fn bad_fields_are_400s_that_name_the_field() {
        let param = |json| body(json).expect_err("invalid").param().map(str::to_string);
        assert_eq!(param(serde_json::json!({"owner": "", "key_name": "x"})), Some("owner".into()));
        assert_eq!(param(serde_json::json!({"owner": "u", "key_name": " "})), Some("key_name".into()));
        assert_eq!(
            param(serde_json::json!({"owner": "u", "key_name": "x", "rate_limit_rpm": 0})),
            Some("rate_limit_rpm".into())
        );
        assert_eq!(
            param(serde_json::json!({"owner": "u", "key_name": "x", "allowed_models": ["a b"]})),
            Some("allowed_models".into())
        );
        let unknown = body(serde_json::json!({"owner": "u", "key_name": "x", "api_key": "mk-mine"}));
        assert_eq!(unknown.expect_err("unknown field").status(), 400);
    }
}
