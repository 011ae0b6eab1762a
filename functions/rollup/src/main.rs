//! The roll-up Lambda (`maestro-rollup`), invoked by an EventBridge schedule: ends passed key
//! cool-downs and evaluates the alert rules.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Error, run, service_fn};
use maestro_lambda_common::aws::startup_error;
use maestro_lambda_common::init_tracing;
use maestro_rollup::handle;
use maestro_shared::alerts::engine::AlertEngine;
use maestro_shared::alerts::setup::StoredChannels;
use maestro_shared::config::Env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let (sdk, dynamo, secrets) = maestro_shared::aws::rollup_from_env().await.map_err(startup_error)?;
    let alerting = Env::process().alerting().map_err(startup_error)?;
    let email = alerting.ses_sender(&sdk).map_err(startup_error)?;
    let engine = AlertEngine {
        alerts: dynamo.clone(),
        stats: dynamo.clone(),
        catalog: dynamo.clone(),
        // A warm container reads the channels again after a minute: admin edits apply.
        notifier: Arc::new(StoredChannels::new(dynamo.clone(), secrets, email, Duration::from_secs(60))),
        config: alerting,
        holder: format!("rollup-{}", uuid_like()),
    };
    let (store, engine) = (dynamo.as_ref(), &engine);
    run(service_fn(move |event| handle(store, Some(engine), event))).await
}

/// This container's name for the alert lease: its start time and process id.
fn uuid_like() -> String {
    format!("{}-{}", maestro_shared::time::now_ms(), std::process::id())
}
