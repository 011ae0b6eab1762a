//! `ResponseCacheStore`: stored answers by key, never read after they expire.

use std::sync::Arc;

use bytes::Bytes;
use maestro_shared::domain::Usage;
use maestro_shared::store::{CachedAnswer, ResponseCacheStore};

use super::at;

fn answer(body: &str, created_ms: i64, ttl_ms: i64) -> CachedAnswer {
    CachedAnswer {
        body: Bytes::from(body.to_string()),
        provider: "deepseek".to_string(),
        model: "deepseek-chat".to_string(),
        usage: Usage { prompt_tokens: 1_200, completion_tokens: 345, cached_tokens: 1_000, cache_write_tokens: 7 },
        cost_micros: 1_234_567,
        created_ms,
        expires_ms: created_ms + ttl_ms,
    }
}

pub async fn given_a_stored_answer_then_it_reads_back_exactly_until_it_expires(store: Arc<dyn ResponseCacheStore>) {
    let now = at("2026-12-05T10:00:00Z");
    let key = "a".repeat(64);
    assert_eq!(store.get_answer(&key, now).await.expect("get"), None, "nothing stored yet");
    // A body with every byte a JSON answer may hold (UTF-8 well beyond ASCII).
    let stored = answer(r#"{"choices":[{"message":{"content":"夏天的歌 🎵"}}]}"#, now, 60_000);
    store.put_answer(&key, &stored).await.expect("put");
    assert_eq!(store.get_answer(&key, now + 1).await.expect("get"), Some(stored.clone()));
    assert_eq!(store.get_answer(&key, now + 59_999).await.expect("get").as_ref(), Some(&stored));
    assert_eq!(store.get_answer(&key, now + 60_000).await.expect("get"), None, "expired at its time");
    assert_eq!(store.get_answer(&"b".repeat(64), now).await.expect("get"), None, "another key");
}

pub async fn given_an_answer_when_stored_again_then_the_newer_one_replaces_it(store: Arc<dyn ResponseCacheStore>) {
    let now = at("2026-12-05T10:00:00Z");
    let key = "c".repeat(64);
    store.put_answer(&key, &answer("old", now - 120_000, 60_000)).await.expect("put");
    assert_eq!(store.get_answer(&key, now).await.expect("get"), None, "expired");
    let fresh = answer("new", now, 3_600_000);
    store.put_answer(&key, &fresh).await.expect("refresh");
    assert_eq!(store.get_answer(&key, now).await.expect("get"), Some(fresh));
}
