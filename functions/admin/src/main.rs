//! The admin Lambda (`maestro-admin`): the admin router of the local runner behind the HTTP API.
//! In AWS the API's JWT authorizer verifies the token and this function checks the role claim
//! (`MAESTRO_ADMIN_AUTH=authorizer`); with `MAESTRO_JWT_SECRET` it verifies HS256 tokens itself.

use lambda_http::{Error, run};
use maestro_admin::{AdminState, router};
use maestro_lambda_common::aws::{backend, gateway, startup_error};
use maestro_lambda_common::{AdminAuth, Env, init_tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let env = Env::process();
    let auth = AdminAuth::from_env(&env).map_err(startup_error)?;
    let options = env.gateway_options().map_err(startup_error)?;
    let aws = backend().await?;
    let state = AdminState::new(gateway(&aws, options)?, auth.verifier(), aws.dynamo.clone()).map_err(startup_error)?;
    tracing::info!(auth = auth.mode(), "admin function ready");
    // The document of the HTTP API this function is behind (admin and stats routes), open to
    // anyone who can reach it, like any API description.
    let spec = maestro_admin::http_api_openapi();
    let app = auth
        .wrap(router(state).fallback(maestro_shared::http::not_found))
        .route("/openapi.json", axum::routing::get(move || std::future::ready(axum::Json(spec.clone()))));
    run(app).await
}
