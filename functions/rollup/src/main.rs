//! The roll-up Lambda (`maestro-rollup`), invoked by an EventBridge schedule: recomputes the day
//! and provider summaries of the last `MAESTRO_ROLLUP_DAYS` days and ends passed key cool-downs.

use lambda_runtime::{Error, run, service_fn};
use maestro_lambda_common::aws::{dynamo, startup_error};
use maestro_lambda_common::{Env, init_tracing};
use maestro_rollup::{handle, options_from_env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let options = options_from_env(&Env::process()).map_err(startup_error)?;
    let dynamo = dynamo().await?;
    let store = dynamo.as_ref();
    run(service_fn(move |event| handle(store, store, options, event))).await
}
