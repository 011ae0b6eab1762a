//! The gateway's chat SSE body re-framed for another API (Anthropic's events, the Responses
//! API's events): the SSE decoding, batching and end handling both share, around a translator
//! that knows the target format. The inner body is read to its end before the outer one ends,
//! so the gateway records the call before the caller's stream closes; a caller who hangs up
//! drops the inner body with the outer one (and the gateway records that too).

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::providers::sse::{SseDecoder, SseEvent};

/// Turns the gateway's events into another API's frames.
pub trait Reframer: Send + 'static {
    /// The frames for one event of the gateway's stream.
    fn on_event(&mut self, sse: &SseEvent) -> Vec<Bytes>;
    /// The closing frames, when the gateway's stream ends (or breaks).
    fn on_end(&mut self) -> Vec<Bytes>;
}

/// `inner` (the gateway's chat SSE body) as the frames `reframer` makes of it.
pub fn reframed<R: Reframer>(inner: Body, reframer: R) -> Body {
    struct State<R> {
        inner: axum::body::BodyDataStream,
        decoder: SseDecoder,
        reframer: R,
        pending: VecDeque<Bytes>,
        ended: bool,
    }
    let state = State {
        inner: inner.into_data_stream(),
        decoder: SseDecoder::default(),
        reframer,
        pending: VecDeque::new(),
        ended: false,
    };
    Body::from_stream(futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(bytes) = s.pending.pop_front() {
                return Some((Ok::<_, Infallible>(bytes), s));
            }
            if s.ended {
                return None;
            }
            match s.inner.next().await {
                Some(Ok(bytes)) => {
                    s.decoder.push(&bytes);
                    let mut batch = Vec::new();
                    while let Some(sse) = s.decoder.next_event() {
                        for frame in s.reframer.on_event(&sse) {
                            batch.extend_from_slice(&frame);
                        }
                    }
                    if !batch.is_empty() {
                        s.pending.push_back(Bytes::from(batch));
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the gateway's stream body failed");
                    s.pending.extend(s.reframer.on_end());
                    s.ended = true;
                }
                None => {
                    s.pending.extend(s.reframer.on_end());
                    s.ended = true;
                }
            }
        }
    }))
}
