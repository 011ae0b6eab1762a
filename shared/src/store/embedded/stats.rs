//! Call logs (`api_logs`) and daily stats (`usage_stats`), written together exactly once per
//! request id: the SQLite twin of the aggregator's `TransactWriteItems` (docs/ARCHITECTURE.md §6).

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

use async_trait::async_trait;
use rusqlite::types::ToSql;
use rusqlite::{Connection, Row, TransactionBehavior, params};

use super::{Db, EmbeddedStore, backend, json_column, lock_db, parsed, to_json};
use crate::logs::{CallStatus, LogEvent};
use crate::stats::{self, CallerKeyRow, CallerRow, Counters, LATENCY_BUCKETS_MS, RowKey, StatsQuery, StatsRow};
use crate::store::{LogCount, LogQuery, StatsStore, StoreError};
use crate::time;

/// `logs()` returns this many events when the query names no limit…
const DEFAULT_LOG_LIMIT: usize = 100;
/// …and never more than this many.
const MAX_LOG_LIMIT: usize = 1_000;

/// The columns of `api_logs`, in the order the insert binds and [`log_from_row`] reads them.
macro_rules! log_columns {
    () => {
        "request_id, v, ts_ms, hour, user_id, provider, model, key_id, route, request_type, stream, status, \
         http_status, error_code, error_message, prompt_tokens, completion_tokens, cached_tokens, cost_micros, \
         latency_ms, ttfb_ms, attempts, cache_write_tokens, key_attempts, route_rule, cache, saved_micros, \
         caller_key_id, attempt_log"
    };
}

/// `ON CONFLICT (request_id) DO NOTHING` rather than `INSERT OR IGNORE`: only a repeated request
/// id is skipped; any other constraint failure is still an error.
const INSERT_LOG: &str = concat!(
    "INSERT INTO api_logs (",
    log_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, \
     ?23, ?24, ?25, ?26, ?27, ?28, ?29) ON CONFLICT (request_id) DO NOTHING"
);

/// The filters of a log query. Optional filters are `?n IS NULL OR …`, so one cached statement
/// serves every query; partial matches compare lower-cased text (`?12`, `?13` come lower-cased).
macro_rules! log_filters {
    () => {
        " FROM api_logs WHERE (?1 IS NULL OR ts_ms >= ?1) AND (?2 IS NULL OR ts_ms < ?2) \
         AND (?3 IS NULL OR provider = ?3) AND (?4 IS NULL OR user_id = ?4) AND (?5 IS NULL OR request_id = ?5) \
         AND (?7 IS NULL OR model = ?7) AND (?8 IS NULL OR status = ?8) \
         AND (?9 IS NULL OR ts_ms < ?9 OR (ts_ms = ?9 AND request_id < ?10)) AND (?11 IS NULL OR route = ?11) \
         AND (?12 IS NULL OR instr(lower(model), ?12) > 0) AND (?13 IS NULL OR instr(lower(user_id), ?13) > 0)"
    };
}

const SELECT_LOGS: &str =
    concat!("SELECT ", log_columns!(), log_filters!(), " ORDER BY ts_ms DESC, request_id DESC LIMIT ?6");

/// The same filters, counted up to a cap (`?6`): SQLite stops reading at the cap.
const COUNT_LOGS: &str = concat!("SELECT COUNT(*) FROM (SELECT 1", log_filters!(), " LIMIT ?6)");

/// A recorded call marks its key as used (and failed) at the call's start, never moving back.
const MARK_KEY_USED: &str = "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, ?2), ?2), \
     last_error_at = CASE WHEN ?3 THEN MAX(COALESCE(last_error_at, ?2), ?2) ELSE last_error_at END WHERE id = ?1";

/// The counter columns of `usage_stats` in [`Counters`] order, the histogram's `l0`… after
/// `latency_ms_sum`; the order [`counter_values`] binds and [`counters_from_row`] reads.
fn counter_columns() -> Vec<String> {
    let mut columns: Vec<String> = [
        "requests",
        "successes",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cost_micros",
        "latency_ms_sum",
    ]
    .map(String::from)
    .to_vec();
    columns.extend((0..LATENCY_BUCKETS_MS.len()).map(|i| format!("l{i}")));
    columns
        .extend(["cache_write_tokens", "attempts", "attempt_errors", "cache_hits", "saved_micros"].map(String::from));
    columns
}

