//! An identity provider's signing keys, read from its JWKS URL and kept in memory: refreshed when
//! older than the TTL, and at once when a token names a key id (`kid`) the cache does not hold
//! (a key rotation), at most once per cool-down so made-up `kid`s cannot make us hammer the
//! provider. When a refresh fails, the keys already held stay in use.
//!
//! Only asymmetric keys are taken (RSA → RS256/384/512 and PS256/384/512, EC P-256 → ES256,
//! P-384 → ES384, Ed25519 → EdDSA; a key's `alg`, when given, narrows that to one). Symmetric
//! (`oct`) keys and encryption keys are ignored: a published shared secret would let anyone sign.

use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// How long a request for the key set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest key set read.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Default least time between two refreshes caused by unknown `kid`s or failures.
pub const DEFAULT_REFRESH_COOLDOWN: Duration = Duration::from_secs(10);

/// One verification key of the set.
pub(super) struct JwkKey {
    pub kid: Option<String>,
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

#[derive(Default)]
struct Snapshot {
    keys: Vec<Arc<JwkKey>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

/// The cached key set of one JWKS URL.
pub struct JwksCache {
    url: String,
    http: reqwest::Client,
    ttl: Duration,
    cooldown: Duration,
    state: RwLock<Snapshot>,
    /// One refresh at a time; the others wait for it and then find the keys.
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache").field("url", &self.url).field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache of the keys at `url` (http or https), refreshed every `ttl`. Nothing is fetched
    /// until the first token needs a key (or [`Self::ensure`] is called).
    pub fn new(url: &str, ttl: Duration) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(format!("`{url}` must be an http(s) URL"));
        }
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            url: url.to_string(),
            http,
            ttl,
            cooldown: DEFAULT_REFRESH_COOLDOWN,
            state: RwLock::new(Snapshot::default()),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// Sets the least time between refreshes caused by unknown `kid`s or failed fetches.
    pub fn with_refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key a token's `kid` names; without a `kid`, the set's only key.
    pub(super) fn find(&self, kid: Option<&str>) -> Option<Arc<JwkKey>> {
        let state = self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        match kid {
            Some(kid) => state.keys.iter().find(|k| k.kid.as_deref() == Some(kid)).cloned(),
            None if state.keys.len() == 1 => state.keys.first().cloned(),
            None => None,
        }
    }

    /// Whether the key set has ever been read.
    pub fn is_loaded(&self) -> bool {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner()).fetched_at.is_some()
    }

    fn needs_refresh(&self, kid: Option<&str>) -> bool {
        let state = self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let cooled_down = state.attempted_at.is_none_or(|at| at.elapsed() >= self.cooldown);
        let stale = state.fetched_at.is_none_or(|at| at.elapsed() >= self.ttl);
        let unknown = match kid {
            Some(kid) => !state.keys.iter().any(|k| k.kid.as_deref() == Some(kid)),
            None => state.keys.is_empty(),
        };
        cooled_down && (stale || unknown)
    }

    /// Makes sure the cache is fresh and, if it can, holds the key `kid` names: reads the key set
    /// when it is older than the TTL or lacks that key (at most once per cool-down).
    pub async fn ensure(&self, kid: Option<&str>) {
        if !self.needs_refresh(kid) {
            return;
        }
        let _one_at_a_time = self.refreshing.lock().await;
        if !self.needs_refresh(kid) {
            return; // another request refreshed it while this one waited
        }
        let fetched = self.fetch().await;
        let mut state = self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.attempted_at = Some(Instant::now());
        match fetched {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys = keys.len(), "JWKS loaded");
                state.keys = keys;
                state.fetched_at = Some(Instant::now());
            }
            Err(e) => tracing::warn!(url = %self.url, error = %e, kept = state.keys.len(), "JWKS refresh failed"),
        }
    }

    async fn fetch(&self) -> Result<Vec<Arc<JwkKey>>, String> {
        let response = self
            .http
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| format!("reading the body failed: {e}"))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
        }
        parse(&body)
    }
}

/// The usable keys of a JWKS document; keys this cannot use are skipped, not fatal.
fn parse(body: &[u8]) -> Result<Vec<Arc<JwkKey>>, String> {
    #[derive(serde::Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let set: RawSet = serde_json::from_slice(body).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = Vec::new();
    for raw in set.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw) else {
            continue; // an unknown key type: skip it
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let Some(algorithms) = algorithms(&jwk) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        keys.push(Arc::new(JwkKey { kid: jwk.common.key_id.clone(), key, algorithms }));
    }
    Ok(keys)
}

/// The algorithms a key verifies: its family's, narrowed to its `alg` when it names one; `None`
/// for symmetric keys and curves this build cannot verify.
fn algorithms(jwk: &Jwk) -> Option<Vec<Algorithm>> {
    use Algorithm::*;
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[ES256],
            EllipticCurve::P384 => &[ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => &[EdDSA],
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(family.to_vec()),
        Some(alg) => {
            let alg = Algorithm::from_str(&alg.to_string()).ok()?;
            family.contains(&alg).then(|| vec![alg])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_signing_keys_are_taken() {
        let body = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "shared", "alg": "HS256"},
            {"kty": "EC", "crv": "P-256", "kid": "ec1",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "wrong-alg", "alg": "RS256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "unknown-type", "kid": "weird"}
        ]});
        let keys = parse(body.to_string().as_bytes()).expect("parse");
        let kids: Vec<_> = keys.iter().map(|k| k.kid.clone().unwrap_or_default()).collect();
        assert_eq!(kids, ["ec1"]);
        assert_eq!(keys[0].algorithms, [Algorithm::ES256]);
        assert!(parse(b"{\"not\": 1}").is_err());
    }

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(JwksCache::new("https://id.example/.well-known/jwks.json", Duration::from_secs(60)).is_ok());
        assert!(JwksCache::new("file:///etc/passwd", Duration::from_secs(60)).is_err());
        assert!(JwksCache::new("not a url", Duration::from_secs(60)).is_err());
    }
}
