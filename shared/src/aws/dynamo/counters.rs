//! Per-key rate-limit windows: `USE#<key>#M#<yyyymmddHHMM>` and `USE#<key>#D#<yyyymmdd>` items
//! holding `requests` and `tokens`, reserved together in one conditional transaction.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

use super::{DynamoStore, Expr, Reader, build_failed, condition_failed, get_item, key, n, retry, unexpected};
use crate::domain::KeyLimits;
use crate::store::{BudgetLimits, BudgetUsage, CounterStore, Grant, Reservation, StoreError, WindowKind, WindowUsage};
use crate::time;

const WINDOW_SK: &str = "-";
/// How long window items outlive their window: long enough for a late reconcile (a call may
/// last the whole 5-minute deadline) to find them.
const MINUTE_ITEM_GRACE_MS: i64 = 10 * 60_000;
const DAY_ITEM_GRACE_MS: i64 = 2 * 86_400_000;
/// Rounds of decrement-or-zero before a reconcile gives up (only when the item is gone).
const RECONCILE_ROUNDS: u32 = 3;

fn minute_pk(key_id: &str, minute_window: &str) -> String {
    format!("USE#{key_id}#M#{minute_window}")
}

fn day_pk(key_id: &str, day_window: &str) -> String {
    format!("USE#{key_id}#D#{day_window}")
}

/// A window known to be full for a request-count limit: `limit` is part of the identity, so
/// an admin raising the limit is seen at once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct FullWindow {
    pk: String,
    limit: u64,
}

/// A refusal that needs no write: a limit of zero, or more tokens than the minute allows.
fn refused_up_front(limits: &KeyLimits, tokens: u64, now_ms: i64) -> Option<Reservation> {
    if limits.rpd == Some(0) {
        return Some(Reservation::Refused { window: WindowKind::Day, until_ms: time::day_window_end(now_ms) });
    }
    if limits.rpm == Some(0) || limits.tpm.is_some_and(|tpm| tokens > tpm) {
        return Some(Reservation::Refused { window: WindowKind::Minute, until_ms: time::minute_window_end(now_ms) });
    }
    None
}

/// A caller key's refusal that needs no write: an rpm of zero, or a request bigger than a whole
/// daily budget (the gateway clamps its estimates, so only a zero budget gets here).
fn budget_refused_up_front(limits: &BudgetLimits, tokens: u64, cost_micros: u64, now_ms: i64) -> Option<Reservation> {
    if limits.tokens_per_day.is_some_and(|max| tokens > max)
        || limits.cost_micros_per_day.is_some_and(|max| cost_micros > max)
    {
        return Some(Reservation::Refused { window: WindowKind::Day, until_ms: time::day_window_end(now_ms) });
    }
    if limits.rpm == Some(0) {
        return Some(Reservation::Refused { window: WindowKind::Minute, until_ms: time::minute_window_end(now_ms) });
    }
    None
}

/// Limits one caller-key window item is held to.
#[derive(Debug, Clone, Copy, Default)]
struct BudgetCaps {
    requests: Option<u64>,
    tokens: Option<u64>,
    cost_micros: Option<u64>,
}

