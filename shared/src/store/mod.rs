//! Storage behind small traits. Handlers and the gateway never know which backend they use:
//! `embedded` (one SQLite file, for the local runner) or `aws` (DynamoDB, SQS, Secrets Manager).

pub mod alerts;
pub mod caller_keys;
pub mod catalog_admin;
pub mod credits;
pub mod embedded;
pub mod response_cache;

pub use catalog_admin::{
    AdminCatalog, AdminProviderEntry, CatalogAdminStore, KeyError, KeyRecord, ModelRecord, ProviderRecord, RouteRecord,
};

pub use alerts::{ALERT_HISTORY_DAYS, AlertRecord, AlertRecordKind, AlertStore};
pub use caller_keys::{BudgetLimits, BudgetUsage, CallerKey, CallerKeyStore};
pub use credits::{CreditAccount, CreditStore, LedgerEntry, LedgerKind, Settlement, TopUp};
pub use response_cache::{CachedAnswer, ResponseCacheStore};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{ApiKey, Catalog, KeyLimits, KeyStatus, Model, Provider, Route};
use crate::logs::LogEvent;
use crate::secret::SecretString;
use crate::stats::{CallerKeyRow, CallerRow, StatsQuery, StatsRow};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend failed in a way a retry will not mend (a broken file, an item Maestro cannot
    /// read, a refused request). `context` says what was being done; `source` keeps the backend's
    /// own error typed, for the log and for tests that ask what failed.
    #[error("storage backend failed: {context}")]
    Backend {
        context: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The backend is busy (throttled, in conflict) or unreachable (5xx, timeout, connection
    /// lost), still after the backend's own retries. Nothing is wrong with the request: the same
    /// call may pass in a moment. HTTP: 503 with `retry-after`, never a 500.
    #[error("storage backend unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// A backend failure with nothing underneath it (an item Maestro cannot read, a lock held).
    pub fn backend(context: impl Into<String>) -> Self {
        StoreError::Backend { context: context.into(), source: None }
    }

    /// A backend failure caused by `source` (a SQLite, I/O, SDK or task error), kept typed.
    pub fn backend_caused(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StoreError::Backend { context: context.into(), source: Some(source.into()) }
    }
}

/// The error and its causes on one line, for the log.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}

/// A store failure as the caller sees it, in one place for every route: 404 and 409 with their
/// message; a busy or unreachable backend (throttling that outlived the store's retries) a 503
/// worth retrying shortly, never a 500; anything else a 500 whose details go to the log only.
impl From<StoreError> for crate::error::ApiError {
    fn from(e: StoreError) -> Self {
        use crate::error::ApiError;
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("No {what}.")),
            StoreError::Conflict(message) => ApiError::conflict(format!("Conflict: {message}.")),
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "store busy or unavailable");
                ApiError::unavailable("backend_busy", "Maestro's storage is busy; retry shortly.").with_retry_after(1)
            }
            e @ StoreError::Backend { .. } => {
                tracing::error!(error = %with_causes(&e), "store failure");
                ApiError::internal()
            }
        }
    }
}

/// Providers, models, keys and routes.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// The whole catalog in one snapshot.
    async fn load_catalog(&self) -> Result<Catalog, StoreError>;
    /// Whether the catalog has never been seeded.
    async fn is_empty(&self) -> Result<bool, StoreError>;
    async fn upsert_provider(&self, provider: &Provider) -> Result<(), StoreError>;
    async fn upsert_model(&self, model: &Model) -> Result<(), StoreError>;
    /// Inserts a model only where none of that name exists (seeding must not undo an admin's edit).
    async fn insert_model_if_absent(&self, model: &Model) -> Result<bool, StoreError>;
    async fn upsert_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    async fn delete_key(&self, key_id: &str) -> Result<(), StoreError>;
    async fn upsert_route(&self, route: &Route) -> Result<(), StoreError>;
    /// Sets a key's health (after a 401, a 429, repeated 5xx, or a validation).
    async fn set_key_status(
        &self,
        key_id: &str,
        status: KeyStatus,
        cooldown_until: Option<i64>,
    ) -> Result<(), StoreError>;
    /// Notes why a key failed (a provider's message, free of secrets) at `at_ms`, unless a newer
    /// error is noted already. Like the status, it leaves the key's version alone. `NotFound`
    /// for an unknown key.
    async fn note_key_error(&self, key_id: &str, message: &str, at_ms: i64) -> Result<(), StoreError>;
}

/// Longest key error kept.
pub const MAX_KEY_ERROR_CHARS: usize = 500;

