//! The business API: OpenAI-compatible chat (and the Messages and Responses APIs over it) and its
//! helpers. Handlers parse, call the gateway in
//! `maestro-shared`, and respond; the rules live there.
//!
//! Every route takes `Authorization: Bearer <JWT or Maestro API key>` (see
//! `maestro_shared::auth::callers`). A Maestro API key (`mk-…`) acts as its owner and is held
//! to its allowed models (403 otherwise; `/v1/models` lists only those) and limits (enforced by
//! the gateway, 429).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use maestro_shared::auth::callers::authenticate_token;
use maestro_shared::auth::{JwtAuth, authenticate_caller};
use maestro_shared::domain::{ChatRequest, EmbeddingsBody};
use maestro_shared::error::ApiError;
use maestro_shared::gateway::{
    BatchRequest, Caller, ChatOutcome, ChatStream, EMBEDDINGS_REQUEST_TYPE, Gateway, ModelListing,
};
use maestro_shared::http as mhttp;
use serde_json::{Value, json};

mod messages;
mod openapi;
mod responses;

use maestro_shared::openapi::ErrorResponse;

/// The business API's OpenAPI document (the aliases `/api/ai/chat/completions` and
/// `/api/ai/embeddings`, and the `GET` of available-providers, copied from the operations they
/// share a handler with).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut spec = openapi::ChatApi::openapi();
    let paths = &mut spec.paths.paths;
    for (path, alias, operation) in [
        ("/v1/chat/completions", "/api/ai/chat/completions", "chat_completions_alias"),
        ("/v1/embeddings", "/api/ai/embeddings", "embeddings_alias"),
    ] {
        if let Some(mut item) = paths.get(path).cloned() {
            if let Some(op) = item.post.as_mut() {
                op.operation_id = Some(operation.to_string());
            }
            paths.insert(alias.to_string(), item);
        }
    }
    if let Some(item) = paths.get_mut("/api/ai/chat/available-providers")
        && let Some(mut get) = item.post.clone()
    {
        get.operation_id = Some("available_providers_get".to_string());
        item.get = Some(get);
    }
    spec
}

/// What the chat routes need: the gateway, the token verifier, the body limit.
#[derive(Clone)]
pub struct ChatState {
    pub gateway: Arc<Gateway>,
    pub auth: Arc<JwtAuth>,
    pub max_body_bytes: usize,
}

pub fn router(state: ChatState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/api/ai/chat/completions", post(chat_completions))
        .route("/api/ai/chat/batch", post(chat_batch))
        .route("/v1/embeddings", post(embeddings))
        .route("/api/ai/embeddings", post(embeddings))
        .route("/v1/messages", post(messages::messages))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route("/v1/responses", post(responses::responses))
        .route("/v1/models", get(list_models))
        // Ids hold a slash (`openai/gpt-4o-mini`): a wildcard takes the rest of the path.
        .route("/v1/models/{*id}", get(retrieve_model))
        .route("/api/ai/chat/count-tokens", post(count_tokens))
        .route("/api/ai/chat/available-providers", post(available_providers).get(available_providers))
        .method_not_allowed_fallback(mhttp::method_not_allowed)
        .layer(mhttp::body_limit(limit))
        .with_state(state)
}

/// The instant a call must be over by (see [`with_invocation_deadline`]).
#[derive(Debug, Clone, Copy)]
struct CallDeadline(Instant);

/// Ends every call `margin` before the Lambda invocation's deadline, which `lambda_http` puts in
/// the request's extensions: a stream still running then ends in-band and is recorded, a
/// non-streamed call gets a 504. Without a Lambda context (the local runner) nothing changes.
pub fn with_invocation_deadline(router: Router, margin: Duration) -> Router {
    router.layer(axum::middleware::map_request(move |mut request: Request| async move {
        if let Some(deadline) =
            request.extensions().get::<lambda_http::Context>().and_then(|c| call_deadline(c, margin))
        {
            request.extensions_mut().insert(CallDeadline(deadline));
        }
        request
    }))
}

/// The invocation's deadline (unix ms) less `margin`, as an `Instant`. A real invocation's
/// deadline is always ahead; none (0) or one already past is an emulator's placeholder
/// (`cargo lambda watch` sends a fixed 600000) and sets no deadline.
fn call_deadline(context: &lambda_http::Context, margin: Duration) -> Option<Instant> {
    let left = context.deadline().duration_since(SystemTime::now()).ok().filter(|left| !left.is_zero())?;
    Some(Instant::now() + left.saturating_sub(margin))
}

