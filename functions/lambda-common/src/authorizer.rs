//! How the admin and stats functions know their caller is an admin.
//!
//! - `jwt` mode: HS256 tokens signed with `MAESTRO_JWT_SECRET`, verified by the function itself,
//!   exactly as the local runner does.
//! - `authorizer` mode (the SAM template's): the HTTP API's JWT authorizer has verified the
//!   token's signature, issuer, audience and expiry against the identity provider. The function
//!   still checks the role: the claims arrive in `requestContext.authorizer.jwt.claims` (API
//!   Gateway flattens them to strings; an array claim becomes `"[a b]"`), the claim named by
//!   `MAESTRO_ADMIN_ROLE_CLAIM` (default `role`) must hold `admin`, and `sub` must be present.
//!   A request without authorizer claims (a direct invoke, a misrouted call) gets 401.
//!
//! The admin and stats routers authenticate with a [`JwtAuth`] from their state. In authorizer
//! mode that verifier holds a random per-container secret, and a middleware in front of the
//! router turns the authorizer's verified claims into a 60-second token signed with it, in place
//! of whatever `Authorization` header arrived. The routers stay the same code in both modes and
//! in the local runner, and a client can never bring a token the verifier accepts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use lambda_http::request::RequestContext;
use maestro_shared::auth::{ADMIN_ROLE, JwtAuth};
use maestro_shared::error::ApiError;
use maestro_shared::gateway::Caller;
use maestro_shared::secret::SecretString;

use crate::config::{ConfigError, Env};

/// Default of `MAESTRO_ADMIN_ROLE_CLAIM`.
pub const DEFAULT_ROLE_CLAIM: &str = "role";

/// Life of the token the bridge hands the router: long enough for one request.
const INTERNAL_TOKEN_TTL: Duration = Duration::from_secs(60);

/// How admin and stats requests are authenticated.
#[derive(Clone)]
pub enum AdminAuth {
    /// HS256 tokens verified by the function (`MAESTRO_JWT_SECRET`).
    Jwt(Arc<JwtAuth>),
    /// API Gateway's JWT authorizer verified the token; the function checks the role claim.
    Authorizer(Arc<AuthorizerBridge>),
}

impl AdminAuth {
    /// `MAESTRO_ADMIN_AUTH`: `authorizer` or `jwt`. Unset, it is `jwt` when `MAESTRO_JWT_SECRET`
    /// is set and `authorizer` otherwise.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let jwt = env.jwt_auth()?;
        match env.get("MAESTRO_ADMIN_AUTH").as_deref() {
            Some("jwt") => jwt.map(|a| Self::Jwt(Arc::new(a))).ok_or(ConfigError::Missing("MAESTRO_JWT_SECRET")),
            Some("authorizer") => Ok(Self::authorizer(&role_claim(env))),
            None => Ok(match jwt {
                Some(a) => Self::Jwt(Arc::new(a)),
                None => Self::authorizer(&role_claim(env)),
            }),
            Some(other) => Err(ConfigError::Invalid {
                name: "MAESTRO_ADMIN_AUTH",
                message: format!("`{other}`: use `authorizer` or `jwt`"),
            }),
        }
    }

    /// Authorizer mode with the role in claim `role_claim`.
    pub fn authorizer(role_claim: &str) -> Self {
        Self::Authorizer(Arc::new(AuthorizerBridge::new(role_claim)))
    }

    /// The verifier for the router's state.
    pub fn verifier(&self) -> Arc<JwtAuth> {
        match self {
            Self::Jwt(auth) => auth.clone(),
            Self::Authorizer(bridge) => bridge.internal.clone(),
        }
    }

    /// The router, wrapped (in authorizer mode) so its handlers see a token [`Self::verifier`]
    /// accepts exactly when the authorizer's claims name an admin.
    pub fn wrap(&self, router: Router) -> Router {
        match self {
            Self::Jwt(_) => router,
            Self::Authorizer(bridge) => router.layer(from_fn_with_state(bridge.clone(), bridge_claims)),
        }
    }

    pub fn mode(&self) -> &'static str {
        match self {
            Self::Jwt(_) => "jwt",
            Self::Authorizer(_) => "authorizer",
        }
    }
}

fn role_claim(env: &Env) -> String {
    env.get("MAESTRO_ADMIN_ROLE_CLAIM").unwrap_or_else(|| DEFAULT_ROLE_CLAIM.to_string())
}

