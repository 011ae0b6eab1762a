//! [`SqsLogSink`]: the chat path's log events to the SQS log queue, one JSON message per event
//! (the same body the in-process queue carries), for the aggregator.
//!
//! Two modes, because a Lambda container is frozen as soon as its handler returns:
//!
//! - [`SinkMode::Inline`] (chosen by [`super::AwsBackend::from_env`] inside Lambda): `send`
//!   awaits one `SendMessage` before it returns, so the event has left the container before the
//!   response does. One Lambda container serves one request at a time, so there would be nothing
//!   to batch anyway. Cost: one SQS request and its latency (a few ms in-region) per call.
//! - [`SinkMode::Batched`] (everywhere else, e.g. `maestro serve --backend aws`): `send` hands
//!   the event to a background task and waits until the batch holding it was sent; the task
//!   sends whatever is ready as one `SendMessageBatch` of up to 10, without waiting for more, so
//!   concurrent calls share a request and an answered call's event has left the process (a
//!   `kill -9` cannot lose it). [`SqsLogSink::flush`] waits until everything handed over so far
//!   is sent, for a shutdown.
//!
//! An event the queue does not take after the SDK's retries (and, for a batch entry, one more
//! try) is written to the structured log with [`write_undelivered`] and counted in
//! [`SqsLogSink::undelivered`], so it is never silently lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use tokio::sync::{mpsc, oneshot};

use super::describe;
use crate::logs::{LogEvent, LogSink, write_undelivered};

/// The most messages one `SendMessageBatch` takes.
pub const MAX_BATCH: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkMode {
    /// Each `send` awaits its own `SendMessage` (for Lambda).
    Inline,
    /// A background task batches what is ready (for long-running processes).
    Batched,
}

#[derive(Debug, Default)]
struct Counts {
    sent: AtomicU64,
    undelivered: AtomicU64,
    requests: AtomicU64,
}

enum Command {
    /// An event, and whom to tell once its batch was sent (or given up on).
    Event(Box<LogEvent>, oneshot::Sender<()>),
    Flush(oneshot::Sender<()>),
}

/// Sends log events to SQS. Build it once per container.
pub struct SqsLogSink {
    client: Client,
    queue_url: String,
    mode: SinkMode,
    tx: Option<mpsc::UnboundedSender<Command>>,
    counts: Arc<Counts>,
}

impl std::fmt::Debug for SqsLogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsLogSink")
            .field("queue_url", &self.queue_url)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl SqsLogSink {
    /// A sink for `queue_url`. `Batched` starts its task on the current Tokio runtime; outside
    /// one it falls back to `Inline`.
    pub fn new(client: Client, queue_url: impl Into<String>, mode: SinkMode) -> Self {
        let queue_url = queue_url.into();
        let counts = Arc::new(Counts::default());
        let (mode, tx) = match (mode, tokio::runtime::Handle::try_current()) {
            (SinkMode::Batched, Ok(runtime)) => {
                let (tx, rx) = mpsc::unbounded_channel();
                runtime.spawn(run_batches(rx, client.clone(), queue_url.clone(), counts.clone()));
                (SinkMode::Batched, Some(tx))
            }
            (SinkMode::Batched, Err(_)) => {
                tracing::warn!("no Tokio runtime for the batching SQS sink: sending inline");
                (SinkMode::Inline, None)
            }
            (SinkMode::Inline, _) => (SinkMode::Inline, None),
        };
        Self { client, queue_url, mode, tx, counts }
    }

    pub fn mode(&self) -> SinkMode {
        self.mode
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Events the queue took.
    pub fn sent(&self) -> u64 {
        self.counts.sent.load(Ordering::Acquire)
    }

    /// Events the queue did not take, written to the structured log instead.
    pub fn undelivered(&self) -> u64 {
        self.counts.undelivered.load(Ordering::Acquire)
    }

    /// SQS requests made (`SendMessage` and `SendMessageBatch`, each counted once).
    pub fn requests(&self) -> u64 {
        self.counts.requests.load(Ordering::Acquire)
    }

    /// Waits until every event handed to `send` so far has been sent (or given up on).
    pub async fn flush(&self) {
        if let Some(tx) = &self.tx {
            let (done, wait) = oneshot::channel();
            if tx.send(Command::Flush(done)).is_ok() {
                let _ = wait.await;
            }
        }
    }
}

#[async_trait]
impl LogSink for SqsLogSink {
    async fn send(&self, event: LogEvent) {
        match &self.tx {
            Some(tx) => {
                let (sent, wait) = oneshot::channel();
                match tx.send(Command::Event(Box::new(event), sent)) {
                    Ok(()) => {
                        let _ = wait.await;
                    }
                    // The task is gone (the runtime is shutting down): send it here.
                    Err(mpsc::error::SendError(Command::Event(event, _))) => {
                        send_one(&self.client, &self.queue_url, &self.counts, *event).await;
                    }
                    Err(_) => {}
                }
            }
            None => send_one(&self.client, &self.queue_url, &self.counts, event).await,
        }
    }
}

fn undelivered(counts: &Counts, event: &LogEvent, reason: &str) {
    counts.undelivered.fetch_add(1, Ordering::AcqRel);
    write_undelivered(event, reason);
}

async fn send_one(client: &Client, queue_url: &str, counts: &Counts, event: LogEvent) {
    let body = match serde_json::to_string(&event) {
        Ok(body) => body,
        Err(e) => return undelivered(counts, &event, &format!("cannot encode the event: {e}")),
    };
    counts.requests.fetch_add(1, Ordering::AcqRel);
    match client.send_message().queue_url(queue_url).message_body(body).send().await {
        Ok(_) => {
            counts.sent.fetch_add(1, Ordering::AcqRel);
        }
        Err(e) => undelivered(counts, &event, &format!("SQS SendMessage failed: {}", describe(&e))),
    }
}

/// The batching task: waits for a command, takes every event that is ready (up to
/// [`MAX_BATCH`]), sends them, answers flushes once everything before them is sent. Ends when
/// the sink is dropped, after sending what is left.
async fn run_batches(mut rx: mpsc::UnboundedReceiver<Command>, client: Client, queue_url: String, counts: Arc<Counts>) {
    let mut pending: Option<Command> = None;
    loop {
        let first = match pending.take() {
            Some(command) => command,
            None => match rx.recv().await {
                Some(command) => command,
                None => return,
            },
        };
        let (mut batch, mut senders) = match first {
            Command::Flush(done) => {
                let _ = done.send(());
                continue;
            }
            Command::Event(event, sent) => (vec![*event], vec![sent]),
        };
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Command::Event(event, sent)) => {
                    batch.push(*event);
                    senders.push(sent);
                }
                Ok(flush @ Command::Flush(_)) => {
                    pending = Some(flush);
                    break;
                }
                Err(_) => break,
            }
        }
        send_batch(&client, &queue_url, &counts, batch).await;
        for sent in senders {
            let _ = sent.send(());
        }
    }
}

