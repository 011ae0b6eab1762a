//! The response cache over the local runner: a repeated request is answered from the cache
//! without reaching the upstream, in its original shape (also replayed as a stream, and through
//! the Messages API), logged at cost 0 with what it saved, and counted in the stats; one user
//! never sees another's answer unless the model is global; sampling, `off`, `refresh`, expiry,
//! a caller key's model list and bad headers behave as documented.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{FakeProvider, TestApp, hello, spawn_app};

/// `m1` is cached for 10 minutes per user, `m1-global` for everyone, `m1-sampled` also when it
/// samples, `m1-short` for one second, `plain` not at all. 1 µUSD per prompt token, 2 per
/// completion token: the fixture's 19 + 10 tokens cost 39.
fn config(url: &str) -> String {
    let mut c = format!(
        "[retry]\nmax_retries = 0\nbase_delay_ms = 1\nmax_delay_ms = 5\n\n\
         [[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{url}\"\n\n\
         [[keys]]\nprovider = \"fake\"\nname = \"k\"\nsecret = \"sk-ok-cachecachecache\"\n"
    );
    for (model, extra) in [
        ("m1", "cache_ttl_secs = 600"),
        ("m1-global", "cache_ttl_secs = 600\ncache_scope = \"global\""),
        ("m1-sampled", "cache_ttl_secs = 600\ncache_sampled = true"),
        ("m1-short", "cache_ttl_secs = 1"),
        ("plain", ""),
    ] {
        c += &format!(
            "\n[[models]]\nprovider = \"fake\"\nmodel = \"{model}\"\ninput_price = 1000000\noutput_price = 2000000\n{extra}\n"
        );
    }
    c
}

const CALL_COST: u64 = 19 + 2 * 10;
const KEY: &str = "sk-ok-cachecachecache";

/// A chat call: (status, `x-maestro-cache`, body).
async fn chat(app: &TestApp, token: &str, cache: Option<&str>, body: &Value) -> (u16, String, Value) {
    let mut request = app.http.post(format!("{}/v1/chat/completions", app.url)).bearer_auth(token).json(body);
    if let Some(cache) = cache {
        request = request.header("x-maestro-cache", cache);
    }
    let r = request.send().await.unwrap();
    let said = r.headers().get("x-maestro-cache").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (r.status().as_u16(), said, r.json().await.unwrap_or(Value::Null))
}

/// The text a stream's chunks carry, and its last usage chunk.
async fn stream_text(app: &TestApp, body: &Value) -> (String, String, Option<Value>) {
    let r = app
        .http
        .post(format!("{}/v1/chat/completions", app.url))
        .bearer_auth(&app.token)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let said = r.headers().get("x-maestro-cache").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let (mut content, mut usage) = (String::new(), None);
    for data in text.lines().filter_map(|l| l.strip_prefix("data: ")).filter(|d| *d != "[DONE]") {
        let chunk: Value = serde_json::from_str(data).unwrap();
        if let Some(piece) = chunk["choices"][0]["delta"]["content"].as_str() {
            content.push_str(piece);
        }
        if chunk["usage"].is_object() {
            usage = Some(chunk["usage"].clone());
        }
    }
    (said, content, usage)
}

async fn logs(app: &TestApp) -> Vec<Value> {
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let mut all = app.admin_get("/api/admin/ai-stats/logs?limit=100").await["data"].as_array().unwrap().clone();
    all.reverse();
    all
}

#[tokio::test]
async fn a_repeated_request_is_answered_from_the_cache_logged_at_no_cost_and_counted_as_saved() {
    let upstream = FakeProvider::start().await;
    let app = spawn_app(&config(&upstream.url), &[]).await;
    let (status, first_said, first) = chat(&app, &app.token, None, &hello("fake/m1")).await;
    assert_eq!((status, first_said.as_str()), (200, "miss"), "{first}");
    let (status, said, again) = chat(&app, &app.token, None, &hello("fake/m1")).await;
    assert_eq!((status, said.as_str()), (200, "hit"));
    assert_eq!(again, first, "the original answer, as it was");
    assert_eq!(upstream.calls(KEY), 1, "the upstream was asked once");
    // A model without cache settings says nothing and always asks.
    let (_, said, _) = chat(&app, &app.token, None, &hello("fake/plain")).await;
    assert_eq!(said, "");

    let logged = logs(&app).await;
    let fields: Vec<(Value, Value, Value, Value)> = logged
        .iter()
        .map(|e| (e["cache"].clone(), e["cost_micros"].clone(), e["saved_micros"].clone(), e["key_id"].clone()))
        .collect();
    assert_eq!(
        fields,
        [
            (json!("miss"), json!(CALL_COST), json!(0), json!("fake-k")),
            (json!("hit"), json!(0), json!(CALL_COST), Value::Null),
            (Value::Null, json!(CALL_COST), json!(0), json!("fake-k")),
        ],
        "{logged:?}"
    );
    assert_eq!((logged[1]["provider"].as_str(), logged[1]["model"].as_str()), (Some("fake"), Some("m1")));
    assert_eq!((logged[1]["prompt_tokens"].as_u64(), logged[1]["status"].as_str()), (Some(0), Some("success")));

    let usage = app.usage("group_by=model").await;
    let total = &usage["total"];
    assert_eq!((total["requests"].as_u64(), total["cache_hits"].as_u64()), (Some(3), Some(1)), "{usage}");
    assert_eq!(total["saved_micros"], CALL_COST);
    assert_eq!(total["cost_micros"], 2 * CALL_COST, "the hit cost nothing");
    assert_eq!(total["cache_hit_rate"].as_f64(), Some(1.0 / 3.0));
    let dashboard = app.admin_get("/api/admin/ai-stats/dashboard").await;
    assert_eq!(dashboard["today"]["usage"]["cache_hits"], 1, "{dashboard}");
    assert_eq!(dashboard["today"]["usage"]["saved_micros"], CALL_COST);
}

