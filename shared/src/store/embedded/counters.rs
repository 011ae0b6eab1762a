//! Per-key rate-limit windows: `M#<yyyymmddHHMM>` and `D#<yyyymmdd>` rows holding requests and
//! tokens, the twin of DynamoDB's `USE#<key>#M#…` items. A caller key's windows (`CK#<id>`) also
//! count the day's cost in `cost_micros`, for its cost budget.
//!
//! The windows live in memory, behind their own mutex: one process owns the data dir (the store
//! holds an exclusive lock on it), so this mutex alone makes check-then-add exact, and a
//! reservation costs a hash lookup instead of a SQLite write transaction on the request path.
//! The `usage_windows` table is their durable copy: the store's background writer copies changed
//! rows into it (absolute values, so a repeated write is harmless) every [`FLUSH_EVERY`], and on
//! close; the windows are read back from it when the store opens. A crash loses at most the last
//! interval's counts.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::{EmbeddedStore, backend};
use crate::domain::KeyLimits;
use crate::store::{
    BudgetLimits, BudgetUsage, Counted, CountedIn, CounterStore, Grant, Reservation, StoreError, WindowKind,
    WindowUsage,
};
use crate::time;

/// How often changed windows are copied to the `usage_windows` table.
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// How long a window row outlives its window (docs/ARCHITECTURE.md §3: minutes for minute rows, two days for
/// day rows), so a late reconcile still finds it.
const MINUTE_ROW_GRACE_MS: i64 = 5 * 60_000;
const DAY_ROW_GRACE_MS: i64 = 2 * 86_400_000;
/// Expired rows are swept at most this often, inside a reservation.
const PURGE_EVERY_MS: i64 = 60_000;

const LOAD_WINDOWS: &str = "SELECT key_id, window, requests, tokens, cost_micros, expires_at_ms FROM usage_windows";
const SAVE_WINDOW: &str = "INSERT INTO usage_windows (key_id, window, requests, tokens, cost_micros, expires_at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
     ON CONFLICT (key_id, window) DO UPDATE SET requests = excluded.requests, tokens = excluded.tokens, \
     cost_micros = excluded.cost_micros, expires_at_ms = excluded.expires_at_ms";
const PURGE_EXPIRED: &str = "DELETE FROM usage_windows WHERE expires_at_ms <= ?1";

/// `(key id, window id)`, the row's primary key.
type WindowId = (String, String);

/// One window's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Row {
    requests: u64,
    tokens: u64,
    cost_micros: u64,
    expires_at_ms: i64,
}

impl Row {
    fn usage(&self) -> WindowUsage {
        WindowUsage { requests: self.requests, tokens: self.tokens }
    }
}

/// Every live window, plus what the next flush must write.
#[derive(Debug, Default)]
pub(super) struct Windows {
    rows: HashMap<WindowId, Row>,
    /// Rows changed since the last flush (each listed once).
    dirty: Vec<WindowId>,
    /// When (unix ms, caller's clock) expired rows were last swept from memory.
    last_purge_ms: Option<i64>,
    /// The sweep the table has yet to follow: rows expiring at or before this go.
    purge_table_before: Option<i64>,
}

/// What a flush writes, taken from [`Windows`] under its lock and written without it.
#[derive(Debug, Default)]
pub(super) struct Flush {
    rows: Vec<(WindowId, Row)>,
    purge_before: Option<i64>,
}

