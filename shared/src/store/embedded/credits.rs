//! Users' credits in `credit_accounts` and `credit_ledger` (see `store::credits`). Every change
//! is one immediate transaction, so holds and settles are serialised by SQLite itself.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::{EmbeddedStore, backend};
use crate::store::{CreditAccount, CreditStore, LedgerEntry, LedgerKind, Settlement, StoreError, TopUp};

const ACCOUNT: &str = "SELECT available_micros, held_micros FROM credit_accounts WHERE user_id = ?1";
const ADD: &str = "INSERT INTO credit_accounts (user_id, available_micros, held_micros) VALUES (?1, ?2, 0) \
     ON CONFLICT (user_id) DO UPDATE SET available_micros = available_micros + excluded.available_micros";
const HOLD: &str = "UPDATE credit_accounts SET available_micros = available_micros - ?2, \
     held_micros = held_micros + ?2 WHERE user_id = ?1 AND available_micros >= ?2";
const SETTLE: &str = "INSERT INTO credit_accounts (user_id, available_micros, held_micros) VALUES (?1, ?2 - ?3, -?2) \
     ON CONFLICT (user_id) DO UPDATE SET available_micros = available_micros + ?2 - ?3, held_micros = held_micros - ?2";
const INSERT_ENTRY: &str = "INSERT INTO credit_ledger (id, user_id, ts_ms, kind, amount_micros, \
     reason, actor, call_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
     ON CONFLICT (user_id, id) DO NOTHING";
const LEDGER: &str = "SELECT id, user_id, ts_ms, kind, amount_micros, reason, actor, call_id \
     FROM credit_ledger WHERE user_id = ?1 AND (ts_ms < ?2 OR (ts_ms = ?2 AND id < ?3)) \
     ORDER BY ts_ms DESC, id DESC LIMIT ?4";

/// Gives every held amount back to its account: at start, when the process that owns the data dir
/// has no call in flight. A call a killed process served but never settled is then not charged
/// (never charged twice). Returns how many accounts had holds.
pub(super) fn release_all_holds(conn: &rusqlite::Connection) -> Result<usize, StoreError> {
    conn.execute(
        "UPDATE credit_accounts SET available_micros = available_micros + held_micros, held_micros = 0 \
         WHERE held_micros != 0",
        [],
    )
    .map_err(backend("release credit holds"))
}

fn account(conn: &rusqlite::Connection, user_id: &str) -> rusqlite::Result<CreditAccount> {
    conn.prepare_cached(ACCOUNT)?
        .query_row([user_id], |r| Ok(CreditAccount { available_micros: r.get(0)?, held_micros: r.get(1)? }))
        .optional()
        .map(Option::unwrap_or_default)
}

fn insert_entry(conn: &rusqlite::Connection, e: &LedgerEntry) -> rusqlite::Result<usize> {
    conn.prepare_cached(INSERT_ENTRY)?.execute(params![
        e.id,
        e.user_id,
        e.ts_ms,
        e.kind.as_str(),
        e.amount_micros,
        e.reason,
        e.actor,
        e.call_id
    ])
}

fn read_entry(row: &Row<'_>) -> rusqlite::Result<LedgerEntry> {
    let kind: String = row.get(3)?;
    Ok(LedgerEntry {
        id: row.get(0)?,
        user_id: row.get(1)?,
        ts_ms: row.get(2)?,
        kind: LedgerKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("ledger kind `{kind}`").into(),
            )
        })?,
        amount_micros: row.get(4)?,
        reason: row.get(5)?,
        actor: row.get(6)?,
        call_id: row.get(7)?,
    })
}

#[async_trait]
impl CreditStore for EmbeddedStore {
    async fn top_up(&self, t: &TopUp<'_>) -> Result<LedgerEntry, StoreError> {
        self.with_db(|db| {
            let tx = db.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend("top up"))?;
            tx.prepare_cached(ADD)
                .and_then(|mut s| s.execute(params![t.user_id, t.amount_micros]))
                .map_err(backend("top up"))?;
            let entry = LedgerEntry::top_up(t);
            insert_entry(&tx, &entry).map_err(backend("write a ledger entry"))?;
            tx.commit().map_err(backend("top up"))?;
            Ok(entry)
        })
    }

    async fn credit_account(&self, user_id: &str) -> Result<CreditAccount, StoreError> {
        self.with_db(|db| account(&db.conn, user_id).map_err(backend("read credits")))
    }

    async fn hold_credits(&self, user_id: &str, amount_micros: i64) -> Result<bool, StoreError> {
        if amount_micros <= 0 {
            return Ok(true);
        }
        self.with_db(|db| {
            db.execute(HOLD, params![user_id, amount_micros]).map(|n| n == 1).map_err(backend("hold credits"))
        })
    }

    async fn settle_credits(&self, s: &Settlement<'_>) -> Result<(), StoreError> {
        self.with_db(|db| {
            let tx = db.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend("settle"))?;
            let entry = LedgerEntry::charge(s);
            // The entry decides whether this settle is the call's first.
            if insert_entry(&tx, &entry).map_err(backend("write a ledger entry"))? == 0 {
                return Ok(());
            }
            tx.prepare_cached(SETTLE)
                .and_then(|mut st| st.execute(params![s.user_id, s.held_micros, s.charge_micros]))
                .map_err(backend("settle"))?;
            tx.commit().map_err(backend("settle"))
        })
    }

    async fn credit_ledger(
        &self,
        user_id: &str,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let (ts, id) = before.unwrap_or((i64::MAX, String::new()));
        self.with_db(|db| {
            db.conn
                .prepare_cached(LEDGER)
                .and_then(|mut stmt| {
                    stmt.query_map(params![user_id, ts, id, limit as i64], read_entry)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(backend("read the ledger"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reopened_store_releases_the_holds_its_last_process_left() {
        let dir = tempfile::tempdir().expect("dir");
        let store = EmbeddedStore::open(dir.path()).expect("open");
        store
            .top_up(&TopUp { user_id: "u", amount_micros: 1_000, reason: "r", actor: "a", at_ms: 1 })
            .await
            .expect("top up");
        assert!(store.hold_credits("u", 600).await.expect("hold"));
        drop(store); // killed mid-call: never settled
        let again = EmbeddedStore::open(dir.path()).expect("reopen");
        let account = again.credit_account("u").await.expect("read");
        assert_eq!((account.available_micros, account.held_micros), (1_000, 0));
    }
}