/// Turns an API Gateway JWT authorizer's claims into the caller the routers expect.
pub struct AuthorizerBridge {
    role_claim: String,
    internal: Arc<JwtAuth>,
}

impl AuthorizerBridge {
    pub fn new(role_claim: &str) -> Self {
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        Self { role_claim: role_claim.to_string(), internal: Arc::new(JwtAuth::hs256(&SecretString::new(secret))) }
    }

    /// The admin named by verified claims: 401 without claims or `sub`, 403 without the role.
    pub fn admin(&self, claims: Option<&HashMap<String, String>>) -> Result<Caller, ApiError> {
        let claims = claims.ok_or_else(|| {
            ApiError::unauthorized("No verified token: this API is served behind API Gateway's JWT authorizer.")
        })?;
        let sub = claims
            .get("sub")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::unauthorized("The token's `sub` claim is missing or empty."))?;
        let role = claims.get(&self.role_claim).map(String::as_str).unwrap_or_default();
        if !holds(role, ADMIN_ROLE) {
            return Err(ApiError::forbidden("This API needs a token with the admin role."));
        }
        Ok(Caller { user_id: sub.to_string() })
    }
}

/// Whether a flattened claim value holds `wanted`: `admin`, or a list API Gateway flattened to
/// `[ops admin]` (also comma-separated).
fn holds(value: &str, wanted: &str) -> bool {
    let value = value.trim();
    let inner = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(value);
    inner.split(|c: char| c.is_whitespace() || c == ',').any(|part| part.trim_matches('"') == wanted)
}

/// The JWT authorizer's claims of a request, if it came through one.
fn authorizer_claims(request: &Request) -> Option<&HashMap<String, String>> {
    match request.extensions().get::<RequestContext>()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.authorizer.as_ref()?.jwt.as_ref().map(|jwt| &jwt.claims),
        _ => None,
    }
}

async fn bridge_claims(State(bridge): State<Arc<AuthorizerBridge>>, mut request: Request, next: Next) -> Response {
    let caller = match bridge.admin(authorizer_claims(&request)) {
        Ok(caller) => caller,
        Err(e) => {
            tracing::info!(status = e.status, error = %e.message, "admin request refused");
            return e.into_response();
        }
    };
    let token = match bridge.internal.issue(&caller.user_id, Some(ADMIN_ROLE), INTERNAL_TOKEN_TTL) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    match HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(value) => {
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        Err(_) => return ApiError::internal().into_response(),
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn the_role_claim_may_be_a_string_or_a_flattened_list() {
        assert!(holds("admin", "admin"));
        assert!(holds("[ops admin]", "admin"));
        assert!(holds("ops,admin", "admin"));
        assert!(!holds("administrator", "admin"));
        assert!(!holds("", "admin"));
    }

    #[test]
    fn claims_without_sub_or_role_are_refused() {
        let bridge = AuthorizerBridge::new("cognito:groups");
        assert_eq!(bridge.admin(None).expect_err("no claims").status, 401);
        let no_sub = claims(&[("cognito:groups", "[admin]")]);
        assert_eq!(bridge.admin(Some(&no_sub)).expect_err("no sub").status, 401);
        let not_admin = claims(&[("sub", "u1"), ("cognito:groups", "[viewers]")]);
        assert_eq!(bridge.admin(Some(&not_admin)).expect_err("not admin").status, 403);
        let admin = claims(&[("sub", "u1"), ("cognito:groups", "[viewers admin]")]);
        assert_eq!(bridge.admin(Some(&admin)).expect("admin").user_id, "u1");
    }

    #[test]
    fn the_mode_follows_the_environment() {
        let secret = "s".repeat(32);
        assert_eq!(AdminAuth::from_env(&Env::from_pairs(&[])).expect("default").mode(), "authorizer");
        let with_secret = Env::from_pairs(&[("MAESTRO_JWT_SECRET", &secret)]);
        assert_eq!(AdminAuth::from_env(&with_secret).expect("jwt").mode(), "jwt");
        let forced = Env::from_pairs(&[("MAESTRO_JWT_SECRET", &secret), ("MAESTRO_ADMIN_AUTH", "authorizer")]);
        assert_eq!(AdminAuth::from_env(&forced).expect("authorizer").mode(), "authorizer");
        assert!(AdminAuth::from_env(&Env::from_pairs(&[("MAESTRO_ADMIN_AUTH", "jwt")])).is_err());
        assert!(AdminAuth::from_env(&Env::from_pairs(&[("MAESTRO_ADMIN_AUTH", "iam")])).is_err());
    }
}