impl Windows {
    /// Reads every stored window (the table is swept, so it is small).
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let mut stmt = conn.prepare(LOAD_WINDOWS)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    (r.get(0)?, r.get(1)?),
                    Row { requests: r.get(2)?, tokens: r.get(3)?, cost_micros: r.get(4)?, expires_at_ms: r.get(5)? },
                ))
            })?
            .collect::<rusqlite::Result<HashMap<_, _>>>()?;
        Ok(Self { rows, ..Self::default() })
    }

    fn get(&self, key_id: &str, window: &str) -> Row {
        // A borrowed tuple key cannot be looked up without building it; the strings are tiny.
        self.rows.get(&(key_id.to_string(), window.to_string())).copied().unwrap_or_default()
    }

    /// Changes one row (creating it with `expires_at_ms` if new) and marks it for the flush.
    fn update(&mut self, key_id: &str, window: &str, expires_at_ms: i64, change: impl FnOnce(&mut Row)) {
        let id = (key_id.to_string(), window.to_string());
        self.rows.entry(id.clone()).or_insert(Row { expires_at_ms, ..Row::default() });
        self.change(id, change);
    }

    /// Like [`Self::update`] for a row that must already exist (a reconcile of a grant whose
    /// window has been swept changes nothing, as an `UPDATE` of a missing row would not).
    fn update_existing(&mut self, key_id: &str, window: &str, change: impl FnOnce(&mut Row)) {
        self.change((key_id.to_string(), window.to_string()), change);
    }

    /// Applies `change` to the row `id` if it exists; a row that changed is marked for the flush.
    fn change(&mut self, id: WindowId, change: impl FnOnce(&mut Row)) {
        if let Some(row) = self.rows.get_mut(&id) {
            let before = *row;
            change(row);
            if *row != before {
                self.dirty.push(id);
            }
        }
    }

    /// Drops expired rows at most once per [`PURGE_EVERY_MS`]; the table follows at the next flush.
    fn purge_if_due(&mut self, now_ms: i64) {
        // `abs_diff` also sweeps after the caller's clock jumped back.
        if self.last_purge_ms.is_some_and(|last| now_ms.abs_diff(last) < PURGE_EVERY_MS.unsigned_abs()) {
            return;
        }
        self.rows.retain(|_, row| row.expires_at_ms > now_ms);
        self.last_purge_ms = Some(now_ms);
        self.purge_table_before = Some(now_ms);
    }

    /// Takes what the next flush must write: the current values of the changed rows.
    pub(super) fn take_flush(&mut self) -> Flush {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        let rows = dirty.into_iter().filter_map(|id| self.rows.get(&id).copied().map(|row| (id, row))).collect();
        Flush { rows, purge_before: self.purge_table_before.take() }
    }

    /// Puts a flush that could not be written back, so the next one retries it. Rows changed
    /// since are already listed; their newer values win because they are read at write time.
    pub(super) fn restore(&mut self, failed: Flush) {
        self.dirty.extend(failed.rows.into_iter().map(|(id, _)| id));
        if self.purge_table_before.is_none() {
            self.purge_table_before = failed.purge_before;
        }
    }
}

impl Flush {
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.purge_before.is_none()
    }

    /// Writes the rows (then the sweep) in one transaction.
    pub(super) fn write(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut save = tx.prepare_cached(SAVE_WINDOW)?;
            for ((key_id, window), row) in &self.rows {
                save.execute(params![key_id, window, row.requests, row.tokens, row.cost_micros, row.expires_at_ms])?;
            }
            if let Some(before) = self.purge_before {
                tx.prepare_cached(PURGE_EXPIRED)?.execute([before])?;
            }
        }
        tx.commit()
    }
}

/// The table's window ids for the time ids a [`Grant`] carries.
fn minute_row(minute_window: &str) -> String {
    format!("M#{minute_window}")
}

fn day_row(day_window: &str) -> String {
    format!("D#{day_window}")
}

