//! Per-key rate-limit windows: `USE#<key>#M#<yyyymmddHHMM>` and `USE#<key>#D#<yyyymmdd>` items
//! holding `requests`, and `tokens` / `cost_micros` where a limit applies to them.
//!
//! A window is written only when the key has a limit on it. A window with high limits is split
//! into shards, each holding its share of every limit (shard 0 keeps the plain name, shard n is
//! `…#<n>`), so no partition takes every call of a busy key (docs/ARCHITECTURE.md §4). A
//! reservation adds to one shard of each counted window with one conditional UpdateItem per
//! window: no transaction (a transactional write costs twice the units and conflicts with its
//! neighbours); when the day refuses, what the minute took is given back.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::KeysAndAttributes;

use super::{DynamoStore, Expr, Item, Reader, build_failed, key, n, retry};
use crate::domain::KeyLimits;
use crate::store::{
    BudgetLimits, BudgetUsage, Counted, CountedIn, CounterStore, Grant, Reservation, StoreError, WindowKind,
    WindowUsage,
};
use crate::time;

const WINDOW_SK: &str = "-";
/// How long window items outlive their window: long enough for a late reconcile (a call may
/// last the whole 5-minute deadline) to find them.
const MINUTE_ITEM_GRACE_MS: i64 = 10 * 60_000;
const DAY_ITEM_GRACE_MS: i64 = 2 * 86_400_000;
/// Rounds of decrement-or-zero before a reconcile gives up (only when the item is gone).
const RECONCILE_ROUNDS: u32 = 3;
/// A window is split into at most this many shards, and only as far as each shard keeps at
/// least the `MIN_*_PER_SHARD` of every limit: small limits stay in one exact item, and a
/// shard's share of tokens stays larger than nearly any single call.
pub(super) const MAX_SHARDS: u16 = 16;
const MIN_REQUESTS_PER_SHARD: u64 = 32;
const MIN_TOKENS_PER_SHARD: u64 = 250_000;
const MIN_COST_MICROS_PER_SHARD: u64 = 1_000_000;

fn minute_pk(key_id: &str, minute_window: &str) -> String {
    format!("USE#{key_id}#M#{minute_window}")
}

fn day_pk(key_id: &str, day_window: &str) -> String {
    format!("USE#{key_id}#D#{day_window}")
}

/// Shard 0 is the window's plain item, so an unsharded window is named as it always was.
fn shard_pk(window_pk: &str, shard: u16) -> String {
    if shard == 0 { window_pk.to_string() } else { format!("{window_pk}#{shard}") }
}

/// A window (one shard of it) known to be full for a request-count limit: `limit` is part of
/// the identity, so an admin raising the limit is seen at once.
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

fn refusal(window: WindowKind, now_ms: i64) -> Reservation {
    let until_ms = match window {
        WindowKind::Minute => time::minute_window_end(now_ms),
        WindowKind::Day => time::day_window_end(now_ms),
    };
    Reservation::Refused { window, until_ms }
}

/// The limits of one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Caps {
    requests: Option<u64>,
    tokens: Option<u64>,
    cost_micros: Option<u64>,
}

impl Caps {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Only a request count is limited: a refused write then means the shard is full until the
    /// window ends (tokens and cost can be given back by a reconcile).
    fn requests_only(&self) -> bool {
        self.requests.is_some() && self.tokens.is_none() && self.cost_micros.is_none()
    }

    /// As many shards as keep every limit's share at its minimum, at most [`MAX_SHARDS`].
    fn shards(&self) -> u16 {
        let mut shards = u64::from(MAX_SHARDS);
        for (cap, min) in [
            (self.requests, MIN_REQUESTS_PER_SHARD),
            (self.tokens, MIN_TOKENS_PER_SHARD),
            (self.cost_micros, MIN_COST_MICROS_PER_SHARD),
        ] {
            if let Some(cap) = cap {
                shards = shards.min(cap / min);
            }
        }
        u16::try_from(shards.max(1)).unwrap_or(1)
    }
}

/// Shard `shard`'s part of `cap`: the limit split as evenly as integers allow (the parts sum to
/// `cap`, so the shards together never admit more than the window's limit).
fn share(cap: u64, shards: u16, shard: u16) -> u64 {
    let parts = u64::from(shards.max(1));
    cap / parts + u64::from(u64::from(shard) < cap % parts)
}

/// What a shard holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Held {
    requests: u64,
    tokens: u64,
    cost_micros: u64,
}