/// The most bytes of message bodies one `SendMessageBatch` carries: SQS refuses a request whose
/// messages sum to more than the queue's maximum message size (`BatchRequestTooLong`: 256 KiB on
/// queues that kept the old default, 1 MiB now), and ten calls with full attempt logs come near
/// the smaller one. Refused, the whole batch would be lost to the undelivered log.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Consecutive groups of messages whose sizes sum to at most `max_bytes` (a message as large alone
/// is a group of its own).
fn size_groups(sizes: &[usize], max_bytes: usize) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, size) in sizes.iter().enumerate() {
        if i > start && bytes + size > max_bytes {
            groups.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        groups.push(start..sizes.len());
    }
    groups
}

async fn send_batch(client: &Client, queue_url: &str, counts: &Counts, events: Vec<LogEvent>) {
    let mut encoded = Vec::with_capacity(events.len());
    for event in events {
        match serde_json::to_string(&event) {
            Ok(body) => encoded.push((body, event)),
            Err(e) => undelivered(counts, &event, &format!("cannot encode the event: {e}")),
        }
    }
    let sizes: Vec<usize> = encoded.iter().map(|(body, _)| body.len()).collect();
    let mut rest = encoded.into_iter();
    for group in size_groups(&sizes, MAX_BATCH_BYTES) {
        let part: Vec<(String, LogEvent)> = rest.by_ref().take(group.len()).collect();
        send_entries(client, queue_url, counts, part).await;
    }
}

