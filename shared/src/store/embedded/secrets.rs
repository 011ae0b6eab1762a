//! Provider key secrets in the `secrets` table: the local stand-in for Secrets Manager, which is
//! why the db file is 0600. Errors name the reference, never the value. Reads are cached in
//! memory (writes update the cache), so a chat call does not read SQLite for its key.

use std::sync::PoisonError;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{EmbeddedStore, backend};
use crate::secret::SecretString;
use crate::store::{SecretStore, StoreError};

const SELECT_SECRET: &str = "SELECT value FROM secrets WHERE secret_ref = ?1";
const UPSERT_SECRET: &str = "INSERT INTO secrets (secret_ref, value) VALUES (?1, ?2) \
     ON CONFLICT (secret_ref) DO UPDATE SET value = excluded.value";
const DELETE_SECRET: &str = "DELETE FROM secrets WHERE secret_ref = ?1";

#[async_trait]
impl SecretStore for EmbeddedStore {
    async fn get_secret(&self, secret_ref: &str) -> Result<SecretString, StoreError> {
        if let Some(cached) = self.cached_secret(secret_ref) {
            return Ok(cached);
        }
        let value: Option<String> = self.with_db(|db| {
            db.conn
                .prepare_cached(SELECT_SECRET)
                .and_then(|mut stmt| stmt.query_row([secret_ref], |row| row.get(0)).optional())
                .map_err(backend("read a secret"))
        })?;
        let secret =
            value.map(SecretString::new).ok_or_else(|| StoreError::NotFound(format!("secret {secret_ref}")))?;
        self.cache_secret(secret_ref, Some(&secret));
        Ok(secret)
    }

    async fn put_secret(&self, secret_ref: &str, value: &SecretString) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.execute(UPSERT_SECRET, params![secret_ref, value.expose()]).map(drop).map_err(backend("store a secret"))
        })?;
        self.cache_secret(secret_ref, Some(value));
        Ok(())
    }

    /// Deleting an absent secret succeeds: a retried key deletion must be able to finish.
    async fn delete_secret(&self, secret_ref: &str) -> Result<(), StoreError> {
        self.with_db(|db| db.execute(DELETE_SECRET, [secret_ref]).map(drop).map_err(backend("delete a secret")))?;
        self.cache_secret(secret_ref, None);
        Ok(())
    }
}

impl EmbeddedStore {
    fn cached_secret(&self, secret_ref: &str) -> Option<SecretString> {
        self.secret_cache.lock().unwrap_or_else(PoisonError::into_inner).get(secret_ref).cloned()
    }

    /// Caches `value` for `secret_ref`, or forgets it (`None`).
    fn cache_secret(&self, secret_ref: &str, value: Option<&SecretString>) {
        let mut cache = self.secret_cache.lock().unwrap_or_else(PoisonError::into_inner);
        match value {
            Some(value) => cache.insert(secret_ref.to_string(), value.clone()),
            None => cache.remove(secret_ref),
        };
    }
}
