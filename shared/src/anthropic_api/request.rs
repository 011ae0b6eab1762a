//! An Anthropic Messages request as Maestro's OpenAI-shaped [`ChatRequest`].
//!
//! | Anthropic | OpenAI |
//! |---|---|
//! | `system` (string or text blocks) | a leading `system` message |
//! | `text` / `image` (base64 or url source) blocks | `text` / `image_url` parts (base64 as a `data:` URL) |
//! | assistant `tool_use` blocks | the assistant message's `tool_calls` (input → JSON `arguments`) |
//! | assistant `thinking` blocks | the assistant message's `reasoning_content` (DeepSeek wants it back on tool turns) |
//! | user `tool_result` blocks | `tool` messages, placed before the rest of that user turn |
//! | `tools` (`input_schema`) | function tools (`parameters`) |
//! | `tool_choice` auto / any / tool / none, `disable_parallel_tool_use` | `auto` / `required` / a named function / `none`, `parallel_tool_calls: false` |
//! | `stop_sequences`, `temperature`, `top_p`, `max_tokens`, `metadata.user_id` | `stop`, `temperature`, `top_p`, `max_tokens`, `user` |
//! | `top_k`, `thinking` | kept as they are (the Anthropic provider sends them on; DeepSeek reads `thinking`) |
//! | `output_format` / `output_config.format` (`json_schema`) | `response_format` `json_schema` named `output`, strict (Claude takes it as a forced tool, see the Anthropic provider) |
//!
//! Error messages name the field the way Anthropic does (`messages.0.content.1.source`).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Purpose;
use crate::domain::{ChatMessage, ChatRequest, MessageContent, StopSequences};
use crate::error::ApiError;

/// OpenAI (and so `ChatRequest::validate`) takes at most this many stop sequences.
const MAX_STOP_SEQUENCES: usize = 4;

/// Fields that run tools at Anthropic, which no provider behind OpenAI's shape can honour:
/// refused rather than silently dropped. (Hints such as `service_tier` or `context_management`
/// are dropped.)
const UNSUPPORTED: [&str; 2] = ["mcp_servers", "container"];

/// The request body of `POST /v1/messages` and `POST /v1/messages/count_tokens`. Fields Maestro
/// cannot use (`service_tier`, `cache_control` markers, …) are accepted and ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<InMessage>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub system: Option<System>,
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<Value>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub thinking: Option<Value>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InMessage {
    pub role: String,
    pub content: InContent,
}

/// A string, or a list of content blocks (kept as JSON and read with field-naming errors).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum InContent {
    Text(String),
    Blocks(Vec<Value>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum System {
    Text(String),
    Blocks(Vec<Value>),
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub user_id: Option<String>,
}

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_param(param, format!("{param}: {}", message.into()))
}

