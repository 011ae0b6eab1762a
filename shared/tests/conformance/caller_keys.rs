//! `CallerKeyStore` (Maestro API keys for callers) and the caller-key windows of `CounterStore`
//! (`reserve_budget`: rpm, tokens and cost per day, exact under concurrency).

use std::sync::Arc;

use maestro_shared::store::caller_keys::{CallerKeySpec, generate, hash_key};
use maestro_shared::store::{
    BudgetLimits, BudgetUsage, CallerKey, CallerKeyStore, CounterStore, Grant, Reservation, StoreError, WindowKind,
};
use maestro_shared::time;
use tokio::sync::Barrier;

use super::at;

fn spec(owner: &str, name: &str) -> CallerKeySpec {
    CallerKeySpec {
        owner: owner.into(),
        name: name.into(),
        allowed_models: vec!["openai/gpt-4o-mini".into(), "smart".into()],
        limits: BudgetLimits { rpm: Some(20), tokens_per_day: Some(100_000), cost_micros_per_day: None },
    }
}

async fn created(store: &dyn CallerKeyStore, owner: &str, name: &str, now_ms: i64) -> (String, CallerKey) {
    let new = generate(spec(owner, name), now_ms);
    store.create_caller_key(&new.record).await.expect("create");
    (new.key.expose().to_string(), new.record)
}

pub async fn given_new_caller_keys_then_they_are_found_by_hash_and_listed_newest_first(store: Arc<dyn CallerKeyStore>) {
    let t = at("2026-11-26T06:14:10Z");
    let (key_a, a) = created(store.as_ref(), "user-1", "ci", t).await;
    let (_, b) = created(store.as_ref(), "user-2", "backend", t + 1_000).await;

    let found = store.caller_key_by_hash(&hash_key(&key_a)).await.expect("read").expect("found");
    assert_eq!(found, a, "every field round-trips");
    assert_eq!(found.limits.rpm, Some(20));
    assert!(store.caller_key_by_hash(&hash_key("mk-unknown")).await.expect("read").is_none());

    let listed = store.list_caller_keys().await.expect("list");
    assert_eq!(listed, [b, a], "newest first");
}

pub async fn given_an_existing_id_or_hash_when_created_again_then_it_is_a_conflict(store: Arc<dyn CallerKeyStore>) {
    let t = at("2026-11-26T06:14:10Z");
    let (_, a) = created(store.as_ref(), "user-1", "ci", t).await;
    let same_id = CallerKey { key_hash: hash_key("mk-other"), ..a.clone() };
    assert!(matches!(store.create_caller_key(&same_id).await, Err(StoreError::Conflict(_))));
    let same_hash = CallerKey { id: "ck_other".into(), ..a.clone() };
    assert!(matches!(store.create_caller_key(&same_hash).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.list_caller_keys().await.expect("list"), [a], "nothing else was written");
}

pub async fn given_a_key_when_revoked_then_lookups_see_it_and_a_second_revoke_keeps_the_first_time(
    store: Arc<dyn CallerKeyStore>,
) {
    let t = at("2026-11-26T06:14:10Z");
    let (key, a) = created(store.as_ref(), "user-1", "ci", t).await;
    let revoked = store.revoke_caller_key(&a.id, t + 5_000).await.expect("revoke");
    assert_eq!(revoked, CallerKey { revoked_at_ms: Some(t + 5_000), ..a.clone() });
    let again = store.revoke_caller_key(&a.id, t + 9_000).await.expect("revoke again");
    assert_eq!(again.revoked_at_ms, Some(t + 5_000));
    let by_hash = store.caller_key_by_hash(&hash_key(&key)).await.expect("read").expect("found");
    assert!(by_hash.is_revoked());
    assert_eq!(store.list_caller_keys().await.expect("list")[0].revoked_at_ms, Some(t + 5_000));
    assert!(matches!(store.revoke_caller_key("ck_missing", t).await, Err(StoreError::NotFound(_))));
}

fn budget(rpm: Option<u64>, tokens_per_day: Option<u64>, cost_micros_per_day: Option<u64>) -> BudgetLimits {
    BudgetLimits { rpm, tokens_per_day, cost_micros_per_day }
}

async fn reserve(store: &dyn CounterStore, limits: &BudgetLimits, now_ms: i64, tokens: u64, cost: u64) -> Reservation {
    store.reserve_budget("CK#ck_1", limits, now_ms, tokens, cost).await.expect("reserve")
}

fn granted(reservation: Reservation) -> Grant {
    match reservation {
        Reservation::Granted(grant) => grant,
        refused => panic!("expected a grant, got {refused:?}"),
    }
}

fn refused_by(window: WindowKind, now_ms: i64) -> Reservation {
    let until_ms = match window {
        WindowKind::Minute => time::minute_window_end(now_ms),
        WindowKind::Day => time::day_window_end(now_ms),
    };
    Reservation::Refused { window, until_ms }
}

async fn usage(store: &dyn CounterStore, now_ms: i64) -> BudgetUsage {
    store.budget_usage("CK#ck_1", now_ms).await.expect("usage")
}

pub async fn given_a_caller_key_rpm_of_20_when_50_reserve_at_once_then_exactly_20_are_granted(
    store: Arc<dyn CounterStore>,
) {
    let now = at("2026-11-26T06:14:10Z");
    // Budgets that hold, so the day item's conditions are in every transaction too.
    let limits = budget(Some(20), Some(1_000_000), Some(1_000_000));
    let start = Arc::new(Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                store.reserve_budget("CK#ck_1", &limits, now + i * 100, 10, 3).await
            })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        match task.await.expect("task").expect("reserve") {
            Reservation::Granted(_) => granted += 1,
            refused => assert_eq!(refused, refused_by(WindowKind::Minute, now)),
        }
    }
    assert_eq!(granted, 20);
    assert_eq!(
        usage(store.as_ref(), now).await,
        BudgetUsage { minute_requests: 20, day_requests: 20, day_tokens: 200, day_cost_micros: 60 }
    );
    // The next minute has room again; the day keeps counting.
    let next = now + 60_000;
    granted_ok(store.as_ref(), &limits, next).await;
    assert_eq!(usage(store.as_ref(), next).await.day_requests, 21);
}

