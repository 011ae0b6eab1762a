//! The admin API. This first version lists the catalog (keys masked); creating and editing
//! providers, keys, models and routes is the admin issue's work.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use maestro_shared::auth::JwtAuth;
use maestro_shared::error::ApiError;
use maestro_shared::gateway::Gateway;
use maestro_shared::http as mhttp;
use serde_json::{Value, json};

#[derive(Clone)]
pub struct AdminState {
    pub gateway: Arc<Gateway>,
    pub auth: Arc<JwtAuth>,
}

pub fn router(state: AdminState) -> Router {
    Router::new().route("/api/admin/ai-providers", get(list_providers)).with_state(state)
}

/// `GET /api/admin/ai-providers`: providers with their models and keys; keys only masked.
async fn list_providers(State(state): State<AdminState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    state.auth.admin(mhttp::authorization(&headers))?;
    let catalog = state.gateway.catalog().await?;
    let providers: Vec<Value> = catalog
        .providers
        .iter()
        .map(|e| {
            json!({
                "provider": e.provider,
                "models": e.models,
                "keys": e.keys.iter().map(|k| json!({
                    "id": k.id, "name": k.name, "masked": k.masked, "priority": k.priority,
                    "is_active": k.is_active, "status": k.status, "cooldown_until": k.cooldown_until,
                    "limits": k.limits,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({"data": providers, "routes": catalog.routes})))
}
