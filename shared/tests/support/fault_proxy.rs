//! A fault-injecting HTTP proxy in front of the AWS emulator: it forwards every request to the
//! emulator except a chosen share of DynamoDB writes (`TransactWriteItems`, `UpdateItem`,
//! `PutItem`, `BatchWriteItem`, `DeleteItem`), which it refuses the way DynamoDB does when it is
//! busy, WITHOUT forwarding them (nothing is written):
//!
//! - HTTP 400 `ThrottlingException` or `ProvisionedThroughputExceededException`,
//! - HTTP 500 `InternalServerError`,
//! - for a transaction, HTTP 400 `TransactionCanceledException` with reason `ThrottlingError` or
//!   `TransactionConflict` on its first item (`None` on the others), or
//! - for a single-item write, HTTP 400 `TransactionConflictException`.
//!
//! The bodies are DynamoDB's awsJson 1.0 errors (`__type` with the service namespace, as the
//! SDK's `json_errors` parser and the service documentation show). Uses only crates every test
//! binary that includes it has (axum, reqwest, tokio, serde_json).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, reason = "test support")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

const WRITE_TARGETS: [&str; 5] = [
    "DynamoDB_20120810.TransactWriteItems",
    "DynamoDB_20120810.UpdateItem",
    "DynamoDB_20120810.PutItem",
    "DynamoDB_20120810.BatchWriteItem",
    "DynamoDB_20120810.DeleteItem",
];
const NAMESPACE: &str = "com.amazonaws.dynamodb.v20120810";

/// Which writes fail.
#[derive(Debug, Clone, Default)]
struct Plan {
    /// Per million writes that fail.
    share_ppm: u64,
    /// Only writes whose body contains this (e.g. one key's window items).
    only_containing: Option<String>,
    /// The next this many matching writes fail, whatever the share.
    fail_next: u64,
}

struct Inner {
    upstream: String,
    http: reqwest::Client,
    plan: Mutex<Plan>,
    seed: AtomicU64,
    writes: AtomicU64,
    faults: Mutex<BTreeMap<&'static str, u64>>,
}

/// A running proxy; it stops with the test's runtime.
#[derive(Clone)]
pub struct FaultProxy {
    pub url: String,
    inner: Arc<Inner>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (e.g. `http://127.0.0.1:5599`) that injects nothing yet.
    pub async fn start(upstream: &str) -> Self {
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            plan: Mutex::new(Plan::default()),
            seed: AtomicU64::new(0x9E37_79B9_7F4A_7C15),
            writes: AtomicU64::new(0),
            faults: Mutex::new(BTreeMap::new()),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("proxy") });
        Self { url, inner }
    }

    /// Fails `share` (0.0–1.0) of the DynamoDB writes from now on.
    pub fn fail_share(&self, share: f64) {
        self.inner.plan.lock().unwrap().share_ppm = (share.clamp(0.0, 1.0) * 1_000_000.0) as u64;
    }

    /// Limits faults to writes whose body contains `needle` (`None`: every write).
    pub fn only_containing(&self, needle: Option<&str>) {
        self.inner.plan.lock().unwrap().only_containing = needle.map(str::to_string);
    }

    /// Fails the next `n` writes (that match), then goes back to the share.
    pub fn fail_next(&self, n: u64) {
        self.inner.plan.lock().unwrap().fail_next = n;
    }

    /// DynamoDB writes seen (failed or forwarded).
    pub fn writes(&self) -> u64 {
        self.inner.writes.load(Ordering::SeqCst)
    }

    /// Faults injected, by kind.
    pub fn faults(&self) -> BTreeMap<&'static str, u64> {
        self.inner.faults.lock().unwrap().clone()
    }

    pub fn faults_total(&self) -> u64 {
        self.faults().values().sum()
    }
}

