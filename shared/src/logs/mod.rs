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
    /// Every upstream attempt of the call in the order made, and every pick that found no key to
    /// try: where it went, with which key, what the provider answered (its status and its own
    /// message, credentials masked), how long it took, and the keys selection passed over with
    /// why. At most [`MAX_ATTEMPT_LOG`] entries (the first ones and the last).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempt_log: Vec<Attempt>,
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

/// One entry of a call's attempt log: an upstream attempt with one key, or a pick of a key that
/// found none to try (`key_id` empty, `outcome` [`ATTEMPT_NO_KEY`], `skipped` says why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    pub provider: String,
    pub model: String,
    /// The key used (its id, never its secret); absent when no key could be tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// What came of it: `ok` (the provider answered), the kind of the provider's failure
    /// (`upstream_server_error`, `upstream_rate_limited`, `upstream_auth`,
    /// `upstream_quota_exceeded`, `upstream_overloaded`, `invalid_request`, and the transport
    /// failures `upstream_timeout`, `upstream_unreachable`, `upstream_malformed_response`),
    /// `no_key` (selection found no key to try) or `secret_unreadable` (the key's secret could
    /// not be read; nothing was sent).
    pub outcome: String,
    /// The provider's HTTP status; absent when it did not answer (a transport failure) or
    /// nothing was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The provider's own error message, credentials masked, at most
    /// [`MAX_ATTEMPT_MESSAGE_CHARS`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// From sending the request to the answer (a stream: its first frames), ms.
    #[serde(default)]
    pub latency_ms: u64,
    /// The keys selection passed over before this entry's key (or before finding none), with
    /// why. A key is listed the first time the call passes it over for a reason on its provider,
    /// and on every entry that found no key (which lists all it passed over).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedKey>,
}

/// A key selection passed over, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SkippedKey {
    pub key_id: String,
    /// `invalid` (a provider's 401/403 or an admin marked it), `cooling_down` (after a
    /// provider's 429 or an empty quota), `resting` (after repeated failures), `rpm_limit`,
    /// `tpm_limit`, `rpd_limit` (Maestro's window for the key is full), `counters_unavailable`
    /// (its counters could not be read).
    pub reason: String,
}

/// [`Attempt::outcome`] of an attempt the provider answered.
pub const ATTEMPT_OK: &str = "ok";
/// [`Attempt::outcome`] of a pick that found no key to try.
pub const ATTEMPT_NO_KEY: &str = "no_key";
/// [`Attempt::outcome`] when the key's secret could not be read (nothing was sent).
pub const ATTEMPT_SECRET_UNREADABLE: &str = "secret_unreadable";
/// Most entries of an attempt log: past it, the first `MAX_ATTEMPT_LOG - 1` and the last are kept
/// (`attempts` still counts them all).
pub const MAX_ATTEMPT_LOG: usize = 16;
/// Longest provider message kept per attempt.
pub const MAX_ATTEMPT_MESSAGE_CHARS: usize = 300;
/// Most skipped keys one entry lists.
pub const MAX_SKIPPED_KEYS: usize = 8;
/// Most bytes an attempt log may take as JSON, whatever its names hold: past it the skipped keys,
/// then the messages of all but the last entry are dropped (an event is one DynamoDB item and one
/// queue message, and ten events share a queue batch).
pub const MAX_ATTEMPT_LOG_BYTES: usize = 12 * 1024;

/// Adds `entry` to an attempt log, keeping it bounded: once full, the last entry is replaced, so
/// the log holds the first attempts and the latest.
pub fn push_attempt(log: &mut Vec<Attempt>, entry: Attempt) {
    if log.len() >= MAX_ATTEMPT_LOG {
        log.truncate(MAX_ATTEMPT_LOG - 1);
    }
    log.push(entry);
}

/// `log` within every bound of an event (see [`MAX_ATTEMPT_LOG`] and the others).
fn bounded_attempts(mut log: Vec<Attempt>) -> Vec<Attempt> {
    if log.len() > MAX_ATTEMPT_LOG {
        let last = log.pop();
        log.truncate(MAX_ATTEMPT_LOG - 1);
        log.extend(last);
    }
    for a in &mut log {
        for field in [&mut a.provider, &mut a.model] {
            clip_in_place(field, MAX_NAME_CHARS);
        }
        if let Some(key_id) = a.key_id.as_mut() {
            clip_in_place(key_id, MAX_NAME_CHARS);
        }
        clip_in_place(&mut a.outcome, MAX_CODE_CHARS);
        if let Some(message) = a.message.as_mut() {
            clip_in_place(message, MAX_ATTEMPT_MESSAGE_CHARS);
        }
        a.skipped.truncate(MAX_SKIPPED_KEYS);
        for skip in &mut a.skipped {
            clip_in_place(&mut skip.key_id, MAX_NAME_CHARS);
            clip_in_place(&mut skip.reason, MAX_CODE_CHARS);
        }
    }
    let size = |log: &[Attempt]| serde_json::to_vec(log).map_or(usize::MAX, |json| json.len());
    let earlier = log.len().saturating_sub(1);
    if size(&log) > MAX_ATTEMPT_LOG_BYTES {
        log[..earlier].iter_mut().for_each(|a| a.skipped.clear());
    }
    if size(&log) > MAX_ATTEMPT_LOG_BYTES {
        log[..earlier].iter_mut().for_each(|a| a.message = None);
    }
    while log.len() > 1 && size(&log) > MAX_ATTEMPT_LOG_BYTES {
        log.remove(log.len() - 2);
    }
    log
}

