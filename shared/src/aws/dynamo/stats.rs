//! Call logs (`LOG#<hour>#<shard>`, indexed per user and per provider) and daily stats
//! (`STAT#<date>`), written together exactly once per request id: the log item is its own guard
//! (a Put on the absence of its key, `<ts>#<request id>`), in one transaction per batch of events
//! with the stats `ADD`s summed over the batch.
//!
//! The shard (`00`..`15`) comes from the request id alone, so a redelivered event finds its log
//! again; it spreads an hour's log writes over 16 partitions (and a provider's `gsi2` entries
//! over 16 `PROVIDERLOG#<provider>#<shard>`), each taking 1/16 of them instead of one partition
//! taking every call of the system. Reads query an hour's (or a provider's) 16 partitions in
//! parallel, plus the unsharded one of tables written before, and merge them by sort key.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::NaiveDate;
use futures_util::future::try_join_all;
use tokio::task::JoinSet;

use super::{
    DynamoStore, Expr, Item, QuerySpec, Reader, boolean, build_failed, condition_failed, expires_after_days, key, n,
    put_opt, retry, s, unexpected,
};
use crate::aws::provision::{GSI_PROVIDER, GSI_PROVIDER_PK, GSI_PROVIDER_SK, GSI_USER, GSI_USER_PK, GSI_USER_SK};
use crate::logs::{CallStatus, LogEvent};
use crate::stats::{self, CallerKeyRow, CallerRow, Counters, LEGACY_LATENCY_BUCKETS_MS, RowKey, StatsQuery, StatsRow};
use crate::store::{LogQuery, StatsStore, StoreError};
use crate::time;

const LOG_TTL_DAYS: i64 = 90;
const STATS_TTL_DAYS: i64 = 365;
/// TransactWriteItems takes at most this many items.
const MAX_TRANSACTION_ITEMS: usize = 100;
/// How far a gateway call's logged start may lie from the time in its request id.
const REQUEST_ID_SLACK_MS: i64 = 5 * 60_000;
const LOG_HOURS_PK: &str = "LOGHOURS";
/// `logs()` returns this many events when the query names no limit, and never more than the max.
const DEFAULT_LOG_LIMIT: usize = 100;
const MAX_LOG_LIMIT: usize = 1_000;
/// Most logs one read of logs with a partial match (checked here, not by DynamoDB) may read: past
/// it the answer holds what was found, and a narrower time range finds older matches.
pub(crate) const MAX_PARTIAL_MATCH_READS: usize = 20_000;
/// Logs read per request when checking each one here.
const PARTIAL_MATCH_PAGE: usize = 500;
/// Hours of the `LOGHOURS` listing read per page while walking back through the logs.
const HOURS_PER_PAGE: usize = 24;
/// A stats query reads at most this many days (the last ones of its range): rows live 365 days.
const MAX_STATS_DAYS: i64 = 400;
/// Days of stats queried at once.
const PARALLEL_DAYS: usize = 16;
/// Hours a container remembers having listed before it starts over.
const LISTED_HOURS_KEPT: usize = 1_000;

/// The counters of a stats row, in [`Counters`] order; the histogram is `l0..l29`
/// ([`latency_attribute`]), and items written before it was refined also hold `h0..h11`.
const COUNTERS: [&str; 13] = [
    "requests",
    "successes",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_micros",
    "latency_ms_sum",
    "cache_write_tokens",
    "attempts",
    "attempt_errors",
    "cache_hits",
    "saved_micros",
];

/// Partitions an hour's call logs (and a provider's index entries) are spread over: one
/// partition takes about 1,000 write units a second, so each hour's logs go to 16 of them.
const LOG_SHARDS: u64 = 16;

/// The shard of a request id: FNV-1a 64 of its bytes, stable across processes and releases (the
/// log item is the event's exactly-once guard, so a redelivery must land on the same key). The
/// high half is used: FNV's low bits only see the low bits of each byte.
fn log_shard(request_id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in request_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 32) % LOG_SHARDS
}

fn log_pk(ts_ms: i64, request_id: &str) -> String {
    format!("LOG#{}#{:02}", time::log_hour(ts_ms), log_shard(request_id))
}

fn provider_log_pk(provider: &str, request_id: &str) -> String {
    format!("PROVIDERLOG#{provider}#{:02}", log_shard(request_id))
}

/// The partitions of an hour's logs in `shards`, and the hour's unsharded `LOG#<hour>`: tables
/// written before the logs were sharded keep their logs there.
fn hour_partitions(hour: &str, shards: &[u64]) -> Vec<String> {
    let mut partitions: Vec<String> = shards.iter().map(|shard| format!("LOG#{hour}#{shard:02}")).collect();
    partitions.push(format!("LOG#{hour}"));
    partitions
}

/// A provider's `gsi2` partitions, and its unsharded `PROVIDERLOG#<provider>` (logs written
/// before sharding).
fn provider_partitions(provider: &str) -> Vec<String> {
    let mut partitions: Vec<String> =
        (0..LOG_SHARDS).map(|shard| format!("PROVIDERLOG#{provider}#{shard:02}")).collect();
    partitions.push(format!("PROVIDERLOG#{provider}"));
    partitions
}

/// Where logs are queried: an index (`None`: the table) and its key attributes.
#[derive(Debug, Clone, Copy)]
struct LogKeys {
    index: Option<&'static str>,
    pk: &'static str,
    sk: &'static str,
}

const TABLE_KEYS: LogKeys = LogKeys { index: None, pk: "pk", sk: "sk" };
const USER_KEYS: LogKeys = LogKeys { index: Some(GSI_USER), pk: GSI_USER_PK, sk: GSI_USER_SK };
const PROVIDER_KEYS: LogKeys = LogKeys { index: Some(GSI_PROVIDER), pk: GSI_PROVIDER_PK, sk: GSI_PROVIDER_SK };

/// Logs read from several partitions, each newest first, as one list newest first: sorted by
/// `(ts, request id)` (the sort key's order), the `limit` newest kept. A log found twice (a
/// request recorded both before and after the sharding) counts once.
fn merge_newest_first(sources: Vec<Vec<LogEvent>>, limit: usize) -> Vec<LogEvent> {
    let mut events: Vec<LogEvent> = sources.into_iter().flatten().collect();
    events.sort_by(|a, b| (b.ts_ms, &b.request_id).cmp(&(a.ts_ms, &a.request_id)));
    events.dedup_by(|a, b| (a.ts_ms, &a.request_id) == (b.ts_ms, &b.request_id));
    events.truncate(limit);
    events
}

/// `<ts>#<request id>` with the timestamp zero-padded to 13 digits, so text order is time order
/// (until the year 2286).
fn log_sk(ts_ms: i64, request_id: &str) -> String {
    format!("{:013}#{request_id}", ts_ms.max(0))
}

/// The start (Unix ms) a gateway request id `req_<UUID v7, simple>` carries.
fn request_id_ms(request_id: &str) -> Option<i64> {
    let hex = request_id.strip_prefix("req_")?;
    let uuid = uuid::Uuid::parse_str(hex).ok()?;
    if uuid.get_version_num() != 7 {
        return None;
    }
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    i64::try_from(secs).ok().map(|s| s * 1000 + i64::from(nanos / 1_000_000))
}