/// One `SendMessageBatch` of encoded events (one `SendMessage` for a single event); an entry the
/// queue refused is tried once more on its own.
async fn send_entries(client: &Client, queue_url: &str, counts: &Counts, events: Vec<(String, LogEvent)>) {
    if let [_] = events.as_slice() {
        for (_, event) in events {
            send_one(client, queue_url, counts, event).await;
        }
        return;
    }
    let mut entries = Vec::with_capacity(events.len());
    let mut sent = Vec::with_capacity(events.len());
    for (i, (body, event)) in events.into_iter().enumerate() {
        match SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build() {
            Ok(entry) => {
                entries.push(entry);
                sent.push((i.to_string(), event));
            }
            Err(e) => undelivered(counts, &event, &format!("cannot build a batch entry: {e}")),
        }
    }
    if entries.is_empty() {
        return;
    }
    counts.requests.fetch_add(1, Ordering::AcqRel);
    let result = client.send_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await;
    match result {
        Ok(out) => {
            let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
            for (id, event) in sent {
                if failed.contains(&id.as_str()) {
                    // One more try on its own; a failure there is final.
                    send_one(client, queue_url, counts, event).await;
                } else {
                    counts.sent.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
        Err(e) => {
            let reason = format!("SQS SendMessageBatch failed: {}", describe(&e));
            for (_, event) in sent {
                undelivered(counts, &event, &reason);
            }
        }
    }
}

#[cfg(test)]
mod batch_size_tests {
    use super::*;

    #[test]
    fn batches_split_where_the_bodies_would_pass_the_request_limit() {
        assert_eq!(size_groups(&[10, 10, 10], 30), vec![std::ops::Range { start: 0, end: 3 }]);
        assert_eq!(size_groups(&[10, 10, 11], 30), [0..2, 2..3]);
        assert_eq!(size_groups(&[40, 5, 5, 40], 30), [0..1, 1..3, 3..4], "an oversized body goes alone");
        assert!(size_groups(&[], 30).is_empty());
        // Ten events of 30 KB (full attempt logs): two requests, each under 256 KiB.
        let groups = size_groups(&[30_000; 10], MAX_BATCH_BYTES);
        assert_eq!(groups, [0..8, 8..10]);
    }

    /// Ten events of 120 KB as one batch: as a single request (1.2 MB) SQS would refuse all ten
    /// (`BatchRequestTooLong`); split under 256 KiB, all arrive, in five requests.
    #[tokio::test]
    async fn a_batch_too_large_for_one_request_is_sent_in_several_and_every_event_arrives() {
        let test = "a_batch_too_large_for_one_request_is_sent_in_several_and_every_event_arrives";
        let Some(endpoint) = crate::aws::emulator::test_endpoint(test).unwrap_or_else(|e| panic!("{e}")) else {
            return;
        };
        let client = Client::new(&crate::aws::emulator::sdk_config(&endpoint).await);
        let name = format!("maestro-large-{}", uuid::Uuid::new_v4().simple());
        let created = client.create_queue().queue_name(&name).send().await.expect("create queue");
        let url = created.queue_url().expect("queue url").to_string();
        let events: Vec<LogEvent> = (0..10)
            .map(|i| LogEvent { error_message: Some("x".repeat(120_000)), ..LogEvent::sample(&format!("big-{i}"), 1) })
            .collect();
        let counts = Counts::default();
        send_batch(&client, &url, &counts, events).await;
        let sent = counts.sent.load(Ordering::Acquire);
        let (undelivered, requests) =
            (counts.undelivered.load(Ordering::Acquire), counts.requests.load(Ordering::Acquire));
        assert_eq!((sent, undelivered, requests), (10, 0, 5));
        let attributes = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("attributes");
        let waiting = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages));
        assert_eq!(waiting.map(String::as_str), Some("10"));
        client.delete_queue().queue_url(&url).send().await.expect("delete queue");
    }
}

/// One message taken from the log queue: what the aggregator needs, and the handle to delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub body: String,
    pub receipt_handle: String,
}

/// Reads the log queue the way the SQS event source mapping does for the aggregator Lambda:
/// batches of up to 10 with long polling, deleting only the messages that were processed, so a
/// failed one comes back after the visibility timeout and, after `maxReceiveCount` receives,
/// moves to the dead-letter queue. Used by `maestro serve --backend aws` and the tests.
#[derive(Debug, Clone)]
pub struct QueueConsumer {
    client: Client,
    queue_url: String,
}

impl QueueConsumer {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Up to [`MAX_BATCH`] messages, waiting up to `wait_secs` (0–20) for the first.
    pub async fn receive(&self, wait_secs: i32) -> Result<Vec<ReceivedMessage>, super::AwsError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(i32::try_from(MAX_BATCH).unwrap_or(10))
            .wait_time_seconds(wait_secs.clamp(0, 20))
            .send()
            .await
            .map_err(|e| super::AwsError::Call {
                service: "SQS",
                what: "receive log messages".into(),
                detail: describe(&e),
            })?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                Some(ReceivedMessage {
                    message_id: m.message_id()?.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    receipt_handle: m.receipt_handle()?.to_string(),
                })
            })
            .collect())
    }

    /// Deletes processed messages (one `DeleteMessageBatch` per 10).
    pub async fn delete(&self, done: &[ReceivedMessage]) -> Result<(), super::AwsError> {
        for chunk in done.chunks(MAX_BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, m) in chunk.iter().enumerate() {
                let entry = aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&m.receipt_handle)
                    .build()
                    .map_err(|e| super::AwsError::Config(format!("cannot build a delete entry: {e}")))?;
                entries.push(entry);
            }
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| super::AwsError::Call {
                    service: "SQS",
                    what: "delete processed log messages".into(),
                    detail: describe(&e),
                })?;
            // A message not deleted comes back and is recognised as a duplicate: no harm.
            for failed in out.failed() {
                tracing::warn!(entry = failed.id(), code = failed.code(), "a processed log message was not deleted");
            }
        }
        Ok(())
    }
}

/// Settled credit charges to the platform's SQS queue (`MAESTRO_CREDITS_EVENTS_QUEUE_URL`), one
/// JSON message per event, sent before the call's answer leaves (a Lambda container may freeze
/// right after). A message the queue does not take after the SDK's retries is written to the
/// structured log (`undelivered_charge`); the ledger holds the charge either way.
pub struct SqsChargeSink {
    client: Client,
    queue_url: String,
}

impl SqsChargeSink {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

#[async_trait]
impl crate::credits::ChargeSink for SqsChargeSink {
    async fn send(&self, event: crate::credits::ChargeEvent) {
        let Ok(body) = serde_json::to_string(&event) else { return };
        if let Err(e) = self.client.send_message().queue_url(&self.queue_url).message_body(&body).send().await {
            tracing::error!(undelivered_charge = %body, error = %describe(&e), "charge event not delivered; the ledger holds it");
        }
    }
}
