//! The in-process queue that stands in for SQS in the local runner: events are serialised to the
//! same JSON an SQS message body carries, and a background task hands batches to the aggregator.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{LogEvent, LogSink, write_undelivered};

/// One queued message: an id (like an SQS message id) and the JSON body.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub message_id: String,
    pub body: String,
}

/// Messages sent and messages the consumer has finished with, so callers can wait until the
/// queue is drained (tests, shutdown).
#[derive(Debug, Default)]
pub struct QueueCounts {
    sent: AtomicU64,
    done: AtomicU64,
}

impl QueueCounts {
    pub fn is_drained(&self) -> bool {
        self.done.load(Ordering::Acquire) >= self.sent.load(Ordering::Acquire)
    }
}

/// The sending half; cheap to clone.
#[derive(Clone)]
pub struct InProcessQueue {
    tx: mpsc::UnboundedSender<QueuedMessage>,
    counts: Arc<QueueCounts>,
}

/// The receiving half, owned by the consumer task.
pub struct QueueReceiver {
    rx: mpsc::UnboundedReceiver<QueuedMessage>,
    counts: Arc<QueueCounts>,
}

pub fn in_process_queue() -> (InProcessQueue, QueueReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let counts = Arc::new(QueueCounts::default());
    (InProcessQueue { tx, counts: counts.clone() }, QueueReceiver { rx, counts })
}

impl InProcessQueue {
    pub fn counts(&self) -> Arc<QueueCounts> {
        self.counts.clone()
    }
}

#[async_trait]
impl LogSink for InProcessQueue {
    async fn send(&self, event: LogEvent) {
        let body = match serde_json::to_string(&event) {
            Ok(body) => body,
            Err(e) => return write_undelivered(&event, &e.to_string()),
        };
        let message_id = format!("local-{}", self.counts.sent.fetch_add(1, Ordering::AcqRel) + 1);
        if self.tx.send(QueuedMessage { message_id, body }).is_err() {
            self.counts.done.fetch_add(1, Ordering::AcqRel);
            write_undelivered(&event, "the in-process queue is closed");
        }
    }
}

impl QueueReceiver {
    /// Waits for at least one message, then gathers more for up to `linger` (or until there are
    /// `max`), as SQS batching does: one write transaction per batch is most of the aggregator's
    /// cost, so a few milliseconds of patience save most of it. `None` once every sender is gone
    /// and the queue is drained.
    pub async fn next_batch(&mut self, max: usize, linger: Duration) -> Option<Vec<QueuedMessage>> {
        let first = self.rx.recv().await?;
        let mut batch = Vec::with_capacity(max.min(1024));
        batch.push(first);
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            let room = max - batch.len();
            match tokio::time::timeout_at(deadline, self.rx.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break, // closed, or the linger is over
                Ok(_) => {}
            }
        }
        Some(batch)
    }

    /// Marks `n` messages as finished (recorded, or given up on and written to the log).
    pub fn mark_done(&self, n: usize) {
        self.counts.done.fetch_add(n as u64, Ordering::AcqRel);
    }
}
