//! Every stats event in `events/` through the stats router the way the Lambda binary serves it
//! behind the HTTP API's JWT authorizer: read with `lambda_http::request::from_str`, sent with
//! `oneshot` to the router wrapped by `AdminAuth` in authorizer mode, on an embedded store that
//! holds a few recorded calls.

#![allow(clippy::expect_used, clippy::panic, reason = "test helpers: a failed expectation is a failed test")]

use std::sync::Arc;

use axum::Router;
use axum::body::to_bytes;
use axum::http::StatusCode;
use maestro_lambda_common::{AdminAuth, Env};
use maestro_shared::logs::LogEvent;
use maestro_shared::store::StatsStore;
use maestro_shared::store::embedded::EmbeddedStore;
use maestro_stats::{StatsState, router};
use serde_json::Value;
use tower::ServiceExt;

/// 2026-11-26T06:00:00Z, the morning the events were captured.
const MORNING_MS: i64 = 1_795_672_800_000;

fn call(request_id: &str, ts_ms: i64, provider: &str, model: &str, cost_micros: u64) -> LogEvent {
    LogEvent {
        user_id: Some("user-42".into()),
        provider: provider.into(),
        model: model.into(),
        key_id: Some(format!("{provider}-main")),
        prompt_tokens: 100,
        completion_tokens: 20,
        cached_tokens: 0,
        cost_micros,
        latency_ms: 800,
        ttfb_ms: None,
        ..LogEvent::sample(request_id, ts_ms)
    }
}

/// The router of `main.rs` with the template's settings, over an embedded store with three calls
/// on 2026-11-25/26 (two providers; one through the route `smart`) and one on 2026-11-20.
async fn app() -> Router {
    let env = Env::from_pairs(&[]);
    let auth = AdminAuth::from_env(&env).expect("auth");
    assert_eq!(auth.mode(), "authorizer", "without MAESTRO_JWT_SECRET the authorizer decides");
    let store = Arc::new(EmbeddedStore::open_in_memory().expect("store"));
    for e in [
        call("r1", MORNING_MS - 10 * 3_600_000, "openai", "gpt-4o-mini", 110),
        call("r2", MORNING_MS - 3_600_000, "anthropic", "claude-sonnet-4-5", 9_210),
        LogEvent {
            route: Some("smart".into()),
            route_rule: Some("1".into()),
            latency_ms: 12,
            ..call("r3", MORNING_MS, "openai", "gpt-4o", 3_130)
        },
        call("r0", MORNING_MS - 6 * 86_400_000, "openai", "gpt-4o", 1),
    ] {
        assert!(store.record_event(&e).await.expect("record"));
    }
    let state = StatsState { store: store.clone(), catalog: store.clone(), counters: store, auth: auth.verifier() };
    auth.wrap(router(state).fallback(maestro_shared::http::not_found))
}

async fn invoke(event: &str) -> (StatusCode, Value) {
    let request = lambda_http::request::from_str(event).expect("an HTTP API event lambda_http accepts");
    let response = app().await.oneshot(request).await.expect("the router answers");
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).expect("a JSON body"))
}

#[tokio::test]
async fn given_the_usage_event_then_two_days_are_summed_per_provider() {
    let (status, body) = invoke(include_str!("../../../events/stats-http-api-usage-by-provider.json")).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["from"].as_str(), body["to"].as_str()), (Some("2026-11-25"), Some("2026-11-26")));
    assert_eq!(body["total"]["requests"], 3);
    assert_eq!(body["total"]["cost_micros"], 12_450);
    let groups: Vec<(&str, u64)> = body["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| (g["group"].as_str().unwrap_or_default(), g["usage"]["requests"].as_u64().unwrap_or_default()))
        .collect();
    assert_eq!(groups, [("anthropic", 1), ("openai", 2)]);
}

#[tokio::test]
async fn given_the_logs_event_then_the_providers_calls_come_newest_first() {
    let (status, body) = invoke(include_str!("../../../events/stats-http-api-logs.json")).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> =
        body["data"].as_array().expect("data").iter().filter_map(|l| l["request_id"].as_str()).collect();
    assert_eq!(ids, ["r3", "r1", "r0"]);
}

#[tokio::test]
async fn given_no_authorizer_claims_then_usage_is_401() {
    let (status, body) = invoke(include_str!("../../../events/stats-http-api-usage-no-claims.json")).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["type"], "authentication_error");
}

/// The usage event of `events/`, sent to another stats path with another query.
fn usage_event_for(path: &str, query: &[(&str, &str)]) -> String {
    let mut event: Value =
        serde_json::from_str(include_str!("../../../events/stats-http-api-usage-by-provider.json")).expect("event");
    let raw: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    event["rawPath"] = format!("/api/admin/ai-stats/{path}").into();
    event["requestContext"]["http"]["path"] = format!("/api/admin/ai-stats/{path}").into();
    event["pathParameters"]["proxy"] = path.into();
    event["rawQueryString"] = raw.join("&").into();
    event["queryStringParameters"] = query.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
    event.to_string()
}

#[tokio::test]
async fn given_a_routed_call_then_the_logs_filter_by_route_and_show_its_rule() {
    let (status, body) = invoke(&usage_event_for("logs", &[("route", "smart")])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let logged: Vec<(&str, &str)> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|l| (l["request_id"].as_str().unwrap_or_default(), l["route_rule"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(logged, [("r3", "1")]);
}

#[tokio::test]
async fn given_a_routed_call_then_usage_and_trends_group_and_filter_by_route() {
    let days = [("from", "2026-11-25"), ("to", "2026-11-26")];
    let (status, body) = invoke(&usage_event_for("usage", &[days[0], days[1], ("group_by", "route")])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"]["requests"], 3, "the calls without a route stay in the total");
    assert_eq!(body["groups"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(
        (body["groups"][0]["group"].as_str(), body["groups"][0]["usage"]["requests"].as_u64()),
        (Some("smart"), Some(1))
    );
    assert_eq!(body["groups"][0]["usage"]["latency_ms_p99"], 15);
    assert_eq!(body["total"]["latency_ms_p99"], 1_000);

    let (status, body) = invoke(&usage_event_for("usage", &[days[0], days[1], ("route", "smart")])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["total"]["requests"].as_u64(), body["total"]["cost_micros"].as_u64()), (Some(1), Some(3_130)));

    let (status, body) = invoke(&usage_event_for("usage/trend", &[days[0], days[1], ("route", "smart")])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let requests: Vec<u64> = body["series"][0]["points"]
        .as_array()
        .expect("points")
        .iter()
        .filter_map(|p| p["usage"]["requests"].as_u64())
        .collect();
    assert_eq!(requests, [0, 1]);

    let (status, body) = invoke(&usage_event_for("usage", &[("group_by", "rule")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
