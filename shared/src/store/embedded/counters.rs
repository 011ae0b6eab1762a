//! Per-key rate-limit windows in `usage_windows`: `M#<yyyymmddHHMM>` and `D#<yyyymmdd>` rows
//! holding requests and tokens, the SQLite twin of DynamoDB's `USE#<key>#M#…` items. A caller
//! key's windows (`CK#<id>`) also count the day's cost in `cost_micros`, for its cost budget.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Db, EmbeddedStore, backend};
use crate::domain::KeyLimits;
use crate::store::{BudgetLimits, BudgetUsage, CounterStore, Grant, Reservation, StoreError, WindowKind, WindowUsage};
use crate::time;

/// How long a window row outlives its window (DESIGN §3: minutes for minute rows, two days for
/// day rows), so a late reconcile still finds it.
const MINUTE_ROW_GRACE_MS: i64 = 5 * 60_000;
const DAY_ROW_GRACE_MS: i64 = 2 * 86_400_000;
/// Expired rows are swept at most this often, inside a reservation that writes anyway.
const PURGE_EVERY_MS: i64 = 60_000;

const SELECT_WINDOW: &str = "SELECT requests, tokens FROM usage_windows WHERE key_id = ?1 AND window = ?2";
const ADD_TO_WINDOW: &str = "INSERT INTO usage_windows (key_id, window, requests, tokens, expires_at_ms) \
     VALUES (?1, ?2, 1, ?3, ?4) \
     ON CONFLICT (key_id, window) DO UPDATE SET requests = requests + 1, tokens = tokens + excluded.tokens";
const RECONCILE: &str =
    "UPDATE usage_windows SET tokens = MAX(0, tokens + ?4) WHERE key_id = ?1 AND window IN (?2, ?3)";
const PURGE_EXPIRED: &str = "DELETE FROM usage_windows WHERE expires_at_ms <= ?1";
const SELECT_BUDGET_WINDOW: &str =
    "SELECT requests, tokens, cost_micros FROM usage_windows WHERE key_id = ?1 AND window = ?2";
const ADD_TO_BUDGET_WINDOW: &str = "INSERT INTO usage_windows (key_id, window, requests, tokens, cost_micros, expires_at_ms) \
     VALUES (?1, ?2, 1, ?3, ?4, ?5) \
     ON CONFLICT (key_id, window) DO UPDATE SET requests = requests + 1, tokens = tokens + excluded.tokens, \
     cost_micros = cost_micros + excluded.cost_micros";
const RECONCILE_BUDGET: &str = "UPDATE usage_windows SET tokens = MAX(0, tokens + ?3), \
     cost_micros = MAX(0, cost_micros + ?4) WHERE key_id = ?1 AND window = ?2";

/// A negative token reconcile not yet written: `(key_id, minute row, day row, delta)`.
pub(super) type PendingFree = (String, String, String, i64);

/// Writes the pending frees. Called inside the reservation's transaction (so one commit covers
/// both), before reads, and when the store closes.
pub(super) fn apply_pending(conn: &Connection, pending: &mut Vec<PendingFree>) -> rusqlite::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut update = conn.prepare_cached(RECONCILE)?;
    for (key_id, minute_id, day_id, delta) in pending.iter() {
        update.execute(params![key_id, minute_id, day_id, delta])?;
    }
    pending.clear();
    Ok(())
}

/// The table's window ids for the time ids a [`Grant`] carries.
fn minute_row(minute_window: &str) -> String {
    format!("M#{minute_window}")
}

fn day_row(day_window: &str) -> String {
    format!("D#{day_window}")
}

fn read_window(conn: &Connection, key_id: &str, window: &str) -> rusqlite::Result<WindowUsage> {
    let usage = conn
        .prepare_cached(SELECT_WINDOW)?
        .query_row(params![key_id, window], |row| Ok(WindowUsage { requests: row.get(0)?, tokens: row.get(1)? }))
        .optional()?;
    Ok(usage.unwrap_or_default())
}

