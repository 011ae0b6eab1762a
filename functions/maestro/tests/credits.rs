//! Users' credits through the local runner: a call holds its largest possible charge before it
//! goes out and settles the real one, so a user without enough gets 402 and concurrent calls
//! never spend past a balance; admins top up and read balances and the ledger.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{FAST_RETRY, FakeProvider, TestApp, spawn_app};

/// Credits on, a provider at 1 µUSD per token whose every call bills 19 + 10 tokens (29 µUSD),
/// charged at 1.5× (44 µUSD, rounded up); `key` decides how the fake answers.
async fn app_with(fake: &FakeProvider, key: &str) -> TestApp {
    app_with_retry(fake, key, FAST_RETRY).await
}

async fn app_with_retry(fake: &FakeProvider, key: &str, retry: &str) -> TestApp {
    let cfg = format!(
        "{retry}\n[credits]\nenabled = true\nmodel_markup = {{ \"fake/m1\" = 1.5 }}\n\
         [[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n\
         [[models]]\nprovider = \"fake\"\nmodel = \"m1\"\ninput_price = 1000000\noutput_price = 1000000\n\
         [[keys]]\nprovider = \"fake\"\nname = \"k\"\nsecret = \"{key}\"\n",
        fake.url
    );
    spawn_app(&cfg, &[]).await
}

fn token(app: &TestApp, user: &str) -> String {
    app.app.auth.issue(user, false, Duration::from_secs(600)).unwrap()
}

fn hello() -> Value {
    json!({"model": "fake/m1", "max_tokens": 10, "messages": [{"role": "user", "content": "Hello!"}]})
}

async fn chat_as(app: &TestApp, user_token: &str) -> reqwest::Response {
    app.http
        .post(format!("{}/v1/chat/completions", app.url))
        .bearer_auth(user_token)
        .json(&hello())
        .send()
        .await
        .unwrap()
}

