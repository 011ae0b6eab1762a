//! Callers that hang up: a call served upstream is logged once with its real usage and cost,
//! marked `client_disconnected` (499), and settled on the key's windows and the caller's budget,
//! whether the caller left during a plain call or a stream, before or after its first byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use crate::support;

use std::time::Duration;

use maestro_shared::bootstrap::key_id;
use maestro_shared::store::CounterStore;
use serde_json::{Value, json};
use support::{FakeProvider, TestApp, spawn_app};

/// One provider whose only key answers after 1 s (`sk-late-…`), at 1 µUSD per token, with a tpm
/// window so the key's token count can be checked.
async fn late_provider() -> (FakeProvider, TestApp, String) {
    let fake = FakeProvider::start().await;
    let cfg = format!(
        r#"
[retry]
max_retries = 2
base_delay_ms = 1
max_delay_ms = 5
attempt_timeout_ms = 5000
[[providers]]
code = "fake"
kind = "openai_compatible"
base_url = "{url}"
[[models]]
provider = "fake"
model = "m1"
max_output_tokens = 1000
input_price = 1000000
output_price = 1000000
[[keys]]
provider = "fake"
name = "late"
secret = "sk-late-aaaaaaaaaaaa"
tpm = 1000000
"#,
        url = fake.url
    );
    let app = spawn_app(&cfg, &[]).await;
    // A Maestro API key with a cost budget: its day window must end with the real cost.
    let created: Value = app
        .http
        .post(format!("{}/api/admin/api-keys", app.url))
        .bearer_auth(&app.admin_token)
        .json(&json!({"owner": "user-7", "key_name": "budgeted", "daily_cost_budget_micros": 1_000_000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"].as_str().expect("created key").to_string();
    (fake, app, key)
}

/// Waits (up to 5 s) until the log holds `n` calls; returns them.
async fn logged(app: &TestApp, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let logs = app.admin_get("/api/admin/ai-stats/logs").await;
        let data = logs["data"].as_array().unwrap().clone();
        if data.len() >= n {
            return data;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} calls logged");
}

/// The caller key's id, from the listing.
async fn caller_key_counter(app: &TestApp) -> String {
    let listed = app.admin_get("/api/admin/api-keys").await;
    format!("CK#{}", listed["data"][0]["id"].as_str().unwrap())
}

async fn hang_up_after(app: &TestApp, key: &str, body: Value, after: Duration) {
    let client = reqwest::Client::builder().timeout(after).build().unwrap();
    let sent = client.post(format!("{}/v1/chat/completions", app.url)).bearer_auth(key).json(&body).send().await;
    match sent {
        Err(e) => assert!(e.is_timeout(), "{e}"),
        Ok(r) => panic!("the caller should have hung up first, got {}", r.status()),
    }
}

#[tokio::test]
async fn a_plain_call_whose_caller_hangs_up_is_logged_and_charged_with_its_real_usage() {
    let (fake, app, key) = late_provider().await;
    let body = json!({"model": "fake/m1", "messages": [{"role": "user", "content": "Hello!"}]});
    hang_up_after(&app, &key, body, Duration::from_millis(300)).await;

    // The upstream answers 1 s after it was called, then the call is recorded.
    let logs = logged(&app, 1).await;
    assert_eq!(fake.calls("sk-late-aaaaaaaaaaaa"), 1);
    let call = &logs[0];
    assert_eq!(call["http_status"], 499, "{call}");
    assert_eq!(call["error_code"], "client_disconnected");
    assert_eq!(call["user_id"], "user-7");
    // The recorded completion's real usage (19 + 10 tokens at 1 µUSD each), not an estimate.
    assert_eq!((call["prompt_tokens"].as_u64(), call["completion_tokens"].as_u64()), (Some(19), Some(10)));
    assert_eq!(call["cost_micros"], 29);
    let usage = app.usage("").await;
    assert_eq!((usage["total"]["requests"].as_u64(), usage["total"]["cost_micros"].as_u64()), (Some(1), Some(29)));

    // Settled: the key's token window and the caller's budget hold the real figures (read at
    // the call's start: the minute may have turned since).
    let store = app.app.store.clone();
    let started = call["ts_ms"].as_i64().expect("ts_ms");
    let (minute, _) = store.usage(&key_id("fake", "late"), started).await.unwrap();
    assert_eq!((minute.requests, minute.tokens), (1, 29));
    let budget = store.budget_usage(&caller_key_counter(&app).await, started).await.unwrap();
    assert_eq!((budget.day_requests, budget.day_cost_micros), (1, 29));
}

#[tokio::test]
async fn a_stream_whose_caller_hangs_up_before_the_first_byte_is_logged_and_settled() {
    let (fake, app, key) = late_provider().await;
    let body = json!({"model": "fake/m1", "stream": true, "messages": [{"role": "user", "content": "Count to ten"}]});
    hang_up_after(&app, &key, body, Duration::from_millis(300)).await;

    let logs = logged(&app, 1).await;
    assert_eq!(fake.calls("sk-late-aaaaaaaaaaaa"), 1);
    let call = &logs[0];
    assert_eq!(call["http_status"], 499, "{call}");
    assert_eq!(call["error_code"], "client_disconnected");
    assert_eq!(call["stream"], true);
    let (prompt, completion) = (call["prompt_tokens"].as_u64().unwrap(), call["completion_tokens"].as_u64().unwrap());
    assert!(prompt >= 1, "the prompt is counted: {call}");
    assert_eq!(call["cost_micros"].as_u64(), Some(prompt + completion), "charged at 1 µUSD per token: {call}");
    let usage = app.usage("").await;
    assert_eq!(usage["total"]["requests"], 1);

    let store = app.app.store.clone();
    let started = call["ts_ms"].as_i64().expect("ts_ms");
    let (minute, _) = store.usage(&key_id("fake", "late"), started).await.unwrap();
    assert_eq!((minute.requests, minute.tokens), (1, prompt + completion), "the estimate is replaced");
    let budget = store.budget_usage(&caller_key_counter(&app).await, started).await.unwrap();
    assert_eq!(budget.day_cost_micros, prompt + completion);
}

#[tokio::test]
async fn a_caller_gone_during_the_backoff_stops_the_retries_and_is_logged_once() {
    let fake = FakeProvider::start().await;
    let cfg = r#"
[retry]
max_retries = 5
failure_threshold = 10
[[providers]]
code = "fake"
kind = "openai_compatible"
base_url = "URL"
[[models]]
provider = "fake"
model = "m1"
input_price = 1
output_price = 1
[[keys]]
provider = "fake"
name = "failing"
secret = "sk-busy-bbbbbbbbbbbb"
"#
    .replace("URL", &fake.url);
    let app = spawn_app(&cfg, &[]).await;
    hang_up_after(&app, &app.token.clone(), support::hello("fake/m1"), Duration::from_millis(300)).await;
    // The provider asks for 2 s between tries: the caller leaves during the first wait.
    let logs = logged(&app, 1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(fake.calls("sk-busy-bbbbbbbbbbbb"), 1, "no retry for a caller who left");
    assert_eq!(logs[0]["http_status"], 499, "{}", logs[0]);
    assert_eq!(logs[0]["cost_micros"], 0);
    assert_eq!(app.admin_get("/api/admin/ai-stats/logs").await["data"].as_array().unwrap().len(), 1);
}
