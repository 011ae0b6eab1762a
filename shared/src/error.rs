//! One error taxonomy for everything a caller can see, rendered in one place as the OpenAI error
//! shape `{"error":{"message","type","code","param"}}` with a fitting HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error as the caller sees it. Messages here are safe to show: they never carry secrets,
/// upstream credentials or internal details (those go to the structured log instead). Built only
/// by the constructors below, so every kind of error has one shape; read through the accessors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {error_type}: {message}")]
pub struct ApiError {
    status: u16,
    message: String,
    /// OpenAI's `type`: `invalid_request_error`, `authentication_error`, `rate_limit_error`, …
    error_type: &'static str,
    code: Option<String>,
    param: Option<String>,
    /// Seconds the caller should wait, sent as `Retry-After`.
    retry_after_secs: Option<u64>,
    /// Sent as `x-should-retry` (the OpenAI and Anthropic SDKs obey it before their own rules):
    /// `false` where trying again soon cannot help (Maestro's own retries are spent, the account
    /// is out of quota).
    should_retry: Option<bool>,
}

impl ApiError {
    fn new(status: u16, error_type: &'static str, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            error_type,
            code: Some(code.to_string()),
            param: None,
            retry_after_secs: None,
            should_retry: None,
        }
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// OpenAI's `type`.
    pub fn error_type(&self) -> &'static str {
        self.error_type
    }

    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    pub fn param(&self) -> Option<&str> {
        self.param.as_deref()
    }

    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs
    }

    pub fn should_retry(&self) -> Option<bool> {
        self.should_retry
    }

    /// The same error with the status, code and type a provider gave a request it refused (its
    /// own 4xx, passed on to the caller, who should not retry it as it is).
    pub fn upstream_refusal(status: u16, code: Option<&str>, message: impl Into<String>) -> Self {
        let status = if (400..500).contains(&status) { status } else { 400 };
        Self::new(status, "invalid_request_error", code.unwrap_or("invalid_request"), message).with_should_retry(false)
    }

    /// The same error with another code (and its message), keeping status and type.
    pub fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.to_string());
        self
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_string());
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn with_should_retry(mut self, retry: bool) -> Self {
        self.should_retry = Some(retry);
        self
    }

    /// 400: the request is malformed or asks for something invalid.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", "invalid_request", message)
    }

    /// 400 naming the offending field.
    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", "invalid_value", message).with_param(param)
    }

    /// 404: unknown model or route.
    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            404,
            "invalid_request_error",
            "model_not_found",
            format!(
                "The model `{}` does not exist or is not active. GET /v1/models lists the models you can use.",
                crate::logs::clip(model, 100)
            ),
        )
        .with_param("model")
    }

    /// 404: unknown path or resource.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "invalid_request_error", "not_found", message)
    }

    /// 409: the resource exists already, or changed since it was read.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "invalid_request_error", "conflict", message)
    }

    /// 428: an update that names no version.
    pub fn version_required() -> Self {
        Self::new(
            428,
            "invalid_request_error",
            "version_required",
            "Send the `version` you read (in the body, or as `If-Match: \"<version>\"`), so that a change made \
             meanwhile is not silently overwritten.",
        )
        .with_param("version")
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "invalid_request_error",
            "method_not_allowed",
            "This path does not take this HTTP method. See the README's API reference.",
        )
    }

    /// 431: the request's headers are larger than the server reads.
    pub fn headers_too_large() -> Self {
        Self::new(
            431,
            "invalid_request_error",
            "headers_too_large",
            "The request's headers are larger than this server accepts (server.max_header_bytes).",
        )
    }

    /// 401: missing or invalid caller credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "authentication_error", "invalid_api_key", message)
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "permission_error", "forbidden", message)
    }

    /// 408: the request body did not arrive within the server's body timeout.
    pub fn request_timeout() -> Self {
        Self::new(
            408,
            "invalid_request_error",
            "request_timeout",
            "The request body did not arrive in time (server.body_timeout_secs).",
        )
    }

    /// 413: body over the configured limit.
    pub fn payload_too_large() -> Self {
        Self::new(
            413,
            "invalid_request_error",
            "payload_too_large",
            "The request body is larger than this server accepts (server.max_body_bytes).",
        )
    }

    /// 415: a `Content-Encoding` other than gzip.
    pub fn unsupported_encoding() -> Self {
        Self::new(
            415,
            "invalid_request_error",
            "unsupported_content_encoding",
            "This server takes request bodies as they are or gzip-compressed (`Content-Encoding: gzip`).",
        )
    }

    /// 429: no key (or caller budget) has room right now.
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::new(429, "rate_limit_error", "rate_limit_exceeded", message).with_retry_after(retry_after_secs.max(1))
    }

    /// 429 with the provider's own quota code and type (`insufficient_quota`), so clients stop
    /// retrying: the account cannot pay until someone tops it up. `Retry-After` is the key's
    /// quota cool-down.
    pub fn quota_exceeded(code: &str, message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut e = Self::new(429, "insufficient_quota", code, message).with_retry_after(retry_after_secs.max(1));
        e.should_retry = Some(false);
        e
    }

    /// 402: the caller's credits do not cover the call (Maestro's own balance, not a provider's).
    /// Not worth retrying until someone tops the balance up.
    pub fn payment_required(code: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(402, "billing_error", code, message);
        e.should_retry = Some(false);
        e
    }

    /// 502: the provider failed (server error, garbage, auth of all keys) after the retry policy.
    pub fn bad_gateway(code: &str, message: impl Into<String>) -> Self {
        Self::new(502, "upstream_error", code, message)
    }

    /// 503: the provider is overloaded or no key can be used.
    pub fn unavailable(code: &str, message: impl Into<String>) -> Self {
        Self::new(503, "upstream_error", code, message)
    }

    /// 504: the provider did not answer in time.
    pub fn gateway_timeout(message: impl Into<String>) -> Self {
        Self::new(504, "timeout_error", "upstream_timeout", message)
    }

    /// 499 (nginx's "client closed request"): only ever recorded in a call's log, never sent,
    /// since the caller is gone.
    pub fn client_closed(code: &str, message: impl Into<String>) -> Self {
        Self::new(499, "client_closed", code, message)
    }

    /// 500: our own failure. The message is generic; details go to the log.
    pub fn internal() -> Self {
        Self::new(
            500,
            "server_error",
            "internal_error",
            "Maestro hit an internal error. The request id in the response headers helps find it in the logs.",
        )
    }

    /// The OpenAI-shaped JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.error_type,
                "code": self.code,
                "param": self.param,
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(retry) = self.should_retry {
            response
                .headers_mut()
                .insert("x-should-retry", HeaderValue::from_static(if retry { "true" } else { "false" }));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openai_error_shape_with_retry_after() {
        let e = ApiError::rate_limited("all keys busy", 7);
        let body = e.body();
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(body["error"]["message"], "all keys busy");
        assert!(body["error"]["param"].is_null());
        let response = e.into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        assert!(response.headers().get("x-should-retry").is_none(), "the SDKs' own rules apply");
    }

    #[test]
    fn a_quota_error_keeps_its_code_and_tells_clients_not_to_retry() {
        let response = ApiError::quota_exceeded("insufficient_quota", "out of credit", 86_400).into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "86400");
        assert_eq!(response.headers()["x-should-retry"], "false");
    }
}
