//! The stats API over HTTP on the local runner, after a known sequence of calls against a fake
//! provider: the dashboard, usage (grouped, per user), the daily trend and the call log (filters,
//! cursor pages) give exactly the counts, tokens and cost of those calls, and percentiles equal
//! to the histogram buckets of the latencies the logs recorded. Plus 400s, 401s and 403s.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use crate::support;

use std::collections::HashSet;
use std::time::Duration;

use maestro_shared::stats::{LATENCY_BUCKETS_MS, latency_bucket};
use serde_json::{Value, json};
use support::{FAST_RETRY, FakeProvider, TestApp, hello, spawn_app};

/// Provider `fake` (OpenAI format): model `m1` at $1 in / $2 out per 1M tokens, so the
/// fixture's 19 + 10 tokens cost exactly 19 + 20 = 39 micro-USD; its key allows 3 requests a
/// minute and 3 a day. Provider `broken`: model `m2`, one key the upstream refuses (401).
fn config(url: &str) -> String {
    format!(
        r#"{FAST_RETRY}
[[providers]]
code = "fake"
kind = "openai_compatible"
base_url = "{url}"

[[models]]
provider = "fake"
model = "m1"
max_output_tokens = 1000
input_price = 1000000
output_price = 2000000

[[keys]]
provider = "fake"
name = "main"
secret = "sk-ok-main-0123456789"
rpm = 3
rpd = 3

[[providers]]
code = "broken"
kind = "openai_compatible"
base_url = "{url}"

[[models]]
provider = "broken"
model = "m2"
max_output_tokens = 1000
input_price = 1000000
output_price = 2000000

[[keys]]
provider = "broken"
name = "refused"
secret = "sk-401-refused-0123456789"
"#
    )
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = app.http.get(format!("{}{path}", app.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn ok(app: &TestApp, path: &str) -> Value {
    let (status, body) = get(app, path, Some(&app.admin_token)).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The histogram percentile of a set of latencies, as the stats compute it.
fn percentile(latencies: &[u64], pct: u64) -> u64 {
    let mut hist = [0u64; LATENCY_BUCKETS_MS.len()];
    for l in latencies {
        hist[latency_bucket(*l)] += 1;
    }
    let rank = (latencies.len() as u64 * pct).div_ceil(100).max(1);
    let mut seen = 0;
    for (i, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return LATENCY_BUCKETS_MS[i];
        }
    }
    unreachable!()
}

/// Three successful calls to `fake/m1`, one failed call to `broken/m2` (its key refused), as
/// `user-1`; then the figures every endpoint must show.
#[tokio::test]
async fn stats_match_a_known_sequence_of_calls_exactly() {
    let fake = FakeProvider::start().await;
    let app = spawn_app(&config(&fake.url), &[]).await;
    for _ in 0..3 {
        assert_eq!(app.chat(hello("fake/m1")).await.status(), 200);
    }
    assert_eq!(app.chat(hello("broken/m2")).await.status(), 502);
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);

    // The logs: four calls, newest first; their latencies decide the percentiles.
    let logs = ok(&app, "/api/admin/ai-stats/logs").await;
    let data = logs["data"].as_array().unwrap();
    assert_eq!(data.len(), 4);
    assert!(logs["next_cursor"].is_null(), "a page that is not full is the last");
    let latencies: Vec<u64> = data.iter().map(|l| l["latency_ms"].as_u64().unwrap()).collect();
    let ok_latencies: Vec<u64> =
        data.iter().filter(|l| l["status"] == "success").map(|l| l["latency_ms"].as_u64().unwrap()).collect();
    let (p50, p95) = (percentile(&latencies, 50), percentile(&latencies, 95));
    let failed = data.iter().find(|l| l["status"] == "error").unwrap();
    assert_eq!((failed["provider"].as_str(), failed["http_status"].as_u64()), (Some("broken"), Some(502)));

    // Usage today: exact counts, tokens and cost.
    let usage = ok(&app, "/api/admin/ai-stats/usage").await;
    let total = &usage["total"];
    assert_eq!(
        (total["requests"].as_u64(), total["successes"].as_u64(), total["errors"].as_u64()),
        (Some(4), Some(3), Some(1))
    );
    assert_eq!(
        (total["prompt_tokens"].as_u64(), total["completion_tokens"].as_u64(), total["total_tokens"].as_u64()),
        (Some(57), Some(30), Some(87))
    );
    assert_eq!(total["cost_micros"], 117);
    assert_eq!(total["success_rate"], 0.75);
    assert_eq!((total["latency_ms_p50"].as_u64(), total["latency_ms_p95"].as_u64()), (Some(p50), Some(p95)));
    assert_eq!(total["latency_ms_avg"], latencies.iter().sum::<u64>() / 4);
    assert_eq!(usage["source"], "stats");

    let by_provider = ok(&app, "/api/admin/ai-stats/usage?group_by=provider").await;
    let groups: Vec<(String, u64, u64)> = by_provider["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["group"].as_str().unwrap().to_string(),
                g["usage"]["requests"].as_u64().unwrap(),
                g["usage"]["cost_micros"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups, [("broken".to_string(), 1, 0), ("fake".to_string(), 3, 117)]);
    let fake_only = ok(&app, "/api/admin/ai-stats/usage?provider=fake&model=m1&key_id=fake-main&group_by=key").await;
    assert_eq!(fake_only["groups"], json!([{"group": "fake-main", "usage": fake_only["total"].clone()}]));
    assert_eq!(
        fake_only["total"]["latency_ms_p95"].as_u64(),
        Some(percentile(&ok_latencies, 95)),
        "percentiles of a subset come from its own histogram"
    );

    // Per user: summed from the logs, the same figures.
    let mine = ok(&app, "/api/admin/ai-stats/usage?user=user-1&group_by=model").await;
    assert_eq!(mine["source"], "logs");
    assert_eq!(mine["truncated"], false);
    assert_eq!(mine["total"], usage["total"]);
    let models: Vec<&str> = mine["groups"].as_array().unwrap().iter().map(|g| g["group"].as_str().unwrap()).collect();
    assert_eq!(models, ["broken/m2", "fake/m1"]);
    let nobody = ok(&app, "/api/admin/ai-stats/usage?user=nobody").await;
    assert_eq!((nobody["total"]["requests"].as_u64(), nobody["total"]["success_rate"].is_null()), (Some(0), true));

    // The trend: seven days ending today, zero-filled, today holding the four calls.
    let trend = ok(&app, "/api/admin/ai-stats/usage/trend").await;
    let points = trend["series"][0]["points"].as_array().unwrap();
    assert_eq!(points.len(), 7);
    assert!(trend["series"][0]["provider"].is_null());
    let requests: Vec<u64> = points.iter().map(|p| p["usage"]["requests"].as_u64().unwrap()).collect();
    assert_eq!(requests, [0, 0, 0, 0, 0, 0, 4]);
    assert_eq!(points[6]["date"], usage["to"]);
    assert_eq!(points[6]["usage"]["cost_micros"], 117);
    let per_provider = ok(&app, "/api/admin/ai-stats/usage/trend?group_by=provider").await;
    let series: Vec<(&str, u64)> = per_provider["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["provider"].as_str().unwrap(), s["points"][6]["usage"]["requests"].as_u64().unwrap()))
        .collect();
    assert_eq!(series, [("broken", 1), ("fake", 3)]);
    let one_day = ok(
        &app,
        &format!("/api/admin/ai-stats/usage/trend?from={0}&to={0}&provider=fake", usage["to"].as_str().unwrap()),
    )
    .await;
    assert_eq!(one_day["series"][0]["points"].as_array().unwrap().len(), 1);

    // The dashboard.
    let dash = ok(&app, "/api/admin/ai-stats/dashboard").await;
    assert_eq!(dash["today"]["usage"], usage["total"]);
    assert_eq!(dash["last_7_days"]["usage"], usage["total"]);
    assert_eq!(dash["last_30_days"]["usage"], usage["total"]);
    assert_eq!(
        dash["top_models"][0],
        json!({"provider_code": "fake", "model_code": "m1", "requests": 3, "errors": 0, "total_tokens": 87, "cost_micros": 117})
    );
    // The day's limit is full; so is the minute's, unless a minute boundary fell between the calls.
    let near = dash["keys_near_limits"].as_array().unwrap();
    assert!(near.iter().all(|k| k["id"] == "fake-main"), "{near:?}");
    let rpd = near.iter().find(|k| k["limit"] == "rpd").unwrap_or_else(|| panic!("{near:?}"));
    assert_eq!(
        (rpd["used"].as_u64(), rpd["limit_value"].as_u64(), rpd["percent"].as_u64()),
        (Some(3), Some(3), Some(100))
    );
    assert!(near.len() <= 2, "{near:?}");
    let unhealthy = dash["keys_not_normal"].as_array().unwrap();
    assert_eq!(unhealthy.len(), 1, "{unhealthy:?}");
    assert_eq!(
        (unhealthy[0]["id"].as_str(), unhealthy[0]["status"].as_str()),
        (Some("broken-refused"), Some("invalid"))
    );

    // Logs: filters, and cursor pages that visit every call once, newest first.
    let errors = ok(&app, "/api/admin/ai-stats/logs?status=error").await;
    assert_eq!(errors["data"].as_array().unwrap().len(), 1);
    assert_eq!(errors["data"][0]["request_id"], failed["request_id"]);
    assert_eq!(ok(&app, "/api/admin/ai-stats/logs?model=m1&provider=fake").await["data"].as_array().unwrap().len(), 3);
    assert_eq!(ok(&app, "/api/admin/ai-stats/logs?user=user-1").await["data"].as_array().unwrap().len(), 4);
    assert_eq!(ok(&app, "/api/admin/ai-stats/logs?user_id=user-2").await["data"].as_array().unwrap().len(), 0);
    let rid = failed["request_id"].as_str().unwrap();
    assert_eq!(ok(&app, &format!("/api/admin/ai-stats/logs?request_id={rid}")).await["data"][0]["request_id"], rid);
    let day = usage["to"].as_str().unwrap();
    assert_eq!(
        ok(&app, &format!("/api/admin/ai-stats/logs?from={day}&to={day}")).await["data"].as_array().unwrap().len(),
        4
    );
    assert_eq!(ok(&app, "/api/admin/ai-stats/logs?to=2000-01-01T00:00:00Z").await["data"].as_array().unwrap().len(), 0);
    let first_ts = data[3]["ts_ms"].as_i64().unwrap();
    assert_eq!(
        ok(&app, &format!("/api/admin/ai-stats/logs?to_ms={first_ts}")).await["data"].as_array().unwrap().len(),
        0
    );
    let mut seen = Vec::new();
    let mut path = "/api/admin/ai-stats/logs?limit=1".to_string();
    loop {
        let page = ok(&app, &path).await;
        seen.extend(page["data"].as_array().unwrap().iter().map(|l| l["request_id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/admin/ai-stats/logs?limit=1&cursor={cursor}"),
            None => break,
        }
        assert!(seen.len() <= 5, "pages end");
    }
    let expected: Vec<String> = data.iter().map(|l| l["request_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(seen, expected);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 4);

    // Partial matches ignore case; the count takes the same filters.
    assert_eq!(ok(&app, "/api/admin/ai-stats/logs?model_contains=M").await["data"].as_array().unwrap().len(), 4);
    assert_eq!(ok(&app, "/api/admin/ai-stats/logs?model_contains=2").await["data"][0]["request_id"], rid);
    assert_eq!(ok(&app, "/api/admin/ai-stats/logs?user_contains=USER-").await["data"].as_array().unwrap().len(), 4);
    assert_eq!(ok(&app, "/api/admin/ai-stats/logs?user_contains=user-2").await["data"].as_array().unwrap().len(), 0);
    assert_eq!(ok(&app, "/api/admin/ai-stats/logs/count").await, json!({"count": 4, "capped": false, "cap": 10000}));
    assert_eq!(
        ok(&app, "/api/admin/ai-stats/logs/count?model_contains=M1&status=success").await,
        json!({"count": 3, "capped": false, "cap": 10000})
    );

    // The live panel: the same calls, per minute over the last 15 (the current one last).
    let live = ok(&app, "/api/admin/ai-stats/live").await;
    let points = live["points"].as_array().unwrap();
    assert_eq!(points.len(), 15);
    assert_eq!(live["to"], points[14]["date"]);
    let per_minute: u64 = points.iter().map(|p| p["usage"]["requests"].as_u64().unwrap()).sum();
    assert_eq!(per_minute, 4, "every call in exactly one minute: {live}");
    let total = &live["total"];
    assert_eq!(
        (
            total["requests"].as_u64(),
            total["errors"].as_u64(),
            total["total_tokens"].as_u64(),
            total["cost_micros"].as_u64()
        ),
        (Some(4), Some(1), Some(87), Some(117))
    );
    assert_eq!((total["latency_ms_p50"].as_u64(), total["latency_ms_p95"].as_u64()), (Some(p50), Some(p95)));
    let providers: Vec<(&str, u64)> = live["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["provider"].as_str().unwrap(), p["usage"]["requests"].as_u64().unwrap()))
        .collect();
    assert_eq!(providers, [("fake", 3), ("broken", 1)]);
    let broken = ok(&app, "/api/admin/ai-stats/live?minutes=1&provider=broken").await;
    assert_eq!(broken["points"].as_array().unwrap().len(), 1);
    assert!(broken["total"]["requests"].as_u64().unwrap() <= 1, "one minute, one provider: {broken}");
}

/// Spend per user, per Maestro API key and per model: two keys of one owner, one of another and
/// a JWT caller, each call 39 micro-USD; exact per group and per day, the rest summed.
#[tokio::test]
async fn spend_goes_where_the_calls_went_per_user_per_caller_key_and_per_model() {
    let fake = FakeProvider::start().await;
    let app = spawn_app(&config(&fake.url).replace("rpm = 3\nrpd = 3", "rpm = 100\nrpd = 100"), &[]).await;
    let mut keys = Vec::new();
    for (owner, name) in [("team-a", "prod"), ("team-a", "ci"), ("team-b", "prod")] {
        let response = app
            .http
            .post(format!("{}/api/admin/api-keys", app.url))
            .bearer_auth(&app.admin_token)
            .json(&json!({"owner": owner, "key_name": name}))
            .send()
            .await
            .unwrap();
        let created: Value = response.json().await.unwrap();
        keys.push((created["id"].as_str().unwrap().to_string(), created["api_key"].as_str().unwrap().to_string()));
    }
    let call_with = |key: String| {
        let request =
            app.http.post(format!("{}/v1/chat/completions", app.url)).bearer_auth(key).json(&hello("fake/m1"));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // team-a: 2 calls with prod, 1 with ci; team-b: 1; user-1 (a JWT): 1; and a failed call.
    for key in [&keys[0].1, &keys[0].1, &keys[1].1, &keys[2].1] {
        assert_eq!(call_with(key.clone()).await, 200);
    }
    assert_eq!(app.chat(hello("fake/m1")).await.status(), 200);
    assert_eq!(app.chat(hello("broken/m2")).await.status(), 502);
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let today = maestro_shared::time::stats_date(maestro_shared::time::now_ms());

    let by_user = ok(&app, "/api/admin/ai-stats/spend?by=user").await;
    assert_eq!(by_user["days"].as_array().unwrap().len(), 30);
    assert_eq!(by_user["to"], today.as_str());
    let groups = |report: &Value| -> Vec<(String, u64, u64)> {
        report["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["group"].as_str().unwrap().to_string(),
                    g["usage"]["requests"].as_u64().unwrap(),
                    g["usage"]["cost_micros"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        groups(&by_user),
        [("team-a".to_string(), 3, 117), ("user-1".to_string(), 2, 39), ("team-b".to_string(), 1, 39)]
    );
    assert_eq!((by_user["total"]["requests"].as_u64(), by_user["total"]["cost_micros"].as_u64()), (Some(6), Some(195)));
    let team_a = &by_user["top"][0];
    assert_eq!(team_a["daily_cost_micros"].as_array().unwrap().last().unwrap(), 117);
    assert_eq!(team_a["daily_requests"].as_array().unwrap()[..29].iter().filter(|v| **v != 0).count(), 0);
    assert_eq!(team_a["cost_share"], 117.0 / 195.0);

    let by_key = ok(&app, "/api/admin/ai-stats/spend?by=caller_key").await;
    assert_eq!(
        groups(&by_key),
        [(keys[0].0.clone(), 2, 78), (keys[1].0.clone(), 1, 39), (keys[2].0.clone(), 1, 39)],
        "the JWT calls have no caller key"
    );
    let two = ok(&app, "/api/admin/ai-stats/spend?by=caller_key&top=1").await;
    assert_eq!(groups(&two), [(keys[0].0.clone(), 2, 78)]);
    assert_eq!(
        (two["others"]["group"].as_str(), two["others"]["usage"]["cost_micros"].as_u64()),
        (Some("2 others"), Some(78))
    );
    assert_eq!(two["groups"], 3);

    let by_model = ok(&app, "/api/admin/ai-stats/spend?by=model").await;
    assert_eq!(groups(&by_model), [("fake/m1".to_string(), 5, 195), ("broken/m2".to_string(), 1, 0)]);
    let (status, body) =
        get(&app, "/api/admin/ai-stats/spend?by=model&from=2026-01-01&to=2026-06-30", Some(&app.admin_token)).await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("from")), "{body}");
}

/// The export: the filtered calls as CSV, newest first, streamed; its limit; the header line and
/// the answer's headers; an admin token needed.
#[tokio::test]
async fn the_call_log_exports_the_filtered_calls_as_csv() {
    let fake = FakeProvider::start().await;
    let app = spawn_app(&config(&fake.url), &[]).await;
    for _ in 0..3 {
        assert_eq!(app.chat(hello("fake/m1")).await.status(), 200);
    }
    assert_eq!(app.chat(hello("broken/m2")).await.status(), 502);
    assert!(app.app.wait_for_logs(Duration::from_secs(5)).await);
    let logs = ok(&app, "/api/admin/ai-stats/logs").await;
    let ids: Vec<&str> = logs["data"].as_array().unwrap().iter().map(|l| l["request_id"].as_str().unwrap()).collect();

    let csv = |path: &str| {
        let request = app.http.get(format!("{}{path}", app.url)).bearer_auth(&app.admin_token);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            (status, headers, response.text().await.unwrap())
        }
    };
    let (status, headers, body) = csv("/api/admin/ai-stats/logs/export").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"maestro-calls-") && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(lines.len(), 6, "a header, four calls and the empty rest after the last CRLF: {body}");
    assert_eq!(lines[0], maestro_shared::stats::export::COLUMNS.join(","));
    assert_eq!(lines[5], "");
    let exported: Vec<&str> = lines[1..5].iter().map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(exported, ids, "every call, newest first");
    let failed = lines.iter().find(|l| l.contains(",broken,")).unwrap();
    assert!(failed.contains(",user-1,broken,m2,broken-refused,,,chat,false,error,502,"), "{failed}");
    assert!(!body.contains("sk-401-refused") && !body.contains("sk-ok-main"), "no secret: {body}");

    let (_, _, filtered) = csv("/api/admin/ai-stats/logs/export?status=success&model_contains=M1").await;
    assert_eq!(filtered.lines().count(), 4, "{filtered}");
    assert!(
        filtered.lines().skip(1).all(|l| l.contains(",fake,m1,fake-main,") && l.contains(",success,200,")),
        "{filtered}"
    );
    assert!(filtered.lines().skip(1).all(|l| l.contains(",39,0.000039,")), "cost in micro-USD and dollars: {filtered}");
    let (_, _, two) = csv("/api/admin/ai-stats/logs/export?limit=2").await;
    assert_eq!(two.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect::<Vec<_>>(), ids[..2]);
    let (_, _, none) = csv("/api/admin/ai-stats/logs/export?to=2000-01-01").await;
    assert_eq!(none, format!("{}\r\n", maestro_shared::stats::export::COLUMNS.join(",")));

    for path in [
        "/api/admin/ai-stats/logs/export?limit=0",
        "/api/admin/ai-stats/logs/export?limit=100001",
        "/api/admin/ai-stats/logs/export?status=ok",
        "/api/admin/ai-stats/logs/export?cursor=x",
        "/api/admin/ai-stats/logs/count?limit=1",
    ] {
        let (status, body) = get(&app, path, Some(&app.admin_token)).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    for path in ["/api/admin/ai-stats/logs/export", "/api/admin/ai-stats/logs/count"] {
        assert_eq!(get(&app, path, None).await.0, 401, "{path}");
        assert_eq!(get(&app, path, Some(&app.token)).await.0, 403, "{path}");
    }
}

#[tokio::test]
async fn stats_parameters_are_checked_and_every_route_wants_an_admin_token() {
    let app = spawn_app(FAST_RETRY, &[]).await;
    for path in [
        "/api/admin/ai-stats/usage?from=2026-13-01",
        "/api/admin/ai-stats/usage?from=2026-11-27&to=2026-11-26",
        "/api/admin/ai-stats/usage?from=2024-01-01&to=2026-11-26",
        "/api/admin/ai-stats/usage?group_by=user",
        "/api/admin/ai-stats/usage?colour=red",
        "/api/admin/ai-stats/usage/trend?group_by=model",
        "/api/admin/ai-stats/usage/trend?to=yesterday",
        "/api/admin/ai-stats/logs?limit=0",
        "/api/admin/ai-stats/logs?limit=1001",
        "/api/admin/ai-stats/logs?status=ok",
        "/api/admin/ai-stats/logs?cursor=garbage",
        "/api/admin/ai-stats/logs?from=noon",
        "/api/admin/ai-stats/logs?from=2026-11-26&from_ms=1",
        "/api/admin/ai-stats/logs?user=a&user_id=b",
        "/api/admin/ai-stats/logs?from_ms=soon",
        "/api/admin/ai-stats/live?minutes=0",
        "/api/admin/ai-stats/live?minutes=61",
        "/api/admin/ai-stats/live?minutes=soon",
        "/api/admin/ai-stats/live?user=a",
        "/api/admin/ai-stats/spend",
        "/api/admin/ai-stats/spend?by=day",
        "/api/admin/ai-stats/spend?by=user&top=0",
        "/api/admin/ai-stats/spend?by=user&top=51",
    ] {
        let (status, body) = get(&app, path, Some(&app.admin_token)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{path}: {body}");
    }
    for path in [
        "/api/admin/ai-stats/dashboard",
        "/api/admin/ai-stats/usage",
        "/api/admin/ai-stats/usage/trend",
        "/api/admin/ai-stats/live",
        "/api/admin/ai-stats/spend?by=user",
        "/api/admin/ai-stats/logs",
    ] {
        let (status, body) = get(&app, path, None).await;
        assert_eq!((status, body["error"]["type"].as_str()), (401, Some("authentication_error")), "{path}");
        let (status, _) = get(&app, path, Some("garbage")).await;
        assert_eq!(status, 401, "{path}");
        let (status, body) = get(&app, path, Some(&app.token)).await;
        assert_eq!((status, body["error"]["type"].as_str()), (403, Some("permission_error")), "{path}");
        // Parameters are judged only after the token.
        let (status, _) = get(&app, &format!("{path}?limit=0&group_by=x"), None).await;
        assert_eq!(status, 401, "{path}");
    }
    // An empty store answers with zeros, not errors.
    let dash = ok(&app, "/api/admin/ai-stats/dashboard").await;
    assert_eq!(dash["today"]["usage"]["requests"], 0);
    assert!(dash["keys_near_limits"].as_array().unwrap().is_empty());
    let live = ok(&app, "/api/admin/ai-stats/live?minutes=5").await;
    assert_eq!((live["points"].as_array().unwrap().len(), live["total"]["requests"].as_u64()), (5, Some(0)));
}
