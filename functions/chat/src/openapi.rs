//! The business API's part of the OpenAPI document: the handlers carry `#[utoipa::path]`; the
//! request and response shapes they read and write as JSON (OpenAI's and Anthropic's wire
//! formats, which the gateway passes on largely untouched) are described here. Fields beyond
//! the ones named are accepted and passed upstream.

use maestro_shared::openapi::{ErrorDetail, ErrorResponse};
use serde::Serialize;
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

/// One chat message (OpenAI's shape): `content` is text or a list of parts.
#[derive(Serialize, ToSchema)]
pub(crate) struct ChatMessageDoc {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Text, or parts (`{"type":"text","text":…}`, `{"type":"image_url","image_url":{"url":…}}`).
    #[schema(value_type = Object)]
    pub content: Option<Value>,
}

/// An OpenAI chat completion request.
#[derive(Serialize, ToSchema)]
pub(crate) struct ChatCompletionRequestDoc {
    /// `provider/model`, a bare model name (its default provider) or a route name.
    pub model: String,
    pub messages: Vec<ChatMessageDoc>,
    /// `true`: the answer comes as Server-Sent Events.
    pub stream: Option<bool>,
    pub max_tokens: Option<u64>,
    pub max_completion_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// A string or a list of strings.
    #[schema(value_type = Object)]
    pub stop: Option<Value>,
    /// Function tools, in OpenAI's shape.
    #[schema(value_type = Vec<Object>)]
    pub tools: Option<Vec<Value>>,
    #[schema(value_type = Object)]
    pub tool_choice: Option<Value>,
    /// `{"include_usage": true}` to get a final usage chunk in a stream.
    #[schema(value_type = Object)]
    pub stream_options: Option<Value>,
}

/// OpenAI's `chat.completion` (as the provider answered, or translated to this shape).
#[derive(Serialize, ToSchema)]
pub(crate) struct ChatCompletionDoc {
    pub id: String,
    /// `chat.completion`.
    pub object: String,
    pub created: i64,
    pub model: String,
    #[schema(value_type = Vec<Object>)]
    pub choices: Vec<Value>,
    #[schema(value_type = Object)]
    pub usage: Option<Value>,
}

/// An OpenAI embeddings request.
#[derive(Serialize, ToSchema)]
pub(crate) struct EmbeddingsRequestDoc {
    /// An embedding model: `provider/model`, a bare model name or a route name.
    pub model: String,
    /// A string, an array of up to 2048 strings, an array of token ids, or an array of arrays of
    /// token ids; no string or array may be empty.
    #[schema(value_type = Object)]
    pub input: Value,
    /// The size of each vector, for models that can shorten theirs (at least 1).
    pub dimensions: Option<u64>,
    /// `float` (the default) or `base64` (little-endian float32s); passed to the provider.
    pub encoding_format: Option<String>,
    pub user: Option<String>,
}

/// One embedding.
#[derive(Serialize, ToSchema)]
pub(crate) struct EmbeddingDoc {
    /// `embedding`.
    pub object: String,
    pub index: u64,
    /// An array of numbers, or a base64 string with `encoding_format: base64`.
    #[schema(value_type = Object)]
    pub embedding: Value,
}

/// The embeddings' token usage (input only).
#[derive(Serialize, ToSchema)]
pub(crate) struct EmbeddingUsageDoc {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}

/// OpenAI's embedding list, as the provider answered it.
#[derive(Serialize, ToSchema)]
pub(crate) struct EmbeddingListDoc {
    /// `list`.
    pub object: String,
    pub data: Vec<EmbeddingDoc>,
    /// The provider's model name.
    pub model: String,
    pub usage: EmbeddingUsageDoc,
}

