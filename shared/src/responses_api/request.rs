//! A Responses request (`POST /v1/responses`) as Maestro's OpenAI-shaped [`ChatRequest`].
//!
//! | Responses | chat completions |
//! |---|---|
//! | `instructions` | a leading `system` message |
//! | `input` as a string | one `user` message |
//! | `message` items (`role` user / system / developer / assistant, with or without `type`) | messages of that role; `input_text` / `output_text` parts as text, `input_image` as an `image_url` part (`detail` kept), `refusal` as text |
//! | `function_call` items (`call_id`, `name`, `arguments`) | the assistant message's `tool_calls` (consecutive calls, and the assistant text before them, in one message) |
//! | `function_call_output` items (`call_id`, `output`) | `tool` messages (`tool_call_id`) |
//! | `reasoning` items with `reasoning_text` content | the next assistant message's `reasoning_content` (DeepSeek wants it back on tool turns); encrypted reasoning is dropped |
//! | `tools` of type `function` (`name`, `description`, `parameters`, `strict` at the top level) | function tools (the same fields under `function`) |
//! | `tool_choice` `auto` / `none` / `required` / `{"type":"function","name"}`, `parallel_tool_calls` | the same in chat's shape |
//! | `max_output_tokens`, `temperature`, `top_p`, `user` / `safety_identifier` | `max_completion_tokens`, `temperature`, `top_p`, `user` |
//! | `text.format` `json_schema` / `json_object` | `response_format` |
//! | `reasoning.effort` | `reasoning_effort` |
//! | `stream` | `stream` with `stream_options.include_usage` (`response.completed` carries usage) |
//!
//! Maestro keeps no conversation state: `previous_response_id`, `conversation`, `prompt` (stored
//! prompts), `background` and `item_reference` items are refused with a 400 naming the field;
//! `store` is accepted and ignored (nothing is stored), as are hints with no chat equivalent
//! (`include`, `truncation`, `service_tier`, `prompt_cache_key`, `text.verbosity`, …). Built-in
//! tools (`web_search`, `file_search`, `code_interpreter`, …) run at OpenAI and have no chat
//! form: refused, naming `tools[i].type`. Error params are written the way OpenAI writes them
//! (`input[2].content[0].image_url`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::domain::{ChatMessage, ChatRequest, MessageContent};
use crate::error::ApiError;

/// Fields that need a conversation or an object stored at OpenAI: Maestro keeps none.
const STATEFUL: [(&str, &str); 3] = [
    (
        "previous_response_id",
        "Maestro keeps no conversation state: send the whole conversation in `input` instead of `previous_response_id`.",
    ),
    (
        "conversation",
        "Maestro keeps no conversation state: send the whole conversation in `input` instead of `conversation`.",
    ),
    ("prompt", "Maestro stores no prompt templates: send `instructions` and `input` instead of `prompt`."),
];

/// The request body of `POST /v1/responses`. Fields Maestro has no use for are accepted and
/// ignored (see the module doc).
#[derive(Debug, Clone, Deserialize)]
pub struct ResponsesRequest {
    pub model: String,
    #[serde(default)]
    pub input: Option<Input>,
    #[serde(default)]
    pub instructions: Option<Value>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub text: Option<Value>,
    #[serde(default)]
    pub reasoning: Option<Value>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub safety_identifier: Option<String>,
    #[serde(default)]
    pub background: Option<bool>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `input`: a string (one user message) or a list of items (kept as JSON and read with
/// field-naming errors).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Input {
    Text(String),
    Items(Vec<Value>),
}

/// What a Responses answer repeats of its request (OpenAI's response object echoes the
/// request's settings); built from the request, put into every response object.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Echo {
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// The function tools in the Responses shape.
    pub tools: Vec<Value>,
    pub tool_choice: Value,
    pub parallel_tool_calls: bool,
    pub text: Value,
    pub reasoning: Value,
    pub metadata: Value,
    pub user: Option<String>,
}

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_param(param, message)
}

fn required(param: &str) -> ApiError {
    invalid(param, format!("Missing required parameter: '{param}'."))
}

