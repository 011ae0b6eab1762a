//! The local runner driven over HTTP, against fake providers that answer in the real formats:
//! key hand-over, key status changes, route fallback, limits, bad input, and exact stats.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use crate::support;

use serde_json::{Value, json};
use support::{FAST_RETRY, FakeProvider, hello, spawn_app};

/// A config with provider `fake` (OpenAI format) at `url`, model `m1` priced like gpt-4o
/// ($2.50 in / $10 out per 1M, so the fixture's 19 + 10 tokens cost 148 micro-USD), and `keys`.
fn config(url: &str, keys: &[(&str, &str, i64)], extra: &str) -> String {
    let mut c = format!(
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
"#
    );
    for (name, secret, priority) in keys {
        c.push_str(&format!(
            "\n[[keys]]\nprovider = \"fake\"\nname = \"{name}\"\nsecret = \"{secret}\"\npriority = {priority}\n"
        ));
    }
    c.push_str(extra);
    c
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

#[tokio::test]
async fn demo_model_answers_offline_and_the_call_is_logged_and_counted() {
    let app = spawn_app(FAST_RETRY, &[]).await;
    let r = app.chat(hello("demo/echo")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-maestro-provider"), "demo");
    assert!(header(&r, "x-request-id").starts_with("req_"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Echo from Maestro's demo model: Hello!");

    let usage = app.usage("provider=demo").await;
    assert_eq!(usage["total"]["requests"], 1);
    assert_eq!(usage["total"]["successes"], 1);
    assert_eq!(usage["total"]["cost_micros"], 0);
    let logs = app.admin_get("/api/admin/ai-stats/logs?provider=demo").await;
    assert_eq!(logs["data"][0]["user_id"], "user-1");
    assert_eq!(logs["data"][0]["status"], "success");
}

#[tokio::test]
async fn a_rate_limited_key_hands_over_to_the_next_key_and_cools_down() {
    let fake = FakeProvider::start().await;
    let app = spawn_app(
        &config(&fake.url, &[("first", "sk-429-aaaaaaaaaaaa", 10), ("second", "sk-ok-bbbbbbbbbbbb", 1)], ""),
        &[],
    )
    .await;

    let r = app.chat(hello("fake/m1")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-maestro-attempts"), "2");
    assert_eq!(fake.calls("sk-429-aaaaaaaaaaaa"), 1);
    assert_eq!(fake.calls("sk-ok-bbbbbbbbbbbb"), 1);
    assert_eq!(app.key_status("fake-first").await, "rate_limited");

    // The first key cools down (retry-after 30 s): the next call goes straight to the second.
    let r = app.chat(hello("fake/m1")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-maestro-attempts"), "1");
    assert_eq!(fake.calls("sk-429-aaaaaaaaaaaa"), 1);
    assert_eq!(fake.calls("sk-ok-bbbbbbbbbbbb"), 2);

    // Stats: exactly two calls, both on the second key, 19 + 10 tokens and 148 micro-USD each.
    let usage = app.usage("group_by=key").await;
    assert_eq!(usage["total"]["requests"], 2);
    assert_eq!(usage["total"]["prompt_tokens"], 38);
    assert_eq!(usage["total"]["completion_tokens"], 20);
    assert_eq!(usage["total"]["cost_micros"], 296);
    // The first key has no call of its own, but its refused try shows in its row.
    let group =
        |name: &str| usage["groups"].as_array().unwrap().iter().find(|g| g["group"] == name).unwrap()["usage"].clone();
    assert_eq!(usage["groups"].as_array().unwrap().len(), 2);
    assert_eq!(group("fake-second")["requests"], 2);
    assert_eq!(group("fake-second")["attempts"], 2);
    assert_eq!(group("fake-first")["requests"], 0);
    assert_eq!(
        (group("fake-first")["attempts"].as_u64(), group("fake-first")["attempt_errors"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn a_rejected_key_is_marked_invalid_and_never_tried_again() {
    let fake = FakeProvider::start().await;
    let app = spawn_app(
        &config(&fake.url, &[("bad", "sk-401-cccccccccccc", 10), ("good", "sk-ok-dddddddddddd", 1)], ""),
        &[],
    )
    .await;
    for _ in 0..3 {
        assert_eq!(app.chat(hello("fake/m1")).await.status(), 200);
    }
    assert_eq!(fake.calls("sk-401-cccccccccccc"), 1);
    assert_eq!(fake.calls("sk-ok-dddddddddddd"), 3);
    assert_eq!(app.key_status("fake-bad").await, "invalid");
}

#[tokio::test]
async fn every_key_rejected_is_a_502_that_says_so() {
    let fake = FakeProvider::start().await;
    let app = spawn_app(&config(&fake.url, &[("bad", "sk-401-eeeeeeeeeeee", 1)], ""), &[]).await;
    let r = app.chat(hello("fake/m1")).await;
    assert_eq!(r.status(), 502);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_auth_failed");
    assert!(!body.to_string().contains("eeeeeeeeeeee"), "the key never reaches the caller");
}

#[tokio::test]
async fn an_exhausted_target_falls_back_to_the_next_route_target() {
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
input_price = 1000000
output_price = 2000000

[[keys]]
provider = "backup"
name = "only"
secret = "sk-ok-ffffffffffff"

[[routes]]
name = "resilient"
targets = ["fake/m1", "backup/m2"]
"#,
        url = fake.url
    );
    let app = spawn_app(&config(&fake.url, &[("flaky", "sk-500-gggggggggggg", 1)], &extra), &[]).await;
    let r = app.chat(hello("resilient")).await;
    assert_eq!(r.status(), 200);
    // max_retries = 2: three attempts on the failing target, then one on the backup.
    assert_eq!(fake.calls("sk-500-gggggggggggg"), 3);
    assert_eq!(fake.calls("sk-ok-ffffffffffff"), 1);
    assert_eq!(header(&r, "x-maestro-attempts"), "4");
    assert_eq!(header(&r, "x-maestro-provider"), "backup");
    assert_eq!(header(&r, "x-maestro-model"), "backup/m2");
    assert_eq!(fake.last_body()["model"], "m2");

    // One call, counted once, on the target that served, at its price: 19 * 1 + 10 * 2 = 39.
    let usage = app.usage("group_by=provider").await;
    assert_eq!(usage["total"]["requests"], 1);
    assert_eq!(usage["total"]["cost_micros"], 39);
    assert_eq!(usage["groups"][0]["group"], "backup");
    let logs = app.admin_get("/api/admin/ai-stats/logs").await;
    assert_eq!(logs["data"][0]["attempts"], 4);
    assert_eq!(logs["data"][0]["route"], "resilient");
}

#[tokio::test]
async fn upstream_failures_become_clean_gateway_errors_after_the_retries() {
    let fake = FakeProvider::start().await;
    let cases = [
        ("sk-garbage-hhhhhhhhhhhh", 502, "upstream_malformed_response"),
        ("sk-html-iiiiiiiiiiii", 502, "upstream_server_error"),
        ("sk-slow-jjjjjjjjjjjj", 504, "upstream_timeout"),
    ];
    for (secret, status, code) in cases {
        let app = spawn_app(&config(&fake.url, &[("k", secret, 1)], ""), &[]).await;
        let r = app.chat(hello("fake/m1")).await;
        assert_eq!(r.status(), status, "{secret}");
        assert_eq!(header(&r, "x-maestro-attempts"), "3", "{secret}: one try and two retries");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{secret}");
        let usage = app.usage("").await;
        assert_eq!(usage["total"]["errors"], 1, "{secret}: one failed call logged");
    }
    assert_eq!(fake.calls("sk-slow-jjjjjjjjjjjj"), 3);
}

#[tokio::test]
async fn repeated_server_errors_trip_the_key_into_error_status() {
    let fake = FakeProvider::start().await;
    let app = spawn_app(&config(&fake.url, &[("flaky", "sk-500-kkkkkkkkkkkk", 1)], ""), &[]).await;
    let r = app.chat(hello("fake/m1")).await;
    assert_eq!(r.status(), 502);
    // failure_threshold 3 = max_retries 2 + 1: the third failure in a row opens the breaker.
    assert_eq!(app.key_status("fake-flaky").await, "error");
    let r = app.chat(hello("fake/m1")).await;
    assert_eq!(r.status(), 503, "the only key rests after repeated failures");
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(fake.calls("sk-500-kkkkkkkkkkkk"), 3);
}

/// Retry-After within one second of `secs` (the wait is counted from when the key cooled).
fn retry_after_near(r: &reqwest::Response, secs: u64) -> bool {
    header(r, "retry-after").parse::<u64>().is_ok_and(|got| got <= secs && got + 1 >= secs)
}

#[tokio::test]
async fn retry_signals_tell_the_truth_on_both_routes() {
    let fake = FakeProvider::start().await;
    let anthropic_shaped =
        |model: &str| json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "Hello!"}]});

    // A 429 asking for 7 s: the caller waits the real 7 s, not a default minute, now and while
    // the key cools down; the SDKs' own rules decide (no x-should-retry).
    let app = spawn_app(&config(&fake.url, &[("k", "sk-wait7-aaaaaaaaaaaa", 1)], ""), &[]).await;
    for _ in 0..2 {
        let r = app.chat(hello("fake/m1")).await;
        assert_eq!(r.status(), 429);
        assert!(retry_after_near(&r, 7), "retry-after {}", header(&r, "retry-after"));
        assert!(r.headers().get("x-should-retry").is_none());
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    }
    assert_eq!(fake.calls("sk-wait7-aaaaaaaaaaaa"), 1, "the cooling key is not tried again");

    // Out of quota: the provider's code and type, the quota cool-down, and no retry.
    let app = spawn_app(&config(&fake.url, &[("k", "sk-quota-bbbbbbbbbbbb", 1)], ""), &[]).await;
    let r = app.chat(hello("fake/m1")).await;
    assert_eq!(r.status(), 429);
    assert!(retry_after_near(&r, 15 * 60), "the quota cool-down: {}", header(&r, "retry-after"));
    assert_eq!(header(&r, "x-should-retry"), "false");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["error"]["code"].as_str(), body["error"]["type"].as_str()),
        (Some("insufficient_quota"), Some("insufficient_quota"))
    );
    let r = app.messages(anthropic_shaped("fake/m1")).await;
    assert_eq!((r.status().as_u16(), header(&r, "x-should-retry")), (429, "false".to_string()));

    // 5xx until Maestro's retries are spent: the upstream's class of error, and no retry; then
    // the key rests (error cool-down, 30 s): 503 with that wait, and still no retry.
    let app = spawn_app(&config(&fake.url, &[("k", "sk-500-cccccccccccc", 1)], ""), &[]).await;
    let r = app.chat(hello("fake/m1")).await;
    assert_eq!((r.status().as_u16(), header(&r, "x-should-retry")), (502, "false".to_string()));
    assert!(r.headers().get("retry-after").is_none());
    for route in ["chat", "messages"] {
        let r = if route == "chat" {
            app.chat(hello("fake/m1")).await
        } else {
            app.messages(anthropic_shaped("fake/m1")).await
        };
        assert_eq!(r.status(), 503, "{route}");
        assert_eq!(header(&r, "x-should-retry"), "false", "{route}");
        assert!(retry_after_near(&r, 30), "{route}: retry-after {}", header(&r, "retry-after"));
    }
    assert_eq!(fake.calls("sk-500-cccccccccccc"), 3, "one try and two retries, then nothing while it rests");
}

#[tokio::test]
async fn the_rpm_limit_holds_exactly_under_concurrent_callers() {
    let fake = FakeProvider::start().await;
    let cfg = format!(
        "{FAST_RETRY}\n[[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n[[models]]\nprovider = \"fake\"\nmodel = \"m1\"\n[[keys]]\nprovider = \"fake\"\nname = \"k\"\nsecret = \"sk-ok-llllllllllll\"\nrpm = 20\n",
        fake.url
    );
    let app = std::sync::Arc::new(spawn_app(&cfg, &[]).await);
    let mut tasks = Vec::new();
    for _ in 0..60 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move { app.chat(hello("fake/m1")).await }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                assert!(r.headers().get("retry-after").is_some());
                limited += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // All 60 land in one or two minute windows; each window passes at most 20.
    assert!(ok == 20 || (ok > 20 && ok <= 40 && fake.total_calls() == ok), "ok = {ok}");
    assert_eq!(ok + limited, 60);
    assert_eq!(fake.total_calls(), ok);
}

#[tokio::test]
async fn bad_input_gets_openai_errors_with_the_right_status() {
    let fake = FakeProvider::start().await;
    let cfg = config(&fake.url, &[("k", "sk-ok-mmmmmmmmmmmm", 1)], "[server]\nmax_body_bytes = 2048\n");
    let app = spawn_app(&cfg, &[]).await;
    let url = format!("{}/v1/chat/completions", app.url);
    let post = |body: String| {
        app.http.post(&url).bearer_auth(&app.token).header("content-type", "application/json").body(body)
    };

    let cases: Vec<(String, u16, &str)> = vec![
        ("{not json".into(), 400, ""),
        (json!({"model": "fake/m1"}).to_string(), 400, ""),
        (json!({"model": "fake/m1", "messages": []}).to_string(), 400, "messages"),
        (json!({"model": "fake/m1", "messages": "hi"}).to_string(), 400, ""),
        (json!({"model": 5, "messages": [{"role": "user", "content": "x"}]}).to_string(), 400, ""),
        (json!({"model": "no/such-model", "messages": [{"role": "user", "content": "x"}]}).to_string(), 404, "model"),
        (
            json!({"model": "fake/m1", "max_tokens": 5000, "messages": [{"role": "user", "content": "x"}]}).to_string(),
            400,
            "max_tokens",
        ),
        (json!({"model": "fake/m1", "messages": [{"role": "user", "content": "x".repeat(4096)}]}).to_string(), 413, ""),
        (String::new(), 400, ""),
        (json!({"model": "fake/m1", "tools": [{"type": "function", "function": {"name": "f"}}], "messages": [{"role": "user", "content": "x"}]}).to_string(), 400, "tools"),
        (json!({"model": "fake/m1", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}).to_string(), 400, "messages"),
    ];
    for (body, status, param) in cases {
        let r = post(body.clone()).send().await.unwrap();
        assert_eq!(r.status(), status, "body {body:.80}");
        let err: Value = r.json().await.unwrap();
        assert!(err["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{err}");
        assert!(err["error"]["type"].is_string(), "{err}");
        if !param.is_empty() {
            assert_eq!(err["error"]["param"], param, "{err}");
        }
    }
    for auth in [None, Some("Bearer wrong"), Some("Basic abc")] {
        let mut req = app.http.post(&url).json(&hello("fake/m1"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["error"]["type"], "authentication_error");
    }
    let r = app.http.get(format!("{}/v1/nope", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(fake.total_calls(), 0, "no bad request reached the provider");
    // Requests that reached the gateway are logged as errors; the rest are only traced.
    let usage = app.usage("").await;
    assert_eq!(usage["total"]["successes"], 0);
}

#[tokio::test]
async fn anthropic_and_openai_keys_from_the_sdk_variables_serve_their_models() {
    let fake = FakeProvider::start().await;
    let env = [
        ("ANTHROPIC_API_KEY", "sk-ok-anthropic-1111"),
        ("ANTHROPIC_BASE_URL", fake.url.as_str()),
        ("OPENAI_API_KEY", "sk-ok-openai-22222"),
        ("OPENAI_BASE_URL", fake.url.as_str()),
    ];
    let app = spawn_app(FAST_RETRY, &env).await;
    let r = app.chat(hello("claude-sonnet-4-5")).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["usage"]["prompt_tokens"], 3 + 1111 + 418);
    assert_eq!(fake.calls("sk-ok-anthropic-1111"), 1);
    assert_eq!(fake.last_body()["max_tokens"], 4096);

    let r = app.chat(hello("openai/gpt-4o")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(fake.calls("sk-ok-openai-22222"), 1);

    // A request Maestro refuses for this provider before sending it (the legacy `functions`):
    // the caller's 400, logged as such, never a failed attempt on the key.
    let mut legacy = hello("claude-sonnet-4-5");
    legacy["functions"] = json!([{"name": "f", "parameters": {"type": "object"}}]);
    let r = app.chat(legacy).await;
    assert_eq!((r.status().as_u16(), header(&r, "x-should-retry")), (400, "false".to_string()));
    assert_eq!(fake.calls("sk-ok-anthropic-1111"), 1, "nothing was sent");
    let logs = app.admin_get("/api/admin/ai-stats/logs?provider=anthropic").await;
    let refused =
        logs["data"].as_array().unwrap().iter().find(|l| l["http_status"] == 400).expect("the refusal is logged");
    assert_eq!(refused["attempts"], 0, "{refused}");
    // No silent drops: `n` > 1 and `logprobs` are refused by name for Claude, unless the caller
    // asks for them to be dropped; an OpenAI target gets them, and never Maestro's own switch.
    for (field, value) in [("n", json!(2)), ("logprobs", json!(true)), ("top_logprobs", json!(3))] {
        let mut asked = hello("claude-sonnet-4-5");
        asked[field] = value.clone();
        let r = app.chat(asked.clone()).await;
        assert_eq!(r.status(), 400, "{field}");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["error"]["param"], if field == "n" { "n" } else { "logprobs" }, "{err}");
        asked["drop_params"] = json!(true);
        let r = app.chat(asked).await;
        assert_eq!(r.status(), 200, "{field} dropped");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["choices"].as_array().map(Vec::len), Some(1));
    }
    let mut openai = hello("openai/gpt-4o");
    openai["n"] = json!(2);
    openai["drop_params"] = json!(true);
    assert_eq!(app.chat(openai).await.status(), 200);
    let sent = fake.last_body();
    assert_eq!((sent["n"].as_u64(), sent.get("drop_params")), (Some(2), None), "{sent}");

    let by_key = app.usage("provider=anthropic&group_by=key").await;
    let attempt_errors: u64 =
        by_key["groups"].as_array().unwrap().iter().map(|g| g["usage"]["attempt_errors"].as_u64().unwrap_or(0)).sum();
    assert_eq!(attempt_errors, 0, "{by_key}");

    // Seed prices: claude-sonnet-4-5 ($3 in, $0.30 cache read, $3.75 cache write, $15 out) → 2405;
    // gpt-4o ($2.50 in, $10 out) on 19 + 10 tokens → 148.
    let usage = app.usage("group_by=provider").await;
    let groups = usage["groups"].as_array().unwrap();
    let cost = |p: &str| groups.iter().find(|g| g["group"] == p).unwrap()["usage"]["cost_micros"].as_u64().unwrap();
    // Four Claude answers (the first and three with dropped parameters), two gpt-4o ones; the
    // refusals cost nothing.
    assert_eq!(cost("anthropic"), 4 * 2405);
    assert_eq!(cost("openai"), 2 * 148);

    let models: Value = app
        .http
        .get(format!("{}/v1/models", app.url))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
    assert!(
        ids.contains(&"openai/gpt-4o") && ids.contains(&"deepseek/deepseek-v4-flash") && ids.contains(&"demo/echo"),
        "{ids:?}"
    );
    assert!(ids.len() >= 17, "seed has at least 16 models plus the demo");
}

#[tokio::test]
async fn count_tokens_is_exact_for_openai_and_flagged_as_an_estimate_elsewhere() {
    let app = spawn_app(FAST_RETRY, &[]).await;
    let count = |model: &str| {
        let body = json!({"model": model, "messages": [
            {"role": "developer", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello!"}
        ]});
        app.http.post(format!("{}/api/ai/chat/count-tokens", app.url)).bearer_auth(&app.token).json(&body).send()
    };
    let exact: Value = count("openai/gpt-4o").await.unwrap().json().await.unwrap();
    assert_eq!(exact["prompt_tokens"], 19);
    assert_eq!(exact["estimated"], false);
    let est: Value = count("anthropic/claude-sonnet-4-5").await.unwrap().json().await.unwrap();
    assert_eq!(est["estimated"], true);

    let available: Value = app
        .http
        .post(format!("{}/api/ai/chat/available-providers", app.url))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let codes: Vec<&str> =
        available["providers"].as_array().unwrap().iter().filter_map(|p| p["code"].as_str()).collect();
    assert_eq!(codes, ["demo"], "only the demo has a usable key");
}

#[tokio::test]
async fn a_retry_goes_to_a_healthy_key_instead_of_the_failing_one() {
    let fake = FakeProvider::start().await;
    // One retry, and three failures before a key is cooled down: before, both tries went to the
    // failing key and the caller got a 502 while the healthy key sat idle.
    let cfg = format!(
        r#"
[retry]
max_retries = 1
failure_threshold = 3
base_delay_ms = 1
max_delay_ms = 5
[[providers]]
code = "fake"
kind = "openai_compatible"
base_url = "{url}"
[[models]]
provider = "fake"
model = "m1"
input_price = 1
output_price = 1
[[keys]]
provider = "fake"
name = "failing"
secret = "sk-500-aaaaaaaaaaaa"
priority = 10
[[keys]]
provider = "fake"
name = "healthy"
secret = "sk-ok-bbbbbbbbbbbb"
priority = 1
"#,
        url = fake.url
    );
    let app = spawn_app(&cfg, &[]).await;
    let r = app.chat(hello("fake/m1")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-maestro-attempts"], "2");
    assert_eq!((fake.calls("sk-500-aaaaaaaaaaaa"), fake.calls("sk-ok-bbbbbbbbbbbb")), (1, 1));

    // Each key's stats show what it did: the failing key its failed try, the call on the other.
    let failing = app.usage("key_id=fake-failing").await;
    assert_eq!(failing["total"]["requests"], 0);
    assert_eq!(
        (failing["total"]["attempts"].as_u64(), failing["total"]["attempt_errors"].as_u64()),
        (Some(1), Some(1))
    );
    let healthy = app.usage("key_id=fake-healthy").await;
    assert_eq!(healthy["total"]["requests"], 1);
    assert_eq!(
        (healthy["total"]["attempts"].as_u64(), healthy["total"]["attempt_errors"].as_u64()),
        (Some(1), Some(0))
    );
}

#[tokio::test]
async fn drop_params_set_on_a_model_or_a_route_drops_what_the_provider_cannot_honour() {
    let fake = FakeProvider::start().await;
    let extra = format!(
        r#"
[[providers]]
code = "claude"
kind = "anthropic"
base_url = "{url}"

[[models]]
provider = "claude"
model = "lenient"
drop_params = true

[[models]]
provider = "claude"
model = "strict"

[[keys]]
provider = "claude"
name = "k"
secret = "sk-ok-cccccccccccc"

[[routes]]
name = "forgiving"
targets = ["claude/strict"]
drop_params = true
"#,
        url = fake.url
    );
    let app = spawn_app(&config(&fake.url, &[("k", "sk-ok-aaaaaaaaaaaa", 1)], &extra), &[]).await;
    let asking = |model: &str, field: &str, value: Value| {
        let mut body = hello(model);
        body[field] = value;
        body
    };
    for (field, value) in [("n", json!(3)), ("logprobs", json!(true))] {
        let r = app.chat(asking("claude/strict", field, value.clone())).await;
        assert_eq!(r.status(), 400, "{field} to a model without drop_params");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["error"]["param"], field, "{err}");
        for model in ["claude/lenient", "forgiving"] {
            let r = app.chat(asking(model, field, value.clone())).await;
            assert_eq!(r.status(), 200, "{field} to {model}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["choices"].as_array().map(Vec::len), Some(1), "{body}");
            let sent = fake.last_body();
            assert!(sent.get(field).is_none() && sent.get("drop_params").is_none(), "{sent}");
        }
    }

    // The setting is visible to admins, and `/v1/models` says when each model entered the
    // catalog (a route: its newest target).
    let models = app.admin_get("/api/admin/ai-models?provider=claude").await;
    let lenient = models["data"].as_array().unwrap().iter().find(|m| m["model_code"] == "lenient").unwrap();
    assert_eq!(lenient["drop_params"], true, "{lenient}");
    let routes = app.admin_get("/api/admin/ai-routes").await;
    assert_eq!(routes["data"][0]["drop_params"], true, "{routes}");
    let listed = app.admin_get("/v1/models").await;
    let created = |id: &str| {
        listed["data"].as_array().unwrap().iter().find(|m| m["id"] == id).and_then(|m| m["created"].as_i64())
    };
    let now = maestro_shared::time::now_ms() / 1000;
    let strict = created("claude/strict").unwrap();
    assert!((now - 600..=now).contains(&strict), "{strict} vs {now}");
    assert_eq!(created("forgiving"), Some(strict));
}

#[tokio::test]
async fn deepseek_gets_structured_output_as_json_mode_with_the_schema_in_a_system_message() {
    let fake = FakeProvider::start().await;
    let extra = format!(
        r#"
[[providers]]
code = "ds"
kind = "deepseek"
base_url = "{url}"

[[models]]
provider = "ds"
model = "deepseek-chat"

[[keys]]
provider = "ds"
name = "k"
secret = "sk-ok-dddddddddddd"
"#,
        url = fake.url
    );
    let app = spawn_app(&config(&fake.url, &[("k", "sk-ok-aaaaaaaaaaaa", 1)], &extra), &[]).await;
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]});
    let mut asked = hello("ds/deepseek-chat");
    asked["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "person", "schema": schema}});
    let r = app.chat(asked).await;
    assert_eq!(r.status(), 200);
    let sent = fake.last_body();
    assert_eq!(sent["response_format"], json!({"type": "json_object"}), "{sent}");
    let instruction = sent["messages"][0]["content"].as_str().unwrap_or_default();
    assert_eq!(sent["messages"][0]["role"], "system", "{sent}");
    assert!(instruction.contains("JSON") && instruction.contains(&schema.to_string()), "{instruction}");
    assert_eq!(sent["messages"][1]["content"], "Hello!");

    // The same request to an OpenAI-format provider goes as it came.
    let mut asked = hello("fake/m1");
    asked["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "person", "schema": schema}});
    assert_eq!(app.chat(asked.clone()).await.status(), 200);
    assert_eq!(fake.last_body()["response_format"], asked["response_format"]);
    assert_eq!(fake.last_body()["messages"].as_array().map(Vec::len), Some(1));
}
