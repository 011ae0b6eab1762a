//! A fast provider stand-in for benchmarks: answers OpenAI `/chat/completions` and Anthropic
//! `/v1/messages`, streaming or not, after an optional fixed delay. The bodies are the recorded
//! fixtures' shapes, built once at start.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: String,
    /// Milliseconds before each answer starts.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

const OPENAI: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1741569952,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0}}}"#;
const ANTHROPIC: &str = r#"{"content":[{"text":"Hello! How can I assist you today?","type":"text"}],"id":"msg_bench","model":"claude-sonnet-4-5","role":"assistant","stop_reason":"end_turn","stop_sequence":null,"type":"message","usage":{"input_tokens":19,"output_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}"#;
const OPENAI_STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello!\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":2,\"total_tokens\":21}}\n\n",
    "data: [DONE]\n\n"
);

const ANTHROPIC_STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"usage\":{\"input_tokens\":19,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello!\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
);

async fn answer(delay: Duration, body: Bytes, json: &'static str) -> Response {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let needle: &[u8] = b"\"stream\":true";
    let streaming = body.windows(needle.len()).any(|w| w == needle);
    if streaming {
        // The first frame leaves at once; the rest follow, as a real stream would.
        let stream_body = if json == ANTHROPIC { ANTHROPIC_STREAM } else { OPENAI_STREAM };
        let frames: Vec<&'static str> = stream_body.split_inclusive("\n\n").collect();
        let stream = futures_util::stream::iter(
            frames.into_iter().map(|f| Ok::<_, std::convert::Infallible>(Bytes::from_static(f.as_bytes()))),
        );
        return ([(CONTENT_TYPE, "text/event-stream")], Body::from_stream(stream)).into_response();
    }
    ([(CONTENT_TYPE, "application/json")], json).into_response()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let delay = Duration::from_millis(args.delay_ms);
    let app = Router::new()
        .route("/chat/completions", post(move |body: Bytes| answer(delay, body, OPENAI)))
        .route("/v1/chat/completions", post(move |body: Bytes| answer(delay, body, OPENAI)))
        .route("/v1/messages", post(move |body: Bytes| answer(delay, body, ANTHROPIC)));
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    axum::serve(listener, app).await
}