impl Held {
    fn read(item: Option<&Item>) -> Result<Self, StoreError> {
        let Some(item) = item else {
            return Ok(Self::default());
        };
        let r = Reader::new(item, "window");
        Ok(Self { requests: r.count("requests")?, tokens: r.count("tokens")?, cost_micros: r.count("cost_micros")? })
    }
}

/// One reservation's addition to one window.
#[derive(Debug, Clone)]
struct Charge {
    window_pk: String,
    kind: WindowKind,
    caps: Caps,
    shards: u16,
    /// Counted only where a limit applies (zero otherwise); at most one shard's share.
    tokens: u64,
    cost_micros: u64,
    expires_at_s: i64,
}

impl Charge {
    /// `None` when the key has no limit on the window: nothing is written for it.
    fn new(
        window_pk: String,
        kind: WindowKind,
        caps: Caps,
        tokens: u64,
        cost_micros: u64,
        expires_at_ms: i64,
    ) -> Option<Self> {
        if caps.is_empty() {
            return None;
        }
        let shards = caps.shards();
        // A call larger than a shard's share holds the share; its excess is counted by its
        // reconcile, like a call larger than the whole window (docs/ARCHITECTURE.md §4).
        let smallest_share = |cap: Option<u64>| cap.map_or(u64::MAX, |cap| cap / u64::from(shards));
        Some(Self {
            window_pk,
            kind,
            caps,
            shards,
            tokens: if caps.tokens.is_some() { tokens.min(smallest_share(caps.tokens)) } else { 0 },
            cost_micros: if caps.cost_micros.is_some() { cost_micros.min(smallest_share(caps.cost_micros)) } else { 0 },
            expires_at_s: expires_at_ms.div_euclid(1000),
        })
    }

    fn with_tokens(&self) -> bool {
        self.caps.tokens.is_some() || self.caps.cost_micros.is_some()
    }

    /// Whether one more call fits in a shard holding `held`.
    fn fits(&self, shard: u16, held: Held) -> bool {
        let within = |cap: Option<u64>, used: u64, add: u64| {
            cap.is_none_or(|cap| used.saturating_add(add) <= share(cap, self.shards, shard))
        };
        within(self.caps.requests, held.requests, 1)
            && within(self.caps.tokens, held.tokens, self.tokens)
            && within(self.caps.cost_micros, held.cost_micros, self.cost_micros)
    }

    /// The request-count share of a shard, when requests are all that is limited.
    fn full_window(&self, shard: u16) -> Option<FullWindow> {
        let limit = self.caps.requests.filter(|_| self.caps.requests_only())?;
        Some(FullWindow { pk: shard_pk(&self.window_pk, shard), limit: share(limit, self.shards, shard) })
    }
}

/// How a window took a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claimed {
    /// The key has no limit on the window.
    NotCounted,
    In(u16),
    Full,
}

impl Claimed {
    fn counted_in(self, charge: Option<&Charge>) -> Option<CountedIn> {
        match (self, charge) {
            (Self::In(shard), Some(c)) => Some(CountedIn { shard, with_tokens: c.with_tokens() }),
            _ => None,
        }
    }
}

impl DynamoStore {
    fn known_full(&self, window: &FullWindow) -> bool {
        self.full_windows.lock().is_ok_and(|full| full.contains_key(window))
    }

    fn remember_full(&self, window: FullWindow, until_ms: i64, now_ms: i64) {
        if let Ok(mut full) = self.full_windows.lock() {
            full.retain(|_, until| *until > now_ms);
            full.insert(window, until_ms);
        }
    }

    fn window_end(kind: WindowKind, now_ms: i64) -> i64 {
        match kind {
            WindowKind::Minute => time::minute_window_end(now_ms),
            WindowKind::Day => time::day_window_end(now_ms),
        }
    }

