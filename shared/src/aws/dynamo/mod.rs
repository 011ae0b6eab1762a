//! [`DynamoStore`]: the catalog, the rate-limit windows, call logs and daily stats in ONE
//! DynamoDB table (docs/ARCHITECTURE.md §3), keyed by string attributes `pk` and `sk`, with two sparse global
//! secondary indexes for call logs (`gsi1`: per user, `gsi2`: per provider) and TTL on
//! `expires_at` (epoch seconds). The table itself is defined in [`super::provision`].
//!
//! # Items
//!
//! | item | pk | sk | TTL |
//! |---|---|---|---|
//! | provider | `PROVIDER#<code>` | `META` | — |
//! | model | `PROVIDER#<code>` | `MODEL#<model>` | — |
//! | key (never its secret) | `PROVIDER#<code>` | `KEY#<id>` | — |
//! | key → provider reference | `KEYREF#<id>` | `META` | — |
//! | route | `ROUTE#<name>` | `META` | — |
//! | catalog listing: a provider | `CATALOG` | `PROVIDER#<code>` | — |
//! | catalog listing: a route (with its targets) | `CATALOG` | `ROUTE#<name>` | — |
//! | minute window (only with rpm or tpm; shard n ≥ 1 of a high limit: `…#<n>`) | `USE#<key>#M#<yyyymmddHHMM>` | `-` | window end + 10 min |
//! | day window (only with rpd, or a caller key's budgets; sharded the same way) | `USE#<key>#D#<yyyymmdd>` | `-` | window end + 2 days |
//! | caller key (Maestro API key `mk-…`; never the key, only its SHA-256) | `CALLERKEYS` | `CALLERKEY#<id>` | — |
//! | caller key by hash (a full copy, for the hot path) | `CALLERHASH#<sha256 hex>` | `META` | — |
//! | call log | `LOG#<yyyy-mm-ddTHH>#<shard 00..15>` (shard from the request id) | `<ts ms, 13 digits>#<request id>` | 90 days |
//! | log hour listing | `LOGHOURS` | `<yyyy-mm-ddTHH>` | 90 days |
//! | cached answer (response cache) | `CACHE#<sha256 hex>` | `ANSWER` | its `cache_ttl_secs` |
//! | daily stats | `STAT#<yyyy-mm-dd>` | `P#<provider>#M#<model>#K#<key or ->`, plus `#R#<route>` for calls that named a route | 365 days |
//! | minute stats (alerts, the live panel) | `MSTAT#<yyyy-mm-ddTHH>` | `<MM>#P#<provider>#M#<model>#K#<key or ->` | 2 days |
//! | caller stats per day | `CSTAT#<yyyy-mm-dd>#<shard 00..15>` (shard from the user id) | `U#<user id>` | 365 days |
//! | caller-key stats per day | `CSTAT#<yyyy-mm-dd>#<shard 00..15>` (shard from the caller key id) | `K#<caller key id>` | 365 days |
//!
//! A stats item's latency histogram is `l0`…`l29` (`stats::LATENCY_BUCKETS_MS`); items written
//! before the buckets were refined also hold `h0`…`h11`, which reads add to the buckets with the
//! same upper bounds.
//!
//! Roll-up summaries (`STAT#<date>` / `SUM#<provider>`) written by earlier versions are no longer
//! read or written; they expire with their TTL.
//!
//! Every provider, model, key and route item (and a route's listing item) carries a `version`
//! number, 1 when created and one more with every write of the item (admin edits, the bootstrap's
//! upserts); items written before versions existed count as 1. A key's health (`status`,
//! `cooldown_until`) and its use (`last_used_at`, `last_error_at`, written after each recorded
//! call) are not edits and leave it alone. Providers may carry a `description`, models a
//! `model_name`: admin-only fields no catalog upsert touches (upserts are UpdateItems that set
//! only their own attributes).
//!
//! A call log also carries `gsi1pk = USER#<user id>` (only when it has a user), `gsi1sk =
//! gsi2sk = <ts>#<request id>` and `gsi2pk = PROVIDERLOG#<provider>#<shard>` (the shard of its
//! `pk`). Both indexes project `ALL`, so an index query needs no second read. The shard is FNV-1a
//! of the request id mod 16: each hour's (and each provider's) log writes are spread over 16
//! partitions, each taking 1/16 of them, and a redelivered event maps to the same log item.
//! Logs written before the sharding stay in the unsharded `LOG#<hour>` / `PROVIDERLOG#<provider>`,
//! which reads still query.
//!
//! # Access patterns
//!
//! | # | pattern | requests | key / index |
//! |---|---|---|---|
//! | 1 | load the whole catalog | 1 Query on `CATALOG` + 1 Query per provider on `PROVIDER#<code>` (in parallel), all strongly consistent | table |
//! | 2 | is the catalog empty | 1 Query on `CATALOG`, `begins_with(sk, "PROVIDER#")`, `Limit 1` | table |
//! | 3 | upsert a provider | 1 TransactWriteItems: Update `PROVIDER#<code>`/`META` (`ADD version 1`) + Put `CATALOG`/`PROVIDER#<code>` | table |
//! | 4 | upsert a model / insert it if absent | 1 TransactWriteItems: ConditionCheck provider `META` exists + Update model (`ADD version 1`), or Put it with `attribute_not_exists(pk)` for insert-if-absent | table |
//! | 5 | upsert a key | 1 GetItem `KEYREF#<id>` + 1 TransactWriteItems: ConditionCheck provider, Update key (`ADD version 1`), Put `KEYREF#<id>` (conditional on what was read), Delete the old key item when the key moved to another provider | table |
//! | 6 | delete a key | 1 GetItem `KEYREF#<id>` + 1 TransactWriteItems: Delete key + Delete `KEYREF#<id>` | table |
//! | 7 | set a key's status | 1 GetItem `KEYREF#<id>` + 1 UpdateItem on the key (`attribute_exists(pk)`) | table |
//! | 7a | note a key's error | 1 GetItem `KEYREF#<id>` + 1 UpdateItem on the key (`attribute_exists(pk)` and no newer `last_error_message_at`; refused: 1 more GetItem `KEYREF#<id>` to tell a gone key from a newer error) | table |
//! | 8 | upsert a route | 1 TransactWriteItems: Update `ROUTE#<name>`/`META` + Update `CATALOG`/`ROUTE#<name>` (both `ADD version 1`) | table |
//! | 8a | admin: load the catalog with versions | as 1 (the same items, all attributes) | table |
//! | 8b | admin: create a provider / a route | 1 TransactWriteItems: Put the item (`attribute_not_exists(pk)`, version 1) + Put its `CATALOG` listing | table |
//! | 8c | admin: create a key | 1 TransactWriteItems: ConditionCheck provider + Put key + Put `KEYREF#<id>`, both `attribute_not_exists(pk)` | table |
//! | 8d | admin: update a provider / a key | (a key: 1 GetItem `KEYREF#<id>` +) 1 UpdateItem of the admin's attributes, `SET version = :v + 1` conditioned on `version = :v`; when refused, 1 GetItem tells 404 from 409 | table |
//! | 8e | admin: update a model | 1 TransactWriteItems: the versioned Update of the model + (when it becomes the default) an Update clearing `is_default` on each other provider's model of that name, found by pattern 1 | table |
//! | 8f | admin: update / delete a route | 1 TransactWriteItems: versioned Update (or Delete) of `ROUTE#<name>` + Update (or Delete) of its listing | table |
//! | 8g | admin: delete a key at a version | 1 GetItem `KEYREF#<id>` + 1 TransactWriteItems: Delete key (`version = :v`) + Delete `KEYREF#<id>` | table |
//! | 8h | admin: delete a provider | 1 Query `PROVIDER#<code>` (consistent; refused while a `KEY#` item is there) + 1 TransactWriteItems per 100 of its models (Delete each) + 1 TransactWriteItems: Delete `META` (`version = :v` when given) + Delete its `CATALOG` listing | table |
//! | 9 | reserve a key (hot path) | 1 conditional UpdateItem (`ADD`) on one shard of each window the key limits, the minute then the day (the minute given back when the day refuses); only when a shard refuses, 1 BatchGetItem of the window's shards and a try on those with room | table |
//! | 10 | reconcile tokens (hot path) | 1 UpdateItem per window that counts tokens (the grant's shard); nothing when the estimate was exact | table |
//! | 11 | window usage | 1 BatchGetItem (consistent) of every shard of the minute and the day window | table |
//! | 11a | reserve a caller key's windows (hot path, `mk-` callers with limits) | as 9: `USE#CK#<id>#M#…` (requests, rpm) and `USE#CK#<id>#D#…` (requests, and the tokens and `cost_micros` it has budgets for) | table |
//! | 11b | reconcile a caller key's day window | 1 UpdateItem per counter that changed (tokens, `cost_micros`), in parallel | table |
//! | 11c | create a caller key | 1 TransactWriteItems: Put `CALLERKEYS`/`CALLERKEY#<id>` + Put `CALLERHASH#<hash>`, both `attribute_not_exists(pk)` | table |
//! | 11d | find a caller key by hash (cold container or expired cache entry) | 1 GetItem `CALLERHASH#<hash>` | table |
//! | 11e | list caller keys | 1 Query on `CALLERKEYS`, newest first (ids are UUID v7) | table |
//! | 11f | revoke a caller key | 1 GetItem `CALLERKEYS`/`CALLERKEY#<id>` + 1 TransactWriteItems: `SET revoked_at_ms` on both items (`attribute_not_exists(revoked_at_ms)`) | table |
//! | 12 | record a batch of log events (aggregator) | 1 TransactWriteItems per batch (up to 100 items): Put each call log on `LOG#<hour>#<shard>` (`attribute_not_exists(pk)`: the log is its own guard) + one `ADD` per daily, minute, caller and caller-key row with the batch's sums, sent again without the logs that were refused (duplicates); plus 1 Put on `LOGHOURS` the first time a container sees an hour; then 1 UpdateItem per key and batch of the key's `last_used_at` (and `last_error_at`) conditioned on the key existing and holding no newer time (best effort: a failure is logged, the event stays recorded) | table |
//! | 13 | stats rows for a date range | 1 Query per day on `STAT#<date>` (`begins_with(sk, "P#")`, or `"P#<provider>#M#…"` when filtered; a route filter is applied to what is read), 16 days in parallel | table |
//! | 14 | logs by request id | a gateway id `req_<UUID v7>`: Query the id's shard `LOG#<hour>#<shard>` (and the legacy `LOG#<hour>`) of the hour(s) within 5 minutes of its time, filtered on `request_id`; any other id: the same in every listed hour | table |
//! | 15 | logs by user (+ provider, model, status, route filters) | Query `gsi1`, `gsi1pk = USER#<id>`, `gsi1sk BETWEEN`, newest first | `gsi1` |
//! | 16 | logs by provider (+ model, status, route filters) | 17 Queries on `gsi2` in parallel, `gsi2pk = PROVIDERLOG#<code>#<shard>` for the 16 shards and the legacy `PROVIDERLOG#<code>`, `gsi2sk BETWEEN`, newest first, each up to the limit; merged by sort key | `gsi2` |
//! | 17 | all logs in a time range (+ model, status, route filters) | Query `LOGHOURS` (`sk BETWEEN` the hours, newest first), then per hour 17 Queries in parallel (`LOG#<hour>#<shard>` for the 16 shards and the legacy `LOG#<hour>`), newest first, each up to what is still wanted, merged by sort key; hour after hour until the limit is reached | table |
//! | 18 | response cache: read an entry / store one | 1 GetItem (eventually consistent) / 1 PutItem on `CACHE#<key>` | table |
//! | 19 | minute rows of a time range (alerts, live panel) | 1 Query per hour on `MSTAT#<hour>`, `sk BETWEEN` the minutes | table |
//! | 20 | caller rows / caller-key rows of a date range (spend) | per day, 16 Queries in parallel on `CSTAT#<date>#<shard>` with `begins_with(sk, "U#")` or `"K#"`; one user's: 1 Query per day on its shard, `sk = U#<user>` | table |
//!
//! In 15–17, what the key condition cannot fix (model, status, route; provider or user when another
//! index is used) is a FilterExpression, and the Query pages on until the limit is met (DynamoDB
//! still reads, and bills, what it drops). A partial match (`model_contains`, `user_contains`,
//! ignoring case) cannot be an expression: each log read is checked here instead, pages of 500,
//! at most 20,000 reads per query (`ScannedCount`); past that the page holds what was found. A
//! count of logs pages the same queries, 1,000 at a time, up to its cap. A page cursor `(ts, request id)` is the upper bound of
//! the sort-key range (BETWEEN is inclusive, so `request_id <> :cursor` drops the cursor's own
//! log) and of the hours walked.
//!
//! # Why these choices
//!
//! - **The catalog listing (`CATALOG` partition)** instead of a Scan or a GSI: the catalog is
//!   small and every container caches it for seconds, but a Scan reads the whole table (logs and
//!   stats included) and a GSI cannot be read strongly consistently, so an admin change would not
//!   be visible to the very next load. Routes carry their targets in their listing item too (written
//!   in the same transaction as the route item), so loading the catalog costs 1 + providers Queries.
//! - **`KEYREF#<id>`**: the store traits name a key by id only, while the key item lives under its
//!   provider. The reference item, written in the same transaction as the key, finds the provider
//!   with one GetItem. Only admin operations and key-health changes (after a provider error) pay
//!   for it; the chat hot path reads keys from the cached catalog.
//! - **`LOGHOURS`**: reading "the newest logs" must find the hours that have any without walking
//!   every hour back to the beginning of time (a fixed look-back of N days would silently hide
//!   older logs). A container registers an hour once (an idempotent Put, remembered in memory),
//!   so this costs one write per hour per aggregator container, not per event.
//! - **Windows**: one conditional UpdateItem per counted window and shard (1 WCU), not a
//!   TransactWriteItems (2 WCU per item, and cancelled by every concurrent write to its items):
//!   the minute first, then the day, the minute given back if the day refuses. Shards, their
//!   shares and the bound on what they may refuse are in docs/ARCHITECTURE.md §4. Refusals by a
//!   request count alone are remembered per shard in the container until the window ends (a
//!   refused conditional write still costs a write unit); refusals that may come from tpm are
//!   not, since a reconcile can free tokens.
//! - **Reconcile** clamps at zero without reading: a decrement conditioned on `tokens >= :abs`,
//!   falling back to `SET tokens = 0` conditioned on `tokens < :abs`.
//! - **Caller keys** are read by hash on the hot path, so the hash item is a full copy (one
//!   GetItem, no second read); the listing item serves the admin API without a Scan. A chat
//!   container caches look-ups for 30 s (`store::caller_keys::CachedCallerKeys`), so a revocation
//!   reaches every container within that time. Their windows are ordinary window items under the
//!   counter id `CK#<id>`, with `cost_micros` added in the day item for the cost budget.
//! - **Exactly-once stats**: the call log is Put with `attribute_not_exists(pk)` (its key comes
//!   from the event's ts and request id alone) in the same transaction as the stats `ADD`s, one
//!   transaction per batch with the counters summed per row; a redelivered event cancels it with
//!   `ConditionalCheckFailed` on its log, and the batch is sent again without it, so it changes
//!   nothing. No `ClientRequestToken` there: a redelivery with the same token would be reported
//!   as a success.
//! - **Contention, throttling, outages**: concurrent transactions on one item cancel with
//!   `TransactionConflict` (a hot key's window, a busy stats row); a busy table throttles; a bad
//!   moment answers 5xx or times out. Every call, read or write, is retried by one loop
//!   ([`retry`]: exponential backoff with full jitter, at most about 350 ms in all); what
//!   outlives it is [`StoreError::Unavailable`]. The SDK's own retries are off for this client.
//! - **Hot partitions**: a partition takes about 1,000 WCU/s. An hour's call logs are spread over
//!   16 partitions by a hash of the request id (a log Put in a transaction costs 2 WCU per KB, so
//!   one partition would cap the system at some hundreds of logged calls per second); reads pay
//!   with 17 Queries per hour instead of one. A window with high limits is sharded the same way
//!   (docs/ARCHITECTURE.md §4), so one key's calls spread over up to 16 partitions.

