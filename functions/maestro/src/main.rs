//! `maestro`: the whole gateway in one process. `maestro serve` runs it; `maestro token` prints a
//! caller token for the same data directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use maestro::{App, Options, build, jwt_secret};
use maestro_shared::auth::{ADMIN_ROLE, JwtAuth};
use maestro_shared::config::FileConfig;

#[derive(Parser)]
#[command(name = "maestro", version, about = "Maestro: a multi-provider AI gateway (local runner)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway on the embedded backend.
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
    },
    /// Print a bearer token for callers (signed with the same secret `serve` uses).
    Token {
        /// The user id (`sub`) the token names.
        #[arg(long, default_value = "local-user")]
        sub: String,
        /// Grant the admin role (admin and stats APIs).
        #[arg(long)]
        admin: bool,
        /// Hours until the token expires.
        #[arg(long, default_value_t = 24 * 30)]
        ttl_hours: u64,
        #[arg(long, default_value = ".maestro")]
        data: PathBuf,
    },
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
        Command::Serve { listen, data, config, no_demo } => serve(listen, data, config, !no_demo).await,
        Command::Token { sub, admin, ttl_hours, data } => token(&sub, admin, ttl_hours, &data),
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
    let secret = jwt_secret(data, &env_var).map_err(|e| e.to_string())?;
    let auth = JwtAuth::hs256(&secret);
    let token =
        auth.issue(sub, admin.then_some(ADMIN_ROLE), Duration::from_secs(ttl_hours * 3600)).map_err(|e| e.message)?;
    println!("{token}");
    Ok(())
}

async fn serve(listen: SocketAddr, data: PathBuf, config: Option<PathBuf>, demo: bool) -> Result<(), String> {
    let config = match &config {
        Some(path) => FileConfig::load(path).map_err(|e| e.to_string())?,
        None => FileConfig::default(),
    };
    let app = build(Options { data_dir: data.clone(), config, env: Box::new(env_var), demo })
        .await
        .map_err(|e| e.to_string())?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    banner(&app, listen, &data, demo)?;
    let App { router, aggregator, queue_counts, .. } = app;
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down; recording the last log events");
        })
        .await
        .map_err(|e| e.to_string())?;
    // The router (and with it every queue sender) is gone: the aggregator drains and ends.
    if tokio::time::timeout(Duration::from_secs(10), aggregator).await.is_err() || !queue_counts.is_drained() {
        tracing::error!("some log events were not recorded before shutdown");
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
fn banner(app: &App, listen: SocketAddr, data: &std::path::Path, demo: bool) -> Result<(), String> {
    let user = app.auth.issue("local-user", None, Duration::from_secs(30 * 86_400)).map_err(|e| e.message)?;
    let admin =
        app.auth.issue("local-admin", Some(ADMIN_ROLE), Duration::from_secs(30 * 86_400)).map_err(|e| e.message)?;
    println!("Maestro is listening on http://{listen}  (data: {})", data.display());
    if app.report.imported_keys.is_empty() {
        println!(
            "No provider key found. Export OPENAI_API_KEY, ANTHROPIC_API_KEY or DEEPSEEK_API_KEY (or pass --config) and restart."
        );
    } else {
        for (provider, masked) in &app.report.imported_keys {
            println!("  key for {provider}: {masked}");
        }
    }
    if demo {
        println!("The offline model `demo/echo` answers without any key or network.");
    }
    println!("\nCaller token (sub=local-user):\n  {user}\nAdmin token (admin and stats APIs):\n  {admin}\n");
    println!(
        "Try it:\n  curl -s http://{listen}/v1/chat/completions -H \"Authorization: Bearer {user}\" -H 'content-type: application/json' \\\n    -d '{{\"model\":\"demo/echo\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'"
    );
    Ok(())
}