/// How many values [`counter_columns`] names.
const COUNTER_COLUMNS: usize = 8 + LATENCY_BUCKETS_MS.len() + 5;

/// The stats row key: `route` is `''` for calls that named no route (route names are never empty).
const KEY_COLUMNS: &str = "date, provider, model, key_id, route";

/// `INSERT … ON CONFLICT DO UPDATE` adding [`counter_columns`] to a row of `table` keyed by
/// `key_columns`, creating it on its first call: the key values bind first, then the counters.
fn add_counters_sql(table: &str, key_columns: &str) -> String {
    let columns = counter_columns();
    let keys = key_columns.split(',').count();
    let placeholders: Vec<String> = (1..=keys + columns.len()).map(|i| format!("?{i}")).collect();
    let sums: Vec<String> = columns.iter().map(|c| format!("{c} = {c} + excluded.{c}")).collect();
    format!(
        "INSERT INTO {table} ({key_columns}, {}) VALUES ({}) ON CONFLICT ({key_columns}) DO UPDATE SET {}",
        columns.join(", "),
        placeholders.join(", "),
        sums.join(", ")
    )
}

/// Adds a daily row's counters. Built once from the bucket count.
static ADD_STATS: LazyLock<String> = LazyLock::new(|| add_counters_sql("usage_stats", KEY_COLUMNS));

const MINUTE_KEY_COLUMNS: &str = "minute, provider, model, key_id";
static ADD_MINUTE_STATS: LazyLock<String> = LazyLock::new(|| add_counters_sql("minute_stats", MINUTE_KEY_COLUMNS));

const CALLER_KEY_COLUMNS: &str = "date, user_id";
static ADD_CALLER_STATS: LazyLock<String> = LazyLock::new(|| add_counters_sql("caller_stats", CALLER_KEY_COLUMNS));

/// Minute rows by start: `minute` is text in time order, so a range is a key-prefix scan.
static SELECT_MINUTE_STATS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {MINUTE_KEY_COLUMNS}, {} FROM minute_stats WHERE minute >= ?1 AND minute <= ?2 \
         ORDER BY {MINUTE_KEY_COLUMNS}",
        counter_columns().join(", ")
    )
});

const CALLER_KEY_STATS_COLUMNS: &str = "date, caller_key_id";
static ADD_CALLER_KEY_STATS: LazyLock<String> =
    LazyLock::new(|| add_counters_sql("caller_key_stats", CALLER_KEY_STATS_COLUMNS));

static SELECT_CALLER_KEY_STATS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {CALLER_KEY_STATS_COLUMNS}, {} FROM caller_key_stats WHERE date >= ?1 AND date <= ?2 \
         ORDER BY {CALLER_KEY_STATS_COLUMNS}",
        counter_columns().join(", ")
    )
});

static SELECT_CALLER_STATS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {CALLER_KEY_COLUMNS}, {} FROM caller_stats WHERE date >= ?1 AND date <= ?2 \
         AND (?3 IS NULL OR user_id = ?3) ORDER BY {CALLER_KEY_COLUMNS}",
        counter_columns().join(", ")
    )
});

static SELECT_STATS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {KEY_COLUMNS}, {} FROM usage_stats WHERE date >= ?1 AND date <= ?2 \
         AND (?3 IS NULL OR provider = ?3) AND (?4 IS NULL OR model = ?4) AND (?5 IS NULL OR key_id = ?5) \
         AND (?6 IS NULL OR route = ?6) ORDER BY {KEY_COLUMNS}",
        counter_columns().join(", ")
    )
});

fn status_text(status: CallStatus) -> &'static str {
    match status {
        CallStatus::Success => "success",
        CallStatus::Error => "error",
    }
}

fn parse_status(text: &str) -> Option<CallStatus> {
    match text {
        "success" => Some(CallStatus::Success),
        "error" => Some(CallStatus::Error),
        _ => None,
    }
}

