//! The stats API: the dashboard, usage and daily trends from the daily stats rows, and the call
//! log with cursor pagination. Admin role only. The figures are computed in
//! `maestro_shared::stats::report`; handlers parse parameters and render.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use maestro_shared::auth::JwtAuth;
use maestro_shared::auth::admin_guard;
use maestro_shared::error::ApiError;
use maestro_shared::logs::CallStatus;
use maestro_shared::openapi::{AdminErrors, ErrorDetail, ErrorResponse};
use maestro_shared::stats::report::{
    self, Dashboard, GroupBy, LogPage, TrendReport, UsageFilter, UsageReport, day_start_ms,
};
use maestro_shared::store::{CatalogStore, CounterStore, LogQuery, StatsStore};
use maestro_shared::time;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

#[derive(Clone)]
pub struct StatsState {
    pub store: Arc<dyn StatsStore>,
    /// For the dashboard's key figures (limits, health).
    pub catalog: Arc<dyn CatalogStore>,
    pub counters: Arc<dyn CounterStore>,
    pub auth: Arc<JwtAuth>,
}

pub fn router(state: StatsState) -> Router {
    let routes = Router::new()
        .route("/api/admin/ai-stats/dashboard", get(dashboard))
        .route("/api/admin/ai-stats/usage", get(usage))
        .route("/api/admin/ai-stats/usage/trend", get(trend))
        .route("/api/admin/ai-stats/logs", get(logs));
    admin_guard::guard(routes, state.auth.clone())
        .method_not_allowed_fallback(maestro_shared::http::method_not_allowed)
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(dashboard, usage, trend, logs),
    components(schemas(ErrorResponse, ErrorDetail)),
    tags((name = "stats", description = "Usage, cost, latency and call logs (admin token)"))
)]
pub struct StatsApi;

/// The stats routes' OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    StatsApi::openapi()
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| ApiError::invalid_request(e.body_text()))
}

/// Today and the last 7 days: requests, success rate, tokens, cost, p50/p95/p99 latency, top models,
/// keys near their limits, keys not `normal`.
#[utoipa::path(get, path = "/api/admin/ai-stats/dashboard", tag = "stats", security(("bearer" = [])),
    responses((status = 200, description = "The dashboard", body = Dashboard), AdminErrors))]
