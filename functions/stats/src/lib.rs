//! The stats API: the dashboard, usage and daily trends from the daily stats rows, and the call
//! log with cursor pagination. Admin role only. The figures are computed in
//! `maestro_shared::stats::report`; handlers parse parameters and render.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use maestro_shared::auth::JwtAuth;
use maestro_shared::auth::admin_guard;
use maestro_shared::error::ApiError;
use maestro_shared::logs::CallStatus;
use maestro_shared::openapi::{AdminErrors, ErrorDetail, ErrorResponse};
use maestro_shared::stats::export;
use maestro_shared::stats::report::{
    self, Dashboard, GroupBy, LiveReport, LogPage, SpendBy, SpendReport, TrendReport, UsageFilter, UsageReport,
    day_start_ms,
};
use maestro_shared::store::{CatalogStore, CounterStore, LogQuery, StatsStore};
use maestro_shared::time;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

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
        .route("/api/admin/ai-stats/live", get(live))
        .route("/api/admin/ai-stats/spend", get(spend))
        .route("/api/admin/ai-stats/logs", get(logs))
        .route("/api/admin/ai-stats/logs/count", get(logs_count))
        .route("/api/admin/ai-stats/logs/export", get(logs_export));
    admin_guard::guard(routes, state.auth.clone())
        .method_not_allowed_fallback(maestro_shared::http::method_not_allowed)
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(dashboard, usage, trend, live, spend, logs, logs_count, logs_export),
    components(schemas(ErrorResponse, ErrorDetail, LogCountView)),
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
struct LiveParams {
    /// How many minutes, the current one included: 1 to 60, 15 by default.
    #[param(minimum = 1, maximum = 60)]
    minutes: Option<u32>,
    provider: Option<String>,
    model: Option<String>,
    key_id: Option<String>,
}

/// The last minutes, per minute: calls, errors, latency percentiles, tokens and cost, for the
/// live panel (from the minute stats, kept two days).
#[utoipa::path(get, path = "/api/admin/ai-stats/live", tag = "stats", security(("bearer" = [])),
    params(LiveParams),
    responses((status = 200, description = "Per-minute figures", body = LiveReport), AdminErrors))]
