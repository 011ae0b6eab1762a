//! Caller authentication.
//!
//! - **JWTs**, verified here: HS256 with a shared secret (`MAESTRO_JWT_SECRET`), or RS256/ES256
//!   (and their siblings) with an identity provider's keys read from a JWKS URL
//!   (`MAESTRO_JWKS_URL`, cached, see [`jwks`]). The issuer (`MAESTRO_JWT_ISSUER`) and audience
//!   (`MAESTRO_JWT_AUDIENCE`, comma-separated) are checked when configured. `sub` is the user id
//!   every log event carries.
//! - **The admin role, the OAuth 2 way**: the claim `MAESTRO_ADMIN_CLAIM` (default `scope`, a
//!   space-separated string) must hold `MAESTRO_ADMIN_VALUE` (default `maestro:admin`); a JSON
//!   list claim (`roles`, `cognito:groups`) works too. See [`AdminClaim`].
//! - **Maestro API keys** (`mk-…`) for the business API only: see [`callers`].

pub mod admin_guard;
pub mod callers;
pub mod jwks;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::gateway::Caller;
use crate::secret::SecretString;
use crate::store::caller_keys::CALLER_KEY_PREFIX;

pub use callers::authenticate_caller;
pub use jwks::JwksCache;

/// Default of `MAESTRO_ADMIN_CLAIM`: OAuth 2's space-separated `scope` claim.
pub const DEFAULT_ADMIN_CLAIM: &str = "scope";
/// Default of `MAESTRO_ADMIN_VALUE`.
pub const DEFAULT_ADMIN_VALUE: &str = "maestro:admin";
/// Default of `MAESTRO_JWKS_TTL_SECS`: how long fetched signing keys are used before a refresh.
pub const DEFAULT_JWKS_TTL: Duration = Duration::from_secs(600);
/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// Which claim grants the admin and stats APIs, and the value it must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminClaim {
    pub claim: String,
    pub value: String,
}

impl Default for AdminClaim {
    fn default() -> Self {
        Self { claim: DEFAULT_ADMIN_CLAIM.to_string(), value: DEFAULT_ADMIN_VALUE.to_string() }
    }
}

impl AdminClaim {
    /// Whether a verified token's claim value grants admin: a string that is the value or holds
    /// it among its space-separated words (OAuth 2 `scope`), or a JSON list holding it.
    pub fn granted_by(&self, claim: Option<&Value>) -> bool {
        match claim {
            Some(Value::String(words)) => words == &self.value || words.split_whitespace().any(|w| w == self.value),
            Some(Value::Array(items)) => items.iter().any(|item| item.as_str() == Some(self.value.as_str())),
            _ => false,
        }
    }

    /// The same for a claim API Gateway's JWT authorizer flattened to a string: `a b c` (a
    /// scope), `[a b c]` (a list), also comma-separated.
    pub fn granted_by_flattened(&self, claim: &str) -> bool {
        let claim = claim.trim();
        if claim == self.value {
            return true;
        }
        let inner = claim.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(claim);
        inner.split(|c: char| c.is_whitespace() || c == ',').any(|part| part.trim_matches('"') == self.value)
    }
}

/// The shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash's 256 bits).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// A verified token's claims: `sub`, `exp`, `iat`, and every other claim as it came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    // Defaults so a missing `sub` or `exp` is reported by the validation, by name.
    #[serde(default)]
    pub sub: String,
    #[serde(default)]
    pub exp: u64,
    #[serde(default)]
    pub iat: u64,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Where verification keys come from.
enum Verifier {
    /// HS256 with the shared secret (which also signs the local runner's tokens).
    Secret { encoding: EncodingKey, decoding: DecodingKey },
    /// The identity provider's public keys.
    Jwks(JwksCache),
}

