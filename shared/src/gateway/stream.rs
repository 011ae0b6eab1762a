//! The body of a streamed chat: a task pumps translated frames from the provider to the caller
//! through a small channel, and records the call exactly once when the stream ends, breaks, or
//! the caller goes away (then with the tokens seen so far).

use std::convert::Infallible;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::cached::{CachePlan, Fresh, store_answer};
use super::{Backends, CLIENT_CLOSED, CLIENT_DISCONNECTED, CallState, Served, reconcile};
use crate::cache::StreamAssembler;
use crate::domain::ChatRequest;
use crate::pricing::cost_micros;
use crate::providers::{ProviderError, UpstreamStream};

/// Frames in flight between the provider and a slow caller; beyond this the pump waits, so a
/// slow reader slows the upstream read instead of growing memory.
const CHANNEL_FRAMES: usize = 32;

/// A stream that has started: the headers to send and the SSE body.
pub struct ChatStream {
    pub facts: super::CallFacts,
    pub body: Body,
}

/// How a stream ended.
enum End {
    Complete,
    CallerGone,
    Broken(ProviderError),
    /// Maestro ended it: `(status recorded, code)`, the reason sent in-band.
    Cut(u16, &'static str),
}

/// Why Maestro may end a running stream: its deadline, and the server shutting down.
pub(super) struct Limits {
    pub deadline: tokio::time::Instant,
    pub shutting_down: watch::Receiver<bool>,
    /// What the user's credits are charged for the stream when it ends.
    pub credit_markup: crate::pricing::CreditMarkup,
}

pub(super) fn start(
    backends: Backends,
    mut state: CallState,
    request: &ChatRequest,
    served: Served<(UpstreamStream, Vec<Bytes>)>,
    limits: Limits,
    cache_plan: Option<CachePlan>,
) -> ChatStream {
    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_FRAMES);
    state.key_id = Some(served.key_id.clone());
    let stream = ChatStream {
        facts: state.facts(),
        body: Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|frame| (Ok::<_, Infallible>(frame), rx))
        })),
    };
    let requested_model = request.model.clone();
    tokio::spawn(async move {
        let Served { output: (mut upstream, first), grant, prices, prompt_tokens_if_cut, .. } = served;
        let ttfb_ms = state.started.elapsed().as_millis() as u64;
        let markup = limits.credit_markup.clone();
        // A cacheable stream is assembled as it passes, and stored if it completes.
        let mut assembler = cache_plan.as_ref().map(|_| StreamAssembler::default());
        let end = pump(&tx, &mut upstream, first, limits, assembler.as_mut()).await;

        let mut usage = upstream.usage();
        if !matches!(end, End::Complete) {
            // Cut short before the provider's final usage: count what was seen. (Anthropic's
            // `message_start` reports 1 output token up front; the text seen since counts more.)
            usage.completion_tokens = usage.completion_tokens.max(upstream.estimated_completion_tokens());
            if usage.prompt_tokens == 0 {
                usage.prompt_tokens = prompt_tokens_if_cut;
            }
        }
        reconcile(backends.counters.as_ref(), &grant, usage).await;
        let cost = cost_micros(&prices, &usage);
        super::caller_budget::settle(backends.counters.as_ref(), state.caller_grant.take(), usage, cost).await;
        super::settle_credit_hold(&backends, &markup, &mut state, cost).await;
        if let (End::Complete, Some(plan), Some(assembler)) = (&end, &cache_plan, assembler)
            && let Some(body) = assembler.finish(&usage)
        {
            let fresh = Fresh {
                body,
                provider: state.provider.as_deref().unwrap_or_default(),
                model: state.model.as_deref().unwrap_or_default(),
                usage,
                cost_micros: cost,
            };
            store_answer(backends.response_cache.as_ref(), plan, fresh).await;
        }
        let event = match &end {
            End::Complete => state.event(&requested_model, usage, cost, None, Some(ttfb_ms)),
            End::CallerGone => state.event(
                &requested_model,
                usage,
                cost,
                Some((CLIENT_CLOSED, Some(CLIENT_DISCONNECTED.into()), "the caller closed the stream before it ended")),
                Some(ttfb_ms),
            ),
            &End::Cut(status, code) => {
                tracing::warn!(request_id = %state.request_id, code, "stream ended by Maestro");
                state.event(&requested_model, usage, cost, Some((status, Some(code.to_string()), code)), Some(ttfb_ms))
            }
            End::Broken(e) => {
                tracing::warn!(request_id = %state.request_id, error = %e, "upstream stream broke after the first byte");
                state.event(
                    &requested_model,
                    usage,
                    cost,
                    Some((502, Some(e.kind.as_str().into()), &crate::secret::scrub_credentials(&e.message))),
                    Some(ttfb_ms),
                )
            }
        };
        backends.log_sink.send(event).await;
        // `tx` drops here: the caller's body ends only after the call is recorded, so a Lambda
        // invocation cannot be frozen between the two.
        drop(tx);
    });
    stream
}

/// Sends frames until the upstream ends, breaks, the caller stops reading, or Maestro ends the
/// stream (deadline, shutdown).
async fn pump(
    tx: &mpsc::Sender<Bytes>,
    upstream: &mut UpstreamStream,
    first: Vec<Bytes>,
    limits: Limits,
    mut assembler: Option<&mut StreamAssembler>,
) -> End {
    let Limits { deadline, shutting_down, .. } = limits;
    let shutdown = shutdown_requested(shutting_down);
    tokio::pin!(shutdown);
    for frame in first {
        if let Some(a) = assembler.as_deref_mut() {
            a.feed(&frame);
        }
        if tx.send(frame).await.is_err() {
            return End::CallerGone;
        }
    }
    loop {
        let next = tokio::select! {
            _ = tx.closed() => return End::CallerGone,
            () = tokio::time::sleep_until(deadline) => Err((
                "stream_deadline_exceeded",
                504,
                "The stream ran past its deadline (retry.stream_deadline_ms, or the caller's time limit).",
            )),
            () = &mut shutdown => Err(("server_shutting_down", 503, "Maestro is shutting down; the stream was ended.")),
            next = upstream.next() => Ok(next),
        };
        match next {
            Ok(Ok(Some(frames))) => {
                for frame in frames {
                    if let Some(a) = assembler.as_deref_mut() {
                        a.feed(&frame);
                    }
                    if tx.send(frame).await.is_err() {
                        return End::CallerGone;
                    }
                }
            }
            Ok(Ok(None)) => return End::Complete,
            Ok(Err(e)) => {
                // The caller already has a 200 and part of the answer: the error goes in-band,
                // the way OpenAI reports mid-stream failures.
                let message = format!("The provider's stream failed: {}", e.kind.as_str());
                let _ = tx.send(in_band_error("upstream_error", e.kind.as_str(), &message)).await;
                return End::Broken(e);
            }
            Err((code, status, message)) => {
                let _ = tx.send(in_band_error("server_error", code, message)).await;
                return End::Cut(status, code);
            }
        }
    }
}

/// Resolves when the shutdown signal is given; never, once its sender is gone.
async fn shutdown_requested(mut signal: watch::Receiver<bool>) {
    if signal.wait_for(|stopping| *stopping).await.is_ok() {
        return;
    }
    std::future::pending::<()>().await;
}

/// An error frame in OpenAI's mid-stream shape (the Anthropic route translates it).
fn in_band_error(error_type: &str, code: &str, message: &str) -> Bytes {
    let body = serde_json::json!({"error": {"message": message, "type": error_type, "code": code, "param": null}});
    Bytes::from(format!("data: {body}\n\n"))
}