/// A key error as stored: trimmed, at most [`MAX_KEY_ERROR_CHARS`] characters.
pub fn key_error_text(message: &str) -> String {
    let message = message.trim();
    match message.char_indices().nth(MAX_KEY_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_string(),
    }
}

/// Which window refused a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    Minute,
    Day,
}

/// A reservation that went through: which windows hold it, for the reconcile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    pub key_id: String,
    pub minute_window: String,
    pub day_window: String,
    /// Tokens the token-limited window holds for the call: the estimate, or less where one
    /// call may hold only part of a window (a shard's share on DynamoDB, docs/ARCHITECTURE.md §4).
    pub reserved_tokens: u64,
    /// Micro-USD the cost-limited day window holds for the call (caller keys), the same way.
    pub reserved_cost_micros: u64,
    /// Which windows counted the call, and where.
    pub counted: Counted,
}

impl Grant {
    /// A grant for the windows of `now_ms`, counted where `counted` says.
    pub fn new(key_id: &str, now_ms: i64, tokens: u64, cost_micros: u64, counted: Counted) -> Self {
        Self {
            key_id: key_id.to_string(),
            minute_window: crate::time::minute_window(now_ms),
            day_window: crate::time::day_window(now_ms),
            reserved_tokens: tokens,
            reserved_cost_micros: cost_micros,
            counted,
        }
    }
}

/// The windows a grant was counted in. A window is counted only when the key has a limit on it,
/// and it counts tokens (or cost) only when a limit applies to them: those are what a reconcile
/// corrects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub minute: Option<CountedIn>,
    pub day: Option<CountedIn>,
}

/// Where one window counted a grant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountedIn {
    /// The window's shard (always 0 on a backend that does not shard).
    pub shard: u16,
    /// Whether the window counts the call's tokens and cost, so a reconcile corrects them.
    pub with_tokens: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    Granted(Grant),
    /// The key is full in this window until `until_ms` (unix ms).
    Refused {
        window: WindowKind,
        until_ms: i64,
    },
}

/// Requests and tokens counted in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowUsage {
    pub requests: u64,
    pub tokens: u64,
}

/// Per-key window counters: the exact rate limits.
#[async_trait]
pub trait CounterStore: Send + Sync {
    /// Adds one request (and `tokens` to the minute when it has a tpm) to the key's minute and day
    /// windows at `now_ms`, only if afterwards requests ≤ rpm, tokens ≤ tpm (minute) and
    /// requests ≤ rpd (day). A window the key has no limit on is not counted (a key without
    /// limits writes nothing). Either every counted window keeps it or none does.
    async fn reserve(
        &self,
        key_id: &str,
        limits: &KeyLimits,
        now_ms: i64,
        tokens: u64,
    ) -> Result<Reservation, StoreError>;
    /// Corrects the reserved tokens by `delta` (actual − estimate) in the windows of the grant
    /// that count tokens, without a condition.
    async fn reconcile(&self, grant: &Grant, delta: i64) -> Result<(), StoreError>;
    /// What the key's current minute and day windows hold.
    async fn usage(&self, key_id: &str, now_ms: i64) -> Result<(WindowUsage, WindowUsage), StoreError>;

    // A caller's Maestro API key (`mk-…`) is limited with the same windows, plus a cost counter
    // in the day window: requests per minute, tokens and micro-USD per UTC day.

    /// Adds one request to the key's minute window (when it has an rpm) and one request, `tokens`
    /// and `cost_micros` to its day window (when it has a budget; only the budgeted ones of
    /// tokens and cost) at `now_ms`, only if afterwards minute requests ≤ rpm, day tokens ≤
    /// tokens_per_day and day cost ≤ cost_micros_per_day. Either every counted window keeps it
    /// or none does. A refusal names the window (`Minute` for rpm, `Day` for a budget).
    async fn reserve_budget(
        &self,
        key_id: &str,
        limits: &BudgetLimits,
        now_ms: i64,
        tokens: u64,
        cost_micros: u64,
    ) -> Result<Reservation, StoreError>;
    /// Corrects a budget grant's tokens and cost by their deltas (actual − estimate) in its day
    /// window, without a condition; neither goes below zero.
    async fn reconcile_budget(&self, grant: &Grant, tokens_delta: i64, cost_delta: i64) -> Result<(), StoreError>;
    /// What the key's current windows hold, cost included.
    async fn budget_usage(&self, key_id: &str, now_ms: i64) -> Result<BudgetUsage, StoreError>;
}

/// Provider key secrets.
#[async_trait]
pub trait SecretStore: Send + Sync {
    async fn get_secret(&self, secret_ref: &str) -> Result<SecretString, StoreError>;
    async fn put_secret(&self, secret_ref: &str, value: &SecretString) -> Result<(), StoreError>;
    async fn delete_secret(&self, secret_ref: &str) -> Result<(), StoreError>;
}

