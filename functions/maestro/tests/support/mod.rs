//! Test harness: a fake provider whose behaviour is chosen by the key it is called with, and
//! `spawn_app`, which starts the real local runner on a random port over a temp data dir.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test harness")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use maestro::{App, Options, build};
use maestro_shared::config::{Env, FileConfig};
use serde_json::Value;

/// The recorded OpenAI completion (usage 19 prompt / 10 completion tokens).
pub const OPENAI_COMPLETION: &str = include_str!("../../../../shared/tests/fixtures/openai/chat_completion.json");
pub const OPENAI_429: &str = include_str!("../../../../shared/tests/fixtures/openai/error_429_rate_limit.json");
pub const OPENAI_401: &str = include_str!("../../../../shared/tests/fixtures/openai/error_401.json");
pub const OPENAI_QUOTA: &str =
    include_str!("../../../../shared/tests/fixtures/openai/error_429_insufficient_quota.json");
pub const ANTHROPIC_MESSAGE: &str = include_str!("../../../../shared/tests/fixtures/anthropic/message.json");
pub const ANTHROPIC_529: &str = include_str!("../../../../shared/tests/fixtures/anthropic/error_529_overloaded.json");
pub const OPENAI_STREAM: &str = include_str!("../../../../shared/tests/fixtures/openai/chat_stream.sse");
pub const ANTHROPIC_STREAM: &str = include_str!("../../../../shared/tests/fixtures/anthropic/stream.sse");
/// Tool-call answers (key kind `tool`): OpenAI's calls `get_current_weather` (stream:
/// `get_capital`), Anthropic's `get_weather`.
pub const OPENAI_TOOL_CALL: &str =
    include_str!("../../../../shared/tests/fixtures/openai/chat_completion_tool_call.json");
pub const OPENAI_TOOL_STREAM: &str = include_str!("../../../../shared/tests/fixtures/openai/chat_stream_tool_call.sse");
pub const ANTHROPIC_TOOL_USE: &str = include_str!("../../../../shared/tests/fixtures/anthropic/message_tool_use.json");
pub const ANTHROPIC_TOOL_STREAM: &str = include_str!("../../../../shared/tests/fixtures/anthropic/stream_tool_use.sse");
/// A provider's 400 about the request (key kind `400`).
pub const OPENAI_400: &str = include_str!("../../../../shared/tests/fixtures/openai/error_400_invalid_request.json");

/// A fake provider. The key decides the answer: `sk-ok-…` succeeds, `sk-429-…` is rate limited
/// (retry-after 30), `sk-busy-…` is overloaded (503, retry-after 2), `sk-401-…` is rejected, `sk-500-…` fails, `sk-529-…` is overloaded,
/// `sk-slow-…` answers after 2 s, `sk-garbage-…` sends a truncated body, `sk-html-…` an HTML 502,
/// `sk-drip-…` streams the recorded events 100 ms apart, `sk-endless-…` streams text chunks
/// every 100 ms forever, `sk-linger-…` sends the recorded stream and keeps the body open, `sk-late-…` starts the recorded
/// stream (or answers) after 1 s, `sk-tool-…` answers with the recorded
/// tool call (or tool-call stream), `sk-400-…` refuses the request with a 400. Streaming requests
/// get the recorded stream of the format. It serves both OpenAI's `/chat/completions` and
/// Anthropic's `/v1/messages`.
#[derive(Clone)]
pub struct FakeProvider {
    pub url: String,
    calls: Arc<Mutex<HashMap<String, u32>>>,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl FakeProvider {
    pub async fn start() -> Self {
        let calls = Arc::new(Mutex::new(HashMap::new()));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let state = (calls.clone(), bodies.clone());
        let app = Router::new()
            .route("/chat/completions", post(|s, h, b| answer(s, h, b, false)))
            .route("/v1/messages", post(|s, h, b| answer(s, h, b, true)))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, calls, bodies }
    }

