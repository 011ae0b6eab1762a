//! The response cache (see `store::response_cache`): one item per entry, `CACHE#<key>` / `ANSWER`,
//! the answer as a binary attribute, `expires_at` for the table's TTL. TTL deletes lazily (within
//! days), so a read checks `expires_ms` itself. Reads are eventually consistent: half the read
//! units, and an entry written a moment ago being missed once costs only a miss.

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;

use super::{DynamoStore, Item, Reader, key, n, retry, s};
use crate::domain::Usage;
use crate::store::{CachedAnswer, ResponseCacheStore, StoreError};

const SK: &str = "ANSWER";

fn pk(cache_key: &str) -> String {
    format!("CACHE#{cache_key}")
}

fn item(cache_key: &str, a: &CachedAnswer) -> Item {
    let mut item = key(pk(cache_key), SK);
    item.extend(
        [
            ("entity", s("cached_answer")),
            ("body", AttributeValue::B(Blob::new(a.body.to_vec()))),
            ("provider", s(&a.provider)),
            ("model", s(&a.model)),
            ("prompt_tokens", n(a.usage.prompt_tokens)),
            ("completion_tokens", n(a.usage.completion_tokens)),
            ("cached_tokens", n(a.usage.cached_tokens)),
            ("cache_write_tokens", n(a.usage.cache_write_tokens)),
            ("cost_micros", n(a.cost_micros)),
            ("created_ms", n(a.created_ms)),
            ("expires_ms", n(a.expires_ms)),
            // Epoch seconds, rounded up: TTL never removes an entry before it expires.
            ("expires_at", n(a.expires_ms.div_euclid(1_000) + 1)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value)),
    );
    item
}

fn answer_from(item: &Item) -> Result<CachedAnswer, StoreError> {
    let r = Reader::new(item, "cached answer");
    let body = match item.get("body") {
        Some(AttributeValue::B(blob)) => Bytes::copy_from_slice(blob.as_ref()),
        _ => return Err(StoreError::backend("dynamodb: cached answer item: `body` is missing or not binary")),
    };
    Ok(CachedAnswer {
        body,
        provider: r.s("provider")?,
        model: r.s("model")?,
        usage: Usage {
            prompt_tokens: r.n("prompt_tokens")?,
            completion_tokens: r.n("completion_tokens")?,
            cached_tokens: r.n("cached_tokens")?,
            cache_write_tokens: r.n("cache_write_tokens")?,
        },
        cost_micros: r.n("cost_micros")?,
        created_ms: r.n("created_ms")?,
        expires_ms: r.n("expires_ms")?,
    })
}

#[async_trait]
impl ResponseCacheStore for DynamoStore {
    async fn get_answer(&self, cache_key: &str, now_ms: i64) -> Result<Option<CachedAnswer>, StoreError> {
        const WHAT: &str = "read a cached answer";
        let k = key(pk(cache_key), SK);
        let out = retry::retrying(WHAT, |_| {
            let request = self.client.get_item().table_name(&self.table).set_key(Some(k.clone()));
            async move { request.send().await.map_err(|e| retry::classify(WHAT, &e)) }
        })
        .await?;
        match out.item() {
            Some(item) => answer_from(item).map(|a| (a.expires_ms > now_ms).then_some(a)),
            None => Ok(None),
        }
    }

    async fn put_answer(&self, cache_key: &str, answer: &CachedAnswer) -> Result<(), StoreError> {
        const WHAT: &str = "store a cached answer";
        let item = item(cache_key, answer);
        retry::retrying(WHAT, |_| {
            let request = self.client.put_item().table_name(&self.table).set_item(Some(item.clone()));
            async move { request.send().await.map_err(|e| retry::classify(WHAT, &e)) }
        })
        .await?;
        Ok(())
    }
}
