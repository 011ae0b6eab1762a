//! The embedded schema, versioned with `PRAGMA user_version`: `MIGRATIONS[i]` takes a database
//! from version `i` to `i + 1`, so a file written by an older Maestro is upgraded in place and a
//! file written by a newer one is refused instead of misread.
//!
//! The tables mirror the DynamoDB items of docs/ARCHITECTURE.md §3: the original five (`providers`,
//! `api_keys`, `models`, `api_logs`, `usage_stats`) plus `routes`, the rate-limit windows and
//! the local secrets. Money and counters are integers; enums are their snake_case text.

use rusqlite::{Connection, TransactionBehavior};

use super::backend;
use crate::stats::LATENCY_BUCKETS_MS;
use crate::store::StoreError;

// `usage_stats` has one column per histogram bucket (l0..l29); a new bucket needs a migration.
const _: () = assert!(LATENCY_BUCKETS_MS.len() == 30, "usage_stats has l0..l29: add a migration");

/// Every migration, oldest first; the schema version is the number applied.
const MIGRATIONS: &[&str] = &[
    V1,
    V2,
    V3,
    CALLER_KEYS,
    LEAN_LOG_INDEXES,
    ATTEMPTS_AND_CACHE_WRITES,
    DROP_PARAMS_AND_MODEL_CREATED,
    DROP_USAGE_SUMMARIES,
    CREDITS,
    FINE_LATENCY_AND_ROUTES,
    ROUTE_POLICY,
    RESPONSE_CACHE,
    MINUTE_STATS_AND_ALERTS,
    KEY_ERRORS,
    CALLER_KEY_SPEND,
    ATTEMPT_LOG,
];

const V1: &str = r#"
CREATE TABLE providers (
    code       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    base_url   TEXT NOT NULL,
    headers    TEXT NOT NULL DEFAULT '{}',
    is_active  INTEGER NOT NULL,
    sort_order INTEGER NOT NULL
);

CREATE TABLE models (
    provider           TEXT NOT NULL REFERENCES providers(code) ON DELETE CASCADE,
    model              TEXT NOT NULL,
    model_type         TEXT NOT NULL,
    context_window     INTEGER,
    max_output_tokens  INTEGER,
    supports_streaming INTEGER NOT NULL,
    supports_tools     INTEGER NOT NULL,
    supports_vision    INTEGER NOT NULL,
    price_input        INTEGER NOT NULL,
    price_cached_input INTEGER,
    price_cache_write  INTEGER,
    price_output       INTEGER NOT NULL,
    is_active          INTEGER NOT NULL,
    is_default         INTEGER NOT NULL,
    PRIMARY KEY (provider, model)
) WITHOUT ROWID;

CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,
    provider       TEXT NOT NULL REFERENCES providers(code) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    secret_ref     TEXT NOT NULL,
    masked         TEXT NOT NULL,
    priority       INTEGER NOT NULL,
    is_active      INTEGER NOT NULL,
    status         TEXT NOT NULL,
    cooldown_until INTEGER,
    rpm            INTEGER,
    tpm            INTEGER,
    rpd            INTEGER
);
CREATE INDEX api_keys_by_provider ON api_keys (provider, id);

CREATE TABLE routes (
    name    TEXT PRIMARY KEY,
    targets TEXT NOT NULL
);

CREATE TABLE usage_windows (
    key_id        TEXT NOT NULL,
    window        TEXT NOT NULL,
    requests      INTEGER NOT NULL DEFAULT 0,
    tokens        INTEGER NOT NULL DEFAULT 0,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (key_id, window)
) WITHOUT ROWID;
CREATE INDEX usage_windows_by_expiry ON usage_windows (expires_at_ms);

CREATE TABLE secrets (
    secret_ref TEXT PRIMARY KEY,
    value      TEXT NOT NULL
);

