//! The admin API: providers, their keys and models, and routes (docs/ARCHITECTURE.md §2). Every
//! route is behind the admin guard (`admin_guard::guard`); each handler turns the request into a
//! call of [`maestro_shared::admin::Admin`] (where
//! validation, version checks and secret handling live) and the result into JSON; after every
//! write it drops the gateway's cached catalog, so this process serves the change at once
//! (other containers within `catalog_ttl`).
//!
//! Single objects come back with `ETag: "<version>"`; updates take that version back in the body
//! (`version`) or as `If-Match`, and a stale one is a 409.

mod alerts;
mod api_keys;
mod console;
mod credits;

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use maestro_lambda_common::AdminAuth;
use maestro_shared::admin::views::{
    CreateKey, CreateProvider, CreateRoute, DataList, KeyTestReport, KeyView, KindView, ModelView, ProviderView,
    RouteView, SyncReport, TestKey, UpdateKey, UpdateModel, UpdateProvider, UpdateRoute, ValidationReport,
};
use maestro_shared::admin::{Admin, parse_if_match};
use maestro_shared::auth::JwtAuth;
use maestro_shared::auth::admin_guard::{self, AdminCaller};
use maestro_shared::error::ApiError;
use maestro_shared::gateway::Gateway;
use maestro_shared::http::{self as mhttp, JsonBody};
use maestro_shared::openapi::{AdminErrors, ErrorDetail, ErrorResponse};
use maestro_shared::providers::ProviderClient;
use maestro_shared::store::{CatalogAdminStore, StatsStore};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi};

pub use alerts::AlertsState;

#[derive(Clone)]
pub struct AdminState {
    pub gateway: Arc<Gateway>,
    pub auth: Arc<JwtAuth>,
    pub admin: Admin,
    /// The alert rules and channels (`/api/admin/ai-alerts`), when the backend keeps them.
    pub alerts: Option<AlertsState>,
}

impl AdminState {
    /// The admin API on the gateway's stores plus the versioned catalog store and the stats (the
    /// same backend).
    pub fn new(
        gateway: Arc<Gateway>,
        auth: Arc<JwtAuth>,
        catalog: Arc<dyn CatalogAdminStore>,
        stats: Arc<dyn StatsStore>,
    ) -> Result<Self, String> {
        let backends = gateway.backends();
        let admin = Admin {
            catalog,
            health: backends.catalog.clone(),
            counters: backends.counters.clone(),
            stats,
            secrets: backends.secrets.clone(),
            client: ProviderClient::new().map_err(|e| format!("cannot build the HTTP client: {e}"))?,
            log_sink: backends.log_sink.clone(),
        };
        Ok(Self { gateway, auth, admin, alerts: None })
    }

    /// With the alert routes on `alerts`.
    pub fn with_alerts(mut self, alerts: AlertsState) -> Self {
        self.alerts = Some(alerts);
        self
    }
}

/// The admin API and the admin console (`/admin/`), as the local runner serves them.
pub fn router(state: AdminState) -> Router {
    api_router(state).merge(console::router())
}

/// The admin API alone: every route needs an admin token.
pub fn api_router(state: AdminState) -> Router {
    let routes = Router::new()
        .route("/api/admin/ai-providers", get(list_providers).post(create_provider))
        .route("/api/admin/ai-providers/kinds", get(list_kinds))
        .route("/api/admin/ai-providers/{id}", put(update_provider).delete(delete_provider))
        .route("/api/admin/ai-providers/{id}/sync-models", post(sync_models))
        .route("/api/admin/ai-providers/{id}/keys", get(list_keys).post(create_key))
        .route("/api/admin/ai-providers/keys/{id}", put(update_key).delete(delete_key))
        .route("/api/admin/ai-providers/keys/{id}/validate", post(validate_key))
        .route("/api/admin/ai-providers/keys/{id}/test", post(test_key))
        .route("/api/admin/ai-models", get(list_models))
        .route("/api/admin/ai-models/{id}", put(update_model))
        .route("/api/admin/ai-routes", get(list_routes).post(create_route))
        .route("/api/admin/ai-routes/{name}", put(update_route).delete(delete_route));
    let routes = match &state.alerts {
        Some(alerts) => routes.merge(alerts::router(alerts.clone(), state.auth.clone())),
        None => routes,
    };
    admin_guard::guard(routes, state.auth.clone())
        .merge(api_keys::router(state.gateway.backends().caller_keys.clone(), state.auth.clone()))
        .merge(credits::router(state.gateway.backends().credits.as_ref().map(|c| c.store.clone()), state.auth.clone()))
        .method_not_allowed_fallback(maestro_shared::http::method_not_allowed)
        .with_state(state)
}

