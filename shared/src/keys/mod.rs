//! Key selection (DESIGN §4): which of a provider's keys to try, in what order, and what this
//! container remembers about each key between requests.
//!
//! The exact limits live in the [`CounterStore`]; this module only orders candidates and skips
//! keys already known to be full, so a full window costs one refused write, not one per request.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::domain::ApiKey;
use crate::store::{CounterStore, Grant, Reservation, StoreError};

#[derive(Debug, Default, Clone, Copy)]
struct LocalKeyState {
    /// Requests this container sent with the key: the tie-breaker between equal priorities.
    uses: u64,
    /// Unix ms until which the key's window is known to be full.
    full_until: i64,
    /// Retryable failures in a row, for the circuit breaker.
    consecutive_failures: u32,
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
    /// earliest cool-down end, when there is one.
    NoUsableKey {
        cooling_until: Option<i64>,
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

    /// Reserves one request and `estimate` tokens on the first candidate with room.
    pub async fn pick(
        &self,
        counters: &dyn CounterStore,
        keys: &[ApiKey],
        now_ms: i64,
        estimate: u64,
        excluded: &HashSet<String>,
    ) -> Result<Pick, StoreError> {
        let candidates = self.candidates(keys, now_ms, excluded);
        if candidates.is_empty() {
            let cooling_until = keys
                .iter()
                .filter(|k| k.is_active && !excluded.contains(&k.id) && !k.is_usable(now_ms))
                .filter_map(|k| k.cooldown_until)
                .min();
            return Ok(Pick::NoUsableKey { cooling_until });
        }
        let mut earliest_free = i64::MAX;
        for key in candidates {
            let known_full_until = self.snapshot(&key.id).full_until;
            if known_full_until > now_ms {
                earliest_free = earliest_free.min(known_full_until);
                continue;
            }
            // A single request may never be bigger than the whole tpm window, or the key could
            // never serve it; the reconcile corrects the count with the real usage afterwards.
            let tokens = key.limits.tpm.map_or(estimate, |tpm| estimate.min(tpm));
            match counters.reserve(&key.id, &key.limits, now_ms, tokens).await? {
                Reservation::Granted(grant) => {
                    self.with_state(&key.id, |s| s.uses += 1);
                    return Ok(Pick::Reserved { key: key.clone(), grant });
                }
                Reservation::Refused { until_ms, .. } => {
                    self.with_state(&key.id, |s| s.full_until = until_ms);
                    earliest_free = earliest_free.min(until_ms);
                }
            }
        }
        Ok(Pick::AllFull { until_ms: earliest_free })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{KeyLimits, KeyStatus};

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
