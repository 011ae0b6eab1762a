//! What every router does before its handlers, on the local runner and on Lambda alike (Lambda
//! hands the body over already read; the same code runs on it):
//!
//! - a body announced (`Content-Length`) over the limit gets 413 before a byte of it is read, so
//!   a client that sent `Expect: 100-continue` is refused without sending it (hyper sends
//!   `100 Continue` only when the body is first read);
//! - a `Content-Encoding: gzip` body is inflated as it is read, a chunk at a time, and the limit
//!   counts the inflated bytes: a gzip bomb gets 413 after at most the limit and a chunk were
//!   inflated; any other encoding gets 415;
//! - CORS, when origins are configured (see [`Cors`]).
//!
//! Errors take the route's shape ([`crate::http::error_response`]).

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{ACCESS_CONTROL_REQUEST_HEADERS, CONTENT_ENCODING, CONTENT_LENGTH};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::{Next, from_fn_with_state, map_request};
use axum::response::Response;
use bytes::{Buf, Bytes};
use flate2::write::MultiGzDecoder;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::error::ApiError;
use crate::http::error_response;

/// The request-body rules and CORS around `router`; `max_body_bytes` is the limit the routers
/// set with [`crate::http::body_limit`].
pub fn apply(router: Router, max_body_bytes: usize, cors: &Cors) -> Router {
    let router = router.layer(from_fn_with_state(max_body_bytes, bodies));
    // Outermost, so every answer gets the headers, errors from the layers above included.
    cors.wrap(router)
}

/// The body's encoding, from `Content-Encoding`.
#[derive(Debug, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Other,
}

fn encoding(headers: &HeaderMap) -> Encoding {
    let mut values = headers.get_all(CONTENT_ENCODING).iter();
    let Some(value) = values.next() else { return Encoding::Identity };
    if values.next().is_some() {
        // Stacked encodings (`gzip` twice, `gzip` over `br`): nobody sends them; refused.
        return Encoding::Other;
    }
    match value.to_str().map(|v| v.trim().to_ascii_lowercase()) {
        Ok(v) if v.is_empty() || v == "identity" => Encoding::Identity,
        Ok(v) if v == "gzip" || v == "x-gzip" => Encoding::Gzip,
        _ => Encoding::Other,
    }
}

async fn bodies(State(limit): State<usize>, mut request: Request, next: Next) -> Response {
    let refuse = |request: &Request, e: ApiError| error_response(request.uri().path(), request.headers(), &e);
    let announced = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return refuse(&request, ApiError::payload_too_large());
    }
    match encoding(request.headers()) {
        Encoding::Identity => {}
        Encoding::Gzip => {
            let headers = request.headers_mut();
            headers.remove(CONTENT_ENCODING);
            headers.remove(CONTENT_LENGTH);
            let body = std::mem::take(request.body_mut());
            *request.body_mut() = Body::new(GzipBody::new(body, limit));
        }
        Encoding::Other => return refuse(&request, ApiError::unsupported_encoding()),
    }
    next.run(request).await
}

/// The inflated body grew over the limit; the JSON extractor answers 413.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the inflated request body is larger than the limit")]
pub struct InflatedTooLarge;

/// How much inflated data is handed on at once. With the decoder's own 32 KiB buffer, this
/// bounds what a bomb makes the server inflate past the limit.
const CHUNK: usize = 64 * 1024;

/// A gzip body inflated as it is read. Each write into the decoder inflates at most its 32 KiB
/// buffer, so memory stays bounded whatever the compression ratio.
struct GzipBody {
    inner: Body,
    decoder: MultiGzDecoder<Vec<u8>>,
    /// Compressed bytes not yet fed to the decoder.
    input: Bytes,
    /// Inflated bytes handed on so far.
    inflated: usize,
    limit: usize,
    done: bool,
}

impl GzipBody {
    fn new(inner: Body, limit: usize) -> Self {
        Self {
            inner,
            decoder: MultiGzDecoder::new(Vec::with_capacity(CHUNK)),
            input: Bytes::new(),
            inflated: 0,
            limit,
            done: false,
        }
    }

    /// Hands on what was inflated, unless that takes the body over the limit.
    fn take(&mut self) -> Option<Result<Frame<Bytes>, axum::BoxError>> {
        let out = std::mem::take(self.decoder.get_mut());
        self.inflated += out.len();
        if self.inflated > self.limit {
            self.done = true;
            return Some(Err(Box::new(InflatedTooLarge)));
        }
        (!out.is_empty()).then(|| Ok(Frame::data(Bytes::from(out))))
    }

