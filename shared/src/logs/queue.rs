//! The in-process queue that stands in for SQS in the local runner: events are serialised to the
//! same JSON an SQS message body carries, and a background task hands batches to the aggregator.
//!
//! Sending waits until the consumer has recorded the event (group commit): the gateway sends a
//! call's event before the answer's last byte, so an answered call is in the store (SQLite's
//! WAL, which a process crash cannot lose) even if the process is killed the next moment. The
//! consumer takes whatever has queued up while it wrote the previous batch, so concurrent calls
//! share one transaction and a lone call waits for no linger.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::{LogEvent, LogSink, write_undelivered};

/// One queued message: an id (like an SQS message id) and the JSON body.
#[derive(Debug)]
pub struct QueuedMessage {
    pub message_id: String,
    pub body: String,
    /// Told once the message is finished with; the sender waits for it.
    finished: Option<oneshot::Sender<()>>,
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
        let (finished, recorded) = oneshot::channel();
        if self.tx.send(QueuedMessage { message_id, body, finished: Some(finished) }).is_err() {
            self.counts.done.fetch_add(1, Ordering::AcqRel);
            write_undelivered(&event, "the in-process queue is closed");
            return;
        }
        // An error only means the consumer is gone (shutdown); the event was handed over.
        let _ = recorded.await;
    }
}

impl QueueReceiver {
    /// Waits for at least one message, then takes what else has queued meanwhile, up to `max`:
    /// the writes of concurrent calls share a transaction without anyone lingering for it (a
    /// linger of even 1 ms cost more throughput than the commits it saved, bench/run.sh).
    /// `None` once every sender is gone and the queue is drained.
    pub async fn next_batch(&mut self, max: usize) -> Option<Vec<QueuedMessage>> {
        let first = self.rx.recv().await?;
        let mut batch = Vec::with_capacity(max.clamp(1, 1024));
        batch.push(first);
        while batch.len() < max {
            match self.rx.try_recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        Some(batch)
    }

    /// Marks messages as finished (recorded, or given up on and written to the log) and lets
    /// their senders go on.
    pub fn finish<'a>(&self, messages: impl IntoIterator<Item = &'a mut QueuedMessage>) {
        for message in messages {
            if let Some(finished) = message.finished.take() {
                self.counts.done.fetch_add(1, Ordering::AcqRel);
                let _ = finished.send(());
            }
        }
    }
}
