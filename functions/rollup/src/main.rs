//! The roll-up Lambda (`maestro-rollup`), invoked by an EventBridge schedule: ends passed key
//! cool-downs.

use lambda_runtime::{Error, run, service_fn};
use maestro_lambda_common::aws::dynamo;
use maestro_lambda_common::init_tracing;
use maestro_rollup::handle;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let dynamo = dynamo().await?;
    let store = dynamo.as_ref();
    run(service_fn(move |event| handle(store, event))).await
}
