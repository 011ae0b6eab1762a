//! The AWS backends (DynamoDB, SQS, Secrets Manager) behind the store traits, built once per
//! container from `MAESTRO_TABLE`, `MAESTRO_LOG_QUEUE_URL`, `MAESTRO_SECRET_PREFIX` and the
//! SDK's default chain (see `maestro_shared::aws`).

use std::sync::Arc;

use maestro_shared::aws::AwsBackend;
use maestro_shared::gateway::{Backends, Gateway, GatewayOptions};
use maestro_shared::providers::ProviderClient;
use maestro_shared::store::caller_keys::{CALLER_KEY_CACHE_TTL, CachedCallerKeys};

/// Logs why the container cannot start and turns it into the runtime's error, so Lambda reports
/// an init failure with the reason in the function's log.
pub fn startup_error(e: impl std::fmt::Display) -> lambda_http::Error {
    tracing::error!(error = %e, "cannot start");
    e.to_string().into()
}

/// The AWS clients and stores.
pub async fn backend() -> Result<AwsBackend, lambda_http::Error> {
    AwsBackend::from_env().await.map_err(startup_error)
}

/// The DynamoDB store alone (stats, roll-up), from the environment.
pub async fn dynamo() -> Result<Arc<maestro_shared::aws::DynamoStore>, lambda_http::Error> {
    maestro_shared::aws::dynamo_from_env().await.map_err(startup_error)
}

/// The gateway on the AWS backends, with one shared HTTP client for every provider; users'
/// credits on DynamoDB when `credits` (`MAESTRO_CREDITS=on`).
pub fn gateway(aws: &AwsBackend, options: GatewayOptions, credits: bool) -> Result<Arc<Gateway>, lambda_http::Error> {
    let backends = Backends {
        catalog: aws.dynamo.clone(),
        counters: aws.dynamo.clone(),
        secrets: aws.secrets.clone(),
        log_sink: aws.log_sink.clone(),
        // Look-ups by hash are cached per container for 30 s: a revocation reaches every
        // container within that time.
        caller_keys: Arc::new(CachedCallerKeys::new(aws.dynamo.clone(), CALLER_KEY_CACHE_TTL)),
        credits: credits.then(|| aws.dynamo.clone() as Arc<dyn maestro_shared::store::CreditStore>),
    };
    let client = ProviderClient::new().map_err(startup_error)?;
    Ok(Arc::new(Gateway::new(backends, client, options)))
}
