//! `POST /api/ai/chat/batch` over the local runner: items answered in order with their own
//! status, each a single call in the log with its exact cost, the key limits holding across the
//! items, a bounded number running at once, and a caller who hangs up mid-batch leaving a ledger
//! that matches what the upstream served.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{FakeProvider, TestApp, hello, spawn_app};

/// Retries off; `m1` costs 1 micro-USD per prompt token and 2 per completion token.
fn config(url: &str, key_extra: &str) -> String {
    format!(
        r#"
[retry]
max_retries = 0
base_delay_ms = 1
max_delay_ms = 5
attempt_timeout_ms = 5000
deadline_ms = 20000

[[providers]]
code = "fake"
kind = "openai_compatible"
base_url = "{url}"

[[models]]
provider = "fake"
model = "m1"
input_price = 1000000
output_price = 2000000

[[keys]]
provider = "fake"
name = "k"
secret = "sk-ok-batchbatchbatch"
{key_extra}

[[providers]]
code = "broken"
kind = "openai_compatible"
base_url = "{url}"

[[models]]
provider = "broken"
model = "m1"

[[keys]]
provider = "broken"
name = "k"
secret = "sk-500-brokenbroken"
"#
    )
}

/// The fixture's usage (19 prompt, 10 completion tokens) at `m1`'s prices.
const ITEM_COST_MICROS: u64 = 19 + 2 * 10;