/// Filters for reading call logs, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub provider: Option<String>,
    pub user_id: Option<String>,
    pub request_id: Option<String>,
    pub limit: usize,
    /// The model name exactly as logged.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub status: Option<crate::logs::CallStatus>,
    /// Keyset pagination: only logs strictly older than this `(ts_ms, request_id)` in the
    /// newest-first order (`ts_ms` descending, then `request_id` descending).
    #[serde(default)]
    pub before: Option<(i64, String)>,
    /// Only calls that named this route (exact name).
    #[serde(default)]
    pub route: Option<String>,
    /// Only models whose name (as logged) contains this, ignoring case.
    #[serde(default)]
    pub model_contains: Option<String>,
    /// Only callers whose user id contains this, ignoring case.
    #[serde(default)]
    pub user_contains: Option<String>,
}

/// Whether `haystack` contains `needle`, ignoring case (an empty needle is in everything).
pub fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// How many logs a query finds, counted up to a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCount {
    /// The number of logs found, at most the cap.
    pub count: u64,
    /// Whether there are more than `count` (the count stopped at the cap).
    pub capped: bool,
}

impl LogQuery {
    /// Whether a log passes every filter (`from_ms` inclusive, `to_ms` exclusive, `before`).
    pub fn matches(&self, e: &LogEvent) -> bool {
        self.from_ms.is_none_or(|from| e.ts_ms >= from)
            && self.to_ms.is_none_or(|to| e.ts_ms < to)
            && self.provider.as_ref().is_none_or(|p| *p == e.provider)
            && self.user_id.as_ref().is_none_or(|u| e.user_id.as_ref() == Some(u))
            && self.request_id.as_ref().is_none_or(|r| *r == e.request_id)
            && self.model.as_ref().is_none_or(|m| *m == e.model)
            && self.status.is_none_or(|s| s == e.status)
            && self.route.as_ref().is_none_or(|r| e.route.as_ref() == Some(r))
            && self.before.as_ref().is_none_or(|(ts, id)| (e.ts_ms, e.request_id.as_str()) < (*ts, id.as_str()))
            && self.model_contains.as_deref().is_none_or(|m| contains_ignoring_case(&e.model, m))
            && self
                .user_contains
                .as_deref()
                .is_none_or(|u| e.user_id.as_deref().is_some_and(|id| contains_ignoring_case(id, u)))
    }

    /// Whether a filter needs each log read to be checked here (a partial match, which no
    /// DynamoDB key or filter expression can do ignoring case).
    pub fn has_partial_match(&self) -> bool {
        self.model_contains.is_some() || self.user_contains.is_some()
    }
}

/// Call logs and daily stats, written exactly once per event.
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// Writes the event's log row and adds it to the stats in one atomic step. Returns `false`
    /// (and changes nothing) when this request id was recorded before.
    async fn record_event(&self, event: &LogEvent) -> Result<bool, StoreError>;
    /// Records several events at once, each exactly once (`true` where newly recorded). A
    /// backend may apply them in one atomic step; then an error means none was recorded. The
    /// default records them one by one.
    async fn record_events(&self, events: &[LogEvent]) -> Result<Vec<bool>, StoreError> {
        let mut recorded = Vec::with_capacity(events.len());
        for event in events {
            recorded.push(self.record_event(event).await?);
        }
        Ok(recorded)
    }
    async fn stats_rows(&self, query: &StatsQuery) -> Result<Vec<StatsRow>, StoreError>;
    async fn logs(&self, query: &LogQuery) -> Result<Vec<LogEvent>, StoreError>;
    /// The minute rows of the minutes `[from_ms, to_ms)` overlaps: `date` holds the minute
    /// (`yyyy-mm-ddTHH:MM`), `route` is `None`. Kept [`crate::stats::MINUTE_RETENTION_DAYS`]
    /// days; alerts and the live panel read them.
    async fn minute_rows(&self, from_ms: i64, to_ms: i64) -> Result<Vec<StatsRow>, StoreError>;
    /// Per caller and day, `from_date..=to_date` (`yyyy-mm-dd`), of one caller or all.
    async fn caller_rows(
        &self,
        from_date: &str,
        to_date: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<CallerRow>, StoreError>;
    /// Per Maestro API key and day, `from_date..=to_date`, of every key that made calls.
    async fn caller_key_rows(&self, from_date: &str, to_date: &str) -> Result<Vec<CallerKeyRow>, StoreError>;
    /// How many logs pass the query's filters (its `limit` and `before` ignored), counting at
    /// most `cap`. The default reads the logs page by page, so a count costs at most `cap` reads.
    async fn count_logs(&self, query: &LogQuery, cap: u64) -> Result<LogCount, StoreError> {
        let mut page = LogQuery { limit: COUNT_PAGE, before: None, ..query.clone() };
        let mut count = 0u64;
        loop {
            let events = self.logs(&page).await?;
            count += events.len() as u64;
            if count > cap {
                return Ok(LogCount { count: cap, capped: true });
            }
            match events.last() {
                Some(last) if events.len() == COUNT_PAGE && page.request_id.is_none() => {
                    page.before = Some((last.ts_ms, last.request_id.clone()));
                }
                _ => return Ok(LogCount { count, capped: false }),
            }
        }
    }
}