/// The admin Lambda's app: the API (and unknown paths) behind `auth`, which in authorizer mode
/// refuses any request API Gateway did not pass claims for; beside it, open to anyone who can
/// reach the function, the console's files (they hold no data) and the API's description.
pub fn lambda_app(state: AdminState, auth: &AdminAuth) -> Router {
    let spec = http_api_openapi();
    auth.wrap(api_router(state).fallback(mhttp::not_found))
        .merge(console::router())
        .route("/openapi.json", get(move || std::future::ready(Json(spec.clone()))))
}

/// The OpenAPI description of this router.
#[derive(OpenApi)]
#[openapi(
    paths(
        list_providers,
        list_kinds,
        create_provider,
        update_provider,
        delete_provider,
        sync_models,
        list_keys,
        create_key,
        update_key,
        delete_key,
        validate_key,
        test_key,
        list_models,
        update_model,
        list_routes,
        create_route,
        update_route,
        delete_route
    ),
    components(schemas(ErrorResponse, ErrorDetail)),
    tags((name = "admin", description = "Providers, keys, models and routes (admin token)"))
)]
pub struct AdminApi;

/// The admin routes' OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut spec = AdminApi::openapi();
    spec.merge(api_keys::ApiKeysApi::openapi());
    spec.merge(credits::CreditsApi::openapi());
    spec.merge(alerts::AlertsApi::openapi());
    spec
}

/// The document of the admin HTTP API (admin and stats routes), as the admin function serves it.
pub fn http_api_openapi() -> utoipa::openapi::OpenApi {
    let mut spec = openapi();
    spec.merge(maestro_stats::openapi());
    maestro_shared::openapi::finish(
        spec,
        "Maestro admin API",
        "Providers, keys, models and routes; usage, cost and call logs. Every route needs an admin token.",
    )
}

/// `If-Match`, when sent.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| ApiError::invalid_param("If-Match", "`If-Match` must be the version you read."))?;
            parse_if_match(text).map(Some)
        }
    }
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(v)| v).map_err(|e| ApiError::invalid_request(e.body_text()))
}

/// A single object with its version as `ETag`.
fn versioned<T: Serialize>(status: StatusCode, body: T, version: u64) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(tag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

/// After a write: this process sees the change at its next request.
fn changed(state: &AdminState) {
    state.gateway.invalidate_catalog();
}

/// The provider kinds Maestro speaks, with their labels and default endpoints.
#[utoipa::path(get, path = "/api/admin/ai-providers/kinds", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Every kind, in the order people see them", body = DataList<KindView>),
        AdminErrors))]
async fn list_kinds(State(state): State<AdminState>) -> Json<DataList<KindView>> {
    Json(DataList { data: state.admin.list_kinds() })
}

/// Providers with their models and keys (keys masked).
#[utoipa::path(get, path = "/api/admin/ai-providers", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Every provider, in sort order", body = DataList<ProviderView>), AdminErrors))]
async fn list_providers(State(state): State<AdminState>) -> Result<Json<DataList<ProviderView>>, ApiError> {
    Ok(Json(DataList { data: state.admin.list_providers().await? }))
}

/// Adds a provider (any OpenAI-compatible endpoint too: `kind: openai_compatible` with `base_url`).
#[utoipa::path(post, path = "/api/admin/ai-providers", tag = "admin", security(("bearer" = [])),
    request_body = CreateProvider,
    responses((status = 201, description = "Created", body = ProviderView), AdminErrors))]
