//! The stats API: usage and cost from the daily stats rows, and the call log. Admin role only.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use maestro_shared::auth::JwtAuth;
use maestro_shared::error::ApiError;
use maestro_shared::http as mhttp;
use maestro_shared::stats::{Counters, StatsQuery, StatsRow, total};
use maestro_shared::store::{LogQuery, StatsStore};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Clone)]
pub struct StatsState {
    pub store: Arc<dyn StatsStore>,
    pub auth: Arc<JwtAuth>,
}

pub fn router(state: StatsState) -> Router {
    Router::new()
        .route("/api/admin/ai-stats/usage", get(usage))
        .route("/api/admin/ai-stats/logs", get(logs))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageParams {
    /// Inclusive `yyyy-mm-dd`; defaults to today (UTC).
    from: Option<String>,
    to: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    key_id: Option<String>,
    /// `day`, `provider`, `model` or `key`; without it, one total.
    group_by: Option<String>,
}

fn valid_date(field: &str, value: &str) -> Result<(), ApiError> {
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").map(|_| ()).map_err(|_| {
        ApiError::invalid_param(field, format!("`{field}` must be a date written yyyy-mm-dd, not `{value}`."))
    })
}

fn counters_json(c: &Counters) -> Value {
    json!({
        "requests": c.requests,
        "successes": c.successes,
        "errors": c.errors,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "cached_tokens": c.cached_tokens,
        "cost_micros": c.cost_micros,
        "latency_ms_avg": c.latency_ms_sum.checked_div(c.requests),
        "latency_ms_p50": c.latency_percentile(50),
        "latency_ms_p95": c.latency_percentile(95),
    })
}

/// `GET /api/admin/ai-stats/usage?from=&to=&provider=&model=&key_id=&group_by=`
async fn usage(
    State(state): State<StatsState>,
    headers: HeaderMap,
    params: Result<Query<UsageParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    state.auth.admin(mhttp::authorization(&headers))?;
    let Query(p) = params.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let today = maestro_shared::time::stats_date(maestro_shared::time::now_ms());
    let from = p.from.unwrap_or_else(|| today.clone());
    let to = p.to.unwrap_or(today);
    valid_date("from", &from)?;
    valid_date("to", &to)?;
    if from > to {
        return Err(ApiError::invalid_param("from", "`from` must not be after `to`."));
    }
    let query = StatsQuery {
        from_date: from.clone(),
        to_date: to.clone(),
        provider: p.provider,
        model: p.model,
        key_id: p.key_id,
    };
    let rows = state.store.stats_rows(&query).await.map_err(|e| {
        tracing::error!(error = %e, "stats query failed");
        ApiError::internal()
    })?;
    let group_of: fn(&StatsRow) -> String = match p.group_by.as_deref() {
        None => |_| String::new(),
        Some("day") => |r| r.date.clone(),
        Some("provider") => |r| r.provider.clone(),
        Some("model") => |r| format!("{}/{}", r.provider, r.model),
        Some("key") => |r| r.key_id.clone(),
        Some(other) => {
            return Err(ApiError::invalid_param(
                "group_by",
                format!("`group_by` must be day, provider, model or key, not `{other}`."),
            ));
        }
    };
    let mut groups: BTreeMap<String, Counters> = BTreeMap::new();
    for row in &rows {
        groups.entry(group_of(row)).or_default().add(&row.counters);
    }
    let groups: Vec<Value> = if p.group_by.is_some() {
        groups.iter().map(|(k, c)| json!({"group": k, "usage": counters_json(c)})).collect()
    } else {
        Vec::new()
    };
    Ok(Json(json!({"from": from, "to": to, "total": counters_json(&total(&rows)), "groups": groups})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogParams {
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    provider: Option<String>,
    user_id: Option<String>,
    request_id: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/admin/ai-stats/logs`: call logs, newest first.
async fn logs(
    State(state): State<StatsState>,
    headers: HeaderMap,
    params: Result<Query<LogParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    state.auth.admin(mhttp::authorization(&headers))?;
    let Query(p) = params.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_param("limit", "`limit` must be between 1 and 1000."));
    }
    let query = LogQuery {
        from_ms: p.from_ms,
        to_ms: p.to_ms,
        provider: p.provider,
        user_id: p.user_id,
        request_id: p.request_id,
        limit,
    };
    let events = state.store.logs(&query).await.map_err(|e| {
        tracing::error!(error = %e, "log query failed");
        ApiError::internal()
    })?;
    Ok(Json(json!({"data": events})))
}