impl DynamoStore {
    /// The `ADD` of one caller-key window (requests, tokens and cost), with the condition that
    /// keeps it within `caps`. Callers make sure `tokens` and `cost_micros` fit their caps.
    fn budget_window_update(
        &self,
        pk: String,
        tokens: u64,
        cost_micros: u64,
        expires_at_ms: i64,
        caps: BudgetCaps,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut expr = Expr::default();
        let (requests, toks, cost) = (expr.name("requests"), expr.name("tokens"), expr.name("cost_micros"));
        let update = format!(
            "ADD {requests} {}, {toks} {}, {cost} {} SET {} = {}",
            expr.value("one", n(1)),
            expr.value("t", n(tokens)),
            expr.value("c", n(cost_micros)),
            expr.name("expires_at"),
            expr.value("exp", n(expires_at_ms.div_euclid(1000))),
        );
        let mut checks = Vec::new();
        if let Some(max) = caps.requests {
            checks.push(format!("{requests} < {}", expr.value("max_requests", n(max))));
        }
        if let Some(max) = caps.tokens {
            checks.push(format!("{toks} <= {}", expr.value("max_tokens_before", n(max.saturating_sub(tokens)))));
        }
        if let Some(max) = caps.cost_micros {
            checks.push(format!("{cost} <= {}", expr.value("max_cost_before", n(max.saturating_sub(cost_micros)))));
        }
        let condition =
            (!checks.is_empty()).then(|| format!("attribute_not_exists({requests}) OR ({})", checks.join(" AND ")));
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, WINDOW_SK)))
            .update_expression(update)
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(build_failed("reserve in a caller key's window"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    async fn budget_window(&self, pk: String) -> Result<(u64, u64, u64), StoreError> {
        let item = get_item(&self.client, &self.table, key(pk, WINDOW_SK), "read a window").await?;
        let Some(item) = item else {
            return Ok((0, 0, 0));
        };
        let r = Reader::new(&item, "window");
        Ok((r.count("requests")?, r.count("tokens")?, r.count("cost_micros")?))
    }

    /// The `ADD` of one window, with the condition that keeps it within its limits.
    fn window_update(
        &self,
        pk: String,
        tokens: u64,
        expires_at_ms: i64,
        max_requests: Option<u64>,
        max_tokens: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut expr = Expr::default();
        let (requests, toks) = (expr.name("requests"), expr.name("tokens"));
        let update = format!(
            "ADD {requests} {}, {toks} {} SET {} = {}",
            expr.value("one", n(1)),
            expr.value("t", n(tokens)),
            expr.name("expires_at"),
            expr.value("exp", n(expires_at_ms.div_euclid(1000))),
        );
        let mut checks = Vec::new();
        if let Some(max) = max_requests {
            checks.push(format!("{requests} < {}", expr.value("max_requests", n(max))));
        }
        if let Some(max) = max_tokens {
            // `refused_up_front` has made sure `tokens <= max`.
            checks.push(format!("{toks} <= {}", expr.value("max_tokens_before", n(max.saturating_sub(tokens)))));
        }
        let condition =
            (!checks.is_empty()).then(|| format!("attribute_not_exists({requests}) OR ({})", checks.join(" AND ")));
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, WINDOW_SK)))
            .update_expression(update)
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(build_failed("reserve in a window"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn known_full(&self, window: &FullWindow) -> bool {
        self.full_windows.lock().is_ok_and(|full| full.contains_key(window))
    }

    fn remember_full(&self, window: FullWindow, until_ms: i64, now_ms: i64) {
        if let Ok(mut full) = self.full_windows.lock() {
            full.retain(|_, until| *until > now_ms);
            full.insert(window, until_ms);
        }
    }

    /// Adds `delta` to the tokens of one window item, never below zero, without reading it.
    async fn correct_tokens(&self, pk: String, delta: i64) -> Result<(), StoreError> {
        self.correct_counter(pk, "tokens", delta).await
    }

    /// Adds `delta` to the counter `attr` of one window item, never below zero, without reading it.
    async fn correct_counter(&self, pk: String, attr: &str, delta: i64) -> Result<(), StoreError> {
        let abs = delta.unsigned_abs();
        for _ in 0..RECONCILE_ROUNDS {
            let mut add = Expr::default();
            let toks = add.name(attr);
            let update = format!("ADD {toks} {}", add.value("d", n(delta)));
            // Up: only where the item still exists. Down: only as far as zero.
            let condition = if delta > 0 {
                format!("attribute_exists({toks})")
            } else {
                format!("{toks} >= {}", add.value("abs", n(abs)))
            };
            match self.update_window(&pk, update, condition, &add).await? {
                true => return Ok(()),
                false if delta > 0 => return Ok(()), // the window item is gone: nothing to correct
                false => {}
            }
            let mut zero = Expr::default();
            let toks = zero.name(attr);
            let update = format!("SET {toks} = {}", zero.value("zero", n(0)));
            let condition = format!("{toks} < {}", zero.value("abs", n(abs)));
            if self.update_window(&pk, update, condition, &zero).await? {
                return Ok(());
            }
            // Neither held: the count moved in between (or the item is gone); try again.
        }
        tracing::debug!(%pk, "reconcile found no window item to correct");
        Ok(())
    }

    /// One conditional UpdateItem; `Ok(false)` when its condition did not hold. Retried while a
    /// reservation's transaction holds the item (`TransactionConflictException`), the table
    /// throttles or DynamoDB is unavailable.
    async fn update_window(
        &self,
        pk: &str,
        update: String,
        condition: String,
        expr: &Expr,
    ) -> Result<bool, StoreError> {
        const WHAT: &str = "reconcile a window";
        retry::retrying(WHAT, |_| {
            let request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(pk, WINDOW_SK)))
                .update_expression(&update)
                .condition_expression(&condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values());
            async move {
                match request.send().await {
                    Ok(_) => Ok(true),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                        Ok(false)
                    }
                    Err(e) => Err(retry::classify(WHAT, &e)),
                }
            }
        })
        .await
    }

    async fn window_usage(&self, pk: String) -> Result<WindowUsage, StoreError> {
        let item = get_item(&self.client, &self.table, key(pk, WINDOW_SK), "read a window").await?;
        let Some(item) = item else {
            return Ok(WindowUsage::default());
        };
        let r = Reader::new(&item, "window");
        Ok(WindowUsage { requests: r.count("requests")?, tokens: r.count("tokens")? })
    }
}

