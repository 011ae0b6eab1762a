//! The one retry loop of every DynamoDB call the store makes.
//!
//! DynamoDB answers a busy table with throttling (`ThrottlingException`,
//! `ProvisionedThroughputExceededException`, `RequestLimitExceeded`, or a transaction cancelled
//! with reason `ThrottlingError`), a busy item with `TransactionConflict`, and a bad moment with a
//! 5xx, a timeout or a dropped connection. All of these pass: each call is tried again with
//! exponential backoff and full jitter, a bounded number of times ([`ATTEMPTS`], at most about
//! 350 ms of waiting in all, so the chat hot path stays fast). What outlives the retries becomes
//! [`StoreError::Unavailable`], which callers tell apart from every other failure (HTTP: 503
//! with `retry-after`).
//!
//! The SDK's own retries are turned off for the store's client ([`without_sdk_retries`]): its
//! standard policy waits up to 1 s, then 2 s, and shares a token bucket that empties under
//! sustained throttling, after which nothing is retried at all.

use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::aws::{Fault, describe, fault_of};
use crate::store::StoreError;

/// Attempts per call, the first included.
pub(super) const ATTEMPTS: u32 = 8;
/// The first wait's upper bound; each later one doubles, up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(5);
const MAX_WAIT: Duration = Duration::from_millis(100);

/// Cancellation reasons of a transaction that may commit when tried again.
pub(super) const BUSY_REASONS: [&str; 3] = ["ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded"];

/// Why an attempt failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// Busy or unavailable: trying again may work. `maybe_applied`: the request may have been
    /// carried out (a 5xx, a timeout, a connection lost after sending).
    Transient { detail: String, maybe_applied: bool },
    /// Trying again will not help.
    Fatal(StoreError),
}

/// What became of the previous attempt, for the next one (a transaction keeps its idempotency
/// token only when the previous attempt may have been carried out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Previous {
    None,
    Refused,
    MaybeApplied,
}

/// The store's client: `client` with the SDK's retries turned off (see the module docs).
pub(super) fn without_sdk_retries(client: Client) -> Client {
    Client::from_conf(client.config().to_builder().retry_config(RetryConfig::disabled()).build())
}

/// Runs `attempt` until it succeeds, fails for good, or [`ATTEMPTS`] transient failures in a row;
/// the last becomes [`StoreError::Unavailable`]. Waits between attempts: full jitter over an
/// exponentially growing bound.
pub(super) async fn retrying<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut(Previous) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut previous = Previous::None;
    let mut bound = FIRST_WAIT;
    let mut tries = 0;
    loop {
        tries += 1;
        let (detail, maybe_applied) = match attempt(previous).await {
            Ok(value) => return Ok(value),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient { detail, maybe_applied }) => (detail, maybe_applied),
        };
        if tries >= ATTEMPTS {
            return Err(StoreError::Unavailable(format!("dynamodb: cannot {what}: {detail} (tried {tries} times)")));
        }
        tracing::debug!(what, %detail, attempt = tries, "dynamodb busy or unavailable; trying again");
        previous = if maybe_applied { Previous::MaybeApplied } else { Previous::Refused };
        tokio::time::sleep(jittered(bound)).await;
        bound = (bound * 2).min(MAX_WAIT);
    }
}

/// Full jitter: a random wait between 0 and `max`.
pub(super) fn jittered(max: Duration) -> Duration {
    let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(fastrand::u64(0..=ms))
}

/// Sorts a failed call into transient (busy, unavailable) and fatal.
pub(super) fn classify<E>(what: &str, err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match fault_of(err) {
        Fault::Busy => Failure::Transient { detail: describe(err), maybe_applied: false },
        Fault::MaybeApplied => Failure::Transient { detail: describe(err), maybe_applied: true },
        Fault::Fatal => Failure::Fatal(StoreError::backend(format!("dynamodb: cannot {what}: {}", describe(err)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicU32, Ordering};

    fn busy() -> Failure {
        Failure::Transient { detail: "ThrottlingException: slow down".into(), maybe_applied: false }
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_is_tried_again_until_it_passes() {
        let calls = AtomicU32::new(0);
        let seen = std::sync::Mutex::new(Vec::new());
        let started = tokio::time::Instant::now();
        let result = retrying("write", |previous| {
            seen.lock().expect("lock").push(previous);
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                match n {
                    1 => Err(busy()),
                    2 => Err(Failure::Transient { detail: "timed out".into(), maybe_applied: true }),
                    _ => Ok(n),
                }
            }
        })
        .await;
        assert_eq!(result.expect("third attempt passes"), 3);
        assert_eq!(*seen.lock().expect("lock"), [Previous::None, Previous::Refused, Previous::MaybeApplied]);
        assert!(started.elapsed() <= FIRST_WAIT * 3, "waits stay within their bounds: {:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn busy_past_the_last_attempt_is_unavailable_within_the_time_budget() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result: Result<(), _> = retrying("reserve", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(busy()) }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);
        assert!(
            matches!(&result, Err(StoreError::Unavailable(m)) if m.contains("cannot reserve") && m.contains("ThrottlingException")),
            "{result:?}"
        );
        // 5 + 10 + 20 + 40 + 80 + 100 + 100 ms at most.
        assert!(started.elapsed() <= Duration::from_millis(355), "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_fatal_failure_is_not_tried_again() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retrying("write", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(Failure::Fatal(StoreError::backend("ValidationException"))) }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(result, Err(StoreError::Backend { .. })));
    }
}