    /// How many requests arrived with this key.
    pub fn calls(&self, key: &str) -> u32 {
        self.calls.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    pub fn total_calls(&self) -> u32 {
        self.calls.lock().unwrap().values().sum()
    }

    pub fn last_body(&self) -> Value {
        self.bodies.lock().unwrap().last().cloned().unwrap()
    }
}

type FakeState = (Arc<Mutex<HashMap<String, u32>>>, Arc<Mutex<Vec<Value>>>);

async fn answer(
    State((calls, bodies)): State<FakeState>,
    headers: HeaderMap,
    body: Bytes,
    anthropic: bool,
) -> Response {
    let key = if anthropic {
        headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    } else {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("")
            .to_string()
    };
    *calls.lock().unwrap().entry(key.clone()).or_default() += 1;
    bodies.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    let json = |status: u16, body: &str| {
        (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body.to_string())
            .into_response()
    };
    let ok = if anthropic { ANTHROPIC_MESSAGE } else { OPENAI_COMPLETION };
    let streaming = serde_json::from_slice::<Value>(&body).ok().and_then(|b| b["stream"].as_bool()).unwrap_or(false);
    let recorded_stream = if anthropic { ANTHROPIC_STREAM } else { OPENAI_STREAM };
    match key.split('-').nth(1).unwrap_or("") {
        "ok" if streaming => (StatusCode::OK, [("content-type", "text/event-stream")], recorded_stream).into_response(),
        "drip" => {
            let events: Vec<String> = recorded_stream.split_inclusive("\n\n").map(str::to_string).collect();
            let body = futures_util::stream::unfold(events.into_iter(), |mut events| async move {
                let next = events.next()?;
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Ok::<_, std::convert::Infallible>(next), events))
            });
            (StatusCode::OK, [("content-type", "text/event-stream")], axum::body::Body::from_stream(body))
                .into_response()
        }
        "ok" => json(200, ok),
        "endless" => {
            let chunk = r#"data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"la "},"finish_reason":null}]}"#;
            let body = futures_util::stream::unfold((), move |()| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Ok::<_, std::convert::Infallible>(format!("{chunk}\n\n")), ()))
            });
            (StatusCode::OK, [("content-type", "text/event-stream")], axum::body::Body::from_stream(body))
                .into_response()
        }
        "linger" => {
            let recorded = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(recorded_stream.to_string())]);
            let forever = futures_util::stream::pending();
            let body = futures_util::StreamExt::chain(recorded, forever);
            (StatusCode::OK, [("content-type", "text/event-stream")], axum::body::Body::from_stream(body))
                .into_response()
        }
        "late" => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if streaming {
                (StatusCode::OK, [("content-type", "text/event-stream")], recorded_stream).into_response()
            } else {
                json(200, ok)
            }
        }
        "tool" if streaming => {
            let recorded = if anthropic { ANTHROPIC_TOOL_STREAM } else { OPENAI_TOOL_STREAM };
            (StatusCode::OK, [("content-type", "text/event-stream")], recorded).into_response()
        }
        "tool" => json(200, if anthropic { ANTHROPIC_TOOL_USE } else { OPENAI_TOOL_CALL }),
        "400" => json(400, OPENAI_400),
        "429" => {
            let mut r = json(429, OPENAI_429);
            r.headers_mut().insert("retry-after", "30".parse().unwrap());
            r
        }
        "401" => json(401, OPENAI_401),
        // A 429 asking for 7 seconds, and OpenAI's out-of-credit 429.
        "wait7" => {
            let mut r = json(429, OPENAI_429);
            r.headers_mut().insert("retry-after", "7".parse().unwrap());
            r
        }
        "quota" => json(429, OPENAI_QUOTA),
        "busy" => {
            let mut r = json(
                503,
                r#"{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}}"#,
            );
            r.headers_mut().insert("retry-after", "2".parse().unwrap());
            r
        }
        "500" => json(
            500,
            r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#,
        ),
        "529" => json(529, ANTHROPIC_529),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            json(200, ok)
        }
        "garbage" => json(200, &ok[..ok.len() / 2]),
        "html" => {
            (StatusCode::BAD_GATEWAY, [("content-type", "text/html")], "<html><title>502 Bad Gateway</title></html>")
                .into_response()
        }
        _ => json(401, OPENAI_401),
    }
}

/// A running local runner.
pub struct TestApp {
    pub url: String,
    pub app: App,
    pub token: String,
    pub admin_token: String,
    pub http: reqwest::Client,
    _data: tempfile::TempDir,
}

/// The policy tests use: real logic, millisecond waits.
pub const FAST_RETRY: &str = r#"
[retry]
max_retries = 2
base_delay_ms = 1
max_delay_ms = 5
attempt_timeout_ms = 500
deadline_ms = 10000
"#;

/// Starts the runner with `config` (TOML) and the given environment variables.
pub async fn spawn_app(config: &str, env: &[(&str, &str)]) -> TestApp {
    let data = tempfile::tempdir().unwrap();
    let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let app = build(Options {
        data_dir: data.path().to_path_buf(),
        config: FileConfig::parse(config).unwrap(),
        env: Env::from_fn(move |name| env.get(name).cloned()),
        demo: true,
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    // With MAESTRO_JWKS_URL the runner cannot sign tokens: the test brings its own.
    let token = app.auth.issue("user-1", false, Duration::from_secs(600)).unwrap_or_default();
    // Admin: the token's `scope` holds `maestro:admin` (or the configured claim and value).
    let admin_token = app.auth.issue("admin-1", true, Duration::from_secs(600)).unwrap_or_default();
    TestApp { url, app, token, admin_token, http: reqwest::Client::new(), _data: data }
}

impl TestApp {
    /// POSTs a chat request as `user-1`.
    pub async fn chat(&self, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs an Anthropic Messages request as `user-1`, the token in `x-api-key` as the Anthropic
    /// SDKs send it.
    pub async fn messages(&self, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/messages", self.url))
            .header("x-api-key", &self.token)
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// GET with the admin token, as JSON.
    pub async fn admin_get(&self, path: &str) -> Value {
        let response =
            self.http.get(format!("{}{path}", self.url)).bearer_auth(&self.admin_token).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// Usage totals after every log event so far is recorded.
    pub async fn usage(&self, query: &str) -> Value {
        assert!(self.app.wait_for_logs(Duration::from_secs(5)).await, "log events recorded");
        self.admin_get(&format!("/api/admin/ai-stats/usage?{query}")).await
    }

    /// The catalog status of a key.
    pub async fn key_status(&self, key_id: &str) -> String {
        let catalog = self.admin_get("/api/admin/ai-providers").await;
        for p in catalog["data"].as_array().unwrap() {
            for k in p["keys"].as_array().unwrap() {
                if k["id"] == key_id {
                    return k["status"].as_str().unwrap().to_string();
                }
            }
        }
        panic!("no key {key_id}");
    }
}

/// A user message request for `model`.
pub fn hello(model: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "Hello!"}]})
}