#[tokio::test]
async fn a_hit_replays_as_a_stream_and_a_streamed_miss_is_stored_whole() {
    let upstream = FakeProvider::start().await;
    let app = spawn_app(&config(&upstream.url), &[]).await;
    // Stored from a plain call, replayed as a stream (usage only when asked for).
    let (_, _, plain) = chat(&app, &app.token, None, &hello("fake/m1")).await;
    let mut streamed = hello("fake/m1");
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let (said, text, usage) = stream_text(&app, &streamed).await;
    assert_eq!(said, "hit");
    assert_eq!(text, plain["choices"][0]["message"]["content"].as_str().unwrap());
    assert_eq!(usage.unwrap()["completion_tokens"], 10);
    assert_eq!(upstream.calls(KEY), 1);

    // Stored from a stream (another request: another key), then answered plainly.
    let mut first = json!({"model": "fake/m1", "stream": true, "messages": [{"role": "user", "content": "Stream me"}]});
    let (said, text, _) = stream_text(&app, &first).await;
    assert_eq!((said.as_str(), upstream.calls(KEY)), ("miss", 2));
    first.as_object_mut().unwrap().remove("stream");
    let (status, said, answer) = chat(&app, &app.token, None, &first).await;
    assert_eq!((status, said.as_str()), (200, "hit"), "{answer}");
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["choices"][0]["message"]["content"].as_str(), Some(text.as_str()));
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(upstream.calls(KEY), 2);

    // The Messages API reads the same entry, in Anthropic's shape.
    let r = app
        .messages(json!({"model": "fake/m1", "max_tokens": 100, "messages": [{"role": "user", "content": "Hello!"}]}))
        .await;
    let said = r.headers().get("x-maestro-cache").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let message: Value = r.json().await.unwrap();
    assert_eq!(message["type"], "message", "{message}");
    // `max_tokens` makes it another request than the chat call above: a miss, then a hit.
    assert_eq!(said, "miss");
    let r = app
        .messages(json!({"model": "fake/m1", "max_tokens": 100, "messages": [{"role": "user", "content": "Hello!"}]}))
        .await;
    assert_eq!(r.headers().get("x-maestro-cache").unwrap(), "hit");
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["content"], message["content"]);
    assert_eq!(upstream.calls(KEY), 3);
}

#[tokio::test]
async fn answers_stay_with_their_user_unless_the_model_is_global() {
    let upstream = FakeProvider::start().await;
    let app = spawn_app(&config(&upstream.url), &[]).await;
    let other = app.app.auth.issue("user-2", false, Duration::from_secs(600)).unwrap();
    assert_eq!(chat(&app, &app.token, None, &hello("fake/m1")).await.1, "miss");
    assert_eq!(chat(&app, &other, None, &hello("fake/m1")).await.1, "miss", "another user's entry is not theirs");
    assert_eq!(chat(&app, &other, None, &hello("fake/m1")).await.1, "hit");
    assert_eq!(upstream.calls(KEY), 2);
    assert_eq!(chat(&app, &app.token, None, &hello("fake/m1-global")).await.1, "miss");
    assert_eq!(chat(&app, &other, None, &hello("fake/m1-global")).await.1, "hit", "global: shared");
    assert_eq!(upstream.calls(KEY), 3);
}

