//! HTTP helpers every function's router uses: a JSON body extractor whose rejections are OpenAI
//! errors (never axum's plain-text ones), and the headers Maestro adds.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub const HEADER_REQUEST_ID: &str = "x-request-id";
pub const HEADER_PROVIDER: &str = "x-maestro-provider";
pub const HEADER_MODEL: &str = "x-maestro-model";
pub const HEADER_ATTEMPTS: &str = "x-maestro-attempts";

/// A JSON body. Too large → 413, not JSON or wrong shape → 400, each in the OpenAI error shape.
/// The size limit itself is set on the router with `DefaultBodyLimit`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large()
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

/// The body limit for a router; larger bodies get the 413 above.
pub fn body_limit(bytes: usize) -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(bytes)
}

/// The `Authorization` header as text, if present and readable.
pub fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// The OpenAI-shaped 404 for paths no route matches.
pub async fn not_found() -> Response {
    ApiError::not_found("Unknown path. See the README's API reference for the routes Maestro serves.").into_response()
}
