//! The scheduled roll-up (docs/ARCHITECTURE.md §6, "EventBridge schedule → rollup handler"): it
//! returns keys whose cool-down has passed to `normal`, so the admin view shows them healthy
//! again. Stats need no roll-up: the stats API answers from the exact daily rows.
//!
//! Everything here runs over the store traits; the Lambda function (`functions/rollup`) only
//! turns a scheduled event into a call to [`run`].

use serde::Serialize;

use crate::domain::KeyStatus;
use crate::store::{CatalogStore, StoreError};

/// What one roll-up did; logged as one line and returned by the Lambda function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RollupReport {
    /// Keys whose cool-down had passed and that are `normal` again.
    pub recovered_keys: Vec<String>,
    /// What failed (the Lambda function then fails the invocation).
    pub errors: Vec<String>,
}

/// Sets every `rate_limited` or `error` key whose cool-down has passed back to `normal`. Keys
/// marked `invalid` stay so until an admin validates them. Returns the ids set back.
///
/// The catalog is read once and each key written without a condition: if the chat path cools a
/// key down again in the moment between, that cool-down is lost and the key is tried once more
/// (and cooled down again on the provider's next 429). Selection itself never depended on this
/// step: a key whose `cooldown_until` has passed is usable either way.
pub async fn recover_cooled_down_keys(catalog: &dyn CatalogStore, now_ms: i64) -> Result<Vec<String>, StoreError> {
    let snapshot = catalog.load_catalog().await?;
    let mut recovered = Vec::new();
    for key in snapshot.providers.iter().flat_map(|p| p.keys.iter()) {
        let cooling = matches!(key.status, KeyStatus::RateLimited | KeyStatus::Error);
        if cooling && key.cooldown_until.is_none_or(|until| until <= now_ms) {
            match catalog.set_key_status(&key.id, KeyStatus::Normal, None).await {
                Ok(()) => recovered.push(key.id.clone()),
                // Deleted since the snapshot: nothing left to recover.
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(recovered)
}

/// One roll-up at `now_ms`: key recovery. A failure is listed in the report's `errors`.
pub async fn run(catalog: &dyn CatalogStore, now_ms: i64) -> RollupReport {
    let mut report = RollupReport::default();
    match recover_cooled_down_keys(catalog, now_ms).await {
        Ok(ids) => report.recovered_keys = ids,
        Err(e) => report.errors.push(format!("key recovery: {e}")),
    }
    report
}
