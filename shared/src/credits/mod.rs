//! Settled charges as events for the platform that mirrors credits into its own points: every
//! settled call's charge, once, as a `credit.charge` event ([`ChargeEvent`]) to a
//! [`ChargeSink`] — a webhook on the local runner ([`WebhookSink`]), an SQS queue on AWS
//! (`aws::sqs::SqsChargeSink`). Delivery is at least once: an event's `id` is its ledger entry's,
//! so a receiver drops what it has seen; the ledger API stays the record to reconcile against.

mod webhook;

pub use webhook::{WebhookSink, signature};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One settled charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeEvent {
    /// Always `credit.charge`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The ledger entry's id (`charge-<request id>`): the same for a redelivered event.
    pub id: String,
    pub user_id: String,
    /// What the balance was charged, micro-USD (the cost times the model's markup).
    pub charge_micro_usd: i64,
    /// The provider's cost at the catalog's prices, micro-USD.
    pub cost_micro_usd: u64,
    /// `provider/model` that served the call.
    pub model: String,
    /// The call's request id (`x-request-id`, the call log's `request_id`).
    pub call_id: String,
    /// When the call started, unix ms.
    pub ts_ms: i64,
}

impl ChargeEvent {
    pub const TYPE: &'static str = "credit.charge";
}

/// Where settled charges go.
#[async_trait]
pub trait ChargeSink: Send + Sync {
    /// Hands the event over; failures are the sink's to retry and log.
    async fn send(&self, event: ChargeEvent);
}
