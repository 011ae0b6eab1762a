//! The AWS resources Maestro needs, defined once: `maestro init-aws` creates them from these
//! constants, and `template.yaml` must mirror them exactly.
//!
//! **DynamoDB table** (name from `MAESTRO_TABLE`, default [`DEFAULT_TABLE`]):
//!
//! | setting | value |
//! |---|---|
//! | billing | `PAY_PER_REQUEST` (on demand) |
//! | attribute definitions | `pk`, `sk`, `gsi1pk`, `gsi1sk`, `gsi2pk`, `gsi2sk`, all `S` |
//! | key schema | `pk` HASH, `sk` RANGE |
//! | GSI `gsi1` (call logs per user) | `gsi1pk` HASH (`USER#<id>`), `gsi1sk` RANGE (`<ts>#<request id>`), projection `ALL` |
//! | GSI `gsi2` (call logs per provider) | `gsi2pk` HASH (`PROVIDERLOG#<code>#<shard>`), `gsi2sk` RANGE (`<ts>#<request id>`), projection `ALL` |
//! | TTL | enabled on `expires_at` (epoch seconds) |
//!
//! In SAM: `AWS::DynamoDB::Table` with `BillingMode: PAY_PER_REQUEST`, the six
//! `AttributeDefinitions`, `KeySchema` pk/sk, two `GlobalSecondaryIndexes` named `gsi1` and `gsi2`
//! with `Projection: {ProjectionType: ALL}`, and
//! `TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}`.
//!
//! **SQS queues**: the log queue [`LOG_QUEUE_NAME`] with `VisibilityTimeout`
//! [`LOG_QUEUE_VISIBILITY_TIMEOUT_SECS`] (≥ 6× the aggregator's timeout, which must therefore be
//! at most 30 s), `MessageRetentionPeriod` [`LOG_QUEUE_RETENTION_SECS`], and a `RedrivePolicy`
//! to the dead-letter queue [`LOG_DLQ_NAME`] with `maxReceiveCount` [`MAX_RECEIVE_COUNT`]; the
//! DLQ keeps messages [`LOG_DLQ_RETENTION_SECS`]. The aggregator's event source mapping should
//! use `FunctionResponseTypes: [ReportBatchItemFailures]` and `BatchSize: 10`.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_sqs::types::QueueAttributeName;

use aws_sdk_dynamodb::config::http::HttpResponse;

use super::{AwsError, error_code};

/// The table name when `MAESTRO_TABLE` is not set.
pub const DEFAULT_TABLE: &str = "maestro";
/// The partition and sort key attributes of the table.
pub const PK: &str = "pk";
pub const SK: &str = "sk";
/// The per-user call log index.
pub const GSI_USER: &str = "gsi1";
pub const GSI_USER_PK: &str = "gsi1pk";
pub const GSI_USER_SK: &str = "gsi1sk";
/// The per-provider call log index.
pub const GSI_PROVIDER: &str = "gsi2";
pub const GSI_PROVIDER_PK: &str = "gsi2pk";
pub const GSI_PROVIDER_SK: &str = "gsi2sk";
/// The TTL attribute (epoch seconds) of window counters, call logs and stats.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// The log queue and its dead-letter queue.
pub const LOG_QUEUE_NAME: &str = "maestro-logs";
pub const LOG_DLQ_NAME: &str = "maestro-logs-dlq";
/// Receives before a message moves to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;
pub const LOG_QUEUE_VISIBILITY_TIMEOUT_SECS: u32 = 180;
/// 4 days.
pub const LOG_QUEUE_RETENTION_SECS: u32 = 345_600;
/// 14 days, the most SQS allows.
pub const LOG_DLQ_RETENTION_SECS: u32 = 1_209_600;

/// How long `create_table` waits for a new table (and its indexes) to become active.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

/// What `init-aws` found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub table: String,
    pub table_created: bool,
    pub log_queue_url: String,
    pub log_dlq_url: String,
    pub queues_created: bool,
}

impl Provisioned {
    /// The environment the gateway needs to use these resources, as `export` lines.
    pub fn env_lines(&self, secret_prefix: &str) -> Vec<String> {
        vec![
            format!("export {}={}", super::ENV_TABLE, self.table),
            format!("export {}={}", super::ENV_LOG_QUEUE_URL, self.log_queue_url),
            format!("export {}={}", super::ENV_SECRET_PREFIX, secret_prefix),
        ]
    }
}

fn dynamo_error<E>(what: &str) -> impl FnOnce(aws_sdk_dynamodb::error::SdkError<E, HttpResponse>) -> AwsError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    move |e| AwsError::from_sdk("DynamoDB", what, &e)
}

fn sqs_error<E>(what: &str) -> impl FnOnce(aws_sdk_sqs::error::SdkError<E, HttpResponse>) -> AwsError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    move |e| AwsError::from_sdk("SQS", what, &e)
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> AwsError {
    AwsError::Config(format!("cannot build a table definition: {e}"))
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, AwsError> {
    KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().map_err(build_error)
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, AwsError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_error)
}

