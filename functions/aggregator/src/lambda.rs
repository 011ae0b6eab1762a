//! The SQS-triggered Lambda handler: one batch of queued log events in, the ids of the messages
//! to deliver again out (`batchItemFailures`, with `ReportBatchItemFailures` on the event source
//! mapping). One bad message never fails the batch: it is reported alone and, after the queue's
//! `maxReceiveCount`, lands in the dead-letter queue.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use maestro_shared::store::StatsStore;

use crate::{Message, process_batch};

/// Records every message of the batch and reports the failed ones by message id. Never fails as
/// a whole: a store outage fails each message (and they come back), not the invocation.
pub async fn handle(store: &dyn StatsStore, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let records = event.payload.records;
    let mut messages = Vec::with_capacity(records.len());
    for record in records {
        match record.message_id {
            Some(id) if !id.is_empty() => messages.push(Message { id, body: record.body.unwrap_or_default() }),
            // Real SQS events always carry an id; without one the message cannot be reported,
            // so it is logged (and deleted with the batch) rather than failing its neighbours.
            _ => tracing::error!(body = record.body.as_deref().unwrap_or_default(), "SQS record without a message id"),
        }
    }
    let failed = process_batch(store, &messages).await;
    tracing::info!(
        request_id = %event.context.request_id,
        messages = messages.len(),
        failed = failed.len(),
        "log batch processed"
    );
    let mut response = SqsBatchResponse::default();
    response.set_failures(failed);
    Ok(response)
}
