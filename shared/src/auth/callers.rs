//! Who calls the business API: a JWT (user id = `sub`) or a Maestro API key (`mk-…`, user id =
//! the key's owner, with the key's allowed models and limits, which the gateway enforces).
//!
//! A key is found by the SHA-256 of its text; give this a [`crate::store::caller_keys::CachedCallerKeys`]
//! so a warm container reads nothing (a revocation elsewhere is then seen within its TTL).

use std::sync::Arc;

use super::{JwtAuth, bearer};
use crate::error::ApiError;
use crate::gateway::Caller;
use crate::store::caller_keys::{CALLER_KEY_PREFIX, CallerKeyStore, hash_key};

/// The caller an `Authorization: Bearer <JWT or mk-key>` header value names: 401 when missing,
/// invalid, unknown or revoked.
pub async fn authenticate_caller(
    jwt: &JwtAuth,
    keys: &dyn CallerKeyStore,
    authorization: Option<&str>,
) -> Result<Caller, ApiError> {
    authenticate_token(jwt, keys, bearer(authorization)?).await
}

/// [`authenticate_caller`] for a bare token (what `x-api-key` carries).
pub async fn authenticate_token(jwt: &JwtAuth, keys: &dyn CallerKeyStore, token: &str) -> Result<Caller, ApiError> {
    if !token.starts_with(CALLER_KEY_PREFIX) {
        let claims = jwt.verify_fresh(token).await?;
        return Ok(Caller::user(claims.sub));
    }
    let found = keys.caller_key_by_hash(&hash_key(token)).await.map_err(|e| {
        tracing::error!(error = %e, "caller key look-up failed");
        ApiError::internal()
    })?;
    match found {
        None => Err(ApiError::unauthorized("Unknown Maestro API key.")),
        Some(key) if key.is_revoked() => Err(ApiError::unauthorized("This Maestro API key has been revoked.")),
        Some(key) => {
            let owner = key.owner.clone();
            Ok(Caller { key: Some(Arc::new(key)), ..Caller::user(owner) })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::secret::SecretString;
    use crate::store::caller_keys::{CallerKeySpec, generate};
    use crate::store::embedded::EmbeddedStore;

    #[tokio::test]
    async fn jwts_and_mk_keys_name_their_caller_and_unknown_or_revoked_keys_are_401() {
        let store = EmbeddedStore::open_in_memory().expect("store");
        let jwt = JwtAuth::hs256(&SecretString::new("test-secret-test-secret-test-secret"));
        let spec = CallerKeySpec { owner: "user-7".into(), name: "ci".into(), ..CallerKeySpec::default() };
        let new = generate(spec, 1);
        store.create_caller_key(&new.record).await.expect("create");

        let token = jwt.issue("user-1", false, Duration::from_secs(60)).expect("token");
        let by_jwt = authenticate_caller(&jwt, &store, Some(&format!("Bearer {token}"))).await.expect("jwt");
        assert_eq!((by_jwt.user_id.as_str(), by_jwt.key.is_none()), ("user-1", true));

        let by_key = authenticate_token(&jwt, &store, new.key.expose()).await.expect("key");
        assert_eq!(by_key.user_id, "user-7");
        assert_eq!(by_key.key.as_ref().map(|k| k.id.as_str()), Some(new.record.id.as_str()));

        let unknown = authenticate_token(&jwt, &store, "mk-not-a-real-key").await.expect_err("unknown");
        assert_eq!((unknown.status(), unknown.message()), (401, "Unknown Maestro API key."));
        store.revoke_caller_key(&new.record.id, 2).await.expect("revoke");
        let revoked = authenticate_token(&jwt, &store, new.key.expose()).await.expect_err("revoked");
        assert_eq!((revoked.status(), revoked.message()), (401, "This Maestro API key has been revoked."));
        assert!(!revoked.message().contains(new.key.expose()));
    }
}
