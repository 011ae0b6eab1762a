//! Exact budgets: a call reserves a bound of what it may cost before it runs (the prompt counted,
//! `n`, tools, images, `max_tokens`), so concurrent calls never spend past a caller key's budget,
//! and a big request refused by a key's tpm window does not block the small ones.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use crate::support;

use std::time::Duration;

use maestro_shared::store::{CounterStore, StatsStore};
use maestro_shared::time::now_ms;
use serde_json::{Value, json};
use support::{FAST_RETRY, FakeProvider, TestApp, spawn_app};

/// A provider at 1 µUSD per token whose every call bills 19 + 10 tokens (29 µUSD).
async fn app_with(fake: &FakeProvider) -> TestApp {
    let cfg = format!(
        "{FAST_RETRY}\n[[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n[[models]]\nprovider = \"fake\"\nmodel = \"m1\"\ninput_price = 1000000\noutput_price = 1000000\n[[keys]]\nprovider = \"fake\"\nname = \"k\"\nsecret = \"sk-ok-aaaaaaaaaaaa\"\n",
        fake.url
    );
    spawn_app(&cfg, &[]).await
}

async fn caller_key(app: &TestApp, spec: Value) -> (String, String) {
    let created: Value = app
        .http
        .post(format!("{}/api/admin/api-keys", app.url))
        .bearer_auth(&app.admin_token)
        .json(&spec)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (created["api_key"].as_str().unwrap().to_string(), format!("CK#{}", created["id"].as_str().unwrap()))
}

#[tokio::test]
async fn a_hundred_concurrent_calls_never_spend_past_a_daily_cost_budget() {
    let fake = FakeProvider::start().await;
    let app = app_with(&fake).await;
    let (key, counter) =
        caller_key(&app, json!({"owner": "u", "key_name": "budget", "daily_cost_budget_micros": 1000})).await;
    let body = json!({"model": "fake/m1", "max_tokens": 16,
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello!"}]});
    let calls = (0..100).map(|_| {
        let (http, url, key, body) = (app.http.clone(), app.url.clone(), key.clone(), body.clone());
        tokio::spawn(async move {
            http.post(format!("{url}/v1/chat/completions")).bearer_auth(key).json(&body).send().await.unwrap().status()
        })
    });
    let statuses: Vec<u16> =
        futures_util::future::join_all(calls).await.into_iter().map(|s| s.unwrap().as_u16()).collect();
    let served = statuses.iter().filter(|s| **s == 200).count() as u64;
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert!(served >= 10, "the budget is used, not refused wholesale: {served} served");

    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let spent: u64 = app.app.store.logs(&Default::default()).await.unwrap().iter().map(|e| e.cost_micros).sum();
    assert_eq!(spent, served * 29);
    assert!(spent <= 1000, "spent {spent} µUSD of a 1000 µUSD budget in {served} calls");
    let window = app.app.store.budget_usage(&counter, now_ms()).await.unwrap();
    assert_eq!(window.day_cost_micros, spent, "the window holds the real cost once every call settled");
}

#[tokio::test]
async fn a_request_too_big_for_the_tpm_window_does_not_block_small_ones() {
    let fake = FakeProvider::start().await;
    let cfg = format!(
        "{FAST_RETRY}\n[[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n[[models]]\nprovider = \"fake\"\nmodel = \"m1\"\ninput_price = 1\noutput_price = 1\n[[keys]]\nprovider = \"fake\"\nname = \"k\"\nsecret = \"sk-ok-aaaaaaaaaaaa\"\ntpm = 1000\n",
        fake.url
    );
    let app = spawn_app(&cfg, &[]).await;
    let small = json!({"model": "fake/m1", "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]});
    assert_eq!(app.chat(small.clone()).await.status(), 200);
    // 500 tokens of prompt and 900 of output: more than the 1000-token window has left.
    let big =
        json!({"model": "fake/m1", "max_tokens": 900, "messages": [{"role": "user", "content": "word ".repeat(500)}]});
    assert_eq!(app.chat(big).await.status(), 429);
    for _ in 0..3 {
        assert_eq!(app.chat(small.clone()).await.status(), 200, "small calls still fit the window");
    }
}

#[tokio::test]
async fn a_huge_max_tokens_is_not_wrapped_into_a_tiny_reservation() {
    let fake = FakeProvider::start().await;
    let app = app_with(&fake).await;
    let (key, _) = caller_key(&app, json!({"owner": "u", "key_name": "tokens", "daily_token_budget": 100_000})).await;
    let body = json!({"model": "fake/m1", "max_tokens": u64::MAX - 3, "n": 2,
        "messages": [{"role": "user", "content": "Hello!"}]});
    let send = || app.http.post(format!("{}/v1/chat/completions", app.url)).bearer_auth(&key).json(&body).send();
    // The first call may run (a call bigger than a whole budget runs on a fresh day, as the README
    // says); while it is counted, a second one cannot.
    let statuses = futures_util::future::join_all([send(), send()]).await;
    let statuses: Vec<u16> = statuses.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    assert!(statuses.contains(&429), "a reservation of the whole budget refuses the next call: {statuses:?}");
}
