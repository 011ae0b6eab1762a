//! `GET /metrics`: the runner's call metrics in Prometheus's text format, with each provider
//! key's state read from the catalog at scrape time. An admin token is required, as for the stats
//! routes, unless `[server] metrics_public` or `MAESTRO_METRICS_PUBLIC=1` opens it.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maestro_shared::auth::{JwtAuth, admin_guard};
use maestro_shared::config::{ConfigError, Env};
use maestro_shared::gateway::Gateway;
use maestro_shared::logs::LogSink;
use maestro_shared::metrics::emf::{self, EmfWriter};
use maestro_shared::metrics::{CallMetrics, ObservedSink, prometheus, switch};

/// The runner's log sink with the call metrics watching it (and EMF lines on stdout when
/// `MAESTRO_EMF=1`), and the metrics to serve.
pub fn observe(sink: Arc<dyn LogSink>, env: &Env) -> Result<(Arc<dyn LogSink>, Arc<CallMetrics>), ConfigError> {
    let metrics = Arc::new(CallMetrics::new());
    let mut sink = ObservedSink::wrap(sink, metrics.clone());
    if emf::enabled(env)? {
        sink = ObservedSink::wrap(sink, Arc::new(EmfWriter::stdout()));
    }
    Ok((sink, metrics))
}

/// Whether `GET /metrics` needs no token: `MAESTRO_METRICS_PUBLIC` when set, else the config's
/// `[server] metrics_public`.
pub fn public(env: &Env, configured: bool) -> Result<bool, ConfigError> {
    Ok(switch(env, "MAESTRO_METRICS_PUBLIC")?.unwrap_or(configured))
}

#[derive(Clone)]
struct Scrape {
    metrics: Arc<CallMetrics>,
    gateway: Arc<Gateway>,
}

/// The `/metrics` route, behind the admin check unless `public`.
pub fn router(metrics: Arc<CallMetrics>, gateway: Arc<Gateway>, auth: Arc<JwtAuth>, public: bool) -> Router {
    let routes = Router::new().route("/metrics", get(scrape));
    let routes = if public { routes } else { admin_guard::guard(routes, auth) };
    routes.with_state(Scrape { metrics, gateway })
}

async fn scrape(State(state): State<Scrape>) -> Response {
    // The same cached catalog calls use: a key the gateway just marked is seen at once.
    let catalog = match state.gateway.catalog().await {
        Ok(catalog) => Some(catalog),
        Err(e) => {
            tracing::warn!(error = %e, "catalog unreadable; the scrape leaves out the key states");
            None
        }
    };
    let text = prometheus::render(&state.metrics.snapshot(), catalog.as_deref(), maestro_shared::time::now_ms());
    ([(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)], text).into_response()
}
