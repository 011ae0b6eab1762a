//! Every attempt of a call in its log (`attempt_log`), and the caller's error naming what really
//! happened: the runner against the fake provider, whose next answers a test scripts (500s, one
//! echoing the key it got), on keys with Maestro's own limits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use std::time::Duration;

use maestro_test_support::Reply;
use serde_json::{Value, json};

use crate::support::{FakeProvider, TestApp, hello, spawn_app};

const KEY_A: &str = "sk-ok-aaaaaaaaaaaa";
const KEY_B: &str = "sk-ok-bbbbbbbbbbbb";
/// A credential of someone else's an upstream puts in its message: not a key Maestro sent.
const FOREIGN_TOKEN: &str = "sk-ant-api03-Zx9Qw8Er7Ty6Ui5Op4";
const SERVER_ERROR: &str = "The server had an error while processing your request.";

/// OpenAI's 500.
fn server_error() -> Reply {
    Reply::json(
        500,
        format!(r#"{{"error":{{"message":"{SERVER_ERROR}","type":"server_error","param":null,"code":null}}}}"#),
    )
}

/// A 500 whose message echoes the key the call carried, as a bearer token too, and a foreign key.
fn echoing_error() -> Reply {
    Reply::json(
        500,
        format!(
            r#"{{"error":{{"message":"Upstream failed for key {{key}} (Authorization: Bearer {{key}}); fallback token {FOREIGN_TOKEN}","type":"server_error","code":null}}}}"#
        ),
    )
}

/// What [`echoing_error`] reads as once scrubbed: the key masked as the console shows keys, the
/// bearer token and the foreign key taken out.
fn echoed(masked: &str) -> String {
    format!("Upstream failed for key {masked} (Authorization: Bearer [redacted]); fallback token [redacted]")
}

/// Provider `fake` (OpenAI format) with model `m1` and keys `a` (priority 10) and `b` (1), each
/// with the extra lines given (limits), and a retry policy of `max_retries` that never trips the
/// breaker.
fn config(url: &str, max_retries: u32, a_extra: &str, b_extra: &str) -> String {
    format!(
        r#"
[retry]
max_retries = {max_retries}
base_delay_ms = 1
max_delay_ms = 5
attempt_timeout_ms = 2000
deadline_ms = 10000
failure_threshold = 10

[[providers]]
code = "fake"
kind = "openai_compatible"
base_url = "{url}"

[[models]]
provider = "fake"
model = "m1"
input_price = 2500000
output_price = 10000000

[[keys]]
provider = "fake"
name = "a"
secret = "{KEY_A}"
priority = 10
{a_extra}

[[keys]]
provider = "fake"
name = "b"
secret = "{KEY_B}"
priority = 1
{b_extra}
"#
    )
}

/// The call log of `request_id`, once recorded.
async fn logged(app: &TestApp, request_id: &str) -> Value {
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await, "log events recorded");
    let page = app.admin_get(&format!("/api/admin/ai-stats/logs?request_id={request_id}")).await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1), "{page}");
    page["data"][0].clone()
}

/// The attempt log without the latencies (checked to be numbers within the call's), which no
/// test can know.
fn attempts_without_latency(log: &Value) -> Value {
    let total = log["latency_ms"].as_u64().unwrap();
    let mut entries = log["attempt_log"].as_array().cloned().unwrap_or_default();
    for entry in &mut entries {
        let latency = entry.as_object_mut().unwrap().remove("latency_ms").and_then(|l| l.as_u64());
        assert!(latency.is_some_and(|l| l <= total), "latency {latency:?} within the call's {total} ms: {log}");
    }
    Value::from(entries)
}

fn request_id(r: &reqwest::Response) -> String {
    r.headers()["x-request-id"].to_str().unwrap().to_string()
}

/// Waits, when the minute is about to end, until the next begins: the keys' rpm windows must
/// not roll over in the middle of a call.
async fn early_in_a_minute() {
    let into_minute = maestro_shared::time::now_ms() % 60_000;
    if into_minute > 50_000 {
        tokio::time::sleep(Duration::from_millis(u64::try_from(60_100 - into_minute).unwrap())).await;
    }
}