async fn admin(app: &TestApp, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app.http.request(method, format!("{}{path}", app.url)).bearer_auth(&app.admin_token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn top_up(app: &TestApp, user: &str, amount: i64) -> Value {
    let (status, body) = admin(
        app,
        reqwest::Method::POST,
        &format!("/api/admin/credits/{user}/top-up"),
        Some(json!({"amount_micro_usd": amount, "reason": "order 42"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn balance(app: &TestApp, user: &str) -> Value {
    let (status, body) = admin(app, reqwest::Method::GET, &format!("/api/admin/credits/{user}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The most a call may cost, as a 402 states it (`up to $0.000123`), in micro-USD.
fn hold_in(message: &str) -> i64 {
    let dollars = message.split("up to $").nth(1).and_then(|s| s.split('.').next().zip(s.split('.').nth(1))).unwrap();
    let (whole, frac): (i64, i64) = (dollars.0.parse().unwrap(), frac_digits(dollars.1));
    whole * 1_000_000 + frac
}

fn frac_digits(s: &str) -> i64 {
    s.chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
}

#[tokio::test]
async fn a_user_without_credits_gets_402_and_nothing_reaches_the_provider() {
    let fake = FakeProvider::start().await;
    let app = app_with(&fake, "sk-ok-aaaaaaaaaaaa").await;
    let response = chat_as(&app, &token(&app, "broke")).await;
    assert_eq!(response.status().as_u16(), 402);
    assert_eq!(response.headers().get("x-should-retry").and_then(|v| v.to_str().ok()), Some("false"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["error"]["type"].as_str(), body["error"]["code"].as_str()),
        (Some("billing_error"), Some("insufficient_credits"))
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("User `broke` has $0.000000 of credits available and this request may cost up to $"),
        "{message}"
    );
    assert!(hold_in(message) >= 29, "{message}");
    assert_eq!(fake.total_calls(), 0);
    // A free model costs nothing: no credits needed, nothing written.
    let free = app
        .http
        .post(format!("{}/v1/chat/completions", app.url))
        .bearer_auth(token(&app, "broke"))
        .json(&support::hello("demo/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(free.status().as_u16(), 200);
    let (_, ledger) = admin(&app, reqwest::Method::GET, "/api/admin/credits/broke/ledger", None).await;
    assert_eq!(ledger["data"], json!([]));
    assert_eq!(
        balance(&app, "broke").await,
        json!({"user_id": "broke", "balance_micro_usd": 0, "available_micro_usd": 0, "held_micro_usd": 0})
    );
}

#[tokio::test]
async fn a_call_is_charged_its_cost_times_the_markup_and_the_ledger_says_who_when_why_and_which_call() {
    let fake = FakeProvider::start().await;
    let app = app_with(&fake, "sk-ok-aaaaaaaaaaaa").await;
    let topped = top_up(&app, "alice", 10_000).await;
    assert_eq!(
        (topped["balance_micro_usd"].as_i64(), topped["entry"]["actor"].as_str()),
        (Some(10_000), Some("admin-1"))
    );
    assert_eq!(
        (topped["entry"]["kind"].as_str(), topped["entry"]["reason"].as_str()),
        (Some("top_up"), Some("order 42"))
    );

    let response = chat_as(&app, &token(&app, "alice")).await;
    assert_eq!(response.status().as_u16(), 200);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    // 29 µUSD at 1.5×: 43.5, charged as 44.
    assert_eq!(
        balance(&app, "alice").await,
        json!({"user_id": "alice", "balance_micro_usd": 9_956, "available_micro_usd": 9_956, "held_micro_usd": 0})
    );

    let (status, ledger) = admin(&app, reqwest::Method::GET, "/api/admin/credits/alice/ledger?limit=1", None).await;
    assert_eq!(status, 200, "{ledger}");
    let charge = &ledger["data"][0];
    assert_eq!((charge["kind"].as_str(), charge["amount_micro_usd"].as_i64()), (Some("charge"), Some(-44)));
    assert_eq!((charge["call_id"].as_str(), charge["reason"].as_str()), (Some(request_id.as_str()), Some("fake/m1")));
    let cursor = ledger["next_cursor"].as_str().unwrap();
    let (_, older) =
        admin(&app, reqwest::Method::GET, &format!("/api/admin/credits/alice/ledger?cursor={cursor}"), None).await;
    assert_eq!(older["data"].as_array().unwrap().len(), 1);
    assert_eq!(older["data"][0]["kind"], "top_up");
    assert!(older["next_cursor"].is_null());

    // A call the provider refuses costs nothing, and says so in the ledger.
    let bad = spawn_app_refusing(&fake).await;
    top_up(&bad, "bob", 10_000).await;
    assert!(chat_as(&bad, &token(&bad, "bob")).await.status().as_u16() >= 400);
    assert_eq!(balance(&bad, "bob").await["balance_micro_usd"], 10_000);
    assert_eq!(balance(&bad, "bob").await["held_micro_usd"], 0);
}

async fn spawn_app_refusing(fake: &FakeProvider) -> TestApp {
    app_with(fake, "sk-401-aaaaaaaaaaaa").await
}

#[tokio::test]
async fn two_hundred_concurrent_calls_against_a_balance_for_twenty_leave_exactly_the_expected_balance() {
    let fake = FakeProvider::start().await;
    // `sk-late-…` answers after 1 s: every call holds before any settles.
    let patient = "[retry]\nmax_retries = 0\nattempt_timeout_ms = 5000\ndeadline_ms = 10000\n";
    let app = app_with_retry(&fake, "sk-late-aaaaaaaaaaaa", patient).await;
    let probe: Value = chat_as(&app, &token(&app, "probe")).await.json().await.unwrap();
    let hold = hold_in(probe["error"]["message"].as_str().unwrap());
    top_up(&app, "carol", 20 * hold).await;

    let user = token(&app, "carol");
    let calls = (0..200).map(|_| {
        let (http, url, user) = (app.http.clone(), app.url.clone(), user.clone());
        tokio::spawn(async move {
            http.post(format!("{url}/v1/chat/completions"))
                .bearer_auth(user)
                .json(&hello())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let statuses: Vec<u16> = futures_util::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    let served = statuses.iter().filter(|s| **s == 200).count() as i64;
    assert!(statuses.iter().all(|s| *s == 200 || *s == 402), "{statuses:?}");
    assert_eq!(served, 20, "exactly the calls the balance holds for");
    assert_eq!(fake.total_calls(), 20);
    let after = balance(&app, "carol").await;
    assert_eq!(after["balance_micro_usd"].as_i64(), Some(20 * hold - served * 44), "{after}");
    assert_eq!(after["held_micro_usd"], 0);
    let (_, ledger) = admin(&app, reqwest::Method::GET, "/api/admin/credits/carol/ledger?limit=1000", None).await;
    let charges: Vec<&Value> = ledger["data"].as_array().unwrap().iter().filter(|e| e["kind"] == "charge").collect();
    assert_eq!(charges.len(), 20);
    assert!(charges.iter().all(|e| e["amount_micro_usd"] == -44));
}

#[tokio::test]
async fn top_ups_are_checked_and_credits_off_says_so() {
    let fake = FakeProvider::start().await;
    let app = app_with(&fake, "sk-ok-aaaaaaaaaaaa").await;
    for (body, param) in [
        (json!({"amount_micro_usd": 0, "reason": "x"}), "amount_micro_usd"),
        (json!({"amount_micro_usd": -5, "reason": "x"}), "amount_micro_usd"),
        (json!({"amount_micro_usd": 5, "reason": " "}), "reason"),
    ] {
        let (status, answer) = admin(&app, reqwest::Method::POST, "/api/admin/credits/dave/top-up", Some(body)).await;
        assert_eq!((status, answer["error"]["param"].as_str()), (400, Some(param)), "{answer}");
    }
    let (status, _) =
        admin(&app, reqwest::Method::POST, "/api/admin/credits/dave/top-up", Some(json!({"amount_micro_usd": 5})))
            .await;
    assert_eq!(status, 400);
    let user =
        app.http.get(format!("{}/api/admin/credits/dave", app.url)).bearer_auth(&app.token).send().await.unwrap();
    assert_eq!(user.status().as_u16(), 403, "admins only");

    let plain = spawn_app(FAST_RETRY, &[]).await;
    let (status, body) = admin(&plain, reqwest::Method::GET, "/api/admin/credits/dave", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("credits_disabled")));
    let served = plain.chat(support::hello("demo/echo")).await;
    assert_eq!(served.status().as_u16(), 200, "credits off: nothing is held or charged");
}

/// Every post the receiver got: its signature header and body.
type Posts = std::sync::Arc<std::sync::Mutex<Vec<(Option<String>, Value)>>>;

/// A receiver of the platform's side: refuses its first post with a 500, keeps every post.
async fn charge_receiver() -> (String, Posts) {
    use axum::http::{HeaderMap, StatusCode};
    let posts = Posts::default();
    let kept = posts.clone();
    let app = axum::Router::new().route(
        "/charges",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let signature = headers.get("x-maestro-signature").and_then(|v| v.to_str().ok()).map(str::to_string);
                let mut posts = kept.lock().unwrap();
                let expected =
                    maestro_shared::credits::signature(&maestro_shared::secret::SecretString::new("whsec-test"), &body);
                assert_eq!(signature.as_deref(), Some(expected.as_str()), "signed with the shared secret");
                posts.push((signature, serde_json::from_slice(&body).unwrap()));
                if posts.len() == 1 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::NO_CONTENT }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/charges", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, posts)
}

#[tokio::test]
async fn every_settled_charge_is_posted_signed_to_the_platforms_webhook_until_it_takes_it() {
    let fake = FakeProvider::start().await;
    let (url, posts) = charge_receiver().await;
    let cfg = format!(
        "{FAST_RETRY}\n[credits]\nenabled = true\nwebhook_url = \"{url}\"\nwebhook_secret = \"whsec-test\"\n\
         [[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n\
         [[models]]\nprovider = \"fake\"\nmodel = \"m1\"\ninput_price = 1000000\noutput_price = 1000000\n\
         [[keys]]\nprovider = \"fake\"\nname = \"k\"\nsecret = \"sk-ok-aaaaaaaaaaaa\"\n",
        fake.url
    );
    let app = spawn_app(&cfg, &[]).await;
    top_up(&app, "erin", 1_000).await;
    let response = chat_as(&app, &token(&app, "erin")).await;
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(response.status().as_u16(), 200);
    // Refused once (500), delivered on the retry half a second later.
    for _ in 0..50 {
        if posts.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let posts = posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!(posts[0].1, posts[1].1, "the same event, so the platform can drop the second");
    let event = &posts[1].1;
    assert_eq!(
        event,
        &json!({"type": "credit.charge", "id": format!("charge-{request_id}"), "user_id": "erin",
            "charge_micro_usd": 29, "cost_micro_usd": 29, "model": "fake/m1", "call_id": request_id,
            "ts_ms": event["ts_ms"]})
    );
    assert!(event["ts_ms"].as_i64().unwrap() > 0);
}
