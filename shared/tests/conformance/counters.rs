//! `CounterStore`: exact per-key rate limits in minute and day windows.

use std::sync::Arc;

use maestro_shared::domain::KeyLimits;
use maestro_shared::store::{CounterStore, Grant, Reservation, WindowKind, WindowUsage};
use maestro_shared::time;
use tokio::sync::Barrier;

use super::at;

const MINUTE_MS: i64 = 60_000;

fn limits(rpm: Option<u64>, tpm: Option<u64>, rpd: Option<u64>) -> KeyLimits {
    KeyLimits { rpm, tpm, rpd }
}

async fn reserve(store: &dyn CounterStore, key: &str, limits: &KeyLimits, now_ms: i64, tokens: u64) -> Reservation {
    store.reserve(key, limits, now_ms, tokens).await.expect("reserve")
}

/// Reserves and expects a grant for the windows of `now_ms`.
async fn granted(store: &dyn CounterStore, key: &str, limits: &KeyLimits, now_ms: i64, tokens: u64) -> Grant {
    match reserve(store, key, limits, now_ms, tokens).await {
        Reservation::Granted(grant) => {
            assert_eq!(
                grant,
                Grant {
                    key_id: key.to_string(),
                    minute_window: time::minute_window(now_ms),
                    day_window: time::day_window(now_ms),
                    reserved_tokens: tokens,
                }
            );
            grant
        }
        refused => panic!("expected a grant at {now_ms}, got {refused:?}"),
    }
}

fn refused_by(window: WindowKind, now_ms: i64) -> Reservation {
    let until_ms = match window {
        WindowKind::Minute => time::minute_window_end(now_ms),
        WindowKind::Day => time::day_window_end(now_ms),
    };
    Reservation::Refused { window, until_ms }
}

async fn usage(store: &dyn CounterStore, key: &str, now_ms: i64) -> (WindowUsage, WindowUsage) {
    store.usage(key, now_ms).await.expect("usage")
}

fn used(requests: u64, tokens: u64) -> WindowUsage {
    WindowUsage { requests, tokens }
}

pub async fn given_rpm_50_when_200_reserve_at_once_then_exactly_50_are_granted_and_150_refused_until_the_minute_ends(
    store: Arc<dyn CounterStore>,
) {
    let now = at("2026-11-26T06:14:10Z");
    let rpm = limits(Some(50), None, None);
    let start = Arc::new(Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            // Spread over the same minute: the window, not the exact instant, is what counts.
            tokio::spawn(async move {
                start.wait().await;
                store.reserve("key-rpm", &rpm, now + i * 100, 10).await
            })
        })
        .collect();

    let (mut granted, mut refused) = (0, 0);
    for task in tasks {
        match task.await.expect("task").expect("reserve") {
            Reservation::Granted(grant) => {
                assert_eq!((grant.key_id.as_str(), grant.reserved_tokens), ("key-rpm", 10));
                assert_eq!(grant.minute_window, time::minute_window(now));
                granted += 1;
            }
            other => {
                assert_eq!(other, refused_by(WindowKind::Minute, now));
                refused += 1;
            }
        }
    }
    assert_eq!((granted, refused), (50, 150));
    assert_eq!(usage(&*store, "key-rpm", now).await, (used(50, 500), used(50, 500)));
}

pub async fn given_rpd_3_when_reserving_in_four_different_minutes_then_the_fourth_is_refused_by_the_day_window(
    store: Arc<dyn CounterStore>,
) {
    let t = at("2026-11-26T06:14:10Z");
    let rpd = limits(Some(1), None, Some(3));
    let grants = [
        granted(&*store, "key-rpd", &rpd, t, 5).await,
        granted(&*store, "key-rpd", &rpd, t + MINUTE_MS, 5).await,
        granted(&*store, "key-rpd", &rpd, t + 2 * MINUTE_MS, 5).await,
    ];
    assert_ne!(grants[0].minute_window, grants[1].minute_window);
    assert!(grants.iter().all(|g| g.day_window == grants[0].day_window));

    let fourth = t + 3 * MINUTE_MS;
    assert_eq!(reserve(&*store, "key-rpd", &rpd, fourth, 5).await, refused_by(WindowKind::Day, fourth));
    assert_eq!(usage(&*store, "key-rpd", fourth).await, (used(0, 0), used(3, 15)));
    // Another key has its own windows.
    granted(&*store, "key-other", &rpd, fourth, 5).await;
}

