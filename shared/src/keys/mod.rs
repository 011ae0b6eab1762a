//! Key selection (docs/ARCHITECTURE.md §4): which of a provider's keys to try, in what order, and what this
//! container remembers about each key between requests.
//!
//! The exact limits live in the [`CounterStore`]; this module only orders candidates and skips
//! keys already known to be full, so a full window costs one refused write, not one per request.
//! A key refused for its request count (rpm, rpd) is skipped by every request until the window
//! ends; a key refused for its tokens per minute only by requests at least as big as the one
//! refused (a smaller one may still fit). A store failure on one key (busy, unavailable) moves on
//! to the next key.

pub mod health;

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::domain::{ApiKey, KeyStatus};
use crate::store::{CounterStore, Grant, Reservation, StoreError, WindowKind};

/// Why key selection passed a key over (what a call's attempt log says of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// Marked invalid (a provider's 401/403, or an admin): never tried until validated.
    Invalid,
    /// Cooling down after a provider's 429 or an empty quota (status `rate_limited`).
    CoolingDown,
    /// Resting after repeated failures (status `error`, the circuit breaker).
    Resting,
    /// Maestro's request window of the minute is full.
    RpmLimit,
    /// Maestro's token window of the minute has no room for this request.
    TpmLimit,
    /// Maestro's request window of the day is full.
    RpdLimit,
    /// The key's counters could not be read or written (a busy or unreachable store).
    CountersUnavailable,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::CoolingDown => "cooling_down",
            Self::Resting => "resting",
            Self::RpmLimit => "rpm_limit",
            Self::TpmLimit => "tpm_limit",
            Self::RpdLimit => "rpd_limit",
            Self::CountersUnavailable => "counters_unavailable",
        }
    }
}

/// A key a pick passed over, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Skip {
    pub key_id: String,
    pub reason: SkipReason,
}

#[derive(Debug, Default, Clone, Copy)]
struct LocalKeyState {
    /// Requests this container sent with the key: the tie-breaker between equal priorities.
    uses: u64,
    /// Unix ms until which the key refuses every request (a request-count window is full), and
    /// which window it is (rpm or rpd).
    full_until: i64,
    full_reason: Option<SkipReason>,
    /// A refusal by the tokens-per-minute limit: until when (unix ms), and the smallest request
    /// (tokens) refused in that window. Requests of at least that size skip the key until then.
    tokens_full: Option<TokensFull>,
    /// Retryable failures in a row, for the circuit breaker.
    consecutive_failures: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TokensFull {
    until_ms: i64,
    refused_tokens: u64,
}

impl LocalKeyState {
    /// Until when the key is known to refuse a request of `tokens` at `now_ms`, and by which
    /// limit, if it is.
    fn refuses_until(&self, now_ms: i64, tokens: u64) -> Option<(i64, SkipReason)> {
        if self.full_until > now_ms {
            return Some((self.full_until, self.full_reason.unwrap_or(SkipReason::RpmLimit)));
        }
        self.tokens_full
            .filter(|t| t.until_ms > now_ms && tokens >= t.refused_tokens)
            .map(|t| (t.until_ms, SkipReason::TpmLimit))
    }

    /// Remembers a tpm refusal of `tokens`, keeping the smallest refused size of the window.
    fn refused_for_tokens(&mut self, until_ms: i64, tokens: u64) {
        let refused_tokens = match self.tokens_full {
            Some(t) if t.until_ms == until_ms => t.refused_tokens.min(tokens),
            _ => tokens,
        };
        self.tokens_full = Some(TokensFull { until_ms, refused_tokens });
    }
}

/// What this container knows about keys, beyond the catalog.
#[derive(Debug, Default)]
pub struct KeyPool {
    local: Mutex<HashMap<String, LocalKeyState>>,
}

/// The outcome of trying to reserve capacity on one of a provider's keys.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per attempt and destructured at once; boxing would only add an allocation"
)]
pub enum Pick {
    Reserved {
        key: ApiKey,
        grant: Grant,
    },
    /// Every usable key is full; the earliest frees up at `until_ms`.
    AllFull {
        until_ms: i64,
    },
    /// No key is usable at all (none active, all invalid or cooling down). `cooling_until` is the
    /// earliest cool-down end, when there is one; `after_errors` when every cooling key cools
    /// down after failures (status `error`), none after a 429.
    NoUsableKey {
        cooling_until: Option<i64>,
        after_errors: bool,
    },
}