/// Translates a Messages request; `purpose` decides whether `max_tokens` is required.
pub fn to_chat_request(r: MessagesRequest, purpose: Purpose) -> Result<ChatRequest, ApiError> {
    let max_tokens = match (r.max_tokens, purpose) {
        (None, Purpose::Messages) => return Err(invalid("max_tokens", "Field required")),
        (Some(0), Purpose::Messages) => return Err(invalid("max_tokens", "must be at least 1")),
        (max, _) => max.filter(|m| *m > 0),
    };
    if r.model.trim().is_empty() {
        return Err(invalid("model", "must be a non-empty string"));
    }
    if r.messages.is_empty() {
        return Err(invalid("messages", "at least one message is required"));
    }
    if let Some(field) = UNSUPPORTED.iter().find(|f| r.rest.get(**f).is_some_and(|v| !v.is_null())) {
        return Err(invalid(field, "is not supported by Maestro's Messages endpoint"));
    }
    let response_format = response_format(&r.rest)?;
    if let Some(t) = r.temperature
        && !(0.0..=1.0).contains(&t)
    {
        return Err(invalid("temperature", "must be between 0 and 1"));
    }
    if let Some(p) = r.top_p
        && !(0.0..=1.0).contains(&p)
    {
        return Err(invalid("top_p", "must be between 0 and 1"));
    }
    let stop = match r.stop_sequences.filter(|s| !s.is_empty()) {
        Some(s) if s.len() > MAX_STOP_SEQUENCES => {
            return Err(invalid(
                "stop_sequences",
                format!("at most {MAX_STOP_SEQUENCES} stop sequences can be sent through Maestro"),
            ));
        }
        other => other.map(StopSequences::Many),
    };

    let mut messages = Vec::with_capacity(r.messages.len() + 1);
    if let Some(system) = system_text(r.system.as_ref())? {
        messages.push(message("system", Some(MessageContent::Text(system))));
    }
    for (i, m) in r.messages.iter().enumerate() {
        match m.role.as_str() {
            "user" => user_turn(&m.content, i, &mut messages)?,
            "assistant" => messages.push(assistant_turn(&m.content, i)?),
            other => {
                return Err(invalid(
                    &format!("messages.{i}.role"),
                    format!("Input should be 'user' or 'assistant', not '{other}'"),
                ));
            }
        }
    }

    let mut extra = Map::new();
    let tools = tools(r.tools.as_deref())?;
    if let Some(tools) = tools {
        extra.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = r.tool_choice.as_ref().filter(|c| !c.is_null()) {
            let (choice, parallel) = tool_choice(choice)?;
            extra.insert("tool_choice".into(), choice);
            if let Some(parallel) = parallel {
                extra.insert("parallel_tool_calls".into(), Value::Bool(parallel));
            }
        }
    }
    if let Some(format) = response_format {
        extra.insert("response_format".into(), format);
    }
    if let Some(thinking) = r.thinking.filter(|t| !t.is_null()) {
        extra.insert("thinking".into(), thinking);
    }
    if let Some(top_k) = r.top_k.filter(|t| !t.is_null()) {
        extra.insert("top_k".into(), top_k);
    }
    let stream = r.stream.unwrap_or(false) && purpose == Purpose::Messages;
    if stream {
        // The Anthropic stream ends with usage; ask every provider for it.
        extra.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(ChatRequest {
        model: r.model,
        messages,
        max_tokens,
        max_completion_tokens: None,
        temperature: r.temperature,
        top_p: r.top_p,
        stop,
        stream: stream.then_some(true),
        user: r.metadata.and_then(|m| m.user_id).filter(|u| !u.is_empty()),
        extra,
    })
}

fn message(role: &str, content: Option<MessageContent>) -> ChatMessage {
    ChatMessage { role: role.to_string(), content, name: None, extra: Map::new() }
}

fn block_type<'a>(block: &'a Value, path: &str) -> Result<&'a str, ApiError> {
    block.get("type").and_then(Value::as_str).ok_or_else(|| invalid(&format!("{path}.type"), "Field required"))
}

fn text_of<'a>(block: &'a Value, path: &str) -> Result<&'a str, ApiError> {
    block.get("text").and_then(Value::as_str).ok_or_else(|| invalid(&format!("{path}.text"), "Field required"))
}

/// `system` as one string: text blocks joined by a blank line.
fn system_text(system: Option<&System>) -> Result<Option<String>, ApiError> {
    let text = match system {
        None => return Ok(None),
        Some(System::Text(text)) => text.clone(),
        Some(System::Blocks(blocks)) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, block) in blocks.iter().enumerate() {
                let path = format!("system.{j}");
                match block_type(block, &path)? {
                    "text" => parts.push(text_of(block, &path)?),
                    other => {
                        return Err(invalid(
                            &format!("{path}.type"),
                            format!("system blocks must be text, not '{other}'"),
                        ));
                    }
                }
            }
            parts.join("\n\n")
        }
    };
    Ok((!text.trim().is_empty()).then_some(text))
}

