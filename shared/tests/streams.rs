//! Recorded provider streams through the streaming clients: every emitted frame is checked, as
//! are usage, mid-stream errors, pings and truncated streams.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use crate::support;

use maestro_shared::domain::{ProviderKind, Usage};
use maestro_shared::providers::{ProviderClient, ProviderErrorKind, UpstreamStream};
use serde_json::{Value, json};
use support::{Reply, Setup, fixture, provider, serve};

fn sse(body: Vec<u8>) -> Reply {
    Reply::raw(200, "text/event-stream", body)
}

fn hello() -> Value {
    json!({"model": "x", "stream": true, "messages": [{"role": "user", "content": "Count to ten"}]})
}

/// Reads a stream to its end: the frames' payloads (after `data: `), and how it ended.
async fn drain(mut stream: UpstreamStream) -> (Vec<String>, Result<(), ProviderErrorKind>, Usage) {
    let mut frames = Vec::new();
    loop {
        match stream.next().await {
            Ok(Some(batch)) => {
                for f in batch {
                    let text = String::from_utf8(f.to_vec()).unwrap();
                    let payload =
                        text.strip_prefix("data: ").and_then(|t| t.strip_suffix("\n\n")).expect("well-formed frame");
                    frames.push(payload.to_string());
                }
            }
            Ok(None) => return (frames, Ok(()), stream.usage()),
            Err(e) => return (frames, Err(e.kind), stream.usage()),
        }
    }
}

fn json_frames(frames: &[String]) -> Vec<Value> {
    frames.iter().filter(|f| *f != "[DONE]").map(|f| serde_json::from_str(f).unwrap()).collect()
}

#[tokio::test]
async fn openai_stream_passes_through_and_asks_for_usage_upstream() {
    let upstream = serve(sse(fixture("openai/chat_stream.sse"))).await;
    let setup =
        Setup::new(provider(ProviderKind::Openai, &upstream.url, &[]), "gpt-5.1", "sk-test-stream-0001", hello());
    let client = ProviderClient::new().unwrap();

    // A caller that did not ask for usage gets every chunk but the usage-only one, and no
    // `usage: null` in the others (OpenAI's schema: present only when asked for).
    let (frames, end, usage) = drain(client.chat_stream(setup.call(), false).await.unwrap()).await;
    assert_eq!(end, Ok(()));
    assert_eq!(usage, Usage { prompt_tokens: 33, completion_tokens: 10, cached_tokens: 0, cache_write_tokens: 0 });
    let recorded: Vec<String> = String::from_utf8(fixture("openai/chat_stream.sse"))
        .unwrap()
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: ").map(str::to_string))
        .collect();
    let without_usage: Vec<String> =
        recorded.iter().filter(|f| !f.contains("\"choices\":[]")).map(|f| f.replace(",\"usage\":null", "")).collect();
    assert!(recorded.iter().any(|f| f.contains(",\"usage\":null")), "the recording has the field to drop");
    assert_eq!(frames, without_usage, "chunks are forwarded byte for byte but for the usage field");
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));

    let body = upstream.only().json();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);

    // A caller that asked for usage gets the recorded stream unchanged.
    let upstream = serve(sse(fixture("openai/chat_stream.sse"))).await;
    let setup =
        Setup::new(provider(ProviderKind::Openai, &upstream.url, &[]), "gpt-5.1", "sk-test-stream-0001", hello());
    let (frames, _, _) = drain(client.chat_stream(setup.call(), true).await.unwrap()).await;
    assert_eq!(frames, recorded);
}

#[tokio::test]
async fn deepseek_stream_reports_usage_on_its_final_chunk() {
    let upstream = serve(sse(fixture("deepseek/stream.sse"))).await;
    let setup = Setup::new(
        provider(ProviderKind::Deepseek, &upstream.url, &[]),
        "deepseek-v4-flash",
        "sk-test-stream-0002",
        hello(),
    );
    let client = ProviderClient::new().unwrap();
    let (frames, end, usage) = drain(client.chat_stream(setup.call(), false).await.unwrap()).await;
    assert_eq!(end, Ok(()));
    assert_eq!(usage.prompt_tokens, 6);
    assert_eq!(usage.completion_tokens, 212);
    let chunks = json_frames(&frames);
    assert!(chunks.iter().any(|c| c["choices"][0]["delta"]["reasoning_content"].is_string()), "reasoning deltas kept");
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "stop");
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn anthropic_stream_becomes_openai_chunks() {
    let upstream = serve(sse(fixture("anthropic/stream.sse"))).await;
    let setup = Setup::new(
        provider(ProviderKind::Anthropic, &upstream.url, &[]),
        "claude-sonnet-4-5",
        "sk-ant-stream-0003",
        hello(),
    );
    let client = ProviderClient::new().unwrap();
    let (frames, end, usage) = drain(client.chat_stream(setup.call(), true).await.unwrap()).await;
    assert_eq!(end, Ok(()));
    assert_eq!(usage.prompt_tokens, 135);
    assert_eq!(usage.completion_tokens, 10);
    assert_eq!(upstream.only().json()["stream"], true);

    let chunks = json_frames(&frames);
    // role chunk, four text deltas (the ping is dropped), the finish chunk, the usage chunk
    assert_eq!(chunks.len(), 7, "{frames:#?}");
    assert!(chunks.iter().all(|c| c["id"] == "msg_013nnniYDrJDocdy5nrMU7cH" && c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
    let text: Vec<&str> = chunks[1..5].iter().map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap()).collect();
    assert_eq!(text, ["[", "12", "345,", "67890]"]);
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[6]["choices"], json!([]));
    assert_eq!(chunks[6]["usage"]["total_tokens"], 145);
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn anthropic_thinking_deltas_become_reasoning_content() {
    let upstream = serve(sse(fixture("anthropic/stream_thinking_docs_example.sse"))).await;
    let setup = Setup::new(
        provider(ProviderKind::Anthropic, &upstream.url, &[]),
        "claude-sonnet-4-5",
        "sk-ant-stream-0004",
        hello(),
    );
    let client = ProviderClient::new().unwrap();
    let (frames, end, _) = drain(client.chat_stream(setup.call(), false).await.unwrap()).await;
    assert_eq!(end, Ok(()));
    let chunks = json_frames(&frames);
    let reasoning: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str()).collect();
    let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(!reasoning.is_empty() && !content.is_empty(), "{frames:#?}");
    assert!(chunks.iter().all(|c| c.get("usage").is_none()), "no usage chunk unless asked");
}

