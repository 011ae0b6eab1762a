//! Every format against a local receiver speaking HTTP on 127.0.0.1: the exact payload, the
//! signature recomputed from what arrived, refusals and hangs; e-mail against a small SMTP server
//! written here and SES against moto.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::*;

const DING_TOKEN: &str = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2";
const DING_SECRET: &str = "SEC5f1e0c7a9b3d4e2f6a8c0b1d3e5f7a9c2b4d6e8f0a1c3e5b7d9f2a4c6e8b0d1";
const FEISHU_HOOK: &str = "0f6c2d5e-8a1b-4c3d-9e7f-5a2b8c4d6e1f";
const FEISHU_SECRET: &str = "qXk2Lm9Zp4Rt7Vw1Ys3Bn6Hd8Jf0Gc5A";
const WECOM_KEY: &str = "693a91f6-7a3c-4fc7-b8a2-1e5d2c9f0b47";
const SLACK_TOKEN: &str = "XXXXXXXXXXXXXXXXXXXXXXXX9a8b7c6d";
const HOOK_TOKEN: &str = "hook-7f3e9a1c5b2d8e4f6a0c";
const HOOK_SECRET: &str = "whsec-4b8d2f6a0c9e7b5d3f1a8c6e";

const STARTED: &str = "2025-11-26 10:00:00 UTC";
const AT: &str = "2025-11-26 10:05:00 UTC";
const TITLE: &str = "Error rate 12.5% on openai (threshold 5%)";

fn firing() -> Notification {
    Notification {
        alert: "openai-errors".into(),
        kind: "error_rate".into(),
        state: NotificationState::Firing,
        repeat: false,
        title: TITLE.into(),
        details: vec![
            ("value".into(), "12.5%".into()),
            ("threshold".into(), "5%".into()),
            ("scope".into(), "provider openai".into()),
            ("window".into(), "5m".into()),
        ],
        started_at_ms: 1_764_151_200_000,
        at_ms: 1_764_151_500_000,
    }
}

fn resolved() -> Notification {
    Notification { state: NotificationState::Resolved, details: vec![("value".into(), "0.4%".into())], ..firing() }
}

fn reminder() -> Notification {
    Notification { repeat: true, ..firing() }
}

fn config(name: &str, kind: ChannelKind, url: Option<String>, secret: Option<&str>) -> ChannelConfig {
    ChannelConfig { name: name.into(), kind, url, secret: secret.map(SecretString::new), to: Vec::new() }
}

fn one(config: ChannelConfig) -> Channels {
    Channels::new(vec![config], None).unwrap()
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What a receiver got.
#[derive(Debug)]
struct Received {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }

    /// The query's pairs, decoded, in order.
    fn query_pairs(&self) -> Vec<(String, String)> {
        let url = reqwest::Url::parse(&format!("http://x/?{}", self.query.clone().unwrap_or_default())).unwrap();
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }
}

/// A receiver on 127.0.0.1:0 answering every request with `status`, `answer` and `header`; what
/// it got comes out of the channel.
async fn receiver_with(
    status: u16,
    answer: &'static str,
    header: Option<(&'static str, &'static str)>,
) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, RawQuery(query): RawQuery, headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let path = uri.path().to_string();
                let _ = tx.send(Received { method, path, query, headers, body: body.to_vec() });
                let mut answer_headers = HeaderMap::new();
                if let Some((name, value)) = header {
                    answer_headers.insert(name, value.parse().unwrap());
                }
                (StatusCode::from_u16(status).unwrap(), answer_headers, answer)
            }
        },
    );
    (serve(app).await, rx)
}

