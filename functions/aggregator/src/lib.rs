//! The aggregator: turns queued log events into call logs and daily stats, exactly once per
//! event. The SQS Lambda and the local runner's in-process queue both feed it messages.

pub mod lambda;

pub use lambda::handle;

use maestro_shared::logs::{LOG_EVENT_VERSION, LogEvent};
use maestro_shared::store::StatsStore;
use tracing::Instrument;

/// One queued message: its id (for `batchItemFailures`) and its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub body: String,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Recorded,
    /// Already recorded earlier (a redelivery): nothing changed.
    Duplicate,
    /// Not a log event Maestro can read; retrying will not help (it ends in the DLQ).
    Poison(String),
    /// The store failed; retrying may help.
    Failed(String),
}

impl Outcome {
    /// Whether the queue should deliver the message again.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Poison(_) | Self::Failed(_))
    }
}

/// Parses a message body, refusing event versions this build does not know.
pub fn parse_event(body: &str) -> Result<LogEvent, String> {
    let event: LogEvent = serde_json::from_str(body).map_err(|e| format!("not a log event: {e}"))?;
    if event.v != LOG_EVENT_VERSION {
        return Err(format!("log event version {} is not supported (expected {LOG_EVENT_VERSION})", event.v));
    }
    Ok(event)
}

/// Records one message.
pub async fn process_message(store: &dyn StatsStore, message: &Message) -> Outcome {
    let event = match parse_event(&message.body) {
        Ok(e) => e,
        Err(reason) => {
            tracing::error!(message_id = %message.id, %reason, "poison log message");
            return Outcome::Poison(reason);
        }
    };
    match store.record_event(&event).await {
        Ok(true) => Outcome::Recorded,
        Ok(false) => {
            tracing::info!(message_id = %message.id, request_id = %event.request_id, "duplicate log event ignored");
            Outcome::Duplicate
        }
        Err(e) => {
            tracing::error!(message_id = %message.id, request_id = %event.request_id, error = %e, "recording log event failed");
            Outcome::Failed(e.to_string())
        }
    }
}

/// Records a batch message by message; one bad message never fails the others. Returns the ids
/// of the messages to deliver again.
pub async fn process_batch(store: &dyn StatsStore, messages: &[Message]) -> Vec<String> {
    let mut failed = Vec::new();
    for message in messages {
        let span = tracing::info_span!("log_message", message_id = %message.id);
        if process_message(store, message).instrument(span).await.is_failure() {
            failed.push(message.id.clone());
        }
    }
    failed
}
