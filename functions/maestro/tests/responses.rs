//! OpenAI's Responses API through the local runner: `/v1/responses` (streaming and not) against
//! Anthropic-format and OpenAI-format fake providers answering with recorded fixtures; function
//! tool round trips; images; the 400s for state and built-in tools; one call-log entry per call,
//! `request_type` `responses`, with its cost.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use crate::support;

use serde_json::{Value, json};
use support::{FAST_RETRY, FakeProvider, TestApp, spawn_app};

/// Providers `claude` (Anthropic format) and `gpt` (OpenAI format) at the fake, with models `c1`
/// and `g1` (tools and vision on), one key each.
fn config(url: &str, claude_key: &str, gpt_key: &str) -> String {
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
"#
    )
}

async fn app_with(claude_key: &str, gpt_key: &str) -> (FakeProvider, TestApp) {
    let fake = FakeProvider::start().await;
    let app = spawn_app(&config(&fake.url, claude_key, gpt_key), &[]).await;
    (fake, app)
}

async fn post(app: &TestApp, body: &Value) -> reqwest::Response {
    app.http.post(format!("{}/v1/responses", app.url)).bearer_auth(&app.token).json(body).send().await.unwrap()
}

fn hello(model: &str) -> Value {
    json!({"model": model, "input": "Hello!"})
}