CREATE TABLE api_logs (
    request_id        TEXT PRIMARY KEY,
    v                 INTEGER NOT NULL,
    ts_ms             INTEGER NOT NULL,
    hour              TEXT NOT NULL,
    user_id           TEXT,
    provider          TEXT NOT NULL,
    model             TEXT NOT NULL,
    key_id            TEXT,
    route             TEXT,
    request_type      TEXT NOT NULL,
    stream            INTEGER NOT NULL,
    status            TEXT NOT NULL,
    http_status       INTEGER NOT NULL,
    error_code        TEXT,
    error_message     TEXT,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    cost_micros       INTEGER NOT NULL,
    latency_ms        INTEGER NOT NULL,
    ttfb_ms           INTEGER,
    attempts          INTEGER NOT NULL
);
CREATE INDEX api_logs_by_ts ON api_logs (ts_ms, request_id);
CREATE INDEX api_logs_by_hour ON api_logs (hour);
CREATE INDEX api_logs_by_provider ON api_logs (provider, ts_ms);
CREATE INDEX api_logs_by_user ON api_logs (user_id, ts_ms);

CREATE TABLE usage_stats (
    date              TEXT NOT NULL,
    provider          TEXT NOT NULL,
    model             TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    requests          INTEGER NOT NULL DEFAULT 0,
    successes         INTEGER NOT NULL DEFAULT 0,
    errors            INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    cost_micros       INTEGER NOT NULL DEFAULT 0,
    latency_ms_sum    INTEGER NOT NULL DEFAULT 0,
    h0  INTEGER NOT NULL DEFAULT 0,
    h1  INTEGER NOT NULL DEFAULT 0,
    h2  INTEGER NOT NULL DEFAULT 0,
    h3  INTEGER NOT NULL DEFAULT 0,
    h4  INTEGER NOT NULL DEFAULT 0,
    h5  INTEGER NOT NULL DEFAULT 0,
    h6  INTEGER NOT NULL DEFAULT 0,
    h7  INTEGER NOT NULL DEFAULT 0,
    h8  INTEGER NOT NULL DEFAULT 0,
    h9  INTEGER NOT NULL DEFAULT 0,
    h10 INTEGER NOT NULL DEFAULT 0,
    h11 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (date, provider, model, key_id)
) WITHOUT ROWID;
"#;

/// The roll-up's former summaries (the day's counters per provider and `provider = 'ALL'`),
/// dropped by [`DROP_USAGE_SUMMARIES`] (version 8).
const V2: &str = r#"
CREATE TABLE usage_summaries (
    date              TEXT NOT NULL,
    provider          TEXT NOT NULL,
    requests          INTEGER NOT NULL DEFAULT 0,
    successes         INTEGER NOT NULL DEFAULT 0,
    errors            INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    cost_micros       INTEGER NOT NULL DEFAULT 0,
    latency_ms_sum    INTEGER NOT NULL DEFAULT 0,
    h0  INTEGER NOT NULL DEFAULT 0,
    h1  INTEGER NOT NULL DEFAULT 0,
    h2  INTEGER NOT NULL DEFAULT 0,
    h3  INTEGER NOT NULL DEFAULT 0,
    h4  INTEGER NOT NULL DEFAULT 0,
    h5  INTEGER NOT NULL DEFAULT 0,
    h6  INTEGER NOT NULL DEFAULT 0,
    h7  INTEGER NOT NULL DEFAULT 0,
    h8  INTEGER NOT NULL DEFAULT 0,
    h9  INTEGER NOT NULL DEFAULT 0,
    h10 INTEGER NOT NULL DEFAULT 0,
    h11 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (date, provider)
) WITHOUT ROWID;
"#;

/// The admin API: a `version` on every catalog row (optimistic concurrency; existing rows start
/// at 1), the fields only admins see (a provider's description, a model's display name), when a
/// key was last used or last failed (written with each recorded call), and indexes for the log
/// filters by model and status.
const V3: &str = r#"
ALTER TABLE providers ADD COLUMN description TEXT;
ALTER TABLE providers ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE models ADD COLUMN model_name TEXT;
ALTER TABLE models ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE api_keys ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
ALTER TABLE api_keys ADD COLUMN last_error_at INTEGER;
ALTER TABLE routes ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
CREATE INDEX api_logs_by_model ON api_logs (model, ts_ms);
"#;

