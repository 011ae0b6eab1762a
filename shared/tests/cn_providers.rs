//! The built-in Chinese providers and Gemini through `ProviderClient`, against a local server
//! answering with their recorded (or, where none exists, reconstructed) bodies from
//! tests/fixtures/cn (sources in tests/fixtures/SOURCES.md): where each differs from OpenAI's
//! format — the key's account out of balance under a 400, 403 or 429, errors in a 200 answer or
//! in a JSON array, cache reads and thinking tokens in other fields — Maestro reads it right.

use crate::support;

use maestro_shared::domain::{KINDS, ProviderKind, Usage};
use maestro_shared::providers::{ProviderClient, ProviderError, ProviderErrorKind, ProviderReply, UpstreamStream};
use serde_json::{Value, json};
use support::{Reply, Setup, fixture, provider, serve};

const KEY: &str = "sk-cn-test-0123456789abcdef";

fn setup(kind: ProviderKind, base: &str, model: &str) -> Setup {
    let request =
        json!({"model": model, "max_completion_tokens": 64, "messages": [{"role": "user", "content": "你好"}]});
    Setup::new(provider(kind, base, &[]), model, KEY, request)
}

async fn answer(kind: ProviderKind, reply: Reply) -> (Result<ProviderReply, ProviderError>, support::FakeProvider) {
    let upstream = serve(reply).await;
    let setup = setup(kind, &upstream.url, "m");
    let result = ProviderClient::new().unwrap().chat(setup.call()).await;
    (result, upstream)
}

async fn error(kind: ProviderKind, status: u16, path: &str) -> ProviderError {
    answer(kind, Reply::json(status, fixture(path))).await.0.expect_err("an error answer")
}

fn usage(prompt: u64, completion: u64, cached: u64) -> Usage {
    Usage { prompt_tokens: prompt, completion_tokens: completion, cached_tokens: cached, cache_write_tokens: 0 }
}

#[tokio::test]
async fn each_built_in_kind_sends_a_bearer_key_to_chat_completions_with_only_what_its_api_takes() {
    let chinese = ["qwen", "moonshot", "zhipu", "ernie", "doubao", "minimax", "gemini"];
    for id in chinese {
        let kind = ProviderKind::parse(id).expect(id);
        let spec = kind.spec();
        assert_eq!(spec.sdk_env.map(|(k, _)| k), Some(&*format!("{}_API_KEY", id.to_uppercase())) as Option<&str>);
        let upstream = serve(Reply::json(200, fixture("openai/chat_completion.json"))).await;
        let mut s = setup(kind, &format!("{}/v9", upstream.url), "m");
        s.request = serde_json::from_value(json!({
            "model": "m", "max_completion_tokens": 64, "n": 1, "logprobs": true, "top_logprobs": 2,
            "messages": [{"role": "user", "content": "你好"}]
        }))
        .unwrap();
        ProviderClient::new().unwrap().chat(s.call()).await.expect(id);
        let seen = upstream.only();
        assert_eq!(seen.path, "/v9/chat/completions", "{id}");
        assert_eq!(seen.header("authorization"), Some(&*format!("Bearer {KEY}")), "{id}");
        let body = seen.json();
        match spec.max_tokens_only {
            true => {
                assert_eq!((body["max_tokens"].as_u64(), body.get("max_completion_tokens")), (Some(64), None), "{id}")
            }
            false => assert_eq!(body["max_completion_tokens"], 64, "{id}"),
        }
        assert_eq!(body.get("n").is_some(), spec.several_choices, "{id}: `n` only where the API takes it");
        assert_eq!(body.get("logprobs").is_some(), spec.logprobs, "{id}: `logprobs` only where the API takes it");
    }
    assert!(KINDS.len() >= 12);
}

// ---------------------------------------------------------------- usage

