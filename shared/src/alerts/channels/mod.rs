//! Where alert notifications go: chat webhooks in DingTalk's, Feishu/Lark's, WeCom's and Slack's
//! formats, a generic signed JSON webhook, and e-mail (SMTP for the local runner, SES on AWS).
//!
//! [`Channels`] is built once from the `[[alert_channels]]` configuration and sends one
//! [`Notification`] to one named channel at a time. Every send is bounded by one timeout (10 s
//! unless set otherwise), so a receiver that hangs cannot hold the alert evaluation up; a send
//! is tried once, repeating is the caller's business.
//!
//! Channel URLs are treated as secrets: DingTalk and WeCom put their access token in the query
//! string, Slack and Feishu in the path. Nothing here logs a URL or a secret, errors are scrubbed
//! of both, and the admin view ([`ChannelConfig::masked`]) shows only the scheme, the host and
//! the plain leading part of the path.

mod dingtalk;
mod email;
mod feishu;
mod slack;
mod text;
mod webhook;
mod wecom;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use crate::secret::SecretString;

pub use email::{SesConfig, SesEmail, SmtpConfig, SmtpEmail, SmtpTls};
pub use webhook::{HEADER_SIGNATURE, HEADER_TIMESTAMP};

/// How long one send may take, all of it (connecting, the request, the answer), unless
/// [`Channels::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

const MAX_NAME_CHARS: usize = 64;
const MAX_URL_BYTES: usize = 2048;
/// SES takes at most 50 recipients per message.
const MAX_RECIPIENTS: usize = 50;
/// The most of a receiver's answer kept in an error.
const MAX_DETAIL_CHARS: usize = 300;
/// The most of a receiver's answer read at all.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Dingtalk,
    Feishu,
    Wecom,
    Slack,
    Webhook,
    Email,
}

impl ChannelKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Dingtalk => "dingtalk",
            Self::Feishu => "feishu",
            Self::Wecom => "wecom",
            Self::Slack => "slack",
            Self::Webhook => "webhook",
            Self::Email => "email",
        }
    }

    /// Whether a channel of this kind signs what it sends with `secret`.
    fn signs(&self) -> bool {
        matches!(self, Self::Dingtalk | Self::Feishu | Self::Webhook)
    }
}

