//! Anthropic's Messages API through the local runner: `/v1/messages` (streaming and not) and
//! `/v1/messages/count_tokens`, against Anthropic-format and OpenAI-format fake providers that
//! answer with recorded fixtures; tool round trips; errors in Anthropic's shape; one log event
//! per call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{FAST_RETRY, FakeProvider, TestApp, spawn_app};

/// Providers `claude` (Anthropic format) and `gpt` (OpenAI format) at the fake, with models `c1`
/// and `g1` (tools and vision on), one key each, and `extra` TOML.
fn config(url: &str, claude_key: &str, gpt_key: &str, extra: &str) -> String {
    format!(
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
supports_tools = true
supports_vision = true
input_price = 3000000
output_price = 15000000
[[models]]
provider = "gpt"
model = "g1"
supports_tools = true
supports_vision = true
input_price = 2500000
output_price = 10000000
[[keys]]
provider = "claude"
name = "k"
secret = "{claude_key}"
[[keys]]
provider = "gpt"
name = "k"
secret = "{gpt_key}"
{extra}"#
    )
}

async fn app_with(claude_key: &str, gpt_key: &str, extra: &str) -> (FakeProvider, TestApp) {
    let fake = FakeProvider::start().await;
    let app = spawn_app(&config(&fake.url, claude_key, gpt_key, extra), &[]).await;
    (fake, app)
}

fn hello(model: &str) -> Value {
    json!({"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": "Hello!"}]})
}

