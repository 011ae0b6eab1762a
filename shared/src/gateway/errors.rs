//! How provider failures and empty key pools become the caller's error.

use crate::error::ApiError;
use crate::providers::{ProviderError, ProviderErrorKind};

pub(super) fn secs_until(until_ms: i64, now_ms: i64) -> u64 {
    u64::try_from((until_ms - now_ms).max(0)).unwrap_or(0).div_ceil(1000).max(1)
}

/// A provider's 4xx about the request itself, passed on with its own status and message.
pub(super) fn client_error(e: &ProviderError) -> ApiError {
    ApiError::upstream_refusal(e.status.unwrap_or(400), e.code.as_deref(), e.message.clone())
}

/// The caller's error once a target's keys and retries are spent on a provider failure: Maestro
/// has already retried, so clients are told not to (`x-should-retry: false`).
pub(super) fn upstream_error(provider: &str, e: &ProviderError) -> ApiError {
    let status = e.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
    let error = match e.kind {
        ProviderErrorKind::Timeout => {
            ApiError::gateway_timeout(format!("Provider `{provider}` did not answer in time."))
        }
        ProviderErrorKind::Overloaded => {
            ApiError::unavailable(e.kind.as_str(), format!("Provider `{provider}` is overloaded{status}."))
        }
        ProviderErrorKind::MalformedResponse => {
            ApiError::bad_gateway(e.kind.as_str(), format!("Provider `{provider}` sent a malformed response."))
        }
        ProviderErrorKind::Network => {
            ApiError::bad_gateway(e.kind.as_str(), format!("Provider `{provider}` could not be reached."))
        }
        _ => ApiError::bad_gateway(e.kind.as_str(), format!("Provider `{provider}` failed{status}.")),
    };
    error.with_should_retry(false)
}

/// The longest `Retry-After` the OpenAI and Anthropic SDKs wait out themselves.
const LONGEST_CLIENT_WAIT_SECS: u64 = 60;

/// Why a provider's usable keys are all cooling down, for the caller's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cooling {
    /// The earliest moment (unix ms) a key is usable again.
    pub until_ms: i64,
    /// Every cooling key cools down after failing (5xx, time-outs), none after a 429.
    pub after_errors: bool,
}

impl Cooling {
    /// The sooner of two cool-downs; "after errors" only when both are.
    pub fn earliest(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (Some(a), Some(b)) => {
                Some(Self { until_ms: a.until_ms.min(b.until_ms), after_errors: a.after_errors && b.after_errors })
            }
            (a, b) => a.or(b),
        }
    }
}

/// The caller's error when no key of a provider is left to try. `Retry-After` is the real
/// remaining cool-down: what the provider asked for after a 429, the quota or error cool-down.
pub(super) fn no_key_error(
    provider: &str,
    last: Option<&ProviderError>,
    cooling: Option<Cooling>,
    now: i64,
) -> ApiError {
    let retry_in = secs_until(cooling.map_or(now + 60_000, |c| c.until_ms), now);
    if let Some(e) = last {
        match e.kind {
            ProviderErrorKind::Auth => {
                return ApiError::bad_gateway(
                    "upstream_auth_failed",
                    format!(
                        "Provider `{provider}` rejected every key (401/403); an admin must validate or replace them."
                    ),
                );
            }
            ProviderErrorKind::QuotaExceeded => {
                return ApiError::quota_exceeded(
                    e.code.as_deref().unwrap_or("insufficient_quota"),
                    format!("Every key of provider `{provider}` is out of quota or balance."),
                    retry_in,
                );
            }
            ProviderErrorKind::RateLimited => {
                return ApiError::rate_limited(format!("Provider `{provider}` rate-limited every key."), retry_in);
            }
            kind if kind.is_retryable() => return upstream_error(provider, e),
            _ => {}
        }
    }
    match cooling {
        // The breaker is open after repeated failures: a client sleeping through the cool-down
        // would most likely meet the same failure, so it is told not to retry on its own.
        Some(c) if c.after_errors => ApiError::unavailable(
            "upstream_unavailable",
            format!("Every key of provider `{provider}` is resting after repeated upstream failures."),
        )
        .with_retry_after(retry_in)
        .with_should_retry(false),
        Some(_) => {
            let e = ApiError::rate_limited(format!("Every key of provider `{provider}` is cooling down."), retry_in);
            // Past a minute (a quota cool-down, a long 429) the SDKs would not wait it out and
            // would only meet the same refusal: they are told not to retry on their own.
            if retry_in > LONGEST_CLIENT_WAIT_SECS { e.with_should_retry(false) } else { e }
        }
        None => ApiError::unavailable(
            "no_usable_key",
            format!(
                "Provider `{provider}` has no usable key. Add one with an environment variable, the config file or the admin API."
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn cooling(secs: i64, after_errors: bool) -> Option<Cooling> {
        Some(Cooling { until_ms: NOW + secs * 1000, after_errors })
    }

    #[test]
    fn the_sooner_cool_down_wins_and_after_errors_needs_both() {
        assert_eq!(Cooling::earliest(cooling(7, false), cooling(30, true)), cooling(7, false));
        assert_eq!(Cooling::earliest(cooling(30, true), cooling(40, true)), cooling(30, true));
        assert_eq!(Cooling::earliest(None, cooling(40, true)), cooling(40, true));
        assert_eq!(Cooling::earliest(None, None), None);
    }

    #[test]
    fn cooling_keys_answer_with_the_real_wait_and_say_when_not_to_retry() {
        let rate = no_key_error("p", None, cooling(7, false), NOW);
        assert_eq!((rate.status(), rate.retry_after_secs(), rate.should_retry()), (429, Some(7), None));
        let long = no_key_error("p", None, cooling(900, false), NOW);
        assert_eq!((long.status(), long.retry_after_secs(), long.should_retry()), (429, Some(900), Some(false)));
        let resting = no_key_error("p", None, cooling(30, true), NOW);
        assert_eq!(
            (resting.status(), resting.retry_after_secs(), resting.should_retry()),
            (503, Some(30), Some(false))
        );
        let quota = ProviderError {
            code: Some("insufficient_quota".into()),
            ..ProviderError::new(ProviderErrorKind::QuotaExceeded, Some(429), "no credit")
        };
        let e = no_key_error("p", Some(&quota), cooling(900, false), NOW);
        assert_eq!((e.status(), e.error_type(), e.code()), (429, "insufficient_quota", Some("insufficient_quota")));
        let none = no_key_error("p", None, None, NOW);
        assert_eq!((none.status(), none.code()), (503, Some("no_usable_key")));
    }
}
