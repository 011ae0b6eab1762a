//! The store conformance suite (see `conformance/`) against the embedded SQLite store, each test
//! on a fresh file-backed store in its own temp dir, plus what only the embedded store promises:
//! a private db file, data that survives a reopen, and one process per data dir.

use crate::conformance;

use std::sync::Arc;

use maestro_shared::domain::{KeyLimits, KeyStatus};
use maestro_shared::secret::SecretString;
use maestro_shared::stats::StatsQuery;
use maestro_shared::store::embedded::{DB_FILE, EmbeddedStore};
use maestro_shared::store::{CatalogStore, CounterStore, LogQuery, Reservation, SecretStore, StatsStore, WindowUsage};
use tempfile::TempDir;
use tokio::sync::Barrier;

use conformance::{at, event};

#[allow(clippy::expect_used, reason = "test setup: failing to open is a failed test")]
async fn fresh_store() -> (TempDir, Arc<EmbeddedStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open the embedded store");
    (dir, Arc::new(store))
}

conformance_suite!(crate::store_conformance::fresh_store);

#[cfg(unix)]
#[tokio::test]
async fn given_a_new_data_dir_when_the_store_opens_and_writes_then_its_db_files_are_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt;

    let (dir, store) = fresh_store().await;
    store.put_secret("ref", &SecretString::new("sk-private-0123456789")).await.expect("put");
    for name in [DB_FILE.to_string(), format!("{DB_FILE}-wal"), format!("{DB_FILE}-shm")] {
        let path = dir.path().join(&name);
        if name == DB_FILE || path.exists() {
            let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name} has mode {mode:o}");
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn given_a_db_file_with_loose_permissions_when_reopened_then_they_are_tightened() {
    use std::os::unix::fs::PermissionsExt;

    let (dir, store) = fresh_store().await;
    drop(store);
    let path = dir.path().join(DB_FILE);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let _store = EmbeddedStore::open(dir.path()).expect("reopen");
    let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn given_data_in_every_table_when_the_store_is_reopened_from_the_same_dir_then_it_is_all_still_there() {
    let (dir, store) = fresh_store().await;
    let t = at("2026-11-26T06:14:10Z");
    let limits = KeyLimits { rpm: Some(2), tpm: None, rpd: None };
    let provider = maestro_shared::domain::Provider {
        code: "openai".into(),
        kind: maestro_shared::domain::ProviderKind::Openai,
        name: "OpenAI".into(),
        base_url: "https://api.openai.com/v1".into(),
        headers: Default::default(),
        is_active: true,
        sort_order: 1,
    };
    store.upsert_provider(&provider).await.expect("provider");
    store.put_secret("ref", &SecretString::new("sk-survives-0123456789")).await.expect("secret");
    assert!(matches!(store.reserve("key-1", &limits, t, 7).await.expect("reserve"), Reservation::Granted(_)));
    assert!(store.record_event(&event("req-1", t)).await.expect("record"));
    let before = store.load_catalog().await.expect("catalog");
    drop(store);

    let store = EmbeddedStore::open(dir.path()).expect("reopen");
    assert_eq!(store.load_catalog().await.expect("catalog"), before);
    assert_eq!(store.get_secret("ref").await.expect("secret").expose(), "sk-survives-0123456789");
    // rpm only: the minute counts the request; the day, without a limit, nothing.
    assert_eq!(
        store.usage("key-1", t).await.expect("usage"),
        (WindowUsage { requests: 1, tokens: 0 }, WindowUsage::default())
    );
    assert!(!store.record_event(&event("req-1", t)).await.expect("record again"), "the request id is remembered");
    assert_eq!(store.logs(&LogQuery::default()).await.expect("logs").len(), 1);
    let day = StatsQuery { from_date: "2026-11-26".into(), to_date: "2026-11-26".into(), ..StatsQuery::default() };
    assert_eq!(store.stats_rows(&day).await.expect("stats")[0].counters.requests, 1);
}

/// One process owns a data dir (the windows live in its memory): a second store on the same dir
/// is refused while the first is open, and opens once it is closed, with the windows saved.
#[tokio::test]
async fn given_an_open_store_when_a_second_opens_the_same_dir_then_it_is_refused_until_the_first_closes() {
    let (dir, first) = fresh_store().await;
    let now = at("2026-11-26T06:14:10Z");
    let limits = KeyLimits { rpm: Some(2), tpm: None, rpd: None };
    for _ in 0..2 {
        assert!(matches!(first.reserve("key-1", &limits, now, 3).await.expect("reserve"), Reservation::Granted(_)));
    }
    let err = EmbeddedStore::open(dir.path()).expect_err("the dir is in use");
    assert!(err.to_string().contains("in use by another Maestro process"), "{err}");
    drop(first);
    let second = EmbeddedStore::open(dir.path()).expect("open after the first closed");
    // rpm only: the minute counts requests; the day, without a limit, nothing.
    let two = WindowUsage { requests: 2, tokens: 0 };
    assert_eq!(second.usage("key-1", now).await.expect("usage"), (two, WindowUsage::default()));
    assert!(matches!(second.reserve("key-1", &limits, now, 1).await.expect("reserve"), Reservation::Refused { .. }));
}

/// The background writer saves the windows while the store stays open (a crash loses at most
/// the last 50 ms): the table catches up without a close.
#[tokio::test]
async fn given_reservations_when_the_background_writer_runs_then_the_table_holds_them_without_a_close() {
    let (dir, store) = fresh_store().await;
    let now = at("2026-11-26T06:14:10Z");
    let limits = KeyLimits { rpm: None, tpm: Some(1_000), rpd: None };
    for _ in 0..3 {
        store.reserve("key-1", &limits, now, 4).await.expect("reserve");
    }
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).expect("reader");
    let read = || -> (u64, u64) {
        conn.query_row("SELECT requests, tokens FROM usage_windows WHERE window LIKE 'M#%'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap_or((0, 0))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while read() != (3, 12) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(read(), (3, 12));
}

/// Many tasks at once on one store: the windows' lock keeps the limit exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_200_concurrent_reservations_on_a_file_backed_store_then_exactly_rpm_are_granted() {
    let (_dir, store) = fresh_store().await;
    let now = at("2026-11-26T06:14:10Z");
    let limits = KeyLimits { rpm: Some(50), tpm: None, rpd: None };
    let start = Arc::new(Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let store = store.clone();
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                store.reserve("key-shared", &limits, now, 1).await
            })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        if let Reservation::Granted(_) = task.await.expect("task").expect("reserve") {
            granted += 1;
        }
    }
    assert_eq!(granted, 50);
    let fifty = WindowUsage { requests: 50, tokens: 0 };
    assert_eq!(store.usage("key-shared", now).await.expect("usage"), (fifty, WindowUsage::default()));
}

#[tokio::test]
async fn given_no_such_provider_when_a_key_is_upserted_then_it_is_not_found() {
    let (_dir, store) = fresh_store().await;
    let key = maestro_shared::domain::ApiKey {
        id: "key-1".into(),
        provider: "ghost".into(),
        name: "k".into(),
        secret_ref: "ref".into(),
        masked: "…".into(),
        priority: 0,
        is_active: true,
        status: KeyStatus::Normal,
        cooldown_until: None,
        limits: KeyLimits::default(),
    };
    let result = store.upsert_key(&key).await;
    assert!(
        matches!(&result, Err(maestro_shared::store::StoreError::NotFound(m)) if m.contains("ghost")),
        "{result:?}"
    );
}