/// Reads a row of [`SELECT_LOGS`]; column 3 (`hour`) is derived from `ts_ms` and skipped.
fn log_from_row(row: &Row<'_>) -> rusqlite::Result<LogEvent> {
    Ok(LogEvent {
        request_id: row.get(0)?,
        v: row.get(1)?,
        ts_ms: row.get(2)?,
        user_id: row.get(4)?,
        provider: row.get(5)?,
        model: row.get(6)?,
        key_id: row.get(7)?,
        route: row.get(8)?,
        route_rule: row.get(24)?,
        request_type: row.get(9)?,
        stream: row.get(10)?,
        status: parsed(row, 11, "api_logs.status", parse_status)?,
        http_status: row.get(12)?,
        error_code: row.get(13)?,
        error_message: row.get(14)?,
        prompt_tokens: row.get(15)?,
        completion_tokens: row.get(16)?,
        cached_tokens: row.get(17)?,
        cost_micros: row.get(18)?,
        latency_ms: row.get(19)?,
        ttfb_ms: row.get(20)?,
        attempts: row.get(21)?,
        cache_write_tokens: row.get(22)?,
        key_attempts: match row.get::<_, Option<String>>(23)? {
            Some(_) => json_column(row, 23, "api_logs.key_attempts")?,
            None => Vec::new(),
        },
        cache: row.get(25)?,
        saved_micros: row.get(26)?,
        caller_key_id: row.get(27)?,
        attempt_log: match row.get::<_, Option<String>>(28)? {
            Some(_) => json_column(row, 28, "api_logs.attempt_log")?,
            None => Vec::new(),
        },
    })
}

/// A [`Counters`] as the values of [`counter_columns`].
fn counter_values(c: &Counters) -> [u64; COUNTER_COLUMNS] {
    let mut values = [0; COUNTER_COLUMNS];
    values[..8].copy_from_slice(&[
        c.requests,
        c.successes,
        c.errors,
        c.prompt_tokens,
        c.completion_tokens,
        c.cached_tokens,
        c.cost_micros,
        c.latency_ms_sum,
    ]);
    values[8..8 + LATENCY_BUCKETS_MS.len()].copy_from_slice(&c.latency_hist);
    values[8 + LATENCY_BUCKETS_MS.len()..].copy_from_slice(&[
        c.cache_write_tokens,
        c.attempts,
        c.attempt_errors,
        c.cache_hits,
        c.saved_micros,
    ]);
    values
}

/// Reads the [`counter_columns`] of a row, starting at column `c`.
fn counters_from_row(row: &Row<'_>, c: usize) -> rusqlite::Result<Counters> {
    let mut latency_hist = [0; LATENCY_BUCKETS_MS.len()];
    for (i, bucket) in latency_hist.iter_mut().enumerate() {
        *bucket = row.get(c + 8 + i)?;
    }
    Ok(Counters {
        requests: row.get(c)?,
        successes: row.get(c + 1)?,
        errors: row.get(c + 2)?,
        prompt_tokens: row.get(c + 3)?,
        completion_tokens: row.get(c + 4)?,
        cached_tokens: row.get(c + 5)?,
        cost_micros: row.get(c + 6)?,
        latency_ms_sum: row.get(c + 7)?,
        latency_hist,
        cache_write_tokens: row.get(c + 8 + LATENCY_BUCKETS_MS.len())?,
        attempts: row.get(c + 9 + LATENCY_BUCKETS_MS.len())?,
        attempt_errors: row.get(c + 10 + LATENCY_BUCKETS_MS.len())?,
        cache_hits: row.get(c + 11 + LATENCY_BUCKETS_MS.len())?,
        saved_micros: row.get(c + 12 + LATENCY_BUCKETS_MS.len())?,
    })
}

/// Reads a row of [`SELECT_STATS`]: the five key columns, then [`counter_columns`].
fn stats_row_from_row(row: &Row<'_>) -> rusqlite::Result<StatsRow> {
    let route: String = row.get(4)?;
    Ok(StatsRow {
        date: row.get(0)?,
        provider: row.get(1)?,
        model: row.get(2)?,
        key_id: row.get(3)?,
        route: (!route.is_empty()).then_some(route),
        counters: counters_from_row(row, 5)?,
    })
}

/// A list as its JSON column: `NULL` when empty.
fn json_or_null<T: serde::Serialize>(list: &[T], column: &'static str) -> rusqlite::Result<Option<String>> {
    if list.is_empty() {
        return Ok(None);
    }
    to_json(&list, column)
        .map(Some)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(e.to_string()))))
}