    /// One conditional `ADD` of the charge to one shard; `Ok(false)` when the shard is full.
    async fn add_to_shard(&self, c: &Charge, shard: u16) -> Result<bool, StoreError> {
        let mut expr = Expr::default();
        let requests = expr.name("requests");
        let mut adds = vec![format!("{requests} {}", expr.value("one", n(1)))];
        let mut checks = Vec::new();
        if let Some(max) = c.caps.requests {
            checks.push(format!("{requests} < {}", expr.value("max_requests", n(share(max, c.shards, shard)))));
        }
        // `counter + charge <= share`, written so nothing overflows; a missing counter is zero.
        for (attr, cap, add) in
            [("tokens", c.caps.tokens, c.tokens), ("cost_micros", c.caps.cost_micros, c.cost_micros)]
        {
            if let Some(max) = cap {
                let name = expr.name(attr);
                adds.push(format!("{name} {}", expr.value(&format!("add_{attr}"), n(add))));
                let before = share(max, c.shards, shard).saturating_sub(add);
                let bound = expr.value(&format!("max_{attr}_before"), n(before));
                checks.push(format!("(attribute_not_exists({name}) OR {name} <= {bound})"));
            }
        }
        let update = format!(
            "ADD {} SET {} = {}",
            adds.join(", "),
            expr.name("expires_at"),
            expr.value("exp", n(c.expires_at_s))
        );
        let condition = format!("attribute_not_exists({requests}) OR {}", checks.join(" AND "));
        self.update_window(&shard_pk(&c.window_pk, shard), update, Some(condition), &expr, "reserve in a window").await
    }

    /// Takes back what [`Self::add_to_shard`] added, when another window refused the call.
    async fn give_back(&self, c: &Charge, shard: u16) {
        let mut expr = Expr::default();
        let mut adds = vec![format!("{} {}", expr.name("requests"), expr.value("one", n(-1)))];
        if c.caps.tokens.is_some() {
            adds.push(format!("{} {}", expr.name("tokens"), expr.value("t", n(-i128::from(c.tokens)))));
        }
        if c.caps.cost_micros.is_some() {
            adds.push(format!("{} {}", expr.name("cost_micros"), expr.value("c", n(-i128::from(c.cost_micros)))));
        }
        let update = format!("ADD {}", adds.join(", "));
        let pk = shard_pk(&c.window_pk, shard);
        if let Err(e) = self.update_window(&pk, update, None, &expr, "give a reservation back").await {
            // The window over-counts by one call until it ends: it may refuse early, never admit more.
            tracing::warn!(%pk, error = %e, "cannot give back a reservation another window refused");
        }
    }

    /// Counts one call in a shard of the window with room. The first try is a random shard not
    /// known to be full (one write); only if it refuses are all shards read, and those with room
    /// tried, most room first. `Full` only when no shard had room for the call.
    async fn claim(&self, charge: Option<&Charge>, now_ms: i64) -> Result<Claimed, StoreError> {
        let Some(c) = charge else {
            return Ok(Claimed::NotCounted);
        };
        let until_ms = Self::window_end(c.kind, now_ms);
        let open: Vec<u16> = (0..c.shards).filter(|&i| c.full_window(i).is_none_or(|w| !self.known_full(&w))).collect();
        if open.is_empty() {
            return Ok(Claimed::Full);
        }
        let first = open[fastrand::usize(..open.len())];
        if self.add_to_shard(c, first).await? {
            return Ok(Claimed::In(first));
        }
        if c.shards == 1 {
            if let Some(w) = c.full_window(first) {
                self.remember_full(w, until_ms, now_ms);
            }
            return Ok(Claimed::Full);
        }
        let pks: Vec<String> = (0..c.shards).map(|i| shard_pk(&c.window_pk, i)).collect();
        let items = self.read_windows(&pks).await?;
        let mut candidates = Vec::new();
        for (i, pk) in (0..c.shards).zip(&pks) {
            let held = Held::read(items.get(pk))?;
            if let Some(w) = c.full_window(i).filter(|w| held.requests >= w.limit) {
                self.remember_full(w, until_ms, now_ms);
            }
            if i != first && c.fits(i, held) {
                let room = c.caps.requests.map_or(0, |cap| share(cap, c.shards, i).saturating_sub(held.requests));
                let token_room = c.caps.tokens.map_or(0, |cap| share(cap, c.shards, i).saturating_sub(held.tokens));
                candidates.push((room, token_room, i));
            }
        }
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        for (_, _, shard) in candidates {
            if self.add_to_shard(c, shard).await? {
                return Ok(Claimed::In(shard));
            }
        }
        Ok(Claimed::Full)
    }