/// Chunks of `distinct` (indices into `events`) whose logs and stats rows fit one transaction.
fn chunks(events: &[LogEvent], distinct: &[usize]) -> Vec<Vec<usize>> {
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut items = 0;
    for &i in distinct {
        // Its log, at most one daily and one minute row per key it tried, its caller row and its
        // caller key's.
        let needed = 1 + 2 * (1 + events[i].key_attempts.len()) + 1 + usize::from(events[i].caller_key_id.is_some());
        if chunks.is_empty() || items + needed > MAX_TRANSACTION_ITEMS {
            chunks.push(Vec::new());
            items = 0;
        }
        items += needed;
        if let Some(last) = chunks.last_mut() {
            last.push(i);
        }
    }
    chunks
}

/// Minute rows of one hour share a partition (`MSTAT#<yyyy-mm-ddTHH>`), sorted by minute: the
/// live panel's 15 minutes are one or two queries. Kept two days (TTL).
fn minute_pk(minute: &str) -> String {
    format!("MSTAT#{}", minute.get(..13).unwrap_or(minute))
}

fn minute_sk(minute: &str, provider: &str, model: &str, key_id: &str) -> String {
    format!("{}#P#{provider}#M#{model}#K#{key_id}", minute.get(14..).unwrap_or(""))
}

/// Partitions a day's caller rows are spread over (callers are many; each batch writes one row
/// per caller in it).
const CALLER_SHARDS: u64 = 16;

fn caller_pk(date: &str, user_id: &str) -> String {
    format!("CSTAT#{date}#{:02}", log_shard(user_id) % CALLER_SHARDS)
}

/// Which items of a caller partition a read wants.
enum SortKey {
    /// The one item with this sort key.
    Is(String),
    /// The items whose sort key starts so (`U#` users, `K#` caller keys).
    Prefix(&'static str),
}

/// Every shard of a day's caller partitions, for the items whose sort key starts with `prefix`.
fn caller_shards<'a>(date: &'a str, prefix: &'static str) -> impl Iterator<Item = (String, SortKey)> + 'a {
    (0..CALLER_SHARDS).map(move |shard| (format!("CSTAT#{date}#{shard:02}"), SortKey::Prefix(prefix)))
}

fn stats_pk(date: &str) -> String {
    format!("STAT#{date}")
}

/// A stats row's sort key: a call without a route keeps the key rows had before routes were
/// counted (`…#K#<key>`), so those rows go on adding up; a routed call's row adds `#R#<route>`.
fn stats_sk(provider: &str, model: &str, key_id: &str, route: Option<&str>) -> String {
    match route {
        None => format!("P#{provider}#M#{model}#K#{key_id}"),
        Some(route) => format!("P#{provider}#M#{model}#K#{key_id}#R#{route}"),
    }
}

/// The attribute of a latency bucket. New names (`l`), not the legacy buckets' `h0..h11`: a bucket
/// index means another bound now, and an item written before holds both until its TTL.
fn latency_attribute(bucket: usize) -> String {
    format!("l{bucket}")
}

/// The legacy histogram of an item written before the buckets were refined (zeros otherwise).
fn legacy_histogram(r: &Reader<'_>) -> Result<[u64; LEGACY_LATENCY_BUCKETS_MS.len()], StoreError> {
    let mut legacy = [0; LEGACY_LATENCY_BUCKETS_MS.len()];
    for (i, bucket) in legacy.iter_mut().enumerate() {
        *bucket = r.count(&format!("h{i}"))?;
    }
    Ok(legacy)
}

fn status_text(status: CallStatus) -> &'static str {
    match status {
        CallStatus::Success => "success",
        CallStatus::Error => "error",
    }
}

fn log_item(e: &LogEvent) -> Item {
    let sort = log_sk(e.ts_ms, &e.request_id);
    let mut item = key(log_pk(e.ts_ms, &e.request_id), sort.clone());
    item.extend([
        ("entity".to_string(), s("log")),
        ("v".to_string(), n(e.v)),
        ("request_id".to_string(), s(&e.request_id)),
        ("ts_ms".to_string(), n(e.ts_ms)),
        ("provider".to_string(), s(&e.provider)),
        ("model".to_string(), s(&e.model)),
        ("request_type".to_string(), s(&e.request_type)),
        ("stream".to_string(), boolean(e.stream)),
        ("status".to_string(), s(status_text(e.status))),
        ("http_status".to_string(), n(e.http_status)),
        ("prompt_tokens".to_string(), n(e.prompt_tokens)),
        ("completion_tokens".to_string(), n(e.completion_tokens)),
        ("cached_tokens".to_string(), n(e.cached_tokens)),
        ("cost_micros".to_string(), n(e.cost_micros)),
        ("latency_ms".to_string(), n(e.latency_ms)),
        ("attempts".to_string(), n(e.attempts)),
        ("cache_write_tokens".to_string(), n(e.cache_write_tokens)),
        ("expires_at".to_string(), n(expires_after_days(e.ts_ms, LOG_TTL_DAYS))),
        (GSI_PROVIDER_PK.to_string(), s(provider_log_pk(&e.provider, &e.request_id))),
        (GSI_PROVIDER_SK.to_string(), s(&sort)),
    ]);
    put_opt(&mut item, "user_id", e.user_id.as_deref().map(s));
    put_opt(&mut item, "key_id", e.key_id.as_deref().map(s));
    put_opt(&mut item, "route", e.route.as_deref().map(s));
    put_opt(&mut item, "route_rule", e.route_rule.as_deref().map(s));
    put_opt(&mut item, "error_code", e.error_code.as_deref().map(s));
    put_opt(&mut item, "error_message", e.error_message.as_deref().map(s));
    put_opt(&mut item, "ttfb_ms", e.ttfb_ms.map(n));
    put_opt(&mut item, "cache", e.cache.as_deref().map(s));
    put_opt(&mut item, "caller_key_id", e.caller_key_id.as_deref().map(s));
    if e.saved_micros > 0 {
        item.insert("saved_micros".to_string(), n(e.saved_micros));
    }
    if !e.key_attempts.is_empty() {
        // Stored as JSON text: read back as a whole, never queried.
        put_opt(&mut item, "key_attempts", serde_json::to_string(&e.key_attempts).ok().map(s));
    }
    if !e.attempt_log.is_empty() {
        // The same, bounded by `LogEvent::bounded` (`MAX_ATTEMPT_LOG_BYTES`).
        put_opt(&mut item, "attempt_log", serde_json::to_string(&e.attempt_log).ok().map(s));
    }
    if let Some(user) = &e.user_id {
        item.insert(GSI_USER_PK.to_string(), s(format!("USER#{user}")));
        item.insert(GSI_USER_SK.to_string(), s(sort));
    }
    item
}

fn log_from(item: &Item) -> Result<LogEvent, StoreError> {
    let r = Reader::new(item, "call log");
    let status = r.s("status")?;
    Ok(LogEvent {
        v: r.n("v")?,
        request_id: r.s("request_id")?,
        ts_ms: r.n("ts_ms")?,
        user_id: r.opt_s("user_id")?,
        caller_key_id: r.opt_s("caller_key_id")?,
        provider: r.s("provider")?,
        model: r.s("model")?,
        key_id: r.opt_s("key_id")?,
        route: r.opt_s("route")?,
        route_rule: r.opt_s("route_rule")?,
        request_type: r.s("request_type")?,
        stream: r.bool("stream")?,
        status: match status.as_str() {
            "success" => CallStatus::Success,
            "error" => CallStatus::Error,
            other => return Err(StoreError::backend(format!("dynamodb: call log item: unknown status `{other}`"))),
        },
        http_status: r.n("http_status")?,
        error_code: r.opt_s("error_code")?,
        error_message: r.opt_s("error_message")?,
        prompt_tokens: r.n("prompt_tokens")?,
        completion_tokens: r.n("completion_tokens")?,
        cached_tokens: r.n("cached_tokens")?,
        cost_micros: r.n("cost_micros")?,
        latency_ms: r.n("latency_ms")?,
        ttfb_ms: r.opt_n("ttfb_ms")?,
        attempts: r.n("attempts")?,
        cache_write_tokens: r.count("cache_write_tokens")?,
        key_attempts: match r.opt_s("key_attempts")? {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| StoreError::backend_caused("dynamodb: call log item: bad key_attempts", e))?,
            None => Vec::new(),
        },
        cache: r.opt_s("cache")?,
        saved_micros: r.count("saved_micros")?,
        attempt_log: match r.opt_s("attempt_log")? {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| StoreError::backend_caused("dynamodb: call log item: bad attempt_log", e))?,
            None => Vec::new(),
        },
    })
}

