//! How the admin and stats functions know their caller is an admin.
//!
//! - `jwt` mode: tokens verified by the function itself, exactly as the local runner does: HS256
//!   with `MAESTRO_JWT_SECRET`, or RS256/ES256 with the keys at `MAESTRO_JWKS_URL` (cached), and
//!   `MAESTRO_JWT_ISSUER` / `MAESTRO_JWT_AUDIENCE` when set.
//! - `authorizer` mode (the SAM template's): the HTTP API's JWT authorizer has verified the
//!   token's signature, issuer, audience and expiry against the identity provider. The function
//!   still checks the admin claim: the claims arrive in `requestContext.authorizer.jwt.claims`
//!   (API Gateway flattens them to strings: a scope stays `"openid maestro:admin"`, an array
//!   claim becomes `"[a b]"`), the claim named by `MAESTRO_ADMIN_CLAIM` (default `scope`) must
//!   hold `MAESTRO_ADMIN_VALUE` (default `maestro:admin`), and `sub` must be present. A request
//!   without authorizer claims (a direct invoke, a misrouted call) gets 401.
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
use maestro_shared::auth::{AdminClaim, JwtAuth, prepare_keys};
use maestro_shared::error::ApiError;
use maestro_shared::gateway::Caller;
use maestro_shared::secret::SecretString;

use maestro_shared::config::{ConfigError, Env};

/// Life of the token the bridge hands the router: long enough for one request.
const INTERNAL_TOKEN_TTL: Duration = Duration::from_secs(60);

/// How admin and stats requests are authenticated.
#[derive(Clone)]
pub enum AdminAuth {
    /// Tokens verified by the function (`MAESTRO_JWT_SECRET` or `MAESTRO_JWKS_URL`).
    Jwt(Arc<JwtAuth>),
    /// API Gateway's JWT authorizer verified the token; the function checks the admin claim.
    Authorizer(Arc<AuthorizerBridge>),
}

