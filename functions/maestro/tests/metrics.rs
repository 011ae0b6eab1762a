//! `GET /metrics` over the local runner: calls of every kind (completions, a stream, a cache miss
//! and hit, an upstream failure, a slow call) against the fake provider, then the exact counters
//! and histogram lines of the scrape, the key state the failure changed, and who may scrape.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{FakeProvider, TestApp, hello, spawn_app};

/// `fake/m1` plain, `fake/m-cached` cached for 10 minutes (1 µUSD per prompt token, 2 per
/// completion token: the fixture's 19 + 10 tokens cost 39, the stream's 33 + 10 cost 53);
/// `bad/m2` has a key the provider refuses (401); `slow/m3` answers after a second.
fn config(url: &str) -> String {
    let mut c =
        String::from("[retry]\nmax_retries = 0\nbase_delay_ms = 1\nmax_delay_ms = 5\nattempt_timeout_ms = 5000\n");
    for (provider, key, models) in [
        ("fake", "sk-ok-metricsmetrics", &[("m1", ""), ("m-cached", "cache_ttl_secs = 600")][..]),
        ("bad", "sk-401-metricsmetrics", &[("m2", "")][..]),
        ("slow", "sk-late-metricsmetric", &[("m3", "")][..]),
    ] {
        c += &format!(
            "\n[[providers]]\ncode = \"{provider}\"\nkind = \"openai_compatible\"\nbase_url = \"{url}\"\n\n\
             [[keys]]\nprovider = \"{provider}\"\nname = \"k\"\nsecret = \"{key}\"\n"
        );
        for (model, extra) in models {
            c += &format!(
                "\n[[models]]\nprovider = \"{provider}\"\nmodel = \"{model}\"\ninput_price = 1000000\noutput_price = 2000000\n{extra}\n"
            );
        }
    }
    c
}

/// `GET /metrics` with this bearer token (or none): status, `Content-Type`, body.
async fn scrape(app: &TestApp, token: Option<&str>) -> (u16, String, String) {
    let mut request = app.http.get(format!("{}/metrics", app.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (status, content_type, response.text().await.unwrap())
}

/// The scrape's samples whose line starts with `prefix`, in order.
fn lines<'t>(text: &'t str, prefix: &str) -> Vec<&'t str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// The value of the one sample `name{labels}`.
fn value(text: &str, series: &str) -> f64 {
    let found: Vec<f64> =
        text.lines().filter_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).collect();
    assert_eq!(found.len(), 1, "one sample `{series}` in:\n{text}");
    found[0]
}

