//! Users' credits, managed by admins (on when `[credits] enabled` or `MAESTRO_CREDITS=on`):
//!
//! - `POST /api/admin/credits/{user_id}/top-up` with `{"amount_micro_usd", "reason"}` adds
//!   credits and answers the new balance with the ledger entry;
//! - `GET /api/admin/credits/{user_id}` answers `{"user_id", "balance_micro_usd", …}`;
//! - `GET /api/admin/credits/{user_id}/ledger` lists what moved the balance, newest first: who
//!   topped up and why, and each call's charge with its request id.
//!
//! Users are the business API's callers: a JWT's `sub`, or a Maestro API key's owner.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use maestro_shared::auth::JwtAuth;
use maestro_shared::auth::admin_guard::{self, AdminCaller};
use maestro_shared::error::ApiError;
use maestro_shared::http::JsonBody;
use maestro_shared::openapi::{AdminErrors, ErrorDetail, ErrorResponse};
use maestro_shared::stats::report::{decode_cursor, encode_cursor};
use maestro_shared::store::{CreditAccount, CreditStore, LedgerEntry, LedgerKind, TopUp};
use maestro_shared::time;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

const MAX_USER_CHARS: usize = 256;
const MAX_REASON_CHARS: usize = 500;
/// The largest top-up accepted: $1,000,000 in micro-USD.
const MAX_TOP_UP_MICROS: i64 = 1_000_000_000_000;
const DEFAULT_LEDGER_LIMIT: usize = 100;
const MAX_LEDGER_LIMIT: usize = 1_000;

/// The credit store, when credits are on.
#[derive(Clone)]
struct CreditsState {
    store: Option<Arc<dyn CreditStore>>,
}

/// The routes, with their own state, to merge into the admin router (of any state type).
pub(crate) fn router<S: Clone + Send + Sync + 'static>(
    store: Option<Arc<dyn CreditStore>>,
    auth: Arc<JwtAuth>,
) -> Router<S> {
    let routes = Router::new()
        .route("/api/admin/credits/{user_id}", get(read_balance))
        .route("/api/admin/credits/{user_id}/top-up", post(top_up))
        .route("/api/admin/credits/{user_id}/ledger", get(read_ledger));
    admin_guard::guard(routes, auth).with_state(CreditsState { store })
}

#[derive(OpenApi)]
#[openapi(
    paths(top_up, read_balance, read_ledger),
    components(schemas(ErrorResponse, ErrorDetail)),
    tags((name = "credits", description = "Users' credits: balances, top-ups and the ledger (admin token)"))
)]
pub(crate) struct CreditsApi;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopUpBody {
    /// Micro-USD to add (1,000,000 = $1), 1 to 1,000,000,000,000.
    pub amount_micro_usd: i64,
    /// Why, for the ledger (an order number, "monthly plan", …).
    pub reason: String,
}

/// A user's credits.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct BalanceView {
    pub user_id: String,
    /// Available plus held, micro-USD; below zero only by calls whose cost exceeded their hold.
    pub balance_micro_usd: i64,
    /// What new calls can hold.
    pub available_micro_usd: i64,
    /// Held by calls in flight, settled when they end.
    pub held_micro_usd: i64,
}

impl BalanceView {
    fn of(user_id: &str, a: CreditAccount) -> Self {
        Self {
            user_id: user_id.to_string(),
            balance_micro_usd: a.balance_micros(),
            available_micro_usd: a.available_micros,
            held_micro_usd: a.held_micros,
        }
    }
}

/// One ledger entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct LedgerEntryView {
    pub id: String,
    pub kind: LedgerKind,
    /// Added (positive) or charged (negative), micro-USD.
    pub amount_micro_usd: i64,
    /// RFC 3339, UTC (a charge: when the call started).
    pub at: String,
    pub ts_ms: i64,
    /// A top-up's reason; a charge's `provider/model`.
    pub reason: Option<String>,
    /// The admin who topped up.
    pub actor: Option<String>,
    /// The charged call's request id (`x-request-id`, the call log's `request_id`).
    pub call_id: Option<String>,
}

