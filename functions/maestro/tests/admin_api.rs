//! The admin API over HTTP on the local runner: providers, keys, models and routes — happy paths,
//! validation (400), authentication (401, 403), unknown ids (404), duplicates and stale versions
//! (409), missing versions (428) — against a fake upstream that serves the providers' recorded
//! model lists; and no provider secret in any response or log line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use crate::support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{FAST_RETRY, FakeProvider, TestApp, hello, spawn_app};

// ---- A client that keeps a transcript of every answer -----------------------------------------

struct Api<'a> {
    app: &'a TestApp,
    transcript: Mutex<Vec<String>>,
}

/// An answer: status, JSON body (`Null` when empty), headers.
struct Answer {
    status: u16,
    body: Value,
    headers: reqwest::header::HeaderMap,
}

impl<'a> Api<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self { app, transcript: Mutex::new(Vec::new()) }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Answer {
        let mut request = self.app.http.request(method.clone(), format!("{}{path}", self.app.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(v) = if_match {
            request = request.header("if-match", v);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        self.transcript.lock().unwrap().push(format!("{method} {path} -> {status} {headers:?} {text}"));
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Answer { status, body, headers }
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.send(method, path, Some(&self.app.admin_token), body, None).await
    }

    async fn get(&self, path: &str) -> Value {
        let a = self.admin(Method::GET, path, None).await;
        assert_eq!(a.status, 200, "GET {path}: {}", a.body);
        a.body
    }

    fn transcript(&self) -> String {
        self.transcript.lock().unwrap().join("\n")
    }
}

/// `status` and, for an error, OpenAI's shape with `param` when given.
#[track_caller]
fn expect_error(a: &Answer, status: u16, param: Option<&str>) {
    assert_eq!(a.status, status, "{}", a.body);
    assert!(a.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", a.body);
    assert!(a.body["error"]["type"].is_string(), "{}", a.body);
    if let Some(param) = param {
        assert_eq!(a.body["error"]["param"], param, "{}", a.body);
    }
}

fn provider<'v>(list: &'v Value, code: &str) -> &'v Value {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider_code"] == code)
        .unwrap_or_else(|| panic!("{code} in {list}"))
}

// ---- Everything that writes a provider secret is captured here --------------------------------

/// Every `tracing` line of this test binary, at every level (the app runs in-process).
fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Captured(buffer.clone());
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buffer
    })
}

#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn app_with(upstream: &FakeProvider, env: &[(&str, &str)]) -> TestApp {
    captured_logs();
    let mut all: Vec<(&str, String)> = vec![
        ("ANTHROPIC_BASE_URL", upstream.base("anthropic")),
        ("DEEPSEEK_BASE_URL", upstream.base("deepseek")),
        ("OPENAI_BASE_URL", upstream.base("openai")),
    ];
    all.extend(env.iter().map(|(k, v)| (*k, v.to_string())));
    let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_app(FAST_RETRY, &pairs).await
}

// ---- Providers --------------------------------------------------------------------------------

