//! HTTP helpers every function's router uses: a JSON body extractor whose rejections are JSON
//! errors (never axum's plain-text ones), the router-level errors in the route's own shape, and
//! the headers Maestro adds.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::edges::InflatedTooLarge;
use crate::error::ApiError;

pub const HEADER_REQUEST_ID: &str = "x-request-id";
pub const HEADER_PROVIDER: &str = "x-maestro-provider";
pub const HEADER_MODEL: &str = "x-maestro-model";
pub const HEADER_ATTEMPTS: &str = "x-maestro-attempts";
pub const HEADER_ROUTE: &str = "x-maestro-route";
pub const HEADER_ROUTE_RULE: &str = "x-maestro-route-rule";
/// Comma-separated tags a caller sends for routes' `tag` rules.
pub const HEADER_TAGS: &str = "x-maestro-tags";

/// A JSON body. Too large → 413, not JSON or wrong shape → 400, each in the OpenAI error shape.
/// The size limit itself is set on the router with `DefaultBodyLimit`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE || caused_by::<InflatedTooLarge>(&rejection) {
                ApiError::payload_too_large()
            } else if caused_by::<BodyTimedOut>(&rejection) {
                ApiError::request_timeout()
            } else {
                ApiError::invalid_request(format!("Could not read the request body: {}", rejection.body_text()))
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::invalid_request("The request body is empty; send a JSON object."));
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::invalid_request(format!("The request body is not valid JSON for this endpoint: {e}."))
        })
    }
}

/// The error a server's body reader gives when the body did not arrive in time (the local
/// runner's body deadline); the JSON extractor answers 408 for it.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// Whether `E` is somewhere in the error's chain of sources.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<E>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// Reads a JSON body after the caller is known: handlers take the whole request, authenticate
/// it from its headers, and only then read the body, so an anonymous client cannot make the
/// server buffer megabytes.
pub async fn read_json<T: DeserializeOwned>(request: Request) -> Result<T, ApiError> {
    JsonBody::<T>::from_request(request, &()).await.map(|JsonBody(body)| body)
}

/// The body limit for a router; larger bodies get the 413 above.
pub fn body_limit(bytes: usize) -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(bytes)
}

/// The `Authorization` header as text, if present and readable.
pub fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// Whether an error on this request takes Anthropic's shape: always on the Messages routes, and
/// on the model routes when the caller sends `anthropic-version` (as Anthropic's SDKs do).
pub fn anthropic_shaped(path: &str, headers: &HeaderMap) -> bool {
    under(path, "/v1/messages") || (under(path, "/v1/models") && headers.contains_key(HEADER_ANTHROPIC_VERSION))
}

/// The header Anthropic's SDKs send on every request.
pub const HEADER_ANTHROPIC_VERSION: &str = "anthropic-version";

/// `path` is `prefix` or below it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// An error in the shape the route's clients parse: Anthropic's (see [`anthropic_shaped`]) or
/// OpenAI's, for errors raised before a handler runs (no route, wrong method, body refused).
pub fn error_response(path: &str, headers: &HeaderMap, e: &ApiError) -> Response {
    if anthropic_shaped(path, headers) {
        crate::anthropic_api::error_response(e, None)
    } else {
        e.clone().into_response()
    }
}

/// The 405 for a path served with other methods, in the route's shape (axum's own has no body;
/// axum adds the `Allow` header listing the methods the path takes).
pub async fn method_not_allowed(uri: Uri, headers: HeaderMap) -> Response {
    error_response(uri.path(), &headers, &ApiError::method_not_allowed())
}

/// The 404 for paths no route matches, in the route's shape.
pub async fn not_found(uri: Uri, headers: HeaderMap) -> Response {
    let e = ApiError::not_found("Unknown path. See the README's API reference for the routes Maestro serves.");
    error_response(uri.path(), &headers, &e)
}