/// Which window, if any, would overflow if one more request with `tokens` were added. The day is
/// checked first: when both are full, waiting for the next minute would not help.
fn refusal(limits: &KeyLimits, minute: WindowUsage, day: WindowUsage, tokens: u64, now_ms: i64) -> Option<Reservation> {
    let over = |used: u64, add: u64, limit: Option<u64>| limit.is_some_and(|limit| used.saturating_add(add) > limit);
    if over(day.requests, 1, limits.rpd) {
        return Some(Reservation::Refused { window: WindowKind::Day, until_ms: time::day_window_end(now_ms) });
    }
    if over(minute.requests, 1, limits.rpm) || over(minute.tokens, tokens, limits.tpm) {
        return Some(Reservation::Refused { window: WindowKind::Minute, until_ms: time::minute_window_end(now_ms) });
    }
    None
}

/// Checks and adds in one `BEGIN IMMEDIATE` transaction: the write lock is taken before the
/// read, so no other connection (or process) can slip a reservation between check and add, and
/// a refusal rolls back having changed nothing.
fn reserve(db: &mut Db, key_id: &str, limits: &KeyLimits, now_ms: i64, tokens: u64) -> rusqlite::Result<Reservation> {
    let grant = Grant {
        key_id: key_id.to_string(),
        minute_window: time::minute_window(now_ms),
        day_window: time::day_window(now_ms),
        reserved_tokens: tokens,
    };
    let (minute_id, day_id) = (minute_row(&grant.minute_window), day_row(&grant.day_window));
    // `abs_diff` also sweeps after the caller's clock jumped back.
    let purge_due = db.last_purge_ms.is_none_or(|last| now_ms.abs_diff(last) >= PURGE_EVERY_MS.unsigned_abs());

    let tx = db.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Frees first: they can only make room. On a rollback they stay pending.
    let mut pending = std::mem::take(&mut db.pending_frees);
    let applied = apply_pending(&tx, &mut pending);
    if let Err(e) = applied {
        db.pending_frees = pending;
        return Err(e);
    }
    let minute = read_window(&tx, key_id, &minute_id)?;
    let day = read_window(&tx, key_id, &day_id)?;
    if let Some(refused) = refusal(limits, minute, day, tokens, now_ms) {
        tx.commit()?; // the frees only; this reservation wrote nothing
        return Ok(refused);
    }
    {
        let mut add = tx.prepare_cached(ADD_TO_WINDOW)?;
        add.execute(params![key_id, minute_id, tokens, time::minute_window_end(now_ms) + MINUTE_ROW_GRACE_MS])?;
        add.execute(params![key_id, day_id, tokens, time::day_window_end(now_ms) + DAY_ROW_GRACE_MS])?;
    }
    if purge_due {
        tx.prepare_cached(PURGE_EXPIRED)?.execute([now_ms])?;
    }
    tx.commit()?;
    if purge_due {
        db.last_purge_ms = Some(now_ms);
    }
    Ok(Reservation::Granted(grant))
}

/// Requests, tokens and cost of one window row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct BudgetWindow {
    requests: u64,
    tokens: u64,
    cost_micros: u64,
}

fn read_budget_window(conn: &Connection, key_id: &str, window: &str) -> rusqlite::Result<BudgetWindow> {
    let usage = conn
        .prepare_cached(SELECT_BUDGET_WINDOW)?
        .query_row(params![key_id, window], |row| {
            Ok(BudgetWindow { requests: row.get(0)?, tokens: row.get(1)?, cost_micros: row.get(2)? })
        })
        .optional()?;
    Ok(usage.unwrap_or_default())
}