async fn live(
    State(state): State<StatsState>,
    params: Result<Query<LiveParams>, QueryRejection>,
) -> Result<Json<LiveReport>, ApiError> {
    let p = query(params)?;
    let minutes = p.minutes.unwrap_or(report::LIVE_MINUTES);
    if !(1..=report::MAX_LIVE_MINUTES).contains(&minutes) {
        return Err(ApiError::invalid_param(
            "minutes",
            format!("`minutes` must be 1 to {}, not {minutes}.", report::MAX_LIVE_MINUTES),
        ));
    }
    let f = filter(p.provider, p.model, p.key_id, None, None);
    Ok(Json(report::live(state.store.as_ref(), time::now_ms(), minutes, &f).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SpendParams {
    /// First day, `yyyy-mm-dd` (UTC); defaults to 29 days before `to`; at most 92 days in all.
    #[param(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    from: Option<String>,
    /// Last day, inclusive; defaults to today (UTC).
    #[param(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    to: Option<String>,
    /// `user`, `caller_key` or `model`.
    #[param(pattern = "^(user|caller_key|model)$")]
    by: String,
    /// How many groups to list one by one (1 to 50, 10 by default); the rest are summed.
    #[param(minimum = 1, maximum = 50)]
    top: Option<usize>,
}

/// Where spend goes: per user, per Maestro API key or per model over a date range, the top
/// groups with their cost and calls per day, the rest summed.
#[utoipa::path(get, path = "/api/admin/ai-stats/spend", tag = "stats", security(("bearer" = [])),
    params(SpendParams),
    responses((status = 200, description = "Spend per group", body = SpendReport), AdminErrors))]
async fn spend(
    State(state): State<StatsState>,
    params: Result<Query<SpendParams>, QueryRejection>,
) -> Result<Json<SpendReport>, ApiError> {
    let p = query(params)?;
    let by = SpendBy::parse(&p.by)?;
    let top = p.top.unwrap_or(10);
    if !(1..=report::MAX_SPEND_TOP).contains(&top) {
        return Err(ApiError::invalid_param(
            "top",
            format!("`top` must be 1 to {}, not {top}.", report::MAX_SPEND_TOP),
        ));
    }
    let range = report::date_range(p.from.as_deref(), p.to.as_deref(), 30, time::now_ms())?;
    // Per user and per key read a day's caller shards each (16 queries on DynamoDB): a quarter.
    if (range.1 - range.0).num_days() >= report::MAX_SPEND_DAYS {
        return Err(ApiError::invalid_param(
            "from",
            format!("A spend range may span at most {} days.", report::MAX_SPEND_DAYS),
        ));
    }
    Ok(Json(report::spend(state.store.as_ref(), range, by, top).await?))
}

/// The log filters, shared by the page, the count and the export; each adds its own fields.
macro_rules! log_params {
    ($(#[$meta:meta])* struct $name:ident { $($(#[$field_meta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Deserialize, IntoParams)]
        #[serde(deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        struct $name {
            /// From this instant (inclusive): RFC 3339 (`2026-11-26T06:00:00Z`) or a day (`2026-11-26`).
            from: Option<String>,
            /// Until this instant (exclusive): RFC 3339, or a day (inclusive: until its end).
            to: Option<String>,
            /// From, as unix ms (inclusive).
            from_ms: Option<i64>,
            /// Until, as unix ms (exclusive).
            to_ms: Option<i64>,
            provider: Option<String>,
            /// The model name as logged (exact).
            model: Option<String>,
            /// Models whose name contains this, ignoring case (`gpt-4` finds `gpt-4o-mini`).
            model_contains: Option<String>,
            /// `success` or `error`.
            #[param(pattern = "^(success|error)$")]
            status: Option<String>,
            /// The caller's user id (`sub`), exact.
            user: Option<String>,
            /// The same as `user`.
            user_id: Option<String>,
            /// Callers whose user id contains this, ignoring case.
            user_contains: Option<String>,
            request_id: Option<String>,
            /// Only calls that named this route (exact name).
            route: Option<String>,
            $($(#[$field_meta])* $field: $ty,)*
        }

        impl $name {
            fn filters(&self) -> LogFilters<'_> {
                LogFilters {
                    from: self.from.as_deref(),
                    to: self.to.as_deref(),
                    from_ms: self.from_ms,
                    to_ms: self.to_ms,
                    provider: self.provider.as_deref(),
                    model: self.model.as_deref(),
                    model_contains: self.model_contains.as_deref(),
                    status: self.status.as_deref(),
                    user: self.user.as_deref(),
                    user_id: self.user_id.as_deref(),
                    user_contains: self.user_contains.as_deref(),
                    request_id: self.request_id.as_deref(),
                    route: self.route.as_deref(),
                }
            }
        }
    };
}

log_params! {
    struct LogParams {
        /// 1–1000, default 100.
        #[param(minimum = 1, maximum = 1000)]
        limit: Option<usize>,
        /// `next_cursor` of the previous page.
        cursor: Option<String>,
    }
}

log_params! {
    struct CountParams {}
}

log_params! {
    struct ExportParams {
        /// Most calls in the file, 1–100000, default 100000 (the newest ones).
        #[param(minimum = 1, maximum = 100000)]
        limit: Option<usize>,
    }
}

/// The filters as sent, before they are read.
struct LogFilters<'a> {
    from: Option<&'a str>,
    to: Option<&'a str>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    provider: Option<&'a str>,
    model: Option<&'a str>,
    model_contains: Option<&'a str>,
    status: Option<&'a str>,
    user: Option<&'a str>,
    user_id: Option<&'a str>,
    user_contains: Option<&'a str>,
    request_id: Option<&'a str>,
    route: Option<&'a str>,
}

impl LogFilters<'_> {
    /// The query these filters make (limit 0 and no cursor: the caller sets them).
    fn query(&self) -> Result<LogQuery, ApiError> {
        let from = one_of("from", self.from.map(|v| instant("from", v, false)).transpose()?, self.from_ms)?;
        let to = one_of("to", self.to.map(|v| instant("to", v, true)).transpose()?, self.to_ms)?;
        let status = match self.status {
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
        let user = match (self.user, self.user_id) {
            (Some(a), Some(b)) if a != b => {
                return Err(ApiError::invalid_param("user", "`user` and `user_id` disagree."));
            }
            (a, b) => a.or(b),
        };
        // An empty partial match is no filter (a cleared search box).
        let some = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        Ok(LogQuery {
            from_ms: from,
            to_ms: to,
            provider: self.provider.map(str::to_string),
            user_id: user.map(str::to_string),
            request_id: self.request_id.map(str::to_string),
            limit: 0,
            model: self.model.map(str::to_string),
            status,
            before: None,
            route: self.route.filter(|r| !r.is_empty()).map(str::to_string),
            model_contains: some(self.model_contains),
            user_contains: some(self.user_contains),
        })
    }
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
    let query =
        LogQuery { limit, before: p.cursor.as_deref().map(report::decode_cursor).transpose()?, ..p.filters().query()? };
    Ok(Json(report::logs(state.store.as_ref(), &query).await?))
}

/// How many calls pass the filters, counted up to 10,000 (`capped` past that).
#[utoipa::path(get, path = "/api/admin/ai-stats/logs/count", tag = "stats", security(("bearer" = [])),
    params(CountParams),
    responses((status = 200, description = "The number of calls found", body = LogCountView), AdminErrors))]
