//! The provider clients through `ProviderClient::chat`, against a local server that answers with
//! real recorded provider bodies (tests/fixtures, see SOURCES.md there).

// Clippy's test allowances cover `#[test]` fns only, not this file's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::time::Duration;

use maestro_shared::domain::{ProviderKind, Usage};
use maestro_shared::providers::{ProviderClient, ProviderError, ProviderErrorKind, ProviderReply};
use serde_json::{Value, json};
use support::{Reply, Setup, closed_port, fixture, hang_up_server, model, provider, serve};

const OPENAI_KEY: &str = "sk-test-openai-0123456789abcdef";
const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789abcdef";

fn client() -> ProviderClient {
    ProviderClient::new().unwrap()
}

fn hello() -> Value {
    json!({"model": "gpt", "messages": [{"role": "user", "content": "Hello!"}]})
}

fn openai(base: &str) -> Setup {
    Setup::new(provider(ProviderKind::Openai, &format!("{base}/v1"), &[]), "gpt-5.4", OPENAI_KEY, hello())
}

fn anthropic(base: &str) -> Setup {
    let p = provider(ProviderKind::Anthropic, base, &[]);
    Setup::new(p, "claude-sonnet-4-5-20250929", ANTHROPIC_KEY, hello())
}

fn deepseek(base: &str) -> Setup {
    Setup::new(provider(ProviderKind::Deepseek, base, &[]), "deepseek-chat", "sk-deepseek-0123456789abcdef", hello())
}

async fn chat(setup: &Setup) -> Result<ProviderReply, ProviderError> {
    client().chat(setup.call()).await
}

async fn fail(setup: &Setup) -> ProviderError {
    chat(setup).await.expect_err("the call should fail")
}

fn body_json(reply: &ProviderReply) -> Value {
    serde_json::from_slice(&reply.body).unwrap()
}

// ---------------------------------------------------------------- OpenAI format: success

#[tokio::test]
async fn openai_success_passes_the_body_through_and_sends_the_request_as_given() {
    let upstream = serve(Reply::json(200, fixture("openai/chat_completion.json"))).await;
    let mut setup = openai(&upstream.url);
    setup.request = serde_json::from_value(json!({
        "model": "openai/gpt-5.4",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hello!"}], "name": "ann"}
        ],
        "max_completion_tokens": 100,
        "temperature": 0.2,
        "stop": "END",
        "stream": true,
        "stream_options": {"include_usage": true},
        "user": "u-1",
        "seed": 7,
        "response_format": {"type": "json_object"}
    }))
    .unwrap();

    let reply = chat(&setup).await.unwrap();

    assert_eq!(reply.body.as_ref(), fixture("openai/chat_completion.json").as_slice(), "body passed through unchanged");
    assert_eq!(
        reply.usage,
        Usage { prompt_tokens: 19, completion_tokens: 10, cached_tokens: 0, cache_write_tokens: 0 }
    );
    assert_eq!(reply.model, "gpt-5.4");

    let seen = upstream.only();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {OPENAI_KEY}").as_str()));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.json(),
        json!({
            "model": "gpt-5.4",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hello!"}], "name": "ann"}
            ],
            "max_completion_tokens": 100,
            "temperature": 0.2,
            "stop": "END",
            "user": "u-1",
            "seed": 7,
            "response_format": {"type": "json_object"}
        }),
        "model swapped, stream and stream_options dropped, everything else as sent"
    );
}

