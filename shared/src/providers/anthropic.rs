//! Anthropic's Messages API, behind OpenAI's chat completions shape: the request is translated
//! on the way out and the answer is rewritten as a `chat.completion` on the way back.
//!
//! Function tools, `tool_choice` and tool turns are translated both ways. Anthropic has no
//! `response_format`, so structured output takes the forced-tool path other gateways use:
//! `json_schema` (and `json_object`, with an open schema) becomes one extra tool whose
//! `input_schema` is the caller's schema, forced with `tool_choice` unless the caller sent tools
//! of its own (then its `tool_choice` stands, so its tools stay callable) or thinking is on
//! (Claude refuses a forced tool then; it is only offered). The answer's call of that tool comes
//! back as the message's JSON text with `finish_reason: "stop"`, streamed or not.
//! Anything else the OpenAI shape asks for and Anthropic cannot do is refused before any
//! network call rather than silently dropped.

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{malformed, open, send, send_with, with_key};
use super::openai::{Answer, completion_body};
use super::sse::SseEvent;
use super::stream::{Translate, UpstreamStream, done_frame, frame, truncated};
use super::{Call, ListedModel, ProviderError, ProviderErrorKind, ProviderReply};
use crate::domain::{ChatRequest, MessageContent, Provider, ProviderKind, Usage};
use crate::secret::SecretString;

const API_VERSION: &str = "2023-06-01";

pub(super) async fn chat(http: &reqwest::Client, call: Call<'_>) -> Result<ProviderReply, ProviderError> {
    let (request, schema_tool) = request(http, &call, false)?;
    let body = send(request, &call).await?;
    answer(body, &call, schema_tool)
}

/// Opens a streaming call; Anthropic's event stream is translated to OpenAI chunks as it comes.
pub(super) async fn chat_stream(
    http: &reqwest::Client,
    call: Call<'_>,
    caller_wants_usage: bool,
) -> Result<UpstreamStream, ProviderError> {
    let (request, schema_tool) = request(http, &call, true)?;
    let response = open(request, &call).await?;
    let translator = AnthropicEvents::new(caller_wants_usage, &call.model.model, schema_tool);
    Ok(UpstreamStream::new(response, Box::new(translator), call.timeout))
}

/// The HTTP request, and the name of the structured-output tool when `response_format` asked
/// for one (the answer's call of it is the JSON text).
fn request<'a>(
    http: &reqwest::Client,
    call: &Call<'a>,
    stream: bool,
) -> Result<(reqwest::RequestBuilder, Option<&'a str>), ProviderError> {
    let mut wire = translate(call)?;
    wire.stream = stream.then_some(true);
    let body = serde_json::to_vec(&wire).map_err(|e| {
        ProviderError::new(ProviderErrorKind::InvalidRequest, None, format!("could not encode the request: {e}"))
    })?;
    let request = with_key(http.post(endpoint(&call.provider.base_url)), ProviderKind::Anthropic, call.api_key)?
        .header("anthropic-version", API_VERSION)
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    Ok((request, wire.schema_tool))
}

/// `{base}/v1/messages`, also when the configured base already ends in `/v1`.
fn endpoint(base_url: &str) -> String {
    format!("{}/messages", v1(base_url))
}

/// `{base}/v1`, also when the configured base already ends in `/v1`.
fn v1(base_url: &str) -> String {
    let base = match base_url.trim().trim_end_matches('/') {
        "" => ProviderKind::Anthropic.spec().default_base_url,
        base => base,
    };
    format!("{}/v1", base.strip_suffix("/v1").unwrap_or(base))
}

/// Pages of the model list read at most (1000 models each).
const MAX_MODEL_PAGES: usize = 5;