async fn receiver(status: u16, answer: &'static str) -> (String, mpsc::UnboundedReceiver<Received>) {
    receiver_with(status, answer, None).await
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

/// A receiver that takes the request and never answers.
async fn hanging_receiver() -> String {
    serve(Router::new().fallback(|| async {
        std::future::pending::<()>().await;
        ""
    }))
    .await
}

/// The footer every chat format closes with.
fn footer(last: &str) -> String {
    format!("alert: openai-errors · kind: error_rate · started: {STARTED} · {last}: {AT}")
}

// ---------------------------------------------------------------------------------------------
// DingTalk

#[tokio::test]
async fn dingtalk_sends_markdown_signed_with_timestamp_and_sign_in_the_url() {
    let (base, mut rx) = receiver(200, r#"{"errcode":0,"errmsg":"ok"}"#).await;
    let url = format!("{base}/robot/send?access_token={DING_TOKEN}");
    let channels = one(config("ops-dingtalk", ChannelKind::Dingtalk, Some(url), Some(DING_SECRET)));

    let before = crate::time::now_ms();
    channels.send("ops-dingtalk", &firing()).await.unwrap();
    let after = crate::time::now_ms();

    let got = rx.recv().await.unwrap();
    assert_eq!(got.method, Method::POST);
    assert_eq!(got.path, "/robot/send");
    assert_eq!(got.header("content-type"), "application/json");
    let pairs = got.query_pairs();
    assert_eq!(pairs.len(), 3, "{pairs:?}");
    assert_eq!(pairs[0], ("access_token".to_string(), DING_TOKEN.to_string()));
    assert_eq!(pairs[1].0, "timestamp");
    let timestamp: i64 = pairs[1].1.parse().unwrap();
    assert!((before..=after).contains(&timestamp), "timestamp {timestamp} is milliseconds of the send");
    // DingTalk: base64(HMAC-SHA256(key = secret, "{timestamp}\n{secret}")), URL-encoded.
    let expected = b64(&hmac_sha256(DING_SECRET.as_bytes(), format!("{timestamp}\n{DING_SECRET}").as_bytes()));
    assert_eq!(pairs[2], ("sign".to_string(), expected.clone()));
    let encoded = expected.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    assert_eq!(
        got.query.as_deref().unwrap(),
        format!("access_token={DING_TOKEN}&timestamp={timestamp}&sign={encoded}")
    );

    let text = format!(
        "### [FIRING] {TITLE}\n\n- **value**: 12.5%\n- **threshold**: 5%\n- **scope**: provider openai\n\
         - **window**: 5m\n\n{}",
        footer("at")
    );
    assert_eq!(
        got.json(),
        json!({"msgtype": "markdown", "markdown": {"title": format!("[FIRING] {TITLE}"), "text": text}})
    );
}

#[tokio::test]
async fn dingtalk_without_a_secret_sends_no_signature_and_says_a_reminder_is_one() {
    let (base, mut rx) = receiver(200, r#"{"errcode":0,"errmsg":"ok"}"#).await;
    let url = format!("{base}/robot/send?access_token={DING_TOKEN}");
    let channels = one(config("ops-dingtalk", ChannelKind::Dingtalk, Some(url), None));
    channels.send("ops-dingtalk", &reminder()).await.unwrap();

    let got = rx.recv().await.unwrap();
    assert_eq!(got.query.as_deref(), Some(format!("access_token={DING_TOKEN}").as_str()));
    let text = format!(
        "### [FIRING, reminder] {TITLE}\n\n> Reminder: this alert is still firing.\n\n- **value**: 12.5%\n\
         - **threshold**: 5%\n- **scope**: provider openai\n- **window**: 5m\n\n{}",
        footer("at")
    );
    assert_eq!(
        got.json(),
        json!({"msgtype": "markdown", "markdown": {"title": format!("[FIRING, reminder] {TITLE}"), "text": text}})
    );
}

#[tokio::test]
async fn dingtalk_errcode_in_a_200_is_a_refusal_without_the_token_or_the_secret() {
    // DingTalk answers 200 when it refuses; this one echoes the token and the secret back.
    let answer: &'static str = Box::leak(
        format!(r#"{{"errcode":310000,"errmsg":"sign not match, access_token={DING_TOKEN} secret={DING_SECRET}"}}"#)
            .into_boxed_str(),
    );
    let (base, _rx) = receiver(200, answer).await;
    let url = format!("{base}/robot/send?access_token={DING_TOKEN}");
    let channels = one(config("ops-dingtalk", ChannelKind::Dingtalk, Some(url), Some(DING_SECRET)));

    let error = channels.send("ops-dingtalk", &firing()).await.unwrap_err();
    let ChannelError::Refused { status, detail } = &error else { panic!("{error:?}") };
    assert_eq!(*status, 200);
    assert!(detail.starts_with("errcode 310000: sign not match, access_token=[redacted]"), "{detail}");
    let shown = error.to_string();
    assert!(!shown.contains(DING_TOKEN) && !shown.contains(&DING_TOKEN[..12]), "{shown}");
    assert!(!shown.contains(DING_SECRET) && !shown.contains(&DING_SECRET[..12]), "{shown}");
}

// ---------------------------------------------------------------------------------------------
// Feishu / Lark

fn feishu_card(template: &str, headline: &str, content: &str) -> Value {
    json!({
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": true},
            "header": {"template": template, "title": {"tag": "plain_text", "content": headline}},
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": content}}],
        },
    })
}

#[tokio::test]
async fn feishu_sends_a_card_signed_with_timestamp_and_sign_in_the_body() {
    let (base, mut rx) = receiver(200, r#"{"code":0,"msg":"success","data":{}}"#).await;
    let url = format!("{base}/open-apis/bot/v2/hook/{FEISHU_HOOK}");
    let channels = one(config("ops-feishu", ChannelKind::Feishu, Some(url), Some(FEISHU_SECRET)));

    let before = crate::time::now_ms() / 1000;
    channels.send("ops-feishu", &firing()).await.unwrap();
    let after = crate::time::now_ms() / 1000;

    let got = rx.recv().await.unwrap();
    assert_eq!(got.path, format!("/open-apis/bot/v2/hook/{FEISHU_HOOK}"));
    assert_eq!(got.query, None);
    let mut body = got.json();
    let object = body.as_object_mut().unwrap();
    let timestamp = object.remove("timestamp").unwrap();
    let sign = object.remove("sign").unwrap();
    let timestamp: i64 = timestamp.as_str().expect("timestamp is a string").parse().unwrap();
    assert!((before..=after).contains(&timestamp), "timestamp {timestamp} is seconds of the send");
    // Feishu: base64(HMAC-SHA256(key = "{timestamp}\n{secret}", empty message)).
    let expected = b64(&hmac_sha256(format!("{timestamp}\n{FEISHU_SECRET}").as_bytes(), b""));
    assert_eq!(sign, json!(expected));
    let content =
        format!("**value**: 12.5%\n**threshold**: 5%\n**scope**: provider openai\n**window**: 5m\n\n{}", footer("at"));
    assert_eq!(body, feishu_card("red", &format!("[FIRING] {TITLE}"), &content));
}

#[tokio::test]
async fn feishu_colours_reminders_and_resolutions_and_sends_unsigned_without_a_secret() {
    let (base, mut rx) = receiver(200, r#"{"code":0,"msg":"success","data":{}}"#).await;
    let channels =
        one(config("f", ChannelKind::Feishu, Some(format!("{base}/open-apis/bot/v2/hook/{FEISHU_HOOK}")), None));

    channels.send("f", &reminder()).await.unwrap();
    let content = format!(
        "*Reminder: this alert is still firing.*\n\n**value**: 12.5%\n**threshold**: 5%\n**scope**: provider openai\n\
         **window**: 5m\n\n{}",
        footer("at")
    );
    assert_eq!(
        rx.recv().await.unwrap().json(),
        feishu_card("orange", &format!("[FIRING, reminder] {TITLE}"), &content)
    );

    channels.send("f", &resolved()).await.unwrap();
    let content = format!("**value**: 0.4%\n\n{}", footer("resolved"));
    assert_eq!(rx.recv().await.unwrap().json(), feishu_card("green", &format!("[RESOLVED] {TITLE}"), &content));
}

#[tokio::test]
async fn feishu_code_in_a_200_is_a_refusal() {
    let answer =
        r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time","data":{}}"#;
    let (base, _rx) = receiver(200, answer).await;
    let url = format!("{base}/open-apis/bot/v2/hook/{FEISHU_HOOK}");
    let channels = one(config("f", ChannelKind::Feishu, Some(url), Some(FEISHU_SECRET)));
    let error = channels.send("f", &firing()).await.unwrap_err();
    let ChannelError::Refused { status, detail } = &error else { panic!("{error:?}") };
    assert_eq!(
        (*status, detail.as_str()),
        (200, "code 19021: sign match fail or timestamp is not within one hour from current time")
    );

    // The older answer shape.
    let (base, _rx) = receiver(200, r#"{"StatusCode":9499,"StatusMessage":"Bad Request"}"#).await;
    let channels =
        one(config("f", ChannelKind::Feishu, Some(format!("{base}/open-apis/bot/v2/hook/{FEISHU_HOOK}")), None));
    let error = channels.send("f", &firing()).await.unwrap_err();
    assert_eq!(error.to_string(), "the receiver refused the notification (HTTP 200): code 9499: Bad Request");
}

// ---------------------------------------------------------------------------------------------
// WeCom

#[tokio::test]
async fn wecom_sends_markdown_content() {
    let (base, mut rx) = receiver(200, r#"{"errcode":0,"errmsg":"ok"}"#).await;
    let url = format!("{base}/cgi-bin/webhook/send?key={WECOM_KEY}");
    let channels = one(config("ops-wecom", ChannelKind::Wecom, Some(url), None));

    channels.send("ops-wecom", &firing()).await.unwrap();
    let got = rx.recv().await.unwrap();
    assert_eq!(
        (got.path.as_str(), got.query.as_deref()),
        ("/cgi-bin/webhook/send", Some(format!("key={WECOM_KEY}").as_str()))
    );
    let content = format!(
        "### <font color=\"warning\">[FIRING]</font> {TITLE}\n\n- **value**: 12.5%\n- **threshold**: 5%\n\
         - **scope**: provider openai\n- **window**: 5m\n\n{}",
        footer("at")
    );
    assert_eq!(got.json(), json!({"msgtype": "markdown", "markdown": {"content": content}}));

    channels.send("ops-wecom", &resolved()).await.unwrap();
    let content =
        format!("### <font color=\"info\">[RESOLVED]</font> {TITLE}\n\n- **value**: 0.4%\n\n{}", footer("resolved"));
    assert_eq!(rx.recv().await.unwrap().json(), json!({"msgtype": "markdown", "markdown": {"content": content}}));
}

#[tokio::test]
async fn wecom_content_stays_within_4096_bytes_cut_on_character_boundaries() {
    let (base, mut rx) = receiver(200, r#"{"errcode":0,"errmsg":"ok"}"#).await;
    let channels =
        one(config("w", ChannelKind::Wecom, Some(format!("{base}/cgi-bin/webhook/send?key={WECOM_KEY}")), None));
    let mut n = firing();
    n.title = "告警".repeat(200); // 1,200 bytes: cut to 256
    n.details = (0..300).map(|i| (format!("键{i}"), "错误率很高".repeat(10))).collect();

    channels.send("w", &n).await.unwrap();
    let body = rx.recv().await.unwrap().json();
    let content = body["markdown"]["content"].as_str().unwrap();
    assert!(content.len() <= 4096, "{} bytes", content.len());
    assert!(content.len() > 3900, "filled up to the limit: {} bytes", content.len());
    let heading = content.lines().next().unwrap();
    assert!(heading.starts_with("### <font color=\"warning\">[FIRING]</font> 告警告警"), "{heading}");
    assert!(heading.ends_with("警…"), "cut on a character boundary: {heading}");
    assert!(heading.len() < 300, "{heading}");
    assert!(content.ends_with(&footer("at")), "the closing facts survive: {content}");
    let kept = content.lines().filter(|l| l.starts_with("- **键")).count();
    assert!(kept > 10, "{kept}");
    assert!(content.contains(&format!("\n- … {} more\n", 300 - kept)), "{content}");
}

#[tokio::test]
async fn wecom_errcode_in_a_200_is_a_refusal_without_the_key() {
    let answer: &'static str = Box::leak(
        format!(r#"{{"errcode":93000,"errmsg":"invalid webhook url, hint: [1764151200_1] key={WECOM_KEY}"}}"#)
            .into_boxed_str(),
    );
    let (base, _rx) = receiver(200, answer).await;
    let channels =
        one(config("w", ChannelKind::Wecom, Some(format!("{base}/cgi-bin/webhook/send?key={WECOM_KEY}")), None));
    let error = channels.send("w", &firing()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "the receiver refused the notification (HTTP 200): errcode 93000: invalid webhook url, hint: [1764151200_1] key=[redacted]"
    );
}

// ---------------------------------------------------------------------------------------------
// Slack

#[tokio::test]
async fn slack_sends_text_and_blocks() {
    let (base, mut rx) = receiver(200, "ok").await;
    let url = format!("{base}/services/T0001/B0001/{SLACK_TOKEN}");
    let channels = one(config("ops-slack", ChannelKind::Slack, Some(url), None));

    channels.send("ops-slack", &firing()).await.unwrap();
    let got = rx.recv().await.unwrap();
    assert_eq!(got.path, format!("/services/T0001/B0001/{SLACK_TOKEN}"));
    let expected = json!({
        "text": format!("[FIRING] {TITLE}"),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": format!("[FIRING] {TITLE}")}},
            {"type": "section", "text": {"type": "mrkdwn",
                "text": "*value:* 12.5%\n*threshold:* 5%\n*scope:* provider openai\n*window:* 5m"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": footer("at")}]},
        ],
    });
    assert_eq!(got.json(), expected);

    // A reminder says so; mrkdwn markup in values is escaped (`<!channel>` would ping everyone).
    let mut n = reminder();
    n.details = vec![("scope".into(), "<!channel> & co".into())];
    channels.send("ops-slack", &n).await.unwrap();
    let body = rx.recv().await.unwrap().json();
    assert_eq!(
        body["blocks"][1]["text"]["text"],
        "_Reminder: this alert is still firing._\n*scope:* &lt;!channel&gt; &amp; co"
    );
}

#[tokio::test]
async fn slack_refusals_and_answers_other_than_ok_are_errors() {
    let (base, _rx) = receiver(400, "invalid_payload").await;
    let channels =
        one(config("s", ChannelKind::Slack, Some(format!("{base}/services/T0001/B0001/{SLACK_TOKEN}")), None));
    let error = channels.send("s", &firing()).await.unwrap_err();
    assert_eq!(error.to_string(), "the receiver refused the notification (HTTP 400): invalid_payload");

    let (base, _rx) = receiver(200, "<html>captive portal</html>").await;
    let channels =
        one(config("s", ChannelKind::Slack, Some(format!("{base}/services/T0001/B0001/{SLACK_TOKEN}")), None));
    let error = channels.send("s", &firing()).await.unwrap_err();
    assert!(matches!(error, ChannelError::Refused { status: 200, .. }), "{error:?}");
}

// ---------------------------------------------------------------------------------------------
// Generic webhook

#[tokio::test]
async fn webhook_posts_the_notification_signed_with_hmac_of_the_exact_body() {
    let (base, mut rx) = receiver(204, "").await;
    let url = format!("{base}/hooks/{HOOK_TOKEN}");
    let channels = one(config("ops-hook", ChannelKind::Webhook, Some(url), Some(HOOK_SECRET)));

    let before = crate::time::now_ms();
    channels.send("ops-hook", &firing()).await.unwrap();
    let after = crate::time::now_ms();

    let got = rx.recv().await.unwrap();
    assert_eq!(got.header("content-type"), "application/json");
    let expected_signature = format!("sha256={}", hex::encode(hmac_sha256(HOOK_SECRET.as_bytes(), &got.body)));
    assert_eq!(got.header("x-maestro-signature"), expected_signature);
    let timestamp: i64 = got.header("x-maestro-timestamp").parse().unwrap();
    assert!((before..=after).contains(&timestamp));
    assert_eq!(
        got.json(),
        json!({
            "alert": "openai-errors",
            "kind": "error_rate",
            "state": "firing",
            "repeat": false,
            "title": TITLE,
            "details": [
                {"label": "value", "value": "12.5%"},
                {"label": "threshold", "value": "5%"},
                {"label": "scope", "value": "provider openai"},
                {"label": "window", "value": "5m"},
            ],
            "started_at_ms": 1_764_151_200_000_i64,
            "at_ms": 1_764_151_500_000_i64,
        })
    );

    // Unsigned without a secret.
    let channels = one(config("plain", ChannelKind::Webhook, Some(format!("{base}/hooks/{HOOK_TOKEN}")), None));
    channels.send("plain", &resolved()).await.unwrap();
    let got = rx.recv().await.unwrap();
    assert!(got.headers.get("x-maestro-signature").is_none());
    assert_eq!(got.json()["state"], "resolved");
}

#[tokio::test]
async fn a_failing_receiver_gives_an_error_without_the_secret_or_the_url() {
    let echo: &'static str = Box::leak(format!("boom: {HOOK_SECRET} at /hooks/{HOOK_TOKEN}").into_boxed_str());
    let (base, _rx) = receiver(500, echo).await;
    let channels =
        one(config("h", ChannelKind::Webhook, Some(format!("{base}/hooks/{HOOK_TOKEN}")), Some(HOOK_SECRET)));
    let error = channels.send("h", &firing()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "the receiver refused the notification (HTTP 500): boom: [redacted] at /hooks/[redacted]"
    );
}

#[tokio::test]
async fn an_unreachable_receiver_gives_an_error_without_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let channels = one(config(
        "h",
        ChannelKind::Dingtalk,
        Some(format!("http://{address}/robot/send?access_token={DING_TOKEN}")),
        None,
    ));
    let error = channels.send("h", &firing()).await.unwrap_err();
    assert!(matches!(error, ChannelError::Unreachable(_)), "{error:?}");
    let shown = error.to_string();
    assert!(shown.starts_with("cannot reach the receiver: connection failed"), "{shown}");
    assert!(!shown.contains(DING_TOKEN) && !shown.contains("access_token") && !shown.contains("/robot"), "{shown}");
}

// ---------------------------------------------------------------------------------------------
// Hanging receivers

/// An e-mail sender that never finishes.
struct HangingEmail;

#[async_trait::async_trait]
impl EmailSender for HangingEmail {
    async fn send(&self, _: &[String], _: &str, _: &str) -> Result<(), ChannelError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out_within_the_bound() {
    let base = hanging_receiver().await;
    let mut email = config("mail", ChannelKind::Email, None, None);
    email.to = vec!["oncall@example.com".into()];
    let channels = Channels::new(
        vec![
            config("hook", ChannelKind::Webhook, Some(format!("{base}/hooks/{HOOK_TOKEN}")), Some(HOOK_SECRET)),
            config("ding", ChannelKind::Dingtalk, Some(format!("{base}/robot/send?access_token={DING_TOKEN}")), None),
            email,
        ],
        Some(Arc::new(HangingEmail)),
    )
    .unwrap()
    .with_timeout(Duration::from_millis(300));

    for name in ["hook", "ding", "mail"] {
        let started = Instant::now();
        let error = channels.send(name, &firing()).await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(error, ChannelError::Timeout { after_ms: 300 }), "{name}: {error:?}");
        assert_eq!(error.to_string(), "no answer within 300 ms");
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{name}: {took:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// E-mail through Channels, and the words of an e-mail

/// An e-mail sender that keeps what it was given.
#[derive(Default)]
struct RecordingEmail(Mutex<Vec<(Vec<String>, String, String)>>);

#[async_trait::async_trait]
impl EmailSender for RecordingEmail {
    async fn send(&self, to: &[String], subject: &str, text_body: &str) -> Result<(), ChannelError> {
        self.0.lock().unwrap().push((to.to_vec(), subject.to_string(), text_body.to_string()));
        Ok(())
    }
}

fn email_config(to: &[&str]) -> ChannelConfig {
    ChannelConfig {
        to: to.iter().map(|s| s.to_string()).collect(),
        ..config("ops-email", ChannelKind::Email, None, None)
    }
}

#[tokio::test]
async fn email_channels_send_subject_and_plain_text_to_every_recipient() {
    let sender = Arc::new(RecordingEmail::default());
    let channels =
        Channels::new(vec![email_config(&["oncall@example.com", "lead@example.com"])], Some(sender.clone())).unwrap();
    channels.send("ops-email", &reminder()).await.unwrap();
    channels.send("ops-email", &resolved()).await.unwrap();

    let sent = sender.0.lock().unwrap();
    let to = vec!["oncall@example.com".to_string(), "lead@example.com".to_string()];
    let body = format!(
        "[FIRING, reminder] {TITLE}\nReminder: this alert is still firing.\n\nvalue: 12.5%\nthreshold: 5%\n\
         scope: provider openai\nwindow: 5m\n\nalert: openai-errors\nkind: error_rate\nstarted: {STARTED}\nat: {AT}\n"
    );
    assert_eq!(sent[0], (to.clone(), format!("[FIRING, reminder] {TITLE}"), body));
    let body = format!(
        "[RESOLVED] {TITLE}\n\nvalue: 0.4%\n\nalert: openai-errors\nkind: error_rate\nstarted: {STARTED}\nresolved: {AT}\n"
    );
    assert_eq!(sent[1], (to, format!("[RESOLVED] {TITLE}"), body));
}

// ---------------------------------------------------------------------------------------------
// SMTP against a small server written here

#[derive(Debug, Default)]
struct SmtpSession {
    commands: Vec<String>,
    data: String,
}

/// One SMTP session on 127.0.0.1:0 (220, EHLO, optional AUTH, MAIL, RCPT, DATA, QUIT); a RCPT
/// is refused with 550 when `refuse_rcpt`.
async fn smtp_server(auth: bool, refuse_rcpt: bool) -> (u16, tokio::task::JoinHandle<SmtpSession>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut session = SmtpSession::default();
        write.write_all(b"220 test.local ESMTP\r\n").await.unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            session.commands.push(line.clone());
            let verb = line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" if auth => b"250-test.local\r\n250 AUTH PLAIN LOGIN\r\n",
                "EHLO" => b"250 test.local\r\n",
                "AUTH" => b"235 2.7.0 accepted\r\n",
                "MAIL" => b"250 2.1.0 ok\r\n",
                "RCPT" if refuse_rcpt => b"550 5.1.1 no such user here\r\n",
                "RCPT" => b"250 2.1.5 ok\r\n",
                "RSET" => b"250 ok\r\n",
                "DATA" => {
                    write.write_all(b"354 go ahead\r\n").await.unwrap();
                    let mut data = Vec::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if line == "." {
                            break;
                        }
                        data.push(line);
                    }
                    session.data = data.join("\r\n");
                    b"250 2.0.0 queued\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                }
                _ => b"502 not here\r\n",
            };
            write.write_all(reply).await.unwrap();
        }
        session
    });
    (port, task)
}

fn smtp_config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        username: None,
        password: None,
        from: "Maestro <alerts@example.com>".into(),
        tls: SmtpTls::None,
    }
}

#[tokio::test]
async fn smtp_delivers_to_every_recipient_with_subject_and_body() {
    let (port, server) = smtp_server(false, false).await;
    let smtp = SmtpEmail::new(&smtp_config(port)).unwrap();
    let channels =
        Channels::new(vec![email_config(&["oncall@example.com", "lead@example.com"])], Some(Arc::new(smtp))).unwrap();
    channels.send("ops-email", &firing()).await.unwrap();

    let session = server.await.unwrap();
    let commands: Vec<&str> = session.commands.iter().map(String::as_str).collect();
    assert!(commands[0].starts_with("EHLO "), "{commands:?}");
    assert_eq!(
        &commands[1..],
        [
            "MAIL FROM:<alerts@example.com>",
            "RCPT TO:<oncall@example.com>",
            "RCPT TO:<lead@example.com>",
            "DATA",
            "QUIT"
        ]
    );
    let (headers, body) = session.data.split_once("\r\n\r\n").unwrap();
    let headers: Vec<&str> = headers.split("\r\n").collect();
    assert!(headers.contains(&"From: Maestro <alerts@example.com>"), "{headers:?}");
    assert!(headers.contains(&"To: oncall@example.com, lead@example.com"), "{headers:?}");
    assert!(headers.contains(&format!("Subject: [FIRING] {TITLE}").as_str()), "{headers:?}");
    assert!(headers.contains(&"Content-Type: text/plain; charset=utf-8"), "{headers:?}");
    let expected = format!(
        "[FIRING] {TITLE}\r\n\r\nvalue: 12.5%\r\nthreshold: 5%\r\nscope: provider openai\r\nwindow: 5m\r\n\r\n\
         alert: openai-errors\r\nkind: error_rate\r\nstarted: {STARTED}\r\nat: {AT}"
    );
    assert_eq!(body.trim_end(), expected);
}

#[tokio::test]
async fn smtp_logs_in_with_the_password_and_a_refusal_does_not_show_it() {
    let password = "smtp-pass-9f8e7d6c5b4a";
    let (port, server) = smtp_server(true, false).await;
    let config = SmtpConfig {
        username: Some("alerts".into()),
        password: Some(SecretString::new(password)),
        ..smtp_config(port)
    };
    let smtp = SmtpEmail::new(&config).unwrap();
    smtp.send(&["oncall@example.com".into()], "subject", "body").await.unwrap();
    let session = server.await.unwrap();
    let plain = b64(format!("\0alerts\0{password}").as_bytes());
    assert_eq!(session.commands[1], format!("AUTH PLAIN {plain}"));

    let (port, server) = smtp_server(true, true).await;
    let smtp = SmtpEmail::new(&SmtpConfig { port: Some(port), ..config }).unwrap();
    let error = smtp.send(&["nobody@example.com".into()], "subject", "body").await.unwrap_err();
    let shown = error.to_string();
    assert!(matches!(error, ChannelError::Email(_)), "{error:?}");
    assert!(shown.contains("550") && shown.contains("no such user here"), "{shown}");
    assert!(!shown.contains(password) && !shown.contains(&plain), "{shown}");
    drop(server);
}

#[test]
fn smtp_config_reads_from_toml_with_defaults_and_is_checked() {
    let config: SmtpConfig = toml::from_str(
        "host = \"smtp.example.com\"\nfrom = \"Maestro <alerts@example.com>\"\nusername = \"alerts\"\npassword = \"pw-123\"\n",
    )
    .unwrap();
    assert_eq!((config.tls, config.port()), (SmtpTls::Starttls, 587));
    assert_eq!(config.validate(), Ok(()));
    assert!(!format!("{config:?}").contains("pw-123"));
    assert!(
        toml::from_str::<SmtpConfig>("host = \"h\"\nfrom = \"a@b.c\"\nhots = 1\n").is_err(),
        "unknown fields are errors"
    );
    let tls: SmtpConfig =
        toml::from_str("host = \"smtp.example.com\"\nfrom = \"a@example.com\"\ntls = \"tls\"\n").unwrap();
    assert_eq!(tls.port(), 465);
    assert!(SmtpEmail::new(&tls).is_ok());

    let clear = SmtpConfig { tls: SmtpTls::None, ..config.clone() };
    assert_eq!(
        clear.validate().unwrap_err(),
        "smtp: `username`/`password` need `tls = \"starttls\"` or `\"tls\"` (with `tls = \"none\"` the password would \
         cross the network in clear text)"
    );
    assert_eq!(SmtpConfig { host: "localhost".into(), ..clear.clone() }.validate(), Ok(()), "a local relay may");
    assert_eq!(
        SmtpConfig { password: None, ..config.clone() }.validate().unwrap_err(),
        "smtp: `username` and `password` go together, both non-empty"
    );
    assert_eq!(
        SmtpConfig { from: "alerts".into(), ..config.clone() }.validate().unwrap_err(),
        "smtp: `from` is not an e-mail address"
    );
    assert_eq!(
        SmtpConfig { host: " ".into(), ..config }.validate().unwrap_err(),
        "smtp: `host` must be a host name or address"
    );
}

// ---------------------------------------------------------------------------------------------
// SES

/// SigV4 recomputed from the request as it arrived (no SDK code), per AWS's description.
fn check_sigv4(got: &Received, access_key: &str, secret_key: &str, region: &str, service: &str) {
    let authorization = got.header("authorization");
    let amz_date = got.header("x-amz-date");
    let date = &amz_date[..8];
    let rest = authorization.strip_prefix("AWS4-HMAC-SHA256 ").unwrap();
    let fields: std::collections::HashMap<&str, &str> = rest.split(", ").map(|f| f.split_once('=').unwrap()).collect();
    let scope = format!("{date}/{region}/{service}/aws4_request");
    assert_eq!(fields["Credential"], format!("{access_key}/{scope}"));
    let signed_headers = fields["SignedHeaders"];
    assert!(
        signed_headers.split(';').any(|h| h == "host") && signed_headers.contains("x-amz-date"),
        "{signed_headers}"
    );
    let canonical_headers: String =
        signed_headers.split(';').map(|name| format!("{name}:{}\n", got.header(name).trim())).collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        got.method,
        got.path,
        got.query.clone().unwrap_or_default(),
        hex::encode(Sha256::digest(&got.body))
    );
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())));
    let mut key = hmac_sha256(format!("AWS4{secret_key}").as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    assert_eq!(fields["Signature"], hex::encode(hmac_sha256(&key, string_to_sign.as_bytes())));
}

#[tokio::test]
async fn ses_posts_a_sigv4_signed_send_email() {
    let (base, mut rx) = receiver(200, r#"{"MessageId":"0100018c-test"}"#).await;
    let sdk = crate::aws::emulator::sdk_config(&base).await;
    let ses_config =
        SesConfig { from: "alerts@example.com".into(), region: None, configuration_set: Some("alerts".into()) };
    let ses = SesEmail::new(&sdk, ses_config).unwrap();
    ses.send(&["oncall@example.com".into(), "lead@example.com".into()], "[FIRING] x", "body text").await.unwrap();

    let got = rx.recv().await.unwrap();
    assert_eq!((got.method.clone(), got.path.as_str()), (Method::POST, "/v2/email/outbound-emails"));
    check_sigv4(&got, "test", "test", "us-east-1", "ses");
    assert_eq!(
        got.json(),
        json!({
            "FromEmailAddress": "alerts@example.com",
            "Destination": {"ToAddresses": ["oncall@example.com", "lead@example.com"]},
            "Content": {"Simple": {
                "Subject": {"Data": "[FIRING] x", "Charset": "UTF-8"},
                "Body": {"Text": {"Data": "body text", "Charset": "UTF-8"}},
            }},
            "ConfigurationSetName": "alerts",
        })
    );

    let (base, _rx) = receiver_with(
        400,
        r#"{"message":"Email address is not verified."}"#,
        Some(("x-amzn-errortype", "MessageRejected:http://internal.amazon.com/coral/com.amazon.ses/")),
    )
    .await;
    let sdk = crate::aws::emulator::sdk_config(&base).await;
    let ses =
        SesEmail::new(&sdk, SesConfig { from: "alerts@example.com".into(), region: None, configuration_set: None })
            .unwrap();
    let error = ses.send(&["oncall@example.com".into()], "s", "b").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"e-mail not sent: SES answered HTTP 400: MessageRejected: {"message":"Email address is not verified."}"#
    );
}

#[tokio::test]
async fn ses_sends_through_moto_once_the_sender_is_verified() {
    let Some(endpoint) =
        crate::aws::emulator::test_endpoint("ses_sends_through_moto_once_the_sender_is_verified").unwrap()
    else {
        return;
    };
    let sdk = crate::aws::emulator::sdk_config(&endpoint).await;
    let from = format!("alerts-{}@example.com", uuid::Uuid::new_v4().simple());
    // Generous bounds: moto is shared with other suites and can be slow on a loaded machine.
    let ses = SesEmail::new(&sdk, SesConfig { from: from.clone(), region: None, configuration_set: None }).unwrap();
    let ses = Arc::new(ses.with_timeout(Duration::from_secs(60)));

    // Not verified yet: SES (and moto) refuse.
    let error = ses.send(&["oncall@example.com".into()], "s", "b").await.unwrap_err();
    assert!(matches!(&error, ChannelError::Email(d) if d.contains("HTTP 400")), "{error:?}");

    let identity = serde_json::to_vec(&json!({"EmailIdentity": from})).unwrap();
    let (status, answer) = ses.post("/v2/email/identities", identity).await.unwrap();
    assert_eq!(status, 200, "{answer}");

    let channels = Channels::new(vec![email_config(&["oncall@example.com", "lead@example.com"])], Some(ses.clone()))
        .unwrap()
        .with_timeout(Duration::from_secs(60));
    let mut n = firing();
    n.title = format!("Error rate on openai {}", uuid::Uuid::new_v4().simple());
    channels.send("ops-email", &n).await.unwrap();

    let data: Value = reqwest::get(format!("{endpoint}/moto-api/data.json")).await.unwrap().json().await.unwrap();
    let messages = data["ses"]["Message"].as_array().unwrap();
    let subject = format!("[FIRING] {}", n.title);
    let ours: Vec<&Value> = messages.iter().filter(|m| m["subject"] == subject.as_str()).collect();
    assert_eq!(ours.len(), 1, "{messages:?}");
    assert_eq!(ours[0]["source"], from.as_str());
    assert_eq!(ours[0]["destinations"], json!({"ToAddresses": ["oncall@example.com", "lead@example.com"]}));
    let (_, body) = text::email(&n);
    assert_eq!(ours[0]["body"], body.as_str());
}

// ---------------------------------------------------------------------------------------------
// Configuration, masking, the registry

#[test]
fn the_issue_toml_reads_into_channel_configs() {
    #[derive(serde::Deserialize)]
    struct File {
        alert_channels: Vec<ChannelConfig>,
    }
    let file: File = toml::from_str(&format!(
        r#"
[[alert_channels]]
name = "ops-dingtalk"
kind = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}"
secret = "{DING_SECRET}"

[[alert_channels]]
name = "ops-email"
kind = "email"
to = ["oncall@example.com"]
"#
    ))
    .unwrap();
    let [ding, email] = &file.alert_channels[..] else { panic!() };
    assert_eq!((ding.name.as_str(), &ding.kind), ("ops-dingtalk", &ChannelKind::Dingtalk));
    assert_eq!(ding.secret.as_ref().unwrap().expose(), DING_SECRET);
    assert_eq!(
        (email.kind.clone(), email.to.clone(), email.url.clone()),
        (ChannelKind::Email, vec!["oncall@example.com".to_string()], None)
    );
    assert_eq!(ding.validate(), Ok(()));
    assert_eq!(email.validate(), Ok(()));
    assert!(!format!("{ding:?}").contains(DING_SECRET));

    let unknown = toml::from_str::<File>("[[alert_channels]]\nname = \"a\"\nkind = \"webhook\"\nurls = \"x\"\n");
    assert!(unknown.is_err(), "unknown fields are errors");
    let kind = toml::from_str::<File>("[[alert_channels]]\nname = \"a\"\nkind = \"pager\"\n");
    assert!(kind.is_err(), "unknown kinds are errors");
}

