//! The response cache on the chat path (rules in `crate::cache`): whether a call may use it, a
//! lookup before any key or budget is touched, and the answer stored once a provider gave it
//! (a stream's at its end, assembled).

use bytes::Bytes;

use super::{Caller, Gateway};
use crate::cache::{self, Decision, MAX_ENTRY_BYTES};
use crate::domain::{ChatRequest, Usage};
use crate::store::{CachedAnswer, ResponseCacheStore};
use crate::time::now_ms;

/// How one call uses the cache: under which key, whether it may read, for how long it stores.
#[derive(Debug, Clone)]
pub(super) struct CachePlan {
    pub key: String,
    pub read: bool,
    pub ttl_secs: u64,
    /// The route the caller named, for a hit's headers and log.
    pub route: Option<String>,
}

impl Gateway {
    /// The plan for `request`, `None` when the cache is not used: neither the route (or the
    /// model) nor the caller asks for it, the request samples without an explicit yes, or the
    /// request would be refused anyway (unknown model, bad input, a caller key's model list);
    /// then the normal path answers, refusals included.
    pub(super) async fn cache_plan(&self, caller: &Caller, request: &ChatRequest) -> Option<CachePlan> {
        let catalog = self.catalog().await.ok()?;
        let resolution = catalog.resolve(&request.model).ok()?;
        let policy = match resolution.route.as_deref() {
            Some(name) => catalog.route(name)?.cache(),
            None => resolution.targets.first()?.model.cache,
        };
        let Decision::Use { read, ttl_secs, scope } = cache::decide(Some(&policy), caller.cache, request) else {
            return None;
        };
        request.validate().ok()?;
        caller.may_use(&request.model, &resolution).ok()?;
        Some(CachePlan { key: cache::key(request, scope, &caller.user_id)?, read, ttl_secs, route: resolution.route })
    }

    /// The stored answer for `plan`, if it may read and one is there. A store that cannot be
    /// read is a miss, never the caller's error.
    pub(super) async fn cached_answer(&self, plan: &CachePlan) -> Option<CachedAnswer> {
        if !plan.read {
            return None;
        }
        match self.backends.response_cache.get_answer(&plan.key, now_ms()).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "the response cache could not be read; asking a provider");
                None
            }
        }
    }
}

/// What a provider answered, as the cache keeps it.
pub(super) struct Fresh<'a> {
    pub body: Bytes,
    pub provider: &'a str,
    pub model: &'a str,
    pub usage: Usage,
    pub cost_micros: u64,
}

/// Stores a fresh answer under `plan` (answers over [`MAX_ENTRY_BYTES`] are not kept). A store
/// that fails is logged: the caller has the answer either way.
pub(super) async fn store_answer(store: &dyn ResponseCacheStore, plan: &CachePlan, fresh: Fresh<'_>) {
    if fresh.body.len() > MAX_ENTRY_BYTES {
        tracing::debug!(bytes = fresh.body.len(), "an answer too large for the response cache");
        return;
    }
    let now = now_ms();
    let ttl_ms = i64::try_from(plan.ttl_secs.saturating_mul(1_000)).unwrap_or(i64::MAX);
    let answer = CachedAnswer {
        body: fresh.body,
        provider: fresh.provider.to_string(),
        model: fresh.model.to_string(),
        usage: fresh.usage,
        cost_micros: fresh.cost_micros,
        created_ms: now,
        expires_ms: now.saturating_add(ttl_ms),
    };
    if let Err(e) = store.put_answer(&plan.key, &answer).await {
        tracing::warn!(error = %e, "an answer could not be stored in the response cache");
    }
}
