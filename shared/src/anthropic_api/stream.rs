//! The gateway's OpenAI SSE body (`data: {chunk}` … `data: [DONE]`) as Anthropic's event stream:
//!
//! ```text
//! event: message_start        {"type":"message_start","message":{id, model, usage: {input_tokens (an estimate), …}}}
//! event: content_block_start  {"index":0,"content_block":{"type":"thinking"|"text"|"tool_use",…}}
//! event: content_block_delta  thinking_delta | text_delta | input_json_delta
//! event: content_block_stop
//! …                           one block per run of the same kind; one per tool call
//! event: message_delta        {"delta":{"stop_reason",…},"usage":{output_tokens, input_tokens, cache_read_input_tokens}}
//! event: message_stop
//! ```
//!
//! A failure the gateway reports in-band after the first byte (`data: {"error":…}`) becomes
//! Anthropic's `event: error`. The adapter reads the inner body to its end before ending its
//! own, so the gateway records the call before the caller's stream closes, and a caller who
//! hangs up drops the inner body with it (the gateway records that too).

use axum::body::Body;
use bytes::Bytes;
use serde_json::{Value, json};

use super::response::OpenAiUsage;
use super::{message_id, stop_reason};
use crate::providers::sse::SseEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Thinking,
    Text,
    Tool,
}

/// The state of one translated stream.
pub struct EventTranslator {
    fallback_model: String,
    input_estimate: u64,
    started: bool,
    finished: bool,
    next_index: u64,
    open: Option<(Kind, u64)>,
    /// OpenAI tool-call index → Anthropic content-block index.
    tools: Vec<(u64, u64)>,
    finish_reason: Option<String>,
    usage: Option<OpenAiUsage>,
    chars: u64,
}

/// One Anthropic SSE event.
fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

impl EventTranslator {
    /// `fallback_model` names the model until the first chunk does; `input_estimate` is the
    /// `input_tokens` of `message_start` (the real count comes with `message_delta`).
    pub fn new(fallback_model: &str, input_estimate: u64) -> Self {
        Self {
            fallback_model: fallback_model.to_string(),
            input_estimate,
            started: false,
            finished: false,
            next_index: 0,
            open: None,
            tools: Vec::new(),
            finish_reason: None,
            usage: None,
            chars: 0,
        }
    }

