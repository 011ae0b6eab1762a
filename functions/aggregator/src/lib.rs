//! The aggregator: turns queued log events into call logs and daily stats, exactly once per
//! event. The SQS Lambda and the local runner's in-process queue both feed it messages.

pub mod lambda;

pub use lambda::handle;

use std::future::Future;
use std::time::Duration;

use maestro_shared::logs::{LOG_EVENT_VERSION, LogEvent};
use maestro_shared::store::{StatsStore, StoreError};
use tracing::Instrument;

/// Attempts at a write the store reports as busy or unavailable before the message goes back to
/// the queue (which delivers it again only after its visibility timeout). The store has retried
/// each one already; these waits span a longer moment of throttling.
const BUSY_ATTEMPTS: u32 = 3;
/// The first wait's upper bound (full jitter); it doubles for each later attempt.
const BUSY_FIRST_WAIT: Duration = Duration::from_millis(100);

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
    Ok(event.bounded())
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
    match while_busy("record a log event", || store.record_event(&event)).await {
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
    let outcomes = process_batch_outcomes(store, messages).await;
    messages.iter().zip(outcomes).filter(|(_, o)| o.is_failure()).map(|(m, _)| m.id.clone()).collect()
}

/// Records a batch in one store call where the store can (one transaction in the embedded
/// store), and says what became of each message, in order. If the batch as a whole fails, the
/// messages are recorded one by one, so one bad event fails alone.
pub async fn process_batch_outcomes(store: &dyn StatsStore, messages: &[Message]) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; messages.len()];
    let mut events = Vec::with_capacity(messages.len());
    let mut positions = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        match parse_event(&message.body) {
            Ok(event) => {
                events.push(event);
                positions.push(i);
            }
            Err(reason) => {
                tracing::error!(message_id = %message.id, %reason, "poison log message");
                outcomes[i] = Some(Outcome::Poison(reason));
            }
        }
    }
    match while_busy("record a batch of log events", || store.record_events(&events)).await {
        Ok(recorded) => {
            for (&i, new) in positions.iter().zip(recorded) {
                outcomes[i] = Some(if new { Outcome::Recorded } else { Outcome::Duplicate });
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "batch write failed; recording message by message");
            for &i in &positions {
                let span = tracing::info_span!("log_message", message_id = %messages[i].id);
                outcomes[i] = Some(process_message(store, &messages[i]).instrument(span).await);
            }
        }
    }
    outcomes.into_iter().map(|o| o.unwrap_or_else(|| Outcome::Failed("not processed".to_string()))).collect()
}

/// Runs a store write, trying again with backoff (full jitter) while the store is busy or
/// unavailable, [`BUSY_ATTEMPTS`] times in all. Safe for log events: a repeated write is
/// recognised by its request id and counts once.
async fn while_busy<T, F, Fut>(what: &str, mut write: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut bound = BUSY_FIRST_WAIT;
    let mut attempt = 1;
    loop {
        match write().await {
            Err(StoreError::Unavailable(detail)) if attempt < BUSY_ATTEMPTS => {
                tracing::warn!(%detail, attempt, "{what}: store busy or unavailable; trying again");
                let ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
                tokio::time::sleep(Duration::from_millis(random_up_to(ms))).await;
                bound *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A random number in `0..=max` from the standard library's randomly keyed hasher (no extra
/// crate for one jitter).
fn random_up_to(max: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    random % max.saturating_add(1)
}
