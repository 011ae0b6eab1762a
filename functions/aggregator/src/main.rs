//! The aggregator Lambda (`maestro-aggregator`): SQS batches of log events into call logs and
//! daily stats in DynamoDB, reporting failed messages one by one (`ReportBatchItemFailures`).

use lambda_runtime::{Error, run, service_fn};
use maestro_aggregator::handle;
use maestro_lambda_common::aws::backend;
use maestro_lambda_common::init_tracing;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let aws = backend().await?;
    let store = aws.dynamo.as_ref();
    run(service_fn(move |event| handle(store, event))).await
}
