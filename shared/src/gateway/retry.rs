//! Retry policy (docs/ARCHITECTURE.md §5): what is retried, how long to wait, when to give up.

use std::time::Duration;

use serde::Deserialize;

/// Knobs of the retry, fallback and key-health policy. Defaults follow docs/ARCHITECTURE.md §5.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries of a retryable failure per target (attempts = retries + 1, plus key switches).
    pub max_retries: u32,
    /// Backoff is `min(base · 2^n, max)` with full jitter.
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// A provider's `retry-after` is honoured up to this.
    pub max_retry_after_ms: u64,
    /// Time for one upstream attempt.
    pub attempt_timeout_ms: u64,
    /// Time for the whole call, all attempts and fallbacks included.
    pub deadline_ms: u64,
    /// Time for a whole stream, from the call's start to its last frame; unset, `deadline_ms`.
    /// A stream still running then ends with an in-band error and is recorded.
    pub stream_deadline_ms: Option<u64>,
    /// Cool-down of a key after a 429 without `retry-after`.
    pub rate_limit_cooldown_ms: u64,
    /// Cool-down of a key whose account is out of quota or balance.
    pub quota_cooldown_ms: u64,
    /// Cool-down of a key after `failure_threshold` retryable failures in a row.
    pub error_cooldown_ms: u64,
    pub failure_threshold: u32,
    /// `max_tokens` sent to formats that require one when the caller gave none.
    pub default_max_tokens: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay_ms: 1_000,
            max_delay_ms: 10_000,
            max_retry_after_ms: 30_000,
            attempt_timeout_ms: 120_000,
            deadline_ms: 300_000,
            stream_deadline_ms: None,
            rate_limit_cooldown_ms: 60_000,
            quota_cooldown_ms: 15 * 60_000,
            error_cooldown_ms: 30_000,
            failure_threshold: 3,
            default_max_tokens: 4_096,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based): full jitter over the exponential cap,
    /// or the provider's `retry-after` (capped) when it gave one.
    pub fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(Duration::from_millis(self.max_retry_after_ms));
        }
        Duration::from_millis(fastrand::u64(0..=self.backoff_ceiling_ms(retry)))
    }

    /// The longest wait before retry number `retry`: `base_delay_ms` doubled per retry, at most
    /// `max_delay_ms`.
    fn backoff_ceiling_ms(&self, retry: u32) -> u64 {
        self.base_delay_ms.saturating_mul(1u64 << retry.min(20)).min(self.max_delay_ms)
    }

    pub fn attempt_timeout(&self) -> Duration {
        Duration::from_millis(self.attempt_timeout_ms)
    }

    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    pub fn stream_deadline(&self) -> Duration {
        Duration::from_millis(self.stream_deadline_ms.unwrap_or(self.deadline_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_and_honours_retry_after() {
        let p = RetryPolicy::default();
        let ceilings: Vec<u64> = (0..6).map(|retry| p.backoff_ceiling_ms(retry)).collect();
        assert_eq!(ceilings, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        assert_eq!(p.backoff_ceiling_ms(u32::MAX), 10_000, "no overflow on a huge retry count");
        for retry in 0..8 {
            for _ in 0..50 {
                assert!(p.backoff(retry, None) <= Duration::from_millis(p.backoff_ceiling_ms(retry)));
            }
        }
        // Full jitter: the waits spread over the range rather than sitting at one value.
        let waits: std::collections::BTreeSet<Duration> = (0..50).map(|_| p.backoff(3, None)).collect();
        assert!(waits.len() > 10, "{waits:?}");
        assert_eq!(p.backoff(0, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(p.backoff(0, Some(Duration::from_secs(600))), Duration::from_secs(30));
    }
}