fn stats_from(item: &Item) -> Result<StatsRow, StoreError> {
    let r = Reader::new(item, "stats");
    Ok(StatsRow {
        date: r.s("date")?,
        provider: r.s("provider")?,
        model: r.s("model")?,
        key_id: r.s("key_id")?,
        route: r.opt_s("route")?,
        counters: counters_from(&r)?,
    })
}

fn minute_row_from(item: &Item) -> Result<StatsRow, StoreError> {
    let r = Reader::new(item, "minute stats");
    Ok(StatsRow {
        date: r.s("minute")?,
        provider: r.s("provider")?,
        model: r.s("model")?,
        key_id: r.s("key_id")?,
        route: None,
        counters: counters_from(&r)?,
    })
}

fn caller_row_from(item: &Item) -> Result<CallerRow, StoreError> {
    let r = Reader::new(item, "caller stats");
    Ok(CallerRow { date: r.s("date")?, user_id: r.s("user_id")?, counters: counters_from(&r)? })
}

/// The counters of a stats item (daily, minute or caller).
fn counters_from(r: &Reader<'_>) -> Result<Counters, StoreError> {
    // Read-time migration: the legacy buckets' counts join the buckets with the same bounds.
    let mut latency_hist = stats::histogram_from_legacy(&legacy_histogram(r)?);
    for (i, bucket) in latency_hist.iter_mut().enumerate() {
        *bucket += r.count(&latency_attribute(i))?;
    }
    let [
        requests,
        successes,
        errors,
        prompt_tokens,
        completion_tokens,
        cached_tokens,
        cost_micros,
        latency_ms_sum,
        cache_write_tokens,
        attempts,
        attempt_errors,
        cache_hits,
        saved_micros,
    ] = COUNTERS;
    Ok(Counters {
        requests: r.count(requests)?,
        successes: r.count(successes)?,
        errors: r.count(errors)?,
        prompt_tokens: r.count(prompt_tokens)?,
        completion_tokens: r.count(completion_tokens)?,
        cached_tokens: r.count(cached_tokens)?,
        cost_micros: r.count(cost_micros)?,
        latency_ms_sum: r.count(latency_ms_sum)?,
        latency_hist,
        cache_write_tokens: r.count(cache_write_tokens)?,
        attempts: r.count(attempts)?,
        attempt_errors: r.count(attempt_errors)?,
        cache_hits: r.count(cache_hits)?,
        saved_micros: r.count(saved_micros)?,
    })
}

/// A [`Counters`] as `(attribute, value)`, histogram buckets that are zero left out.
fn counter_values(c: &Counters) -> Vec<(String, u64)> {
    let values = [
        c.requests,
        c.successes,
        c.errors,
        c.prompt_tokens,
        c.completion_tokens,
        c.cached_tokens,
        c.cost_micros,
        c.latency_ms_sum,
        c.cache_write_tokens,
        c.attempts,
        c.attempt_errors,
        c.cache_hits,
        c.saved_micros,
    ];
    let mut out: Vec<(String, u64)> = COUNTERS.iter().map(|c| c.to_string()).zip(values).collect();
    out.extend(c.latency_hist.iter().enumerate().filter(|(_, v)| **v > 0).map(|(i, v)| (latency_attribute(i), *v)));
    out
}

/// Whether a log matches every filter of a query (from inclusive, to exclusive, before the cursor).
fn matches(q: &LogQuery, e: &LogEvent) -> bool {
    q.matches(e)
}

/// The filters a Query cannot put in its key condition, as a FilterExpression (DynamoDB drops
/// what fails it after reading, and `QuerySpec::run` keeps paging until enough items pass).
/// `keyed`: what the key condition already fixes (`user`, `provider`).
fn log_filter(q: &LogQuery, expr: &mut Expr, keyed_user: bool, keyed_provider: bool) -> Option<String> {
    let mut parts = Vec::new();
    if let (Some(provider), false) = (&q.provider, keyed_provider) {
        parts.push(format!("{} = {}", expr.name("provider"), expr.value("f_provider", s(provider))));
    }
    if let (Some(user), false) = (&q.user_id, keyed_user) {
        parts.push(format!("{} = {}", expr.name("user_id"), expr.value("f_user", s(user))));
    }
    if let Some(id) = &q.request_id {
        parts.push(format!("{} = {}", expr.name("request_id"), expr.value("f_request", s(id))));
    }
    if let Some(model) = &q.model {
        parts.push(format!("{} = {}", expr.name("model"), expr.value("f_model", s(model))));
    }
    if let Some(status) = q.status {
        parts.push(format!("{} = {}", expr.name("status"), expr.value("f_status", s(status_text(status)))));
    }
    if let Some(route) = &q.route {
        parts.push(format!("{} = {}", expr.name("route"), expr.value("f_route", s(route))));
    }
    // The key condition's range includes the cursor's own log (BETWEEN is inclusive): leave it
    // out here, so it takes no place in a page's limit.
    if let Some((_, id)) = &q.before {
        parts.push(format!("{} <> {}", expr.name("request_id"), expr.value("f_cursor", s(id))));
    }
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

fn log_limit(requested: usize) -> usize {
    if requested == 0 { DEFAULT_LOG_LIMIT } else { requested.min(MAX_LOG_LIMIT) }
}

/// How many more logs one read of logs may read when it checks each one itself (partitions are
/// read concurrently, so it is shared).
struct ReadBudget(std::sync::atomic::AtomicUsize);

impl ReadBudget {
    fn new(items: usize) -> Self {
        Self(std::sync::atomic::AtomicUsize::new(items))
    }

    /// Up to `wanted` reads, or `None` when nothing is left.
    fn take(&self, wanted: usize) -> Option<usize> {
        use std::sync::atomic::Ordering;
        let taken = self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| Some(left - left.min(wanted)));
        let got = taken.unwrap_or(0).min(wanted);
        (got > 0).then_some(got)
    }

    /// Gives back what a page took but did not read (DynamoDB's `ScannedCount` says what it read).
    fn give_back(&self, unread: usize) {
        self.0.fetch_add(unread, std::sync::atomic::Ordering::SeqCst);
    }

    fn spent(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst) == 0
    }
}

/// The inclusive sort-key range `[from, to)` covers, or `None` when it is empty.
fn sort_range(q: &LogQuery) -> Option<(String, String)> {
    let low = format!("{:013}", q.from_ms.unwrap_or(0).max(0));
    let mut high = match q.to_ms {
        // `$` sorts right after `#`: every `<to - 1>#<id>` is below it, every `<to>#…` above.
        Some(to) if to <= 0 => return None,
        Some(to) => format!("{:013}$", to - 1),
        None => "~".to_string(),
    };
    // A cursor's own sort key is inclusive here (BETWEEN); `matches` drops that one log.
    if let Some((ts, id)) = &q.before {
        if *ts < 0 {
            return None;
        }
        high = high.min(log_sk(*ts, id));
    }
    (low <= high).then_some((low, high))
}