/// Maestro API keys for callers (DynamoDB's `CALLERKEYS`/`CALLERKEY#<id>` and
/// `CALLERHASH#<hash>` items): only the key's SHA-256 is kept. Caller keys' windows live in
/// `usage_windows` (key id `CK#<id>`), which gains the day's cost for their cost budgets.
const CALLER_KEYS: &str = r#"
CREATE TABLE caller_keys (
    id                  TEXT PRIMARY KEY,
    key_hash            TEXT NOT NULL UNIQUE,
    masked              TEXT NOT NULL,
    owner               TEXT NOT NULL,
    name                TEXT NOT NULL,
    allowed_models      TEXT NOT NULL DEFAULT '[]',
    rpm                 INTEGER,
    tokens_per_day      INTEGER,
    cost_micros_per_day INTEGER,
    created_at_ms       INTEGER NOT NULL,
    revoked_at_ms       INTEGER
);
ALTER TABLE usage_windows ADD COLUMN cost_micros INTEGER NOT NULL DEFAULT 0;
"#;

/// The log query filters on one statement with optional parameters, which SQLite always answers
/// by walking `api_logs_by_ts` (EXPLAIN QUERY PLAN); these indexes were never read, yet every
/// recorded call paid four B-tree inserts for them.
const LEAN_LOG_INDEXES: &str = r#"
DROP INDEX IF EXISTS api_logs_by_hour;
DROP INDEX IF EXISTS api_logs_by_provider;
DROP INDEX IF EXISTS api_logs_by_user;
DROP INDEX IF EXISTS api_logs_by_model;
"#;

/// A call's cache-write tokens (billed at their own price) in its log and the stats, so a cost
/// can be derived from the log; and each key's attempts and failed attempts per stats row, with
/// a call's attempts per key (JSON) in its log.
const ATTEMPTS_AND_CACHE_WRITES: &str = r#"
ALTER TABLE api_logs ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_logs ADD COLUMN key_attempts TEXT;
ALTER TABLE usage_stats ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_stats ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_stats ADD COLUMN attempt_errors INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_summaries ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_summaries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_summaries ADD COLUMN attempt_errors INTEGER NOT NULL DEFAULT 0;
"#;

/// `drop_params` per model and per route (parameters a provider cannot honour are dropped, not
/// refused), and when a model entered the catalog (`created` in `/v1/models`; models already
/// there count from this upgrade).
const DROP_PARAMS_AND_MODEL_CREATED: &str = r#"
ALTER TABLE models ADD COLUMN drop_params INTEGER NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN created INTEGER NOT NULL DEFAULT 0;
UPDATE models SET created = CAST(strftime('%s', 'now') AS INTEGER);
ALTER TABLE routes ADD COLUMN drop_params INTEGER NOT NULL DEFAULT 0;
"#;

/// The roll-up no longer writes summaries: the stats API answers every query from the exact
/// `usage_stats` rows, and nothing ever read `usage_summaries`.
const DROP_USAGE_SUMMARIES: &str = r#"
DROP TABLE IF EXISTS usage_summaries;
"#;

