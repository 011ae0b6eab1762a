//! The Lambda invocation's deadline: the chat router of `main.rs` (with
//! `with_invocation_deadline`) gets requests carrying the `lambda_runtime::Context` that
//! `lambda_http` puts in their extensions, with a deadline a few seconds ahead, and calls a local
//! OpenAI-format upstream that streams forever (or never answers). A stream must end in-band
//! before the deadline, recorded once with the tokens seen and reconciled on the key's windows;
//! a non-streamed call must give up with a 504 before the deadline. Without a deadline (or with
//! an emulator's placeholder) nothing is cut.

#![allow(clippy::expect_used, clippy::panic, reason = "test helpers: a failed expectation is a failed test")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use maestro_chat::{ChatState, router, with_invocation_deadline};
use maestro_lambda_common::Env;
use maestro_shared::bootstrap::bootstrap;
use maestro_shared::config::FileConfig;
use maestro_shared::gateway::{Backends, Gateway};
use maestro_shared::logs::{CallStatus, LogEvent, LogSink};
use maestro_shared::providers::ProviderClient;
use maestro_shared::store::CounterStore;
use maestro_shared::store::embedded::EmbeddedStore;
use serde_json::{Value, json};
use tower::ServiceExt;

const JWT_SECRET: &str = "invocation-deadline-test-secret-0123456789";
/// The margin the router keeps before the invocation's deadline in these tests.
const MARGIN: Duration = Duration::from_millis(1_000);
/// How far ahead the invocation's deadline is: the call must end after `AHEAD - MARGIN`.
const AHEAD: Duration = Duration::from_millis(2_500);

#[derive(Default)]
struct RecordingSink(Mutex<Vec<LogEvent>>);

#[async_trait::async_trait]
impl LogSink for RecordingSink {
    async fn send(&self, event: LogEvent) {
        self.0.lock().expect("sink lock").push(event);
    }
}

impl RecordingSink {
    fn events(&self) -> Vec<LogEvent> {
        self.0.lock().expect("sink lock").clone()
    }
}

struct App {
    router: Router,
    sink: Arc<RecordingSink>,
    store: Arc<EmbeddedStore>,
    gateway: Arc<Gateway>,
    token: String,
}

/// The router as `main.rs` builds it, on an embedded store whose only key (`sk-endless-…`) gets
/// an endless stream from the fake provider, and no answer at all to a plain call.
async fn app() -> App {
    let upstream = maestro_test_support::FakeProvider::start().await.url;
    let config = format!(
        "[[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{upstream}\"\n\
         [[models]]\nprovider = \"fake\"\nmodel = \"m1\"\ninput_price = 1000000\noutput_price = 1000000\n\
         [[keys]]\nprovider = \"fake\"\nname = \"k\"\nsecret = \"sk-endless-aaaaaaaaaaaa\"\ntpm = 1000000\n"
    );
    let store = Arc::new(EmbeddedStore::open_in_memory().expect("store"));
    let config = FileConfig::parse(&config).expect("config");
    bootstrap(store.as_ref(), store.as_ref(), &config, &maestro_shared::config::Env::from_pairs(&[]), false)
        .await
        .expect("bootstrap");
    let sink = Arc::new(RecordingSink::default());
    let backends = Backends {
        catalog: store.clone(),
        counters: store.clone(),
        secrets: store.clone(),
        log_sink: sink.clone(),
        caller_keys: store.clone(),
        credits: None,
        response_cache: store.clone(),
    };
    let env = Env::from_pairs(&[("MAESTRO_JWT_SECRET", JWT_SECRET)]);
    let options = env.gateway_options().expect("options");
    let gateway = Arc::new(Gateway::new(backends, ProviderClient::new().expect("client"), options));
    let auth = env.required_jwt_auth().expect("jwt");
    let token = auth.issue("user-1", false, Duration::from_secs(600)).expect("token");
    let state = ChatState { gateway: gateway.clone(), auth, max_body_bytes: 1 << 20 };
    let router = with_invocation_deadline(router(state), MARGIN).fallback(maestro_shared::http::not_found);
    App { router, sink, store, gateway, token }
}

/// A Lambda context whose deadline is `ahead` from now.
fn context(ahead: Duration) -> lambda_http::Context {
    let deadline = SystemTime::now() + ahead;
    context_at(deadline.duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as u64)
}

/// A Lambda context with this deadline (unix ms).
fn context_at(deadline_ms: u64) -> lambda_http::Context {
    let mut context = lambda_http::Context::default();
    context.deadline = deadline_ms;
    context
}

fn request(app: &App, path: &str, body: Value, context: Option<lambda_http::Context>) -> Request<Body> {
    let mut request = Request::post(path)
        .header("authorization", format!("Bearer {}", app.token))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    if let Some(context) = context {
        request.extensions_mut().insert(context);
    }
    request
}

fn chat_body(stream: bool) -> Value {
    json!({"model": "fake/m1", "stream": stream, "messages": [{"role": "user", "content": "sing"}]})
}

/// The tokens the key's minute window at `ts_ms` holds (its tpm; reconciled to the real usage
/// once a call ends).
async fn minute_tokens(app: &App, ts_ms: i64) -> u64 {
    let catalog = app.gateway.catalog().await.expect("catalog");
    let key = catalog.providers.iter().flat_map(|p| p.keys.iter()).next().expect("the fake key");
    let (minute, _) = app.store.usage(&key.id, ts_ms).await.expect("usage");
    minute.tokens
}

