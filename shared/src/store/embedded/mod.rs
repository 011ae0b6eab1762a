//! The embedded backend: one SQLite file (`<dir>/maestro.db`) behind all four store traits, for
//! the local runner and the tests. It mirrors the DynamoDB items of docs/ARCHITECTURE.md §3 table by table.
//!
//! One process owns a data dir: the store holds an exclusive lock on `<dir>/maestro.lock` while
//! it is open, and a second store (a second runner) is refused with a clear error. That is what
//! lets the rate-limit windows live in memory (see `counters`): the request path never waits for
//! SQLite. Everything else goes through one connection behind a `std::sync::Mutex`: every
//! operation is one short statement or transaction, so a pool would buy nothing but
//! `SQLITE_BUSY` between our own connections. The lock is taken inside synchronous code only and
//! is never held across an `.await`. A background thread with a connection of its own saves the
//! windows and checkpoints the WAL.

mod alerts;
mod caller_keys;
mod catalog;
mod counters;
mod credits;
mod response_cache;
mod schema;
mod secrets;
mod stats;

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::types::Type;
use rusqlite::{Connection, Params, Row};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use crate::secret::SecretString;

/// Name of the database file inside the data dir.
pub const DB_FILE: &str = "maestro.db";
/// Name of the file a store locks to own its data dir.
pub const LOCK_FILE: &str = "maestro.lock";

/// How long a statement waits for the other connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the background thread moves the WAL into the database file. Often: a checkpoint's
/// work grows with the WAL, and it shares the CPU with requests (at 500 ms the p99 latency under
/// load was ~1 ms worse than at 100 ms, bench/RESULTS.md).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// How often the background thread drops logs and stats past their retention (see
/// `stats::prune`); the first prune runs soon after the store opens.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const FIRST_PRUNE_AFTER: Duration = Duration::from_secs(10);

pub struct EmbeddedStore {
    db: Arc<Mutex<Db>>,
    path: Option<PathBuf>,
    /// The rate-limit windows (see `counters`).
    windows: Arc<Mutex<counters::Windows>>,
    /// Secrets read so far. Every write goes through this store and one process owns the file,
    /// so the cache cannot go stale; it keeps SQLite off the request path.
    secret_cache: Mutex<HashMap<String, SecretString>>,
    /// File-backed stores only: the background writer and the dir lock.
    background: Option<Background>,
}

/// The background thread of a file-backed store, its connection, and the data dir's lock.
struct Background {
    /// The thread's connection, also used by [`EmbeddedStore::flush`]; holding it orders flushes.
    writer: Arc<Mutex<Connection>>,
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
    /// Held (locked) for the store's lifetime.
    _dir_lock: File,
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        if let Some(background) = &mut self.background {
            // The thread saves the windows one last time before it ends.
            let _ = background.stop.send(());
            if let Some(thread) = background.thread.take()
                && thread.join().is_err()
            {
                tracing::error!("the embedded store's background writer panicked");
            }
        }
    }
}

/// Saves changed windows every [`counters::FLUSH_EVERY`] and checkpoints the WAL every
/// [`CHECKPOINT_EVERY`], on a connection of its own: a checkpoint fsyncs the database file, and
/// on the main connection (where automatic checkpoints are off) that would stall whichever
/// operation triggered it. PASSIVE checkpoints never block writers.
fn spawn_background(
    path: &Path,
    windows: Arc<Mutex<counters::Windows>>,
    dir_lock: File,
) -> Result<Background, StoreError> {
    let conn = Connection::open(path).map_err(backend("open the background connection"))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(backend("set busy_timeout"))?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(backend("set synchronous=NORMAL"))?;
    // This thread checkpoints on its own schedule; an automatic one would fsync inside a flush.
    conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(backend("turn off automatic checkpoints"))?;
    let writer = Arc::new(Mutex::new(conn));
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let conn = writer.clone();
    let thread = std::thread::Builder::new()
        .name("maestro-store-writer".into())
        .spawn(move || {
            let mut last_checkpoint = Instant::now();
            let mut next_prune = Instant::now() + FIRST_PRUNE_AFTER;
            loop {
                let stopping = !matches!(stopped.recv_timeout(counters::FLUSH_EVERY), Err(RecvTimeoutError::Timeout));
                let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                if let Err(e) = counters::flush(&windows, &mut conn) {
                    tracing::warn!(error = %e, "rate-limit windows not saved yet; will retry");
                }
                if stopping {
                    return;
                }
                if Instant::now() >= next_prune {
                    next_prune = Instant::now() + PRUNE_EVERY;
                    match stats::prune(&conn, crate::time::now_ms()) {
                        Ok((0, 0)) => {}
                        Ok((logs, stats)) => tracing::info!(logs, stats, "pruned rows past their retention"),
                        Err(e) => tracing::warn!(error = %e, "pruning old logs and stats failed; will retry"),
                    }
                    if let Err(e) = alerts::prune_history(&conn, crate::time::now_ms()) {
                        tracing::warn!(error = %e, "pruning the alert history failed; will retry");
                    }
                    match response_cache::prune_expired(&conn, crate::time::now_ms()) {
                        Ok(0) => {}
                        Ok(entries) => tracing::info!(entries, "pruned expired cached answers"),
                        Err(e) => tracing::warn!(error = %e, "pruning expired cached answers failed; will retry"),
                    }
                }
                if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                    last_checkpoint = Instant::now();
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::debug!(error = %e, "WAL checkpoint skipped");
                    }
                }
            }
        })
        .map_err(|e| StoreError::backend_caused("embedded store: cannot start the background writer", e))?;
    Ok(Background { writer, stop, thread: Some(thread), _dir_lock: dir_lock })
}

