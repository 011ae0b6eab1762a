//! The local runner: every function's router in one process, on the embedded backend (one SQLite
//! file, an in-process queue in place of SQS, secrets in the same 0600 file) or, with
//! `--backend aws`, on DynamoDB, SQS and Secrets Manager (an in-process task long-polls the log
//! queue for the aggregator, standing in for the SQS-triggered Lambda).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use maestro_aggregator::{Message, Outcome, process_batch, process_batch_outcomes, process_message};
use maestro_shared::auth::{JwtAuth, MIN_JWT_SECRET_BYTES};
use maestro_shared::aws::{AwsBackend, AwsError, QueueConsumer, ReceivedMessage};
use maestro_shared::bootstrap::{BootstrapReport, bootstrap};
use maestro_shared::config::{Env, FileConfig};
use maestro_shared::credits::{ChargeSink, WebhookSink};
use maestro_shared::edges::Cors;
use maestro_shared::gateway::{Backends, Credits, Gateway, GatewayOptions};
use maestro_shared::logs::LogSink;
use maestro_shared::logs::queue::{QueueCounts, QueueReceiver, in_process_queue};
use maestro_shared::providers::ProviderClient;
use maestro_shared::secret::SecretString;
use maestro_shared::store::caller_keys::{CALLER_KEY_CACHE_TTL, CachedCallerKeys};
use maestro_shared::store::embedded::EmbeddedStore;
use maestro_shared::store::{
    AlertStore, CallerKeyStore, CatalogAdminStore, CatalogStore, CounterStore, CreditStore, ResponseCacheStore,
    SecretStore, StatsStore,
};
use serde_json::json;
use tokio::task::JoinHandle;

mod metrics;
pub mod server;