/// An Anthropic Messages request (`max_tokens` required).
#[derive(Serialize, ToSchema)]
pub(crate) struct MessagesRequestDoc {
    /// `provider/model`, a bare model name or a route name: any provider, not only Claude.
    pub model: String,
    pub max_tokens: u64,
    /// `{"role": "user"|"assistant", "content": text or blocks}`.
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Value>,
    /// Text or text blocks.
    #[schema(value_type = Object)]
    pub system: Option<Value>,
    pub stream: Option<bool>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop_sequences: Option<Vec<String>>,
    #[schema(value_type = Vec<Object>)]
    pub tools: Option<Vec<Value>>,
    #[schema(value_type = Object)]
    pub tool_choice: Option<Value>,
}

/// An Anthropic `message`.
#[derive(Serialize, ToSchema)]
pub(crate) struct MessageDoc {
    pub id: String,
    /// `message`.
    #[serde(rename = "type")]
    pub kind: String,
    pub role: String,
    pub model: String,
    #[schema(value_type = Vec<Object>)]
    pub content: Vec<Value>,
    pub stop_reason: Option<String>,
    #[schema(value_type = Object)]
    pub usage: Value,
}

/// An OpenAI Responses request (stateless: no `previous_response_id`; `store` is ignored).
#[derive(Serialize, ToSchema)]
pub(crate) struct ResponsesRequestDoc {
    /// `provider/model`, a bare model name or a route name: any provider, not only OpenAI.
    pub model: String,
    /// A string (one user message) or a list of items: `message` (`input_text`, `input_image`,
    /// `output_text` parts), `function_call`, `function_call_output`, `reasoning`.
    #[schema(value_type = Object)]
    pub input: Value,
    /// A system message before the input.
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// `true`: the answer comes as the Responses event stream.
    pub stream: Option<bool>,
    /// Function tools (`{"type":"function","name","description","parameters","strict"}`); built-in
    /// tools are refused.
    #[schema(value_type = Vec<Object>)]
    pub tools: Option<Vec<Value>>,
    /// `auto`, `none`, `required` or `{"type":"function","name"}`.
    #[schema(value_type = Object)]
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    /// `{"format": {"type": "text" | "json_object" | "json_schema", …}}`.
    #[schema(value_type = Object)]
    pub text: Option<Value>,
    /// Accepted and ignored: Maestro stores nothing.
    pub store: Option<bool>,
}

/// An OpenAI `response` object.
#[derive(Serialize, ToSchema)]
pub(crate) struct ResponseDoc {
    /// `resp_…`, from the call's request id.
    pub id: String,
    /// `response`.
    pub object: String,
    pub created_at: i64,
    /// `completed`, `incomplete` (`incomplete_details.reason`) or `failed`.
    pub status: String,
    pub model: String,
    /// `message`, `function_call` and `reasoning` items.
    #[schema(value_type = Vec<Object>)]
    pub output: Vec<Value>,
    /// `{input_tokens, input_tokens_details: {cached_tokens}, output_tokens,
    /// output_tokens_details: {reasoning_tokens}, total_tokens}`.
    #[schema(value_type = Object)]
    pub usage: Option<Value>,
}

/// `{"input_tokens": n}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct InputTokensDoc {
    pub input_tokens: u64,
}