/// Translates a Responses request into the chat request the gateway serves, and what its
/// answer echoes.
pub fn to_chat_request(r: ResponsesRequest) -> Result<(ChatRequest, Echo), ApiError> {
    for (field, message) in STATEFUL {
        if r.rest.get(field).is_some_and(|v| !v.is_null()) {
            return Err(invalid(field, message));
        }
    }
    if r.background == Some(true) {
        return Err(invalid(
            "background",
            "Maestro keeps no responses to poll: background responses are not supported; stream instead.",
        ));
    }
    if r.model.trim().is_empty() {
        return Err(required("model"));
    }
    if r.max_output_tokens == Some(0) {
        return Err(invalid("max_output_tokens", "'max_output_tokens' must be at least 1."));
    }

    let instructions = match &r.instructions {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => return Err(invalid("instructions", "'instructions' must be a string.")),
    };
    let mut messages = Vec::new();
    if let Some(text) = instructions.as_ref().filter(|t| !t.trim().is_empty()) {
        messages.push(message("system", Some(MessageContent::Text(text.clone()))));
    }
    match &r.input {
        None => return Err(required("input")),
        Some(Input::Text(text)) => messages.push(message("user", Some(MessageContent::Text(text.clone())))),
        Some(Input::Items(items)) if items.is_empty() => {
            return Err(invalid("input", "'input' must hold at least one item."));
        }
        Some(Input::Items(items)) => Items::default().read(items, &mut messages)?,
    }

    let mut extra = Map::new();
    let tools = tools(r.tools.as_deref())?;
    let mut tool_choice_echo = json!("auto");
    if !tools.is_empty() {
        extra.insert("tools".into(), Value::Array(tools.iter().map(chat_tool).collect()));
        if let Some(choice) = r.tool_choice.as_ref().filter(|c| !c.is_null()) {
            extra.insert("tool_choice".into(), tool_choice(choice)?);
            tool_choice_echo = choice.clone();
        }
        if let Some(parallel) = r.parallel_tool_calls {
            extra.insert("parallel_tool_calls".into(), Value::Bool(parallel));
        }
    } else if let Some(choice) = r.tool_choice.as_ref().filter(|c| !c.is_null()) {
        // Checked all the same, so a bad value is named even without tools.
        tool_choice(choice)?;
        tool_choice_echo = choice.clone();
    }
    let text_echo = match text_format(r.text.as_ref())? {
        Some((format, echo)) => {
            extra.insert("response_format".into(), format);
            json!({"format": echo})
        }
        None => json!({"format": {"type": "text"}}),
    };
    let effort = reasoning_effort(r.reasoning.as_ref())?;
    if let Some(effort) = &effort {
        extra.insert("reasoning_effort".into(), Value::String(effort.clone()));
    }
    // Maestro's own switch (see ChatRequest::drops_params), never sent upstream.
    if let Some(drop) = r.rest.get("drop_params").and_then(Value::as_bool) {
        extra.insert("drop_params".into(), Value::Bool(drop));
    }
    let stream = r.stream.unwrap_or(false);
    if stream {
        // `response.completed` carries usage; ask every provider for it.
        extra.insert("stream_options".into(), json!({"include_usage": true}));
    }
    let metadata = match &r.metadata {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(_) => return Err(invalid("metadata", "'metadata' must be an object of strings.")),
    };
    let user = r.user.clone().or_else(|| r.safety_identifier.clone()).filter(|u| !u.is_empty());
    let echo = Echo {
        instructions,
        max_output_tokens: r.max_output_tokens,
        temperature: r.temperature,
        top_p: r.top_p,
        tools,
        tool_choice: tool_choice_echo,
        parallel_tool_calls: r.parallel_tool_calls.unwrap_or(true),
        text: text_echo,
        reasoning: json!({"effort": effort, "summary": null}),
        metadata,
        user: user.clone(),
    };
    let request = ChatRequest {
        model: r.model,
        messages,
        max_tokens: None,
        max_completion_tokens: r.max_output_tokens,
        temperature: r.temperature,
        top_p: r.top_p,
        stop: None,
        stream: stream.then_some(true),
        user,
        extra,
    };
    // Ranges and roles, named as chat names them (`temperature`, `top_p`).
    request.validate()?;
    Ok((request, echo))
}

fn message(role: &str, content: Option<MessageContent>) -> ChatMessage {
    ChatMessage { role: role.to_string(), content, name: None, extra: Map::new() }
}