/// Verifies (and, with a shared secret, issues) tokens.
pub struct JwtAuth {
    verifier: Verifier,
    issuer: Option<String>,
    audience: Vec<String>,
    admin: AdminClaim,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth")
            .field("mode", &self.mode())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl JwtAuth {
    /// HS256 with `secret`, the default admin claim, no issuer or audience check.
    pub fn hs256(secret: &SecretString) -> Self {
        Self {
            verifier: Verifier::Secret {
                encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
                decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            },
            issuer: None,
            audience: Vec::new(),
            admin: AdminClaim::default(),
        }
    }

    /// Asymmetric tokens verified with the keys of a JWKS (this verifier cannot issue tokens).
    pub fn jwks(cache: JwksCache) -> Self {
        Self { verifier: Verifier::Jwks(cache), issuer: None, audience: Vec::new(), admin: AdminClaim::default() }
    }

    /// Tokens must carry this `iss` (and tokens issued here get it).
    pub fn with_issuer(mut self, issuer: Option<String>) -> Self {
        self.issuer = issuer;
        self
    }

    /// Tokens must carry one of these `aud` values (and tokens issued here get the first). Empty:
    /// `aud` is not checked.
    pub fn with_audience(mut self, audience: Vec<String>) -> Self {
        self.audience = audience;
        self
    }

    pub fn with_admin_claim(mut self, admin: AdminClaim) -> Self {
        self.admin = admin;
        self
    }

    pub fn admin_claim(&self) -> &AdminClaim {
        &self.admin
    }

    /// `hs256` or `jwks`.
    pub fn mode(&self) -> &'static str {
        match self.verifier {
            Verifier::Secret { .. } => "hs256",
            Verifier::Jwks(_) => "jwks",
        }
    }

    /// Whether [`Self::issue`] can sign (only with a shared secret).
    pub fn can_issue(&self) -> bool {
        matches!(self.verifier, Verifier::Secret { .. })
    }

    /// Signs a token for `sub`, valid for `ttl`, with the admin claim when `admin` (and the
    /// configured issuer and first audience). Only with a shared secret.
    pub fn issue(&self, sub: &str, admin: bool, ttl: Duration) -> Result<String, ApiError> {
        let now = crate::time::now_ms().max(0) as u64 / 1000;
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from(sub));
        claims.insert("iat".into(), Value::from(now));
        claims.insert("exp".into(), Value::from(now + ttl.as_secs()));
        if let Some(iss) = &self.issuer {
            claims.insert("iss".into(), Value::from(iss.as_str()));
        }
        if let Some(aud) = self.audience.first() {
            claims.insert("aud".into(), Value::from(aud.as_str()));
        }
        if admin {
            claims.insert(self.admin.claim.clone(), Value::from(self.admin.value.as_str()));
        }
        self.issue_claims(&claims)
    }

    /// Signs exactly these claims (HS256), for tests and tools.
    pub fn issue_claims(&self, claims: &Map<String, Value>) -> Result<String, ApiError> {
        let Verifier::Secret { encoding, .. } = &self.verifier else {
            return Err(ApiError::invalid_request(
                "This server verifies tokens with a JWKS; tokens come from your identity provider.",
            ));
        };
        encode(&Header::new(Algorithm::HS256), claims, encoding).map_err(|e| {
            tracing::error!(error = %e, "cannot sign a token");
            ApiError::internal()
        })
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        if self.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audience);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// Verifies a token with the keys at hand (with a JWKS: those already fetched; see
    /// [`Self::verify_fresh`] and [`Self::prepare`]).
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        if token.starts_with(CALLER_KEY_PREFIX) {
            return Err(ApiError::unauthorized(
                "Maestro API keys (`mk-…`) work on the business API only; this API needs a JWT.",
            ));
        }
        let header =
            decode_header(token).map_err(|_| ApiError::unauthorized("The bearer token is not a valid JWT."))?;
        let claims = match &self.verifier {
            Verifier::Secret { decoding, .. } => {
                if header.alg != Algorithm::HS256 {
                    return Err(ApiError::unauthorized("The token's algorithm (`alg`) must be HS256 here."));
                }
                decode::<Claims>(token, decoding, &self.validation(Algorithm::HS256))
            }
            Verifier::Jwks(cache) => {
                let Some(key) = cache.find(header.kid.as_deref()) else {
                    return Err(ApiError::unauthorized(if cache.is_loaded() {
                        "The token's signing key (`kid`) is not among the identity provider's keys."
                    } else {
                        "The identity provider's signing keys could not be loaded; try again shortly."
                    }));
                };
                if !key.algorithms.contains(&header.alg) {
                    return Err(ApiError::unauthorized(
                        "The token's algorithm (`alg`) does not match its signing key.",
                    ));
                }
                decode::<Claims>(token, &key.key, &self.validation(header.alg))
            }
        };
        let claims = claims.map(|data| data.claims).map_err(|e| ApiError::unauthorized(rejection(e.kind())))?;
        if claims.sub.trim().is_empty() {
            return Err(ApiError::unauthorized("The token's `sub` claim is empty."));
        }
        // RFC 7519 makes `iss` one string; the JWT library also takes a list and accepts it when
        // any element matches, which would let one token claim several issuers.
        if let Some(expected) = &self.issuer
            && claims.other.get("iss").and_then(Value::as_str) != Some(expected.as_str())
        {
            return Err(ApiError::unauthorized(rejection(&ErrorKind::InvalidIssuer)));
        }
        Ok(claims)
    }

    /// Like [`Self::verify`], first fetching the JWKS when the token's key is not cached yet.
    pub async fn verify_fresh(&self, token: &str) -> Result<Claims, ApiError> {
        self.prepare_token(token).await;
        self.verify(token)
    }

    /// With a JWKS: makes sure the keys for this token are fetched (refreshing on an unknown
    /// `kid` or after the TTL). Nothing to do with a shared secret.
    pub async fn prepare_token(&self, token: &str) {
        if let Verifier::Jwks(cache) = &self.verifier
            && !token.starts_with(CALLER_KEY_PREFIX)
            && let Ok(header) = decode_header(token)
        {
            cache.ensure(header.kid.as_deref()).await;
        }
    }

    /// [`Self::prepare_token`] for the token a request carries (`Authorization: Bearer` or
    /// `x-api-key`), so synchronous [`Self::caller`] / [`Self::admin`] checks in its handler find
    /// the key. See [`prepare_keys`], the middleware that calls it.
    pub async fn prepare(&self, headers: &HeaderMap) {
        if !matches!(self.verifier, Verifier::Jwks(_)) {
            return;
        }
        let token = crate::http::authorization(headers)
            .and_then(|v| bearer(Some(v)).ok())
            .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim));
        if let Some(token) = token {
            self.prepare_token(token).await;
        }
    }

    /// The caller named by an `Authorization: Bearer <jwt>` header value.
    pub fn caller(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let claims = self.verify(bearer(authorization)?)?;
        Ok(Caller::user(claims.sub))
    }

    /// Like [`Self::caller`], and the token must carry the admin claim.
    pub fn admin(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let claims = self.verify(bearer(authorization)?)?;
        self.admin_from(claims)
    }

    /// Whether verified claims grant admin (403 when not).
    pub fn admin_from(&self, claims: Claims) -> Result<Caller, ApiError> {
        if !self.admin.granted_by(claims.other.get(&self.admin.claim)) {
            return Err(ApiError::forbidden(format!(
                "This API needs a token whose `{}` claim holds `{}`.",
                self.admin.claim, self.admin.value
            )));
        }
        Ok(Caller::user(claims.sub))
    }
}

