//! The scheduled roll-up (docs/ARCHITECTURE.md §6, "EventBridge schedule → rollup handler"): it recomputes the
//! day and provider summaries of the last few days from the fine-grained stats rows (so a
//! summary can never drift from the rows it sums: self-healing totals), and it returns keys
//! whose cool-down has passed to `normal`, so the admin view shows them healthy again.
//!
//! Everything here runs over the store traits; the Lambda function (`functions/rollup`) only
//! turns a scheduled event into a call to [`run`].

use chrono::{Days, NaiveDate};

use crate::domain::KeyStatus;
use serde::Serialize;

use crate::stats::{StatsQuery, Summary, summarize};
use crate::store::{CatalogStore, StatsStore, StoreError};

/// What a roll-up looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupOptions {
    /// How many days of summaries are recomputed, ending with the day of `now` (2 = today and
    /// yesterday, so events that arrive after midnight still reach yesterday's summary).
    pub days: u32,
}

impl Default for RollupOptions {
    fn default() -> Self {
        Self { days: 2 }
    }
}

/// What one roll-up did; logged as one line and returned by the Lambda function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RollupReport {
    /// First and last day recomputed (inclusive, `yyyy-mm-dd`).
    pub from_date: String,
    pub to_date: String,
    /// Fine rows read, and summaries written from them.
    pub fine_rows: usize,
    pub summaries: usize,
    /// Requests and cost over the whole range, as the `ALL` summaries count them.
    pub requests: u64,
    pub cost_micros: u64,
    /// Keys whose cool-down had passed and that are `normal` again.
    pub recovered_keys: Vec<String>,
    /// Steps that failed (the other steps still ran).
    pub errors: Vec<String>,
}

/// The inclusive date range a roll-up at `now_ms` recomputes.
pub fn date_range(now_ms: i64, days: u32) -> (String, String) {
    let today = crate::time::stats_date(now_ms);
    let to = NaiveDate::parse_from_str(&today, "%Y-%m-%d").unwrap_or_default();
    let from = to.checked_sub_days(Days::new(u64::from(days.max(1) - 1))).unwrap_or(to);
    (from.format("%Y-%m-%d").to_string(), today)
}

