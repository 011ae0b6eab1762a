//! The generic webhook: the notification as JSON, `details` as a list of `{label, value}` (in
//! order). With a secret, [`HEADER_SIGNATURE`] carries `sha256=<hex HMAC-SHA256 of the exact
//! body>` (the scheme the credits webhook uses); [`HEADER_TIMESTAMP`] the sending time in unix
//! milliseconds. Any 2xx is success.

use super::{ChannelError, Notification, NotificationState, Outgoing};
use crate::secret::SecretString;

pub const HEADER_SIGNATURE: &str = "x-maestro-signature";
pub const HEADER_TIMESTAMP: &str = "x-maestro-timestamp";

#[derive(serde::Serialize)]
struct Body<'a> {
    alert: &'a str,
    kind: &'a str,
    state: NotificationState,
    repeat: bool,
    title: &'a str,
    details: Vec<Detail<'a>>,
    started_at_ms: i64,
    at_ms: i64,
}

#[derive(serde::Serialize)]
struct Detail<'a> {
    label: &'a str,
    value: &'a str,
}

pub(super) fn request(
    url: reqwest::Url,
    secret: Option<&SecretString>,
    n: &Notification,
    now_ms: i64,
) -> Result<Outgoing, ChannelError> {
    let body = Body {
        alert: &n.alert,
        kind: &n.kind,
        state: n.state,
        repeat: n.repeat,
        title: &n.title,
        details: n.details.iter().map(|(label, value)| Detail { label, value }).collect(),
        started_at_ms: n.started_at_ms,
        at_ms: n.at_ms,
    };
    let body = serde_json::to_vec(&body).map_err(|e| ChannelError::Config(format!("cannot write the message: {e}")))?;
    let mut headers = vec![(HEADER_TIMESTAMP, now_ms.to_string())];
    if let Some(secret) = secret {
        headers.push((HEADER_SIGNATURE, crate::credits::signature(secret, &body)));
    }
    Ok(Outgoing { url, headers, body })
}
