//! One fake provider for every test: an axum server on 127.0.0.1:0 that records each request and
//! answers in the real wire formats, with recorded answers. Started with [`FakeProvider::start`],
//! the key a request carries decides the answer; with [`FakeProvider::replying`] (or [`serve`])
//! every request gets the same [`Reply`]; [`FakeProvider::then_reply`] scripts the next calls'
//! answers, whatever their key.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::{
    ANTHROPIC_529, ANTHROPIC_MESSAGE, ANTHROPIC_MODELS, ANTHROPIC_STREAM, ANTHROPIC_TOOL_STREAM, ANTHROPIC_TOOL_USE,
    DEEPSEEK_MODELS, OPENAI_400, OPENAI_401, OPENAI_429, OPENAI_COMPLETION, OPENAI_MODELS, OPENAI_QUOTA, OPENAI_STREAM,
    OPENAI_TOOL_CALL, OPENAI_TOOL_STREAM,
};

/// A fixed answer.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Time the server waits before answering (to trip the client's timeout).
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::raw(status, "application/json", body)
    }

    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// Path and query.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The provider key it carried (`x-api-key`, else the bearer token; empty without one).
    pub key: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

struct Shared {
    fixed: Option<Reply>,
    /// Replies the next calls get in order, whatever their key (see [`FakeProvider::then_reply`]).
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
    /// Milliseconds every call waits before it is answered (see [`FakeProvider::set_delay`]).
    delay_ms: std::sync::atomic::AtomicU64,
}

/// The fake provider. Started with [`Self::start`], it serves OpenAI's `…/chat/completions`,
/// `…/embeddings` (see [`embedding`]) and `…/models`, Anthropic's `…/v1/messages` and
/// `…/v1/models`, under any path prefix (a prefix `anthropic` or `deepseek` picks that provider's
/// recorded model list; one holding `no-models` has none: 404, as some providers' APIs). The key
/// decides:
///
/// `sk-ok-…` succeeds (the recorded stream when `stream: true`); `sk-tool-…` answers with the
/// recorded tool call; `sk-400-…` refuses the request; `sk-401-…` (and an unknown key) is refused
/// with OpenAI's 401, which names the key it got (as OpenAI does); `sk-429-…` is rate limited
/// (retry-after 30), `sk-wait7-…` asks for 7 s; `sk-quota-…` is out of credit; `sk-busy-…` is
/// overloaded (503, retry-after 2); `sk-500-…` fails; `sk-529-…` is Anthropic's overload;
/// `sk-slow-…` answers after 2 s, `sk-late-…` after 1 s; `sk-garbage-…` sends half a body;
/// `sk-html-…` an HTML 502; `sk-drip-…` streams the recorded events 100 ms apart; `sk-endless-…`
/// streams text every 100 ms forever (and never answers a plain call); `sk-linger-…` sends the
/// recorded stream and keeps the body open. A model list without a key is served (local servers
/// need none). Embeddings: `sk-ok-…` answers, `sk-late-…` and `sk-slow-…` answer late,
/// `sk-garbage-…` sends half a body, and the error keys fail as they do for chat.
#[derive(Clone)]
pub struct FakeProvider {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub url: String,
    shared: Arc<Shared>,
}

impl FakeProvider {
    /// A fake whose answers the keys decide.
    pub async fn start() -> Self {
        Self::listen(None).await
    }

    /// A fake that answers every request with `reply`.
    pub async fn replying(reply: Reply) -> Self {
        Self::listen(Some(reply)).await
    }