async fn create_provider(
    State(state): State<AdminState>,
    AdminCaller(caller): AdminCaller,
    body: Result<JsonBody<CreateProvider>, ApiError>,
) -> Result<Response, ApiError> {
    // Authentication first: an anonymous caller learns nothing about the body.
    let JsonBody(body) = body?;
    let view = state.admin.create_provider(body).await?;
    changed(&state);
    tracing::info!(admin = %caller.user_id, provider = %view.provider_code, "provider created");
    let version = view.version;
    Ok(versioned(StatusCode::CREATED, view, version))
}

/// Changes a provider's fields (not its code); send the `version` you read.
#[utoipa::path(put, path = "/api/admin/ai-providers/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "provider_code"),
           ("If-Match" = Option<String>, Header, description = "The version you read, e.g. `\"3\"` (instead of the body's `version`)")),
    request_body = UpdateProvider,
    responses((status = 200, description = "Updated", body = ProviderView), AdminErrors))]
async fn update_provider(
    State(state): State<AdminState>,
    AdminCaller(caller): AdminCaller,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<UpdateProvider>, ApiError>,
) -> Result<Response, ApiError> {
    // Authentication first: an anonymous caller learns nothing about the body.
    let JsonBody(body) = body?;
    let id = path(id)?;
    let view = state.admin.update_provider(&id, body, if_match(&headers)?).await?;
    changed(&state);
    tracing::info!(admin = %caller.user_id, provider = %id, version = view.version, "provider updated");
    let version = view.version;
    Ok(versioned(StatusCode::OK, view, version))
}

/// Deletes a provider and its models. Refused (409) while it has keys (delete each first: their
/// secrets go with them), while a route targets one of its models, and for the built-in demo.
/// With `If-Match`, only at that version.
#[utoipa::path(delete, path = "/api/admin/ai-providers/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "provider_code"),
           ("If-Match" = Option<String>, Header, description = "Delete only at this version")),
    responses((status = 204, description = "Deleted, with its models"), AdminErrors))]
async fn delete_provider(
    State(state): State<AdminState>,
    AdminCaller(caller): AdminCaller,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = path(id)?;
    let models = state.admin.delete_provider(&id, if_match(&headers)?).await?;
    changed(&state);
    tracing::info!(admin = %caller.user_id, provider = %id, models, "provider deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Reads the provider's model list and adds the models the catalog lacks (inactive, unpriced).
#[utoipa::path(post, path = "/api/admin/ai-providers/{id}/sync-models", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "provider_code")),
    responses((status = 200, description = "What was added", body = SyncReport),
              (status = 502, description = "The provider failed or refused the key", body = ErrorResponse),
              (status = 504, description = "The provider did not answer in time", body = ErrorResponse),
              AdminErrors))]
async fn sync_models(
    State(state): State<AdminState>,
    AdminCaller(caller): AdminCaller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<SyncReport>, ApiError> {
    let id = path(id)?;
    let report = state.admin.sync_models(&id).await?;
    changed(&state);
    tracing::info!(admin = %caller.user_id, provider = %id, listed = report.listed, added = report.added.len(), "models synced");
    Ok(Json(report))
}

/// A provider's keys (masked).
#[utoipa::path(get, path = "/api/admin/ai-providers/{id}/keys", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "provider_code")),
    responses((status = 200, description = "The provider's keys", body = DataList<KeyView>), AdminErrors))]
async fn list_keys(
    State(state): State<AdminState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<DataList<KeyView>>, ApiError> {
    Ok(Json(DataList { data: state.admin.list_keys(&path(id)?).await? }))
}

/// Adds a key: the secret (`api_key`) goes to the secret store; the answer shows it masked.
#[utoipa::path(post, path = "/api/admin/ai-providers/{id}/keys", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "provider_code")),
    request_body = CreateKey,
    responses((status = 201, description = "Created", body = KeyView), AdminErrors))]
async fn create_key(
    State(state): State<AdminState>,
    AdminCaller(caller): AdminCaller,
    id: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<CreateKey>, ApiError>,
) -> Result<Response, ApiError> {
    // Authentication first: an anonymous caller learns nothing about the body.
    let JsonBody(body) = body?;
    let id = path(id)?;
    let view = state.admin.create_key(&id, body).await?;
    changed(&state);
    tracing::info!(admin = %caller.user_id, key_id = %view.id, masked = %view.masked_key, "key created");
    let version = view.version;
    Ok(versioned(StatusCode::CREATED, view, version))
}

