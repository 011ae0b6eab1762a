//! What every Maestro Lambda binary shares, so each `main.rs` stays a few lines: JSON tracing,
//! the admin/stats authentication (HS256 or API Gateway's JWT authorizer) and the AWS wiring.
//! Settings come from `maestro_shared::config::Env` (re-exported), as for the local runner.
//!
//! Nothing here holds domain rules; those live in `maestro-shared`.

pub mod authorizer;
pub mod aws;

pub use authorizer::{AdminAuth, AuthorizerBridge};
pub use maestro_shared::config::{ConfigError, Env};

/// Installs the JSON log subscriber: one JSON object per line on stdout (what CloudWatch Logs and
/// Lambda's JSON log format expect), filtered by `MAESTRO_LOG` (`level` and `target=level` directives,
/// default `info`). Call once, first thing in `main`.
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = log_filter(std::env::var("MAESTRO_LOG").ok().as_deref());
    tracing_subscriber::fmt()
        .json()
        .with_ansi(false)
        .with_target(false)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .finish()
        .with(filter)
        .init();
}

/// `MAESTRO_LOG` as a filter; unset or unreadable means `info`. `Targets` takes the same
/// `info,maestro_shared=debug` directives as an env-filter, without its span and field
/// matching, which would link a regex engine into every bootstrap.
fn log_filter(directives: Option<&str>) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    directives.and_then(|d| d.parse::<Targets>().ok()).unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::log_filter;

    #[test]
    fn log_directives_set_a_default_and_per_target_levels() {
        let filter = log_filter(Some("warn,maestro_shared=debug"));
        assert!(filter.would_enable("maestro_shared::gateway", &Level::DEBUG));
        assert!(!filter.would_enable("hyper", &Level::INFO));
        assert!(filter.would_enable("hyper", &Level::WARN));
        let default = log_filter(None);
        assert!(default.would_enable("anything", &Level::INFO) && !default.would_enable("anything", &Level::DEBUG));
        assert!(!log_filter(Some("not a = directive ==")).would_enable("x", &Level::DEBUG));
    }
}