fn streamed(model: &str) -> Value {
    let mut body = hello(model);
    body["stream"] = json!(true);
    body
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// `(event, data)` of an Anthropic event stream; every `event:` line must name its data's type.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str::<Value>(d).unwrap());
                }
            }
            let (name, data) = (name.expect("event line"), data.expect("data line"));
            assert_eq!(data["type"], name.as_str());
            (name, data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

fn text_of(events: &[(String, Value)]) -> String {
    events.iter().filter_map(|(_, d)| d["delta"]["text"].as_str()).collect()
}

#[tokio::test]
async fn claude_answers_a_messages_request_and_the_call_is_logged_once() {
    let (fake, app) = app_with("sk-ok-aaaaaaaaaaaa", "sk-ok-bbbbbbbbbbbb", "").await;
    let mut request = hello("claude/c1");
    request["system"] = json!([{"type": "text", "text": "Be brief."}]);
    request["stop_sequences"] = json!(["END"]);
    request["metadata"] = json!({"user_id": "end-user-9"});
    let r = app.messages(request).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-maestro-provider"), "claude");
    assert!(header(&r, "request-id").starts_with("req_"));
    assert_eq!(header(&r, "request-id"), header(&r, "x-request-id"));
    let m: Value = r.json().await.unwrap();

    // The recorded Claude message, back in Anthropic's shape after the gateway's round trip.
    assert_eq!(m["id"], "msg_01KPaKTJSqAKoZri7Ujrny58");
    assert_eq!((m["type"].as_str(), m["role"].as_str()), (Some("message"), Some("assistant")));
    assert_eq!(m["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(m["content"][0]["type"], "text");
    assert!(m["content"][0]["text"].as_str().unwrap().starts_with("Python is a beginner-friendly"));
    assert_eq!(m["stop_reason"], "end_turn");
    // 3 input + 418 cache writes are input here; 1111 cache reads are reported apart.
    assert_eq!(m["usage"], json!({"input_tokens": 421, "output_tokens": 33, "cache_read_input_tokens": 1111}));

    // What reached the provider: Anthropic's format again, with the caller's fields.
    let upstream = fake.last_body();
    assert_eq!(upstream["model"], "c1");
    assert_eq!(upstream["system"], "Be brief.");
    assert_eq!(upstream["max_tokens"], 256);
    assert_eq!(upstream["stop_sequences"], json!(["END"]));
    assert_eq!(upstream["metadata"]["user_id"], "end-user-9");
    assert_eq!(upstream["messages"], json!([{"role": "user", "content": "Hello!"}]));

    let usage = app.usage("").await;
    assert_eq!(usage["total"]["requests"], 1);
    assert_eq!(usage["total"]["successes"], 1);
    assert_eq!(usage["total"]["prompt_tokens"], 1532);
    assert_eq!(usage["total"]["completion_tokens"], 33);
    let logs = app.admin_get("/api/admin/ai-stats/logs").await;
    assert_eq!(logs["data"].as_array().unwrap().len(), 1);
    assert_eq!(logs["data"][0]["user_id"], "user-1");
    assert_eq!(logs["data"][0]["provider"], "claude");
}

#[tokio::test]
async fn claude_streams_as_anthropic_events_and_the_stream_is_logged_once() {
    let (_fake, app) = app_with("sk-ok-aaaaaaaaaaaa", "sk-ok-bbbbbbbbbbbb", "").await;
    let r = app.messages(streamed("claude/c1")).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").starts_with("text/event-stream"));
    let events = events(&r.text().await.unwrap());
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events[0].1["message"]["id"], "msg_013nnniYDrJDocdy5nrMU7cH");
    assert_eq!(text_of(&events), "[12345,67890]");
    let delta = &events[7].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"], json!({"input_tokens": 135, "output_tokens": 10, "cache_read_input_tokens": 0}));

    let usage = app.usage("").await;
    assert_eq!(usage["total"]["requests"], 1);
    assert_eq!(usage["total"]["successes"], 1);
    assert_eq!(usage["total"]["prompt_tokens"], 135);
    assert_eq!(usage["total"]["completion_tokens"], 10);
    let logs = app.admin_get("/api/admin/ai-stats/logs").await;
    assert_eq!(logs["data"][0]["stream"], true);
}

#[tokio::test]
async fn an_openai_format_provider_answers_anthropic_callers_streaming_and_not() {
    let (fake, app) = app_with("sk-ok-aaaaaaaaaaaa", "sk-ok-bbbbbbbbbbbb", "").await;
    let mut request = hello("gpt/g1");
    request["system"] = json!("Be brief.");
    let r = app.messages(request).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-maestro-provider"), "gpt");
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["content"], json!([{"type": "text", "text": "Hello! How can I assist you today?"}]));
    assert_eq!(m["id"], "msg_chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
    assert_eq!(m["stop_reason"], "end_turn");
    assert_eq!(m["usage"]["input_tokens"], 19);
    assert_eq!(m["usage"]["output_tokens"], 10);
    let upstream = fake.last_body();
    assert_eq!(
        upstream["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}])
    );

    let r = app.messages(streamed("gpt/g1")).await;
    assert_eq!(r.status(), 200);
    let events = events(&r.text().await.unwrap());
    assert_eq!(names(&events).first(), Some(&"message_start"));
    assert_eq!(names(&events).last(), Some(&"message_stop"));
    assert_eq!(text_of(&events), "six");
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["usage"]["input_tokens"], 33);
    assert_eq!(delta.1["usage"]["output_tokens"], 10);

    let usage = app.usage("").await;
    assert_eq!(usage["total"]["requests"], 2);
    assert_eq!(usage["total"]["successes"], 2);
    assert_eq!(usage["total"]["prompt_tokens"], 19 + 33);
}

#[tokio::test]
async fn structured_outputs_reach_both_provider_formats() {
    let (fake, app) = app_with("sk-ok-aaaaaaaaaaaa", "sk-ok-bbbbbbbbbbbb", "").await;
    let schema = json!({"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"],
        "additionalProperties": false});
    let mut request = hello("gpt/g1");
    request["output_format"] = json!({"type": "json_schema", "schema": schema});
    let r = app.messages(request).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        fake.last_body()["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}})
    );
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["content"][0]["type"], "text");

    // Claude gets the schema as its forced tool `output` (the recorded answer is plain text).
    let mut request = hello("claude/c1");
    request["output_config"] = json!({"format": {"type": "json_schema", "schema": schema}});
    let r = app.messages(request).await;
    assert_eq!(r.status(), 200);
    let upstream = fake.last_body();
    assert_eq!(upstream["tools"][0]["name"], "output");
    assert_eq!(upstream["tools"][0]["input_schema"], schema);
    assert_eq!(upstream["tool_choice"], json!({"type": "tool", "name": "output"}));
    assert!(upstream.get("output_config").is_none());

    // A bad schema is the caller's 400, naming the field.
    let mut request = hello("claude/c1");
    request["output_format"] = json!({"type": "json_schema"});
    let r = app.messages(request).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("output_format.schema:"));
}