#[tokio::test]
async fn three_attempts_on_two_keys_are_logged_in_order_with_their_keys_statuses_and_scrubbed_messages() {
    let fake = FakeProvider::start().await;
    let app = spawn_app(&config(&fake.url, 2, "", ""), &[]).await;
    // Key a fails; the retry goes to key b, which fails with a message echoing it; b again serves.
    fake.then_reply([server_error(), echoing_error()]);
    let r = app.chat(hello("fake/m1")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-maestro-attempts"], "3");
    assert_eq!(fake.keys("/chat/completions"), [KEY_A, KEY_B, KEY_B]);

    let log = logged(&app, &request_id(&r)).await;
    assert_eq!(
        (log["status"].as_str(), log["key_id"].as_str(), log["attempts"].as_u64()),
        (Some("success"), Some("fake-b"), Some(3))
    );
    assert_eq!(
        attempts_without_latency(&log),
        json!([
            {"provider": "fake", "model": "m1", "key_id": "fake-a", "outcome": "upstream_server_error",
             "http_status": 500, "message": SERVER_ERROR},
            {"provider": "fake", "model": "m1", "key_id": "fake-b", "outcome": "upstream_server_error",
             "http_status": 500, "message": echoed("sk-…bbbb")},
            {"provider": "fake", "model": "m1", "key_id": "fake-b", "outcome": "ok", "http_status": 200},
        ])
    );
    // The per-key aggregate the stats count from is unchanged.
    assert_eq!(
        log["key_attempts"],
        json!([
            {"provider": "fake", "model": "m1", "key_id": "fake-a", "attempts": 1, "errors": 1},
            {"provider": "fake", "model": "m1", "key_id": "fake-b", "attempts": 2, "errors": 1},
        ])
    );
    let text = log.to_string();
    for secret in ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "Zx9Qw8Er7Ty6"] {
        assert!(!text.contains(secret), "{secret} in the log: {text}");
    }
    let usage = app.usage("group_by=key").await;
    let group =
        |key: &str| usage["groups"].as_array().unwrap().iter().find(|g| g["group"] == key).unwrap()["usage"].clone();
    assert_eq!((group("fake-a")["attempts"].as_u64(), group("fake-a")["attempt_errors"].as_u64()), (Some(1), Some(1)));
    assert_eq!((group("fake-b")["attempts"].as_u64(), group("fake-b")["attempt_errors"].as_u64()), (Some(2), Some(1)));
}