/// Changes a key; a new `api_key` rotates its secret. Send the `version` you read.
#[utoipa::path(put, path = "/api/admin/ai-providers/keys/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id"),
           ("If-Match" = Option<String>, Header, description = "The version you read (instead of the body's `version`)")),
    request_body = UpdateKey,
    responses((status = 200, description = "Updated", body = KeyView), AdminErrors))]
async fn update_key(
    State(state): State<AdminState>,
    AdminCaller(caller): AdminCaller,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<UpdateKey>, ApiError>,
) -> Result<Response, ApiError> {
    // Authentication first: an anonymous caller learns nothing about the body.
    let JsonBody(body) = body?;
    let id = path(id)?;
    let rotated = body.api_key.is_some();
    let view = state.admin.update_key(&id, body, if_match(&headers)?).await?;
    changed(&state);
    tracing::info!(admin = %caller.user_id, key_id = %id, rotated, version = view.version, "key updated");
    let version = view.version;
    Ok(versioned(StatusCode::OK, view, version))
}

/// Deletes a key and its secret. With `If-Match`, only at that version.
#[utoipa::path(delete, path = "/api/admin/ai-providers/keys/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id"),
           ("If-Match" = Option<String>, Header, description = "Delete only at this version")),
    responses((status = 204, description = "Deleted"), AdminErrors))]
async fn delete_key(
    State(state): State<AdminState>,
    AdminCaller(caller): AdminCaller,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = path(id)?;
    state.admin.delete_key(&id, if_match(&headers)?).await?;
    changed(&state);
    tracing::info!(admin = %caller.user_id, key_id = %id, "key deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A cheap real call with the key (the provider's model list): `normal` when it works,
/// `invalid` on 401/403; the outcome either way.
#[utoipa::path(post, path = "/api/admin/ai-providers/keys/{id}/validate", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id")),
    responses((status = 200, description = "What the provider said", body = ValidationReport), AdminErrors))]
async fn validate_key(
    State(state): State<AdminState>,
    AdminCaller(caller): AdminCaller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ValidationReport>, ApiError> {
    let id = path(id)?;
    let report = state.admin.validate_key(&id).await?;
    changed(&state);
    tracing::info!(admin = %caller.user_id, key_id = %id, valid = report.valid, "key validation");
    Ok(Json(report))
}

/// A real call with this key alone: one chat completion of at most 1 output token (to `model`, or
/// the provider's first active chat model). Sets the key's status from the answer (`normal`, or
/// `invalid` on 401/403), notes a failure as its last error, and is recorded in the call log
/// (`request_type: key_test`) and costed like any call. A key at its Maestro limits is not called.
#[utoipa::path(post, path = "/api/admin/ai-providers/keys/{id}/test", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id")),
    request_body(content = Option<TestKey>, description = "Optional: `{\"model\": \"provider/model\"}`"),
    responses((status = 200, description = "What the provider said", body = KeyTestReport), AdminErrors))]
async fn test_key(
    State(state): State<AdminState>,
    AdminCaller(caller): AdminCaller,
    id: Result<Path<String>, PathRejection>,
    body: axum::body::Bytes,
) -> Result<Json<KeyTestReport>, ApiError> {
    let id = path(id)?;
    // No body at all is the default test.
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        TestKey::default()
    } else {
        serde_json::from_slice::<TestKey>(&body).map_err(|e| {
            ApiError::invalid_request(format!("The body must be `{{\"model\": \"provider/model\"}}` or empty: {e}."))
        })?
    };
    let report = state.admin.test_key(&id, body, &caller.user_id).await?;
    changed(&state);
    tracing::info!(admin = %caller.user_id, key_id = %id, ok = report.ok, "key test call");
    Ok(Json(report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ModelFilter {
    /// Only this provider's models.
    provider: Option<String>,
    /// Only active (`true`) or inactive (`false`) models.
    active: Option<bool>,
}

/// Models of every provider (or one), optionally only active or inactive ones.
#[utoipa::path(get, path = "/api/admin/ai-models", tag = "admin", security(("bearer" = [])),
    params(ModelFilter),
    responses((status = 200, description = "Models by provider and name", body = DataList<ModelView>), AdminErrors))]
