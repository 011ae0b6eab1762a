//! The body of a streamed chat: a task pumps translated frames from the provider to the caller
//! through a small channel, and records the call exactly once when the stream ends, breaks, or
//! the caller goes away (then with the tokens seen so far).

use std::convert::Infallible;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Backends, CLIENT_CLOSED, CLIENT_DISCONNECTED, CallState, Served, reconcile};
use crate::domain::ChatRequest;
use crate::pricing::cost_micros;
use crate::providers::{ProviderError, UpstreamStream};
use crate::tokens::quick_prompt_estimate;

/// Frames in flight between the provider and a slow caller; beyond this the pump waits, so a
/// slow reader slows the upstream read instead of growing memory.
const CHANNEL_FRAMES: usize = 32;

/// A stream that has started: the headers to send and the SSE body.
pub struct ChatStream {
    pub request_id: String,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub attempts: u32,
    pub body: Body,
}

/// How a stream ended.
enum End {
    Complete,
    CallerGone,
    Broken(ProviderError),
}

pub(super) fn start(
    backends: Backends,
    mut state: CallState,
    request: &ChatRequest,
    served: Served<(UpstreamStream, Vec<Bytes>)>,
) -> ChatStream {
    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_FRAMES);
    state.key_id = Some(served.key_id.clone());
    let stream = ChatStream {
        request_id: state.request_id.clone(),
        provider: state.provider.clone(),
        model: state.model.clone(),
        attempts: state.attempts,
        body: Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|frame| (Ok::<_, Infallible>(frame), rx))
        })),
    };
    let requested_model = request.model.clone();
    let prompt_estimate = quick_prompt_estimate(request);
    tokio::spawn(async move {
        let Served { output: (mut upstream, first), grant, prices, .. } = served;
        let ttfb_ms = state.started.elapsed().as_millis() as u64;
        let end = pump(&tx, &mut upstream, first).await;

        let mut usage = upstream.usage();
        if !matches!(end, End::Complete) && usage.completion_tokens == 0 {
            // Cut short before the provider reported usage: count what was seen.
            usage.completion_tokens = upstream.estimated_completion_tokens();
            if usage.prompt_tokens == 0 {
                usage.prompt_tokens = prompt_estimate;
            }
        }
        reconcile(backends.counters.as_ref(), &grant, usage).await;
        let cost = cost_micros(&prices, &usage);
        super::caller_budget::settle(backends.counters.as_ref(), state.caller_grant.take(), usage, cost).await;
        let event = match &end {
            End::Complete => state.event(&requested_model, usage, cost, None, Some(ttfb_ms)),
            End::CallerGone => state.event(
                &requested_model,
                usage,
                cost,
                Some((CLIENT_CLOSED, Some(CLIENT_DISCONNECTED.into()), "the caller closed the stream before it ended")),
                Some(ttfb_ms),
            ),
            End::Broken(e) => {
                tracing::warn!(request_id = %state.request_id, error = %e, "upstream stream broke after the first byte");
                state.event(
                    &requested_model,
                    usage,
                    cost,
                    Some((502, Some(e.kind.as_str().into()), &e.message)),
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

/// Sends frames until the upstream ends, breaks, or the caller stops reading.
async fn pump(tx: &mpsc::Sender<Bytes>, upstream: &mut UpstreamStream, first: Vec<Bytes>) -> End {
    for frame in first {
        if tx.send(frame).await.is_err() {
            return End::CallerGone;
        }
    }
    loop {
        let next = tokio::select! {
            _ = tx.closed() => return End::CallerGone,
            next = upstream.next() => next,
        };
        match next {
            Ok(Some(frames)) => {
                for frame in frames {
                    if tx.send(frame).await.is_err() {
                        return End::CallerGone;
                    }
                }
            }
            Ok(None) => return End::Complete,
            Err(e) => {
                // The caller already has a 200 and part of the answer: the error goes in-band,
                // the way OpenAI reports mid-stream failures.
                let body = serde_json::json!({"error": {"message": format!("The provider's stream failed: {}", e.kind.as_str()), "type": "upstream_error", "code": e.kind.as_str(), "param": null}});
                let _ = tx.send(Bytes::from(format!("data: {body}\n\n"))).await;
                return End::Broken(e);
            }
        }
    }
}
