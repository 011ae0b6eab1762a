//! What reaches the call log and the stats stays bounded and complete: an unknown model name is
//! recorded as `unknown`, never verbatim, long caller-controlled strings are cut, and the calls
//! refused before they could be read (bad JSON, no `messages`, no `max_tokens`) are logged too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use crate::support;

use std::time::Duration;

use maestro_shared::stats::StatsQuery;
use maestro_shared::store::StatsStore;
use maestro_shared::time::{now_ms, stats_date};
use serde_json::{Value, json};
use support::{FAST_RETRY, spawn_app};

#[tokio::test]
async fn unknown_model_names_go_to_one_bounded_bucket() {
    let app = spawn_app(FAST_RETRY, &[]).await;
    for i in 0..20 {
        let name = format!("{i}-{}", "x".repeat(200_000));
        let r = app.chat(json!({"model": name, "messages": [{"role": "user", "content": "hi"}]})).await;
        assert_eq!(r.status(), 404);
        let body: Value = r.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.len() < 400, "the name is not echoed in full: {} bytes", message.len());
    }
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let logs = app.app.store.logs(&Default::default()).await.unwrap();
    assert_eq!(logs.len(), 20);
    assert!(logs.iter().all(|e| e.model == "unknown" && e.provider == "none" && e.http_status == 404), "{:?}", logs[0]);
    let today = stats_date(now_ms());
    let rows = app
        .app
        .store
        .stats_rows(&StatsQuery { from_date: today.clone(), to_date: today, ..StatsQuery::default() })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one stats row for every unknown name");
    assert_eq!(rows[0].counters.requests, 20);
    let db = std::fs::metadata(app.app.store.path().unwrap()).unwrap().len()
        + std::fs::metadata(app.app.store.path().unwrap().with_extension("db-wal")).map_or(0, |m| m.len());
    assert!(db < 8 * 1024 * 1024, "4 MB of names did not reach the database: {db} bytes");
}

#[tokio::test]
async fn calls_refused_before_they_could_be_read_are_logged() {
    let app = spawn_app(FAST_RETRY, &[]).await;
    let post = |path: &str, body: &str| {
        app.http
            .post(format!("{}{path}", app.url))
            .bearer_auth(&app.token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    assert_eq!(post("/v1/chat/completions", "{not json").await.unwrap().status(), 400);
    assert_eq!(post("/v1/chat/completions", r#"{"model":"demo/echo"}"#).await.unwrap().status(), 400);
    let r = post("/v1/messages", r#"{"model":"demo/echo","messages":[{"role":"user","content":"hi"}]}"#).await;
    assert_eq!(r.unwrap().status(), 400);
    // A request that parses but is invalid was always logged; it still is, once.
    let r = post(
        "/v1/chat/completions",
        r#"{"model":"demo/echo","messages":[{"role":"user","content":"hi"}],"temperature":9}"#,
    );
    assert_eq!(r.await.unwrap().status(), 400);

    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let logs = app.app.store.logs(&Default::default()).await.unwrap();
    assert_eq!(logs.len(), 4, "{logs:?}");
    assert!(logs.iter().all(|e| e.http_status == 400 && e.user_id.as_deref() == Some("user-1")));
    let models: Vec<&str> = logs.iter().map(|e| e.model.as_str()).collect();
    assert_eq!(models.iter().filter(|m| **m == "unknown").count(), 3, "{models:?}");
    assert!(models.contains(&"demo/echo"), "a known model is recorded by name: {models:?}");
}

#[tokio::test]
async fn a_huge_user_id_is_cut_in_the_log() {
    let app = spawn_app(FAST_RETRY, &[]).await;
    let sub = "u".repeat(10_000);
    let token = app.app.auth.issue(&sub, false, Duration::from_secs(60)).unwrap();
    let r = app
        .http
        .post(format!("{}/v1/chat/completions", app.url))
        .bearer_auth(token)
        .json(&support::hello("demo/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let logs = app.app.store.logs(&Default::default()).await.unwrap();
    let user = logs[0].user_id.as_deref().unwrap();
    assert!(user.chars().count() <= 129 && user.starts_with("uuu"), "{} chars", user.chars().count());
}