impl Inner {
    /// A pseudo-random number (splitmix64 over a shared counter): no extra crate needed.
    fn random(&self) -> u64 {
        let mut z = self.seed.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::SeqCst);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Whether this write fails.
    fn fails(&self, body: &[u8]) -> bool {
        let mut plan = self.plan.lock().unwrap();
        if let Some(needle) = &plan.only_containing
            && !String::from_utf8_lossy(body).contains(needle.as_str())
        {
            return false;
        }
        if plan.fail_next > 0 {
            plan.fail_next -= 1;
            return true;
        }
        plan.share_ppm > 0 && self.random() % 1_000_000 < plan.share_ppm
    }

    fn count(&self, kind: &'static str) {
        *self.faults.lock().unwrap().entry(kind).or_default() += 1;
    }
}

async fn handle(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.expect("request body");
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    if WRITE_TARGETS.contains(&target) {
        inner.writes.fetch_add(1, Ordering::SeqCst);
        if inner.fails(&body) {
            return fault(&inner, target, &body);
        }
    }
    forward(&inner, parts.method, parts.uri, parts.headers, body).await
}

/// One of DynamoDB's busy answers, chosen at random among those that fit the operation.
fn fault(inner: &Inner, target: &str, body: &[u8]) -> Response {
    let transaction = target.ends_with("TransactWriteItems");
    let pick = inner.random() % 4;
    match pick {
        0 => {
            inner.count("ThrottlingException");
            error(400, "ThrottlingException", "Rate of requests exceeds the allowed throughput.")
        }
        1 => {
            inner.count("ProvisionedThroughputExceededException");
            error(
                400,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded. Consider increasing \
                 your provisioning level with the UpdateTable API.",
            )
        }
        2 => {
            inner.count("InternalServerError");
            error(500, "InternalServerError", "Internal server error")
        }
        _ if transaction => {
            let items = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["TransactItems"].as_array().map(Vec::len))
                .unwrap_or(1)
                .max(1);
            let (reason, message) = if inner.random().is_multiple_of(2) {
                inner.count("TransactionCanceledException(ThrottlingError)");
                ("ThrottlingError", "Throughput exceeds the current capacity of your table or index.")
            } else {
                inner.count("TransactionCanceledException(TransactionConflict)");
                ("TransactionConflict", "Transaction is ongoing for the item")
            };
            let mut reasons = vec![serde_json::json!({"Code": reason, "Message": message})];
            reasons.extend((1..items).map(|_| serde_json::json!({"Code": "None"})));
            let codes: Vec<&str> = std::iter::once(reason).chain((1..items).map(|_| "None")).collect();
            let body = serde_json::json!({
                "__type": format!("{NAMESPACE}#TransactionCanceledException"),
                "Message": format!(
                    "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                    codes.join(", ")
                ),
                "CancellationReasons": reasons,
            });
            json(400, body.to_string())
        }
        _ => {
            inner.count("TransactionConflictException");
            error(400, "TransactionConflictException", "Transaction is ongoing for the item")
        }
    }
}

fn error(status: u16, code: &str, message: &str) -> Response {
    json(status, serde_json::json!({"__type": format!("{NAMESPACE}#{code}"), "message": message}).to_string())
}

fn json(status: u16, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).expect("status");
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
    headers
        .insert("x-amzn-requestid", HeaderValue::from_static("FAULTPROXY0000000000000000000000000000000000000000000"));
    response
}

async fn forward(
    inner: &Inner,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = inner.http.request(method, format!("{}{path}", inner.upstream)).body(body);
    for (name, value) in &headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection" | "transfer-encoding") {
            request = request.header(name, value);
        }
    }
    let upstream = match request.send().await {
        Ok(upstream) => upstream,
        Err(e) => {
            let mut response = Response::new(Body::from(format!("proxy: upstream failed: {e}")));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            return response;
        }
    };
    let status = upstream.status();
    let upstream_headers = upstream.headers().clone();
    let bytes = upstream.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &upstream_headers {
        if !matches!(name.as_str(), "content-length" | "connection" | "transfer-encoding") {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}
