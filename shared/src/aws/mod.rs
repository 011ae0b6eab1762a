//! The AWS backend: DynamoDB for the catalog, the rate-limit windows, call logs and daily stats
//! ([`DynamoStore`]), SQS for log events ([`SqsLogSink`]) and Secrets Manager for provider key
//! secrets ([`SecretsManagerStore`]). [`AwsBackend::from_env`] builds all of it once per process
//! or Lambda container; handlers only ever see the store traits.
//!
//! Configuration, read once by [`AwsConfig::from_env`]:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `MAESTRO_TABLE` | `maestro` ([`provision::DEFAULT_TABLE`]) | the single DynamoDB table |
//! | `MAESTRO_LOG_QUEUE_URL` | the URL of the queue named `maestro-logs` ([`provision::LOG_QUEUE_NAME`]), looked up once with `GetQueueUrl` | where log events go |
//! | `MAESTRO_SECRET_PREFIX` | `maestro/keys/` | the name prefix of key secrets in Secrets Manager |
//!
//! Region, credentials and endpoint come from the SDK's default chain
//! (`aws_config::defaults(BehaviorVersion::latest())`): `AWS_REGION`, `AWS_PROFILE`, the Lambda
//! role, and `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_DYNAMODB` etc.) for an emulator.

pub mod dynamo;
pub mod emulator;
pub mod provision;
pub mod secrets;
pub mod sqs;

use std::fmt::Debug;
use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::config::Env;

pub use dynamo::DynamoStore;
pub use secrets::SecretsManagerStore;
pub use sqs::{QueueConsumer, ReceivedMessage, SinkMode, SqsLogSink};

/// Environment variable naming the DynamoDB table.
pub const ENV_TABLE: &str = "MAESTRO_TABLE";
/// Environment variable with the log queue's URL.
pub const ENV_LOG_QUEUE_URL: &str = "MAESTRO_LOG_QUEUE_URL";
/// Environment variable with the Secrets Manager name prefix of key secrets.
pub const ENV_SECRET_PREFIX: &str = "MAESTRO_SECRET_PREFIX";
/// Default name prefix of key secrets: a key's secret is `maestro/keys/<key id>`.
pub const DEFAULT_SECRET_PREFIX: &str = "maestro/keys/";

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("AWS configuration: {0}")]
    Config(String),
    #[error("AWS {service}: cannot {what}: {detail}")]
    Call { service: &'static str, what: String, detail: String },
    /// Throttled or unavailable (5xx, timeout, connection lost): the same call may pass later.
    #[error("AWS {service} busy or unavailable: cannot {what}: {detail}")]
    Unavailable { service: &'static str, what: String, detail: String },
}

impl AwsError {
    /// A failed SDK call: [`AwsError::Unavailable`] when trying again may help, else [`AwsError::Call`].
    pub(crate) fn from_sdk<E>(service: &'static str, what: &str, err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (what, detail) = (what.to_string(), describe(err));
        match fault_of(err) {
            Fault::Fatal => Self::Call { service, what, detail },
            Fault::Busy | Fault::MaybeApplied => Self::Unavailable { service, what, detail },
        }
    }
}

/// Error codes of a service (or table) that is busy: the request was refused, nothing was done.
const BUSY_CODES: [&str; 9] = [
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionInProgressException",
    "RequestThrottled",
    "TooManyRequestsException",
    "AWS.SimpleQueueService.RequestThrottled",
];

/// What a failed call tells about trying it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Throttled or in conflict: refused, nothing done; trying again may pass.
    Busy,
    /// A 5xx, a timeout, a connection lost: trying again may pass, and the call may have been
    /// carried out already.
    MaybeApplied,
    /// Anything else: trying again will not help.
    Fatal,
}

/// Sorts a failed SDK call (of any of the AWS clients).
pub(crate) fn fault_of<E>(err: &SdkError<E, HttpResponse>) -> Fault
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) if service.err().code().is_some_and(|c| BUSY_CODES.contains(&c)) => Fault::Busy,
        SdkError::ServiceError(service) if service.raw().status().as_u16() >= 500 => Fault::MaybeApplied,
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Fault::MaybeApplied,
        SdkError::DispatchFailure(dispatch) if !dispatch.is_user() => Fault::MaybeApplied,
        _ => Fault::Fatal,
    }
}

