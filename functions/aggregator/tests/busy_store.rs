//! The aggregator over a store that is busy for a while (throttled, unavailable): the write is
//! tried again a few times before the message goes back to the queue, and a message that comes
//! back still counts once.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};

use maestro_aggregator::{Message, Outcome, process_batch, process_batch_outcomes, process_message};
use maestro_shared::logs::LogEvent;
use maestro_shared::stats::{CallerKeyRow, CallerRow, Counters, StatsQuery, StatsRow};
use maestro_shared::store::embedded::EmbeddedStore;
use maestro_shared::store::{LogQuery, StatsStore, StoreError};

/// The embedded store behind a switch: the next `busy` writes fail as unavailable (or, with
/// `broken`, as a plain backend failure) without writing; every write call is counted.
struct BusyStore {
    inner: EmbeddedStore,
    busy: AtomicU32,
    broken: bool,
    writes: AtomicU32,
}

impl BusyStore {
    fn new(busy: u32) -> Self {
        Self {
            inner: EmbeddedStore::open_in_memory().unwrap(),
            busy: AtomicU32::new(busy),
            broken: false,
            writes: AtomicU32::new(0),
        }
    }

    fn refuse(&self) -> Option<StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let was_busy = self.busy.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        match (was_busy, self.broken) {
            (false, _) => None,
            (true, false) => Some(StoreError::Unavailable("dynamodb: ThrottlingException".into())),
            (true, true) => Some(StoreError::backend("dynamodb: ValidationException")),
        }
    }

    fn writes(&self) -> u32 {
        self.writes.load(Ordering::SeqCst)
    }

    async fn day_total(&self) -> Counters {
        let q = StatsQuery { from_date: "2026-11-26".into(), to_date: "2026-11-26".into(), ..Default::default() };
        maestro_shared::stats::total(&self.inner.stats_rows(&q).await.unwrap())
    }
}

/// The boxed future the store traits' methods return (written out: this crate does without the
/// `async_trait` macro).
type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

impl StatsStore for BusyStore {
    fn record_event<'s, 'e, 'a>(&'s self, event: &'e LogEvent) -> Boxed<'a, bool>
    where
        's: 'a,
        'e: 'a,
        Self: 'a,
    {
        Box::pin(async move {
            match self.refuse() {
                Some(e) => Err(e),
                None => self.inner.record_event(event).await,
            }
        })
    }
    fn record_events<'s, 'e, 'a>(&'s self, events: &'e [LogEvent]) -> Boxed<'a, Vec<bool>>
    where
        's: 'a,
        'e: 'a,
        Self: 'a,
    {
        Box::pin(async move {
            match self.refuse() {
                Some(e) => Err(e),
                None => self.inner.record_events(events).await,
            }
        })
    }
    fn stats_rows<'s, 'q, 'a>(&'s self, query: &'q StatsQuery) -> Boxed<'a, Vec<StatsRow>>
    where
        's: 'a,
        'q: 'a,
        Self: 'a,
    {
        Box::pin(self.inner.stats_rows(query))
    }
    fn logs<'s, 'q, 'a>(&'s self, query: &'q LogQuery) -> Boxed<'a, Vec<LogEvent>>
    where
        's: 'a,
        'q: 'a,
        Self: 'a,
    {
        Box::pin(self.inner.logs(query))
    }
    fn minute_rows<'s, 'a>(&'s self, from_ms: i64, to_ms: i64) -> Boxed<'a, Vec<StatsRow>>
    where
        's: 'a,
        Self: 'a,
    {
        Box::pin(self.inner.minute_rows(from_ms, to_ms))
    }
    fn caller_rows<'s, 'f, 't, 'u, 'a>(
        &'s self,
        from_date: &'f str,
        to_date: &'t str,
        user_id: Option<&'u str>,
    ) -> Boxed<'a, Vec<CallerRow>>
    where
        's: 'a,
        'f: 'a,
        't: 'a,
        'u: 'a,
        Self: 'a,
    {
        Box::pin(self.inner.caller_rows(from_date, to_date, user_id))
    }
    fn caller_key_rows<'s, 'f, 't, 'a>(&'s self, from_date: &'f str, to_date: &'t str) -> Boxed<'a, Vec<CallerKeyRow>>
    where
        's: 'a,
        'f: 'a,
        't: 'a,
        Self: 'a,
    {
        Box::pin(self.inner.caller_key_rows(from_date, to_date))
    }
}

fn event(request_id: &str) -> LogEvent {
    LogEvent {
        ts_ms: 1_795_651_200_000, // 2026-11-26T00:00:00Z
        user_id: Some("u1".into()),
        model: "gpt-4o".into(),
        key_id: Some("openai-k".into()),
        prompt_tokens: 19,
        completion_tokens: 10,
        cached_tokens: 0,
        cost_micros: 148,
        ..LogEvent::sample(request_id, 0)
    }
}

fn message(id: &str, request_id: &str) -> Message {
    Message { id: id.into(), body: serde_json::to_string(&event(request_id)).unwrap() }
}

#[tokio::test]
async fn a_message_is_recorded_once_the_store_stops_being_busy_within_the_attempts() {
    let store = BusyStore::new(2);
    assert_eq!(process_message(&store, &message("m1", "req_a")).await, Outcome::Recorded);
    assert_eq!(store.writes(), 3, "two busy answers, then the write");
    assert_eq!(store.day_total().await.requests, 1);
}

#[tokio::test]
async fn a_store_busy_past_the_attempts_gives_the_message_back_and_its_redelivery_counts_once() {
    let store = BusyStore::new(3);
    let m = message("m1", "req_a");
    assert!(matches!(process_message(&store, &m).await, Outcome::Failed(e) if e.contains("unavailable")));
    assert_eq!(store.writes(), 3, "three attempts, then back to the queue");
    assert_eq!(store.day_total().await.requests, 0);
    // The queue delivers it again (twice, as SQS may): recorded once.
    assert_eq!(process_message(&store, &m).await, Outcome::Recorded);
    assert_eq!(process_message(&store, &m).await, Outcome::Duplicate);
    assert_eq!(store.day_total().await.requests, 1);
}

#[tokio::test]
async fn a_busy_batch_write_is_tried_again_as_a_batch() {
    let store = BusyStore::new(1);
    let batch = vec![message("m1", "req_a"), message("m2", "req_b"), message("m3", "req_c")];
    let outcomes = process_batch_outcomes(&store, &batch).await;
    assert_eq!(outcomes, [Outcome::Recorded, Outcome::Recorded, Outcome::Recorded]);
    assert_eq!(store.writes(), 2, "one busy batch write, then the batch: no message-by-message fallback");
    assert!(process_batch(&store, &batch).await.is_empty(), "the redelivered batch is no failure");
    let total = store.day_total().await;
    assert_eq!((total.requests, total.cost_micros), (3, 444));
}

#[tokio::test]
async fn a_failure_that_is_not_busy_is_not_tried_again() {
    let store = BusyStore { broken: true, ..BusyStore::new(1) };
    assert!(matches!(process_message(&store, &message("m1", "req_a")).await, Outcome::Failed(_)));
    assert_eq!(store.writes(), 1);
}
