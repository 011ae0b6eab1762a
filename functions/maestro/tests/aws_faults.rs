//! The local runner on the AWS backend (`serve --backend aws`: DynamoDB, SQS, Secrets Manager on
//! moto server) with DynamoDB behind a proxy that refuses 30% of the writes the way a busy
//! DynamoDB does (see `shared/tests/support/fault_proxy.rs`): start-up gets through, no caller
//! gets a 5xx while a key has room, the rate-limit counts are exact, and every call is logged
//! exactly once once the queue consumer (the aggregator) has run.
//!
//! Needs `MAESTRO_TEST_AWS_ENDPOINT` (see `maestro_shared::aws::emulator::test_endpoint`):
//! without it (and `CI` not `true`) the test prints `SKIPPED: moto not running` and returns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use crate::support;

use crate::fault_proxy;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use fault_proxy::FaultProxy;
use maestro::{Options, build_aws, consume_once};
use maestro_shared::aws::{AwsBackend, AwsConfig, SinkMode, emulator, provision};
use maestro_shared::config::{Env, FileConfig};
use maestro_shared::stats::{StatsQuery, total};
use maestro_shared::store::{CounterStore, LogQuery, StatsStore};
use support::{FakeProvider, hello};

const CALLERS: usize = 200;
const KEY_A: &str = "sk-ok-aaaaaaaaaaaa";
const KEY_B: &str = "sk-ok-bbbbbbbbbbbb";

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Deletes the test's table at the end (moto keeps everything in memory).
struct Cleanup(AwsBackend);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current()
            && runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| {
                let _ = runtime.block_on(provision::delete_table(&self.0.dynamodb, &self.0.config.table));
            });
        }
    }
}

/// The runner on `aws` with the config `toml`, serving on a random port: the app (its data dir
/// kept as long as the guard), and its chat completions URL.
async fn serve_on_aws(aws: &AwsBackend, toml: &str) -> (maestro::AwsApp, String, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let options = Options {
        data_dir: data.path().to_path_buf(),
        config: FileConfig::parse(toml).unwrap(),
        env: Env::from_fn(|_| None),
        demo: false,
    };
    let app = build_aws(options, aws.clone()).await.expect("start-up gets through the throttled writes");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/chat/completions", listener.local_addr().unwrap());
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (app, url, data)
}

/// A fresh table and log queues on moto (as `maestro init-aws` makes them): `direct` reaches
/// them as they are, `aws` through `proxy`, which injects faults when told to.
struct Moto {
    direct: AwsBackend,
    aws: AwsBackend,
    proxy: FaultProxy,
    _cleanup: Cleanup,
}

