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
                (grant.key_id.as_str(), grant.minute_window.as_str(), grant.day_window.as_str(), grant.reserved_tokens),
                (key, time::minute_window(now_ms).as_str(), time::day_window(now_ms).as_str(), tokens)
            );
            // A window is counted only when the key has a limit on it.
            assert_eq!(grant.counted.minute.is_some(), limits.rpm.is_some() || limits.tpm.is_some());
            assert_eq!(grant.counted.day.is_some(), limits.rpd.is_some());
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
    // Only what a limit applies to is counted: requests in the minute, no tokens, no day.
    assert_eq!(usage(&*store, "key-rpm", now).await, (used(50, 0), used(0, 0)));
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
    assert_eq!(usage(&*store, "key-rpd", fourth).await, (used(0, 0), used(3, 0)));
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
    assert_eq!(usage(&*store, "key-tpm", t).await, (used(1, 200), used(0, 0)));

    granted(&*store, "key-tpm", &tpm, t + 2_000, 600).await;
    assert_eq!(usage(&*store, "key-tpm", t).await, (used(2, 800), used(0, 0)));
    // Exactly full: one more token does not fit, zero tokens still do.
    assert_eq!(reserve(&*store, "key-tpm", &tpm, t + 3_000, 201).await, refused_by(WindowKind::Minute, t));
    granted(&*store, "key-tpm", &tpm, t + 4_000, 200).await;
    assert_eq!(usage(&*store, "key-tpm", t).await, (used(3, 1_000), used(0, 0)));
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
    assert_eq!(usage(&*store, "key-atomic", later).await, (used(0, 0), used(2, 0)));
    assert_eq!(usage(&*store, "key-atomic", t + MINUTE_MS).await, (used(1, 100), used(2, 0)));
}

pub async fn given_too_many_tokens_for_the_minute_then_the_refusal_changes_neither_window(
    store: Arc<dyn CounterStore>,
) {
    let t = at("2026-11-26T23:59:30Z");
    let key_limits = limits(Some(10), Some(100), Some(10));
    granted(&*store, "key-tokens", &key_limits, t, 60).await;
    assert_eq!(reserve(&*store, "key-tokens", &key_limits, t, 41).await, refused_by(WindowKind::Minute, t));
    assert_eq!(usage(&*store, "key-tokens", t).await, (used(1, 60), used(1, 0)));
    // Past midnight both windows are new.
    let tomorrow = t + MINUTE_MS;
    assert_eq!(usage(&*store, "key-tokens", tomorrow).await, (used(0, 0), used(0, 0)));
    granted(&*store, "key-tokens", &key_limits, tomorrow, 100).await;
}

pub async fn given_a_reconcile_larger_than_the_reservation_then_tokens_stop_at_zero(store: Arc<dyn CounterStore>) {
    let t = at("2026-11-26T06:14:10Z");
    let tpm = limits(None, Some(1_000_000), None);
    let grant = granted(&*store, "key-reconcile", &tpm, t, 50).await;
    store.reconcile(&grant, -1_000).await.expect("reconcile down");
    assert_eq!(usage(&*store, "key-reconcile", t).await, (used(1, 0), used(0, 0)));
    store.reconcile(&grant, 70).await.expect("reconcile up");
    assert_eq!(usage(&*store, "key-reconcile", t).await, (used(1, 70), used(0, 0)));
}

pub async fn given_a_key_without_limits_then_every_reservation_is_granted_and_nothing_is_written(
    store: Arc<dyn CounterStore>,
) {
    let t = at("2026-11-26T06:14:10Z");
    for i in 0..25 {
        let grant = granted(&*store, "key-free", &KeyLimits::default(), t + i, 1_000_000).await;
        store.reconcile(&grant, -5).await.expect("reconcile");
    }
    granted(&*store, "key-free", &KeyLimits::default(), t + MINUTE_MS, 1).await;
    assert_eq!(usage(&*store, "key-free", t).await, (used(0, 0), used(0, 0)));
    assert_eq!(usage(&*store, "key-free", t + MINUTE_MS).await, (used(0, 0), used(0, 0)));
}

/// High limits split a window into shards on DynamoDB (one item each, each with its share):
/// still never one request more than the limit, and none fewer when only requests are limited.
pub async fn given_rpm_640_and_rpd_700_when_800_reserve_200_at_a_time_then_exactly_640_are_granted(
    store: Arc<dyn CounterStore>,
) {
    let now = at("2026-11-26T07:20:05Z");
    let key_limits = limits(Some(640), None, Some(700));
    let start = Arc::new(Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                let mut granted = 0;
                for _ in 0..4 {
                    if let Reservation::Granted(_) =
                        store.reserve("key-sharded", &key_limits, now, 10).await.expect("reserve")
                    {
                        granted += 1;
                    }
                }
                granted
            })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += task.await.expect("task");
    }
    assert_eq!(granted, 640);
    assert_eq!(usage(&*store, "key-sharded", now).await, (used(640, 0), used(640, 0)));
    // The day has 60 left: the next minute takes exactly those.
    let mut next_minute = 0;
    for _ in 0..70 {
        if let Reservation::Granted(_) = reserve(&*store, "key-sharded", &key_limits, now + MINUTE_MS, 1).await {
            next_minute += 1;
        }
    }
    assert_eq!(next_minute, 60);
    assert_eq!(
        reserve(&*store, "key-sharded", &key_limits, now + MINUTE_MS, 1).await,
        refused_by(WindowKind::Day, now)
    );
}

/// Tokens over shards: a shard refuses a call its share cannot hold, so the window may admit a
/// little less than its limit (at most one call's tokens per shard), never more.
pub async fn given_a_sharded_tpm_when_calls_fill_it_then_the_tokens_never_exceed_it(store: Arc<dyn CounterStore>) {
    let now = at("2026-11-26T07:40:05Z");
    let tpm = 4_000_000;
    let key_limits = limits(None, Some(tpm), None);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut tokens = 0;
                for _ in 0..4 {
                    if let Reservation::Granted(g) =
                        store.reserve("key-tpm-sharded", &key_limits, now, 90_000).await.expect("reserve")
                    {
                        tokens += g.reserved_tokens;
                    }
                }
                tokens
            })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += task.await.expect("task");
    }
    // 44 calls of 90,000 fit in 4,000,000; 16 shards of 250,000 hold 2 each (32 calls).
    assert!((32 * 90_000..=tpm).contains(&granted), "granted {granted} tokens");
    assert_eq!(usage(&*store, "key-tpm-sharded", now).await.0.tokens, granted);
}
