//! The gateway hook for users' credits (on when the backends carry a `CreditStore`; see
//! `store::credits`): before the first provider attempt the call holds the most it may be
//! charged — on each fitting target its cost bound (as the caller budgets count it) times that
//! model's markup, the dearest of them — or is refused with 402; when the call is recorded, the
//! hold is settled against the real cost times the served model's markup (zero for a call that
//! failed). So concurrent calls never spend more than the balance, save an estimate that falls
//! short of the truth.

use std::sync::Arc;

use crate::credits::ChargeEvent;
use crate::domain::Target;
use crate::error::ApiError;
use crate::pricing::CreditMarkup;
use crate::store::{CreditStore, LedgerEntry, Settlement};

use super::{Ask, Credits};
use crate::tokens::PromptCount;

use super::caller_budget::bounds;

/// A hold to settle when the call is recorded.
#[derive(Debug, Clone)]
pub(super) struct CreditHold {
    user_id: String,
    held_micros: i64,
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Holds the most the call may be charged; 402 when the user's available credits do not cover it.
pub(super) async fn hold(
    store: &Arc<dyn CreditStore>,
    markup: &CreditMarkup,
    user_id: &str,
    ask: Ask<'_>,
    prompt: &PromptCount,
    targets: &[&Target<'_>],
    default_max_tokens: u64,
) -> Result<CreditHold, ApiError> {
    let most = targets
        .iter()
        .map(|t| {
            let (_, cost) = bounds(ask, prompt, t, default_max_tokens);
            markup.charge(&t.entry.provider.code, &t.model.model, cost)
        })
        .max()
        .unwrap_or(0);
    let amount = signed(most);
    if store.hold_credits(user_id, amount).await.map_err(ApiError::from)? {
        return Ok(CreditHold { user_id: user_id.to_string(), held_micros: amount });
    }
    let available = store.credit_account(user_id).await.map(|a| a.available_micros).unwrap_or(0);
    Err(ApiError::payment_required(
        "insufficient_credits",
        format!(
            "User `{user_id}` has {} of credits available and this request may cost up to {}. Top up the \
             balance, or lower `max_tokens`.",
            usd(available),
            usd(amount)
        ),
    ))
}

/// Micro-USD as people read them: `$0.012345`.
fn usd(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}${}.{:06}", m / 1_000_000, m % 1_000_000)
}

/// What a recorded call settles: the served `provider/model` and its cost (zero if it failed).
pub(super) struct Charge<'a> {
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
    pub cost_micros: u64,
    pub call_id: &'a str,
    pub started_ms: i64,
}

/// Releases the hold and takes the charge, then announces it (a charge above zero); a store
/// failure is logged (the hold then stays held).
pub(super) async fn settle(credits: Option<&Credits>, markup: &CreditMarkup, hold: Option<CreditHold>, c: Charge<'_>) {
    let (Some(credits), Some(hold)) = (credits, hold) else { return };
    let (provider, model) = (c.provider.unwrap_or(""), c.model.unwrap_or(""));
    let charge = if c.cost_micros == 0 { 0 } else { signed(markup.charge(provider, model, c.cost_micros)) };
    if hold.held_micros == 0 && charge == 0 {
        return; // A free call on a free model: nothing held, nothing to write.
    }
    let label = format!("{provider}/{model}");
    let settlement = Settlement {
        user_id: &hold.user_id,
        held_micros: hold.held_micros,
        charge_micros: charge,
        call_id: c.call_id,
        ts_ms: c.started_ms,
        model: &label,
    };
    if let Err(e) = credits.store.settle_credits(&settlement).await {
        tracing::error!(user_id = %hold.user_id, call_id = c.call_id, held = hold.held_micros, charge, error = %e, "credit settle failed; the hold stays held");
        return;
    }
    if let Some(events) = &credits.events
        && charge > 0
    {
        let entry = LedgerEntry::charge(&settlement);
        events
            .send(ChargeEvent {
                event_type: ChargeEvent::TYPE.to_string(),
                id: entry.id,
                user_id: hold.user_id.clone(),
                charge_micro_usd: charge,
                cost_micro_usd: c.cost_micros,
                model: label.clone(),
                call_id: c.call_id.to_string(),
                ts_ms: c.started_ms,
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_dollars() {
        assert_eq!(usd(12_345), "$0.012345");
        assert_eq!(usd(2_500_000), "$2.500000");
        assert_eq!(usd(-150), "-$0.000150");
    }
}