fn field<'a>(item: &'a Value, name: &str) -> Option<&'a str> {
    item.get(name).and_then(Value::as_str)
}

fn required_str<'a>(item: &'a Value, name: &str, path: &str) -> Result<&'a str, ApiError> {
    field(item, name).filter(|v| !v.is_empty()).ok_or_else(|| required(&format!("{path}.{name}")))
}

/// Reading `input` items into chat messages: function calls join the assistant message before
/// them; reasoning waits for the next assistant message.
#[derive(Default)]
struct Items {
    /// Reasoning text read from `reasoning` items, for the next assistant message.
    reasoning: Vec<String>,
    /// Whether the last message pushed is an assistant message that function calls may join.
    assistant_open: bool,
}

impl Items {
    fn read(mut self, items: &[Value], out: &mut Vec<ChatMessage>) -> Result<(), ApiError> {
        for (i, item) in items.iter().enumerate() {
            let path = format!("input[{i}]");
            if !item.is_object() {
                return Err(invalid(&path, format!("'{path}' must be an object.")));
            }
            let kind = match item.get("type") {
                None | Some(Value::Null) => "message",
                Some(Value::String(kind)) => kind.as_str(),
                Some(_) => return Err(invalid(&format!("{path}.type"), format!("'{path}.type' must be a string."))),
            };
            match kind {
                "message" => self.message(item, &path, out)?,
                "function_call" => self.function_call(item, &path, out)?,
                "function_call_output" => {
                    out.push(function_call_output(item, &path)?);
                    self.assistant_open = false;
                }
                "reasoning" => {
                    let texts = item.get("content").and_then(Value::as_array).into_iter().flatten();
                    self.reasoning.extend(
                        texts
                            .filter(|c| field(c, "type") == Some("reasoning_text"))
                            .filter_map(|c| field(c, "text").map(str::to_string)),
                    );
                }
                "item_reference" => {
                    return Err(invalid(
                        &format!("{path}.type"),
                        "Maestro keeps no conversation state: 'item_reference' items cannot be resolved; send the item itself.",
                    ));
                }
                other => {
                    return Err(invalid(
                        &format!("{path}.type"),
                        format!(
                            "Input items of type '{other}' are not supported by Maestro's Responses endpoint \
                             (supported: message, function_call, function_call_output, reasoning)."
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn message(&mut self, item: &Value, path: &str, out: &mut Vec<ChatMessage>) -> Result<(), ApiError> {
        let role = field(item, "role").ok_or_else(|| required(&format!("{path}.role")))?;
        if !["user", "system", "developer", "assistant"].contains(&role) {
            return Err(invalid(
                &format!("{path}.role"),
                format!(
                    "Invalid value: '{role}'. Supported values are: 'user', 'system', 'developer' and 'assistant'."
                ),
            ));
        }
        let content = match item.get("content") {
            Some(Value::String(text)) => MessageContent::Text(text.clone()),
            Some(Value::Array(parts)) => content_parts(parts, &format!("{path}.content"))?,
            None | Some(Value::Null) => return Err(required(&format!("{path}.content"))),
            Some(_) => {
                return Err(invalid(
                    &format!("{path}.content"),
                    format!("'{path}.content' must be a string or a list of content parts."),
                ));
            }
        };
        let mut m = message(role, Some(content));
        if role == "assistant" {
            self.take_reasoning(&mut m);
        }
        out.push(m);
        self.assistant_open = role == "assistant";
        Ok(())
    }

    fn take_reasoning(&mut self, m: &mut ChatMessage) {
        if !self.reasoning.is_empty() {
            m.extra.insert("reasoning_content".into(), Value::String(self.reasoning.join("\n\n")));
            self.reasoning.clear();
        }
    }

    fn function_call(&mut self, item: &Value, path: &str, out: &mut Vec<ChatMessage>) -> Result<(), ApiError> {
        let call_id = required_str(item, "call_id", path)?;
        let name = required_str(item, "name", path)?;
        let arguments = match item.get("arguments") {
            None | Some(Value::Null) => "{}".to_string(),
            Some(Value::String(arguments)) => arguments.clone(),
            Some(_) => {
                return Err(invalid(
                    &format!("{path}.arguments"),
                    format!("'{path}.arguments' must be a JSON string."),
                ));
            }
        };
        let call = json!({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}});
        if !(self.assistant_open && out.last().is_some_and(|m| m.role == "assistant")) {
            out.push(message("assistant", None));
            self.assistant_open = true;
        }
        let Some(joined) = out.last_mut() else { return Err(ApiError::internal()) };
        if !self.reasoning.is_empty() {
            let mut reasoning = std::mem::take(&mut self.reasoning);
            if let Some(before) = joined.extra.get("reasoning_content").and_then(Value::as_str) {
                reasoning.insert(0, before.to_string());
            }
            joined.extra.insert("reasoning_content".into(), Value::String(reasoning.join("\n\n")));
        }
        match joined.extra.get_mut("tool_calls").and_then(Value::as_array_mut) {
            Some(calls) => calls.push(call),
            None => {
                joined.extra.insert("tool_calls".into(), Value::Array(vec![call]));
            }
        }
        Ok(())
    }
}

/// A message's content parts as chat content: one string when there are only texts (what every
/// OpenAI-compatible server takes), parts when there is an image.
fn content_parts(parts: &[Value], path: &str) -> Result<MessageContent, ApiError> {
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let path = format!("{path}[{j}]");
        let kind = field(part, "type").ok_or_else(|| required(&format!("{path}.type")))?;
        match kind {
            "input_text" | "output_text" | "text" => {
                let text = field(part, "text").ok_or_else(|| required(&format!("{path}.text")))?;
                out.push(json!({"type": "text", "text": text}));
            }
            "refusal" => {
                let text = field(part, "refusal").ok_or_else(|| required(&format!("{path}.refusal")))?;
                out.push(json!({"type": "text", "text": text}));
            }
            "input_image" => out.push(image_part(part, &path)?),
            other => {
                return Err(invalid(
                    &format!("{path}.type"),
                    format!(
                        "Content parts of type '{other}' are not supported by Maestro's Responses endpoint \
                         (supported: input_text, input_image, output_text, refusal)."
                    ),
                ));
            }
        }
    }
    Ok(if out.iter().all(|p| field(p, "type") == Some("text")) {
        let texts: Vec<&str> = out.iter().filter_map(|p| field(p, "text")).collect();
        MessageContent::Text(texts.join("\n"))
    } else {
        MessageContent::Parts(out)
    })
}

/// `{"type":"input_image","image_url","detail"}` as chat's `image_url` part. Files uploaded to
/// OpenAI (`file_id`) cannot be read by other providers: refused.
fn image_part(part: &Value, path: &str) -> Result<Value, ApiError> {
    let Some(url) = field(part, "image_url").filter(|u| !u.is_empty()) else {
        if part.get("file_id").is_some_and(|f| !f.is_null()) {
            return Err(invalid(
                &format!("{path}.file_id"),
                "Images by 'file_id' are not supported by Maestro's Responses endpoint: send 'image_url' (a URL or a data: URL).",
            ));
        }
        return Err(required(&format!("{path}.image_url")));
    };
    let mut image = json!({"url": url});
    if let Some(detail) = field(part, "detail").filter(|d| ["low", "high", "auto"].contains(d)) {
        image["detail"] = json!(detail);
    }
    Ok(json!({"type": "image_url", "image_url": image}))
}

/// `{"type":"function_call_output","call_id","output"}` as a `tool` message.
fn function_call_output(item: &Value, path: &str) -> Result<ChatMessage, ApiError> {
    let call_id = required_str(item, "call_id", path)?;
    let content = match item.get("output") {
        Some(Value::String(text)) => MessageContent::Text(text.clone()),
        Some(Value::Array(parts)) => content_parts(parts, &format!("{path}.output"))?,
        None | Some(Value::Null) => return Err(required(&format!("{path}.output"))),
        Some(_) => {
            return Err(invalid(
                &format!("{path}.output"),
                format!("'{path}.output' must be a string or a list of content parts."),
            ));
        }
    };
    let mut m = message("tool", Some(content));
    m.extra.insert("tool_call_id".into(), Value::String(call_id.to_string()));
    Ok(m)
}

/// The function tools, checked, in the Responses shape (as they are echoed). Any other tool
/// type is refused naming `tools[i].type`.
fn tools(tools: Option<&[Value]>) -> Result<Vec<Value>, ApiError> {
    let Some(tools) = tools else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let path = format!("tools[{i}]");
        match field(tool, "type") {
            Some("function") => {}
            Some(other) => {
                return Err(invalid(
                    &format!("{path}.type"),
                    format!(
                        "Tool type '{other}' is not supported by Maestro's Responses endpoint: built-in tools run \
                         at OpenAI, and Maestro serves every model through chat completions. Declare function tools."
                    ),
                ));
            }
            None => return Err(required(&format!("{path}.type"))),
        }
        let name = required_str(tool, "name", &path)?;
        let parameters = match tool.get("parameters") {
            Some(schema) if schema.is_object() => schema.clone(),
            None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
            Some(_) => {
                return Err(invalid(
                    &format!("{path}.parameters"),
                    format!("'{path}.parameters' must be a JSON schema object."),
                ));
            }
        };
        let description = field(tool, "description").filter(|d| !d.is_empty());
        let strict = tool.get("strict").and_then(Value::as_bool);
        out.push(json!({"type": "function", "name": name, "description": description, "parameters": parameters, "strict": strict}));
    }
    Ok(out)
}

/// A Responses function tool (as [`tools`] returns it) in chat's shape.
fn chat_tool(tool: &Value) -> Value {
    let mut function = json!({"name": tool["name"], "parameters": tool["parameters"]});
    if let Some(description) = tool.get("description").filter(|d| d.is_string()) {
        function["description"] = description.clone();
    }
    if let Some(strict) = tool.get("strict").filter(|s| s.is_boolean()) {
        function["strict"] = strict.clone();
    }
    json!({"type": "function", "function": function})
}

/// The Responses `tool_choice` in chat's shape.
fn tool_choice(choice: &Value) -> Result<Value, ApiError> {
    match choice {
        Value::String(mode) if ["auto", "none", "required"].contains(&mode.as_str()) => Ok(choice.clone()),
        Value::String(mode) => Err(invalid(
            "tool_choice",
            format!("Invalid value: '{mode}'. Supported values are: 'auto', 'none' and 'required'."),
        )),
        Value::Object(_) => match field(choice, "type") {
            Some("function") => match field(choice, "name").filter(|n| !n.is_empty()) {
                Some(name) => Ok(json!({"type": "function", "function": {"name": name}})),
                None => Err(required("tool_choice.name")),
            },
            other => Err(invalid(
                "tool_choice.type",
                format!(
                    "tool_choice of type '{}' is not supported by Maestro's Responses endpoint: use 'auto', 'none', \
                     'required' or {{\"type\": \"function\", \"name\": …}}.",
                    other.unwrap_or("(none)")
                ),
            )),
        },
        _ => Err(invalid("tool_choice", "'tool_choice' must be a string or an object.")),
    }
}

/// `text.format` as chat's `response_format`, and the format as it is echoed; `None` for plain
/// text.
fn text_format(text: Option<&Value>) -> Result<Option<(Value, Value)>, ApiError> {
    let Some(format) = text.and_then(|t| t.get("format")).filter(|f| !f.is_null()) else { return Ok(None) };
    match field(format, "type") {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some((json!({"type": "json_object"}), format.clone()))),
        Some("json_schema") => {
            let name = required_str(format, "name", "text.format")?;
            let schema = match format.get("schema") {
                Some(schema) if schema.is_object() => schema.clone(),
                None | Some(Value::Null) => return Err(required("text.format.schema")),
                Some(_) => {
                    return Err(invalid("text.format.schema", "'text.format.schema' must be a JSON schema object."));
                }
            };
            let mut json_schema = json!({"name": name, "schema": schema});
            for key in ["description", "strict"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    json_schema[key] = v.clone();
                }
            }
            Ok(Some((json!({"type": "json_schema", "json_schema": json_schema}), format.clone())))
        }
        other => Err(invalid(
            "text.format.type",
            format!(
                "Invalid value: '{}'. Supported values are: 'text', 'json_object' and 'json_schema'.",
                other.unwrap_or("(none)")
            ),
        )),
    }
}

/// `reasoning.effort`, if set.
fn reasoning_effort(reasoning: Option<&Value>) -> Result<Option<String>, ApiError> {
    match reasoning.and_then(|r| r.get("effort")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(effort)) => Ok(Some(effort.clone())),
        Some(_) => Err(invalid("reasoning.effort", "'reasoning.effort' must be a string.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> ResponsesRequest {
        serde_json::from_value(v).unwrap()
    }

    fn chat(v: Value) -> (Value, Echo) {
        let (request, echo) = to_chat_request(parse(v)).unwrap();
        (serde_json::to_value(request).unwrap(), echo)
    }

    fn refused(v: Value) -> ApiError {
        to_chat_request(parse(v)).unwrap_err()
    }

    #[test]
    fn a_string_input_with_instructions_is_a_system_and_a_user_message() {
        let (out, echo) = chat(json!({
            "model": "gpt-4o", "instructions": "Be brief.", "input": "Hello", "max_output_tokens": 64,
            "temperature": 0.3, "top_p": 0.9, "store": true, "metadata": {"team": "a"}, "safety_identifier": "u-1"
        }));
        assert_eq!(
            out["messages"],
            json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}])
        );
        assert_eq!(out["max_completion_tokens"], 64);
        assert!(out.get("max_tokens").is_none());
        assert_eq!((out["temperature"].as_f64(), out["top_p"].as_f64()), (Some(0.3), Some(0.9)));
        assert_eq!(out["user"], "u-1");
        assert!(out.get("stream").is_none() && out.get("store").is_none() && out.get("metadata").is_none());
        assert_eq!(echo.instructions.as_deref(), Some("Be brief."));
        assert_eq!(echo.max_output_tokens, Some(64));
        assert_eq!(echo.metadata, json!({"team": "a"}));
        assert_eq!(echo.tool_choice, "auto");
        assert_eq!(echo.text, json!({"format": {"type": "text"}}));
    }

