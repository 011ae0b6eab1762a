//! The gateway's OpenAI `chat.completion` as an Anthropic `message`.
//!
//! Content blocks come in Anthropic's order: `thinking` (from `reasoning_content`), `text`, then
//! one `tool_use` per tool call with its JSON `arguments` parsed into `input`. Usage follows
//! Anthropic's split: `input_tokens` leaves out the cached part that `cache_read_input_tokens`
//! reports, where OpenAI's `prompt_tokens` counts both.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{message_id, stop_reason};
use crate::error::ApiError;

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<OutMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct OutMessage {
    /// A string, or (rarely) OpenAI text parts.
    #[serde(default)]
    content: Option<Value>,
    /// DeepSeek's (and Maestro's Anthropic provider's) name for thinking text.
    #[serde(default)]
    reasoning_content: Option<String>,
    /// The name some OpenAI-compatible servers (vLLM, OpenRouter) use instead.
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Deserialize)]
struct ToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<Function>,
}

#[derive(Deserialize)]
struct Function {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// OpenAI's usage, with DeepSeek's name for cache reads.
#[derive(Deserialize, Default, Clone, Copy)]
pub(super) struct OpenAiUsage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    pub prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Deserialize, Default, Clone, Copy)]
pub(super) struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

impl OpenAiUsage {
    pub(super) fn cached(&self) -> u64 {
        self.prompt_cache_hit_tokens.or(self.prompt_tokens_details.and_then(|d| d.cached_tokens)).unwrap_or(0)
    }

    /// Input tokens the way Anthropic counts them: without the cached ones.
    pub(super) fn input(&self) -> u64 {
        self.prompt_tokens.unwrap_or(0).saturating_sub(self.cached())
    }
}

#[derive(Serialize)]
struct Message {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: String,
    content: Vec<Block>,
    stop_reason: &'static str,
    stop_sequence: Option<String>,
    usage: AnthropicUsage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    /// No signature can be had from another provider; the field is there because Anthropic's
    /// SDKs expect it.
    Thinking {
        thinking: String,
        signature: String,
    },
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

#[derive(Serialize)]
struct AnthropicUsage {
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
}

/// A tool call's JSON `arguments` as Anthropic's `input` object. Models do now and then emit
/// something that is not a JSON object; that is kept under `_raw_arguments` (and logged) rather
/// than failing an answer that was paid for.
pub(super) fn tool_input(arguments: &str) -> Value {
    match arguments.trim() {
        "" => Value::Object(Map::new()),
        text => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(input)) => Value::Object(input),
            _ => {
                tracing::warn!(chars = text.len(), "a tool call's arguments are not a JSON object");
                let mut input = Map::new();
                input.insert("_raw_arguments".into(), Value::String(text.to_string()));
                Value::Object(input)
            }
        },
    }
}