    async fn listen(fixed: Option<Reply>) -> Self {
        let shared = Arc::new(Shared {
            fixed,
            script: Mutex::new(VecDeque::new()),
            seen: Mutex::new(Vec::new()),
            delay_ms: Default::default(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, shared }
    }

    /// The base URL under `prefix` (a provider's `base_url` that picks its model list).
    pub fn base(&self, prefix: &str) -> String {
        format!("{}/{prefix}", self.url)
    }

    /// The next calls (chat, messages or embeddings) get `replies`, one each in order, whatever
    /// key they carry; `{key}` in a reply's body becomes the key the call carried (an upstream
    /// echoing it back). Once they are used up, the keys decide again.
    pub fn then_reply(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// Makes every later call (chat or messages) wait `delay` before it is answered: an upstream
    /// that slows down or recovers.
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// The one request the server got.
    pub fn only(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "expected exactly one upstream request");
        seen.into_iter().next().unwrap()
    }

    /// How many calls (chat, messages or embeddings) arrived with this key.
    pub fn calls(&self, key: &str) -> u32 {
        self.seen().iter().filter(|s| s.key == key && is_call(&s.path)).count() as u32
    }

    /// How many calls (chat, messages or embeddings) arrived.
    pub fn total_calls(&self) -> u32 {
        self.seen().iter().filter(|s| is_call(&s.path)).count() as u32
    }

    /// The body of the last call.
    pub fn last_body(&self) -> Value {
        let seen = self.seen();
        let last = seen.iter().rev().find(|s| is_call(&s.path)).expect("a call");
        serde_json::from_slice(&last.body).unwrap_or(Value::Null)
    }

    /// The keys the requests to a path ending in `path_end` (query aside) carried, in order.
    pub fn keys(&self, path_end: &str) -> Vec<String> {
        self.seen().into_iter().filter(|s| without_query(&s.path).ends_with(path_end)).map(|s| s.key).collect()
    }

    /// The headers of the last request, names lower-case.
    pub fn last_headers(&self) -> HashMap<String, String> {
        let seen = self.seen();
        let Some(last) = seen.last() else { return HashMap::new() };
        last.headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect()
    }
}

/// A fake that answers every request with `reply`.
pub async fn serve(reply: Reply) -> FakeProvider {
    FakeProvider::replying(reply).await
}

fn without_query(path: &str) -> &str {
    path.split('?').next().unwrap_or("")
}

fn is_call(path: &str) -> bool {
    let path = without_query(path);
    path.ends_with("/chat/completions") || path.ends_with("/v1/messages") || path.ends_with("/embeddings")
}

fn key_of(headers: &HeaderMap) -> String {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    text("x-api-key")
        .or_else(|| text("authorization").and_then(|a| a.strip_prefix("Bearer ").map(str::to_string)))
        .unwrap_or_default()
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_string(), |p| p.to_string());
    let key = key_of(&parts.headers);
    shared.seen.lock().unwrap().push(Seen {
        method: parts.method,
        path: path.clone(),
        headers: parts.headers,
        body: body.clone(),
        key: key.clone(),
    });
    let delay = shared.delay_ms.load(std::sync::atomic::Ordering::Relaxed);
    if delay > 0 && is_call(&path) {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let scripted = if is_call(&path) { shared.script.lock().unwrap().pop_front() } else { None };
    if let Some(mut reply) = scripted {
        let body = String::from_utf8_lossy(&reply.body).replace("{key}", &key);
        reply.body = body.into_bytes();
        return respond(&reply).await;
    }
    if let Some(reply) = &shared.fixed {
        return respond(reply).await;
    }
    let path = without_query(&path);
    if path.ends_with("/models") {
        return match path.contains("/no-models/") {
            true => StatusCode::NOT_FOUND.into_response(),
            false => models(path, &key),
        };
    }
    if path.ends_with("/embeddings") {
        return embeddings(&key, &body).await;
    }
    match (path.ends_with("/chat/completions"), path.ends_with("/v1/messages")) {
        (true, _) => call(&key, &body, false).await,
        (_, true) => call(&key, &body, true).await,
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn respond(reply: &Reply) -> Response {
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(reply.body.clone())).unwrap()
}

fn json(status: u16, body: &str) -> Response {
    (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body.to_string()).into_response()
}

fn sse(body: Body) -> Response {
    (StatusCode::OK, [("content-type", "text/event-stream")], body).into_response()
}

fn with_retry_after(mut response: Response, secs: &'static str) -> Response {
    response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static(secs));
    response
}

/// OpenAI's 401, naming the key it got.
fn refused(key: &str) -> Response {
    json(401, &OPENAI_401.replace("DEADBEEF", key))
}

fn kind_of(key: &str) -> &str {
    key.split('-').nth(1).unwrap_or("")
}

fn models(path: &str, key: &str) -> Response {
    match kind_of(key) {
        _ if key.is_empty() => {}
        "ok" => {}
        "429" => return with_retry_after(json(429, OPENAI_429), "30"),
        _ => return refused(key),
    }
    let list = if path.contains("/anthropic/") {
        ANTHROPIC_MODELS
    } else if path.contains("/deepseek/") {
        DEEPSEEK_MODELS
    } else {
        OPENAI_MODELS
    };
    json(200, list)
}

async fn call(key: &str, body: &[u8], anthropic: bool) -> Response {
    let ok = if anthropic { ANTHROPIC_MESSAGE } else { OPENAI_COMPLETION };
    let streaming = serde_json::from_slice::<Value>(body).ok().and_then(|b| b["stream"].as_bool()).unwrap_or(false);
    let recorded_stream = if anthropic { ANTHROPIC_STREAM } else { OPENAI_STREAM };
    match kind_of(key) {
        "ok" if streaming => sse(Body::from(recorded_stream)),
        "ok" => json(200, ok),
        "drip" => {
            let events: Vec<String> = recorded_stream.split_inclusive("\n\n").map(str::to_string).collect();
            let body = futures_util::stream::unfold(events.into_iter(), |mut events| async move {
                let next = events.next()?;
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Ok::<_, Infallible>(next), events))
            });
            sse(Body::from_stream(body))
        }
        "endless" if !streaming => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            json(504, "{}")
        }
        "endless" => {
            let chunk = r#"data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"la "},"finish_reason":null}]}"#;
            let body = futures_util::stream::unfold((), move |()| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Ok::<_, Infallible>(format!("{chunk}\n\n")), ()))
            });
            sse(Body::from_stream(body))
        }
        "linger" => {
            let recorded = futures_util::stream::iter([Ok::<_, Infallible>(recorded_stream.to_string())]);
            let body = futures_util::StreamExt::chain(recorded, futures_util::stream::pending());
            sse(Body::from_stream(body))
        }
        "late" => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if streaming { sse(Body::from(recorded_stream)) } else { json(200, ok) }
        }
        "tool" if streaming => sse(Body::from(if anthropic { ANTHROPIC_TOOL_STREAM } else { OPENAI_TOOL_STREAM })),
        "tool" => json(200, if anthropic { ANTHROPIC_TOOL_USE } else { OPENAI_TOOL_CALL }),
        "400" => json(400, OPENAI_400),
        "429" => with_retry_after(json(429, OPENAI_429), "30"),
        "wait7" => with_retry_after(json(429, OPENAI_429), "7"),
        "quota" => json(429, OPENAI_QUOTA),
        "busy" => with_retry_after(
            json(
                503,
                r#"{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}}"#,
            ),
            "2",
        ),
        "500" => json(
            500,
            r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#,
        ),
        "529" => json(529, ANTHROPIC_529),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            json(200, ok)
        }
        "garbage" => json(200, &ok[..ok.len() / 2]),
        "html" => {
            (StatusCode::BAD_GATEWAY, [("content-type", "text/html")], "<html><title>502 Bad Gateway</title></html>")
                .into_response()
        }
        _ => refused(key),
    }
}