/// The deadline [`with_invocation_deadline`] set on this request, if any.
fn deadline_of(request: &Request) -> Option<Instant> {
    request.extensions().get::<CallDeadline>().map(|d| d.0)
}

/// The caller: a JWT, or a Maestro API key looked up through the gateway's (cached) key store;
/// with the request's `x-maestro-tags`.
async fn caller(state: &ChatState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let keys = state.gateway.backends().caller_keys.as_ref();
    let caller = authenticate_caller(&state.auth, keys, mhttp::authorization(headers)).await?;
    caller.tagged(tags(headers)).with_cache_header(cache_header(headers))
}

/// The `x-maestro-cache` header (`on`, `off`, `refresh`), if sent; unreadable bytes are sent on
/// as themselves, to be refused with the other wrong values.
fn cache_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(maestro_shared::cache::HEADER_CACHE).map(|v| v.to_str().unwrap_or("?"))
}

/// The `x-maestro-tags` header, if readable.
fn tags(headers: &HeaderMap) -> Option<&str> {
    headers.get(mhttp::HEADER_TAGS).and_then(|v| v.to_str().ok())
}

/// The caller's Maestro token (a JWT or a Maestro API key `mk-…`), from `x-api-key` (what the
/// Anthropic SDKs send) or `Authorization: Bearer`.
async fn caller_by_api_key_or_bearer(state: &ChatState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let keys = state.gateway.backends().caller_keys.as_ref();
    let caller = match headers.get("x-api-key") {
        Some(value) => {
            let token = value
                .to_str()
                .map(str::trim)
                .ok()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| ApiError::unauthorized("The `x-api-key` header is empty or unreadable."))?;
            authenticate_token(&state.auth, keys, token).await
        }
        None => match mhttp::authorization(headers) {
            Some(authorization) => authenticate_caller(&state.auth, keys, Some(authorization)).await,
            None => Err(ApiError::unauthorized(
                "Missing `x-api-key` header (a Maestro token or API key; `Authorization: Bearer <token>` works too).",
            )),
        },
    }?;
    caller.tagged(tags(headers)).with_cache_header(cache_header(headers))
}

/// OpenAI-compatible chat: `stream: true` answers with Server-Sent Events. Also served at
/// `/api/ai/chat/completions`.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "chat", security(("bearer" = [])),
    request_body = openapi::ChatCompletionRequestDoc,
    responses(
        (status = 200, description = "The completion (or its event stream)", content(
            (openapi::ChatCompletionDoc = "application/json"),
            (String = "text/event-stream"))),
        (status = 400, description = "Bad input (the message names the field)", body = ErrorResponse),
        (status = 401, description = "Missing or bad token", body = ErrorResponse),
        (status = 403, description = "A Maestro API key that may not use this model", body = ErrorResponse),
        (status = 404, description = "Unknown model or route", body = ErrorResponse),
        (status = 413, description = "Body too large", body = ErrorResponse),
        (status = 429, description = "Every key at its limit, or the caller's budget spent (`Retry-After`)", body = ErrorResponse),
        (status = 500, description = "Maestro's own failure", body = ErrorResponse),
        (status = 502, description = "The provider failed after the retries", body = ErrorResponse),
        (status = 503, description = "Overloaded, or no usable key", body = ErrorResponse),
        (status = 504, description = "The provider did not answer in time", body = ErrorResponse)))]
async fn chat_completions(State(state): State<ChatState>, request: Request) -> Response {
    // Authentication comes before the body is read: an anonymous caller learns nothing and
    // cannot make the server buffer a body.
    let caller = match caller(&state, request.headers()).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let deadline = deadline_of(&request);
    let request: ChatRequest = match mhttp::read_json(request).await {
        Ok(b) => b,
        Err(e) => {
            tracing::info!(user_id = %caller.user_id, status = e.status(), error = %e.message(), "rejected chat body");
            state.gateway.record_rejection(&caller, false, &e).await;
            return e.into_response();
        }
    };
    if request.is_stream() {
        return match state.gateway.chat_stream_until(&caller, request, deadline).await {
            Ok(stream) => respond_stream(stream),
            Err(outcome) => respond(outcome),
        };
    }
    respond(state.gateway.chat_until(&caller, request, deadline).await)
}

