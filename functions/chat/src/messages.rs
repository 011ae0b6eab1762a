//! Anthropic's Messages API: `POST /v1/messages` and `POST /v1/messages/count_tokens`, so the
//! Anthropic SDKs can use Maestro, for Claude and for every other provider. The translation
//! lives in `maestro_shared::anthropic_api`; the call goes through the same gateway (keys,
//! limits, retries, logs, stats) as `/v1/chat/completions`. Errors take Anthropic's shape.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maestro_shared::anthropic_api::{self, MessagesRequest, Purpose};
use maestro_shared::domain::ChatRequest;
use maestro_shared::error::ApiError;
use maestro_shared::gateway::{CallFacts, Caller, ChatOutcome, ChatStream};
use maestro_shared::http as mhttp;
use maestro_shared::tokens::quick_prompt_estimate;
use serde_json::json;

use super::{ChatState, caller_by_api_key_or_bearer, deadline_of, openapi};

/// The header Anthropic's SDKs read the request id from.
const HEADER_ANTHROPIC_REQUEST_ID: &str = "request-id";

/// Authentication first, so an anonymous caller learns nothing about the body and cannot make
/// the server buffer one; then the body.
async fn accept(state: &ChatState, request: Request, purpose: Purpose) -> Result<(Caller, ChatRequest), ApiError> {
    let caller = caller_by_api_key_or_bearer(state, request.headers()).await?;
    let body = mhttp::read_json::<MessagesRequest>(request).await;
    match body.and_then(|body| anthropic_api::to_chat_request(body, purpose)) {
        Ok(request) => Ok((caller, request)),
        Err(e) => {
            tracing::info!(user_id = %caller.user_id, status = e.status(), error = %e.message(), "rejected messages body");
            if purpose == Purpose::Messages {
                state.gateway.record_rejection(&caller, false, &e).await;
            }
            Err(e)
        }
    }
}

/// `POST /v1/messages`: Anthropic's Messages API through the gateway, to any provider; errors
/// in Anthropic's shape. The token may come in `x-api-key`.
#[utoipa::path(post, path = "/v1/messages", tag = "chat", security(("bearer" = [])),
    request_body = openapi::MessagesRequestDoc,
    responses(
        (status = 200, description = "The message (or Anthropic's event stream)", content(
            (openapi::MessageDoc = "application/json"),
            (String = "text/event-stream"))),
        openapi::AnthropicErrors))]
pub(crate) async fn messages(State(state): State<ChatState>, request: Request) -> Response {
    let deadline = deadline_of(&request);
    let (caller, request) = match accept(&state, request, Purpose::Messages).await {
        Ok(accepted) => accepted,
        Err(e) => return anthropic_api::error_response(&e, None),
    };
    let requested_model = request.model.clone();
    if request.is_stream() {
        let estimate = quick_prompt_estimate(&request);
        return match state.gateway.chat_stream_until(&caller, request, deadline).await {
            Ok(stream) => respond_stream(stream, &requested_model, estimate),
            Err(outcome) => respond(outcome, &requested_model),
        };
    }
    respond(state.gateway.chat_until(&caller, request, deadline).await, &requested_model)
}

fn respond(outcome: ChatOutcome, requested_model: &str) -> Response {
    let ChatOutcome { facts, result } = outcome;
    let translated =
        result.and_then(|body| anthropic_api::to_message(&body, facts.model.as_deref().unwrap_or(requested_model)));
    let mut response = match translated {
        Ok(message) => (StatusCode::OK, axum::Json(message)).into_response(),
        Err(e) => anthropic_api::error_response(&e, Some(&facts.request_id)),
    };
    headers(response.headers_mut(), &facts);
    response
}

fn respond_stream(stream: ChatStream, requested_model: &str, input_estimate: u64) -> Response {
    let ChatStream { facts, body } = stream;
    let body = anthropic_api::anthropic_events(body, facts.model.as_deref().unwrap_or(requested_model), input_estimate);
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/event-stream; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response();
    headers(response.headers_mut(), &facts);
    response
}

/// Maestro's headers, and the request id under Anthropic's name too.
fn headers(headers: &mut HeaderMap, facts: &CallFacts) {
    facts.set_headers(headers);
    if let Ok(value) = HeaderValue::from_str(&facts.request_id) {
        headers.insert(HeaderName::from_static(HEADER_ANTHROPIC_REQUEST_ID), value);
    }
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": n}` for the model the request resolves to
/// (exact for OpenAI models, an estimate elsewhere; see `maestro_shared::tokens`).
#[utoipa::path(post, path = "/v1/messages/count_tokens", tag = "chat", security(("bearer" = [])),
    request_body = openapi::MessagesRequestDoc,
    responses((status = 200, description = "The count", body = openapi::InputTokensDoc),
        openapi::AnthropicErrors))]
pub(crate) async fn count_tokens(State(state): State<ChatState>, request: Request) -> Response {
    let (caller, request) = match accept(&state, request, Purpose::CountTokens).await {
        Ok(accepted) => accepted,
        Err(e) => return anthropic_api::error_response(&e, None),
    };
    match state.gateway.count_prompt_tokens(&caller, &request).await {
        Ok((_, count)) => axum::Json(json!({"input_tokens": count.tokens})).into_response(),
        Err(e) => anthropic_api::error_response(&e, None),
    }
}