/// Takes the data dir's lock, or says which dir is in use.
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_error("create the lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::backend(format!(
            "embedded store: the data dir {} is in use by another Maestro process; stop it or use another --data dir",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(io_error("lock", &path, e)),
    }
}

/// What the main lock guards.
struct Db {
    conn: Connection,
}

impl EmbeddedStore {
    /// Opens (creating if needed) `<dir>/maestro.db` in WAL mode and brings its schema up to date.
    /// The file holds provider secrets, so it is created readable by its owner only (0600), and
    /// an existing file with looser permissions is tightened. Fails if another store (process)
    /// has the dir open.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        create_dir(dir)?;
        let dir_lock = lock_dir(dir)?;
        let path = dir.join(DB_FILE);
        create_private_file(&path)?;
        let conn = Connection::open(&path).map_err(backend("open the database file"))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(backend("set busy_timeout"))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(backend("switch to WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some file systems (network mounts) cannot do WAL; SQLite keeps working without it.
            tracing::warn!(path = %path.display(), journal_mode = %mode, "embedded store is not in WAL mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(backend("set synchronous=NORMAL"))?;
        // SQLite gives -wal and -shm the db file's mode; this catches files left by older runs.
        restrict_to_owner(&path)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(backend("hand checkpoints to their thread"))?;
        let mut store = Self::init(conn, Some(path.clone()))?;
        // This process owns the dir: no call is in flight, so no credit hold is still needed.
        let released = store.with_db(|db| credits::release_all_holds(&db.conn))?;
        if released > 0 {
            tracing::warn!(accounts = released, "released the credit holds of calls a previous process left unsettled");
        }
        store.background = Some(spawn_background(&path, store.windows.clone(), dir_lock)?);
        Ok(store)
    }

    /// A private in-memory database, for unit tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(backend("open an in-memory database"))?;
        Self::init(conn, None)
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Saves the rate-limit windows now (the background writer does so every 50 ms and at close).
    pub fn flush(&self) -> Result<(), StoreError> {
        match &self.background {
            Some(background) => {
                let mut conn = background.writer.lock().unwrap_or_else(PoisonError::into_inner);
                counters::flush(&self.windows, &mut conn)
            }
            None => Ok(()),
        }
    }

    fn init(mut conn: Connection, path: Option<PathBuf>) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON").map_err(backend("enable foreign keys"))?;
        // Hot-path tuning: temp data in memory, a page cache that holds the hot stats rows.
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(backend("set temp_store"))?;
        conn.pragma_update(None, "cache_size", -16_000).map_err(backend("set cache_size"))?;
        schema::migrate(&mut conn)?;
        let windows = counters::Windows::load(&conn).map_err(backend("load the rate-limit windows"))?;
        Ok(Self {
            db: Arc::new(Mutex::new(Db { conn })),
            path,
            windows: Arc::new(Mutex::new(windows)),
            secret_cache: Mutex::new(HashMap::new()),
            background: None,
        })
    }

    /// Runs `f` with the connection locked. `f` is synchronous, so the lock can never be held
    /// across an `.await`.
    fn with_db<T>(&self, f: impl FnOnce(&mut Db) -> Result<T, StoreError>) -> Result<T, StoreError> {
        lock_db(&self.db).and_then(|mut db| f(&mut db))
    }

    /// Runs `f` with the rate-limit windows locked (a few hash lookups; never held across I/O).
    fn with_windows<T>(&self, f: impl FnOnce(&mut counters::Windows) -> T) -> Result<T, StoreError> {
        let mut windows = self.windows.lock().map_err(|_| {
            StoreError::backend("embedded store: the windows lock is poisoned (an earlier operation panicked)")
        })?;
        Ok(f(&mut windows))
    }
}

fn lock_db(db: &Mutex<Db>) -> Result<MutexGuard<'_, Db>, StoreError> {
    db.lock().map_err(|_| {
        StoreError::backend("embedded store: the connection lock is poisoned (an earlier operation panicked)")
    })
}