/// `GET {base}/v1/models` with `x-api-key` and `anthropic-version`, following `has_more`.
pub(super) async fn list_models(
    http: &reqwest::Client,
    provider: &Provider,
    key: &SecretString,
    timeout: std::time::Duration,
) -> Result<Vec<ListedModel>, ProviderError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_MODEL_PAGES {
        let mut url = format!("{}/models?limit=1000", v1(&provider.base_url));
        if let Some(after) = &after {
            url.push_str("&after_id=");
            url.extend(after.bytes().map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
                other => format!("%{other:02X}"),
            }));
        }
        let request = with_key(http.get(url), ProviderKind::Anthropic, key)?.header("anthropic-version", API_VERSION);
        let body = send_with(request, provider.kind, &provider.headers, timeout, key).await?;
        let page: ModelPage = serde_json::from_slice(&body).map_err(|e| malformed(&body, &e, key))?;
        out.extend(page.data.into_iter().filter(|m| !m.id.trim().is_empty()).map(|m| ListedModel {
            supports_vision:
                m.capabilities.as_ref().and_then(|c| c.pointer("/image_input/supported")).and_then(Value::as_bool),
            id: m.id,
            display_name: m.display_name.filter(|n| !n.trim().is_empty()),
            // The documented example carries 0 as a placeholder: 0 means unknown.
            context_window: m.max_input_tokens.filter(|n| *n > 0),
            max_output_tokens: m.max_tokens.filter(|n| *n > 0),
        }));
        match (page.has_more, page.last_id) {
            (true, Some(last)) if after.as_deref() != Some(last.as_str()) => after = Some(last),
            _ => break,
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct ModelPage {
    data: Vec<WireListedModel>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    last_id: Option<String>,
}

#[derive(Deserialize)]
struct WireListedModel {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    max_input_tokens: Option<u64>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    capabilities: Option<Value>,
}

#[derive(Debug, Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    /// Anthropic-only knobs a caller may send through the OpenAI shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<WireTool<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    /// The structured-output tool's name, among `tools`; not sent as a field.
    #[serde(skip)]
    schema_tool: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: WireContent<'a>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum WireContent<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

impl<'a> WireContent<'a> {
    fn into_blocks(self) -> Vec<Block<'a>> {
        match self {
            // Anthropic rejects empty text blocks.
            Self::Text("") => Vec::new(),
            Self::Text(text) => vec![Block::Text { text }],
            Self::Blocks(blocks) => blocks,
        }
    }

    /// Folds the next message of the same role into this one: Anthropic needs roles to alternate.
    fn merge(&mut self, next: Self) {
        let mut blocks = std::mem::replace(self, Self::Blocks(Vec::new())).into_blocks();
        blocks.extend(next.into_blocks());
        *self = Self::Blocks(blocks);
    }
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text { text: &'a str },
    Image { source: ImageSource<'a> },
    ToolUse { id: &'a str, name: &'a str, input: Value },
    ToolResult { tool_use_id: &'a str, content: WireContent<'a> },
}

/// An OpenAI function tool as Anthropic declares it.
#[derive(Debug, Serialize)]
struct WireTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: Value,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

fn invalid(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ProviderErrorKind::InvalidRequest, None, message)
}

/// `tools: [{type: "function", function: {name, description, parameters}}]` → Anthropic tools.
fn tools(value: Option<&Value>) -> Result<Option<Vec<WireTool<'_>>>, ProviderError> {
    let Some(items) = value.filter(|v| present(Some(v))) else { return Ok(None) };
    let items = items.as_array().ok_or_else(|| invalid("`tools` must be an array"))?;
    let mut out = Vec::with_capacity(items.len());
    for (i, tool) in items.iter().enumerate() {
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or("function");
        let function = tool.get("function").filter(|_| kind == "function");
        let name = function.and_then(|f| f.get("name")).and_then(Value::as_str);
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return Err(invalid(format!(
                "tools[{i}] must be a function tool with a name; Anthropic takes no other kind"
            )));
        };
        let input_schema = function
            .and_then(|f| f.get("parameters"))
            .filter(|p| !p.is_null())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        let description = function.and_then(|f| f.get("description")).and_then(Value::as_str).filter(|d| !d.is_empty());
        out.push(WireTool { name, description, input_schema });
    }
    Ok(Some(out))
}

/// OpenAI's `tool_choice` (`auto`, `none`, `required`, or one named function) and
/// `parallel_tool_calls: false` as Anthropic's `tool_choice`.
fn tool_choice(choice: Option<&Value>, parallel: Option<&Value>) -> Result<Option<Value>, ProviderError> {
    let mut out = match choice {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => json!({"type": "auto"}),
            "none" => json!({"type": "none"}),
            "required" => json!({"type": "any"}),
            other => return Err(invalid(format!("tool_choice `{other}` is not one of auto, none, required"))),
        }),
        Some(v) => match v.get("function").and_then(|f| f.get("name")).and_then(Value::as_str) {
            Some(name) => Some(json!({"type": "tool", "name": name})),
            None => {
                return Err(invalid(
                    "tool_choice must name a function: {\"type\":\"function\",\"function\":{\"name\":…}}",
                ));
            }
        },
    };
    if parallel.and_then(Value::as_bool) == Some(false) {
        let choice = out.get_or_insert_with(|| json!({"type": "auto"}));
        if choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }
    Ok(out)
}

/// An assistant message's `tool_calls` as `tool_use` blocks; arguments are JSON text in OpenAI's
/// format and a JSON object in Anthropic's.
fn tool_uses(calls: &Value, i: usize) -> Result<Vec<Block<'_>>, ProviderError> {
    let calls = calls.as_array().ok_or_else(|| invalid(format!("messages[{i}].tool_calls must be an array")))?;
    calls
        .iter()
        .enumerate()
        .map(|(j, call)| {
            let field = |path: &[&str]| path.iter().try_fold(call, |v, k| v.get(*k)).and_then(Value::as_str);
            let (Some(id), Some(name)) = (field(&["id"]), field(&["function", "name"])) else {
                return Err(invalid(format!("messages[{i}].tool_calls[{j}] needs an id and a function name")));
            };
            let arguments = field(&["function", "arguments"]).unwrap_or("{}");
            let input = match arguments.trim() {
                "" => json!({}),
                text => serde_json::from_str(text).map_err(|_| {
                    invalid(format!("messages[{i}].tool_calls[{j}].function.arguments is not valid JSON"))
                })?,
            };
            Ok(Block::ToolUse { id, name, input })
        })
        .collect()
}

fn present(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Array(items)) => !items.is_empty(),
        Some(_) => true,
    }
}

/// The structured-output tool's name when the caller gives none (LiteLLM's choice too).
const SCHEMA_TOOL: &str = "json_output";

