//! Daily stats: integer counters per day, provider, model and key, and what one log event adds
//! to them. Percentiles come from a fixed latency histogram, so no log scan is needed.

pub mod report;
pub mod rollup;

use serde::{Deserialize, Serialize};

use crate::logs::{CallStatus, LogEvent};

/// Upper bounds (inclusive, ms) of the latency histogram's buckets; the last one catches the rest.
/// How long call logs are kept (DynamoDB's TTL on log items; the embedded store prunes them).
pub const LOG_RETENTION_DAYS: i64 = 90;
/// How long daily stats are kept.
pub const STATS_RETENTION_DAYS: i64 = 365;

pub const LATENCY_BUCKETS_MS: [u64; 12] =
    [100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000, u64::MAX];

/// The bucket a latency falls in.
pub fn latency_bucket(latency_ms: u64) -> usize {
    LATENCY_BUCKETS_MS.iter().position(|b| latency_ms <= *b).unwrap_or(LATENCY_BUCKETS_MS.len() - 1)
}

/// Counters of one stats row (or of a sum of rows).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub requests: u64,
    pub successes: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cost_micros: u64,
    pub latency_ms_sum: u64,
    pub latency_hist: [u64; LATENCY_BUCKETS_MS.len()],
    /// Input tokens written to prompt caches.
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// Upstream attempts made with the row's key (every try, also of calls another key served),
    /// and how many of them failed: the key's own health, beside the calls it ended.
    #[serde(default)]
    pub attempts: u64,
    #[serde(default)]
    pub attempt_errors: u64,
}

impl Counters {
    /// What one event adds.
    pub fn from_event(e: &LogEvent) -> Self {
        let mut latency_hist = [0; LATENCY_BUCKETS_MS.len()];
        latency_hist[latency_bucket(e.latency_ms)] = 1;
        let success = e.status == CallStatus::Success;
        Self {
            requests: 1,
            successes: u64::from(success),
            errors: u64::from(!success),
            prompt_tokens: e.prompt_tokens,
            completion_tokens: e.completion_tokens,
            cached_tokens: e.cached_tokens,
            cost_micros: e.cost_micros,
            latency_ms_sum: e.latency_ms,
            latency_hist,
            cache_write_tokens: e.cache_write_tokens,
            attempts: 0,
            attempt_errors: 0,
        }
    }

    pub fn add(&mut self, other: &Self) {
        self.requests += other.requests;
        self.successes += other.successes;
        self.errors += other.errors;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cached_tokens += other.cached_tokens;
        self.cost_micros += other.cost_micros;
        self.latency_ms_sum += other.latency_ms_sum;
        for (a, b) in self.latency_hist.iter_mut().zip(other.latency_hist.iter()) {
            *a += b;
        }
        self.cache_write_tokens += other.cache_write_tokens;
        self.attempts += other.attempts;
        self.attempt_errors += other.attempt_errors;
    }

    /// The latency (ms, bucket upper bound) under which `pct` percent of calls finished.
    pub fn latency_percentile(&self, pct: u64) -> Option<u64> {
        let total: u64 = self.latency_hist.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (total * pct).div_ceil(100).max(1);
        let mut seen = 0;
        for (i, n) in self.latency_hist.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(LATENCY_BUCKETS_MS[i]);
            }
        }
        None
    }
}

/// The finest stats row: one day, provider, model and key (`-` when no key was used).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRow {
    pub date: String,
    pub provider: String,
    pub model: String,
    pub key_id: String,
    #[serde(flatten)]
    pub counters: Counters,
}

/// The row key one event counts under.
pub fn row_key(e: &LogEvent) -> (String, String, String, String) {
    (
        crate::time::stats_date(e.ts_ms),
        e.provider.clone(),
        e.model.clone(),
        e.key_id.clone().unwrap_or_else(|| "-".to_string()),
    )
}

/// Every stats row one event adds to, with what it adds: the call's own row (its final key), and
/// the rows of the keys it tried, with their attempts and failed attempts. A key's attempts go to
/// the row of the provider and model it was tried for.
pub fn event_rows(e: &LogEvent) -> Vec<((String, String, String, String), Counters)> {
    let call_key = row_key(e);
    let mut rows = vec![(call_key.clone(), Counters::from_event(e))];
    for attempt in &e.key_attempts {
        let key = (call_key.0.clone(), attempt.provider.clone(), attempt.model.clone(), attempt.key_id.clone());
        let added = Counters {
            attempts: u64::from(attempt.attempts),
            attempt_errors: u64::from(attempt.errors),
            ..Counters::default()
        };
        match rows.iter_mut().find(|(k, _)| *k == key) {
            Some((_, counters)) => counters.add(&added),
            None => rows.push((key, added)),
        }
    }
    rows
}

/// Which rows a stats query reads: an inclusive date range plus optional exact filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsQuery {
    pub from_date: String,
    pub to_date: String,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub key_id: Option<String>,
}

impl StatsQuery {
    pub fn matches(&self, row: &StatsRow) -> bool {
        row.date.as_str() >= self.from_date.as_str()
            && row.date.as_str() <= self.to_date.as_str()
            && self.provider.as_ref().is_none_or(|p| *p == row.provider)
            && self.model.as_ref().is_none_or(|m| *m == row.model)
            && self.key_id.as_ref().is_none_or(|k| *k == row.key_id)
    }
}

/// Sums rows into one total.
pub fn total(rows: &[StatsRow]) -> Counters {
    let mut sum = Counters::default();
    for r in rows {
        sum.add(&r.counters);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles_use_bucket_bounds() {
        let mut c = Counters::default();
        for latency in [50, 60, 70, 80, 90, 200, 300, 400, 900, 4_000] {
            let mut one = Counters::default();
            one.latency_hist[latency_bucket(latency)] = 1;
            c.add(&one);
        }
        assert_eq!(c.latency_percentile(50), Some(100));
        assert_eq!(c.latency_percentile(80), Some(500));
        assert_eq!(c.latency_percentile(95), Some(5_000));
        assert_eq!(Counters::default().latency_percentile(50), None);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS_MS.len() - 1);
    }
}
