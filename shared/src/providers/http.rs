//! The HTTP plumbing every provider client shares: sending with the provider's configured
//! headers and the attempt's timeout, and turning a failed answer into the error taxonomy
//! ([`ProviderError`]) with the provider's code and a short message, the key masked.
//!
//! The error envelope read here is OpenAI's `{"error": {"message", "type", "code"}}`, which
//! DeepSeek, the OpenAI-compatible servers and Anthropic (with a top-level `"type": "error"`)
//! share; Google's is the same inside a JSON array, with a `status` word. What a code means for a
//! kind (out of balance, overloaded) is its [`KindSpec`]'s to say.

use std::collections::BTreeMap;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use super::{Call, ProviderError, ProviderErrorKind, classify_status, retry_after, transport_error};
use crate::domain::{KeyHeader, KindSpec, ProviderKind};
use crate::secret::SecretString;

/// Adds the provider key the way `kind` takes it (its row's [`KeyHeader`]), marked sensitive so
/// it never shows in a request's debug output.
pub(crate) fn with_key(
    request: reqwest::RequestBuilder,
    kind: ProviderKind,
    key: &SecretString,
) -> Result<reqwest::RequestBuilder, ProviderError> {
    let (name, value) = match kind.spec().key_header {
        KeyHeader::Bearer => (reqwest::header::AUTHORIZATION.as_str(), format!("Bearer {}", key.expose())),
        KeyHeader::Named(name) => (name, key.expose().to_string()),
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| {
        ProviderError::new(ProviderErrorKind::Auth, None, "the key contains characters that cannot be sent in a header")
    })?;
    value.set_sensitive(true);
    Ok(request.header(name, value))
}

/// Longest upstream error message kept; longer ones are cut so a log line stays a line.
pub(crate) const MAX_MESSAGE_CHARS: usize = 1000;
/// Longest excerpt of a non-JSON error body (a proxy's text or an HTML page's title).
const MAX_EXCERPT_CHARS: usize = 200;

