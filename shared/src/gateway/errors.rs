//! How provider failures and empty key pools become the caller's error.

use crate::domain::Provider;
use crate::error::ApiError;
use crate::logs::{MAX_ATTEMPT_MESSAGE_CHARS, clip};
use crate::providers::{ProviderError, ProviderErrorKind};
use crate::secret::SecretString;

pub(super) fn secs_until(until_ms: i64, now_ms: i64) -> u64 {
    u64::try_from((until_ms - now_ms).max(0)).unwrap_or(0).div_ceil(1000).max(1)
}

/// A provider's 4xx about the request itself, passed on with its own status and message.
pub(super) fn client_error(e: &ProviderError) -> ApiError {
    ApiError::upstream_refusal(e.status.unwrap_or(400), e.code.as_deref(), e.message.clone())
}

/// A provider's error message as the call log and the caller may see it: the key that was sent
/// taken out in every form it may be echoed in, the provider's credential headers masked, then
/// anything else that reads as a key or a token (an upstream may echo another credential). The
/// log and an upstream error keep at most [`MAX_ATTEMPT_MESSAGE_CHARS`] of it ([`short`]); a
/// refusal passed on as it came keeps it whole.
pub(super) fn provider_message(message: &str, secret: &SecretString, provider: &Provider) -> String {
    let text = crate::secret::redact(message, secret.expose());
    let text = crate::admin::scrubbed(&text, secret, provider);
    crate::secret::scrub_credentials(&text)
}

/// A provider's message as the attempt log and an upstream error keep it.
pub(super) fn short(message: &str) -> String {
    clip(message, MAX_ATTEMPT_MESSAGE_CHARS)
}

/// The caller's error once a target's keys and retries are spent on a provider failure: what the
/// provider answered (its HTTP status and its own message, already scrubbed by
/// [`provider_message`]). Maestro has already retried, so clients are told not to
/// (`x-should-retry: false`).
pub(super) fn upstream_error(provider: &str, e: &ProviderError) -> ApiError {
    // `(HTTP 500): the provider's words`, when it answered; Maestro's own words otherwise.
    let answered = match (e.status, e.message.trim()) {
        (Some(status), "") => format!(" (HTTP {status})"),
        (Some(status), message) => format!(" (HTTP {status}): {}", short(message)),
        (None, _) => String::new(),
    };
    let error = match e.kind {
        ProviderErrorKind::Timeout => {
            ApiError::gateway_timeout(sentence(format!("Provider `{provider}` did not answer in time{answered}")))
        }
        ProviderErrorKind::Overloaded => {
            ApiError::unavailable(e.kind.as_str(), sentence(format!("Provider `{provider}` is overloaded{answered}")))
        }
        ProviderErrorKind::MalformedResponse => ApiError::bad_gateway(
            e.kind.as_str(),
            sentence(format!("Provider `{provider}` sent a malformed response{answered}")),
        ),
        ProviderErrorKind::Network => {
            ApiError::bad_gateway(e.kind.as_str(), format!("Provider `{provider}` could not be reached."))
        }
        _ => ApiError::bad_gateway(e.kind.as_str(), sentence(format!("Provider `{provider}` failed{answered}"))),
    };
    error.with_should_retry(false)
}

/// `text` ending as a sentence does (a provider's message may end with its own stop).
fn sentence(mut text: String) -> String {
    if !text.ends_with(['.', '!', '?', '…', '。', '！', '？']) {
        text.push('.');
    }
    text
}

/// The caller's error when every key left of a provider is at Maestro's own rpm/tpm/rpd window.
/// After the provider failed an attempt of this call, that failure is what happened (the retries
/// themselves may have filled the windows): its error, unless the provider itself was rate
/// limiting or out of quota, which a 429 tells truly.
pub(super) fn all_full_error(provider: &str, last: Option<&ProviderError>, retry_in_secs: u64) -> ApiError {
    match last {
        Some(e) if !matches!(e.kind, ProviderErrorKind::RateLimited | ProviderErrorKind::QuotaExceeded) => {
            upstream_error(provider, e)
        }
        _ => ApiError::rate_limited(
            format!("Every key of provider `{provider}` is at its rate limit; retry after the window ends."),
            retry_in_secs,
        ),
    }
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

    #[test]
    fn the_callers_error_names_the_providers_status_and_words() {
        let server = ProviderError::new(ProviderErrorKind::Server, Some(500), "The server had an error.");
        let e = upstream_error("p", &server);
        assert_eq!((e.status(), e.code(), e.should_retry()), (502, Some("upstream_server_error"), Some(false)));
        assert_eq!(e.message(), "Provider `p` failed (HTTP 500): The server had an error.");
        let silent = upstream_error("p", &ProviderError::new(ProviderErrorKind::Server, Some(500), " "));
        assert_eq!(silent.message(), "Provider `p` failed (HTTP 500).");
        let busy = upstream_error("p", &ProviderError::new(ProviderErrorKind::Overloaded, Some(529), "Overloaded"));
        assert_eq!((busy.status(), busy.message()), (503, "Provider `p` is overloaded (HTTP 529): Overloaded."));
        let slow = ProviderError::new(ProviderErrorKind::Timeout, None, "the provider did not answer in time");
        assert_eq!(upstream_error("p", &slow).message(), "Provider `p` did not answer in time.");
        let gone = ProviderError::new(ProviderErrorKind::Network, None, "could not reach the provider");
        assert_eq!(upstream_error("p", &gone).message(), "Provider `p` could not be reached.");
    }

    #[test]
    fn keys_full_after_provider_failures_report_the_failures_and_a_429_only_for_rate_limits() {
        let server = ProviderError::new(ProviderErrorKind::Server, Some(500), "boom");
        let e = all_full_error("p", Some(&server), 12);
        assert_eq!((e.status(), e.code(), e.retry_after_secs()), (502, Some("upstream_server_error"), None));
        assert_eq!(e.message(), "Provider `p` failed (HTTP 500): boom.");
        let limited = ProviderError::new(ProviderErrorKind::RateLimited, Some(429), "slow down");
        for last in [None, Some(&limited)] {
            let e = all_full_error("p", last, 12);
            assert_eq!((e.status(), e.code(), e.retry_after_secs()), (429, Some("rate_limit_exceeded"), Some(12)));
        }
    }

    #[test]
    fn provider_messages_lose_every_credential_and_stay_short() {
        let provider = Provider {
            code: "p".into(),
            kind: crate::domain::ProviderKind::OpenaiCompatible,
            name: "p".into(),
            base_url: "http://x".into(),
            headers: [("Authorization".to_string(), "Bearer gw-token-0123456789".to_string())].into_iter().collect(),
            is_active: true,
            sort_order: 0,
        };
        let secret = SecretString::new("sk-test-abcdefghij0123456789");
        let said = "key sk-test-abcdefghij0123456789 (also sk-test-abcdefghij01…), gateway gw-token-0123456789, \
                    other sk-ant-api03-QWERTYuiop1234";
        assert_eq!(
            provider_message(said, &secret, &provider),
            "key [redacted] (also [redacted]…), gateway gw-…6789, other [redacted]"
        );
        let long = ProviderError::new(ProviderErrorKind::Server, Some(500), "x".repeat(1_000));
        let said = upstream_error("p", &long).message().to_string();
        assert_eq!(
            said,
            format!("Provider `p` failed (HTTP 500): {}…", "x".repeat(300)),
            "300 characters and the ellipsis"
        );
        assert_eq!(short(&long.message).chars().count(), MAX_ATTEMPT_MESSAGE_CHARS + 1);
    }
}