/// The caller's message for a token `jsonwebtoken` refused; it never echoes the token.
fn rejection(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "The token has expired.".into(),
        ErrorKind::ImmatureSignature => "The token is not valid yet (`nbf`).".into(),
        ErrorKind::InvalidSignature => "The token's signature does not verify.".into(),
        ErrorKind::InvalidIssuer => "The token's issuer (`iss`) is not accepted here.".into(),
        ErrorKind::InvalidAudience => "The token's audience (`aud`) is not accepted here.".into(),
        ErrorKind::InvalidAlgorithm => "The token's algorithm (`alg`) is not accepted here.".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("The token has no `{claim}` claim."),
        ErrorKind::Json(_) | ErrorKind::InvalidClaimFormat(_) => {
            "The token's claims are malformed (`sub` must be a string, `exp` a number).".into()
        }
        _ => "The bearer token is not a valid JWT.".into(),
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(authorization: Option<&str>) -> Result<&str, ApiError> {
    let value =
        authorization.ok_or_else(|| ApiError::unauthorized("Missing `Authorization: Bearer <token>` header."))?;
    // The scheme is case-insensitive (RFC 9110 §11.1): `Bearer`, `bearer` and `BEARER` all work.
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("The Authorization header must be `Bearer <token>`."))?;
    Ok(token)
}

