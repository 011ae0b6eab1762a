//! `CreditStore`: top-ups and the ledger, and holds and settles exact under concurrency.

use std::sync::Arc;

use maestro_shared::store::{CreditAccount, CreditStore, LedgerKind, Settlement, TopUp};
use tokio::sync::Barrier;

use super::at;

fn top_up<'a>(user_id: &'a str, amount_micros: i64, reason: &'a str, at_ms: i64) -> TopUp<'a> {
    TopUp { user_id, amount_micros, reason, actor: "admin-1", at_ms }
}

fn settlement<'a>(user_id: &'a str, call_id: &'a str, held: i64, charge: i64, ts_ms: i64) -> Settlement<'a> {
    Settlement { user_id, held_micros: held, charge_micros: charge, call_id, ts_ms, model: "openai/gpt-4o-mini" }
}

pub async fn given_top_ups_then_the_balance_adds_up_and_the_ledger_pages_newest_first(store: Arc<dyn CreditStore>) {
    let t = at("2026-12-05T08:00:00Z");
    assert_eq!(store.credit_account("user-1").await.expect("read"), CreditAccount::default(), "never topped up");
    let mut ids = Vec::new();
    for (i, amount) in [1_000_000, 250_000, 5].into_iter().enumerate() {
        let entry =
            store.top_up(&top_up("user-1", amount, "monthly plan", t + i as i64 * 1_000)).await.expect("top up");
        assert_eq!(
            (entry.kind, entry.amount_micros, entry.actor.as_deref()),
            (LedgerKind::TopUp, amount, Some("admin-1"))
        );
        ids.push(entry.id);
    }
    store.top_up(&top_up("user-2", 7, "other user", t)).await.expect("top up");
    let account = store.credit_account("user-1").await.expect("read");
    assert_eq!((account.available_micros, account.held_micros, account.balance_micros()), (1_250_005, 0, 1_250_005));

    let first = store.credit_ledger("user-1", None, 2).await.expect("ledger");
    let firsts: Vec<i64> = first.iter().map(|e| e.amount_micros).collect();
    assert_eq!(firsts, [5, 250_000], "newest first");
    let last = first.last().expect("two");
    let rest = store.credit_ledger("user-1", Some((last.ts_ms, last.id.clone())), 10).await.expect("page 2");
    assert_eq!(rest.iter().map(|e| e.amount_micros).collect::<Vec<_>>(), [1_000_000]);
    assert_eq!(rest[0].id, ids[0]);
    assert_eq!(rest[0].reason.as_deref(), Some("monthly plan"));
    assert!(store.credit_ledger("nobody", None, 10).await.expect("ledger").is_empty());
}

pub async fn given_a_balance_for_20_calls_when_200_hold_at_once_then_exactly_20_run_and_settle_exactly(
    store: Arc<dyn CreditStore>,
) {
    const HOLD: i64 = 1_000;
    const CHARGE: i64 = 700;
    let t = at("2026-12-05T09:00:00Z");
    store.top_up(&top_up("user-9", 20 * HOLD, "trial", t)).await.expect("top up");
    // 200 calls hold at once; only then do the granted ones settle (a settle gives back what
    // its estimate held over the charge, which later calls could use).
    let barrier = Arc::new(Barrier::new(200));
    let holds: Vec<_> = (0..200)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.hold_credits("user-9", HOLD).await.expect("hold")
            })
        })
        .collect();
    let mut granted = Vec::new();
    for (i, hold) in holds.into_iter().enumerate() {
        if hold.await.expect("task") {
            granted.push(i as i64);
        }
    }
    assert_eq!(granted.len(), 20, "exactly the calls the balance covers");
    let held = store.credit_account("user-9").await.expect("read");
    assert_eq!((held.available_micros, held.held_micros), (0, 20 * HOLD));
    let settles: Vec<_> = granted
        .iter()
        .map(|&i| {
            let store = store.clone();
            tokio::spawn(async move {
                let call_id = format!("req-{i:03}");
                store.settle_credits(&settlement("user-9", &call_id, HOLD, CHARGE, t + 1 + i)).await.expect("settle");
            })
        })
        .collect();
    for settle in settles {
        settle.await.expect("task");
    }
    let account = store.credit_account("user-9").await.expect("read");
    assert_eq!((account.available_micros, account.held_micros), (20 * (HOLD - CHARGE), 0));
    let ledger = store.credit_ledger("user-9", None, 1_000).await.expect("ledger");
    assert_eq!(ledger.iter().filter(|e| e.kind == LedgerKind::Charge).count(), 20);
    assert!(
        ledger
            .iter()
            .filter(|e| e.kind == LedgerKind::Charge)
            .all(|e| e.amount_micros == -CHARGE && e.call_id.is_some())
    );
}

pub async fn given_a_settled_call_when_settled_again_then_nothing_changes(store: Arc<dyn CreditStore>) {
    let t = at("2026-12-05T10:00:00Z");
    store.top_up(&top_up("user-3", 10_000, "trial", t)).await.expect("top up");
    assert!(store.hold_credits("user-3", 4_000).await.expect("hold"));
    let held = store.credit_account("user-3").await.expect("read");
    assert_eq!((held.available_micros, held.held_micros, held.balance_micros()), (6_000, 4_000, 10_000));
    let once = settlement("user-3", "req-once", 4_000, 1_500, t + 5);
    store.settle_credits(&once).await.expect("settle");
    store.settle_credits(&once).await.expect("settle again (a retry)");
    let after = store.credit_account("user-3").await.expect("read");
    assert_eq!((after.available_micros, after.held_micros), (8_500, 0), "charged once");
    let charges: Vec<_> = store
        .credit_ledger("user-3", None, 10)
        .await
        .expect("ledger")
        .into_iter()
        .filter(|e| e.kind == LedgerKind::Charge)
        .collect();
    assert_eq!(charges.len(), 1);
    assert_eq!(
        (charges[0].call_id.as_deref(), charges[0].ts_ms, charges[0].reason.as_deref()),
        (Some("req-once"), t + 5, Some("openai/gpt-4o-mini"))
    );
}

pub async fn given_too_little_credit_then_the_hold_is_refused_and_changes_nothing(store: Arc<dyn CreditStore>) {
    let t = at("2026-12-05T11:00:00Z");
    assert!(!store.hold_credits("stranger", 1).await.expect("hold"), "no account, no credit");
    assert_eq!(store.credit_account("stranger").await.expect("read"), CreditAccount::default());
    store.top_up(&top_up("user-4", 500, "trial", t)).await.expect("top up");
    assert!(!store.hold_credits("user-4", 501).await.expect("hold"));
    assert!(store.hold_credits("user-4", 0).await.expect("a free call holds nothing"));
    assert!(store.hold_credits("user-4", 500).await.expect("hold all of it"));
    assert!(!store.hold_credits("user-4", 1).await.expect("nothing left"));
    // An estimate short of the truth: the balance goes below zero by the difference, no further.
    store.settle_credits(&settlement("user-4", "req-over", 500, 650, t + 1)).await.expect("settle");
    let after = store.credit_account("user-4").await.expect("read");
    assert_eq!((after.available_micros, after.held_micros, after.balance_micros()), (-150, 0, -150));
    assert!(!store.hold_credits("user-4", 1).await.expect("hold"));
}
