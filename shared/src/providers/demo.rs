//! The offline demo's model: echoes the last user message, in OpenAI's `chat.completion` shape,
//! without touching the network, so the whole gateway can be tried with no provider key.

use super::openai::{Answer, completion_body};
use super::{Call, ProviderError, ProviderReply};
use crate::domain::Usage;

const PREFIX: &str = "Echo from Maestro's demo model: ";

pub(super) fn chat(call: Call<'_>) -> Result<ProviderReply, ProviderError> {
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
    let id = format!("chatcmpl-demo-{}", uuid::Uuid::new_v4().simple());
    let model = &call.model.model;
    let body = completion_body(&Answer {
        id: &id,
        model,
        content: Some(&reply),
        reasoning: None,
        finish_reason: "stop",
        usage,
    })?;
    Ok(ProviderReply { body, usage, model: model.clone() })
}

fn estimate(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}
