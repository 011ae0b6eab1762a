//! `POST /v1/embeddings` over the local runner, against the fake provider's OpenAI-format
//! `/embeddings`: the four input shapes, `float` and `base64` answers passed through, options
//! forwarded, kinds and models that cannot embed refused by name, retries, key hand-over, route
//! fallback, the key's tpm, and the call log with its exact cost.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use base64::Engine;
use serde_json::{Value, json};

use crate::support::{FAST_RETRY, FakeProvider, TestApp, spawn_app};
use maestro_test_support::{EMBEDDING_DIMENSIONS, embedding};

/// Provider `fake` (OpenAI-compatible) at `url` with the embedding model `e1` at
/// text-embedding-3-large's price ($0.13 per 1M input tokens) and the chat model `c1`; `keys` as
/// `(name, secret, priority, extra key lines)`.
fn config(url: &str, keys: &[(&str, &str, i64, &str)], extra: &str) -> String {
    let mut c = format!(
        r#"{FAST_RETRY}
[[providers]]
code = "fake"
kind = "openai_compatible"
base_url = "{url}/v1"

[[models]]
provider = "fake"
model = "e1"
model_type = "embedding"
input_price = 130000

[[models]]
provider = "fake"
model = "c1"
input_price = 2500000
output_price = 10000000
"#
    );
    for (name, secret, priority, more) in keys {
        c.push_str(&format!(
            "\n[[keys]]\nprovider = \"fake\"\nname = \"{name}\"\nsecret = \"{secret}\"\npriority = {priority}\n{more}\n"
        ));
    }
    c.push_str(extra);
    c
}