#[tokio::test]
async fn a_stream_running_into_the_invocation_deadline_ends_in_band_before_it_and_is_recorded_once() {
    let app = app().await;
    let started = Instant::now();
    let request = request(&app, "/v1/chat/completions", chat_body(true), Some(context(AHEAD)));

    let response = app.router.clone().oneshot(request).await.expect("the router answers");

    assert_eq!(response.status(), StatusCode::OK);
    // The upstream never ends: only the deadline can end this body.
    let bytes = tokio::time::timeout(Duration::from_secs(10), to_bytes(response.into_body(), 1 << 22))
        .await
        .expect("the stream ended on its own, before the test's patience ran out")
        .expect("body");
    let ended = started.elapsed();
    assert!(ended >= AHEAD - MARGIN - Duration::from_millis(100), "not cut before the margin: {ended:?}");
    assert!(ended < AHEAD, "ended before the invocation's deadline: {ended:?}");
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
    assert!(text.contains("\"la \""), "frames arrived before the cut: {text}");
    let frames: Vec<&str> = text.split("\n\n").filter_map(|f| f.strip_prefix("data: ")).collect();
    let last: Value = serde_json::from_str(frames.last().expect("frames")).expect("the last frame is JSON");
    assert_eq!(last["error"]["code"], "stream_deadline_exceeded", "{text}");
    assert_eq!(last["error"]["type"], "server_error");
    assert!(!text.contains("[DONE]"), "a cut stream is not complete");

    // The body ends only after the call is recorded; nothing else comes later.
    let events = app.sink.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!((event.status, event.http_status), (CallStatus::Error, 504));
    assert_eq!(event.error_code.as_deref(), Some("stream_deadline_exceeded"));
    assert!(event.stream);
    assert!(event.prompt_tokens > 0, "{event:?}");
    assert!(event.completion_tokens >= 1, "the text seen is counted: {event:?}");
    assert!(event.cost_micros > 0, "{event:?}");
    assert_eq!(
        minute_tokens(&app, event.ts_ms).await,
        event.prompt_tokens + event.completion_tokens,
        "the key's reservation was reconciled to the tokens seen"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.sink.events().len(), 1, "recorded once");
}

#[tokio::test]
async fn an_anthropic_messages_stream_is_cut_the_same_way_with_an_error_event() {
    let app = app().await;
    let started = Instant::now();
    let body = json!({"model": "fake/m1", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "sing"}]});
    let request = request(&app, "/v1/messages", body, Some(context(AHEAD)));

    let response = app.router.clone().oneshot(request).await.expect("the router answers");

    assert_eq!(response.status(), StatusCode::OK);
    let bytes = tokio::time::timeout(Duration::from_secs(10), to_bytes(response.into_body(), 1 << 22))
        .await
        .expect("the stream ended on its own")
        .expect("body");
    assert!(started.elapsed() < AHEAD, "{:?}", started.elapsed());
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
    assert!(text.contains("event: error"), "{text}");
    assert!(text.contains("ran past its deadline"), "{text}");
    let events = app.sink.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].error_code.as_deref(), Some("stream_deadline_exceeded"));
}

#[tokio::test]
async fn a_completion_without_an_answer_gives_up_with_504_before_the_invocation_deadline() {
    let app = app().await;
    let started = Instant::now();
    let request = request(&app, "/v1/chat/completions", chat_body(false), Some(context(AHEAD)));

    let response = tokio::time::timeout(Duration::from_secs(10), app.router.clone().oneshot(request))
        .await
        .expect("answered before the test's patience ran out (retry.deadline_ms is 300 s)")
        .expect("the router answers");

    let ended = started.elapsed();
    assert!(ended < AHEAD, "answered before the invocation's deadline: {ended:?}");
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let body: Value =
        serde_json::from_slice(&to_bytes(response.into_body(), 1 << 20).await.expect("body")).expect("JSON error");
    assert!(body["error"]["message"].is_string(), "{body}");
    let events = app.sink.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].status, events[0].http_status), (CallStatus::Error, 504));
    assert_eq!(minute_tokens(&app, events[0].ts_ms).await, 0, "the timed-out attempt's reservation was given back");
}

#[tokio::test]
async fn without_an_invocation_deadline_a_stream_is_not_cut() {
    let app = app().await;
    // The local runner's requests have no Lambda context; a default one has deadline 0, and
    // `cargo lambda watch` sends the fixed 600000 (1970): none of them is a deadline.
    for context in [None, Some(context_at(0)), Some(context_at(600_000))] {
        let request = request(&app, "/v1/chat/completions", chat_body(true), context);
        let response = app.router.clone().oneshot(request).await.expect("the router answers");
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body().into_data_stream();
        let mut text = String::new();
        let reading = async {
            while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut body).await {
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
        };
        // Past the point where a deadline of `AHEAD - MARGIN` would have cut it.
        let still_running = tokio::time::timeout(AHEAD, reading).await.is_err();
        assert!(still_running, "the stream ended: {text}");
        assert!(!text.contains("error"), "{text}");
    }
}
