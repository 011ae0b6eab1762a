//! WeCom (企业微信) group robot: `{"msgtype":"markdown","markdown":{"content"}}`, at most 4,096
//! bytes of content. The robot's key is in the URL; there is no signing. WeCom answers HTTP 200
//! also when it refuses; `errcode` other than 0 is the refusal.

use super::{ChannelError, Notification, NotificationState, Outgoing, dingtalk, text};

/// WeCom's limit on markdown content, in UTF-8 bytes.
pub(super) const MAX_CONTENT_BYTES: usize = 4096;

pub(super) fn request(url: reqwest::Url, n: &Notification) -> Result<Outgoing, ChannelError> {
    // WeCom's markdown colours text with `<font color>`: orange for firing, green for resolved.
    let color = if n.state == NotificationState::Firing { "warning" } else { "info" };
    let headline = text::headline(n);
    let heading = match headline.split_once("] ") {
        Some((state, title)) => format!("<font color=\"{color}\">{state}]</font> {title}"),
        None => headline,
    };
    let body = serde_json::json!({
        "msgtype": "markdown",
        "markdown": { "content": dingtalk::markdown(&heading, n, MAX_CONTENT_BYTES) },
    });
    let body = serde_json::to_vec(&body).map_err(|e| ChannelError::Config(format!("cannot write the message: {e}")))?;
    Ok(Outgoing { url, headers: Vec::new(), body })
}
