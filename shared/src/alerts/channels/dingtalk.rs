//! DingTalk custom robot: `{"msgtype":"markdown","markdown":{"title","text"}}`. With a secret
//! ("加签"), the URL gets `&timestamp=<ms>&sign=<base64 HMAC-SHA256>`, the HMAC keyed with the
//! secret over `"{timestamp}\n{secret}"`, URL-encoded. DingTalk answers HTTP 200 also when it
//! refuses; `errcode` other than 0 is the refusal.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{ChannelError, Notification, Outgoing, text};
use crate::secret::SecretString;

/// DingTalk takes up to 20,000 bytes per message; this leaves room for the JSON around it.
const MAX_TEXT_BYTES: usize = 18_000;
/// The title shows in the chat list and the notification.
const MAX_TITLE_BYTES: usize = 128;

/// `sign` for a millisecond `timestamp`, before URL-encoding.
pub(super) fn sign(timestamp_ms: i64, secret: &SecretString) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        // HMAC takes a key of any length: never here.
        return String::new();
    };
    mac.update(format!("{timestamp_ms}\n{}", secret.expose()).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The markdown text, shared with WeCom, which reads the same syntax: the headline as a heading,
/// the reminder as a quote, the details as a list with bold labels, the closing facts.
pub(super) fn markdown(heading: &str, n: &Notification, max: usize) -> String {
    let head = if text::is_reminder(n) {
        format!("### {heading}\n\n> {}\n", text::REMINDER)
    } else {
        format!("### {heading}\n")
    };
    let lines: Vec<String> =
        text::details(n).into_iter().map(|(label, value)| format!("- **{label}**: {value}")).collect();
    let tail = format!("\n{}", text::footer_line(n));
    text::fit(&head, &lines, &tail, "\n", max, |k| format!("- … {k} more"))
}

pub(super) fn request(
    mut url: reqwest::Url,
    secret: Option<&SecretString>,
    n: &Notification,
    now_ms: i64,
) -> Result<Outgoing, ChannelError> {
    let headline = text::headline(n);
    let body = serde_json::json!({
        "msgtype": "markdown",
        "markdown": {
            "title": text::cut(&headline, MAX_TITLE_BYTES),
            "text": markdown(&headline, n, MAX_TEXT_BYTES),
        },
    });
    if let Some(secret) = secret {
        url.query_pairs_mut().append_pair("timestamp", &now_ms.to_string()).append_pair("sign", &sign(now_ms, secret));
    }
    let body = serde_json::to_vec(&body).map_err(|e| ChannelError::Config(format!("cannot write the message: {e}")))?;
    Ok(Outgoing { url, headers: Vec::new(), body })
}