/// A counted window: the embedded store does not shard.
fn counted_if(counted: bool, with_tokens: bool) -> Option<CountedIn> {
    counted.then_some(CountedIn { shard: 0, with_tokens })
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

/// Which window, if any, a caller key's reservation would overflow; the day (a budget) first.
fn budget_refusal(
    limits: &BudgetLimits,
    minute: Row,
    day: Row,
    tokens: u64,
    cost: u64,
    now_ms: i64,
) -> Option<Reservation> {
    let over = |used: u64, add: u64, limit: Option<u64>| limit.is_some_and(|limit| used.saturating_add(add) > limit);
    if over(day.tokens, tokens, limits.tokens_per_day) || over(day.cost_micros, cost, limits.cost_micros_per_day) {
        return Some(Reservation::Refused { window: WindowKind::Day, until_ms: time::day_window_end(now_ms) });
    }
    if over(minute.requests, 1, limits.rpm) {
        return Some(Reservation::Refused { window: WindowKind::Minute, until_ms: time::minute_window_end(now_ms) });
    }
    None
}

/// Adds a signed delta, never going below zero.
fn add_signed(value: u64, delta: i64) -> u64 {
    if delta >= 0 { value.saturating_add(delta.unsigned_abs()) } else { value.saturating_sub(delta.unsigned_abs()) }
}

impl Windows {
    /// Checks and adds under one lock: nothing can slip in between, and a refusal changes nothing.
    fn reserve(&mut self, key_id: &str, limits: &KeyLimits, now_ms: i64, tokens: u64) -> Reservation {
        self.purge_if_due(now_ms);
        let counted = Counted {
            minute: counted_if(limits.rpm.is_some() || limits.tpm.is_some(), limits.tpm.is_some()),
            day: counted_if(limits.rpd.is_some(), false),
        };
        let grant = Grant::new(key_id, now_ms, tokens, 0, counted);
        let (minute_id, day_id) = (minute_row(&grant.minute_window), day_row(&grant.day_window));
        let (minute, day) = (self.get(key_id, &minute_id), self.get(key_id, &day_id));
        if let Some(refused) = refusal(limits, minute.usage(), day.usage(), tokens, now_ms) {
            return refused;
        }
        if let Some(within) = counted.minute {
            self.update(key_id, &minute_id, time::minute_window_end(now_ms) + MINUTE_ROW_GRACE_MS, |row| {
                row.requests = row.requests.saturating_add(1);
                if within.with_tokens {
                    row.tokens = row.tokens.saturating_add(tokens);
                }
            });
        }
        if counted.day.is_some() {
            self.update(key_id, &day_id, time::day_window_end(now_ms) + DAY_ROW_GRACE_MS, |row| {
                row.requests = row.requests.saturating_add(1);
            });
        }
        Reservation::Granted(grant)
    }

    /// The minute counts requests only (rpm); tokens and cost are budgets of the day.
    fn reserve_budget(
        &mut self,
        key_id: &str,
        limits: &BudgetLimits,
        now_ms: i64,
        tokens: u64,
        cost: u64,
    ) -> Reservation {
        self.purge_if_due(now_ms);
        let budgeted = limits.tokens_per_day.is_some() || limits.cost_micros_per_day.is_some();
        let counted = Counted { minute: counted_if(limits.rpm.is_some(), false), day: counted_if(budgeted, true) };
        // Only what a budget limits is counted (and reconciled).
        let tokens = if limits.tokens_per_day.is_some() { tokens } else { 0 };
        let cost = if limits.cost_micros_per_day.is_some() { cost } else { 0 };
        let grant = Grant::new(key_id, now_ms, tokens, cost, counted);
        let (minute_id, day_id) = (minute_row(&grant.minute_window), day_row(&grant.day_window));
        let (minute, day) = (self.get(key_id, &minute_id), self.get(key_id, &day_id));
        if let Some(refused) = budget_refusal(limits, minute, day, tokens, cost, now_ms) {
            return refused;
        }
        if counted.minute.is_some() {
            self.update(key_id, &minute_id, time::minute_window_end(now_ms) + MINUTE_ROW_GRACE_MS, |row| {
                row.requests = row.requests.saturating_add(1);
            });
        }
        if counted.day.is_some() {
            self.update(key_id, &day_id, time::day_window_end(now_ms) + DAY_ROW_GRACE_MS, |row| {
                row.requests = row.requests.saturating_add(1);
                row.tokens = row.tokens.saturating_add(tokens);
                row.cost_micros = row.cost_micros.saturating_add(cost);
            });
        }
        Reservation::Granted(grant)
    }
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
        self.with_windows(|w| w.reserve(key_id, limits, now_ms, tokens))
    }

    /// Tokens never drop below zero.
    async fn reconcile(&self, grant: &Grant, delta: i64) -> Result<(), StoreError> {
        if delta == 0 {
            return Ok(());
        }
        let (minute_id, day_id) = (minute_row(&grant.minute_window), day_row(&grant.day_window));
        let corrected = [(grant.counted.minute, &minute_id), (grant.counted.day, &day_id)];
        self.with_windows(|w| {
            for (_, window) in corrected.iter().filter(|(c, _)| c.is_some_and(|c| c.with_tokens)) {
                w.update_existing(&grant.key_id, window, |row| row.tokens = add_signed(row.tokens, delta));
            }
        })
    }

    async fn usage(&self, key_id: &str, now_ms: i64) -> Result<(WindowUsage, WindowUsage), StoreError> {
        let (minute_id, day_id) = (minute_row(&time::minute_window(now_ms)), day_row(&time::day_window(now_ms)));
        self.with_windows(|w| (w.get(key_id, &minute_id).usage(), w.get(key_id, &day_id).usage()))
    }

    async fn reserve_budget(
        &self,
        key_id: &str,
        limits: &BudgetLimits,
        now_ms: i64,
        tokens: u64,
        cost_micros: u64,
    ) -> Result<Reservation, StoreError> {
        self.with_windows(|w| w.reserve_budget(key_id, limits, now_ms, tokens, cost_micros))
    }

    async fn reconcile_budget(&self, grant: &Grant, tokens_delta: i64, cost_delta: i64) -> Result<(), StoreError> {
        if tokens_delta == 0 && cost_delta == 0 {
            return Ok(());
        }
        if !grant.counted.day.is_some_and(|c| c.with_tokens) {
            return Ok(());
        }
        let day_id = day_row(&grant.day_window);
        self.with_windows(|w| {
            w.update_existing(&grant.key_id, &day_id, |row| {
                row.tokens = add_signed(row.tokens, tokens_delta);
                row.cost_micros = add_signed(row.cost_micros, cost_delta);
            });
        })
    }

    async fn budget_usage(&self, key_id: &str, now_ms: i64) -> Result<BudgetUsage, StoreError> {
        let (minute_id, day_id) = (minute_row(&time::minute_window(now_ms)), day_row(&time::day_window(now_ms)));
        self.with_windows(|w| {
            let (minute, day) = (w.get(key_id, &minute_id), w.get(key_id, &day_id));
            BudgetUsage {
                minute_requests: minute.requests,
                day_requests: day.requests,
                day_tokens: day.tokens,
                day_cost_micros: day.cost_micros,
            }
        })
    }
}