fn clip_in_place(field: &mut String, max: usize) {
    if field.chars().count() > max {
        *field = clip(field, max);
    }
}

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
            attempt_log: Vec::new(),
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
        self.attempt_log = bounded_attempts(std::mem::take(&mut self.attempt_log));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(key_id: &str, outcome: &str) -> Attempt {
        Attempt {
            provider: "p".into(),
            model: "m".into(),
            key_id: Some(key_id.into()),
            outcome: outcome.into(),
            http_status: Some(500),
            message: Some("boom".into()),
            latency_ms: 7,
            skipped: Vec::new(),
        }
    }

    #[test]
    fn an_event_written_before_the_attempt_log_still_reads_and_an_empty_log_is_not_written() {
        let mut json = serde_json::to_value(LogEvent::sample("r", 1)).expect("json");
        assert!(json.get("attempt_log").is_none(), "an empty log is left out: {json}");
        json.as_object_mut().expect("object").remove("key_attempts");
        let old: LogEvent = serde_json::from_value(json).expect("an older event");
        assert_eq!(old, LogEvent::sample("r", 1));
        assert_eq!(old.v, LOG_EVENT_VERSION);
    }

    #[test]
    fn the_attempt_log_reads_back_with_its_order_and_leaves_out_what_is_empty() {
        let no_key = Attempt {
            key_id: None,
            outcome: ATTEMPT_NO_KEY.into(),
            http_status: None,
            message: None,
            latency_ms: 0,
            skipped: vec![SkippedKey { key_id: "b".into(), reason: "rpm_limit".into() }],
            ..attempt("", "")
        };
        let e =
            LogEvent { attempt_log: vec![attempt("a", "upstream_server_error"), no_key], ..LogEvent::sample("r", 1) };
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(
            json["attempt_log"],
            serde_json::json!([
                {"provider": "p", "model": "m", "key_id": "a", "outcome": "upstream_server_error", "http_status": 500,
                 "message": "boom", "latency_ms": 7},
                {"provider": "p", "model": "m", "outcome": "no_key", "latency_ms": 0,
                 "skipped": [{"key_id": "b", "reason": "rpm_limit"}]},
            ])
        );
        assert_eq!(serde_json::from_value::<LogEvent>(json).expect("event"), e);
    }

    #[test]
    fn a_long_log_keeps_its_first_attempts_and_the_last() {
        let mut log = Vec::new();
        for i in 0..20 {
            push_attempt(&mut log, attempt(&format!("k{i}"), "upstream_server_error"));
        }
        let keys: Vec<String> = log.iter().filter_map(|a| a.key_id.clone()).collect();
        let mut expected: Vec<String> = (0..15).map(|i| format!("k{i}")).collect();
        expected.push("k19".into());
        assert_eq!(keys, expected);
        // An event from elsewhere is bounded the same way.
        let long = (0..20).map(|i| attempt(&format!("k{i}"), "ok")).collect();
        let e = LogEvent { attempt_log: long, ..LogEvent::sample("r", 1) }.bounded();
        let keys: Vec<String> = e.attempt_log.iter().filter_map(|a| a.key_id.clone()).collect();
        assert_eq!(keys, expected);
    }

    #[test]
    fn a_log_too_big_loses_skips_then_earlier_messages_but_keeps_the_last_entry_whole() {
        let skips = vec![SkippedKey { key_id: "k".repeat(128), reason: "rpm_limit".into() }; 8];
        let big = |i: usize| Attempt {
            message: Some("m".repeat(300)),
            skipped: skips.clone(),
            ..attempt(&format!("k{i}"), "x")
        };
        let e = LogEvent { attempt_log: (0..16).map(big).collect(), ..LogEvent::sample("r", 1) }.bounded();
        assert_eq!(e.attempt_log.len(), 16);
        assert!(serde_json::to_vec(&e.attempt_log).expect("json").len() <= MAX_ATTEMPT_LOG_BYTES);
        assert!(e.attempt_log[..15].iter().all(|a| a.skipped.is_empty()), "the earlier entries' skips go first");
        assert_eq!(
            e.attempt_log[..15].iter().filter(|a| a.message.is_some()).count(),
            15,
            "messages stay when they fit"
        );
        assert_eq!(e.attempt_log[15], big(15), "the last entry is whole");
    }
}
