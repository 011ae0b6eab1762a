//! What every Maestro Lambda binary shares, so each `main.rs` stays a few lines: JSON tracing,
//! typed settings read once from the environment (failing fast with a clear message), the
//! admin/stats authentication (HS256 or API Gateway's JWT authorizer), and the AWS wiring.
//!
//! Nothing here holds domain rules; those live in `maestro-shared`.

pub mod authorizer;
pub mod aws;
pub mod config;

pub use authorizer::{AdminAuth, AuthorizerBridge};
pub use config::{ConfigError, Env};

/// Installs the JSON log subscriber: one JSON object per line on stdout (what CloudWatch Logs and
/// Lambda's JSON log format expect), filtered by `MAESTRO_LOG` (`tracing` env-filter syntax,
/// default `info`). Call once, first thing in `main`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAESTRO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .init();
}
