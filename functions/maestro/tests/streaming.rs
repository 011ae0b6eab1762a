//! Streaming through the local runner: SSE frames, retries before the first byte, and exactly
//! one log event per stream, also when the caller hangs up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{FAST_RETRY, FakeProvider, spawn_app};

fn streaming(model: &str) -> Value {
    json!({"model": model, "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Count to ten"}]})
}

/// The `data:` payloads of an SSE body.
fn payloads(body: &str) -> Vec<String> {
    body.split("\n\n").filter_map(|e| e.trim().strip_prefix("data: ").map(str::to_string)).collect()
}

#[tokio::test]
async fn the_demo_model_streams_and_the_stream_is_logged_with_its_first_byte_time() {
    let app = spawn_app(FAST_RETRY, &[]).await;
    let r = app.chat(streaming("demo/echo")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["x-maestro-provider"], "demo");
    let frames = payloads(&r.text().await.unwrap());
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = frames[..frames.len() - 1].iter().map(|f| serde_json::from_str(f).unwrap()).collect();
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Echo from Maestro's demo model: Count to ten");
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));

    let usage = app.usage("provider=demo").await;
    assert_eq!(usage["total"]["requests"], 1);
    assert_eq!(usage["total"]["successes"], 1);
    assert_eq!(usage["total"]["completion_tokens"], usage_chunk["usage"]["completion_tokens"]);
    let logs = app.admin_get("/api/admin/ai-stats/logs").await;
    assert_eq!(logs["data"][0]["stream"], true);
    assert!(logs["data"][0]["ttfb_ms"].is_u64());
}

#[tokio::test]
async fn an_overloaded_target_is_retried_and_fallen_back_from_before_the_first_byte() {
    let fake = FakeProvider::start().await;
    let cfg = format!(
        r#"{FAST_RETRY}
[[providers]]
code = "claude"
kind = "anthropic"
base_url = "{url}"
[[providers]]
code = "gpt"
kind = "openai_compatible"
base_url = "{url}"
[[models]]
provider = "claude"
model = "c1"
input_price = 3000000
output_price = 15000000
[[models]]
provider = "gpt"
model = "g1"
input_price = 2500000
output_price = 10000000
[[keys]]
provider = "claude"
name = "busy"
secret = "sk-529-aaaaaaaaaaaa"
[[keys]]
provider = "gpt"
name = "fine"
secret = "sk-ok-bbbbbbbbbbbb"
[[routes]]
name = "chain"
targets = ["claude/c1", "gpt/g1"]
"#,
        url = fake.url
    );
    let app = spawn_app(&cfg, &[]).await;
    let r = app.chat(streaming("chain")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-maestro-provider"], "gpt");
    assert_eq!(r.headers()["x-maestro-attempts"], "4");
    let frames = payloads(&r.text().await.unwrap());
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(fake.calls("sk-529-aaaaaaaaaaaa"), 3, "one try and two retries before falling back");
    assert_eq!(fake.calls("sk-ok-bbbbbbbbbbbb"), 1);

    // The recorded stream reports 33 prompt + 10 completion tokens: 33 * 2.5 + 10 * 10 = 182.5 → 183.
    let usage = app.usage("").await;
    assert_eq!(usage["total"]["requests"], 1);
    assert_eq!(usage["total"]["prompt_tokens"], 33);
    assert_eq!(usage["total"]["completion_tokens"], 10);
    assert_eq!(usage["total"]["cost_micros"], 183);
}

#[tokio::test]
async fn a_caller_that_hangs_up_mid_stream_still_produces_exactly_one_log_event() {
    let fake = FakeProvider::start().await;
    let cfg = format!(
        "{FAST_RETRY}\n[[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n[[models]]\nprovider = \"fake\"\nmodel = \"m1\"\ninput_price = 1000000\noutput_price = 1000000\n[[keys]]\nprovider = \"fake\"\nname = \"k\"\nsecret = \"sk-drip-cccccccccccc\"\n",
        fake.url
    );
    let app = spawn_app(&cfg, &[]).await;
    let mut r = app.chat(streaming("fake/m1")).await;
    assert_eq!(r.status(), 200);
    // Read until the first real text arrives, then hang up.
    let mut seen = String::new();
    while !seen.contains("\"six\"") {
        let chunk = r.chunk().await.unwrap().expect("stream still open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(r);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let usage = app.usage("").await;
    assert_eq!(usage["total"]["requests"], 1, "one event, not zero, not two");
    assert_eq!(usage["total"]["errors"], 1);
    assert!(usage["total"]["completion_tokens"].as_u64().unwrap() >= 1, "tokens seen are counted: {usage}");
    assert!(usage["total"]["prompt_tokens"].as_u64().unwrap() >= 1);
    let logs = app.admin_get("/api/admin/ai-stats/logs").await;
    assert_eq!(logs["data"].as_array().unwrap().len(), 1);
    assert_eq!(logs["data"][0]["error_code"], "client_disconnected");
    assert_eq!(logs["data"][0]["http_status"], 499);
}