async fn batch(app: &TestApp, body: &Value) -> (u16, Value) {
    let r = app
        .http
        .post(format!("{}/api/ai/chat/batch", app.url))
        .bearer_auth(&app.token)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn item(id: &str, body: Value) -> Value {
    json!({"custom_id": id, "body": body})
}

/// Every call in the log, newest first.
async fn logs(app: &TestApp) -> Vec<Value> {
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    app.admin_get("/api/admin/ai-stats/logs?limit=100").await["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn items_are_answered_in_order_each_with_its_status_and_each_is_one_call_in_the_log() {
    let upstream = FakeProvider::start().await;
    let app = spawn_app(&config(&upstream.url, ""), &[]).await;
    let stream = json!({"model": "fake/m1", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let line = json!({"custom_id": "line", "method": "POST", "url": "/v1/chat/completions", "body": hello("fake/m1")});
    let (status, answer) = batch(
        &app,
        &json!({"requests": [
            item("first", hello("fake/m1")),
            item("no-messages", json!({"model": "fake/m1"})),
            item("unknown", hello("nobody/none")),
            item("fails", hello("broken/m1")),
            item("streamed", stream),
            line,
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    let summary: Vec<(&str, u64, Option<&str>, Option<&str>)> = results
        .iter()
        .map(|r| {
            let error = &r["error"];
            (
                r["custom_id"].as_str().unwrap(),
                r["status"].as_u64().unwrap(),
                error["code"].as_str(),
                error["param"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("first", 200, None, None),
            ("no-messages", 400, Some("invalid_value"), Some("body")),
            ("unknown", 404, Some("model_not_found"), Some("model")),
            ("fails", 502, Some("upstream_server_error"), None),
            ("streamed", 400, Some("invalid_value"), Some("body.stream")),
            ("line", 200, None, None),
        ],
        "{answer}"
    );
    for ok in [&results[0], &results[5]] {
        assert_eq!(ok["body"]["object"], "chat.completion", "{ok}");
        assert_eq!(ok["body"]["usage"]["prompt_tokens"], 19);
        assert!(ok.get("error").is_none());
    }
    for failed in [&results[1], &results[2], &results[3], &results[4]] {
        assert!(failed.get("body").is_none(), "{failed}");
        assert!(failed["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{failed}");
        assert!(!failed["error"].to_string().contains("sk-500-brokenbroken"), "no key in an error: {failed}");
    }
    // Two items reached the working key, one the broken one; the refused ones reached nobody.
    assert_eq!((upstream.calls("sk-ok-batchbatchbatch"), upstream.calls("sk-500-brokenbroken")), (2, 1));

    // Each item is one call in the log, its mistakes too, under the request id the batch gave.
    let logged = logs(&app).await;
    assert_eq!(logged.len(), 6, "{logged:?}");
    for result in results {
        let entry = logged.iter().find(|e| e["request_id"] == result["request_id"]).unwrap();
        assert_eq!(entry["http_status"], result["status"], "{entry}");
    }
    let cost: u64 = logged.iter().map(|e| e["cost_micros"].as_u64().unwrap()).sum();
    assert_eq!(cost, 2 * ITEM_COST_MICROS, "only the two served items are charged, each exactly");
    let usage = app.usage("").await;
    assert_eq!(usage["total"]["requests"], 6, "{usage}");
    assert_eq!(usage["total"]["cost_micros"], 2 * ITEM_COST_MICROS, "{usage}");
}

#[tokio::test]
async fn a_batch_never_takes_a_key_past_its_limit() {
    let upstream = FakeProvider::start().await;
    let app = spawn_app(&config(&upstream.url, "rpm = 3"), &[]).await;
    let items: Vec<Value> = (0..5).map(|i| item(&format!("c{i}"), hello("fake/m1"))).collect();
    let (status, answer) = batch(&app, &json!({"requests": items})).await;
    assert_eq!(status, 200, "{answer}");
    let statuses: Vec<u64> =
        answer["results"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{answer}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2, "{answer}");
    assert_eq!(upstream.calls("sk-ok-batchbatchbatch"), 3, "rpm 3: the key served three, never a fourth");
    assert_eq!(app.usage("").await["total"]["cost_micros"], 3 * ITEM_COST_MICROS);
}

#[tokio::test]
async fn items_run_a_bounded_number_at_a_time() {
    let upstream = FakeProvider::start().await;
    upstream.set_delay(Duration::from_millis(300));
    let app = spawn_app(&config(&upstream.url, ""), &[]).await;
    let count = 2 * maestro_shared::gateway::BATCH_CONCURRENCY + 1;
    let items: Vec<Value> = (0..count).map(|i| item(&format!("c{i}"), hello("fake/m1"))).collect();
    let started = Instant::now();
    let (status, answer) = batch(&app, &json!({"requests": items})).await;
    let took = started.elapsed();
    assert_eq!(status, 200);
    let ids: Vec<String> =
        answer["results"].as_array().unwrap().iter().map(|r| r["custom_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, (0..count).map(|i| format!("c{i}")).collect::<Vec<_>>(), "in the order of the requests");
    assert!(answer["results"].as_array().unwrap().iter().all(|r| r["status"] == 200), "{answer}");
    // Three waves of 300 ms at the bound; one at a time would take 17 × 300 ms.
    assert!(took >= Duration::from_millis(900), "more than the bound at once: {took:?}");
    assert!(took < Duration::from_millis(17 * 300 / 2), "not concurrent: {took:?}");
}

#[tokio::test]
async fn a_caller_who_hangs_up_mid_batch_leaves_a_ledger_that_matches_the_upstream() {
    let upstream = FakeProvider::start().await;
    upstream.set_delay(Duration::from_millis(600));
    let app = spawn_app(&config(&upstream.url, ""), &[]).await;
    let count = maestro_shared::gateway::BATCH_CONCURRENCY + 4;
    let items: Vec<Value> = (0..count).map(|i| item(&format!("c{i}"), hello("fake/m1"))).collect();
    let gone = app
        .http
        .post(format!("{}/api/ai/chat/batch", app.url))
        .bearer_auth(&app.token)
        .timeout(Duration::from_millis(250))
        .json(&json!({"requests": items}))
        .send()
        .await;
    assert!(gone.is_err(), "the caller left before the answer");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // The items running when the caller left were served and are recorded as hang-ups with their
    // cost; the items not yet started never reached the upstream and cost nothing.
    let served = upstream.calls("sk-ok-batchbatchbatch");
    assert_eq!(served as usize, maestro_shared::gateway::BATCH_CONCURRENCY);
    let logged = logs(&app).await;
    assert_eq!(logged.len(), served as usize, "{logged:?}");
    assert!(logged.iter().all(|e| e["http_status"] == 499 && e["cost_micros"] == ITEM_COST_MICROS), "{logged:?}");
}

#[tokio::test]
async fn a_malformed_batch_is_one_400_naming_the_field_and_recorded() {
    let upstream = FakeProvider::start().await;
    let app = spawn_app(&config(&upstream.url, ""), &[]).await;
    let too_many: Vec<Value> = (0..=100).map(|i| item(&i.to_string(), hello("fake/m1"))).collect();
    let cases = [
        (json!({"requests": []}), "requests"),
        (json!({"requests": too_many}), "requests"),
        (json!({"requests": [item("a", hello("fake/m1")), item("a", hello("fake/m1"))]}), "requests[1].custom_id"),
        (json!({"requests": [{"custom_id": "e", "url": "/v1/embeddings", "body": {}}]}), "requests[0].url"),
    ];
    for (body, param) in &cases {
        let (status, answer) = batch(&app, body).await;
        assert_eq!((status, answer["error"]["param"].as_str()), (400, Some(*param)), "{answer}");
    }
    let (status, answer) = batch(&app, &json!([1, 2])).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"]["message"].is_string());
    let anonymous = app.http.post(format!("{}/api/ai/chat/batch", app.url)).json(&json!({"requests": []})).send().await;
    assert_eq!(anonymous.unwrap().status(), 401);
    assert_eq!(upstream.total_calls(), 0);
    assert_eq!(logs(&app).await.len(), cases.len() + 1, "each refused batch is in the log");
}

#[tokio::test]
async fn the_whole_batch_ends_by_the_call_deadline_and_late_items_are_504s() {
    let upstream = FakeProvider::start().await;
    upstream.set_delay(Duration::from_millis(700));
    let app = spawn_app(&config(&upstream.url, "").replace("deadline_ms = 20000", "deadline_ms = 1000"), &[]).await;
    let bound = maestro_shared::gateway::BATCH_CONCURRENCY;
    let items: Vec<Value> = (0..2 * bound + 1).map(|i| item(&format!("c{i}"), hello("fake/m1"))).collect();
    let started = Instant::now();
    let (status, answer) = batch(&app, &json!({"requests": items})).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "the batch outlived its deadline: {:?}",
        started.elapsed()
    );
    let statuses: Vec<u64> =
        answer["results"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    // The first wave answers in 700 ms; the second is cut at 1 s; the rest never start in time.
    assert_eq!(statuses[..bound], vec![200; bound][..], "{answer}");
    assert_eq!(statuses[bound..], vec![504; bound + 1][..], "{answer}");
    let logged = logs(&app).await;
    assert_eq!(logged.len(), 2 * bound + 1, "every item is in the log");
}