#[tokio::test]
async fn sampling_needs_an_explicit_yes_and_the_header_turns_the_cache_off_on_or_refreshes_it() {
    let upstream = FakeProvider::start().await;
    let app = spawn_app(&config(&upstream.url), &[]).await;
    let mut warm = hello("fake/m1");
    warm["temperature"] = json!(0.8);
    for _ in 0..2 {
        assert_eq!(chat(&app, &app.token, None, &warm).await.1, "", "sampling: not cached");
    }
    assert_eq!(upstream.calls(KEY), 2);
    assert_eq!(chat(&app, &app.token, Some("on"), &warm).await.1, "miss");
    assert_eq!(chat(&app, &app.token, Some("on"), &warm).await.1, "hit", "asked for");
    let mut sampled = hello("fake/m1-sampled");
    sampled["temperature"] = json!(0.8);
    assert_eq!(chat(&app, &app.token, None, &sampled).await.1, "miss");
    assert_eq!(chat(&app, &app.token, None, &sampled).await.1, "hit", "the model says sampled answers may repeat");
    assert_eq!(upstream.calls(KEY), 4);

    assert_eq!(chat(&app, &app.token, None, &hello("fake/m1")).await.1, "miss");
    assert_eq!(chat(&app, &app.token, Some("off"), &hello("fake/m1")).await.1, "", "off: neither read nor stored");
    assert_eq!(chat(&app, &app.token, Some("refresh"), &hello("fake/m1")).await.1, "miss", "refresh: asks again");
    assert_eq!(upstream.calls(KEY), 7);
    assert_eq!(chat(&app, &app.token, None, &hello("fake/m1")).await.1, "hit");
    // `on` for a model without settings caches for the default hour.
    assert_eq!(chat(&app, &app.token, Some("ON"), &hello("fake/plain")).await.1, "miss");
    assert_eq!(chat(&app, &app.token, Some("on"), &hello("fake/plain")).await.1, "hit");
    assert_eq!(upstream.calls(KEY), 8);

    let (status, _, error) = chat(&app, &app.token, Some("always"), &hello("fake/m1")).await;
    assert_eq!((status, error["error"]["param"].as_str()), (400, Some("x-maestro-cache")), "{error}");
}

#[tokio::test]
async fn an_entry_expires_and_a_caller_key_limited_to_other_models_never_reads_one() {
    let upstream = FakeProvider::start().await;
    let app = spawn_app(&config(&upstream.url), &[]).await;
    assert_eq!(chat(&app, &app.token, None, &hello("fake/m1-short")).await.1, "miss");
    assert_eq!(chat(&app, &app.token, None, &hello("fake/m1-short")).await.1, "hit");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(chat(&app, &app.token, None, &hello("fake/m1-short")).await.1, "miss", "expired after 1 s");

    // A Maestro API key of user-1 that may only use `fake/plain`: user-1's cached `fake/m1`
    // answer is not served to it; the 403 is.
    assert_eq!(chat(&app, &app.token, None, &hello("fake/m1")).await.1, "miss");
    let created = app
        .http
        .post(format!("{}/api/admin/api-keys", app.url))
        .bearer_auth(&app.admin_token)
        .json(&json!({"owner": "user-1", "name": "plain only", "allowed_models": ["fake/plain"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let key: Value = created.json().await.unwrap();
    let (status, said, _) = chat(&app, key["api_key"].as_str().unwrap(), None, &hello("fake/m1")).await;
    assert_eq!((status, said.as_str()), (403, ""));
}

#[tokio::test]
async fn a_route_caches_through_the_admin_api_and_its_settings_are_checked() {
    let upstream = FakeProvider::start().await;
    let app = spawn_app(&config(&upstream.url), &[]).await;
    let post = |body: Value| {
        app.http.post(format!("{}/api/admin/ai-routes", app.url)).bearer_auth(&app.admin_token).json(&body).send()
    };
    let bad = post(json!({"name": "lyrics", "targets": ["fake/plain"], "cache_ttl_secs": 99_999_999})).await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["error"]["param"], "cache_ttl_secs");
    let created =
        post(json!({"name": "lyrics", "targets": ["fake/plain"], "cache_ttl_secs": 300, "cache_scope": "global"}))
            .await
            .unwrap();
    assert_eq!(created.status(), 201);
    let route: Value = created.json().await.unwrap();
    assert_eq!((route["cache_ttl_secs"].as_u64(), route["cache_scope"].as_str()), (Some(300), Some("global")));
    assert_eq!(chat(&app, &app.token, None, &hello("lyrics")).await.1, "miss");
    let other = app.app.auth.issue("user-9", false, Duration::from_secs(600)).unwrap();
    let r = app.http.post(format!("{}/v1/chat/completions", app.url)).bearer_auth(&other).json(&hello("lyrics")).send();
    let r = r.await.unwrap();
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    assert_eq!(
        (header("x-maestro-cache"), header("x-maestro-route"), header("x-maestro-model")),
        (Some("hit".into()), Some("lyrics".into()), Some("fake/plain".into()))
    );
    assert_eq!(upstream.calls(KEY), 1);
    // Turned off with `null`.
    let off = app
        .http
        .put(format!("{}/api/admin/ai-routes/lyrics", app.url))
        .bearer_auth(&app.admin_token)
        .json(&json!({"version": route["version"], "cache_ttl_secs": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 200);
    assert_eq!(off.json::<Value>().await.unwrap()["cache_ttl_secs"], Value::Null);
    assert_eq!(chat(&app, &app.token, None, &hello("lyrics")).await.1, "");
}