async fn list_models(
    State(state): State<AdminState>,
    query: Result<Query<ModelFilter>, QueryRejection>,
) -> Result<Json<DataList<ModelView>>, ApiError> {
    let Query(filter) = query.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    Ok(Json(DataList { data: state.admin.list_models(filter.provider.as_deref(), filter.active).await? }))
}

/// Changes a model: prices, limits, flags, active, default. `id` is `<provider>/<model>`,
/// URL-encoded (`openai%2Fgpt-4o`).
#[utoipa::path(put, path = "/api/admin/ai-models/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "`<provider_code>/<model_code>`, URL-encoded"),
           ("If-Match" = Option<String>, Header, description = "The version you read (instead of the body's `version`)")),
    request_body = UpdateModel,
    responses((status = 200, description = "Updated", body = ModelView), AdminErrors))]
async fn update_model(
    State(state): State<AdminState>,
    AdminCaller(caller): AdminCaller,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<UpdateModel>, ApiError>,
) -> Result<Response, ApiError> {
    // Authentication first: an anonymous caller learns nothing about the body.
    let JsonBody(body) = body?;
    let id = path(id)?;
    let view = state.admin.update_model(&id, body, if_match(&headers)?).await?;
    changed(&state);
    tracing::info!(admin = %caller.user_id, model = %id, version = view.version, "model updated");
    let version = view.version;
    Ok(versioned(StatusCode::OK, view, version))
}

/// Named fallback chains.
#[utoipa::path(get, path = "/api/admin/ai-routes", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Every route, by name", body = DataList<RouteView>), AdminErrors))]
async fn list_routes(State(state): State<AdminState>) -> Result<Json<DataList<RouteView>>, ApiError> {
    Ok(Json(DataList { data: state.admin.list_routes().await? }))
}

/// Adds a route: callers then send its name as `model`.
#[utoipa::path(post, path = "/api/admin/ai-routes", tag = "admin", security(("bearer" = [])),
    request_body = CreateRoute,
    responses((status = 201, description = "Created", body = RouteView), AdminErrors))]
async fn create_route(
    State(state): State<AdminState>,
    AdminCaller(caller): AdminCaller,
    body: Result<JsonBody<CreateRoute>, ApiError>,
) -> Result<Response, ApiError> {
    // Authentication first: an anonymous caller learns nothing about the body.
    let JsonBody(body) = body?;
    let view = state.admin.create_route(body).await?;
    changed(&state);
    tracing::info!(admin = %caller.user_id, route = %view.name, "route created");
    let version = view.version;
    Ok(versioned(StatusCode::CREATED, view, version))
}

/// Changes a route's targets; send the `version` you read.
#[utoipa::path(put, path = "/api/admin/ai-routes/{name}", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "The route's name"),
           ("If-Match" = Option<String>, Header, description = "The version you read (instead of the body's `version`)")),
    request_body = UpdateRoute,
    responses((status = 200, description = "Updated", body = RouteView), AdminErrors))]
async fn update_route(
    State(state): State<AdminState>,
    AdminCaller(caller): AdminCaller,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<UpdateRoute>, ApiError>,
) -> Result<Response, ApiError> {
    // Authentication first: an anonymous caller learns nothing about the body.
    let JsonBody(body) = body?;
    let name = path(name)?;
    let view = state.admin.update_route(&name, body, if_match(&headers)?).await?;
    changed(&state);
    tracing::info!(admin = %caller.user_id, route = %name, version = view.version, "route updated");
    let version = view.version;
    Ok(versioned(StatusCode::OK, view, version))
}

/// Deletes a route. With `If-Match`, only at that version.
#[utoipa::path(delete, path = "/api/admin/ai-routes/{name}", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "The route's name"),
           ("If-Match" = Option<String>, Header, description = "Delete only at this version")),
    responses((status = 204, description = "Deleted"), AdminErrors))]
async fn delete_route(
    State(state): State<AdminState>,
    AdminCaller(caller): AdminCaller,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let name = path(name)?;
    state.admin.delete_route(&name, if_match(&headers)?).await?;
    changed(&state);
    tracing::info!(admin = %caller.user_id, route = %name, "route deleted");
    Ok(StatusCode::NO_CONTENT)
}
