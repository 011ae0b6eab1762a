//! The local runner's server against hostile and unlucky clients: the token is checked before a
//! body is read, slow or idle connections are closed, a trickled body gets 408, connections are
//! capped, streams end at their deadline and at shutdown (in-band, and recorded), and a stream
//! whose upstream lingers after its last event is complete.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use crate::support;

use std::time::{Duration, Instant};

use maestro::server::{self, Limits};
use maestro::{App, Options, build};
use maestro_shared::config::{Env, FileConfig};
use maestro_shared::store::StatsStore;
use serde_json::{Value, json};
use support::FakeProvider;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

struct Served {
    addr: String,
    app: App,
    token: String,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    _data: tempfile::TempDir,
}

fn limits() -> Limits {
    Limits {
        max_connections: 4,
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        max_header_bytes: 16 * 1024,
        shutdown_timeout: Duration::from_millis(500),
    }
}

/// The runner behind `maestro::server::serve` with [`limits`], and a provider `fake` whose keys
/// are the test's choice.
async fn start(fake: &FakeProvider, key: &str, retry: &str) -> Served {
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        "{retry}\n[[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n[[models]]\nprovider = \"fake\"\nmodel = \"m1\"\ninput_price = 1000000\noutput_price = 1000000\n[[keys]]\nprovider = \"fake\"\nname = \"k\"\nsecret = \"{key}\"\n",
        fake.url
    );
    let app = build(Options {
        data_dir: data.path().to_path_buf(),
        config: FileConfig::parse(&config).unwrap(),
        env: Env::from_fn(|_| None),
        demo: true,
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let (router, gateway) = (app.router.clone(), app.gateway.clone());
    let done = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        server::serve(listener, router, limits(), shutdown, move || gateway.end_streams()).await;
    });
    let token = app.auth.issue("user-1", false, Duration::from_secs(600)).unwrap();
    Served { addr, app, token, stop: Some(stop), done, _data: data }
}

