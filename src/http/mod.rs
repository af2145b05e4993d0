//! HTTP adapters: they map requests to service calls and results to the shapes each API
//! promises, and nothing else.

pub mod admin;
pub mod callbacks;
pub mod caller;
pub mod compat;
pub mod console;
pub mod guard;
pub mod idempotency;
pub mod inbound;
pub mod media;
pub mod native;
pub mod native_send;
pub mod openapi;
pub mod ops;
pub mod params;
pub mod problem;
pub mod suppressions;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tower::Layer;
use tower::util::{MapRequest, MapRequestLayer};

use crate::api::compat::{CompatErrorBody, ErrorContext, SortedKeys};
use crate::app::App;

/// The whole HTTP surface, matching paths case-insensitively (the original AtomChat server
/// was Express, whose routing is) and ignoring a trailing slash: the path is rewritten before
/// routing.
pub type Service = MapRequest<Router, fn(Request<Body>) -> Request<Body>>;

pub fn service(app: App) -> Service {
    MapRequestLayer::new(canonical_request as fn(Request<Body>) -> Request<Body>).layer(router(app))
}

fn canonical_request(mut req: Request<Body>) -> Request<Body> {
    if let Some(uri) = canonical_uri(req.uri()) {
        *req.uri_mut() = uri;
    }
    req
}

pub fn router(app: App) -> Router {
    let mut router = compat::routes()
        .merge(native::routes())
        .merge(suppressions::routes())
        .merge(callbacks::routes())
        .merge(inbound::routes())
        .merge(openapi::routes())
        .merge(ops::routes())
        .merge(console::routes(&app));
    if app.config.admin_token.is_some() {
        router = router.merge(admin::routes(app.clone()));
    }
    router
        .fallback(not_found)
        // The guard enforces the configured body limit, in each API's error shape.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::guard,
        ))
        .with_state(app)
}

async fn not_found(uri: Uri) -> Response {
    let context = ErrorContext::new("Path", "path").with_value(uri.path());
    let body = CompatErrorBody::new(context, "No such endpoint", "Not found");
    compat::CompatError::envelope(StatusCode::NOT_FOUND, body).into_response()
}

/// The fixed words of our paths; a segment equal to one of them, ignoring case, is written
/// the canonical (lowercase) way. Ids never collide: they are prefixed (`tpl_…`).
const STATIC_SEGMENTS: &[&str] = &[
    "openapi.json",
    "docs",
    "api",
    "template",
    "sendmessage",
    "templates",
    "v1",
    "admin",
    "accounts",
    "channels",
    "rotate-token",
    "sync",
    "batch",
    "batches",
    "api-keys",
    "groups",
    "conversations",
    "close",
    "messages",
    "webhooks",
    "whatsapp",
    "webhook-endpoints",
    "deliveries",
    "callback-secret",
    "healthz",
    "readyz",
    "metrics",
    "media",
    "console",
    "session",
    "overview",
    "resume",
    "suppressions",
];

fn canonical_uri(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let mut canonical = String::with_capacity(path.len());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        canonical.push('/');
        match STATIC_SEGMENTS
            .iter()
            .find(|s| s.eq_ignore_ascii_case(segment))
        {
            Some(s) => canonical.push_str(s),
            None => canonical.push_str(segment),
        }
    }
    if canonical.is_empty() {
        canonical.push('/');
    }
    if canonical == path {
        return None;
    }
    if let Some(q) = uri.query() {
        canonical.push('?');
        canonical.push_str(q);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(canonical.parse().ok()?);
    Uri::from_parts(parts).ok()
}

pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// A JSON response with the content type the original API sent.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    json_text_response(status, body.to_string())
}

/// JSON text as [`json_response`] answers it.
fn json_text_response(status: StatusCode, text: String) -> Response {
    let mut response = (status, text).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    response
}

/// A typed body ([`crate::api`]) as [`json_response`]: through a `serde_json::Value`, so its
/// keys come out sorted as every body's always have, whatever the order of the type's fields.
pub fn typed_json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_value(body) {
        Ok(value) => json_response(status, &value),
        Err(e) => problem::Problem::internal(&e.into()).into_response(),
    }
}

/// A typed body whose keys are already in `Value`'s order ([`SortedKeys`]) as [`typed_json`]
/// answers it, serialized straight to text.
pub fn sorted_json<T: SortedKeys>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_string(&body.sorted()) {
        Ok(text) => json_text_response(status, text),
        Err(e) => problem::Problem::internal(&e.into()).into_response(),
    }
}

/// The bearer token of a request: `None` without an `Authorization` header, `Some("")` when
/// the header is there but carries no bearer token.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?;
    let value = value.to_str().unwrap_or("").trim();
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => "",
    };
    Some(token)
}

/// Compares two secrets in time that does not depend on where they differ.
pub use crate::domain::ids::same_secret;

/// A short id to correlate a 500 response with its log line, without exposing internals.
pub fn error_id() -> String {
    crate::domain::ids::new_id("err")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(p: &str) -> String {
        let uri: Uri = p.parse().unwrap();
        canonical_uri(&uri)
            .map(|u| u.to_string())
            .unwrap_or_else(|| p.to_string())
    }

    #[test]
    fn static_segments_are_matched_ignoring_case() {
        assert_eq!(
            canon("/api/Template/SendMessage"),
            "/api/template/sendmessage"
        );
        assert_eq!(canon("/API/TEMPLATE"), "/api/template");
        assert_eq!(
            canon("/Templates/tpl_ABC?page=2"),
            "/templates/tpl_ABC?page=2"
        );
        assert_eq!(canon("/templates/"), "/templates");
        assert_eq!(canon("/"), "/");
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("", "abc"));
    }

    #[test]
    fn bearer_tokens_are_read_leniently() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "bearer   abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Bearer".parse().unwrap());
        assert_eq!(bearer(&h), Some(""));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), Some(""));
    }
}