/// The days of a stats query, oldest first; at most [`MAX_STATS_DAYS`], the last ones.
fn days(q: &StatsQuery) -> Result<Vec<String>, StoreError> {
    let parse = |field: &str, value: &str| {
        NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
            StoreError::backend(format!("dynamodb: stats query: `{field}` is not a yyyy-mm-dd date: {value}"))
        })
    };
    let (from, to) = (parse("from_date", &q.from_date)?, parse("to_date", &q.to_date)?);
    let span = (to - from).num_days();
    if span < 0 {
        return Ok(Vec::new());
    }
    let first = if span >= MAX_STATS_DAYS {
        tracing::warn!(from = %q.from_date, to = %q.to_date, "stats query longer than {MAX_STATS_DAYS} days: reading its last {MAX_STATS_DAYS}");
        to - chrono::Duration::days(MAX_STATS_DAYS - 1)
    } else {
        from
    };
    Ok(first.iter_days().take_while(|d| *d <= to).map(|d| d.format("%Y-%m-%d").to_string()).collect())
}

/// The stats rows of one day that a query may want (`begins_with` on what it fixes).
async fn day_rows(
    client: aws_sdk_dynamodb::Client,
    table: String,
    date: String,
    q: StatsQuery,
) -> Result<Vec<StatsRow>, StoreError> {
    let mut expr = Expr::default();
    let condition = format!("{} = {}", expr.name("pk"), expr.value("pk", s(stats_pk(&date))));
    // Always a `P#` prefix: every stats row's sort key starts with it, and anything else a day's
    // partition may hold (such as `SUM#…` summaries written by older versions) stays unread.
    // With a route or not: the route comes after the key, and `matches` keeps the right rows.
    let prefix = match (&q.provider, &q.model, &q.key_id) {
        (Some(p), Some(m), Some(k)) => stats_sk(p, m, k, None),
        (Some(p), Some(m), None) => format!("P#{p}#M#{m}#K#"),
        (Some(p), None, _) => format!("P#{p}#M#"),
        (None, _, _) => "P#".to_string(),
    };
    let condition = format!("{condition} AND begins_with({}, {})", expr.name("sk"), expr.value("prefix", s(prefix)));
    let items = QuerySpec::new(condition, expr).run(&client, &table, "read stats rows", None).await?;
    let mut rows = Vec::new();
    for item in &items {
        let row = stats_from(item)?;
        if q.matches(&row) {
            rows.push(row);
        }
    }
    Ok(rows)
}