    /// Whether `message_stop` or `error` has been sent.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The Anthropic events for one event of the OpenAI stream.
    pub fn on_event(&mut self, sse: &SseEvent) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        let data = sse.data.trim();
        if data.is_empty() {
            return out;
        }
        if data == "[DONE]" {
            self.finish(&mut out);
            return out;
        }
        let chunk: Value = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::warn!(error = %e, "a chunk of the gateway's stream is not JSON");
                self.fail("api_error", "The provider's stream could not be translated.", &mut out);
                return out;
            }
        };
        if let Some(error) = chunk.get("error").filter(|e| e.is_object()) {
            let code = error.get("code").and_then(Value::as_str).unwrap_or("");
            let kind = match code {
                "upstream_overloaded" => "overloaded_error",
                "upstream_rate_limited" => "rate_limit_error",
                "upstream_timeout" => "timeout_error",
                "invalid_request" => "invalid_request_error",
                _ => "api_error",
            };
            let message = error.get("message").and_then(Value::as_str).unwrap_or("The provider's stream failed.");
            self.fail(kind, message, &mut out);
            return out;
        }
        self.on_chunk(&chunk, &mut out);
        out
    }

    /// The events to send when the gateway's body ended: nothing after a complete stream, an
    /// `error` event for one that stopped short.
    pub fn on_end(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        if !self.finished {
            self.fail("api_error", "The stream ended before it was complete.", &mut out);
        }
        out
    }

    fn start(&mut self, chunk: Option<&Value>, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let field = |name: &str| chunk.and_then(|c| c.get(name)).and_then(Value::as_str).filter(|v| !v.is_empty());
        let model = field("model").unwrap_or(&self.fallback_model);
        let message = json!({
            "id": message_id(field("id")),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": self.input_estimate, "output_tokens": 0},
        });
        out.push(event("message_start", &json!({"type": "message_start", "message": message})));
    }

    fn close(&mut self, out: &mut Vec<Bytes>) {
        if let Some((_, index)) = self.open.take() {
            out.push(event("content_block_stop", &json!({"type": "content_block_stop", "index": index})));
        }
    }

    /// Opens a new content block (closing the one before) and returns its index.
    fn open(&mut self, kind: Kind, block: Value, out: &mut Vec<Bytes>) -> u64 {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((kind, index));
        out.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        index
    }

    /// The open block of `kind`, opened when another kind (or none) is open.
    fn ensure(&mut self, kind: Kind, out: &mut Vec<Bytes>) -> u64 {
        match self.open {
            Some((open, index)) if open == kind => index,
            _ => {
                let block = match kind {
                    Kind::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
                    _ => json!({"type": "text", "text": ""}),
                };
                self.open(kind, block, out)
            }
        }
    }

    fn delta(index: u64, delta: Value) -> Bytes {
        event("content_block_delta", &json!({"type": "content_block_delta", "index": index, "delta": delta}))
    }

    fn on_chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        self.start(Some(chunk), out);
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object())
            && let Ok(usage) = serde_json::from_value::<OpenAiUsage>(usage.clone())
        {
            self.usage = Some(usage);
        }
        // Maestro asks for one choice; others (n > 1) have no place in Anthropic's shape.
        let Some(choice) = chunk.get("choices").and_then(Value::as_array).and_then(|c| c.first()) else { return };
        if let Some(delta) = choice.get("delta") {
            let text = |name: &str| delta.get(name).and_then(Value::as_str).filter(|t| !t.is_empty());
            if let Some(thinking) = text("reasoning_content").or_else(|| text("reasoning")) {
                self.chars += thinking.chars().count() as u64;
                let index = self.ensure(Kind::Thinking, out);
                out.push(Self::delta(index, json!({"type": "thinking_delta", "thinking": thinking})));
            }
            for piece in [text("content"), text("refusal")].into_iter().flatten() {
                self.chars += piece.chars().count() as u64;
                let index = self.ensure(Kind::Text, out);
                out.push(Self::delta(index, json!({"type": "text_delta", "text": piece})));
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for (position, call) in calls.iter().enumerate() {
                    self.on_tool_call(call, position as u64, out);
                }
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
    }

    /// A tool-call delta: the first for an index opens a `tool_use` block, its argument pieces
    /// are `input_json_delta`s.
    fn on_tool_call(&mut self, call: &Value, position: u64, out: &mut Vec<Bytes>) {
        let openai_index = call.get("index").and_then(Value::as_u64).unwrap_or(position);
        let field = |path: &[&str]| path.iter().try_fold(call, |v, k| v.get(*k)).and_then(Value::as_str);
        let known = self.tools.iter().find(|(i, _)| *i == openai_index).map(|(_, b)| *b);
        let index = match known {
            Some(index) => index,
            None => {
                let id = field(&["id"])
                    .filter(|id| !id.is_empty())
                    .map_or_else(|| format!("toolu_maestro_{openai_index}"), str::to_string);
                let name = field(&["function", "name"]).unwrap_or("");
                let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                let index = self.open(Kind::Tool, block, out);
                self.tools.push((openai_index, index));
                index
            }
        };
        if let Some(arguments) = field(&["function", "arguments"]).filter(|a| !a.is_empty()) {
            self.chars += arguments.chars().count() as u64;
            out.push(Self::delta(index, json!({"type": "input_json_delta", "partial_json": arguments})));
        }
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) {
        self.start(None, out);
        self.close(out);
        let usage = match self.usage {
            Some(u) => json!({
                "input_tokens": u.input(),
                "output_tokens": u.completion_tokens.unwrap_or(0),
                "cache_read_input_tokens": u.cached(),
            }),
            // A provider that reported no usage: the gateway's own estimate rule, ⌈chars / 4⌉.
            None => json!({"output_tokens": self.chars.div_ceil(4)}),
        };
        let delta = json!({"stop_reason": stop_reason(self.finish_reason.as_deref()), "stop_sequence": null});
        out.push(event("message_delta", &json!({"type": "message_delta", "delta": delta, "usage": usage})));
        out.push(event("message_stop", &json!({"type": "message_stop"})));
        self.finished = true;
    }

    fn fail(&mut self, kind: &str, message: &str, out: &mut Vec<Bytes>) {
        out.push(event("error", &json!({"type": "error", "error": {"type": kind, "message": message}})));
        self.finished = true;
    }
}

