//! Alert rules and channels, managed by admins:
//!
//! - `GET /api/admin/ai-alerts`: every rule with its version and its instances' state (pending
//!   or firing), the channels (masked), and the newest history entries.
//! - `POST /api/admin/ai-alerts`, `PUT /api/admin/ai-alerts/{name}` (the `version` read, in the
//!   body or `If-Match`), `DELETE /api/admin/ai-alerts/{name}`.
//! - `GET /api/admin/ai-alerts/history?limit=`: firing, reminder and resolved events.
//! - `PUT /api/admin/ai-alert-channels/{name}`: creates or updates a channel. Its `url` and
//!   `secret` are write-only: left out on an update, the stored ones stay; never shown whole.
//! - `DELETE /api/admin/ai-alert-channels/{name}` (a channel a rule uses: 409).
//! - `POST /api/admin/ai-alert-channels/{name}/test`: sends a test notification now.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use maestro_shared::alerts::channels::{ChannelConfig, ChannelKind, Channels, EmailSender, NotificationState};
use maestro_shared::alerts::engine::{HistoryEntry, InstanceState, stored_rules};
use maestro_shared::alerts::rules::AlertRule;
use maestro_shared::alerts::setup::{self, SetupError};
use maestro_shared::auth::JwtAuth;
use maestro_shared::auth::admin_guard::{self, AdminCaller};
use maestro_shared::error::ApiError;
use maestro_shared::http::JsonBody;
use maestro_shared::openapi::{AdminErrors, ErrorDetail, ErrorResponse};
use maestro_shared::secret::SecretString;
use maestro_shared::store::{AlertRecordKind, AlertStore, SecretStore, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::{if_match, path, versioned};

/// What the alert routes need.
#[derive(Clone)]
pub struct AlertsState {
    pub alerts: Arc<dyn AlertStore>,
    pub secrets: Arc<dyn SecretStore>,
    /// E-mail for test notifications of email channels (SMTP locally, SES on AWS).
    pub email: Option<Arc<dyn EmailSender>>,
}

pub(crate) fn router<S: Clone + Send + Sync + 'static>(state: AlertsState, auth: Arc<JwtAuth>) -> Router<S> {
    let routes = Router::new()
        .route("/api/admin/ai-alerts", get(list_alerts).post(create_alert))
        .route("/api/admin/ai-alerts/history", get(alert_history))
        .route("/api/admin/ai-alerts/{name}", put(update_alert).delete(delete_alert))
        .route("/api/admin/ai-alert-channels/{name}", put(save_channel).delete(delete_channel))
        .route("/api/admin/ai-alert-channels/{name}/test", post(test_channel));
    admin_guard::guard(routes, auth).with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        list_alerts,
        create_alert,
        update_alert,
        delete_alert,
        alert_history,
        save_channel,
        delete_channel,
        test_channel
    ),
    components(schemas(
        ErrorResponse,
        ErrorDetail,
        AlertsView,
        AlertView,
        ChannelView,
        ChannelBody,
        HistoryEntry,
        InstanceState,
        TestReport
    ))
)]
pub(crate) struct AlertsApi;

/// A rule, its version and its instances now.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    #[serde(flatten)]
    pub rule: AlertRule,
    pub version: u64,
    /// Instances pending or firing (none: all clear).
    pub instances: Vec<InstanceState>,
}

/// A channel as admins see it: the URL masked, the secret only as whether there is one.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    pub name: String,
    #[schema(value_type = String)]
    pub kind: ChannelKind,
    pub url: Option<String>,
    pub has_secret: bool,
    pub to: Vec<String>,
    pub version: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsView {
    pub data: Vec<AlertView>,
    pub channels: Vec<ChannelView>,
    /// The newest 50 history entries.
    pub history: Vec<HistoryEntry>,
}

fn channel_view(channel: &ChannelConfig, version: u64) -> ChannelView {
    ChannelView {
        name: channel.name.clone(),
        kind: channel.kind.clone(),
        url: channel.url.as_deref().map(maestro_shared::alerts::channels::mask_url),
        has_secret: channel.secret.is_some(),
        to: channel.to.clone(),
        version,
    }
}

fn setup_error(e: SetupError) -> ApiError {
    match e {
        SetupError::Invalid(field, message) => ApiError::invalid_param(&field, message),
        SetupError::Store(e) => e.into(),
    }
}

async fn history(alerts: &dyn AlertStore, limit: usize) -> Result<Vec<HistoryEntry>, ApiError> {
    let mut entries = Vec::new();
    for body in alerts.alert_history(limit).await? {
        match serde_json::from_str(&body) {
            Ok(entry) => entries.push(entry),
            Err(e) => tracing::warn!(error = %e, "unreadable alert history entry skipped"),
        }
    }
    Ok(entries)
}