/// Which window, if any, a caller key's reservation would overflow; the day (a budget) first.
fn budget_refusal(
    limits: &BudgetLimits,
    minute: BudgetWindow,
    day: BudgetWindow,
    tokens: u64,
    cost_micros: u64,
    now_ms: i64,
) -> Option<Reservation> {
    let over = |used: u64, add: u64, limit: Option<u64>| limit.is_some_and(|limit| used.saturating_add(add) > limit);
    if over(day.tokens, tokens, limits.tokens_per_day) || over(day.cost_micros, cost_micros, limits.cost_micros_per_day)
    {
        return Some(Reservation::Refused { window: WindowKind::Day, until_ms: time::day_window_end(now_ms) });
    }
    if over(minute.requests, 1, limits.rpm) {
        return Some(Reservation::Refused { window: WindowKind::Minute, until_ms: time::minute_window_end(now_ms) });
    }
    None
}

/// [`reserve`] for a caller key: the same `BEGIN IMMEDIATE` check-then-add; the minute row
/// counts the request (rpm), the day row the request, tokens and cost (the budgets).
fn reserve_budget(
    db: &mut Db,
    key_id: &str,
    limits: &BudgetLimits,
    now_ms: i64,
    tokens: u64,
    cost_micros: u64,
) -> rusqlite::Result<Reservation> {
    let grant = Grant {
        key_id: key_id.to_string(),
        minute_window: time::minute_window(now_ms),
        day_window: time::day_window(now_ms),
        reserved_tokens: tokens,
    };
    let (minute_id, day_id) = (minute_row(&grant.minute_window), day_row(&grant.day_window));
    let tx = db.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let minute = read_budget_window(&tx, key_id, &minute_id)?;
    let day = read_budget_window(&tx, key_id, &day_id)?;
    if let Some(refused) = budget_refusal(limits, minute, day, tokens, cost_micros, now_ms) {
        return Ok(refused);
    }
    {
        let mut add = tx.prepare_cached(ADD_TO_BUDGET_WINDOW)?;
        // The minute counts requests only (rpm); tokens and cost are budgets of the day.
        add.execute(params![key_id, minute_id, 0, 0, time::minute_window_end(now_ms) + MINUTE_ROW_GRACE_MS])?;
        add.execute(params![key_id, day_id, tokens, cost_micros, time::day_window_end(now_ms) + DAY_ROW_GRACE_MS])?;
    }
    tx.commit()?;
    Ok(Reservation::Granted(grant))
}

#[async_trait]
impl CounterStore for EmbeddedStore {
    async fn reserve(
        &self,
        key_id: &str,
        limits: &KeyLimits,
        now_ms: i64,
        tokens: u64,
    ) -> Result<Reservation, StoreError> {
        self.with_db(|db| reserve(db, key_id, limits, now_ms, tokens).map_err(backend("reserve in a key's windows")))
    }

    /// One `UPDATE` of both rows, so it is atomic on its own; tokens never drop below zero.
    ///
    /// A negative delta (the usual case: the estimate included `max_tokens`) only frees
    /// capacity, so it is held in memory and written by the next reservation's transaction: a
    /// call then costs one commit, not two. Until then the windows over-count, which can refuse
    /// early but never admit too much; a crash loses only such frees. A positive delta tightens
    /// the limits and is written at once.
    async fn reconcile(&self, grant: &Grant, delta: i64) -> Result<(), StoreError> {
        if delta == 0 {
            return Ok(());
        }
        let (minute_id, day_id) = (minute_row(&grant.minute_window), day_row(&grant.day_window));
        self.with_db(|db| {
            if delta < 0 {
                db.pending_frees.push((grant.key_id.clone(), minute_id, day_id, delta));
                return Ok(());
            }
            db.execute(RECONCILE, params![grant.key_id, minute_id, day_id, delta])
                .map(drop)
                .map_err(backend("reconcile a key's windows"))
        })
    }