impl KeyPool {
    fn with_state<T>(&self, key_id: &str, f: impl FnOnce(&mut LocalKeyState) -> T) -> T {
        let mut map = self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(map.entry(key_id.to_string()).or_default())
    }

    fn snapshot(&self, key_id: &str) -> LocalKeyState {
        let map = self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(key_id).copied().unwrap_or_default()
    }

    /// Usable keys in the order to try: priority first, then the least used here, random among
    /// equals so that containers do not all pile onto the same key.
    pub fn candidates<'a>(&self, keys: &'a [ApiKey], now_ms: i64, excluded: &HashSet<String>) -> Vec<&'a ApiKey> {
        let mut usable: Vec<(&ApiKey, u64, u32)> = keys
            .iter()
            .filter(|k| k.is_usable(now_ms) && !excluded.contains(&k.id))
            .map(|k| (k, self.snapshot(&k.id).uses, fastrand::u32(..)))
            .collect();
        usable.sort_by_key(|(k, uses, jitter)| (Reverse(k.priority), *uses, *jitter));
        usable.into_iter().map(|(k, _, _)| k).collect()
    }

    /// Reserves one request and `estimate` tokens on the first candidate with room. A store
    /// failure on a key is logged and the next candidate tried; the error is returned only when
    /// every candidate tried failed that way (a key skipped or refused as full makes it
    /// [`Pick::AllFull`] instead). Every key passed over on the way is added to `skipped` with
    /// why: invalid or cooling down, full, or its counters unavailable (inactive keys and those
    /// in `excluded` are not).
    pub async fn pick(
        &self,
        counters: &dyn CounterStore,
        keys: &[ApiKey],
        now_ms: i64,
        estimate: u64,
        excluded: &HashSet<String>,
        skipped: &mut Vec<Skip>,
    ) -> Result<Pick, StoreError> {
        for key in keys.iter().filter(|k| k.is_active && !excluded.contains(&k.id) && !k.is_usable(now_ms)) {
            let reason = match key.status {
                KeyStatus::Error => SkipReason::Resting,
                KeyStatus::RateLimited => SkipReason::CoolingDown,
                KeyStatus::Invalid | KeyStatus::Normal => SkipReason::Invalid,
            };
            skipped.push(Skip { key_id: key.id.clone(), reason });
        }
        let candidates = self.candidates(keys, now_ms, excluded);
        if candidates.is_empty() {
            let cooling: Vec<&ApiKey> = keys
                .iter()
                .filter(|k| k.is_active && !excluded.contains(&k.id) && !k.is_usable(now_ms))
                .filter(|k| k.cooldown_until.is_some())
                .collect();
            let cooling_until = cooling.iter().filter_map(|k| k.cooldown_until).min();
            let after_errors = cooling.iter().all(|k| k.status == KeyStatus::Error);
            return Ok(Pick::NoUsableKey { cooling_until, after_errors });
        }
        let mut earliest_free = i64::MAX;
        let mut store_error = None;
        for key in candidates {
            // A single request may never be bigger than the whole tpm window, or the key could
            // never serve it; the reconcile corrects the count with the real usage afterwards.
            let tokens = key.limits.tpm.map_or(estimate, |tpm| estimate.min(tpm));
            let skip = |reason| Skip { key_id: key.id.clone(), reason };
            if let Some((until_ms, reason)) = self.snapshot(&key.id).refuses_until(now_ms, tokens) {
                earliest_free = earliest_free.min(until_ms);
                skipped.push(skip(reason));
                continue;
            }
            match counters.reserve(&key.id, &key.limits, now_ms, tokens).await {
                Ok(Reservation::Granted(grant)) => {
                    self.with_state(&key.id, |s| s.uses += 1);
                    return Ok(Pick::Reserved { key: key.clone(), grant });
                }
                Ok(Reservation::Refused { window, until_ms }) => {
                    let reason = if window == WindowKind::Minute && refused_for_tokens(counters, key, now_ms).await {
                        self.with_state(&key.id, |s| s.refused_for_tokens(until_ms, tokens));
                        SkipReason::TpmLimit
                    } else {
                        let reason =
                            if window == WindowKind::Day { SkipReason::RpdLimit } else { SkipReason::RpmLimit };
                        self.with_state(&key.id, |s| {
                            s.full_until = until_ms;
                            s.full_reason = Some(reason);
                        });
                        reason
                    };
                    earliest_free = earliest_free.min(until_ms);
                    skipped.push(skip(reason));
                }
                Err(e) => {
                    tracing::warn!(key_id = %key.id, error = %e, "reserving on a key failed; trying the next key");
                    store_error = Some(e);
                    skipped.push(skip(SkipReason::CountersUnavailable));
                }
            }
        }
        match store_error {
            Some(e) if earliest_free == i64::MAX => Err(e),
            _ => Ok(Pick::AllFull { until_ms: earliest_free }),
        }
    }

    /// Counts a retryable failure; returns how many happened in a row.
    pub fn note_failure(&self, key_id: &str) -> u32 {
        self.with_state(key_id, |s| {
            s.consecutive_failures += 1;
            s.consecutive_failures
        })
    }

    pub fn note_success(&self, key_id: &str) {
        self.with_state(key_id, |s| s.consecutive_failures = 0);
    }
}