/// Rules with their state, channels and recent history.
#[utoipa::path(get, path = "/api/admin/ai-alerts", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Rules, channels, history", body = AlertsView), AdminErrors))]
async fn list_alerts(State(state): State<AlertsState>) -> Result<Json<AlertsView>, ApiError> {
    let mut states: Vec<InstanceState> = Vec::new();
    for record in state.alerts.alert_records(AlertRecordKind::State).await? {
        if let Ok(s) = serde_json::from_str::<InstanceState>(&record.body) {
            states.push(s);
        }
    }
    let data = stored_rules(state.alerts.as_ref())
        .await?
        .into_iter()
        .map(|(rule, version)| {
            let instances = states.iter().filter(|s| s.rule == rule.name).cloned().collect();
            AlertView { rule, version, instances }
        })
        .collect();
    let channels = setup::load_channels(state.alerts.as_ref(), state.secrets.as_ref())
        .await?
        .iter()
        .map(|(c, v)| channel_view(c, *v))
        .collect();
    Ok(Json(AlertsView { data, channels, history: history(state.alerts.as_ref(), 50).await? }))
}

async fn channel_names(state: &AlertsState) -> Result<Vec<String>, ApiError> {
    Ok(state.alerts.alert_records(AlertRecordKind::Channel).await?.into_iter().map(|r| r.name).collect())
}

/// A rule from a JSON body that may also carry the `version` read.
fn rule_and_version(mut body: serde_json::Value) -> Result<(AlertRule, Option<u64>), ApiError> {
    let version = match body.as_object_mut().and_then(|o| o.remove("version")) {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => {
            Some(v.as_u64().ok_or_else(|| ApiError::invalid_param("version", "`version` is the version you read."))?)
        }
    };
    let rule = serde_json::from_value::<AlertRule>(body)
        .map_err(|e| ApiError::invalid_request(format!("Not an alert rule: {e}.")))?;
    Ok((rule, version))
}

async fn save(state: &AlertsState, rule: &AlertRule, expected: Option<u64>) -> Result<u64, ApiError> {
    let names = channel_names(state).await?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    setup::save_rule(state.alerts.as_ref(), rule, &names, expected).await.map_err(setup_error)
}

fn view(rule: AlertRule, version: u64) -> AlertView {
    AlertView { rule, version, instances: Vec::new() }
}

/// Adds a rule (`kind`: error_rate, spend, latency_p95, key_state, provider_down).
#[utoipa::path(post, path = "/api/admin/ai-alerts", tag = "admin", security(("bearer" = [])),
    request_body = AlertRule,
    responses((status = 201, description = "Created", body = AlertView), AdminErrors))]
async fn create_alert(
    State(state): State<AlertsState>,
    AdminCaller(caller): AdminCaller,
    body: Result<JsonBody<serde_json::Value>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonBody(body) = body?;
    let (rule, _) = rule_and_version(body)?;
    let version = save(&state, &rule, Some(0)).await?;
    tracing::info!(admin = %caller.user_id, alert = %rule.name, "alert rule created");
    Ok(versioned(StatusCode::CREATED, view(rule, version), version))
}

/// Changes a rule; send the `version` you read (body or `If-Match`).
#[utoipa::path(put, path = "/api/admin/ai-alerts/{name}", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "The rule's name"),
           ("If-Match" = Option<String>, Header, description = "The version you read (instead of the body's `version`)")),
    request_body = AlertRule,
    responses((status = 200, description = "Updated", body = AlertView), AdminErrors))]
async fn update_alert(
    State(state): State<AlertsState>,
    AdminCaller(caller): AdminCaller,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<serde_json::Value>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonBody(body) = body?;
    let name = path(name)?;
    let (rule, body_version) = rule_and_version(body)?;
    if rule.name != name {
        return Err(ApiError::invalid_param("name", "A rule keeps its name: the body's `name` must match the path."));
    }
    let expected = if_match(&headers)?.or(body_version).ok_or_else(|| {
        ApiError::invalid_param("version", "Send the `version` you read (or `If-Match`), so no edit is lost.")
    })?;
    let version = save(&state, &rule, Some(expected)).await?;
    tracing::info!(admin = %caller.user_id, alert = %name, version, "alert rule updated");
    Ok(versioned(StatusCode::OK, view(rule, version), version))
}

/// Deletes a rule (its state goes with it at the next round, without a notification).
#[utoipa::path(delete, path = "/api/admin/ai-alerts/{name}", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "The rule's name"),
           ("If-Match" = Option<String>, Header, description = "Delete only at this version")),
    responses((status = 204, description = "Deleted"), AdminErrors))]
async fn delete_alert(
    State(state): State<AlertsState>,
    AdminCaller(caller): AdminCaller,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let name = path(name)?;
    let expected = if_match(&headers)?;
    let exists = state.alerts.alert_records(AlertRecordKind::Rule).await?.iter().any(|r| r.name == name);
    if !exists {
        return Err(StoreError::NotFound(format!("alert rule named `{name}`")).into());
    }
    state.alerts.delete_alert_record(AlertRecordKind::Rule, &name, expected).await?;
    tracing::info!(admin = %caller.user_id, alert = %name, "alert rule deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
struct HistoryParams {
    /// At most this many entries, newest first (default 100, at most 1,000).
    limit: Option<usize>,
}

/// Firing, reminder and resolved events, newest first.
#[utoipa::path(get, path = "/api/admin/ai-alerts/history", tag = "admin", security(("bearer" = [])),
    params(HistoryParams),
    responses((status = 200, description = "History", body = Vec<HistoryEntry>), AdminErrors))]