async fn through_a_fault_proxy(endpoint: &str, prefix: &str) -> Moto {
    let config = AwsConfig {
        table: unique(prefix),
        log_queue_url: "set below".into(),
        secret_prefix: format!("{}/", unique(prefix)),
    };
    let mut direct =
        AwsBackend::connect(&emulator::sdk_config(endpoint).await, config.clone(), SinkMode::Inline).await.unwrap();
    let provisioned =
        provision::provision(&direct.dynamodb, &direct.sqs, &config.table, &unique("maestro-logs")).await.unwrap();
    direct.config.log_queue_url = provisioned.log_queue_url.clone();
    let proxy = FaultProxy::start(endpoint).await;
    let aws = AwsBackend::connect(
        &emulator::sdk_config(&proxy.url).await,
        AwsConfig { log_queue_url: provisioned.log_queue_url, ..config },
        SinkMode::Batched,
    )
    .await
    .unwrap();
    Moto { _cleanup: Cleanup(direct.clone()), direct, aws, proxy }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_30_percent_throttled_dynamodb_writes_no_caller_gets_a_5xx_counts_are_exact_and_every_call_is_logged_once()
 {
    let Some(endpoint) = emulator::test_endpoint("aws_faults (maestro)").unwrap_or_else(|m| panic!("{m}")) else {
        return;
    };
    let Moto { direct, aws, proxy, _cleanup } = through_a_fault_proxy(&endpoint, "maestro-faults").await;
    // 30% of the runner's DynamoDB writes are refused, and the first 12 all are (longer than the
    // store's own 8 attempts).
    proxy.fail_share(0.3);
    proxy.fail_next(12);

    let fake = FakeProvider::start().await;
    // Short waits between retries, but no provider time-out: 200 callers, moto and the proxy
    // share two cores here, and only DynamoDB faults are under test.
    let toml = format!(
        r#"
[retry]
max_retries = 2
base_delay_ms = 1
max_delay_ms = 5
attempt_timeout_ms = 60000
deadline_ms = 120000

[[providers]]
code = "fake"
kind = "openai_compatible"
base_url = "{}"

[[models]]
provider = "fake"
model = "m1"
input_price = 2500000
output_price = 10000000

[[keys]]
provider = "fake"
name = "a"
secret = "{KEY_A}"
priority = 2
rpd = 40

[[keys]]
provider = "fake"
name = "b"
secret = "{KEY_B}"
priority = 1
rpm = 10000
"#,
        fake.url
    );
    let started = Instant::now();
    let (app, url, _data) = serve_on_aws(&aws, &toml).await;
    assert!(started.elapsed() < Duration::from_secs(30), "start-up took {:?}", started.elapsed());
    assert!(proxy.faults_total() >= 12, "{:?}", proxy.faults());

    let token = app.auth.issue("user-1", false, Duration::from_secs(600)).unwrap();
    let http = reqwest::Client::new();

    // 200 callers at once; key a has room for 40 today, key b for the rest.
    let faults_before = proxy.faults_total();
    let now = maestro_shared::time::now_ms();
    let calls: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            tokio::spawn(async move {
                let r = http.post(url).bearer_auth(token).json(&hello("fake/m1")).send().await.unwrap();
                let status = r.status().as_u16();
                let request_id =
                    r.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                (status, request_id, r.text().await.unwrap_or_default())
            })
        })
        .collect();
    let mut statuses = BTreeMap::<u16, usize>::new();
    let mut request_ids = HashSet::new();
    for call in calls {
        let (status, request_id, body) = call.await.unwrap();
        assert!(status < 500, "a caller got {status} while key b had room: {body}");
        *statuses.entry(status).or_default() += 1;
        request_ids.insert(request_id);
    }
    assert_eq!(statuses, BTreeMap::from([(200, CALLERS)]));
    assert_eq!(request_ids.len(), CALLERS);
    let faults_during_calls = proxy.faults_total() - faults_before;
    assert!(faults_during_calls >= 30, "faults were injected during the calls: {:?}", proxy.faults());

    // Exact counts: key a full at exactly its limit, never over; nothing lost, nothing twice.
    assert_eq!((fake.calls(KEY_A), fake.calls(KEY_B)), (40, 160));
    // Key a's rpd is counted in its day window; key b (rpm only, sharded) has no day window.
    let (_, a_day) = direct.dynamo.usage("fake-a", now).await.unwrap();
    let (_, b_day) = direct.dynamo.usage("fake-b", now).await.unwrap();
    assert_eq!((a_day.requests, b_day.requests), (40, 0));

    // The log events go through SQS to the consumer, whose writes are throttled too.
    aws.log_sink.flush().await;
    assert_eq!(aws.log_sink.undelivered(), 0);
    let consumer = aws.log_queue_consumer();
    let deadline = Instant::now() + Duration::from_secs(90);
    let everything = LogQuery { limit: 1_000, ..LogQuery::default() };
    loop {
        consume_once(&consumer, aws.dynamo.as_ref(), 1).await.unwrap();
        let logged = direct.dynamo.logs(&everything).await.unwrap().len();
        if logged >= CALLERS {
            break;
        }
        assert!(Instant::now() < deadline, "only {logged} of {CALLERS} calls were logged");
    }
    let logs = direct.dynamo.logs(&everything).await.unwrap();
    let logged: HashSet<String> = logs.iter().map(|l| l.request_id.clone()).collect();
    assert_eq!(logs.len(), CALLERS, "each call logged once");
    assert_eq!(logged, request_ids);
    let today = maestro_shared::time::stats_date(now);
    let day = StatsQuery { from_date: today.clone(), to_date: today, ..StatsQuery::default() };
    let counted = total(&direct.dynamo.stats_rows(&day).await.unwrap());
    assert_eq!((counted.requests, counted.successes), (CALLERS as u64, CALLERS as u64));
    assert_eq!(counted.cost_micros, 148 * CALLERS as u64, "19 + 10 tokens at gpt-4o prices, once per call");
}