#[tokio::test]
async fn deepseek_success_reads_cache_hits_and_keeps_reasoning_content() {
    let upstream = serve(Reply::json(200, fixture("deepseek/chat_completion.json"))).await;
    let mut setup = deepseek(&upstream.url);
    setup.request = serde_json::from_value(json!({
        "model": "deepseek-reasoner",
        "messages": [{"role": "user", "content": "Roll a die, I guess 4."}],
        "max_completion_tokens": 64
    }))
    .unwrap();

    let reply = chat(&setup).await.unwrap();

    assert_eq!(
        reply.usage,
        Usage { prompt_tokens: 563, completion_tokens: 116, cached_tokens: 512, cache_write_tokens: 0 }
    );
    assert_eq!(reply.model, "deepseek-v4-flash");
    assert_eq!(reply.body.as_ref(), fixture("deepseek/chat_completion.json").as_slice());
    assert!(
        body_json(&reply)["choices"][0]["message"]["reasoning_content"].as_str().unwrap().starts_with("The user wants")
    );

    let seen = upstream.only();
    assert_eq!(seen.path, "/chat/completions");
    assert_eq!(seen.header("authorization"), Some("Bearer sk-deepseek-0123456789abcdef"));
    assert_eq!(
        seen.json(),
        json!({
            "model": "deepseek-chat",
            "messages": [{"role": "user", "content": "Roll a die, I guess 4."}],
            "max_tokens": 64
        })
    );
}

#[tokio::test]
async fn prompt_cache_hit_tokens_win_over_cached_tokens() {
    let body = json!({
        "id": "x", "object": "chat.completion", "model": "deepseek-chat", "choices": [],
        "usage": {"prompt_tokens": 100, "completion_tokens": 5, "prompt_cache_hit_tokens": 64,
                  "prompt_tokens_details": {"cached_tokens": 32}}
    });
    let upstream = serve(Reply::json(200, body.to_string())).await;
    let reply = chat(&deepseek(&upstream.url)).await.unwrap();
    assert_eq!(reply.usage.cached_tokens, 64);
}

#[tokio::test]
async fn openai_compatible_sends_the_configured_headers() {
    let upstream = serve(Reply::json(200, fixture("openai/chat_completion.json"))).await;
    let headers = [("HTTP-Referer", "https://maestro.example"), ("X-Title", "Maestro")];
    let p = provider(ProviderKind::OpenaiCompatible, &format!("{}/api/v1/", upstream.url), &headers);
    let setup = Setup::new(p, "qwen-max", "sk-compat-0123456789abcdef", hello());

    let reply = chat(&setup).await.unwrap();
    assert_eq!(reply.usage.prompt_tokens, 19);

    let seen = upstream.only();
    assert_eq!(seen.path, "/api/v1/chat/completions");
    assert_eq!(seen.header("http-referer"), Some("https://maestro.example"));
    assert_eq!(seen.header("x-title"), Some("Maestro"));
    assert_eq!(seen.header("authorization"), Some("Bearer sk-compat-0123456789abcdef"));
    assert_eq!(seen.json()["model"], "qwen-max");
}

// ---------------------------------------------------------------- Anthropic: success

#[tokio::test]
async fn anthropic_success_translates_request_and_answer() {
    let upstream = serve(Reply::json(200, fixture("anthropic/message.json"))).await;
    let p = provider(ProviderKind::Anthropic, &upstream.url, &[("anthropic-beta", "prompt-caching-2024-07-31")]);
    let mut setup = Setup::new(p, "claude-sonnet-4-5-20250929", ANTHROPIC_KEY, hello());
    setup.model = model(&setup.provider, "claude-sonnet-4-5-20250929", Some(2048));
    setup.request = serde_json::from_value(json!({
        "model": "claude",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": "What is Python?"},
            {"role": "user", "content": [
                {"type": "text", "text": "Look at these:"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}}
            ]},
            {"role": "assistant", "content": "Python is a language."},
            {"role": "user", "content": "Shorter."}
        ],
        "stop": ["\n\nHuman:", "END"],
        "temperature": 1.5,
        "top_p": 0.9,
        "user": "u-42",
        "seed": 7,
        "stream": true
    }))
    .unwrap();

    let reply = chat(&setup).await.unwrap();

    let seen = upstream.only();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("anthropic-beta"), Some("prompt-caching-2024-07-31"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(
        seen.json(),
        json!({
            "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 2048,
            "system": "You are terse.\n\nAnswer in English.",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "What is Python?"},
                    {"type": "text", "text": "Look at these:"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
                ]},
                {"role": "assistant", "content": "Python is a language."},
                {"role": "user", "content": "Shorter."}
            ],
            "stop_sequences": ["\n\nHuman:", "END"],
            "temperature": 1.0,
            "top_p": 0.9,
            "metadata": {"user_id": "u-42"}
        })
    );

    assert_eq!(
        reply.usage,
        Usage { prompt_tokens: 3 + 1111 + 418, completion_tokens: 33, cached_tokens: 1111, cache_write_tokens: 418 }
    );
    assert_eq!(reply.model, "claude-sonnet-4-5-20250929");
    let body = body_json(&reply);
    assert_eq!(body["id"], "msg_01KPaKTJSqAKoZri7Ujrny58");
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(body["model"], "claude-sonnet-4-5-20250929");
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(choice["message"]["content"].as_str().unwrap().starts_with("Python is a beginner-friendly"));
    assert!(choice["message"].get("reasoning_content").is_none());
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 1532, "completion_tokens": 33, "total_tokens": 1565,
               "prompt_tokens_details": {"cached_tokens": 1111}})
    );
}

