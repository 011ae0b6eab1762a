//! OpenAI's Responses API as a front door: `POST /v1/responses` for callers that speak it (the
//! OpenAI SDKs' `client.responses.create`, agent frameworks), served by the same gateway as the
//! chat completions, statelessly.
//!
//! The gateway works in OpenAI's chat shape end to end, so this module only translates at the
//! edge, as `anthropic_api` does for `/v1/messages`: [`request`] turns a Responses request into a
//! [`ChatRequest`](crate::domain::ChatRequest), [`response`] turns the `chat.completion` the
//! gateway answers into a `response` object, [`stream`] turns the gateway's chat SSE body into
//! the Responses event stream. Every provider, OpenAI's included, is reached through that one
//! path, so keys, limits, retries, fallback, routes, the call log, cost and credits apply
//! unchanged. Errors keep OpenAI's error shape (`ApiError`).
//!
//! Ids: a response is `resp_<the call's request id>` (so `resp_…` finds the call in the call
//! log as `req_…`); its output items are `msg_…`, `fc_…` and `rs_…` built from it; a function
//! call's `call_id` is the provider's own tool-call id.

pub mod request;
pub mod response;
pub mod stream;

use serde::Deserialize;
use serde_json::{Value, json};

pub use request::{Echo, ResponsesRequest, to_chat_request};
pub use response::to_response;
pub use stream::responses_events;

/// The response id of the call with this request id (`req_x` → `resp_x`).
pub fn response_id(request_id: &str) -> String {
    format!("resp_{}", request_id.strip_prefix("req_").unwrap_or(request_id))
}

/// An output item's id: `prefix` (`msg`, `fc`, `rs`), the response's own part, the item's index.
pub(crate) fn item_id(prefix: &str, response_id: &str, index: usize) -> String {
    format!("{prefix}_{}_{index}", response_id.strip_prefix("resp_").unwrap_or(response_id))
}

/// How a response ended, from the chat `finish_reason`: `(status, incomplete_details)`.
pub(crate) fn ending(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        // "stop", "tool_calls" and anything new.
        _ => ("completed", Value::Null),
    }
}

/// Chat usage, with DeepSeek's name for cache reads.
#[derive(Debug, Deserialize, Default, Clone, Copy)]
pub(crate) struct ChatUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    prompt_cache_hit_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl ChatUsage {
    /// A chat `usage` object, if it is one.
    pub(crate) fn of(usage: Option<&Value>) -> Option<Self> {
        usage.filter(|u| u.is_object()).and_then(|u| serde_json::from_value(u.clone()).ok())
    }

    /// Usage as the Responses API reports it: `input_tokens` counts the cached ones too, as
    /// chat's `prompt_tokens` does.
    pub(crate) fn responses(&self) -> Value {
        let input = self.prompt_tokens.unwrap_or(0);
        let output = self.completion_tokens.unwrap_or(0);
        let cached = self.prompt_cache_hit_tokens.or(self.prompt_tokens_details.and_then(|d| d.cached_tokens));
        let reasoning = self.completion_tokens_details.and_then(|d| d.reasoning_tokens);
        json!({
            "input_tokens": input,
            "input_tokens_details": {"cached_tokens": cached.unwrap_or(0)},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning.unwrap_or(0)},
            "total_tokens": self.total_tokens.filter(|t| *t >= input + output).unwrap_or(input + output),
        })
    }

    /// Usage Maestro estimated for a provider that reported none.
    pub(crate) fn estimated(input: u64, output: u64) -> Self {
        Self { prompt_tokens: Some(input), completion_tokens: Some(output), ..Self::default() }
    }
}

/// The parts of a `response` object that change as it is built.
pub(crate) struct State<'a> {
    pub id: &'a str,
    pub created_at: u64,
    pub model: &'a str,
    /// `in_progress`, `completed`, `incomplete` or `failed`.
    pub status: &'a str,
    pub incomplete_details: Value,
    pub error: Value,
    pub output: Vec<Value>,
    pub usage: Value,
}

/// A whole `response` object: its state and what it echoes of the request.
pub(crate) fn response_object(state: State<'_>, echo: &Echo) -> Value {
    let completed_at = (state.status == "completed").then(crate::time::now_ms).map(|ms| ms / 1000);
    let mut object = json!({
        "id": state.id,
        "object": "response",
        "created_at": state.created_at,
        "status": state.status,
        "background": false,
        "completed_at": completed_at,
        "error": state.error,
        "incomplete_details": state.incomplete_details,
        "instructions": echo.instructions,
        "max_output_tokens": echo.max_output_tokens,
        "model": state.model,
        "output": state.output,
        "parallel_tool_calls": echo.parallel_tool_calls,
        "previous_response_id": null,
        "reasoning": echo.reasoning,
        // Nothing is stored, whatever the request's `store` said.
        "store": false,
        "temperature": echo.temperature,
        "text": echo.text,
        "tool_choice": echo.tool_choice,
        "tools": echo.tools,
        "top_p": echo.top_p,
        "truncation": "disabled",
        "metadata": echo.metadata,
    });
    // An object when present: left out while a stream is in progress (or no usage is known).
    if !state.usage.is_null() {
        object["usage"] = state.usage;
    }
    // A string when present (OpenAI's document has no null here).
    if let Some(user) = &echo.user {
        object["user"] = json!(user);
    }
    object
}

/// Unix seconds now.
pub(crate) fn now_secs() -> u64 {
    u64::try_from(crate::time::now_ms() / 1000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_request_id() {
        assert_eq!(response_id("req_0190abc"), "resp_0190abc");
        assert_eq!(item_id("msg", "resp_0190abc", 2), "msg_0190abc_2");
        assert_eq!(item_id("fc", "resp_0190abc", 0), "fc_0190abc_0");
    }

    #[test]
    fn usage_takes_the_responses_names() {
        let deepseek = json!({"prompt_tokens": 563, "completion_tokens": 116, "total_tokens": 679,
            "prompt_cache_hit_tokens": 512, "completion_tokens_details": {"reasoning_tokens": 80}});
        assert_eq!(
            ChatUsage::of(Some(&deepseek)).unwrap().responses(),
            json!({"input_tokens": 563, "input_tokens_details": {"cached_tokens": 512}, "output_tokens": 116,
                "output_tokens_details": {"reasoning_tokens": 80}, "total_tokens": 679})
        );
        let openai =
            json!({"prompt_tokens": 19, "completion_tokens": 10, "prompt_tokens_details": {"cached_tokens": 3}});
        let usage = ChatUsage::of(Some(&openai)).unwrap().responses();
        assert_eq!(
            (usage["input_tokens_details"]["cached_tokens"].as_u64(), usage["total_tokens"].as_u64()),
            (Some(3), Some(29))
        );
        assert!(ChatUsage::of(Some(&json!(null))).is_none());
    }

    #[test]
    fn finish_reasons_decide_the_status() {
        assert_eq!(ending(Some("stop")), ("completed", Value::Null));
        assert_eq!(ending(Some("tool_calls")), ("completed", Value::Null));
        assert_eq!(ending(Some("length")).0, "incomplete");
        assert_eq!(ending(Some("content_filter")).1, json!({"reason": "content_filter"}));
    }
}
