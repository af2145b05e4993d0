//! What every request goes through before its handler: a request id and the tracing span that
//! carries it, the body size limit, the request timeout, and the request metrics. Refusals
//! are answered in the shape of the errors of the API the path belongs to.

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tracing::Instrument;

use super::{admin, compat, json_response};
use crate::app::App;
use crate::metrics::UNMATCHED_ROUTE;

pub const REQUEST_ID: &str = "x-request-id";

/// The request id of a request, in its extensions (and in the span of everything it logs).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// An incoming `X-Request-Id` is kept when it is sane: 1 to 64 of `[A-Za-z0-9._-]` (anything
/// else could forge log lines or blow up their size); otherwise a new one is made.
pub fn request_id_of(given: Option<&HeaderValue>) -> String {
    match given.and_then(|v| v.to_str().ok()) {
        Some(id)
            if !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
        {
            id.to_string()
        }
        _ => crate::domain::ids::new_id("req"),
    }
}

/// The API a path belongs to, which decides the shape of its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `/api/Template…`: the old family of the template API.
    CompatOld,
    /// `/templates…`: the new family, `{code, body}` envelopes.
    CompatNew,
    /// `/v1/…`, the admin and the native APIs: problem documents.
    Problems,
    /// `/webhooks/…`: Meta reads only the status.
    Webhooks,
    /// The rest (`/healthz`, `/metrics`, unknown paths): `{code, body}` envelopes.
    Other,
}

impl Surface {
    /// Of a canonical (lowercased) path.
    pub fn of(path: &str) -> Surface {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        match first {
            "api" => Surface::CompatOld,
            "templates" => Surface::CompatNew,
            "v1" => Surface::Problems,
            "webhooks" => Surface::Webhooks,
            _ => Surface::Other,
        }
    }

    fn is_ops(path: &str) -> bool {
        matches!(path, "/healthz" | "/readyz" | "/metrics")
    }
}

/// A request refused before its handler.
#[derive(Debug, Clone)]
struct Refusal {
    status: StatusCode,
    /// The `type` of envelopes, the title of problems.
    kind: &'static str,
    /// The `label` of envelopes.
    label: &'static str,
    message: String,
    value: Value,
    /// A problem with the body: the old family answers it as its send does.
    body_problem: bool,
}

fn refuse(surface: Surface, r: Refusal) -> Response {
    let context = json!({"key": if r.body_problem { "Body" } else { "Api" }, "label": r.label, "value": r.value});
    match surface {
        Surface::CompatOld if r.body_problem => json_response(
            r.status,
            &json!({"success": false, "message": "No hay datos para enviar", "detail": r.message}),
        ),
        Surface::CompatOld => json_response(
            r.status,
            &json!({"context": context, "message": r.message, "path": [r.label], "type": r.kind}),
        ),
        Surface::CompatNew | Surface::Other => {
            compat::envelope(r.status, context, &r.message, json!([r.label]), r.kind)
        }
        Surface::Problems => admin::problem(
            r.status,
            &r.kind.to_ascii_lowercase().replace(' ', "-"),
            r.kind,
            &r.message,
            json!({}),
        ),
        Surface::Webhooks => (r.status, r.message).into_response(),
    }
}

/// Reads the whole body within `limit` bytes: `Err` with the refusal otherwise.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Refusal> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read a request body");
            Err(Refusal {
                status: StatusCode::BAD_REQUEST,
                kind: "Bad format",
                label: "body",
                message: "the body could not be read".into(),
                value: Value::Null,
                body_problem: true,
            })
        }
    }
}

fn too_large(limit: usize) -> Refusal {
    Refusal {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        kind: "Payload Too Large",
        label: "body",
        message: format!("the body is larger than {limit} bytes"),
        value: json!(limit),
        body_problem: true,
    }
}

/// The middleware around every route (and the fallback).
pub async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id_of(req.headers().get(REQUEST_ID));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_string();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let mut response = handle(&app, &id, &path, &route, req, next)
        .instrument(span.clone())
        .await;
    let status = response.status().as_u16();
    let took = started.elapsed();
    app.metrics.http_request(&route, &method, status, took);
    span.in_scope(|| {
        let latency_ms = took.as_secs_f64() * 1000.0;
        if Surface::is_ops(&path) {
            tracing::debug!(status, latency_ms, path, "request answered");
        } else {
            tracing::info!(status, latency_ms, path, "request answered");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The route of bulk sends, whose bodies (up to 10,000 recipients) have their own limit.
const BATCH_ROUTE: &str = "/v1/messages/batch";

/// The largest body a route accepts.
fn body_limit(config: &crate::config::Config, route: &str) -> u64 {
    if route == BATCH_ROUTE {
        config.max_batch_body_bytes.max(config.max_body_bytes)
    } else {
        config.max_body_bytes
    }
}

async fn handle(
    app: &App,
    id: &str,
    path: &str,
    route: &str,
    req: Request,
    next: Next,
) -> Response {
    let surface = Surface::of(path);
    let max = body_limit(&app.config, route);
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return refuse(surface, too_large(limit));
    }
    let timeout = if route == BATCH_ROUTE {
        app.config.batch_request_timeout()
    } else {
        app.config.request_timeout()
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let (mut parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout_at(deadline, read_body(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(refusal)) => return refuse(surface, refusal),
        Err(_) => {
            return refuse(
                surface,
                timed_out(StatusCode::REQUEST_TIMEOUT, "Request Timeout", timeout),
            );
        }
    };
    parts.extensions.insert(RequestId(id.to_string()));
    let req = Request::from_parts(parts, Body::from(bytes));
    match tokio::time::timeout_at(deadline, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout_ms = timeout.as_millis() as u64, "request timed out");
            let mut r = refuse(
                surface,
                timed_out(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable",
                    timeout,
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    }
}

fn timed_out(status: StatusCode, kind: &'static str, timeout: Duration) -> Refusal {
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    Refusal {
        status,
        kind,
        label: "api.request",
        message: format!("the request took longer than {ms} ms"),
        value: json!(ms),
        body_problem: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_request_ids_are_kept() {
        let keep = |s: &str| request_id_of(Some(&HeaderValue::from_str(s).unwrap()));
        assert_eq!(keep("abc-123_X.y"), "abc-123_X.y");
        let long = "a".repeat(64);
        assert_eq!(keep(&long), long);
        assert_ne!(keep(&"a".repeat(65)), "a".repeat(65));
        assert!(keep("a b").starts_with("req_"));
        assert!(keep("a\"b").starts_with("req_"));
        assert!(keep("").starts_with("req_"));
        assert!(request_id_of(None).starts_with("req_"));
    }

    #[test]
    fn paths_belong_to_surfaces() {
        assert_eq!(Surface::of("/api/template/sendmessage"), Surface::CompatOld);
        assert_eq!(Surface::of("/templates/tpl_1"), Surface::CompatNew);
        assert_eq!(Surface::of("/v1/admin/messages/m"), Surface::Problems);
        assert_eq!(Surface::of("/v1/messages"), Surface::Problems);
        assert_eq!(Surface::of("/webhooks/whatsapp"), Surface::Webhooks);
        assert_eq!(Surface::of("/metrics"), Surface::Other);
        assert_eq!(Surface::of("/"), Surface::Other);
    }
}