#[tokio::test]
async fn anthropic_max_tokens_is_the_callers_when_given() {
    let upstream = serve(Reply::json(200, fixture("anthropic/message.json"))).await;
    let mut setup = anthropic(&upstream.url);
    setup.request.max_tokens = Some(300);
    chat(&setup).await.unwrap();
    let sent = upstream.only().json();
    assert_eq!(sent["max_tokens"], 300);
    assert_eq!(sent["messages"], json!([{"role": "user", "content": "Hello!"}]));
    assert!(sent.get("system").is_none());
}

#[tokio::test]
async fn anthropic_thinking_becomes_reasoning_content() {
    let upstream = serve(Reply::json(200, fixture("anthropic/message_thinking.json"))).await;
    let reply = chat(&anthropic(&upstream.url)).await.unwrap();
    let message = &body_json(&reply)["choices"][0]["message"];
    assert_eq!(
        message["reasoning_content"],
        "This is a straightforward question about pedestrian safety. I should provide clear, practical advice about crossing the street safely."
    );
    assert!(message["content"].as_str().unwrap().starts_with("Here's how to cross the street safely:"));
    assert_eq!(
        reply.usage,
        Usage { prompt_tokens: 43, completion_tokens: 321, cached_tokens: 0, cache_write_tokens: 0 }
    );
}

#[tokio::test]
async fn anthropic_translates_the_recorded_tool_and_image_conversation() {
    let upstream = serve(Reply::json(200, fixture("anthropic/message_tool_use.json"))).await;
    let mut setup = anthropic(&upstream.url);
    setup.request = serde_json::from_slice(&fixture("openai/request_with_tools_and_image.json")).unwrap();
    let reply = ProviderClient::new().unwrap().chat(setup.call()).await.unwrap();

    let sent = upstream.only().json();
    assert_eq!(
        sent["tools"],
        json!([{"name": "get_file", "input_schema": {"additionalProperties": false, "properties": {}, "type": "object"}}])
    );
    assert_eq!(sent["tool_choice"], json!({"type": "auto"}));
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "the tool result and the next user turn merge into one user message");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(
        messages[1]["content"],
        json!([{"type": "tool_use", "id": "call_qLQ1cE6MlqfhbxeGig6LIw9D", "name": "get_file", "input": {}}])
    );
    assert_eq!(messages[2]["role"], "user");
    assert_eq!(
        messages[2]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "call_qLQ1cE6MlqfhbxeGig6LIw9D", "content": "See file 6a18c6."},
            {"type": "text", "text": "This is file 6a18c6:"},
            {"type": "image", "source": {"type": "url", "url": "https://www.gstatic.com/webp/gallery3/1.png"}}
        ])
    );

    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["id"], "toolu_01GHndag5wQmbzNihYmV2UBj");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"location": "San Francisco, CA", "units": "c"}));
    assert_eq!(reply.usage.prompt_tokens, 659);
    assert_eq!(reply.usage.completion_tokens, 74);
}