impl std::fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[alert_channels]]` entry.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    /// The receiver; required for every kind but email. Secret-bearing (tokens in the query or
    /// the path), never shown whole.
    #[serde(default)]
    pub url: Option<String>,
    /// DingTalk's and Feishu's signing secret (their "sign" schemes); for `webhook`, the key of
    /// the HMAC-SHA256 of the body in [`HEADER_SIGNATURE`]. Other kinds take none.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// E-mail recipients (email channels only, at least one).
    #[serde(default)]
    pub to: Vec<String>,
}

impl ChannelConfig {
    /// Checks one channel (url scheme http/https, required fields per kind, recipients look like
    /// addresses); a message naming the field. Messages never repeat the URL or the secret.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("alert channel: `name` must not be empty".into());
        }
        if self.name.chars().count() > MAX_NAME_CHARS || self.name.chars().any(char::is_control) {
            return Err(format!(
                "alert channel: `name` must be at most {MAX_NAME_CHARS} characters, without control characters"
            ));
        }
        let who = format!("alert channel `{}`", self.name);
        let kind = &self.kind;
        match (kind, &self.url) {
            (ChannelKind::Email, Some(_)) => {
                return Err(format!("{who}: `url` is not used by email channels (recipients go in `to`)"));
            }
            (ChannelKind::Email, None) => {}
            (_, None) => return Err(format!("{who}: `url` is required for {kind} channels")),
            (_, Some(url)) => {
                parse_url(url).map_err(|e| format!("{who}: `url` {e}"))?;
            }
        }
        if let Some(secret) = &self.secret {
            if !kind.signs() {
                return Err(format!(
                    "{who}: `secret` is not used by {kind} channels (dingtalk, feishu and webhook sign with one)"
                ));
            }
            if secret.is_empty() {
                return Err(format!("{who}: `secret` must not be empty (leave it out to send unsigned)"));
            }
        }
        if *kind == ChannelKind::Email {
            if self.to.is_empty() {
                return Err(format!("{who}: `to` must list at least one recipient"));
            }
            if self.to.len() > MAX_RECIPIENTS {
                return Err(format!("{who}: `to` may list at most {MAX_RECIPIENTS} recipients"));
            }
            if let Some(bad) = self.to.iter().find(|a| !looks_like_address(a)) {
                return Err(format!("{who}: `to`: `{}` is not an e-mail address", text::cut(bad, 80)));
            }
        } else if !self.to.is_empty() {
            return Err(format!("{who}: `to` is only for email channels"));
        }
        Ok(())
    }

    /// What an admin may see: every field, the secret masked as provider keys are, the URL cut to
    /// its scheme, host and plain leading path (see [`mask_url`]).
    pub fn masked(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "kind": self.kind,
            "url": self.url.as_deref().map(mask_url),
            "secret": self.secret.as_ref().map(SecretString::masked),
            "to": self.to,
        })
    }
}

/// A channel URL, checked: `http(s)://host…`, ASCII, no user or password in it.
fn parse_url(url: &str) -> Result<reqwest::Url, String> {
    const WANT: &str = "must be an http:// or https:// URL";
    if url.len() > MAX_URL_BYTES {
        return Err(format!("must be at most {MAX_URL_BYTES} bytes"));
    }
    if url.trim() != url || !url.is_ascii() || url.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(format!("{WANT} (ASCII, no spaces)"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| WANT.to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(WANT.to_string());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    Ok(parsed)
}

/// A plain address (`name@example.com`): no display name, no list.
fn looks_like_address(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    let no_specials = !address.chars().any(|c| c.is_whitespace() || c.is_control() || "<>,;:\"()[]\\".contains(c));
    !local.is_empty()
        && local.len() <= 64
        && address.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && no_specials
}

/// A channel URL as an admin may see it: scheme, host, port, then the leading path segments that
/// are plainly not tokens (lower-case letters, digits, `-`, `_`, at most 10 characters; never
/// the last one), then `…` for everything hidden (the rest of the path, the query string).
/// DingTalk `https://oapi.dingtalk.com/robot/…`, WeCom `https://qyapi.weixin.qq.com/cgi-bin/webhook/…`,
/// Feishu `https://open.feishu.cn/open-apis/bot/v2/hook/…`, Slack `https://hooks.slack.com/services/…`.
pub fn mask_url(url: &str) -> String {
    let Ok(parsed) = reqwest::Url::parse(url.trim()) else {
        return "…".into();
    };
    let mut out = format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or_default());
    if let Some(port) = parsed.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push('/');
    let segments: Vec<&str> = parsed.path_segments().map(Iterator::collect).unwrap_or_default();
    let segments: Vec<&str> = segments.into_iter().filter(|s| !s.is_empty()).collect();
    let shown = shown_segments(&segments);
    for segment in &segments[..shown] {
        out.push_str(segment);
        out.push('/');
    }
    if shown < segments.len() || parsed.query().is_some() || parsed.fragment().is_some() {
        out.push('…');
    }
    out
}

/// How many leading path segments [`mask_url`] shows.
fn shown_segments(segments: &[&str]) -> usize {
    let plain = |s: &str| {
        s.len() <= 10 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    segments.iter().take(segments.len().saturating_sub(1)).take_while(|s| plain(s)).count()
}

/// The parts of a channel's configuration that must never appear in an error: the secret, and
/// the parts of the URL [`mask_url`] hides (query values, path segments not shown). The host
/// stays: it says where a failure happened and is not a secret.
fn hidden_parts(config: &ChannelConfig) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(secret) = &config.secret {
        parts.push(secret.expose().to_string());
    }
    if let Some(url) = &config.url
        && let Ok(parsed) = reqwest::Url::parse(url)
    {
        parts.extend(parsed.query_pairs().map(|(_, v)| v.into_owned()).filter(|v| v.len() >= 4));
        let segments: Vec<&str> = parsed.path_segments().map(Iterator::collect).unwrap_or_default();
        let segments: Vec<&str> = segments.into_iter().filter(|s| !s.is_empty()).collect();
        let shown = shown_segments(&segments);
        parts.extend(segments[shown..].iter().filter(|s| s.len() >= 6).map(|s| s.to_string()));
    }
    // Longest first, so a whole value goes before a part of it.
    parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
    parts
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationState {
    Firing,
    Resolved,
}

/// One message about one alert, rendered by each channel in its own format.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Notification {
    /// The rule's name.
    pub alert: String,
    /// `error_rate` | `spend` | `latency_p95` | `key_state` | `provider_down`.
    pub kind: String,
    pub state: NotificationState,
    /// A reminder while still firing.
    pub repeat: bool,
    /// One line, already written by the caller.
    pub title: String,
    /// Label and value lines (value, threshold, scope, window …), shown in this order.
    pub details: Vec<(String, String)>,
    pub started_at_ms: i64,
    pub at_ms: i64,
}

/// Sends e-mail for the email channels: [`SmtpEmail`] locally, [`SesEmail`] on AWS.
#[async_trait::async_trait]
pub trait EmailSender: Send + Sync {
    async fn send(&self, to: &[String], subject: &str, text_body: &str) -> Result<(), ChannelError>;
}

/// Why a notification was not delivered. No message holds a secret or a URL; the channel's name
/// is the caller's to add (it named the channel).
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The channels (or the e-mail sender) are configured wrongly; found when building them.
    #[error("alert channels: {0}")]
    Config(String),
    #[error("no alert channel is named `{0}`")]
    UnknownChannel(String),
    /// The whole send took longer than the channels' timeout.
    #[error("no answer within {after_ms} ms")]
    Timeout { after_ms: u64 },
    /// No connection, or it broke before an answer.
    #[error("cannot reach the receiver: {0}")]
    Unreachable(String),
    /// An answer other than success: a non-2xx status, or a 2xx whose body reports an error
    /// (DingTalk's and WeCom's `errcode`, Feishu's `code`, Slack's body other than `ok`).
    #[error("the receiver refused the notification (HTTP {status}): {detail}")]
    Refused { status: u16, detail: String },
    /// The e-mail sender failed (SMTP server or SES).
    #[error("e-mail not sent: {0}")]
    Email(String),
}

