//! Provider clients. One file per wire format; a kind's [`WireFormat`] (its row of the kinds
//! table) picks the client: DeepSeek and every OpenAI-compatible endpoint use the OpenAI one.

mod anthropic;
mod demo;
mod http;
mod openai;
pub mod sse;
mod stream;

pub use stream::UpstreamStream;

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderMap;

use crate::domain::{ChatRequest, EmbeddingsRequest, Model, Provider, Usage, WireFormat};
use crate::secret::SecretString;

/// One upstream call: where, with which key, what.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub provider: &'a Provider,
    pub model: &'a Model,
    pub api_key: &'a SecretString,
    pub request: &'a ChatRequest,
    /// `max_tokens` to send when the caller gave none and the format requires one (Anthropic).
    pub default_max_tokens: u64,
    /// Time allowed for this attempt, connect to last byte.
    pub timeout: Duration,
}

/// One upstream embeddings call: where, with which key, what.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddingCall<'a> {
    pub provider: &'a Provider,
    pub model: &'a Model,
    pub api_key: &'a SecretString,
    pub request: &'a EmbeddingsRequest,
    /// Time allowed for this attempt, connect to last byte.
    pub timeout: Duration,
}

/// A successful upstream answer, already in OpenAI's `chat.completion` shape (or, for
/// embeddings, OpenAI's embedding list, as the provider sent it).
#[derive(Debug, Clone)]
pub struct ProviderReply {
    pub body: Bytes,
    pub usage: Usage,
    /// The model the provider says answered (may differ from the one asked for).
    pub model: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// 400/404/413/422 and other 4xx: the request itself is wrong; never retried.
    InvalidRequest,
    /// 401/403: the key is bad.
    Auth,
    /// 429: the key is over the provider's rate limit.
    RateLimited,
    /// 429 `insufficient_quota`, 402 insufficient balance: the key's account cannot pay.
    QuotaExceeded,
    /// 503, Anthropic's 529: the provider is overloaded.
    Overloaded,
    /// 500–599 (and 409): the provider failed.
    Server,
    /// No answer in time (and 408).
    Timeout,
    /// Connection refused or reset.
    Network,
    /// A 2xx whose body is not what the format promises (HTML, truncated JSON, …).
    MalformedResponse,
}

impl ProviderErrorKind {
    /// Whether the same request may be tried again (after backoff).
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Overloaded | Self::Server | Self::Timeout | Self::Network | Self::MalformedResponse)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Auth => "upstream_auth",
            Self::RateLimited => "upstream_rate_limited",
            Self::QuotaExceeded => "upstream_quota_exceeded",
            Self::Overloaded => "upstream_overloaded",
            Self::Server => "upstream_server_error",
            Self::Timeout => "upstream_timeout",
            Self::Network => "upstream_unreachable",
            Self::MalformedResponse => "upstream_malformed_response",
        }
    }
}

/// A failed upstream call. `message` is the provider's own text with the key scrubbed out; the
/// gateway scrubs it of any other credential before it keeps it in the call's attempt log and
/// names it in the caller's error (a refusal's own message, a failure's after its HTTP status).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{} (status {status:?}): {message}", kind.as_str())]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    /// The provider's error code or type (`rate_limit_exceeded`, `overloaded_error`, …).
    pub code: Option<String>,
    pub message: String,
}

impl ProviderError {
    pub fn new(kind: ProviderErrorKind, status: Option<u16>, message: impl Into<String>) -> Self {
        Self { kind, status, retry_after: None, code: None, message: message.into() }
    }
}

/// Shared HTTP client for every provider: one connection pool per container.
#[derive(Debug, Clone)]
pub struct ProviderClient {
    http: reqwest::Client,
}