/// Up to 100 chat requests in one call (OpenAI's batch-file lines), run concurrently, each an
/// ordinary call: logged and costed alone. The answer is a 200 whenever the batch itself is
/// well formed; each item carries its own status.
#[utoipa::path(post, path = "/api/ai/chat/batch", tag = "chat", security(("bearer" = [])),
    request_body = openapi::BatchRequestDoc,
    responses(
        (status = 200, description = "Every item's answer, in the order of the requests", body = openapi::BatchAnswerDoc),
        (status = 400, description = "Not a batch: 0 or more than 100 items, a repeated `custom_id`, an item that is not a chat completion (the message names the field)", body = ErrorResponse),
        (status = 401, description = "Missing or bad token", body = ErrorResponse),
        (status = 413, description = "Body too large", body = ErrorResponse),
        (status = 500, description = "Maestro's own failure", body = ErrorResponse)))]
async fn chat_batch(State(state): State<ChatState>, request: Request) -> Response {
    let caller = match caller(&state, request.headers()).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let deadline = deadline_of(&request);
    let batch = mhttp::read_json::<BatchRequest>(request).await.and_then(|b| b.check().map(|()| b));
    match batch {
        Ok(batch) => Json(state.gateway.chat_batch(&caller, batch, deadline).await).into_response(),
        Err(e) => {
            tracing::info!(user_id = %caller.user_id, status = e.status(), error = %e.message(), "rejected batch body");
            state.gateway.record_rejection(&caller, false, &e).await;
            e.into_response()
        }
    }
}

/// OpenAI-compatible embeddings: `input` a string, strings, token ids or arrays of them, for an
/// embedding model of a provider with an embeddings API. The answer is the provider's (`float`
/// or `base64` as asked). Also served at `/api/ai/embeddings`.
#[utoipa::path(post, path = "/v1/embeddings", tag = "chat", security(("bearer" = [])),
    request_body = openapi::EmbeddingsRequestDoc,
    responses(
        (status = 200, description = "The embeddings, in OpenAI's list shape", body = openapi::EmbeddingListDoc),
        (status = 400, description = "Bad input, a model that is not an embedding model, or a provider without embeddings (the message names the field)", body = ErrorResponse),
        (status = 401, description = "Missing or bad token", body = ErrorResponse),
        (status = 403, description = "A Maestro API key that may not use this model", body = ErrorResponse),
        (status = 404, description = "Unknown model or route", body = ErrorResponse),
        (status = 413, description = "Body too large", body = ErrorResponse),
        (status = 429, description = "Every key at its limit, or the caller's budget spent (`Retry-After`)", body = ErrorResponse),
        (status = 500, description = "Maestro's own failure", body = ErrorResponse),
        (status = 502, description = "The provider failed after the retries", body = ErrorResponse),
        (status = 503, description = "Overloaded, or no usable key", body = ErrorResponse),
        (status = 504, description = "The provider did not answer in time", body = ErrorResponse)))]
async fn embeddings(State(state): State<ChatState>, request: Request) -> Response {
    // As for chat: the caller first, then the body.
    let caller = match caller(&state, request.headers()).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let deadline = deadline_of(&request);
    let body: EmbeddingsBody = match mhttp::read_json(request).await {
        Ok(b) => b,
        Err(e) => {
            tracing::info!(user_id = %caller.user_id, status = e.status(), error = %e.message(), "rejected embeddings body");
            state.gateway.record_rejected(&caller, EMBEDDINGS_REQUEST_TYPE, false, &e).await;
            return e.into_response();
        }
    };
    respond(state.gateway.embeddings_until(&caller, body, deadline).await)
}

/// A started stream: `text/event-stream` with Maestro's headers, the body as it comes.
fn respond_stream(stream: ChatStream) -> Response {
    let ChatStream { facts, body } = stream;
    let mut response =
        (StatusCode::OK, [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body)
            .into_response();
    facts.set_headers(response.headers_mut());
    response
}

/// The gateway's outcome as an HTTP response with Maestro's headers.
fn respond(outcome: ChatOutcome) -> Response {
    let ChatOutcome { facts, result } = outcome;
    let mut response = match result {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => e.into_response(),
    };
    facts.set_headers(response.headers_mut());
    response
}

/// `GET /v1/models`: every active model as `provider/model`, and every route, in OpenAI's list
/// shape, or Anthropic's when the request carries `anthropic-version`; for a Maestro API key,
/// only those it may use. The token may come in `x-api-key`.
#[utoipa::path(get, path = "/v1/models", tag = "chat", security(("bearer" = [])),
    responses((status = 200, description = "OpenAI's list shape (Anthropic's with `anthropic-version`)",
            body = openapi::ModelListDoc),
        (status = 401, description = "Missing or bad token", body = ErrorResponse),
        (status = 500, description = "Maestro's own failure", body = ErrorResponse)))]