fn weather_tools() -> Value {
    json!([{"name": "get_weather", "description": "Current weather",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}])
}

#[tokio::test]
async fn a_tool_use_round_trip_through_an_openai_format_provider() {
    let (fake, app) = app_with("sk-ok-aaaaaaaaaaaa", "sk-tool-bbbbbbbbbbbb", "").await;
    let mut request = hello("gpt/g1");
    request["tools"] = weather_tools();
    request["tool_choice"] = json!({"type": "any"});
    let r = app.messages(request.clone()).await;
    assert_eq!(r.status(), 200);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(
        m["content"],
        json!([{"type": "tool_use", "id": "call_abc123", "name": "get_current_weather", "input": {"location": "Boston, MA"}}])
    );
    let upstream = fake.last_body();
    assert_eq!(upstream["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(upstream["tools"][0]["function"]["parameters"]["required"], json!(["location"]));
    assert_eq!(upstream["tool_choice"], "required");

    // The caller runs the tool and sends the result back.
    request["messages"] = json!([
        {"role": "user", "content": "Hello!"},
        {"role": "assistant", "content": m["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_abc123", "content": "12°C and sunny"}]}
    ]);
    let r = app.messages(request).await;
    assert_eq!(r.status(), 200);
    let upstream = fake.last_body();
    let sent = upstream["messages"].as_array().unwrap();
    assert_eq!(sent[1]["role"], "assistant");
    assert_eq!(sent[1]["tool_calls"][0]["id"], "call_abc123");
    assert_eq!(sent[1]["tool_calls"][0]["function"]["arguments"], r#"{"location":"Boston, MA"}"#);
    assert_eq!(sent[2], json!({"role": "tool", "tool_call_id": "call_abc123", "content": "12°C and sunny"}));

    // Streamed, the recorded tool-call stream arrives as a tool_use block with input_json_delta.
    let mut streaming = hello("gpt/g1");
    streaming["stream"] = json!(true);
    streaming["tools"] = weather_tools();
    let r = app.messages(streaming).await;
    let events = events(&r.text().await.unwrap());
    let start = events.iter().find(|(n, _)| n == "content_block_start").unwrap();
    assert_eq!(start.1["content_block"]["type"], "tool_use");
    assert_eq!(start.1["content_block"]["name"], "get_capital");
    let json: String = events.iter().filter_map(|(_, d)| d["delta"]["partial_json"].as_str()).collect();
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), json!({"country": "UK"}));
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
    assert_eq!(app.usage("").await["total"]["requests"], 3);
}

#[tokio::test]
async fn a_tool_use_round_trip_through_claude() {
    let (fake, app) = app_with("sk-tool-aaaaaaaaaaaa", "sk-ok-bbbbbbbbbbbb", "").await;
    let mut request = hello("claude/c1");
    request["tools"] = weather_tools();
    request["tool_choice"] = json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true});
    let r = app.messages(request.clone()).await;
    assert_eq!(r.status(), 200);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(
        m["content"],
        json!([{"type": "tool_use", "id": "toolu_01GHndag5wQmbzNihYmV2UBj", "name": "get_weather",
            "input": {"location": "San Francisco, CA", "units": "c"}}])
    );
    let upstream = fake.last_body();
    assert_eq!(upstream["tools"], weather_tools());
    assert_eq!(
        upstream["tool_choice"],
        json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true})
    );

    request["messages"] = json!([
        {"role": "user", "content": "Hello!"},
        {"role": "assistant", "content": m["content"]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01GHndag5wQmbzNihYmV2UBj", "content": [{"type": "text", "text": "15C"}]},
            {"type": "text", "text": "Thanks"}]}
    ]);
    let r = app.messages(request).await;
    assert_eq!(r.status(), 200);
    // Claude gets back exactly Anthropic's turns: the tool_use, then the result with the text.
    let sent = fake.last_body()["messages"].clone();
    assert_eq!(sent[1]["content"][0]["type"], "tool_use");
    assert_eq!(sent[1]["content"][0]["input"], json!({"location": "San Francisco, CA", "units": "c"}));
    assert_eq!(
        sent[2]["content"],
        json!([{"type": "tool_result", "tool_use_id": "toolu_01GHndag5wQmbzNihYmV2UBj", "content": "15C"}, {"type": "text", "text": "Thanks"}])
    );

    // The recorded tool-use stream, translated to OpenAI chunks by the provider and back.
    let mut streaming = hello("claude/c1");
    streaming["stream"] = json!(true);
    streaming["tools"] = weather_tools();
    let events = events(&app.messages(streaming).await.text().await.unwrap());
    let start = events.iter().find(|(n, _)| n == "content_block_start").unwrap();
    assert_eq!(start.1["content_block"]["id"], "toolu_01TJoxvFknVdnV9XpWFPaRmY");
    let json: String = events.iter().filter_map(|(_, d)| d["delta"]["partial_json"].as_str()).collect();
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), json!({"location": "San Francisco, CA", "units": "f"}));
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta.1["usage"]["output_tokens"], 74);
}

