//! Alerts over the local runner, evaluated every second: a rule fires once when its condition
//! holds (not again every round), reaches a signed webhook with the exact notification, shows in
//! the admin API as firing with its history, resolves once when the condition ends; a channel
//! that hangs neither blocks the gateway nor the other channel; a key turned invalid fires
//! `key_state`; the admin API validates rules and never shows a channel's URL or secret.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::support::{FakeProvider, TestApp, hello, spawn_app};

const HOOK_SECRET: &str = "whsec-alerts-0123456789";

/// What a receiver got: the body as JSON, its signature header, the raw body.
type Received = Arc<Mutex<Vec<(Value, Option<String>, Vec<u8>)>>>;

/// A webhook receiver: every body it got, with its signature header; answers `status` after
/// `delay`.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Received,
}

impl Receiver {
    async fn start(status: u16, delay: Duration) -> Self {
        let got: Received = Arc::default();
        let seen = got.clone();
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                tokio::time::sleep(delay).await;
                let signature = headers.get("x-maestro-signature").and_then(|v| v.to_str().ok()).map(str::to_string);
                let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                seen.lock().unwrap().push((json, signature, body.to_vec()));
                StatusCode::from_u16(status).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook?token=tok-secret-in-url", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, got }
    }

    fn bodies(&self) -> Vec<Value> {
        self.got.lock().unwrap().iter().map(|(v, _, _)| v.clone()).collect()
    }

    /// Waits until `n` notifications arrived (or 15 s passed).
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..300 {
            if self.bodies().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.bodies()
    }
}

fn config(upstream: &str, hook: &str, dead: &str) -> String {
    format!(
        "[retry]\nmax_retries = 0\nbase_delay_ms = 1\nmax_delay_ms = 5\nfailure_threshold = 1000\n\n\
         [alerting]\ninterval_secs = 1\nrepeat_minutes = 60\n\n\
         [[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{upstream}\"\n\n\
         [[keys]]\nprovider = \"fake\"\nname = \"broken\"\nsecret = \"sk-500-alertsalerts\"\n\n\
         [[models]]\nprovider = \"fake\"\nmodel = \"m1\"\ninput_price = 1000000\noutput_price = 2000000\n\n\
         [[alert_channels]]\nname = \"ops-hook\"\nkind = \"webhook\"\nurl = \"{hook}\"\nsecret = \"{HOOK_SECRET}\"\n\n\
         [[alert_channels]]\nname = \"dead-slack\"\nkind = \"slack\"\nurl = \"{dead}\"\n\n\
         [[alerts]]\nname = \"errors\"\nkind = \"error_rate\"\nthreshold = 20\nwindow_minutes = 5\nmin_calls = 4\n\
         scope = \"provider\"\nchannels = [\"ops-hook\", \"dead-slack\"]\n"
    )
}

async fn chat_status(app: &TestApp) -> u16 {
    let response =
        app.http.post(format!("{}/v1/chat/completions", app.url)).bearer_auth(&app.token).json(&hello("m1")).send();
    response.await.unwrap().status().as_u16()
}

