//! `kill -9` under load: every call the client saw answered is in the call log and the daily
//! stats after a restart. The release of a call's answer waits until its event is in SQLite's
//! WAL (see `maestro_shared::logs::queue`), which a process crash cannot take back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maestro_shared::stats::StatsQuery;
use maestro_shared::store::embedded::EmbeddedStore;
use maestro_shared::store::{LogQuery, StatsStore};
use serde_json::json;
use support::FakeProvider;

use crate::support;

const JWT_SECRET: &str = "crash-test-secret-0123456789abcdef0123456789";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `maestro serve` on `port` over `data`, once `/health` answers.
async fn serve(data: &Path, port: u16, upstream: &str) -> Child {
    // A provider (the test's fake) with one key without limits: every call is a 200.
    let config = data.join("load.toml");
    let toml = format!(
        "[[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{upstream}\"\n\
         [[models]]\nprovider = \"fake\"\nmodel = \"m1\"\ninput_price = 1000000\noutput_price = 1000000\n\
         [[keys]]\nprovider = \"fake\"\nname = \"load\"\nsecret = \"sk-ok-loadloadload\"\n"
    );
    std::fs::write(&config, toml).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--config"])
        .arg(&config)
        .arg("--data")
        .arg(data)
        .env("MAESTRO_JWT_SECRET", JWT_SECRET)
        .env("MAESTRO_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("http://127.0.0.1:{port}/health")).await.is_err() {
        assert!(Instant::now() < deadline, "maestro serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

fn token(data: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(["token", "--sub", "crash-test", "--data"])
        .arg(data)
        .env("MAESTRO_JWT_SECRET", JWT_SECRET)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Every logged request id, newest first, page by page.
async fn logged_ids(store: &EmbeddedStore) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut before = None;
    loop {
        let page = store.logs(&LogQuery { limit: 1000, before: before.clone(), ..LogQuery::default() }).await.unwrap();
        let Some(last) = page.last() else { return ids };
        before = Some((last.ts_ms, last.request_id.clone()));
        ids.extend(page.into_iter().map(|e| e.request_id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_answered_before_a_kill_9_are_all_in_the_log_and_the_stats_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let fake = FakeProvider::start().await;
    let mut server = serve(data.path(), port, &fake.url).await;
    let token = token(data.path());
    let answered = Arc::new(Mutex::new(Vec::<(String, bool)>::new()));

    // 32 callers in a loop, streamed and plain; a call counts as answered once its whole body
    // arrived with a 200.
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let mut callers = Vec::new();
    for worker in 0..32 {
        let (url, token, answered) = (url.clone(), token.clone(), answered.clone());
        callers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0u64.. {
                let body = json!({"model": "fake/m1", "stream": (worker + i) % 3 == 0,
                    "messages": [{"role": "user", "content": format!("call {worker}-{i}")}]});
                let Ok(r) = http.post(&url).bearer_auth(&token).json(&body).send().await else { return };
                let ok = r.status() == 200;

                let id = r.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
                if r.bytes().await.is_ok() {
                    answered.lock().unwrap().push((id.expect("x-request-id"), ok));
                }
            }
        }));
    }
    // Killed mid-load, once a few hundred calls are through (however fast this machine is).
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.lock().unwrap().len() < 300 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    for caller in callers {
        caller.await.unwrap();
    }
    let answered: Vec<(String, bool)> = answered.lock().unwrap().clone();
    let served = answered.iter().filter(|(_, ok)| *ok).count();
    assert!(served >= 300, "the load ran: {served} of {} answered 200", answered.len());

    // The runner comes back on the same data dir (the dead process's lock is gone)…
    let mut again = serve(data.path(), free_port(), &fake.url).await;
    again.kill().unwrap();
    again.wait().unwrap();

    // …and every answered call is in the log, and the stats hold exactly the logged calls.
    let store = EmbeddedStore::open(data.path()).unwrap();
    let logged = logged_ids(&store).await;
    let missing: Vec<&String> = answered.iter().map(|(id, _)| id).filter(|id| !logged.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered calls missing from the log: {:?}",
        missing.len(),
        answered.len(),
        &missing[..missing.len().min(5)]
    );
    let today = maestro_shared::time::stats_date(maestro_shared::time::now_ms());
    let rows = store
        .stats_rows(&StatsQuery { from_date: today.clone(), to_date: today, ..StatsQuery::default() })
        .await
        .unwrap();
    let counted: u64 = rows.iter().map(|r| r.counters.requests).sum();
    assert_eq!(counted, logged.len() as u64, "daily stats = logged calls");
    eprintln!(
        "kill -9 under load: {} calls answered ({served} 200s), {} logged, 0 missing",
        answered.len(),
        logged.len()
    );
}