/// `response_format` `json_schema` / `json_object` as the tool Claude is made to call; `text`
/// (or none) is no tool.
fn structured_output(format: Option<&Value>) -> Result<Option<WireTool<'_>>, ProviderError> {
    let Some(format) = format.filter(|f| !f.is_null()) else { return Ok(None) };
    let kind = format.get("type").and_then(Value::as_str);
    let (name, input_schema) = match kind {
        Some("text") => return Ok(None),
        Some("json_object") => (SCHEMA_TOOL, json!({"type": "object", "additionalProperties": true})),
        Some("json_schema") => {
            let spec = format
                .get("json_schema")
                .filter(|s| s.is_object())
                .ok_or_else(|| invalid("response_format.json_schema must be an object with a `schema`"))?;
            let name = match spec.get("name") {
                None | Some(Value::Null) => SCHEMA_TOOL,
                Some(Value::String(name)) if valid_tool_name(name) => name.as_str(),
                Some(_) => {
                    return Err(invalid(
                        "response_format.json_schema.name must be 1 to 64 letters, digits, `_` or `-`",
                    ));
                }
            };
            let schema = match spec.get("schema") {
                None | Some(Value::Null) => json!({"type": "object", "additionalProperties": true}),
                Some(schema) if schema.is_object() => schema.clone(),
                Some(_) => return Err(invalid("response_format.json_schema.schema must be a JSON schema object")),
            };
            // A tool's input is an object: Anthropic refuses any other root.
            if schema.get("type").is_some_and(|t| t != "object") {
                return Err(invalid(
                    "response_format.json_schema.schema must describe an object (`\"type\": \"object\"`) through Anthropic",
                ));
            }
            (name, schema)
        }
        other => {
            return Err(invalid(format!(
                "response_format.type `{}` is not one of text, json_object, json_schema",
                other.unwrap_or("(none)")
            )));
        }
    };
    let description = Some("Respond with the structured output in this tool's input.");
    Ok(Some(WireTool { name, description, input_schema }))
}

/// Anthropic's (and OpenAI's) rule for tool names.
fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn translate<'a>(call: &Call<'a>) -> Result<MessagesRequest<'a>, ProviderError> {
    let r: &'a ChatRequest = call.request;
    if present(r.extra.get("functions")) {
        return Err(invalid("the legacy `functions` field is not supported; send `tools`"));
    }
    let mut system = Vec::new();
    let mut messages: Vec<WireMessage<'a>> = Vec::new();
    for (i, m) in r.messages.iter().enumerate() {
        let (role, content) = match m.role.as_str() {
            "system" | "developer" => {
                let text = m.content.as_ref().map(MessageContent::text).unwrap_or_default();
                if !text.trim().is_empty() {
                    system.push(text);
                }
                continue;
            }
            "user" => ("user", content(m.content.as_ref(), i)?),
            "assistant" => match m.extra.get("tool_calls").filter(|c| present(Some(c))) {
                Some(calls) => {
                    let mut blocks = content(m.content.as_ref(), i)?.into_blocks();
                    blocks.extend(tool_uses(calls, i)?);
                    ("assistant", WireContent::Blocks(blocks))
                }
                None => ("assistant", content(m.content.as_ref(), i)?),
            },
            "tool" => {
                let Some(tool_use_id) = m.extra.get("tool_call_id").and_then(Value::as_str) else {
                    return Err(invalid(format!("messages[{i}] is a tool message without `tool_call_id`")));
                };
                let result = Block::ToolResult { tool_use_id, content: content(m.content.as_ref(), i)? };
                ("user", WireContent::Blocks(vec![result]))
            }
            "function" => return Err(invalid("the legacy `function` role is not supported; send `tool` messages")),
            other => return Err(invalid(format!("messages[{i}] has role `{other}`, which Anthropic does not take"))),
        };
        match messages.last_mut() {
            Some(last) if last.role == role => last.content.merge(content),
            _ => messages.push(WireMessage { role, content }),
        }
    }
    let max_tokens = r.requested_max_tokens().unwrap_or_else(|| match call.model.max_output_tokens {
        Some(cap) => call.default_max_tokens.min(cap),
        None => call.default_max_tokens,
    });
    let mut tools = tools(r.extra.get("tools"))?;
    let mut tool_choice = tool_choice(r.extra.get("tool_choice"), r.extra.get("parallel_tool_calls"))?;
    let schema_tool = match structured_output(r.extra.get("response_format"))? {
        None => None,
        Some(tool) => {
            let name = tool.name;
            let list = tools.get_or_insert_with(Vec::new);
            if list.iter().any(|t| t.name == name) {
                return Err(invalid(format!(
                    "response_format.json_schema.name `{name}` is also the name of one of `tools`; rename one"
                )));
            }
            // Caller tools keep the caller's tool_choice (they must stay callable); alone, the
            // schema tool is forced so the answer is the JSON. Claude refuses a forced tool while
            // thinking, so then it is only offered (as LiteLLM does).
            let thinking = r.extra.get("thinking").filter(|t| !t.is_null());
            let thinks = thinking.is_some_and(|t| t.get("type").and_then(Value::as_str) != Some("disabled"));
            if list.is_empty() && !thinks {
                tool_choice = Some(json!({"type": "tool", "name": name}));
            }
            list.push(tool);
            Some(name)
        }
    };
    Ok(MessagesRequest {
        model: &call.model.model,
        max_tokens,
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages,
        stop_sequences: r.stop.as_ref().map(|s| s.to_vec()),
        // OpenAI's range is 0..2, Anthropic's 0..1.
        temperature: r.temperature.map(|t| t.min(1.0)),
        top_p: r.top_p,
        top_k: r.extra.get("top_k").filter(|v| !v.is_null()),
        thinking: r.extra.get("thinking").filter(|v| !v.is_null()),
        metadata: r.user.as_deref().map(|user_id| Metadata { user_id }),
        tools,
        tool_choice,
        stream: None,
        schema_tool,
    })
}