#[async_trait]
impl CounterStore for DynamoStore {
    async fn reserve(
        &self,
        key_id: &str,
        limits: &KeyLimits,
        now_ms: i64,
        tokens: u64,
    ) -> Result<Reservation, StoreError> {
        if let Some(refused) = refused_up_front(limits, tokens, now_ms) {
            return Ok(refused);
        }
        let grant = Grant {
            key_id: key_id.to_string(),
            minute_window: time::minute_window(now_ms),
            day_window: time::day_window(now_ms),
            reserved_tokens: tokens,
        };
        let (minute, day) = (minute_pk(key_id, &grant.minute_window), day_pk(key_id, &grant.day_window));
        let day_refusal = Reservation::Refused { window: WindowKind::Day, until_ms: time::day_window_end(now_ms) };
        let minute_refusal =
            Reservation::Refused { window: WindowKind::Minute, until_ms: time::minute_window_end(now_ms) };
        // Only a request-count refusal is remembered: tokens can be given back by a reconcile.
        let full_day = limits.rpd.map(|limit| FullWindow { pk: day.clone(), limit });
        let full_minute =
            limits.rpm.filter(|_| limits.tpm.is_none()).map(|limit| FullWindow { pk: minute.clone(), limit });
        if full_day.as_ref().is_some_and(|w| self.known_full(w)) {
            return Ok(day_refusal);
        }
        if full_minute.as_ref().is_some_and(|w| self.known_full(w)) {
            return Ok(minute_refusal);
        }

        let items = vec![
            self.window_update(
                minute,
                tokens,
                time::minute_window_end(now_ms) + MINUTE_ITEM_GRACE_MS,
                limits.rpm,
                limits.tpm,
            )?,
            self.window_update(day, tokens, time::day_window_end(now_ms) + DAY_ITEM_GRACE_MS, limits.rpd, None)?,
        ];
        match self.transact("reserve in a key's windows", items, true).await? {
            None => Ok(Reservation::Granted(grant)),
            // The day first: when both are full, waiting for the next minute would not help.
            Some(codes) if condition_failed(&codes, 1) => {
                if let Some(w) = full_day {
                    self.remember_full(w, time::day_window_end(now_ms), now_ms);
                }
                Ok(day_refusal)
            }
            Some(codes) if condition_failed(&codes, 0) => {
                if let Some(w) = full_minute {
                    self.remember_full(w, time::minute_window_end(now_ms), now_ms);
                }
                Ok(minute_refusal)
            }
            Some(codes) => Err(unexpected("reserve in a key's windows", &codes)),
        }
    }

    /// Both windows are corrected at once (two UpdateItems in parallel); tokens stop at zero.
    async fn reconcile(&self, grant: &Grant, delta: i64) -> Result<(), StoreError> {
        if delta == 0 {
            return Ok(());
        }
        let minute = self.correct_tokens(minute_pk(&grant.key_id, &grant.minute_window), delta);
        let day = self.correct_tokens(day_pk(&grant.key_id, &grant.day_window), delta);
        let (minute, day) = tokio::join!(minute, day);
        minute.and(day)
    }

    async fn usage(&self, key_id: &str, now_ms: i64) -> Result<(WindowUsage, WindowUsage), StoreError> {
        let minute = self.window_usage(minute_pk(key_id, &time::minute_window(now_ms)));
        let day = self.window_usage(day_pk(key_id, &time::day_window(now_ms)));
        let (minute, day) = tokio::join!(minute, day);
        Ok((minute?, day?))
    }

