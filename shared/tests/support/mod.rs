//! A local stand-in for a provider: an axum server on 127.0.0.1:0 that records every request and
//! answers with a canned reply (usually a recorded fixture), plus builders for catalog values.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use maestro_shared::domain::{ChatRequest, Model, Prices, Provider, ProviderKind};
use maestro_shared::providers::Call;
use maestro_shared::secret::SecretString;
use serde_json::Value;

/// A recorded fixture, copied from the shared fixture set (see `fixtures/SOURCES.md`).
pub fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("fixture {full}: {e}"))
}

/// What the fake provider answers.
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

/// One request as the fake provider saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// Path and query.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
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
    reply: Reply,
    seen: Mutex<Vec<Seen>>,
}

pub struct Upstream {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base: String,
    shared: Arc<Shared>,
}

impl Upstream {
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// The one request the server got.
    pub fn only(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "expected exactly one upstream request");
        seen.into_iter().next().unwrap()
    }
}

pub async fn serve(reply: Reply) -> Upstream {
    let shared = Arc::new(Shared { reply, seen: Mutex::new(Vec::new()) });
    let app = Router::new().fallback(handle).with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Upstream { base, shared }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_string(), |p| p.to_string());
    shared.seen.lock().unwrap().push(Seen { method: parts.method, path, headers: parts.headers, body });
    let reply = &shared.reply;
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(reply.body.clone())).unwrap()
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

pub fn provider(kind: ProviderKind, base_url: &str, headers: &[(&str, &str)]) -> Provider {
    Provider {
        code: kind.as_str().into(),
        kind,
        name: kind.as_str().into(),
        base_url: base_url.into(),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        is_active: true,
        sort_order: 0,
    }
}

pub fn model(provider: &Provider, name: &str, max_output_tokens: Option<u64>) -> Model {
    Model {
        provider: provider.code.clone(),
        model: name.into(),
        model_type: "chat".into(),
        context_window: Some(200_000),
        max_output_tokens,
        supports_streaming: true,
        supports_tools: false,
        supports_vision: true,
        prices: Prices::default(),
        is_active: true,
        is_default: true,
        drop_params: false,
        created: 0,
    }
}

/// Everything a [`Call`] borrows, owned in one place.
pub struct Setup {
    pub provider: Provider,
    pub model: Model,
    pub key: SecretString,
    pub request: ChatRequest,
    pub default_max_tokens: u64,
    pub timeout: Duration,
}

impl Setup {
    pub fn new(provider: Provider, model_name: &str, key: &str, request: Value) -> Self {
        let model = model(&provider, model_name, None);
        Self {
            provider,
            model,
            key: SecretString::new(key),
            request: serde_json::from_value(request).unwrap(),
            default_max_tokens: 4096,
            timeout: Duration::from_secs(5),
        }
    }

    pub fn call(&self) -> Call<'_> {
        Call {
            provider: &self.provider,
            model: &self.model,
            api_key: &self.key,
            request: &self.request,
            default_max_tokens: self.default_max_tokens,
            timeout: self.timeout,
        }
    }
}