/// Logs read per page when counting them one page at a time.
const COUNT_PAGE: usize = 1_000;

#[cfg(test)]
mod tests {
    use super::*;

    /// Logs in memory, read as a store reads them: the filters, newest first, up to the limit.
    struct Logs(Vec<LogEvent>, std::sync::atomic::AtomicUsize);

    #[async_trait]
    impl StatsStore for Logs {
        async fn record_event(&self, _: &LogEvent) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn stats_rows(&self, _: &StatsQuery) -> Result<Vec<StatsRow>, StoreError> {
            Ok(Vec::new())
        }
        async fn minute_rows(&self, _: i64, _: i64) -> Result<Vec<StatsRow>, StoreError> {
            Ok(Vec::new())
        }
        async fn caller_rows(&self, _: &str, _: &str, _: Option<&str>) -> Result<Vec<CallerRow>, StoreError> {
            Ok(Vec::new())
        }
        async fn caller_key_rows(&self, _: &str, _: &str) -> Result<Vec<CallerKeyRow>, StoreError> {
            Ok(Vec::new())
        }
        async fn logs(&self, q: &LogQuery) -> Result<Vec<LogEvent>, StoreError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut found: Vec<LogEvent> = self.0.iter().filter(|e| q.matches(e)).cloned().collect();
            found.sort_by(|a, b| (b.ts_ms, &b.request_id).cmp(&(a.ts_ms, &a.request_id)));
            found.truncate(q.limit);
            Ok(found)
        }
    }

    #[tokio::test]
    async fn a_count_reads_page_after_page_and_stops_past_the_cap() {
        let events: Vec<LogEvent> = (0..2_345)
            .map(|i| LogEvent {
                model: if i % 5 == 0 { "GPT-4o".into() } else { "claude".into() },
                ..LogEvent::sample(&format!("r{i:05}"), 1_000 + i64::from(i) / 3)
            })
            .collect();
        let store = Logs(events, std::sync::atomic::AtomicUsize::new(0));
        let pages = || store.1.swap(0, std::sync::atomic::Ordering::SeqCst);
        let all = store.count_logs(&LogQuery { limit: 7, ..LogQuery::default() }, 10_000).await.expect("count");
        assert_eq!((all, pages()), (LogCount { count: 2_345, capped: false }, 3));
        let capped = store.count_logs(&LogQuery::default(), 1_500).await.expect("count");
        assert_eq!((capped, pages()), (LogCount { count: 1_500, capped: true }, 2));
        let gpt = LogQuery { model_contains: Some("gpt".into()), ..LogQuery::default() };
        assert_eq!(store.count_logs(&gpt, 10_000).await.expect("count"), LogCount { count: 469, capped: false });
        let exactly = store.count_logs(&gpt, 469).await.expect("count");
        assert_eq!(exactly, LogCount { count: 469, capped: false });
        let one = LogQuery { request_id: Some("r00042".into()), ..LogQuery::default() };
        assert_eq!(store.count_logs(&one, 10).await.expect("count"), LogCount { count: 1, capped: false });
    }

    #[test]
    fn partial_matches_ignore_case_and_want_a_user_to_match_a_user() {
        let e = LogEvent::sample("r", 1);
        let q = |model: Option<&str>, user: Option<&str>| LogQuery {
            model_contains: model.map(str::to_string),
            user_contains: user.map(str::to_string),
            ..LogQuery::default()
        };
        assert!(q(Some("4O-MI"), Some("USER")).matches(&e));
        assert!(!q(Some("claude"), None).matches(&e));
        assert!(!q(None, Some("x")).matches(&LogEvent { user_id: None, ..e.clone() }));
        assert!(
            q(None, None).matches(&e) && !q(None, None).has_partial_match() && q(Some(""), None).has_partial_match()
        );
        assert_eq!(key_error_text(&format!("  {}  ", "é".repeat(501))).chars().count(), 501);
        assert_eq!(key_error_text(" short "), "short");
    }
}