impl ChannelError {
    /// The same error with every `hidden` part redacted from its text.
    fn scrubbed(self, hidden: &[String]) -> Self {
        let clean = |text: String| hidden.iter().fold(text, |t, part| crate::secret::redact(&t, part));
        match self {
            Self::Config(d) => Self::Config(clean(d)),
            Self::Unreachable(d) => Self::Unreachable(clean(d)),
            Self::Refused { status, detail } => Self::Refused { status, detail: clean(detail) },
            Self::Email(d) => Self::Email(clean(d)),
            other @ (Self::UnknownChannel(_) | Self::Timeout { .. }) => other,
        }
    }
}

/// A request one of the webhook formats wants sent.
struct Outgoing {
    url: reqwest::Url,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

struct Channel {
    config: ChannelConfig,
    /// The checked URL (every kind but email).
    url: Option<reqwest::Url>,
    hidden: Vec<String>,
}

/// The configured channels, built once; sends are independent and may run concurrently.
pub struct Channels {
    http: reqwest::Client,
    channels: Vec<Channel>,
    email: Option<Arc<dyn EmailSender>>,
    timeout: Duration,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels")
            .field("names", &self.names().collect::<Vec<_>>())
            .field("email", &self.email.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Channels {
    /// Checks every channel ([`ChannelConfig::validate`]), refuses two channels of one name and an
    /// email channel without an e-mail sender.
    pub fn new(configs: Vec<ChannelConfig>, email: Option<Arc<dyn EmailSender>>) -> Result<Self, ChannelError> {
        let mut channels: Vec<Channel> = Vec::with_capacity(configs.len());
        for config in configs {
            config.validate().map_err(ChannelError::Config)?;
            if channels.iter().any(|c| c.config.name == config.name) {
                return Err(ChannelError::Config(format!("two alert channels are named `{}`", config.name)));
            }
            if config.kind == ChannelKind::Email && email.is_none() {
                return Err(ChannelError::Config(format!(
                    "alert channel `{}` sends e-mail, but no e-mail sender is configured (SMTP locally, SES on AWS)",
                    config.name
                )));
            }
            let url = match &config.url {
                Some(url) => Some(parse_url(url).map_err(|e| ChannelError::Config(format!("`url` {e}")))?),
                None => None,
            };
            let hidden = hidden_parts(&config);
            channels.push(Channel { config, url, hidden });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(DEFAULT_TIMEOUT)
            // A webhook that redirects is refused rather than followed: the token-bearing URL
            // is not handed on, and the answer checked is the receiver's own.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("maestro/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ChannelError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, channels, email, timeout: DEFAULT_TIMEOUT })
    }

    /// The bound on one whole send (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The channels' names, in configuration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.channels.iter().map(|c| c.config.name.as_str())
    }

    pub fn get(&self, name: &str) -> Option<&ChannelConfig> {
        self.find(name).map(|c| &c.config)
    }

    /// Every channel as [`ChannelConfig::masked`] shows it, in configuration order.
    pub fn masked(&self) -> Vec<serde_json::Value> {
        self.channels.iter().map(|c| c.config.masked()).collect()
    }

    fn find(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.config.name == name)
    }

    /// Sends one notification to the named channel; bounded by a timeout (10 s total, configurable
    /// for tests) so a hanging receiver never blocks the caller; never logs secrets or full URLs.
    pub async fn send(&self, channel: &str, notification: &Notification) -> Result<(), ChannelError> {
        let Some(found) = self.find(channel) else {
            return Err(ChannelError::UnknownChannel(channel.to_string()));
        };
        let outcome = match tokio::time::timeout(self.timeout, self.deliver(found, notification)).await {
            Ok(outcome) => outcome.map_err(|e| e.scrubbed(&found.hidden)),
            Err(_) => {
                Err(ChannelError::Timeout { after_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX) })
            }
        };
        match &outcome {
            Ok(()) => tracing::debug!(channel, kind = %found.config.kind, "alert notification sent"),
            Err(e) => tracing::debug!(channel, kind = %found.config.kind, error = %e, "alert notification not sent"),
        }
        outcome
    }