#[tokio::test]
async fn errors_come_in_anthropics_shape_with_the_same_status_codes() {
    let limited = r#"
[[providers]]
code = "tight"
kind = "openai_compatible"
base_url = "BASE"
[[models]]
provider = "tight"
model = "t1"
[[keys]]
provider = "tight"
name = "one-a-minute"
secret = "sk-ok-cccccccccccc"
rpm = 1
[[providers]]
code = "picky"
kind = "openai_compatible"
base_url = "BASE"
[[models]]
provider = "picky"
model = "p1"
[[keys]]
provider = "picky"
name = "k"
secret = "sk-400-dddddddddddd"
"#;
    let fake = FakeProvider::start().await;
    let app = spawn_app(
        &config(&fake.url, "sk-529-aaaaaaaaaaaa", "sk-ok-bbbbbbbbbbbb", &limited.replace("BASE", &fake.url)),
        &[],
    )
    .await;
    let anthropic_error = |body: &Value, kind: &str| {
        assert_eq!(body["type"], "error", "{body}");
        assert_eq!(body["error"]["type"], kind, "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(body.get("choices").is_none());
    };
    let url = format!("{}/v1/messages", app.url);

    // 401: no token, a bad token (either header).
    let r = app.http.post(&url).json(&hello("gpt/g1")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    anthropic_error(&r.json().await.unwrap(), "authentication_error");
    let r = app.http.post(&url).header("x-api-key", "not-a-token").json(&hello("gpt/g1")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    anthropic_error(&r.json().await.unwrap(), "authentication_error");
    let r = app.http.post(&url).bearer_auth(&app.token).json(&hello("gpt/g1")).send().await.unwrap();
    assert_eq!(r.status(), 200, "a bearer token works as well");

    // 400: max_tokens missing, a body that is not JSON, a bad field (each logged).
    let mut no_max = hello("gpt/g1");
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let r = app.messages(no_max).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    anthropic_error(&body, "invalid_request_error");
    assert_eq!(body["error"]["message"], "max_tokens: Field required");
    let r = app.http.post(&url).header("x-api-key", &app.token).body("{oops").send().await.unwrap();
    assert_eq!(r.status(), 400);
    anthropic_error(&r.json().await.unwrap(), "invalid_request_error");
    let mut bad_role = hello("gpt/g1");
    bad_role["messages"][0]["role"] = json!("system");
    let r = app.messages(bad_role).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().starts_with("messages.0.role:"));

    // 400 from the provider, passed on.
    let r = app.messages(hello("picky/p1")).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    anthropic_error(&body, "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("does not support 'developer'"));
    assert!(body["request_id"].as_str().unwrap().starts_with("req_"));

    // 404: an unknown model.
    let r = app.messages(hello("nope/never")).await;
    assert_eq!(r.status(), 404);
    anthropic_error(&r.json().await.unwrap(), "not_found_error");

    // 429: the key allows one request a minute.
    assert_eq!(app.messages(hello("tight/t1")).await.status(), 200);
    let r = app.messages(hello("tight/t1")).await;
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").parse::<u64>().unwrap() >= 1);
    anthropic_error(&r.json().await.unwrap(), "rate_limit_error");

    // 503 overloaded: Claude answers 529 to every try; Maestro's retries are spent, so the
    // client is told not to retry. Three failures in a row rest the key, so a stream asked for
    // next fails before its first byte with a JSON 503 (no retry either: the key rests 30 s).
    let r = app.messages(hello("claude/c1")).await;
    assert_eq!((r.status().as_u16(), header(&r, "x-should-retry")), (503, "false".to_string()));
    anthropic_error(&r.json().await.unwrap(), "overloaded_error");
    let r = app.messages(streamed("claude/c1")).await;
    assert_eq!((r.status().as_u16(), header(&r, "x-should-retry")), (503, "false".to_string()));
    assert!(header(&r, "content-type").starts_with("application/json"));
    assert!(header(&r, "retry-after").parse::<u64>().unwrap() >= 29);
    anthropic_error(&r.json().await.unwrap(), "overloaded_error");

    // Every authenticated call is one log event, the refused bodies too: bearer 200, three
    // refused bodies 400, picky 400, unknown 404, tight 200 + 429, claude 503 + 503.
    let usage = app.usage("").await;
    assert_eq!(usage["total"]["requests"], 10);
    assert_eq!(usage["total"]["successes"], 2);
    assert_eq!(usage["total"]["errors"], 8);
}

#[tokio::test]
async fn count_tokens_counts_the_translated_prompt() {
    let (fake, app) = app_with("sk-ok-aaaaaaaaaaaa", "sk-ok-bbbbbbbbbbbb", "").await;
    let url = format!("{}/v1/messages/count_tokens", app.url);
    let count = |model: &str| {
        app.http
            .post(&url)
            .header("x-api-key", &app.token)
            .json(&json!({"model": model, "system": "You are a helpful assistant.", "messages": [{"role": "user", "content": "Hello!"}]}))
            .send()
    };
    // gpt-4o is an OpenAI model: tiktoken's exact count, the same as the OpenAI-shaped route's
    // (OpenAI's cookbook: 19 tokens for this system + user pair).
    let r = count("openai/gpt-4o").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"input_tokens": 19}));
    let r = count("claude/c1").await.unwrap();
    assert!(r.json::<Value>().await.unwrap()["input_tokens"].as_u64().unwrap() > 0);

    let r = count("nope/never").await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["type"], "not_found_error");
    let r = app.http.post(&url).json(&json!({"model": "claude/c1", "messages": []})).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["type"], "authentication_error");
    // Counting is no provider call, and no log event.
    assert_eq!(fake.total_calls(), 0);
    assert_eq!(app.usage("").await["total"]["requests"], 0);
}

