//! What this process has seen of each target (`provider/model`): a circuit on its recent error
//! rate, its recent latency (whole answers and time to first byte apart) and its typical answer
//! length. Per process or container, like the key pool's breaker: each learns from the calls it
//! makes, seeded from the stats for latency.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Outcomes older than this no longer count toward a target's error rate.
pub const ERROR_WINDOW_MS: i64 = 60_000;
/// A target trips at this error rate (percent) …
pub const TRIP_ERROR_PERCENT: usize = 50;
/// … over at least this many calls in the window.
pub const TRIP_MIN_CALLS: usize = 5;
/// How long a tripped target is tried only after every healthy one; then it starts afresh.
pub const OPEN_MS: i64 = 30_000;
/// Outcomes kept per target (the window is short; this bounds memory under heavy traffic).
const MAX_OUTCOMES: usize = 64;
/// Weight of the newest sample in the moving averages: recent calls count most.
const EWMA_WEIGHT: f64 = 0.3;

/// Whether a latency is of a whole answer or of a stream's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    Complete,
    FirstByte,
}

#[derive(Debug, Default)]
struct TargetRecord {
    /// `(ts_ms, succeeded)`, oldest first.
    outcomes: VecDeque<(i64, bool)>,
    open_until_ms: Option<i64>,
    complete_ms: Option<f64>,
    first_byte_ms: Option<f64>,
    completion_tokens: Option<f64>,
    /// The stats were asked for a first latency (once per process, found or not).
    seeded: bool,
}

fn ewma(current: Option<f64>, sample: f64) -> f64 {
    current.map_or(sample, |c| c + EWMA_WEIGHT * (sample - c))
}

/// Every target's record, keyed by `provider/model`.
#[derive(Debug, Default)]
pub struct TargetBoard {
    targets: Mutex<HashMap<String, TargetRecord>>,
}

impl TargetBoard {
    fn with<T>(&self, target: &str, f: impl FnOnce(&mut TargetRecord) -> T) -> T {
        // A poisoned lock only means another call panicked mid-update: the figures are still usable.
        let mut targets = self.targets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(targets.entry(target.to_string()).or_default())
    }

    /// A call served by `target`: its latency (of the whole answer or of the first byte) and,
    /// for whole answers, its completion tokens.
    pub fn note_success(
        &self,
        target: &str,
        now_ms: i64,
        timing: Timing,
        latency_ms: u64,
        completion_tokens: Option<u64>,
    ) {
        self.with(target, |r| {
            r.push(now_ms, true);
            let latency = latency_ms as f64;
            match timing {
                Timing::Complete => r.complete_ms = Some(ewma(r.complete_ms, latency)),
                Timing::FirstByte => r.first_byte_ms = Some(ewma(r.first_byte_ms, latency)),
            }
            if let Some(tokens) = completion_tokens {
                r.completion_tokens = Some(ewma(r.completion_tokens, tokens as f64));
            }
        });
    }

    /// A call `target` could not serve (every key and retry of it failed). It may trip the circuit.
    pub fn note_failure(&self, target: &str, now_ms: i64) {
        self.with(target, |r| {
            r.push(now_ms, false);
            let recent = r.outcomes.len();
            let failed = r.outcomes.iter().filter(|(_, ok)| !ok).count();
            if recent >= TRIP_MIN_CALLS && failed * 100 >= recent * TRIP_ERROR_PERCENT && r.open_until_ms.is_none() {
                r.open_until_ms = Some(now_ms + OPEN_MS);
                tracing::warn!(target, failed, recent, "target's error rate is high; trying it after the others");
            }
        });
    }

    /// Whether `target`'s circuit is open at `now_ms` (tried only after every healthy target).
    /// Once the open time is over the target starts afresh, its old outcomes forgotten.
    pub fn is_tripped(&self, target: &str, now_ms: i64) -> bool {
        self.with(target, |r| match r.open_until_ms {
            Some(until) if until > now_ms => true,
            Some(_) => {
                r.open_until_ms = None;
                r.outcomes.clear();
                false
            }
            None => false,
        })
    }