    async fn reserve_budget(
        &self,
        key_id: &str,
        limits: &BudgetLimits,
        now_ms: i64,
        tokens: u64,
        cost_micros: u64,
    ) -> Result<Reservation, StoreError> {
        if let Some(refused) = budget_refused_up_front(limits, tokens, cost_micros, now_ms) {
            return Ok(refused);
        }
        let grant = Grant {
            key_id: key_id.to_string(),
            minute_window: time::minute_window(now_ms),
            day_window: time::day_window(now_ms),
            reserved_tokens: tokens,
        };
        let (minute, day) = (minute_pk(key_id, &grant.minute_window), day_pk(key_id, &grant.day_window));
        let day_refusal = Reservation::Refused { window: WindowKind::Day, until_ms: time::day_window_end(now_ms) };
        let minute_refusal =
            Reservation::Refused { window: WindowKind::Minute, until_ms: time::minute_window_end(now_ms) };
        // The minute item is held to rpm alone, so its refusal is remembered until the minute
        // ends; a budget refusal is not (a reconcile can give tokens and cost back).
        let full_minute = limits.rpm.map(|limit| FullWindow { pk: minute.clone(), limit });
        if full_minute.as_ref().is_some_and(|w| self.known_full(w)) {
            return Ok(minute_refusal);
        }
        let items = vec![
            // The minute counts requests only (rpm); tokens and cost are budgets of the day.
            self.budget_window_update(
                minute,
                0,
                0,
                time::minute_window_end(now_ms) + MINUTE_ITEM_GRACE_MS,
                BudgetCaps { requests: limits.rpm, ..BudgetCaps::default() },
            )?,
            self.budget_window_update(
                day,
                tokens,
                cost_micros,
                time::day_window_end(now_ms) + DAY_ITEM_GRACE_MS,
                BudgetCaps { requests: None, tokens: limits.tokens_per_day, cost_micros: limits.cost_micros_per_day },
            )?,
        ];
        match self.transact("reserve in a caller key's windows", items, true).await? {
            None => Ok(Reservation::Granted(grant)),
            Some(codes) if condition_failed(&codes, 1) => Ok(day_refusal),
            Some(codes) if condition_failed(&codes, 0) => {
                if let Some(w) = full_minute {
                    self.remember_full(w, time::minute_window_end(now_ms), now_ms);
                }
                Ok(minute_refusal)
            }
            Some(codes) => Err(unexpected("reserve in a caller key's windows", &codes)),
        }
    }

    /// Tokens and cost live in the day item only: one UpdateItem per counter that changed, in
    /// parallel; nothing for a zero delta.
    async fn reconcile_budget(&self, grant: &Grant, tokens_delta: i64, cost_delta: i64) -> Result<(), StoreError> {
        let day = day_pk(&grant.key_id, &grant.day_window);
        let mut corrections = Vec::new();
        for (attr, delta) in [("tokens", tokens_delta), ("cost_micros", cost_delta)] {
            if delta != 0 {
                corrections.push(self.correct_counter(day.clone(), attr, delta));
            }
        }
        futures_util::future::join_all(corrections).await.into_iter().collect()
    }

    async fn budget_usage(&self, key_id: &str, now_ms: i64) -> Result<BudgetUsage, StoreError> {
        let minute = self.budget_window(minute_pk(key_id, &time::minute_window(now_ms)));
        let day = self.budget_window(day_pk(key_id, &time::day_window(now_ms)));
        let (minute, day) = tokio::join!(minute, day);
        let ((minute_requests, _, _), (day_requests, day_tokens, day_cost_micros)) = (minute?, day?);
        Ok(BudgetUsage { minute_requests, day_requests, day_tokens, day_cost_micros })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;

    #[test]
    fn zero_limits_and_oversized_requests_are_refused_without_a_write() {
        let day = limits(Some(5), None, Some(0));
        assert!(matches!(refused_up_front(&day, 1, NOW), Some(Reservation::Refused { window: WindowKind::Day, .. })));
        let tokens = limits(None, Some(100), None);
        assert!(matches!(
            refused_up_front(&tokens, 101, NOW),
            Some(Reservation::Refused { window: WindowKind::Minute, .. })
        ));
        assert_eq!(refused_up_front(&tokens, 100, NOW), None);
        assert_eq!(refused_up_front(&KeyLimits::default(), u64::MAX, NOW), None);
    }

    fn limits(rpm: Option<u64>, tpm: Option<u64>, rpd: Option<u64>) -> KeyLimits {
        KeyLimits { rpm, tpm, rpd }
    }

    #[test]
    fn window_items_are_named_by_key_kind_and_window() {
        assert_eq!(minute_pk("k1", &time::minute_window(NOW)), format!("USE#k1#M#{}", time::minute_window(NOW)));
        assert_eq!(day_pk("k1", "20261126"), "USE#k1#D#20261126");
    }
}