fn index(name: &str, pk: &str, sk: &str) -> Result<GlobalSecondaryIndex, AwsError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(pk, KeyType::Hash)?)
        .key_schema(key(sk, KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(build_error)
}

/// The table's status, or `None` when there is no such table.
async fn table_status(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<Option<TableStatus>, AwsError> {
    match client.describe_table().table_name(table).send().await {
        Ok(out) => Ok(Some(out.table().and_then(|t| t.table_status().cloned()).unwrap_or(TableStatus::Active))),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(dynamo_error("describe the table")(e)),
    }
}

/// Creates the table as documented above, unless it exists, waits until it is active, and
/// enables TTL on `expires_at` where it is not yet. Returns whether the table was created.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<bool, AwsError> {
    let created = match table_status(client, table).await? {
        Some(_) => false,
        None => {
            let mut request = client.create_table().table_name(table).billing_mode(BillingMode::PayPerRequest);
            for name in [PK, SK, GSI_USER_PK, GSI_USER_SK, GSI_PROVIDER_PK, GSI_PROVIDER_SK] {
                request = request.attribute_definitions(string_attribute(name)?);
            }
            request
                .key_schema(key(PK, KeyType::Hash)?)
                .key_schema(key(SK, KeyType::Range)?)
                .global_secondary_indexes(index(GSI_USER, GSI_USER_PK, GSI_USER_SK)?)
                .global_secondary_indexes(index(GSI_PROVIDER, GSI_PROVIDER_PK, GSI_PROVIDER_SK)?)
                .send()
                .await
                .map_err(dynamo_error("create the table"))?;
            true
        }
    };
    let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_TIMEOUT;
    loop {
        match table_status(client, table).await? {
            Some(TableStatus::Active) => break,
            _ if tokio::time::Instant::now() >= deadline => {
                return Err(AwsError::Config(format!("table {table} is not active after {TABLE_ACTIVE_TIMEOUT:?}")));
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let ttl =
        client.describe_time_to_live().table_name(table).send().await.map_err(dynamo_error("read the table's TTL"))?;
    let ttl_on = ttl
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status())
        .is_some_and(|s| matches!(s, TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
    if !ttl_on {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(TTL_ATTRIBUTE)
            .enabled(true)
            .build()
            .map_err(build_error)?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(dynamo_error("enable TTL on expires_at"))?;
    }
    Ok(created)
}

/// Deletes the table (tests clean up after themselves with this).
pub async fn delete_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), AwsError> {
    match client.delete_table().table_name(table).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
        Err(e) => Err(dynamo_error("delete the table")(e)),
    }
}

/// The URL of the queue called `name`, or `None` when there is none.
pub async fn queue_url(client: &aws_sdk_sqs::Client, name: &str) -> Result<Option<String>, AwsError> {
    match client.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url().map(str::to_string)),
        Err(e)
            if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist())
                || error_code(&e).is_some_and(|c| c.contains("NonExistentQueue")) =>
        {
            Ok(None)
        }
        Err(e) => Err(sqs_error("look up a queue")(e)),
    }
}

/// Creates the log queue `name` and its dead-letter queue `<name>-dlq` where they do not exist.
/// Returns `(queue url, dlq url, whether anything was created)`.
pub async fn create_queues(client: &aws_sdk_sqs::Client, name: &str) -> Result<(String, String, bool), AwsError> {
    let dlq_name = if name == LOG_QUEUE_NAME { LOG_DLQ_NAME.to_string() } else { format!("{name}-dlq") };
    let mut created = false;
    let dlq_url = match queue_url(client, &dlq_name).await? {
        Some(url) => url,
        None => {
            created = true;
            client
                .create_queue()
                .queue_name(&dlq_name)
                .attributes(QueueAttributeName::MessageRetentionPeriod, LOG_DLQ_RETENTION_SECS.to_string())
                .send()
                .await
                .map_err(sqs_error("create the dead-letter queue"))?
                .queue_url()
                .map(str::to_string)
                .ok_or_else(|| AwsError::Config("SQS returned no URL for the dead-letter queue".into()))?
        }
    };
    let queue_url = match queue_url(client, name).await? {
        Some(url) => url,
        None => {
            created = true;
            let dlq_arn = client
                .get_queue_attributes()
                .queue_url(&dlq_url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(sqs_error("read the dead-letter queue's ARN"))?
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
                .ok_or_else(|| AwsError::Config("SQS returned no ARN for the dead-letter queue".into()))?;
            let redrive = serde_json::json!({
                "deadLetterTargetArn": dlq_arn,
                "maxReceiveCount": MAX_RECEIVE_COUNT.to_string(),
            });
            client
                .create_queue()
                .queue_name(name)
                .attributes(QueueAttributeName::VisibilityTimeout, LOG_QUEUE_VISIBILITY_TIMEOUT_SECS.to_string())
                .attributes(QueueAttributeName::MessageRetentionPeriod, LOG_QUEUE_RETENTION_SECS.to_string())
                .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
                .send()
                .await
                .map_err(sqs_error("create the log queue"))?
                .queue_url()
                .map(str::to_string)
                .ok_or_else(|| AwsError::Config("SQS returned no URL for the log queue".into()))?
        }
    };
    Ok((queue_url, dlq_url, created))
}

/// Creates the table and the queues where they do not exist (what `maestro init-aws` does).
pub async fn provision(
    dynamodb: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    table: &str,
    queue_name: &str,
) -> Result<Provisioned, AwsError> {
    let table_created = create_table(dynamodb, table).await?;
    let (log_queue_url, log_dlq_url, queues_created) = create_queues(sqs, queue_name).await?;
    Ok(Provisioned { table: table.to_string(), table_created, log_queue_url, log_dlq_url, queues_created })
}

/// [`provision`] with clients built from `sdk` (what `maestro init-aws` runs).
pub async fn provision_with(
    sdk: &aws_config::SdkConfig,
    table: &str,
    queue_name: &str,
) -> Result<Provisioned, AwsError> {
    if sdk.region().is_none() {
        return Err(AwsError::Config("no AWS region: set AWS_REGION (or a profile with a region)".into()));
    }
    provision(&aws_sdk_dynamodb::Client::new(sdk), &aws_sdk_sqs::Client::new(sdk), table, queue_name).await
}
