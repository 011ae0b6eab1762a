//! OpenAI chat completions: OpenAI itself, DeepSeek and every OpenAI-compatible endpoint.
//!
//! The caller's request is already in this format, so it goes upstream almost untouched and the
//! answer comes back byte for byte (the HTTP plumbing is in `http.rs`). [`completion_body`] is
//! shared with the translating clients, which use it to speak OpenAI's response shape.

use std::borrow::Cow;

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::http::{
    ErrorBody, MAX_MESSAGE_CHARS, error_in_ok_body, malformed, open, send, send_with, truncate, with_key,
};
use super::sse::SseEvent;
use super::stream::{Translate, UpstreamStream, done_frame, frame, truncated};
use super::{Call, EmbeddingCall, ListedModel, ProviderError, ProviderErrorKind, ProviderReply};
use crate::domain::{
    ChatMessage, EmbeddingInput, EncodingFormat, MessageContent, Provider, ProviderKind, StopSequences, Usage,
};
use crate::secret::SecretString;

pub(super) async fn chat(http: &reqwest::Client, call: Call<'_>) -> Result<ProviderReply, ProviderError> {
    let body = send(request(http, &call, false)?, &call).await?;
    parse_completion(body, &call)
}

/// Opens a streaming call; usage is always requested upstream (`stream_options.include_usage`)
/// so every stream can be billed, and forwarded to the caller only when it asked for it.
pub(super) async fn chat_stream(
    http: &reqwest::Client,
    call: Call<'_>,
    caller_wants_usage: bool,
) -> Result<UpstreamStream, ProviderError> {
    let response = open(request(http, &call, true)?, &call).await?;
    Ok(UpstreamStream::new(response, Box::new(OpenAiChunks::new(caller_wants_usage)), call.timeout))
}

/// `GET {base}/models` (OpenAI, DeepSeek, compatible servers). Beyond `id`, the optional fields
/// some servers add (DeepSeek's `name`, `context_window`, `max_output_tokens`,
/// `input_modalities`) are read where present.
pub(super) async fn list_models(
    http: &reqwest::Client,
    provider: &Provider,
    key: &SecretString,
    timeout: std::time::Duration,
) -> Result<Vec<ListedModel>, ProviderError> {
    let url = format!("{}/models", base_url(provider).trim_end_matches('/'));
    let request = with_key(http.get(url), provider.kind, key)?;
    let body = send_with(request, provider.kind, &provider.headers, timeout, key).await?;
    let list: ModelList = serde_json::from_slice(&body).map_err(|e| malformed(&body, &e, key))?;
    Ok(list
        .data
        .into_iter()
        .filter(|m| !m.id.trim().is_empty())
        .map(|m| ListedModel {
            id: m.id,
            display_name: m.name.filter(|n| !n.trim().is_empty()),
            context_window: m.context_window.filter(|n| *n > 0),
            max_output_tokens: m.max_output_tokens.filter(|n| *n > 0),
            supports_vision: m.input_modalities.map(|modes| modes.iter().any(|m| m == "image")),
        })
        .collect())
}

/// `POST {base}/embeddings`: the caller's request with `model` swapped for the provider's name,
/// everything else as given; the answer comes back byte for byte (`float` or `base64` alike).
pub(super) async fn embeddings(
    http: &reqwest::Client,
    call: EmbeddingCall<'_>,
) -> Result<ProviderReply, ProviderError> {
    let r = call.request;
    let wire = WireEmbeddings {
        model: &call.model.model,
        input: &r.input,
        dimensions: r.dimensions,
        encoding_format: r.encoding_format,
        user: r.user.as_deref(),
        extra: &r.extra,
    };
    let body = serde_json::to_vec(&wire).map_err(|e| {
        ProviderError::new(ProviderErrorKind::InvalidRequest, None, format!("could not encode the request: {e}"))
    })?;
    let url = format!("{}/embeddings", base_url(call.provider).trim_end_matches('/'));
    let request =
        with_key(http.post(url), call.provider.kind, call.api_key)?.header(CONTENT_TYPE, "application/json").body(body);
    let body = send_with(request, call.provider.kind, &call.provider.headers, call.timeout, call.api_key).await?;
    if let Some(error) = error_in_ok_body(call.provider.kind, &body, call.api_key) {
        return Err(error);
    }
    let list: EmbeddingList = serde_json::from_slice(&body).map_err(|e| malformed(&body, &e, call.api_key))?;
    // Embeddings bill input only; a server that reports just `total_tokens` bills that as input.
    let prompt_tokens = list.usage.and_then(|u| u.prompt_tokens.or(u.total_tokens)).unwrap_or(0);
    let model = list.model.filter(|m| !m.is_empty()).unwrap_or_else(|| call.model.model.clone());
    Ok(ProviderReply { body, usage: Usage { prompt_tokens, ..Usage::default() }, model })
}