/// Where the AWS backend keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    pub table: String,
    /// Empty means: look the URL of [`provision::LOG_QUEUE_NAME`] up when connecting.
    pub log_queue_url: String,
    pub secret_prefix: String,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            table: provision::DEFAULT_TABLE.to_string(),
            log_queue_url: String::new(),
            secret_prefix: DEFAULT_SECRET_PREFIX.to_string(),
        }
    }
}

impl AwsConfig {
    /// Reads `MAESTRO_TABLE`, `MAESTRO_LOG_QUEUE_URL` and `MAESTRO_SECRET_PREFIX` from the
    /// process environment; unset or blank variables take the defaults.
    pub fn from_env() -> Self {
        Self::from(&Env::process())
    }
}

impl From<&Env> for AwsConfig {
    /// `MAESTRO_TABLE`, `MAESTRO_LOG_QUEUE_URL` and `MAESTRO_SECRET_PREFIX` as `env` holds them.
    fn from(env: &Env) -> Self {
        let defaults = Self::default();
        Self {
            table: env.get(ENV_TABLE).unwrap_or(defaults.table),
            log_queue_url: env.get(ENV_LOG_QUEUE_URL).unwrap_or(defaults.log_queue_url),
            secret_prefix: env.get(ENV_SECRET_PREFIX).unwrap_or(defaults.secret_prefix),
        }
    }
}

/// Everything the AWS backend needs, built once per process or Lambda container: the SDK
/// clients (which hold the connection pools) and the stores over them.
#[derive(Clone)]
pub struct AwsBackend {
    pub config: AwsConfig,
    /// The SDK configuration the clients were built from (SES for e-mail alerts uses it too).
    pub sdk: SdkConfig,
    pub dynamo: Arc<DynamoStore>,
    pub secrets: Arc<SecretsManagerStore>,
    pub log_sink: Arc<SqsLogSink>,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
}

impl Debug for AwsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsBackend").field("config", &self.config).finish_non_exhaustive()
    }
}

impl AwsBackend {
    /// Loads the SDK configuration from the default chain (honouring `AWS_ENDPOINT_URL`) and
    /// the table, queue and prefix from the environment ([`AwsConfig::from_env`]). Inside Lambda
    /// (`AWS_LAMBDA_FUNCTION_NAME` set) the log sink sends inline ([`SinkMode::Inline`]), since
    /// a frozen container would hold a background task's events; elsewhere it batches.
    pub async fn from_env() -> Result<Self, AwsError> {
        let sdk = sdk_config_from_env().await;
        let mode =
            if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() { SinkMode::Inline } else { SinkMode::Batched };
        Self::connect(&sdk, AwsConfig::from_env(), mode).await
    }

    /// Builds the clients from `sdk` and the stores over them. Looks the log queue's URL up
    /// (`GetQueueUrl`) only when `config.log_queue_url` is empty.
    pub async fn connect(sdk: &SdkConfig, mut config: AwsConfig, mode: SinkMode) -> Result<Self, AwsError> {
        if sdk.region().is_none() {
            return Err(AwsError::Config("no AWS region: set AWS_REGION (or a profile with a region)".into()));
        }
        if config.table.trim().is_empty() {
            return Err(AwsError::Config(format!("{ENV_TABLE} is empty")));
        }
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let secretsmanager = aws_sdk_secretsmanager::Client::new(sdk);
        if config.log_queue_url.is_empty() {
            // A throttled or unavailable SQS at start is waited out (bounded), not fatal.
            let found = crate::bootstrap::patiently(
                "look up the log queue",
                crate::bootstrap::STARTUP_PATIENCE,
                |e: &AwsError| matches!(e, AwsError::Unavailable { .. }),
                || provision::queue_url(&sqs, provision::LOG_QUEUE_NAME),
            )
            .await?;
            config.log_queue_url = found.ok_or_else(|| {
                AwsError::Config(format!(
                    "{ENV_LOG_QUEUE_URL} is not set and there is no queue named {}; run `maestro init-aws`",
                    provision::LOG_QUEUE_NAME
                ))
            })?;
        }
        let dynamo = Arc::new(DynamoStore::new(dynamodb.clone(), config.table.clone()));
        let secrets = Arc::new(SecretsManagerStore::new(secretsmanager.clone(), config.secret_prefix.clone()));
        let log_sink = Arc::new(SqsLogSink::new(sqs.clone(), config.log_queue_url.clone(), mode));
        Ok(Self { config, sdk: sdk.clone(), dynamo, secrets, log_sink, dynamodb, sqs, secretsmanager })
    }
}