    async fn deliver(&self, channel: &Channel, n: &Notification) -> Result<(), ChannelError> {
        let config = &channel.config;
        let secret = config.secret.as_ref();
        let url = match (&config.kind, &channel.url) {
            (ChannelKind::Email, _) => {
                let Some(sender) = &self.email else {
                    return Err(ChannelError::Config("no e-mail sender is configured".into()));
                };
                let (subject, body) = text::email(n);
                return sender.send(&config.to, &subject, &body).await;
            }
            (_, Some(url)) => url.clone(),
            (_, None) => return Err(ChannelError::Config("the channel has no `url`".into())),
        };
        let now_ms = crate::time::now_ms();
        let outgoing = match config.kind {
            ChannelKind::Dingtalk => dingtalk::request(url, secret, n, now_ms),
            ChannelKind::Feishu => feishu::request(url, secret, n, now_ms),
            ChannelKind::Wecom => wecom::request(url, n),
            ChannelKind::Slack => slack::request(url, n),
            ChannelKind::Webhook | ChannelKind::Email => webhook::request(url, secret, n, now_ms),
        }?;
        let mut request = self.http.post(outgoing.url).header("content-type", "application/json");
        for (name, value) in outgoing.headers {
            request = request.header(name, value);
        }
        let response = request.body(outgoing.body).send().await.map_err(|e| ChannelError::Unreachable(describe(&e)))?;
        let status = response.status().as_u16();
        let answer = read_answer(response).await?;
        let verdict = match config.kind {
            ChannelKind::Dingtalk | ChannelKind::Wecom => errcode_verdict(status, &answer),
            ChannelKind::Feishu => feishu::verdict(status, &answer),
            ChannelKind::Slack => slack::verdict(status, &answer),
            ChannelKind::Webhook | ChannelKind::Email => status_verdict(status, &answer),
        };
        verdict.map_err(|detail| ChannelError::Refused { status, detail })
    }
}

/// At most [`MAX_ANSWER_BYTES`] of an answer's body, as text.
async fn read_answer(mut response: reqwest::Response) -> Result<String, ChannelError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| ChannelError::Unreachable(describe(&e)))? {
        body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - body.len())]);
        if body.len() >= MAX_ANSWER_BYTES {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// A transport error and its causes, without the URL reqwest puts in its message.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() { "timed out".to_string() } else { "connection failed".to_string() };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text::cut(&text, MAX_DETAIL_CHARS)
}

/// Part of a receiver's answer fit for an error: one line, cut short.
fn snippet(answer: &str) -> String {
    let line: String = answer.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if line.is_empty() { "(empty answer)".into() } else { text::cut(&line, MAX_DETAIL_CHARS) }
}

/// Generic webhook: any 2xx.
fn status_verdict(status: u16, answer: &str) -> Result<(), String> {
    if (200..300).contains(&status) { Ok(()) } else { Err(snippet(answer)) }
}

/// DingTalk and WeCom: a 2xx whose JSON says `"errcode": 0`.
fn errcode_verdict(status: u16, answer: &str) -> Result<(), String> {
    status_verdict(status, answer)?;
    let parsed: serde_json::Value =
        serde_json::from_str(answer).map_err(|_| format!("not a JSON answer: {}", snippet(answer)))?;
    match parsed.get("errcode").and_then(serde_json::Value::as_i64) {
        Some(0) => Ok(()),
        Some(code) => {
            let message = parsed.get("errmsg").and_then(serde_json::Value::as_str).unwrap_or_default();
            Err(format!("errcode {code}: {}", snippet(message)))
        }
        None => Err(format!("an answer without `errcode`: {}", snippet(answer))),
    }
}
