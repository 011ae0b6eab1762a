//! Anthropic's Messages API as a front door: `POST /v1/messages` (and its `count_tokens`) for
//! callers that speak Anthropic's format, served by the same gateway as the OpenAI-shaped chat.
//!
//! The gateway works in OpenAI's shape end to end, so this module only translates at the edge:
//! [`request`] turns a Messages request into a [`ChatRequest`](crate::domain::ChatRequest),
//! [`response`] turns the `chat.completion` the gateway answers into an Anthropic `message`,
//! [`stream`] turns the gateway's OpenAI SSE body into Anthropic's event stream, and
//! [`error_response`] renders any [`ApiError`] in Anthropic's error shape. Nothing here knows
//! which provider answered: a Claude model behind the Anthropic provider takes a round trip
//! through OpenAI's shape (the provider translates it back), every other provider is reached
//! through Anthropic's shape the same way.

pub mod request;
pub mod response;
pub mod stream;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;

pub use request::{MessagesRequest, to_chat_request};
pub use response::to_message;
pub use stream::anthropic_events;

/// What `count_tokens` and `messages` need from a request: `max_tokens` is required only by the
/// latter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Messages,
    CountTokens,
}

/// Anthropic's `error.type` for an error with this HTTP status (Anthropic's errors page:
/// 400 invalid_request_error, 401 authentication_error, 402 billing_error, 403 permission_error,
/// 404 not_found_error, 413 request_too_large, 429 rate_limit_error, 500 api_error,
/// 504 timeout_error, 529 overloaded_error). Maestro's 503 (overloaded or no usable key) is
/// Anthropic's overloaded_error; its 502 (the provider failed) an api_error.
pub fn error_type(e: &ApiError) -> &'static str {
    match e.status() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// `{"type":"error","error":{"type","message"},"request_id"}`; `request_id` is `null` when none
/// was assigned yet (Anthropic's schema requires the field).
pub fn error_body(e: &ApiError, request_id: Option<&str>) -> Value {
    json!({"type": "error", "error": {"type": error_type(e), "message": e.message()}, "request_id": request_id})
}

/// The error as an HTTP response with the same status (and `Retry-After`) the OpenAI-shaped
/// routes send, and Anthropic's body.
pub fn error_response(e: &ApiError, request_id: Option<&str>) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(error_body(e, request_id))).into_response();
    if let Some(secs) = e.retry_after_secs() {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    // Anthropic's SDKs honour this; a client error will not get better by retrying.
    let retry = e.should_retry().unwrap_or(matches!(e.status(), 408 | 409 | 429) || e.status() >= 500);
    response.headers_mut().insert("x-should-retry", HeaderValue::from_static(if retry { "true" } else { "false" }));
    response
}

/// Anthropic's `stop_reason` for an OpenAI `finish_reason`.
pub fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        // "stop" and anything new.
        _ => "end_turn",
    }
}

/// A message id in Anthropic's style: the upstream id when it already is one (a Claude answer),
/// else the upstream id behind `msg_` so it can still be found in the provider's logs.
pub fn message_id(upstream: Option<&str>) -> String {
    match upstream.map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) if id.starts_with("msg_") => id.to_string(),
        Some(id) => format!("msg_{id}"),
        None => format!("msg_{}", uuid::Uuid::now_v7().simple()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_status_and_take_anthropics_types() {
        let cases = [
            (ApiError::invalid_param("max_tokens", "max_tokens: Field required"), 400, "invalid_request_error"),
            (ApiError::unauthorized("bad token"), 401, "authentication_error"),
            (ApiError::forbidden("no"), 403, "permission_error"),
            (ApiError::model_not_found("nope"), 404, "not_found_error"),
            (ApiError::payload_too_large(), 413, "request_too_large"),
            (ApiError::rate_limited("busy", 3), 429, "rate_limit_error"),
            (ApiError::internal(), 500, "api_error"),
            (ApiError::bad_gateway("upstream_server_error", "failed"), 502, "api_error"),
            (ApiError::unavailable("upstream_overloaded", "overloaded"), 503, "overloaded_error"),
            (ApiError::gateway_timeout("slow"), 504, "timeout_error"),
        ];
        for (e, status, kind) in cases {
            let response = error_response(&e, Some("req_1"));
            assert_eq!(response.status().as_u16(), status);
            let body = error_body(&e, Some("req_1"));
            assert_eq!(body["type"], "error");
            assert_eq!(body["error"]["type"], kind, "{status}");
            assert_eq!(body["error"]["message"], e.message());
            assert_eq!(body["request_id"], "req_1");
        }
        let limited = error_response(&ApiError::rate_limited("busy", 7), None);
        assert_eq!(limited.headers()[header::RETRY_AFTER], "7");
        assert_eq!(limited.headers()["x-should-retry"], "true");
        assert_eq!(error_body(&ApiError::internal(), None).get("request_id"), Some(&Value::Null));
    }

    #[test]
    fn the_recorded_error_bodies_have_this_shape() {
        // The real 400 and 401 bodies: the same envelope, types among those mapped above.
        for fixture in [
            include_str!("../../tests/fixtures/anthropic/error_400.json"),
            include_str!("../../tests/fixtures/anthropic/error_401.json"),
            include_str!("../../tests/fixtures/anthropic/error_404_not_found.json"),
            include_str!("../../tests/fixtures/anthropic/error_429.json"),
            include_str!("../../tests/fixtures/anthropic/error_529_overloaded.json"),
        ] {
            let recorded: Value = serde_json::from_str(fixture).unwrap();
            assert_eq!(recorded["type"], "error");
            let kind = recorded["error"]["type"].as_str().unwrap();
            assert!(
                [
                    "invalid_request_error",
                    "authentication_error",
                    "not_found_error",
                    "rate_limit_error",
                    "overloaded_error"
                ]
                .contains(&kind)
            );
            assert!(recorded["error"]["message"].is_string());
        }
    }

    #[test]
    fn finish_reasons_become_stop_reasons() {
        assert_eq!(stop_reason(Some("stop")), "end_turn");
        assert_eq!(stop_reason(Some("length")), "max_tokens");
        assert_eq!(stop_reason(Some("tool_calls")), "tool_use");
        assert_eq!(stop_reason(Some("content_filter")), "refusal");
        assert_eq!(stop_reason(None), "end_turn");
    }

    #[test]
    fn message_ids_look_like_anthropics() {
        assert_eq!(message_id(Some("msg_01KPa")), "msg_01KPa");
        assert_eq!(message_id(Some("chatcmpl-abc")), "msg_chatcmpl-abc");
        assert!(message_id(None).starts_with("msg_"));
        assert!(message_id(Some(" ")).len() > 10);
    }
}
