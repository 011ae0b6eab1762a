//! The gateway hook for callers who come with a Maestro API key ([`Caller::key`]): the key's
//! allowed models (403), and its own limits, held with the same exact window counters as provider
//! keys (docs/ARCHITECTURE.md §4, [`CounterStore::reserve_budget`]):
//!
//! - before the first provider attempt, one request, the call's token bound (the prompt counted
//!   for each fitting target plus `n` times the largest output it may give) and its cost bound
//!   (those tokens at the dearest fitting target's prices) are reserved in the key's minute and day windows, only
//!   if rpm, the daily token budget and the daily cost budget still hold; otherwise 429 (tokens
//!   and cost are counted only for a key that has that budget);
//! - when the call is recorded (success, failure, or the end of a stream), the estimates are
//!   replaced by the real tokens and cost (zero for a call that failed); the request stays counted.
//!
//! So, as for provider keys, concurrent calls can never pass more than the key's rpm in a minute,
//! nor reserve more than its budgets in a UTC day. A key without limits costs no write.
//!
//! [`Caller::key`]: super::Caller::key

use crate::domain::{Resolution, Target, Usage};
use crate::error::ApiError;
use crate::pricing::cost_micros;
use crate::store::{CallerKey, CounterStore, Grant, Reservation, WindowKind};
use crate::time::now_ms;
use crate::tokens::PromptCount;

use super::Ask;
use super::errors::secs_until;

/// A reservation on a caller key's windows, to settle when the call is recorded.
#[derive(Debug, Clone)]
pub(super) struct CallerGrant {
    grant: Grant,
    /// Which budgets the key has: only those are counted (an rpm-only key costs no reconcile).
    counts_tokens: bool,
    counts_cost: bool,
}

/// 403 when the key may not use what `requested` resolved to.
pub(super) fn check_allowed(key: &CallerKey, requested: &str, resolution: &Resolution<'_>) -> Result<(), ApiError> {
    if key.allows(requested, resolution) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "This Maestro API key may not use `{requested}`; it is limited to: {}.",
        key.allowed_models.join(", ")
    ))
    .with_param("model"))
}

/// Reserves the call in the key's windows; `None` for a key without limits.
pub(super) async fn reserve(
    counters: &dyn CounterStore,
    key: &CallerKey,
    ask: Ask<'_>,
    prompt: &PromptCount,
    targets: &[&Target<'_>],
    default_max_tokens: u64,
) -> Result<Option<CallerGrant>, ApiError> {
    let limits = key.limits;
    if limits.rpm.is_none() && limits.tokens_per_day.is_none() && limits.cost_micros_per_day.is_none() {
        return Ok(None);
    }
    let (tokens, cost) = estimate(ask, prompt, targets, default_max_tokens);
    // A call larger than a whole budget may still run on a fresh day (as a provider key's tpm
    // does); its real usage is counted afterwards. Without a budget, nothing is counted for it.
    let tokens = limits.tokens_per_day.map_or(0, |max| tokens.min(max));
    let cost = limits.cost_micros_per_day.map_or(0, |max| cost.min(max));
    let now = now_ms();
    let zero_budget = limits.tokens_per_day == Some(0) || limits.cost_micros_per_day == Some(0);
    let reservation = if zero_budget {
        Reservation::Refused { window: WindowKind::Day, until_ms: crate::time::day_window_end(now) }
    } else {
        counters.reserve_budget(&key.counter_id(), &limits, now, tokens, cost).await.map_err(ApiError::from)?
    };
    match reservation {
        Reservation::Granted(grant) => Ok(Some(CallerGrant {
            grant,
            counts_tokens: limits.tokens_per_day.is_some(),
            counts_cost: limits.cost_micros_per_day.is_some(),
        })),
        Reservation::Refused { window: WindowKind::Minute, until_ms } => Err(ApiError::rate_limited(
            format!(
                "Maestro API key `{}` allows {} requests per minute; retry after the window ends.",
                key.name,
                limits.rpm.unwrap_or(0)
            ),
            secs_until(until_ms, now),
        )
        // Maestro's own code, so clients tell a caller limit from a provider's.
        .with_code("caller_rate_limited")),
        Reservation::Refused { window: WindowKind::Day, until_ms } => {
            Err(budget_refusal(counters, key, tokens, cost, now).await.with_retry_after(secs_until(until_ms, now)))
        }
    }
}

/// The most tokens and micro-USD the call may bill on any of its targets (see [`bounds`]).
fn estimate(ask: Ask<'_>, prompt: &PromptCount, targets: &[&Target<'_>], default_max_tokens: u64) -> (u64, u64) {
    targets
        .iter()
        .map(|t| bounds(ask, prompt, t, default_max_tokens))
        .fold((0, 0), |(tokens, cost), (t, c)| (tokens.max(t), cost.max(c)))
}