/// The recorded tool-use answer, asked for as structured output: the schema is named after the
/// recorded tool, so Claude's real `tool_use` block is the schema tool's call.
#[tokio::test]
async fn anthropic_structured_output_is_a_forced_tool_whose_call_is_the_json_text() {
    let upstream = serve(Reply::json(200, fixture("anthropic/message_tool_use.json"))).await;
    let mut setup = anthropic(&upstream.url);
    let schema = json!({"type": "object", "properties": {"location": {"type": "string"}, "units": {"type": "string"}},
        "required": ["location", "units"], "additionalProperties": false});
    setup.request = serde_json::from_value(json!({
        "model": "claude",
        "messages": [{"role": "user", "content": "Weather in SF, as JSON"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "get_weather", "schema": schema, "strict": true}}
    }))
    .unwrap();
    let reply = chat(&setup).await.unwrap();

    let sent = upstream.only().json();
    assert_eq!(
        sent["tools"],
        json!([{"name": "get_weather", "description": "Respond with the structured output in this tool's input.", "input_schema": schema}])
    );
    assert_eq!(sent["tool_choice"], json!({"type": "tool", "name": "get_weather"}));
    assert!(sent.get("response_format").is_none());

    let body = body_json(&reply);
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["message"]["content"], r#"{"location":"San Francisco, CA","units":"c"}"#);
    assert!(choice["message"].get("tool_calls").is_none_or(|c| c.as_array().is_some_and(Vec::is_empty)));
    assert_eq!(reply.usage.completion_tokens, 74);
}