/// Middleware (`axum::middleware::from_fn_with_state(auth, prepare_keys)`) in front of routers
/// whose handlers check tokens synchronously: with a JWKS it fetches the signing key a request's
/// token names before the handler runs. With a shared secret it does nothing.
pub async fn prepare_keys(State(auth): State<Arc<JwtAuth>>, request: Request, next: Next) -> Response {
    auth.prepare(request.headers()).await;
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    fn auth() -> JwtAuth {
        JwtAuth::hs256(&SecretString::new("test-secret-test-secret-test-secret"))
    }

    fn bearer_of(token: &str) -> String {
        format!("Bearer {token}")
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_nothing_else_passes() {
        for header in ["Bearer t0k", "bearer t0k", "BEARER t0k", "BeArEr   t0k  "] {
            assert_eq!(bearer(Some(header)).expect(header), "t0k");
        }
        for header in ["Basic dXNlcg==", "Bearer", "Bearer   ", "t0k", "Bearert0k"] {
            assert_eq!(bearer(Some(header)).expect_err(header).status(), 401);
        }
    }

    fn now() -> u64 {
        crate::time::now_ms() as u64 / 1000
    }

    #[test]
    fn issued_tokens_verify_and_name_the_caller_and_only_admin_tokens_open_admin() {
        let a = auth();
        let token = a.issue("user-42", false, Duration::from_secs(60)).expect("token");
        let caller = a.caller(Some(&bearer_of(&token))).expect("valid");
        assert_eq!(caller.user_id, "user-42");
        let refused = a.admin(Some(&bearer_of(&token))).expect_err("not admin");
        assert_eq!(refused.status(), 403);
        assert!(
            refused.message().contains("`scope`") && refused.message().contains("maestro:admin"),
            "{}",
            refused.message()
        );
        let admin = a.issue("ops", true, Duration::from_secs(60)).expect("token");
        assert_eq!(a.admin(Some(&bearer_of(&admin))).expect("admin").user_id, "ops");
    }

    #[test]
    fn wrong_missing_or_foreign_tokens_are_401() {
        let a = auth();
        assert_eq!(a.caller(None).expect_err("missing").status(), 401);
        assert_eq!(a.caller(Some("Basic abc")).expect_err("scheme").status(), 401);
        assert_eq!(a.caller(Some("Bearer not.a.jwt")).expect_err("garbage").status(), 401);
        let other = JwtAuth::hs256(&SecretString::new("another-secret-another-secret-xx"));
        let foreign = other.issue("u", false, Duration::from_secs(60)).expect("token");
        let e = a.caller(Some(&bearer_of(&foreign))).expect_err("foreign");
        assert_eq!((e.status(), e.message()), (401, "The token's signature does not verify."));
        let mk = a.caller(Some("Bearer mk-abc")).expect_err("an mk- key is no JWT");
        assert!(mk.message().contains("business API only"), "{}", mk.message());
    }

    #[test]
    fn expired_tokens_and_tokens_without_sub_are_401() {
        let a = auth();
        let mut claims = Map::new();
        claims.insert("sub".into(), "u".into());
        claims.insert("exp".into(), (now() - 3600).into());
        let expired = a.issue_claims(&claims).expect("token");
        assert_eq!(a.verify(&expired).expect_err("expired").message(), "The token has expired.");
        let mut no_sub = Map::new();
        no_sub.insert("exp".into(), (now() + 60).into());
        let token = a.issue_claims(&no_sub).expect("token");
        assert_eq!(a.verify(&token).expect_err("no sub").message(), "The token has no `sub` claim.");
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let strict = auth().with_issuer(Some("https://id.example/".into())).with_audience(vec!["maestro".into()]);
        let good = strict.issue("u", false, Duration::from_secs(60)).expect("token");
        assert!(strict.verify(&good).is_ok());
        let sign = |iss: &str, aud: &str| {
            let mut claims = Map::new();
            claims.insert("sub".into(), "u".into());
            claims.insert("exp".into(), (now() + 60).into());
            claims.insert("iss".into(), iss.into());
            claims.insert("aud".into(), aud.into());
            strict.issue_claims(&claims).expect("token")
        };
        let e = strict.verify(&sign("https://evil.example/", "maestro")).expect_err("issuer");
        assert_eq!(e.message(), "The token's issuer (`iss`) is not accepted here.");
        let e = strict.verify(&sign("https://id.example/", "someone-else")).expect_err("audience");
        assert_eq!(e.message(), "The token's audience (`aud`) is not accepted here.");
        let mut listed = Map::new();
        listed.insert("sub".into(), "u".into());
        listed.insert("exp".into(), (now() + 60).into());
        listed.insert("iss".into(), serde_json::json!(["https://evil.example/", "https://id.example/"]));
        listed.insert("aud".into(), "maestro".into());
        let e = strict.verify(&strict.issue_claims(&listed).expect("token")).expect_err("a list of issuers");
        assert_eq!(e.status(), 401, "an `iss` list is refused even when it names the issuer");
        let lax_token = auth().issue("u", false, Duration::from_secs(60)).expect("token");
        let missing = strict.verify(&lax_token).expect_err("no iss, no aud");
        let missing = missing.message();
        assert!(["The token has no `iss` claim.", "The token has no `aud` claim."].contains(&missing), "{missing}");
        assert!(auth().verify(&good).is_ok(), "without configuration, iss and aud are not checked");
    }

    #[test]
    fn the_admin_claim_is_configurable_and_may_be_a_scope_string_or_a_list() {
        let scope = AdminClaim::default();
        assert!(scope.granted_by(Some(&Value::from("openid maestro:admin email"))));
        assert!(!scope.granted_by(Some(&Value::from("openid maestro:admins"))));
        assert!(scope.granted_by(Some(&serde_json::json!(["x", "maestro:admin"]))));
        assert!(!scope.granted_by(None));
        assert!(scope.granted_by_flattened("openid maestro:admin"));
        assert!(scope.granted_by_flattened("[viewer maestro:admin]"));
        assert!(scope.granted_by_flattened("viewer,maestro:admin"));
        assert!(!scope.granted_by_flattened("maestro:administrator"));
        assert!(!scope.granted_by_flattened(""));
        let spaced = AdminClaim { claim: "group".into(), value: "Maestro Admins".into() };
        assert!(spaced.granted_by(Some(&Value::from("Maestro Admins"))), "a value with a space, whole");
        assert!(spaced.granted_by(Some(&serde_json::json!(["Maestro Admins"]))));
        assert!(spaced.granted_by_flattened("Maestro Admins"));

        let env = Env::from_pairs(&[("MAESTRO_ADMIN_CLAIM", "roles"), ("MAESTRO_ADMIN_VALUE", " ops ")]);
        let roles = env.admin_claim();
        assert_eq!(roles, AdminClaim { claim: "roles".into(), value: "ops".into() });
        let a = auth().with_admin_claim(roles);
        let token = a.issue("ops-1", true, Duration::from_secs(60)).expect("token");
        assert!(a.admin(Some(&bearer_of(&token))).is_ok());
        let default_admin = auth().issue("ops-1", true, Duration::from_secs(60)).expect("token");
        assert_eq!(a.admin(Some(&bearer_of(&default_admin))).expect_err("scope is not roles").status(), 403);
    }

    #[test]
    fn the_environment_picks_jwks_over_the_secret() {
        let secret = SecretString::new("test-secret-test-secret-test-secret");
        let none = Env::from_pairs(&[]);
        assert!(none.jwt_auth().expect("ok").is_none());
        assert_eq!(none.jwt_auth_with(&secret).expect("hs256").mode(), "hs256");
        let jwks = Env::from_pairs(&[
            ("MAESTRO_JWKS_URL", "http://127.0.0.1:1/jwks.json"),
            ("MAESTRO_JWT_AUDIENCE", "a, b"),
            ("MAESTRO_JWT_SECRET", secret.expose()),
        ]);
        for a in [jwks.jwt_auth_with(&secret).expect("jwks"), jwks.jwt_auth().expect("ok").expect("jwks")] {
            assert_eq!((a.mode(), a.can_issue()), ("jwks", false));
            assert_eq!(a.audience, ["a", "b"]);
            assert!(a.issue("u", false, Duration::from_secs(1)).is_err());
        }
        let bad = Env::from_pairs(&[("MAESTRO_JWKS_URL", "ftp://x")]);
        let err = bad.jwt_auth().expect_err("not http").to_string();
        assert!(err.starts_with("MAESTRO_JWKS_URL is invalid"), "{err}");
        let ttl = Env::from_pairs(&[("MAESTRO_JWKS_URL", "http://127.0.0.1:1/j"), ("MAESTRO_JWKS_TTL_SECS", "soon")]);
        assert!(ttl.jwt_auth().expect_err("not a number").to_string().starts_with("MAESTRO_JWKS_TTL_SECS"));
    }
}