/// Reads from a raw connection until the server closes it or `limit` passes; returns what came.
async fn read_until_closed(conn: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

async fn logs(served: &Served) -> Vec<Value> {
    let admin = served.app.auth.issue("admin", true, Duration::from_secs(600)).unwrap();
    let r = reqwest::Client::new()
        .get(format!("http://{}/api/admin/ai-stats/logs", served.addr))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_anonymous_client_is_refused_before_its_body_is_read() {
    let fake = FakeProvider::start().await;
    let served = start(&fake, "sk-ok-aaaaaaaaaaaa", "").await;
    let mut conn = TcpStream::connect(&served.addr).await.unwrap();
    // Announces 4 MB, sends none of it.
    let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 4000000\r\n\r\n";
    conn.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (answer, _) = read_until_closed(&mut conn, Duration::from_millis(800)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("invalid_api_key"), "{answer}");
    assert!(started.elapsed() < Duration::from_millis(800));
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed_and_a_trickled_body_gets_408() {
    let fake = FakeProvider::start().await;
    let served = start(&fake, "sk-ok-aaaaaaaaaaaa", "").await;

    // Headers that never finish.
    let mut slow = TcpStream::connect(&served.addr).await.unwrap();
    slow.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow: ").await.unwrap();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(3)).await;
    assert!(closed, "a connection that never finishes its headers is closed");

    // A connection that says nothing at all.
    let mut idle = TcpStream::connect(&served.addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(3)).await;
    assert!(closed, "an idle connection is closed");

    // An authenticated caller whose body trickles in and never ends.
    let mut trickle = TcpStream::connect(&served.addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{{\"model\":",
        served.token
    );
    trickle.write_all(head.as_bytes()).await.unwrap();
    let (answer, _) = read_until_closed(&mut trickle, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_is_free() {
    let fake = FakeProvider::start().await;
    let served = start(&fake, "sk-ok-aaaaaaaaaaaa", "").await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(&served.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let health = format!("http://{}/health", served.addr);
    let waiting = tokio::time::timeout(Duration::from_millis(300), reqwest::get(&health)).await;
    assert!(waiting.is_err(), "a fifth connection is not served while four are open");
    // The four idle ones are closed after the header timeout; then it is served.
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), reqwest::get(&health)).await.unwrap().unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(3));
}

fn stream_body() -> Value {
    json!({"model": "fake/m1", "stream": true, "messages": [{"role": "user", "content": "sing"}]})
}

#[tokio::test]
async fn a_stream_that_never_ends_is_cut_at_its_deadline_in_band_and_recorded() {
    let fake = FakeProvider::start().await;
    let served = start(&fake, "sk-endless-aaaaaaaaaaaa", "[retry]\nstream_deadline_ms = 800\n").await;
    let started = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/chat/completions", served.addr))
        .bearer_auth(&served.token)
        .json(&stream_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = tokio::time::timeout(Duration::from_secs(5), r.text()).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(text.contains("\"la \""), "frames arrived before the cut");
    assert!(text.contains("stream_deadline_exceeded"), "{text}");
    let logs = logs(&served).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["http_status"], 504);
    assert_eq!(logs[0]["error_code"], "stream_deadline_exceeded");
    assert!(logs[0]["completion_tokens"].as_u64().unwrap() >= 1, "the text seen is counted: {}", logs[0]);
}

#[tokio::test]
async fn at_shutdown_a_running_stream_is_ended_in_band_and_recorded_and_the_server_returns() {
    let fake = FakeProvider::start().await;
    let mut served = start(&fake, "sk-endless-aaaaaaaaaaaa", "").await;
    let mut r = reqwest::Client::new()
        .post(format!("http://{}/v1/chat/completions", served.addr))
        .bearer_auth(&served.token)
        .json(&stream_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let first = r.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    let started = Instant::now();
    served.stop.take().unwrap().send(()).unwrap();
    let mut rest = String::new();
    while let Ok(Some(chunk)) = r.chunk().await {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(rest.contains("server_shutting_down"), "{rest}");
    tokio::time::timeout(Duration::from_secs(8), &mut served.done).await.expect("the server returned").unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "shutdown timeout 0.5 s, then the streams end");
    assert!(served.app.wait_for_logs(Duration::from_secs(5)).await);
    let logged = served.app.store.logs(&Default::default()).await.unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].http_status, 503);
    assert_eq!(logged[0].error_code.as_deref(), Some("server_shutting_down"));
}

#[tokio::test]
async fn a_stream_whose_upstream_lingers_after_its_last_event_is_complete() {
    let fake = FakeProvider::start().await;
    let served = start(&fake, "sk-linger-aaaaaaaaaaaa", "[retry]\nattempt_timeout_ms = 600\n").await;
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/chat/completions", served.addr))
        .bearer_auth(&served.token)
        .json(&stream_body())
        .send()
        .await
        .unwrap();
    let text = tokio::time::timeout(Duration::from_secs(3), r.text()).await.expect("the stream ends").unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let logs = logs(&served).await;
    assert_eq!(logs[0]["http_status"], 200, "{}", logs[0]);
    assert_eq!(logs[0]["status"], "success");
}

#[tokio::test]
async fn a_wrong_method_and_oversized_headers_get_json_errors() {
    let fake = FakeProvider::start().await;
    let served = start(&fake, "sk-ok-aaaaaaaaaaaa", "").await;
    let http = reqwest::Client::new();
    let r = http.get(format!("http://{}/v1/chat/completions", served.addr)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");

    // 20 KB of headers against a 16 KB limit.
    let r =
        http.get(format!("http://{}/health", served.addr)).header("x-big", "a".repeat(20_000)).send().await.unwrap();
    assert_eq!(r.status(), 431);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "headers_too_large");
}

#[test]
fn a_short_jwt_secret_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let short = Env::from_pairs(&[("MAESTRO_JWT_SECRET", "x")]);
    let e = maestro::jwt_secret(dir.path(), &short).expect_err("a 1-byte secret");
    assert!(e.to_string().contains("at least 32 bytes"), "{e}");
    let long = Env::from_pairs(&[("MAESTRO_JWT_SECRET", &"k".repeat(32))]);
    assert!(maestro::jwt_secret(dir.path(), &long).is_ok());
}

/// `(status, headers, JSON body)` of a response.
async fn answer(r: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} not JSON ({e}): {text:?}")))
}

fn assert_openai_error(body: &Value, code: &str) {
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body["error"]["type"].is_string(), "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"].as_object().unwrap().contains_key("param"), "{body}");
    assert!(body.get("type").is_none(), "{body}");
}