/// Rewrites a `chat.completion` body as an Anthropic `message` body. `fallback_model` names the
/// model when the completion does not.
pub fn to_message(completion: &[u8], fallback_model: &str) -> Result<Value, ApiError> {
    let completion: Completion = serde_json::from_slice(completion).map_err(|e| {
        tracing::error!(error = %e, "the gateway's completion could not be read for the Messages endpoint");
        ApiError::bad_gateway("upstream_malformed_response", "The provider's answer could not be translated.")
    })?;
    let choice = completion.choices.into_iter().next();
    let finish_reason = choice.as_ref().and_then(|c| c.finish_reason.clone());
    let mut content = Vec::new();
    if let Some(message) = choice.and_then(|c| c.message) {
        if let Some(thinking) = message.reasoning_content.or(message.reasoning).filter(|t| !t.is_empty()) {
            content.push(Block::Thinking { thinking, signature: String::new() });
        }
        let text = match message.content {
            Some(Value::String(text)) => text,
            Some(Value::Array(parts)) => {
                parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
            }
            _ => String::new(),
        };
        match (text.is_empty(), message.refusal.filter(|r| !r.is_empty())) {
            (false, _) => content.push(Block::Text { text }),
            (true, Some(refusal)) => content.push(Block::Text { text: refusal }),
            (true, None) => {}
        }
        for (i, call) in message.tool_calls.unwrap_or_default().into_iter().enumerate() {
            let function = call.function.unwrap_or(Function { name: None, arguments: None });
            content.push(Block::ToolUse {
                id: call.id.filter(|id| !id.is_empty()).unwrap_or_else(|| format!("toolu_maestro_{i}")),
                name: function.name.unwrap_or_default(),
                input: tool_input(function.arguments.as_deref().unwrap_or("")),
            });
        }
    }
    let usage = completion.usage.unwrap_or_default();
    let message = Message {
        id: message_id(completion.id.as_deref()),
        kind: "message",
        role: "assistant",
        model: completion.model.filter(|m| !m.is_empty()).unwrap_or_else(|| fallback_model.to_string()),
        content,
        stop_reason: stop_reason(finish_reason.as_deref()),
        stop_sequence: None,
        usage: AnthropicUsage {
            input_tokens: usage.input(),
            output_tokens: usage.completion_tokens.unwrap_or(0),
            cache_read_input_tokens: usage.cached(),
        },
    };
    serde_json::to_value(message).map_err(|e| {
        tracing::error!(error = %e, "could not encode a message");
        ApiError::internal()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn translate(fixture: &str) -> Value {
        to_message(fixture.as_bytes(), "fallback").unwrap()
    }

    #[test]
    fn the_recorded_openai_completion_becomes_a_text_message() {
        let m = translate(include_str!("../../tests/fixtures/openai/chat_completion.json"));
        assert_eq!(m["id"], "msg_chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
        assert_eq!(
            (m["type"].as_str(), m["role"].as_str(), m["model"].as_str()),
            (Some("message"), Some("assistant"), Some("gpt-5.4"))
        );
        assert_eq!(m["content"], json!([{"type": "text", "text": "Hello! How can I assist you today?"}]));
        assert_eq!(m["stop_reason"], "end_turn");
        assert!(m["stop_sequence"].is_null());
        assert_eq!(m["usage"], json!({"input_tokens": 19, "output_tokens": 10, "cache_read_input_tokens": 0}));
    }

    #[test]
    fn the_recorded_tool_call_becomes_a_tool_use_block_with_parsed_input() {
        let m = translate(include_str!("../../tests/fixtures/openai/chat_completion_tool_call.json"));
        assert_eq!(
            m["content"],
            json!([{"type": "tool_use", "id": "call_abc123", "name": "get_current_weather", "input": {"location": "Boston, MA"}}])
        );
        assert_eq!(m["stop_reason"], "tool_use");
        let recorded = translate(include_str!("../../tests/fixtures/openai/chat_completion_tool_call_recorded.json"));
        assert_eq!(recorded["content"][0]["input"], json!({}));
        assert_eq!(recorded["usage"]["input_tokens"], 129);
    }

    #[test]
    fn deepseek_reasoning_and_cache_hits_become_thinking_and_cache_reads() {
        // The recorded DeepSeek answer: reasoning_content, text and a tool call; 563 prompt
        // tokens of which 512 were cache hits.
        let m = translate(include_str!("../../tests/fixtures/deepseek/chat_completion.json"));
        let content = m["content"].as_array().unwrap();
        assert_eq!(
            content.iter().map(|b| b["type"].as_str().unwrap()).collect::<Vec<_>>(),
            ["thinking", "text", "tool_use"]
        );
        assert!(content[0]["thinking"].as_str().unwrap().starts_with("The user wants to play a dice game."));
        assert_eq!(content[0]["signature"], "");
        assert_eq!(content[1]["text"], "Let me load the dice rolling capability!");
        assert_eq!(content[2]["input"], json!({"id": "DICE_ROLL"}));
        assert_eq!(m["usage"], json!({"input_tokens": 51, "output_tokens": 116, "cache_read_input_tokens": 512}));
        assert_eq!(m["model"], "deepseek-v4-flash");
    }

    #[test]
    fn finish_reasons_refusals_and_odd_arguments() {
        let body = json!({"id": "x", "choices": [{"message": {"role": "assistant", "content": null, "refusal": "I can't help with that.",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "[1,2]"}}]}, "finish_reason": "content_filter"}]});
        let m = to_message(body.to_string().as_bytes(), "asked-model").unwrap();
        assert_eq!(m["model"], "asked-model");
        assert_eq!(m["stop_reason"], "refusal");
        assert_eq!(m["content"][0], json!({"type": "text", "text": "I can't help with that."}));
        assert_eq!(m["content"][1]["input"], json!({"_raw_arguments": "[1,2]"}));
        let cut = json!({"choices": [{"message": {"content": "abc"}, "finish_reason": "length"}]});
        assert_eq!(to_message(cut.to_string().as_bytes(), "m").unwrap()["stop_reason"], "max_tokens");
        assert_eq!(to_message(b"<html>", "m").unwrap_err().status(), 502);
    }
}
