//! The admin console: a single page (plain JS modules, CSS and the vendored uPlot) embedded in
//! the binary and served at `/admin/`, so the local runner and the admin Lambda serve the same
//! files with no deployment step of their own.
//!
//! These routes need no token: the files hold no data. The page reads everything through the
//! token-protected admin and stats APIs with the token the user signs in with. A strict
//! content security policy (no inline script or style, no other origin) goes with every file;
//! `cache-control: no-cache` plus an `ETag` (a hash of the file, computed once) makes a reload a
//! round of cheap 304s.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maestro_shared::error::ApiError;

/// Every file of `functions/admin/console/`, by its path under `/admin/`.
macro_rules! files {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!("../console/", $path)) as &[u8])),*]
    };
}

const FILES: &[(&str, &[u8])] = files![
    "index.html",
    "app.css",
    "app.js",
    "api.js",
    "i18n.js",
    "dom.js",
    "charts.js",
    "dashboard.js",
    "providers.js",
    "models.js",
    "routes.js",
    "apikeys.js",
    "logs.js",
    "live.js",
    "spend.js",
    "alerts.js",
    "icon.svg",
    "vendor/uPlot.iife.min.js",
    "vendor/uPlot.min.css",
    "vendor/uPlot.LICENSE",
];

/// The page's own files and nothing else: no inline code, no other origin, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

struct Asset {
    path: &'static str,
    body: &'static [u8],
    content_type: &'static str,
    etag: HeaderValue,
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(path, body)| Asset {
            path,
            body,
            content_type: content_type(path),
            etag: HeaderValue::from_str(&format!("\"{:016x}\"", fnv1a(body)))
                .unwrap_or_else(|_| HeaderValue::from_static("\"0\"")),
        })
        .collect()
});

/// The console's routes, to merge into a router of any state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        // Relative, so the page keeps an API stage prefix (`/prod/admin` → `/prod/admin/`).
        .route("/admin", get(|| async { Redirect::permanent("admin/") }))
        .route("/admin/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route(
            "/admin/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move { serve(&path, &headers) }),
        )
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        let mut response = ApiError::not_found("No such file in the admin console.").into_response();
        response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        return response;
    };
    let fresh =
        headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|tags| matches(tags, &asset.etag));
    let mut response =
        if fresh { StatusCode::NOT_MODIFIED.into_response() } else { (StatusCode::OK, asset.body).into_response() };
    let h = response.headers_mut();
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    }
    h.insert(header::ETAG, asset.etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    response
}

/// Whether an `If-None-Match` list names this tag (weak comparison, as RFC 9110 asks for GET).
fn matches(if_none_match: &str, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or_default();
    if_none_match.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    }
}

/// 64-bit FNV-1a: a stable fingerprint of a file for its `ETag` (not a security hash).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str, if_none_match: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        let response = router::<()>().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = response.into_parts();
        (parts.status, parts.headers, to_bytes(body, 1 << 20).await.unwrap().to_vec())
    }

    #[tokio::test]
    async fn given_the_console_paths_then_each_file_comes_with_its_type_and_the_strict_policy() {
        for (path, expected) in [
            ("/admin/", "text/html; charset=utf-8"),
            ("/admin/index.html", "text/html; charset=utf-8"),
            ("/admin/app.js", "text/javascript; charset=utf-8"),
            ("/admin/i18n.js", "text/javascript; charset=utf-8"),
            ("/admin/app.css", "text/css; charset=utf-8"),
            ("/admin/icon.svg", "image/svg+xml"),
            ("/admin/vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
            ("/admin/vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
        ] {
            let (status, headers, body) = get(path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(headers[header::CONTENT_TYPE], expected, "{path}");
            assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY, "{path}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{path}");
            assert!(headers[header::ETAG].to_str().unwrap().starts_with('"'), "{path}");
            assert!(!body.is_empty(), "{path}");
        }
        let policy = CONTENT_SECURITY_POLICY;
        for directive in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
            assert!(policy.contains(directive), "{directive}");
        }
        assert!(!policy.contains("unsafe"), "no unsafe-inline or unsafe-eval");
    }

    #[tokio::test]
    async fn given_the_bare_path_then_it_redirects_to_the_page_keeping_any_prefix() {
        let (status, headers, _) = get("/admin", None).await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(headers[header::LOCATION], "admin/");
    }

    #[tokio::test]
    async fn given_an_unknown_file_then_it_is_a_404_in_the_openai_error_shape() {
        for path in ["/admin/nope.js", "/admin/vendor/", "/admin/../Cargo.toml", "/admin/vendor/../../src/lib.rs"] {
            let (status, headers, body) = get(path, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(error["error"]["code"], "not_found", "{path}");
            assert!(error["error"]["message"].is_string());
        }
    }

    #[tokio::test]
    async fn given_the_etag_it_sent_then_a_reload_is_a_304_without_a_body() {
        let (_, headers, _) = get("/admin/app.js", None).await;
        let etag = headers[header::ETAG].to_str().unwrap().to_string();
        let (status, headers, body) = get("/admin/app.js", Some(&format!("\"other\", W/{etag}"))).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert_eq!(headers[header::ETAG], etag.as_str());
        assert!(body.is_empty());
        let (status, _, _) = get("/admin/app.js", Some("\"stale\"")).await;
        assert_eq!(status, StatusCode::OK);
        let (_, other, _) = get("/admin/app.css", None).await;
        assert_ne!(other[header::ETAG], etag.as_str(), "each file has its own tag");
    }

    #[test]
    fn every_file_of_the_console_folder_is_embedded_and_the_page_has_no_inline_code() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut on_disk = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let relative = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                    if relative != "README.md" {
                        on_disk.push(relative);
                    }
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _)| (*p).to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "FILES lists every file of functions/admin/console/");
        let html = String::from_utf8(FILES[0].1.to_vec()).unwrap();
        assert!(!html.contains("style="), "no inline style attribute");
        assert!(!html.contains("<style"), "no inline style element");
        for script in html.split("<script").skip(1) {
            assert!(script.trim_start().starts_with("src=") || script.contains(" src="), "no inline script");
        }
    }
}