impl Db {
    /// Runs one statement through the statement cache; returns how many rows it changed.
    fn execute(&self, sql: &str, params: impl Params) -> rusqlite::Result<usize> {
        self.conn.prepare_cached(sql)?.execute(params)
    }
}

/// `NotFound` when a write by primary key changed no row.
fn found_or(changed: usize, what: impl FnOnce() -> String) -> Result<(), StoreError> {
    if changed == 0 {
        return Err(StoreError::NotFound(what()));
    }
    Ok(())
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Maps a SQLite failure to a backend error that says what was being done. SQL text and bound
/// values never appear in rusqlite's messages, so no secret can leak through here.
fn backend(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::backend_caused(format!("embedded store: cannot {what}"), e)
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::backend_caused(format!("embedded store: cannot {what} {}", path.display()), e)
}

/// Whether a write failed because a referenced row (a key's or model's provider) is missing.
fn is_missing_reference(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

/// A stored value this build does not understand (an unknown enum name, broken JSON).
#[derive(Debug, thiserror::Error)]
#[error("unexpected value in column `{column}`: {detail}")]
struct BadColumn {
    column: &'static str,
    detail: String,
}

fn bad_column(idx: usize, column: &'static str, detail: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(BadColumn { column, detail }))
}

/// Reads a text column through `parse` (an enum's `parse`).
fn parsed<T>(
    row: &Row<'_>,
    idx: usize,
    column: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    parse(&text).ok_or_else(|| bad_column(idx, column, text))
}

/// Reads a JSON text column.
fn json_column<T: DeserializeOwned>(row: &Row<'_>, idx: usize, column: &'static str) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| bad_column(idx, column, e.to_string()))
}

/// Writes a value as JSON text for a column.
fn to_json<T: Serialize>(value: &T, column: &'static str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::backend_caused(format!("embedded store: cannot encode `{column}`"), e))
}

#[cfg(unix)]
fn create_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    // A new data dir is private too; an existing one is the user's to set.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error("create the data dir", dir, e))
}

#[cfg(not(unix))]
fn create_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| io_error("create the data dir", dir, e))
}

/// Creates the (empty) db file with mode 0600 before SQLite does, so it is never readable by
/// others, not even for a moment. SQLite treats an empty file as an empty database.
#[cfg(unix)]
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| io_error("create", path, e))
}