#[test]
fn validation_names_the_field_and_never_repeats_the_url() {
    let url = |u: &str| Some(u.to_string());
    let cases: Vec<(ChannelConfig, &str)> = vec![
        (
            config(" ", ChannelKind::Webhook, url("https://x.example/h"), None),
            "alert channel: `name` must not be empty",
        ),
        (config("a", ChannelKind::Dingtalk, None, None), "alert channel `a`: `url` is required for dingtalk channels"),
        (
            config("a", ChannelKind::Webhook, url(&format!("ftp://x.example/h?token={HOOK_TOKEN}")), None),
            "alert channel `a`: `url` must be an http:// or https:// URL",
        ),
        (
            config("a", ChannelKind::Webhook, url(&format!("https://user:{HOOK_TOKEN}@x.example/h")), None),
            "alert channel `a`: `url` must not carry a user name or password",
        ),
        (
            config("a", ChannelKind::Webhook, url(&format!(" https://x.example/{HOOK_TOKEN}")), None),
            "alert channel `a`: `url` must be an http:// or https:// URL (ASCII, no spaces)",
        ),
        (
            config("a", ChannelKind::Slack, url("https://hooks.slack.com/services/T/B/x"), Some("s3cr3t")),
            "alert channel `a`: `secret` is not used by slack channels (dingtalk, feishu and webhook sign with one)",
        ),
        (
            config("a", ChannelKind::Feishu, url("https://open.feishu.cn/open-apis/bot/v2/hook/x"), Some(" ")),
            "alert channel `a`: `secret` must not be empty (leave it out to send unsigned)",
        ),
        (
            config("a", ChannelKind::Email, url("https://x.example/h"), None),
            "alert channel `a`: `url` is not used by email channels (recipients go in `to`)",
        ),
        (config("a", ChannelKind::Email, None, None), "alert channel `a`: `to` must list at least one recipient"),
        (
            ChannelConfig {
                to: vec!["ok@example.com".into(), "oncall".into()],
                ..config("a", ChannelKind::Email, None, None)
            },
            "alert channel `a`: `to`: `oncall` is not an e-mail address",
        ),
        (
            ChannelConfig { to: vec!["Ops <ops@example.com>".into()], ..config("a", ChannelKind::Email, None, None) },
            "alert channel `a`: `to`: `Ops <ops@example.com>` is not an e-mail address",
        ),
        (
            ChannelConfig {
                to: vec!["ok@example.com".into()],
                ..config("a", ChannelKind::Webhook, url("https://x.example/h"), None)
            },
            "alert channel `a`: `to` is only for email channels",
        ),
    ];
    for (config, expected) in cases {
        assert_eq!(config.validate().unwrap_err(), expected);
        assert!(!expected.contains(HOOK_TOKEN));
    }
    let plain_http = config("a", ChannelKind::Webhook, url("http://127.0.0.1:9000/alerts"), Some("k"));
    assert_eq!(plain_http.validate(), Ok(()));
}