#[tokio::test]
async fn qwen_and_zhipu_report_reasoning_and_cache_reads_the_openai_way() {
    let (reply, _) =
        answer(ProviderKind::Qwen, Reply::json(200, fixture("cn/qwen/chat_completion_reasoning_recorded.json"))).await;
    let recorded: Value = serde_json::from_slice(&fixture("cn/qwen/chat_completion_reasoning_recorded.json")).unwrap();
    let u = &recorded["usage"];
    let reply = reply.unwrap();
    assert_eq!(reply.usage.prompt_tokens, u["prompt_tokens"].as_u64().unwrap());
    assert_eq!(reply.usage.completion_tokens, u["completion_tokens"].as_u64().unwrap());
    assert_eq!(
        reply.body.as_ref(),
        fixture("cn/qwen/chat_completion_reasoning_recorded.json").as_slice(),
        "passed through"
    );

    let (reply, _) =
        answer(ProviderKind::Zhipu, Reply::json(200, fixture("cn/zhipu/chat_completion_glm53_recorded.json"))).await;
    let recorded: Value = serde_json::from_slice(&fixture("cn/zhipu/chat_completion_glm53_recorded.json")).unwrap();
    let u = &recorded["usage"];
    let cached = u["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0);
    assert_eq!(
        reply.unwrap().usage,
        usage(u["prompt_tokens"].as_u64().unwrap(), u["completion_tokens"].as_u64().unwrap(), cached)
    );
}

#[tokio::test]
async fn kimi_cache_reads_count_once_from_either_field() {
    let (reply, _) = answer(
        ProviderKind::Moonshot,
        Reply::json(200, fixture("cn/kimi/chat_completion_reasoning_cached_recorded.json")),
    )
    .await;
    assert_eq!(reply.unwrap().usage, usage(90, 34, 90));
    // Older answers carried only the top-level field.
    let older = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "moonshot-v1-8k",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "OK"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 2, "total_tokens": 42, "cached_tokens": 32}});
    let (reply, _) = answer(ProviderKind::Moonshot, Reply::json(200, older.to_string())).await;
    assert_eq!(reply.unwrap().usage, usage(40, 2, 32));
}

#[tokio::test]
async fn gemini_thinking_tokens_outside_completion_tokens_are_billed_as_output() {
    // Recorded: prompt 17, completion 2, total 49: 30 thinking tokens counted only in the total.
    let (reply, _) =
        answer(ProviderKind::Gemini, Reply::json(200, fixture("cn/gemini/chat_completion_recorded.json"))).await;
    assert_eq!(reply.unwrap().usage, usage(17, 32, 0));
}

