//! The offline demo's model: echoes the last user message, in OpenAI's `chat.completion` shape,
//! without touching the network, so the whole gateway can be tried with no provider key.

use serde_json::{Value, json};

use super::openai::{Answer, OpenAiChunks, completion_body};
use super::stream::{UpstreamStream, done_frame, frame};
use super::{Call, ProviderError, ProviderReply};
use crate::domain::Usage;

const PREFIX: &str = "Echo from Maestro's demo model: ";

/// The echo and its estimated usage.
fn reply(call: &Call<'_>) -> (String, Usage) {
    let messages = &call.request.messages;
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .and_then(|m| m.content.as_ref())
        .map(|c| c.text())
        .unwrap_or_default();
    let reply = format!("{PREFIX}{last_user}");
    // The same rough chars/4 estimate a real tokenizer would land near, plus role overhead.
    let prompt_tokens =
        messages.iter().map(|m| estimate(&m.content.as_ref().map(|c| c.text()).unwrap_or_default()) + 3).sum();
    let usage = Usage { prompt_tokens, completion_tokens: estimate(&reply), ..Usage::default() };
    (reply, usage)
}

/// The echo as an OpenAI-format stream, one chunk per word, read through the same translator
/// as a real OpenAI stream.
pub(super) fn chat_stream(call: Call<'_>, caller_wants_usage: bool) -> Result<UpstreamStream, ProviderError> {
    let (text, usage) = reply(&call);
    let id = format!("chatcmpl-demo-{}", uuid::Uuid::new_v4().simple());
    let created = crate::time::now_ms() / 1000;
    let model = &call.model.model;
    let chunk = |delta: Value, finish: Option<&str>| {
        let c = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": null});
        frame(c.to_string().as_bytes())
    };
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for word in text.split_inclusive(' ') {
        chunks.push(chunk(json!({"content": word}), None));
    }
    chunks.push(chunk(json!({}), Some("stop")));
    let usage_chunk = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [],
        "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens, "total_tokens": usage.total()}});
    chunks.push(frame(usage_chunk.to_string().as_bytes()));
    chunks.push(done_frame());
    Ok(UpstreamStream::local(chunks, Box::new(OpenAiChunks::new(caller_wants_usage))))
}

pub(super) fn chat(call: Call<'_>) -> Result<ProviderReply, ProviderError> {
    let (reply, usage) = reply(&call);
    let id = format!("chatcmpl-demo-{}", uuid::Uuid::new_v4().simple());
    let model = &call.model.model;
    let body = completion_body(&Answer {
        id: &id,
        model,
        content: Some(&reply),
        reasoning: None,
        tool_calls: &[],
        finish_reason: "stop",
        usage,
    })?;
    Ok(ProviderReply { body, usage, model: model.clone() })
}

fn estimate(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}
