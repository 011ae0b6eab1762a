//! Operational metrics of calls, from the one log event each call ends in: a Prometheus registry
//! the local runner serves at `GET /metrics` ([`CallMetrics`], rendered by [`prometheus`]), and
//! CloudWatch Embedded Metric Format lines the chat Lambda prints ([`emf`]).
//!
//! Both watch the events where the gateway hands them to its log sink ([`ObservedSink`] wraps the
//! sink the gateway is built with), so every call is counted once, whatever the backend, and
//! nothing on the call path changes: observing is one short lock and a few integer additions,
//! with no allocation once a provider and model have been seen.

pub mod emf;
pub mod prometheus;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;

use crate::config::{ConfigError, Env};
use crate::logs::{CallStatus, LogEvent, LogSink};

/// Sees every call's log event as the gateway sends it.
pub trait CallObserver: Send + Sync {
    fn observe(&self, event: &LogEvent);
}

/// A log sink that shows each event to an observer, then hands it to the real sink.
pub struct ObservedSink {
    sink: Arc<dyn LogSink>,
    observer: Arc<dyn CallObserver>,
}

impl ObservedSink {
    /// `sink`, with `observer` shown every event first.
    pub fn wrap(sink: Arc<dyn LogSink>, observer: Arc<dyn CallObserver>) -> Arc<dyn LogSink> {
        Arc::new(Self { sink, observer })
    }
}

#[async_trait]
impl LogSink for ObservedSink {
    async fn send(&self, event: LogEvent) {
        self.observer.observe(&event);
        self.sink.send(event).await;
    }
}

/// Most series (distinct label sets) one metric keeps: past this many `provider`/`model` pairs, a
/// new model is counted as [`OTHER`] (one per provider), past this many `provider`/`error_code`
/// pairs a new code too. A catalog holds far fewer models; the bound keeps a scrape small whatever
/// reaches the log.
pub const MAX_SERIES: usize = 1_000;
/// The label value of what no longer fits in [`MAX_SERIES`].
pub const OTHER: &str = "other";

/// Upper bounds (ms, inclusive) of the duration histograms' buckets, `+Inf` after the last: a
/// Prometheus-sized subset of the stats' latency buckets (`crate::stats::LATENCY_BUCKETS_MS`, all
/// of them bounds there too), from 5 ms to 5 minutes.
pub const DURATION_BUCKETS_MS: [u64; 16] =
    [5, 10, 25, 50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000, 300_000];

const _: () = assert!(buckets_are_stats_bounds(), "every duration bucket is a bound of the stats' histogram");

const fn buckets_are_stats_bounds() -> bool {
    let mut i = 0;
    while i < DURATION_BUCKETS_MS.len() {
        let mut found = false;
        let mut j = 0;
        while j < crate::stats::LATENCY_BUCKETS_MS.len() {
            found |= crate::stats::LATENCY_BUCKETS_MS[j] == DURATION_BUCKETS_MS[i];
            j += 1;
        }
        if !found || (i > 0 && DURATION_BUCKETS_MS[i - 1] >= DURATION_BUCKETS_MS[i]) {
            return false;
        }
        i += 1;
    }
    true
}

/// The `request_type` label values; any other type is counted as the last, `other`.
pub const REQUEST_TYPES: [&str; 4] = [
    crate::gateway::REQUEST_TYPE_CHAT,
    crate::gateway::REQUEST_TYPE_RESPONSES,
    crate::gateway::EMBEDDINGS_REQUEST_TYPE,
    OTHER,
];

fn request_type_index(request_type: &str) -> usize {
    REQUEST_TYPES.iter().position(|t| *t == request_type).unwrap_or(REQUEST_TYPES.len() - 1)
}

/// The `status` label values of a call, by [`CallStatus`].
pub const STATUSES: [&str; 2] = ["success", "error"];

/// The `kind` label values of `maestro_tokens_total`.
pub const TOKEN_KINDS: [&str; 4] = ["prompt", "completion", "cached", "cache_write"];

/// Observations in [`DURATION_BUCKETS_MS`] (not cumulative; the last slot is `+Inf`), and their
/// sum in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    pub counts: [u64; DURATION_BUCKETS_MS.len() + 1],
    pub sum_ms: u64,
}