async fn list_models(State(state): State<ChatState>, uri: Uri, headers: HeaderMap) -> Response {
    let anthropic = mhttp::anthropic_shaped(uri.path(), &headers);
    let listed = async {
        let caller = caller_by_api_key_or_bearer(&state, &headers).await?;
        state.gateway.models_for(&caller).await
    };
    match listed.await {
        Ok(entries) if anthropic => {
            let data: Vec<Value> = entries.iter().map(ModelListing::anthropic).collect();
            let (first, last) = (entries.first().map(|e| &e.id), entries.last().map(|e| &e.id));
            Json(json!({"data": data, "has_more": false, "first_id": first, "last_id": last})).into_response()
        }
        Ok(entries) => {
            let data: Vec<Value> = entries.iter().map(ModelListing::openai).collect();
            Json(json!({"object": "list", "data": data})).into_response()
        }
        Err(e) => mhttp::error_response(uri.path(), &headers, &e),
    }
}

/// `GET /v1/models/{id}`: one entry of `/v1/models` (the same shapes); 404 for an id the caller
/// does not see there.
#[utoipa::path(get, path = "/v1/models/{id}", tag = "chat", security(("bearer" = [])),
    params(("id" = String, Path, description = "`provider/model` or a route name")),
    responses((status = 200, description = "OpenAI's model object (Anthropic's with `anthropic-version`)",
            body = openapi::ModelEntryDoc),
        (status = 401, description = "Missing or bad token", body = ErrorResponse),
        (status = 404, description = "No such model for this caller", body = ErrorResponse),
        (status = 500, description = "Maestro's own failure", body = ErrorResponse)))]
async fn retrieve_model(
    State(state): State<ChatState>,
    id: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    // An id that does not decode (bad percent-encoding) names no model either.
    let id = id.map(|Path(id)| id).unwrap_or_default();
    let found = async {
        let caller = caller_by_api_key_or_bearer(&state, &headers).await?;
        let entries = state.gateway.models_for(&caller).await?;
        entries.into_iter().find(|e| e.id == id).ok_or_else(|| ApiError::model_not_found(&id))
    };
    match found.await {
        Ok(entry) if mhttp::anthropic_shaped(uri.path(), &headers) => Json(entry.anthropic()).into_response(),
        Ok(entry) => Json(entry.openai()).into_response(),
        Err(e) => mhttp::error_response(uri.path(), &headers, &e),
    }
}

/// `POST /api/ai/chat/count-tokens`: the prompt tokens of a chat request for its resolved model.
/// The prompt tokens of a chat request for the model it resolves to (exact for OpenAI models).
#[utoipa::path(post, path = "/api/ai/chat/count-tokens", tag = "chat", security(("bearer" = [])),
    request_body = openapi::ChatCompletionRequestDoc,
    responses((status = 200, description = "The count", body = openapi::CountTokensDoc),
        (status = 400, description = "Bad input", body = ErrorResponse),
        (status = 401, description = "Missing or bad token", body = ErrorResponse),
        (status = 403, description = "A Maestro API key that may not use this model", body = ErrorResponse),
        (status = 404, description = "Unknown model or route", body = ErrorResponse),
        (status = 413, description = "Body too large", body = ErrorResponse),
        (status = 500, description = "Maestro's own failure", body = ErrorResponse)))]
async fn count_tokens(State(state): State<ChatState>, request: Request) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, request.headers()).await?;
    let request: ChatRequest = mhttp::read_json(request).await?;
    let (model, count) = state.gateway.count_prompt_tokens(&caller, &request).await?;
    Ok(Json(json!({"model": model, "prompt_tokens": count.tokens, "estimated": count.estimated})))
}

/// `POST /api/ai/chat/available-providers`: providers with an active model and a key usable now.
/// Providers with an active model and a key usable now (also `GET`).
#[utoipa::path(post, path = "/api/ai/chat/available-providers", tag = "chat", security(("bearer" = [])),
    responses((status = 200, description = "Usable providers", body = openapi::AvailableProvidersDoc),
        (status = 401, description = "Missing or bad token", body = ErrorResponse),
        (status = 500, description = "Maestro's own failure", body = ErrorResponse)))]
async fn available_providers(State(state): State<ChatState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    caller(&state, &headers).await?;
    let providers: Vec<Value> = (state.gateway.available_providers().await?.into_iter())
        .map(|p| {
            json!({"code": p.code, "name": p.name, "kind": p.kind, "usable_keys": p.usable_keys, "models": p.models})
        })
        .collect();
    Ok(Json(json!({"providers": providers})))
}
