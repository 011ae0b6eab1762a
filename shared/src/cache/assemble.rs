//! A stored answer is one OpenAI `chat.completion`. A streamed miss is assembled into one from
//! its chunks; a streamed hit is replayed from one as chunks, the way a provider would stream it.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::domain::Usage;

/// What the chunks of one choice said so far.
#[derive(Debug, Default)]
struct ChoiceSoFar {
    content: String,
    reasoning: String,
    refusal: String,
    /// By the chunks' `index`: id, function name, arguments so far.
    tool_calls: BTreeMap<u64, (String, String, String)>,
    finish_reason: Option<Value>,
}

/// Collects the frames of an OpenAI-shaped chat stream (`data: {chunk}` lines) into the
/// completion a plain call would have answered.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    id: Option<Value>,
    created: Option<Value>,
    model: Option<Value>,
    system_fingerprint: Option<Value>,
    choices: BTreeMap<u64, ChoiceSoFar>,
    /// A frame that was not a chunk (an in-band error): the stream is not worth storing.
    spoiled: bool,
}

impl StreamAssembler {
    /// Takes one frame as the caller got it (one or more SSE events).
    pub fn feed(&mut self, frame: &[u8]) {
        let Ok(text) = std::str::from_utf8(frame) else {
            self.spoiled = true;
            return;
        };
        for data in text.lines().filter_map(|line| line.strip_prefix("data:")).map(str::trim) {
            if data == "[DONE]" || data.is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(data) {
                Ok(chunk) if chunk.get("error").is_none() => self.take(&chunk),
                _ => self.spoiled = true,
            }
        }
    }

    fn take(&mut self, chunk: &Value) {
        for (field, slot) in [
            ("id", &mut self.id),
            ("created", &mut self.created),
            ("model", &mut self.model),
            ("system_fingerprint", &mut self.system_fingerprint),
        ] {
            if slot.is_none() {
                *slot = chunk.get(field).filter(|v| !v.is_null()).cloned();
            }
        }
        for choice in chunk.get("choices").and_then(Value::as_array).into_iter().flatten() {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let so_far = self.choices.entry(index).or_default();
            let delta = choice.get("delta").unwrap_or(&Value::Null);
            let text = |field: &str| delta.get(field).and_then(Value::as_str);
            so_far.content.push_str(text("content").unwrap_or(""));
            so_far.reasoning.push_str(text("reasoning_content").unwrap_or(""));
            so_far.refusal.push_str(text("refusal").unwrap_or(""));
            for call in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                let at = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                let entry = so_far.tool_calls.entry(at).or_default();
                if let Some(id) = call.get("id").and_then(Value::as_str) {
                    entry.0 = id.to_string();
                }
                let function = call.get("function").unwrap_or(&Value::Null);
                entry.1.push_str(function.get("name").and_then(Value::as_str).unwrap_or(""));
                entry.2.push_str(function.get("arguments").and_then(Value::as_str).unwrap_or(""));
            }
            if let Some(reason) = choice.get("finish_reason").filter(|r| !r.is_null()) {
                so_far.finish_reason = Some(reason.clone());
            }
        }
    }

    /// The completion, with `usage` as the call was billed; `None` when the stream held an error
    /// or no choice ended.
    pub fn finish(self, usage: &Usage) -> Option<Bytes> {
        if self.spoiled || self.choices.is_empty() || self.choices.values().any(|c| c.finish_reason.is_none()) {
            return None;
        }
        let choices: Vec<Value> = self
            .choices
            .into_iter()
            .map(|(index, c)| {
                let mut message = Map::new();
                message.insert("role".into(), json!("assistant"));
                let content = (!c.content.is_empty() || c.tool_calls.is_empty()).then_some(c.content);
                message.insert("content".into(), json!(content));
                if !c.reasoning.is_empty() {
                    message.insert("reasoning_content".into(), json!(c.reasoning));
                }
                if !c.refusal.is_empty() {
                    message.insert("refusal".into(), json!(c.refusal));
                }
                if !c.tool_calls.is_empty() {
                    let calls: Vec<Value> = (c.tool_calls.into_values())
                        .map(|(id, name, arguments)| {
                            json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
                        })
                        .collect();
                    message.insert("tool_calls".into(), Value::Array(calls));
                }
                json!({"index": index, "message": message, "finish_reason": c.finish_reason, "logprobs": null})
            })
            .collect();
        let mut completion = json!({
            "id": self.id.unwrap_or_else(|| json!("chatcmpl-cached")),
            "object": "chat.completion",
            "created": self.created.unwrap_or(json!(0)),
            "model": self.model.unwrap_or(Value::Null),
            "choices": choices,
            "usage": usage_json(usage),
        });
        if let Some(fingerprint) = self.system_fingerprint {
            completion["system_fingerprint"] = fingerprint;
        }
        serde_json::to_vec(&completion).ok().map(Bytes::from)
    }
}

/// OpenAI's usage object for `usage`.
fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total(),
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    })
}

