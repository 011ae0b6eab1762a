//! The scheduled roll-up (an EventBridge schedule invokes it, every minute by default): a thin
//! handler over [`maestro_shared::stats::rollup`], which returns keys whose cool-down has passed
//! to `normal`, and over the alert rules' evaluation ([`maestro_shared::alerts::engine`]).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{Diagnostic, LambdaEvent};
use maestro_shared::alerts::engine::AlertEngine;
use maestro_shared::stats::rollup::{self, RollupReport};
use maestro_shared::store::CatalogStore;

/// A roll-up that failed; the report says what was done and what failed.
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
/// line, and returns the report. Fails the invocation when a step failed, so the function's
/// `Errors` metric shows it; the next scheduled run tries again.
pub async fn handle(
    catalog: &dyn CatalogStore,
    alerts: Option<&AlertEngine>,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<RollupReport, RollupIncomplete> {
    let now_ms = event.payload.time.map_or_else(maestro_shared::time::now_ms, |t| t.timestamp_millis());
    let mut report = rollup::run(catalog, now_ms).await;
    if let Some(engine) = alerts {
        match engine.run_once(now_ms).await {
            Ok(round) => tracing::info!(
                evaluated = round.evaluated, rules = round.rules, fired = ?round.fired, resolved = ?round.resolved,
                reminded = ?round.reminded, undelivered = round.undelivered, "alerts evaluated"
            ),
            Err(e) => report.errors.push(format!("alerts: {e}")),
        }
    }
    let recovered = report.recovered_keys.join(",");
    if report.errors.is_empty() {
        tracing::info!(recovered = report.recovered_keys.len(), recovered_keys = %recovered, "rollup done");
        Ok(report)
    } else {
        let errors = report.errors.join("; ");
        tracing::error!(
            recovered = report.recovered_keys.len(), recovered_keys = %recovered, %errors, "rollup incomplete"
        );
        Err(RollupIncomplete { report })
    }
}