impl From<&LedgerEntry> for LedgerEntryView {
    fn from(e: &LedgerEntry) -> Self {
        Self {
            id: e.id.clone(),
            kind: e.kind,
            amount_micro_usd: e.amount_micros,
            at: time::rfc3339(e.ts_ms),
            ts_ms: e.ts_ms,
            reason: e.reason.clone(),
            actor: e.actor.clone(),
            call_id: e.call_id.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ToppedUp {
    #[serde(flatten)]
    pub balance: BalanceView,
    pub entry: LedgerEntryView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct LedgerPage {
    pub user_id: String,
    pub data: Vec<LedgerEntryView>,
    /// Pass as `cursor` for the next (older) page; `null` on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct LedgerQuery {
    /// Entries per page, 1–1,000 (default 100).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn store_of(state: &CreditsState) -> Result<&Arc<dyn CreditStore>, ApiError> {
    state.store.as_ref().ok_or_else(|| {
        ApiError::conflict("Credits are off: set `[credits] enabled = true` (or `MAESTRO_CREDITS=on`) and restart.")
            .with_code("credits_disabled")
    })
}

fn user_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(user) = path.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let user = user.trim();
    if user.is_empty() || user.chars().count() > MAX_USER_CHARS || user.chars().any(char::is_control) {
        return Err(ApiError::invalid_param(
            "user_id",
            format!("`user_id` must be 1 to {MAX_USER_CHARS} characters without control characters."),
        ));
    }
    Ok(user.to_string())
}

/// Adds credits to a user's balance.
#[utoipa::path(post, path = "/api/admin/credits/{user_id}/top-up", tag = "credits", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user (a JWT `sub`, or a Maestro API key's owner)")),
    request_body = TopUpBody,
    responses((status = 200, description = "The new balance and the ledger entry", body = ToppedUp), AdminErrors))]
async fn top_up(
    State(state): State<CreditsState>,
    AdminCaller(admin): AdminCaller,
    path: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<TopUpBody>, ApiError>,
) -> Result<Json<ToppedUp>, ApiError> {
    let user = user_id(path)?;
    let JsonBody(body) = body?;
    if !(1..=MAX_TOP_UP_MICROS).contains(&body.amount_micro_usd) {
        return Err(ApiError::invalid_param(
            "amount_micro_usd",
            format!("`amount_micro_usd` must be 1 to {MAX_TOP_UP_MICROS} (micro-USD: 1,000,000 = $1)."),
        ));
    }
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control) {
        return Err(ApiError::invalid_param(
            "reason",
            format!("`reason` must be 1 to {MAX_REASON_CHARS} characters without control characters."),
        ));
    }
    let store = store_of(&state)?;
    let request = TopUp {
        user_id: &user,
        amount_micros: body.amount_micro_usd,
        reason,
        actor: &admin.user_id,
        at_ms: time::now_ms(),
    };
    let entry = store.top_up(&request).await.map_err(ApiError::from)?;
    let account = store.credit_account(&user).await.map_err(ApiError::from)?;
    tracing::info!(admin = %admin.user_id, user = %user, amount = body.amount_micro_usd, entry = %entry.id, "credits topped up");
    Ok(Json(ToppedUp { balance: BalanceView::of(&user, account), entry: LedgerEntryView::from(&entry) }))
}

/// A user's balance (zeros for a user never topped up).
#[utoipa::path(get, path = "/api/admin/credits/{user_id}", tag = "credits", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user")),
    responses((status = 200, description = "The balance", body = BalanceView), AdminErrors))]
async fn read_balance(
    State(state): State<CreditsState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<BalanceView>, ApiError> {
    let user = user_id(path)?;
    let account = store_of(&state)?.credit_account(&user).await.map_err(ApiError::from)?;
    Ok(Json(BalanceView::of(&user, account)))
}

/// What moved a user's balance, newest first, a page at a time.
#[utoipa::path(get, path = "/api/admin/credits/{user_id}/ledger", tag = "credits", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user"), LedgerQuery),
    responses((status = 200, description = "A page of the ledger", body = LedgerPage), AdminErrors))]
async fn read_ledger(
    State(state): State<CreditsState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<LedgerQuery>, QueryRejection>,
) -> Result<Json<LedgerPage>, ApiError> {
    let user = user_id(path)?;
    let Query(query) = query.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LEDGER_LIMIT);
    if !(1..=MAX_LEDGER_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_param("limit", format!("`limit` must be 1 to {MAX_LEDGER_LIMIT}.")));
    }
    let before = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let entries = store_of(&state)?.credit_ledger(&user, before, limit).await.map_err(ApiError::from)?;
    let next_cursor = (entries.len() == limit).then(|| entries.last().map(|e| encode_cursor(e.ts_ms, &e.id))).flatten();
    Ok(Json(LedgerPage { user_id: user, data: entries.iter().map(LedgerEntryView::from).collect(), next_cursor }))
}
