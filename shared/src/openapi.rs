//! What every part of the OpenAPI document shares: the error shape, the bearer security scheme
//! and the common error responses. Each function crate documents its own routes with
//! `#[utoipa::path]` next to its handlers; the local runner merges them at `/openapi.json`.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa::{IntoResponses, ToSchema};

/// The name of the bearer security scheme every path refers to.
pub const BEARER: &str = "bearer";

/// Every error body: OpenAI's shape.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, for people; names the field for a 400.
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `permission_error`, `rate_limit_error`,
    /// `upstream_error`, `timeout_error` or `server_error`.
    #[serde(rename = "type")]
    pub error_type: String,
    pub code: Option<String>,
    /// The offending field, for a 400.
    pub param: Option<String>,
}

/// The errors of every admin and stats route.
#[derive(IntoResponses)]
pub enum AdminErrors {
    /// A field is missing or invalid (the message and `param` name it).
    #[response(status = 400)]
    BadRequest(ErrorResponse),
    /// No token, or a bad one.
    #[response(status = 401)]
    Unauthorized(ErrorResponse),
    /// A valid token without the admin role.
    #[response(status = 403)]
    Forbidden(ErrorResponse),
    /// Unknown id.
    #[response(status = 404)]
    NotFound(ErrorResponse),
    /// A duplicate, or a `version` someone else has moved on from.
    #[response(status = 409)]
    Conflict(ErrorResponse),
    /// An update without `version` (body) or `If-Match`.
    #[response(status = 428)]
    PreconditionRequired(ErrorResponse),
    /// Maestro's own failure.
    #[response(status = 500)]
    Internal(ErrorResponse),
}

/// Adds the title, version and the bearer scheme to a merged document.
pub fn finish(mut spec: OpenApi, title: &str, description: &str) -> OpenApi {
    spec.info =
        InfoBuilder::new().title(title).version(env!("CARGO_PKG_VERSION")).description(Some(description)).build();
    let components = spec.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("`Authorization: Bearer <token>`; admin and stats routes need the admin role."))
                .build(),
        ),
    );
    spec
}
