//! Test harness: `spawn_app`, which starts the real local runner on a random port over a temp
//! data dir; the fake provider and the recorded answers come from `maestro-test-support`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test harness")]

use std::collections::HashMap;
use std::time::Duration;

use maestro::{App, Options, build};
use maestro_shared::config::{Env, FileConfig};
use serde_json::Value;

pub use maestro_test_support::FakeProvider;

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