#[tokio::test]
async fn an_anthropic_error_event_ends_the_stream_with_its_kind() {
    let upstream = serve(sse(fixture("anthropic/stream_error.sse"))).await;
    let setup = Setup::new(
        provider(ProviderKind::Anthropic, &upstream.url, &[]),
        "claude-sonnet-4-5",
        "sk-ant-stream-0005",
        hello(),
    );
    let client = ProviderClient::new().unwrap();
    let (frames, end, _) = drain(client.chat_stream(setup.call(), false).await.unwrap()).await;
    assert!(frames.is_empty());
    assert_eq!(end, Err(ProviderErrorKind::Overloaded));
}

#[tokio::test]
async fn truncated_streams_are_malformed_after_the_frames_they_carried() {
    let client = ProviderClient::new().unwrap();
    for (kind, path) in
        [(ProviderKind::Anthropic, "anthropic/stream.sse"), (ProviderKind::Openai, "openai/chat_stream.sse")]
    {
        let full = fixture(path);
        let upstream = serve(sse(full[..full.len() * 2 / 3].to_vec())).await;
        let setup = Setup::new(provider(kind, &upstream.url, &[]), "m", "sk-test-stream-0006", hello());
        let (frames, end, _) = drain(client.chat_stream(setup.call(), false).await.unwrap()).await;
        assert!(!frames.is_empty(), "{path}: the complete events before the cut still arrive");
        assert!(!frames.contains(&"[DONE]".to_string()), "{path}");
        assert_eq!(end, Err(ProviderErrorKind::MalformedResponse), "{path}");
    }
}

#[tokio::test]
async fn a_stream_request_that_fails_before_streaming_is_classified() {
    let upstream = serve(Reply::json(529, fixture("anthropic/error_529_overloaded.json"))).await;
    let setup = Setup::new(provider(ProviderKind::Anthropic, &upstream.url, &[]), "m", "sk-ant-stream-0007", hello());
    let client = ProviderClient::new().unwrap();
    let err = client.chat_stream(setup.call(), false).await.err().expect("529 fails");
    assert_eq!(err.kind, ProviderErrorKind::Overloaded);
    assert_eq!(err.status, Some(529));
}

#[tokio::test]
async fn anthropic_tool_use_streams_as_openai_tool_call_deltas() {
    let upstream = serve(sse(fixture("anthropic/stream_tool_use.sse"))).await;
    let setup = Setup::new(
        provider(ProviderKind::Anthropic, &upstream.url, &[]),
        "claude-haiku-4-5",
        "sk-ant-stream-0008",
        hello(),
    );
    let client = ProviderClient::new().unwrap();
    let (frames, end, usage) = drain(client.chat_stream(setup.call(), false).await.unwrap()).await;
    assert_eq!(end, Ok(()));
    assert_eq!(usage.completion_tokens, 74);
    let chunks = json_frames(&frames);
    let calls: Vec<&Value> = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0)).collect();
    assert_eq!(calls[0]["id"], "toolu_01TJoxvFknVdnV9XpWFPaRmY");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert!(calls.iter().all(|c| c["index"] == 0));
    let arguments: String = calls.iter().filter_map(|c| c["function"]["arguments"].as_str()).collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"location": "San Francisco, CA", "units": "f"})
    );
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn anthropic_schema_tool_streams_as_json_content_that_stops() {
    // The recorded tool-use stream, the request's schema named after the recorded tool.
    let upstream = serve(sse(fixture("anthropic/stream_tool_use.sse"))).await;
    let mut request = hello();
    request["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "get_weather",
        "schema": {"type": "object", "properties": {"location": {"type": "string"}, "units": {"type": "string"}}}}});
    let setup = Setup::new(
        provider(ProviderKind::Anthropic, &upstream.url, &[]),
        "claude-haiku-4-5",
        "sk-ant-stream-0009",
        request,
    );
    let client = ProviderClient::new().unwrap();
    let (frames, end, usage) = drain(client.chat_stream(setup.call(), true).await.unwrap()).await;
    assert_eq!(end, Ok(()));
    assert_eq!(usage.completion_tokens, 74);
    let sent = upstream.only().json();
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["tool_choice"], json!({"type": "tool", "name": "get_weather"}));

    let chunks = json_frames(&frames);
    assert!(chunks.iter().all(|c| c["choices"][0]["delta"].get("tool_calls").is_none()), "no tool call deltas");
    let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, r#"{"location": "San Francisco, CA", "units": "f"}"#);
    let finish: Vec<&Value> =
        chunks.iter().map(|c| &c["choices"][0]["finish_reason"]).filter(|f| !f.is_null()).collect();
    assert_eq!(finish, [&json!("stop")]);
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 74);
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
}
