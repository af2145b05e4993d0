//! The operator console (`/console`): a page of plain HTML, CSS and JavaScript embedded in the
//! binary (no CDN, nothing fetched at run time), and the JSON endpoints it reads and acts
//! through (`/console/api/…`). The endpoints are the page's own, not a public API: they are
//! left out of `openapi.json`. Each maps a request to one call of `service::console`.
//!
//! Sign-in takes the admin token or an account API key and answers a session cookie
//! (`plantilla_console`: HttpOnly, SameSite=Strict, Path=/console, 12 h, `Secure` behind
//! https). Every request that changes something must carry the session's CSRF token as
//! `X-CSRF-Token` (403 otherwise).

use std::collections::HashMap;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::native_send::send_problem;
use super::params::{parse_cursor, parse_json, parse_limit, parse_time};
use super::problem::Problem;
use super::same_secret;
use super::typed_json;
use crate::api::console::SignedOut;
use crate::app::App;
use crate::service::console::{self as svc, ConsoleError, ConsoleResult, Viewer};

pub const COOKIE: &str = "plantilla_console";
pub const CSRF_HEADER: &str = "x-csrf-token";

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const ICON_SVG: &str = include_str!("assets/icon.svg");

/// No inline script or style, nothing from another origin, never framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

pub fn routes(app: &App) -> Router<App> {
    let mut router = Router::new()
        .route("/console", get(index))
        .route("/console/assets/{name}", get(asset))
        .route(
            "/console/api/session",
            get(session).post(sign_in).delete(sign_out),
        )
        .route("/console/api/overview", get(overview))
        .route("/console/api/messages", get(messages))
        .route("/console/api/messages/{id}", get(message))
        .route("/console/api/templates", get(templates))
        .route("/console/api/templates/sync", post(sync_templates))
        .route("/console/api/templates/{id}", get(template))
        .route("/console/api/templates/{id}/preview", post(preview))
        .route("/console/api/templates/{id}/test", post(send_test))
        .route("/console/api/channels", get(channels))
        .route(
            "/console/api/channels/{id}",
            axum::routing::patch(update_channel),
        )
        .route("/console/api/channels/{id}/resume", post(resume_channel))
        .route(
            "/console/api/channels/{id}/rotate-token",
            post(rotate_token),
        )
        .route("/console/api/batches", get(batches))
        .route("/console/api/callbacks", get(callbacks))
        .route("/console/api/conversations", get(conversations))
        .route("/console/api/conversations/{id}", get(conversation));
    if app.config.console_at_root {
        router = router.route("/", get(to_console));
    }
    router
}

// --- The page --------------------------------------------------------------------------------

fn page_headers(mut r: Response, content_type: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn text(status: StatusCode, body: &'static str, content_type: &'static str) -> Response {
    let r = Response::builder()
        .status(status)
        .body(Body::from(body))
        .expect("a static response");
    page_headers(r, content_type)
}

async fn index() -> Response {
    text(StatusCode::OK, INDEX_HTML, "text/html; charset=utf-8")
}

async fn asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "app.js" => text(StatusCode::OK, APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => text(StatusCode::OK, APP_CSS, "text/css; charset=utf-8"),
        "icon.svg" => text(StatusCode::OK, ICON_SVG, "image/svg+xml"),
        _ => Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("the console has no asset '{name}'"),
        )
        .into_response(),
    }
}

/// The demo's `GET /`: to the console.
async fn to_console() -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, "/console")
        .body(Body::empty())
        .expect("a static response")
}

// --- Sessions --------------------------------------------------------------------------------

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.trim().to_string())
        })
}

/// Whether the request came over https (directly configured, or said by the proxy in front).
fn secure(app: &App, headers: &HeaderMap) -> bool {
    app.config.console_secure_cookie
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn session_cookie(value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .expect("a cookie of visible ASCII")
}

fn problem(e: ConsoleError) -> Problem {
    match e {
        ConsoleError::Unauthorized => Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "sign in with the admin token or an account API key",
        ),
        ConsoleError::Forbidden(why) => {
            Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", why)
        }
        ConsoleError::Invalid(f) => Problem::field(&f.field, f.message),
        ConsoleError::NotFound { kind, id } => Problem::not_found(kind, &id),
        ConsoleError::Upstream(detail) => Problem::new(
            StatusCode::BAD_GATEWAY,
            "upstream",
            "The provider refused",
            detail,
        ),
        ConsoleError::Send(e) => send_problem(e, ""),
        ConsoleError::Internal(e) => Problem::internal(&e),
    }
}

/// The signed-in viewer, from the session cookie; for a method that changes something, only
/// with the session's CSRF token.
impl FromRequestParts<App> for Viewer {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Problem> {
        let token = cookie_token(&parts.headers).unwrap_or_default();
        let viewer = svc::viewer(app, &token).await.map_err(problem)?;
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let given = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if given.is_empty() || !same_secret(given, &viewer.session.csrf_token) {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "Missing or wrong CSRF token",
                    "send the session's csrfToken as the X-CSRF-Token header",
                ));
            }
        }
        Ok(viewer)
    }
}

fn answer<T: serde::Serialize>(result: ConsoleResult<T>) -> Response {
    match result {
        Ok(v) => no_store(typed_json(StatusCode::OK, &v)),
        Err(e) => problem(e).into_response(),
    }
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn sign_in(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let value = match parse_json(&body) {
        Ok(v) => v,
        Err(p) => return p.into_response(),
    };
    let signed = match svc::sign_in(&app, &value).await {
        Ok(s) => s,
        Err(ConsoleError::Unauthorized) => {
            return Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                "the token is not the admin token or an API key of this server",
            )
            .into_response();
        }
        Err(e) => return problem(e).into_response(),
    };
    let mut r = answer(svc::session_view(&app, &signed.viewer).await);
    if r.status().is_success() {
        r.headers_mut().insert(
            header::SET_COOKIE,
            session_cookie(
                &signed.token,
                svc::SESSION_TTL_MS / 1000,
                secure(&app, &headers),
            ),
        );
    }
    r
}