/// The DynamoDB store alone, for functions that read and write nothing else (stats, roll-up):
/// without the SQS and Secrets Manager clients their bootstraps are smaller, and they need no
/// queue URL. The table comes from `MAESTRO_TABLE` as in [`AwsBackend::from_env`].
pub async fn dynamo_from_env() -> Result<Arc<DynamoStore>, AwsError> {
    let sdk = sdk_config_from_env().await;
    if sdk.region().is_none() {
        return Err(AwsError::Config("no AWS region: set AWS_REGION (or a profile with a region)".into()));
    }
    let table = AwsConfig::from_env().table;
    if table.trim().is_empty() {
        return Err(AwsError::Config(format!("{ENV_TABLE} is empty")));
    }
    Ok(Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table)))
}

/// What the roll-up needs: DynamoDB (catalog, stats, alerts), Secrets Manager (alert channels'
/// URLs and secrets) and the SDK configuration (SES for e-mail alerts); no queue.
pub async fn rollup_from_env() -> Result<(SdkConfig, Arc<DynamoStore>, Arc<SecretsManagerStore>), AwsError> {
    let sdk = sdk_config_from_env().await;
    let dynamo = dynamo_from_env().await?;
    let prefix = AwsConfig::from_env().secret_prefix;
    let secrets = Arc::new(SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(&sdk), prefix));
    Ok((sdk, dynamo, secrets))
}

/// The SDK configuration from the default chain: region, credentials, and `AWS_ENDPOINT_URL`
/// (or a per-service `AWS_ENDPOINT_URL_<SERVICE>`) for an emulator.
pub async fn sdk_config_from_env() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

impl AwsBackend {
    /// A reader of the log queue (for an in-process aggregator).
    pub fn log_queue_consumer(&self) -> QueueConsumer {
        QueueConsumer::new(self.sqs.clone(), self.config.log_queue_url.clone())
    }
}

/// What went wrong in an SDK call, for an error message: the service's error code and message,
/// or the transport failure. Never the request (which may hold a secret value): SDK errors carry
/// the response, and only its code and message are used here.
pub(crate) fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: Debug,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => "the service answered with an error".to_string(),
            }
        }
        SdkError::TimeoutError(_) => "timed out".to_string(),
        // Dispatch, response and construction failures: the transport's own words.
        _ => DisplayErrorContext(err).to_string(),
    }
}

/// The service's error code of a failed call, if the service answered.
pub(crate) fn error_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_the_environment_and_falls_back_to_defaults() {
        let none = AwsConfig::from(&Env::from_pairs(&[]));
        assert_eq!(none, AwsConfig::default());
        assert_eq!((none.table.as_str(), none.secret_prefix.as_str()), ("maestro", "maestro/keys/"));

        let env = Env::from_pairs(&[
            (ENV_TABLE, "maestro-prod"),
            (ENV_LOG_QUEUE_URL, " https://sqs.eu-west-1.amazonaws.com/1/logs "),
            (ENV_SECRET_PREFIX, ""),
        ]);
        let set = AwsConfig::from(&env);
        assert_eq!(
            set,
            AwsConfig {
                table: "maestro-prod".into(),
                log_queue_url: "https://sqs.eu-west-1.amazonaws.com/1/logs".into(),
                secret_prefix: "maestro/keys/".into(),
            }
        );
    }
}