fn streamed(model: &str) -> Value {
    json!({"model": model, "input": "Hello!", "stream": true})
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// The events of a Responses stream: each `event:` line names its data's `type`, and the
/// sequence numbers count from 0.
fn parse_events(body: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for block in body.split("\n\n").filter(|b| !b.trim().is_empty()) {
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
        assert_eq!(data["sequence_number"], out.len());
        out.push(data);
    }
    out
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn text_of(events: &[Value]) -> String {
    events.iter().filter(|e| e["type"] == "response.output_text.delta").map(|e| e["delta"].as_str().unwrap()).collect()
}

/// The call log entry of a request id.
async fn log_of(app: &TestApp, request_id: &str) -> Value {
    assert!(app.app.wait_for_logs(std::time::Duration::from_secs(5)).await, "log events recorded");
    let logs = app.admin_get(&format!("/api/admin/ai-stats/logs?request_id={request_id}")).await;
    assert_eq!(logs["data"].as_array().unwrap().len(), 1, "{logs}");
    logs["data"][0].clone()
}

#[tokio::test]
async fn both_provider_formats_answer_a_responses_request_and_the_calls_are_logged_with_cost() {
    let (fake, app) = app_with("sk-ok-aaaaaaaaaaaa", "sk-ok-bbbbbbbbbbbb").await;

    // Claude: instructions and input reach it in Anthropic's format.
    let mut request = hello("claude/c1");
    request["instructions"] = json!("Be brief.");
    request["max_output_tokens"] = json!(256);
    request["store"] = json!(true);
    let r = post(&app, &request).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-maestro-provider"), "claude");
    let request_id = header(&r, "x-request-id");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], format!("resp_{}", request_id.strip_prefix("req_").unwrap()));
    assert_eq!((body["object"].as_str(), body["status"].as_str()), (Some("response"), Some("completed")));
    assert_eq!(body["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(body["instructions"], "Be brief.");
    assert_eq!((body["max_output_tokens"].as_u64(), body["store"].as_bool()), (Some(256), Some(false)));
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 1);
    assert_eq!((output[0]["type"].as_str(), output[0]["role"].as_str()), (Some("message"), Some("assistant")));
    assert!(output[0]["id"].as_str().unwrap().starts_with("msg_"));
    assert!(output[0]["content"][0]["text"].as_str().unwrap().starts_with("Python is a beginner-friendly"));
    // 3 input + 418 cache writes + 1111 cache reads, all input tokens here.
    assert_eq!(body["usage"]["input_tokens"], 1532);
    assert_eq!(body["usage"]["input_tokens_details"]["cached_tokens"], 1111);
    assert_eq!(
        (body["usage"]["output_tokens"].as_u64(), body["usage"]["total_tokens"].as_u64()),
        (Some(33), Some(1565))
    );
    let upstream = fake.last_body();
    assert_eq!((upstream["model"].as_str(), upstream["system"].as_str()), (Some("c1"), Some("Be brief.")));
    assert_eq!(upstream["max_tokens"], 256);
    assert_eq!(upstream["messages"], json!([{"role": "user", "content": "Hello!"}]));
    let log = log_of(&app, &request_id).await;
    assert_eq!((log["request_type"].as_str(), log["provider"].as_str()), (Some("responses"), Some("claude")));
    assert!(log["cost_micros"].as_u64().unwrap() > 0);

    // An OpenAI-format provider, with an image.
    let request = json!({"model": "gpt/g1", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"}]}]});
    let r = post(&app, &request).await;
    assert_eq!(r.status(), 200);
    let request_id = header(&r, "x-request-id");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["output"][0]["content"][0]["text"], "Hello! How can I assist you today?");
    assert_eq!(body["model"], "gpt-5.4");
    assert_eq!((body["usage"]["input_tokens"].as_u64(), body["usage"]["output_tokens"].as_u64()), (Some(19), Some(10)));
    assert_eq!(
        fake.last_body()["messages"][0]["content"][1],
        json!({"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}})
    );
    let log = log_of(&app, &request_id).await;
    assert_eq!(log["request_type"], "responses");
    // 19 × 2.5 + 10 × 10 µUSD = 147.5, rounded half up.
    assert_eq!((log["cost_micros"].as_u64(), log["prompt_tokens"].as_u64()), (Some(148), Some(19)));

    let usage = app.usage("").await;
    assert_eq!((usage["total"]["requests"].as_u64(), usage["total"]["successes"].as_u64()), (Some(2), Some(2)));
}

#[tokio::test]
async fn both_provider_formats_stream_the_responses_events_and_the_streams_are_logged() {
    let (_fake, app) = app_with("sk-ok-aaaaaaaaaaaa", "sk-ok-bbbbbbbbbbbb").await;
    let r = post(&app, &streamed("claude/c1")).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").starts_with("text/event-stream"));
    let request_id = header(&r, "x-request-id");
    let events = parse_events(&r.text().await.unwrap());
    let mut expected =
        vec!["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"];
    let deltas = events.iter().filter(|e| e["type"] == "response.output_text.delta").count();
    expected.extend(std::iter::repeat_n("response.output_text.delta", deltas));
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(types(&events), expected);
    assert_eq!(text_of(&events), "[12345,67890]");
    let done = &events.last().unwrap()["response"];
    assert_eq!(done["id"], events[0]["response"]["id"]);
    assert_eq!(done["id"], format!("resp_{}", request_id.strip_prefix("req_").unwrap()));
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], "[12345,67890]");
    assert_eq!(
        done["usage"],
        json!({"input_tokens": 135, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 10,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 145})
    );
    let log = log_of(&app, &request_id).await;
    assert_eq!((log["request_type"].as_str(), log["stream"].as_bool()), (Some("responses"), Some(true)));
    assert_eq!((log["prompt_tokens"].as_u64(), log["completion_tokens"].as_u64()), (Some(135), Some(10)));
    assert!(log["cost_micros"].as_u64().unwrap() > 0);

    let r = post(&app, &streamed("gpt/g1")).await;
    assert_eq!(r.status(), 200);
    let events = parse_events(&r.text().await.unwrap());
    assert_eq!(text_of(&events), "six");
    let done = events.last().unwrap();
    assert_eq!(done["type"], "response.completed");
    assert_eq!(
        (done["response"]["usage"]["input_tokens"].as_u64(), done["response"]["usage"]["output_tokens"].as_u64()),
        (Some(33), Some(10))
    );
    assert_eq!(app.usage("").await["total"]["successes"], 2);
}

fn weather_tool() -> Value {
    json!([{"type": "function", "name": "get_weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}])
}

#[tokio::test]
async fn a_function_tool_round_trip_through_an_openai_format_provider() {
    let (fake, app) = app_with("sk-ok-aaaaaaaaaaaa", "sk-tool-bbbbbbbbbbbb").await;
    let mut request = hello("gpt/g1");
    request["tools"] = weather_tool();
    request["tool_choice"] = json!("required");
    let r = post(&app, &request).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let call = &body["output"][0];
    assert_eq!((call["type"].as_str(), call["status"].as_str()), (Some("function_call"), Some("completed")));
    assert_eq!((call["call_id"].as_str(), call["name"].as_str()), (Some("call_abc123"), Some("get_current_weather")));
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(),
        json!({"location": "Boston, MA"})
    );
    assert_eq!(body["tools"][0]["name"], "get_weather");
    assert_eq!(body["tool_choice"], "required");
    let upstream = fake.last_body();
    assert_eq!(upstream["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(upstream["tools"][0]["function"]["parameters"]["required"], json!(["location"]));
    assert_eq!(upstream["tool_choice"], "required");

    // The caller runs the tool and sends the call and its output back (stateless: the whole
    // conversation).
    request["input"] = json!([
        {"role": "user", "content": "Hello!"},
        call,
        {"type": "function_call_output", "call_id": "call_abc123", "output": "12°C and sunny"}
    ]);
    let r = post(&app, &request).await;
    assert_eq!(r.status(), 200);
    let sent = fake.last_body()["messages"].clone();
    assert_eq!(sent[1]["role"], "assistant");
    assert_eq!(sent[1]["tool_calls"][0]["id"], "call_abc123");
    assert_eq!(sent[1]["tool_calls"][0]["function"]["name"], "get_current_weather");
    assert_eq!(sent[2], json!({"role": "tool", "tool_call_id": "call_abc123", "content": "12°C and sunny"}));

    // Streamed: the recorded tool-call stream as a function_call item with argument deltas.
    let mut streaming = streamed("gpt/g1");
    streaming["tools"] = weather_tool();
    let events = parse_events(&post(&app, &streaming).await.text().await.unwrap());
    let added = events.iter().find(|e| e["type"] == "response.output_item.added").unwrap();
    assert_eq!(
        (added["item"]["type"].as_str(), added["item"]["name"].as_str()),
        (Some("function_call"), Some("get_capital"))
    );
    let arguments: String = events
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .map(|e| e["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), json!({"country": "UK"}));
    let done = events.iter().find(|e| e["type"] == "response.function_call_arguments.done").unwrap();
    assert_eq!(done["arguments"], arguments);
    let completed = events.last().unwrap();
    assert_eq!(completed["type"], "response.completed");
    assert_eq!(completed["response"]["output"][0]["call_id"], "call_ZR5UUuTt3pf61kjwAJIYdVMj");
    assert_eq!(completed["response"]["usage"]["output_tokens"], 15);
    assert_eq!(app.usage("").await["total"]["requests"], 3);
}

#[tokio::test]
async fn a_function_tool_round_trip_through_claude() {
    let (fake, app) = app_with("sk-tool-aaaaaaaaaaaa", "sk-ok-bbbbbbbbbbbb").await;
    let mut request = hello("claude/c1");
    request["tools"] = weather_tool();
    request["tool_choice"] = json!({"type": "function", "name": "get_weather"});
    request["parallel_tool_calls"] = json!(false);
    let r = post(&app, &request).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let call = body["output"].as_array().unwrap().iter().find(|i| i["type"] == "function_call").unwrap().clone();
    assert_eq!(
        (call["call_id"].as_str(), call["name"].as_str()),
        (Some("toolu_01GHndag5wQmbzNihYmV2UBj"), Some("get_weather"))
    );
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(),
        json!({"location": "San Francisco, CA", "units": "c"})
    );
    assert_eq!(body["parallel_tool_calls"], false);
    let upstream = fake.last_body();
    assert_eq!(upstream["tools"][0]["name"], "get_weather");
    assert_eq!(
        upstream["tool_choice"],
        json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true})
    );

    request["input"] = json!([
        {"role": "user", "content": "Hello!"},
        call,
        {"type": "function_call_output", "call_id": "toolu_01GHndag5wQmbzNihYmV2UBj", "output": "15C"}
    ]);
    let r = post(&app, &request).await;
    assert_eq!(r.status(), 200);
    // Claude gets Anthropic's turns: the tool_use, then its result.
    let sent = fake.last_body()["messages"].clone();
    assert_eq!(sent[1]["content"][0]["type"], "tool_use");
    assert_eq!(sent[1]["content"][0]["input"], json!({"location": "San Francisco, CA", "units": "c"}));
    assert_eq!(sent[2]["content"][0]["type"], "tool_result");
    assert_eq!(sent[2]["content"][0]["tool_use_id"], "toolu_01GHndag5wQmbzNihYmV2UBj");

    // The recorded tool-use stream, translated by the provider to chat chunks and on to events.
    let mut streaming = streamed("claude/c1");
    streaming["tools"] = weather_tool();
    let events = parse_events(&post(&app, &streaming).await.text().await.unwrap());
    let added = events
        .iter()
        .find(|e| e["type"] == "response.output_item.added" && e["item"]["type"] == "function_call")
        .unwrap();
    assert_eq!(added["item"]["call_id"], "toolu_01TJoxvFknVdnV9XpWFPaRmY");
    let arguments: String = events
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .map(|e| e["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"location": "San Francisco, CA", "units": "f"})
    );
    let completed = events.last().unwrap();
    assert_eq!(completed["type"], "response.completed");
    assert_eq!(completed["response"]["usage"]["output_tokens"], 74);
}

#[tokio::test]
async fn state_and_built_in_tools_are_refused_in_openais_error_shape_and_logged() {
    let (fake, app) = app_with("sk-ok-aaaaaaaaaaaa", "sk-ok-bbbbbbbbbbbb").await;
    let refused = |body: Value, param: &'static str| {
        let app = &app;
        async move {
            let r = post(app, &body).await;
            assert_eq!(r.status(), 400, "{body}");
            let error: Value = r.json().await.unwrap();
            assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
            assert_eq!(error["error"]["param"], param, "{error}");
            error["error"]["message"].as_str().unwrap().to_string()
        }
    };
    let mut body = hello("gpt/g1");
    body["previous_response_id"] = json!("resp_123");
    let message = refused(body, "previous_response_id").await;
    assert!(message.contains("no conversation state"), "{message}");
    for tool in ["web_search", "file_search"] {
        let mut body = hello("gpt/g1");
        body["tools"] = json!([{"type": tool}]);
        let message = refused(body, "tools[0].type").await;
        assert!(message.contains(tool), "{message}");
    }
    let message = refused(json!({"model": "gpt/g1"}), "input").await;
    assert!(message.contains("input"));

    // No token: 401 before the body is read; not JSON: 400; an unknown model: 404.
    let url = format!("{}/v1/responses", app.url);
    let r = app.http.post(&url).json(&hello("gpt/g1")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.json::<Value>().await.unwrap()["error"]["message"].is_string());
    let r = app.http.post(&url).bearer_auth(&app.token).body("{oops").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["type"], "invalid_request_error");
    let r = post(&app, &hello("nope/never")).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "model_not_found");
    assert_eq!(fake.total_calls(), 0, "nothing refused reached a provider");

    // Every authenticated call is one log entry (request_type responses): five refused bodies,
    // one unknown model.
    let usage = app.usage("").await;
    assert_eq!((usage["total"]["requests"].as_u64(), usage["total"]["errors"].as_u64()), (Some(6), Some(6)));
    let logs = app.admin_get("/api/admin/ai-stats/logs").await;
    assert!(logs["data"].as_array().unwrap().iter().all(|l| l["request_type"] == "responses"), "{logs}");
}