#[tokio::test]
async fn an_error_rate_rule_fires_once_reaches_the_signed_webhook_and_resolves_once() {
    let upstream = FakeProvider::start().await;
    let hook = Receiver::start(200, Duration::ZERO).await;
    // A Slack webhook that never answers in time: the other channel still gets every message.
    let dead = Receiver::start(200, Duration::from_secs(60)).await;
    let app = spawn_app(&config(&upstream.url, &hook.url, &dead.url), &[]).await;

    // Three failures are below `min_calls`: nothing fires.
    for _ in 0..3 {
        assert_eq!(chat_status(&app).await, 502);
    }
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(hook.bodies().is_empty(), "3 calls < min_calls 4: {:?}", hook.bodies());

    let started = std::time::Instant::now();
    assert_eq!(chat_status(&app).await, 502);
    assert!(started.elapsed() < Duration::from_secs(5), "a hanging channel never slows a call");
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let got = hook.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let firing = &got[0];
    assert_eq!(firing["alert"], "errors");
    assert_eq!(firing["kind"], "error_rate");
    assert_eq!(firing["state"], "firing");
    assert_eq!(firing["repeat"], false);
    assert_eq!(firing["title"], "[FIRING] errors: error_rate on provider=fake — 4 of 4 calls failed (100.0%)");
    let details: Vec<(String, String)> = firing["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["label"].as_str().unwrap().to_string(), d["value"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(details[0], ("Value".to_string(), "4 of 4 calls failed (100.0%)".to_string()));
    assert_eq!(details[1], ("Threshold".to_string(), "20%".to_string()));
    assert_eq!(details[2], ("Scope".to_string(), "provider=fake".to_string()));
    assert_eq!(details[3], ("Window".to_string(), "5 min".to_string()));
    // Signed with the channel's secret over the exact body.
    let (_, signature, raw) = hook.got.lock().unwrap()[0].clone();
    assert_eq!(
        signature.as_deref(),
        Some(
            maestro_shared::credits::signature(&maestro_shared::secret::SecretString::new(HOOK_SECRET), &raw).as_str()
        )
    );

    // More rounds, still failing: no second message (the reminder comes after 60 minutes).
    assert_eq!(chat_status(&app).await, 502);
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert_eq!(hook.bodies().len(), 1, "{:?}", hook.bodies());

    // The admin API shows the instance firing, the history, and no channel secret. (The round
    // that fired waited up to 10 s for the hanging channel: the next one sees the fifth call.)
    let mut view = app.admin_get("/api/admin/ai-alerts").await;
    for _ in 0..150 {
        if view["data"][0]["instances"][0]["value"] == "5 of 5 calls failed (100.0%)" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        view = app.admin_get("/api/admin/ai-alerts").await;
    }
    let text = view.to_string();
    assert!(!text.contains(HOOK_SECRET) && !text.contains("tok-secret-in-url"), "{text}");
    let rule = &view["data"][0];
    assert_eq!(rule["name"], "errors");
    assert_eq!(rule["instances"][0]["instance"], "provider=fake");
    assert_eq!(rule["instances"][0]["firing"], true);
    assert_eq!(rule["instances"][0]["value"], "5 of 5 calls failed (100.0%)");
    let firing_entry = view["history"].as_array().unwrap().iter().find(|e| e["event"] == "firing").unwrap().clone();
    assert_eq!(firing_entry["delivered"], json!(["ops-hook"]));
    let failed = firing_entry["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].as_str().unwrap().starts_with("dead-slack: "), "{failed:?}");
    let channels = view["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 2);
    assert!(channels.iter().all(|c| c["has_secret"].is_boolean()));

    // The condition ends (the threshold is raised to 100 %: 100 % is not over it): one RESOLVED.
    let version = rule["version"].as_u64().unwrap();
    let mut updated = rule.clone();
    for field in ["instances", "version"] {
        updated.as_object_mut().unwrap().remove(field);
    }
    updated["threshold"] = json!(100);
    let response = app
        .http
        .put(format!("{}/api/admin/ai-alerts/errors", app.url))
        .bearer_auth(&app.admin_token)
        .header("if-match", format!("\"{version}\""))
        .json(&updated)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let got = hook.wait_for(2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["state"], "resolved");
    assert!(got[1]["title"].as_str().unwrap().starts_with("[RESOLVED] errors: error_rate on provider=fake"));
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(hook.bodies().len(), 2, "resolved once");
    // The state goes once every channel has answered (the hanging one: after its 10 s).
    let mut view = app.admin_get("/api/admin/ai-alerts").await;
    for _ in 0..150 {
        if view["data"][0]["instances"] == json!([]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        view = app.admin_get("/api/admin/ai-alerts").await;
    }
    assert_eq!(view["data"][0]["instances"], json!([]));
    let events: Vec<&str> = view["history"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["resolved", "firing"]);
}

#[tokio::test]
async fn a_key_that_turns_invalid_fires_key_state_and_rules_are_validated_by_the_admin_api() {
    let upstream = FakeProvider::start().await;
    let hook = Receiver::start(200, Duration::ZERO).await;
    let config = format!(
        "[retry]\nmax_retries = 0\nbase_delay_ms = 1\nmax_delay_ms = 5\n\n\
         [alerting]\ninterval_secs = 1\n\n\
         [[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n\n\
         [[keys]]\nprovider = \"fake\"\nname = \"revoked\"\nsecret = \"sk-401-revokedrevoked\"\n\n\
         [[models]]\nprovider = \"fake\"\nmodel = \"m1\"\ninput_price = 1\noutput_price = 1\n\n\
         [[alert_channels]]\nname = \"ops-hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        upstream.url, hook.url
    );
    let app = spawn_app(&config, &[]).await;
    let post = |body: Value| {
        app.http.post(format!("{}/api/admin/ai-alerts", app.url)).bearer_auth(&app.admin_token).json(&body).send()
    };
    // Refused with the field named: an unknown channel, a percentage over 100, a scope the kind
    // does not have, an unknown field.
    for (body, param) in [
        (json!({"name": "k", "kind": "key_state", "channels": ["nope"]}), "channels"),
        (json!({"name": "e", "kind": "error_rate", "threshold": 150, "channels": ["ops-hook"]}), "threshold"),
        (
            json!({"name": "e", "kind": "error_rate", "threshold": 5, "scope": "caller", "channels": ["ops-hook"]}),
            "scope",
        ),
    ] {
        let response = post(body).await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(response.json::<Value>().await.unwrap()["error"]["param"], param);
    }
    let response =
        post(json!({"name": "k", "kind": "key_state", "channels": ["ops-hook"], "colour": "red"})).await.unwrap();
    assert_eq!(response.status(), 400);
    // Anonymous callers learn nothing.
    let anonymous = app.http.get(format!("{}/api/admin/ai-alerts", app.url)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let response = post(json!({"name": "keys", "kind": "key_state", "channels": ["ops-hook"]})).await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        post(json!({"name": "keys", "kind": "key_state", "channels": ["ops-hook"]})).await.unwrap().status(),
        409
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(hook.bodies().is_empty(), "every key is normal");

    // The upstream says 401: the key is invalid, and the rule fires for it.
    chat_status(&app).await;
    let got = hook.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["kind"], "key_state");
    assert_eq!(got[0]["state"], "firing");
    let title = got[0]["title"].as_str().unwrap();
    assert!(
        title.starts_with("[FIRING] keys: key_state on key=") && title.ends_with("invalid (fake, revoked)"),
        "{title}"
    );

    // Channel edits keep the write-only URL; deleting a channel a rule uses is refused.
    let saved = app
        .http
        .put(format!("{}/api/admin/ai-alert-channels/ops-hook", app.url))
        .bearer_auth(&app.admin_token)
        .json(&json!({"kind": "webhook", "secret": "a-new-signing-secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    let saved: Value = saved.json().await.unwrap();
    assert_eq!(saved["has_secret"], true);
    assert!(!saved.to_string().contains("a-new-signing-secret") && !saved.to_string().contains("tok-secret-in-url"));
    let test = app
        .http
        .post(format!("{}/api/admin/ai-alert-channels/ops-hook/test", app.url))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(test.json::<Value>().await.unwrap()["delivered"], true, "the stored URL was kept");
    let delete = app
        .http
        .delete(format!("{}/api/admin/ai-alert-channels/ops-hook", app.url))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 409);
}