/// Wraps the gateway's OpenAI SSE body as an Anthropic event-stream body.
pub fn anthropic_events(inner: Body, fallback_model: &str, input_estimate: u64) -> Body {
    crate::reframe::reframed(inner, EventTranslator::new(fallback_model, input_estimate))
}

impl crate::reframe::Reframer for EventTranslator {
    fn on_event(&mut self, sse: &SseEvent) -> Vec<Bytes> {
        EventTranslator::on_event(self, sse)
    }

    fn on_end(&mut self) -> Vec<Bytes> {
        EventTranslator::on_end(self)
    }
}

#[cfg(test)]
mod tests {
    use super::super::response::tool_input;
    use super::*;
    use crate::providers::sse::SseDecoder;
    use std::convert::Infallible;

    /// Runs an OpenAI SSE text through the translator; returns `(event name, data)` pairs.
    fn translate(sse: &str, model: &str) -> Vec<(String, Value)> {
        let mut decoder = SseDecoder::default();
        decoder.push(sse.as_bytes());
        let mut t = EventTranslator::new(model, 7);
        let mut frames = Vec::new();
        while let Some(event) = decoder.next_event() {
            frames.extend(t.on_event(&event));
        }
        frames.extend(t.on_end());
        parse(&frames.concat())
    }

    fn parse(bytes: &[u8]) -> Vec<(String, Value)> {
        let mut decoder = SseDecoder::default();
        decoder.push(bytes);
        let mut out = Vec::new();
        while let Some(e) = decoder.next_event() {
            let data: Value = serde_json::from_str(&e.data).unwrap();
            let name = e.event.unwrap();
            assert_eq!(data["type"], name.as_str(), "the event line names the data's type");
            out.push((name, data));
        }
        out
    }

    fn names(events: &[(String, Value)]) -> Vec<&str> {
        events.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn the_recorded_openai_stream_becomes_anthropics_events() {
        let events = translate(include_str!("../../tests/fixtures/openai/chat_stream.sse"), "asked");
        assert_eq!(
            names(&events),
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let start = &events[0].1["message"];
        assert_eq!(start["id"], "msg_chatcmpl-E3sGF577gSw6Gdwhv6IS5eC14yUOO");
        assert_eq!(start["model"], "gpt-5.1-2025-11-13");
        assert_eq!(start["usage"]["input_tokens"], 7);
        assert_eq!(events[1].1["content_block"], json!({"type": "text", "text": ""}));
        assert_eq!(events[2].1["delta"], json!({"type": "text_delta", "text": "six"}));
        assert_eq!(events[4].1["delta"]["stop_reason"], "end_turn");
        assert_eq!(
            events[4].1["usage"],
            json!({"input_tokens": 33, "output_tokens": 10, "cache_read_input_tokens": 0})
        );
    }

    #[test]
    fn the_recorded_tool_call_stream_becomes_a_tool_use_block() {
        let events = translate(include_str!("../../tests/fixtures/openai/chat_stream_tool_call.sse"), "asked");
        let block = events.iter().find(|(n, _)| n == "content_block_start").unwrap();
        assert_eq!(
            block.1["content_block"],
            json!({"type": "tool_use", "id": "call_ZR5UUuTt3pf61kjwAJIYdVMj", "name": "get_capital", "input": {}})
        );
        let json: String = events
            .iter()
            .filter(|(n, d)| n == "content_block_delta" && d["delta"]["type"] == "input_json_delta")
            .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), json!({"country": "UK"}));
        let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
        assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
        assert_eq!(delta.1["usage"]["output_tokens"], 15);
        assert_eq!(names(&events).last(), Some(&"message_stop"));
    }