/// An image block's source as an OpenAI `image_url` part.
fn image_part(block: &Value, path: &str) -> Result<Value, ApiError> {
    let source = block.get("source").ok_or_else(|| invalid(&format!("{path}.source"), "Field required"))?;
    let field = |name: &str| source.get(name).and_then(Value::as_str).filter(|v| !v.is_empty());
    let url = match source.get("type").and_then(Value::as_str) {
        Some("base64") => match (field("media_type"), field("data")) {
            (Some(media_type), Some(data)) => format!("data:{media_type};base64,{data}"),
            _ => return Err(invalid(&format!("{path}.source"), "a base64 source needs `media_type` and `data`")),
        },
        Some("url") => match field("url") {
            Some(url) => url.to_string(),
            None => return Err(invalid(&format!("{path}.source.url"), "Field required")),
        },
        other => {
            return Err(invalid(
                &format!("{path}.source.type"),
                format!("image sources must be 'base64' or 'url', not '{}'", other.unwrap_or("(none)")),
            ));
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// Text and image blocks as content: one string when there are only texts (what every
/// OpenAI-compatible server takes), parts when there is an image.
fn parts_content(parts: Vec<Value>) -> MessageContent {
    if parts.iter().all(|p| p.get("type").and_then(Value::as_str) == Some("text")) {
        let texts: Vec<&str> = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
        MessageContent::Text(texts.join("\n"))
    } else {
        MessageContent::Parts(parts)
    }
}

/// A user turn: its `tool_result` blocks as `tool` messages, then the rest as one user message.
fn user_turn(content: &InContent, i: usize, out: &mut Vec<ChatMessage>) -> Result<(), ApiError> {
    let blocks = match content {
        InContent::Text(text) => {
            out.push(message("user", Some(MessageContent::Text(text.clone()))));
            return Ok(());
        }
        InContent::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::with_capacity(blocks.len());
    for (j, block) in blocks.iter().enumerate() {
        let path = format!("messages.{i}.content.{j}");
        match block_type(block, &path)? {
            "text" => parts.push(json!({"type": "text", "text": text_of(block, &path)?})),
            "image" => parts.push(image_part(block, &path)?),
            "tool_result" => out.push(tool_result(block, &path)?),
            other => return Err(unsupported_block(other, &path)),
        }
    }
    if !parts.is_empty() {
        out.push(message("user", Some(parts_content(parts))));
    }
    Ok(())
}

fn unsupported_block(kind: &str, path: &str) -> ApiError {
    invalid(
        &format!("{path}.type"),
        format!("content blocks of type '{kind}' are not supported by Maestro's Messages endpoint"),
    )
}

/// `{"type":"tool_result","tool_use_id","content"}` as an OpenAI `tool` message.
fn tool_result(block: &Value, path: &str) -> Result<ChatMessage, ApiError> {
    let id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| invalid(&format!("{path}.tool_use_id"), "Field required"))?;
    let content = match block.get("content") {
        None | Some(Value::Null) => MessageContent::Text(String::new()),
        Some(Value::String(text)) => MessageContent::Text(text.clone()),
        Some(Value::Array(items)) => {
            let mut parts = Vec::with_capacity(items.len());
            for (k, item) in items.iter().enumerate() {
                let path = format!("{path}.content.{k}");
                match block_type(item, &path)? {
                    "text" => parts.push(json!({"type": "text", "text": text_of(item, &path)?})),
                    "image" => parts.push(image_part(item, &path)?),
                    other => return Err(unsupported_block(other, &path)),
                }
            }
            parts_content(parts)
        }
        Some(_) => return Err(invalid(&format!("{path}.content"), "must be a string or a list of content blocks")),
    };
    let mut m = message("tool", Some(content));
    m.extra.insert("tool_call_id".into(), Value::String(id.to_string()));
    Ok(m)
}

/// An assistant turn: text, `tool_use` blocks as `tool_calls`, thinking as `reasoning_content`.
fn assistant_turn(content: &InContent, i: usize) -> Result<ChatMessage, ApiError> {
    let blocks = match content {
        InContent::Text(text) => return Ok(message("assistant", Some(MessageContent::Text(text.clone())))),
        InContent::Blocks(blocks) => blocks,
    };
    let mut texts: Vec<&str> = Vec::new();
    let mut thinking: Vec<&str> = Vec::new();
    let mut calls: Vec<Value> = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let path = format!("messages.{i}.content.{j}");
        match block_type(block, &path)? {
            "text" => texts.push(text_of(block, &path)?),
            "thinking" => thinking.extend(block.get("thinking").and_then(Value::as_str)),
            // Encrypted: nothing another provider can read.
            "redacted_thinking" => {}
            "tool_use" => {
                let field = |name: &str| block.get(name).and_then(Value::as_str).filter(|v| !v.is_empty());
                let id = field("id").ok_or_else(|| invalid(&format!("{path}.id"), "Field required"))?;
                let name = field("name").ok_or_else(|| invalid(&format!("{path}.name"), "Field required"))?;
                let arguments = match block.get("input") {
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(input) => input.to_string(),
                };
                calls.push(json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}));
            }
            other => return Err(unsupported_block(other, &path)),
        }
    }
    let text = texts.join("\n");
    let content = match (text.is_empty(), calls.is_empty()) {
        // OpenAI's shape for a turn that only calls tools.
        (true, false) => None,
        _ => Some(MessageContent::Text(text)),
    };
    let mut m = message("assistant", content);
    if !calls.is_empty() {
        m.extra.insert("tool_calls".into(), Value::Array(calls));
        if !thinking.is_empty() {
            m.extra.insert("reasoning_content".into(), Value::String(thinking.join("\n\n")));
        }
    }
    Ok(m)
}

