//! Caller authentication over HTTP, on the local runner: JWTs (HS256 with the runner's secret,
//! and RS256 against a JWKS served here with an RSA key generated for the run), the admin claim
//! (`scope` holds `maestro:admin`), and Maestro API keys (`mk-…`): their lifecycle, allowed
//! models, rpm and daily budgets, exact under concurrency.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use crate::support;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use maestro_shared::auth::{JwksCache, JwtAuth};
use maestro_shared::store::{CounterStore, LogQuery, StatsStore};
use maestro_shared::time::now_ms;
use rsa::pkcs1::EncodeRsaPrivateKey;
use serde_json::{Value, json};
use support::{FAST_RETRY, FakeProvider, TestApp, hello, spawn_app};

// ---- an identity provider: an RSA key and its JWKS -----------------------------------------

/// The run's RSA key (2048 bits, generated once: a few seconds in a debug build).
struct Signer {
    key: EncodingKey,
    jwk: Jwk,
}

fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("an RSA key");
        let der = private.to_pkcs1_der().expect("PKCS#1 DER");
        let key = EncodingKey::from_rsa_der(der.as_bytes());
        let jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("its JWK");
        Signer { key, jwk }
    })
}

/// A JWKS document with the run's public key under each of `kids`.
fn jwks(kids: &[&str]) -> Value {
    let keys: Vec<Value> = kids
        .iter()
        .map(|kid| {
            let mut jwk = signer().jwk.clone();
            jwk.common.key_id = Some((*kid).to_string());
            serde_json::to_value(jwk).unwrap()
        })
        .collect();
    json!({ "keys": keys })
}

/// An RS256 token signed with the run's key, `kid` in its header.
fn rs256(kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &signer().key).unwrap()
}

const ISSUER: &str = "https://id.maestro.test/";
const AUDIENCE: &str = "maestro-api";

fn now_secs() -> u64 {
    (now_ms() / 1000) as u64
}

/// Claims the runner below accepts, with `extra` on top (or replacing them).
fn claims(sub: &str, extra: Value) -> Value {
    let mut claims = json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now_secs(), "exp": now_secs() + 600});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

/// A JWKS endpoint: serves what `body` holds (or a 500 while `failing`), counting fetches.
#[derive(Clone)]
struct JwksServer {
    url: String,
    body: Arc<Mutex<Value>>,
    fetches: Arc<AtomicU32>,
    failing: Arc<AtomicBool>,
}

impl JwksServer {
    async fn start(body: Value) -> Self {
        let server = Self {
            url: String::new(),
            body: Arc::new(Mutex::new(body)),
            fetches: Arc::new(AtomicU32::new(0)),
            failing: Arc::new(AtomicBool::new(false)),
        };
        let app = Router::new().route("/.well-known/jwks.json", get(serve_jwks)).with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, ..server }
    }

    fn fetches(&self) -> u32 {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn serve_jwks(State(server): State<JwksServer>) -> Response {
    server.fetches.fetch_add(1, Ordering::SeqCst);
    if server.failing.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    axum::Json(server.body.lock().unwrap().clone()).into_response()
}

// ---- helpers ------------------------------------------------------------------------------

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.http.post(format!("{}{path}", app.url)).bearer_auth(token).json(&body).send().await.unwrap()
}

async fn get_with(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.http.get(format!("{}{path}", app.url)).bearer_auth(token).send().await.unwrap()
}

/// Status and JSON body.
async fn read(response: reqwest::Response) -> (u16, Value, reqwest::header::HeaderMap) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

async fn chat_as(app: &TestApp, token: &str, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
    read(post(app, "/v1/chat/completions", token, body).await).await
}

/// Creates a Maestro API key with the admin token; returns (id, key).
async fn create_key(app: &TestApp, body: Value) -> (String, String) {
    let (status, created, headers) = read(post(app, "/api/admin/api-keys", &app.admin_token, body).await).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(headers["cache-control"], "no-store");
    (created["id"].as_str().unwrap().to_string(), created["api_key"].as_str().unwrap().to_string())
}

/// Waits out the last seconds of a minute, so a test's calls share one rpm window.
async fn away_from_a_minute_edge() {
    let into_minute = now_ms().rem_euclid(60_000);
    if into_minute > 45_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - into_minute + 100) as u64)).await;
    }
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or_default().to_string()
}