    #[test]
    fn deepseek_reasoning_then_text_are_two_blocks() {
        // The recorded DeepSeek stream: reasoning_content deltas, then content, usage on the last
        // chunk with 0 cache hits.
        let events = translate(include_str!("../../tests/fixtures/deepseek/stream.sse"), "asked");
        let starts: Vec<&Value> = events.iter().filter(|(n, _)| n == "content_block_start").map(|(_, d)| d).collect();
        assert_eq!(starts.len(), 2);
        assert_eq!(
            (starts[0]["index"].as_u64(), starts[0]["content_block"]["type"].as_str()),
            (Some(0), Some("thinking"))
        );
        assert_eq!((starts[1]["index"].as_u64(), starts[1]["content_block"]["type"].as_str()), (Some(1), Some("text")));
        let stops = events.iter().filter(|(n, _)| n == "content_block_stop").count();
        assert_eq!(stops, 2);
        let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
        assert!(delta.1["usage"]["output_tokens"].as_u64().unwrap() > 0);
    }

    #[test]
    fn an_in_band_error_becomes_an_error_event_and_ends_the_stream() {
        let sse = concat!(
            "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
            "data: {\"error\":{\"message\":\"The provider's stream failed: upstream_overloaded\",\"type\":\"upstream_error\",\"code\":\"upstream_overloaded\",\"param\":null}}\n\n",
        );
        let events = translate(sse, "m");
        assert_eq!(names(&events), ["message_start", "content_block_start", "content_block_delta", "error"]);
        assert_eq!(events[3].1["error"]["type"], "overloaded_error");
        // A body that stops without [DONE] or an error is an error too.
        let cut = translate("data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n", "m");
        assert_eq!(cut.last().unwrap().0, "error");
        assert_eq!(cut[0].1["message"]["model"], "m");
    }

    #[test]
    fn parallel_tool_calls_get_one_block_each_and_no_usage_is_estimated() {
        let chunk = |delta: Value, finish: Value| {
            format!(
                "data: {}\n\n",
                json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            )
        };
        let sse = [
            chunk(json!({"role": "assistant", "content": "Two calls."}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 1, "id": "b", "type": "function", "function": {"name": "g", "arguments": ""}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}), Value::Null),
            chunk(json!({}), json!("tool_calls")),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        let events = translate(&sse, "m");
        let starts: Vec<Value> = events
            .iter()
            .filter(|(n, _)| n == "content_block_start")
            .map(|(_, d)| d["content_block"].clone())
            .collect();
        assert_eq!(
            starts.iter().map(|b| b["type"].as_str().unwrap()).collect::<Vec<_>>(),
            ["text", "tool_use", "tool_use"]
        );
        assert_eq!((starts[1]["id"].as_str(), starts[2]["name"].as_str()), (Some("a"), Some("g")));
        let deltas: Vec<(u64, String)> = events
            .iter()
            .filter(|(n, d)| n == "content_block_delta" && d["delta"]["type"] == "input_json_delta")
            .map(|(_, d)| (d["index"].as_u64().unwrap(), d["delta"]["partial_json"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(deltas, [(1, "{\"x\":1}".to_string()), (2, "{}".to_string())]);
        let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
        assert_eq!(delta.1["usage"], json!({"output_tokens": 5}), "⌈(10 + 7 + 2) / 4⌉ without reported usage");
        assert_eq!(tool_input("{\"x\":1}"), json!({"x": 1}));
    }

    #[tokio::test]
    async fn the_body_adapter_translates_chunks_split_anywhere() {
        let recorded = include_str!("../../tests/fixtures/openai/chat_stream.sse");
        let pieces: Vec<Result<Bytes, Infallible>> =
            recorded.as_bytes().chunks(37).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let inner = Body::from_stream(futures_util::stream::iter(pieces));
        let body = anthropic_events(inner, "asked", 3);
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let events = parse(&bytes);
        assert_eq!(names(&events).first(), Some(&"message_start"));
        assert_eq!(names(&events).last(), Some(&"message_stop"));
        let text: String = events.iter().filter_map(|(_, d)| d["delta"]["text"].as_str()).collect();
        assert_eq!(text, "six");
    }
}