impl DynamoStore {
    /// The items of caller partitions (`CSTAT#…`), a few partitions at a time.
    async fn caller_items(&self, partitions: &[(String, SortKey)]) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        for chunk in partitions.chunks(PARALLEL_DAYS) {
            let reads = chunk.iter().map(|(pk, sk)| {
                let mut expr = Expr::default();
                let pk_is = format!("{} = {}", expr.name("pk"), expr.value("pk", s(pk)));
                let condition = match sk {
                    SortKey::Is(sk) => format!("{pk_is} AND {} = {}", expr.name("sk"), expr.value("sk", s(sk))),
                    SortKey::Prefix(prefix) => {
                        format!("{pk_is} AND begins_with({}, {})", expr.name("sk"), expr.value("sk", s(*prefix)))
                    }
                };
                let client = self.client.clone();
                let table = self.table.clone();
                async move { QuerySpec::new(condition, expr).run(&client, &table, "read caller stats", None).await }
            });
            for items in try_join_all(reads).await? {
                out.extend(items);
            }
        }
        Ok(out)
    }

    /// Lists the hour of a log in `LOGHOURS`, once per container and hour.
    async fn list_hour(&self, ts_ms: i64) -> Result<(), StoreError> {
        let hour = time::log_hour(ts_ms);
        if self.listed_hours.lock().is_ok_and(|listed| listed.contains(&hour)) {
            return Ok(());
        }
        let hour_end = (ts_ms.div_euclid(3_600_000) + 1) * 3_600_000;
        let mut item = key(LOG_HOURS_PK, hour.clone());
        item.insert("expires_at".to_string(), n(expires_after_days(hour_end, LOG_TTL_DAYS)));
        const WHAT: &str = "list a log hour";
        retry::retrying(WHAT, |_| {
            let request = self.client.put_item().table_name(&self.table).set_item(Some(item.clone()));
            async move { request.send().await.map_err(|e| retry::classify(WHAT, &e)) }
        })
        .await?;
        if let Ok(mut listed) = self.listed_hours.lock() {
            if listed.len() >= LISTED_HOURS_KEPT {
                listed.clear();
            }
            listed.insert(hour);
        }
        Ok(())
    }

    /// One transaction for `events` (distinct request ids): a Put of each call log, conditioned
    /// on its absence (the log item is the event's exactly-once guard: its key comes from the
    /// event's ts and request id alone), and one `ADD` per stats row with the batch's sums.
    fn batch_items(&self, events: &[&LogEvent]) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = Vec::with_capacity(events.len() + 1);
        let mut rows: BTreeMap<RowKey, (Counters, i64)> = BTreeMap::new();
        let mut minute_rows: BTreeMap<RowKey, (Counters, i64)> = BTreeMap::new();
        let mut caller_rows: BTreeMap<(String, String), (Counters, i64)> = BTreeMap::new();
        let mut caller_key_rows: BTreeMap<(String, String), (Counters, i64)> = BTreeMap::new();
        for e in events {
            let mut guard = Expr::default();
            let log = Put::builder()
                .table_name(&self.table)
                .set_item(Some(log_item(e)))
                .condition_expression(format!("attribute_not_exists({})", guard.name("pk")))
                .set_expression_attribute_names(guard.names())
                .build()
                .map_err(build_failed("record a log event"))?;
            items.push(TransactWriteItem::builder().put(log).build());
            // The call's own stats row, then (only when other keys were tried) theirs; the same
            // per minute; and its caller's row.
            for (row, counters) in stats::event_rows(e) {
                let (sum, ts) = rows.entry(row).or_insert_with(|| (Counters::default(), e.ts_ms));
                sum.add(&counters);
                *ts = (*ts).max(e.ts_ms);
            }
            for (row, counters) in stats::event_minute_rows(e) {
                let (sum, ts) = minute_rows.entry(row).or_insert_with(|| (Counters::default(), e.ts_ms));
                sum.add(&counters);
                *ts = (*ts).max(e.ts_ms);
            }
            let callers = [
                (stats::event_caller_row(e), &mut caller_rows),
                (stats::event_caller_key_row(e), &mut caller_key_rows),
            ];
            for (row, sums) in callers {
                if let Some((row, counters)) = row {
                    let (sum, ts) = sums.entry(row).or_insert_with(|| (Counters::default(), e.ts_ms));
                    sum.add(&counters);
                    *ts = (*ts).max(e.ts_ms);
                }
            }
        }
        for (row, (counters, ts_ms)) in rows {
            let named =
                [("date", &row.date), ("provider", &row.provider), ("model", &row.model), ("key_id", &row.key_id)];
            let named: Vec<(&str, &String)> =
                named.into_iter().chain(row.route.as_ref().map(|route| ("route", route))).collect();
            let sk = stats_sk(&row.provider, &row.model, &row.key_id, row.route.as_deref());
            let expires = expires_after_days(ts_ms, STATS_TTL_DAYS);
            items.extend(self.add_counters(stats_pk(&row.date), sk, &named, &counters, expires)?);
        }
        for (row, (counters, ts_ms)) in minute_rows {
            let named =
                [("minute", &row.date), ("provider", &row.provider), ("model", &row.model), ("key_id", &row.key_id)];
            let sk = minute_sk(&row.date, &row.provider, &row.model, &row.key_id);
            let expires = expires_after_days(ts_ms, stats::MINUTE_RETENTION_DAYS);
            items.extend(self.add_counters(minute_pk(&row.date), sk, &named, &counters, expires)?);
        }
        // A user's row (`U#<user>`) and a caller key's (`K#<id>`) share the day's caller shards.
        let callers = caller_rows.into_iter().map(|row| ("user_id", "U#", row));
        let callers = callers.chain(caller_key_rows.into_iter().map(|row| ("caller_key_id", "K#", row)));
        for (attribute, prefix, ((date, caller), (counters, ts_ms))) in callers {
            let named = [("date", &date), (attribute, &caller)];
            let expires = expires_after_days(ts_ms, STATS_TTL_DAYS);
            items.extend(self.add_counters(
                caller_pk(&date, &caller),
                format!("{prefix}{caller}"),
                &named,
                &counters,
                expires,
            )?);
        }
        Ok(items)
    }

    /// An `ADD` of `counters` (zeros left out) to the item `pk`/`sk`, setting its key attributes
    /// `named` and its expiry; `None` when there is nothing to add.
    fn add_counters(
        &self,
        pk: String,
        sk: String,
        named: &[(&str, &String)],
        counters: &Counters,
        expires_at: i64,
    ) -> Result<Option<TransactWriteItem>, StoreError> {
        let mut expr = Expr::default();
        let mut set: Vec<String> = named
            .iter()
            .map(|(attr, value)| format!("{} = {}", expr.name(attr), expr.value(attr, s(*value))))
            .collect();
        set.push(format!("{} = {}", expr.name("expires_at"), expr.value("expires_at", n(expires_at))));
        let add: Vec<String> = counter_values(counters)
            .into_iter()
            .filter(|(_, value)| *value > 0)
            .map(|(attr, value)| format!("{} {}", expr.name(&attr), expr.value(&attr, n(value))))
            .collect();
        if add.is_empty() {
            return Ok(None);
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .update_expression(format!("SET {} ADD {}", set.join(", "), add.join(", ")))
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(build_failed("record a log event"))?;
        Ok(Some(TransactWriteItem::builder().update(update).build()))
    }

    /// Records `events` (distinct request ids, few enough for one transaction) exactly once:
    /// a log whose Put is refused was recorded before, so the transaction is sent again without
    /// it (its counters out of the sums). `true` where newly recorded, in order.
    async fn record_chunk(&self, events: &[&LogEvent]) -> Result<Vec<bool>, StoreError> {
        let mut recorded = vec![true; events.len()];
        loop {
            let pending: Vec<(usize, &LogEvent)> =
                events.iter().enumerate().filter(|(i, _)| recorded[*i]).map(|(i, e)| (i, *e)).collect();
            if pending.is_empty() {
                return Ok(recorded);
            }
            let batch: Vec<&LogEvent> = pending.iter().map(|(_, e)| *e).collect();
            let items = self.batch_items(&batch)?;
            let Some(codes) = self.transact("record log events", items, false).await? else {
                return Ok(recorded);
            };
            // Item `j < pending.len()` is the log of `pending[j]`; the stats rows follow.
            let mut duplicates = 0;
            for (j, (i, _)) in pending.iter().enumerate() {
                if condition_failed(&codes, j) {
                    recorded[*i] = false;
                    duplicates += 1;
                }
            }
            if duplicates == 0 {
                return Err(unexpected("record log events", &codes));
            }
        }
    }

    /// Sets each key's `last_used_at` (and `last_error_at` when a call failed on it) to the
    /// newest such call of the batch: one UpdateItem per key and batch, after the events are
    /// recorded, only where the key item still exists and has no newer use. Best effort: a
    /// failure is logged, the events stay recorded.
    async fn mark_keys_used(&self, events: &[&LogEvent]) {
        // (key, provider) → (newest use, newest failure)
        let mut keys: BTreeMap<(&str, &str), (i64, Option<i64>)> = BTreeMap::new();
        for e in events {
            // The final key, and the keys that failed a try before another served the call.
            let mut used: Vec<(&str, &str, bool)> = e
                .key_id
                .as_deref()
                .map(|k| (k, e.provider.as_str(), e.status == CallStatus::Error))
                .into_iter()
                .collect();
            for attempt in e.key_attempts.iter().filter(|a| a.errors > 0) {
                if !used.iter().any(|(k, _, _)| *k == attempt.key_id) {
                    used.push((&attempt.key_id, &attempt.provider, true));
                }
            }
            for (key_id, provider, failed) in used {
                let (last_used, last_error) = keys.entry((key_id, provider)).or_insert((e.ts_ms, None));
                *last_used = (*last_used).max(e.ts_ms);
                if failed {
                    *last_error = Some(last_error.map_or(e.ts_ms, |t| t.max(e.ts_ms)));
                }
            }
        }
        for ((key_id, provider), (used, failed)) in keys {
            self.mark_one_key_used(key_id, provider, used, failed).await;
        }
    }

    async fn mark_one_key_used(&self, key_id: &str, provider: &str, used_ms: i64, failed_ms: Option<i64>) {
        let mut expr = Expr::default();
        let used = expr.name("last_used_at");
        let ts = expr.value("ts", n(used_ms));
        let mut update = format!("SET {used} = {ts}");
        if let Some(failed_ms) = failed_ms {
            update.push_str(&format!(", {} = {}", expr.name("last_error_at"), expr.value("err", n(failed_ms))));
        }
        let condition =
            format!("attribute_exists({}) AND (attribute_not_exists({used}) OR {used} < {ts})", expr.name("pk"));
        const WHAT: &str = "mark a key as used";
        let result = retry::retrying(WHAT, |_| {
            let request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(format!("PROVIDER#{provider}"), format!("KEY#{key_id}"))))
                .update_expression(&update)
                .condition_expression(&condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values());
            async move {
                match request.send().await {
                    // The key is gone or has a newer use: nothing to do.
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(()),
                    other => other.map(|_| ()).map_err(|e| retry::classify(WHAT, &e)),
                }
            }
        })
        .await;
        if let Err(err) = result {
            tracing::warn!(key_id = %key_id, error = %err, "key usage time not updated");
        }
    }

    /// A log by request id. There is no guard item to point at it any more: a gateway request
    /// id (`req_<UUID v7>`) carries its call's start to the millisecond, so a few minutes around
    /// it are read; any other id is looked for in every listed hour. Either way only the id's
    /// own shard (and the unsharded legacy partition) of each hour.
    async fn log_by_request_id(&self, q: &LogQuery, request_id: &str) -> Result<Vec<LogEvent>, StoreError> {
        let mut narrowed = q.clone();
        narrowed.limit = 1;
        if let Some(started) = request_id_ms(request_id) {
            let from = started - REQUEST_ID_SLACK_MS;
            let to = started + REQUEST_ID_SLACK_MS;
            narrowed.from_ms = Some(q.from_ms.map_or(from, |f| f.max(from)));
            narrowed.to_ms = Some(q.to_ms.map_or(to, |t| t.min(to)));
        }
        let Some(range) = sort_range(&narrowed) else {
            return Ok(Vec::new());
        };
        self.logs_by_hour(&narrowed, range, 1, &[log_shard(request_id)], &ReadBudget::new(MAX_PARTIAL_MATCH_READS))
            .await
    }

    /// Newest first from one log partition of the table or an index: at most `limit` logs that
    /// pass every filter. A partial match is checked here on each log read, page by page, while
    /// `budget` lasts.
    async fn partition_logs(
        &self,
        q: &LogQuery,
        keys: LogKeys,
        partition: String,
        range: &(String, String),
        limit: usize,
        budget: &ReadBudget,
    ) -> Result<Vec<LogEvent>, StoreError> {
        let mut expr = Expr::default();
        let condition = format!(
            "{} = {} AND {} BETWEEN {} AND {}",
            expr.name(keys.pk),
            expr.value("pk", s(partition)),
            expr.name(keys.sk),
            expr.value("low", s(&range.0)),
            expr.value("high", s(&range.1)),
        );
        // What the key does not fix is filtered by DynamoDB (it still reads what it drops).
        let filter = log_filter(q, &mut expr, keys.index == Some(GSI_USER), keys.index == Some(GSI_PROVIDER));
        let mut spec = QuerySpec::new(condition, expr);
        spec.index = keys.index;
        spec.filter = filter;
        spec.newest_first = true;
        if !q.has_partial_match() {
            let items = spec.run(&self.client, &self.table, "read call logs", Some(limit)).await?;
            let mut events = Vec::with_capacity(items.len());
            for item in &items {
                let event = log_from(item)?;
                if matches(q, &event) {
                    events.push(event);
                }
            }
            return Ok(events);
        }
        let mut events = Vec::new();
        let mut start = None;
        loop {
            let Some(allowed) = budget.take(PARTIAL_MATCH_PAGE) else {
                return Ok(events);
            };
            let (items, next, scanned) =
                spec.page_scanned(&self.client, &self.table, "read call logs", start.take(), Some(allowed)).await?;
            budget.give_back(allowed.saturating_sub(scanned));
            for item in &items {
                let event = log_from(item)?;
                if matches(q, &event) {
                    events.push(event);
                    if events.len() >= limit {
                        return Ok(events);
                    }
                }
            }
            match next {
                Some(next) => start = Some(next),
                None => return Ok(events),
            }
        }
    }

    /// Newest first over several partitions, queried in parallel (each for the whole `limit`,
    /// as any one of them may hold all of the newest), merged by sort key.
    async fn logs_from(
        &self,
        q: &LogQuery,
        keys: LogKeys,
        partitions: Vec<String>,
        range: &(String, String),
        limit: usize,
        budget: &ReadBudget,
    ) -> Result<Vec<LogEvent>, StoreError> {
        let reads =
            partitions.into_iter().map(|partition| self.partition_logs(q, keys, partition, range, limit, budget));
        Ok(merge_newest_first(try_join_all(reads).await?, limit))
    }

    /// Newest first over every log: the listed hours from the newest down, each hour's
    /// partitions of `shards` (and its legacy one) merged newest first, until `limit` are found.
    async fn logs_by_hour(
        &self,
        q: &LogQuery,
        range: (String, String),
        limit: usize,
        shards: &[u64],
        budget: &ReadBudget,
    ) -> Result<Vec<LogEvent>, StoreError> {
        let low_hour = time::log_hour(q.from_ms.unwrap_or(0).max(0));
        let mut high_hour = q.to_ms.map_or_else(|| "~".to_string(), |to| time::log_hour(to - 1));
        if let Some((ts, _)) = &q.before {
            high_hour = high_hour.min(time::log_hour(*ts));
        }
        let mut expr = Expr::default();
        let condition = format!(
            "{} = {} AND {} BETWEEN {} AND {}",
            expr.name("pk"),
            expr.value("pk", s(LOG_HOURS_PK)),
            expr.name("sk"),
            expr.value("low", s(low_hour)),
            expr.value("high", s(high_hour)),
        );
        let mut hours = QuerySpec::new(condition, expr);
        hours.newest_first = true;

        let mut events = Vec::new();
        let mut start = None;
        loop {
            let (page, next) =
                hours.page(&self.client, &self.table, "list log hours", start.take(), Some(HOURS_PER_PAGE)).await?;
            for listed in &page {
                let hour = Reader::new(listed, "log hour").s("sk")?;
                let wanted = limit - events.len();
                let partitions = hour_partitions(&hour, shards);
                events.extend(self.logs_from(q, TABLE_KEYS, partitions, &range, wanted, budget).await?);
                if events.len() >= limit || budget.spent() {
                    return Ok(events);
                }
            }
            match next {
                Some(next) => start = Some(next),
                None => return Ok(events),
            }
        }
    }
}