#[derive(Serialize)]
struct WireEmbeddings<'a> {
    model: &'a str,
    input: &'a EmbeddingInput,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding_format: Option<EncodingFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

/// Just enough of OpenAI's embedding list to check its shape and read usage.
#[derive(Deserialize)]
struct EmbeddingList {
    #[serde(default)]
    model: Option<String>,
    #[allow(dead_code, reason = "required so a body without `data` is rejected")]
    data: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    usage: Option<EmbeddingUsage>,
}

#[derive(Deserialize)]
struct EmbeddingUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ListedWireModel>,
}

#[derive(Deserialize)]
struct ListedWireModel {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    context_window: Option<u64>,
    #[serde(default)]
    max_output_tokens: Option<u64>,
    #[serde(default)]
    input_modalities: Option<Vec<String>>,
}

/// The provider's `base_url`, else its kind's public endpoint.
fn base_url(provider: &Provider) -> &str {
    match provider.base_url.trim() {
        "" => provider.kind.spec().default_base_url,
        base => base,
    }
}

fn request(http: &reqwest::Client, call: &Call<'_>, stream: bool) -> Result<reqwest::RequestBuilder, ProviderError> {
    let mut wire = WireRequest::new(call);
    if stream {
        wire.stream = Some(true);
        wire.stream_options = Some(StreamOptions { include_usage: true });
    }
    let body = serde_json::to_vec(&wire).map_err(|e| {
        ProviderError::new(ProviderErrorKind::InvalidRequest, None, format!("could not encode the request: {e}"))
    })?;
    let url = format!("{}/chat/completions", base_url(call.provider).trim_end_matches('/'));
    Ok(with_key(http.post(url), call.provider.kind, call.api_key)?.header(CONTENT_TYPE, "application/json").body(body))
}

/// The caller's request as sent upstream, borrowed rather than cloned: `model` swapped for the
/// provider's name, `stream` set only by [`chat_stream`], everything else as given.
#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Cow<'a, [ChatMessage]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<&'a StopSequences>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(flatten)]
    extra: Extra<'a>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

impl<'a> WireRequest<'a> {
    fn new(call: &Call<'a>) -> Self {
        let r = call.request;
        let spec = call.provider.kind.spec();
        let (max_tokens, max_completion_tokens) = match spec.max_tokens_only {
            true => (r.requested_max_tokens(), None),
            false => (r.max_tokens, r.max_completion_tokens),
        };
        let (messages, response_format) = match call.provider.kind {
            ProviderKind::Deepseek => deepseek_json_output(&r.messages, r.extra.get("response_format")),
            _ => (Cow::Borrowed(r.messages.as_slice()), None),
        };
        Self {
            model: &call.model.model,
            messages,
            max_tokens,
            max_completion_tokens,
            temperature: r.temperature,
            top_p: r.top_p,
            stop: r.stop.as_ref(),
            user: r.user.as_deref(),
            stream: None,
            stream_options: None,
            // What the API refuses and got here is being dropped (`drop_params`).
            extra: Extra {
                fields: &r.extra,
                response_format,
                without_n: !spec.several_choices,
                without_logprobs: !spec.logprobs,
            },
        }
    }
}