#[tokio::test]
async fn minimax_doubao_and_ernie_success_bodies_are_read() {
    let (reply, _) =
        answer(ProviderKind::Minimax, Reply::json(200, fixture("cn/minimax/chat_completion_docs_example_cn.json")))
            .await;
    assert_eq!(reply.expect("status_code 0 is success").usage, usage(22, 21, 0));
    let (reply, _) =
        answer(ProviderKind::Doubao, Reply::json(200, fixture("cn/doubao/chat_completion_relay_doc_example.json")))
            .await;
    let recorded: Value = serde_json::from_slice(&fixture("cn/doubao/chat_completion_relay_doc_example.json")).unwrap();
    let u = &recorded["usage"];
    assert_eq!(
        reply.unwrap().usage,
        usage(
            u["prompt_tokens"].as_u64().unwrap(),
            u["completion_tokens"].as_u64().unwrap(),
            u["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0)
        )
    );
    let (reply, _) =
        answer(ProviderKind::Ernie, Reply::json(200, fixture("cn/baidu/chat_completion_reconstructed.json"))).await;
    assert_eq!(reply.unwrap().model, "ernie-5.1");
}

// ---------------------------------------------------------------- errors

#[tokio::test]
async fn an_account_out_of_balance_is_quota_whatever_the_status() {
    for (kind, status, path, code) in [
        (ProviderKind::Qwen, 400, "cn/qwen/error_400_arrearage.json", "Arrearage"),
        (ProviderKind::Moonshot, 429, "cn/kimi/error_429_insufficient_balance.json", "exceeded_current_quota_error"),
        (ProviderKind::Zhipu, 429, "cn/zhipu/error_429_1113_insufficient_balance.json", "1113"),
        (ProviderKind::Doubao, 403, "cn/doubao/error_403_account_overdue_reconstructed.json", "AccountOverdueError"),
    ] {
        let e = error(kind, status, path).await;
        assert_eq!(e.kind, ProviderErrorKind::QuotaExceeded, "{path}: {e:?}");
        assert_eq!((e.status, e.code.as_deref()), (Some(status), Some(code)), "{path}");
        assert!(!e.message.is_empty());
    }
}

#[tokio::test]
async fn rate_limits_overloads_bad_keys_and_bad_requests_keep_their_meaning() {
    for (kind, status, path, expected) in [
        (ProviderKind::Qwen, 401, "cn/qwen/error_401_invalid_api_key.json", ProviderErrorKind::Auth),
        (ProviderKind::Qwen, 400, "cn/qwen/error_400_data_inspection_failed.json", ProviderErrorKind::InvalidRequest),
        (
            ProviderKind::Qwen,
            429,
            "cn/qwen/error_429_limit_requests_reconstructed.json",
            ProviderErrorKind::RateLimited,
        ),
        (ProviderKind::Moonshot, 429, "cn/kimi/error_429_rate_limit.json", ProviderErrorKind::RateLimited),
        (ProviderKind::Moonshot, 400, "cn/kimi/error_400_content_filter.json", ProviderErrorKind::InvalidRequest),
        (
            ProviderKind::Moonshot,
            404,
            "cn/kimi/error_404_model_not_found_recorded.json",
            ProviderErrorKind::InvalidRequest,
        ),
        (ProviderKind::Zhipu, 429, "cn/zhipu/error_429_1302_rate_limit.json", ProviderErrorKind::RateLimited),
        (ProviderKind::Zhipu, 429, "cn/zhipu/error_429_1305_overloaded.json", ProviderErrorKind::Overloaded),
        (ProviderKind::Zhipu, 401, "cn/zhipu/error_401_reconstructed.json", ProviderErrorKind::Auth),
        (ProviderKind::Ernie, 429, "cn/baidu/error_429_rpm_rate_limit.json", ProviderErrorKind::RateLimited),
        (ProviderKind::Doubao, 401, "cn/doubao/error_401_reconstructed.json", ProviderErrorKind::Auth),
        (
            ProviderKind::Doubao,
            429,
            "cn/doubao/error_429_endpoint_rpm_reconstructed.json",
            ProviderErrorKind::RateLimited,
        ),
    ] {
        let e = error(kind, status, path).await;
        assert_eq!(e.kind, expected, "{path}: {e:?}");
        assert!(!e.message.starts_with("HTTP "), "{path}: the provider's own message is kept: {}", e.message);
    }
}

#[tokio::test]
async fn gemini_errors_in_a_json_array_are_unwrapped() {
    let e = error(ProviderKind::Gemini, 400, "cn/gemini/error_400_list_wrapped.json").await;
    assert_eq!(e.kind, ProviderErrorKind::InvalidRequest);
    assert_eq!(e.code.as_deref(), Some("INVALID_ARGUMENT"));
    assert!(e.message.contains("Function calling with a response mime type"), "{}", e.message);
    let exhausted =
        json!([{"error": {"code": 429, "message": "You exceeded your current quota", "status": "RESOURCE_EXHAUSTED"}}]);
    let (reply, _) = answer(ProviderKind::Gemini, Reply::json(429, exhausted.to_string())).await;
    let e = reply.expect_err("429");
    assert_eq!((e.kind, e.code.as_deref()), (ProviderErrorKind::RateLimited, Some("RESOURCE_EXHAUSTED")));
}

#[tokio::test]
async fn minimax_errors_in_a_200_answer_are_errors() {
    let body = |code: i64, msg: &str| {
        json!({"id": "x", "choices": [], "created": 1, "model": "MiniMax-M2.7", "object": "chat.completion",
            "usage": {"total_tokens": 0, "prompt_tokens": 0, "completion_tokens": 0},
            "base_resp": {"status_code": code, "status_msg": msg}})
        .to_string()
    };
    for (code, expected, status) in [
        (1008, ProviderErrorKind::QuotaExceeded, 402),
        (1002, ProviderErrorKind::RateLimited, 429),
        (1004, ProviderErrorKind::Auth, 401),
        (2013, ProviderErrorKind::InvalidRequest, 400),
        (1024, ProviderErrorKind::Server, 500),
        (4242, ProviderErrorKind::Server, 500),
    ] {
        let message = format!("error {code} for key {KEY}");
        let (reply, _) = answer(ProviderKind::Minimax, Reply::json(200, body(code, &message))).await;
        let e = reply.expect_err("a non-zero status_code");
        assert_eq!((e.kind, e.status, e.code.clone()), (expected, Some(status), Some(code.to_string())), "{code}");
        assert!(e.message.starts_with(&format!("error {code} for key")) && !e.message.contains(KEY), "{}", e.message);
    }
    // The same body shape from a kind that does not put errors there is an ordinary answer.
    let (reply, _) = answer(ProviderKind::OpenaiCompatible, Reply::json(200, body(1008, "x"))).await;
    assert!(reply.is_ok());
}

// ---------------------------------------------------------------- streams

async fn drain(mut stream: UpstreamStream) -> (usize, Result<(), ProviderErrorKind>, Usage) {
    let mut frames = 0;
    loop {
        match stream.next().await {
            Ok(Some(batch)) => frames += batch.len(),
            Ok(None) => return (frames, Ok(()), stream.usage()),
            Err(e) => return (frames, Err(e.kind), stream.usage()),
        }
    }
}

async fn stream(kind: ProviderKind, path: &str) -> (usize, Result<(), ProviderErrorKind>, Usage) {
    let upstream = serve(Reply::raw(200, "text/event-stream", fixture(path))).await;
    let mut s = setup(kind, &upstream.url, "m");
    s.request =
        serde_json::from_value(json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .unwrap();
    let opened = ProviderClient::new().unwrap().chat_stream(s.call(), true).await.expect(path);
    let sent = upstream.only().json();
    assert_eq!(sent["stream_options"]["include_usage"], true, "usage is always asked for");
    drain(opened).await
}

#[tokio::test]
async fn stream_usage_is_counted_once_wherever_each_provider_puts_it() {
    // Kimi repeats the usage inside the finishing choice and in a trailing chunk: counted once.
    let (frames, end, u) = stream(ProviderKind::Moonshot, "cn/kimi/stream_reasoning_usage_recorded.sse").await;
    assert_eq!((end, u), (Ok(()), usage(90, 50, 90)));
    assert!(frames > 3);
    // Zhipu sends it with the finish chunk, no separate usage chunk.
    let (_, end, u) = stream(ProviderKind::Zhipu, "cn/zhipu/stream_thinking_recorded.sse").await;
    assert_eq!((end, u), (Ok(()), usage(13, 564, 0)));
    // Qwen sends a separate `choices: []` chunk, after a tool call split over several deltas.
    let (_, end, u) = stream(ProviderKind::Qwen, "cn/qwen/stream_tool_call_recorded.sse").await;
    assert_eq!(end, Ok(()));
    assert!(u.prompt_tokens > 0 && u.completion_tokens > 0, "{u:?}");
    let (_, end, u) = stream(ProviderKind::Qwen, "cn/qwen/stream_reasoning_recorded.sse").await;
    assert_eq!(end, Ok(()));
    assert!(u.completion_tokens > 0, "{u:?}");
}
