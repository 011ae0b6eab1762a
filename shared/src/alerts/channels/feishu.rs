//! Feishu / Lark custom bot: an interactive card (`msg_type: "interactive"`), chosen over
//! `text` because its header carries the headline in colour (red firing, orange reminder, green
//! resolved) and its `lark_md` body shows bold labels. With a secret ("签名校验") the body also
//! has `timestamp` (seconds, a string) and `sign`: base64 of HMAC-SHA256 keyed with
//! `"{timestamp}\n{secret}"` over nothing. Feishu answers HTTP 200 also when it refuses; `code`
//! (or the older `StatusCode`) other than 0 is the refusal.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{ChannelError, Notification, NotificationState, Outgoing, snippet, status_verdict, text};
use crate::secret::SecretString;

/// Feishu takes request bodies up to 20 KB; this leaves room for the card around the text.
const MAX_CONTENT_BYTES: usize = 18_000;

/// `sign` for a `timestamp` in seconds.
pub(super) fn sign(timestamp_secs: i64, secret: &SecretString) -> String {
    let key = format!("{timestamp_secs}\n{}", secret.expose());
    let Ok(mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        // HMAC takes a key of any length: never here.
        return String::new();
    };
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub(super) fn request(
    url: reqwest::Url,
    secret: Option<&SecretString>,
    n: &Notification,
    now_ms: i64,
) -> Result<Outgoing, ChannelError> {
    let template = match (n.state, text::is_reminder(n)) {
        (NotificationState::Firing, false) => "red",
        (NotificationState::Firing, true) => "orange",
        (NotificationState::Resolved, _) => "green",
    };
    let head = if text::is_reminder(n) { format!("*{}*\n", text::REMINDER) } else { String::new() };
    let lines: Vec<String> =
        text::details(n).into_iter().map(|(label, value)| format!("**{label}**: {value}")).collect();
    let tail = format!("\n{}", text::footer_line(n));
    let content = text::fit(&head, &lines, &tail, "\n", MAX_CONTENT_BYTES, |k| format!("… {k} more"));
    let mut body = serde_json::json!({
        "msg_type": "interactive",
        "card": {
            "config": { "wide_screen_mode": true },
            "header": {
                "template": template,
                "title": { "tag": "plain_text", "content": text::headline(n) },
            },
            "elements": [{ "tag": "div", "text": { "tag": "lark_md", "content": content } }],
        },
    });
    if let Some(secret) = secret {
        let timestamp = now_ms.div_euclid(1000);
        body["timestamp"] = serde_json::Value::String(timestamp.to_string());
        body["sign"] = serde_json::Value::String(sign(timestamp, secret));
    }
    let body = serde_json::to_vec(&body).map_err(|e| ChannelError::Config(format!("cannot write the message: {e}")))?;
    Ok(Outgoing { url, headers: Vec::new(), body })
}

pub(super) fn verdict(status: u16, answer: &str) -> Result<(), String> {
    status_verdict(status, answer)?;
    let parsed: serde_json::Value =
        serde_json::from_str(answer).map_err(|_| format!("not a JSON answer: {}", snippet(answer)))?;
    let code = parsed.get("code").or_else(|| parsed.get("StatusCode")).and_then(serde_json::Value::as_i64);
    match code {
        Some(0) => Ok(()),
        Some(code) => {
            let message = parsed
                .get("msg")
                .or_else(|| parsed.get("StatusMessage"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            Err(format!("code {code}: {}", snippet(message)))
        }
        None => Err(format!("an answer without `code`: {}", snippet(answer))),
    }
}