fn content(content: Option<&MessageContent>, i: usize) -> Result<WireContent<'_>, ProviderError> {
    let parts = match content {
        None => return Ok(WireContent::Text("")),
        Some(MessageContent::Text(text)) => return Ok(WireContent::Text(text)),
        Some(MessageContent::Parts(parts)) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => match part.get("text").and_then(Value::as_str) {
                Some("") => {}
                Some(text) => blocks.push(Block::Text { text }),
                None => return Err(invalid(format!("messages[{i}].content[{j}] is a text part without `text`"))),
            },
            Some("image_url") => {
                // `{"image_url": {"url": …}}` per the spec; some clients send the URL as a string.
                let image = part.get("image_url");
                let url = image.and_then(|v| v.get("url")).or(image).and_then(Value::as_str);
                let source = url.and_then(image_source).ok_or_else(|| {
                    invalid(format!(
                        "messages[{i}].content[{j}].image_url must be an http(s) URL or a base64 `data:` URL"
                    ))
                })?;
                blocks.push(Block::Image { source });
            }
            other => {
                return Err(invalid(format!(
                    "content part type `{}` in messages[{i}] is not supported through Anthropic",
                    other.unwrap_or("(none)")
                )));
            }
        }
    }
    Ok(WireContent::Blocks(blocks))
}

/// `data:<mime>;base64,<data>` or an http(s) URL.
fn image_source(url: &str) -> Option<ImageSource<'_>> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (header, data) = rest.split_once(',')?;
        let media_type = header.strip_suffix(";base64")?;
        return (!media_type.is_empty() && !data.is_empty()).then_some(ImageSource::Base64 { media_type, data });
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then_some(ImageSource::Url { url })
}

#[derive(Deserialize)]
struct MessagesResponse {
    id: String,
    model: String,
    content: Vec<ContentBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    /// `redacted_thinking`, server tool results…: nothing OpenAI's shape can carry.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireUsage {
    input_tokens: u64,
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

/// The answer as a `chat.completion`; a call of `schema_tool` is the structured output: its
/// input is the message's text, not a tool call.
fn answer(body: Bytes, call: &Call<'_>, schema_tool: Option<&str>) -> Result<ProviderReply, ProviderError> {
    let message: MessagesResponse = serde_json::from_slice(&body).map_err(|e| malformed(&body, &e, call.api_key))?;
    let mut text: Option<String> = None;
    let mut structured: Option<String> = None;
    let mut thinking: Vec<&str> = Vec::new();
    let mut tool_calls: Vec<Value> = Vec::new();
    for block in &message.content {
        match block {
            ContentBlock::Text { text: t } => text.get_or_insert_with(String::new).push_str(t),
            ContentBlock::Thinking { thinking: t } => thinking.push(t),
            ContentBlock::ToolUse { name, input, .. } if Some(name.as_str()) == schema_tool => {
                // A second call of it (not expected) is not a second document.
                if structured.is_none() {
                    structured = Some(schema_input(&body, name).unwrap_or_else(|| input.to_string()));
                }
            }
            ContentBlock::ToolUse { id, name, input } => {
                tool_calls.push(openai_tool_call(id, name, &input.to_string()))
            }
            ContentBlock::Other => {}
        }
    }
    let finish = match &structured {
        Some(_) if tool_calls.is_empty() && message.stop_reason.as_deref() == Some("tool_use") => "stop",
        _ => finish_reason(message.stop_reason.as_deref()),
    };
    // The JSON is the content a parser reads: any text Claude put before the call is dropped.
    if structured.is_some() {
        text = structured;
    }
    let reasoning = (!thinking.is_empty()).then(|| thinking.join("\n\n"));
    let u = &message.usage;
    let cached = u.cache_read_input_tokens.unwrap_or(0);
    let cache_write = u.cache_creation_input_tokens.unwrap_or(0);
    let usage = Usage {
        // Anthropic's `input_tokens` leaves out the cached part; OpenAI's `prompt_tokens` has it all.
        prompt_tokens: u.input_tokens + cached + cache_write,
        completion_tokens: u.output_tokens,
        cached_tokens: cached,
        cache_write_tokens: cache_write,
    };
    let body = completion_body(&Answer {
        id: &message.id,
        model: &message.model,
        content: text.as_deref(),
        reasoning: reasoning.as_deref(),
        tool_calls: &tool_calls,
        finish_reason: finish,
        usage,
    })?;
    Ok(ProviderReply { body, usage, model: message.model })
}

/// A content block read as raw JSON, to take a tool's input as Claude wrote it.
#[derive(Deserialize)]
struct RawBlock<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, borrow)]
    input: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct RawContent<'a> {
    #[serde(borrow)]
    content: Vec<RawBlock<'a>>,
}

/// The first call of `tool`'s input as compact JSON in Claude's key order (the same text a
/// stream gives; a parsed `Value` would sort the keys).
fn schema_input(body: &[u8], tool: &str) -> Option<String> {
    let raw: RawContent<'_> = serde_json::from_slice(body).ok()?;
    let block = raw.content.iter().find(|b| b.kind == "tool_use" && b.name.as_deref() == Some(tool))?;
    Some(compact(block.input?.get()))
}

/// Valid JSON without the whitespace between tokens.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        out.push(c);
    }
    out
}

/// One entry of OpenAI's `tool_calls`.
fn openai_tool_call(id: &str, name: &str, arguments: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
}

fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        // The second is Anthropic's newer "ran out of context window": also a cut-off answer.
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything new.
        _ => "stop",
    }
}

/// Anthropic's event stream (`message_start`, `content_block_*`, `message_delta`,
/// `message_stop`, `ping`, `error`) as OpenAI `chat.completion.chunk`s.
pub(super) struct AnthropicEvents {
    caller_wants_usage: bool,
    id: String,
    model: String,
    created: i64,
    usage: Usage,
    chars: u64,
    stopped: bool,
    /// Anthropic content-block index → OpenAI tool-call index, for the blocks that are tool uses.
    tool_indexes: Vec<(u64, usize)>,
    /// The structured-output tool's name, when the request asked for one.
    schema_tool: Option<String>,
    /// The content block that calls it: its partial JSON streams as text.
    schema_block: Option<u64>,
}

impl AnthropicEvents {
    pub(super) fn new(caller_wants_usage: bool, model: &str, schema_tool: Option<&str>) -> Self {
        Self {
            caller_wants_usage,
            id: String::new(),
            model: model.to_string(),
            created: crate::time::now_ms() / 1000,
            usage: Usage::default(),
            chars: 0,
            stopped: false,
            tool_indexes: Vec::new(),
            schema_tool: schema_tool.map(str::to_string),
            schema_block: None,
        }
    }

    fn tool_index(&self, block: Option<u64>) -> Option<usize> {
        let block = block?;
        self.tool_indexes.iter().find(|(b, _)| *b == block).map(|(_, i)| *i)
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Bytes {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        });
        // OpenAI's chunks before the usage chunk say `usage: null` when usage was asked for.
        if self.caller_wants_usage {
            chunk["usage"] = Value::Null;
        }
        frame(chunk.to_string().as_bytes())
    }

    fn usage_chunk(&self) -> Bytes {
        let u = self.usage;
        let chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": {
                "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens,
                "total_tokens": u.total(),
                "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
            },
        });
        frame(chunk.to_string().as_bytes())
    }

    /// Reads the usage fields an event carries; later events repeat or update earlier ones.
    fn take_usage(&mut self, usage: Option<&Value>) {
        let Some(usage) = usage else { return };
        let field = |name: &str| usage.get(name).and_then(Value::as_u64);
        let cached = field("cache_read_input_tokens").unwrap_or(self.usage.cached_tokens);
        let written = field("cache_creation_input_tokens").unwrap_or(self.usage.cache_write_tokens);
        if let Some(input) = field("input_tokens") {
            self.usage.prompt_tokens = input + cached + written;
        }
        self.usage.cached_tokens = cached;
        self.usage.cache_write_tokens = written;
        if let Some(output) = field("output_tokens") {
            self.usage.completion_tokens = output;
        }
    }
}

fn stream_error(data: &Value) -> ProviderError {
    let error = data.get("error");
    let kind = match error.and_then(|e| e.get("type")).and_then(Value::as_str) {
        Some("overloaded_error") => ProviderErrorKind::Overloaded,
        Some("rate_limit_error") => ProviderErrorKind::RateLimited,
        Some("invalid_request_error") => ProviderErrorKind::InvalidRequest,
        Some("authentication_error" | "permission_error") => ProviderErrorKind::Auth,
        _ => ProviderErrorKind::Server,
    };
    let message = error.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("error event in the stream");
    let mut e = ProviderError::new(kind, None, message.chars().take(500).collect::<String>());
    e.code = error.and_then(|e| e.get("type")).and_then(Value::as_str).map(str::to_string);
    e
}