/// Writes what changed since the last flush; on failure the rows stay marked for the next one.
pub(super) fn flush(windows: &Mutex<Windows>, conn: &mut Connection) -> Result<(), StoreError> {
    fn lock(windows: &Mutex<Windows>) -> MutexGuard<'_, Windows> {
        windows.lock().unwrap_or_else(PoisonError::into_inner)
    }
    let pending = lock(windows).take_flush();
    if pending.is_empty() {
        return Ok(());
    }
    pending.write(conn).map_err(|e| {
        let error = backend("save the rate-limit windows")(e);
        lock(windows).restore(pending);
        error
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;

    fn stored_windows(conn: &Connection) -> Vec<(String, u64, u64)> {
        let mut stmt =
            conn.prepare("SELECT window, requests, tokens FROM usage_windows ORDER BY window").expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).and_then(Iterator::collect).expect("query")
    }

    /// Limits on both windows, so both are counted.
    fn counted_limits() -> KeyLimits {
        KeyLimits { rpm: None, tpm: Some(1_000_000), rpd: Some(1_000) }
    }

    #[test]
    fn a_key_without_limits_counts_nothing() {
        let mut w = Windows::default();
        let Reservation::Granted(g) = w.reserve("k", &KeyLimits::default(), NOW, 10) else { unreachable!() };
        assert_eq!(g.counted, Counted::default());
        assert!(w.rows.is_empty() && w.take_flush().rows.is_empty());
    }

    fn schema() -> Connection {
        let mut conn = Connection::open_in_memory().expect("open");
        super::super::schema::migrate(&mut conn).expect("schema");
        conn
    }

    #[test]
    fn a_flush_writes_current_values_and_the_sweep_follows_in_the_table() {
        let mut conn = schema();
        let windows = Mutex::new(Windows::default());
        let limits = counted_limits();
        let mut w = windows.lock().expect("lock");
        assert!(matches!(w.reserve("k", &limits, NOW, 5), Reservation::Granted(_)));
        assert!(matches!(w.reserve("k", &limits, NOW, 7), Reservation::Granted(_)));
        drop(w);
        flush(&windows, &mut conn).expect("flush");
        let (minute, day) = (minute_row(&time::minute_window(NOW)), day_row(&time::day_window(NOW)));
        // The day counts requests only (rpd), the minute requests and tokens (tpm).
        assert_eq!(stored_windows(&conn), [(day.clone(), 2, 0), (minute.clone(), 2, 12)]);
        // Nothing changed: nothing to write.
        assert!(windows.lock().expect("lock").take_flush().is_empty());

        // Three days on, both old rows (minute: +5 min, day: +2 days) have expired.
        let later = NOW + 3 * 86_400_000;
        assert!(matches!(windows.lock().expect("lock").reserve("k", &limits, later, 1), Reservation::Granted(_)));
        flush(&windows, &mut conn).expect("flush");
        let (minute, day) = (minute_row(&time::minute_window(later)), day_row(&time::day_window(later)));
        assert_eq!(stored_windows(&conn), [(day, 1, 0), (minute, 1, 1)]);
    }

    #[test]
    fn a_failed_flush_is_retried_with_the_newest_values() {
        let mut conn = schema();
        let windows = Mutex::new(Windows::default());
        windows.lock().expect("lock").reserve("k", &counted_limits(), NOW, 5);
        conn.execute_batch("DROP TABLE usage_windows").expect("break the table");
        assert!(flush(&windows, &mut conn).is_err());
        windows.lock().expect("lock").reserve("k", &counted_limits(), NOW, 5);
        let mut conn = schema();
        flush(&windows, &mut conn).expect("flush");
        let minute = minute_row(&time::minute_window(NOW));
        assert_eq!(stored_windows(&conn)[1], (minute, 2, 10));
    }

    #[test]
    fn a_reconcile_of_a_swept_window_changes_nothing_and_tokens_stay_non_negative() {
        let mut w = Windows::default();
        let Reservation::Granted(g) = w.reserve("k", &counted_limits(), NOW, 10) else { unreachable!() };
        let minute = minute_row(&g.minute_window);
        assert_eq!(w.get("k", &minute).tokens, 10);
        w.update_existing("k", &minute, |row| row.tokens = add_signed(row.tokens, -25));
        assert_eq!(w.get("k", &minute).tokens, 0);
        w.update_existing("gone", &minute, |row| row.tokens = add_signed(row.tokens, 5));
        assert!(!w.rows.contains_key(&("gone".to_string(), minute)));
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