mod alerts;
mod caller_keys;
mod catalog;
mod counters;
mod credits;
mod response_cache;
mod retry;
mod stats;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

use crate::store::StoreError;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The DynamoDB backend of [`crate::store::CatalogStore`], [`crate::store::CounterStore`] and
/// [`crate::store::StatsStore`]. Cheap to share; build it once per container.
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Windows known to be full, with the end of the window (docs/ARCHITECTURE.md §4).
    full_windows: Mutex<HashMap<counters::FullWindow, i64>>,
    /// Log hours this container has already listed in `LOGHOURS`.
    listed_hours: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore").field("table", &self.table).finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// The store over `client`, whose own retries are turned off: the store retries every call
    /// itself (see [`retry`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client: retry::without_sdk_retries(client),
            table: table.into(),
            full_windows: Mutex::new(HashMap::new()),
            listed_hours: Mutex::new(HashSet::new()),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Runs a transaction through [`retry::retrying`]: tried again while it is throttled,
    /// unavailable or cancelled only by busy reasons (`TransactionConflict`, `ThrottlingError`).
    /// `Ok(None)`: committed; `Ok(Some(codes))`: cancelled, with one reason code per item in item
    /// order (`"None"` for the items that were fine). With `with_token`, each attempt carries a
    /// `ClientRequestToken`, a new one unless the previous attempt may have been carried out.
    async fn transact(
        &self,
        what: &'static str,
        items: Vec<TransactWriteItem>,
        with_token: bool,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut token: Option<String> = None;
        retry::retrying(what, |previous| {
            if with_token && (token.is_none() || previous != retry::Previous::MaybeApplied) {
                token = Some(uuid::Uuid::new_v4().to_string());
            }
            let request = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .set_client_request_token(token.clone());
            async move {
                let err = match request.send().await {
                    Ok(_) => return Ok(None),
                    Err(err) => err,
                };
                let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = err.as_service_error()
                else {
                    return Err(retry::classify(what, &err));
                };
                let codes = cancelled
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_string())
                    .collect::<Vec<_>>();
                // A failed condition decides the outcome whatever else happened.
                let decided = codes.iter().any(|c| c == CONDITION_FAILED);
                let busy = codes.iter().any(|c| retry::BUSY_REASONS.contains(&c.as_str()));
                if busy && !decided {
                    return Err(retry::Failure::Transient {
                        detail: format!("transaction cancelled ({})", codes.join(", ")),
                        maybe_applied: false,
                    });
                }
                Ok(Some(codes))
            }
        })
        .await
    }
}

