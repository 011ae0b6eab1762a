//! Daily stats: integer counters per day, provider, model, key and route, and what one log event
//! adds to them. Percentiles come from a fixed latency histogram, so no log scan is needed.

pub mod export;
pub mod report;
pub mod rollup;

use serde::{Deserialize, Deserializer, Serialize};

use crate::logs::{CallStatus, LogEvent};

/// How long call logs are kept (DynamoDB's TTL on log items; the embedded store prunes them).
pub const LOG_RETENTION_DAYS: i64 = 90;
/// How long daily stats are kept.
pub const STATS_RETENTION_DAYS: i64 = 365;

/// Upper bounds (inclusive, ms) of the latency histogram's buckets; the last one catches the rest.
/// Roughly log-spaced from 1 ms to 10 minutes, fine enough to tell a 5 ms call from a 90 ms one.
/// Every bound of [`LEGACY_LATENCY_BUCKETS_MS`] is one of them, so old counts keep their bound.
#[rustfmt::skip]
pub const LATENCY_BUCKETS_MS: [u64; 30] = [
    1, 2, 3, 5, 7,
    10, 15, 25, 50, 75,
    100, 150, 250, 500, 750,
    1_000, 1_500, 2_000, 3_000, 5_000, 7_500,
    10_000, 15_000, 20_000, 30_000, 60_000,
    120_000, 300_000, 600_000, u64::MAX,
];

/// The histogram's buckets before they were refined (SQLite schema up to version 9, DynamoDB
/// attributes `h0`…`h11`): read by migrations only.
pub const LEGACY_LATENCY_BUCKETS_MS: [u64; 12] =
    [100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000, u64::MAX];

/// For each legacy bucket, the bucket of [`LATENCY_BUCKETS_MS`] with the same upper bound.
/// Computed at compile time: a legacy bound missing from the new list fails the build.
pub const LEGACY_BUCKET_TARGETS: [usize; LEGACY_LATENCY_BUCKETS_MS.len()] = legacy_bucket_targets();

const fn legacy_bucket_targets() -> [usize; LEGACY_LATENCY_BUCKETS_MS.len()] {
    let mut targets = [0; LEGACY_LATENCY_BUCKETS_MS.len()];
    let mut old = 0;
    while old < LEGACY_LATENCY_BUCKETS_MS.len() {
        let mut new = 0;
        // Indexing past the end (a bound not found) is a compile error in a const.
        while LATENCY_BUCKETS_MS[new] != LEGACY_LATENCY_BUCKETS_MS[old] {
            new += 1;
        }
        targets[old] = new;
        old += 1;
    }
    targets
}

/// A histogram of the legacy buckets as one of the current buckets: each count moves to the
/// bucket with the same upper bound, so no call is lost and no percentile changes.
pub fn histogram_from_legacy(legacy: &[u64; LEGACY_LATENCY_BUCKETS_MS.len()]) -> [u64; LATENCY_BUCKETS_MS.len()] {
    let mut hist = [0; LATENCY_BUCKETS_MS.len()];
    for (count, target) in legacy.iter().zip(LEGACY_BUCKET_TARGETS) {
        hist[target] += count;
    }
    hist
}

/// The bucket a latency falls in.
pub fn latency_bucket(latency_ms: u64) -> usize {
    LATENCY_BUCKETS_MS.iter().position(|b| latency_ms <= *b).unwrap_or(LATENCY_BUCKETS_MS.len() - 1)
}

/// Reads a histogram in either shape: the current buckets, or the 12 legacy ones (moved to the
/// buckets with the same bounds), so a `Counters` serialized by an older version still reads.
fn histogram<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u64; LATENCY_BUCKETS_MS.len()], D::Error> {
    let counts = Vec::<u64>::deserialize(deserializer)?;
    if let Ok(current) = <[u64; LATENCY_BUCKETS_MS.len()]>::try_from(counts.as_slice()) {
        return Ok(current);
    }
    match <[u64; LEGACY_LATENCY_BUCKETS_MS.len()]>::try_from(counts.as_slice()) {
        Ok(legacy) => Ok(histogram_from_legacy(&legacy)),
        Err(_) => Err(serde::de::Error::invalid_length(counts.len(), &"30 or 12 histogram buckets")),
    }
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
    /// Calls per bucket of [`LATENCY_BUCKETS_MS`].
    #[serde(deserialize_with = "histogram")]
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
    /// Calls answered from the response cache, and what they saved (the cost of the calls whose
    /// answers they reused).
    #[serde(default)]
    pub cache_hits: u64,
    #[serde(default)]
    pub saved_micros: u64,
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
            cache_hits: u64::from(e.cache.as_deref() == Some(crate::cache::HIT)),
            saved_micros: e.saved_micros,
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
        self.cache_hits += other.cache_hits;
        self.saved_micros += other.saved_micros;
    }

    /// The latency (ms) under which `pct` percent of calls finished, as the upper bound of the
    /// bucket holding that call: never interpolated, so it never claims a call was faster than
    /// it may have been (the last bucket's bound is `u64::MAX`).
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