impl Translate for AnthropicEvents {
    fn on_event(&mut self, event: &SseEvent) -> Result<Vec<Bytes>, ProviderError> {
        if event.data.trim().is_empty() {
            return Ok(Vec::new());
        }
        let data: Value = serde_json::from_str(&event.data).map_err(|e| {
            ProviderError::new(ProviderErrorKind::MalformedResponse, None, format!("a stream event is not JSON: {e}"))
        })?;
        let kind = data.get("type").and_then(Value::as_str).or(event.event.as_deref()).unwrap_or("");
        match kind {
            "message_start" => {
                let message = data.get("message");
                if let Some(id) = message.and_then(|m| m.get("id")).and_then(Value::as_str) {
                    self.id = id.to_string();
                }
                if let Some(model) = message.and_then(|m| m.get("model")).and_then(Value::as_str) {
                    self.model = model.to_string();
                }
                self.take_usage(message.and_then(|m| m.get("usage")));
                Ok(vec![self.chunk(json!({"role": "assistant", "content": ""}), None)])
            }
            "content_block_start" => {
                let block = data.get("content_block");
                if block.and_then(|b| b.get("type")).and_then(Value::as_str) == Some("tool_use") {
                    let field = |name: &str| block.and_then(|b| b.get(name)).and_then(Value::as_str).unwrap_or("");
                    if self.schema_block.is_none() && self.schema_tool.as_deref() == Some(field("name")) {
                        self.schema_block = Some(data.get("index").and_then(Value::as_u64).unwrap_or(0));
                        return Ok(Vec::new());
                    }
                    let index = self.tool_indexes.len();
                    self.tool_indexes.push((data.get("index").and_then(Value::as_u64).unwrap_or(0), index));
                    let mut call = openai_tool_call(field("id"), field("name"), "");
                    call["index"] = json!(index);
                    return Ok(vec![self.chunk(json!({"tool_calls": [call]}), None)]);
                }
                match block.and_then(|b| b.get("text")).and_then(Value::as_str) {
                    Some(text) if !text.is_empty() => {
                        self.chars += text.chars().count() as u64;
                        Ok(vec![self.chunk(json!({"content": text}), None)])
                    }
                    _ => Ok(Vec::new()),
                }
            }
            "content_block_delta" => {
                let delta = data.get("delta");
                let text = |field: &str| delta.and_then(|d| d.get(field)).and_then(Value::as_str);
                match delta.and_then(|d| d.get("type")).and_then(Value::as_str) {
                    Some("text_delta") => {
                        let t = text("text").unwrap_or("");
                        self.chars += t.chars().count() as u64;
                        Ok(vec![self.chunk(json!({"content": t}), None)])
                    }
                    Some("thinking_delta") => {
                        let t = text("thinking").unwrap_or("");
                        self.chars += t.chars().count() as u64;
                        Ok(vec![self.chunk(json!({"reasoning_content": t}), None)])
                    }
                    Some("input_json_delta") => {
                        let partial = text("partial_json").unwrap_or("");
                        let block = data.get("index").and_then(Value::as_u64);
                        if block.is_some() && block == self.schema_block {
                            if partial.is_empty() {
                                return Ok(Vec::new());
                            }
                            self.chars += partial.chars().count() as u64;
                            return Ok(vec![self.chunk(json!({"content": partial}), None)]);
                        }
                        let index = self.tool_index(block);
                        match index {
                            Some(index) if !partial.is_empty() => {
                                self.chars += partial.chars().count() as u64;
                                let call = json!({"index": index, "function": {"arguments": partial}});
                                Ok(vec![self.chunk(json!({"tool_calls": [call]}), None)])
                            }
                            _ => Ok(Vec::new()),
                        }
                    }
                    _ => Ok(Vec::new()),
                }
            }
            "message_delta" => {
                self.take_usage(data.get("usage"));
                let stop = data.get("delta").and_then(|d| d.get("stop_reason")).and_then(Value::as_str);
                // Stopped to call only the schema tool: the JSON text is a finished answer.
                let structured = self.schema_block.is_some() && self.tool_indexes.is_empty();
                Ok(match stop {
                    Some("tool_use") if structured => vec![self.chunk(json!({}), Some("stop"))],
                    Some(reason) => vec![self.chunk(json!({}), Some(finish_reason(Some(reason))))],
                    None => Vec::new(),
                })
            }
            "message_stop" => {
                self.stopped = true;
                let mut frames = Vec::with_capacity(2);
                if self.caller_wants_usage {
                    frames.push(self.usage_chunk());
                }
                frames.push(done_frame());
                Ok(frames)
            }
            "error" => Err(stream_error(&data)),
            // `ping`, `content_block_stop`, and event types added later.
            _ => Ok(Vec::new()),
        }
    }

    fn on_end(&mut self) -> Result<Vec<Bytes>, ProviderError> {
        if self.stopped { Ok(Vec::new()) } else { Err(truncated()) }
    }

    fn usage(&self) -> Usage {
        self.usage
    }

    fn generated_chars(&self) -> u64 {
        self.chars
    }

    fn is_complete(&self) -> bool {
        self.stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Model, Prices, Provider, ProviderKind};
    use crate::secret::SecretString;
    use serde_json::json;
    use std::time::Duration;

    fn provider() -> Provider {
        Provider {
            code: "anthropic".into(),
            kind: ProviderKind::Anthropic,
            name: "Anthropic".into(),
            base_url: String::new(),
            headers: Default::default(),
            is_active: true,
            sort_order: 0,
        }
    }

    fn model(max_output_tokens: Option<u64>) -> Model {
        Model {
            provider: "anthropic".into(),
            model: "claude-sonnet-4-5".into(),
            model_type: "chat".into(),
            context_window: None,
            max_output_tokens,
            supports_streaming: true,
            supports_tools: false,
            supports_vision: true,
            prices: Prices::default(),
            is_active: true,
            is_default: true,
            drop_params: false,
            created: 0,
            cache: Default::default(),
        }
    }

    fn translated(request: Value, max_output_tokens: Option<u64>) -> Result<Value, ProviderError> {
        let request: ChatRequest = serde_json::from_value(request).unwrap();
        let (provider, model, key) = (provider(), model(max_output_tokens), SecretString::new("sk-ant-test"));
        let call = Call {
            provider: &provider,
            model: &model,
            api_key: &key,
            request: &request,
            default_max_tokens: 4096,
            timeout: Duration::from_secs(1),
        };
        translate(&call).map(|r| serde_json::to_value(r).unwrap())
    }

    /// An Anthropic `message` body as the `chat.completion` it becomes, given the schema tool.
    fn answered(message: Value, schema_tool: Option<&str>) -> Value {
        answered_raw(&message.to_string(), schema_tool)
    }

