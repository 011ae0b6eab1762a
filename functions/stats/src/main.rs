//! The stats Lambda (`maestro-stats`): the stats router of the local runner behind the HTTP API,
//! reading daily stats and call logs from DynamoDB. Authentication as in the admin function.

use lambda_http::{Error, run};
use maestro_lambda_common::aws::{dynamo, startup_error};
use maestro_lambda_common::{AdminAuth, Env, init_tracing};
use maestro_stats::{StatsState, router};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let env = Env::process();
    let auth = AdminAuth::from_env(&env).map_err(startup_error)?;
    let dynamo = dynamo().await?;
    let state = StatsState { store: dynamo.clone(), catalog: dynamo.clone(), counters: dynamo, auth: auth.verifier() };
    tracing::info!(auth = auth.mode(), "stats function ready");
    run(auth.wrap(router(state).fallback(maestro_shared::http::not_found))).await
}