#[test]
fn masked_shows_every_field_but_never_the_secret_or_the_token() {
    let ding = config(
        "ops-dingtalk",
        ChannelKind::Dingtalk,
        Some(format!("https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}")),
        Some(DING_SECRET),
    );
    assert_eq!(
        ding.masked(),
        json!({"name": "ops-dingtalk", "kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/…",
               "secret": format!("…{}", &DING_SECRET[DING_SECRET.len() - 4..]), "to": []})
    );
    let configs = vec![
        ding,
        config(
            "f",
            ChannelKind::Feishu,
            Some(format!("https://open.feishu.cn/open-apis/bot/v2/hook/{FEISHU_HOOK}")),
            Some(FEISHU_SECRET),
        ),
        config(
            "w",
            ChannelKind::Wecom,
            Some(format!("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}")),
            None,
        ),
        config(
            "s",
            ChannelKind::Slack,
            Some(format!("https://hooks.slack.com/services/T0001/B0001/{SLACK_TOKEN}")),
            None,
        ),
        config(
            "h",
            ChannelKind::Webhook,
            Some(format!("http://127.0.0.1:9000/hooks/{HOOK_TOKEN}/in")),
            Some(HOOK_SECRET),
        ),
        email_config(&["oncall@example.com"]),
    ];
    let urls: Vec<Value> = configs.iter().map(|c| c.masked()["url"].clone()).collect();
    assert_eq!(
        urls,
        [
            json!("https://oapi.dingtalk.com/robot/…"),
            json!("https://open.feishu.cn/open-apis/bot/v2/hook/…"),
            json!("https://qyapi.weixin.qq.com/cgi-bin/webhook/…"),
            json!("https://hooks.slack.com/services/…"),
            json!("http://127.0.0.1:9000/hooks/…"),
            Value::Null,
        ]
    );
    assert_eq!(configs[5].masked()["to"], json!(["oncall@example.com"]));
    let all =
        serde_json::to_string(&Channels::new(configs, Some(Arc::new(RecordingEmail::default()))).unwrap().masked())
            .unwrap();
    for secret in [DING_TOKEN, DING_SECRET, FEISHU_HOOK, FEISHU_SECRET, WECOM_KEY, SLACK_TOKEN, HOOK_TOKEN, HOOK_SECRET]
    {
        assert!(!all.contains(secret) && !all.contains(&secret[..8]), "{secret} in {all}");
    }
}

