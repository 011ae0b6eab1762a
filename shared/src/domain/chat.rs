//! The OpenAI-shaped chat request Maestro accepts, and the usage it reports back.
//!
//! Fields Maestro acts on are typed; everything else a caller sends (tools, response_format,
//! seed, …) is kept in `extra` and passed through unchanged to OpenAI-format providers.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopSequences>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StopSequences {
    One(String),
    Many(Vec<String>),
}

impl StopSequences {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<MessageContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `content` is either a string or an array of typed parts (`text`, `image_url`, …).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<Value>),
}

impl MessageContent {
    /// The text of the content: the string, or the `text` parts joined by newlines.
    pub fn text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Parts(parts) => {
                parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
            }
        }
    }
}

const ROLES: [&str; 6] = ["system", "developer", "user", "assistant", "tool", "function"];

impl ChatRequest {
    /// Checks what Maestro can check without the catalog; each failure names the field.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::invalid_param("model", "`model` must be a non-empty string."));
        }
        if self.messages.is_empty() {
            return Err(ApiError::invalid_param("messages", "`messages` must contain at least one message."));
        }
        for (i, m) in self.messages.iter().enumerate() {
            if !ROLES.contains(&m.role.as_str()) {
                return Err(ApiError::invalid_param(
                    &format!("messages[{i}].role"),
                    format!("Invalid role `{}` in messages[{i}]; expected one of {}.", m.role, ROLES.join(", ")),
                ));
            }
            let has_tool_calls = m.extra.get("tool_calls").is_some_and(|v| !v.is_null());
            if m.content.is_none() && !(m.role == "assistant" && has_tool_calls) {
                return Err(ApiError::invalid_param(
                    &format!("messages[{i}].content"),
                    format!("messages[{i}] has no `content`."),
                ));
            }
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(ApiError::invalid_param("temperature", "`temperature` must be between 0 and 2."));
        }
        if let Some(p) = self.top_p
            && !(0.0..=1.0).contains(&p)
        {
            return Err(ApiError::invalid_param("top_p", "`top_p` must be between 0 and 1."));
        }
        if self.requested_max_tokens() == Some(0) {
            return Err(ApiError::invalid_param("max_tokens", "`max_tokens` must be at least 1."));
        }
        if let Some(StopSequences::Many(v)) = &self.stop
            && v.len() > 4
        {
            return Err(ApiError::invalid_param("stop", "`stop` takes at most 4 sequences."));
        }
        Ok(())
    }

    /// `max_completion_tokens` (the newer name) or `max_tokens`.
    pub fn requested_max_tokens(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// Whether the request declares tools (a model without tool support cannot serve it).
    pub fn uses_tools(&self) -> bool {
        self.extra.get("tools").and_then(Value::as_array).is_some_and(|t| !t.is_empty())
    }

    /// Whether any message carries an image part.
    pub fn uses_images(&self) -> bool {
        self.messages.iter().any(|m| match &m.content {
            Some(MessageContent::Parts(parts)) => {
                parts.iter().any(|p| p.get("type").and_then(Value::as_str) == Some("image_url"))
            }
            _ => false,
        })
    }

    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// More than one choice asked for (`n` > 1).
    pub fn asks_several_choices(&self) -> bool {
        self.extra.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1)
    }

    /// Token log probabilities asked for (`logprobs: true` or `top_logprobs`).
    pub fn asks_logprobs(&self) -> bool {
        self.extra.get("logprobs").and_then(Value::as_bool).unwrap_or(false)
            || self.extra.get("top_logprobs").is_some_and(|v| !v.is_null())
    }

    /// `drop_params: true` (LiteLLM's name): parameters a provider cannot take are dropped for
    /// it instead of refusing the request. Maestro's own field, never sent upstream.
    pub fn drops_params(&self) -> bool {
        self.extra.get("drop_params").and_then(Value::as_bool).unwrap_or(false)
    }

    /// Bytes of text the prompt carries; the basis of the cheap hot-path token estimate.
    pub fn prompt_chars(&self) -> usize {
        self.messages.iter().map(|m| m.content.as_ref().map_or(0, |c| c.text().len()) + m.role.len() + 4).sum()
    }
}

/// Tokens of one call as the provider reported them, normalised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// All input tokens, cached ones included.
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Input tokens read from the provider's prompt cache (billed at the cached price).
    pub cached_tokens: u64,
    /// Input tokens written to the provider's prompt cache (Anthropic bills these higher).
    pub cache_write_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> ChatRequest {
        serde_json::from_value(v).expect("valid request")
    }

    #[test]
    fn unknown_fields_pass_through_unchanged() {
        let req = parse(json!({
            "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
            "seed": 7, "response_format": {"type": "json_object"}
        }));
        let out = serde_json::to_value(&req).expect("serialises");
        assert_eq!(out["seed"], 7);
        assert_eq!(out["response_format"]["type"], "json_object");
        assert!(out.get("max_tokens").is_none());
    }

    #[test]
    fn validation_names_the_bad_field() {
        let empty = parse(json!({"model": "m", "messages": []}));
        assert_eq!(empty.validate().expect_err("empty").param(), Some("messages"));
        let role = parse(json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}));
        assert_eq!(role.validate().expect_err("role").param(), Some("messages[0].role"));
        let temp = parse(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}));
        assert_eq!(temp.validate().expect_err("temp").param(), Some("temperature"));
        let ok =
            parse(json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}));
        assert!(ok.validate().is_ok());
    }
}
