//! The response cache's rules, no I/O: when a request may be answered from the cache
//! ([`decide`]), the key it is stored under ([`key`]), and the two shapes a stored answer moves
//! between: a stream assembled into one chat completion to store ([`StreamAssembler`]), and a
//! stored completion replayed as a stream ([`replay_as_stream`]).
//!
//! Answers are stored in OpenAI's `chat.completion` shape, the gateway's own, so one entry serves
//! `/v1/chat/completions` and `/v1/messages`, streamed or not.

mod assemble;
mod key;

use serde::{Deserialize, Serialize};

pub use assemble::{StreamAssembler, replay_as_stream};
pub use key::key;

use crate::domain::ChatRequest;

/// The request header that asks for the cache per call (`on`, `off`, `refresh`), and the answer
/// header that says what happened (`hit`, `miss`).
pub const HEADER_CACHE: &str = "x-maestro-cache";
/// How long an entry lives when a caller sends `x-maestro-cache: on` for a model or route with
/// no `cache_ttl_secs` of its own.
pub const DEFAULT_TTL_SECS: u64 = 3_600;
/// What `x-maestro-cache` and a call's log say: answered from the cache, or cacheable and
/// answered by a provider.
pub const HIT: &str = "hit";
pub const MISS: &str = "miss";
/// Answers larger than this are not stored (DynamoDB items hold 400 KB; this leaves room).
pub const MAX_ENTRY_BYTES: usize = 350 * 1024;

/// Whose answers an entry may serve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// Only the user who asked: one user never sees another's answer.
    #[default]
    User,
    /// Every caller (prompts without personal data: public lyrics prompts, translations).
    Global,
}

impl CacheScope {
    fn is_user(&self) -> bool {
        *self == Self::User
    }
}

/// A model's or a route's cache settings; in JSON and TOML the fields `cache_ttl_secs`,
/// `cache_scope` and `cache_sampled` beside the model's or route's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachePolicy {
    /// Entries live this long; `None`: no caching unless a caller asks (`x-maestro-cache: on`).
    #[serde(rename = "cache_ttl_secs", default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    #[serde(rename = "cache_scope", default, skip_serializing_if = "CacheScope::is_user")]
    pub scope: CacheScope,
    /// Cache requests that sample (`temperature` > 0) too.
    #[serde(rename = "cache_sampled", default, skip_serializing_if = "std::ops::Not::not")]
    pub sampled: bool,
}

impl CachePolicy {
    /// No setting differs from the default (nothing to store).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The longest entry life accepted: a cache is for repeated questions, not an archive.
    pub const MAX_TTL_SECS: u64 = 30 * 86_400;

    /// `None` when the settings can be saved, else the field at fault and why.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        match self.ttl_secs {
            Some(ttl) if ttl > Self::MAX_TTL_SECS => Some((
                "cache_ttl_secs",
                format!("`cache_ttl_secs` is at most {} (30 days), not {ttl}.", Self::MAX_TTL_SECS),
            )),
            _ => None,
        }
    }
}

/// What a caller asked for in `x-maestro-cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheRequest {
    On,
    Off,
    /// Do not read the cache; store the fresh answer.
    Refresh,
}

impl CacheRequest {
    /// The header's value; anything else is a 400 naming the header (see the callers).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "on" => Some(Self::On),
            "off" => Some(Self::Off),
            "refresh" => Some(Self::Refresh),
            _ => None,
        }
    }
}

/// What to do with the cache for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Neither read nor store.
    Bypass,
    /// Look up first when `read`; store a fresh answer for `ttl_secs`.
    Use { read: bool, ttl_secs: u64, scope: CacheScope },
}

/// The cache decision for `request` under `policy` (the route's, else the model's) and the
/// caller's header. A request that samples (`temperature` > 0) is cached only when the policy
/// says `sampled` or the caller asks (`on`, `refresh`): its answers are meant to differ.
pub fn decide(policy: Option<&CachePolicy>, asked: Option<CacheRequest>, request: &ChatRequest) -> Decision {
    let policy = policy.copied().unwrap_or_default();
    let ttl_secs = match (asked, policy.ttl_secs) {
        (Some(CacheRequest::Off), _) | (None, None) => return Decision::Bypass,
        (_, Some(ttl)) => ttl,
        (Some(_), None) => DEFAULT_TTL_SECS,
    };
    if ttl_secs == 0 {
        return Decision::Bypass;
    }
    let samples = request.temperature.is_some_and(|t| t > 0.0);
    if samples && !policy.sampled && asked.is_none() {
        return Decision::Bypass;
    }
    Decision::Use { read: asked != Some(CacheRequest::Refresh), ttl_secs, scope: policy.scope }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(temperature: Option<f64>) -> ChatRequest {
        let mut r = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        if let Some(t) = temperature {
            r["temperature"] = json!(t);
        }
        serde_json::from_value(r).unwrap()
    }

    #[test]
    fn the_policy_and_the_header_decide_and_sampling_needs_an_explicit_yes() {
        let day = CachePolicy { ttl_secs: Some(86_400), ..CachePolicy::default() };
        let use_for = |ttl_secs, read| Decision::Use { read, ttl_secs, scope: CacheScope::User };
        assert_eq!(decide(None, None, &request(None)), Decision::Bypass, "opt-in");
        assert_eq!(decide(Some(&day), None, &request(None)), use_for(86_400, true));
        assert_eq!(decide(Some(&day), None, &request(Some(0.0))), use_for(86_400, true));
        assert_eq!(decide(Some(&day), None, &request(Some(0.7))), Decision::Bypass, "sampling");
        let sampled = CachePolicy { sampled: true, ..day };
        assert_eq!(decide(Some(&sampled), None, &request(Some(0.7))), use_for(86_400, true));
        assert_eq!(decide(Some(&day), Some(CacheRequest::On), &request(Some(0.7))), use_for(86_400, true));
        assert_eq!(decide(Some(&day), Some(CacheRequest::Off), &request(None)), Decision::Bypass);
        assert_eq!(decide(Some(&day), Some(CacheRequest::Refresh), &request(None)), use_for(86_400, false));
        assert_eq!(decide(None, Some(CacheRequest::On), &request(None)), use_for(DEFAULT_TTL_SECS, true));
        let zero = CachePolicy { ttl_secs: Some(0), ..CachePolicy::default() };
        assert_eq!(decide(Some(&zero), Some(CacheRequest::On), &request(None)), Decision::Bypass);
        let global = CachePolicy { scope: CacheScope::Global, ..day };
        assert_eq!(
            decide(Some(&global), None, &request(None)),
            Decision::Use { read: true, ttl_secs: 86_400, scope: CacheScope::Global }
        );
    }

    #[test]
    fn the_header_takes_three_words_in_any_case() {
        assert_eq!(CacheRequest::parse(" ON "), Some(CacheRequest::On));
        assert_eq!(CacheRequest::parse("off"), Some(CacheRequest::Off));
        assert_eq!(CacheRequest::parse("Refresh"), Some(CacheRequest::Refresh));
        assert_eq!(CacheRequest::parse("yes"), None);
    }
}
