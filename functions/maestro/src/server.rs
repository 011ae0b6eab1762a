//! The local runner's HTTP server: hyper's HTTP/1 connections with the limits `axum::serve`
//! lacks, so that no client, authenticated or not, can exhaust the process:
//!
//! - at most `max_connections` connections; beyond that new ones wait in the kernel's backlog;
//! - a request's headers must arrive within `header_timeout` of the connection (or of the last
//!   answer on a kept-alive connection, so idle connections are closed too), and are at most
//!   `max_header_bytes` (a JSON 431 above that; hyper itself cuts off heads 8 KiB over that,
//!   with a bare 431, before reading more), so a connection holds at most that much of a head;
//! - a request's body must arrive within `body_timeout` (408 otherwise; see [`DeadlineBody`]);
//! - on shutdown, connections finish their request and close; after `shutdown_timeout` the
//!   streams still running are ended in-band (and recorded), then the server returns.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// The server's limits (the `[server]` section of the config file).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_header_bytes: usize,
    pub shutdown_timeout: Duration,
}

impl Limits {
    pub fn from_config(c: &maestro_shared::config::ServerConfig) -> Self {
        Self {
            max_connections: match c.max_connections {
                0 => auto_max_connections(),
                n => n,
            },
            header_timeout: Duration::from_secs(c.header_timeout_secs),
            body_timeout: Duration::from_secs(c.body_timeout_secs),
            max_header_bytes: c.max_header_bytes,
            shutdown_timeout: Duration::from_secs(c.shutdown_timeout_secs),
        }
    }
}

/// The connection limit when none is configured: 4,096, or the process's open-file limit less
/// what the store, the upstream connections and the log need, so accepting never runs the
/// process out of descriptors (with a 1,024 soft limit, as many systems set, that is 768). With
/// the 40 KiB a head may take, slow-header clients can pin at most ~160 MiB.
fn auto_max_connections() -> usize {
    const DEFAULT: usize = 4_096;
    const RESERVED: usize = 256;
    let soft_limit = std::fs::read_to_string("/proc/self/limits").ok().and_then(|limits| {
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse::<usize>().ok()
    });
    match soft_limit {
        Some(files) => files.saturating_sub(RESERVED).clamp(64, DEFAULT),
        None => DEFAULT,
    }
}

/// How far past `max_header_bytes` hyper reads a head before cutting it off itself: heads in
/// between get Maestro's JSON 431; memory per connection stays bounded by the sum.
const HEAD_SLACK: usize = 8 * 1024;
/// hyper's smallest read buffer; a smaller header limit would panic its builder.
const MIN_READ_BUFFER: usize = 8192;
/// How long the streams ended at the shutdown deadline get to record themselves and close.
const FINAL_GRACE: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` resolves, then drains as described above;
/// `end_streams` is called when the shutdown deadline passes with connections still open.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    end_streams: impl FnOnce(),
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            // Small stream frames would otherwise wait ~40 ms for the peer's delayed ACK.
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let (router, limits, mut stop) = (router.clone(), limits.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let (body_timeout, max_header_bytes) = (limits.body_timeout, limits.max_header_bytes);
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let too_large = (head_bytes(&request) > max_header_bytes).then(|| {
                    let e = maestro_shared::error::ApiError::headers_too_large();
                    maestro_shared::http::error_response(request.uri().path(), request.headers(), &e)
                });
                let request = request.map(|body| Body::new(DeadlineBody::new(body, body_timeout)));
                let router = router.clone();
                async move {
                    if let Some(refused) = too_large {
                        return Ok(refused);
                    }
                    router.oneshot(request).await
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(max_header_bytes.saturating_add(HEAD_SLACK).max(MIN_READ_BUFFER))
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let stopping = async move {
                // Resolves at shutdown (or if the server is gone); the borrow ends here.
                let _ = stop.wait_for(|stopping| *stopping).await.is_ok();
            };
            let finished = tokio::select! {
                finished = connection.as_mut() => finished,
                () = stopping => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = finished {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_timeout, permits.acquire_many(all)).await.is_ok() {
        return;
    }
    tracing::warn!("shutdown deadline passed with streams still open; ending them");
    end_streams();
    if tokio::time::timeout(FINAL_GRACE, permits.acquire_many(all)).await.is_err() {
        tracing::error!("some connections were still open at exit");
    }
}

/// The size of a request's head as sent: request line and headers.
fn head_bytes<B>(request: &hyper::Request<B>) -> usize {
    let line = request.method().as_str().len() + request.uri().to_string().len() + 12;
    request.headers().iter().fold(line, |sum, (name, value)| sum + name.as_str().len() + value.len() + 4)
}

/// A request body that must be read completely within a deadline from the request's start.
/// A trickling client gets [`BodyTimedOut`] (the JSON extractor answers 408) instead of holding
/// the request, and its memory, forever.
pub struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Self { inner, deadline: Box::pin(tokio::time::sleep(timeout)) }
    }
}

pub use maestro_shared::http::BodyTimedOut;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(axum::BoxError::from)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Keeps the compiler honest that the router never fails (its errors are responses).
const _: fn() = || {
    fn infallible<S: tower::Service<axum::extract::Request, Error = Infallible>>() {}
    infallible::<Router>();
};
