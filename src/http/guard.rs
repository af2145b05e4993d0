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

use tracing::Instrument;

use super::compat::{CompatError, Family};
use super::problem::Problem;
use crate::api::compat::{CompatErrorBody, ContextValue, ErrorContext};
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
    /// `/v1/…`, the admin and the native APIs, and the console's `/console/…`: problem
    /// documents.
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
            "v1" | "console" => Surface::Problems,
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
    /// The `value` of envelopes.
    value: Option<ContextValue>,
    /// A problem with the body: the old family answers it as its send does.
    body_problem: bool,
}

fn refuse(surface: Surface, r: Refusal) -> Response {
    let key = if r.body_problem { "Body" } else { "Api" };
    let context = ErrorContext {
        value: r.value,
        ..ErrorContext::new(key, r.label)
    };
    match surface {
        Surface::CompatOld if r.body_problem => {
            CompatError::invalid_body(r.status, r.message).into_response()
        }
        Surface::CompatOld => CompatError::in_family(
            Family::Old,
            r.status,
            CompatErrorBody::new(context, r.message, r.kind),
        )
        .into_response(),
        Surface::CompatNew | Surface::Other => {
            CompatError::envelope(r.status, CompatErrorBody::new(context, r.message, r.kind))
                .into_response()
        }
        // The type is the refusal's kind: `Payload Too Large` → `/problems/payload-too-large`.
        Surface::Problems => Problem::new(
            r.status,
            r.kind.to_ascii_lowercase().replace(' ', "-"),
            r.kind,
            r.message,
        )
        .into_response(),
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
                value: None,
                body_problem: true,
            })
        }
    }
}

/// A byte count or a duration, as an envelope's `value`.
fn count(n: impl TryInto<i64>) -> ContextValue {
    ContextValue::Number(n.try_into().unwrap_or(i64::MAX))
}

fn too_large(limit: usize) -> Refusal {
    Refusal {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        kind: "Payload Too Large",
        label: "body",
        message: format!("the body is larger than {limit} bytes"),
        value: Some(count(limit)),
        body_problem: true,
    }
}