#[tokio::test]
async fn providers_are_listed_created_and_updated_with_versions_and_every_mistake_is_refused() {
    let upstream = FakeProvider::start().await;
    let app = app_with(&upstream, &[]).await;
    let api = Api::new(&app);

    let list = api.get("/api/admin/ai-providers").await;
    let openai = provider(&list, "openai");
    assert_eq!(openai["kind"], "openai");
    assert_eq!(openai["base_url"], upstream.base("openai"));
    assert!(openai["version"].as_u64().unwrap() >= 1);
    assert!(openai["models"].as_array().unwrap().iter().any(|m| m["id"] == "openai/gpt-4o-mini"));
    for field in
        ["provider_code", "provider_name", "kind", "base_url", "is_active", "sort_order", "description", "config"]
    {
        assert!(openai.get(field).is_some(), "{field} in {openai}");
    }

    // Create an OpenAI-compatible provider with headers, one of them a credential.
    let created = api
        .admin(
            Method::POST,
            "/api/admin/ai-providers",
            Some(json!({
                "provider_code": "local-vllm", "provider_name": "Local vLLM", "kind": "openai_compatible",
                "base_url": format!("{}/", upstream.base("vllm")), "sort_order": 7, "description": "the lab box",
                "config": {"headers": {"X-Team": "music", "X-Gateway-Token": "gw-token-0123456789abcdef"}}
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.headers["etag"], "\"1\"");
    let p = &created.body;
    assert_eq!((p["provider_code"].as_str(), p["version"].as_u64()), (Some("local-vllm"), Some(1)));
    assert_eq!(p["base_url"], upstream.base("vllm"), "the trailing slash is dropped");
    assert_eq!(p["config"]["headers"]["X-Team"], "music");
    assert_eq!(p["config"]["headers"]["X-Gateway-Token"], "gw-…cdef", "credential headers are masked");
    assert_eq!((p["is_active"].as_bool(), p["description"].as_str()), (Some(true), Some("the lab box")));

    let again = api
        .admin(
            Method::POST,
            "/api/admin/ai-providers",
            Some(
                json!({"provider_code": "local-vllm", "provider_name": "x", "kind": "openai", "base_url": "http://x"}),
            ),
        )
        .await;
    expect_error(&again, 409, None);

    for (body, param) in [
        (json!({"provider_code": "Bad Code", "provider_name": "x", "kind": "openai"}), Some("provider_code")),
        (json!({"provider_code": "keys-x/y", "provider_name": "x", "kind": "openai"}), Some("provider_code")),
        (json!({"provider_code": "ok", "provider_name": " ", "kind": "openai"}), Some("provider_name")),
        (json!({"provider_code": "ok", "provider_name": "x", "kind": "openai_compatible"}), Some("base_url")),
        (
            json!({"provider_code": "ok", "provider_name": "x", "kind": "openai", "base_url": "ftp://x"}),
            Some("base_url"),
        ),
        (json!({"provider_code": "ok", "provider_name": "x", "kind": "demo"}), Some("kind")),
        (
            json!({"provider_code": "ok", "provider_name": "x", "kind": "openai", "sort_order": 9_999_999}),
            Some("sort_order"),
        ),
        (
            json!({"provider_code": "ok", "provider_name": "x", "kind": "openai", "config": {"headers": {"bad header": "v"}}}),
            Some("config.headers"),
        ),
        (json!({"provider_code": "ok", "provider_name": "x", "kind": "nope"}), None),
        (json!({"provider_code": "ok", "provider_name": "x", "kind": "openai", "colour": "red"}), None),
        (json!({"provider_name": "x", "kind": "openai"}), None),
    ] {
        let a = api.admin(Method::POST, "/api/admin/ai-providers", Some(body.clone())).await;
        expect_error(&a, 400, param);
    }
    let not_json = app
        .http
        .post(format!("{}/api/admin/ai-providers", app.url))
        .bearer_auth(&app.admin_token)
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);

    // Update with the version read (body), then with If-Match; a stale one is a 409.
    let path = "/api/admin/ai-providers/local-vllm";
    let updated = api
        .admin(
            Method::PUT,
            path,
            Some(json!({"version": 1, "provider_name": "vLLM", "description": null, "is_active": false})),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!((updated.body["version"].as_u64(), updated.body["provider_name"].as_str()), (Some(2), Some("vLLM")));
    assert!(updated.body["description"].is_null());
    assert_eq!(updated.body["is_active"], false);
    assert_eq!(updated.body["sort_order"], 7, "fields left out keep their value");
    let stale = api.admin(Method::PUT, path, Some(json!({"version": 1, "provider_name": "late"}))).await;
    expect_error(&stale, 409, None);
    assert!(stale.body["error"]["message"].as_str().unwrap().contains("version 2"), "{}", stale.body);
    let with_if_match =
        api.send(Method::PUT, path, Some(&app.admin_token), Some(json!({"is_active": true})), Some("\"2\"")).await;
    assert_eq!(
        (with_if_match.status, with_if_match.body["version"].as_u64()),
        (200, Some(3)),
        "{}",
        with_if_match.body
    );
    assert_eq!(with_if_match.headers["etag"], "\"3\"");
    expect_error(
        &api.admin(Method::PUT, path, Some(json!({"provider_name": "no version"}))).await,
        428,
        Some("version"),
    );
    expect_error(
        &api.send(Method::PUT, path, Some(&app.admin_token), Some(json!({"version": 3})), Some("\"4\"")).await,
        400,
        Some("version"),
    );
    expect_error(
        &api.send(Method::PUT, path, Some(&app.admin_token), Some(json!({})), Some("soon")).await,
        400,
        Some("If-Match"),
    );
    expect_error(
        &api.admin(Method::PUT, path, Some(json!({"version": 3, "provider_code": "other"}))).await,
        400,
        Some("provider_code"),
    );
    expect_error(
        &api.admin(Method::PUT, path, Some(json!({"version": 3, "base_url": "not a url"}))).await,
        400,
        Some("base_url"),
    );
    expect_error(&api.admin(Method::PUT, path, Some(json!({"version": 3, "kind": "demo"}))).await, 400, Some("kind"));
    expect_error(
        &api.admin(Method::PUT, "/api/admin/ai-providers/ghost", Some(json!({"version": 1}))).await,
        404,
        None,
    );

    // A masked credential sent back keeps the stored value: the upstream still gets the real one.
    let current = provider(&api.get("/api/admin/ai-providers").await, "local-vllm").clone();
    let kept =
        api.admin(Method::PUT, path, Some(json!({"version": current["version"], "config": current["config"]}))).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    let synced = api.admin(Method::POST, "/api/admin/ai-providers/local-vllm/sync-models", None).await;
    assert_eq!(synced.status, 200, "{}", synced.body);
    let sent = upstream.last_headers();
    assert_eq!(sent.get("x-gateway-token").map(String::as_str), Some("gw-token-0123456789abcdef"));
    assert_eq!(sent.get("x-team").map(String::as_str), Some("music"));
}

// ---- Keys ---------------------------------------------------------------------------------------

#[tokio::test]
async fn keys_are_added_rotated_validated_and_deleted_and_only_ever_shown_masked() {
    let upstream = FakeProvider::start().await;
    let app = app_with(&upstream, &[]).await;
    let api = Api::new(&app);
    let keys_path = "/api/admin/ai-providers/openai/keys";

    let created = api
        .admin(Method::POST, keys_path, Some(json!({"key_name": "Team A", "api_key": "sk-ok-teamA-0123456789abcdef", "priority": 5, "rate_limit_rpm": 100, "rate_limit_rpd": 1000})))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let key = created.body.clone();
    assert_eq!(key["id"], "openai-team-a");
    assert_eq!(key["masked_key"], "sk-…cdef");
    assert_eq!(
        (key["status"].as_str(), key["priority"].as_i64(), key["version"].as_u64()),
        (Some("normal"), Some(5), Some(1))
    );
    assert_eq!(
        (key["rate_limit_rpm"].as_u64(), key["rate_limit_tpm"].as_u64(), key["rate_limit_rpd"].as_u64()),
        (Some(100), None, Some(1000))
    );
    assert_eq!((key["requests_count_today"].as_u64(), key["tokens_count_today"].as_u64()), (Some(0), Some(0)));
    assert!(key.get("api_key").is_none(), "the secret is write-only");
    for field in ["key_name", "is_active", "cooldown_until", "last_used_at", "last_error_at"] {
        assert!(key.get(field).is_some(), "{field} in {key}");
    }

    expect_error(
        &api.admin(Method::POST, keys_path, Some(json!({"key_name": "team a", "api_key": "sk-ok-other-0123456789"})))
            .await,
        409,
        None,
    );
    for (body, param) in [
        (json!({"key_name": "b", "api_key": "  "}), Some("api_key")),
        (json!({"key_name": "b", "api_key": "sk-ok-with\nnewline-0123"}), Some("api_key")),
        (json!({"key_name": "", "api_key": "sk-ok-b-0123456789"}), Some("key_name")),
        (json!({"key_name": "---", "api_key": "sk-ok-b-0123456789"}), Some("key_name")),
        (json!({"key_name": "b", "api_key": "sk-ok-b-0123456789", "rate_limit_rpm": 0}), Some("rate_limit_rpm")),
        (json!({"key_name": "b", "api_key": "sk-ok-b-0123456789", "rate_limit_tpm": -5}), None),
        (json!({"key_name": "b", "api_key": "sk-ok-b-0123456789", "secret": "x"}), None),
        (json!({"key_name": "b"}), None),
    ] {
        expect_error(&api.admin(Method::POST, keys_path, Some(body)).await, 400, param);
    }
    expect_error(
        &api.admin(
            Method::POST,
            "/api/admin/ai-providers/ghost/keys",
            Some(json!({"key_name": "b", "api_key": "sk-ok-b-0123456789"})),
        )
        .await,
        404,
        None,
    );
    expect_error(&api.admin(Method::GET, "/api/admin/ai-providers/ghost/keys", None).await, 404, None);

    // The key serves calls at once (no catalog TTL to wait for), counted on the key.
    let r = app.chat(hello("openai/gpt-4o-mini")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(upstream.keys("/chat/completions"), ["sk-ok-teamA-0123456789abcdef"]);
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let listed = api.get(keys_path).await;
    let k = listed["data"].as_array().unwrap().iter().find(|k| k["id"] == "openai-team-a").unwrap().clone();
    assert_eq!(k["requests_count_today"], 1);
    assert!(k["tokens_count_today"].as_u64().unwrap() >= 29, "{k}");
    assert!(k["last_used_at"].as_i64().is_some(), "{k}");
    assert!(k["last_error_at"].is_null());

    // Rotate to a secret the provider refuses: validation says invalid and marks the key.
    let key_path = "/api/admin/ai-providers/keys/openai-team-a";
    let rotated = api
        .admin(Method::PUT, key_path, Some(json!({"version": 1, "api_key": "sk-401-rotated-fedcba9876543210"})))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!((rotated.body["masked_key"].as_str(), rotated.body["version"].as_u64()), (Some("sk-…3210"), Some(2)));
    let validated = api.admin(Method::POST, &format!("{key_path}/validate"), None).await;
    assert_eq!(validated.status, 200, "{}", validated.body);
    let report = &validated.body;
    assert_eq!(
        (report["outcome"].as_str(), report["valid"].as_bool(), report["http_status"].as_u64()),
        (Some("invalid"), Some(false), Some(401))
    );
    assert_eq!(report["key"]["status"], "invalid");
    assert!(report["message"].as_str().unwrap().contains("sk-…3210"), "the echoed key is masked: {report}");
    assert_eq!(upstream.keys("/openai/models").last().unwrap(), "sk-401-rotated-fedcba9876543210");

    // Rotate again to a good secret: the key is valid and normal again; the version held.
    expect_error(&api.admin(Method::PUT, key_path, Some(json!({"version": 1, "priority": 1}))).await, 409, None);
    let fixed = api
        .send(
            Method::PUT,
            key_path,
            Some(&app.admin_token),
            Some(json!({"api_key": "sk-ok-fixed-00112233445566", "rate_limit_rpd": null, "key_name": "Team A2"})),
            Some("\"2\""),
        )
        .await;
    assert_eq!(fixed.status, 200, "{}", fixed.body);
    assert!(fixed.body["rate_limit_rpd"].is_null(), "null removes a limit");
    assert_eq!((fixed.body["key_name"].as_str(), fixed.body["status"].as_str()), (Some("Team A2"), Some("invalid")));
    let valid = api.admin(Method::POST, &format!("{key_path}/validate"), None).await;
    assert_eq!(
        (valid.body["outcome"].as_str(), valid.body["valid"].as_bool()),
        (Some("valid"), Some(true)),
        "{}",
        valid.body
    );
    assert_eq!(valid.body["models_listed"], 3);
    assert_eq!(valid.body["key"]["status"], "normal");
    assert_eq!(upstream.keys("/openai/models").last().unwrap(), "sk-ok-fixed-00112233445566");
    let r = app.chat(hello("openai/gpt-4o-mini")).await;
    assert_eq!(r.status(), 200, "the rotated secret serves at once");
    assert_eq!(upstream.keys("/chat/completions").last().unwrap(), "sk-ok-fixed-00112233445566");

    // A rate-limited key is reported, and its status left alone.
    let limited = api
        .admin(Method::POST, keys_path, Some(json!({"key_name": "busy", "api_key": "sk-429-busy-0123456789"})))
        .await;
    assert_eq!(limited.status, 201);
    let report = api.admin(Method::POST, "/api/admin/ai-providers/keys/openai-busy/validate", None).await;
    assert_eq!(
        (report.body["outcome"].as_str(), report.body["key"]["status"].as_str()),
        (Some("rate_limited"), Some("normal"))
    );

    expect_error(
        &api.admin(Method::PUT, key_path, Some(json!({"version": 3, "rate_limit_rpm": 0}))).await,
        400,
        Some("rate_limit_rpm"),
    );
    expect_error(
        &api.admin(Method::PUT, key_path, Some(json!({"version": 3, "api_key": ""}))).await,
        400,
        Some("api_key"),
    );
    expect_error(&api.admin(Method::PUT, key_path, Some(json!({"version": 3, "key_name": "busy"}))).await, 409, None);
    expect_error(
        &api.admin(Method::PUT, "/api/admin/ai-providers/keys/nope", Some(json!({"version": 1}))).await,
        404,
        None,
    );
    expect_error(&api.admin(Method::POST, "/api/admin/ai-providers/keys/nope/validate", None).await, 404, None);

    // Delete: a stale If-Match is refused, then it goes, then it is unknown.
    expect_error(&api.send(Method::DELETE, key_path, Some(&app.admin_token), None, Some("\"1\"")).await, 409, None);
    let deleted = api.send(Method::DELETE, key_path, Some(&app.admin_token), None, Some("\"3\"")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    expect_error(&api.admin(Method::DELETE, key_path, None).await, 404, None);
    let left: Vec<Value> =
        api.get(keys_path).await["data"].as_array().unwrap().iter().map(|k| k["id"].clone()).collect();
    assert_eq!(left, [json!("openai-busy")]);
}

/// A key's test call: one real call of at most one output token with that key alone, recorded
/// and costed like any call; a failure noted on the key with the provider's words (its secret
/// masked), as the gateway notes the failure that takes a key out of use.
#[tokio::test]
async fn a_key_test_call_is_one_recorded_call_and_a_failure_is_noted_with_its_reason() {
    let upstream = FakeProvider::start().await;
    let app = app_with(&upstream, &[]).await;
    let api = Api::new(&app);
    let keys_path = "/api/admin/ai-providers/openai/keys";
    for (name, secret, rpd) in [("ok", "sk-ok-test-0123456789abcdef", 2), ("bad", "sk-401-test-fedcba9876543210", 100)]
    {
        let created = api
            .admin(Method::POST, keys_path, Some(json!({"key_name": name, "api_key": secret, "rate_limit_rpd": rpd})))
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
    }

    let tested = api
        .admin(
            Method::POST,
            "/api/admin/ai-providers/keys/openai-ok/test",
            Some(json!({"model": "openai/gpt-4o-mini"})),
        )
        .await;
    assert_eq!(tested.status, 200, "{}", tested.body);
    let report = &tested.body;
    assert_eq!(
        (report["outcome"].as_str(), report["ok"].as_bool(), report["model"].as_str(), report["http_status"].as_u64()),
        (Some("ok"), Some(true), Some("openai/gpt-4o-mini"), Some(200))
    );
    assert!(report["message"].is_null());
    let sent = upstream.last_body();
    assert_eq!((sent["model"].as_str(), sent["max_tokens"].as_u64()), (Some("gpt-4o-mini"), Some(1)), "{sent}");
    assert_eq!(upstream.keys("/chat/completions"), ["sk-ok-test-0123456789abcdef"], "that key alone");
    // In the call log like any call, costed at the model's prices, under the admin.
    let request_id = report["request_id"].as_str().unwrap();
    assert!(request_id.starts_with("req_"), "{report}");
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let logged = &api.get(&format!("/api/admin/ai-stats/logs?request_id={request_id}")).await["data"][0];
    assert_eq!(
        (
            logged["request_type"].as_str(),
            logged["key_id"].as_str(),
            logged["user_id"].as_str(),
            logged["status"].as_str()
        ),
        (Some("key_test"), Some("openai-ok"), Some("admin-1"), Some("success"))
    );
    let usage = (logged["prompt_tokens"].as_u64().unwrap(), logged["completion_tokens"].as_u64().unwrap());
    let model = api.get("/api/admin/ai-models?provider=openai").await["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "openai/gpt-4o-mini")
        .unwrap()
        .clone();
    let expected_cost = (usage.0 * model["prices"]["input_price"].as_u64().unwrap()
        + usage.1 * model["prices"]["output_price"].as_u64().unwrap()
        + 500_000)
        / 1_000_000;
    assert_eq!(
        (logged["cost_micros"].as_u64(), report["cost_micros"].as_u64()),
        (Some(expected_cost), Some(expected_cost))
    );
    assert!(expected_cost > 0);
    assert_eq!(report["key"]["status"], "normal");

    // Without a body: the provider's first active chat model. Then the key's day (rpd 2) is
    // full: nothing is sent, and it says so.
    let second =
        api.send(Method::POST, "/api/admin/ai-providers/keys/openai-ok/test", Some(&app.admin_token), None, None).await;
    assert_eq!((second.status, second.body["outcome"].as_str()), (200, Some("ok")), "{}", second.body);
    assert!(second.body["model"].as_str().unwrap().starts_with("openai/"));
    let calls = upstream.keys("/chat/completions").len();
    let full = api.admin(Method::POST, "/api/admin/ai-providers/keys/openai-ok/test", None).await;
    assert_eq!(
        (full.body["outcome"].as_str(), full.body["request_id"].as_str(), full.body["latency_ms"].as_u64()),
        (Some("at_limit"), None, Some(0)),
        "{}",
        full.body
    );
    assert!(full.body["message"].as_str().unwrap().contains(" UTC"), "{}", full.body);
    assert_eq!(upstream.keys("/chat/completions").len(), calls, "nothing sent");

    // A refused key: invalid, and why, noted with when (the secret masked).
    let bad = api.admin(Method::POST, "/api/admin/ai-providers/keys/openai-bad/test", None).await;
    assert_eq!(bad.status, 200, "{}", bad.body);
    assert_eq!(
        (bad.body["outcome"].as_str(), bad.body["http_status"].as_u64(), bad.body["key"]["status"].as_str()),
        (Some("invalid"), Some(401), Some("invalid"))
    );
    let noted = bad.body["key"]["last_error_message"].as_str().unwrap();
    assert!(noted.starts_with("HTTP 401: ") && noted.contains("sk-…3210"), "{noted}");
    assert!(!noted.contains("fedcba98"), "{noted}");
    let at = bad.body["key"]["last_error_message_at"].as_i64().unwrap();
    assert!((maestro_shared::time::now_ms() - at).abs() < 60_000);
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let failed = &api
        .get(&format!("/api/admin/ai-stats/logs?request_id={}", bad.body["request_id"].as_str().unwrap()))
        .await["data"][0];
    assert_eq!((failed["status"].as_str(), failed["http_status"].as_u64()), (Some("error"), Some(401)));
    assert_eq!(failed["cost_micros"], 0);

    // The gateway notes why it takes a key out of use: a DeepSeek key refused in a real call.
    let ds = api
        .admin(
            Method::POST,
            "/api/admin/ai-providers/deepseek/keys",
            Some(json!({"key_name": "gw", "api_key": "sk-401-gateway-0123456789"})),
        )
        .await;
    assert_eq!(ds.status, 201, "{}", ds.body);
    let model = api.get("/api/admin/ai-models?provider=deepseek&active=true").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(app.chat(hello(&model)).await.status(), 200);
    let key = api.get("/api/admin/ai-providers/deepseek/keys").await["data"][0].clone();
    assert_eq!(key["status"], "invalid");
    let noted = key["last_error_message"].as_str().unwrap();
    assert!(noted.starts_with("HTTP 401: ") && !noted.contains("gateway-0123456789"), "{noted}");
    assert_eq!(key["version"], 1, "health is not an edit");

    // Mistakes.
    expect_error(
        &api.admin(Method::POST, "/api/admin/ai-providers/keys/openai-bad/test", Some(json!({"model": "openai/nope"})))
            .await,
        400,
        Some("model"),
    );
    expect_error(&api.admin(Method::POST, "/api/admin/ai-providers/keys/nope/test", None).await, 404, None);
    expect_error(
        &api.admin(Method::POST, "/api/admin/ai-providers/keys/openai-bad/test", Some(json!({"colour": "red"}))).await,
        400,
        None,
    );
    let transcript = api.transcript();
    for secret in ["0123456789abcdef", "fedcba9876543210", "gateway-0123456789"] {
        assert!(!transcript.contains(secret), "{secret} in an answer");
    }
}

/// A provider goes with its models, only once it has no key and no route uses its models; the
/// demo provider stays.
#[tokio::test]
async fn a_provider_is_deleted_with_its_models_once_it_has_no_key_and_no_route_targets_it() {
    let upstream = FakeProvider::start().await;
    let app = app_with(&upstream, &[]).await;
    let api = Api::new(&app);
    let created = api
        .admin(
            Method::POST,
            "/api/admin/ai-providers",
            Some(json!({"provider_code": "local", "provider_name": "Local", "kind": "openai_compatible", "base_url": upstream.base("openai")})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let synced = api.admin(Method::POST, "/api/admin/ai-providers/local/sync-models", None).await;
    assert_eq!(synced.status, 200, "{}", synced.body);
    let model = synced.body["added"][0]["id"].as_str().unwrap().to_string();
    let key = api
        .admin(
            Method::POST,
            "/api/admin/ai-providers/local/keys",
            Some(json!({"key_name": "k", "api_key": "sk-ok-local-0123456789"})),
        )
        .await;
    assert_eq!(key.status, 201);
    assert_eq!(
        api.admin(Method::POST, "/api/admin/ai-routes", Some(json!({"name": "via-local", "targets": [model]})))
            .await
            .status,
        201
    );

    let path = "/api/admin/ai-providers/local";
    let refused = api.admin(Method::DELETE, path, None).await;
    expect_error(&refused, 409, None);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("local-k"), "{}", refused.body);
    assert_eq!(api.admin(Method::DELETE, "/api/admin/ai-providers/keys/local-k", None).await.status, 204);
    let routed = api.admin(Method::DELETE, path, None).await;
    expect_error(&routed, 409, None);
    assert!(routed.body["error"]["message"].as_str().unwrap().contains("via-local"), "{}", routed.body);
    assert_eq!(api.admin(Method::DELETE, "/api/admin/ai-routes/via-local", None).await.status, 204);
    expect_error(&api.send(Method::DELETE, path, Some(&app.admin_token), None, Some("\"9\"")).await, 409, None);
    let deleted = api.send(Method::DELETE, path, Some(&app.admin_token), None, Some("\"1\"")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let providers = api.get("/api/admin/ai-providers").await;
    assert!(!providers["data"].as_array().unwrap().iter().any(|p| p["provider_code"] == "local"));
    expect_error(&api.admin(Method::GET, "/api/admin/ai-models?provider=local", None).await, 404, None);
    expect_error(&api.admin(Method::DELETE, path, None).await, 404, None);
    // Callers no longer see its models.
    assert_ne!(app.chat(hello(&model)).await.status(), 200);
    expect_error(&api.admin(Method::DELETE, "/api/admin/ai-providers/demo", None).await, 409, None);
}

// ---- Models -------------------------------------------------------------------------------------

#[tokio::test]
async fn synced_models_arrive_inactive_and_unpriced_and_model_edits_move_the_default() {
    let upstream = FakeProvider::start().await;
    let app = app_with(
        &upstream,
        &[("ANTHROPIC_API_KEY", "sk-ok-ant-0123456789abcdef"), ("DEEPSEEK_API_KEY", "sk-ok-ds-0123456789abcdef")],
    )
    .await;
    let api = Api::new(&app);
    for code in ["vllm-a", "vllm-b"] {
        let a = api
            .admin(Method::POST, "/api/admin/ai-providers", Some(json!({"provider_code": code, "provider_name": code, "kind": "openai_compatible", "base_url": upstream.base(code)})))
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
    }

    // No key: an OpenAI-compatible server is asked without one.
    let report = api.admin(Method::POST, "/api/admin/ai-providers/vllm-a/sync-models", None).await;
    assert_eq!(report.status, 200, "{}", report.body);
    assert_eq!(report.body["listed"], 3);
    let added: Vec<&str> =
        report.body["added"].as_array().unwrap().iter().map(|m| m["model_code"].as_str().unwrap()).collect();
    assert_eq!(added, ["model-id-0", "model-id-1", "model-id-2"]);
    let first = &report.body["added"][0];
    assert_eq!(
        (first["is_active"].as_bool(), first["prices"]["input_price"].as_u64(), first["version"].as_u64()),
        (Some(false), Some(0), Some(1))
    );
    assert_eq!(first["id"], "vllm-a/model-id-0");
    let again = api.admin(Method::POST, "/api/admin/ai-providers/vllm-a/sync-models", None).await;
    assert_eq!(
        (again.body["added"].as_array().unwrap().len(), again.body["existing"].as_array().unwrap().len()),
        (0, 3)
    );
    assert_eq!(api.admin(Method::POST, "/api/admin/ai-providers/vllm-b/sync-models", None).await.status, 200);

    // Anthropic (x-api-key, display names) and DeepSeek (limits and modalities in its list).
    let anthropic = api.admin(Method::POST, "/api/admin/ai-providers/anthropic/sync-models", None).await;
    assert_eq!(anthropic.status, 200, "{}", anthropic.body);
    let opus =
        anthropic.body["added"].as_array().unwrap().iter().find(|m| m["model_code"] == "claude-opus-4-6").unwrap();
    assert_eq!(opus["model_name"], "Claude Opus 4.6");
    assert!(opus["max_input_tokens"].is_null(), "the documented example's 0 means unknown");
    assert_eq!(opus["supports_vision"], true);
    assert!(anthropic.body["not_listed"].as_array().unwrap().iter().any(|m| m == "claude-sonnet-4-5"));
    // The documented example says `has_more` with a placeholder `last_id`: the next page is
    // asked for once, and the same `last_id` again ends the walk.
    let asked = upstream.keys("/anthropic/v1/models");
    assert_eq!(asked, ["sk-ok-ant-0123456789abcdef", "sk-ok-ant-0123456789abcdef"]);
    assert_eq!(anthropic.body["listed"], 1, "a model listed twice counts once");
    let deepseek = api.admin(Method::POST, "/api/admin/ai-providers/deepseek/sync-models", None).await;
    let flash =
        deepseek.body["added"].as_array().unwrap().iter().find(|m| m["model_code"] == "deepseek-flash").unwrap();
    assert_eq!(
        (flash["model_name"].as_str(), flash["max_input_tokens"].as_u64(), flash["max_output_tokens"].as_u64()),
        (Some("DeepSeek-V4.1-Flash"), Some(1_048_576), Some(393_216))
    );
    assert_eq!(flash["supports_vision"], true);
    assert!(deepseek.body["existing"].as_array().unwrap().iter().any(|m| m == "deepseek-v4-pro"));

    expect_error(&api.admin(Method::POST, "/api/admin/ai-providers/openai/sync-models", None).await, 409, None);
    expect_error(&api.admin(Method::POST, "/api/admin/ai-providers/ghost/sync-models", None).await, 404, None);

    // Listing with filters.
    let inactive = api.get("/api/admin/ai-models?provider=vllm-a&active=false").await;
    assert_eq!(inactive["data"].as_array().unwrap().len(), 3);
    assert!(api.get("/api/admin/ai-models?provider=vllm-a&active=true").await["data"].as_array().unwrap().is_empty());
    let all = api.get("/api/admin/ai-models").await["data"].as_array().unwrap().len();
    assert!(all > 10);
    expect_error(&api.admin(Method::GET, "/api/admin/ai-models?provider=ghost", None).await, 404, None);
    expect_error(&api.admin(Method::GET, "/api/admin/ai-models?active=maybe", None).await, 400, None);

    // Price and activate one; it serves at once; the version guards the edit.
    let path = "/api/admin/ai-models/vllm-a%2Fmodel-id-0";
    let edited = api
        .admin(
            Method::PUT,
            path,
            Some(json!({
                "version": 1, "model_name": "Model Zero", "max_output_tokens": 2048, "supports_function_call": true,
                "prices": {"input_price": 1_000_000, "cached_input_price": 500_000, "output_price": 2_000_000},
                "is_active": true, "is_default": true
            })),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    let m = &edited.body;
    assert_eq!(
        (m["version"].as_u64(), m["is_default"].as_bool(), m["supports_function_call"].as_bool()),
        (Some(2), Some(true), Some(true))
    );
    assert_eq!(
        m["prices"],
        json!({"input_price": 1_000_000, "cached_input_price": 500_000, "cache_write_price": null, "output_price": 2_000_000})
    );
    assert_eq!(m["max_input_tokens"], Value::Null);
    let models = app.http.get(format!("{}/v1/models", app.url)).bearer_auth(&app.token).send().await.unwrap();
    let ids: Vec<String> = models.json::<Value>().await.unwrap()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&"vllm-a/model-id-0".to_string()), "{ids:?}");

    // The default moves: vllm-b takes it and vllm-a loses it in the same write.
    let b = api.get("/api/admin/ai-models?provider=vllm-b").await["data"][0].clone();
    let moved = api
        .send(
            Method::PUT,
            "/api/admin/ai-models/vllm-b%2Fmodel-id-0",
            Some(&app.admin_token),
            Some(json!({"is_default": true, "is_active": true})),
            Some(&format!("\"{}\"", b["version"])),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let a = api.get("/api/admin/ai-models?provider=vllm-a&active=true").await["data"][0].clone();
    assert_eq!((a["is_default"].as_bool(), a["version"].as_u64()), (Some(false), Some(3)));

    expect_error(&api.admin(Method::PUT, path, Some(json!({"version": 2, "is_active": false}))).await, 409, None);
    expect_error(&api.admin(Method::PUT, path, Some(json!({"is_active": false}))).await, 428, Some("version"));
    expect_error(
        &api.admin(Method::PUT, path, Some(json!({"version": 3, "max_output_tokens": 0}))).await,
        400,
        Some("max_output_tokens"),
    );
    expect_error(
        &api.admin(Method::PUT, path, Some(json!({"version": 3, "prices": {"output_price": 10_000_000_000_000u64}})))
            .await,
        400,
        Some("prices.output_price"),
    );
    expect_error(
        &api.admin(Method::PUT, path, Some(json!({"version": 3, "model_type": "Chat!"}))).await,
        400,
        Some("model_type"),
    );
    expect_error(&api.admin(Method::PUT, path, Some(json!({"version": 3, "prices": {"input": 1}}))).await, 400, None);
    expect_error(
        &api.admin(Method::PUT, "/api/admin/ai-models/vllm-a%2Fnope", Some(json!({"version": 1}))).await,
        404,
        None,
    );
    expect_error(
        &api.admin(Method::PUT, "/api/admin/ai-models/no-slash", Some(json!({"version": 1}))).await,
        404,
        None,
    );
}

// ---- Routes -------------------------------------------------------------------------------------

#[tokio::test]
async fn routes_are_created_updated_and_deleted_and_callers_see_them_at_once() {
    let upstream = FakeProvider::start().await;
    let app = app_with(&upstream, &[]).await;
    let api = Api::new(&app);

    let created = api
        .admin(
            Method::POST,
            "/api/admin/ai-routes",
            Some(json!({"name": "smart", "targets": ["openai/gpt-4o-mini", "demo/echo"]})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body,
        json!({"name": "smart", "targets": ["openai/gpt-4o-mini", "demo/echo"], "drop_params": false,
               "strategy": "fallback", "weights": [], "rules": [], "cache_ttl_secs": null, "cache_scope": "user",
               "cache_sampled": false, "version": 1})
    );
    // No key for openai: the route falls back to the demo model.
    let r = app.chat(hello("smart")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-maestro-provider"], "demo");

    expect_error(
        &api.admin(Method::POST, "/api/admin/ai-routes", Some(json!({"name": "smart", "targets": ["demo/echo"]})))
            .await,
        409,
        None,
    );
    for (body, param) in [
        (json!({"name": "a/b", "targets": ["demo/echo"]}), Some("name")),
        (json!({"name": "x", "targets": []}), Some("targets")),
        (json!({"name": "x", "targets": ["demo/nope"]}), Some("targets[0]")),
        (json!({"name": "x", "targets": ["demo/echo", "echo"]}), Some("targets[1]")),
        (json!({"name": "x", "targets": ["demo/echo", "demo/echo"]}), Some("targets[1]")),
        (json!({"name": "x"}), None),
        (json!({"name": "x", "targets": ["demo/echo"], "strategy": "random"}), None),
        (json!({"name": "x", "targets": ["demo/echo"], "weights": [1]}), Some("weights")),
        (json!({"name": "x", "targets": ["demo/echo"], "strategy": "weighted", "weights": [1, 2]}), Some("weights")),
        (
            json!({"name": "x", "targets": ["demo/echo"], "rules": [{"when": {}, "targets": ["demo/echo"]}]}),
            Some("rules[0].when"),
        ),
        (
            json!({"name": "x", "targets": ["demo/echo"], "rules": [{"when": {"cjk_share_at_least": 30}, "targets": ["demo/echo"]}]}),
            Some("rules[0].when.cjk_share_at_least"),
        ),
        (
            json!({"name": "x", "targets": ["demo/echo"], "rules": [{"when": {"tag": "a"}, "targets": ["demo/ghost"]}]}),
            Some("rules[0].targets[0]"),
        ),
        (
            json!({"name": "x", "targets": ["demo/echo"], "rules": [{"when": {"language": "zh"}, "targets": ["demo/echo"]}]}),
            None,
        ),
    ] {
        expect_error(&api.admin(Method::POST, "/api/admin/ai-routes", Some(body)).await, 400, param);
    }

    let path = "/api/admin/ai-routes/smart";
    let updated = api.admin(Method::PUT, path, Some(json!({"version": 1, "targets": ["demo/echo"]}))).await;
    assert_eq!((updated.status, updated.body["version"].as_u64()), (200, Some(2)), "{}", updated.body);
    expect_error(&api.admin(Method::PUT, path, Some(json!({"version": 1, "targets": ["demo/echo"]}))).await, 409, None);
    // `drop_params` alone changes, the targets stay.
    let lenient = api.admin(Method::PUT, path, Some(json!({"version": 2, "drop_params": true}))).await;
    assert_eq!(
        (lenient.status, &lenient.body["drop_params"], &lenient.body["targets"], lenient.body["version"].as_u64()),
        (200, &json!(true), &json!(["demo/echo"]), Some(3)),
        "{}",
        lenient.body
    );
    // Rules and a strategy are set, and a later update without them keeps them.
    let rules = json!([
        {"when": {"cjk_share_at_least": 0.3, "tag": "lyrics"}, "targets": ["demo/echo"]},
        {"when": {"has_images": true, "user": "vip-*"}, "targets": ["openai/gpt-4o-mini", "demo/echo"],
         "strategy": "weighted", "weights": [3, 1]}
    ]);
    let smart = api.admin(Method::PUT, path, Some(json!({"version": 3, "strategy": "cheapest", "rules": rules}))).await;
    assert_eq!(
        (smart.status, &smart.body["rules"], &smart.body["strategy"]),
        (200, &rules, &json!("cheapest")),
        "{}",
        smart.body
    );
    let renamed = api.admin(Method::PUT, path, Some(json!({"version": 4, "drop_params": true}))).await;
    assert_eq!((&renamed.body["rules"], &renamed.body["strategy"]), (&rules, &json!("cheapest")));
    let plain = api.admin(Method::PUT, path, Some(json!({"version": 5, "strategy": "fallback", "rules": []}))).await;
    assert_eq!((plain.status, &plain.body["rules"]), (200, &json!([])), "{}", plain.body);
    expect_error(&api.admin(Method::PUT, path, Some(json!({"targets": ["demo/echo"]}))).await, 428, None);
    expect_error(&api.admin(Method::PUT, path, Some(json!({"version": 2, "name": "other"}))).await, 400, Some("name"));
    expect_error(&api.admin(Method::PUT, "/api/admin/ai-routes/ghost", Some(json!({"version": 1}))).await, 404, None);
    assert_eq!(
        api.get("/api/admin/ai-routes").await["data"],
        json!([{"name": "smart", "targets": ["demo/echo"], "drop_params": true, "strategy": "fallback",
                "weights": [], "rules": [], "cache_ttl_secs": null, "cache_scope": "user", "cache_sampled": false,
                "version": 6}])
    );

    expect_error(&api.send(Method::DELETE, path, Some(&app.admin_token), None, Some("\"1\"")).await, 409, None);
    assert_eq!(api.admin(Method::DELETE, path, None).await.status, 204);
    expect_error(&api.admin(Method::DELETE, path, None).await, 404, None);
    assert_eq!(app.chat(hello("smart")).await.status(), 404, "the route is gone at once");
}

// ---- Authentication -----------------------------------------------------------------------------

/// One request per admin route and method.
fn every_route() -> Vec<(Method, &'static str)> {
    vec![
        (Method::GET, "/api/admin/ai-providers"),
        (Method::GET, "/api/admin/ai-providers/kinds"),
        (Method::POST, "/api/admin/ai-providers"),
        (Method::PUT, "/api/admin/ai-providers/openai"),
        (Method::DELETE, "/api/admin/ai-providers/openai"),
        (Method::POST, "/api/admin/ai-providers/openai/sync-models"),
        (Method::GET, "/api/admin/ai-providers/openai/keys"),
        (Method::POST, "/api/admin/ai-providers/openai/keys"),
        (Method::PUT, "/api/admin/ai-providers/keys/demo-key"),
        (Method::DELETE, "/api/admin/ai-providers/keys/demo-key"),
        (Method::POST, "/api/admin/ai-providers/keys/demo-key/validate"),
        (Method::POST, "/api/admin/ai-providers/keys/demo-key/test"),
        (Method::GET, "/api/admin/ai-models"),
        (Method::PUT, "/api/admin/ai-models/demo%2Fecho"),
        (Method::GET, "/api/admin/ai-routes"),
        (Method::POST, "/api/admin/ai-routes"),
        (Method::PUT, "/api/admin/ai-routes/smart"),
        (Method::DELETE, "/api/admin/ai-routes/smart"),
    ]
}

#[tokio::test]
async fn every_admin_route_wants_a_valid_admin_token() {
    let upstream = FakeProvider::start().await;
    let app = app_with(&upstream, &[]).await;
    let api = Api::new(&app);
    // The same signature over other claims does not verify.
    let forged = {
        let mut parts: Vec<String> = app.admin_token.split('.').map(str::to_string).collect();
        let user_parts: Vec<&str> = app.token.split('.').collect();
        parts[1] = user_parts[1].to_string();
        parts.join(".")
    };
    for (method, path) in every_route() {
        let body = matches!(method, Method::POST | Method::PUT).then(|| json!({"version": 1}));
        let none = api.send(method.clone(), path, None, body.clone(), None).await;
        expect_error(&none, 401, None);
        assert_eq!(none.body["error"]["type"], "authentication_error");
        expect_error(&api.send(method.clone(), path, Some("not.a.jwt"), body.clone(), None).await, 401, None);
        expect_error(&api.send(method.clone(), path, Some(&forged), body.clone(), None).await, 401, None);
        let user = api.send(method.clone(), path, Some(&app.token), body, None).await;
        expect_error(&user, 403, None);
        assert_eq!(user.body["error"]["type"], "permission_error");
    }
    // Nothing was changed by any of them.
    assert_eq!(api.get("/api/admin/ai-providers/openai/keys").await["data"], json!([]));
    assert_eq!(api.get("/api/admin/ai-providers/demo/keys").await["data"][0]["version"], 1);
}

#[tokio::test]
async fn built_in_providers_sync_from_their_list_or_else_from_maestros_own() {
    let upstream = FakeProvider::start().await;
    // Kimi lists its models; the Zhipu endpoint here has no model list (404), as Zhipu's API has none.
    let app = app_with(
        &upstream,
        &[
            ("MOONSHOT_API_KEY", "sk-ok-kimi-0123456789abcdef"),
            ("MOONSHOT_BASE_URL", &upstream.base("moonshot")),
            ("ZHIPU_API_KEY", "sk-ok-glm-0123456789abcdef"),
            ("ZHIPU_BASE_URL", &format!("{}/no-models", upstream.base("zhipu"))),
        ],
    )
    .await;
    let api = Api::new(&app);
    let kimi = api.admin(Method::POST, "/api/admin/ai-providers/moonshot/sync-models", None).await;
    assert_eq!(kimi.status, 200, "{}", kimi.body);
    assert_eq!((kimi.body["source"].as_str(), kimi.body["listed"].as_u64()), (Some("provider"), Some(3)));
    assert!(kimi.body["not_listed"].as_array().unwrap().iter().any(|m| m == "kimi-k3"), "the seeded ones stay");
    assert_eq!(upstream.keys("/moonshot/models"), ["sk-ok-kimi-0123456789abcdef"]);

    // Zhipu's models are all seeded already: a sync from Maestro's own list finds them and adds none.
    let glm = api.admin(Method::POST, "/api/admin/ai-providers/zhipu/sync-models", None).await;
    assert_eq!(glm.status, 200, "{}", glm.body);
    assert_eq!(glm.body["source"], "built_in");
    let existing: Vec<&str> = glm.body["existing"].as_array().unwrap().iter().filter_map(|m| m.as_str()).collect();
    assert!(existing.contains(&"glm-5.3") && existing.contains(&"glm-4.7-flash"), "{existing:?}");
    assert_eq!(glm.body["added"], json!([]));

    // A second Zhipu provider (another region) starts empty: the sync adds Maestro's list,
    // inactive, with the shipped prices.
    let created = api
        .admin(Method::POST, "/api/admin/ai-providers", Some(json!({"provider_code": "zhipu-intl", "provider_name": "Z.ai", "kind": "zhipu", "base_url": format!("{}/no-models", upstream.base("zai"))})))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let key = api
        .admin(
            Method::POST,
            "/api/admin/ai-providers/zhipu-intl/keys",
            Some(json!({"key_name": "main", "api_key": "sk-ok-zai-0123456789abcdef"})),
        )
        .await;
    assert_eq!(key.status, 201, "{}", key.body);
    let intl = api.admin(Method::POST, "/api/admin/ai-providers/zhipu-intl/sync-models", None).await;
    assert_eq!((intl.status, intl.body["source"].as_str()), (200, Some("built_in")), "{}", intl.body);
    let glm53 = intl.body["added"].as_array().unwrap().iter().find(|m| m["model_code"] == "glm-5.3").cloned().unwrap();
    assert_eq!(
        (
            glm53["is_active"].as_bool(),
            glm53["prices"]["input_price"].as_u64(),
            glm53["prices"]["output_price"].as_u64()
        ),
        (Some(false), Some(1_400_000), Some(4_400_000))
    );

    // Any other failure is still the provider's: a refused key is not papered over with a list.
    let bad = api
        .admin(
            Method::POST,
            "/api/admin/ai-providers/moonshot/keys",
            Some(json!({"key_name": "bad", "api_key": "sk-401-kimi-0123456789abcdef", "priority": 9})),
        )
        .await;
    assert_eq!(bad.status, 201, "{}", bad.body);
    let refused = api.admin(Method::POST, "/api/admin/ai-providers/moonshot/sync-models", None).await;
    assert!(refused.status >= 400 && refused.body["source"].is_null(), "{}", refused.body);
}

#[tokio::test]
async fn provider_kinds_come_from_one_table() {
    let upstream = FakeProvider::start().await;
    let app = app_with(&upstream, &[]).await;
    let api = Api::new(&app);
    let kinds = api.get("/api/admin/ai-providers/kinds").await["data"].clone();
    let row = |kind: &str| kinds.as_array().unwrap().iter().find(|k| k["kind"] == kind).cloned().unwrap();
    assert_eq!(kinds.as_array().map(Vec::len), Some(maestro_shared::domain::KINDS.len()), "{kinds}");
    assert_eq!(row("openai")["default_base_url"], "https://api.openai.com/v1");
    assert_eq!(row("qwen")["default_base_url"], "https://dashscope.aliyuncs.com/compatible-mode/v1");
    assert_eq!(row("gemini")["creatable"], true);
    assert_eq!(
        (row("openai_compatible")["default_base_url"].as_str(), row("openai_compatible")["creatable"].as_bool()),
        (Some(""), Some(true))
    );
    assert_eq!(row("demo")["creatable"], false);
    // The kinds' path is not a provider code, and the demo cannot be created.
    let body = |code: &str, kind: &str| json!({"provider_code": code, "provider_name": "X", "kind": kind, "base_url": "http://127.0.0.1:9/v1"});
    expect_error(
        &api.admin(Method::POST, "/api/admin/ai-providers", Some(body("kinds", "openai_compatible"))).await,
        400,
        Some("provider_code"),
    );
    let demo = api.admin(Method::POST, "/api/admin/ai-providers", Some(body("echo2", "demo"))).await;
    expect_error(&demo, 400, Some("kind"));
    assert!(
        demo.body["error"]["message"].as_str().unwrap().contains("openai, anthropic, deepseek, openai_compatible"),
        "{}",
        demo.body
    );
}

// ---- Secrets ------------------------------------------------------------------------------------

#[tokio::test]
async fn no_response_and_no_log_line_ever_holds_a_provider_secret() {
    let upstream = FakeProvider::start().await;
    let env_secret = "sk-ok-fromenv-5ecret0123456789";
    let app = app_with(&upstream, &[("DEEPSEEK_API_KEY", env_secret)]).await;
    let api = Api::new(&app);
    let secrets = [
        env_secret,
        "sk-ok-first-5ecretAAAA0123456789",
        "sk-401-second-5ecretBBBB0123456789",
        "sk-ok-third-5ecretCCCC0123456789",
        "sk-429-fourth-5ecretDDDD0123456789",
        "gw-token-5ecretEEEE0123456789",
    ];

    api.admin(Method::POST, "/api/admin/ai-providers", Some(json!({"provider_code": "gw", "provider_name": "Gateway", "kind": "openai_compatible", "base_url": upstream.base("gw"), "config": {"headers": {"Authorization": format!("Bearer {}", secrets[5])}}}))).await;
    for (name, secret) in [("first", secrets[1]), ("second", secrets[2])] {
        let a = api
            .admin(
                Method::POST,
                "/api/admin/ai-providers/openai/keys",
                Some(json!({"key_name": name, "api_key": secret})),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
    }
    let a = api
        .admin(
            Method::POST,
            "/api/admin/ai-providers/gw/keys",
            Some(json!({"key_name": "busy", "api_key": secrets[4]})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    // A key whose secret is echoed by the provider, through every path that calls the provider.
    for id in ["openai-first", "openai-second", "gw-busy", "deepseek-deepseek-api-key"] {
        api.admin(Method::POST, &format!("/api/admin/ai-providers/keys/{id}/validate"), None).await;
    }
    for code in ["openai", "gw", "deepseek"] {
        api.admin(Method::POST, &format!("/api/admin/ai-providers/{code}/sync-models"), None).await;
    }
    let second = api.get("/api/admin/ai-providers/openai/keys").await["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == "openai-second")
        .unwrap()
        .clone();
    api.admin(
        Method::PUT,
        "/api/admin/ai-providers/keys/openai-second",
        Some(json!({"version": second["version"], "api_key": secrets[3]})),
    )
    .await;
    // A bad request that carries a secret is refused without repeating it.
    api.admin(
        Method::POST,
        "/api/admin/ai-providers/openai/keys",
        Some(json!({"key_name": "first", "api_key": secrets[1]})),
    )
    .await;
    api.admin(
        Method::POST,
        "/api/admin/ai-providers/openai/keys",
        Some(json!({"key_name": "x", "api_key": format!("{}\n", secrets[1]), "oops": secrets[2]})),
    )
    .await;
    // Calls through the keys, so logs and stats have something.
    for _ in 0..2 {
        app.chat(hello("openai/gpt-4o-mini")).await;
        app.chat(hello("deepseek/deepseek-v4-flash")).await;
    }
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    for path in [
        "/api/admin/ai-providers",
        "/api/admin/ai-providers/openai/keys",
        "/api/admin/ai-providers/gw/keys",
        "/api/admin/ai-providers/deepseek/keys",
        "/api/admin/ai-models",
        "/api/admin/ai-routes",
        "/api/admin/ai-stats/dashboard",
        "/api/admin/ai-stats/usage?group_by=key",
        "/api/admin/ai-stats/usage?user=user-1&group_by=model",
        "/api/admin/ai-stats/usage/trend?group_by=provider",
        "/api/admin/ai-stats/logs?limit=1000",
        "/api/admin/ai-stats/logs?status=error",
        "/openapi.json",
    ] {
        api.get(path).await;
    }
    for id in ["openai-first", "openai-second", "gw-busy"] {
        api.admin(Method::DELETE, &format!("/api/admin/ai-providers/keys/{id}"), None).await;
    }

    let transcript = api.transcript();
    assert!(transcript.contains("sk-…"), "the masked forms are there: {transcript}");
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(logs.contains("key created"), "the admin's log lines were captured");
    for secret in secrets {
        assert!(!transcript.contains(secret), "a response holds {secret}");
        assert!(!logs.contains(secret), "a log line holds {secret}");
        // Not even the part that tells it apart.
        let distinct = &secret[secret.find("5ecret").unwrap()..];
        assert!(!transcript.contains(distinct) && !logs.contains(distinct), "{distinct} leaked");
    }
}

// ---- OpenAPI ------------------------------------------------------------------------------------

/// `/openapi.json` documents every route of the chat, admin and stats routers, each with its
/// error shape, and every documented operation is served (without a token: 401, never 404).
#[tokio::test]
async fn the_openapi_document_covers_every_route_and_every_documented_route_is_served() {
    let app = spawn_app(FAST_RETRY, &[]).await;
    let spec: Value = app.http.get(format!("{}/openapi.json", app.url)).send().await.unwrap().json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(spec["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(spec["components"]["schemas"]["ErrorResponse"].is_object());
    let mut documented = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.push(format!("{} {path}", method.to_uppercase()));
            assert!(op["responses"]["401"].is_object() || path == "/v1/models", "{method} {path} documents its 401");
            assert!(op["security"].is_array(), "{method} {path} names its security");
        }
    }
    documented.sort();
    let mut expected: Vec<String> = every_route()
        .into_iter()
        .map(|(m, p)| {
            let p = p
                .replace("/ai-providers/openai", "/ai-providers/{id}")
                .replace("/keys/demo-key", "/keys/{id}")
                .replace("/ai-models/demo%2Fecho", "/ai-models/{id}")
                .replace("/ai-routes/smart", "/ai-routes/{name}");
            format!("{m} {p}")
        })
        .collect();
    expected.extend(
        [
            "GET /api/admin/ai-stats/dashboard",
            "GET /api/admin/ai-stats/usage",
            "GET /api/admin/ai-stats/usage/trend",
            "GET /api/admin/ai-stats/live",
            "GET /api/admin/ai-stats/spend",
            "GET /api/admin/ai-stats/logs",
            "GET /api/admin/ai-stats/logs/count",
            "GET /api/admin/ai-stats/logs/export",
            "POST /v1/chat/completions",
            "POST /api/ai/chat/completions",
            "POST /v1/embeddings",
            "POST /api/ai/embeddings",
            "POST /v1/messages",
            "POST /v1/messages/count_tokens",
            "POST /v1/responses",
            "GET /v1/models",
            "GET /v1/models/{id}",
            "POST /api/ai/chat/count-tokens",
            "POST /api/ai/chat/available-providers",
            "GET /api/ai/chat/available-providers",
        ]
        .map(String::from),
    );
    for route in &expected {
        assert!(documented.contains(route), "{route} is not documented: {documented:?}");
    }
    for route in &documented {
        let (method, path) = route.split_once(' ').unwrap();
        let path = path.replace("{id}", "x").replace("{name}", "x");
        let r = app
            .http
            .request(Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{route} is served");
    }
}

#[tokio::test]
async fn the_runner_serves_the_admin_console_without_a_token_and_leaves_it_out_of_the_openapi_document() {
    let app = spawn_app(FAST_RETRY, &[]).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let r = http.get(format!("{}/admin", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "admin/");
    let r = http.get(format!("{}/admin/", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let policy = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(r.text().await.unwrap().contains("<script type=\"module\" src=\"app.js\">"));
    let r = http.get(format!("{}/admin/vendor/uPlot.min.css", app.url)).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, "text/css; charset=utf-8"));
    let r = http.get(format!("{}/admin/missing.js", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "not_found");

    let spec: Value = app.http.get(format!("{}/openapi.json", app.url)).send().await.unwrap().json().await.unwrap();
    assert!(spec["paths"].as_object().unwrap().keys().all(|p| !p.starts_with("/admin")), "the console is not an API");
}