async fn alert_history(
    State(state): State<AlertsState>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let limit = params.limit.unwrap_or(100).clamp(1, 1_000);
    Ok(Json(history(state.alerts.as_ref(), limit).await?))
}

/// A channel to create or update. `url` and `secret` are write-only: left out on an update, the
/// stored ones stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelBody {
    /// dingtalk, feishu, wecom, slack, webhook or email.
    #[schema(value_type = String)]
    pub kind: ChannelKind,
    pub url: Option<String>,
    #[schema(value_type = Option<String>)]
    pub secret: Option<SecretString>,
    #[serde(default)]
    pub to: Vec<String>,
    /// The version read (updates); left out: created, or written over whatever is there.
    pub version: Option<u64>,
}

/// Creates or updates a channel.
#[utoipa::path(put, path = "/api/admin/ai-alert-channels/{name}", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "The channel's name")),
    request_body = ChannelBody,
    responses((status = 200, description = "Saved", body = ChannelView), AdminErrors))]
async fn save_channel(
    State(state): State<AlertsState>,
    AdminCaller(caller): AdminCaller,
    name: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<ChannelBody>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonBody(body) = body?;
    let name = path(name)?;
    let stored = setup::load_channels(state.alerts.as_ref(), state.secrets.as_ref()).await?;
    let existing = stored.into_iter().find(|(c, _)| c.name == name);
    let kept = existing.as_ref().filter(|(c, _)| c.kind == body.kind).map(|(c, _)| c);
    let channel = ChannelConfig {
        name: name.clone(),
        kind: body.kind,
        url: body.url.or_else(|| kept.and_then(|c| c.url.clone())),
        secret: body.secret.or_else(|| kept.and_then(|c| c.secret.clone())),
        to: body.to,
    };
    let version = setup::save_channel(state.alerts.as_ref(), state.secrets.as_ref(), &channel, body.version)
        .await
        .map_err(setup_error)?;
    tracing::info!(admin = %caller.user_id, channel = %name, version, "alert channel saved");
    Ok(versioned(StatusCode::OK, channel_view(&channel, version), version))
}

/// Deletes a channel; one a rule still names is refused (409).
#[utoipa::path(delete, path = "/api/admin/ai-alert-channels/{name}", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "The channel's name")),
    responses((status = 204, description = "Deleted"), AdminErrors))]
async fn delete_channel(
    State(state): State<AlertsState>,
    AdminCaller(caller): AdminCaller,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let name = path(name)?;
    if let Some((rule, _)) =
        stored_rules(state.alerts.as_ref()).await?.into_iter().find(|(r, _)| r.channels.contains(&name))
    {
        return Err(ApiError::conflict(format!("The alert `{}` sends to `{name}`: change it first.", rule.name)));
    }
    if !channel_names(&state).await?.contains(&name) {
        return Err(StoreError::NotFound(format!("alert channel named `{name}`")).into());
    }
    setup::delete_channel(state.alerts.as_ref(), state.secrets.as_ref(), &name, if_match(&headers)?).await?;
    tracing::info!(admin = %caller.user_id, channel = %name, "alert channel deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestReport {
    pub delivered: bool,
    /// Why not (no secret in it).
    pub error: Option<String>,
}

/// Sends a test notification through a channel now.
#[utoipa::path(post, path = "/api/admin/ai-alert-channels/{name}/test", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "The channel's name")),
    responses((status = 200, description = "What the channel did", body = TestReport), AdminErrors))]
async fn test_channel(
    State(state): State<AlertsState>,
    AdminCaller(caller): AdminCaller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<TestReport>, ApiError> {
    let name = path(name)?;
    let stored = setup::load_channels(state.alerts.as_ref(), state.secrets.as_ref()).await?;
    let Some((channel, _)) = stored.into_iter().find(|(c, _)| c.name == name) else {
        return Err(StoreError::NotFound(format!("alert channel named `{name}`")).into());
    };
    let channels =
        Channels::new(vec![channel], state.email.clone()).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let now = maestro_shared::time::now_ms();
    let notification = maestro_shared::alerts::channels::Notification {
        alert: "maestro-test".into(),
        kind: "test".into(),
        state: NotificationState::Firing,
        repeat: false,
        title: format!("[TEST] Maestro alert channel `{name}` works"),
        details: vec![("Sent by".into(), caller.user_id.clone())],
        started_at_ms: now,
        at_ms: now,
    };
    let outcome = channels.send(&name, &notification).await;
    tracing::info!(admin = %caller.user_id, channel = %name, delivered = outcome.is_ok(), "alert channel tested");
    Ok(Json(TestReport { delivered: outcome.is_ok(), error: outcome.err().map(|e| e.to_string()) }))
}
