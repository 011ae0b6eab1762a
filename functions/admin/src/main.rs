//! The admin Lambda (`maestro-admin`): the admin router of the local runner behind the HTTP API.
//! In AWS the API's JWT authorizer verifies the token and this function checks the role claim
//! (`MAESTRO_ADMIN_AUTH=authorizer`); with `MAESTRO_JWT_SECRET` it verifies HS256 tokens itself.
//! The admin console's files and the API's OpenAPI document are served without a token.

use lambda_http::{Error, run};
use maestro_admin::{AdminState, AlertsState, lambda_app};
use maestro_lambda_common::aws::{backend, gateway, startup_error};
use maestro_lambda_common::{AdminAuth, Env, init_tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let env = Env::process();
    let auth = AdminAuth::from_env(&env).map_err(startup_error)?;
    let options = env.gateway_options().map_err(startup_error)?;
    let aws = backend().await?;
    let state = AdminState::new(gateway(&aws, options, &env)?, auth.verifier(), aws.dynamo.clone(), aws.dynamo.clone())
        .map_err(startup_error)?
        .with_alerts(AlertsState {
            alerts: aws.dynamo.clone(),
            secrets: aws.secrets.clone(),
            email: env.alerting().map_err(startup_error)?.ses_sender(&aws.sdk).map_err(startup_error)?,
        });
    tracing::info!(auth = auth.mode(), "admin function ready");
    run(lambda_app(state, &auth)).await
}
