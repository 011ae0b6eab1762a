//! What alerting keeps in the store: rules and channels as versioned records (the admin API and
//! the TOML both write them), each rule instance's state (pending, firing, delivered), the
//! firing/resolved history, and the lease that lets one process at a time evaluate.

use async_trait::async_trait;

use super::StoreError;

/// Which records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertRecordKind {
    Rule,
    /// A channel's public part: its secret-bearing URL and signing secret live in the secret
    /// store.
    Channel,
    /// One rule instance's state (`<rule>#<instance>`).
    State,
}

impl AlertRecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rule => "rule",
            Self::Channel => "channel",
            Self::State => "state",
        }
    }
}

/// A record: its name, its body (JSON text, read by the alerts module) and its version (1 for a
/// new record, one more on every write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    pub name: String,
    pub body: String,
    pub version: u64,
}

/// How long the alert history is kept.
pub const ALERT_HISTORY_DAYS: i64 = 90;

#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Every record of a kind, by name.
    async fn alert_records(&self, kind: AlertRecordKind) -> Result<Vec<AlertRecord>, StoreError>;
    /// Writes a record and returns its new version. `expected`: `None` writes whatever is there;
    /// `Some(0)` only where none exists (else `Conflict`); `Some(v)` only over version `v` (else
    /// `Conflict`, or `NotFound` when there is none).
    async fn put_alert_record(
        &self,
        kind: AlertRecordKind,
        name: &str,
        body: &str,
        expected: Option<u64>,
    ) -> Result<u64, StoreError>;
    /// Deletes a record (`expected` as for puts; deleting what is not there is `NotFound` only
    /// with an expected version).
    async fn delete_alert_record(
        &self,
        kind: AlertRecordKind,
        name: &str,
        expected: Option<u64>,
    ) -> Result<(), StoreError>;
    /// Adds one history entry (JSON text), kept [`ALERT_HISTORY_DAYS`]; `id` makes entries of
    /// the same millisecond distinct.
    async fn append_alert_history(&self, ts_ms: i64, id: &str, body: &str) -> Result<(), StoreError>;
    /// The newest `limit` history entries, newest first.
    async fn alert_history(&self, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Takes (or renews) the evaluation lease for `holder` until `now_ms + ttl_ms`, unless
    /// another holder's lease runs past `now_ms`. `true` when `holder` has it.
    async fn acquire_alert_lease(&self, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool, StoreError>;
}

/// The optimistic check of a versioned write: see [`AlertStore::put_alert_record`].
pub fn check_version(
    kind: AlertRecordKind,
    name: &str,
    found: Option<u64>,
    expected: Option<u64>,
) -> Result<(), StoreError> {
    match (expected, found) {
        (None, _) | (Some(0), None) => Ok(()),
        (Some(0), Some(_)) => Err(StoreError::Conflict(format!("an alert {} named `{name}` exists", kind.as_str()))),
        (Some(_), None) => Err(StoreError::NotFound(format!("alert {} named `{name}`", kind.as_str()))),
        (Some(v), Some(found)) if v == found => Ok(()),
        (Some(v), Some(found)) => Err(StoreError::Conflict(format!(
            "the alert {} `{name}` is at version {found}, not {v}: reload it",
            kind.as_str()
        ))),
    }
}