pub async fn given_tpm_1000_when_a_reservation_is_reconciled_down_then_its_unused_tokens_are_free_again(
    store: Arc<dyn CounterStore>,
) {
    let t = at("2026-11-26T06:14:10Z");
    let tpm = limits(None, Some(1_000), None);
    let first = granted(&*store, "key-tpm", &tpm, t, 600).await;
    assert_eq!(reserve(&*store, "key-tpm", &tpm, t + 1_000, 600).await, refused_by(WindowKind::Minute, t));

    // The call used 200 tokens, not the 600 estimated.
    store.reconcile(&first, -400).await.expect("reconcile");
    assert_eq!(usage(&*store, "key-tpm", t).await, (used(1, 200), used(1, 200)));

    granted(&*store, "key-tpm", &tpm, t + 2_000, 600).await;
    assert_eq!(usage(&*store, "key-tpm", t).await, (used(2, 800), used(2, 800)));
    // Exactly full: one more token does not fit, zero tokens still do.
    assert_eq!(reserve(&*store, "key-tpm", &tpm, t + 3_000, 201).await, refused_by(WindowKind::Minute, t));
    granted(&*store, "key-tpm", &tpm, t + 4_000, 200).await;
    assert_eq!(usage(&*store, "key-tpm", t).await, (used(3, 1_000), used(3, 1_000)));
}

pub async fn given_a_full_day_when_the_minute_has_room_then_the_refusal_changes_neither_window(
    store: Arc<dyn CounterStore>,
) {
    let t = at("2026-11-26T06:14:10Z");
    let key_limits = limits(Some(10), Some(10_000), Some(2));
    granted(&*store, "key-atomic", &key_limits, t, 100).await;
    granted(&*store, "key-atomic", &key_limits, t + MINUTE_MS, 100).await;

    let later = t + 2 * MINUTE_MS;
    assert_eq!(reserve(&*store, "key-atomic", &key_limits, later, 100).await, refused_by(WindowKind::Day, later));
    assert_eq!(usage(&*store, "key-atomic", later).await, (used(0, 0), used(2, 200)));
    assert_eq!(usage(&*store, "key-atomic", t + MINUTE_MS).await, (used(1, 100), used(2, 200)));
}

pub async fn given_too_many_tokens_for_the_minute_then_the_refusal_changes_neither_window(
    store: Arc<dyn CounterStore>,
) {
    let t = at("2026-11-26T23:59:30Z");
    let key_limits = limits(Some(10), Some(100), Some(10));
    granted(&*store, "key-tokens", &key_limits, t, 60).await;
    assert_eq!(reserve(&*store, "key-tokens", &key_limits, t, 41).await, refused_by(WindowKind::Minute, t));
    assert_eq!(usage(&*store, "key-tokens", t).await, (used(1, 60), used(1, 60)));
    // Past midnight both windows are new.
    let tomorrow = t + MINUTE_MS;
    assert_eq!(usage(&*store, "key-tokens", tomorrow).await, (used(0, 0), used(0, 0)));
    granted(&*store, "key-tokens", &key_limits, tomorrow, 100).await;
}

pub async fn given_a_reconcile_larger_than_the_reservation_then_tokens_stop_at_zero(store: Arc<dyn CounterStore>) {
    let t = at("2026-11-26T06:14:10Z");
    let grant = granted(&*store, "key-reconcile", &KeyLimits::default(), t, 50).await;
    store.reconcile(&grant, -1_000).await.expect("reconcile down");
    assert_eq!(usage(&*store, "key-reconcile", t).await, (used(1, 0), used(1, 0)));
    store.reconcile(&grant, 70).await.expect("reconcile up");
    assert_eq!(usage(&*store, "key-reconcile", t).await, (used(1, 70), used(1, 70)));
}

pub async fn given_a_key_without_limits_then_every_reservation_is_granted_and_counted_in_its_windows(
    store: Arc<dyn CounterStore>,
) {
    let t = at("2026-11-26T06:14:10Z");
    assert_eq!(usage(&*store, "key-free", t).await, (used(0, 0), used(0, 0)));
    for i in 0..25 {
        granted(&*store, "key-free", &KeyLimits::default(), t + i, 1_000_000).await;
    }
    granted(&*store, "key-free", &KeyLimits::default(), t + MINUTE_MS, 1).await;
    assert_eq!(usage(&*store, "key-free", t).await, (used(25, 25_000_000), used(26, 25_000_001)));
    assert_eq!(usage(&*store, "key-free", t + MINUTE_MS).await, (used(1, 1), used(26, 25_000_001)));
}