/// DeepSeek's JSON output takes only `{"type": "json_object"}` and refuses a prompt without the
/// word "json" (its documented rules). A `json_schema` becomes `json_object` plus a system message
/// carrying the schema; a bare `json_object` gets a one-line JSON instruction when the prompt
/// lacks the word. Returns the messages to send and the `response_format` to send instead.
fn deepseek_json_output<'a>(
    messages: &'a [ChatMessage],
    format: Option<&Value>,
) -> (Cow<'a, [ChatMessage]>, Option<Value>) {
    let unchanged = (Cow::Borrowed(messages), None);
    let Some(format) = format else { return unchanged };
    let instruction = match format.get("type").and_then(Value::as_str) {
        Some("json_schema") => {
            let spec = format.get("json_schema");
            let schema = spec.and_then(|s| s.get("schema")).cloned().unwrap_or_else(|| Value::Object(Map::new()));
            let name = spec.and_then(|s| s.get("name")).and_then(Value::as_str).unwrap_or("output");
            format!(
                "Answer with one JSON object only (no prose, no code fences) that conforms to this JSON schema, named `{name}`:\n{schema}"
            )
        }
        Some("json_object") if !mentions_json(messages) => "Answer with one JSON object only.".to_string(),
        Some("json_object") => return unchanged,
        _ => return unchanged,
    };
    // After the caller's own leading system messages, so theirs still come first.
    let at = messages.iter().take_while(|m| m.role == "system").count();
    let mut sent = messages.to_vec();
    sent.insert(
        at,
        ChatMessage {
            role: "system".into(),
            content: Some(MessageContent::Text(instruction)),
            name: None,
            extra: Map::new(),
        },
    );
    (Cow::Owned(sent), Some(serde_json::json!({"type": "json_object"})))
}

fn mentions_json(messages: &[ChatMessage]) -> bool {
    messages.iter().filter_map(|m| m.content.as_ref()).any(|c| c.text().to_ascii_lowercase().contains("json"))
}

/// The caller's unknown fields, minus those that only make sense with `stream: true`
/// (OpenAI rejects `stream_options` on a non-streaming request), with `response_format`
/// replaced when the provider needs it in another form.
struct Extra<'a> {
    fields: &'a Map<String, Value>,
    response_format: Option<Value>,
    without_n: bool,
    without_logprobs: bool,
}

impl Serialize for Extra<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // `drop_params` is Maestro's own switch; the stream fields are set by the call itself.
        let replaced = self.response_format.is_some();
        let kept = self.fields.iter().filter(|(k, _)| match k.as_str() {
            "stream" | "stream_options" | "drop_params" => false,
            "response_format" => !replaced,
            "n" => !self.without_n,
            "logprobs" | "top_logprobs" => !self.without_logprobs,
            _ => true,
        });
        let replacement = self.response_format.as_ref().map(|f| (&"response_format", f));
        serializer.collect_map(kept.map(|(k, v)| (k.as_str(), v)).chain(replacement.map(|(k, v)| (*k, v))))
    }
}

/// Just enough of a `chat.completion` to check its shape and read usage; the rest stays bytes.
#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    model: Option<String>,
    #[allow(dead_code, reason = "required so a body without `choices` is rejected")]
    choices: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    total_tokens: Option<u64>,
    /// DeepSeek's own name for cache reads.
    #[serde(default)]
    prompt_cache_hit_tokens: Option<u64>,
    /// Kimi's (older answers carry only this one, newer ones both).
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        let prompt_tokens = u.prompt_tokens.unwrap_or(0);
        let completion_tokens = u.completion_tokens.unwrap_or(0);
        // Gemini counts thinking tokens in `total_tokens` only, and bills them as output: what
        // the total holds beyond prompt and completion is generated text all the same.
        let beyond = u.total_tokens.map_or(0, |total| total.saturating_sub(prompt_tokens + completion_tokens));
        Usage {
            prompt_tokens,
            completion_tokens: completion_tokens + beyond,
            cached_tokens: u
                .prompt_cache_hit_tokens
                .or(u.prompt_tokens_details.and_then(|d| d.cached_tokens))
                .or(u.cached_tokens)
                .unwrap_or(0),
            cache_write_tokens: 0,
        }
    }
}

fn parse_completion(body: Bytes, call: &Call<'_>) -> Result<ProviderReply, ProviderError> {
    if let Some(error) = error_in_ok_body(call.provider.kind, &body, call.api_key) {
        return Err(error);
    }
    let completion: Completion = serde_json::from_slice(&body).map_err(|e| malformed(&body, &e, call.api_key))?;
    let usage = completion.usage.map_or_else(Usage::default, Usage::from);
    let model = completion.model.filter(|m| !m.is_empty()).unwrap_or_else(|| call.model.model.clone());
    Ok(ProviderReply { body, usage, model })
}

/// What a translating client (Anthropic, the demo) answered, to be written as a `chat.completion`.
pub(super) struct Answer<'a> {
    pub id: &'a str,
    pub model: &'a str,
    /// `None` is sent as `"content": null`, as OpenAI does for a message without text.
    pub content: Option<&'a str>,
    /// Thinking text, under DeepSeek's `reasoning_content` name.
    pub reasoning: Option<&'a str>,
    /// OpenAI `tool_calls` entries (`{id, type: "function", function: {name, arguments}}`).
    pub tool_calls: &'a [Value],
    pub finish_reason: &'a str,
    pub usage: Usage,
}

