//! What the stats API answers, computed here from the stores: usage totals and groups, daily
//! trends (every day of the range, zero-filled), the dashboard, and call-log pages with an opaque
//! cursor. `functions/stats` only parses parameters and renders these.
//!
//! Daily stats rows have no user dimension (they are keyed by day, provider, model, key and
//! route), so usage *per user* is summed from that user's call logs instead (an index query per user on
//! DynamoDB), up to [`MAX_USER_LOGS`] calls per answer; the answer says so (`source: "logs"`,
//! `truncated`).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Days, NaiveDate};
use futures_util::future::join_all;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Catalog, KeyStatus};
use crate::error::ApiError;
use crate::logs::LogEvent;
use crate::stats::{Counters, StatsQuery, StatsRow};
use crate::store::{CounterStore, LogQuery, StatsStore};
use crate::time;

/// Most calls summed from the logs for a per-user usage answer.
pub const MAX_USER_LOGS: usize = 20_000;
/// Longest date range of a usage or trend query (the stats rows live 365 days).
pub const MAX_RANGE_DAYS: u64 = 366;
/// A key counts as near its limit from this share of it (percent).
pub const NEAR_LIMIT_PERCENT: u64 = 80;
/// Models listed on the dashboard.
const TOP_MODELS: usize = 10;

/// Counters as every stats answer shows them.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UsageView {
    pub requests: u64,
    pub successes: u64,
    pub errors: u64,
    /// successes / requests; `null` without requests.
    pub success_rate: Option<f64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// The part of `prompt_tokens` read from a prompt cache.
    pub cached_tokens: u64,
    /// prompt + completion.
    pub total_tokens: u64,
    /// Micro-USD (1,000,000 = $1).
    pub cost_micros: u64,
    pub latency_ms_avg: Option<u64>,
    /// Upper bound of the latency histogram bucket holding the median call (not interpolated
    /// within the bucket; bounds run from 1 ms to 10 min, `stats::LATENCY_BUCKETS_MS`).
    pub latency_ms_p50: Option<u64>,
    /// Upper bound of the latency histogram bucket holding the 95th percentile.
    pub latency_ms_p95: Option<u64>,
    /// Upper bound of the latency histogram bucket holding the 99th percentile.
    pub latency_ms_p99: Option<u64>,
    /// The part of `prompt_tokens` written to a prompt cache (billed at its own price).
    pub cache_write_tokens: u64,
    /// Upstream attempts made with the key(s) counted here, every try included (calls that
    /// another key ended too), and how many of them failed.
    pub attempts: u64,
    pub attempt_errors: u64,
    /// Calls answered from the response cache (counted in `requests` and `successes`, with no
    /// tokens and no cost), their share of `requests`, and the cost they saved (micro-USD).
    pub cache_hits: u64,
    pub cache_hit_rate: Option<f64>,
    pub saved_micros: u64,
}

impl From<&Counters> for UsageView {
    fn from(c: &Counters) -> Self {
        Self {
            requests: c.requests,
            successes: c.successes,
            errors: c.errors,
            success_rate: (c.requests > 0).then(|| c.successes as f64 / c.requests as f64),
            prompt_tokens: c.prompt_tokens,
            completion_tokens: c.completion_tokens,
            cached_tokens: c.cached_tokens,
            total_tokens: c.prompt_tokens + c.completion_tokens,
            cost_micros: c.cost_micros,
            latency_ms_avg: c.latency_ms_sum.checked_div(c.requests),
            latency_ms_p50: c.latency_percentile(50),
            latency_ms_p95: c.latency_percentile(95),
            latency_ms_p99: c.latency_percentile(99),
            cache_write_tokens: c.cache_write_tokens,
            attempts: c.attempts,
            attempt_errors: c.attempt_errors,
            cache_hits: c.cache_hits,
            cache_hit_rate: (c.requests > 0).then(|| c.cache_hits as f64 / c.requests as f64),
            saved_micros: c.saved_micros,
        }
    }
}

/// A `yyyy-mm-dd` parameter.
pub fn parse_date(field: &str, value: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        ApiError::invalid_param(field, format!("`{field}` must be a date written yyyy-mm-dd, not `{value}`."))
    })
}

/// An inclusive date range from optional `from`/`to`, defaulting to the `default_days` days that
/// end today (UTC).
pub fn date_range(
    from: Option<&str>,
    to: Option<&str>,
    default_days: u64,
    now_ms: i64,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let today = parse_date("to", &time::stats_date(now_ms))?;
    let to = to.map(|t| parse_date("to", t)).transpose()?.unwrap_or(today);
    let from = match from {
        Some(f) => parse_date("from", f)?,
        None => to.checked_sub_days(Days::new(default_days.saturating_sub(1))).unwrap_or(to),
    };
    if from > to {
        return Err(ApiError::invalid_param("from", "`from` must not be after `to`."));
    }
    if (to - from).num_days() >= MAX_RANGE_DAYS as i64 {
        return Err(ApiError::invalid_param("from", format!("A range may span at most {MAX_RANGE_DAYS} days.")));
    }
    Ok((from, to))
}

fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Unix ms of the start of a UTC day.
pub fn day_start_ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp_millis())
}

// ---- Usage ----------------------------------------------------------------------------------

/// How usage is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    Provider,
    Model,
    Key,
    /// One group per route; calls that named no route are in the total but in no group.
    Route,
}

impl GroupBy {
    pub fn parse(value: &str) -> Result<Self, ApiError> {
        Ok(match value {
            "day" => Self::Day,
            "provider" => Self::Provider,
            "model" => Self::Model,
            "key" => Self::Key,
            "route" => Self::Route,
            other => {
                return Err(ApiError::invalid_param(
                    "group_by",
                    format!("`group_by` must be day, provider, model, key or route, not `{other}`."),
                ));
            }
        })
    }

    /// The group a row adds to; `None` for a row of calls without a route, grouped by route.
    fn of_row(self, r: &StatsRow) -> Option<String> {
        match self {
            Self::Day => Some(r.date.clone()),
            Self::Provider => Some(r.provider.clone()),
            Self::Model => Some(format!("{}/{}", r.provider, r.model)),
            Self::Key => Some(r.key_id.clone()),
            Self::Route => r.route.clone(),
        }
    }
}

/// What usage to sum.
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub key_id: Option<String>,
    pub user: Option<String>,
    /// Only the calls that named this route.
    pub route: Option<String>,
}