/// Every date from `from` to `to` (inclusive, `yyyy-mm-dd`).
fn dates(from: &str, to: &str) -> Vec<String> {
    let (Ok(mut day), Ok(last)) =
        (NaiveDate::parse_from_str(from, "%Y-%m-%d"), NaiveDate::parse_from_str(to, "%Y-%m-%d"))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while day <= last {
        out.push(day.format("%Y-%m-%d").to_string());
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    out
}

/// Recomputes the summaries of `from_date..=to_date` from the fine rows and replaces the stored
/// ones, day by day (a day without rows has its summaries cleared). Returns (fine rows, summaries).
pub async fn recompute_summaries(
    stats: &dyn StatsStore,
    from_date: &str,
    to_date: &str,
) -> Result<(usize, Vec<Summary>), StoreError> {
    let query = StatsQuery { from_date: from_date.to_string(), to_date: to_date.to_string(), ..StatsQuery::default() };
    let rows = stats.stats_rows(&query).await?;
    let summaries = summarize(&rows);
    for date in dates(from_date, to_date) {
        let of_day: Vec<Summary> = summaries.iter().filter(|s| s.date == date).cloned().collect();
        stats.put_summaries(&date, &of_day).await?;
    }
    Ok((rows.len(), summaries))
}

/// Sets every `rate_limited` or `error` key whose cool-down has passed back to `normal`. Keys
/// marked `invalid` stay so until an admin validates them. Returns the ids set back.
///
/// The catalog is read once and each key written without a condition: if the chat path cools a
/// key down again in the moment between, that cool-down is lost and the key is tried once more
/// (and cooled down again on the provider's next 429). Selection itself never depended on this
/// step: a key whose `cooldown_until` has passed is usable either way.
pub async fn recover_cooled_down_keys(catalog: &dyn CatalogStore, now_ms: i64) -> Result<Vec<String>, StoreError> {
    let snapshot = catalog.load_catalog().await?;
    let mut recovered = Vec::new();
    for key in snapshot.providers.iter().flat_map(|p| p.keys.iter()) {
        let cooling = matches!(key.status, KeyStatus::RateLimited | KeyStatus::Error);
        if cooling && key.cooldown_until.is_none_or(|until| until <= now_ms) {
            match catalog.set_key_status(&key.id, KeyStatus::Normal, None).await {
                Ok(()) => recovered.push(key.id.clone()),
                // Deleted since the snapshot: nothing left to recover.
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(recovered)
}

/// One roll-up at `now_ms`: summaries of the last `options.days` days, then key recovery. A
/// failing step does not stop the other; the report lists what failed.
pub async fn run(
    catalog: &dyn CatalogStore,
    stats: &dyn StatsStore,
    now_ms: i64,
    options: RollupOptions,
) -> RollupReport {
    let (from_date, to_date) = date_range(now_ms, options.days);
    let mut report = RollupReport { from_date, to_date, ..RollupReport::default() };
    match recompute_summaries(stats, &report.from_date, &report.to_date).await {
        Ok((fine_rows, summaries)) => {
            report.fine_rows = fine_rows;
            report.summaries = summaries.len();
            for all in summaries.iter().filter(|s| s.is_all()) {
                report.requests += all.counters.requests;
                report.cost_micros += all.counters.cost_micros;
            }
        }
        Err(e) => report.errors.push(format!("summaries: {e}")),
    }
    match recover_cooled_down_keys(catalog, now_ms).await {
        Ok(ids) => report.recovered_keys = ids,
        Err(e) => report.errors.push(format!("key recovery: {e}")),
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Counters, StatsRow};

    fn row(date: &str, provider: &str, model: &str, key: &str, requests: u64, cost: u64) -> StatsRow {
        StatsRow {
            date: date.into(),
            provider: provider.into(),
            model: model.into(),
            key_id: key.into(),
            counters: Counters { requests, successes: requests, cost_micros: cost, ..Counters::default() },
        }
    }

    #[test]
    fn summaries_sum_fine_rows_per_day_and_provider_with_all_first() {
        let rows = [
            row("2026-11-25", "openai", "gpt-4o", "k1", 2, 100),
            row("2026-11-25", "openai", "gpt-4o-mini", "k2", 3, 10),
            row("2026-11-25", "anthropic", "claude", "k3", 1, 50),
            row("2026-11-26", "openai", "gpt-4o", "k1", 4, 200),
        ];
        let s = summarize(&rows);
        let flat: Vec<(&str, &str, u64, u64)> = s
            .iter()
            .map(|s| (s.date.as_str(), s.provider.as_str(), s.counters.requests, s.counters.cost_micros))
            .collect();
        assert_eq!(
            flat,
            [
                ("2026-11-25", "ALL", 6, 160),
                ("2026-11-25", "anthropic", 1, 50),
                ("2026-11-25", "openai", 5, 110),
                ("2026-11-26", "ALL", 4, 200),
                ("2026-11-26", "openai", 4, 200),
            ]
        );
    }

    #[test]
    fn the_range_ends_today_and_reaches_back_whole_utc_days() {
        let t = 1_764_000_000_123; // 2025-11-24T16:00:00.123Z
        assert_eq!(date_range(t, 2), ("2025-11-23".to_string(), "2025-11-24".to_string()));
        assert_eq!(date_range(t, 1), ("2025-11-24".to_string(), "2025-11-24".to_string()));
        assert_eq!(date_range(t, 0), ("2025-11-24".to_string(), "2025-11-24".to_string()));
        assert_eq!(dates("2025-02-27", "2025-03-01"), ["2025-02-27", "2025-02-28", "2025-03-01"]);
        assert!(dates("2025-03-01", "2025-02-27").is_empty());
    }
}