/// The middleware around every route (and the fallback).
pub async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id_of(req.headers().get(REQUEST_ID));
    // Shared, not copied: the matched path and the URI hold reference-counted bytes.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched
        .as_ref()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    let method = req.method().clone();
    let uri = req.uri().clone();
    let path = uri.path();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let mut response = handle(&app, &id, path, route, req, next)
        .instrument(span.clone())
        .await;
    let status = response.status().as_u16();
    let took = started.elapsed();
    app.metrics
        .http_request(route, method.as_str(), status, took);
    span.in_scope(|| {
        let latency_ms = took.as_secs_f64() * 1000.0;
        if Surface::is_ops(path) {
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

/// The route of media uploads, whose bodies (files up to 100 MB) have their own limit.
const MEDIA_ROUTE: &str = "/v1/media";

/// The routes that submit templates, whose bodies carry media samples in base64: they take
/// the bulk send's limit.
const TEMPLATE_SUBMIT_ROUTES: [&str; 2] = ["/v1/templates", "/v1/admin/channels/{id}/templates"];

/// The largest body a route accepts.
fn body_limit(config: &crate::config::Config, route: &str) -> u64 {
    match route {
        BATCH_ROUTE => config.max_batch_body_bytes.max(config.max_body_bytes),
        r if TEMPLATE_SUBMIT_ROUTES.contains(&r) => {
            config.max_batch_body_bytes.max(config.max_body_bytes)
        }
        MEDIA_ROUTE => config.max_media_bytes.max(config.max_body_bytes),
        _ => config.max_body_bytes,
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
    let head_limit = usize::try_from(app.config.max_header_bytes).unwrap_or(usize::MAX);
    if head_size(&req) > head_limit {
        return refuse(surface, head_too_large(head_limit));
    }
    if let Some(response) = bad_path(surface, route, path) {
        return response;
    }
    if surface == Surface::Problems
        && let Some(response) = unsupported_content_type(route, &req)
    {
        return response;
    }
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
    let timeout = if route == BATCH_ROUTE || route == MEDIA_ROUTE {
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

/// About the size of the request head as it came: request line, header lines, blank line.
fn head_size(req: &Request) -> usize {
    let line = req.method().as_str().len() + 1 + display_len(req.uri()) + 11;
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    line + headers + 2
}

/// The length of what `value` displays, without writing it anywhere.
fn display_len(value: &impl std::fmt::Display) -> usize {
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = std::fmt::write(&mut count, format_args!("{value}"));
    count.0
}

fn head_too_large(limit: usize) -> Refusal {
    Refusal {
        status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        kind: "Request Header Fields Too Large",
        label: "headers",
        message: format!("the request line and headers are larger than {limit} bytes"),
        value: Some(count(limit)),
        body_problem: false,
    }
}

/// Decodes `%XX` escapes as the router's path extractor does (a `%` not followed by two hex
/// digits stays as it is).
fn percent_decode(segment: &str) -> Vec<u8> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// A path parameter whose percent-decoding is not UTF-8 (`/v1/messages/%ff`), answered in the
/// shape of its API instead of the router's plain-text `Invalid URL`: the parameter named as
/// the API reference names it.
fn bad_path(surface: Surface, route: &str, path: &str) -> Option<Response> {
    let segments = path.split('/').filter(|s| !s.is_empty());
    let (param, value) = route
        .split('/')
        .filter(|s| !s.is_empty())
        .zip(segments)
        .find_map(|(template, segment)| {
            let name = template.strip_prefix('{')?.strip_suffix('}')?;
            std::str::from_utf8(&percent_decode(segment))
                .is_err()
                .then_some((name, segment))
        })?;
    let name = match (surface, param) {
        (Surface::CompatOld | Surface::CompatNew, "id") => "templateId".to_string(),
        _ => camel_case(param),
    };
    let message = format!("{name} is not valid percent-encoded UTF-8");
    Some(match surface {
        Surface::Problems => {
            Problem::field(&name, "is not valid percent-encoded UTF-8").into_response()
        }
        Surface::CompatOld | Surface::CompatNew | Surface::Other => {
            let context = ErrorContext::new("Params", format!("params.{name}")).with_value(value);
            let family = if surface == Surface::CompatOld {
                Family::Old
            } else {
                Family::New
            };
            let body = CompatErrorBody::new(context, message, "Bad format");
            CompatError::in_family(family, StatusCode::BAD_REQUEST, body).into_response()
        }
        Surface::Webhooks => (StatusCode::BAD_REQUEST, message).into_response(),
    })
}

fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The body types a route of the native and admin APIs takes: JSON (`charset` UTF-8 if
/// given; `application/*+json` too), or `multipart/form-data` for media uploads. `None`: the
/// request carries no body, or an accepted type; otherwise the 415 problem.
fn unsupported_content_type(route: &str, req: &Request) -> Option<Response> {
    if !matches!(req.method().as_str(), "POST" | "PUT" | "PATCH") {
        return None;
    }
    let headers = req.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0);
    if !has_body {
        return None;
    }
    let given = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let multipart = route == MEDIA_ROUTE;
    let accepted = if multipart {
        "multipart/form-data"
    } else {
        "application/json"
    };
    if given
        .as_deref()
        .is_some_and(|ct| content_type_accepted(ct, multipart))
    {
        return None;
    }
    let detail = match &given {
        Some(ct) => format!(
            "the body's Content-Type '{ct}' is not {}",
            if multipart {
                "multipart/form-data"
            } else {
                "application/json (UTF-8)"
            }
        ),
        None => format!(
            "the body has no Content-Type; send it as {}",
            if multipart {
                "multipart/form-data"
            } else {
                "application/json"
            }
        ),
    };
    Some(
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        )
        .with(|p| {
            p.content_type = Some(given);
            p.accepted = Some(vec![accepted.to_string()]);
        })
        .into_response(),
    )
}

fn content_type_accepted(content_type: &str, multipart: bool) -> bool {
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if multipart {
        return essence == "multipart/form-data";
    }
    let json = essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.len() > "+json".len() && sub.ends_with("+json"));
    json && parts.all(|param| match param.split_once('=') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") => {
            let v = v.trim().trim_matches('"');
            v.eq_ignore_ascii_case("utf-8") || v.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    })
}

fn timed_out(status: StatusCode, kind: &'static str, timeout: Duration) -> Refusal {
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    Refusal {
        status,
        kind,
        label: "api.request",
        message: format!("the request took longer than {ms} ms"),
        value: Some(count(ms)),
        body_problem: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_sends_and_media_have_their_own_body_limits() {
        let config = crate::config::Config {
            max_body_bytes: 10,
            max_batch_body_bytes: 20,
            max_media_bytes: 30,
            ..crate::config::Config::default()
        };
        assert_eq!(body_limit(&config, "/v1/messages"), 10);
        assert_eq!(body_limit(&config, BATCH_ROUTE), 20);
        assert_eq!(body_limit(&config, MEDIA_ROUTE), 30);
        let small = crate::config::Config {
            max_body_bytes: 50,
            ..config
        };
        assert_eq!(body_limit(&small, MEDIA_ROUTE), 50);
    }

    #[test]
    fn a_uri_is_measured_as_it_displays() {
        for text in [
            "/",
            "/v1/messages?limit=5&x=%20",
            "http://example.com:8080/a/b?c",
        ] {
            let uri: axum::http::Uri = text.parse().unwrap();
            assert_eq!(display_len(&uri), uri.to_string().len(), "{text}");
        }
    }

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
    fn json_bodies_are_recognised_by_their_content_type() {
        for ok in [
            "application/json",
            "APPLICATION/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/problem+json",
        ] {
            assert!(content_type_accepted(ok, false), "{ok}");
        }
        for refused in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/xml",
            "application/json; charset=utf-16",
            "application/+json",
            "application/jsonp",
            "multipart/form-data; boundary=x",
        ] {
            assert!(!content_type_accepted(refused, false), "{refused}");
        }
        assert!(content_type_accepted(
            "Multipart/Form-Data; boundary=x",
            true
        ));
        assert!(!content_type_accepted("application/json", true));
    }

    #[test]
    fn path_segments_are_percent_decoded_as_the_router_does() {
        assert_eq!(percent_decode("a%41b"), b"aAb");
        assert_eq!(percent_decode("%ff"), [0xff]);
        assert_eq!(percent_decode("%zz%4"), b"%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é".as_bytes());
        assert_eq!(camel_case("channel_id"), "channelId");
        assert_eq!(camel_case("id"), "id");
    }

    #[test]
    fn paths_belong_to_surfaces() {
        assert_eq!(Surface::of("/api/template/sendmessage"), Surface::CompatOld);
        assert_eq!(Surface::of("/templates/tpl_1"), Surface::CompatNew);
        assert_eq!(Surface::of("/v1/admin/messages/m"), Surface::Problems);
        assert_eq!(Surface::of("/v1/messages"), Surface::Problems);
        assert_eq!(Surface::of("/console/api/session"), Surface::Problems);
        assert_eq!(Surface::of("/webhooks/whatsapp"), Surface::Webhooks);
        assert_eq!(Surface::of("/metrics"), Surface::Other);
        assert_eq!(Surface::of("/"), Surface::Other);
    }
}