impl AdminAuth {
    /// `MAESTRO_ADMIN_AUTH`: `authorizer` or `jwt`. Unset, it is `jwt` when `MAESTRO_JWT_SECRET`
    /// or `MAESTRO_JWKS_URL` is set and `authorizer` otherwise.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let jwt = env.jwt_auth()?;
        let admin = env.admin_claim();
        match env.get("MAESTRO_ADMIN_AUTH").as_deref() {
            Some("jwt") => jwt
                .map(|a| Self::Jwt(Arc::new(a)))
                .ok_or(ConfigError::Missing("MAESTRO_JWT_SECRET or MAESTRO_JWKS_URL")),
            Some("authorizer") => Ok(Self::authorizer(admin)),
            None => Ok(match jwt {
                Some(a) => Self::Jwt(Arc::new(a)),
                None => Self::authorizer(admin),
            }),
            Some(other) => Err(ConfigError::Setting {
                name: "MAESTRO_ADMIN_AUTH",
                message: format!("`{other}`: use `authorizer` or `jwt`"),
            }),
        }
    }

    /// Authorizer mode, admin when the verified claims hold `admin`.
    pub fn authorizer(admin: AdminClaim) -> Self {
        Self::Authorizer(Arc::new(AuthorizerBridge::new(admin)))
    }

    /// The verifier for the router's state.
    pub fn verifier(&self) -> Arc<JwtAuth> {
        match self {
            Self::Jwt(auth) => auth.clone(),
            Self::Authorizer(bridge) => bridge.internal.clone(),
        }
    }

    /// The router, wrapped (in authorizer mode) so its handlers see a token [`Self::verifier`]
    /// accepts exactly when the authorizer's claims name an admin; in jwt mode with a JWKS, so
    /// the signing key a token names is fetched before its handler checks it.
    pub fn wrap(&self, router: Router) -> Router {
        match self {
            Self::Jwt(auth) => router.layer(from_fn_with_state(auth.clone(), prepare_keys)),
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

/// Turns an API Gateway JWT authorizer's claims into the caller the routers expect.
pub struct AuthorizerBridge {
    admin: AdminClaim,
    internal: Arc<JwtAuth>,
}

impl AuthorizerBridge {
    pub fn new(admin: AdminClaim) -> Self {
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let internal = JwtAuth::hs256(&SecretString::new(secret)).with_admin_claim(admin.clone());
        Self { admin, internal: Arc::new(internal) }
    }

    /// The admin named by verified claims: 401 without claims or `sub`, 403 without the admin
    /// claim.
    pub fn admin(&self, claims: Option<&HashMap<String, String>>) -> Result<Caller, ApiError> {
        let claims = claims.ok_or_else(|| {
            ApiError::unauthorized("No verified token: this API is served behind API Gateway's JWT authorizer.")
        })?;
        let sub = claims
            .get("sub")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::unauthorized("The token's `sub` claim is missing or empty."))?;
        let value = claims.get(&self.admin.claim).map(String::as_str).unwrap_or_default();
        if !self.admin.granted_by_flattened(value) {
            return Err(ApiError::forbidden(format!(
                "This API needs a token whose `{}` claim holds `{}`.",
                self.admin.claim, self.admin.value
            )));
        }
        Ok(Caller::user(sub))
    }
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
            tracing::info!(status = e.status(), error = %e.message(), "admin request refused");
            return e.into_response();
        }
    };
    let token = match bridge.internal.issue(&caller.user_id, true, INTERNAL_TOKEN_TTL) {
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
    fn by_default_the_space_separated_scope_must_hold_maestro_admin() {
        let bridge = AuthorizerBridge::new(AdminClaim::default());
        let admin = claims(&[("sub", "u1"), ("scope", "openid email maestro:admin")]);
        assert_eq!(bridge.admin(Some(&admin)).expect("admin").user_id, "u1");
        let listed = claims(&[("sub", "u1"), ("scope", "[openid maestro:admin]")]);
        assert!(bridge.admin(Some(&listed)).is_ok(), "the flattened list form");
        let not_admin = claims(&[("sub", "u1"), ("scope", "openid email"), ("role", "admin")]);
        let refused = bridge.admin(Some(&not_admin)).expect_err("the role claim no longer counts");
        assert_eq!(refused.status(), 403);
        assert!(refused.message().contains("`scope`"), "{}", refused.message());
        let lookalike = claims(&[("sub", "u1"), ("scope", "maestro:administrator")]);
        assert_eq!(bridge.admin(Some(&lookalike)).expect_err("not the value").status(), 403);
    }

    #[test]
    fn claims_without_sub_or_the_configured_claim_are_refused() {
        let bridge = AuthorizerBridge::new(AdminClaim { claim: "cognito:groups".into(), value: "admin".into() });
        assert_eq!(bridge.admin(None).expect_err("no claims").status(), 401);
        let no_sub = claims(&[("cognito:groups", "[admin]")]);
        assert_eq!(bridge.admin(Some(&no_sub)).expect_err("no sub").status(), 401);
        let not_admin = claims(&[("sub", "u1"), ("cognito:groups", "[viewers]")]);
        assert_eq!(bridge.admin(Some(&not_admin)).expect_err("not admin").status(), 403);
        let admin = claims(&[("sub", "u1"), ("cognito:groups", "[viewers admin]")]);
        assert_eq!(bridge.admin(Some(&admin)).expect("admin").user_id, "u1");
    }

    #[test]
    fn the_bridge_hands_the_router_a_token_its_verifier_takes_as_admin() {
        let bridge = AuthorizerBridge::new(AdminClaim { claim: "roles".into(), value: "ops".into() });
        let token = bridge.internal.issue("u1", true, INTERNAL_TOKEN_TTL).expect("token");
        assert!(bridge.internal.admin(Some(&format!("Bearer {token}"))).is_ok());
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
        let jwks = Env::from_pairs(&[("MAESTRO_JWKS_URL", "https://id.example/.well-known/jwks.json")]);
        assert_eq!(AdminAuth::from_env(&jwks).expect("jwks").mode(), "jwt");
    }
}
