//! OpenAI's Responses API: `POST /v1/responses`, stateless, so the OpenAI SDKs'
//! `client.responses.create` can use Maestro for every provider. The translation lives in
//! `maestro_shared::responses_api`; the call goes through the same gateway (keys, limits,
//! retries, fallback, routes, logs, cost, credits) as `/v1/chat/completions`, recorded with
//! `request_type` `responses`. Errors take OpenAI's shape.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maestro_shared::domain::ChatRequest;
use maestro_shared::error::ApiError;
use maestro_shared::gateway::{Caller, ChatOutcome, ChatStream, REQUEST_TYPE_RESPONSES};
use maestro_shared::http as mhttp;
use maestro_shared::responses_api::{self, Echo, ResponsesRequest, stream::EventTranslator};
use maestro_shared::tokens::quick_prompt_estimate;

use super::{ChatState, caller, deadline_of, openapi};

/// Authentication first, so an anonymous caller learns nothing about the body and cannot make
/// the server buffer one; then the body. A refused body is recorded like a refused chat body.
async fn accept(state: &ChatState, request: Request) -> Result<(Caller, ChatRequest, Echo), ApiError> {
    let caller = caller(state, request.headers()).await?.through(REQUEST_TYPE_RESPONSES);
    let body = mhttp::read_json::<ResponsesRequest>(request).await;
    let stream = body.as_ref().is_ok_and(|b| b.stream == Some(true));
    match body.and_then(responses_api::to_chat_request) {
        Ok((request, echo)) => Ok((caller, request, echo)),
        Err(e) => {
            tracing::info!(user_id = %caller.user_id, status = e.status(), error = %e.message(), "rejected responses body");
            state.gateway.record_rejection(&caller, stream, &e).await;
            Err(e)
        }
    }
}

/// `POST /v1/responses`: OpenAI's Responses API through the gateway, to any provider;
/// `stream: true` answers with the Responses event stream.
#[utoipa::path(post, path = "/v1/responses", tag = "chat", security(("bearer" = [])),
    request_body = openapi::ResponsesRequestDoc,
    responses(
        (status = 200, description = "The response object (or the Responses event stream)", content(
            (openapi::ResponseDoc = "application/json"),
            (String = "text/event-stream"))),
        (status = 400, description = "Bad input, or what needs stored state (`previous_response_id`) or a built-in tool; the error's `param` names the field", body = maestro_shared::openapi::ErrorResponse),
        (status = 401, description = "Missing or bad token", body = maestro_shared::openapi::ErrorResponse),
        (status = 403, description = "A Maestro API key that may not use this model", body = maestro_shared::openapi::ErrorResponse),
        (status = 404, description = "Unknown model or route", body = maestro_shared::openapi::ErrorResponse),
        (status = 413, description = "Body too large", body = maestro_shared::openapi::ErrorResponse),
        (status = 429, description = "Every key at its limit, or the caller's budget spent (`Retry-After`)", body = maestro_shared::openapi::ErrorResponse),
        (status = 500, description = "Maestro's own failure", body = maestro_shared::openapi::ErrorResponse),
        (status = 502, description = "The provider failed after the retries", body = maestro_shared::openapi::ErrorResponse),
        (status = 503, description = "Overloaded, or no usable key", body = maestro_shared::openapi::ErrorResponse),
        (status = 504, description = "The provider did not answer in time", body = maestro_shared::openapi::ErrorResponse)))]
pub(crate) async fn responses(State(state): State<ChatState>, request: Request) -> Response {
    let deadline = deadline_of(&request);
    let (caller, request, echo) = match accept(&state, request).await {
        Ok(accepted) => accepted,
        Err(e) => return e.into_response(),
    };
    let requested_model = request.model.clone();
    if request.is_stream() {
        let estimate = quick_prompt_estimate(&request);
        return match state.gateway.chat_stream_until(&caller, request, deadline).await {
            Ok(stream) => respond_stream(stream, echo, &requested_model, estimate),
            Err(outcome) => respond(outcome, &echo, &requested_model),
        };
    }
    respond(state.gateway.chat_until(&caller, request, deadline).await, &echo, &requested_model)
}

fn respond(outcome: ChatOutcome, echo: &Echo, requested_model: &str) -> Response {
    let ChatOutcome { facts, result } = outcome;
    let id = responses_api::response_id(&facts.request_id);
    let model = facts.model.as_deref().unwrap_or(requested_model);
    let mut response = match result.and_then(|body| responses_api::to_response(&body, &id, model, echo)) {
        Ok(object) => (StatusCode::OK, axum::Json(object)).into_response(),
        Err(e) => e.into_response(),
    };
    facts.set_headers(response.headers_mut());
    response
}

fn respond_stream(stream: ChatStream, echo: Echo, requested_model: &str, input_estimate: u64) -> Response {
    let ChatStream { facts, body } = stream;
    let id = responses_api::response_id(&facts.request_id);
    let model = facts.model.as_deref().unwrap_or(requested_model);
    let translator = EventTranslator::new(&id, echo, model, input_estimate);
    let body = responses_api::responses_events(body, translator);
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/event-stream; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response();
    facts.set_headers(response.headers_mut());
    response
}