/// `json_object`: the open-schema tool `json_output`; the answer in Anthropic's wire format with
/// its keys in Claude's order, which the JSON text keeps.
#[tokio::test]
async fn anthropic_json_mode_answers_the_json_in_claudes_key_order() {
    let answer = r#"{"model":"claude-sonnet-4-5-20250929","id":"msg_01JsonMode","type":"message","role":"assistant","content":[{"type":"tool_use","id":"toolu_01JsonMode","name":"json_output","input":{"title":"Dune","year":1965,"authors":["Frank Herbert"]},"caller":{"type":"direct"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":612,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":41,"service_tier":"standard"}}"#;
    let upstream = serve(Reply::json(200, answer)).await;
    let mut setup = anthropic(&upstream.url);
    setup.request = serde_json::from_value(json!({
        "model": "claude",
        "messages": [{"role": "user", "content": "Dune as JSON: title, year, authors"}],
        "response_format": {"type": "json_object"}
    }))
    .unwrap();
    let reply = chat(&setup).await.unwrap();

    let sent = upstream.only().json();
    assert_eq!(sent["tools"][0]["name"], "json_output");
    assert_eq!(sent["tools"][0]["input_schema"], json!({"type": "object", "additionalProperties": true}));
    assert_eq!(sent["tool_choice"], json!({"type": "tool", "name": "json_output"}));
    let body = body_json(&reply);
    assert_eq!(body["choices"][0]["message"]["content"], r#"{"title":"Dune","year":1965,"authors":["Frank Herbert"]}"#);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
}

/// `/v1/messages` with Anthropic's `output_format`, to Claude behind the provider: the schema goes
/// out as the forced tool `output` and its call comes back as one text block holding the JSON.
#[tokio::test]
async fn messages_output_format_reaches_claude_as_a_forced_tool_and_returns_a_text_block() {
    use maestro_shared::anthropic_api::{MessagesRequest, Purpose, to_chat_request, to_message};
    let answer = r#"{"model":"claude-sonnet-4-5-20250929","id":"msg_01Output","type":"message","role":"assistant","content":[{"type":"tool_use","id":"toolu_01Output","name":"output","input":{"name":"Ada Lovelace","born":1815},"caller":{"type":"direct"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":590,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":33,"service_tier":"standard"}}"#;
    let upstream = serve(Reply::json(200, answer)).await;
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
        "required": ["name", "born"], "additionalProperties": false});
    let messages: MessagesRequest = serde_json::from_value(json!({
        "model": "claude", "max_tokens": 256,
        "messages": [{"role": "user", "content": "Who wrote the first program? Name and birth year."}],
        "output_format": {"type": "json_schema", "schema": schema}
    }))
    .unwrap();
    let mut setup = anthropic(&upstream.url);
    setup.request = to_chat_request(messages, Purpose::Messages).unwrap();
    let reply = chat(&setup).await.unwrap();

    let sent = upstream.only().json();
    assert_eq!(sent["tools"][0]["name"], "output");
    assert_eq!(sent["tools"][0]["input_schema"], schema);
    assert_eq!(sent["tool_choice"], json!({"type": "tool", "name": "output"}));
    assert!(sent.get("output_format").is_none());

    let message = to_message(&reply.body, "claude").unwrap();
    assert_eq!(message["content"], json!([{"type": "text", "text": r#"{"name":"Ada Lovelace","born":1815}"#}]));
    assert_eq!(message["stop_reason"], "end_turn");
}

// ---------------------------------------------------------------- errors

#[tokio::test]
async fn openai_401_is_auth() {
    let upstream = serve(Reply::json(401, fixture("openai/error_401.json"))).await;
    let e = fail(&openai(&upstream.url)).await;
    assert_eq!(e.kind, ProviderErrorKind::Auth);
    assert_eq!(e.status, Some(401));
    assert_eq!(e.code.as_deref(), Some("invalid_api_key"));
    assert!(e.message.starts_with("Incorrect API key provided: DEADBEEF."));
}

#[tokio::test]
async fn anthropic_401_is_auth() {
    let upstream = serve(Reply::json(401, fixture("anthropic/error_401.json"))).await;
    let e = fail(&anthropic(&upstream.url)).await;
    assert_eq!(e.kind, ProviderErrorKind::Auth);
    assert_eq!(e.code.as_deref(), Some("authentication_error"));
    assert_eq!(e.message, "invalid x-api-key");
}

#[tokio::test]
async fn deepseek_401_is_auth_with_its_odd_code() {
    let upstream = serve(Reply::json(401, fixture("deepseek/error_401.json"))).await;
    let e = fail(&deepseek(&upstream.url)).await;
    assert_eq!(e.kind, ProviderErrorKind::Auth);
    assert_eq!(e.code.as_deref(), Some("invalid_request_error"));
    assert_eq!(e.message, "Authentication Fails, Your api key: ****cd15 is invalid");
}

#[tokio::test]
async fn openai_429_is_rate_limited_with_retry_after() {
    let reply = Reply::json(429, fixture("openai/error_429_rate_limit.json")).header("retry-after", "3");
    let upstream = serve(reply).await;
    let e = fail(&openai(&upstream.url)).await;
    assert_eq!(e.kind, ProviderErrorKind::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
    assert_eq!(e.code.as_deref(), Some("rate_limit_exceeded"));
}

#[tokio::test]
async fn openai_429_insufficient_quota_is_quota() {
    let upstream = serve(Reply::json(429, fixture("openai/error_429_insufficient_quota.json"))).await;
    let e = fail(&openai(&upstream.url)).await;
    assert_eq!(e.kind, ProviderErrorKind::QuotaExceeded);
    assert_eq!(e.code.as_deref(), Some("insufficient_quota"));
    assert!(!e.kind.is_retryable());
}

#[tokio::test]
async fn deepseek_402_is_quota() {
    let upstream = serve(Reply::json(402, fixture("deepseek/error_402_insufficient_balance.json"))).await;
    let e = fail(&deepseek(&upstream.url)).await;
    assert_eq!(e.kind, ProviderErrorKind::QuotaExceeded);
    assert_eq!(e.message, "Insufficient Balance");
}

#[tokio::test]
async fn openai_500_is_server() {
    // No recorded OpenAI 500 body exists (SOURCES.md, "not found"); this is the documented message.
    let body = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#;
    let upstream = serve(Reply::json(500, body)).await;
    let e = fail(&openai(&upstream.url)).await;
    assert_eq!(e.kind, ProviderErrorKind::Server);
    assert_eq!(e.code.as_deref(), Some("server_error"));
    assert!(e.kind.is_retryable());
}

#[tokio::test]
async fn anthropic_529_is_overloaded() {
    let upstream = serve(Reply::json(529, fixture("anthropic/error_529_overloaded.json"))).await;
    let e = fail(&anthropic(&upstream.url)).await;
    assert_eq!(e.kind, ProviderErrorKind::Overloaded);
    assert_eq!(e.status, Some(529));
    assert_eq!(e.code.as_deref(), Some("overloaded_error"));
    assert_eq!(e.message, "Overloaded");
}

#[tokio::test]
async fn openai_400_is_invalid_request_with_the_upstream_message() {
    let upstream = serve(Reply::json(400, fixture("openai/error_400_invalid_request.json"))).await;
    let e = fail(&openai(&upstream.url)).await;
    assert_eq!(e.kind, ProviderErrorKind::InvalidRequest);
    assert_eq!(e.code.as_deref(), Some("unsupported_value"));
    assert_eq!(e.message, "Unsupported value: 'messages[0].role' does not support 'developer' with this model.");
}

#[tokio::test]
async fn anthropic_400_is_invalid_request_with_the_upstream_message() {
    let upstream = serve(Reply::json(400, fixture("anthropic/error_400.json"))).await;
    let e = fail(&anthropic(&upstream.url)).await;
    assert_eq!(e.kind, ProviderErrorKind::InvalidRequest);
    assert_eq!(e.code.as_deref(), Some("invalid_request_error"));
    assert!(e.message.starts_with("messages.0.content.1: unexpected `tool_use_id` found"));
}

#[tokio::test]
async fn a_slow_provider_times_out() {
    let reply = Reply::json(200, fixture("openai/chat_completion.json")).delayed(Duration::from_millis(300));
    let upstream = serve(reply.clone()).await;
    let mut setup = openai(&upstream.url);
    setup.timeout = Duration::from_millis(100);
    assert_eq!(fail(&setup).await.kind, ProviderErrorKind::Timeout);

    let upstream = serve(reply).await;
    let mut setup = anthropic(&upstream.url);
    setup.timeout = Duration::from_millis(100);
    assert_eq!(fail(&setup).await.kind, ProviderErrorKind::Timeout);
}

#[tokio::test]
async fn a_2xx_that_is_not_a_completion_is_malformed() {
    let full = fixture("openai/chat_completion.json");
    let truncated = full[..full.len() / 2].to_vec();
    let html = "<!DOCTYPE html><html><head><title>Maintenance</title></head><body>back soon</body></html>";
    let no_choices = r#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-5.4"}"#;
    for reply in [Reply::json(200, truncated.clone()), Reply::raw(200, "text/html", html), Reply::json(200, no_choices)]
    {
        let upstream = serve(reply).await;
        let e = fail(&openai(&upstream.url)).await;
        assert_eq!(e.kind, ProviderErrorKind::MalformedResponse, "{e}");
        assert!(e.message.len() < 300 && !e.message.contains("<html"), "{}", e.message);
    }
    let anthropic_truncated = fixture("anthropic/message.json");
    let upstream = serve(Reply::json(200, anthropic_truncated[..100].to_vec())).await;
    assert_eq!(fail(&anthropic(&upstream.url)).await.kind, ProviderErrorKind::MalformedResponse);
    // An OpenAI-shaped answer is not a Messages answer.
    let upstream = serve(Reply::json(200, full)).await;
    assert_eq!(fail(&anthropic(&upstream.url)).await.kind, ProviderErrorKind::MalformedResponse);
}

#[tokio::test]
async fn a_502_html_page_is_server_with_a_short_message() {
    let page = format!(
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n{}</body>\r\n</html>\r\n",
        "<!-- padding -->\r\n".repeat(200)
    );
    let upstream = serve(Reply::raw(502, "text/html", page.clone())).await;
    let e = fail(&openai(&upstream.url)).await;
    assert_eq!(e.kind, ProviderErrorKind::Server);
    assert_eq!(e.status, Some(502));
    assert_eq!(e.message, "HTTP 502 Bad Gateway from the provider (HTML page: 502 Bad Gateway)");

    let upstream = serve(Reply::raw(502, "text/html", page)).await;
    let e = fail(&anthropic(&upstream.url)).await;
    assert_eq!(e.kind, ProviderErrorKind::Server);
    assert!(e.message.len() < 300);
}

#[tokio::test]
async fn a_dropped_connection_is_network_or_malformed() {
    let base = hang_up_server().await;
    for setup in [openai(&base), anthropic(&base)] {
        let e = fail(&setup).await;
        assert!(matches!(e.kind, ProviderErrorKind::Network | ProviderErrorKind::MalformedResponse), "{e}");
        assert!(e.kind.is_retryable());
    }
}

#[tokio::test]
async fn a_closed_port_is_network() {
    let base = closed_port().await;
    assert_eq!(fail(&openai(&base)).await.kind, ProviderErrorKind::Network);
}

#[tokio::test]
async fn an_echoed_key_is_scrubbed_from_the_message() {
    let body = json!({"error": {"message": format!("Incorrect API key provided: {OPENAI_KEY}."),
                                "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
    let upstream = serve(Reply::json(401, body.to_string())).await;
    let e = fail(&openai(&upstream.url)).await;
    assert_eq!(e.kind, ProviderErrorKind::Auth);
    assert!(!e.message.contains(OPENAI_KEY), "{}", e.message);
    assert!(e.message.contains("sk-…cdef"), "{}", e.message);

    let body = json!({"type": "error", "error": {"type": "authentication_error",
                      "message": format!("invalid x-api-key {ANTHROPIC_KEY}")}});
    let upstream = serve(Reply::json(401, body.to_string())).await;
    let e = fail(&anthropic(&upstream.url)).await;
    assert!(!e.message.contains(ANTHROPIC_KEY), "{}", e.message);
}

// ---------------------------------------------------------------- demo

#[tokio::test]
async fn demo_echoes_the_last_user_message_offline() {
    let mut setup = Setup::new(provider(ProviderKind::Demo, "", &[]), "maestro-echo", "", hello());
    setup.request = serde_json::from_value(json!({
        "model": "demo",
        "messages": [
            {"role": "system", "content": "Be nice."},
            {"role": "user", "content": "First"},
            {"role": "assistant", "content": "Ok"},
            {"role": "user", "content": [{"type": "text", "text": "Hello there"}]}
        ]
    }))
    .unwrap();
    let reply = chat(&setup).await.unwrap();
    let body = body_json(&reply);
    let content = "Echo from Maestro's demo model: Hello there";
    assert_eq!(body["choices"][0]["message"]["content"], content);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "maestro-echo");
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-demo-") && id.len() == "chatcmpl-demo-".len() + 32, "{id}");
    // ceil(8/4)+3 + ceil(5/4)+3 + ceil(2/4)+3 + ceil(11/4)+3
    let prompt = (2 + 3) + (2 + 3) + (1 + 3) + (3 + 3);
    assert_eq!(reply.usage, Usage { prompt_tokens: prompt, completion_tokens: 43_u64.div_ceil(4), ..Usage::default() });
    assert_eq!(body["usage"]["total_tokens"], prompt + 11);
    assert_eq!(reply.model, "maestro-echo");
}