    #[test]
    fn a_function_tool_round_trip_becomes_tool_calls_and_a_tool_message() {
        // What an SDK sends back after running the tool: the conversation so far, the model's
        // reasoning, text and two calls, then both outputs.
        let (out, _) = chat(json!({
            "model": "m", "stream": true,
            "tools": [{"type": "function", "name": "get_weather", "description": "Weather", "strict": true,
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
            "tool_choice": {"type": "function", "name": "get_weather"}, "parallel_tool_calls": false,
            "input": [
                {"role": "developer", "content": "Use tools."},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris and Rome?"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "Two cities."}]},
                {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
                    "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
                {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call", "id": "fc_2", "call_id": "call_b", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
                {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
                {"type": "function_call_output", "call_id": "call_b", "output": [{"type": "input_text", "text": "21C"}]}
            ]
        }));
        let m = out["messages"].as_array().unwrap();
        assert_eq!(m.len(), 5);
        assert_eq!(m[0], json!({"role": "developer", "content": "Use tools."}));
        assert_eq!(m[1], json!({"role": "user", "content": "Weather in Paris and Rome?"}));
        assert_eq!(m[2]["role"], "assistant");
        assert_eq!(m[2]["content"], "Checking.");
        assert_eq!(m[2]["reasoning_content"], "Two cities.");
        assert_eq!(
            m[2]["tool_calls"],
            json!([
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ])
        );
        assert_eq!(m[3], json!({"role": "tool", "content": "18C", "tool_call_id": "call_a"}));
        assert_eq!(m[4], json!({"role": "tool", "content": "21C", "tool_call_id": "call_b"}));
        assert_eq!(
            out["tools"],
            json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather", "strict": true,
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
        );
        assert_eq!(out["tool_choice"], json!({"type": "function", "function": {"name": "get_weather"}}));
        assert_eq!(out["parallel_tool_calls"], false);
        assert_eq!(out["stream"], true);
        assert_eq!(out["stream_options"], json!({"include_usage": true}));
        let request: ChatRequest = serde_json::from_value(out).unwrap();
        assert!(request.uses_tools());
    }

    #[test]
    fn a_call_without_assistant_text_is_an_assistant_message_without_content() {
        let (out, _) = chat(json!({"model": "m", "input": [
            {"role": "user", "content": "x"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            {"type": "function_call", "call_id": "c2", "name": "f"}
        ]}));
        let m = out["messages"].as_array().unwrap();
        assert_eq!(m.len(), 4);
        assert!(m[1].get("content").is_none());
        assert_eq!(m[1]["tool_calls"][0]["id"], "c1");
        assert_eq!(m[3]["tool_calls"][0]["function"]["arguments"], "{}", "a call after an output starts a new turn");
    }

    #[test]
    fn images_become_image_url_parts() {
        let (out, _) = chat(json!({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}
        ]}]}));
        assert_eq!(
            out["messages"][0]["content"],
            json!([
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ])
        );
        let request: ChatRequest = serde_json::from_value(out).unwrap();
        assert!(request.uses_images());
        let e = refused(
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}),
        );
        assert_eq!(e.param(), Some("input[0].content[0].file_id"));
    }