async fn embed(app: &TestApp, body: Value) -> reqwest::Response {
    app.http.post(format!("{}/v1/embeddings", app.url)).bearer_auth(&app.token).json(&body).send().await.unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// The fake's float vector for `item`, as JSON.
fn vector(item: Value, dimensions: usize) -> Value {
    json!(embedding(&item, dimensions))
}

/// The embeddings calls the fake received.
fn upstream_bodies(fake: &FakeProvider) -> Vec<Value> {
    fake.seen().iter().filter(|s| s.path.ends_with("/embeddings")).map(|s| s.json()).collect()
}

async fn one_key_app(fake: &FakeProvider) -> TestApp {
    spawn_app(&config(&fake.url, &[("k", "sk-ok-eeeeeeeeeeee", 1, "")], ""), &[]).await
}

#[tokio::test]
async fn a_string_is_embedded_in_openai_s_shape_with_maestro_s_headers() {
    let fake = FakeProvider::start().await;
    let app = one_key_app(&fake).await;
    let r = embed(&app, json!({"model": "fake/e1", "input": "hello embedding world", "user": "u-7"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-maestro-provider"), "fake");
    assert_eq!(header(&r, "x-maestro-model"), "fake/e1");
    assert_eq!(header(&r, "x-maestro-attempts"), "1");
    assert!(header(&r, "x-request-id").starts_with("req_"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "e1", "the provider's own model name");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["object"], "embedding");
    assert_eq!(body["data"][0]["index"], 0);
    assert_eq!(body["data"][0]["embedding"], vector(json!("hello embedding world"), EMBEDDING_DIMENSIONS));
    assert_eq!(body["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));

    let sent = fake.only();
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.key, "sk-ok-eeeeeeeeeeee");
    assert_eq!(sent.json(), json!({"model": "e1", "input": "hello embedding world", "user": "u-7"}));
    // The alias serves the same.
    let r = app
        .http
        .post(format!("{}/api/ai/embeddings", app.url))
        .bearer_auth(&app.token)
        .json(&json!({"model": "e1", "input": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn arrays_of_strings_token_ids_and_token_arrays_pass_through_as_sent() {
    let fake = FakeProvider::start().await;
    let app = one_key_app(&fake).await;
    let inputs = [
        (json!(["one", "two words", "three more words"]), 3, 6),
        (json!([1, 2, 3, 4]), 1, 4),
        (json!([[10, 11], [12], [13, 14, 15]]), 3, 6),
    ];
    for (input, items, tokens) in inputs {
        let r = embed(&app, json!({"model": "fake/e1", "input": input})).await;
        assert_eq!(r.status(), 200, "{input}");
        let body: Value = r.json().await.unwrap();
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), items, "{input}");
        for (i, d) in data.iter().enumerate() {
            assert_eq!(d["index"], i);
        }
        assert_eq!(body["usage"]["prompt_tokens"], tokens, "{input}");
        assert_eq!(upstream_bodies(&fake).last().unwrap()["input"], input, "sent as given");
    }
    let body: Value = embed(&app, json!({"model": "fake/e1", "input": [[10, 11], [12]]})).await.json().await.unwrap();
    assert_eq!(body["data"][1]["embedding"], vector(json!([12]), EMBEDDING_DIMENSIONS));
}

#[tokio::test]
async fn base64_answers_pass_through_and_dimensions_are_forwarded() {
    let fake = FakeProvider::start().await;
    let app = one_key_app(&fake).await;
    let r = embed(&app, json!({"model": "fake/e1", "input": "pack me", "encoding_format": "base64", "dimensions": 4}))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let sent = upstream_bodies(&fake).pop().unwrap();
    assert_eq!((sent["encoding_format"].clone(), sent["dimensions"].clone()), (json!("base64"), json!(4)));
    // The string the provider sent, untouched: 4 little-endian float32s.
    let encoded = body["data"][0]["embedding"].as_str().expect("a base64 string");
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    let floats: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(floats, embedding(&json!("pack me"), 4));

    let r = embed(&app, json!({"model": "fake/e1", "input": "x", "encoding_format": "float", "dimensions": 2})).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"][0]["embedding"], vector(json!("x"), 2));
}

#[tokio::test]
async fn providers_and_models_that_cannot_embed_are_refused_by_name_before_anything_is_sent() {
    let fake = FakeProvider::start().await;
    let extra = format!(
        r#"
[[providers]]
code = "claude"
kind = "anthropic"
base_url = "{url}"
[[models]]
provider = "claude"
model = "claude-haiku"
input_price = 1000000
output_price = 5000000
[[keys]]
provider = "claude"
name = "k"
secret = "sk-ok-cccccccccccc"

[[providers]]
code = "ds"
kind = "deepseek"
base_url = "{url}"
[[models]]
provider = "ds"
model = "deepseek-chat"
model_type = "embedding"
input_price = 270000
[[keys]]
provider = "ds"
name = "k"
secret = "sk-ok-dddddddddddd"
"#,
        url = fake.url
    );
    let app = spawn_app(&config(&fake.url, &[("k", "sk-ok-eeeeeeeeeeee", 1, "")], &extra), &[]).await;
    for model in ["claude/claude-haiku", "ds/deepseek-chat"] {
        let r = embed(&app, json!({"model": model, "input": "hi"})).await;
        assert_eq!(r.status(), 400, "{model}");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["error"]["param"], "model", "{err}");
        assert_eq!(err["error"]["code"], "embeddings_not_supported", "{err}");
        assert_eq!(err["error"]["type"], "invalid_request_error", "{err}");
        assert!(err["error"]["message"].as_str().unwrap().contains("no embeddings API"), "{err}");
    }
    // A chat model of a provider that has embeddings: not an embedding model.
    let r = embed(&app, json!({"model": "fake/c1", "input": "hi"})).await;
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["param"], "model");
    assert!(err["error"]["message"].as_str().unwrap().contains("not an embedding model"), "{err}");
    // And the other way round: a chat request to an embedding model.
    let r = app.chat(json!({"model": "fake/e1", "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["param"], "model");
    assert!(err["error"]["message"].as_str().unwrap().contains("embedding model"), "{err}");
    assert_eq!(fake.total_calls(), 0, "nothing went upstream");
    // Unknown models are 404s, as for chat.
    assert_eq!(embed(&app, json!({"model": "nope", "input": "hi"})).await.status(), 404);
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_is_logged() {
    let fake = FakeProvider::start().await;
    let app = one_key_app(&fake).await;
    let too_many: Vec<&str> = vec!["a"; 2049];
    let cases = [
        (json!({"model": "fake/e1", "input": ""}), "input"),
        (json!({"model": "fake/e1", "input": []}), "input"),
        (json!({"model": "fake/e1"}), "input"),
        (json!({"model": "fake/e1", "input": too_many}), "input"),
        (json!({"model": "fake/e1", "input": {"text": "x"}}), "input"),
        (json!({"model": "fake/e1", "input": ["a", 2]}), "input[1]"),
        (json!({"model": "fake/e1", "input": [[1], [-1]]}), "input[1][0]"),
        (json!({"model": "fake/e1", "input": "x", "dimensions": 0}), "dimensions"),
        (json!({"model": "fake/e1", "input": "x", "encoding_format": "int8"}), "encoding_format"),
        (json!({"model": 7, "input": "x"}), "model"),
    ];
    for (body, param) in &cases {
        let r = embed(&app, body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["error"]["param"], *param, "{err}");
    }
    // Not JSON at all: a 400, recorded as an embeddings call of an unknown model.
    let r = app
        .http
        .post(format!("{}/v1/embeddings", app.url))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(fake.total_calls(), 0);
    let usage = app.usage("").await;
    assert_eq!(usage["total"]["requests"], cases.len() as u64 + 1);
    let logs = app.admin_get("/api/admin/ai-stats/logs?limit=100").await;
    let logs = logs["data"].as_array().unwrap();
    assert!(logs.iter().all(|l| l["request_type"] == "embeddings" && l["http_status"] == 400), "{logs:?}");
    assert_eq!(logs.iter().filter(|l| l["model"] == "fake/e1").count(), cases.len() - 1, "a known model is logged");
}

#[tokio::test]
async fn a_500_is_retried_on_the_next_key_and_a_429_hands_over_with_the_log_and_exact_cost() {
    let fake = FakeProvider::start().await;
    let keys = [
        ("broken", "sk-500-aaaaaaaaaaaa", 30, ""),
        ("limited", "sk-429-bbbbbbbbbbbb", 20, ""),
        ("good", "sk-ok-cccccccccccc", 10, ""),
    ];
    let app = spawn_app(&config(&fake.url, &keys, ""), &[]).await;
    // 500 words of two tokens each at the fake: 1,000 tokens at $0.13 per 1M = 130 micro-USD.
    let input: Vec<&str> = vec!["two words"; 500];
    let r = embed(&app, json!({"model": "fake/e1", "input": input})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-maestro-attempts"), "3");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 500);
    assert_eq!(body["usage"]["prompt_tokens"], 1000);
    assert_eq!(fake.calls("sk-500-aaaaaaaaaaaa"), 1);
    assert_eq!(fake.calls("sk-429-bbbbbbbbbbbb"), 1);
    assert_eq!(fake.calls("sk-ok-cccccccccccc"), 1);
    assert_eq!(app.key_status("fake-limited").await, "rate_limited");

    let usage = app.usage("provider=fake").await;
    assert_eq!(usage["total"]["requests"], 1);
    assert_eq!(usage["total"]["successes"], 1);
    assert_eq!(usage["total"]["prompt_tokens"], 1000);
    assert_eq!(usage["total"]["completion_tokens"], 0);
    assert_eq!(usage["total"]["cost_micros"], 130);
    let logs = app.admin_get("/api/admin/ai-stats/logs?provider=fake").await;
    let log = &logs["data"][0];
    assert_eq!(log["request_type"], "embeddings", "{log}");
    assert_eq!(log["status"], "success");
    assert_eq!(log["model"], "e1");
    assert_eq!(log["key_id"], "fake-good");
    assert_eq!((log["prompt_tokens"].clone(), log["completion_tokens"].clone()), (json!(1000), json!(0)));
    assert_eq!(log["cost_micros"], 130);
    assert_eq!(log["attempts"], 3);
    assert_eq!(log["stream"], false);
    let tried: Vec<(String, u64)> = log["key_attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["key_id"].as_str().unwrap().to_string(), a["errors"].as_u64().unwrap()))
        .collect();
    assert_eq!(tried, [("fake-broken".to_string(), 1), ("fake-limited".to_string(), 1), ("fake-good".to_string(), 0)]);
}

#[tokio::test]
async fn a_route_of_embedding_models_falls_back_to_its_next_target() {
    let fake = FakeProvider::start().await;
    let extra = format!(
        r#"
[[providers]]
code = "backup"
kind = "openai"
base_url = "{url}/backup/v1"
[[models]]
provider = "backup"
model = "text-embedding-3-small"
model_type = "embedding"
input_price = 20000
[[keys]]
provider = "backup"
name = "k"
secret = "sk-ok-ffffffffffff"

[[routes]]
name = "vectors"
targets = ["fake/e1", "backup/text-embedding-3-small"]
"#,
        url = fake.url
    );
    let app = spawn_app(&config(&fake.url, &[("k", "sk-500-eeeeeeeeeeee", 1, "")], &extra), &[]).await;
    let r = embed(&app, json!({"model": "vectors", "input": "route me"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-maestro-route"), "vectors");
    assert_eq!(header(&r, "x-maestro-model"), "backup/text-embedding-3-small");
    // The failing target was retried by the policy (max_retries = 2), then the route moved on.
    assert_eq!(fake.calls("sk-500-eeeeeeeeeeee"), 3);
    assert_eq!(fake.calls("sk-ok-ffffffffffff"), 1);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["model"], "text-embedding-3-small");
    let logs = app.admin_get("/api/admin/ai-stats/logs?provider=backup").await;
    assert_eq!(logs["data"][0]["route"], "vectors");
    assert_eq!(logs["data"][0]["route_rule"], "default");
}

#[tokio::test]
async fn the_key_s_tpm_holds_with_the_real_usage_reconciled() {
    let fake = FakeProvider::start().await;
    let app = spawn_app(&config(&fake.url, &[("k", "sk-ok-tttttttttttt", 1, "tpm = 50")], ""), &[]).await;
    // 60 words: the fake bills 60 tokens, more than the whole minute allows (the reservation was
    // cut to the tpm); the window then holds the real 60.
    let words = vec!["w"; 60].join(" ");
    let r = embed(&app, json!({"model": "fake/e1", "input": words})).await;
    assert_eq!(r.status(), 200);
    let r = embed(&app, json!({"model": "fake/e1", "input": "one more"})).await;
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").parse::<u64>().unwrap() <= 60);
    let err: Value = r.json().await.unwrap();
    assert!(err["error"]["message"].as_str().unwrap().contains("rate limit"), "{err}");
    assert_eq!(fake.total_calls(), 1, "the refused call never left");
}

#[tokio::test]
async fn a_caller_key_s_token_budget_counts_embeddings() {
    let fake = FakeProvider::start().await;
    let app = one_key_app(&fake).await;
    let created = app
        .http
        .post(format!("{}/api/admin/api-keys", app.url))
        .bearer_auth(&app.admin_token)
        .json(&json!({"owner": "user-9", "key_name": "vectors", "daily_token_budget": 40}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    let created: Value = created.json().await.unwrap();
    let secret = created["api_key"].as_str().expect("the secret, shown once").to_string();
    let call = |input: String| {
        app.http
            .post(format!("{}/v1/embeddings", app.url))
            .bearer_auth(&secret)
            .json(&json!({"model": "fake/e1", "input": input}))
            .send()
    };
    // 30 words: 30 real tokens of the 40.
    let r = call(vec!["w"; 30].join(" ")).await.unwrap();
    assert_eq!(r.status(), 200);
    // 20 more bytes (the bound of a short input) no longer fit.
    let r = call("x".repeat(20)).await.unwrap();
    assert_eq!(r.status(), 429);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "caller_budget_exceeded", "{err}");
    assert_eq!(fake.total_calls(), 1);
}