/// Records a batch in the caller's transaction: each log row is inserted, and only the events
/// whose row is new are added to their stats rows, so a crash cannot count an event twice or lose
/// it, and a redelivered event changes nothing. The stats and the keys' last-use times are summed
/// per row and written once per batch: a batch mostly holds calls of a few keys and models.
fn record_batch(tx: &rusqlite::Transaction<'_>, events: &[LogEvent]) -> rusqlite::Result<Vec<bool>> {
    let mut stats_rows: BTreeMap<RowKey, Counters> = BTreeMap::new();
    let mut minute_rows: BTreeMap<RowKey, Counters> = BTreeMap::new();
    let mut caller_rows: BTreeMap<(String, String), Counters> = BTreeMap::new();
    let mut caller_key_rows: BTreeMap<(String, String), Counters> = BTreeMap::new();
    // key id -> (latest call, latest failed call)
    let mut keys_used: BTreeMap<&str, (i64, Option<i64>)> = BTreeMap::new();
    let mut recorded = Vec::with_capacity(events.len());
    let mut insert_log = tx.prepare_cached(INSERT_LOG)?;
    for e in events {
        let key_attempts = json_or_null(&e.key_attempts, "api_logs.key_attempts")?;
        let attempt_log = json_or_null(&e.attempt_log, "api_logs.attempt_log")?;
        let inserted = insert_log.execute(params![
            e.request_id,
            e.v,
            e.ts_ms,
            time::log_hour(e.ts_ms),
            e.user_id,
            e.provider,
            e.model,
            e.key_id,
            e.route,
            e.request_type,
            e.stream,
            status_text(e.status),
            e.http_status,
            e.error_code,
            e.error_message,
            e.prompt_tokens,
            e.completion_tokens,
            e.cached_tokens,
            e.cost_micros,
            e.latency_ms,
            e.ttfb_ms,
            e.attempts,
            e.cache_write_tokens,
            key_attempts,
            e.route_rule,
            e.cache,
            e.saved_micros,
            e.caller_key_id,
            attempt_log,
        ])? == 1;
        recorded.push(inserted);
        if !inserted {
            continue;
        }
        for (row, counters) in stats::event_rows(e) {
            stats_rows.entry(row).or_default().add(&counters);
        }
        for (row, counters) in stats::event_minute_rows(e) {
            minute_rows.entry(row).or_default().add(&counters);
        }
        if let Some((row, counters)) = stats::event_caller_row(e) {
            caller_rows.entry(row).or_default().add(&counters);
        }
        if let Some((row, counters)) = stats::event_caller_key_row(e) {
            caller_key_rows.entry(row).or_default().add(&counters);
        }
        // Every key the call used, failed tries included, and the final key of a failed call.
        let failed_call = e.status == CallStatus::Error;
        let keys = e
            .key_attempts
            .iter()
            .map(|a| (a.key_id.as_str(), a.errors > 0))
            .chain(e.key_id.as_deref().map(|k| (k, failed_call)));
        for (key_id, failed) in keys {
            let used = keys_used.entry(key_id).or_insert((e.ts_ms, None));
            used.0 = used.0.max(e.ts_ms);
            if failed {
                used.1 = Some(used.1.map_or(e.ts_ms, |t| t.max(e.ts_ms)));
            }
        }
    }
    let mut add_stats = tx.prepare_cached(&ADD_STATS)?;
    for (key, counters) in &stats_rows {
        let counters = counter_values(counters);
        let route = key.route.as_deref().unwrap_or("");
        let mut values: Vec<&dyn ToSql> = vec![&key.date, &key.provider, &key.model, &key.key_id, &route];
        values.extend(counters.iter().map(|v| v as &dyn ToSql));
        add_stats.execute(values.as_slice())?;
    }
    let mut add_minute = tx.prepare_cached(&ADD_MINUTE_STATS)?;
    for (key, counters) in &minute_rows {
        let counters = counter_values(counters);
        let mut values: Vec<&dyn ToSql> = vec![&key.date, &key.provider, &key.model, &key.key_id];
        values.extend(counters.iter().map(|v| v as &dyn ToSql));
        add_minute.execute(values.as_slice())?;
    }
    for (sql, rows) in [(&*ADD_CALLER_STATS, &caller_rows), (&*ADD_CALLER_KEY_STATS, &caller_key_rows)] {
        let mut add = tx.prepare_cached(sql)?;
        for ((date, caller), counters) in rows {
            let counters = counter_values(counters);
            let mut values: Vec<&dyn ToSql> = vec![date, caller];
            values.extend(counters.iter().map(|v| v as &dyn ToSql));
            add.execute(values.as_slice())?;
        }
    }
    let mut mark_used = tx.prepare_cached(MARK_KEY_USED)?;
    for (key_id, (last_used, last_error)) in keys_used {
        mark_used.execute(params![key_id, last_used, false])?;
        if let Some(last_error) = last_error {
            mark_used.execute(params![key_id, last_error, true])?;
        }
    }
    Ok(recorded)
}