impl Histogram {
    fn observe(&mut self, ms: u64) {
        let slot = DURATION_BUCKETS_MS.iter().position(|bound| ms <= *bound).unwrap_or(DURATION_BUCKETS_MS.len());
        self.counts[slot] += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// What the calls of one provider and model added up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelSeries {
    pub provider: String,
    pub model: String,
    /// Calls by [`REQUEST_TYPES`] and [`STATUSES`].
    pub calls: [[u64; STATUSES.len()]; REQUEST_TYPES.len()],
    /// Every call's duration, failures included (as the stats' percentiles).
    pub duration: Histogram,
    /// Time to the first byte of streamed calls.
    pub ttfb: Histogram,
    /// Tokens by [`TOKEN_KINDS`].
    pub tokens: [u64; TOKEN_KINDS.len()],
    pub cost_micros: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub saved_micros: u64,
}

impl ModelSeries {
    fn add(&mut self, e: &LogEvent) {
        let status = usize::from(e.status == CallStatus::Error);
        self.calls[request_type_index(&e.request_type)][status] += 1;
        self.duration.observe(e.latency_ms);
        if e.stream
            && let Some(ttfb) = e.ttfb_ms
        {
            self.ttfb.observe(ttfb);
        }
        for (total, n) in
            self.tokens.iter_mut().zip([e.prompt_tokens, e.completion_tokens, e.cached_tokens, e.cache_write_tokens])
        {
            *total = total.saturating_add(n);
        }
        self.cost_micros = self.cost_micros.saturating_add(e.cost_micros);
        match e.cache.as_deref() {
            Some(crate::cache::HIT) => {
                self.cache_hits += 1;
                self.saved_micros = self.saved_micros.saturating_add(e.saved_micros);
            }
            Some(_) => self.cache_misses += 1,
            None => {}
        }
    }
}

/// Failed calls of one provider with one error code, by the HTTP status they were recorded with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorSeries {
    pub provider: String,
    pub code: String,
    /// `(http status, calls)`, in the order first seen (a code comes with one or two statuses).
    pub by_status: Vec<(u16, u64)>,
}

/// The error code counted for a failed call that has none.
pub const NO_CODE: &str = "none";

#[derive(Debug, Default)]
struct Tables {
    /// provider → model → place in `models`: looked up by `&str`, so a known pair costs no
    /// allocation; indices, so a lookup holds no borrow while a new series is added.
    model_index: HashMap<String, HashMap<String, usize>>,
    models: Vec<ModelSeries>,
    error_index: HashMap<String, HashMap<String, usize>>,
    errors: Vec<ErrorSeries>,
    /// A call used the response cache.
    cache_used: bool,
}

impl Tables {
    fn model_slot(&mut self, provider: &str, model: &str) -> usize {
        if let Some(i) = self.model_index.get(provider).and_then(|m| m.get(model)) {
            return *i;
        }
        let model = if self.models.len() < MAX_SERIES { model } else { OTHER };
        if let Some(i) = self.model_index.get(provider).and_then(|m| m.get(model)) {
            return *i;
        }
        let i = self.models.len();
        self.models.push(ModelSeries {
            provider: provider.to_string(),
            model: model.to_string(),
            ..Default::default()
        });
        self.model_index.entry(provider.to_string()).or_default().insert(model.to_string(), i);
        i
    }

    fn error_slot(&mut self, provider: &str, code: &str) -> usize {
        if let Some(i) = self.error_index.get(provider).and_then(|m| m.get(code)) {
            return *i;
        }
        let code = if self.errors.len() < MAX_SERIES { code } else { OTHER };
        if let Some(i) = self.error_index.get(provider).and_then(|m| m.get(code)) {
            return *i;
        }
        let i = self.errors.len();
        self.errors.push(ErrorSeries { provider: provider.to_string(), code: code.to_string(), by_status: Vec::new() });
        self.error_index.entry(provider.to_string()).or_default().insert(code.to_string(), i);
        i
    }
}

/// The call metrics of one process (the local runner keeps one, behind `GET /metrics`): counters
/// and histograms per provider and model, error counts per code, since the process started.
#[derive(Debug)]
pub struct CallMetrics {
    started: Instant,
    tables: Mutex<Tables>,
}

impl Default for CallMetrics {
    fn default() -> Self {
        Self { started: Instant::now(), tables: Mutex::new(Tables::default()) }
    }
}

/// A copy of the metrics, taken under the lock and rendered outside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Sorted by provider, then model.
    pub models: Vec<ModelSeries>,
    /// Sorted by provider, then code.
    pub errors: Vec<ErrorSeries>,
    pub cache_used: bool,
    pub uptime_ms: u64,
}

impl CallMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything counted so far.
    pub fn snapshot(&self) -> Snapshot {
        let (mut models, mut errors, cache_used) = {
            let tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
            (tables.models.clone(), tables.errors.clone(), tables.cache_used)
        };
        models.sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
        errors.sort_by(|a, b| (&a.provider, &a.code).cmp(&(&b.provider, &b.code)));
        let uptime_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Snapshot { models, errors, cache_used, uptime_ms }
    }
}

impl CallObserver for CallMetrics {
    fn observe(&self, e: &LogEvent) {
        // A panic elsewhere while the lock was held leaves plain counters: keep counting.
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = tables.model_slot(&e.provider, &e.model);
        tables.models[slot].add(e);
        tables.cache_used |= e.cache.is_some();
        if e.status == CallStatus::Error {
            let slot = tables.error_slot(&e.provider, e.error_code.as_deref().unwrap_or(NO_CODE));
            let by_status = &mut tables.errors[slot].by_status;
            match by_status.iter_mut().find(|(status, _)| *status == e.http_status) {
                Some((_, n)) => *n += 1,
                None => by_status.push((e.http_status, 1)),
            }
        }
    }
}

