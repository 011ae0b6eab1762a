//! Alert records, history and the evaluation lease (see `store::alerts`).

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{EmbeddedStore, backend};
use crate::store::alerts::check_version;
use crate::store::{ALERT_HISTORY_DAYS, AlertRecord, AlertRecordKind, AlertStore, StoreError};

/// Deletes history past its retention; returns how many entries.
pub(super) fn prune_history(conn: &rusqlite::Connection, now_ms: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM alert_history WHERE ts_ms < ?1")?
        .execute(params![now_ms - ALERT_HISTORY_DAYS * 86_400_000])
}

#[async_trait]
impl AlertStore for EmbeddedStore {
    async fn alert_records(&self, kind: AlertRecordKind) -> Result<Vec<AlertRecord>, StoreError> {
        self.with_db(|db| {
            db.conn
                .prepare_cached("SELECT name, body, version FROM alert_records WHERE kind = ?1 ORDER BY name")
                .and_then(|mut statement| {
                    statement
                        .query_map(params![kind.as_str()], |r| {
                            Ok(AlertRecord { name: r.get(0)?, body: r.get(1)?, version: r.get(2)? })
                        })?
                        .collect()
                })
                .map_err(backend("read alert records"))
        })
    }

    async fn put_alert_record(
        &self,
        kind: AlertRecordKind,
        name: &str,
        body: &str,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.with_db(|db| {
            let tx = db.conn.transaction().map_err(backend("begin an alert record write"))?;
            let found: Option<u64> = tx
                .query_row(
                    "SELECT version FROM alert_records WHERE kind = ?1 AND name = ?2",
                    params![kind.as_str(), name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend("read an alert record"))?;
            check_version(kind, name, found, expected)?;
            let version = found.unwrap_or(0) + 1;
            tx.execute(
                "INSERT OR REPLACE INTO alert_records (kind, name, body, version) VALUES (?1, ?2, ?3, ?4)",
                params![kind.as_str(), name, body, version],
            )
            .map_err(backend("write an alert record"))?;
            tx.commit().map_err(backend("commit an alert record"))?;
            Ok(version)
        })
    }

    async fn delete_alert_record(
        &self,
        kind: AlertRecordKind,
        name: &str,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        self.with_db(|db| {
            let tx = db.conn.transaction().map_err(backend("begin an alert record delete"))?;
            let found: Option<u64> = tx
                .query_row(
                    "SELECT version FROM alert_records WHERE kind = ?1 AND name = ?2",
                    params![kind.as_str(), name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend("read an alert record"))?;
            if expected.is_some() {
                check_version(kind, name, found, expected)?;
            }
            tx.execute("DELETE FROM alert_records WHERE kind = ?1 AND name = ?2", params![kind.as_str(), name])
                .map_err(backend("delete an alert record"))?;
            tx.commit().map_err(backend("commit an alert record delete"))
        })
    }

    async fn append_alert_history(&self, ts_ms: i64, id: &str, body: &str) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.conn
                .prepare_cached("INSERT OR IGNORE INTO alert_history (ts_ms, id, body) VALUES (?1, ?2, ?3)")
                .and_then(|mut statement| statement.execute(params![ts_ms, id, body]))
                .map(|_| ())
                .map_err(backend("add to the alert history"))
        })
    }

    async fn alert_history(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        self.with_db(|db| {
            db.conn
                .prepare_cached("SELECT body FROM alert_history ORDER BY ts_ms DESC, id DESC LIMIT ?1")
                .and_then(|mut statement| statement.query_map(params![limit], |r| r.get(0))?.collect())
                .map_err(backend("read the alert history"))
        })
    }

    async fn acquire_alert_lease(&self, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool, StoreError> {
        self.with_db(|db| {
            let changed = db
                .conn
                .prepare_cached(
                    "INSERT INTO alert_lease (id, holder, until_ms) VALUES (1, ?1, ?2) \
                     ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
                     WHERE alert_lease.holder = excluded.holder OR alert_lease.until_ms <= ?3",
                )
                .and_then(|mut statement| statement.execute(params![holder, now_ms + ttl_ms, now_ms]))
                .map_err(backend("take the alert lease"))?;
            Ok(changed == 1)
        })
    }
}