impl ProviderClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("maestro/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http })
    }

    /// Sends one non-streaming chat request and returns the answer in OpenAI's format.
    pub async fn chat(&self, call: Call<'_>) -> Result<ProviderReply, ProviderError> {
        let result = match call.provider.kind.spec().wire {
            WireFormat::OpenAi => openai::chat(&self.http, call).await,
            WireFormat::Anthropic => anthropic::chat(&self.http, call).await,
            WireFormat::Demo => demo::chat(call),
        };
        result.map_err(|e| scrub(e, call.api_key, call.provider))
    }

    /// Opens a streaming chat request. Errors before the stream opens (status, connection) come
    /// back here; errors inside it come from [`UpstreamStream::next`]. `caller_wants_usage`:
    /// whether the caller asked for the final usage chunk (`stream_options.include_usage`).
    pub async fn chat_stream(&self, call: Call<'_>, caller_wants_usage: bool) -> Result<UpstreamStream, ProviderError> {
        let result = match call.provider.kind.spec().wire {
            WireFormat::OpenAi => openai::chat_stream(&self.http, call, caller_wants_usage).await,
            WireFormat::Anthropic => anthropic::chat_stream(&self.http, call, caller_wants_usage).await,
            WireFormat::Demo => demo::chat_stream(call, caller_wants_usage),
        };
        result.map_err(|e| scrub(e, call.api_key, call.provider))
    }
}

impl ProviderClient {
    /// Sends one embeddings request (`POST {base}/embeddings`, OpenAI's format) and returns the
    /// provider's answer as it came, with its usage. A kind without embeddings is refused before
    /// anything is sent (the gateway does not send it such a call).
    pub async fn embeddings(&self, call: EmbeddingCall<'_>) -> Result<ProviderReply, ProviderError> {
        let spec = call.provider.kind.spec();
        let result = match spec.wire {
            WireFormat::OpenAi if spec.embeddings => openai::embeddings(&self.http, call).await,
            _ => Err(ProviderError::new(
                ProviderErrorKind::InvalidRequest,
                None,
                format!("provider `{}` ({}) has no embeddings API", call.provider.code, spec.label),
            )),
        };
        result.map_err(|e| scrub(e, call.api_key, call.provider))
    }
}

/// A model a provider lists on its model-list endpoint, with what the list tells about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    pub id: String,
    pub display_name: Option<String>,
    pub context_window: Option<u64>,
    pub max_output_tokens: Option<u64>,
    /// Whether it takes images, when the list says.
    pub supports_vision: Option<bool>,
}

impl ProviderClient {
    /// The provider's model list: `GET {base}/models` for OpenAI-format providers, `GET
    /// {base}/v1/models` (all pages) for Anthropic; the demo provider lists its echo model. A
    /// cheap, real, authenticated call: the admin API also uses it to validate a key.
    pub async fn list_models(
        &self,
        provider: &Provider,
        api_key: &SecretString,
        timeout: Duration,
    ) -> Result<Vec<ListedModel>, ProviderError> {
        let result = match provider.kind.spec().wire {
            WireFormat::OpenAi => openai::list_models(&self.http, provider, api_key, timeout).await,
            WireFormat::Anthropic => anthropic::list_models(&self.http, provider, api_key, timeout).await,
            WireFormat::Demo => Ok(vec![ListedModel {
                id: "echo".to_string(),
                display_name: Some("Demo echo".to_string()),
                context_window: Some(32_768),
                max_output_tokens: Some(4_096),
                supports_vision: Some(false),
            }]),
        };
        result.map_err(|e| scrub(e, api_key, provider))
    }
}

/// Shortest configured header value treated as a possible credential when scrubbing.
const MIN_SCRUBBED_HEADER_CHARS: usize = 8;

/// Removes the key, and any configured header value that could be a credential (a gateway's own
/// `Authorization`, say), from an error message and code, in case a provider echoes them back:
/// whole, cut short or encoded (see [`crate::secret::redact`]).
fn scrub(mut error: ProviderError, key: &SecretString, provider: &Provider) -> ProviderError {
    let header_values = provider.headers.values().filter(|v| v.trim().chars().count() >= MIN_SCRUBBED_HEADER_CHARS);
    for secret in std::iter::once(key.expose()).chain(header_values.map(|v| v.trim())) {
        // `Bearer <token>`: the token is the secret part.
        let secret = secret.strip_prefix("Bearer ").unwrap_or(secret);
        error.message = crate::secret::redact(&error.message, secret);
        if let Some(code) = &error.code {
            error.code = Some(crate::secret::redact(code, secret));
        }
    }
    error
}