/// Rows one pruning statement deletes: small batches, so a prune never holds the write lock long.
const PRUNE_BATCH: usize = 5_000;

/// Drops call logs older than [`stats::LOG_RETENTION_DAYS`] and daily stats older than
/// [`stats::STATS_RETENTION_DAYS`], as DynamoDB's TTL does, so a long-running local gateway
/// does not grow forever. Returns the logs and stats rows deleted.
pub(super) fn prune(conn: &Connection, now_ms: i64) -> rusqlite::Result<(usize, usize)> {
    let day_ms = 86_400_000;
    let logs_before = now_ms - stats::LOG_RETENTION_DAYS * day_ms;
    let stats_before = time::stats_date(now_ms - stats::STATS_RETENTION_DAYS * day_ms);
    let mut deleted = (0, 0);
    loop {
        let n = conn
            .prepare_cached(
                "DELETE FROM api_logs WHERE rowid IN (SELECT rowid FROM api_logs WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)",
            )?
            .execute(params![logs_before, PRUNE_BATCH])?;
        deleted.0 += n;
        if n < PRUNE_BATCH {
            break;
        }
    }
    // Stats rows are keyed by date first: one day at a time (a day is a few hundred rows).
    let old_days: Vec<String> = conn
        .prepare_cached("SELECT DISTINCT date FROM usage_stats WHERE date < ?1")?
        .query_map(params![stats_before], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for day in old_days {
        deleted.1 += conn.prepare_cached("DELETE FROM usage_stats WHERE date = ?1")?.execute(params![day])?;
        deleted.1 += conn.prepare_cached("DELETE FROM caller_stats WHERE date = ?1")?.execute(params![day])?;
        deleted.1 += conn.prepare_cached("DELETE FROM caller_key_stats WHERE date = ?1")?.execute(params![day])?;
    }
    // Minute rows serve the last day at most; an hour of minutes per statement.
    loop {
        let n = conn
            .prepare_cached(
                "DELETE FROM minute_stats WHERE minute IN \
                 (SELECT DISTINCT minute FROM minute_stats WHERE minute < ?1 ORDER BY minute LIMIT 60)",
            )?
            .execute(params![time::stats_minute(now_ms - stats::MINUTE_RETENTION_DAYS * day_ms)])?;
        deleted.1 += n;
        if n == 0 {
            break;
        }
    }
    Ok(deleted)
}

/// The number of events a query returns: [`DEFAULT_LOG_LIMIT`] for 0, at most [`MAX_LOG_LIMIT`].
fn log_limit(requested: usize) -> usize {
    if requested == 0 { DEFAULT_LOG_LIMIT } else { requested.min(MAX_LOG_LIMIT) }
}

#[async_trait]
impl StatsStore for EmbeddedStore {
    async fn record_event(&self, event: &LogEvent) -> Result<bool, StoreError> {
        self.record_events(std::slice::from_ref(event)).await.map(|recorded| recorded.first().copied().unwrap_or(false))
    }

    /// One transaction for the whole batch: a commit (and its WAL append) per batch instead of
    /// per event is most of the aggregator's cost. It runs on a blocking thread, so the requests
    /// served beside the aggregator never wait behind a batch.
    async fn record_events(&self, events: &[LogEvent]) -> Result<Vec<bool>, StoreError> {
        let write = |db: &Mutex<Db>, events: &[LogEvent]| {
            let mut db = lock_db(db)?;
            let mut batch = || -> rusqlite::Result<Vec<bool>> {
                let tx = db.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let recorded = record_batch(&tx, events)?;
                tx.commit()?;
                Ok(recorded)
            };
            batch().map_err(backend("record log events"))
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return write(&self.db, events);
        }
        let (db, events) = (self.db.clone(), events.to_vec());
        tokio::task::spawn_blocking(move || write(&db, &events))
            .await
            .map_err(|e| StoreError::backend_caused("embedded store: the log writer stopped", e))?
    }

    async fn stats_rows(&self, query: &StatsQuery) -> Result<Vec<StatsRow>, StoreError> {
        let values = params![query.from_date, query.to_date, query.provider, query.model, query.key_id, query.route];
        self.with_db(|db| {
            db.conn
                .prepare_cached(&SELECT_STATS)
                .and_then(|mut stmt| stmt.query_map(values, stats_row_from_row)?.collect())
                .map_err(backend("read stats rows"))
        })
    }

    async fn minute_rows(&self, from_ms: i64, to_ms: i64) -> Result<Vec<StatsRow>, StoreError> {
        if to_ms <= from_ms {
            return Ok(Vec::new());
        }
        let values = params![time::stats_minute(from_ms), time::stats_minute(to_ms - 1)];
        self.with_db(|db| {
            db.conn
                .prepare_cached(&SELECT_MINUTE_STATS)
                .and_then(|mut stmt| {
                    stmt.query_map(values, |row| {
                        Ok(StatsRow {
                            date: row.get(0)?,
                            provider: row.get(1)?,
                            model: row.get(2)?,
                            key_id: row.get(3)?,
                            route: None,
                            counters: counters_from_row(row, 4)?,
                        })
                    })?
                    .collect()
                })
                .map_err(backend("read minute stats"))
        })
    }

    async fn caller_rows(
        &self,
        from_date: &str,
        to_date: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<CallerRow>, StoreError> {
        let values = params![from_date, to_date, user_id];
        self.with_db(|db| {
            db.conn
                .prepare_cached(&SELECT_CALLER_STATS)
                .and_then(|mut stmt| {
                    stmt.query_map(values, |row| {
                        Ok(CallerRow { date: row.get(0)?, user_id: row.get(1)?, counters: counters_from_row(row, 2)? })
                    })?
                    .collect()
                })
                .map_err(backend("read caller stats"))
        })
    }

    async fn caller_key_rows(&self, from_date: &str, to_date: &str) -> Result<Vec<CallerKeyRow>, StoreError> {
        let values = params![from_date, to_date];
        self.with_db(|db| {
            db.conn
                .prepare_cached(&SELECT_CALLER_KEY_STATS)
                .and_then(|mut stmt| {
                    stmt.query_map(values, |row| {
                        Ok(CallerKeyRow {
                            date: row.get(0)?,
                            caller_key_id: row.get(1)?,
                            counters: counters_from_row(row, 2)?,
                        })
                    })?
                    .collect()
                })
                .map_err(backend("read caller key stats"))
        })
    }

    async fn logs(&self, query: &LogQuery) -> Result<Vec<LogEvent>, StoreError> {
        let limit = log_limit(query.limit);
        let values = log_values(query, limit as i64);
        self.with_db(|db| {
            db.conn
                .prepare_cached(SELECT_LOGS)
                .and_then(|mut stmt| stmt.query_map(rusqlite::params_from_iter(values.iter()), log_from_row)?.collect())
                .map_err(backend("read call logs"))
        })
    }

    async fn count_logs(&self, query: &LogQuery, cap: u64) -> Result<LogCount, StoreError> {
        let unpaged = LogQuery { before: None, ..query.clone() };
        let values = log_values(&unpaged, i64::try_from(cap.saturating_add(1)).unwrap_or(i64::MAX));
        let found: i64 = self.with_db(|db| {
            db.conn
                .prepare_cached(COUNT_LOGS)
                .and_then(|mut stmt| stmt.query_row(rusqlite::params_from_iter(values.iter()), |r| r.get(0)))
                .map_err(backend("count call logs"))
        })?;
        let found = u64::try_from(found).unwrap_or(0);
        Ok(LogCount { count: found.min(cap), capped: found > cap })
    }
}

/// The values of [`SELECT_LOGS`] and [`COUNT_LOGS`], `?1` to `?13`, with `limit` as `?6`.
fn log_values(query: &LogQuery, limit: i64) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value;
    let text = |v: Option<&str>| v.map_or(Value::Null, |v| Value::Text(v.to_string()));
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    let (before_ts, before_id) = query.before.clone().unzip();
    vec![
        int(query.from_ms),
        int(query.to_ms),
        text(query.provider.as_deref()),
        text(query.user_id.as_deref()),
        text(query.request_id.as_deref()),
        Value::Integer(limit),
        text(query.model.as_deref()),
        text(query.status.map(status_text)),
        int(before_ts),
        text(before_id.as_deref()),
        text(query.route.as_deref()),
        text(query.model_contains.as_deref().map(str::to_lowercase).as_deref()),
        text(query.user_contains.as_deref().map(str::to_lowercase).as_deref()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(request_id: &str, ts_ms: i64) -> LogEvent {
        LogEvent {
            v: crate::logs::LOG_EVENT_VERSION,
            request_id: request_id.into(),
            ts_ms,
            user_id: Some("u".into()),
            caller_key_id: None,
            provider: "p".into(),
            model: "m".into(),
            key_id: None,
            route: None,
            route_rule: None,
            request_type: "chat".into(),
            stream: false,
            status: CallStatus::Success,
            http_status: 200,
            error_code: None,
            error_message: None,
            prompt_tokens: 1,
            completion_tokens: 1,
            cached_tokens: 0,
            cost_micros: 1,
            latency_ms: 1,
            ttfb_ms: None,
            attempts: 1,
            cache_write_tokens: 0,
            key_attempts: Vec::new(),
            cache: None,
            saved_micros: 0,
            attempt_log: Vec::new(),
        }
    }

    #[tokio::test]
    async fn pruning_keeps_90_days_of_logs_and_365_of_stats() {
        let store = EmbeddedStore::open_in_memory().expect("store");
        let now = time::now_ms();
        let day = 86_400_000;
        for (id, age_days) in [("fresh", 1), ("89d", 89), ("91d", 91), ("400d", 400)] {
            assert!(store.record_event(&event(id, now - age_days * day)).await.expect("record"));
        }
        let deleted = store.with_db(|db| prune(&db.conn, now).map_err(backend("prune"))).expect("prune");
        // Stats rows: the daily and caller rows of 400 days ago, the minute rows older than 2 days.
        assert_eq!(deleted, (2, 5), "two logs past 90 days, one stats day past 365");
        let kept: Vec<String> =
            store.logs(&LogQuery::default()).await.expect("logs").into_iter().map(|e| e.request_id).collect();
        assert_eq!(kept, ["fresh", "89d"]);
        let all_days = StatsQuery {
            from_date: "2000-01-01".into(),
            to_date: "2100-01-01".into(),
            provider: None,
            model: None,
            key_id: None,
            route: None,
        };
        assert_eq!(store.stats_rows(&all_days).await.expect("stats").len(), 3, "stats of 91 days ago stay");
    }

    /// The log table keeps only the indexes its query reads: if the query changes so that SQLite
    /// would use another index, this test says to add it back.
    #[test]
    fn the_log_query_walks_the_time_index_and_the_log_table_has_no_unread_index() {
        let mut conn = Connection::open_in_memory().expect("open");
        super::super::schema::migrate(&mut conn).expect("schema");
        let filters: [Option<&str>; 2] = [None, Some("openai")];
        for provider in filters {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {SELECT_LOGS}"))
                .expect("prepare")
                .query_map(
                    params![
                        None::<i64>,
                        None::<i64>,
                        provider,
                        None::<&str>,
                        None::<&str>,
                        50,
                        None::<&str>,
                        None::<&str>,
                        None::<i64>,
                        None::<&str>,
                        None::<&str>,
                        None::<&str>,
                        None::<&str>
                    ],
                    |r| r.get(3),
                )
                .and_then(Iterator::collect)
                .expect("plan");
            assert_eq!(plan, ["SCAN api_logs USING INDEX api_logs_by_ts"], "provider filter {provider:?}");
        }
        let indexes: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'api_logs' AND sql IS NOT NULL",
            )
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .and_then(Iterator::collect)
            .expect("indexes");
        assert_eq!(indexes, ["api_logs_by_ts"]);
    }
}