#[async_trait]
impl StatsStore for DynamoStore {
    async fn record_event(&self, event: &LogEvent) -> Result<bool, StoreError> {
        Ok(self.record_events(std::slice::from_ref(event)).await?.first().copied().unwrap_or(false))
    }

    /// The whole batch in as few transactions as fit (stats summed per row per transaction),
    /// then each key's use marked once.
    async fn record_events(&self, events: &[LogEvent]) -> Result<Vec<bool>, StoreError> {
        let mut recorded = vec![false; events.len()];
        // A request id twice in one batch: the later copies are duplicates (and one transaction
        // cannot write an item twice).
        let mut seen = HashSet::new();
        let distinct: Vec<usize> = (0..events.len()).filter(|&i| seen.insert(events[i].request_id.as_str())).collect();
        let mut hours: Vec<i64> = distinct.iter().map(|&i| events[i].ts_ms).collect();
        hours.dedup_by_key(|ts| time::log_hour(*ts));
        for ts in hours {
            self.list_hour(ts).await?;
        }
        for chunk in chunks(events, &distinct) {
            let batch: Vec<&LogEvent> = chunk.iter().map(|&i| &events[i]).collect();
            for (&i, new) in chunk.iter().zip(self.record_chunk(&batch).await?) {
                recorded[i] = new;
            }
        }
        let newly: Vec<&LogEvent> = events.iter().zip(&recorded).filter(|(_, new)| **new).map(|(e, _)| e).collect();
        self.mark_keys_used(&newly).await;
        Ok(recorded)
    }

    async fn stats_rows(&self, query: &StatsQuery) -> Result<Vec<StatsRow>, StoreError> {
        let mut rows = Vec::new();
        for chunk in days(query)?.chunks(PARALLEL_DAYS) {
            let mut reads = JoinSet::new();
            for date in chunk {
                reads.spawn(day_rows(self.client.clone(), self.table.clone(), date.clone(), query.clone()));
            }
            while let Some(joined) = reads.join_next().await {
                let found = joined.map_err(|e| StoreError::backend_caused("dynamodb: reading stats failed", e))?;
                rows.extend(found?);
            }
        }
        rows.sort_by(|a, b| {
            (&a.date, &a.provider, &a.model, &a.key_id, &a.route).cmp(&(
                &b.date,
                &b.provider,
                &b.model,
                &b.key_id,
                &b.route,
            ))
        });
        Ok(rows)
    }