#[tokio::test]
async fn a_provider_answering_500_to_every_attempt_is_a_502_naming_it_not_a_429_of_keys_its_retries_filled() {
    let fake = FakeProvider::start().await;
    // Key a takes 1 request a minute, key b 2: the retries fill both windows.
    let app = spawn_app(&config(&fake.url, 3, "rpm = 1", "rpm = 2"), &[]).await;
    early_in_a_minute().await;
    fake.then_reply([server_error(), server_error(), echoing_error()]);
    let r = app.chat(hello("fake/m1")).await;
    assert_eq!(r.status(), 502, "the provider failed every attempt; no key was ever rate limited by it");
    assert_eq!(r.headers()["x-should-retry"], "false");
    assert!(r.headers().get("retry-after").is_none());
    let id = request_id(&r);
    let body: Value = r.json().await.unwrap();
    let message = format!("Provider `fake` failed (HTTP 500): {}.", echoed("sk-…bbbb"));
    assert_eq!(
        body["error"],
        json!({"message": message, "type": "upstream_error", "code": "upstream_server_error", "param": null})
    );
    assert_eq!(fake.keys("/chat/completions"), [KEY_A, KEY_B, KEY_B]);

    let log = logged(&app, &id).await;
    assert_eq!(
        (log["http_status"].as_u64(), log["error_code"].as_str(), log["error_message"].as_str()),
        (Some(502), Some("upstream_server_error"), Some(message.as_str()))
    );
    assert_eq!(
        attempts_without_latency(&log),
        json!([
            {"provider": "fake", "model": "m1", "key_id": "fake-a", "outcome": "upstream_server_error",
             "http_status": 500, "message": SERVER_ERROR},
            {"provider": "fake", "model": "m1", "key_id": "fake-b", "outcome": "upstream_server_error",
             "http_status": 500, "message": SERVER_ERROR},
            {"provider": "fake", "model": "m1", "key_id": "fake-b", "outcome": "upstream_server_error",
             "http_status": 500, "message": echoed("sk-…bbbb")},
            // The fourth try found no key: a was out of the call after its failure, b's minute full.
            {"provider": "fake", "model": "m1", "outcome": "no_key", "skipped": [{"key_id": "fake-b", "reason": "rpm_limit"}]},
        ])
    );
    assert!(!log.to_string().contains("bbbbbbbbbbbb"));

    // The next call finds both keys at their limits before any provider is asked: that is a 429.
    let r = app.chat(hello("fake/m1")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-maestro-attempts"], "0");
    let id = request_id(&r);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(fake.total_calls(), 3, "nothing more was sent");
    let log = logged(&app, &id).await;
    assert_eq!(
        attempts_without_latency(&log),
        json!([{"provider": "fake", "model": "m1", "outcome": "no_key", "skipped": [
            {"key_id": "fake-a", "reason": "rpm_limit"},
            {"key_id": "fake-b", "reason": "rpm_limit"},
        ]}])
    );
}

#[tokio::test]
async fn the_anthropic_route_gets_the_same_cause_in_its_own_error_shape() {
    let fake = FakeProvider::start().await;
    let app = spawn_app(&config(&fake.url, 2, "", "is_active = false"), &[]).await;
    fake.then_reply([server_error(), server_error(), echoing_error()]);
    let r = app
        .messages(json!({"model": "fake/m1", "max_tokens": 16, "messages": [{"role": "user", "content": "Hello!"}]}))
        .await;
    assert_eq!(r.status(), 502);
    let id = request_id(&r);
    let body: Value = r.json().await.unwrap();
    let message = format!("Provider `fake` failed (HTTP 500): {}.", echoed("sk-…aaaa"));
    assert_eq!(body, json!({"type": "error", "error": {"type": "api_error", "message": message}, "request_id": id}));
    let log = logged(&app, &id).await;
    let outcomes: Vec<(&str, u64)> = log["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["key_id"].as_str().unwrap(), a["http_status"].as_u64().unwrap()))
        .collect();
    assert_eq!(outcomes, [("fake-a", 500), ("fake-a", 500), ("fake-a", 500)]);
    assert!(!log.to_string().contains("aaaaaaaaaaaa"));
}

#[tokio::test]
async fn a_fallback_whose_keys_are_at_their_limits_does_not_hide_the_first_targets_500s() {
    let fake = FakeProvider::start().await;
    let extra = format!(
        r#"
[[providers]]
code = "backup"
kind = "openai_compatible"
base_url = "{url}"

[[models]]
provider = "backup"
model = "m2"

[[keys]]
provider = "backup"
name = "only"
secret = "sk-ok-cccccccccccc"
rpm = 1

[[routes]]
name = "resilient"
targets = ["fake/m1", "backup/m2"]
"#,
        url = fake.url
    );
    let app = spawn_app(&format!("{}{extra}", config(&fake.url, 1, "", "is_active = false")), &[]).await;
    early_in_a_minute().await;
    // The backup's one request of the minute goes to a call of its own.
    assert_eq!(app.chat(hello("backup/m2")).await.status(), 200);
    fake.then_reply([server_error(), server_error()]);
    let r = app.chat(hello("resilient")).await;
    assert_eq!(r.status(), 502, "what happened is the first target's 500s, not the backup's full minute");
    let id = request_id(&r);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["message"], format!("Provider `fake` failed (HTTP 500): {SERVER_ERROR}"));
    let log = logged(&app, &id).await;
    assert_eq!(
        attempts_without_latency(&log),
        json!([
            {"provider": "fake", "model": "m1", "key_id": "fake-a", "outcome": "upstream_server_error",
             "http_status": 500, "message": SERVER_ERROR},
            {"provider": "fake", "model": "m1", "key_id": "fake-a", "outcome": "upstream_server_error",
             "http_status": 500, "message": SERVER_ERROR},
            {"provider": "backup", "model": "m2", "outcome": "no_key", "skipped": [{"key_id": "backup-only", "reason": "rpm_limit"}]},
        ])
    );
}

/// The logs API's schema documents the attempt log and its entries.
#[tokio::test]
async fn the_openapi_document_describes_the_attempt_log() {
    let app = spawn_app(crate::support::FAST_RETRY, &[]).await;
    let spec: Value = app.http.get(format!("{}/openapi.json", app.url)).send().await.unwrap().json().await.unwrap();
    let schemas = &spec["components"]["schemas"];
    let log = &schemas["LogEvent"]["properties"]["attempt_log"];
    assert_eq!(log["items"]["$ref"], "#/components/schemas/Attempt", "{log}");
    assert!(log["description"].as_str().unwrap().starts_with("Every upstream attempt of the call in the order made"));
    let attempt = &schemas["Attempt"];
    let mut fields: Vec<&str> = attempt["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["http_status", "key_id", "latency_ms", "message", "model", "outcome", "provider", "skipped"]);
    let mut required: Vec<&str> = attempt["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    required.sort_unstable();
    assert_eq!(required, ["model", "outcome", "provider"]);
    assert_eq!(attempt["properties"]["skipped"]["items"]["$ref"], "#/components/schemas/SkippedKey");
    assert!(schemas["SkippedKey"]["properties"]["reason"]["description"].as_str().unwrap().contains("rpm_limit"));
}