/// What a stats row is keyed by: one day, provider, model, key and route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    pub date: String,
    pub provider: String,
    pub model: String,
    /// `-` when no key was used.
    pub key_id: String,
    /// The route the caller named; `None` for calls that named a model.
    pub route: Option<String>,
}

/// The finest stats row: one day, provider, model, key (`-` when no key was used) and route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRow {
    pub date: String,
    pub provider: String,
    pub model: String,
    pub key_id: String,
    /// The route the calls named; `None` for calls that named a model (and for rows written
    /// before stats were kept per route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(flatten)]
    pub counters: Counters,
}

impl StatsRow {
    pub fn new(key: RowKey, counters: Counters) -> Self {
        let RowKey { date, provider, model, key_id, route } = key;
        Self { date, provider, model, key_id, route, counters }
    }
}

/// The row key one event counts under.
pub fn row_key(e: &LogEvent) -> RowKey {
    RowKey {
        date: crate::time::stats_date(e.ts_ms),
        provider: e.provider.clone(),
        model: e.model.clone(),
        key_id: e.key_id.clone().unwrap_or_else(|| "-".to_string()),
        route: e.route.clone(),
    }
}

/// Every stats row one event adds to, with what it adds: the call's own row (its final key), and
/// the rows of the keys it tried, with their attempts and failed attempts. A key's attempts go to
/// the row of the provider and model it was tried for, under the call's route.
pub fn event_rows(e: &LogEvent) -> Vec<(RowKey, Counters)> {
    let call_key = row_key(e);
    let mut rows = vec![(call_key.clone(), Counters::from_event(e))];
    for attempt in &e.key_attempts {
        let key = RowKey {
            provider: attempt.provider.clone(),
            model: attempt.model.clone(),
            key_id: attempt.key_id.clone(),
            ..call_key.clone()
        };
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

/// How long minute rows are kept: enough for the live panel (15 minutes) and any alert window
/// (at most a day), with a day to spare.
pub const MINUTE_RETENTION_DAYS: i64 = 2;

/// The minute rows (keyed by [`crate::time::stats_minute`]) one event adds to: its [`event_rows`] with the minute in place of the day and
/// no route (minute rows serve alerts and the live panel, which look at providers, models and
/// keys; routes stay in the daily rows).
pub fn event_minute_rows(e: &LogEvent) -> Vec<(RowKey, Counters)> {
    let minute = crate::time::stats_minute(e.ts_ms);
    event_rows(e)
        .into_iter()
        .map(|(key, counters)| (RowKey { date: minute.clone(), route: None, ..key }, counters))
        .collect()
}

/// One caller's calls of one day: what `spend` alerts per caller and the spend-per-user view
/// read. A caller is the `user_id` the call was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerRow {
    pub date: String,
    pub user_id: String,
    #[serde(flatten)]
    pub counters: Counters,
}

/// The caller row one event adds to (none for a call made for no user).
pub fn event_caller_row(e: &LogEvent) -> Option<((String, String), Counters)> {
    let user = e.user_id.as_ref()?;
    Some(((crate::time::stats_date(e.ts_ms), user.clone()), Counters::from_event(e)))
}

/// One Maestro API key's calls of one day: spend per caller key. A user with several keys has
/// a row per key here and one row in [`CallerRow`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerKeyRow {
    pub date: String,
    pub caller_key_id: String,
    #[serde(flatten)]
    pub counters: Counters,
}

/// The caller-key row one event adds to (none for a call made without a Maestro API key).
pub fn event_caller_key_row(e: &LogEvent) -> Option<((String, String), Counters)> {
    let key = e.caller_key_id.as_ref()?;
    Some(((crate::time::stats_date(e.ts_ms), key.clone()), Counters::from_event(e)))
}

/// Which rows a stats query reads: an inclusive date range plus optional exact filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsQuery {
    pub from_date: String,
    pub to_date: String,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub key_id: Option<String>,
    /// Only the calls that named this route.
    #[serde(default)]
    pub route: Option<String>,
}

