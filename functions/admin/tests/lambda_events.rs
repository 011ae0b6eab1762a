//! Every admin event in `events/` through the admin router the way the Lambda binary serves it
//! behind the HTTP API's JWT authorizer: read with `lambda_http::request::from_str`, sent with
//! `oneshot` to the router wrapped by `AdminAuth` in authorizer mode, on the embedded backend.

#![allow(clippy::expect_used, clippy::panic, reason = "test helpers: a failed expectation is a failed test")]

use std::sync::Arc;

use axum::Router;
use axum::body::to_bytes;
use axum::http::StatusCode;
use maestro_admin::{AdminState, lambda_app};
use maestro_lambda_common::{AdminAuth, Env};
use maestro_shared::bootstrap::bootstrap;
use maestro_shared::config::FileConfig;
use maestro_shared::gateway::{Backends, Gateway};
use maestro_shared::logs::{LogEvent, LogSink};
use maestro_shared::providers::ProviderClient;
use maestro_shared::store::embedded::EmbeddedStore;
use serde_json::Value;
use tower::ServiceExt;

struct NoLogs;

#[async_trait::async_trait]
impl LogSink for NoLogs {
    async fn send(&self, _event: LogEvent) {}
}

/// The app of `main.rs` with the template's settings (no `MAESTRO_JWT_SECRET`: authorizer
/// mode, admin when the `scope` claim holds `maestro:admin`), on a fresh embedded store with the seed catalog.
async fn app() -> Router {
    let env = Env::from_pairs(&[("MAESTRO_ADMIN_AUTH", "authorizer")]);
    let auth = AdminAuth::from_env(&env).expect("auth");
    assert_eq!(auth.mode(), "authorizer");
    let store = Arc::new(EmbeddedStore::open_in_memory().expect("store"));
    bootstrap(
        store.as_ref(),
        store.as_ref(),
        &FileConfig::default(),
        &maestro_shared::config::Env::from_pairs(&[]),
        false,
    )
    .await
    .expect("bootstrap");
    let backends = Backends {
        catalog: store.clone(),
        counters: store.clone(),
        secrets: store.clone(),
        log_sink: Arc::new(NoLogs),
        caller_keys: store.clone(),
        credits: None,
        response_cache: store.clone(),
    };
    let gateway = Arc::new(Gateway::new(
        backends,
        ProviderClient::new().expect("client"),
        env.gateway_options().expect("options"),
    ));
    let state = AdminState::new(gateway, auth.verifier(), store.clone(), store).expect("admin state");
    lambda_app(state, &auth)
}

async fn invoke(event: &str) -> (StatusCode, Value) {
    let request = lambda_http::request::from_str(event).expect("an HTTP API event lambda_http accepts");
    let response = app().await.oneshot(request).await.expect("the router answers");
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).expect("a JSON body"))
}

#[tokio::test]
async fn given_authorizer_claims_with_the_admin_role_then_the_catalog_is_listed_with_keys_masked() {
    let (status, body) = invoke(include_str!("../../../events/admin-http-api-list-providers.json")).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let codes: Vec<&str> =
        body["data"].as_array().expect("data").iter().filter_map(|p| p["provider_code"].as_str()).collect();
    assert_eq!(
        codes,
        ["openai", "anthropic", "deepseek", "qwen", "moonshot", "zhipu", "ernie", "doubao", "minimax", "gemini"]
    );
}

#[tokio::test]
async fn given_authorizer_claims_without_the_admin_role_then_it_is_403() {
    let (status, body) = invoke(include_str!("../../../events/admin-http-api-list-providers-not-admin.json")).await;

    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["type"], "permission_error");
}

#[tokio::test]
async fn given_no_authorizer_claims_then_it_is_401_whatever_the_headers_say() {
    let (status, body) = invoke(include_str!("../../../events/admin-http-api-list-providers-no-claims.json")).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["type"], "authentication_error");
}

/// The no-claims event, sent to another path (as API Gateway does for the console's
/// `Auth: NONE` routes).
fn without_claims_to(path: &str) -> String {
    let mut event: Value =
        serde_json::from_str(include_str!("../../../events/admin-http-api-list-providers-no-claims.json"))
            .expect("event");
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["routeKey"] = "GET /admin/{proxy+}".into();
    event["requestContext"]["routeKey"] = "GET /admin/{proxy+}".into();
    event.to_string()
}

#[tokio::test]
async fn given_no_authorizer_claims_then_the_console_files_are_served_but_the_api_is_not() {
    for (path, content_type) in
        [("/admin/", "text/html; charset=utf-8"), ("/admin/app.js", "text/javascript; charset=utf-8")]
    {
        let request = lambda_http::request::from_str(&without_claims_to(path)).expect("event");
        let response = app().await.oneshot(request).await.expect("the router answers");

        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        assert!(response.headers()["content-security-policy"].to_str().expect("csp").contains("script-src 'self'"));
    }
    let request = lambda_http::request::from_str(&without_claims_to("/admin")).expect("event");
    let response = app().await.oneshot(request).await.expect("the router answers");
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);

    let (status, body) = invoke(&without_claims_to("/api/admin/ai-models")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = invoke(&without_claims_to("/somewhere-else")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "unknown paths stay behind the check: {body}");
}