#[tokio::test]
async fn a_scrape_counts_every_call_by_provider_model_and_outcome() {
    let upstream = FakeProvider::start().await;
    let app = spawn_app(&config(&upstream.url), &[]).await;

    let (status, content_type, before) = scrape(&app, Some(&app.admin_token)).await;
    assert_eq!((status, content_type.as_str()), (200, "text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(
        lines(&before, "maestro_key_state{provider=\"bad\""),
        [
            r#"maestro_key_state{provider="bad",key_id="bad-k",state="normal"} 1"#,
            r#"maestro_key_state{provider="bad",key_id="bad-k",state="rate_limited"} 0"#,
            r#"maestro_key_state{provider="bad",key_id="bad-k",state="invalid"} 0"#,
            r#"maestro_key_state{provider="bad",key_id="bad-k",state="error"} 0"#,
        ]
    );
    assert!(lines(&before, "maestro_calls_total").is_empty(), "no call yet:\n{before}");
    // A model caches answers: the cache's families are there before any hit.
    assert!(before.contains("# TYPE maestro_cache_hits_total counter\n"), "{before}");

    for _ in 0..2 {
        assert_eq!(app.chat(hello("fake/m1")).await.status(), 200);
    }
    let mut streamed = hello("fake/m1");
    streamed["stream"] = json!(true);
    let stream = app.chat(streamed).await;
    assert_eq!(stream.status(), 200);
    assert!(stream.text().await.unwrap().trim_end().ends_with("data: [DONE]"));
    for said in ["miss", "hit"] {
        let r = app.chat(hello("fake/m-cached")).await;
        assert_eq!(r.headers()["x-maestro-cache"], said);
    }
    let refused = app.chat(hello("bad/m2")).await;
    assert_eq!(refused.status(), 502);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "upstream_auth_failed");
    assert_eq!(app.chat(hello("slow/m3")).await.status(), 200);

    let (status, _, text) = scrape(&app, Some(&app.admin_token)).await;
    assert_eq!(status, 200);
    assert_eq!(
        lines(&text, "maestro_calls_total{"),
        [
            r#"maestro_calls_total{provider="bad",model="m2",request_type="chat",status="error"} 1"#,
            r#"maestro_calls_total{provider="fake",model="m-cached",request_type="chat",status="success"} 2"#,
            r#"maestro_calls_total{provider="fake",model="m1",request_type="chat",status="success"} 3"#,
            r#"maestro_calls_total{provider="slow",model="m3",request_type="chat",status="success"} 1"#,
        ],
        "{text}"
    );
    assert_eq!(
        lines(&text, "maestro_call_errors_total{"),
        [r#"maestro_call_errors_total{provider="bad",error_code="upstream_auth_failed",http_status="502"} 1"#]
    );
    assert_eq!(
        lines(&text, "maestro_tokens_total{provider=\"fake\""),
        [
            r#"maestro_tokens_total{provider="fake",model="m-cached",kind="prompt"} 19"#,
            r#"maestro_tokens_total{provider="fake",model="m-cached",kind="completion"} 10"#,
            r#"maestro_tokens_total{provider="fake",model="m-cached",kind="cached"} 0"#,
            r#"maestro_tokens_total{provider="fake",model="m-cached",kind="cache_write"} 0"#,
            r#"maestro_tokens_total{provider="fake",model="m1",kind="prompt"} 71"#,
            r#"maestro_tokens_total{provider="fake",model="m1",kind="completion"} 30"#,
            r#"maestro_tokens_total{provider="fake",model="m1",kind="cached"} 0"#,
            r#"maestro_tokens_total{provider="fake",model="m1",kind="cache_write"} 0"#,
        ]
    );
    assert_eq!(
        lines(&text, "maestro_cost_micro_usd_total{"),
        [
            r#"maestro_cost_micro_usd_total{provider="bad",model="m2"} 0"#,
            r#"maestro_cost_micro_usd_total{provider="fake",model="m-cached"} 39"#,
            r#"maestro_cost_micro_usd_total{provider="fake",model="m1"} 131"#,
            r#"maestro_cost_micro_usd_total{provider="slow",model="m3"} 39"#,
        ]
    );
    assert_eq!(
        lines(&text, "maestro_cache_"),
        [
            r#"maestro_cache_hits_total{provider="fake",model="m-cached"} 1"#,
            r#"maestro_cache_misses_total{provider="fake",model="m-cached"} 1"#,
            r#"maestro_cache_saved_micro_usd_total{provider="fake",model="m-cached"} 39"#,
        ]
    );

    // Histograms: one `_bucket` per bound and `+Inf`, cumulative, `_count` = calls.
    let m1 = r#"provider="fake",model="m1""#;
    let buckets = lines(&text, &format!("maestro_call_duration_seconds_bucket{{{m1},"));
    assert_eq!(buckets.len(), 17, "{buckets:?}");
    let counts: Vec<f64> = buckets.iter().map(|l| l.rsplit(' ').next().unwrap().parse().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "cumulative: {counts:?}");
    assert_eq!(value(&text, &format!("maestro_call_duration_seconds_bucket{{{m1},le=\"+Inf\"}}")), 3.0);
    assert_eq!(value(&text, &format!("maestro_call_duration_seconds_count{{{m1}}}")), 3.0);
    assert_eq!(value(&text, &format!("maestro_time_to_first_byte_seconds_count{{{m1}}}")), 1.0, "one stream");
    assert_eq!(lines(&text, "maestro_time_to_first_byte_seconds_count").len(), 1, "only m1 streamed");
    // The slow call took over a second upstream: no bucket below a second holds it.
    let m3 = r#"provider="slow",model="m3""#;
    assert_eq!(value(&text, &format!("maestro_call_duration_seconds_bucket{{{m3},le=\"0.5\"}}")), 0.0);
    assert_eq!(value(&text, &format!("maestro_call_duration_seconds_bucket{{{m3},le=\"+Inf\"}}")), 1.0);
    assert!(value(&text, &format!("maestro_call_duration_seconds_sum{{{m3}}}")) >= 1.0);

    // The provider's 401 marked the key invalid; the scrape reads the catalog as it is now.
    assert_eq!(app.key_status("bad-k").await, "invalid");
    assert_eq!(
        lines(&text, "maestro_key_state{provider=\"bad\""),
        [
            r#"maestro_key_state{provider="bad",key_id="bad-k",state="normal"} 0"#,
            r#"maestro_key_state{provider="bad",key_id="bad-k",state="rate_limited"} 0"#,
            r#"maestro_key_state{provider="bad",key_id="bad-k",state="invalid"} 1"#,
            r#"maestro_key_state{provider="bad",key_id="bad-k",state="error"} 0"#,
        ]
    );
    assert_eq!(value(&text, r#"maestro_key_usable{provider="bad",key_id="bad-k"}"#), 0.0);
    assert_eq!(value(&text, r#"maestro_key_usable{provider="fake",key_id="fake-k"}"#), 1.0);
    assert_eq!(value(&text, r#"maestro_build_info{version="0.1.0"}"#), 1.0);
    assert!(value(&text, "maestro_uptime_seconds") > 0.0);
    assert!(!text.contains("metricsmetric"), "no key secret in the scrape");

    // The scrape and the call log agree.
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let usage = app.admin_get("/api/admin/ai-stats/usage?group_by=model").await;
    assert_eq!(usage["total"]["requests"], 7, "{usage}");
    assert_eq!(usage["total"]["cost_micros"], 131 + 39 + 39);
}

#[tokio::test]
async fn scraping_needs_an_admin_token_unless_the_metrics_are_public() {
    let upstream = FakeProvider::start().await;
    let app = spawn_app(&config(&upstream.url), &[]).await;
    let (status, _, body) = scrape(&app, None).await;
    assert_eq!(status, 401, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    assert_eq!(scrape(&app, Some(&app.token)).await.0, 403, "a caller token is not an admin token");
    assert_eq!(scrape(&app, Some(&app.admin_token)).await.0, 200);

    let open = spawn_app(&config(&upstream.url), &[("MAESTRO_METRICS_PUBLIC", "1")]).await;
    let (status, _, text) = scrape(&open, None).await;
    assert_eq!(status, 200);
    assert!(text.contains("# TYPE maestro_calls_total counter\n"), "{text}");

    let configured = format!("[server]\nmetrics_public = true\n{}", config(&upstream.url));
    let open = spawn_app(&configured, &[]).await;
    assert_eq!(scrape(&open, None).await.0, 200);
    // The environment wins over the file.
    let closed = spawn_app(&configured, &[("MAESTRO_METRICS_PUBLIC", "0")]).await;
    assert_eq!(scrape(&closed, None).await.0, 401);
}