    /// Claims the call in the minute, then in the day; when the day refuses, the minute's count
    /// is given back. One after the other, not at once: a call the minute refuses then never
    /// holds a place in the day, where it could refuse calls that fit (only a full day, when
    /// every call is refused anyway, makes the minute over-count for a moment).
    async fn reserve_windows(
        &self,
        mut grant: Grant,
        minute: Option<Charge>,
        day: Option<Charge>,
        now_ms: i64,
    ) -> Result<Reservation, StoreError> {
        // A day known to be full refuses first: waiting for the next minute would not help.
        if let Some(d) = &day
            && (0..d.shards).all(|i| d.full_window(i).is_some_and(|w| self.known_full(&w)))
        {
            return Ok(refusal(WindowKind::Day, now_ms));
        }
        let m = self.claim(minute.as_ref(), now_ms).await?;
        if m == Claimed::Full {
            return Ok(refusal(WindowKind::Minute, now_ms));
        }
        let d = match self.claim(day.as_ref(), now_ms).await {
            Ok(Claimed::Full) => Err(None),
            Ok(claimed) => Ok(claimed),
            Err(e) => Err(Some(e)),
        };
        match d {
            Ok(d) => {
                grant.counted = Counted { minute: m.counted_in(minute.as_ref()), day: d.counted_in(day.as_ref()) };
                Ok(Reservation::Granted(grant))
            }
            Err(failure) => {
                if let (Claimed::In(shard), Some(c)) = (m, &minute) {
                    self.give_back(c, shard).await;
                }
                failure.map_or_else(|| Ok(refusal(WindowKind::Day, now_ms)), Err)
            }
        }
    }

