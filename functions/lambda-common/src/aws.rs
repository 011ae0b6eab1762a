//! The AWS backends (DynamoDB, SQS, Secrets Manager) behind the store traits, built once per
//! container from `MAESTRO_TABLE`, `MAESTRO_LOG_QUEUE_URL`, `MAESTRO_SECRET_PREFIX` and the
//! SDK's default chain (see `maestro_shared::aws`).

use std::sync::Arc;

use maestro_shared::aws::AwsBackend;
use maestro_shared::aws::sqs::SqsChargeSink;
use maestro_shared::config::Env;
use maestro_shared::credits::ChargeSink;
use maestro_shared::gateway::{Backends, Credits, Gateway, GatewayOptions};
use maestro_shared::logs::LogSink;
use maestro_shared::metrics::ObservedSink;
use maestro_shared::metrics::emf::{self, EmfWriter};
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
/// credits on DynamoDB with `MAESTRO_CREDITS=on`, their settled charges to
/// `MAESTRO_CREDITS_EVENTS_QUEUE_URL` when set.
pub fn gateway(aws: &AwsBackend, options: GatewayOptions, env: &Env) -> Result<Arc<Gateway>, lambda_http::Error> {
    let credits = env.credits_enabled().map_err(startup_error)?;
    let events_queue = env.get("MAESTRO_CREDITS_EVENTS_QUEUE_URL");
    let backends = Backends {
        catalog: aws.dynamo.clone(),
        counters: aws.dynamo.clone(),
        secrets: aws.secrets.clone(),
        // One EMF line per call on stdout, for CloudWatch metrics and alarms (on Lambda).
        log_sink: emf_sink(aws.log_sink.clone(), env, std::io::stdout())?,
        // Look-ups by hash are cached per container for 30 s: a revocation reaches every
        // container within that time.
        caller_keys: Arc::new(CachedCallerKeys::new(aws.dynamo.clone(), CALLER_KEY_CACHE_TTL)),
        credits: credits.then(|| Credits {
            store: aws.dynamo.clone(),
            // Settled charges to the platform's queue, when there is one.
            events: events_queue.map(|url| Arc::new(SqsChargeSink::new(aws.sqs.clone(), url)) as Arc<dyn ChargeSink>),
        }),
        response_cache: aws.dynamo.clone(),
    };
    let client = ProviderClient::new().map_err(startup_error)?;
    // `fastest` routes seed their latencies from the stats rows of the same table.
    Ok(Arc::new(Gateway::new(backends, client, options).with_latency_source(aws.dynamo.clone())))
}

/// `sink`, with each call's CloudWatch Embedded Metric Format line written to `out` first where
/// `MAESTRO_EMF` (`1`/`0`) or, unset, running on Lambda says so. The function that serves a call
/// prints its line: the aggregator prints none, so no call is counted twice.
pub fn emf_sink(
    sink: Arc<dyn LogSink>,
    env: &Env,
    out: impl std::io::Write + Send + 'static,
) -> Result<Arc<dyn LogSink>, lambda_http::Error> {
    Ok(match emf::enabled(env).map_err(startup_error)? {
        true => ObservedSink::wrap(sink, Arc::new(EmfWriter::to(out))),
        false => sink,
    })
}
