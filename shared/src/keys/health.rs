//! A provider key's health, as a pure function of what the provider answered: the one place the
//! key state machine lives (the gateway only applies its verdicts).
//!
//! - 401/403 → `invalid`: never tried again until an admin validates it.
//! - 429 → `rate_limited` until the provider's `retry-after`, else `rate_limit_cooldown_ms`.
//! - out of quota or balance → `rate_limited` for `quota_cooldown_ms`.
//! - `failure_threshold` retryable failures (5xx, timeouts, network) in a row → `error` for
//!   `error_cooldown_ms` (the circuit breaker); fewer leave the key as it is.
//! - a success → `normal` again.

use std::time::Duration;

use crate::domain::KeyStatus;
use crate::gateway::RetryPolicy;
use crate::providers::ProviderErrorKind;

/// A key's new status, and until when (unix ms) it cools down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChange {
    pub status: KeyStatus,
    pub cooldown_until: Option<i64>,
}

impl StatusChange {
    /// A cool-down after retryable failures (the breaker), rather than one the provider asked for.
    pub fn after_errors(&self) -> bool {
        self.status == KeyStatus::Error
    }
}

/// What a failed attempt does to the key. `failures_in_a_row` counts this failure when it is a
/// retryable one.
pub fn after_failure(
    kind: ProviderErrorKind,
    retry_after: Option<Duration>,
    failures_in_a_row: u32,
    policy: &RetryPolicy,
    now_ms: i64,
) -> Option<StatusChange> {
    let cooling = |status, wait_ms: u64| StatusChange {
        status,
        cooldown_until: Some(now_ms.saturating_add(i64::try_from(wait_ms).unwrap_or(i64::MAX))),
    };
    match kind {
        ProviderErrorKind::Auth => Some(StatusChange { status: KeyStatus::Invalid, cooldown_until: None }),
        ProviderErrorKind::RateLimited => {
            let wait = retry_after.map_or(policy.rate_limit_cooldown_ms, |d| d.as_millis() as u64);
            Some(cooling(KeyStatus::RateLimited, wait))
        }
        ProviderErrorKind::QuotaExceeded => Some(cooling(KeyStatus::RateLimited, policy.quota_cooldown_ms)),
        kind if kind.is_retryable() && failures_in_a_row >= policy.failure_threshold => {
            Some(cooling(KeyStatus::Error, policy.error_cooldown_ms))
        }
        _ => None,
    }
}

/// What a success does to the key: back to `normal` when it was not.
pub fn after_success(current: KeyStatus) -> Option<StatusChange> {
    (current != KeyStatus::Normal).then_some(StatusChange { status: KeyStatus::Normal, cooldown_until: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn change(kind: ProviderErrorKind, retry_after: Option<Duration>, failures: u32) -> Option<StatusChange> {
        after_failure(kind, retry_after, failures, &RetryPolicy::default(), NOW)
    }

    #[test]
    fn a_rejected_key_is_invalid_with_no_cooldown() {
        assert_eq!(
            change(ProviderErrorKind::Auth, None, 0),
            Some(StatusChange { status: KeyStatus::Invalid, cooldown_until: None })
        );
    }

    #[test]
    fn a_rate_limited_key_cools_down_for_the_providers_retry_after_else_the_default() {
        let told = change(ProviderErrorKind::RateLimited, Some(Duration::from_secs(7)), 0);
        assert_eq!(told, Some(StatusChange { status: KeyStatus::RateLimited, cooldown_until: Some(NOW + 7_000) }));
        let default = change(ProviderErrorKind::RateLimited, None, 0);
        assert_eq!(default.and_then(|c| c.cooldown_until), Some(NOW + 60_000));
        let quota = change(ProviderErrorKind::QuotaExceeded, Some(Duration::from_secs(7)), 0);
        assert_eq!(quota, Some(StatusChange { status: KeyStatus::RateLimited, cooldown_until: Some(NOW + 900_000) }));
    }

    #[test]
    fn the_breaker_opens_at_the_threshold_of_retryable_failures_in_a_row() {
        for kind in [ProviderErrorKind::Server, ProviderErrorKind::Timeout, ProviderErrorKind::Network] {
            assert_eq!(change(kind, None, 2), None, "{kind:?} below the threshold");
            let open = change(kind, None, 3);
            assert_eq!(open, Some(StatusChange { status: KeyStatus::Error, cooldown_until: Some(NOW + 30_000) }));
            assert!(open.is_some_and(|c| c.after_errors()));
        }
        assert_eq!(change(ProviderErrorKind::InvalidRequest, None, 10), None, "the caller's error, not the key's");
    }

    #[test]
    fn a_success_heals_a_key_that_was_not_normal() {
        assert_eq!(after_success(KeyStatus::Normal), None);
        for status in [KeyStatus::RateLimited, KeyStatus::Error, KeyStatus::Invalid] {
            assert_eq!(after_success(status), Some(StatusChange { status: KeyStatus::Normal, cooldown_until: None }));
        }
    }
}