/// How the runner is started.
pub struct Options {
    pub data_dir: PathBuf,
    pub config: FileConfig,
    /// The environment (the process's, or a map in tests), read as the Lambda functions read it.
    pub env: Env,
    pub demo: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use data directory {path}: {message}")]
    DataDir { path: String, message: String },
    #[error(transparent)]
    Store(#[from] maestro_shared::store::StoreError),
    #[error(transparent)]
    Bootstrap(#[from] maestro_shared::bootstrap::BootstrapError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Config(#[from] maestro_shared::config::ConfigError),
    #[error("MAESTRO_CORS_ORIGINS is invalid: {0}")]
    Cors(String),
    #[error("alerts: {0}")]
    Alerts(#[from] maestro_shared::alerts::setup::SetupError),
    #[error("MAESTRO_JWT_SECRET is too short: use at least {MIN_JWT_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)")]
    WeakSecret,
}

/// A built runner: the router to serve, and what the banner and tests need.
pub struct App {
    pub router: Router,
    /// The gateway behind the router (the server ends its streams at shutdown).
    pub gateway: Arc<Gateway>,
    pub auth: Arc<JwtAuth>,
    pub report: BootstrapReport,
    pub store: Arc<EmbeddedStore>,
    pub queue_counts: Arc<QueueCounts>,
    /// Finishes once every sender is gone and the queue is drained.
    pub aggregator: JoinHandle<()>,
}

impl App {
    /// Waits until every log event sent so far is recorded (or `timeout` passes).
    pub async fn wait_for_logs(&self, timeout: Duration) -> bool {
        wait_drained(&self.queue_counts, timeout).await
    }
}

pub async fn wait_drained(counts: &QueueCounts, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while !counts.is_drained() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// The JWT secret: `MAESTRO_JWT_SECRET`, else one generated once and kept in the data dir.
pub fn jwt_secret(data_dir: &Path, env: &Env) -> Result<SecretString, StartError> {
    if let Some(secret) = env.get("MAESTRO_JWT_SECRET") {
        if secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(StartError::WeakSecret);
        }
        return Ok(SecretString::new(secret));
    }
    let path = data_dir.join("jwt-secret");
    let io = |e: std::io::Error| StartError::DataDir { path: path.display().to_string(), message: e.to_string() };
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(SecretString::new(s.trim())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let generated = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    std::fs::create_dir_all(data_dir).map_err(io)?;
    write_private(&path, &generated).map_err(io)?;
    Ok(SecretString::new(generated))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

/// Opens the store, applies seed, config and environment, and wires every router.
pub async fn build(options: Options) -> Result<App, StartError> {
    let store = Arc::new(EmbeddedStore::open(&options.data_dir)?);
    let (queue, receiver) = in_process_queue();
    let queue_counts = queue.counts();
    let stores = Stores {
        catalog: store.clone(),
        counters: store.clone(),
        secrets: store.clone(),
        stats: store.clone(),
        log_sink: Arc::new(queue),
        caller_keys: store.clone(),
        catalog_admin: store.clone(),
        credits: store.clone(),
        response_cache: store.clone(),
        alerts: store.clone(),
    };
    let Wired { router, gateway, auth, report } = wire(options, stores).await?;
    let aggregator = tokio::spawn(run_aggregator(receiver, store.clone()));
    Ok(App { router, gateway, auth, report, store, queue_counts, aggregator })
}

/// A runner on the AWS backend: the same routers, what the banner needs, and the clients.
pub struct AwsApp {
    pub router: Router,
    pub gateway: Arc<Gateway>,
    pub auth: Arc<JwtAuth>,
    pub report: BootstrapReport,
    pub aws: AwsBackend,
}

/// Like [`build`], on DynamoDB, SQS and Secrets Manager. The data dir holds only the JWT
/// secret (unless `MAESTRO_JWT_SECRET` is set). The log queue is not consumed here: run
/// [`run_queue_consumer`] beside it (as `maestro serve --backend aws` does) or the aggregator
/// Lambda.
pub async fn build_aws(options: Options, aws: AwsBackend) -> Result<AwsApp, StartError> {
    let stores = Stores {
        catalog: aws.dynamo.clone(),
        counters: aws.dynamo.clone(),
        secrets: aws.secrets.clone(),
        stats: aws.dynamo.clone(),
        log_sink: aws.log_sink.clone(),
        caller_keys: aws.dynamo.clone(),
        catalog_admin: aws.dynamo.clone(),
        credits: aws.dynamo.clone(),
        response_cache: aws.dynamo.clone(),
        alerts: aws.dynamo.clone(),
    };
    let Wired { router, gateway, auth, report } = wire(options, stores).await?;
    Ok(AwsApp { router, gateway, auth, report, aws })
}

/// The backends a runner is wired on.
struct Stores {
    catalog: Arc<dyn CatalogStore>,
    counters: Arc<dyn CounterStore>,
    secrets: Arc<dyn SecretStore>,
    stats: Arc<dyn StatsStore>,
    log_sink: Arc<dyn LogSink>,
    caller_keys: Arc<dyn CallerKeyStore>,
    /// The same backend's versioned catalog writes, for the admin API.
    catalog_admin: Arc<dyn CatalogAdminStore>,
    /// Users' credits (used when `[credits] enabled` or `MAESTRO_CREDITS=on`).
    credits: Arc<dyn CreditStore>,
    response_cache: Arc<dyn ResponseCacheStore>,
    alerts: Arc<dyn AlertStore>,
}

struct Wired {
    router: Router,
    gateway: Arc<Gateway>,
    auth: Arc<JwtAuth>,
    report: BootstrapReport,
}

/// The webhook every settled charge is posted to, when `[credits] webhook_url` names one.
fn charge_webhook(credits: &maestro_shared::config::CreditsConfig) -> Result<Option<Arc<dyn ChargeSink>>, StartError> {
    let Some(url) = credits.webhook()? else { return Ok(None) };
    let sink = WebhookSink::start(url, credits.webhook_secret.clone()).map_err(StartError::Http)?;
    Ok(Some(Arc::new(sink)))
}

/// What both backends share: seed, config and environment applied to the stores, the JWT
/// secret, and every router on one gateway.
async fn wire(options: Options, stores: Stores) -> Result<Wired, StartError> {
    let Options { data_dir, config, env, demo } = options;
    // The environment's list, when set, replaces the config file's (as on Lambda).
    let cors = match env.get("MAESTRO_CORS_ORIGINS") {
        Some(list) => Cors::from_comma_list(&list).map_err(StartError::Cors)?,
        None => Cors::from_list(&config.server.cors_origins).map_err(StartError::Cors)?,
    };
    let report = bootstrap(stores.catalog.as_ref(), stores.secrets.as_ref(), &config, &env, demo).await?;
    // HS256 with the data dir's secret, or RS256/ES256 with MAESTRO_JWKS_URL; issuer, audience
    // and the admin claim from the environment too (see `maestro_shared::auth`).
    let secret = jwt_secret(&data_dir, &env)?;
    let auth = Arc::new(env.jwt_auth_with(&secret)?);

    let client = ProviderClient::new().map_err(|e| StartError::Http(e.to_string()))?;
    start_alerts(&config, &stores).await?;
    // Every call's event is counted for `GET /metrics` as the gateway hands it to the sink.
    let (log_sink, call_metrics) = metrics::observe(stores.log_sink, &env)?;
    let metrics_public = metrics::public(&env, config.server.metrics_public)?;
    let stats_store = stores.stats.clone();
    let stats = maestro_stats::StatsState {
        store: stores.stats,
        catalog: stores.catalog.clone(),
        counters: stores.counters.clone(),
        auth: auth.clone(),
    };
    let backends = Backends {
        catalog: stores.catalog,
        counters: stores.counters,
        secrets: stores.secrets.clone(),
        log_sink,
        // One cache for the chat and admin routers, so a revocation here is seen at once.
        caller_keys: Arc::new(CachedCallerKeys::new(stores.caller_keys, CALLER_KEY_CACHE_TTL)),
        credits: match config.credits.enabled || env.credits_enabled()? {
            false => None,
            true => Some(Credits { store: stores.credits.clone(), events: charge_webhook(&config.credits)? }),
        },
        response_cache: stores.response_cache,
    };
    // The environment's markups, when set, replace the config file's (as on Lambda).
    let credit_markup = match env.get("MAESTRO_CREDITS_MARKUP").or(env.get("MAESTRO_CREDITS_MODEL_MARKUP")) {
        Some(_) => env.credit_markup()?,
        None => config.credits.markup()?,
    };
    let gateway_options = GatewayOptions {
        policy: config.retry.clone(),
        catalog_ttl: Duration::from_secs(config.server.catalog_ttl_secs),
        allow_demo: demo,
        credit_markup,
    };
    let gateway = Arc::new(Gateway::new(backends, client, gateway_options).with_latency_source(stats_store.clone()));

    let router = maestro_chat::router(maestro_chat::ChatState {
        gateway: gateway.clone(),
        auth: auth.clone(),
        max_body_bytes: config.server.max_body_bytes,
    })
    .merge(maestro_stats::router(stats))
    .merge(maestro_admin::router(
        maestro_admin::AdminState::new(gateway.clone(), auth.clone(), stores.catalog_admin, stats_store)
            .map_err(StartError::Http)?
            .with_alerts(maestro_admin::AlertsState {
                alerts: stores.alerts.clone(),
                secrets: stores.secrets.clone(),
                email: config.alerting.email_sender().map_err(StartError::Http)?,
            }),
    ))
    .merge(metrics::router(call_metrics, gateway.clone(), auth.clone(), metrics_public))
    .route("/openapi.json", get(|| async { Json(openapi()) }))
    .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
    .method_not_allowed_fallback(maestro_shared::http::method_not_allowed)
    .fallback(maestro_shared::http::not_found)
    // With a JWKS, fetch the key a request's token names before handlers check it.
    .layer(axum::middleware::from_fn_with_state(auth.clone(), maestro_shared::auth::prepare_keys));
    let router = maestro_shared::edges::apply(router, config.server.max_body_bytes, &cors);
    Ok(Wired { router, gateway, auth, report })
}

/// Applies the TOML's alert channels and rules, and evaluates the stored rules every
/// `[alerting] interval_secs` in the background (one process at a time: the store's lease).
async fn start_alerts(config: &FileConfig, stores: &Stores) -> Result<(), StartError> {
    use maestro_shared::alerts::{engine, setup};
    setup::apply_config(stores.alerts.as_ref(), stores.secrets.as_ref(), &config.alert_channels, &config.alerts)
        .await?;
    let email = config.alerting.email_sender().map_err(StartError::Http)?;
    let notifier = setup::StoredChannels::new(
        stores.alerts.clone(),
        stores.secrets.clone(),
        email,
        Duration::from_secs(config.alerting.interval_secs.clamp(1, 60)),
    );
    let engine = engine::AlertEngine {
        alerts: stores.alerts.clone(),
        stats: stores.stats.clone(),
        catalog: stores.catalog.clone(),
        notifier: Arc::new(notifier),
        config: config.alerting.clone(),
        holder: format!("runner-{}", uuid::Uuid::new_v4().simple()),
    };
    tokio::spawn(engine::run_every_interval(Arc::new(engine)));
    Ok(())
}

/// The OpenAPI document of every route this runner serves (chat, admin, stats), generated from
/// the handlers' annotations; served at `GET /openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut spec = maestro_chat::openapi();
    spec.merge(maestro_admin::openapi());
    spec.merge(maestro_stats::openapi());
    maestro_shared::openapi::finish(
        spec,
        "Maestro",
        "A multi-provider AI gateway: an OpenAI-compatible (and Anthropic-compatible) chat API, \
         and the admin and stats APIs. Every route but /health and /openapi.json takes \
         `Authorization: Bearer <token>`; admin and stats routes need an admin token.",
    )
}

/// The most log events the in-process aggregator writes in one transaction: a batch runs on a
/// blocking thread that shares the CPU with the requests, so a bounded batch (~0.5 ms of work)
/// bounds how long a request can wait behind it.
const AGGREGATOR_BATCH: usize = 64;

/// The in-process stand-in for the SQS-triggered aggregator: the same per-message code, one
/// transaction per batch. The senders wait until their event is recorded (see
/// `maestro_shared::logs::queue`); a store failure is retried with backoff (never dropped), the
/// senders let go after the first try so a broken disk cannot hold answers back; an unreadable
/// message goes to the error log, as SQS would move it to the dead-letter queue.
async fn run_aggregator(mut receiver: QueueReceiver, store: Arc<EmbeddedStore>) {
    while let Some(mut batch) = receiver.next_batch(AGGREGATOR_BATCH).await {
        let messages: Vec<Message> =
            batch.iter().map(|q| Message { id: q.message_id.clone(), body: q.body.clone() }).collect();
        let outcomes = process_batch_outcomes(store.as_ref() as &dyn StatsStore, &messages).await;
        let mut failed = Vec::new();
        for ((message, queued), outcome) in messages.into_iter().zip(batch.iter_mut()).zip(outcomes) {
            match outcome {
                Outcome::Failed(_) => failed.push(message),
                Outcome::Poison(reason) => {
                    tracing::error!(message_id = %message.id, body = %message.body, %reason, "dead-lettered log message");
                    receiver.finish([queued]);
                }
                Outcome::Recorded | Outcome::Duplicate => receiver.finish([queued]),
            }
        }
        if failed.is_empty() {
            continue;
        }
        tracing::error!(events = failed.len(), "log events not recorded yet; retrying");
        receiver.finish(batch.iter_mut());
        for message in &failed {
            retry_until_recorded(store.as_ref(), message).await;
        }
    }
}

/// Records one message, retrying a failing store with backoff until it works.
async fn retry_until_recorded(store: &EmbeddedStore, message: &Message) {
    let mut wait = Duration::from_millis(50);
    loop {
        match process_message(store as &dyn StatsStore, message).await {
            Outcome::Recorded | Outcome::Duplicate => return,
            Outcome::Poison(reason) => {
                tracing::error!(message_id = %message.id, body = %message.body, %reason, "dead-lettered log message");
                return;
            }
            Outcome::Failed(_) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// What one read of the log queue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumed {
    pub received: usize,
    pub failed: usize,
}

/// One round of the SQS aggregator, in process: receives a batch (long polling up to
/// `wait_secs`), records it with the aggregator's own [`process_batch`] and deletes the messages
/// that succeeded; the failed ones come back after the visibility timeout (and, after
/// `maxReceiveCount` receives, go to the dead-letter queue), as under the Lambda.
pub async fn consume_once(
    consumer: &QueueConsumer,
    store: &dyn StatsStore,
    wait_secs: i32,
) -> Result<Consumed, AwsError> {
    let received = consumer.receive(wait_secs).await?;
    let messages: Vec<Message> =
        received.iter().map(|m| Message { id: m.message_id.clone(), body: m.body.clone() }).collect();
    let failed = process_batch(store, &messages).await;
    let done: Vec<ReceivedMessage> = received.into_iter().filter(|m| !failed.contains(&m.message_id)).collect();
    consumer.delete(&done).await?;
    Ok(Consumed { received: messages.len(), failed: failed.len() })
}

/// Runs [`consume_once`] with 20-second long polls until the task is aborted; a failing queue
/// is retried with backoff (never given up on).
pub async fn run_queue_consumer(consumer: QueueConsumer, store: Arc<dyn StatsStore>) {
    let mut wait = Duration::from_secs(1);
    loop {
        match consume_once(&consumer, store.as_ref(), 20).await {
            Ok(_) => wait = Duration::from_secs(1),
            Err(e) => {
                tracing::error!(error = %e, "reading the log queue failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}