/// A config with provider `fake` (OpenAI format, priced like gpt-4o: the fixture's 19 + 10
/// tokens cost 148 micro-USD) and one working key.
fn fake_config(url: &str) -> String {
    format!(
        r#"{FAST_RETRY}
[[providers]]
code = "fake"
kind = "openai_compatible"
base_url = "{url}"

[[models]]
provider = "fake"
model = "m1"
max_output_tokens = 1000
input_price = 2500000
output_price = 10000000

[[keys]]
provider = "fake"
name = "main"
secret = "sk-ok-aaaaaaaaaaaa"
"#
    )
}

// ---- JWTs ---------------------------------------------------------------------------------

#[tokio::test]
async fn hs256_tokens_missing_bad_or_expired_are_401_and_only_admin_scope_opens_admin_routes() {
    let app = spawn_app(FAST_RETRY, &[]).await;

    let (status, body, _) =
        read(app.http.post(format!("{}/v1/chat/completions", app.url)).json(&hello("demo/echo")).send().await.unwrap())
            .await;
    assert_eq!((status, body["error"]["type"].as_str()), (401, Some("authentication_error")));

    let (status, _, _) = chat_as(&app, &app.token, hello("demo/echo")).await;
    assert_eq!(status, 200);

    let foreign = JwtAuth::hs256(&maestro_shared::secret::SecretString::new("not-the-runner-secret-0123456789abcdef"))
        .issue("user-1", false, Duration::from_secs(60))
        .unwrap();
    let (status, body, _) = chat_as(&app, &foreign, hello("demo/echo")).await;
    assert_eq!((status, message(&body).as_str()), (401, "The token's signature does not verify."));

    let mut expired = serde_json::Map::new();
    expired.insert("sub".into(), "user-1".into());
    expired.insert("exp".into(), (now_secs() - 3_600).into());
    let expired = app.app.auth.issue_claims(&expired).unwrap();
    let (status, body, _) = chat_as(&app, &expired, hello("demo/echo")).await;
    assert_eq!((status, message(&body).as_str()), (401, "The token has expired."));

    // A caller token on an admin route: 403; the admin token (`scope: maestro:admin`): 200.
    let (status, body, _) = read(get_with(&app, "/api/admin/api-keys", &app.token).await).await;
    assert_eq!(status, 403, "{body}");
    assert!(message(&body).contains("`scope`") && message(&body).contains("maestro:admin"), "{body}");
    let (status, _, _) = read(get_with(&app, "/api/admin/api-keys", &app.admin_token).await).await;
    assert_eq!(status, 200);
    // The old convention (`role: admin`) no longer grants anything.
    let mut role = serde_json::Map::new();
    role.insert("sub".into(), "ops".into());
    role.insert("exp".into(), (now_secs() + 600).into());
    role.insert("role".into(), "admin".into());
    let role_token = app.app.auth.issue_claims(&role).unwrap();
    let (status, _, _) = read(get_with(&app, "/api/admin/api-keys", &role_token).await).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn with_a_jwks_rs256_tokens_are_verified_and_bad_signature_expiry_issuer_audience_and_kid_are_401() {
    let idp = JwksServer::start(jwks(&["k1"])).await;
    let app = spawn_app(
        FAST_RETRY,
        &[("MAESTRO_JWKS_URL", &idp.url), ("MAESTRO_JWT_ISSUER", ISSUER), ("MAESTRO_JWT_AUDIENCE", AUDIENCE)],
    )
    .await;
    assert!(app.token.is_empty(), "the runner cannot sign tokens with a JWKS");

    let user = rs256("k1", &claims("user-rs", json!({})));
    let (status, body, _) = chat_as(&app, &user, hello("demo/echo")).await;
    assert_eq!(status, 200, "{body}");

    let refused = |extra: Value, kid: &'static str| rs256(kid, &claims("user-rs", extra));
    // One character inside the signature changed (a middle one: all six of its bits are data).
    let at = user.rfind('.').unwrap() + 10;
    let swapped = if &user[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swapped}{}", &user[..at], &user[at + 1..]);
    let cases = [
        (forged, "The token's signature does not verify."),
        (refused(json!({"exp": now_secs() - 3_600}), "k1"), "The token has expired."),
        (refused(json!({"iss": "https://evil.example/"}), "k1"), "The token's issuer (`iss`) is not accepted here."),
        (refused(json!({"aud": "someone-else"}), "k1"), "The token's audience (`aud`) is not accepted here."),
        (refused(json!({}), "k-unknown"), "The token's signing key (`kid`) is not among the identity provider's keys."),
    ];
    for (token, expected) in cases {
        let (status, body, _) = chat_as(&app, &token, hello("demo/echo")).await;
        assert_eq!((status, message(&body).as_str()), (401, expected), "{body}");
    }
    // An HS256 token naming the RSA key's kid (algorithm confusion) is refused too.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("k1".into());
    let confused =
        jsonwebtoken::encode(&hs, &claims("user-rs", json!({})), &EncodingKey::from_secret(b"guess")).unwrap();
    let (status, _, _) = chat_as(&app, &confused, hello("demo/echo")).await;
    assert_eq!(status, 401);

    // Admin routes: a valid token without the scope is 403; with it, 200.
    let (status, _, _) = read(get_with(&app, "/api/admin/api-keys", &user).await).await;
    assert_eq!(status, 403);
    let admin = rs256("k1", &claims("ops-rs", json!({"scope": "openid maestro:admin"})));
    let (status, body, _) = read(get_with(&app, "/api/admin/api-keys", &admin).await).await;
    assert_eq!(status, 200, "{body}");
    let expired_admin = rs256("k1", &claims("ops-rs", json!({"scope": "maestro:admin", "exp": now_secs() - 3_600})));
    let (status, _, _) = read(get_with(&app, "/api/admin/api-keys", &expired_admin).await).await;
    assert_eq!(status, 401);

    // The key set was read once: the unknown kid did not make the runner fetch it again
    // within the refresh cool-down.
    assert_eq!(idp.fetches(), 1);
}

#[tokio::test]
async fn the_jwks_cache_refreshes_on_an_unknown_kid_and_after_its_ttl_and_keeps_its_keys_when_a_refresh_fails() {
    let idp = JwksServer::start(jwks(&["k1"])).await;
    let cache = JwksCache::new(&idp.url, Duration::from_secs(3_600)).unwrap().with_refresh_cooldown(Duration::ZERO);
    let auth = JwtAuth::jwks(cache);
    let token = |kid: &str| rs256(kid, &json!({"sub": "u", "exp": now_secs() + 600}));

    assert!(auth.verify(&token("k1")).is_err(), "nothing is fetched before a token needs it");
    assert_eq!(auth.verify_fresh(&token("k1")).await.unwrap().sub, "u");
    assert_eq!(idp.fetches(), 1);
    assert!(auth.verify_fresh(&token("k1")).await.is_ok());
    assert_eq!(idp.fetches(), 1, "a known kid is served from the cache");

    // The provider rotates to k2: a token naming it makes the cache read the set again.
    *idp.body.lock().unwrap() = jwks(&["k2"]);
    assert!(auth.verify_fresh(&token("k2")).await.is_ok());
    assert_eq!(idp.fetches(), 2);
    assert!(auth.verify_fresh(&token("k1")).await.is_err(), "k1 was rotated out");

    // A failing provider: the keys already held stay in use.
    idp.failing.store(true, Ordering::SeqCst);
    assert!(auth.verify_fresh(&token("k3")).await.is_err());
    assert!(auth.verify_fresh(&token("k2")).await.is_ok());

    // A TTL of zero reads the set for every token.
    let fresh = JwksServer::start(jwks(&["k1"])).await;
    let always =
        JwtAuth::jwks(JwksCache::new(&fresh.url, Duration::ZERO).unwrap().with_refresh_cooldown(Duration::ZERO));
    for _ in 0..3 {
        assert!(always.verify_fresh(&token("k1")).await.is_ok());
    }
    assert_eq!(fresh.fetches(), 3);
}

// ---- Maestro API keys ---------------------------------------------------------------------

#[tokio::test]
async fn an_mk_key_is_shown_once_listed_masked_acts_as_its_owner_everywhere_and_is_401_once_revoked() {
    let app = spawn_app(FAST_RETRY, &[]).await;

    // Only admins manage keys, and fields are validated.
    let spec = json!({"owner": "user-9", "key_name": "ci", "allowed_models": []});
    let (status, _, _) = read(post(&app, "/api/admin/api-keys", &app.token, spec.clone()).await).await;
    assert_eq!(status, 403);
    let (status, body, _) = read(
        post(
            &app,
            "/api/admin/api-keys",
            &app.admin_token,
            json!({"owner": "user-9", "key_name": "ci", "rate_limit_rpm": 0}),
        )
        .await,
    )
    .await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("rate_limit_rpm")));

    let (status, created, _) = read(post(&app, "/api/admin/api-keys", &app.admin_token, spec).await).await;
    assert_eq!(status, 201, "{created}");
    let key = created["api_key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("mk-") && key.len() > 40, "{key}");
    assert_eq!(created["owner"], "user-9");
    assert_eq!(created["is_active"], true);
    assert_eq!(created["masked_key"], format!("mk-…{}", &key[key.len() - 4..]));

    // Listed masked: the key itself never comes back.
    let listing = get_with(&app, "/api/admin/api-keys", &app.admin_token).await.text().await.unwrap();
    assert!(!listing.contains(&key) && !listing.contains("api_key"), "{listing}");
    let listed: Value = serde_json::from_str(&listing).unwrap();
    assert_eq!(listed["data"][0]["id"], id.as_str());
    assert_eq!(listed["data"][0]["masked_key"], created["masked_key"]);

    // The key works on every business route, as its owner.
    let (status, _, _) = chat_as(&app, &key, hello("demo/echo")).await;
    assert_eq!(status, 200);
    let messages = app
        .http
        .post(format!("{}/v1/messages", app.url))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "demo/echo", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(messages.status(), 200);
    assert_eq!(get_with(&app, "/v1/models", &key).await.status(), 200);
    let counted = post(&app, "/api/ai/chat/count-tokens", &key, hello("demo/echo")).await;
    assert_eq!(counted.status(), 200);
    assert_eq!(post(&app, "/api/ai/chat/available-providers", &key, json!({})).await.status(), 200);
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let logs = app.app.store.logs(&LogQuery { limit: 10, ..LogQuery::default() }).await.unwrap();
    assert_eq!(logs.len(), 2);
    assert!(logs.iter().all(|l| l.user_id.as_deref() == Some("user-9")), "{logs:?}");

    // It is no admin credential.
    let (status, body, _) = read(get_with(&app, "/api/admin/api-keys", &key).await).await;
    assert_eq!(status, 401, "{body}");

    // Revoked: 401 at once, with a message that does not echo the key.
    let revoke = app
        .http
        .delete(format!("{}/api/admin/api-keys/{id}", app.url))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    let (status, revoked, _) = read(revoke).await;
    assert_eq!((status, revoked["is_active"].as_bool()), (200, Some(false)), "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (status, body, _) = chat_as(&app, &key, hello("demo/echo")).await;
    assert_eq!((status, message(&body).as_str()), (401, "This Maestro API key has been revoked."));
    assert!(!body.to_string().contains(&key));
    let messages = app
        .http
        .post(format!("{}/v1/messages", app.url))
        .header("x-api-key", &key)
        .json(&hello("demo/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(messages.status(), 401);

    let (status, body, _) = chat_as(&app, "mk-made-up-key-0000000000000000000000000000000", hello("demo/echo")).await;
    assert_eq!((status, message(&body).as_str()), (401, "Unknown Maestro API key."));
    let missing = app
        .http
        .delete(format!("{}/api/admin/api-keys/ck_nope", app.url))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_key_limited_to_some_models_gets_403_for_others_and_lists_only_its_own() {
    let app = spawn_app(&fake_config("http://127.0.0.1:9"), &[]).await;
    let (_, key) =
        create_key(&app, json!({"owner": "user-3", "key_name": "echo-only", "allowed_models": ["demo/echo"]})).await;

    let (status, body, _) = chat_as(&app, &key, hello("fake/m1")).await;
    assert_eq!(
        (status, body["error"]["type"].as_str(), body["error"]["param"].as_str()),
        (403, Some("permission_error"), Some("model"))
    );
    assert!(message(&body).contains("`fake/m1`") && message(&body).contains("demo/echo"), "{body}");
    let (status, _, _) = chat_as(&app, &key, hello("m1")).await;
    assert_eq!(status, 403, "a bare name resolving to a model not allowed");
    let (status, _, _) = chat_as(&app, &key, hello("demo/echo")).await;
    assert_eq!(status, 200);
    let (status, _, _) = chat_as(&app, &key, hello("echo")).await;
    assert_eq!(status, 200, "the bare name of an allowed model");
    assert_eq!(post(&app, "/api/ai/chat/count-tokens", &key, hello("fake/m1")).await.status(), 403);

    let models: Value = get_with(&app, "/v1/models", &key).await.json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["demo/echo"]);
    let everything: Value = get_with(&app, "/v1/models", &app.token).await.json().await.unwrap();
    assert!(everything["data"].as_array().unwrap().len() > 1, "a JWT caller sees every model");
}

#[tokio::test]
async fn a_key_with_rpm_2_gets_429_with_retry_after_on_its_third_call_in_a_minute() {
    let app = spawn_app(FAST_RETRY, &[]).await;
    let (_, key) = create_key(&app, json!({"owner": "user-4", "key_name": "slow", "rate_limit_rpm": 2})).await;
    away_from_a_minute_edge().await;
    for _ in 0..2 {
        let (status, body, _) = chat_as(&app, &key, hello("demo/echo")).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body, headers) = chat_as(&app, &key, hello("demo/echo")).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], "caller_rate_limited");
    assert!(message(&body).contains("allows 2 requests per minute"), "{body}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Another caller is not affected.
    let (status, _, _) = chat_as(&app, &app.token, hello("demo/echo")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn daily_token_and_cost_budgets_are_reserved_up_front_counted_exactly_and_429_when_used_up() {
    let fake = FakeProvider::start().await;
    let app = spawn_app(&fake_config(&fake.url), &[]).await;
    let ask = || json!({"model": "fake/m1", "max_tokens": 20, "messages": [{"role": "user", "content": "Hello!"}]});

    // Tokens: each call uses 29 (the fixture's usage), and may take up to its prompt estimate
    // plus max_tokens 20; with 100 a day, the fourth no longer fits.
    let (id, key) = create_key(&app, json!({"owner": "user-5", "key_name": "tokens", "daily_token_budget": 100})).await;
    for i in 0..3 {
        let (status, body, _) = chat_as(&app, &key, ask()).await;
        assert_eq!(status, 200, "call {i}: {body}");
    }
    let (status, body, headers) = chat_as(&app, &key, ask()).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "caller_budget_exceeded");
    assert!(message(&body).contains("daily token budget: 87 of 100 tokens"), "{body}");
    assert!(headers.contains_key("retry-after"));
    let used = app.app.store.budget_usage(&format!("CK#{id}"), now_ms()).await.unwrap();
    assert_eq!(
        (used.day_requests, used.day_tokens, used.day_cost_micros),
        (3, 87, 0),
        "the real tokens; no cost budget, no cost counted"
    );
    assert_eq!(fake.calls("sk-ok-aaaaaaaaaaaa"), 3, "the refused call never reached the provider");

    // Cost: 148 micro-USD a call, estimated at up to 213 (5 prompt tokens + 20 output at the
    // model's prices); with 300 a day, the second call no longer fits.
    let (id, key) =
        create_key(&app, json!({"owner": "user-5", "key_name": "money", "daily_cost_budget_micros": 300})).await;
    let (status, _, _) = chat_as(&app, &key, ask()).await;
    assert_eq!(status, 200);
    let (status, body, _) = chat_as(&app, &key, ask()).await;
    assert_eq!(status, 429, "{body}");
    assert!(message(&body).contains("daily cost budget: 148 of 300 micro-USD"), "{body}");
    let used = app.app.store.budget_usage(&format!("CK#{id}"), now_ms()).await.unwrap();
    assert_eq!((used.day_tokens, used.day_cost_micros), (0, 148));

    // A streamed call is settled when its stream ends.
    let (id, key) =
        create_key(&app, json!({"owner": "user-5", "key_name": "stream", "daily_token_budget": 1000})).await;
    let streamed = post(&app, "/v1/chat/completions", &key, json!({"model": "fake/m1", "stream": true, "max_tokens": 20, "messages": [{"role": "user", "content": "Hello!"}]})).await;
    assert_eq!(streamed.status(), 200);
    let _ = streamed.text().await.unwrap();
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let used = app.app.store.budget_usage(&format!("CK#{id}"), now_ms()).await.unwrap();
    assert_eq!(used.day_requests, 1);
    assert_eq!(used.day_tokens, 43, "the estimate (25) replaced by the recorded stream's usage (33 + 10)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_calls_with_rpm_20_let_exactly_20_through() {
    let app = Arc::new(spawn_app(FAST_RETRY, &[]).await);
    let (_, key) = create_key(&app, json!({"owner": "user-6", "key_name": "burst", "rate_limit_rpm": 20})).await;
    away_from_a_minute_edge().await;
    let start = Arc::new(tokio::sync::Barrier::new(50));
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let (app, key, start) = (app.clone(), key.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                chat_as(&app, &key, hello("demo/echo")).await.0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.unwrap());
    }
    let passed = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((passed, limited), (20, 30), "{statuses:?}");
}