    fn answered_raw(message: &str, schema_tool: Option<&str>) -> Value {
        let request: ChatRequest =
            serde_json::from_value(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})).unwrap();
        let (provider, model, key) = (provider(), model(None), SecretString::new("sk-ant-test"));
        let call = Call {
            provider: &provider,
            model: &model,
            api_key: &key,
            request: &request,
            default_max_tokens: 4096,
            timeout: Duration::from_secs(1),
        };
        let reply = answer(Bytes::from(message.to_string()), &call, schema_tool).unwrap();
        serde_json::from_slice(&reply.body).unwrap()
    }

    fn asking(response_format: Value) -> Value {
        json!({"model": "m", "messages": [{"role": "user", "content": "Extract: Ada, 36"}], "response_format": response_format})
    }

    const PERSON: &str = r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}"#;

    #[test]
    fn a_json_schema_becomes_one_forced_tool() {
        let schema: Value = serde_json::from_str(PERSON).unwrap();
        let body = translated(
            asking(json!({"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": true}})),
            None,
        )
        .unwrap();
        assert_eq!(
            body["tools"],
            json!([{"name": "person", "description": "Respond with the structured output in this tool's input.", "input_schema": schema}])
        );
        assert_eq!(body["tool_choice"], json!({"type": "tool", "name": "person"}));
        assert!(body.get("response_format").is_none() && body.get("schema_tool").is_none());
        // No name: `json_output`; no schema: an open object.
        let unnamed =
            translated(asking(json!({"type": "json_schema", "json_schema": {"schema": schema}})), None).unwrap();
        assert_eq!(unnamed["tool_choice"], json!({"type": "tool", "name": "json_output"}));
        let open = translated(asking(json!({"type": "json_schema", "json_schema": {"name": "any"}})), None).unwrap();
        assert_eq!(open["tools"][0]["input_schema"], json!({"type": "object", "additionalProperties": true}));
    }

    #[test]
    fn with_thinking_on_the_schema_tool_is_offered_not_forced() {
        let mut request = asking(json!({"type": "json_object"}));
        request["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
        let body = translated(request.clone(), None).unwrap();
        assert_eq!(body["tools"][0]["name"], "json_output");
        assert!(body.get("tool_choice").is_none(), "Claude's default, auto");
        request["thinking"] = json!({"type": "disabled"});
        let body = translated(request, None).unwrap();
        assert_eq!(body["tool_choice"], json!({"type": "tool", "name": "json_output"}));
    }

    #[test]
    fn json_object_is_an_open_schema_and_text_is_nothing() {
        let body = translated(asking(json!({"type": "json_object"})), None).unwrap();
        assert_eq!(body["tools"][0]["name"], "json_output");
        assert_eq!(body["tools"][0]["input_schema"], json!({"type": "object", "additionalProperties": true}));
        assert_eq!(body["tool_choice"], json!({"type": "tool", "name": "json_output"}));
        let text = translated(asking(json!({"type": "text"})), None).unwrap();
        assert!(text.get("tools").is_none() && text.get("tool_choice").is_none());
    }

    #[test]
    fn with_caller_tools_the_schema_tool_is_added_and_their_choice_stands() {
        let mut request =
            asking(json!({"type": "json_schema", "json_schema": {"name": "person", "schema": {"type": "object"}}}));
        request["tools"] =
            json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]);
        let body = translated(request.clone(), None).unwrap();
        let names: Vec<&str> = body["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(names, ["lookup", "person"]);
        assert!(body.get("tool_choice").is_none(), "Anthropic's default, auto");
        request["tool_choice"] = json!("required");
        assert_eq!(translated(request.clone(), None).unwrap()["tool_choice"], json!({"type": "any"}));
        // A schema named like a caller tool could not be told apart from it.
        request["tools"][0]["function"]["name"] = json!("person");
        assert!(translated(request, None).unwrap_err().message.contains("response_format.json_schema.name"));
    }

    #[test]
    fn bad_response_formats_are_refused_naming_the_parameter() {
        let cases = [
            (json!({"type": "json_schema"}), "response_format.json_schema"),
            (
                json!({"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}}),
                "response_format.json_schema.name",
            ),
            (
                json!({"type": "json_schema", "json_schema": {"name": "x", "schema": "{}"}}),
                "response_format.json_schema.schema",
            ),
            (
                json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}}),
                "must describe an object",
            ),
            (json!({"kind": "json"}), "response_format.type `(none)`"),
        ];
        for (format, needle) in cases {
            let e = translated(asking(format.clone()), None).unwrap_err();
            assert_eq!(e.kind, ProviderErrorKind::InvalidRequest, "{format}");
            assert!(e.message.contains(needle), "{format}: {}", e.message);
        }
    }

    fn message_with(content: Value, stop_reason: &str) -> Value {
        json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": content,
            "stop_reason": stop_reason, "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 5}})
    }

    #[test]
    fn the_schema_tools_call_comes_back_as_json_text_that_stopped() {
        // Claude's key order is kept (a parsed value would sort them), whitespace is not.
        let raw = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[
            {"type":"tool_use","id":"toolu_1","name":"person","input":{"name": "Ada", "age": 36}}],
            "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":5}}"#;
        let body = answered_raw(raw, Some("person"));
        let choice = &body["choices"][0];
        assert_eq!(choice["message"]["content"], r#"{"name":"Ada","age":36}"#);
        assert!(choice["message"].get("tool_calls").is_none_or(|c| c.as_array().is_some_and(Vec::is_empty)));
        assert_eq!(choice["finish_reason"], "stop");
        // Without the schema tool asked for, the same block is a tool call.
        let plain = answered_raw(raw, None);
        assert_eq!(plain["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(plain["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "person");
        // Cut off mid-call: still `length`.
        let cut = json!([{"type": "tool_use", "id": "toolu_1", "name": "person", "input": {}}]);
        assert_eq!(answered(message_with(cut, "max_tokens"), Some("person"))["choices"][0]["finish_reason"], "length");
    }

    #[test]
    fn compact_drops_whitespace_outside_strings_only() {
        assert_eq!(compact("{ \"a b\" : [1, 2],\n\t\"c\\\" d\": \" \\\\ \" }"), r#"{"a b":[1,2],"c\" d":" \\ "}"#);
    }

    #[test]
    fn caller_tool_calls_beside_the_schema_tool_stay_tool_calls() {
        let content = json!([
            {"type": "text", "text": "Let me look that up."},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "Ada"}}
        ]);
        let body = answered(message_with(content, "tool_use"), Some("person"));
        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], "Let me look that up.");
        assert_eq!(choice["message"]["tool_calls"][0]["function"]["name"], "lookup");
        assert_eq!(choice["message"]["tool_calls"][0]["function"]["arguments"], r#"{"q":"Ada"}"#);
    }

    /// The delta of every chunk a stream of `events` (JSON data) gives, and the finish reasons.
    fn streamed(events: &[Value], schema_tool: Option<&str>) -> (Vec<Value>, Vec<String>) {
        let mut translator = AnthropicEvents::new(false, "m", schema_tool);
        let (mut deltas, mut finishes) = (Vec::new(), Vec::new());
        for data in events {
            let event = SseEvent { event: None, data: data.to_string() };
            for frame in translator.on_event(&event).unwrap() {
                let text = String::from_utf8(frame.to_vec()).unwrap();
                let Ok(chunk) = serde_json::from_str::<Value>(text.trim().trim_start_matches("data: ")) else {
                    continue;
                };
                deltas.push(chunk["choices"][0]["delta"].clone());
                finishes.extend(chunk["choices"][0]["finish_reason"].as_str().map(str::to_string));
            }
        }
        (deltas, finishes)
    }

    #[test]
    fn a_stream_calling_a_caller_tool_and_the_schema_tool_keeps_them_apart() {
        let events = [
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 5, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_a", "name": "lookup", "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"q\":\"Ada\"}"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_b", "name": "person", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"name\":"}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Ada\"}"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
            json!({"type": "message_stop"}),
        ];
        let (deltas, finishes) = streamed(&events, Some("person"));
        let calls: Vec<&Value> = deltas.iter().filter_map(|d| d["tool_calls"].get(0)).collect();
        assert!(calls.iter().all(|c| c["index"] == 0), "only the caller's tool is a call");
        assert_eq!(calls[0]["function"]["name"], "lookup");
        let content: String = deltas.iter().filter_map(|d| d["content"].as_str()).collect();
        assert_eq!(content, r#"{"name":"Ada"}"#);
        assert_eq!(finishes, ["tool_calls"], "the caller has a call to answer");
        // The schema tool alone: a finished answer.
        let alone = [&events[..1], &events[4..]].concat();
        let (deltas, finishes) = streamed(&alone, Some("person"));
        assert!(deltas.iter().all(|d| d.get("tool_calls").is_none()));
        assert_eq!(finishes, ["stop"]);
    }

    #[test]
    fn max_tokens_defaults_within_the_model_cap() {
        let req = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(translated(req.clone(), Some(1024)).unwrap()["max_tokens"], 1024);
        assert_eq!(translated(req.clone(), None).unwrap()["max_tokens"], 4096);
        let mut asked = req;
        asked["max_tokens"] = json!(50);
        asked["max_completion_tokens"] = json!(60);
        assert_eq!(translated(asked, Some(10)).unwrap()["max_tokens"], 60);
    }

    #[test]
    fn tools_and_odd_parts_are_refused() {
        let tools = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required", "parallel_tool_calls": false});
        let body = translated(tools, None).unwrap();
        assert_eq!(body["tools"], json!([{"name": "f", "input_schema": {"type": "object", "properties": {}}}]));
        assert_eq!(body["tool_choice"], json!({"type": "any", "disable_parallel_tool_use": true}));
        let no_id = json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]});
        assert!(translated(no_id, None).unwrap_err().message.contains("tool_call_id"));
        let bad_args = json!({"model": "m", "messages": [{"role": "assistant", "content": null,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]});
        assert!(translated(bad_args, None).unwrap_err().message.contains("not valid JSON"));
        let grammar = json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "grammar"}});
        assert!(translated(grammar, None).unwrap_err().message.contains("response_format.type `grammar`"));
        let audio = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]});
        assert!(translated(audio, None).unwrap_err().message.contains("input_audio"));
        let ftp = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]});
        assert_eq!(translated(ftp, None).unwrap_err().kind, ProviderErrorKind::InvalidRequest);
        // An empty tool list is no tools.
        let empty = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": []});
        assert!(translated(empty, None).is_ok());
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        assert_eq!(finish_reason(Some("end_turn")), "stop");
        assert_eq!(finish_reason(Some("stop_sequence")), "stop");
        assert_eq!(finish_reason(Some("max_tokens")), "length");
        assert_eq!(finish_reason(Some("model_context_window_exceeded")), "length");
        assert_eq!(finish_reason(Some("tool_use")), "tool_calls");
        assert_eq!(finish_reason(Some("refusal")), "content_filter");
        assert_eq!(finish_reason(Some("pause_turn")), "stop");
        assert_eq!(finish_reason(None), "stop");
    }

    #[test]
    fn endpoint_tolerates_a_v1_base() {
        assert_eq!(endpoint(""), "https://api.anthropic.com/v1/messages");
        assert_eq!(endpoint("https://proxy.example/v1/"), "https://proxy.example/v1/messages");
        assert_eq!(endpoint("http://127.0.0.1:9"), "http://127.0.0.1:9/v1/messages");
    }
}