    /// The target's recent latency for `timing` (the other timing when it has none of this one).
    pub fn latency_ms(&self, target: &str, timing: Timing) -> Option<f64> {
        self.with(target, |r| match timing {
            Timing::Complete => r.complete_ms.or(r.first_byte_ms),
            Timing::FirstByte => r.first_byte_ms.or(r.complete_ms),
        })
    }

    /// The target's typical completion tokens, from its recent answers.
    pub fn typical_completion_tokens(&self, target: &str) -> Option<u64> {
        self.with(target, |r| r.completion_tokens.map(|t| t.round() as u64))
    }

    /// Whether the stats should still be asked for `target`'s first latency; `true` once.
    pub fn needs_seed(&self, target: &str) -> bool {
        self.with(target, |r| {
            let needs = !r.seeded && r.complete_ms.is_none() && r.first_byte_ms.is_none();
            r.seeded = true;
            needs
        })
    }

    /// A first latency from the stats, for a target this process has not timed yet.
    pub fn seed_latency(&self, target: &str, latency_ms: u64) {
        self.with(target, |r| {
            if r.complete_ms.is_none() {
                r.complete_ms = Some(latency_ms as f64);
            }
        });
    }
}

impl TargetRecord {
    fn push(&mut self, now_ms: i64, ok: bool) {
        while self.outcomes.front().is_some_and(|(ts, _)| *ts <= now_ms - ERROR_WINDOW_MS)
            || self.outcomes.len() >= MAX_OUTCOMES
        {
            self.outcomes.pop_front();
        }
        self.outcomes.push_back((now_ms, ok));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_trips_at_half_failed_over_five_calls_and_starts_afresh_after_the_open_time() {
        let board = TargetBoard::default();
        let t = "p/m";
        for i in 0..3 {
            board.note_success(t, i, Timing::Complete, 100, None);
        }
        board.note_failure(t, 10);
        assert!(!board.is_tripped(t, 10), "1 of 4: too few calls, too few failures");
        board.note_failure(t, 11);
        assert!(!board.is_tripped(t, 11), "2 of 5: 40 %");
        board.note_failure(t, 12);
        assert!(board.is_tripped(t, 12), "3 of 6: 50 %");
        assert!(board.is_tripped(t, 12 + OPEN_MS - 1));
        assert!(!board.is_tripped(t, 12 + OPEN_MS));
        board.note_failure(t, 12 + OPEN_MS + 1);
        assert!(!board.is_tripped(t, 12 + OPEN_MS + 1), "old outcomes were forgotten");
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let board = TargetBoard::default();
        for i in 0..4 {
            board.note_failure("p/m", i);
        }
        board.note_failure("p/m", ERROR_WINDOW_MS + 10);
        assert!(!board.is_tripped("p/m", ERROR_WINDOW_MS + 10), "the first four fell out of the window");
    }

    #[test]
    fn latency_is_a_moving_average_per_timing() {
        let board = TargetBoard::default();
        board.note_success("p/m", 0, Timing::Complete, 100, Some(50));
        board.note_success("p/m", 1, Timing::Complete, 200, Some(150));
        assert_eq!(board.latency_ms("p/m", Timing::Complete), Some(130.0));
        assert_eq!(board.latency_ms("p/m", Timing::FirstByte), Some(130.0), "falls back to the other timing");
        board.note_success("p/m", 2, Timing::FirstByte, 20, None);
        assert_eq!(board.latency_ms("p/m", Timing::FirstByte), Some(20.0));
        assert_eq!(board.typical_completion_tokens("p/m"), Some(80));
        assert!(!board.needs_seed("p/m"), "timed already");
        assert!(board.needs_seed("q/m"));
        assert!(!board.needs_seed("q/m"), "asked once");
        board.seed_latency("q/m", 700);
        assert_eq!(board.latency_ms("q/m", Timing::FirstByte), Some(700.0));
    }
}