/// The cancellation reason of an item whose condition did not hold.
const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// Whether the `i`-th reason of a cancelled transaction is a failed condition.
fn condition_failed(codes: &[String], i: usize) -> bool {
    codes.get(i).is_some_and(|c| c == CONDITION_FAILED)
}

/// A cancellation that none of the expected conditions explains.
fn unexpected(what: &str, codes: &[String]) -> StoreError {
    StoreError::backend(format!("dynamodb: cannot {what}: transaction cancelled ({})", codes.join(", ")))
}

fn build_failed(what: &str) -> impl FnOnce(aws_sdk_dynamodb::error::BuildError) -> StoreError {
    move |e| StoreError::backend_caused(format!("dynamodb: cannot build the request to {what}"), e)
}

/// Expression attribute names and values, collected while an expression is written. Every
/// attribute goes through a `#name` placeholder, so DynamoDB's long list of reserved words
/// (`status`, `name`, `date`, …) never matters.
#[derive(Debug, Default, Clone)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    /// `#attr`, registered.
    fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_string());
        placeholder
    }

    /// `:id`, bound to `value`.
    fn value(&mut self, id: &str, value: AttributeValue) -> String {
        let placeholder = format!(":{id}");
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn boolean(value: bool) -> AttributeValue {
    AttributeValue::Bool(value)
}

/// The primary key of an item.
fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// Adds `name = value` to an item when the value is present.
fn put_opt(item: &mut Item, name: &str, value: Option<AttributeValue>) {
    if let Some(value) = value {
        item.insert(name.to_string(), value);
    }
}

/// Unix seconds `days` days after `ms`, for `expires_at`.
fn expires_after_days(ms: i64, days: i64) -> i64 {
    ms.div_euclid(1000) + days * 86_400
}

/// Reads attributes of one item, with errors that name the item and the attribute.
struct Reader<'a> {
    item: &'a Item,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(item: &'a Item, what: &'static str) -> Self {
        Self { item, what }
    }

    fn bad(&self, name: &str, problem: &str) -> StoreError {
        StoreError::backend(format!("dynamodb: {} item: attribute `{name}` {problem}", self.what))
    }

    fn opt_s(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
            Some(_) => Err(self.bad(name, "is not a string")),
        }
    }

    fn s(&self, name: &str) -> Result<String, StoreError> {
        self.opt_s(name)?.ok_or_else(|| self.bad(name, "is missing"))
    }

    fn opt_n<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => {
                v.parse().map(Some).map_err(|_| self.bad(name, &format!("is out of range: {v}")))
            }
            Some(_) => Err(self.bad(name, "is not a number")),
        }
    }

    fn n<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.opt_n(name)?.ok_or_else(|| self.bad(name, "is missing"))
    }

    /// A counter: absent means zero.
    fn count(&self, name: &str) -> Result<u64, StoreError> {
        Ok(self.opt_n(name)?.unwrap_or(0))
    }

    fn bool(&self, name: &str) -> Result<bool, StoreError> {
        self.opt_bool(name)?.ok_or_else(|| self.bad(name, "is missing"))
    }

    /// A flag added after items were first written: absent means `false`.
    fn flag(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.opt_bool(name)?.unwrap_or(false))
    }

    fn opt_bool(&self, name: &str) -> Result<Option<bool>, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::Bool(v)) => Ok(Some(*v)),
            Some(_) => Err(self.bad(name, "is not a boolean")),
            None => Ok(None),
        }
    }

    fn string_map(&self, name: &str) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        match self.item.get(name) {
            None => Ok(Default::default()),
            Some(AttributeValue::M(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    AttributeValue::S(v) => Ok((k.clone(), v.clone())),
                    _ => Err(self.bad(name, "holds a value that is not a string")),
                })
                .collect(),
            Some(_) => Err(self.bad(name, "is not a map")),
        }
    }

    fn string_list(&self, name: &str) -> Result<Vec<String>, StoreError> {
        match self.item.get(name) {
            None => Ok(Vec::new()),
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| match v {
                    AttributeValue::S(v) => Ok(v.clone()),
                    _ => Err(self.bad(name, "holds a value that is not a string")),
                })
                .collect(),
            Some(_) => Err(self.bad(name, "is not a list")),
        }
    }
}