/// Credits on DynamoDB through 30 % throttled writes: 200 callers of one user whose balance holds
/// 20 calls; the fake answers after 1 s, so every hold comes before any settle. Exactly 20 are
/// served, the rest get 402, nobody a 5xx, and the balance ends exactly at 20 × (hold − charge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_on_dynamodb_through_throttled_writes_serve_exactly_what_the_balance_holds() {
    use maestro_shared::store::{CreditStore, TopUp};
    let Some(endpoint) = emulator::test_endpoint("aws_faults credits (maestro)").unwrap_or_else(|m| panic!("{m}"))
    else {
        return;
    };
    let Moto { direct, aws, proxy, _cleanup } = through_a_fault_proxy(&endpoint, "maestro-credits").await;
    let fake = FakeProvider::start().await;
    let toml = format!(
        "[retry]\nmax_retries = 0\nattempt_timeout_ms = 60000\ndeadline_ms = 120000\n[credits]\nenabled = true\n\
         [[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n\
         [[models]]\nprovider = \"fake\"\nmodel = \"m1\"\ninput_price = 1000000\noutput_price = 1000000\n\
         [[keys]]\nprovider = \"fake\"\nname = \"late\"\nsecret = \"sk-late-aaaaaaaaaaaa\"\n",
        fake.url
    );
    let (app, url, _data) = serve_on_aws(&aws, &toml).await;
    let http = reqwest::Client::new();
    let body =
        serde_json::json!({"model": "fake/m1", "max_tokens": 10, "messages": [{"role": "user", "content": "Hello!"}]});

    // What one call holds, as a 402 to a user without credits says it.
    let probe = app.auth.issue("probe", false, Duration::from_secs(600)).unwrap();
    let refused: serde_json::Value =
        http.post(&url).bearer_auth(probe).json(&body).send().await.unwrap().json().await.unwrap();
    let message = refused["error"]["message"].as_str().unwrap().to_string();
    let dollars = message.split("up to $").nth(1).unwrap();
    let digits: String = dollars.chars().filter(char::is_ascii_digit).collect();
    let hold: i64 = digits.parse().unwrap();
    let top_up = TopUp { user_id: "carol", amount_micros: 20 * hold, reason: "test", actor: "t", at_ms: 1 };
    direct.dynamo.top_up(&top_up).await.unwrap();

    proxy.fail_share(0.3);
    let faults_before = proxy.faults_total();
    let token = app.auth.issue("carol", false, Duration::from_secs(600)).unwrap();
    let calls: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (http, url, token, body) = (http.clone(), url.clone(), token.clone(), body.clone());
            tokio::spawn(async move {
                http.post(url).bearer_auth(token).json(&body).send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    let mut statuses = BTreeMap::<u16, usize>::new();
    for call in calls {
        *statuses.entry(call.await.unwrap()).or_default() += 1;
    }
    assert!(proxy.faults_total() > faults_before, "faults were injected: {:?}", proxy.faults());
    assert_eq!(statuses, BTreeMap::from([(200, 20), (402, CALLERS - 20)]));
    assert_eq!(fake.total_calls(), 20);
    let account = direct.dynamo.credit_account("carol").await.unwrap();
    assert_eq!((account.available_micros, account.held_micros), (20 * (hold - 29), 0));
    let charges = direct.dynamo.credit_ledger("carol", None, 1_000).await.unwrap();
    assert_eq!(charges.iter().filter(|e| e.amount_micros == -29).count(), 20);
}

/// The response cache on DynamoDB, with a third of the writes refused: a repeated call is a hit
/// (plain and streamed) once its answer is stored, a store the proxy refuses only costs a later
/// miss, and the aggregated stats count the hits and what they saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_cache_on_dynamodb_serves_hits_and_a_refused_store_only_costs_a_miss() {
    let Some(endpoint) = emulator::test_endpoint("aws_faults cache (maestro)").unwrap_or_else(|m| panic!("{m}")) else {
        return;
    };
    let Moto { direct, aws, proxy, _cleanup } = through_a_fault_proxy(&endpoint, "maestro-cache").await;
    let fake = FakeProvider::start().await;
    let toml = format!(
        "[retry]\nmax_retries = 0\n[[providers]]\ncode = \"fake\"\nkind = \"openai_compatible\"\nbase_url = \"{}\"\n\
         [[models]]\nprovider = \"fake\"\nmodel = \"m1\"\ninput_price = 1000000\noutput_price = 2000000\n\
         cache_ttl_secs = 600\n\
         [[keys]]\nprovider = \"fake\"\nname = \"a\"\nsecret = \"{KEY_A}\"\n",
        fake.url
    );
    let (app, url, _data) = serve_on_aws(&aws, &toml).await;
    let token = app.auth.issue("user-1", false, Duration::from_secs(600)).unwrap();
    let http = reqwest::Client::new();
    let call = |body: serde_json::Value| {
        let request = http.post(&url).bearer_auth(&token).json(&body).send();
        async move {
            let r = request.await.unwrap();
            assert_eq!(r.status(), 200);
            let said = r.headers().get("x-maestro-cache").unwrap().to_str().unwrap().to_string();
            (said, r.text().await.unwrap())
        }
    };

    let (said, first) = call(hello("fake/m1")).await;
    assert_eq!(said, "miss");
    let (said, again) = call(hello("fake/m1")).await;
    assert_eq!((said.as_str(), again), ("hit", first));
    let mut streamed = hello("fake/m1");
    streamed["stream"] = serde_json::json!(true);
    let (said, frames) = call(streamed).await;
    assert_eq!(said, "hit");
    assert!(frames.contains("chat.completion.chunk") && frames.trim_end().ends_with("data: [DONE]"), "{frames}");
    assert_eq!(fake.calls(KEY_A), 1);

    // Every cache write refused (and retried, and refused): the callers never notice.
    proxy.only_containing(Some("CACHE#"));
    proxy.fail_share(1.0);
    let other = serde_json::json!({"model": "fake/m1", "messages": [{"role": "user", "content": "Another"}]});
    for _ in 0..2 {
        assert_eq!(call(other.clone()).await.0, "miss", "nothing could be stored");
    }
    assert_eq!(fake.calls(KEY_A), 3);
    proxy.fail_share(0.0);

    aws.log_sink.flush().await;
    let consumer = aws.log_queue_consumer();
    let everything = LogQuery { limit: 100, ..LogQuery::default() };
    let deadline = Instant::now() + Duration::from_secs(60);
    while direct.dynamo.logs(&everything).await.unwrap().len() < 5 {
        consume_once(&consumer, aws.dynamo.as_ref(), 1).await.unwrap();
        assert!(Instant::now() < deadline, "the calls were not all logged");
    }
    let today = maestro_shared::time::stats_date(maestro_shared::time::now_ms());
    let day = StatsQuery { from_date: today.clone(), to_date: today, ..StatsQuery::default() };
    let counted = total(&direct.dynamo.stats_rows(&day).await.unwrap());
    let cost = 19 + 2 * 10;
    assert_eq!(
        (counted.requests, counted.cache_hits, counted.saved_micros, counted.cost_micros),
        (5, 2, 2 * cost, 3 * cost)
    );
}