async fn dashboard(State(state): State<StatsState>) -> Result<Json<Dashboard>, ApiError> {
    let catalog = state.catalog.load_catalog().await.map_err(|e| {
        tracing::error!(error = %e, "catalog read failed");
        ApiError::internal()
    })?;
    let now = time::now_ms();
    Ok(Json(report::dashboard(state.store.as_ref(), &catalog, state.counters.as_ref(), now).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UsageParams {
    /// First day, `yyyy-mm-dd` (UTC); defaults to `to`.
    #[param(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    from: Option<String>,
    /// Last day, inclusive; defaults to today (UTC).
    #[param(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    to: Option<String>,
    provider: Option<String>,
    /// The model name as logged (without the provider).
    model: Option<String>,
    key_id: Option<String>,
    /// A user id (`sub`): summed from that user's call logs (stats rows have no user).
    user: Option<String>,
    /// Only the calls that named this route.
    route: Option<String>,
    /// `day`, `provider`, `model`, `key` or `route` (calls that named no route are in the total
    /// but in no route group); without it, only the total.
    #[param(pattern = "^(day|provider|model|key|route)$")]
    group_by: Option<String>,
}

fn filter(
    provider: Option<String>,
    model: Option<String>,
    key_id: Option<String>,
    user: Option<String>,
    route: Option<String>,
) -> UsageFilter {
    let keep = |v: Option<String>| v.filter(|s| !s.is_empty());
    UsageFilter {
        provider: keep(provider),
        model: keep(model),
        key_id: keep(key_id),
        user: keep(user),
        route: keep(route),
    }
}

/// Requests, successes, errors, tokens, cost and latency over a date range, optionally grouped.
#[utoipa::path(get, path = "/api/admin/ai-stats/usage", tag = "stats", security(("bearer" = [])),
    params(UsageParams),
    responses((status = 200, description = "Totals and groups", body = UsageReport), AdminErrors))]
async fn usage(
    State(state): State<StatsState>,
    params: Result<Query<UsageParams>, QueryRejection>,
) -> Result<Json<UsageReport>, ApiError> {
    let p = query(params)?;
    let group_by = p.group_by.as_deref().map(GroupBy::parse).transpose()?;
    // Without `from`, the range is the single day `to`.
    let range = report::date_range(p.from.as_deref(), p.to.as_deref(), 1, time::now_ms())?;
    let range = match (&p.from, &p.to) {
        (None, Some(_)) => (range.1, range.1),
        _ => range,
    };
    let f = filter(p.provider, p.model, p.key_id, p.user, p.route);
    Ok(Json(report::usage(state.store.as_ref(), range, &f, group_by).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TrendParams {
    /// First day, `yyyy-mm-dd` (UTC); defaults to 6 days before `to`.
    #[param(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    from: Option<String>,
    /// Last day, inclusive; defaults to today (UTC).
    #[param(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    to: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    key_id: Option<String>,
    /// Only the calls that named this route.
    route: Option<String>,
    /// `provider`: one series per provider; without it, one series for everything.
    #[param(pattern = "^provider$")]
    group_by: Option<String>,
}

/// A daily series over a date range (at most 366 days), every day present (zeros on quiet days).
#[utoipa::path(get, path = "/api/admin/ai-stats/usage/trend", tag = "stats", security(("bearer" = [])),
    params(TrendParams),
    responses((status = 200, description = "Daily series", body = TrendReport), AdminErrors))]
async fn trend(
    State(state): State<StatsState>,
    params: Result<Query<TrendParams>, QueryRejection>,
) -> Result<Json<TrendReport>, ApiError> {
    let p = query(params)?;
    let per_provider = match p.group_by.as_deref() {
        None => false,
        Some("provider") => true,
        Some(other) => {
            return Err(ApiError::invalid_param(
                "group_by",
                format!("`group_by` of a trend must be `provider` (or left out), not `{other}`."),
            ));
        }
    };
    let range = report::date_range(p.from.as_deref(), p.to.as_deref(), 7, time::now_ms())?;
    let f = filter(p.provider, p.model, p.key_id, None, p.route);
    Ok(Json(report::trend(state.store.as_ref(), range, &f, per_provider).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LogParams {
    /// From this instant (inclusive): RFC 3339 (`2026-11-26T06:00:00Z`) or a day (`2026-11-26`).
    from: Option<String>,
    /// Until this instant (exclusive): RFC 3339, or a day (inclusive: until its end).
    to: Option<String>,
    /// From, as unix ms (inclusive).
    from_ms: Option<i64>,
    /// Until, as unix ms (exclusive).
    to_ms: Option<i64>,
    provider: Option<String>,
    /// The model name as logged.
    model: Option<String>,
    /// `success` or `error`.
    #[param(pattern = "^(success|error)$")]
    status: Option<String>,
    /// The caller's user id (`sub`).
    user: Option<String>,
    /// The same as `user`.
    user_id: Option<String>,
    request_id: Option<String>,
    /// Only calls that named this route (exact name).
    route: Option<String>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// An instant parameter: RFC 3339, or a `yyyy-mm-dd` day (its start; its end for `to`).
fn instant(field: &str, value: &str, end_of_day: bool) -> Result<i64, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp_millis());
    }
    match chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        Ok(d) => Ok(day_start_ms(d) + if end_of_day { 86_400_000 } else { 0 }),
        Err(_) => Err(ApiError::invalid_param(
            field,
            format!("`{field}` must be an RFC 3339 time (2026-11-26T06:00:00Z) or a day (2026-11-26)."),
        )),
    }
}

fn one_of(field: &str, a: Option<i64>, b: Option<i64>) -> Result<Option<i64>, ApiError> {
    match (a, b) {
        (Some(_), Some(_)) => Err(ApiError::invalid_param(field, format!("Send `{field}` or `{field}_ms`, not both."))),
        (a, b) => Ok(a.or(b)),
    }
}

/// Call logs, newest first, with filters and cursor pagination.
#[utoipa::path(get, path = "/api/admin/ai-stats/logs", tag = "stats", security(("bearer" = [])),
    params(LogParams),
    responses((status = 200, description = "A page of call logs", body = LogPage), AdminErrors))]
async fn logs(
    State(state): State<StatsState>,
    params: Result<Query<LogParams>, QueryRejection>,
) -> Result<Json<LogPage>, ApiError> {
    let p = query(params)?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_param("limit", "`limit` must be between 1 and 1000."));
    }
    let from = one_of("from", p.from.as_deref().map(|v| instant("from", v, false)).transpose()?, p.from_ms)?;
    let to = one_of("to", p.to.as_deref().map(|v| instant("to", v, true)).transpose()?, p.to_ms)?;
    let status = match p.status.as_deref() {
        None => None,
        Some("success") => Some(CallStatus::Success),
        Some("error") => Some(CallStatus::Error),
        Some(other) => {
            return Err(ApiError::invalid_param(
                "status",
                format!("`status` must be success or error, not `{other}`."),
            ));
        }
    };
    let user = match (p.user, p.user_id) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::invalid_param("user", "`user` and `user_id` disagree."));
        }
        (a, b) => a.or(b),
    };
    let query = LogQuery {
        from_ms: from,
        to_ms: to,
        provider: p.provider,
        user_id: user,
        request_id: p.request_id,
        limit,
        model: p.model,
        status,
        before: p.cursor.as_deref().map(report::decode_cursor).transpose()?,
        route: p.route.filter(|r| !r.is_empty()),
    };
    Ok(Json(report::logs(state.store.as_ref(), &query).await?))
}
