//! How provider failures and empty key pools become the caller's error.

use crate::error::ApiError;
use crate::providers::{ProviderError, ProviderErrorKind};
use crate::store::StoreError;

/// A store failure as the caller's error: a busy or unavailable backend (throttling that outlived
/// the store's retries) is a 503 worth retrying shortly, never a 500; anything else is ours.
pub(super) fn internal(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(detail) => {
            tracing::warn!(error = %detail, "store busy or unavailable");
            ApiError::unavailable("backend_busy", "Maestro's storage is busy; retry shortly.").with_retry_after(1)
        }
        e => {
            tracing::error!(error = %e, "store failure");
            ApiError::internal()
        }
    }
}

pub(super) fn secs_until(until_ms: i64, now_ms: i64) -> u64 {
    u64::try_from((until_ms - now_ms).max(0)).unwrap_or(0).div_ceil(1000).max(1)
}

/// A provider's 4xx about the request itself, passed on with its own status and message.
pub(super) fn client_error(e: &ProviderError) -> ApiError {
    let status = e.status.filter(|s| (400..500).contains(s)).unwrap_or(400);
    ApiError {
        status,
        message: e.message.clone(),
        error_type: "invalid_request_error",
        code: e.code.clone().or_else(|| Some("invalid_request".to_string())),
        param: None,
        retry_after_secs: None,
    }
}

/// The caller's error once a target's keys and retries are spent on a provider failure.
pub(super) fn upstream_error(provider: &str, e: &ProviderError) -> ApiError {
    let status = e.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
    match e.kind {
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
    }
}

/// The caller's error when no key of a provider is left to try.
pub(super) fn no_key_error(
    provider: &str,
    last: Option<&ProviderError>,
    cooling_until: Option<i64>,
    now: i64,
) -> ApiError {
    let retry_in = secs_until(cooling_until.unwrap_or(now + 60_000), now);
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
                return ApiError::rate_limited(
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
    match cooling_until {
        Some(_) => ApiError::rate_limited(format!("Every key of provider `{provider}` is cooling down."), retry_in),
        None => ApiError::unavailable(
            "no_usable_key",
            format!(
                "Provider `{provider}` has no usable key. Add one with an environment variable, the config file or the admin API."
            ),
        ),
    }
}