async fn logs_count(
    State(state): State<StatsState>,
    params: Result<Query<CountParams>, QueryRejection>,
) -> Result<Json<LogCountView>, ApiError> {
    let p = query(params)?;
    let query = p.filters().query()?;
    let found = state.store.count_logs(&query, MAX_LOG_COUNT).await.map_err(ApiError::from)?;
    Ok(Json(LogCountView { count: found.count, capped: found.capped, cap: MAX_LOG_COUNT }))
}

/// Calls counted at most by `logs/count`: past it the answer says "10,000+" rather than reading on.
const MAX_LOG_COUNT: u64 = 10_000;

/// The answer of `logs/count`.
#[derive(Debug, Serialize, ToSchema)]
struct LogCountView {
    /// Calls found, at most `cap`.
    count: u64,
    /// Whether more than `count` calls pass the filters (counting stopped at `cap`).
    capped: bool,
    /// Where counting stops.
    cap: u64,
}

/// Calls read from the store per page of an export.
const EXPORT_PAGE: usize = 1_000;

/// The calls that pass the filters as a CSV file, newest first, at most 100,000 (`limit`):
/// streamed page by page as it is read. Text cells that a spreadsheet would run as a formula
/// start with `'`. No secret and no prompt or answer text is in a log, so none is in the file.
#[utoipa::path(get, path = "/api/admin/ai-stats/logs/export", tag = "stats", security(("bearer" = [])),
    params(ExportParams),
    responses((status = 200, description = "CSV, one header line then one line per call", content_type = "text/csv",
        body = String), AdminErrors))]
async fn logs_export(
    State(state): State<StatsState>,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = query(params)?;
    let limit = p.limit.unwrap_or(export::MAX_EXPORT_ROWS);
    if !(1..=export::MAX_EXPORT_ROWS).contains(&limit) {
        return Err(ApiError::invalid_param(
            "limit",
            format!("`limit` must be between 1 and {}.", export::MAX_EXPORT_ROWS),
        ));
    }
    let first = LogQuery { limit: EXPORT_PAGE.min(limit), ..p.filters().query()? };
    // The first page is read before the answer starts, so a failing store is still a proper
    // error; later pages stream, and a failure then cuts the file short (the download fails).
    let events = state.store.logs(&first).await.map_err(ApiError::from)?;
    let store = state.store.clone();
    let pages = futures_util::stream::unfold(
        ExportState { store, query: first, events: Some(events), left: limit, header: true },
        next_export_chunk,
    );
    let name = format!("maestro-calls-{}.csv", time::stats_date(time::now_ms()));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(pages))
        .map_err(|e| {
            tracing::error!(error = %e, "cannot build the export response");
            ApiError::internal()
        })
}

/// Where an export is: the query of its next page, the page read ahead, and how many calls it
/// may still hold.
struct ExportState {
    store: Arc<dyn StatsStore>,
    query: LogQuery,
    events: Option<Vec<maestro_shared::logs::LogEvent>>,
    left: usize,
    header: bool,
}

/// The next piece of an export's body: the header, then one page of lines at a time.
async fn next_export_chunk(mut s: ExportState) -> Option<(Result<String, std::io::Error>, ExportState)> {
    if s.header {
        s.header = false;
        return Some((Ok(export::header()), s));
    }
    if s.left == 0 {
        return None;
    }
    let events = match s.events.take() {
        Some(events) => events,
        None => {
            s.query.limit = EXPORT_PAGE.min(s.left);
            match s.store.logs(&s.query).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::error!(error = %e, "an export stopped: reading call logs failed");
                    s.left = 0;
                    return Some((Err(std::io::Error::other("reading call logs failed")), s));
                }
            }
        }
    };
    let full = events.len() == s.query.limit && s.query.request_id.is_none();
    let taken = events.len().min(s.left);
    s.left -= taken;
    if !full {
        s.left = 0;
    }
    if let Some(last) = events.get(taken.saturating_sub(1)) {
        s.query.before = Some((last.ts_ms, last.request_id.clone()));
    }
    if taken == 0 {
        return None;
    }
    let chunk: String = events[..taken].iter().map(export::row).collect();
    Some((Ok(chunk), s))
}