#[tokio::test]
async fn the_demo_model_answers_through_the_messages_endpoint() {
    let app = spawn_app(FAST_RETRY, &[]).await;
    let r = app.messages(hello("demo/echo")).await;
    assert_eq!(r.status(), 200);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["content"], json!([{"type": "text", "text": "Echo from Maestro's demo model: Hello!"}]));
    assert_eq!(m["model"], "echo");
    assert!(m["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let r = app.messages(streamed("demo/echo")).await;
    let events = events(&r.text().await.unwrap());
    assert_eq!(text_of(&events), "Echo from Maestro's demo model: Hello!");
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert!(delta.1["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let usage = app.usage("provider=demo").await;
    assert_eq!(usage["total"]["requests"], 2);
    assert_eq!(usage["total"]["successes"], 2);
}

#[tokio::test]
async fn a_caller_that_hangs_up_a_messages_stream_still_produces_one_log_event() {
    let (_fake, app) = app_with("sk-drip-aaaaaaaaaaaa", "sk-ok-bbbbbbbbbbbb", "").await;
    let mut r = app.messages(streamed("claude/c1")).await;
    assert_eq!(r.status(), 200);
    let mut seen = String::new();
    while !seen.contains("text_delta") {
        let chunk = r.chunk().await.unwrap().expect("stream still open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(r);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let usage = app.usage("").await;
    assert_eq!(usage["total"]["requests"], 1, "one event, not zero, not two");
    assert_eq!(usage["total"]["errors"], 1);
    let logs = app.admin_get("/api/admin/ai-stats/logs").await;
    assert_eq!(logs["data"][0]["error_code"], "client_disconnected");
}