async fn session(State(app): State<App>, v: Viewer) -> Response {
    answer(svc::session_view(&app, &v).await)
}

async fn sign_out(State(app): State<App>, headers: HeaderMap, v: Viewer) -> Response {
    let mut r = answer(
        svc::sign_out(&app, &v)
            .await
            .map(|()| SignedOut { signed_out: true }),
    );
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie("", 0, secure(&app, &headers)),
    );
    r
}

// --- Pages -----------------------------------------------------------------------------------

type Q = Query<HashMap<String, String>>;

fn opt(q: &HashMap<String, String>, key: &str) -> Option<String> {
    q.get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

// A request's own fields are checked before who asks (`Result<Viewer, _>`, then `viewer?`):
// a malformed request is a 400 whether or not it is signed in.

async fn overview(State(app): State<App>, Query(q): Q, v: Viewer) -> Response {
    answer(svc::overview(&app, &v, opt(&q, "account").as_deref()).await)
}

async fn messages(
    State(app): State<App>,
    Query(q): Q,
    viewer: Result<Viewer, Problem>,
) -> Result<Response, Problem> {
    let query = svc::MessageQuery {
        account: opt(&q, "account"),
        channel_id: opt(&q, "channelId"),
        status: opt(&q, "status"),
        template_id: opt(&q, "templateId"),
        phone_number: opt(&q, "phoneNumber"),
        batch_id: opt(&q, "batchId"),
        conversation_id: None,
        from: parse_time(&q, "from")?,
        to: parse_time(&q, "to")?,
        after: parse_cursor(&q)?,
        limit: parse_limit(&q)?,
    };
    Ok(answer(svc::messages(&app, &viewer?, query).await))
}

async fn message(State(app): State<App>, Path(id): Path<String>, v: Viewer) -> Response {
    answer(svc::message(&app, &v, &id).await)
}

async fn templates(State(app): State<App>, Query(q): Q, v: Viewer) -> Response {
    answer(svc::templates(&app, &v, opt(&q, "account").as_deref()).await)
}

async fn template(State(app): State<App>, Path(id): Path<String>, v: Viewer) -> Response {
    answer(svc::template(&app, &v, &id).await)
}

/// A JSON object body (an empty body is `{}`).
fn body_of(body: &Bytes) -> Result<Value, Problem> {
    if body.is_empty() {
        Ok(json!({}))
    } else {
        parse_json(body)
    }
}

async fn preview(
    State(app): State<App>,
    Path(id): Path<String>,
    viewer: Result<Viewer, Problem>,
    body: Bytes,
) -> Result<Response, Problem> {
    let value = body_of(&body)?;
    Ok(answer(svc::preview(&app, &viewer?, &id, &value).await))
}

async fn send_test(
    State(app): State<App>,
    Path(id): Path<String>,
    viewer: Result<Viewer, Problem>,
    body: Bytes,
) -> Result<Response, Problem> {
    let value = body_of(&body)?;
    Ok(answer(svc::send_test(&app, &viewer?, &id, &value).await))
}

async fn sync_templates(State(app): State<App>, Query(q): Q, v: Viewer) -> Response {
    answer(svc::sync_templates(&app, &v, opt(&q, "account").as_deref()).await)
}

async fn channels(State(app): State<App>, Query(q): Q, v: Viewer) -> Response {
    answer(svc::channels(&app, &v, opt(&q, "account").as_deref()).await)
}

async fn update_channel(
    State(app): State<App>,
    Path(id): Path<String>,
    viewer: Result<Viewer, Problem>,
    body: Bytes,
) -> Result<Response, Problem> {
    let value = body_of(&body)?;
    Ok(answer(
        svc::update_channel(&app, &viewer?, &id, &value).await,
    ))
}

async fn resume_channel(State(app): State<App>, Path(id): Path<String>, v: Viewer) -> Response {
    answer(svc::resume_channel(&app, &v, &id).await)
}

async fn rotate_token(State(app): State<App>, Path(id): Path<String>, v: Viewer) -> Response {
    answer(svc::rotate_token(&app, &v, &id).await)
}

async fn batches(State(app): State<App>, Query(q): Q, v: Viewer) -> Response {
    answer(svc::batches(&app, &v, opt(&q, "account").as_deref()).await)
}

async fn callbacks(State(app): State<App>, Query(q): Q, v: Viewer) -> Response {
    answer(svc::callbacks(&app, &v, opt(&q, "account").as_deref()).await)
}

async fn conversations(State(app): State<App>, Query(q): Q, v: Viewer) -> Response {
    let account = opt(&q, "account");
    let status = opt(&q, "status");
    let phone = opt(&q, "phoneNumber");
    answer(svc::conversations(&app, &v, account.as_deref(), status, phone).await)
}

async fn conversation(State(app): State<App>, Path(id): Path<String>, v: Viewer) -> Response {
    answer(svc::conversation(&app, &v, &id).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_read_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; plantilla_console=cs_abc ; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("cs_abc"));
        assert_eq!(cookie_token(&HeaderMap::new()), None);
    }

    #[test]
    fn the_session_cookie_is_strict_and_http_only() {
        let c = session_cookie("cs_x", 43200, false);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(c.contains("Path=/console") && !c.contains("Secure"));
        assert!(
            session_cookie("cs_x", 1, true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
    }
}