/// Writes an [`Answer`] as OpenAI's `chat.completion` JSON.
pub(super) fn completion_body(answer: &Answer<'_>) -> Result<Bytes, ProviderError> {
    let usage = answer.usage;
    let out = OutCompletion {
        id: answer.id,
        object: "chat.completion",
        created: crate::time::now_ms() / 1000,
        model: answer.model,
        choices: [OutChoice {
            index: 0,
            message: OutMessage {
                role: "assistant",
                content: answer.content,
                refusal: None,
                reasoning_content: answer.reasoning,
                tool_calls: answer.tool_calls,
            },
            logprobs: None,
            finish_reason: answer.finish_reason,
        }],
        usage: OutUsage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total(),
            prompt_tokens_details: OutPromptDetails { cached_tokens: usage.cached_tokens },
        },
    };
    serde_json::to_vec(&out).map(Bytes::from).map_err(|e| {
        ProviderError::new(ProviderErrorKind::MalformedResponse, None, format!("could not encode the answer: {e}"))
    })
}

#[derive(Serialize)]
struct OutCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: [OutChoice<'a>; 1],
    usage: OutUsage,
}

#[derive(Serialize)]
struct OutChoice<'a> {
    index: u32,
    message: OutMessage<'a>,
    logprobs: Option<Value>,
    finish_reason: &'a str,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    /// Required by OpenAI's schema (`null` when the model did not refuse).
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "<[Value]>::is_empty")]
    tool_calls: &'a [Value],
}

#[derive(Serialize)]
struct OutUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: OutPromptDetails,
}

#[derive(Serialize)]
struct OutPromptDetails {
    cached_tokens: u64,
}

/// OpenAI-format streams pass through frame by frame; only usage is read on the way, and the
/// usage-only chunk Maestro asked for is held back from callers who did not ask for it.
pub(super) struct OpenAiChunks {
    forward_usage_chunk: bool,
    usage: Usage,
    chars: u64,
    saw_done: bool,
    saw_finish: bool,
    saw_usage: bool,
}

