//! Every chat event in `events/` through the chat router, the way the Lambda binary serves it:
//! each file is read with `lambda_http::request::from_str` (the runtime's own conversion of a
//! Function URL event into an HTTP request) and sent with `oneshot` to the router `main.rs`
//! builds, here on the embedded backend with the offline demo model.

#![allow(clippy::expect_used, clippy::panic, reason = "test helpers: a failed expectation is a failed test")]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::StatusCode;
use axum::response::Response;
use maestro_chat::{ChatState, router};
use maestro_lambda_common::Env;
use maestro_shared::bootstrap::bootstrap;
use maestro_shared::config::FileConfig;
use maestro_shared::gateway::{Backends, Gateway};
use maestro_shared::logs::{CallStatus, LogEvent, LogSink};
use maestro_shared::providers::ProviderClient;
use maestro_shared::store::embedded::EmbeddedStore;
use serde_json::Value;
use tower::ServiceExt;

/// The HS256 secret the tokens in `events/chat-*.json` are signed with (README, "Invoke locally").
const DEV_JWT_SECRET: &str = "maestro-local-dev-secret-change-me-0123456789";

/// Keeps the log events the gateway sends, in place of SQS.
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

/// The router of `main.rs`, on a fresh embedded store with the seed catalog and the demo model.
async fn app() -> (Router, Arc<RecordingSink>) {
    // The offline model is served only where MAESTRO_ALLOW_DEMO says so (never in the template).
    let env = Env::from_pairs(&[("MAESTRO_JWT_SECRET", DEV_JWT_SECRET), ("MAESTRO_ALLOW_DEMO", "true")]);
    let store = Arc::new(EmbeddedStore::open_in_memory().expect("store"));
    bootstrap(
        store.as_ref(),
        store.as_ref(),
        &FileConfig::default(),
        &maestro_shared::config::Env::from_pairs(&[]),
        true,
    )
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
    let options = env.gateway_options().expect("options");
    let gateway = Arc::new(Gateway::new(backends, ProviderClient::new().expect("client"), options));
    let state = ChatState {
        gateway,
        auth: env.required_jwt_auth().expect("jwt"),
        max_body_bytes: env.max_body_bytes().expect("limit"),
    };
    (router(state).fallback(maestro_shared::http::not_found), sink)
}

async fn invoke(app: Router, event: &str) -> (StatusCode, Response<Body>, Value) {
    let request = lambda_http::request::from_str(event).expect("a Function URL event lambda_http accepts");
    let response = app.oneshot(request).await.expect("the router answers");
    let status = response.status();
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, Response::from_parts(parts, Body::empty()), json)
}

fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn given_the_function_url_completion_event_then_the_demo_model_answers_and_one_log_event_is_sent() {
    let (app, sink) = app().await;

    let (status, response, body) = invoke(app, include_str!("../../../events/chat-function-url-completion.json")).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["object"], "chat.completion");
    let content = body["choices"][0]["message"]["content"].as_str().expect("content");
    assert!(content.ends_with("Say hello to the Maestro gateway."), "{content}");
    assert_eq!(header(&response, "x-maestro-provider"), Some("demo"));
    assert_eq!(header(&response, "x-maestro-model"), Some("demo/echo"));
    let events = sink.events();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].status, events[0].user_id.as_deref()), (CallStatus::Success, Some("events-user-42")));
    assert_eq!(header(&response, "x-request-id"), Some(events[0].request_id.as_str()));
}

#[tokio::test]
async fn given_the_streaming_completion_event_then_sse_chunks_end_with_usage_and_done_and_one_log_event() {
    let (app, sink) = app().await;
    let request =
        lambda_http::request::from_str(include_str!("../../../events/chat-function-url-completion-stream.json"))
            .expect("a Function URL event lambda_http accepts");

    let response = app.oneshot(request).await.expect("the router answers");

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), Some("text/event-stream"));
    assert_eq!(header(&response, "x-maestro-provider"), Some("demo"));
    let bytes = to_bytes(response.into_body(), 1 << 20).await.expect("the whole stream");
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
    let frames: Vec<&str> = text.split("\n\n").filter_map(|f| f.strip_prefix("data: ")).collect();
    assert_eq!(frames.last(), Some(&"[DONE]"), "{text}");
    let chunks: Vec<Value> = frames.iter().filter_map(|f| serde_json::from_str(f).ok()).collect();
    let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(content.ends_with("Stream a short hello, please."), "{content}");
    let usage = chunks.iter().rev().find(|c| c["usage"].is_object()).expect("a usage chunk (include_usage)");
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap_or_default() > 0);
    let events = sink.events();
    assert_eq!(events.len(), 1, "one log event once the stream ended");
    assert!(events[0].stream);
}

#[tokio::test]
async fn given_a_completion_for_a_provider_without_keys_then_it_is_503_in_openai_shape_and_logged() {
    let (app, sink) = app().await;

    let (status, _, body) =
        invoke(app, include_str!("../../../events/chat-function-url-completion-deepseek.json")).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "no_usable_key");
    let events = sink.events();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].provider.as_str(), events[0].status), ("deepseek", CallStatus::Error));
}

#[tokio::test]
async fn given_the_models_event_then_the_list_names_provider_slash_model() {
    let (app, _) = app().await;

    let (status, _, body) = invoke(app, include_str!("../../../events/chat-function-url-models.json")).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"].as_array().expect("data").iter().filter_map(|m| m["id"].as_str()).collect();
    assert!(ids.contains(&"demo/echo"), "{ids:?}");
    assert!(ids.contains(&"deepseek/deepseek-v4-flash"), "{ids:?}");
}

#[tokio::test]
async fn given_a_completion_without_a_token_then_it_is_401_and_nothing_is_logged() {
    let (app, sink) = app().await;

    let (status, _, body) =
        invoke(app, include_str!("../../../events/chat-function-url-completion-no-token.json")).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(sink.events().is_empty());
}