/// The most tokens and micro-USD the call may bill on `target`: its prompt bound plus `n` times
/// its largest output (none for embeddings), the prompt at the dearer of the input and
/// cache-write prices (a prompt may be written to the provider's cache), the output at the
/// output price.
pub(super) fn bounds(ask: Ask<'_>, prompt: &PromptCount, t: &Target<'_>, default_max_tokens: u64) -> (u64, u64) {
    let prompt = prompt.bound(t.entry.provider.kind, &t.model.model);
    let output = ask.output_bound(t, default_max_tokens);
    let prices = &t.model.prices;
    let input_price = prices.input.max(prices.cache_write.unwrap_or(0));
    let usage = Usage { prompt_tokens: prompt, completion_tokens: output, ..Usage::default() };
    let cost = cost_micros(&crate::domain::Prices { input: input_price, ..*prices }, &usage);
    (prompt.saturating_add(output), cost)
}

/// The 429 for a day refusal, naming the budget that refused (read back, best effort).
async fn budget_refusal(counters: &dyn CounterStore, key: &CallerKey, tokens: u64, cost: u64, now: i64) -> ApiError {
    let usage = counters.budget_usage(&key.counter_id(), now).await.unwrap_or_default();
    let name = &key.name;
    let tokens_refused =
        key.limits.tokens_per_day.is_some_and(|max| max == 0 || usage.day_tokens.saturating_add(tokens) > max);
    let message = match (tokens_refused, key.limits.tokens_per_day, key.limits.cost_micros_per_day) {
        (true, Some(max), _) if usage.day_tokens >= max => format!(
            "Maestro API key `{name}` has exhausted its daily token budget ({} of {max} tokens used today, UTC); it resets at 00:00 UTC.",
            usage.day_tokens
        ),
        (true, Some(max), _) => format!(
            "Maestro API key `{name}` would exceed its daily token budget: {} of {max} tokens are used or reserved today (UTC) and this request may take up to {tokens}. Lower `max_tokens`, or wait until the budget resets at 00:00 UTC.",
            usage.day_tokens
        ),
        (_, _, Some(max)) if usage.day_cost_micros >= max => format!(
            "Maestro API key `{name}` has exhausted its daily cost budget ({} of {max} micro-USD spent today, UTC); it resets at 00:00 UTC.",
            usage.day_cost_micros
        ),
        (_, _, Some(max)) => format!(
            "Maestro API key `{name}` would exceed its daily cost budget: {} of {max} micro-USD are spent or reserved today (UTC) and this request may cost up to {cost}. Lower `max_tokens`, or wait until the budget resets at 00:00 UTC.",
            usage.day_cost_micros
        ),
        _ => format!("Maestro API key `{name}` has reached a daily budget; it resets at 00:00 UTC."),
    };
    ApiError::rate_limited(message, 1).with_code("caller_budget_exceeded")
}

/// Replaces the reserved estimates with the call's real tokens and cost (zero when it failed).
pub(super) async fn settle(counters: &dyn CounterStore, grant: Option<CallerGrant>, usage: Usage, cost: u64) {
    let Some(CallerGrant { grant, counts_tokens, counts_cost }) = grant else {
        return;
    };
    let signed = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let tokens_delta = if counts_tokens { signed(usage.total()) - signed(grant.reserved_tokens) } else { 0 };
    let cost_delta = if counts_cost { signed(cost) - signed(grant.reserved_cost_micros) } else { 0 };
    if tokens_delta == 0 && cost_delta == 0 {
        return;
    }
    if let Err(e) = counters.reconcile_budget(&grant, tokens_delta, cost_delta).await {
        tracing::error!(key_id = %grant.key_id, error = %e, "caller key reconcile failed");
    }
}