/// An on/off environment switch: `1`, `true`, `on` or `0`, `false`, `off`; `None` when unset.
pub fn switch(env: &Env, name: &'static str) -> Result<Option<bool>, ConfigError> {
    match env.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(None),
        Some("1" | "true" | "on") => Ok(Some(true)),
        Some("0" | "false" | "off") => Ok(Some(false)),
        Some(other) => Err(ConfigError::Setting { name, message: format!("`{other}`: use `1` or `0`") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(provider: &str, code: Option<&str>, http_status: u16) -> LogEvent {
        LogEvent {
            provider: provider.to_string(),
            status: CallStatus::Error,
            http_status,
            error_code: code.map(str::to_string),
            ..LogEvent::sample("r", 0)
        }
    }

    #[test]
    fn events_add_up_per_provider_and_model() {
        let metrics = CallMetrics::new();
        metrics.observe(&LogEvent::sample("r-1", 0));
        metrics.observe(&LogEvent { latency_ms: 5, stream: true, ttfb_ms: Some(3), ..LogEvent::sample("r-2", 0) });
        metrics.observe(&LogEvent { request_type: "embeddings".into(), ..failed("openai", Some("x"), 502) });
        metrics.observe(&LogEvent { request_type: "something-new".into(), ..LogEvent::sample("r-4", 0) });
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.models.len(), 1);
        let s = &snapshot.models[0];
        assert_eq!(s.calls, [[2, 0], [0, 0], [0, 1], [1, 0]]);
        assert_eq!(s.duration.count(), 4);
        assert_eq!(s.duration.sum_ms, 420 * 3 + 5);
        assert_eq!(s.duration.counts[0], 1, "5 ms is in the bucket up to 5 ms");
        assert_eq!(s.duration.counts[6], 3, "420 ms is in the bucket up to 500 ms");
        assert_eq!((s.ttfb.count(), s.ttfb.sum_ms), (1, 3), "only streams have a first byte");
        assert_eq!(s.tokens, [120 * 4, 30 * 4, 20 * 4, 0]);
        assert_eq!(s.cost_micros, 4_500 * 4);
        assert!(!snapshot.cache_used);
        assert_eq!(snapshot.errors[0].by_status, [(502, 1)]);
    }

    #[test]
    fn past_the_series_bound_new_models_and_codes_count_as_other() {
        let (metrics, failures) = (CallMetrics::new(), CallMetrics::new());
        for i in 0..MAX_SERIES + 5 {
            metrics.observe(&LogEvent { model: format!("m{i}"), ..LogEvent::sample("r", 0) });
            failures.observe(&failed("p", Some(&format!("code{i}")), 500));
        }
        // A model seen before the bound keeps its own series.
        metrics.observe(&LogEvent { model: "m0".into(), ..LogEvent::sample("r", 0) });
        metrics.observe(&LogEvent { provider: "late".into(), model: "m-late".into(), ..LogEvent::sample("r", 0) });
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.models.len(), MAX_SERIES + 2, "the bound, one `other` for openai and one for `late`");
        let calls = |provider: &str, model: &str| {
            snapshot.models.iter().find(|s| s.provider == provider && s.model == model).map(|s| s.calls[0][0])
        };
        assert_eq!(calls("openai", "m0"), Some(2));
        assert_eq!(calls("openai", OTHER), Some(5));
        assert_eq!(calls("openai", &format!("m{MAX_SERIES}")), None);
        assert_eq!(calls("late", OTHER), Some(1));
        let errors = failures.snapshot().errors;
        let other = errors.iter().find(|e| e.code == OTHER).map(|e| e.by_status.clone());
        assert_eq!(other, Some(vec![(500, 5)]));
        assert_eq!(errors.len(), MAX_SERIES + 1);
    }

    #[test]
    fn cache_hits_and_misses_count_and_mark_the_cache_used() {
        let metrics = CallMetrics::new();
        let hit = LogEvent { cache: Some("hit".into()), saved_micros: 39, cost_micros: 0, ..LogEvent::sample("h", 0) };
        metrics.observe(&hit);
        metrics.observe(&LogEvent { cache: Some("miss".into()), ..LogEvent::sample("m", 0) });
        let snapshot = metrics.snapshot();
        let s = &snapshot.models[0];
        assert_eq!((s.cache_hits, s.cache_misses, s.saved_micros), (1, 1, 39));
        assert!(snapshot.cache_used);
    }

    #[test]
    fn switches_read_one_and_zero() {
        let env = Env::from_pairs(&[("A", "1"), ("B", "off"), ("C", "yes")]);
        assert_eq!(switch(&env, "A").ok(), Some(Some(true)));
        assert_eq!(switch(&env, "B").ok(), Some(Some(false)));
        assert_eq!(switch(&env, "UNSET").ok(), Some(None));
        assert!(switch(&env, "C").is_err());
    }
}
