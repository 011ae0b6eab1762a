//! Caller authentication: HS256 JWTs signed with `MAESTRO_JWT_SECRET`. `sub` is the user id
//! every log event carries; a `role` claim of `admin` opens the admin and stats APIs.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::gateway::Caller;
use crate::secret::SecretString;

/// The role claim value that grants the admin and stats APIs.
pub const ADMIN_ROLE: &str = "admin";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Verifies (and, for the local runner, issues) tokens.
pub struct JwtAuth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtAuth {
    pub fn hs256(secret: &SecretString) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
        }
    }

    pub fn issue(&self, sub: &str, role: Option<&str>, ttl: Duration) -> Result<String, ApiError> {
        let now = crate::time::now_ms().max(0) as u64 / 1000;
        let claims =
            Claims { sub: sub.to_string(), iat: now, exp: now + ttl.as_secs(), role: role.map(str::to_string) };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| {
            tracing::error!(error = %e, "cannot sign a token");
            ApiError::internal()
        })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| ApiError::unauthorized(format!("Invalid bearer token: {e}.")))
    }

    /// The caller named by an `Authorization: Bearer <jwt>` header value.
    pub fn caller(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let claims = self.verify(bearer(authorization)?)?;
        if claims.sub.trim().is_empty() {
            return Err(ApiError::unauthorized("The token's `sub` claim is empty."));
        }
        Ok(Caller { user_id: claims.sub })
    }

    /// Like [`Self::caller`], and the token must carry the admin role.
    pub fn admin(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let claims = self.verify(bearer(authorization)?)?;
        if claims.role.as_deref() != Some(ADMIN_ROLE) {
            return Err(ApiError::forbidden("This API needs a token with the admin role."));
        }
        Ok(Caller { user_id: claims.sub })
    }
}

fn bearer(authorization: Option<&str>) -> Result<&str, ApiError> {
    let value =
        authorization.ok_or_else(|| ApiError::unauthorized("Missing `Authorization: Bearer <token>` header."))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("The Authorization header must be `Bearer <token>`."))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> JwtAuth {
        JwtAuth::hs256(&SecretString::new("test-secret-test-secret-test-secret"))
    }

    #[test]
    fn issued_tokens_verify_and_name_the_caller() {
        let a = auth();
        let token = a.issue("user-42", None, Duration::from_secs(60)).expect("token");
        let caller = a.caller(Some(&format!("Bearer {token}"))).expect("valid");
        assert_eq!(caller.user_id, "user-42");
        assert_eq!(a.admin(Some(&format!("Bearer {token}"))).expect_err("not admin").status, 403);
        let admin = a.issue("ops", Some(ADMIN_ROLE), Duration::from_secs(60)).expect("token");
        assert!(a.admin(Some(&format!("Bearer {admin}"))).is_ok());
    }

    #[test]
    fn wrong_missing_or_foreign_tokens_are_401() {
        let a = auth();
        assert_eq!(a.caller(None).expect_err("missing").status, 401);
        assert_eq!(a.caller(Some("Basic abc")).expect_err("scheme").status, 401);
        assert_eq!(a.caller(Some("Bearer not.a.jwt")).expect_err("garbage").status, 401);
        let other = JwtAuth::hs256(&SecretString::new("another-secret-another-secret-xx"));
        let foreign = other.issue("u", None, Duration::from_secs(60)).expect("token");
        assert_eq!(a.caller(Some(&format!("Bearer {foreign}"))).expect_err("foreign").status, 401);
    }
}