    #[test]
    fn structured_output_and_reasoning_effort_are_carried_over() {
        let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]});
        let (out, echo) = chat(json!({"model": "m", "input": "x", "reasoning": {"effort": "low"},
            "text": {"format": {"type": "json_schema", "name": "person", "schema": schema, "strict": true}, "verbosity": "low"}}));
        assert_eq!(
            out["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": true}})
        );
        assert_eq!(out["reasoning_effort"], "low");
        assert_eq!(echo.text["format"]["name"], "person");
        assert_eq!(echo.reasoning, json!({"effort": "low", "summary": null}));
        let (out, _) = chat(json!({"model": "m", "input": "json please", "text": {"format": {"type": "json_object"}}}));
        assert_eq!(out["response_format"], json!({"type": "json_object"}));
    }

    #[test]
    fn state_built_in_tools_and_bad_input_are_refused_naming_the_param() {
        let base = || json!({"model": "m", "input": "x"});
        let with = |key: &str, value: Value| {
            let mut body = base();
            body[key] = value;
            body
        };
        let e = refused(with("previous_response_id", json!("resp_123")));
        assert_eq!((e.status(), e.param()), (400, Some("previous_response_id")));
        assert!(e.message().contains("no conversation state"), "{}", e.message());
        assert_eq!(refused(with("conversation", json!("conv_1"))).param(), Some("conversation"));
        assert_eq!(refused(with("prompt", json!({"id": "pmpt_1"}))).param(), Some("prompt"));
        assert_eq!(refused(with("background", json!(true))).param(), Some("background"));
        for tool in ["web_search", "web_search_preview", "file_search", "code_interpreter", "image_generation", "mcp"] {
            let e = refused(with("tools", json!([{"type": tool}])));
            assert_eq!((e.status(), e.param()), (400, Some("tools[0].type")));
            assert!(e.message().contains(tool), "{}", e.message());
        }
        assert_eq!(refused(with("tools", json!([{"type": "function"}]))).param(), Some("tools[0].name"));
        assert_eq!(refused(json!({"model": "m"})).param(), Some("input"));
        assert_eq!(refused(with("input", json!([]))).param(), Some("input"));
        assert_eq!(
            refused(with("input", json!([{"type": "item_reference", "id": "msg_1"}]))).param(),
            Some("input[0].type")
        );
        assert_eq!(refused(with("input", json!([{"type": "web_search_call"}]))).param(), Some("input[0].type"));
        assert_eq!(refused(with("input", json!([{"role": "tool", "content": "x"}]))).param(), Some("input[0].role"));
        assert_eq!(
            refused(with("input", json!([{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}])))
                .param(),
            Some("input[0].content[0].type")
        );
        assert_eq!(
            refused(with("input", json!([{"type": "function_call_output", "output": "x"}]))).param(),
            Some("input[0].call_id")
        );
        assert_eq!(refused(with("tool_choice", json!("sometimes"))).param(), Some("tool_choice"));
        assert_eq!(
            refused(with("tool_choice", json!({"type": "web_search_preview"}))).param(),
            Some("tool_choice.type")
        );
        assert_eq!(refused(with("temperature", json!(3.0))).param(), Some("temperature"));
        assert_eq!(refused(with("max_output_tokens", json!(0))).param(), Some("max_output_tokens"));
        assert_eq!(refused(with("instructions", json!(["x"]))).param(), Some("instructions"));
        assert_eq!(refused(with("text", json!({"format": {"type": "xml"}}))).param(), Some("text.format.type"));
        // `store` and `previous_response_id: null` are fine.
        let mut ok = with("store", json!(true));
        ok["previous_response_id"] = Value::Null;
        assert!(to_chat_request(parse(ok)).is_ok());
    }
}
