//! Call log events: one per chat call, success or failure, sent off the hot path to the
//! aggregator (in-process queue locally, SQS in AWS).

pub mod queue;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Version of the event schema; the aggregator refuses versions it does not know.
pub const LOG_EVENT_VERSION: u32 = 1;

/// Longest error message kept in a log event.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 500;
/// Longest user id, model, provider, key id or route kept in a log event (and so in the stats).
pub const MAX_NAME_CHARS: usize = 128;
/// Longest error code kept (a provider's own codes pass through).
pub const MAX_CODE_CHARS: usize = 64;
/// The model recorded for a call whose requested model is not in the catalog: a caller cannot
/// grow the log and the stats with names of their own making.
pub const UNKNOWN_MODEL: &str = "unknown";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Success,
    Error,
}

/// One call as the stats see it. No secrets, no prompt text. The stats API's logs return it as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogEvent {
    pub v: u32,
    pub request_id: String,
    /// When the call started, unix ms.
    pub ts_ms: i64,
    pub user_id: Option<String>,
    /// The Maestro API key (`ck_…` id, never the key) the caller authenticated with; `None` for a
    /// JWT. Spend per caller key is summed from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_key_id: Option<String>,
    /// The provider that answered last (or the one tried last); `none` when no target resolved.
    pub provider: String,
    pub model: String,
    pub key_id: Option<String>,
    /// The route the caller named, if any.
    pub route: Option<String>,
    /// Which of the route's rules chose the targets: its index (`"0"`, `"1"`, …), or `default`
    /// for the route's own targets; `None` when no route was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_rule: Option<String>,
    /// The API the call came through: `chat` (`/v1/chat/completions` and `/v1/messages`),
    /// `responses` (`/v1/responses`) or `embeddings` (`/v1/embeddings`).
    pub request_type: String,
    pub stream: bool,
    pub status: CallStatus,
    pub http_status: u16,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cost_micros: u64,
    pub latency_ms: u64,
    pub ttfb_ms: Option<u64>,
    pub attempts: u32,
    /// Input tokens written to the provider's prompt cache (billed at the cache-write price), so
    /// a call's cost can be derived from its log.
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// Upstream attempts per key, the final key's included, so each key's stats count every try
    /// made with it (a key that failed before another served the call shows its errors too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_attempts: Vec<KeyAttempts>,
    /// The response cache: `hit` (answered from it: no provider was called, cost 0) or `miss` (a
    /// cacheable call a provider answered); `null` when the cache was not used.
    #[serde(default)]
    pub cache: Option<String>,
    /// What a hit saved: the cost of the call whose answer it reused (micro-USD).
    #[serde(default)]
    pub saved_micros: u64,
}

/// What one key did for one call: attempts made with it and how many of them failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyAttempts {
    pub provider: String,
    pub model: String,
    pub key_id: String,
    pub attempts: u32,
    pub errors: u32,
}

/// Most keys an event lists attempts for (a call tries few; the bound keeps an event small).
pub const MAX_KEY_ATTEMPTS: usize = 16;

impl LogEvent {
    /// A successful, unremarkable chat call, for tests: `openai/gpt-4o-mini` through key `key-1`
    /// for `user-1`, 120 prompt tokens (20 cached), 30 completion, 4,500 µUSD, 420 ms (first byte
    /// at 180 ms). A test sets what it looks at with struct update syntax
    /// (`LogEvent { cost_micros: 7, ..LogEvent::sample("r-1", ts) }`).
    #[cfg(any(test, feature = "test-support"))]
    pub fn sample(request_id: &str, ts_ms: i64) -> Self {
        Self {
            v: LOG_EVENT_VERSION,
            request_id: request_id.to_string(),
            ts_ms,
            user_id: Some("user-1".to_string()),
            caller_key_id: None,
            provider: "openai".to_string(),
            model: "gpt-4o-mini".to_string(),
            key_id: Some("key-1".to_string()),
            route: None,
            route_rule: None,
            request_type: "chat".to_string(),
            stream: false,
            status: CallStatus::Success,
            http_status: 200,
            error_code: None,
            error_message: None,
            prompt_tokens: 120,
            completion_tokens: 30,
            cached_tokens: 20,
            cost_micros: 4_500,
            latency_ms: 420,
            ttfb_ms: Some(180),
            attempts: 1,
            cache_write_tokens: 0,
            key_attempts: Vec::new(),
            cache: None,
            saved_micros: 0,
        }
    }

    /// Truncates an error message to what a log event keeps.
    pub fn clip_message(message: &str) -> String {
        clip(message, MAX_ERROR_MESSAGE_CHARS)
    }

    /// The event with every text field cut to its limit: whatever a caller, a token or a provider
    /// put in them, one event stays small. The gateway sends bounded events and the aggregator
    /// bounds what it reads again.
    pub fn bounded(mut self) -> Self {
        let names = [&mut self.provider, &mut self.model, &mut self.request_type];
        for field in names {
            if field.chars().count() > MAX_NAME_CHARS {
                *field = clip(field, MAX_NAME_CHARS);
            }
        }
        for field in [&mut self.user_id, &mut self.key_id, &mut self.route, &mut self.route_rule] {
            if let Some(value) = field.as_mut().filter(|v| v.chars().count() > MAX_NAME_CHARS) {
                *value = clip(value, MAX_NAME_CHARS);
            }
        }
        if let Some(code) = self.error_code.as_mut().filter(|c| c.chars().count() > MAX_CODE_CHARS) {
            *code = clip(code, MAX_CODE_CHARS);
        }
        if let Some(message) = self.error_message.as_mut().filter(|m| m.chars().count() > MAX_ERROR_MESSAGE_CHARS) {
            *message = clip(message, MAX_ERROR_MESSAGE_CHARS);
        }
        self.key_attempts.truncate(MAX_KEY_ATTEMPTS);
        for attempt in &mut self.key_attempts {
            for field in [&mut attempt.provider, &mut attempt.model, &mut attempt.key_id] {
                if field.chars().count() > MAX_NAME_CHARS {
                    *field = clip(field, MAX_NAME_CHARS);
                }
            }
        }
        self
    }
}

/// The first `max` characters of `text`, with `…` when something was cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// Where the chat path hands its log events. Sending never fails the caller's request: a sink
/// that cannot deliver writes the event to the structured log instead, so it is never lost.
#[async_trait]
pub trait LogSink: Send + Sync {
    async fn send(&self, event: LogEvent);
}

/// The last resort for an event no queue took: the structured log, one JSON line, findable by
/// its `undelivered_log_event` field.
pub fn write_undelivered(event: &LogEvent, reason: &str) {
    match serde_json::to_string(event) {
        Ok(json) => tracing::error!(undelivered_log_event = %json, reason, "log event not delivered; kept in the log"),
        Err(e) => tracing::error!(request_id = %event.request_id, error = %e, reason, "log event not delivered"),
    }
}
