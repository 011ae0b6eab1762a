//! The chat function's CloudWatch metrics: with the log sink `main.rs` wires
//! (`maestro_lambda_common::aws::emf_sink`), each call served from a Function URL event prints
//! one Embedded Metric Format line, the call's own log event in metric form; off Lambda nothing.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::to_bytes;
use maestro_chat::{ChatState, router};
use maestro_lambda_common::Env;
use maestro_lambda_common::aws::emf_sink;
use maestro_shared::bootstrap::bootstrap;
use maestro_shared::config::FileConfig;
use maestro_shared::gateway::{Backends, Gateway};
use maestro_shared::logs::{LogEvent, LogSink};
use maestro_shared::metrics::emf::document;
use maestro_shared::providers::ProviderClient;
use maestro_shared::store::embedded::EmbeddedStore;
use serde_json::Value;
use tower::ServiceExt;

const DEV_JWT_SECRET: &str = "maestro-local-dev-secret-change-me-0123456789";

#[derive(Default)]
struct RecordingSink(Mutex<Vec<LogEvent>>);

#[async_trait::async_trait]
impl LogSink for RecordingSink {
    async fn send(&self, event: LogEvent) {
        self.0.lock().unwrap().push(event);
    }
}

/// Stdout as the test sees it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// The chat router on the embedded store with the demo model, its log sink wrapped as on Lambda
/// for the environment `env`.
async fn app(env: &[(&str, &str)]) -> (Router, Arc<RecordingSink>, Captured) {
    let mut pairs = vec![("MAESTRO_JWT_SECRET", DEV_JWT_SECRET), ("MAESTRO_ALLOW_DEMO", "true")];
    pairs.extend_from_slice(env);
    let env = Env::from_pairs(&pairs);
    let store = Arc::new(EmbeddedStore::open_in_memory().unwrap());
    bootstrap(store.as_ref(), store.as_ref(), &FileConfig::default(), &Env::from_pairs(&[]), true).await.unwrap();
    let (sink, stdout) = (Arc::new(RecordingSink::default()), Captured::default());
    let backends = Backends {
        catalog: store.clone(),
        counters: store.clone(),
        secrets: store.clone(),
        log_sink: emf_sink(sink.clone(), &env, stdout.clone()).unwrap(),
        caller_keys: store.clone(),
        credits: None,
        response_cache: store.clone(),
    };
    let gateway = Arc::new(Gateway::new(backends, ProviderClient::new().unwrap(), env.gateway_options().unwrap()));
    let state =
        ChatState { gateway, auth: env.required_jwt_auth().unwrap(), max_body_bytes: env.max_body_bytes().unwrap() };
    (router(state), sink, stdout)
}

async fn invoke(app: Router, event: &str) -> u16 {
    let response = app.oneshot(lambda_http::request::from_str(event).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    to_bytes(response.into_body(), 1 << 20).await.unwrap();
    status
}

#[tokio::test]
async fn on_lambda_each_call_prints_its_metrics_line() {
    let (app, sink, stdout) = app(&[("AWS_LAMBDA_FUNCTION_NAME", "maestro-chat")]).await;
    let completion = include_str!("../../../events/chat-function-url-completion.json");
    assert_eq!(invoke(app.clone(), completion).await, 200);
    assert_eq!(invoke(app, include_str!("../../../events/chat-function-url-completion-stream.json")).await, 200);

    let events = sink.0.lock().unwrap().clone();
    assert_eq!(events.len(), 2);
    let text = stdout.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, [document(&events[0]), document(&events[1])], "one line per call, in order");
    assert!(text.ends_with('\n'));

    let completion: Value = serde_json::from_str(lines[0]).unwrap();
    let directive = &completion["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Maestro");
    assert_eq!(directive["Dimensions"], serde_json::json!([[], ["provider"], ["provider", "model"]]));
    assert_eq!(completion["_aws"]["Timestamp"], events[0].ts_ms + events[0].latency_ms as i64);
    assert_eq!((completion["provider"].as_str(), completion["model"].as_str()), (Some("demo"), Some("echo")));
    assert_eq!((completion["Calls"].as_u64(), completion["Errors"].as_u64()), (Some(1), Some(0)));
    assert_eq!(completion["PromptTokens"], events[0].prompt_tokens);
    assert_eq!(completion["request_id"], events[0].request_id.as_str());
    assert!(completion.get("TTFB").is_none(), "a completion has no first byte of its own");
    let stream: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(stream["TTFB"], events[1].ttfb_ms.unwrap());
    // The caller's identity stays in the log event.
    assert!(!text.contains("events-user-42"), "{text}");
}

#[tokio::test]
async fn off_lambda_or_switched_off_nothing_is_printed() {
    let completion = include_str!("../../../events/chat-function-url-completion.json");
    for env in [&[][..], &[("AWS_LAMBDA_FUNCTION_NAME", "maestro-chat"), ("MAESTRO_EMF", "0")][..]] {
        let (app, sink, stdout) = app(env).await;
        assert_eq!(invoke(app, completion).await, 200);
        assert_eq!(sink.0.lock().unwrap().len(), 1, "the call is still logged");
        assert_eq!(stdout.text(), "", "{env:?}");
    }
}