/// Sends a streaming request and waits (at most the attempt timeout) for its status. A 2xx
/// hands back the open response; anything else is read and classified like [`send`] does.
pub(crate) async fn open(
    request: reqwest::RequestBuilder,
    call: &Call<'_>,
) -> Result<reqwest::Response, ProviderError> {
    let request = request.headers(provider_headers(&call.provider.headers)?);
    let timed_out = || ProviderError::new(ProviderErrorKind::Timeout, None, "the provider did not answer in time");
    let response = tokio::time::timeout(call.timeout, request.send())
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| transport_error(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = match tokio::time::timeout(call.timeout, response.bytes()).await {
        Ok(Ok(bytes)) => bytes,
        _ => Bytes::new(),
    };
    Err(upstream_error(call.provider.kind, status, &headers, &body, call.api_key))
}

/// Adds the provider's configured headers (last, so they may override a default such as
/// `authorization` for gateways with their own auth), sets the per-attempt timeout, sends, and
/// reads the whole body. A non-2xx status becomes a classified [`ProviderError`].
pub(crate) async fn send(request: reqwest::RequestBuilder, call: &Call<'_>) -> Result<Bytes, ProviderError> {
    send_with(request, call.provider.kind, &call.provider.headers, call.timeout, call.api_key).await
}

/// [`send`] for requests that are not chat calls (the model list).
pub(crate) async fn send_with(
    request: reqwest::RequestBuilder,
    kind: ProviderKind,
    configured: &BTreeMap<String, String>,
    timeout: std::time::Duration,
    key: &SecretString,
) -> Result<Bytes, ProviderError> {
    let call_key = key;
    let request = request.headers(provider_headers(configured)?).timeout(timeout);
    let response = request.send().await.map_err(|e| transport_error(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    match response.bytes().await {
        Ok(bytes) if status.is_success() => Ok(bytes),
        Ok(bytes) => Err(upstream_error(kind, status, &headers, &bytes, call_key)),
        // The status already says what went wrong; the body would only have said it in words.
        Err(_) if !status.is_success() => Err(upstream_error(kind, status, &headers, &[], call_key)),
        Err(e) => Err(transport_error(&e)),
    }
}

fn provider_headers(configured: &BTreeMap<String, String>) -> Result<HeaderMap, ProviderError> {
    let mut headers = HeaderMap::with_capacity(configured.len());
    for (name, value) in configured {
        let parsed = HeaderName::from_bytes(name.trim().as_bytes()).ok().zip(HeaderValue::from_str(value.trim()).ok());
        let Some((header, value)) = parsed else {
            // The value may be a secret, so only the name is named.
            return Err(ProviderError::new(
                ProviderErrorKind::Network,
                None,
                format!("the provider's configured header `{name}` is not a valid HTTP header"),
            ));
        };
        headers.append(header, value);
    }
    Ok(headers)
}

/// OpenAI's error envelope, which DeepSeek and Anthropic share the core of:
/// `{"error": {"message", "type", "code", "param"}}` (Anthropic adds a top-level `"type":"error"`);
/// Google's compatible endpoint sends a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorEnvelope {
    One { error: ErrorBody },
    List(Vec<ErrorEnvelope>),
}

impl ErrorEnvelope {
    fn into_body(self) -> Option<ErrorBody> {
        match self {
            Self::One { error } => Some(error),
            Self::List(list) => list.into_iter().next().and_then(Self::into_body),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// A string at OpenAI, but some compatible servers send a number (Google: the HTTP status).
    #[serde(default)]
    code: Option<Value>,
    /// Google's RPC status word (`RESOURCE_EXHAUSTED`), more telling than its numeric `code`.
    #[serde(default)]
    status: Option<String>,
}

/// Turns a non-2xx answer into the taxonomy, with the provider's code and (short) message.
pub(crate) fn upstream_error(
    kind: ProviderKind,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    key: &SecretString,
) -> ProviderError {
    let body = scrubbed(body, key);
    let (code, error_type, message) =
        match serde_json::from_str::<ErrorEnvelope>(&body).ok().and_then(ErrorEnvelope::into_body) {
            Some(error) => {
                let code = match error.code {
                    Some(Value::String(s)) if !s.is_empty() => Some(s),
                    _ if error.status.as_ref().is_some_and(|s| !s.is_empty()) => error.status.clone(),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => error.kind.clone().filter(|k| !k.is_empty()),
                };
                let message = match error.message {
                    Some(m) if !m.trim().is_empty() => truncate(m.trim(), MAX_MESSAGE_CHARS),
                    _ => generic(status, &body),
                };
                (code, error.kind, message)
            }
            None => (None, None, generic(status, &body)),
        };
    let error_kind = classify(kind.spec(), status.as_u16(), [code.as_deref(), error_type.as_deref()]);
    ProviderError { kind: error_kind, status: Some(status.as_u16()), retry_after: retry_after(headers), code, message }
}

/// What an error answer means: the status's meaning, unless the kind's codes say the account is
/// out of balance (whatever the status) or the provider is overloaded.
fn classify(spec: &KindSpec, status: u16, codes: [Option<&str>; 2]) -> ProviderErrorKind {
    let named = |list: &[&str]| codes.iter().flatten().any(|c| list.contains(c));
    // OpenAI puts `insufficient_quota` in both fields; proxies sometimes keep only one.
    if named(&["insufficient_quota"]) || named(spec.quota_codes) {
        ProviderErrorKind::QuotaExceeded
    } else if named(spec.overloaded_codes) {
        ProviderErrorKind::Overloaded
    } else {
        classify_status(status, codes[0])
    }
}

/// The error a 2xx body carries, for a kind that answers errors with HTTP 200 ([`KindSpec::status_in_body`]):
/// `None` when the body says success (or says nothing).
pub(crate) fn error_in_ok_body(kind: ProviderKind, body: &[u8], key: &SecretString) -> Option<ProviderError> {
    let status = kind.spec().status_in_body?;
    let value: Value = serde_json::from_slice(body).ok()?;
    let at = |path: &str| path.split('.').try_fold(&value, |v, part| v.get(part));
    let code = at(status.code_field)?.as_i64()?;
    if code == 0 {
        return None;
    }
    let http = status.as_http.iter().find(|(c, _)| *c == code).map_or(500, |(_, http)| *http);
    let text = at(status.message_field).and_then(Value::as_str).unwrap_or("").trim();
    let message = match text {
        "" => format!("the provider reported error {code} in a 200 answer"),
        text => truncate(&scrubbed(text.as_bytes(), key), MAX_MESSAGE_CHARS),
    };
    let code = code.to_string();
    Some(ProviderError {
        kind: classify(kind.spec(), http, [Some(code.as_str()), None]),
        status: Some(http),
        retry_after: None,
        code: Some(code),
        message,
    })
}

/// The body as text with the key masked. Done before anything is cut short: a cut could leave
/// half a key that the scrub in [`super::ProviderClient::chat`] would no longer recognise.
fn scrubbed(body: &[u8], key: &SecretString) -> String {
    let text = String::from_utf8_lossy(body);
    if key.is_empty() { text.into_owned() } else { text.replace(key.expose(), &key.masked()) }
}

/// A message for an error body that is not the JSON envelope: the status, plus the page title
/// of an HTML page or the start of a plain-text body — never the whole page.
fn generic(status: StatusCode, body: &str) -> String {
    let text = body.trim();
    let head = format!("HTTP {status} from the provider");
    if text.is_empty() {
        return format!("{head} with an empty body");
    }
    if text.starts_with('<') {
        return match html_title(text) {
            Some(title) => format!("{head} (HTML page: {})", truncate(&collapse(title), MAX_EXCERPT_CHARS)),
            None => format!("{head} (HTML page)"),
        };
    }
    format!("{head}: {}", truncate(&collapse(text), MAX_EXCERPT_CHARS))
}

fn html_title(html: &str) -> Option<&str> {
    let lower = html.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    // ASCII lowercasing keeps byte offsets, so they index `html` too.
    html.get(start..end).map(str::trim).filter(|t| !t.is_empty())
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// A 2xx whose body is not the promised JSON. An error envelope sent with 200 (some proxies do)
/// keeps its message so the log says what happened.
pub(crate) fn malformed(body: &[u8], cause: &serde_json::Error, key: &SecretString) -> ProviderError {
    let text = scrubbed(body, key);
    let message = match serde_json::from_str::<ErrorEnvelope>(&text).ok().and_then(ErrorEnvelope::into_body) {
        Some(error) => format!(
            "the provider answered 2xx with an error: {}",
            truncate(error.message.as_deref().unwrap_or("(no message)"), MAX_EXCERPT_CHARS)
        ),
        None if text.trim_start().starts_with('<') => "the provider answered 2xx with an HTML page".to_string(),
        None => format!("the provider's response is not the expected JSON ({cause})"),
    };
    ProviderError::new(ProviderErrorKind::MalformedResponse, None, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretString {
        SecretString::new("sk-test-0123456789abcdef")
    }

    #[test]
    fn html_error_pages_become_a_short_message() {
        let page = format!("<html><head><title>502 Bad Gateway</title></head><body>{}</body></html>", "x".repeat(5000));
        let e =
            upstream_error(ProviderKind::Openai, StatusCode::BAD_GATEWAY, &HeaderMap::new(), page.as_bytes(), &key());
        assert_eq!(e.kind, ProviderErrorKind::Server);
        assert_eq!(e.message, "HTTP 502 Bad Gateway from the provider (HTML page: 502 Bad Gateway)");
        assert_eq!(e.code, None);
    }

    #[test]
    fn plain_text_bodies_are_cut_short() {
        let body = format!("upstream connect error {}", "y".repeat(1000));
        let e = upstream_error(
            ProviderKind::Openai,
            StatusCode::SERVICE_UNAVAILABLE,
            &HeaderMap::new(),
            body.as_bytes(),
            &key(),
        );
        assert_eq!(e.kind, ProviderErrorKind::Overloaded);
        assert!(e.message.starts_with("HTTP 503 Service Unavailable from the provider: upstream connect error"));
        assert!(e.message.chars().count() < 300, "{}", e.message.len());
        let empty =
            upstream_error(ProviderKind::Openai, StatusCode::INTERNAL_SERVER_ERROR, &HeaderMap::new(), b"", &key());
        assert_eq!(empty.message, "HTTP 500 Internal Server Error from the provider with an empty body");
    }

    #[test]
    fn the_key_is_masked_before_a_message_is_cut() {
        let message = format!("{} {}", "z".repeat(MAX_MESSAGE_CHARS - 10), key().expose());
        let body = serde_json::json!({"error": {"message": message, "type": "invalid_request_error"}}).to_string();
        let e =
            upstream_error(ProviderKind::Openai, StatusCode::UNAUTHORIZED, &HeaderMap::new(), body.as_bytes(), &key());
        assert!(!e.message.contains("sk-test-0123"), "{}", e.message);
        assert_eq!(e.code.as_deref(), Some("invalid_request_error"));
    }

    #[test]
    fn quota_in_type_only_still_counts() {
        let body = br#"{"error":{"message":"no money","type":"insufficient_quota","code":null}}"#;
        let e = upstream_error(ProviderKind::Openai, StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body, &key());
        assert_eq!(e.kind, ProviderErrorKind::QuotaExceeded);
        assert_eq!(e.code.as_deref(), Some("insufficient_quota"));
    }
}
