//! Maestro API keys for callers in `caller_keys`: one row per key, the key's SHA-256 in a unique
//! column (the hot-path look-up), never the key itself.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::{EmbeddedStore, backend, json_column, to_json};
use crate::store::{BudgetLimits, CallerKey, CallerKeyStore, StoreError};

const COLUMNS: &str = "id, key_hash, masked, owner, name, allowed_models, rpm, tokens_per_day, \
     cost_micros_per_day, created_at_ms, revoked_at_ms";

const INSERT: &str = "INSERT INTO caller_keys (id, key_hash, masked, owner, name, allowed_models, rpm, \
     tokens_per_day, cost_micros_per_day, created_at_ms, revoked_at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const REVOKE: &str = "UPDATE caller_keys SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL";

fn select_by(column: &str) -> String {
    format!("SELECT {COLUMNS} FROM caller_keys WHERE {column} = ?1")
}

fn read_row(row: &Row<'_>) -> rusqlite::Result<CallerKey> {
    Ok(CallerKey {
        id: row.get(0)?,
        key_hash: row.get(1)?,
        masked: row.get(2)?,
        owner: row.get(3)?,
        name: row.get(4)?,
        allowed_models: json_column(row, 5, "allowed_models")?,
        limits: BudgetLimits { rpm: row.get(6)?, tokens_per_day: row.get(7)?, cost_micros_per_day: row.get(8)? },
        created_at_ms: row.get(9)?,
        revoked_at_ms: row.get(10)?,
    })
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

#[async_trait]
impl CallerKeyStore for EmbeddedStore {
    async fn create_caller_key(&self, key: &CallerKey) -> Result<(), StoreError> {
        let models = to_json(&key.allowed_models, "allowed_models")?;
        self.with_db(|db| {
            let inserted = db.execute(
                INSERT,
                params![
                    key.id,
                    key.key_hash,
                    key.masked,
                    key.owner,
                    key.name,
                    models,
                    key.limits.rpm,
                    key.limits.tokens_per_day,
                    key.limits.cost_micros_per_day,
                    key.created_at_ms,
                    key.revoked_at_ms,
                ],
            );
            match inserted {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => {
                    Err(StoreError::Conflict(format!("caller key {} exists already", key.id)))
                }
                Err(e) => Err(backend("store a caller key")(e)),
            }
        })
    }

    async fn caller_key_by_hash(&self, key_hash: &str) -> Result<Option<CallerKey>, StoreError> {
        self.with_db(|db| {
            db.conn
                .prepare_cached(&select_by("key_hash"))
                .and_then(|mut stmt| stmt.query_row([key_hash], read_row).optional())
                .map_err(backend("read a caller key"))
        })
    }

    async fn list_caller_keys(&self) -> Result<Vec<CallerKey>, StoreError> {
        self.with_db(|db| {
            let sql = format!("SELECT {COLUMNS} FROM caller_keys ORDER BY id DESC");
            let mut stmt = db.conn.prepare_cached(&sql).map_err(backend("list caller keys"))?;
            stmt.query_map([], read_row).and_then(Iterator::collect).map_err(backend("list caller keys"))
        })
    }

    async fn revoke_caller_key(&self, id: &str, at_ms: i64) -> Result<CallerKey, StoreError> {
        self.with_db(|db| {
            let tx = db
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend("begin a caller key revocation"))?;
            tx.prepare_cached(REVOKE)
                .and_then(|mut s| s.execute(params![id, at_ms]))
                .map_err(backend("revoke a caller key"))?;
            let key = tx
                .prepare_cached(&select_by("id"))
                .and_then(|mut stmt| stmt.query_row([id], read_row).optional())
                .map_err(backend("read a caller key"))?
                .ok_or_else(|| StoreError::NotFound(format!("caller key {id}")))?;
            tx.commit().map_err(backend("commit a caller key revocation"))?;
            Ok(key)
        })
    }
}