/// Anthropic tools as OpenAI function tools. Server tools (`web_search_…`, `bash_…`) run at
/// Anthropic and have no OpenAI form: refused. `None` for no tools.
fn tools(tools: Option<&[Value]>) -> Result<Option<Vec<Value>>, ApiError> {
    let Some(tools) = tools.filter(|t| !t.is_empty()) else { return Ok(None) };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let path = format!("tools.{i}");
        if let Some(kind) = tool.get("type").and_then(Value::as_str)
            && kind != "custom"
        {
            return Err(invalid(
                &format!("{path}.type"),
                format!("server tool '{kind}' is not supported by Maestro's Messages endpoint; declare custom tools"),
            ));
        }
        let name = tool
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid(&format!("{path}.name"), "Field required"))?;
        let parameters = match tool.get("input_schema") {
            Some(schema) if schema.is_object() => schema.clone(),
            None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
            Some(_) => return Err(invalid(&format!("{path}.input_schema"), "must be a JSON schema object")),
        };
        let mut function = json!({"name": name, "parameters": parameters});
        if let Some(description) = tool.get("description").and_then(Value::as_str).filter(|d| !d.is_empty()) {
            function["description"] = json!(description);
        }
        if let Some(strict) = tool.get("strict").and_then(Value::as_bool) {
            function["strict"] = json!(strict);
        }
        out.push(json!({"type": "function", "function": function}));
    }
    Ok(Some(out))
}

/// Anthropic's structured outputs (`output_format`, since renamed `output_config.format`) as
/// OpenAI's `response_format`, which every provider takes: a strict JSON schema named `output`.
fn response_format(rest: &Map<String, Value>) -> Result<Option<Value>, ApiError> {
    let beta = rest.get("output_format").filter(|f| !f.is_null());
    let config = rest.get("output_config").and_then(|c| c.get("format")).filter(|f| !f.is_null());
    let (param, format) = match (beta, config) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(invalid("output_format", "send either output_format or output_config.format, not both"));
        }
        (Some(format), None) => ("output_format", format),
        (None, Some(format)) => ("output_config.format", format),
    };
    match format.get("type").and_then(Value::as_str) {
        Some("json_schema") => {}
        other => {
            return Err(invalid(
                &format!("{param}.type"),
                format!("must be 'json_schema', not '{}'", other.unwrap_or("(none)")),
            ));
        }
    }
    let schema = match format.get("schema") {
        Some(schema) if schema.is_object() => schema.clone(),
        None | Some(Value::Null) => return Err(invalid(&format!("{param}.schema"), "Field required")),
        Some(_) => return Err(invalid(&format!("{param}.schema"), "must be a JSON schema object")),
    };
    Ok(Some(json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}})))
}