/// Anthropic's error shape, used on `/v1/messages*`.
#[derive(Serialize, ToSchema)]
pub(crate) struct AnthropicErrorDoc {
    /// `error`.
    #[serde(rename = "type")]
    pub kind: String,
    pub error: AnthropicErrorDetailDoc,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AnthropicErrorDetailDoc {
    /// `invalid_request_error`, `authentication_error`, `permission_error`, `not_found_error`,
    /// `rate_limit_error`, `api_error`, `overloaded_error`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

/// One entry of `/v1/models`: an active `provider/model` or a route.
#[derive(Serialize, ToSchema)]
pub(crate) struct ModelEntryDoc {
    /// `provider/model`, or a route name.
    pub id: String,
    /// `model`.
    pub object: String,
    pub created: i64,
    /// The provider code, or `maestro-route`.
    pub owned_by: String,
    pub max_output_tokens: Option<u64>,
    pub context_window: Option<u64>,
    /// A route's targets.
    pub targets: Option<Vec<String>>,
}

/// OpenAI's list shape.
#[derive(Serialize, ToSchema)]
pub(crate) struct ModelListDoc {
    /// `list`.
    pub object: String,
    pub data: Vec<ModelEntryDoc>,
}

/// The prompt tokens of a chat request.
#[derive(Serialize, ToSchema)]
pub(crate) struct CountTokensDoc {
    /// The `provider/model` the request resolved to.
    pub model: String,
    pub prompt_tokens: u64,
    /// `false`: exact (tiktoken, OpenAI models); `true`: an estimate.
    pub estimated: bool,
}

/// A provider that can serve now.
#[derive(Serialize, ToSchema)]
pub(crate) struct AvailableProviderDoc {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub usable_keys: u64,
    pub models: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AvailableProvidersDoc {
    pub providers: Vec<AvailableProviderDoc>,
}

/// One line of an OpenAI batch file.
#[derive(Serialize, ToSchema)]
pub(crate) struct BatchItemDoc {
    /// Your reference for the item, distinct within the batch (1–512 characters).
    pub custom_id: String,
    /// `POST`, when given.
    pub method: Option<String>,
    /// `/v1/chat/completions`, when given.
    pub url: Option<String>,
    /// A chat completion request (`stream` false or left out).
    pub body: ChatCompletionRequestDoc,
}

/// Up to 100 chat requests, answered together.
#[derive(Serialize, ToSchema)]
pub(crate) struct BatchRequestDoc {
    pub requests: Vec<BatchItemDoc>,
}

/// One item's answer: `body` when `status` is 200, else `error`.
#[derive(Serialize, ToSchema)]
pub(crate) struct BatchResultDoc {
    pub custom_id: String,
    /// The HTTP status the item would have had as a single call.
    pub status: u16,
    pub body: Option<ChatCompletionDoc>,
    pub error: Option<ErrorDetail>,
    /// The item's call in the call log (`x-request-id` of a single call).
    pub request_id: Option<String>,
}

/// The items' answers, in the order of the requests.
#[derive(Serialize, ToSchema)]
pub(crate) struct BatchAnswerDoc {
    pub results: Vec<BatchResultDoc>,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        super::chat_completions,
        super::chat_batch,
        super::embeddings,
        super::list_models,
        super::retrieve_model,
        super::count_tokens,
        super::available_providers,
        super::messages::messages,
        super::messages::count_tokens,
        super::responses::responses
    ),
    components(schemas(ErrorResponse, ErrorDetail)),
    tags((name = "chat", description = "The business API (caller token or Maestro API key)"))
)]
pub(crate) struct ChatApi;

/// The errors of the Anthropic-shaped routes, in Anthropic's error shape.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code, reason = "a documentation type: only its OpenAPI form is used")]
pub(crate) enum AnthropicErrors {
    /// Bad input.
    #[response(status = 400)]
    BadRequest(AnthropicErrorDoc),
    /// Missing or bad token.
    #[response(status = 401)]
    Unauthorized(AnthropicErrorDoc),
    /// A Maestro API key that may not use this model.
    #[response(status = 403)]
    Forbidden(AnthropicErrorDoc),
    /// Unknown model or route.
    #[response(status = 404)]
    NotFound(AnthropicErrorDoc),
    /// Body too large.
    #[response(status = 413)]
    TooLarge(AnthropicErrorDoc),
    /// Rate limited (`Retry-After`).
    #[response(status = 429)]
    RateLimited(AnthropicErrorDoc),
    /// Maestro's own failure.
    #[response(status = 500)]
    Internal(AnthropicErrorDoc),
    /// The provider failed.
    #[response(status = 502)]
    BadGateway(AnthropicErrorDoc),
    /// Overloaded, or no usable key.
    #[response(status = 503)]
    Unavailable(AnthropicErrorDoc),
    /// The provider did not answer in time.
    #[response(status = 504)]
    Timeout(AnthropicErrorDoc),
}