/// A stored completion as the frames of a stream: the role, each choice's text (and reasoning,
/// refusal, tool calls) in one delta, its finish, the usage chunk when the caller asked for it
/// (`stream_options.include_usage`), and `[DONE]`. `None` when `completion` is not one.
pub fn replay_as_stream(completion: &[u8], include_usage: bool) -> Option<Vec<Bytes>> {
    let stored: Value = serde_json::from_slice(completion).ok()?;
    let choices = stored.get("choices")?.as_array()?;
    let chunk = |choices: Value| {
        let mut c = json!({
            "id": stored.get("id"),
            "object": "chat.completion.chunk",
            "created": stored.get("created"),
            "model": stored.get("model"),
            "choices": choices,
        });
        if let Some(fingerprint) = stored.get("system_fingerprint") {
            c["system_fingerprint"] = fingerprint.clone();
        }
        Bytes::from(format!("data: {c}\n\n"))
    };
    let mut frames = Vec::with_capacity(choices.len() * 3 + 2);
    for (i, choice) in choices.iter().enumerate() {
        let index = choice.get("index").cloned().unwrap_or(json!(i));
        let message = choice.get("message")?;
        let mut delta = Map::new();
        delta.insert("role".into(), json!("assistant"));
        delta.insert("content".into(), json!(""));
        frames.push(chunk(json!([{"index": index, "delta": delta, "finish_reason": null}])));
        let mut said = Map::new();
        for field in ["content", "reasoning_content", "refusal"] {
            if let Some(text) = message.get(field).filter(|t| t.as_str().is_some_and(|s| !s.is_empty())) {
                said.insert(field.into(), text.clone());
            }
        }
        if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(at, call)| {
                    json!({"index": at, "id": call.get("id"), "type": "function", "function": call.get("function")})
                })
                .collect();
            said.insert("tool_calls".into(), Value::Array(calls));
        }
        if !said.is_empty() {
            frames.push(chunk(json!([{"index": index, "delta": said, "finish_reason": null}])));
        }
        let reason = choice.get("finish_reason").cloned().unwrap_or(json!("stop"));
        frames.push(chunk(json!([{"index": index, "delta": {}, "finish_reason": reason}])));
    }
    if include_usage && let Some(usage) = stored.get("usage") {
        let mut last = json!({
            "id": stored.get("id"), "object": "chat.completion.chunk", "created": stored.get("created"),
            "model": stored.get("model"), "choices": [], "usage": usage,
        });
        if let Some(fingerprint) = stored.get("system_fingerprint") {
            last["system_fingerprint"] = fingerprint.clone();
        }
        frames.push(Bytes::from(format!("data: {last}\n\n")));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    Some(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    const USAGE: Usage = Usage { prompt_tokens: 19, completion_tokens: 10, cached_tokens: 0, cache_write_tokens: 0 };

    fn frames(events: &[Value]) -> Vec<Bytes> {
        events.iter().map(|e| Bytes::from(format!("data: {e}\n\n"))).collect()
    }

    #[test]
    fn a_stream_of_text_and_tool_calls_assembles_into_the_completion_and_replays_into_the_same() {
        let head = |choices: Value| json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "gpt-4o", "choices": choices});
        let stream = frames(&[
            head(json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}])),
            head(json!([{"index": 0, "delta": {"content": "夏天"}, "finish_reason": null}])),
            head(json!([{"index": 0, "delta": {"content": "的歌"}, "finish_reason": null}])),
            head(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "rhyme", "arguments": ""}}]}, "finish_reason": null}]),
            ),
            head(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"word\":"}}]}, "finish_reason": null}]),
            ),
            head(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"夏\"}"}}]}, "finish_reason": null}]),
            ),
            head(json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])),
        ]);
        let mut assembler = StreamAssembler::default();
        for f in &stream {
            assembler.feed(f);
        }
        assembler.feed(b"data: [DONE]\n\n");
        let stored = assembler.finish(&USAGE).unwrap();
        let completion: Value = serde_json::from_slice(&stored).unwrap();
        assert_eq!(
            completion,
            json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 7, "model": "gpt-4o",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": null, "message": {
                    "role": "assistant", "content": "夏天的歌",
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "rhyme", "arguments": "{\"word\":\"夏\"}"}}]}}],
                "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29, "prompt_tokens_details": {"cached_tokens": 0}}})
        );

        // Replayed, the frames assemble into the same completion: nothing is lost either way.
        let replayed = replay_as_stream(&stored, true).unwrap();
        assert_eq!(replayed.last().unwrap(), &Bytes::from_static(b"data: [DONE]\n\n"));
        let usage_frame: Value = serde_json::from_str(
            std::str::from_utf8(&replayed[replayed.len() - 2]).unwrap().trim().trim_start_matches("data: "),
        )
        .unwrap();
        assert_eq!(usage_frame["usage"]["completion_tokens"], 10);
        assert_eq!(usage_frame["choices"], json!([]));
        let mut again = StreamAssembler::default();
        for f in &replayed {
            again.feed(f);
        }
        assert_eq!(serde_json::from_slice::<Value>(&again.finish(&USAGE).unwrap()).unwrap(), completion);
        let without_usage = replay_as_stream(&stored, false).unwrap();
        assert_eq!(without_usage.len(), replayed.len() - 1, "no usage chunk unless asked");
    }

    #[test]
    fn an_unfinished_or_failed_stream_is_not_stored() {
        let start = json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "half"}, "finish_reason": null}]});
        let mut cut = StreamAssembler::default();
        cut.feed(&frames(std::slice::from_ref(&start))[0]);
        assert!(cut.finish(&USAGE).is_none(), "no finish_reason: cut short");
        let mut failed = StreamAssembler::default();
        failed.feed(&frames(&[start])[0]);
        failed.feed(&frames(&[json!({"error": {"message": "boom"}})])[0]);
        failed.feed(&frames(&[json!({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})])[0]);
        assert!(failed.finish(&USAGE).is_none(), "an in-band error");
        assert!(replay_as_stream(b"not json", false).is_none());
    }
}
