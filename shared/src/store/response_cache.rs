//! Stored answers of the response cache (see `crate::cache`): one entry per key, read until it
//! expires. The embedded backend keeps them in SQLite and prunes expired ones; DynamoDB keeps
//! them as items with the table's TTL attribute.

use async_trait::async_trait;
use bytes::Bytes;

use super::StoreError;
use crate::domain::Usage;

/// An answer as a provider gave it, with what it cost then: a hit saves that much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedAnswer {
    /// OpenAI's `chat.completion`, as the call answered it.
    pub body: Bytes,
    /// The provider and model (the provider's own name) that served it.
    pub provider: String,
    pub model: String,
    pub usage: Usage,
    pub cost_micros: u64,
    pub created_ms: i64,
    pub expires_ms: i64,
}

#[async_trait]
pub trait ResponseCacheStore: Send + Sync {
    /// The entry under `key`, unless it expired by `now_ms`.
    async fn get_answer(&self, key: &str, now_ms: i64) -> Result<Option<CachedAnswer>, StoreError>;
    /// Stores (or replaces) the entry under `key`.
    async fn put_answer(&self, key: &str, answer: &CachedAnswer) -> Result<(), StoreError>;
}