    async fn usage(&self, key_id: &str, now_ms: i64) -> Result<(WindowUsage, WindowUsage), StoreError> {
        let (minute_id, day_id) = (minute_row(&time::minute_window(now_ms)), day_row(&time::day_window(now_ms)));
        self.with_db(|db| {
            apply_pending(&db.conn, &mut db.pending_frees).map_err(backend("apply pending reconciles"))?;
            let tx = db.conn.transaction().map_err(backend("begin a usage read"))?;
            let minute = read_window(&tx, key_id, &minute_id).map_err(backend("read a minute window"))?;
            let day = read_window(&tx, key_id, &day_id).map_err(backend("read a day window"))?;
            Ok((minute, day))
        })
    }

    async fn reserve_budget(
        &self,
        key_id: &str,
        limits: &BudgetLimits,
        now_ms: i64,
        tokens: u64,
        cost_micros: u64,
    ) -> Result<Reservation, StoreError> {
        self.with_db(|db| {
            reserve_budget(db, key_id, limits, now_ms, tokens, cost_micros)
                .map_err(backend("reserve in a caller key's windows"))
        })
    }

    async fn reconcile_budget(&self, grant: &Grant, tokens_delta: i64, cost_delta: i64) -> Result<(), StoreError> {
        if tokens_delta == 0 && cost_delta == 0 {
            return Ok(());
        }
        let day_id = day_row(&grant.day_window);
        self.with_db(|db| {
            db.execute(RECONCILE_BUDGET, params![grant.key_id, day_id, tokens_delta, cost_delta])
                .map(drop)
                .map_err(backend("reconcile a caller key's windows"))
        })
    }

    async fn budget_usage(&self, key_id: &str, now_ms: i64) -> Result<BudgetUsage, StoreError> {
        let (minute_id, day_id) = (minute_row(&time::minute_window(now_ms)), day_row(&time::day_window(now_ms)));
        self.with_db(|db| {
            let tx = db.conn.transaction().map_err(backend("begin a usage read"))?;
            let minute = read_budget_window(&tx, key_id, &minute_id).map_err(backend("read a minute window"))?;
            let day = read_budget_window(&tx, key_id, &day_id).map_err(backend("read a day window"))?;
            Ok(BudgetUsage {
                minute_requests: minute.requests,
                day_requests: day.requests,
                day_tokens: day.tokens,
                day_cost_micros: day.cost_micros,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;

    fn rows(store: &EmbeddedStore) -> Vec<String> {
        store
            .with_db(|db| {
                let mut stmt =
                    db.conn.prepare("SELECT window FROM usage_windows ORDER BY window").map_err(backend("p"))?;
                stmt.query_map([], |r| r.get(0)).and_then(Iterator::collect).map_err(backend("q"))
            })
            .expect("rows")
    }

    #[tokio::test]
    async fn expired_window_rows_are_swept_by_a_later_reservation() {
        let store = EmbeddedStore::open_in_memory().expect("open");
        let limits = KeyLimits::default();
        store.reserve("k", &limits, NOW, 1).await.expect("reserve");
        assert_eq!(rows(&store).len(), 2);
        // Three days on, both old rows (minute: +5 min, day: +2 days) have expired.
        let later = NOW + 3 * 86_400_000;
        store.reserve("k", &limits, later, 1).await.expect("reserve later");
        assert_eq!(rows(&store), [day_row(&time::day_window(later)), minute_row(&time::minute_window(later))]);
    }

    #[test]
    fn the_day_window_is_reported_when_both_are_full() {
        let limits = KeyLimits { rpm: Some(1), tpm: None, rpd: Some(1) };
        let full = WindowUsage { requests: 1, tokens: 0 };
        let refused = refusal(&limits, full, full, 0, NOW);
        assert_eq!(
            refused,
            Some(Reservation::Refused { window: WindowKind::Day, until_ms: time::day_window_end(NOW) })
        );
        assert_eq!(refusal(&KeyLimits::default(), full, full, u64::MAX, NOW), None);
    }
}
