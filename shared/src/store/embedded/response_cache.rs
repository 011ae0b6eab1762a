//! The response cache in `response_cache` (see `store::response_cache`); expired entries are
//! never answered and are deleted by the background writer's prune.

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{OptionalExtension, params};

use super::{EmbeddedStore, backend};
use crate::domain::Usage;
use crate::store::{CachedAnswer, ResponseCacheStore, StoreError};

const GET: &str = "SELECT body, provider, model, prompt_tokens, completion_tokens, cached_tokens, \
     cache_write_tokens, cost_micros, created_ms, expires_ms FROM response_cache WHERE key = ?1 AND expires_ms > ?2";
const PUT: &str = "INSERT OR REPLACE INTO response_cache (key, body, provider, model, prompt_tokens, \
     completion_tokens, cached_tokens, cache_write_tokens, cost_micros, created_ms, expires_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
/// Deleted per statement, so a prune never holds the writer long.
const PRUNE_BATCH: usize = 1_000;

/// Deletes expired entries; returns how many.
pub(super) fn prune_expired(conn: &rusqlite::Connection, now_ms: i64) -> rusqlite::Result<usize> {
    let mut deleted = 0;
    loop {
        let n = conn
            .prepare_cached(
                "DELETE FROM response_cache WHERE key IN \
                 (SELECT key FROM response_cache WHERE expires_ms <= ?1 ORDER BY expires_ms LIMIT ?2)",
            )?
            .execute(params![now_ms, PRUNE_BATCH])?;
        deleted += n;
        if n < PRUNE_BATCH {
            return Ok(deleted);
        }
    }
}

#[async_trait]
impl ResponseCacheStore for EmbeddedStore {
    async fn get_answer(&self, key: &str, now_ms: i64) -> Result<Option<CachedAnswer>, StoreError> {
        self.with_db(|db| {
            db.conn
                .prepare_cached(GET)
                .and_then(|mut statement| {
                    statement
                        .query_row(params![key, now_ms], |r| {
                            Ok(CachedAnswer {
                                body: Bytes::from(r.get::<_, Vec<u8>>(0)?),
                                provider: r.get(1)?,
                                model: r.get(2)?,
                                usage: Usage {
                                    prompt_tokens: r.get(3)?,
                                    completion_tokens: r.get(4)?,
                                    cached_tokens: r.get(5)?,
                                    cache_write_tokens: r.get(6)?,
                                },
                                cost_micros: r.get(7)?,
                                created_ms: r.get(8)?,
                                expires_ms: r.get(9)?,
                            })
                        })
                        .optional()
                })
                .map_err(backend("read a cached answer"))
        })
    }

    async fn put_answer(&self, key: &str, a: &CachedAnswer) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.conn
                .prepare_cached(PUT)
                .and_then(|mut statement| {
                    statement.execute(params![
                        key,
                        a.body.as_ref(),
                        a.provider,
                        a.model,
                        a.usage.prompt_tokens,
                        a.usage.completion_tokens,
                        a.usage.cached_tokens,
                        a.usage.cache_write_tokens,
                        a.cost_micros,
                        a.created_ms,
                        a.expires_ms
                    ])
                })
                .map(|_| ())
                .map_err(backend("store a cached answer"))
        })
    }
}