fn assert_anthropic_error(body: &Value, error_type: &str) {
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], error_type, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn router_level_errors_take_the_routes_shape_and_405_names_the_allowed_methods() {
    let fake = FakeProvider::start().await;
    let served = start(&fake, "sk-ok-aaaaaaaaaaaa", "").await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", served.addr);

    for path in ["/v1/chat/completions", "/api/ai/chat/completions", "/v1/embeddings", "/api/ai/embeddings"] {
        let (status, headers, body) = answer(http.get(url(path)).send().await.unwrap()).await;
        assert_eq!(status, 405, "{path}");
        assert_eq!(headers["allow"], "POST", "{path}");
        assert_openai_error(&body, "method_not_allowed");
    }
    for path in ["/v1/messages", "/v1/messages/count_tokens"] {
        let (status, headers, body) = answer(http.get(url(path)).send().await.unwrap()).await;
        assert_eq!(status, 405, "{path}");
        assert_eq!(headers["allow"], "POST", "{path}");
        assert_anthropic_error(&body, "invalid_request_error");
    }
    let (status, headers, body) = answer(http.delete(url("/v1/models")).send().await.unwrap()).await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "GET,HEAD");
    assert_openai_error(&body, "method_not_allowed");

    let (status, _, body) = answer(http.get(url("/v1/nothing-here")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_openai_error(&body, "not_found");
    let (status, _, body) = answer(http.get(url("/v1/messages/batches")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_anthropic_error(&body, "not_found_error");
    let (status, _, body) = answer(http.get(url("/v1/messagesx")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_openai_error(&body, "not_found");

    // A body that is not JSON: 400 in each shape.
    let post = |path: &str| http.post(url(path)).bearer_auth(&served.token).header("content-type", "application/json");
    let (status, _, body) = answer(post("/v1/chat/completions").body("{nope").send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert_openai_error(&body, "invalid_request");
    let (status, _, body) = answer(post("/v1/messages").body("{nope").send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert_anthropic_error(&body, "invalid_request_error");

    // Oversized headers: 431 in each shape too.
    let big = "a".repeat(20_000);
    let (status, _, body) = answer(http.get(url("/v1/messages")).header("x-big", &big).send().await.unwrap()).await;
    assert_eq!(status, 431);
    assert_anthropic_error(&body, "invalid_request_error");
}

#[tokio::test]
async fn one_model_is_served_in_the_lists_shapes_and_x_api_key_authenticates_the_model_routes() {
    let fake = FakeProvider::start().await;
    let served = start(&fake, "sk-ok-aaaaaaaaaaaa", "").await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", served.addr);

    // OpenAI's shape, with the Bearer token; the entry is the one the list has.
    let (status, _, list) = answer(http.get(url("/v1/models")).bearer_auth(&served.token).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let listed = list["data"].as_array().unwrap().iter().find(|m| m["id"] == "fake/m1").unwrap().clone();
    let (status, _, one) =
        answer(http.get(url("/v1/models/fake/m1")).bearer_auth(&served.token).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(one, listed);
    assert_eq!(one["object"], "model");
    assert_eq!(one["owned_by"], "fake");
    // What the OpenAI SDKs send: the id's slash percent-encoded.
    let (status, _, encoded) =
        answer(http.get(url("/v1/models/fake%2Fm1")).bearer_auth(&served.token).send().await.unwrap()).await;
    assert_eq!((status, &encoded), (200, &listed));

    // Anthropic's shape with `anthropic-version`, the token in `x-api-key`.
    let anthropic =
        |path: &str| http.get(url(path)).header("x-api-key", &served.token).header("anthropic-version", "2023-06-01");
    let (status, _, list) = answer(anthropic("/v1/models").send().await.unwrap()).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["has_more"], false);
    assert!(list.get("object").is_none());
    let listed = list["data"].as_array().unwrap().iter().find(|m| m["id"] == "fake/m1").unwrap().clone();
    assert_eq!(list["first_id"], list["data"][0]["id"]);
    let (status, _, one) = answer(anthropic("/v1/models/fake/m1").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(one, listed);
    assert_eq!(one["type"], "model");
    assert_eq!(one["display_name"], "fake/m1");
    assert!(one["created_at"].is_string());

    // x-api-key without anthropic-version: OpenAI's shape.
    let (status, _, one) =
        answer(http.get(url("/v1/models/fake/m1")).header("x-api-key", &served.token).send().await.unwrap()).await;
    assert_eq!((status, &one["object"]), (200, &json!("model")));

    // Unknown ids: 404 in each shape.
    let (status, _, body) =
        answer(http.get(url("/v1/models/fake/nope")).bearer_auth(&served.token).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_openai_error(&body, "model_not_found");
    let (status, _, body) = answer(anthropic("/v1/models/nope").send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_anthropic_error(&body, "not_found_error");

    // No token, or a bad one: 401 in each shape.
    let (status, _, body) = answer(http.get(url("/v1/models/fake/m1")).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_openai_error(&body, "invalid_api_key");
    let (status, _, body) = answer(
        http.get(url("/v1/models"))
            .header("x-api-key", "mk-wrong")
            .header("anthropic-version", "2023-06-01")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_anthropic_error(&body, "authentication_error");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn gzip_bodies_are_inflated_under_the_limit_and_other_encodings_get_415() {
    let fake = FakeProvider::start().await;
    let served = start(&fake, "sk-ok-aaaaaaaaaaaa", "[server]\nmax_body_bytes = 65536\n").await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", served.addr);
    let post = |path: &str, body: Vec<u8>, encoding: &str| {
        http.post(url(path))
            .bearer_auth(&served.token)
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(body)
    };
    let chat = json!({"model": "fake/m1", "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, body) =
        answer(post("/v1/chat/completions", gzip(chat.to_string().as_bytes()), "gzip").send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    let count = json!({"model": "fake/m1", "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, body) =
        answer(post("/v1/messages/count_tokens", gzip(count.to_string().as_bytes()), "GZIP").send().await.unwrap())
            .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["input_tokens"].as_u64().unwrap() > 0);

    // Under the limit compressed, far over it inflated: 413 in each shape.
    let padding = " ".repeat(8 * 1024 * 1024);
    let bomb = gzip(format!("{{\"model\":\"fake/m1\",\"messages\":[]{padding}}}").as_bytes());
    assert!(bomb.len() < 65536, "{}", bomb.len());
    let (status, _, body) = answer(post("/v1/chat/completions", bomb.clone(), "gzip").send().await.unwrap()).await;
    assert_eq!(status, 413);
    assert_openai_error(&body, "payload_too_large");
    let (status, _, body) = answer(post("/v1/messages", bomb, "gzip").send().await.unwrap()).await;
    assert_eq!(status, 413);
    assert_anthropic_error(&body, "request_too_large");

    // Not gzip after all: 400.
    let (status, _, body) =
        answer(post("/v1/chat/completions", chat.to_string().into_bytes(), "gzip").send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert_openai_error(&body, "invalid_request");

    // Other encodings: 415 in each shape, before the token is even looked at.
    for encoding in ["br", "deflate", "zstd"] {
        let (status, _, body) =
            answer(post("/v1/chat/completions", b"{}".to_vec(), encoding).send().await.unwrap()).await;
        assert_eq!(status, 415, "{encoding}");
        assert_openai_error(&body, "unsupported_content_encoding");
    }
    let (status, _, body) = answer(post("/v1/messages", b"{}".to_vec(), "br").send().await.unwrap()).await;
    assert_eq!(status, 415);
    assert_anthropic_error(&body, "invalid_request_error");
    // A call with no calls recorded for the refused bodies.
    assert!(served.app.wait_for_logs(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_body_announced_over_the_limit_gets_413_before_100_continue() {
    let fake = FakeProvider::start().await;
    let served = start(&fake, "sk-ok-aaaaaaaaaaaa", "[server]\nmax_body_bytes = 65536\n").await;
    for (path, shape) in
        [("/v1/chat/completions", "\"code\":\"payload_too_large\""), ("/v1/messages", "request_too_large")]
    {
        let mut conn = TcpStream::connect(&served.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 70000\r\nexpect: 100-continue\r\n\r\n",
            served.token
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        // The body is never sent: the answer comes anyway, and it is not `100 Continue`.
        let (answer, _) = read_until_closed(&mut conn, Duration::from_millis(800)).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(!answer.contains("100 Continue"), "{path}: {answer}");
        assert!(answer.contains(shape), "{path}: {answer}");
    }
    // Under the limit, the client is told to go on and the call is served.
    let mut conn = TcpStream::connect(&served.addr).await.unwrap();
    let body = json!({"model": "fake/m1", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
        served.token,
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(2), conn.read(&mut buf)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100 Continue"));
    conn.write_all(body.as_bytes()).await.unwrap();
    let (answer, _) = read_until_closed(&mut conn, Duration::from_secs(3)).await;
    assert!(answer.contains("HTTP/1.1 200"), "{answer}");
}

const CORS_CONFIG: &str = "[server]\ncors_origins = [\"https://app.example\", \"http://localhost:5173\"]\n";

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

#[tokio::test]
async fn cors_preflights_are_answered_for_listed_origins_and_every_answer_carries_the_headers() {
    let fake = FakeProvider::start().await;
    let served = start(&fake, "sk-ok-aaaaaaaaaaaa", CORS_CONFIG).await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", served.addr);
    let preflight = |path: &str, origin: &str, headers: &str| {
        http.request(reqwest::Method::OPTIONS, url(path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", headers)
    };

    // What the OpenAI and Anthropic SDKs ask for from a browser.
    let asked = "authorization,content-type,x-stainless-os,x-stainless-retry-count,x-api-key,anthropic-version,anthropic-dangerous-direct-browser-access";
    for path in ["/v1/chat/completions", "/v1/messages"] {
        let r = preflight(path, "https://app.example", asked).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let h = r.headers();
        assert_eq!(header(h, "access-control-allow-origin"), "https://app.example");
        assert!(header(h, "access-control-allow-methods").contains("POST"));
        let allowed = header(h, "access-control-allow-headers");
        for name in asked.split(',') {
            assert!(allowed.contains(name), "{name} in {allowed}");
        }
        assert!(header(h, "vary").contains("origin"), "{h:?}");
    }
    // A header outside the list is left out of the answer, so the browser will not send it.
    let r = preflight("/v1/chat/completions", "http://localhost:5173", "authorization, x-evil").send().await.unwrap();
    assert_eq!(header(r.headers(), "access-control-allow-origin"), "http://localhost:5173");
    assert_eq!(header(r.headers(), "access-control-allow-headers"), "authorization");
    // An origin not listed: no allow-origin, the browser refuses.
    let r = preflight("/v1/chat/completions", "https://evil.example", "authorization").send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none(), "{:?}", r.headers());

    // A served call: the origin allowed, Maestro's headers readable by the page.
    let r = http
        .post(url("/v1/chat/completions"))
        .header("origin", "https://app.example")
        .bearer_auth(&served.token)
        .json(&json!({"model": "fake/m1", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "access-control-allow-origin"), "https://app.example");
    let exposed = header(r.headers(), "access-control-expose-headers").to_string();
    for name in ["x-request-id", "retry-after", "x-maestro-provider", "x-maestro-model", "x-maestro-attempts"] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
    assert!(r.headers().get("x-maestro-provider").is_some());
    // Errors too: a refused token, a wrong method, an unknown path, a body too large.
    let with_origin = |r: reqwest::RequestBuilder| r.header("origin", "https://app.example");
    let errors = [
        (with_origin(http.get(url("/v1/models"))), 401),
        (with_origin(http.get(url("/v1/chat/completions"))), 405),
        (with_origin(http.get(url("/v1/nothing"))), 404),
        (with_origin(http.post(url("/v1/messages")).header("content-length", "99999999")), 413),
    ];
    for (request, status) in errors {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), status);
        assert_eq!(header(r.headers(), "access-control-allow-origin"), "https://app.example", "{status}");
        assert!(header(r.headers(), "access-control-expose-headers").contains("x-request-id"), "{status}");
    }
    // Another origin gets no allow-origin on a normal answer either.
    let r = http.get(url("/health")).header("origin", "https://evil.example").send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn without_cors_origins_no_cors_headers_are_sent_and_preflights_are_not_answered() {
    let fake = FakeProvider::start().await;
    let served = start(&fake, "sk-ok-aaaaaaaaaaaa", "").await;
    let r = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("http://{}/v1/chat/completions", served.addr))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_star_allows_any_origin_and_the_environment_replaces_the_config_file() {
    let fake = FakeProvider::start().await;
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        "{CORS_CONFIG}[[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n",
        fake.url
    );
    let app = build(Options {
        data_dir: data.path().to_path_buf(),
        config: FileConfig::parse(&config).unwrap(),
        env: Env::from_fn(|name| (name == "MAESTRO_CORS_ORIGINS").then(|| "*".to_string())),
        demo: true,
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve(listener, app.router.clone(), limits(), std::future::pending(), || {}));
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/health"))
        .header("origin", "https://anywhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(header(r.headers(), "access-control-allow-origin"), "*");

    let other = tempfile::tempdir().unwrap();
    let bad = build(Options {
        data_dir: other.path().to_path_buf(),
        config: FileConfig::default(),
        env: Env::from_fn(|name| (name == "MAESTRO_CORS_ORIGINS").then(|| "app.example".to_string())),
        demo: true,
    })
    .await;
    assert!(matches!(bad, Err(maestro::StartError::Cors(_))), "{:?}", bad.err());
    assert!(FileConfig::parse("[server]\ncors_origins = [\"https://a.example/path\"]").is_err());
}

/// A real browser's `fetch` from another origin: headless Chromium loads a page served on one
/// port, which calls Maestro on another, with the headers an SDK sends (so a preflight comes
/// first). Skipped where no Chromium is installed.
#[tokio::test]
async fn a_browser_page_from_an_allowed_origin_can_call_and_read_maestros_headers_and_others_cannot() {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| std::process::Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
    else {
        eprintln!("skipped: no Chromium on this machine");
        return;
    };
    // Two pages: the allowed origin, and one that is not.
    let page = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let allowed = format!("http://127.0.0.1:{}", page.local_addr().unwrap().port());
    let refused = format!("http://127.0.0.1:{}", other.local_addr().unwrap().port());
    let fake = FakeProvider::start().await;
    let served = start(&fake, "sk-ok-aaaaaaaaaaaa", &format!("[server]\ncors_origins = [\"{allowed}\"]\n")).await;
    // `localhost` against the pages' `127.0.0.1`: another origin for the browser.
    let maestro = format!("http://localhost:{}", served.addr.rsplit(':').next().unwrap());
    let html = format!(
        r#"<html><body><pre id="out">pending</pre><script>
fetch("{maestro}/v1/chat/completions", {{
  method: "POST",
  headers: {{"authorization": "Bearer {token}", "content-type": "application/json", "x-stainless-os": "Linux"}},
  body: JSON.stringify({{model: "fake/m1", messages: [{{role: "user", content: "hi"}}]}})
}}).then(async r => {{
  const body = await r.json();
  document.getElementById("out").textContent =
    "status=" + r.status + " provider=" + r.headers.get("x-maestro-provider") + " object=" + body.object;
}}).catch(e => {{ document.getElementById("out").textContent = "blocked: " + e; }});
</script></body></html>"#,
        token = served.token
    );
    for listener in [page, other] {
        let app = axum::Router::new().route(
            "/",
            axum::routing::get({
                let html = html.clone();
                move || async move { axum::response::Html(html) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    let dump = |url: String| {
        let chromium = chromium.to_string();
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(chromium)
                .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom"])
                .arg(url)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    };
    let dom = dump(format!("{allowed}/")).await.unwrap();
    assert!(dom.contains("status=200 provider=fake object=chat.completion"), "{dom}");
    let dom = dump(format!("{refused}/")).await.unwrap();
    assert!(dom.contains("blocked: TypeError"), "{dom}");
}
