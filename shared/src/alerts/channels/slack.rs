//! Slack incoming webhook: `{"text": <fallback>, "blocks": [header, section, context]}`. The
//! webhook's token is its path; there is no signing. Slack answers `ok` (HTTP 200) on success
//! and a short reason (`invalid_payload`, `no_service` …) with a 4xx otherwise.

use super::{ChannelError, Notification, Outgoing, snippet, status_verdict, text};

/// Slack's limits: a header's text 150 characters, a section's 3,000, a context element's 2,000
/// (bytes here, which are never fewer than characters).
const MAX_HEADER: usize = 150;
const MAX_SECTION: usize = 3000;
const MAX_CONTEXT: usize = 2000;

/// `&`, `<` and `>` are markup in Slack's mrkdwn (`<!channel>` would ping everyone).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub(super) fn request(url: reqwest::Url, n: &Notification) -> Result<Outgoing, ChannelError> {
    let headline = text::headline(n);
    let head = if text::is_reminder(n) { format!("_{}_", text::REMINDER) } else { String::new() };
    let lines: Vec<String> = text::details(n)
        .into_iter()
        .map(|(label, value)| format!("*{}:* {}", escape(&label), escape(&value)))
        .collect();
    let section = text::fit(&head, &lines, "", "\n", MAX_SECTION, |k| format!("… {k} more"));
    let mut blocks = vec![serde_json::json!({
        "type": "header",
        "text": { "type": "plain_text", "text": text::cut(&headline, MAX_HEADER) },
    })];
    // A section must not be empty: left out when there is nothing to say in it.
    if !section.is_empty() {
        blocks.push(serde_json::json!({ "type": "section", "text": { "type": "mrkdwn", "text": section } }));
    }
    blocks.push(serde_json::json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": text::cut(&escape(&text::footer_line(n)), MAX_CONTEXT) }],
    }));
    let body = serde_json::json!({ "text": escape(&headline), "blocks": blocks });
    let body = serde_json::to_vec(&body).map_err(|e| ChannelError::Config(format!("cannot write the message: {e}")))?;
    Ok(Outgoing { url, headers: Vec::new(), body })
}

pub(super) fn verdict(status: u16, answer: &str) -> Result<(), String> {
    status_verdict(status, answer)?;
    if answer.trim() == "ok" { Ok(()) } else { Err(snippet(answer)) }
}