#[test]
fn mask_url_keeps_only_plain_leading_segments() {
    assert_eq!(mask_url("https://example.com"), "https://example.com/");
    assert_eq!(mask_url("https://example.com/alerts"), "https://example.com/…");
    assert_eq!(mask_url("https://example.com:8443/a/b/Token123/c"), "https://example.com:8443/a/b/…");
    assert_eq!(mask_url("https://example.com/v1/averyveryverylongsegment/x"), "https://example.com/v1/…");
    assert_eq!(mask_url("not a url"), "…");
}

#[tokio::test]
async fn channels_refuse_duplicates_and_email_without_a_sender_and_unknown_names() {
    let hook = || config("ops", ChannelKind::Webhook, Some("https://x.example/h".into()), None);
    let error = Channels::new(vec![hook(), hook()], None).unwrap_err();
    assert_eq!(error.to_string(), "alert channels: two alert channels are named `ops`");

    let error = Channels::new(vec![email_config(&["a@example.com"])], None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "alert channels: alert channel `ops-email` sends e-mail, but no e-mail sender is configured (SMTP locally, SES on AWS)"
    );

    let error = Channels::new(vec![config("bad", ChannelKind::Slack, None, None)], None).unwrap_err();
    assert_eq!(error.to_string(), "alert channels: alert channel `bad`: `url` is required for slack channels");

    let channels =
        Channels::new(vec![hook(), email_config(&["a@example.com"])], Some(Arc::new(RecordingEmail::default())))
            .unwrap();
    assert_eq!(channels.names().collect::<Vec<_>>(), ["ops", "ops-email"]);
    assert_eq!(channels.timeout(), DEFAULT_TIMEOUT);
    let error = channels.send("nope", &firing()).await.unwrap_err();
    assert_eq!(error.to_string(), "no alert channel is named `nope`");
}

#[test]
fn text_is_cut_on_character_boundaries() {
    assert_eq!(text::cut("告警告警", 7), "告…");
    assert_eq!(text::cut("告警", 6), "告警");
    assert_eq!(text::cut("abcdef", 5), "ab…");
    assert_eq!(text::one_line("a\nb\tc ", 10), "a b c");
    let lines: Vec<String> = (0..5).map(|i| format!("line {i}")).collect();
    assert_eq!(
        text::fit("head", &lines, "tail", "\n", 100, |k| format!("+{k}")),
        "head\nline 0\nline 1\nline 2\nline 3\nline 4\ntail"
    );
    assert_eq!(text::fit("head", &lines, "tail", "\n", 30, |k| format!("+{k}")), "head\nline 0\nline 1\n+3\ntail");
    assert_eq!(text::when(1_764_151_200_000), STARTED);
}