    /// One query per hour of the range (its `MSTAT#` partition), in parallel; rows outside the
    /// range's minutes dropped. At most the retention's hours are read.
    async fn minute_rows(&self, from_ms: i64, to_ms: i64) -> Result<Vec<StatsRow>, StoreError> {
        let hour_ms = 3_600_000;
        let from_ms = from_ms.max(to_ms - stats::MINUTE_RETENTION_DAYS * 86_400_000);
        if to_ms <= from_ms {
            return Ok(Vec::new());
        }
        let (first, last) = (time::stats_minute(from_ms), time::stats_minute(to_ms - 1));
        let hours =
            (from_ms.div_euclid(hour_ms)..=(to_ms - 1).div_euclid(hour_ms)).map(|h| time::log_hour(h * hour_ms));
        let reads = hours.map(|hour| {
            let mut expr = Expr::default();
            let condition = format!("{} = {}", expr.name("pk"), expr.value("pk", s(format!("MSTAT#{hour}"))));
            let client = self.client.clone();
            let table = self.table.clone();
            async move { QuerySpec::new(condition, expr).run(&client, &table, "read minute stats", None).await }
        });
        let mut rows = Vec::new();
        for items in try_join_all(reads).await? {
            for item in &items {
                let row = minute_row_from(item)?;
                if row.date >= first && row.date <= last {
                    rows.push(row);
                }
            }
        }
        rows.sort_by(|a, b| {
            (&a.date, &a.provider, &a.model, &a.key_id).cmp(&(&b.date, &b.provider, &b.model, &b.key_id))
        });
        Ok(rows)
    }