async fn granted_ok(store: &dyn CounterStore, limits: &BudgetLimits, now: i64) {
    granted(reserve(store, limits, now, 10, 3).await);
}

pub async fn given_a_daily_token_budget_then_reservations_stop_at_it_and_a_reconcile_gives_tokens_back(
    store: Arc<dyn CounterStore>,
) {
    let t = at("2026-11-26T06:14:10Z");
    let limits = budget(None, Some(1_000), None);
    let first = granted(reserve(store.as_ref(), &limits, t, 600, 0).await);
    assert_eq!(reserve(store.as_ref(), &limits, t + 61_000, 600, 0).await, refused_by(WindowKind::Day, t + 61_000));
    // The first call used 200 of its 600: 800 are free again.
    store.reconcile_budget(&first, 200 - 600, 0).await.expect("reconcile");
    granted(reserve(store.as_ref(), &limits, t + 62_000, 600, 0).await);
    granted(reserve(store.as_ref(), &limits, t + 63_000, 200, 0).await);
    assert_eq!(reserve(store.as_ref(), &limits, t + 64_000, 1, 0).await, refused_by(WindowKind::Day, t + 64_000));
    let day = usage(store.as_ref(), t + 64_000).await;
    assert_eq!((day.day_requests, day.day_tokens), (3, 1_000), "refusals count nothing");
    // The next UTC day starts from zero.
    let tomorrow = t + 86_400_000;
    granted(reserve(store.as_ref(), &limits, tomorrow, 1_000, 0).await);
}

pub async fn given_a_daily_cost_budget_then_reservations_stop_at_it_and_costs_reconcile_exactly_but_never_below_zero(
    store: Arc<dyn CounterStore>,
) {
    let t = at("2026-11-26T06:14:10Z");
    let limits = budget(None, None, Some(300));
    let first = granted(reserve(store.as_ref(), &limits, t, 24, 210).await);
    assert_eq!(reserve(store.as_ref(), &limits, t + 1, 24, 210).await, refused_by(WindowKind::Day, t + 1));
    // Without a token budget the gateway corrects the cost alone (tokens are not counted).
    store.reconcile_budget(&first, 0, 148 - 210).await.expect("reconcile");
    let day = usage(store.as_ref(), t + 2).await;
    assert_eq!((day.day_tokens, day.day_cost_micros), (0, 148));
    granted(reserve(store.as_ref(), &limits, t + 3, 24, 152).await);
    assert_eq!(reserve(store.as_ref(), &limits, t + 4, 1, 1).await, refused_by(WindowKind::Day, t + 4));
    // A failed call gives back more than is left: the counters stop at zero.
    store.reconcile_budget(&first, -1_000, -1_000).await.expect("reconcile down");
    let day = usage(store.as_ref(), t + 5).await;
    assert_eq!((day.day_tokens, day.day_cost_micros), (0, 0));
}

pub async fn given_a_caller_key_refusal_then_neither_window_changes(store: Arc<dyn CounterStore>) {
    let t = at("2026-11-26T06:14:10Z");
    let limits = budget(Some(1), Some(100), Some(100));
    granted(reserve(store.as_ref(), &limits, t, 10, 10).await);
    let before = usage(store.as_ref(), t).await;
    // Refused by the minute (rpm): the day window does not count it either.
    assert_eq!(reserve(store.as_ref(), &limits, t + 1, 10, 10).await, refused_by(WindowKind::Minute, t + 1));
    // Refused by the day (tokens): the new minute does not count it either.
    let next_minute = t + 60_000;
    assert_eq!(reserve(store.as_ref(), &limits, next_minute, 91, 0).await, refused_by(WindowKind::Day, next_minute));
    assert_eq!(usage(store.as_ref(), t).await, before);
    assert_eq!(usage(store.as_ref(), next_minute).await.minute_requests, 0);
}
