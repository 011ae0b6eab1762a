//! The scheduled roll-up (an EventBridge schedule invokes it): a thin handler over
//! [`maestro_shared::stats::rollup`], which recomputes the day and provider summaries from the
//! fine stats rows and returns keys whose cool-down has passed to `normal`.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{Diagnostic, LambdaEvent};
use maestro_shared::stats::rollup::{self, RollupOptions, RollupReport};
use maestro_shared::store::{CatalogStore, StatsStore};

/// A roll-up with a failed step. The other steps ran; the report says what was done.
#[derive(Debug)]
pub struct RollupIncomplete {
    pub report: RollupReport,
}

impl std::fmt::Display for RollupIncomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rollup incomplete: {}", self.report.errors.join("; "))
    }
}

impl std::error::Error for RollupIncomplete {}

/// The invocation error Lambda records: `errorType` `RollupIncomplete`.
impl From<RollupIncomplete> for Diagnostic {
    fn from(e: RollupIncomplete) -> Self {
        Diagnostic { error_type: "RollupIncomplete".into(), error_message: e.to_string() }
    }
}

/// Runs one roll-up as of the event's scheduled `time` (the clock when it has none), logs one
/// summary line, and returns the report. Fails the invocation when a step failed, so the
/// function's `Errors` metric shows it; the next scheduled run tries again.
pub async fn handle(
    catalog: &dyn CatalogStore,
    stats: &dyn StatsStore,
    options: RollupOptions,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<RollupReport, RollupIncomplete> {
    let now_ms = event.payload.time.map_or_else(maestro_shared::time::now_ms, |t| t.timestamp_millis());
    let report = rollup::run(catalog, stats, now_ms, options).await;
    let recovered = report.recovered_keys.join(",");
    if report.errors.is_empty() {
        tracing::info!(
            from = %report.from_date, to = %report.to_date, fine_rows = report.fine_rows,
            summaries = report.summaries, requests = report.requests, cost_micros = report.cost_micros,
            recovered_keys = %recovered, "rollup done"
        );
        Ok(report)
    } else {
        let errors = report.errors.join("; ");
        tracing::error!(
            from = %report.from_date, to = %report.to_date, fine_rows = report.fine_rows,
            summaries = report.summaries, requests = report.requests, cost_micros = report.cost_micros,
            recovered_keys = %recovered, %errors, "rollup incomplete"
        );
        Err(RollupIncomplete { report })
    }
}

/// `MAESTRO_ROLLUP_DAYS`: how many days (ending today, UTC) each run recomputes; default 2.
pub fn options_from_env(env: &maestro_lambda_common::Env) -> Result<RollupOptions, maestro_lambda_common::ConfigError> {
    let days = env.parse_or("MAESTRO_ROLLUP_DAYS", RollupOptions::default().days)?;
    if !(1..=30).contains(&days) {
        return Err(maestro_lambda_common::ConfigError::Setting {
            name: "MAESTRO_ROLLUP_DAYS",
            message: format!("{days}: use 1 to 30"),
        });
    }
    Ok(RollupOptions { days })
}