/// Dimensions of a fake embedding when the request names none.
pub const EMBEDDING_DIMENSIONS: usize = 8;

/// The fake's embedding of one input item (its text, or its token ids), `dimensions` long:
/// multiples of 1/8 in [-1, 1), exact in float32, derived from the item's bytes, so equal
/// items embed alike and a test can compute what to expect.
pub fn embedding(item: &Value, dimensions: usize) -> Vec<f32> {
    let seed: u64 = match item {
        Value::String(text) => text.bytes().map(u64::from).sum(),
        Value::Array(ids) => ids.iter().filter_map(Value::as_u64).sum(),
        other => other.to_string().len() as u64,
    };
    (0..dimensions as u64).map(|j| ((seed + 3 * j) % 16) as f32 / 8.0 - 1.0).collect()
}

/// The tokens the fake bills for one input item: a text's words (at least 1), a token array's
/// length.
pub fn embedding_tokens(item: &Value) -> u64 {
    match item {
        Value::String(text) => text.split_whitespace().count().max(1) as u64,
        Value::Array(ids) => ids.len() as u64,
        _ => 1,
    }
}

/// The items of an embeddings `input`: a string or one token array is one item.
fn embedding_items(input: &Value) -> Vec<Value> {
    match input {
        Value::Array(items) if items.first().is_some_and(Value::is_number) => vec![input.clone()],
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

/// OpenAI's embedding list for `body` (`dimensions` honoured, `encoding_format: base64` as
/// little-endian float32s), with usage as [`embedding_tokens`] counts.
fn embedding_list(body: &Value) -> String {
    use base64::Engine;
    let dimensions = body["dimensions"].as_u64().map_or(EMBEDDING_DIMENSIONS, |d| d as usize);
    let base64 = body["encoding_format"] == "base64";
    let items = embedding_items(&body["input"]);
    let data: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let vector = embedding(item, dimensions);
            let embedding = match base64 {
                true => {
                    let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
                    Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
                false => serde_json::json!(vector),
            };
            serde_json::json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: u64 = items.iter().map(embedding_tokens).sum();
    serde_json::json!({
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    })
    .to_string()
}

async fn embeddings(key: &str, body: &[u8]) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return json(400, OPENAI_400);
    };
    match kind_of(key) {
        "ok" => json(200, &embedding_list(&body)),
        "late" => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            json(200, &embedding_list(&body))
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            json(200, &embedding_list(&body))
        }
        "garbage" => {
            let list = embedding_list(&body);
            json(200, &list[..list.len() / 2])
        }
        // The errors are the chat path's, in the same envelope.
        _ => call(key, b"{}", false).await,
    }
}

/// A server that accepts connections and drops them without a word.
pub async fn hang_up_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    base
}

/// An address nothing listens on.
pub async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    base
}