/// Whether a minute-window refusal came from the tokens-per-minute limit rather than the request
/// count. With both limits set, the window is read: requests below rpm mean tokens refused it
/// (requests in a window only grow). When it cannot be told, a request-count refusal is assumed,
/// which skips the key for everyone (as safe as before).
async fn refused_for_tokens(counters: &dyn CounterStore, key: &ApiKey, now_ms: i64) -> bool {
    match (key.limits.rpm, key.limits.tpm) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(rpm), Some(_)) => match counters.usage(&key.id, now_ms).await {
            Ok((minute, _)) => minute.requests < rpm,
            Err(e) => {
                tracing::debug!(key_id = %key.id, error = %e, "cannot tell which limit refused; treating the key as full");
                false
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{KeyLimits, KeyStatus};
    use crate::store::{BudgetLimits, BudgetUsage, WindowUsage};
    use crate::time;

    const NOW: i64 = 1_795_000_020_000;

    /// Counters that keep one window per key (it serves as both minute and day) and hold it to
    /// the key's rpm, tpm and rpd; keys in `failing` answer with a busy store. Every reservation
    /// and usage read is recorded.
    #[derive(Default)]
    struct Counters {
        failing: HashSet<String>,
        windows: Mutex<HashMap<String, WindowUsage>>,
        reserves: Mutex<Vec<(String, u64)>>,
        usage_reads: Mutex<u32>,
    }

    impl Counters {
        fn failing(ids: &[&str]) -> Self {
            Self { failing: ids.iter().map(|s| s.to_string()).collect(), ..Self::default() }
        }

        fn reserves(&self) -> Vec<(String, u64)> {
            self.reserves.lock().expect("lock").clone()
        }

        fn window(&self, key_id: &str) -> WindowUsage {
            self.windows.lock().expect("lock").get(key_id).copied().unwrap_or_default()
        }
    }

    #[async_trait::async_trait]
    impl CounterStore for Counters {
        async fn reserve(
            &self,
            key_id: &str,
            limits: &KeyLimits,
            now_ms: i64,
            tokens: u64,
        ) -> Result<Reservation, StoreError> {
            self.reserves.lock().expect("lock").push((key_id.to_string(), tokens));
            if self.failing.contains(key_id) {
                return Err(StoreError::Unavailable(format!("throttled on {key_id}")));
            }
            let mut windows = self.windows.lock().expect("lock");
            let w = windows.entry(key_id.to_string()).or_default();
            if limits.rpd.is_some_and(|rpd| w.requests >= rpd) {
                return Ok(Reservation::Refused { window: WindowKind::Day, until_ms: time::day_window_end(now_ms) });
            }
            if limits.rpm.is_some_and(|rpm| w.requests >= rpm) || limits.tpm.is_some_and(|tpm| w.tokens + tokens > tpm)
            {
                let until_ms = time::minute_window_end(now_ms);
                return Ok(Reservation::Refused { window: WindowKind::Minute, until_ms });
            }
            w.requests += 1;
            w.tokens += tokens;
            Ok(Reservation::Granted(Grant {
                key_id: key_id.to_string(),
                minute_window: time::minute_window(now_ms),
                day_window: time::day_window(now_ms),
                reserved_tokens: tokens,
                ..Grant::default()
            }))
        }
        async fn reconcile(&self, _: &Grant, _: i64) -> Result<(), StoreError> {
            Ok(())
        }
        async fn usage(&self, key_id: &str, _: i64) -> Result<(WindowUsage, WindowUsage), StoreError> {
            *self.usage_reads.lock().expect("lock") += 1;
            let w = self.window(key_id);
            Ok((w, w))
        }
        async fn reserve_budget(
            &self,
            _: &str,
            _: &BudgetLimits,
            _: i64,
            _: u64,
            _: u64,
        ) -> Result<Reservation, StoreError> {
            Err(StoreError::backend("not used"))
        }
        async fn reconcile_budget(&self, _: &Grant, _: i64, _: i64) -> Result<(), StoreError> {
            Ok(())
        }
        async fn budget_usage(&self, _: &str, _: i64) -> Result<BudgetUsage, StoreError> {
            Ok(BudgetUsage::default())
        }
    }

    fn limited(id: &str, priority: i64, rpm: Option<u64>, tpm: Option<u64>, rpd: Option<u64>) -> ApiKey {
        ApiKey { limits: KeyLimits { rpm, tpm, rpd }, ..key(id, priority, KeyStatus::Normal) }
    }

    /// The key a pick reserved on, or what else it came to.
    async fn pick(pool: &KeyPool, counters: &Counters, keys: &[ApiKey], now_ms: i64, tokens: u64) -> String {
        match pool.pick(counters, keys, now_ms, tokens, &HashSet::new(), &mut Vec::new()).await {
            Ok(Pick::Reserved { key, .. }) => key.id,
            Ok(Pick::AllFull { until_ms }) => format!("full until {until_ms}"),
            Ok(Pick::NoUsableKey { .. }) => "no usable key".into(),
            Err(e) => format!("error: {e}"),
        }
    }

    fn calls(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|(k, t)| (k.to_string(), *t)).collect()
    }

    #[tokio::test]
    async fn a_store_failure_on_one_key_moves_on_to_the_next_and_the_key_stays_a_candidate() {
        let pool = KeyPool::default();
        let counters = Counters::failing(&["a"]);
        let keys = vec![limited("a", 2, None, None, None), limited("b", 1, None, None, None)];
        assert_eq!(pick(&pool, &counters, &keys, NOW, 10).await, "b");
        assert_eq!(pick(&pool, &counters, &keys, NOW, 10).await, "b");
        // A busy store says nothing about the key's room: it is tried first again.
        assert_eq!(counters.reserves(), calls(&[("a", 10), ("b", 10), ("a", 10), ("b", 10)]));
        assert_eq!(counters.window("b").requests, 2);
    }

    #[tokio::test]
    async fn the_store_error_comes_back_only_when_every_candidate_failed_with_one() {
        let pool = KeyPool::default();
        let keys = vec![limited("a", 2, None, None, None), limited("b", 1, None, None, None)];
        let counters = Counters::failing(&["a", "b"]);
        let result = pool.pick(&counters, &keys, NOW, 10, &HashSet::new(), &mut Vec::new()).await;
        assert!(matches!(&result, Err(StoreError::Unavailable(m)) if m.contains("on b")), "{result:?}");
        assert_eq!(counters.reserves().len(), 2, "both keys were tried");

        // One key full, the other failing: the caller hears when the full one frees up.
        let keys = vec![limited("a", 2, None, None, None), limited("full", 1, Some(1), None, None)];
        let counters = Counters::failing(&["a"]);
        counters.windows.lock().expect("lock").insert("full".into(), WindowUsage { requests: 1, tokens: 0 });
        let end = time::minute_window_end(NOW);
        assert_eq!(pick(&pool, &counters, &keys, NOW, 10).await, format!("full until {end}"));
    }

    #[tokio::test]
    async fn a_tpm_refusal_skips_the_key_only_for_requests_at_least_as_big() {
        let pool = KeyPool::default();
        let counters = Counters::default();
        let keys = vec![limited("k", 1, Some(100), Some(1_000), None)];
        let end = time::minute_window_end(NOW);
        assert_eq!(pick(&pool, &counters, &keys, NOW, 900).await, "k");
        assert_eq!(pick(&pool, &counters, &keys, NOW, 500).await, format!("full until {end}"));
        assert_eq!(*counters.usage_reads.lock().expect("lock"), 1, "rpm and tpm both set: the window tells which");
        // Smaller requests still get the room that is left.
        assert_eq!(pick(&pool, &counters, &keys, NOW, 60).await, "k");
        // As big or bigger: skipped without a write until the window ends.
        assert_eq!(pick(&pool, &counters, &keys, NOW, 500).await, format!("full until {end}"));
        assert_eq!(pick(&pool, &counters, &keys, NOW, 800).await, format!("full until {end}"));
        assert_eq!(counters.reserves(), calls(&[("k", 900), ("k", 500), ("k", 60)]));
        // A smaller refusal lowers the bar; the next window starts afresh.
        assert_eq!(pick(&pool, &counters, &keys, NOW, 50).await, format!("full until {end}"));
        assert_eq!(pick(&pool, &counters, &keys, NOW, 70).await, format!("full until {end}"));
        assert_eq!(counters.reserves().len(), 4);
        assert_eq!(pick(&pool, &counters, &keys, NOW, 40).await, "k");
        assert_eq!(counters.window("k"), WindowUsage { requests: 3, tokens: 1_000 });
        counters.windows.lock().expect("lock").clear();
        assert_eq!(pick(&pool, &counters, &keys, end, 800).await, "k");
        assert_eq!(counters.window("k"), WindowUsage { requests: 1, tokens: 800 });
    }

    #[tokio::test]
    async fn a_request_count_refusal_skips_the_key_for_every_request() {
        let end = time::minute_window_end(NOW);
        for keys in [vec![limited("k", 1, Some(2), Some(1_000), None)], vec![limited("k", 1, Some(2), None, None)]] {
            let pool = KeyPool::default();
            let counters = Counters::default();
            assert_eq!(pick(&pool, &counters, &keys, NOW, 10).await, "k");
            assert_eq!(pick(&pool, &counters, &keys, NOW, 10).await, "k");
            assert_eq!(pick(&pool, &counters, &keys, NOW, 10).await, format!("full until {end}"));
            assert_eq!(pick(&pool, &counters, &keys, NOW, 1).await, format!("full until {end}"));
            assert_eq!(counters.reserves().len(), 3, "the 1-token request skipped the key: {keys:?}");
        }

        let pool = KeyPool::default();
        let counters = Counters::default();
        let keys = vec![limited("k", 1, Some(100), Some(1_000), Some(1))];
        let day_end = time::day_window_end(NOW);
        assert_eq!(pick(&pool, &counters, &keys, NOW, 10).await, "k");
        assert_eq!(pick(&pool, &counters, &keys, NOW, 10).await, format!("full until {day_end}"));
        assert_eq!(pick(&pool, &counters, &keys, end, 1).await, format!("full until {day_end}"));
        assert_eq!(counters.reserves().len(), 2);
        assert_eq!(*counters.usage_reads.lock().expect("lock"), 0, "a day refusal is a request count");
    }

    #[tokio::test]
    async fn a_pick_says_which_keys_it_passed_over_and_why() {
        let pool = KeyPool::default();
        let counters = Counters::failing(&["busy"]);
        let cooling = |id: &str, status| ApiKey { cooldown_until: Some(NOW + 60_000), ..key(id, 9, status) };
        let keys = vec![
            key("bad", 9, KeyStatus::Invalid),
            cooling("hot", KeyStatus::RateLimited),
            cooling("tired", KeyStatus::Error),
            ApiKey { is_active: false, ..key("off", 9, KeyStatus::Normal) },
            limited("tried", 9, None, None, None),
            limited("full", 8, Some(1), None, None),
            limited("day", 7, None, None, Some(1)),
            limited("tokens", 6, None, Some(100), None),
            limited("busy", 5, None, None, None),
            limited("ok", 1, None, None, None),
        ];
        for (id, requests, tokens) in [("full", 1, 0), ("day", 1, 0), ("tokens", 0, 90)] {
            counters.windows.lock().expect("lock").insert(id.into(), WindowUsage { requests, tokens });
        }
        let excluded = HashSet::from(["tried".to_string()]);
        let expected: Vec<(String, SkipReason)> = [
            ("bad", SkipReason::Invalid),
            ("hot", SkipReason::CoolingDown),
            ("tired", SkipReason::Resting),
            ("full", SkipReason::RpmLimit),
            ("day", SkipReason::RpdLimit),
            ("tokens", SkipReason::TpmLimit),
            ("busy", SkipReason::CountersUnavailable),
        ]
        .map(|(id, reason)| (id.to_string(), reason))
        .to_vec();
        // The second pick knows the full keys already: the same reasons, without asking the store.
        for reserves in [5, 7] {
            let mut skipped = Vec::new();
            let pick = pool.pick(&counters, &keys, NOW, 50, &excluded, &mut skipped).await;
            assert!(matches!(&pick, Ok(Pick::Reserved { key, .. }) if key.id == "ok"), "{pick:?}");
            let seen: Vec<(String, SkipReason)> = skipped.into_iter().map(|s| (s.key_id, s.reason)).collect();
            assert_eq!(seen, expected);
            assert_eq!(counters.reserves().len(), reserves);
        }
        let names: Vec<&str> = expected.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(
            names,
            ["invalid", "cooling_down", "resting", "rpm_limit", "rpd_limit", "tpm_limit", "counters_unavailable"]
        );
    }

    fn key(id: &str, priority: i64, status: KeyStatus) -> ApiKey {
        ApiKey {
            id: id.into(),
            provider: "p".into(),
            name: id.into(),
            secret_ref: id.into(),
            masked: "…".into(),
            priority,
            is_active: true,
            status,
            cooldown_until: None,
            limits: KeyLimits::default(),
        }
    }

    #[test]
    fn higher_priority_first_then_least_used_and_unusable_keys_left_out() {
        let pool = KeyPool::default();
        let keys = vec![
            key("low", 1, KeyStatus::Normal),
            key("high-a", 5, KeyStatus::Normal),
            key("high-b", 5, KeyStatus::Normal),
            key("bad", 9, KeyStatus::Invalid),
        ];
        pool.with_state("high-a", |s| s.uses = 3);
        let order: Vec<_> = pool.candidates(&keys, 0, &HashSet::new()).iter().map(|k| k.id.clone()).collect();
        assert_eq!(order, ["high-b", "high-a", "low"]);
        let excluded = HashSet::from(["high-b".to_string()]);
        let order: Vec<_> = pool.candidates(&keys, 0, &excluded).iter().map(|k| k.id.clone()).collect();
        assert_eq!(order, ["high-a", "low"]);
    }

    #[test]
    fn failures_count_in_a_row_until_a_success() {
        let pool = KeyPool::default();
        assert_eq!(pool.note_failure("k"), 1);
        assert_eq!(pool.note_failure("k"), 2);
        pool.note_success("k");
        assert_eq!(pool.note_failure("k"), 1);
    }
}
