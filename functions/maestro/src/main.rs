//! `maestro`: the whole gateway in one process. `maestro serve` runs it (on the embedded backend,
//! or with `--backend aws` on DynamoDB, SQS and Secrets Manager); `maestro token` prints a caller
//! token for the same data directory; `maestro init-aws` creates the AWS table and queues.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use maestro::server::{self, Limits};
use maestro::{App, AwsApp, Options, build, build_aws, jwt_secret, run_queue_consumer};
use maestro_shared::auth::JwtAuth;
use maestro_shared::aws::{self, AwsBackend, AwsConfig, provision};
use maestro_shared::bootstrap::BootstrapReport;
use maestro_shared::config::{Env, FileConfig};

/// mimalloc: fewer and cheaper allocator calls on the request path than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "maestro", version, about = "Maestro: a multi-provider AI gateway (local runner)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (embedded backend by default).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: SocketAddr,
        /// Directory of the embedded database, secrets and JWT secret.
        #[arg(long, default_value = ".maestro")]
        data: PathBuf,
        /// TOML file with keys, providers, models, routes and policy.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Leave out the offline `demo/echo` model.
        #[arg(long)]
        no_demo: bool,
        /// Where the data lives: `embedded` (SQLite in --data) or `aws` (DynamoDB, SQS, Secrets
        /// Manager from MAESTRO_TABLE, MAESTRO_LOG_QUEUE_URL, MAESTRO_SECRET_PREFIX and the AWS
        /// SDK's environment, e.g. AWS_ENDPOINT_URL for moto; --data then holds only the JWT secret).
        #[arg(long, value_enum, default_value_t = Backend::Embedded)]
        backend: Backend,
    },
    /// Create the DynamoDB table and the SQS log queue (with its dead-letter queue) where they do
    /// not exist, and print the environment `serve --backend aws` and the functions need.
    InitAws {
        /// The table name (default: MAESTRO_TABLE, else `maestro`).
        #[arg(long)]
        table: Option<String>,
        /// The log queue's name; its dead-letter queue is `<name>-dlq`.
        #[arg(long, default_value = provision::LOG_QUEUE_NAME)]
        queue: String,
    },
    /// Print a bearer token for callers (signed with the same secret `serve` uses).
    Token {
        /// The user id (`sub`) the token names.
        #[arg(long, default_value = "local-user")]
        sub: String,
        /// Grant admin (admin and stats APIs): the token's `scope` holds `maestro:admin`
        /// (MAESTRO_ADMIN_CLAIM / MAESTRO_ADMIN_VALUE name another claim or value).
        #[arg(long)]
        admin: bool,
        /// Hours until the token expires.
        #[arg(long, default_value_t = 24 * 30)]
        ttl_hours: u64,
        #[arg(long, default_value = ".maestro")]
        data: PathBuf,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Embedded,
    Aws,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("MAESTRO_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Serve { listen, data, config, no_demo, backend: Backend::Embedded } => {
            serve(listen, data, config, !no_demo).await
        }
        Command::Serve { listen, data, config, no_demo, backend: Backend::Aws } => {
            serve_aws(listen, data, config, !no_demo).await
        }
        Command::Token { sub, admin, ttl_hours, data } => token(&sub, admin, ttl_hours, &data),
        Command::InitAws { table, queue } => init_aws(table, &queue).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("maestro: {message}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
fn token(sub: &str, admin: bool, ttl_hours: u64, data: &std::path::Path) -> Result<(), String> {
    let env = Env::process();
    let secret = jwt_secret(data, &env).map_err(|e| e.to_string())?;
    let auth = env.jwt_auth_with(&secret).map_err(|e| e.to_string())?;
    if !auth.can_issue() {
        return Err("MAESTRO_JWKS_URL is set: tokens come from your identity provider, not from `maestro token`".into());
    }
    let token = auth.issue(sub, admin, Duration::from_secs(ttl_hours * 3600)).map_err(|e| e.message().to_string())?;
    println!("{token}");
    Ok(())
}

fn load_config(config: Option<&std::path::Path>) -> Result<FileConfig, String> {
    match config {
        Some(path) => FileConfig::load(path).map_err(|e| e.to_string()),
        None => Ok(FileConfig::default()),
    }
}

/// Ctrl-C, or SIGTERM (what container runtimes and systemd send).
async fn shutdown_signal() {
    let terminate = async {
        #[cfg(unix)]
        if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            signal.recv().await;
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down; recording the last log events");
}

async fn serve(listen: SocketAddr, data: PathBuf, config: Option<PathBuf>, demo: bool) -> Result<(), String> {
    let config = load_config(config.as_deref())?;
    let limits = Limits::from_config(&config.server);
    let app = build(Options { data_dir: data.clone(), config, env: Env::process(), demo })
        .await
        .map_err(|e| e.to_string())?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    banner(&app.auth, &app.report, listen, &format!("data: {}", data.display()), demo)?;
    let App { router, gateway, aggregator, queue_counts, store, .. } = app;
    server::serve(listener, router, limits, shutdown_signal(), || gateway.end_streams()).await;
    drop(gateway);
    // The router (and with it every queue sender) is gone: the aggregator drains and ends.
    if tokio::time::timeout(Duration::from_secs(10), aggregator).await.is_err() || !queue_counts.is_drained() {
        tracing::error!("some log events were not recorded before shutdown");
    }
    if let Err(e) = store.flush() {
        tracing::error!(error = %e, "could not save the rate-limit windows at shutdown");
    }
    Ok(())
}

/// `serve --backend aws`: the same routers on DynamoDB and Secrets Manager, log events through
/// SQS (batched), and an in-process consumer of the log queue standing in for the aggregator
/// Lambda.
async fn serve_aws(listen: SocketAddr, data: PathBuf, config: Option<PathBuf>, demo: bool) -> Result<(), String> {
    let config = load_config(config.as_deref())?;
    let limits = Limits::from_config(&config.server);
    let backend = AwsBackend::from_env().await.map_err(|e| e.to_string())?;
    let app = build_aws(Options { data_dir: data.clone(), config, env: Env::process(), demo }, backend)
        .await
        .map_err(|e| e.to_string())?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let location = format!("table {}, queue {}", app.aws.config.table, app.aws.config.log_queue_url);
    banner(&app.auth, &app.report, listen, &location, demo)?;
    let AwsApp { router, gateway, aws, .. } = app;
    let consumer = tokio::spawn(run_queue_consumer(aws.log_queue_consumer(), aws.dynamo.clone()));
    server::serve(listener, router, limits, shutdown_signal(), || gateway.end_streams()).await;
    // Everything handed to the sink leaves for the queue; what the consumer has not taken yet
    // stays there for the next start (or the aggregator Lambda), recorded exactly once either way.
    aws.log_sink.flush().await;
    consumer.abort();
    if aws.log_sink.undelivered() > 0 {
        tracing::error!(
            undelivered = aws.log_sink.undelivered(),
            "some log events did not reach SQS; they are in this log as `undelivered_log_event`"
        );
    }
    Ok(())
}

/// `init-aws`: the table and queues of `maestro_shared::aws::provision`, then the environment.
#[allow(clippy::print_stdout)]
async fn init_aws(table: Option<String>, queue: &str) -> Result<(), String> {
    let config = AwsConfig::from_env();
    let table = table.unwrap_or(config.table);
    let sdk = aws::sdk_config_from_env().await;
    let done = provision::provision_with(&sdk, &table, queue).await.map_err(|e| e.to_string())?;
    let state = |created: bool| if created { "created" } else { "exists" };
    println!("DynamoDB table {}: {}", done.table, state(done.table_created));
    println!("SQS log queue and dead-letter queue: {}", state(done.queues_created));
    println!("  {}\n  {}", done.log_queue_url, done.log_dlq_url);
    println!("\nUse them with:");
    for name in ["AWS_REGION", "AWS_ENDPOINT_URL"] {
        if let Some(value) = env_var(name).filter(|v| !v.is_empty()) {
            println!("export {name}={value}");
        }
    }
    for line in done.env_lines(&config.secret_prefix) {
        println!("{line}");
    }
    println!("\nthen: maestro serve --backend aws");
    Ok(())
}

#[allow(clippy::print_stdout)]
fn banner(auth: &JwtAuth, report: &BootstrapReport, listen: SocketAddr, data: &str, demo: bool) -> Result<(), String> {
    println!("Maestro is listening on http://{listen}  ({data})");
    if report.imported_keys.is_empty() {
        println!(
            "No provider key found. Export a built-in provider's key (OPENAI_API_KEY, ANTHROPIC_API_KEY, DEEPSEEK_API_KEY, QWEN_API_KEY, … see the README), or pass --config, and restart."
        );
    } else {
        for (provider, masked) in &report.imported_keys {
            println!("  key for {provider}: {masked}");
        }
    }
    if demo {
        println!("The offline model `demo/echo` answers without any key or network.");
    }
    if !auth.can_issue() {
        println!("\nTokens are verified with the JWKS at MAESTRO_JWKS_URL: use your identity provider's tokens");
        println!("(admin APIs: the `{}` claim must hold `{}`).", auth.admin_claim().claim, auth.admin_claim().value);
        println!("Admin console: http://{listen}/admin/ (sign in with such an admin token)");
        return Ok(());
    }
    let user =
        auth.issue("local-user", false, Duration::from_secs(30 * 86_400)).map_err(|e| e.message().to_string())?;
    let admin =
        auth.issue("local-admin", true, Duration::from_secs(30 * 86_400)).map_err(|e| e.message().to_string())?;
    println!("\nCaller token (sub=local-user):\n  {user}\nAdmin token (admin and stats APIs):\n  {admin}\n");
    // The console reads the token from the fragment, which browsers never send to the server.
    println!("Admin console: http://{listen}/admin/#token={admin}\n");
    println!(
        "Try it:\n  curl -s http://{listen}/v1/chat/completions -H \"Authorization: Bearer {user}\" -H 'content-type: application/json' \\\n    -d '{{\"model\":\"demo/echo\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'"
    );
    Ok(())
}