#[cfg(not(unix))]
fn create_private_file(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Sets 0600 on the db file and its `-wal` / `-shm` companions (the WAL holds secrets too).
#[cfg(unix)]
fn restrict_to_owner(db_path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db_path.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io_error("restrict the permissions of", &path, e))?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_to_owner(_db_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_version(store: &EmbeddedStore) -> i64 {
        store
            .with_db(|db| db.conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(backend("read")))
            .expect("user_version")
    }

    #[test]
    fn a_new_database_gets_the_current_schema_version_and_reopening_keeps_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path()).expect("open");
        assert_eq!(user_version(&store), schema::VERSION as i64);
        assert_eq!(store.path(), Some(dir.path().join(DB_FILE).as_path()));
        drop(store);
        let again = EmbeddedStore::open(dir.path()).expect("reopen");
        assert_eq!(user_version(&again), schema::VERSION as i64);
    }

    #[test]
    fn upgrading_a_version_7_database_drops_the_former_summaries_table() {
        let summaries_tables = |store: &EmbeddedStore| -> i64 {
            store
                .with_db(|db| {
                    db.conn
                        .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'usage_summaries'", [], |r| {
                            r.get(0)
                        })
                        .map_err(backend("read"))
                })
                .expect("sqlite_master")
        };
        // A file as version 7 wrote it: summaries and all.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut old = Connection::open(dir.path().join(DB_FILE)).expect("open");
        schema::migrate_to(&mut old, 7).expect("version 7");
        old.execute_batch("INSERT INTO usage_summaries (date, provider, requests) VALUES ('2026-11-26', 'ALL', 3);")
            .expect("a summary");
        drop(old);
        let again = EmbeddedStore::open(dir.path()).expect("reopen");
        assert_eq!(user_version(&again), schema::VERSION as i64);
        assert_eq!(summaries_tables(&again), 0);
    }

    /// A version 9 file (12 latency buckets `h0`…`h11`, no route in the stats key, no
    /// `route_rule` in the logs), written as that version did, then opened by this one.
    #[tokio::test]
    async fn upgrading_a_version_9_database_keeps_every_latency_count_under_its_bound() {
        use crate::logs::LogEvent;
        use crate::stats::{Counters, StatsQuery, histogram_from_legacy};
        use crate::store::{LogQuery, StatsStore};

        let dir = tempfile::tempdir().expect("tempdir");
        let mut old = Connection::open(dir.path().join(DB_FILE)).expect("open");
        schema::migrate_to(&mut old, 9).expect("version 9");
        old.execute_batch(
            "INSERT INTO usage_stats (date, provider, model, key_id, requests, successes, errors, prompt_tokens,
                 completion_tokens, cached_tokens, cost_micros, latency_ms_sum, h0, h1, h2, h3, h4, h5, h6, h7, h8,
                 h9, h10, h11, cache_write_tokens, attempts, attempt_errors)
             VALUES ('2026-11-18', 'openai', 'gpt-4o-mini', 'key-1', 78, 70, 8, 9000, 3000, 100, 45000, 1234567,
                 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 5, 80, 2),
                    ('2026-11-18', 'openai', 'gpt-4o-mini', '-', 3, 0, 3, 0, 0, 0, 0, 90, 3, 0, 0, 0, 0, 0, 0, 0, 0,
                 0, 0, 0, 0, 0, 0);
             INSERT INTO api_logs (request_id, v, ts_ms, hour, user_id, provider, model, key_id, route, request_type,
                 stream, status, http_status, prompt_tokens, completion_tokens, cached_tokens, cost_micros,
                 latency_ms, attempts)
             VALUES ('req-old', 1, 1795000000000, '2026-11-18T10', 'user-1', 'openai', 'gpt-4o-mini', 'key-1',
                 'smart', 'chat', 0, 'success', 200, 1, 1, 0, 1, 420, 1);",
        )
        .expect("version 9 rows");
        drop(old);

        let store = EmbeddedStore::open(dir.path()).expect("upgrade");
        assert_eq!(user_version(&store), schema::VERSION as i64);
        let day = StatsQuery { from_date: "2026-11-18".into(), to_date: "2026-11-18".into(), ..StatsQuery::default() };
        let rows = store.stats_rows(&day).await.expect("rows");
        let keys: Vec<(&str, Option<&str>)> = rows.iter().map(|r| (r.key_id.as_str(), r.route.as_deref())).collect();
        assert_eq!(keys, [("-", None), ("key-1", None)]);
        let mut hist = [0; crate::stats::LATENCY_BUCKETS_MS.len()];
        for (bucket, count) in [10, 12, 13, 15, 17, 19, 21, 23, 24, 25, 26, 29].into_iter().zip(1..=12) {
            hist[bucket] = count;
        }
        assert_eq!(hist, histogram_from_legacy(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
        let expected = Counters {
            requests: 78,
            successes: 70,
            errors: 8,
            prompt_tokens: 9_000,
            completion_tokens: 3_000,
            cached_tokens: 100,
            cost_micros: 45_000,
            latency_ms_sum: 1_234_567,
            latency_hist: hist,
            cache_write_tokens: 5,
            attempts: 80,
            attempt_errors: 2,
            cache_hits: 0,
            saved_micros: 0,
        };
        assert_eq!(rows[1].counters, expected);
        // The percentiles the version 9 buckets gave: ranks 1, 39, 75 and 78 of 78.
        let c = &rows[1].counters;
        let percentiles = [1, 50, 95, 99].map(|p| c.latency_percentile(p));
        assert_eq!(percentiles, [Some(100), Some(30_000), Some(u64::MAX), Some(u64::MAX)]);
        assert_eq!(rows[0].counters.latency_hist[10], 3);
        assert_eq!(rows[0].counters.latency_hist.iter().sum::<u64>(), 3);

        // The old log reads back (no rule recorded then); new calls add to the migrated row, in
        // their fine buckets.
        let logged = store.logs(&LogQuery::default()).await.expect("logs");
        assert_eq!(
            (logged.len(), logged[0].route.as_deref(), logged[0].route_rule.as_deref()),
            (1, Some("smart"), None)
        );
        let fast = LogEvent { latency_ms: 3, ..LogEvent::sample("req-new", 1_795_000_100_000) };
        assert!(store.record_event(&fast).await.expect("record"));
        let rows = store.stats_rows(&day).await.expect("rows");
        let c = &rows[1].counters;
        assert_eq!((c.requests, c.latency_hist[2], c.latency_hist[10]), (79, 1, 1));
        assert_eq!(c.latency_percentile(1), Some(3));
    }

    /// A file from before the attempt log (the version before `ATTEMPT_LOG`): its logs read back
    /// without one, and new calls keep theirs.
    #[tokio::test]
    async fn upgrading_to_the_attempt_log_keeps_older_logs_and_stores_new_ones_whole() {
        use crate::logs::{ATTEMPT_NO_KEY, Attempt, LogEvent, SkippedKey};
        use crate::store::{LogQuery, StatsStore};

        let dir = tempfile::tempdir().expect("tempdir");
        let mut old = Connection::open(dir.path().join(DB_FILE)).expect("open");
        schema::migrate_to(&mut old, schema::VERSION - 1).expect("the version before");
        old.execute_batch(
            r#"INSERT INTO api_logs (request_id, v, ts_ms, hour, user_id, provider, model, key_id, request_type,
                 stream, status, http_status, prompt_tokens, completion_tokens, cached_tokens, cost_micros,
                 latency_ms, attempts, key_attempts)
             VALUES ('req-old', 1, 1795000000000, '2026-11-18T10', 'user-1', 'openai', 'gpt-4o-mini', 'key-1',
                 'chat', 0, 'success', 200, 1, 1, 0, 1, 420, 2,
                 '[{"provider":"openai","model":"gpt-4o-mini","key_id":"key-0","attempts":1,"errors":1}]');"#,
        )
        .expect("an older log");
        drop(old);

        let store = EmbeddedStore::open(dir.path()).expect("upgrade");
        assert_eq!(user_version(&store), schema::VERSION as i64);
        let logged = store.logs(&LogQuery::default()).await.expect("logs");
        assert_eq!((logged.len(), logged[0].key_attempts.len(), logged[0].attempt_log.len()), (1, 1, 0));

        let tried = Attempt {
            provider: "openai".into(),
            model: "gpt-4o-mini".into(),
            key_id: Some("key-0".into()),
            outcome: "upstream_timeout".into(),
            http_status: None,
            message: Some("the provider did not answer in time".into()),
            latency_ms: 2_000,
            skipped: Vec::new(),
        };
        let none = Attempt {
            key_id: None,
            outcome: ATTEMPT_NO_KEY.into(),
            message: None,
            latency_ms: 0,
            skipped: vec![SkippedKey { key_id: "key-1".into(), reason: "tpm_limit".into() }],
            ..tried.clone()
        };
        let new = LogEvent { attempt_log: vec![tried, none], ..LogEvent::sample("req-new", 1_795_000_100_000) };
        assert!(store.record_event(&new).await.expect("record"));
        let logged = store.logs(&LogQuery { request_id: Some("req-new".into()), ..LogQuery::default() }).await;
        assert_eq!(logged.expect("logs"), [new]);
    }

    #[test]
    fn a_database_from_a_newer_maestro_is_refused_not_misread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path()).expect("open");
        store
            .with_db(|db| db.conn.pragma_update(None, "user_version", 99).map_err(backend("write")))
            .expect("bump version");
        drop(store);
        let err = EmbeddedStore::open(dir.path()).expect_err("newer schema");
        assert!(matches!(&err, StoreError::Backend { context, .. } if context.contains("schema version 99")), "{err}");
    }

    #[test]
    fn opening_creates_missing_parent_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("a").join("b");
        EmbeddedStore::open(&nested).expect("open");
        assert!(nested.join(DB_FILE).is_file());
    }
}