impl OpenAiChunks {
    pub(super) fn new(forward_usage_chunk: bool) -> Self {
        Self {
            forward_usage_chunk,
            usage: Usage::default(),
            chars: 0,
            saw_done: false,
            saw_finish: false,
            saw_usage: false,
        }
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<ChunkDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChunkDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
}

impl Translate for OpenAiChunks {
    fn on_event(&mut self, event: &SseEvent) -> Result<Vec<Bytes>, ProviderError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(Vec::new());
        }
        if data == "[DONE]" {
            self.saw_done = true;
            return Ok(vec![done_frame()]);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            ProviderError::new(ProviderErrorKind::MalformedResponse, None, format!("a stream chunk is not JSON: {e}"))
        })?;
        if let Some(error) = chunk.error {
            let message = error.message.unwrap_or_else(|| "the provider reported an error mid-stream".to_string());
            return Err(ProviderError::new(ProviderErrorKind::Server, None, truncate(&message, MAX_MESSAGE_CHARS)));
        }
        for choice in &chunk.choices {
            if let Some(delta) = &choice.delta {
                self.chars += delta.content.as_deref().map_or(0, |c| c.chars().count() as u64);
                self.chars += delta.reasoning_content.as_deref().map_or(0, |c| c.chars().count() as u64);
            }
            self.saw_finish |= choice.finish_reason.is_some();
        }
        let usage_only = chunk.choices.is_empty() && chunk.usage.is_some();
        if let Some(usage) = chunk.usage {
            self.usage = usage.into();
            self.saw_usage = true;
        }
        if usage_only && !self.forward_usage_chunk {
            return Ok(Vec::new());
        }
        // JSON never needs a raw newline, so one inside multi-line `data:` is plain whitespace.
        let mut data = data.replace('\n', " ");
        if !self.forward_usage_chunk {
            // Maestro asked for usage, the caller did not: per OpenAI's schema, its chunks then
            // carry no `usage` at all. (Inside a JSON string the quotes would be escaped, so
            // only the top-level field can match.)
            data = data.replace(r#","usage":null"#, "");
        }
        Ok(vec![frame(data.as_bytes())])
    }

    fn on_end(&mut self) -> Result<Vec<Bytes>, ProviderError> {
        match (self.saw_done, self.saw_finish) {
            (true, _) => Ok(Vec::new()),
            // Some compatible servers end without `[DONE]`; a stream that finished and reported
            // its usage is complete all the same, and the caller still gets a `[DONE]`.
            (false, true) if self.saw_usage => Ok(vec![done_frame()]),
            _ => Err(truncated()),
        }
    }

    fn usage(&self) -> Usage {
        self.usage
    }

    fn generated_chars(&self) -> u64 {
        self.chars
    }

    fn is_complete(&self) -> bool {
        self.saw_done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_carry_usage_null_only_for_callers_who_asked_for_usage() {
        let chunk = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"say \",\"usage\":null"},"finish_reason":null}],"usage":null}"#;
        let event = crate::providers::sse::SseEvent { event: None, data: chunk.to_string() };
        let sent = |wants: bool| {
            let frames = OpenAiChunks::new(wants).on_event(&event).unwrap_or_default();
            frames.iter().map(|f| String::from_utf8_lossy(f).to_string()).collect::<String>()
        };
        assert!(sent(true).contains(r#"}],"usage":null}"#));
        let plain = sent(false);
        assert!(!plain.contains(r#"}],"usage":null"#), "{plain}");
        assert!(plain.contains(r#"say \",\"usage\":null"#), "text that looks like the field stays: {plain}");
    }

    #[test]
    fn stream_fields_are_dropped_from_extra() {
        let mut extra = Map::new();
        extra.insert("stream_options".into(), serde_json::json!({"include_usage": true}));
        extra.insert("seed".into(), serde_json::json!(7));
        let out = serde_json::to_value(Extra {
            fields: &extra,
            response_format: None,
            without_n: false,
            without_logprobs: false,
        })
        .unwrap_or_default();
        assert_eq!(out, serde_json::json!({"seed": 7}));
    }

    fn said(role: &str, text: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: Some(MessageContent::Text(text.into())),
            name: None,
            extra: Map::new(),
        }
    }

    #[test]
    fn deepseek_gets_json_object_and_the_schema_in_a_system_message() {
        let schema = serde_json::json!({"type": "object", "properties": {"age": {"type": "integer"}}});
        let format = serde_json::json!({"type": "json_schema", "json_schema": {"name": "person", "schema": schema}});
        let messages = [said("system", "Be brief."), said("user", "Who?")];
        let (sent, replaced) = deepseek_json_output(&messages, Some(&format));
        assert_eq!(replaced, Some(serde_json::json!({"type": "json_object"})));
        let roles: Vec<&str> = sent.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "system", "user"], "the caller's system message stays first");
        let instruction = sent[1].content.as_ref().map(MessageContent::text).unwrap_or_default();
        assert!(instruction.contains("JSON schema, named `person`"), "{instruction}");
        assert!(instruction.contains(&schema.to_string()), "{instruction}");

        let mut extra = Map::new();
        extra.insert("response_format".into(), format);
        extra.insert("seed".into(), serde_json::json!(7));
        extra.insert("n".into(), serde_json::json!(2));
        extra.insert("logprobs".into(), serde_json::json!(true));
        extra.insert("top_logprobs".into(), serde_json::json!(2));
        let out = serde_json::to_value(Extra {
            fields: &extra,
            response_format: replaced,
            without_n: true,
            without_logprobs: true,
        })
        .unwrap_or_default();
        assert_eq!(out, serde_json::json!({"seed": 7, "response_format": {"type": "json_object"}}));
    }

    #[test]
    fn deepseek_json_object_gets_the_word_json_only_when_the_prompt_lacks_it() {
        let format = serde_json::json!({"type": "json_object"});
        let asked = [said("user", "Reply in JSON: who?")];
        let (sent, replaced) = deepseek_json_output(&asked, Some(&format));
        assert_eq!((sent.len(), replaced), (1, None));
        let plain = [said("user", "Who?")];
        let (sent, replaced) = deepseek_json_output(&plain, Some(&format));
        assert_eq!(sent.len(), 2);
        assert_eq!(
            sent[0].content.as_ref().map(MessageContent::text).as_deref(),
            Some("Answer with one JSON object only.")
        );
        assert_eq!(replaced, Some(format));
        let (sent, replaced) = deepseek_json_output(&plain, Some(&serde_json::json!({"type": "text"})));
        assert_eq!((sent.len(), replaced), (1, None));
    }
}
