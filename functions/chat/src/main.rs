//! The chat Lambda (`maestro-chat`): the chat router of the local runner, served behind a Function
//! URL in `RESPONSE_STREAM` mode so `stream: true` answers flow as they come. The function checks
//! every caller itself: a JWT (HS256 with `MAESTRO_JWT_SECRET`, or RS256/ES256 with the keys at
//! `MAESTRO_JWKS_URL`) or a Maestro API key (looked up by hash, cached 30 s per container).
//! Every call ends `MAESTRO_INVOCATION_MARGIN_SECS` before the invocation's deadline, so a
//! stream cut short is still ended in-band and recorded before the function times out.

use lambda_http::{Error, run_with_streaming_response};
use maestro_chat::{ChatState, router, with_invocation_deadline};
use maestro_lambda_common::aws::{backend, gateway, startup_error};
use maestro_lambda_common::{Env, init_tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let env = Env::process();
    let auth = env.required_jwt_auth().map_err(startup_error)?;
    let max_body_bytes = env.max_body_bytes().map_err(startup_error)?;
    let options = env.gateway_options().map_err(startup_error)?;
    let margin = env.invocation_margin().map_err(startup_error)?;
    let aws = backend().await?;
    let state = ChatState { gateway: gateway(&aws, options, &env)?, auth, max_body_bytes };
    let cors = env.cors_origins().map_err(startup_error)?;
    let app = with_invocation_deadline(router(state), margin).fallback(maestro_shared::http::not_found);
    // Gzip bodies, the announced-length check and CORS, as on the local runner.
    let app = maestro_shared::edges::apply(app, max_body_bytes, &cors);
    run_with_streaming_response(app).await
}
