//! The admin check, written once: [`guard`] puts every route of a router behind an admin token
//! (checked before the body, the path or the query is read), and a handler that needs to know
//! which admin is calling takes an [`AdminCaller`] argument. A route added to a guarded router is
//! guarded without a line of its own; an `AdminCaller` outside a guarded router is refused.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use super::JwtAuth;
use crate::error::ApiError;
use crate::gateway::Caller;

/// The admin who sent the request (the token's `sub`).
#[derive(Debug, Clone)]
pub struct AdminCaller(pub Caller);

/// Every route of `router` (present and future) needs an admin token: 401 without a valid one,
/// 403 when it lacks the admin claim, in OpenAI's error shape.
pub fn guard<S: Clone + Send + Sync + 'static>(router: Router<S>, auth: Arc<JwtAuth>) -> Router<S> {
    router.route_layer(middleware::from_fn_with_state(auth, admin_only))
}

async fn admin_only(State(auth): State<Arc<JwtAuth>>, mut request: Request, next: Next) -> Response {
    match auth.admin(crate::http::authorization(request.headers())) {
        Ok(caller) => {
            request.extensions_mut().insert(AdminCaller(caller));
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // Fails closed: only [`guard`] puts an admin here.
        parts
            .extensions
            .get::<AdminCaller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("This API needs an admin token."))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::{Request as HttpRequest, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::secret::SecretString;

    fn auth() -> Arc<JwtAuth> {
        Arc::new(JwtAuth::hs256(&SecretString::new("a-test-secret-of-at-least-32-bytes!!")))
    }

    async fn status(app: &Router, token: Option<&str>, path: &str) -> (StatusCode, String) {
        let mut request = HttpRequest::get(path);
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let response = app.clone().oneshot(request.body(Body::empty()).unwrap_or_default()).await;
        let response = response.unwrap_or_else(|e| match e {});
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap_or_default();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn every_route_of_a_guarded_router_needs_an_admin_token() {
        let auth = auth();
        let who = |AdminCaller(caller): AdminCaller| async move { caller.user_id };
        let app = guard(
            Router::new().route("/who", get(who)).route("/open-by-mistake", get(|| async { "data" })),
            auth.clone(),
        );
        let admin = auth.issue("ada", true, Duration::from_secs(60)).unwrap_or_default();
        let user = auth.issue("bob", false, Duration::from_secs(60)).unwrap_or_default();

        assert_eq!(status(&app, Some(&admin), "/who").await, (StatusCode::OK, "ada".to_string()));
        for path in ["/who", "/open-by-mistake"] {
            assert_eq!(status(&app, None, path).await.0, StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(status(&app, Some("not-a-jwt"), path).await.0, StatusCode::UNAUTHORIZED, "{path}");
            let (code, body) = status(&app, Some(&user), path).await;
            assert_eq!(code, StatusCode::FORBIDDEN, "{path}");
            assert!(body.contains("\"type\""), "an error in OpenAI's shape: {body}");
        }
        // Unguarded, the extractor refuses rather than letting a request through.
        let open = Router::new().route("/who", get(who));
        assert_eq!(status(&open, Some(&admin), "/who").await.0, StatusCode::UNAUTHORIZED);
    }
}