    /// Adds `delta` to the counter `attr` of one window item, never below zero, without reading it.
    async fn correct_counter(&self, pk: String, attr: &str, delta: i64) -> Result<(), StoreError> {
        const WHAT: &str = "reconcile a window";
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
            match self.update_window(&pk, update, Some(condition), &add, WHAT).await? {
                true => return Ok(()),
                false if delta > 0 => return Ok(()), // the window item is gone: nothing to correct
                false => {}
            }
            let mut zero = Expr::default();
            let toks = zero.name(attr);
            let update = format!("SET {toks} = {}", zero.value("zero", n(0)));
            let condition = format!("{toks} < {}", zero.value("abs", n(abs)));
            if self.update_window(&pk, update, Some(condition), &zero, WHAT).await? {
                return Ok(());
            }
            // Neither held: the count moved in between (or the item is gone); try again.
        }
        tracing::debug!(%pk, "reconcile found no window item to correct");
        Ok(())
    }

    /// One UpdateItem of a window item; `Ok(false)` when its condition did not hold. Retried
    /// while the table throttles or DynamoDB is unavailable. A retry after an attempt that may
    /// have been carried out can count a call twice: the window then refuses early, never late.
    async fn update_window(
        &self,
        pk: &str,
        update: String,
        condition: Option<String>,
        expr: &Expr,
        what: &'static str,
    ) -> Result<bool, StoreError> {
        retry::retrying(what, |_| {
            let request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(pk, WINDOW_SK)))
                .update_expression(&update)
                .set_condition_expression(condition.clone())
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values());
            async move {
                match request.send().await {
                    Ok(_) => Ok(true),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                        Ok(false)
                    }
                    Err(e) => Err(retry::classify(what, &e)),
                }
            }
        })
        .await
    }

    /// Window items by pk, read strongly consistent in one BatchGetItem per 100 (absent items
    /// are simply missing from the map).
    async fn read_windows(&self, pks: &[String]) -> Result<std::collections::HashMap<String, Item>, StoreError> {
        const WHAT: &str = "read a window";
        let mut found = std::collections::HashMap::new();
        for chunk in pks.chunks(100) {
            let mut pending: Vec<Item> = chunk.iter().map(|pk| key(pk.as_str(), WINDOW_SK)).collect();
            let mut rounds = 0;
            while !pending.is_empty() {
                rounds += 1;
                if rounds > retry::ATTEMPTS {
                    return Err(StoreError::Unavailable(format!("dynamodb: cannot {WHAT}: keys left unprocessed")));
                }
                let keys = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(build_failed(WHAT))?;
                let out = retry::retrying(WHAT, |_| {
                    let request = self.client.batch_get_item().request_items(&self.table, keys.clone());
                    async move { request.send().await.map_err(|e| retry::classify(WHAT, &e)) }
                })
                .await?;
                for item in out.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    let pk = Reader::new(item, "window").s("pk")?;
                    found.insert(pk, item.clone());
                }
                pending = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(retry::jittered(std::time::Duration::from_millis(20))).await;
                }
            }
        }
        Ok(found)
    }

    /// What every shard of a minute and a day window holds together.
    async fn windows_held(&self, minute_pk: &str, day_pk: &str) -> Result<(Held, Held), StoreError> {
        let pks: Vec<String> =
            [minute_pk, day_pk].iter().flat_map(|pk| (0..MAX_SHARDS).map(move |i| shard_pk(pk, i))).collect();
        let items = self.read_windows(&pks).await?;
        let mut sums = [Held::default(); 2];
        for (sum, window) in sums.iter_mut().zip([minute_pk, day_pk]) {
            for i in 0..MAX_SHARDS {
                let held = Held::read(items.get(&shard_pk(window, i)))?;
                sum.requests += held.requests;
                sum.tokens += held.tokens;
                sum.cost_micros += held.cost_micros;
            }
        }
        Ok((sums[0], sums[1]))
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
        let mut grant = Grant::new(key_id, now_ms, tokens, 0, Counted::default());
        let minute = Charge::new(
            minute_pk(key_id, &grant.minute_window),
            WindowKind::Minute,
            Caps { requests: limits.rpm, tokens: limits.tpm, cost_micros: None },
            tokens,
            0,
            time::minute_window_end(now_ms) + MINUTE_ITEM_GRACE_MS,
        );
        let day = Charge::new(
            day_pk(key_id, &grant.day_window),
            WindowKind::Day,
            Caps { requests: limits.rpd, ..Caps::default() },
            0,
            0,
            time::day_window_end(now_ms) + DAY_ITEM_GRACE_MS,
        );
        if let Some(c) = minute.as_ref().filter(|c| c.caps.tokens.is_some()) {
            grant.reserved_tokens = c.tokens;
        }
        self.reserve_windows(grant, minute, day, now_ms).await
    }

    /// Only the windows that count tokens are corrected (one UpdateItem each, in parallel).
    async fn reconcile(&self, grant: &Grant, delta: i64) -> Result<(), StoreError> {
        if delta == 0 {
            return Ok(());
        }
        let mut corrections = Vec::new();
        for (counted, pk) in [
            (grant.counted.minute, minute_pk(&grant.key_id, &grant.minute_window)),
            (grant.counted.day, day_pk(&grant.key_id, &grant.day_window)),
        ] {
            if let Some(within) = counted.filter(|c| c.with_tokens) {
                corrections.push(self.correct_counter(shard_pk(&pk, within.shard), "tokens", delta));
            }
        }
        futures_util::future::join_all(corrections).await.into_iter().collect()
    }

    async fn usage(&self, key_id: &str, now_ms: i64) -> Result<(WindowUsage, WindowUsage), StoreError> {
        let minute = minute_pk(key_id, &time::minute_window(now_ms));
        let day = day_pk(key_id, &time::day_window(now_ms));
        let (minute, day) = self.windows_held(&minute, &day).await?;
        Ok((
            WindowUsage { requests: minute.requests, tokens: minute.tokens },
            WindowUsage { requests: day.requests, tokens: day.tokens },
        ))
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
        let mut grant = Grant::new(key_id, now_ms, tokens, cost_micros, Counted::default());
        // The minute counts requests only (rpm); tokens and cost are budgets of the day.
        let minute = Charge::new(
            minute_pk(key_id, &grant.minute_window),
            WindowKind::Minute,
            Caps { requests: limits.rpm, ..Caps::default() },
            0,
            0,
            time::minute_window_end(now_ms) + MINUTE_ITEM_GRACE_MS,
        );
        let day = Charge::new(
            day_pk(key_id, &grant.day_window),
            WindowKind::Day,
            Caps { requests: None, tokens: limits.tokens_per_day, cost_micros: limits.cost_micros_per_day },
            tokens,
            cost_micros,
            time::day_window_end(now_ms) + DAY_ITEM_GRACE_MS,
        );
        if let Some(c) = &day {
            (grant.reserved_tokens, grant.reserved_cost_micros) = (c.tokens, c.cost_micros);
        } else {
            (grant.reserved_tokens, grant.reserved_cost_micros) = (0, 0);
        }
        self.reserve_windows(grant, minute, day, now_ms).await
    }

    /// Tokens and cost live in the day window only: one UpdateItem per counter that changed, in
    /// parallel; nothing for a zero delta.
    async fn reconcile_budget(&self, grant: &Grant, tokens_delta: i64, cost_delta: i64) -> Result<(), StoreError> {
        let Some(within) = grant.counted.day.filter(|c| c.with_tokens) else {
            return Ok(());
        };
        let day = shard_pk(&day_pk(&grant.key_id, &grant.day_window), within.shard);
        let mut corrections = Vec::new();
        for (attr, delta) in [("tokens", tokens_delta), ("cost_micros", cost_delta)] {
            if delta != 0 {
                corrections.push(self.correct_counter(day.clone(), attr, delta));
            }
        }
        futures_util::future::join_all(corrections).await.into_iter().collect()
    }

    async fn budget_usage(&self, key_id: &str, now_ms: i64) -> Result<BudgetUsage, StoreError> {
        let minute = minute_pk(key_id, &time::minute_window(now_ms));
        let day = day_pk(key_id, &time::day_window(now_ms));
        let (minute, day) = self.windows_held(&minute, &day).await?;
        Ok(BudgetUsage {
            minute_requests: minute.requests,
            day_requests: day.requests,
            day_tokens: day.tokens,
            day_cost_micros: day.cost_micros,
        })
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
    fn window_items_are_named_by_key_kind_window_and_shard() {
        assert_eq!(minute_pk("k1", &time::minute_window(NOW)), format!("USE#k1#M#{}", time::minute_window(NOW)));
        assert_eq!(day_pk("k1", "20261126"), "USE#k1#D#20261126");
        assert_eq!(shard_pk("USE#k1#D#20261126", 0), "USE#k1#D#20261126");
        assert_eq!(shard_pk("USE#k1#D#20261126", 7), "USE#k1#D#20261126#7");
    }

    #[test]
    fn small_limits_stay_in_one_item_and_high_ones_split_so_each_shard_keeps_its_minimum() {
        let caps = |requests, tokens, cost_micros| Caps { requests, tokens, cost_micros };
        assert_eq!(caps(Some(50), None, None).shards(), 1);
        assert_eq!(caps(Some(10_000), Some(200_000), None).shards(), 1, "tpm below two shards' minimum");
        assert_eq!(caps(Some(100_000), Some(100_000_000), None).shards(), MAX_SHARDS);
        assert_eq!(caps(Some(160), None, None).shards(), 5);
        assert_eq!(caps(None, None, Some(3_500_000)).shards(), 3);
        assert_eq!(caps(Some(0), None, None).shards(), 1);
    }

    #[test]
    fn the_shares_of_a_limit_sum_to_the_limit() {
        for (cap, shards) in [(100_u64, 16_u16), (641, 16), (32, 1), (1_000_000_007, 13)] {
            let parts: Vec<u64> = (0..shards).map(|i| share(cap, shards, i)).collect();
            assert_eq!(parts.iter().sum::<u64>(), cap, "{cap} over {shards}");
            assert!(parts.iter().max().unwrap_or(&0) - parts.iter().min().unwrap_or(&0) <= 1);
        }
    }

    #[test]
    fn a_call_larger_than_a_shard_holds_the_share_and_a_window_without_limits_is_not_written() {
        let caps = Caps { requests: Some(100_000), tokens: Some(16_000_000), cost_micros: None };
        let charge = Charge::new("USE#k#M#1".into(), WindowKind::Minute, caps, 5_000_000, 9, NOW).expect("counted");
        assert_eq!((charge.shards, charge.tokens, charge.cost_micros), (16, 1_000_000, 0));
        assert!(charge.fits(3, Held { requests: 6_249, tokens: 0, cost_micros: 0 }));
        assert!(!charge.fits(3, Held { requests: 6_250, tokens: 0, cost_micros: 0 }), "shard 3's share is 6,250");
        assert!(!charge.fits(3, Held { requests: 0, tokens: 1, cost_micros: 0 }));
        assert!(charge.full_window(3).is_none(), "tokens can be given back: not remembered as full");
        assert!(Charge::new("USE#k#D#1".into(), WindowKind::Day, Caps::default(), 5, 5, NOW).is_none());
        let rpm_only = Charge::new(
            "USE#k#M#1".into(),
            WindowKind::Minute,
            Caps { requests: Some(40), ..Caps::default() },
            5,
            0,
            NOW,
        )
        .expect("counted");
        assert_eq!((rpm_only.shards, rpm_only.tokens, rpm_only.with_tokens()), (1, 0, false));
        assert_eq!(rpm_only.full_window(0), Some(FullWindow { pk: "USE#k#M#1".into(), limit: 40 }));
    }
}