    fn fail(&mut self, e: impl Into<axum::BoxError>) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        self.done = true;
        Poll::Ready(Some(Err(e.into())))
    }
}

impl HttpBody for GzipBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if this.inflated + this.decoder.get_ref().len() > this.limit || this.decoder.get_ref().len() >= CHUNK {
                if let Some(frame) = this.take() {
                    return Poll::Ready(Some(frame));
                }
                continue;
            }
            if !this.input.is_empty() {
                match this.decoder.write(&this.input) {
                    // The gzip stream ended with input left over.
                    Ok(0) => return this.fail("unexpected data after the gzip stream"),
                    Ok(n) => this.input.advance(n),
                    Err(e) => return this.fail(format!("the gzip body is corrupt: {e}")),
                }
                continue;
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.input = data;
                    }
                }
                Poll::Ready(Some(Err(e))) => return this.fail(e),
                Poll::Ready(None) => {
                    if let Err(e) = this.decoder.try_finish() {
                        return this.fail(format!("the gzip body is corrupt or cut short: {e}"));
                    }
                    let last = this.take();
                    this.done = true;
                    if let Some(frame) = last {
                        return Poll::Ready(Some(frame));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The request headers a browser may send: what the OpenAI and Anthropic SDKs send (their
/// `x-stainless-*` headers too, checked by prefix in [`allowed_request_header`]).
pub const ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "content-encoding",
    "x-api-key",
    "anthropic-version",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "openai-organization",
    "openai-project",
    "idempotency-key",
    "x-request-id",
    crate::http::HEADER_TAGS,
    crate::cache::HEADER_CACHE,
];

/// The response headers a browser lets the page read: the request id (also under Anthropic's
/// name), `Retry-After`, Anthropic's retry hint and Maestro's own.
pub const EXPOSED_HEADERS: &[&str] = &[
    crate::http::HEADER_REQUEST_ID,
    "request-id",
    "retry-after",
    "x-should-retry",
    crate::http::HEADER_PROVIDER,
    crate::http::HEADER_MODEL,
    crate::http::HEADER_ATTEMPTS,
    crate::http::HEADER_ROUTE,
    crate::http::HEADER_ROUTE_RULE,
    crate::cache::HEADER_CACHE,
];

/// The methods a preflight may ask for (the admin API takes `PUT` and `DELETE`).
pub const ALLOWED_METHODS: &[Method] = &[Method::GET, Method::POST, Method::PUT, Method::DELETE];

/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

fn allowed_request_header(name: &str) -> bool {
    ALLOWED_HEADERS.contains(&name) || name.starts_with("x-stainless-")
}

/// CORS for browser apps that call Maestro directly: `[server] cors_origins` or
/// `MAESTRO_CORS_ORIGINS`. Off (no headers, `OPTIONS` not answered) when no origin is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    origins: Vec<HeaderValue>,
    any: bool,
}

impl Cors {
    /// Origins as `scheme://host[:port]` (no path), or `*` for any.
    pub fn from_list<S: AsRef<str>>(origins: &[S]) -> Result<Self, String> {
        let mut cors = Self::default();
        for origin in origins.iter().map(|o| o.as_ref().trim()).filter(|o| !o.is_empty()) {
            if origin == "*" {
                cors.any = true;
                continue;
            }
            let authority = origin.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
            if authority.is_empty() || authority.contains('/') {
                return Err(format!("`{origin}` is not an origin: write `https://app.example.com[:port]`, or `*`"));
            }
            // Browsers send the scheme and host in lower case.
            let value = HeaderValue::from_str(&origin.to_ascii_lowercase())
                .map_err(|_| format!("`{origin}` is not a valid header value"))?;
            cors.origins.push(value);
        }
        Ok(cors)
    }

    /// A comma-separated list (`MAESTRO_CORS_ORIGINS`).
    pub fn from_comma_list(list: &str) -> Result<Self, String> {
        Self::from_list(&list.split(',').collect::<Vec<_>>())
    }

    pub fn is_enabled(&self) -> bool {
        self.any || !self.origins.is_empty()
    }

    fn wrap(&self, router: Router) -> Router {
        if !self.is_enabled() {
            return router;
        }
        let origins = if self.any { AllowOrigin::any() } else { AllowOrigin::list(self.origins.clone()) };
        let layer = CorsLayer::new()
            .allow_origin(origins)
            .allow_methods(ALLOWED_METHODS.to_vec())
            // Mirrors what is left of the asked-for headers once [`only_allowed_headers`] took
            // out the others: a list cannot name the `x-stainless-*` family.
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(EXPOSED_HEADERS.iter().map(|h| HeaderName::from_static(h)).collect::<Vec<_>>())
            .max_age(PREFLIGHT_MAX_AGE);
        router.layer(layer).layer(map_request(only_allowed_headers))
    }
}

/// Keeps, of the headers a preflight asks for, only the allowed ones: the answer then lacks the
/// others and the browser does not send the request.
async fn only_allowed_headers(mut request: Request) -> Request {
    if request.method() != Method::OPTIONS {
        return request;
    }
    let asked: Vec<String> = request
        .headers()
        .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    let kept: Vec<String> = asked.into_iter().filter(|h| allowed_request_header(h)).collect();
    let headers = request.headers_mut();
    headers.remove(ACCESS_CONTROL_REQUEST_HEADERS);
    if let Ok(value) = HeaderValue::from_str(&kept.join(","))
        && !kept.is_empty()
    {
        headers.insert(ACCESS_CONTROL_REQUEST_HEADERS, value);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_and_star_allows_any() {
        assert!(!Cors::from_list::<&str>(&[]).expect("empty").is_enabled());
        assert!(!Cors::from_comma_list(" ").expect("blank").is_enabled());
        let cors = Cors::from_comma_list("https://App.example.com, http://localhost:5173").expect("two");
        assert_eq!(cors.origins, ["https://app.example.com", "http://localhost:5173"]);
        assert!(Cors::from_list(&["*"]).expect("any").any);
        for bad in ["app.example.com", "https://app.example.com/", "https://a.example/path", "https://"] {
            assert!(Cors::from_list(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_sdks_headers_are_allowed() {
        for h in ["authorization", "x-api-key", "anthropic-version", "x-stainless-os", "x-stainless-retry-count"] {
            assert!(allowed_request_header(h), "{h}");
        }
        assert!(!allowed_request_header("x-forwarded-for"));
        assert!(!allowed_request_header("cookie"));
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).expect("compress");
        encoder.finish().expect("compress")
    }

    /// Reads a gzip body frame by frame: the bytes handed on, and the error that ended it; checks
    /// that no more than a chunk and the decoder's buffer were inflated past the limit.
    async fn inflate(compressed: Vec<u8>, limit: usize) -> (usize, Option<axum::BoxError>) {
        // Fed in small pieces, as a socket would.
        let pieces: Vec<Result<Bytes, std::io::Error>> =
            compressed.chunks(1000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let mut body = GzipBody::new(Body::from_stream(futures_util::stream::iter(pieces)), limit);
        let mut handed = 0;
        loop {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
            assert!(body.inflated <= limit + CHUNK + 32 * 1024, "{} inflated", body.inflated);
            match frame {
                None => return (handed, None),
                Some(Ok(frame)) => handed += frame.into_data().map(|d| d.len()).unwrap_or_default(),
                Some(Err(e)) => return (handed, Some(e)),
            }
        }
    }

    #[tokio::test]
    async fn a_gzip_bomb_is_cut_off_a_chunk_past_the_limit() {
        let limit = 100_000;
        let bomb = gzip(&vec![b' '; 50 * 1024 * 1024]);
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        let (handed, error) = inflate(bomb, limit).await;
        assert!(error.is_some_and(|e| e.is::<InflatedTooLarge>()));
        assert!(handed <= limit, "{handed}");
        let (handed, error) = inflate(gzip(b"{\"model\":\"m\"}"), limit).await;
        assert_eq!((handed, error.map(|e| e.to_string())), (13, None));
        let mut cut = gzip(&vec![b'x'; 5000]);
        cut.truncate(cut.len() - 4);
        assert!(inflate(cut, limit).await.1.is_some(), "a body cut short is an error");
        let mut trailing = gzip(b"{}");
        trailing.extend_from_slice(b"garbage");
        assert!(inflate(trailing, limit).await.1.is_some(), "data after the stream is an error");
    }

    #[test]
    fn the_content_encoding_is_read_case_blind_and_stacked_ones_are_refused() {
        let mut headers = HeaderMap::new();
        assert_eq!(encoding(&headers), Encoding::Identity);
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("GZip"));
        assert_eq!(encoding(&headers), Encoding::Gzip);
        headers.append(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(encoding(&headers), Encoding::Other);
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(encoding(&headers), Encoding::Other);
    }
}