/// Users' credits: one account row per user (`available` + `held` = the balance) and the ledger;
/// a call's charge is unique per user and call, so a repeated settle counts once.
const CREDITS: &str = r#"
CREATE TABLE credit_accounts (
    user_id          TEXT PRIMARY KEY,
    available_micros INTEGER NOT NULL,
    held_micros      INTEGER NOT NULL
);
CREATE TABLE credit_ledger (
    id                   TEXT NOT NULL,
    user_id              TEXT NOT NULL,
    ts_ms                INTEGER NOT NULL,
    kind                 TEXT NOT NULL,
    amount_micros        INTEGER NOT NULL,
    reason               TEXT,
    actor                TEXT,
    call_id              TEXT,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX credit_ledger_by_time ON credit_ledger (user_id, ts_ms DESC, id DESC);
"#;

/// Latency buckets from 1 ms to 10 min (`l0`…`l29`, `stats::LATENCY_BUCKETS_MS`) instead of
/// `h0`…`h11`, and stats per route: `route` (`''` for calls that named no route: route names are
/// never empty) joins the key. The table is rebuilt; every old bucket's count moves to the new
/// bucket with the same upper bound (100, 250, 500 ms, 1, 2, 5, 10, 20, 30, 60, 120 s and the
/// rest are `l10`, `l12`, `l13`, `l15`, `l17`, `l19`, `l21`, `l23`, `l24`, `l25`, `l26`, `l29`),
/// so no call is lost and no percentile changes. Written out, not generated: this version's
/// schema must not move if the buckets change again. Call logs keep the route's rule.
const FINE_LATENCY_AND_ROUTES: &str = r#"
CREATE TABLE usage_stats_v10 (
    date               TEXT NOT NULL,
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL,
    key_id             TEXT NOT NULL,
    route              TEXT NOT NULL DEFAULT '',
    requests           INTEGER NOT NULL DEFAULT 0,
    successes          INTEGER NOT NULL DEFAULT 0,
    errors             INTEGER NOT NULL DEFAULT 0,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    cached_tokens      INTEGER NOT NULL DEFAULT 0,
    cost_micros        INTEGER NOT NULL DEFAULT 0,
    latency_ms_sum     INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    attempts           INTEGER NOT NULL DEFAULT 0,
    attempt_errors     INTEGER NOT NULL DEFAULT 0,
    l0  INTEGER NOT NULL DEFAULT 0,
    l1  INTEGER NOT NULL DEFAULT 0,
    l2  INTEGER NOT NULL DEFAULT 0,
    l3  INTEGER NOT NULL DEFAULT 0,
    l4  INTEGER NOT NULL DEFAULT 0,
    l5  INTEGER NOT NULL DEFAULT 0,
    l6  INTEGER NOT NULL DEFAULT 0,
    l7  INTEGER NOT NULL DEFAULT 0,
    l8  INTEGER NOT NULL DEFAULT 0,
    l9  INTEGER NOT NULL DEFAULT 0,
    l10 INTEGER NOT NULL DEFAULT 0,
    l11 INTEGER NOT NULL DEFAULT 0,
    l12 INTEGER NOT NULL DEFAULT 0,
    l13 INTEGER NOT NULL DEFAULT 0,
    l14 INTEGER NOT NULL DEFAULT 0,
    l15 INTEGER NOT NULL DEFAULT 0,
    l16 INTEGER NOT NULL DEFAULT 0,
    l17 INTEGER NOT NULL DEFAULT 0,
    l18 INTEGER NOT NULL DEFAULT 0,
    l19 INTEGER NOT NULL DEFAULT 0,
    l20 INTEGER NOT NULL DEFAULT 0,
    l21 INTEGER NOT NULL DEFAULT 0,
    l22 INTEGER NOT NULL DEFAULT 0,
    l23 INTEGER NOT NULL DEFAULT 0,
    l24 INTEGER NOT NULL DEFAULT 0,
    l25 INTEGER NOT NULL DEFAULT 0,
    l26 INTEGER NOT NULL DEFAULT 0,
    l27 INTEGER NOT NULL DEFAULT 0,
    l28 INTEGER NOT NULL DEFAULT 0,
    l29 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (date, provider, model, key_id, route)
) WITHOUT ROWID;
INSERT INTO usage_stats_v10 (date, provider, model, key_id,
    requests, successes, errors, prompt_tokens, completion_tokens, cached_tokens, cost_micros, latency_ms_sum,
    cache_write_tokens, attempts, attempt_errors,
    l10, l12, l13, l15, l17, l19, l21, l23, l24, l25, l26, l29)
SELECT date, provider, model, key_id,
    requests, successes, errors, prompt_tokens, completion_tokens, cached_tokens, cost_micros, latency_ms_sum,
    cache_write_tokens, attempts, attempt_errors,
    h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11
FROM usage_stats;
DROP TABLE usage_stats;
ALTER TABLE usage_stats_v10 RENAME TO usage_stats;
ALTER TABLE api_logs ADD COLUMN route_rule TEXT;
"#;

/// A route's rules and strategy, as one JSON value (NULL: a plain fallback chain).
const ROUTE_POLICY: &str = r#"
ALTER TABLE routes ADD COLUMN policy TEXT;
"#;

/// The response cache: stored answers, a model's cache settings (JSON; NULL: none), and what a
/// call and a day's stats say about hits and the money they saved.
const RESPONSE_CACHE: &str = r#"
CREATE TABLE response_cache (
    key                TEXT PRIMARY KEY,
    body               BLOB NOT NULL,
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_micros        INTEGER NOT NULL,
    created_ms         INTEGER NOT NULL,
    expires_ms         INTEGER NOT NULL
);
CREATE INDEX response_cache_by_expiry ON response_cache (expires_ms);
ALTER TABLE models ADD COLUMN cache TEXT;
ALTER TABLE api_logs ADD COLUMN cache TEXT;
ALTER TABLE api_logs ADD COLUMN saved_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_stats ADD COLUMN cache_hits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_stats ADD COLUMN saved_micros INTEGER NOT NULL DEFAULT 0;
"#;

/// Per-minute rows (alerts, the live panel; pruned after two days) and per-caller daily rows
/// (spend per caller), with the counters of `usage_stats`; alert rules, channels, states,
/// history and the evaluation lease.
const MINUTE_STATS_AND_ALERTS: &str = r#"
CREATE TABLE minute_stats (
    minute             TEXT NOT NULL,
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL,
    key_id             TEXT NOT NULL,
    requests           INTEGER NOT NULL DEFAULT 0,
    successes          INTEGER NOT NULL DEFAULT 0,
    errors             INTEGER NOT NULL DEFAULT 0,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    cached_tokens      INTEGER NOT NULL DEFAULT 0,
    cost_micros        INTEGER NOT NULL DEFAULT 0,
    latency_ms_sum     INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    attempts           INTEGER NOT NULL DEFAULT 0,
    attempt_errors     INTEGER NOT NULL DEFAULT 0,
    cache_hits         INTEGER NOT NULL DEFAULT 0,
    saved_micros       INTEGER NOT NULL DEFAULT 0,
    l0 INTEGER NOT NULL DEFAULT 0,
    l1 INTEGER NOT NULL DEFAULT 0,
    l2 INTEGER NOT NULL DEFAULT 0,
    l3 INTEGER NOT NULL DEFAULT 0,
    l4 INTEGER NOT NULL DEFAULT 0,
    l5 INTEGER NOT NULL DEFAULT 0,
    l6 INTEGER NOT NULL DEFAULT 0,
    l7 INTEGER NOT NULL DEFAULT 0,
    l8 INTEGER NOT NULL DEFAULT 0,
    l9 INTEGER NOT NULL DEFAULT 0,
    l10 INTEGER NOT NULL DEFAULT 0,
    l11 INTEGER NOT NULL DEFAULT 0,
    l12 INTEGER NOT NULL DEFAULT 0,
    l13 INTEGER NOT NULL DEFAULT 0,
    l14 INTEGER NOT NULL DEFAULT 0,
    l15 INTEGER NOT NULL DEFAULT 0,
    l16 INTEGER NOT NULL DEFAULT 0,
    l17 INTEGER NOT NULL DEFAULT 0,
    l18 INTEGER NOT NULL DEFAULT 0,
    l19 INTEGER NOT NULL DEFAULT 0,
    l20 INTEGER NOT NULL DEFAULT 0,
    l21 INTEGER NOT NULL DEFAULT 0,
    l22 INTEGER NOT NULL DEFAULT 0,
    l23 INTEGER NOT NULL DEFAULT 0,
    l24 INTEGER NOT NULL DEFAULT 0,
    l25 INTEGER NOT NULL DEFAULT 0,
    l26 INTEGER NOT NULL DEFAULT 0,
    l27 INTEGER NOT NULL DEFAULT 0,
    l28 INTEGER NOT NULL DEFAULT 0,
    l29 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, provider, model, key_id)
) WITHOUT ROWID;
CREATE TABLE caller_stats (
    date               TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    requests           INTEGER NOT NULL DEFAULT 0,
    successes          INTEGER NOT NULL DEFAULT 0,
    errors             INTEGER NOT NULL DEFAULT 0,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    cached_tokens      INTEGER NOT NULL DEFAULT 0,
    cost_micros        INTEGER NOT NULL DEFAULT 0,
    latency_ms_sum     INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    attempts           INTEGER NOT NULL DEFAULT 0,
    attempt_errors     INTEGER NOT NULL DEFAULT 0,
    cache_hits         INTEGER NOT NULL DEFAULT 0,
    saved_micros       INTEGER NOT NULL DEFAULT 0,
    l0 INTEGER NOT NULL DEFAULT 0,
    l1 INTEGER NOT NULL DEFAULT 0,
    l2 INTEGER NOT NULL DEFAULT 0,
    l3 INTEGER NOT NULL DEFAULT 0,
    l4 INTEGER NOT NULL DEFAULT 0,
    l5 INTEGER NOT NULL DEFAULT 0,
    l6 INTEGER NOT NULL DEFAULT 0,
    l7 INTEGER NOT NULL DEFAULT 0,
    l8 INTEGER NOT NULL DEFAULT 0,
    l9 INTEGER NOT NULL DEFAULT 0,
    l10 INTEGER NOT NULL DEFAULT 0,
    l11 INTEGER NOT NULL DEFAULT 0,
    l12 INTEGER NOT NULL DEFAULT 0,
    l13 INTEGER NOT NULL DEFAULT 0,
    l14 INTEGER NOT NULL DEFAULT 0,
    l15 INTEGER NOT NULL DEFAULT 0,
    l16 INTEGER NOT NULL DEFAULT 0,
    l17 INTEGER NOT NULL DEFAULT 0,
    l18 INTEGER NOT NULL DEFAULT 0,
    l19 INTEGER NOT NULL DEFAULT 0,
    l20 INTEGER NOT NULL DEFAULT 0,
    l21 INTEGER NOT NULL DEFAULT 0,
    l22 INTEGER NOT NULL DEFAULT 0,
    l23 INTEGER NOT NULL DEFAULT 0,
    l24 INTEGER NOT NULL DEFAULT 0,
    l25 INTEGER NOT NULL DEFAULT 0,
    l26 INTEGER NOT NULL DEFAULT 0,
    l27 INTEGER NOT NULL DEFAULT 0,
    l28 INTEGER NOT NULL DEFAULT 0,
    l29 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (date, user_id)
) WITHOUT ROWID;
CREATE TABLE alert_records (
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL,
    body    TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
CREATE TABLE alert_history (
    ts_ms INTEGER NOT NULL,
    id    TEXT NOT NULL,
    body  TEXT NOT NULL,
    PRIMARY KEY (ts_ms, id)
) WITHOUT ROWID;
CREATE TABLE alert_lease (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    holder   TEXT NOT NULL,
    until_ms INTEGER NOT NULL
);
"#;

/// A key's last error as Maestro saw it (a validation, a test call, or the gateway taking the key
/// out of use): the provider's message and when, shown beside the key's status.
const KEY_ERRORS: &str = r#"
ALTER TABLE api_keys ADD COLUMN last_error_message TEXT;
ALTER TABLE api_keys ADD COLUMN last_error_message_at INTEGER;
"#;

/// Which Maestro API key a call came with (`api_logs.caller_key_id`), and spend per caller key
/// and day (`caller_key_stats`, the counters of `usage_stats`).
const CALLER_KEY_SPEND: &str = r#"
ALTER TABLE api_logs ADD COLUMN caller_key_id TEXT;
CREATE TABLE caller_key_stats (
    date               TEXT NOT NULL,
    caller_key_id      TEXT NOT NULL,
    requests           INTEGER NOT NULL DEFAULT 0,
    successes          INTEGER NOT NULL DEFAULT 0,
    errors             INTEGER NOT NULL DEFAULT 0,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    cached_tokens      INTEGER NOT NULL DEFAULT 0,
    cost_micros        INTEGER NOT NULL DEFAULT 0,
    latency_ms_sum     INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    attempts           INTEGER NOT NULL DEFAULT 0,
    attempt_errors     INTEGER NOT NULL DEFAULT 0,
    cache_hits         INTEGER NOT NULL DEFAULT 0,
    saved_micros       INTEGER NOT NULL DEFAULT 0,
    l0 INTEGER NOT NULL DEFAULT 0,
    l1 INTEGER NOT NULL DEFAULT 0,
    l2 INTEGER NOT NULL DEFAULT 0,
    l3 INTEGER NOT NULL DEFAULT 0,
    l4 INTEGER NOT NULL DEFAULT 0,
    l5 INTEGER NOT NULL DEFAULT 0,
    l6 INTEGER NOT NULL DEFAULT 0,
    l7 INTEGER NOT NULL DEFAULT 0,
    l8 INTEGER NOT NULL DEFAULT 0,
    l9 INTEGER NOT NULL DEFAULT 0,
    l10 INTEGER NOT NULL DEFAULT 0,
    l11 INTEGER NOT NULL DEFAULT 0,
    l12 INTEGER NOT NULL DEFAULT 0,
    l13 INTEGER NOT NULL DEFAULT 0,
    l14 INTEGER NOT NULL DEFAULT 0,
    l15 INTEGER NOT NULL DEFAULT 0,
    l16 INTEGER NOT NULL DEFAULT 0,
    l17 INTEGER NOT NULL DEFAULT 0,
    l18 INTEGER NOT NULL DEFAULT 0,
    l19 INTEGER NOT NULL DEFAULT 0,
    l20 INTEGER NOT NULL DEFAULT 0,
    l21 INTEGER NOT NULL DEFAULT 0,
    l22 INTEGER NOT NULL DEFAULT 0,
    l23 INTEGER NOT NULL DEFAULT 0,
    l24 INTEGER NOT NULL DEFAULT 0,
    l25 INTEGER NOT NULL DEFAULT 0,
    l26 INTEGER NOT NULL DEFAULT 0,
    l27 INTEGER NOT NULL DEFAULT 0,
    l28 INTEGER NOT NULL DEFAULT 0,
    l29 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (date, caller_key_id)
) WITHOUT ROWID;
"#;

/// Every attempt of a call in order (`LogEvent::attempt_log`), as JSON: read back whole with
/// its log, never queried. `NULL` for calls recorded before, and for calls without an attempt.
const ATTEMPT_LOG: &str = r#"
ALTER TABLE api_logs ADD COLUMN attempt_log TEXT;
"#;

/// The schema version this build writes.
pub(super) const VERSION: usize = MIGRATIONS.len();

/// Brings the database up to [`VERSION`]. Runs under `BEGIN IMMEDIATE` so two processes opening
/// a fresh file at once cannot both create the tables; DDL and `user_version` commit together.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, VERSION)
}

/// Brings the database up to `target` (at most [`VERSION`]); tests stop early to write a file as
/// an older Maestro did.
pub(super) fn migrate_to(conn: &mut Connection, target: usize) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend("begin the schema migration"))?;
    let found: i64 =
        tx.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(backend("read the schema version"))?;
    let found = usize::try_from(found).unwrap_or(usize::MAX);
    if found > VERSION {
        return Err(StoreError::backend(format!(
            "embedded store: the database has schema version {found}, newer than this Maestro understands ({VERSION}); \
             run a newer Maestro or point it at another data dir"
        )));
    }
    for (applied, sql) in MIGRATIONS.iter().enumerate().take(target).skip(found) {
        tx.execute_batch(sql).map_err(backend("apply a schema migration"))?;
        tx.pragma_update(None, "user_version", applied + 1).map_err(backend("record the schema version"))?;
    }
    tx.commit().map_err(backend("commit the schema migration"))
}