impl UsageFilter {
    fn stats_query(&self, from: NaiveDate, to: NaiveDate) -> StatsQuery {
        StatsQuery {
            from_date: date_text(from),
            to_date: date_text(to),
            provider: self.provider.clone(),
            model: self.model.clone(),
            key_id: self.key_id.clone(),
            route: self.route.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageGroup {
    /// The day, provider, `provider/model`, key id (`-`: calls that used no key) or route.
    pub group: String,
    pub usage: UsageView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageReport {
    pub from: String,
    pub to: String,
    pub total: UsageView,
    /// Empty without `group_by`.
    pub groups: Vec<UsageGroup>,
    /// `stats` (the daily stats rows) or `logs` (summed from call logs: per-user usage).
    pub source: String,
    /// Whether the logs of the range held more than could be summed (only with `source: logs`).
    pub truncated: bool,
}

/// Usage over an inclusive date range, grouped or not.
pub async fn usage(
    store: &dyn StatsStore,
    (from, to): (NaiveDate, NaiveDate),
    filter: &UsageFilter,
    group_by: Option<GroupBy>,
) -> Result<UsageReport, ApiError> {
    let mut groups: BTreeMap<String, Counters> = BTreeMap::new();
    let mut total = Counters::default();
    let (source, truncated) = match &filter.user {
        None => {
            let rows = store.stats_rows(&filter.stats_query(from, to)).await.map_err(ApiError::from)?;
            for row in &rows {
                total.add(&row.counters);
                if let Some(group) = group_by.and_then(|g| g.of_row(row)) {
                    groups.entry(group).or_default().add(&row.counters);
                }
            }
            ("stats", false)
        }
        Some(user) => {
            let mut query = LogQuery {
                from_ms: Some(day_start_ms(from)),
                to_ms: Some(day_start_ms(to) + 86_400_000),
                provider: filter.provider.clone(),
                user_id: Some(user.clone()),
                model: filter.model.clone(),
                route: filter.route.clone(),
                limit: 1_000,
                ..LogQuery::default()
            };
            // The same filters as on stats rows, over the rows each logged call added to.
            let row_query = filter.stats_query(from, to);
            let mut seen = 0;
            let mut truncated = false;
            loop {
                let page = store.logs(&query).await.map_err(ApiError::from)?;
                let full = page.len() == query.limit;
                for e in &page {
                    seen += 1;
                    // The rows the event added to, as the stats hold them (its keys' attempts too).
                    for (key, c) in crate::stats::event_rows(e) {
                        let row = StatsRow::new(key, c);
                        if !row_query.matches(&row) {
                            continue;
                        }
                        total.add(&row.counters);
                        if let Some(group) = group_by.and_then(|g| g.of_row(&row)) {
                            groups.entry(group).or_default().add(&row.counters);
                        }
                    }
                }
                match page.last() {
                    Some(last) if full && seen < MAX_USER_LOGS => {
                        query.before = Some((last.ts_ms, last.request_id.clone()));
                    }
                    Some(_) if full => {
                        truncated = true;
                        break;
                    }
                    _ => break,
                }
            }
            ("logs", truncated)
        }
    };
    Ok(UsageReport {
        from: date_text(from),
        to: date_text(to),
        total: UsageView::from(&total),
        groups: groups.iter().map(|(group, c)| UsageGroup { group: group.clone(), usage: c.into() }).collect(),
        source: source.to_string(),
        truncated,
    })
}

// ---- Trend ----------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrendPoint {
    pub date: String,
    pub usage: UsageView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrendSeries {
    /// The provider of this series; `null` for all providers together.
    pub provider: Option<String>,
    /// One point per day of the range, oldest first; days without calls are zeros.
    pub points: Vec<TrendPoint>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrendReport {
    pub from: String,
    pub to: String,
    pub series: Vec<TrendSeries>,
}

/// Daily series over an inclusive range: one for everything, or one per provider that has
/// calls in the range (`per_provider`).
pub async fn trend(
    store: &dyn StatsStore,
    (from, to): (NaiveDate, NaiveDate),
    filter: &UsageFilter,
    per_provider: bool,
) -> Result<TrendReport, ApiError> {
    let rows = store.stats_rows(&filter.stats_query(from, to)).await.map_err(ApiError::from)?;
    Ok(TrendReport { from: date_text(from), to: date_text(to), series: series(&rows, from, to, per_provider) })
}

/// The zero-filled series of rows (pure, for tests).
pub fn series(rows: &[StatsRow], from: NaiveDate, to: NaiveDate, per_provider: bool) -> Vec<TrendSeries> {
    let mut sums: BTreeMap<(Option<String>, String), Counters> = BTreeMap::new();
    let mut providers: Vec<Option<String>> = vec![];
    for row in rows {
        let key = per_provider.then(|| row.provider.clone());
        if !providers.contains(&key) {
            providers.push(key.clone());
        }
        sums.entry((key, row.date.clone())).or_default().add(&row.counters);
    }
    if !per_provider && providers.is_empty() {
        providers.push(None);
    }
    providers.sort();
    let days: Vec<String> = from.iter_days().take_while(|d| *d <= to).map(date_text).collect();
    providers
        .into_iter()
        .map(|provider| TrendSeries {
            points: days
                .iter()
                .map(|date| TrendPoint {
                    date: date.clone(),
                    usage: sums
                        .get(&(provider.clone(), date.clone()))
                        .map_or_else(|| UsageView::from(&Counters::default()), UsageView::from),
                })
                .collect(),
            provider,
        })
        .collect()
}

// ---- Dashboard ------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Period {
    pub from: String,
    pub to: String,
    pub usage: UsageView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopModel {
    pub provider_code: String,
    pub model_code: String,
    pub requests: u64,
    pub errors: u64,
    pub total_tokens: u64,
    pub cost_micros: u64,
}

/// One limit a key is close to (or at) in its current window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyNearLimit {
    pub id: String,
    pub provider_code: String,
    pub key_name: String,
    /// `rpm`, `tpm` (current minute) or `rpd` (current UTC day).
    pub limit: String,
    pub limit_value: u64,
    pub used: u64,
    /// used × 100 / limit, rounded down.
    pub percent: u64,
}

/// A key that is not `normal`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyHealth {
    pub id: String,
    pub provider_code: String,
    pub key_name: String,
    /// `rate_limited`, `invalid` or `error`.
    pub status: String,
    pub is_active: bool,
    /// Unix ms until which the key is skipped (`null`: until an admin validates it).
    pub cooldown_until: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Dashboard {
    /// Unix ms the figures were read at.
    pub generated_at: i64,
    pub today: Period,
    /// Today and the six days before it.
    pub last_7_days: Period,
    /// Today and the 29 days before it.
    pub last_30_days: Period,
    /// The most used models of the last 7 days, by requests.
    pub top_models: Vec<TopModel>,
    /// Active keys at ≥ 80 % of a limit in its current window.
    pub keys_near_limits: Vec<KeyNearLimit>,
    /// Keys whose status is not `normal`.
    pub keys_not_normal: Vec<KeyHealth>,
}

/// The dashboard at `now_ms`.
pub async fn dashboard(
    stats: &dyn StatsStore,
    catalog: &Catalog,
    counters: &dyn CounterStore,
    now_ms: i64,
) -> Result<Dashboard, ApiError> {
    let today = parse_date("to", &time::stats_date(now_ms))?;
    let week_start = today.checked_sub_days(Days::new(6)).unwrap_or(today);
    let month_start = today.checked_sub_days(Days::new(29)).unwrap_or(today);
    let query = StatsQuery { from_date: date_text(month_start), to_date: date_text(today), ..StatsQuery::default() };
    let rows = stats.stats_rows(&query).await.map_err(ApiError::from)?;
    let (mut day, mut week, mut month) = (Counters::default(), Counters::default(), Counters::default());
    let mut models: BTreeMap<(String, String), Counters> = BTreeMap::new();
    let (today_text, week_start_text) = (date_text(today), date_text(week_start));
    // Dates are ISO `YYYY-MM-DD`, so text order is date order.
    for row in &rows {
        month.add(&row.counters);
        if row.date < week_start_text {
            continue;
        }
        week.add(&row.counters);
        if row.date == today_text {
            day.add(&row.counters);
        }
        models.entry((row.provider.clone(), row.model.clone())).or_default().add(&row.counters);
    }
    let mut top: Vec<TopModel> = models
        .into_iter()
        .map(|((provider_code, model_code), c)| TopModel {
            provider_code,
            model_code,
            requests: c.requests,
            errors: c.errors,
            total_tokens: c.prompt_tokens + c.completion_tokens,
            cost_micros: c.cost_micros,
        })
        .collect();
    top.sort_by(|a, b| b.requests.cmp(&a.requests).then(b.cost_micros.cmp(&a.cost_micros)));
    top.truncate(TOP_MODELS);

    let keys: Vec<_> = catalog
        .providers
        .iter()
        .flat_map(|p| p.keys.iter())
        .filter(|k| k.is_active && (k.limits.rpm.is_some() || k.limits.tpm.is_some() || k.limits.rpd.is_some()))
        .collect();
    let usage = join_all(keys.iter().map(|k| counters.usage(&k.id, now_ms))).await;
    let mut near = Vec::new();
    for (k, used) in keys.iter().zip(usage) {
        let (minute, day_window) = match used {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(key_id = %k.id, error = %e, "cannot read a key's usage");
                continue;
            }
        };
        for (name, limit, used) in [
            ("rpm", k.limits.rpm, minute.requests),
            ("tpm", k.limits.tpm, minute.tokens),
            ("rpd", k.limits.rpd, day_window.requests),
        ] {
            if let Some(limit) = limit.filter(|l| *l > 0)
                && used.saturating_mul(100) >= limit.saturating_mul(NEAR_LIMIT_PERCENT)
            {
                near.push(KeyNearLimit {
                    id: k.id.clone(),
                    provider_code: k.provider.clone(),
                    key_name: k.name.clone(),
                    limit: name.to_string(),
                    limit_value: limit,
                    used,
                    percent: used.saturating_mul(100) / limit,
                });
            }
        }
    }
    let not_normal = catalog
        .providers
        .iter()
        .flat_map(|p| p.keys.iter())
        .filter(|k| k.status != KeyStatus::Normal)
        .map(|k| KeyHealth {
            id: k.id.clone(),
            provider_code: k.provider.clone(),
            key_name: k.name.clone(),
            status: k.status.as_str().to_string(),
            is_active: k.is_active,
            cooldown_until: k.cooldown_until,
        })
        .collect();
    Ok(Dashboard {
        generated_at: now_ms,
        today: Period { from: today_text.clone(), to: today_text, usage: UsageView::from(&day) },
        last_7_days: Period { from: week_start_text, to: date_text(today), usage: UsageView::from(&week) },
        last_30_days: Period { from: date_text(month_start), to: date_text(today), usage: UsageView::from(&month) },
        top_models: top,
        keys_near_limits: near,
        keys_not_normal: not_normal,
    })
}

// ---- Spend ----------------------------------------------------------------------------------

/// Where spend goes: per caller (`user`), per Maestro API key (`caller_key`) or per model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpendBy {
    User,
    CallerKey,
    Model,
}

impl SpendBy {
    pub fn parse(value: &str) -> Result<Self, ApiError> {
        match value {
            "user" => Ok(Self::User),
            "caller_key" => Ok(Self::CallerKey),
            "model" => Ok(Self::Model),
            other => {
                Err(ApiError::invalid_param("by", format!("`by` must be user, caller_key or model, not `{other}`.")))
            }
        }
    }
}

/// The longest range of a spend answer, in days.
pub const MAX_SPEND_DAYS: i64 = 92;

/// The most groups a spend answer lists one by one; the rest are summed as `others`.
pub const MAX_SPEND_TOP: usize = 50;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SpendGroup {
    /// The user id, the caller key's id (`ck_…`) or `provider/model`.
    pub group: String,
    pub usage: UsageView,
    /// Its share of the range's cost (0…1); `null` when nothing cost anything.
    pub cost_share: Option<f64>,
    /// Cost per day of the range, oldest first (micro-USD).
    pub daily_cost_micros: Vec<u64>,
    /// Calls per day of the range, oldest first.
    pub daily_requests: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SpendReport {
    pub from: String,
    pub to: String,
    pub by: SpendBy,
    /// Every day of the range, oldest first: what the daily figures are of.
    pub days: Vec<String>,
    /// Every call of the range that has such a group (calls made without a Maestro API key have
    /// no caller key).
    pub total: UsageView,
    /// The groups that cost most (then: most calls), at most `top`.
    pub top: Vec<SpendGroup>,
    /// The other groups summed; `null` when `top` holds them all.
    pub others: Option<SpendGroup>,
    /// How many groups had calls in the range.
    pub groups: usize,
}

/// Spend over an inclusive date range per user, caller key or model: the top groups with their
/// daily cost and calls, the rest summed. From the daily stats, caller and caller-key rows (exact,
/// as every stats answer).
pub async fn spend(
    store: &dyn StatsStore,
    (from, to): (NaiveDate, NaiveDate),
    by: SpendBy,
    top: usize,
) -> Result<SpendReport, ApiError> {
    let (from_text, to_text) = (date_text(from), date_text(to));
    let rows: Vec<(String, String, Counters)> = match by {
        SpendBy::User => {
            let rows = store.caller_rows(&from_text, &to_text, None).await.map_err(ApiError::from)?;
            rows.into_iter().map(|r| (r.user_id, r.date, r.counters)).collect()
        }
        SpendBy::CallerKey => {
            let rows = store.caller_key_rows(&from_text, &to_text).await.map_err(ApiError::from)?;
            rows.into_iter().map(|r| (r.caller_key_id, r.date, r.counters)).collect()
        }
        SpendBy::Model => {
            let query = UsageFilter::default().stats_query(from, to);
            let rows = store.stats_rows(&query).await.map_err(ApiError::from)?;
            rows.into_iter().map(|r| (format!("{}/{}", r.provider, r.model), r.date, r.counters)).collect()
        }
    };
    let days: Vec<String> = from.iter_days().take_while(|d| *d <= to).map(date_text).collect();
    Ok(spend_from_rows(&rows, days, (from_text, to_text), by, top))
}

/// The spend report of `(group, day, counters)` rows (pure, for tests).
pub fn spend_from_rows(
    rows: &[(String, String, Counters)],
    days: Vec<String>,
    (from, to): (String, String),
    by: SpendBy,
    top: usize,
) -> SpendReport {
    let day_index: BTreeMap<&str, usize> = days.iter().enumerate().map(|(i, d)| (d.as_str(), i)).collect();
    struct Sum {
        counters: Counters,
        cost: Vec<u64>,
        requests: Vec<u64>,
    }
    let mut sums: BTreeMap<&str, Sum> = BTreeMap::new();
    let mut total = Counters::default();
    for (group, day, counters) in rows {
        let Some(&i) = day_index.get(day.as_str()) else { continue };
        let sum = sums.entry(group).or_insert_with(|| Sum {
            counters: Counters::default(),
            cost: vec![0; days.len()],
            requests: vec![0; days.len()],
        });
        sum.counters.add(counters);
        sum.cost[i] += counters.cost_micros;
        sum.requests[i] += counters.requests;
        total.add(counters);
    }
    let share = |cost: u64| (total.cost_micros > 0).then(|| cost as f64 / total.cost_micros as f64);
    let group = |name: String, sum: &Sum| SpendGroup {
        group: name,
        usage: UsageView::from(&sum.counters),
        cost_share: share(sum.counters.cost_micros),
        daily_cost_micros: sum.cost.clone(),
        daily_requests: sum.requests.clone(),
    };
    let mut ranked: Vec<(&str, &Sum)> = sums.iter().map(|(g, s)| (*g, s)).collect();
    ranked.sort_by(|a, b| {
        (b.1.counters.cost_micros, b.1.counters.requests)
            .cmp(&(a.1.counters.cost_micros, a.1.counters.requests))
            .then(a.0.cmp(b.0))
    });
    let groups = ranked.len();
    let top = top.clamp(1, MAX_SPEND_TOP);
    let rest = ranked.split_off(top.min(groups));
    let others = (!rest.is_empty()).then(|| {
        let mut sum = Sum { counters: Counters::default(), cost: vec![0; days.len()], requests: vec![0; days.len()] };
        for (_, s) in &rest {
            sum.counters.add(&s.counters);
            for i in 0..days.len() {
                sum.cost[i] += s.cost[i];
                sum.requests[i] += s.requests[i];
            }
        }
        group(format!("{} others", rest.len()), &sum)
    });
    SpendReport {
        from,
        to,
        by,
        days,
        total: UsageView::from(&total),
        top: ranked.into_iter().map(|(name, sum)| group(name.to_string(), sum)).collect(),
        others,
        groups,
    }
}

// ---- Live -----------------------------------------------------------------------------------

/// The live panel's window by default, and the longest one it may ask for.
pub const LIVE_MINUTES: u32 = 15;
pub const MAX_LIVE_MINUTES: u32 = 60;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveProvider {
    pub provider: String,
    pub usage: UsageView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveReport {
    /// When this was computed (unix ms).
    pub generated_at: i64,
    /// The first and last minute of the window (`yyyy-mm-ddTHH:MM`, UTC); the last one is the
    /// current minute, still filling.
    pub from: String,
    pub to: String,
    /// One point per minute, oldest first, every minute present (zeros in quiet ones); `date`
    /// holds the minute.
    pub points: Vec<TrendPoint>,
    pub total: UsageView,
    /// Per provider over the window, most calls first.
    pub providers: Vec<LiveProvider>,
}

/// The last `minutes` minutes (the current one included), per minute, from the minute stats the
/// aggregator writes with every call (the same exactly-once counters as the daily rows).
pub async fn live(
    store: &dyn StatsStore,
    now_ms: i64,
    minutes: u32,
    filter: &UsageFilter,
) -> Result<LiveReport, ApiError> {
    let minutes = minutes.clamp(1, MAX_LIVE_MINUTES);
    let from_ms = time::minute_window_end(now_ms) - i64::from(minutes) * 60_000;
    let rows = store.minute_rows(from_ms, now_ms + 1).await.map_err(ApiError::from)?;
    Ok(live_from_rows(&rows, from_ms, minutes, filter, now_ms))
}

/// The live report of minute rows (pure, for tests): rows outside the window or the filter are
/// left out.
pub fn live_from_rows(rows: &[StatsRow], from_ms: i64, minutes: u32, filter: &UsageFilter, now_ms: i64) -> LiveReport {
    let labels: Vec<String> = (0..i64::from(minutes)).map(|i| time::stats_minute(from_ms + i * 60_000)).collect();
    let keep = |row: &&StatsRow| {
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        is(&filter.provider, &row.provider)
            && is(&filter.model, &row.model)
            && is(&filter.key_id, &row.key_id)
            && labels.binary_search(&row.date).is_ok()
    };
    let mut per_minute: BTreeMap<&str, Counters> = BTreeMap::new();
    let mut per_provider: BTreeMap<&str, Counters> = BTreeMap::new();
    let mut total = Counters::default();
    for row in rows.iter().filter(keep) {
        per_minute.entry(&row.date).or_default().add(&row.counters);
        per_provider.entry(&row.provider).or_default().add(&row.counters);
        total.add(&row.counters);
    }
    let mut providers: Vec<LiveProvider> = per_provider
        .into_iter()
        .map(|(provider, c)| LiveProvider { provider: provider.to_string(), usage: UsageView::from(&c) })
        .collect();
    providers.sort_by(|a, b| b.usage.requests.cmp(&a.usage.requests).then_with(|| a.provider.cmp(&b.provider)));
    let zero = Counters::default();
    LiveReport {
        generated_at: now_ms,
        from: labels.first().cloned().unwrap_or_default(),
        to: labels.last().cloned().unwrap_or_default(),
        points: labels
            .iter()
            .map(|m| TrendPoint {
                date: m.clone(),
                usage: UsageView::from(per_minute.get(m.as_str()).unwrap_or(&zero)),
            })
            .collect(),
        total: UsageView::from(&total),
        providers,
    }
}

// ---- Logs -----------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogPage {
    /// Newest first, each exactly as the log event was recorded.
    pub data: Vec<LogEvent>,
    /// Pass as `cursor` for the next (older) page; `null` when this page is the last.
    pub next_cursor: Option<String>,
}

/// The opaque cursor after a log: base64url of `[ts_ms, request_id]`.
pub fn encode_cursor(ts_ms: i64, request_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::json!([ts_ms, request_id]).to_string())
}

pub fn decode_cursor(cursor: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::invalid_param("cursor", "`cursor` must be a `next_cursor` from an earlier page.");
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let (ts, id): (i64, String) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((ts, id))
}

/// One page of logs, newest first; `next_cursor` when the page is full.
pub async fn logs(store: &dyn StatsStore, query: &LogQuery) -> Result<LogPage, ApiError> {
    let events = store.logs(query).await.map_err(ApiError::from)?;
    let next_cursor = (events.len() == query.limit && query.request_id.is_none())
        .then(|| events.last().map(|e| encode_cursor(e.ts_ms, &e.request_id)))
        .flatten();
    Ok(LogPage { data: events, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    fn row(date: &str, provider: &str, requests: u64) -> StatsRow {
        StatsRow {
            date: date.into(),
            provider: provider.into(),
            model: "m".into(),
            key_id: "-".into(),
            route: None,
            counters: Counters { requests, successes: requests, ..Counters::default() },
        }
    }

    #[test]
    fn trends_have_every_day_of_the_range_zero_filled() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let rows = [row("2026-11-24", "a", 2), row("2026-11-26", "b", 3), row("2026-11-26", "a", 1)];
        let all = series(&rows, d("2026-11-23"), d("2026-11-26"), false);
        assert_eq!(all.len(), 1);
        let requests: Vec<u64> = all[0].points.iter().map(|p| p.usage.requests).collect();
        assert_eq!(requests, [0, 2, 0, 4]);
        let per = series(&rows, d("2026-11-23"), d("2026-11-26"), true);
        let providers: Vec<_> = per.iter().map(|s| s.provider.clone()).collect();
        assert_eq!(providers, [Some("a".to_string()), Some("b".to_string())]);
        assert_eq!(per[1].points.iter().map(|p| p.usage.requests).collect::<Vec<_>>(), [0, 0, 0, 3]);
        let empty = series(&[], d("2026-11-26"), d("2026-11-26"), false);
        assert_eq!(empty[0].points.len(), 1);
    }

    #[test]
    fn the_live_window_has_every_minute_zero_filled_and_keeps_to_its_window_and_filter() {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).expect("instant").timestamp_millis();
        let now = at("2026-11-26T07:00:30Z");
        let from = time::minute_window_end(now) - 3 * 60_000;
        let mut slow = row("2026-11-26T06:58", "a", 2);
        slow.counters.latency_hist[crate::stats::latency_bucket(900)] = 2;
        slow.counters.cost_micros = 1_500;
        let rows = [
            slow,
            row("2026-11-26T07:00", "b", 5),
            row("2026-11-26T07:00", "a", 1),
            row("2026-11-26T06:57", "a", 100), // before the window
            row("2026-11-26T07:01", "a", 100), // after it
        ];
        let all = live_from_rows(&rows, from, 3, &UsageFilter::default(), now);
        assert_eq!((all.from.as_str(), all.to.as_str()), ("2026-11-26T06:58", "2026-11-26T07:00"));
        let minutes: Vec<(&str, u64)> = all.points.iter().map(|p| (p.date.as_str(), p.usage.requests)).collect();
        assert_eq!(minutes, [("2026-11-26T06:58", 2), ("2026-11-26T06:59", 0), ("2026-11-26T07:00", 6)]);
        assert_eq!((all.total.requests, all.total.cost_micros), (8, 1_500));
        assert_eq!(
            all.points[0].usage.latency_ms_p95,
            Some(crate::stats::LATENCY_BUCKETS_MS[crate::stats::latency_bucket(900)])
        );
        let providers: Vec<(&str, u64)> =
            all.providers.iter().map(|p| (p.provider.as_str(), p.usage.requests)).collect();
        assert_eq!(providers, [("b", 5), ("a", 3)]);
        let only_a = UsageFilter { provider: Some("a".into()), ..UsageFilter::default() };
        let a = live_from_rows(&rows, from, 3, &only_a, now);
        assert_eq!(a.points.iter().map(|p| p.usage.requests).collect::<Vec<_>>(), [2, 0, 1]);
    }

    #[test]
    fn spend_ranks_groups_by_cost_sums_the_rest_and_keeps_every_day() {
        let c = |requests: u64, cost_micros: u64| Counters {
            requests,
            successes: requests,
            cost_micros,
            ..Counters::default()
        };
        let row = |g: &str, d: &str, counters: Counters| (g.to_string(), d.to_string(), counters);
        let rows = [
            row("alice", "2026-11-25", c(2, 300)),
            row("alice", "2026-11-26", c(1, 100)),
            row("bob", "2026-11-26", c(5, 500)),
            row("carol", "2026-11-24", c(9, 0)),
            row("dave", "2026-11-26", c(1, 0)),
            row("erin", "2026-11-20", c(1, 999)), // outside the range
        ];
        let days = vec!["2026-11-24".to_string(), "2026-11-25".to_string(), "2026-11-26".to_string()];
        let range = ("2026-11-24".to_string(), "2026-11-26".to_string());
        let report = spend_from_rows(&rows, days.clone(), range.clone(), SpendBy::User, 2);
        assert_eq!((report.total.requests, report.total.cost_micros, report.groups), (18, 900, 4));
        let top: Vec<(&str, u64, Vec<u64>, Vec<u64>)> = report
            .top
            .iter()
            .map(|g| (g.group.as_str(), g.usage.cost_micros, g.daily_cost_micros.clone(), g.daily_requests.clone()))
            .collect();
        assert_eq!(
            top,
            [("bob", 500, vec![0, 0, 500], vec![0, 0, 5]), ("alice", 400, vec![0, 300, 100], vec![0, 2, 1])]
        );
        assert_eq!(report.top[0].cost_share, Some(500.0 / 900.0));
        let others = report.others.expect("others");
        assert_eq!(
            (others.group.as_str(), others.usage.requests, others.daily_requests),
            ("2 others", 10, vec![9, 0, 1])
        );
        // Equal cost: more calls first.
        let all = spend_from_rows(&rows, days, range, SpendBy::User, 10);
        assert_eq!(all.top.iter().map(|g| g.group.as_str()).collect::<Vec<_>>(), ["bob", "alice", "carol", "dave"]);
        assert!(all.others.is_none());
    }

    /// Stats rows from a fixed list, filtered by the query as a store would.
    struct FixedRows(Vec<StatsRow>);

    #[async_trait::async_trait]
    impl StatsStore for FixedRows {
        async fn record_event(&self, _: &LogEvent) -> Result<bool, StoreError> {
            Err(StoreError::backend("read-only"))
        }
        async fn stats_rows(&self, q: &StatsQuery) -> Result<Vec<StatsRow>, StoreError> {
            Ok(self.0.iter().filter(|r| q.matches(r)).cloned().collect())
        }
        async fn logs(&self, _: &LogQuery) -> Result<Vec<LogEvent>, StoreError> {
            Ok(Vec::new())
        }
        async fn minute_rows(&self, _: i64, _: i64) -> Result<Vec<StatsRow>, StoreError> {
            Ok(Vec::new())
        }
        async fn caller_rows(
            &self,
            _: &str,
            _: &str,
            _: Option<&str>,
        ) -> Result<Vec<crate::stats::CallerRow>, StoreError> {
            Ok(Vec::new())
        }
        async fn caller_key_rows(&self, _: &str, _: &str) -> Result<Vec<crate::stats::CallerKeyRow>, StoreError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn dashboard_windows_count_each_day_once_and_top_models_are_the_weeks() {
        let now = 1_795_000_000_000; // 2026-11-18
        let rows = vec![
            row("2026-11-18", "a", 1),
            row("2026-11-12", "a", 10),   // first day of the 7
            row("2026-11-11", "b", 100),  // outside the 7, inside the 30
            row("2026-10-20", "b", 1000), // first day of the 30
            row("2026-10-19", "b", 9999), // outside both
        ];
        let dir = tempfile::tempdir().expect("dir");
        let counters = crate::store::embedded::EmbeddedStore::open(dir.path()).expect("store");
        let dash = dashboard(&FixedRows(rows), &Catalog::default(), &counters, now).await.expect("dashboard");
        assert_eq!(dash.today.usage.requests, 1);
        assert_eq!((dash.last_7_days.from.as_str(), dash.last_7_days.usage.requests), ("2026-11-12", 11));
        assert_eq!((dash.last_30_days.from.as_str(), dash.last_30_days.usage.requests), ("2026-10-20", 1111));
        let top: Vec<_> = dash.top_models.iter().map(|m| (m.provider_code.as_str(), m.requests)).collect();
        assert_eq!(top, [("a", 11)]);
    }

    /// Usage by route, summed from the stats rows and (per user) from the logs: the same figures.
    #[tokio::test]
    async fn usage_groups_by_route_without_the_unrouted_calls_and_filters_by_route() {
        let store = crate::store::embedded::EmbeddedStore::open_in_memory().expect("store");
        let ts = 1_795_000_000_000; // 2026-11-18
        let routed = |id: &str, route: &str, latency_ms| LogEvent {
            route: Some(route.into()),
            route_rule: Some("0".into()),
            latency_ms,
            ..LogEvent::sample(id, ts)
        };
        let events = [
            routed("a", "fast", 4),
            routed("b", "fast", 9),
            routed("c", "smart", 2_500),
            LogEvent { latency_ms: 40, ..LogEvent::sample("d", ts) },
        ];
        assert_eq!(store.record_events(&events).await.expect("record"), [true; 4]);
        let day = NaiveDate::from_ymd_opt(2026, 11, 18).expect("date");
        for user in [None, Some("user-1".to_string())] {
            let by_route = UsageFilter { user: user.clone(), ..UsageFilter::default() };
            let report = usage(&store, (day, day), &by_route, Some(GroupBy::Route)).await.expect("usage");
            assert_eq!(report.total.requests, 4, "{user:?}: the total keeps the unrouted call");
            let groups: Vec<(&str, u64, Option<u64>)> =
                report.groups.iter().map(|g| (g.group.as_str(), g.usage.requests, g.usage.latency_ms_p99)).collect();
            assert_eq!(groups, [("fast", 2, Some(10)), ("smart", 1, Some(3_000))], "{user:?}");

            let smart = UsageFilter { route: Some("smart".into()), ..by_route };
            let report = usage(&store, (day, day), &smart, Some(GroupBy::Model)).await.expect("usage");
            assert_eq!((report.total.requests, report.total.latency_ms_p50), (1, Some(3_000)), "{user:?}");
            assert_eq!(report.groups.len(), 1);
        }
        let unrouted_p50 = usage(&store, (day, day), &UsageFilter::default(), None).await.expect("usage");
        assert_eq!(unrouted_p50.total.latency_ms_p50, Some(10), "ranks 2 of 4: the 9 ms call");
        assert_eq!(GroupBy::parse("route").expect("route"), GroupBy::Route);
        assert_eq!(GroupBy::parse("rule").expect_err("unknown").status(), 400);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_a_400() {
        let c = encode_cursor(1_795_000_000_123, "req_01#x");
        assert_eq!(decode_cursor(&c).expect("cursor"), (1_795_000_000_123, "req_01#x".to_string()));
        assert_eq!(decode_cursor("not a cursor").expect_err("bad").status(), 400);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("{}")).expect_err("bad").status(), 400);
    }

    #[test]
    fn ranges_default_to_days_ending_today_and_are_bounded() {
        let now = 1_795_000_000_000; // 2026-11-18
        let (from, to) = date_range(None, None, 7, now).expect("default");
        assert_eq!((date_text(from), date_text(to)), ("2026-11-12".to_string(), "2026-11-18".to_string()));
        assert!(date_range(Some("2026-11-19"), Some("2026-11-18"), 7, now).is_err());
        assert!(date_range(Some("2024-01-01"), Some("2026-11-18"), 7, now).is_err());
        assert!(date_range(Some("26-11-18"), None, 7, now).is_err());
    }
}