/// Maps an HTTP error status (and the provider's error code) to the taxonomy.
pub(crate) fn classify_status(status: u16, code: Option<&str>) -> ProviderErrorKind {
    let quota = code.is_some_and(|c| c == "insufficient_quota");
    match status {
        401 | 403 => ProviderErrorKind::Auth,
        402 => ProviderErrorKind::QuotaExceeded,
        429 if quota => ProviderErrorKind::QuotaExceeded,
        429 => ProviderErrorKind::RateLimited,
        408 => ProviderErrorKind::Timeout,
        409 => ProviderErrorKind::Server,
        503 | 529 => ProviderErrorKind::Overloaded,
        500..=599 => ProviderErrorKind::Server,
        _ => ProviderErrorKind::InvalidRequest,
    }
}

/// `retry-after-ms` (OpenAI), then `retry-after` as seconds (fractions allowed) or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_millis(ms as u64));
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_millis((secs * 1000.0) as u64));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.timestamp_millis() - crate::time::now_ms();
    Some(Duration::from_millis(wait.max(0) as u64))
}

/// Maps a transport failure from reqwest to the taxonomy.
pub(crate) fn transport_error(e: &reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::new(ProviderErrorKind::Timeout, None, "the provider did not answer in time")
    } else if e.is_body() || e.is_decode() {
        ProviderError::new(ProviderErrorKind::MalformedResponse, None, "the provider's response body broke off")
    } else {
        ProviderError::new(ProviderErrorKind::Network, None, "could not reach the provider")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProviderKind;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses_map_to_the_taxonomy() {
        assert_eq!(classify_status(401, None), ProviderErrorKind::Auth);
        assert_eq!(classify_status(429, Some("rate_limit_exceeded")), ProviderErrorKind::RateLimited);
        assert_eq!(classify_status(429, Some("insufficient_quota")), ProviderErrorKind::QuotaExceeded);
        assert_eq!(classify_status(402, None), ProviderErrorKind::QuotaExceeded);
        assert_eq!(classify_status(529, None), ProviderErrorKind::Overloaded);
        assert_eq!(classify_status(500, None), ProviderErrorKind::Server);
        assert_eq!(classify_status(422, None), ProviderErrorKind::InvalidRequest);
        assert!(!ProviderErrorKind::QuotaExceeded.is_retryable());
        assert!(ProviderErrorKind::Overloaded.is_retryable());
    }

    #[test]
    fn retry_after_reads_ms_seconds_and_fractions() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after", HeaderValue::from_static("0.5"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(500)));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn scrub_masks_an_echoed_key() {
        let key = SecretString::new("sk-test-0123456789abcdef");
        let e = ProviderError::new(
            ProviderErrorKind::Auth,
            Some(401),
            "Incorrect API key provided: sk-test-0123456789abcdef.",
        );
        let provider = Provider {
            code: "p".into(),
            kind: ProviderKind::OpenaiCompatible,
            name: "p".into(),
            base_url: "http://x".into(),
            headers: [("authorization".to_string(), "Bearer gw-token-9876543210".to_string())].into_iter().collect(),
            is_active: true,
            sort_order: 0,
        };
        let e = scrub(e, &key, &provider);
        assert!(!e.message.contains("0123456789"));
        let echoed =
            ProviderError::new(ProviderErrorKind::Auth, Some(401), "bad credential Bearer gw-token-9876543210");
        assert!(!scrub(echoed, &key, &provider).message.contains("9876543210"));
        assert_eq!(e.message, "Incorrect API key provided: [redacted].");
        let cut = ProviderError::new(ProviderErrorKind::Auth, Some(401), "key sk-test-0123456789ab… is invalid");
        assert!(!scrub(cut, &key, &provider).message.contains("0123456789"));
    }
}