/// Anthropic's `tool_choice` as OpenAI's, and `parallel_tool_calls` when parallel use is off.
fn tool_choice(choice: &Value) -> Result<(Value, Option<bool>), ApiError> {
    let kind = choice.get("type").and_then(Value::as_str);
    let openai = match kind {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => return Ok((json!("none"), None)),
        Some("tool") => match choice.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            Some(name) => json!({"type": "function", "function": {"name": name}}),
            None => return Err(invalid("tool_choice.name", "Field required")),
        },
        other => {
            return Err(invalid(
                "tool_choice.type",
                format!("must be 'auto', 'any', 'tool' or 'none', not '{}'", other.unwrap_or("(none)")),
            ));
        }
    };
    let parallel = choice.get("disable_parallel_tool_use").and_then(Value::as_bool).filter(|d| *d).map(|_| false);
    Ok((openai, parallel))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> MessagesRequest {
        serde_json::from_value(v).unwrap()
    }

    fn chat(v: Value) -> Value {
        let request = to_chat_request(parse(v), Purpose::Messages).unwrap();
        request.validate().unwrap();
        serde_json::to_value(request).unwrap()
    }

    fn refused(v: Value) -> ApiError {
        to_chat_request(parse(v), Purpose::Messages).unwrap_err()
    }

    #[test]
    fn the_recorded_tools_and_images_request_becomes_a_tool_round_trip() {
        // GIVEN the real request: a user text, an assistant tool_use, a tool_result with a base64
        // and a url image, tools and tool_choice.
        let recorded: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/anthropic/request_with_tools_and_image.json"))
                .unwrap();
        // WHEN it is translated
        let out = chat(recorded);
        // THEN the turns are OpenAI's: user, assistant with tool_calls, tool with the images.
        let m = out["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0]["role"], "user");
        assert!(m[0]["content"].as_str().unwrap().starts_with("Call the get_images tool."));
        assert_eq!(m[1]["role"], "assistant");
        assert!(m[1].get("content").is_none());
        assert_eq!(
            m[1]["tool_calls"],
            json!([{"id": "toolu_01JPiYRg5YH3kq9zwgCtaZLh", "type": "function", "function": {"name": "get_images", "arguments": "{}"}}])
        );
        assert_eq!(m[2]["role"], "tool");
        assert_eq!(m[2]["tool_call_id"], "toolu_01JPiYRg5YH3kq9zwgCtaZLh");
        let parts = m[2]["content"].as_array().unwrap();
        assert_eq!(
            parts[0]["image_url"]["url"],
            "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgG"
        );
        assert_eq!(parts[1]["image_url"]["url"], "https://www.gstatic.com/webp/gallery3/1.png");
        assert_eq!(
            out["tools"],
            json!([{"type": "function", "function": {"name": "get_images",
                "parameters": {"additionalProperties": false, "properties": {}, "type": "object"}}}])
        );
        assert_eq!(out["tool_choice"], "auto");
        assert_eq!(out["max_tokens"], 4096);
        assert!(out.get("stream").is_none(), "`stream: false` is not a stream");
    }

    #[test]
    fn the_recorded_count_tokens_request_needs_no_max_tokens() {
        let recorded: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/anthropic/count_tokens_request.json")).unwrap();
        let request = to_chat_request(parse(recorded.clone()), Purpose::CountTokens).unwrap();
        assert_eq!(request.model, "claude-opus-4-6");
        assert_eq!(request.messages[0].content.as_ref().unwrap().text(), "What is the capital of France?");
        assert_eq!(request.extra["tool_choice"], "required");
        assert_eq!(request.extra["thinking"], json!({"type": "adaptive"}));
        assert_eq!(request.extra["tools"][0]["function"]["parameters"]["required"], json!(["city", "country"]));
        // The same body on /v1/messages lacks the required max_tokens.
        let e = to_chat_request(parse(recorded), Purpose::Messages).unwrap_err();
        assert_eq!((e.status(), e.param(), e.message()), (400, Some("max_tokens"), "max_tokens: Field required"));
    }

    #[test]
    fn system_sampling_metadata_and_streams_are_carried_over() {
        let out = chat(json!({
            "model": "claude-sonnet-4-5", "max_tokens": 256, "stream": true,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "Answer in French."}],
            "messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Bonjour"}, {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
            "stop_sequences": ["END"], "temperature": 0.2, "top_p": 0.9, "top_k": 5,
            "metadata": {"user_id": "u-7"}, "thinking": {"type": "enabled", "budget_tokens": 1024}, "service_tier": "auto"
        }));
        assert_eq!(out["messages"][0], json!({"role": "system", "content": "Be brief.\n\nAnswer in French."}));
        assert_eq!(out["messages"][1], json!({"role": "user", "content": "Hello"}));
        assert_eq!(out["messages"][2], json!({"role": "assistant", "content": "Bonjour"}));
        assert_eq!(out["messages"][3], json!({"role": "user", "content": "a\nb"}));
        assert_eq!(out["stop"], json!(["END"]));
        assert_eq!((out["temperature"].as_f64(), out["top_p"].as_f64()), (Some(0.2), Some(0.9)));
        assert_eq!(out["top_k"], 5);
        assert_eq!(out["user"], "u-7");
        assert_eq!(out["thinking"]["budget_tokens"], 1024);
        assert_eq!(out["stream"], true);
        assert_eq!(out["stream_options"], json!({"include_usage": true}));
        assert!(out.get("service_tier").is_none());
    }

    #[test]
    fn tool_choices_and_parallel_use_map_to_openais() {
        let base = |choice: Value| {
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}],
                "tools": [{"name": "f", "description": "does f", "input_schema": {"type": "object"}}], "tool_choice": choice})
        };
        let any = chat(base(json!({"type": "any", "disable_parallel_tool_use": true})));
        assert_eq!((any["tool_choice"].clone(), any["parallel_tool_calls"].clone()), (json!("required"), json!(false)));
        assert_eq!(any["tools"][0]["function"]["description"], "does f");
        let named = chat(base(json!({"type": "tool", "name": "f"})));
        assert_eq!(named["tool_choice"], json!({"type": "function", "function": {"name": "f"}}));
        assert!(named.get("parallel_tool_calls").is_none());
        assert_eq!(chat(base(json!({"type": "none"})))["tool_choice"], "none");
        assert_eq!(refused(base(json!({"type": "tool"}))).param(), Some("tool_choice.name"));
        // No tools, no tool_choice: OpenAI refuses a tool_choice without tools.
        let bare = chat(
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "auto"}}),
        );
        assert!(bare.get("tool_choice").is_none());
    }

    #[test]
    fn a_tool_use_turn_with_thinking_keeps_the_reasoning_and_results_come_first() {
        let out = chat(json!({"model": "m", "max_tokens": 10, "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should call it.", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}], "is_error": false},
                {"type": "text", "text": "And tomorrow?"}]}
        ]}));
        let m = &out["messages"];
        assert_eq!(m[1]["content"], "Checking.");
        assert_eq!(m[1]["reasoning_content"], "I should call it.");
        assert_eq!(m[1]["tool_calls"][0]["function"]["arguments"], r#"{"location":"Paris"}"#);
        assert_eq!(m[2], json!({"role": "tool", "content": "18C", "tool_call_id": "toolu_1"}));
        assert_eq!(m[3], json!({"role": "user", "content": "And tomorrow?"}));
    }

    #[test]
    fn bad_input_is_refused_naming_the_field() {
        let with = |messages: Value| json!({"model": "m", "max_tokens": 10, "messages": messages});
        assert_eq!(refused(with(json!([]))).param(), Some("messages"));
        assert_eq!(refused(with(json!([{"role": "system", "content": "x"}]))).param(), Some("messages.0.role"));
        let doc = json!([{"role": "user", "content": [{"type": "document", "source": {"type": "base64"}}]}]);
        assert_eq!(refused(with(doc)).param(), Some("messages.0.content.0.type"));
        let file =
            json!([{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]);
        assert_eq!(refused(with(file)).param(), Some("messages.0.content.0.source.type"));
        let no_id = json!([{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]);
        assert_eq!(refused(with(no_id)).param(), Some("messages.0.content.0.tool_use_id"));
        let mut hot = with(json!([{"role": "user", "content": "x"}]));
        hot["temperature"] = json!(1.5);
        assert_eq!(refused(hot).param(), Some("temperature"));
        let mut server_tool = with(json!([{"role": "user", "content": "x"}]));
        server_tool["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
        assert_eq!(refused(server_tool).param(), Some("tools.0.type"));
        let mut many_stops = with(json!([{"role": "user", "content": "x"}]));
        many_stops["stop_sequences"] = json!(["a", "b", "c", "d", "e"]);
        assert_eq!(refused(many_stops).param(), Some("stop_sequences"));
        let mut mcp = with(json!([{"role": "user", "content": "x"}]));
        mcp["mcp_servers"] = json!([{"type": "url", "url": "https://mcp.example", "name": "x"}]);
        assert_eq!(refused(mcp).param(), Some("mcp_servers"));
        let mut zero = with(json!([{"role": "user", "content": "x"}]));
        zero["max_tokens"] = json!(0);
        assert_eq!(refused(zero).param(), Some("max_tokens"));
    }

    #[test]
    fn structured_outputs_become_a_strict_json_schema_response_format() {
        let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
            "additionalProperties": false});
        let expected =
            json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema.clone(), "strict": true}});
        let with = |field: &str, format: Value| {
            let mut body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]});
            body[field] = format;
            body
        };
        let beta = chat(with("output_format", json!({"type": "json_schema", "schema": schema})));
        assert_eq!(beta["response_format"], expected);
        let config =
            chat(with("output_config", json!({"format": {"type": "json_schema", "schema": schema}, "effort": "low"})));
        assert_eq!(config["response_format"], expected);
        assert!(chat(with("output_format", Value::Null)).get("response_format").is_none());

        let cases = [
            (with("output_format", json!({"type": "json_object"})), "output_format.type"),
            (with("output_format", json!({"type": "json_schema"})), "output_format.schema"),
            (
                with("output_config", json!({"format": {"type": "json_schema", "schema": "{}"}})),
                "output_config.format.schema",
            ),
            (with("output_config", json!({"format": "json"})), "output_config.format.type"),
        ];
        for (body, param) in cases {
            let e = refused(body);
            assert_eq!((e.status(), e.param()), (400, Some(param)), "{}", e.message());
            assert!(e.message().starts_with(param));
        }
        let mut both = with("output_format", json!({"type": "json_schema", "schema": schema}));
        both["output_config"] = json!({"format": {"type": "json_schema", "schema": schema}});
        assert_eq!(refused(both).param(), Some("output_format"));
    }

    #[test]
    fn a_url_image_from_the_user_is_an_image_url_part() {
        let out = chat(json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "text", "text": "What is this?"}]}]}));
        assert_eq!(
            out["messages"][0]["content"],
            json!([{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}, {"type": "text", "text": "What is this?"}])
        );
        let request: ChatRequest = serde_json::from_value(out).unwrap();
        assert!(request.uses_images());
    }
}