impl StatsQuery {
    pub fn matches(&self, row: &StatsRow) -> bool {
        row.date.as_str() >= self.from_date.as_str()
            && row.date.as_str() <= self.to_date.as_str()
            && self.provider.as_ref().is_none_or(|p| *p == row.provider)
            && self.model.as_ref().is_none_or(|m| *m == row.model)
            && self.key_id.as_ref().is_none_or(|k| *k == row.key_id)
            && self.route.as_ref().is_none_or(|r| row.route.as_ref() == Some(r))
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

    fn histogram_of(latencies: &[u64]) -> Counters {
        let mut c = Counters::default();
        for latency in latencies {
            c.latency_hist[latency_bucket(*latency)] += 1;
        }
        c
    }

    #[test]
    fn histogram_percentiles_use_bucket_bounds() {
        let c = histogram_of(&[1, 3, 4, 6, 12, 40, 90, 200, 900, 4_000]);
        assert_eq!(c.latency_percentile(10), Some(1));
        assert_eq!(c.latency_percentile(30), Some(5), "4 ms is in the bucket up to 5 ms");
        assert_eq!(c.latency_percentile(50), Some(15));
        assert_eq!(c.latency_percentile(80), Some(250));
        assert_eq!(c.latency_percentile(95), Some(5_000));
        assert_eq!(Counters::default().latency_percentile(50), None);
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(600_001), LATENCY_BUCKETS_MS.len() - 1);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS_MS.len() - 1);
    }

    #[test]
    fn p99_sees_the_slowest_two_percent_that_p95_does_not() {
        let mut latencies = vec![8; 98];
        latencies.extend([50_000, 50_000]);
        let c = histogram_of(&latencies);
        assert_eq!((c.latency_percentile(50), c.latency_percentile(95)), (Some(10), Some(10)));
        assert_eq!(c.latency_percentile(99), Some(60_000));
    }

    #[test]
    fn buckets_rise_strictly_from_1_ms_past_10_minutes() {
        assert!(LATENCY_BUCKETS_MS.len() >= 20);
        assert!(LATENCY_BUCKETS_MS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!((LATENCY_BUCKETS_MS[0], LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.len() - 2]), (1, 600_000));
    }

    #[test]
    fn every_legacy_bucket_moves_to_the_bucket_with_its_bound() {
        assert_eq!(LEGACY_BUCKET_TARGETS, [10, 12, 13, 15, 17, 19, 21, 23, 24, 25, 26, 29]);
        for (old, new) in LEGACY_BUCKET_TARGETS.iter().enumerate() {
            assert_eq!(LATENCY_BUCKETS_MS[*new], LEGACY_LATENCY_BUCKETS_MS[old]);
        }
        let legacy = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let hist = histogram_from_legacy(&legacy);
        assert_eq!(hist.iter().sum::<u64>(), 78, "no call lost");
        assert_eq!((hist[10], hist[13], hist[26], hist[29]), (1, 3, 11, 12));
        assert_eq!(hist.iter().filter(|n| **n > 0).count(), 12);
        // The legacy percentiles, read by hand from the old buckets: rank 39 of 78 falls in the
        // 9th old bucket (30 s), rank 75 in the last one.
        let c = Counters { latency_hist: hist, ..Counters::default() };
        assert_eq!((c.latency_percentile(50), c.latency_percentile(95)), (Some(30_000), Some(u64::MAX)));
        assert_eq!(c.latency_percentile(1), Some(100));
    }

    #[test]
    fn counters_serialized_with_the_legacy_buckets_still_read() {
        let mut json = serde_json::to_value(Counters { requests: 3, ..Counters::default() }).expect("json");
        json["latency_hist"] = serde_json::json!([1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
        let old: Counters = serde_json::from_value(json.clone()).expect("legacy shape");
        assert_eq!((old.requests, old.latency_hist[10], old.latency_hist[15], old.latency_hist[29]), (3, 1, 1, 1));
        assert_eq!(old.latency_hist.iter().sum::<u64>(), 3);
        let current: Counters = serde_json::from_value(serde_json::to_value(&old).expect("json")).expect("current");
        assert_eq!(current, old);
        json["latency_hist"] = serde_json::json!([1, 2, 3]);
        assert!(serde_json::from_value::<Counters>(json).is_err());
    }

    #[test]
    fn a_routed_call_counts_its_keys_attempts_under_its_route() {
        let e = LogEvent {
            route: Some("smart".into()),
            key_attempts: vec![crate::logs::KeyAttempts {
                provider: "openai".into(),
                model: "gpt-4o-mini".into(),
                key_id: "key-0".into(),
                attempts: 2,
                errors: 2,
            }],
            ..LogEvent::sample("r", 1_795_000_000_000)
        };
        let rows = event_rows(&e);
        let keys: Vec<(&str, Option<&str>, u64, u64)> =
            rows.iter().map(|(k, c)| (k.key_id.as_str(), k.route.as_deref(), c.requests, c.attempts)).collect();
        assert_eq!(keys, [("key-1", Some("smart"), 1, 0), ("key-0", Some("smart"), 0, 2)]);
        let unrouted = event_rows(&LogEvent::sample("r", 1_795_000_000_000));
        assert_eq!(unrouted[0].0.route, None);
    }
}