    /// A caller's rows are read from their shard of each day; all callers' from every shard.
    async fn caller_rows(
        &self,
        from_date: &str,
        to_date: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<CallerRow>, StoreError> {
        let range =
            StatsQuery { from_date: from_date.to_string(), to_date: to_date.to_string(), ..StatsQuery::default() };
        let mut partitions = Vec::new();
        for date in days(&range)? {
            match user_id {
                Some(user) => partitions.push((caller_pk(&date, user), SortKey::Is(format!("U#{user}")))),
                None => partitions.extend(caller_shards(&date, "U#")),
            }
        }
        let mut rows = Vec::new();
        for item in self.caller_items(&partitions).await? {
            rows.push(caller_row_from(&item)?);
        }
        rows.sort_by(|a, b| (&a.date, &a.user_id).cmp(&(&b.date, &b.user_id)));
        Ok(rows)
    }

    async fn caller_key_rows(&self, from_date: &str, to_date: &str) -> Result<Vec<CallerKeyRow>, StoreError> {
        let range =
            StatsQuery { from_date: from_date.to_string(), to_date: to_date.to_string(), ..StatsQuery::default() };
        let mut partitions = Vec::new();
        for date in days(&range)? {
            partitions.extend(caller_shards(&date, "K#"));
        }
        let mut rows = Vec::new();
        for item in self.caller_items(&partitions).await? {
            let r = Reader::new(&item, "caller key stats");
            rows.push(CallerKeyRow {
                date: r.s("date")?,
                caller_key_id: r.s("caller_key_id")?,
                counters: counters_from(&r)?,
            });
        }
        rows.sort_by(|a, b| (&a.date, &a.caller_key_id).cmp(&(&b.date, &b.caller_key_id)));
        Ok(rows)
    }

    async fn logs(&self, query: &LogQuery) -> Result<Vec<LogEvent>, StoreError> {
        let limit = log_limit(query.limit);
        let Some(range) = sort_range(query) else {
            return Ok(Vec::new());
        };
        if let Some(request_id) = &query.request_id {
            return self.log_by_request_id(query, request_id).await;
        }
        let budget = ReadBudget::new(MAX_PARTIAL_MATCH_READS);
        if let Some(user) = &query.user_id {
            return self.logs_from(query, USER_KEYS, vec![format!("USER#{user}")], &range, limit, &budget).await;
        }
        if let Some(provider) = &query.provider {
            return self.logs_from(query, PROVIDER_KEYS, provider_partitions(provider), &range, limit, &budget).await;
        }
        let shards: Vec<u64> = (0..LOG_SHARDS).collect();
        self.logs_by_hour(query, range, limit, &shards, &budget).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LOG_EVENT_VERSION;

    fn event() -> LogEvent {
        LogEvent {
            v: LOG_EVENT_VERSION,
            request_id: "req-1".into(),
            ts_ms: 1_795_000_000_123,
            user_id: None,
            caller_key_id: None,
            provider: "openai".into(),
            model: "gpt-4o".into(),
            key_id: Some("k".into()),
            route: Some("smart".into()),
            route_rule: Some("1".into()),
            request_type: "chat".into(),
            stream: true,
            status: CallStatus::Error,
            http_status: 502,
            error_code: Some("upstream_error".into()),
            error_message: None,
            prompt_tokens: 1,
            completion_tokens: 2,
            cached_tokens: 3,
            cost_micros: u64::MAX,
            latency_ms: 4,
            ttfb_ms: None,
            attempts: 3,
            cache_write_tokens: 0,
            key_attempts: Vec::new(),
            cache: None,
            saved_micros: 0,
            attempt_log: Vec::new(),
        }
    }

    #[test]
    fn a_log_round_trips_and_only_a_user_puts_it_in_the_user_index() {
        let e = event();
        let item = log_item(&e);
        assert_eq!(log_from(&item).expect("log"), e);
        assert!(!item.contains_key(GSI_USER_PK));
        let shard = format!("{:02}", log_shard("req-1"));
        assert_eq!(item["pk"], s(format!("LOG#{}#{shard}", time::log_hour(e.ts_ms))));
        assert_eq!(item[GSI_PROVIDER_PK], s(format!("PROVIDERLOG#openai#{shard}")));
        assert_eq!(item["sk"], s("1795000000123#req-1"));
        let with_user = log_item(&LogEvent { user_id: Some("u".into()), ..e });
        assert_eq!(with_user[GSI_USER_PK], s("USER#u"), "the user index is not sharded");
    }

    /// The largest call log an event can make, whatever its names and messages hold (every
    /// character three bytes, every list full), stays a small item: under 40 KB, a tenth of
    /// DynamoDB's 400 KB (a transaction holds at most 25 logs); the attempt log takes at most
    /// `MAX_ATTEMPT_LOG_BYTES` of it. A real call's log is a few KB.
    #[test]
    fn the_largest_log_item_stays_small_and_its_attempt_log_round_trips() {
        let name = "名".repeat(500);
        let skipped = crate::logs::SkippedKey { key_id: name.clone(), reason: name.clone() };
        let attempt = crate::logs::Attempt {
            provider: name.clone(),
            model: name.clone(),
            key_id: Some(name.clone()),
            outcome: name.clone(),
            http_status: Some(500),
            message: Some("訊".repeat(5_000)),
            latency_ms: u64::MAX,
            skipped: vec![skipped; 50],
        };
        let key = crate::logs::KeyAttempts {
            provider: name.clone(),
            model: name.clone(),
            key_id: name.clone(),
            attempts: u32::MAX,
            errors: u32::MAX,
        };
        let e = LogEvent {
            user_id: Some(name.clone()),
            provider: name.clone(),
            model: name.clone(),
            key_id: Some(name.clone()),
            route: Some(name.clone()),
            route_rule: Some(name.clone()),
            request_type: name.clone(),
            error_code: Some(name.clone()),
            error_message: Some(name.repeat(10)),
            cache: Some("miss".into()),
            key_attempts: vec![key; 40],
            attempt_log: vec![attempt; 40],
            ..event()
        }
        .bounded();
        // Names this long leave room for the first entries and the last only.
        assert!((2..crate::logs::MAX_ATTEMPT_LOG).contains(&e.attempt_log.len()), "{}", e.attempt_log.len());
        assert_eq!(e.attempt_log.last().map(|a| a.skipped.len()), Some(crate::logs::MAX_SKIPPED_KEYS));
        let log_bytes = serde_json::to_string(&e.attempt_log).expect("json").len();
        assert!(log_bytes <= crate::logs::MAX_ATTEMPT_LOG_BYTES, "{log_bytes} bytes");
        let item = log_item(&e);
        let item_bytes: usize =
            item.iter().map(|(k, v)| k.len() + v.as_s().map_or(8, String::len) + v.as_n().map_or(0, String::len)).sum();
        assert!(item_bytes < 40 * 1024, "{item_bytes} bytes");
        assert_eq!(log_from(&item).expect("log"), e);
    }

    #[test]
    fn a_request_id_always_has_the_same_shard_in_range() {
        // Fixed values: a shard that changed between releases would let a redelivery count twice.
        assert_eq!((log_shard("req-1"), log_shard("req-1")), (2, 2));
        assert_eq!(log_shard("req_0190b3a7c1d27e3f8a9b0c1d2e3f4a5b"), 0);
        assert_eq!(log_pk(1_795_000_000_123, "req-1"), "LOG#2026-11-18T11#02");
        for id in ["req-1", "", "req_0190b3a7c1d27e3f8a9b0c1d2e3f4a5b", "ünïcode"] {
            assert!(log_shard(id) < LOG_SHARDS);
            assert_eq!(log_pk(0, id), log_pk(0, id));
        }
        assert_eq!(hour_partitions("2026-11-26T06", &[3]), ["LOG#2026-11-26T06#03", "LOG#2026-11-26T06"]);
        let provider = provider_partitions("openai");
        assert_eq!(
            (provider.len(), provider[15].as_str(), provider[16].as_str()),
            (17, "PROVIDERLOG#openai#15", "PROVIDERLOG#openai")
        );
    }

    #[test]
    fn gateway_request_ids_spread_over_all_16_shards() {
        // 1,000 ids the way the gateway makes them (`req_<UUID v7>`), 1 ms apart, with
        // pseudo-random bits from a fixed seed.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut counts = [0_usize; LOG_SHARDS as usize];
        for i in 0..1_000_u64 {
            let mut random = [0_u8; 10];
            for byte in &mut random {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state.to_le_bytes()[0];
            }
            let uuid = uuid::Builder::from_unix_timestamp_millis(1_795_000_000_000 + i, &random).into_uuid();
            let id = format!("req_{}", uuid.simple());
            assert_eq!(request_id_ms(&id), Some(1_795_000_000_000 + i as i64));
            counts[log_shard(&id) as usize] += 1;
        }
        let share = 1_000 / LOG_SHARDS as usize;
        assert!(counts.iter().all(|&c| c > 0 && c <= 2 * share), "{counts:?}");
    }

    #[test]
    fn a_read_budget_hands_out_what_is_left_and_takes_back_what_was_not_read() {
        let budget = ReadBudget::new(1_200);
        assert_eq!(budget.take(500), Some(500));
        assert_eq!(budget.take(500), Some(500));
        assert_eq!(budget.take(500), Some(200));
        assert_eq!(budget.take(500), None);
        assert!(budget.spent());
        budget.give_back(300);
        assert!(!budget.spent());
        assert_eq!(budget.take(500), Some(300));
        assert_eq!(MAX_PARTIAL_MATCH_READS, 20_000);
    }

    #[test]
    fn merged_partitions_come_newest_first_once_each_up_to_the_limit() {
        let at = |id: &str, ts| LogEvent { request_id: id.into(), ts_ms: ts, ..event() };
        let merged = merge_newest_first(
            vec![vec![at("c", 30), at("a", 10)], vec![at("d", 30), at("b", 20)], vec![], vec![at("c", 30)]],
            3,
        );
        let ids: Vec<&str> = merged.iter().map(|e| e.request_id.as_str()).collect();
        assert_eq!(ids, ["d", "c", "b"]);
    }

    #[test]
    fn sort_ranges_keep_from_inclusive_and_to_exclusive() {
        let q = |from, to| LogQuery { from_ms: from, to_ms: to, ..LogQuery::default() };
        let (low, high) = sort_range(&q(Some(1_000), Some(2_000))).expect("range");
        assert!(log_sk(1_000, "a") >= low && log_sk(1_999, "zzz") <= high);
        assert!(log_sk(999, "zzz") < low && log_sk(2_000, "") > high);
        assert_eq!(sort_range(&q(Some(5), Some(5))), None);
        assert!(sort_range(&q(None, None)).is_some_and(|(_, high)| log_sk(i64::MAX / 1000, "x") < high));
    }

    #[test]
    fn a_stats_item_with_legacy_buckets_reads_them_into_the_buckets_with_the_same_bounds() {
        let mut item = key(stats_pk("2026-11-18"), stats_sk("openai", "gpt-4o-mini", "key-1", None));
        for (name, value) in
            [("date", "2026-11-18"), ("provider", "openai"), ("model", "gpt-4o-mini"), ("key_id", "key-1")]
        {
            item.insert(name.to_string(), s(value));
        }
        // Written before: 2 calls up to 100 ms, 1 up to 1 s, 4 past 120 s; then, after the upgrade,
        // 5 more up to 100 ms and 1 up to 3 ms under the new names.
        for (name, value) in [("requests", 13), ("h0", 2), ("h3", 1), ("h11", 4), ("l10", 5), ("l2", 1)] {
            item.insert(name.to_string(), n(value));
        }
        let row = stats_from(&item).expect("row");
        let hist = row.counters.latency_hist;
        assert_eq!((hist[2], hist[10], hist[15], hist[29]), (1, 7, 1, 4));
        assert_eq!(hist.iter().sum::<u64>(), 13);
        assert_eq!(row.route, None);
        // What this version writes: only the new names.
        let written: Vec<String> = counter_values(&row.counters)
            .into_iter()
            .filter(|(name, _)| name.get(1..).is_some_and(|bucket| bucket.parse::<usize>().is_ok()))
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        assert_eq!(written, ["l2=1", "l10=7", "l15=1", "l29=4"]);
    }

    #[test]
    fn only_a_routed_call_adds_the_route_to_the_stats_sort_key() {
        assert_eq!(stats_sk("openai", "gpt-4o", "-", None), "P#openai#M#gpt-4o#K#-");
        assert_eq!(stats_sk("openai", "gpt-4o", "k", Some("smart")), "P#openai#M#gpt-4o#K#k#R#smart");
    }

    #[test]
    fn a_route_filter_on_logs_is_an_exact_match_filtered_by_dynamodb() {
        let routed = LogQuery { route: Some("smart".into()), ..LogQuery::default() };
        assert!(routed.matches(&event()));
        assert!(!routed.matches(&LogEvent { route: Some("smart-2".into()), ..event() }));
        assert!(!routed.matches(&LogEvent { route: None, ..event() }));
        let mut expr = Expr::default();
        assert_eq!(log_filter(&routed, &mut expr, false, false).as_deref(), Some("#route = :f_route"));
    }

    #[test]
    fn stats_queries_read_every_day_of_the_range_but_at_most_400() {
        let q =
            |from: &str, to: &str| StatsQuery { from_date: from.into(), to_date: to.into(), ..StatsQuery::default() };
        assert_eq!(days(&q("2026-02-27", "2026-03-01")).expect("days"), ["2026-02-27", "2026-02-28", "2026-03-01"]);
        assert!(days(&q("2026-03-01", "2026-02-27")).expect("empty").is_empty());
        let long = days(&q("2020-01-01", "2026-11-26")).expect("long");
        assert_eq!((long.len(), long.last().map(String::as_str)), (400, Some("2026-11-26")));
        assert!(days(&q("yesterday", "2026-11-26")).is_err());
    }
}
