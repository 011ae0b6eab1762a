//! Streaming upstream calls: the shared driver that reads an upstream SSE body chunk by chunk
//! and hands each event to the provider's translator, which answers with OpenAI-format frames
//! (`data: {chunk}\n\n` … `data: [DONE]\n\n`) for the caller.

use std::time::Duration;

use bytes::Bytes;

use super::sse::{SseDecoder, SseEvent};
use super::{ProviderError, ProviderErrorKind, transport_error};
use crate::domain::Usage;

/// What a provider's stream format knows: how to turn one upstream event into caller frames.
pub(super) trait Translate: Send {
    /// Frames for one upstream event; an `error` event becomes `Err`.
    fn on_event(&mut self, event: &SseEvent) -> Result<Vec<Bytes>, ProviderError>;
    /// Frames to send when the upstream body ends; `Err` when it ended before the stream was
    /// complete (a truncated stream).
    fn on_end(&mut self) -> Result<Vec<Bytes>, ProviderError>;
    /// Usage as reported so far (exact once the stream completed).
    fn usage(&self) -> Usage;
    /// Characters of generated text seen, for an estimate when the stream never reports usage.
    fn generated_chars(&self) -> u64;
    /// Whether the format's final event has arrived (`[DONE]`, `message_stop`): nothing after it
    /// matters, so an upstream that keeps the body open afterwards is not waited for.
    fn is_complete(&self) -> bool;
}

/// A caller frame: `data: <payload>\n\n`.
pub(super) fn frame(payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

pub(super) fn done_frame() -> Bytes {
    Bytes::from_static(b"data: [DONE]\n\n")
}

/// Where the upstream bytes come from: a provider's HTTP body, or chunks made in process (the
/// demo model).
enum Source {
    Http(reqwest::Response),
    Local(std::collections::VecDeque<Bytes>),
}

impl Source {
    async fn chunk(&mut self) -> Result<Option<Bytes>, reqwest::Error> {
        match self {
            Self::Http(response) => response.chunk().await,
            Self::Local(chunks) => Ok(chunks.pop_front()),
        }
    }
}

/// An open upstream stream.
pub struct UpstreamStream {
    source: Source,
    decoder: SseDecoder,
    translator: Box<dyn Translate>,
    idle_timeout: Duration,
    ended: bool,
}

impl UpstreamStream {
    pub(super) fn new(response: reqwest::Response, translator: Box<dyn Translate>, idle_timeout: Duration) -> Self {
        Self::with_source(Source::Http(response), translator, idle_timeout)
    }

    /// A stream over bytes made in process, read through the same decoder and translator.
    pub(super) fn local(chunks: Vec<Bytes>, translator: Box<dyn Translate>) -> Self {
        Self::with_source(Source::Local(chunks.into()), translator, Duration::from_secs(1))
    }

    fn with_source(source: Source, translator: Box<dyn Translate>, idle_timeout: Duration) -> Self {
        Self { source, decoder: SseDecoder::default(), translator, idle_timeout, ended: false }
    }

    /// The next caller frames, waiting for upstream data as needed. `Ok(None)` once the stream
    /// has ended completely; an error when it broke, stalled or sent an error event.
    pub async fn next(&mut self) -> Result<Option<Vec<Bytes>>, ProviderError> {
        loop {
            if self.ended {
                return Ok(None);
            }
            if let Some(event) = self.decoder.next_event() {
                let frames = self.translator.on_event(&event)?;
                if self.translator.is_complete() {
                    self.ended = true;
                }
                if !frames.is_empty() {
                    return Ok(Some(frames));
                }
                continue;
            }
            let chunk = tokio::time::timeout(self.idle_timeout, self.source.chunk())
                .await
                .map_err(|_| ProviderError::new(ProviderErrorKind::Timeout, None, "the provider's stream stalled"))?;
            match chunk {
                Ok(Some(bytes)) => self.decoder.push(&bytes),
                Ok(None) => {
                    self.ended = true;
                    let frames = self.translator.on_end()?;
                    return Ok((!frames.is_empty()).then_some(frames));
                }
                Err(e) => return Err(transport_error(&e)),
            }
        }
    }

    /// Usage reported by the provider so far.
    pub fn usage(&self) -> Usage {
        self.translator.usage()
    }

    /// Completion tokens estimated from the text seen (⌈chars / 4⌉), for streams cut short
    /// before the provider reported usage.
    pub fn estimated_completion_tokens(&self) -> u64 {
        self.translator.generated_chars().div_ceil(4)
    }
}

/// A truncated stream: the body ended before the format's final event.
pub(super) fn truncated() -> ProviderError {
    ProviderError::new(ProviderErrorKind::MalformedResponse, None, "the provider's stream ended before it was complete")
}