/// A Query with an expression, paged through `LastEvaluatedKey`.
#[derive(Debug, Clone)]
struct QuerySpec {
    index: Option<&'static str>,
    key_condition: String,
    filter: Option<String>,
    expr: Expr,
    newest_first: bool,
    consistent: bool,
}

impl QuerySpec {
    fn new(key_condition: String, expr: Expr) -> Self {
        Self { index: None, key_condition, filter: None, expr, newest_first: false, consistent: false }
    }

    /// One page of at most `limit` evaluated items from `start`, and where the next page starts.
    async fn page(
        &self,
        client: &Client,
        table: &str,
        what: &'static str,
        start: Option<Item>,
        limit: Option<usize>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let (items, next, _) = self.page_scanned(client, table, what, start, limit).await?;
        Ok((items, next))
    }

    /// [`Self::page`], with how many items DynamoDB read for it (the filter's drops included).
    async fn page_scanned(
        &self,
        client: &Client,
        table: &str,
        what: &'static str,
        start: Option<Item>,
        limit: Option<usize>,
    ) -> Result<(Vec<Item>, Option<Item>, usize), StoreError> {
        let limit = limit.map(|l| i32::try_from(l.clamp(1, 1_000)).unwrap_or(1_000));
        let out = retry::retrying(what, |_| {
            let request = client
                .query()
                .table_name(table)
                .set_index_name(self.index.map(str::to_string))
                .key_condition_expression(&self.key_condition)
                .set_filter_expression(self.filter.clone())
                .set_expression_attribute_names(self.expr.names())
                .set_expression_attribute_values(self.expr.values())
                .scan_index_forward(!self.newest_first)
                .set_consistent_read(self.consistent.then_some(true))
                .set_limit(limit)
                .set_exclusive_start_key(start.clone());
            async move { request.send().await.map_err(|e| retry::classify(what, &e)) }
        })
        .await?;
        let next = out.last_evaluated_key().filter(|last| !last.is_empty()).cloned();
        let scanned = usize::try_from(out.scanned_count()).unwrap_or(0);
        Ok((out.items().to_vec(), next, scanned))
    }

