//! A route's part of a call: which of its rules applies and in which order its targets are
//! tried (the choosing and ordering themselves are `routing`'s), and the prompt's token count
//! they and the context-window check are judged by.

use std::time::Duration;

use crate::domain::{Catalog, ChatRequest, Resolution, Route, Strategy, Target};
use crate::routing::{self, OrderInputs, RequestTraits, Timing, fits_context, target_name};
use crate::stats::{self, StatsQuery};
use crate::time::{self, now_ms};
use crate::tokens::{PromptCount, o200k_prompt_tokens};

use super::Gateway;

/// How long a `fastest` route waits for the stats to seed a target's latency.
const LATENCY_SEED_WAIT: Duration = Duration::from_millis(250);

/// The prompt's tokens as rules and context windows see them: the o200k count when something
/// depends on it (a `prompt_tokens_over` rule, a `cheapest` strategy, a window the cheap bound
/// does not prove the prompt fits), else the cheap bound, which only ever over-states.
pub(super) async fn prompt_tokens(
    route: Option<&Route>,
    resolution: &Resolution<'_>,
    request: &ChatRequest,
    prompt: &PromptCount,
) -> u64 {
    let bound = prompt.o200k_bound();
    let cheapest = |s: Option<Strategy>| s == Some(Strategy::Cheapest);
    let route_needs = route.is_some_and(|r| {
        cheapest(Some(r.strategy))
            || r.rules.iter().any(|rule| rule.when.uses_prompt_tokens() || cheapest(rule.strategy))
    });
    let window_needs = resolution.targets.iter().any(|t| !fits_context(t.model, bound, request.requested_max_tokens()));
    if route_needs || window_needs { o200k_prompt_tokens(request).await } else { bound }
}

impl Gateway {
    /// The rule of `route` that applies to a request with these `traits` (its label: index or
    /// `default`) and its active targets in the order its strategy gives. `max_tokens`: the
    /// caller's, for `cheapest`.
    pub(super) async fn route_targets<'c>(
        &self,
        catalog: &'c Catalog,
        route: &'c Route,
        traits: RequestTraits,
        max_tokens: Option<u64>,
        timing: Timing,
    ) -> (String, Vec<Target<'c>>) {
        let prompt_tokens = traits.prompt_tokens.unwrap_or(0);
        let choice = routing::choose(route, &traits, |names| !catalog.active_targets(names).is_empty());
        let chosen = catalog.active_targets(choice.targets);
        // Weights follow their targets when inactive ones drop out.
        let weights: Vec<u32> = match choice.weights {
            [] => Vec::new(),
            weights => chosen.iter().map(|(i, _)| weights.get(*i).copied().unwrap_or(0)).collect(),
        };
        let targets: Vec<Target<'c>> = chosen.into_iter().map(|(_, t)| t).collect();
        if choice.strategy == Strategy::Fastest {
            self.seed_latencies(&targets).await;
        }
        let inputs = OrderInputs {
            strategy: choice.strategy,
            weights: &weights,
            prompt_tokens,
            max_tokens,
            timing,
            now_ms: now_ms(),
        };
        (choice.label(), routing::order(targets, &inputs, &self.board))
    }

    /// Gives targets this process has not timed yet a first latency: their median in the stats
    /// of today and yesterday. Asked once per target and process, and never for long.
    async fn seed_latencies(&self, targets: &[Target<'_>]) {
        let Some(stats) = &self.latency_source else {
            return;
        };
        let today = time::stats_date(now_ms());
        let yesterday = time::stats_date(now_ms() - 86_400_000);
        let asks = targets.iter().filter(|t| self.board.needs_seed(&target_name(t))).map(|t| {
            let query = StatsQuery {
                from_date: yesterday.clone(),
                to_date: today.clone(),
                provider: Some(t.entry.provider.code.clone()),
                model: Some(t.model.model.clone()),
                ..StatsQuery::default()
            };
            async move {
                let rows = tokio::time::timeout(LATENCY_SEED_WAIT, stats.stats_rows(&query)).await;
                (target_name(t), rows)
            }
        });
        for (name, rows) in futures_util::future::join_all(asks).await {
            match rows {
                Ok(Ok(rows)) => {
                    if let Some(p50) = stats::total(&rows).latency_percentile(50) {
                        self.board.seed_latency(&name, p50);
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(target = %name, error = %e, "no latency from the stats for a fastest route")
                }
                Err(_) => tracing::warn!(target = %name, "the stats were slow to give a latency; timing it live"),
            }
        }
    }
}