    /// Runs the query and returns its items until `max` are collected (all of them for `None`).
    async fn run(
        &self,
        client: &Client,
        table: &str,
        what: &'static str,
        max: Option<usize>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let remaining = max.map(|m| m.saturating_sub(items.len()));
            let (page, next) = self.page(client, table, what, start.take(), remaining).await?;
            items.extend(page);
            if let Some(max) = max
                && items.len() >= max
            {
                items.truncate(max);
                return Ok(items);
            }
            match next {
                Some(next) => start = Some(next),
                None => return Ok(items),
            }
        }
    }
}

/// A strongly consistent GetItem.
async fn get_item(client: &Client, table: &str, key: Item, what: &'static str) -> Result<Option<Item>, StoreError> {
    let out = retry::retrying(what, |_| {
        let request = client.get_item().table_name(table).set_key(Some(key.clone())).consistent_read(true);
        async move { request.send().await.map_err(|e| retry::classify(what, &e)) }
    })
    .await?;
    Ok(out.item().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_use_placeholders_for_every_name_and_value() {
        let mut e = Expr::default();
        let status = e.name("status");
        let v = e.value("s", s("normal"));
        assert_eq!(format!("{status} = {v}"), "#status = :s");
        assert_eq!(e.names().expect("names")["#status"], "status");
        assert!(Expr::default().values().is_none(), "DynamoDB refuses an empty value map");
    }

    #[test]
    fn readers_name_the_item_and_attribute_they_cannot_read() {
        let item: Item = HashMap::from([("n".to_string(), s("x")), ("c".to_string(), n(-1))]);
        let r = Reader::new(&item, "key");
        assert_eq!(r.count("absent").expect("absent"), 0);
        let err = r.n::<u64>("n").expect_err("not a number");
        assert!(err.to_string().contains("key item: attribute `n`"), "{err}");
        assert!(r.count("c").is_err(), "a negative counter is an error, not a wrap-around");
    }
}
