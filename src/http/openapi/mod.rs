//! The OpenAPI 3.1 document of the HTTP surface (`GET /openapi.json`) and a reference page
//! rendered from it (`GET /docs`, self-contained HTML, no scripts).
//!
//! The component schemas are derived from the API's types (`crate::api`, `utoipa::ToSchema`).
//! The operations are declared on their handlers with `#[utoipa::path]` (gathered and finished
//! by `paths.rs`, which adds what every operation of an API shares). Three tests keep the
//! document true:
//! - `tests/it/openapi.rs`: every route of the router is an operation of the document and every
//!   operation a route (methods included), and the committed `openapi.json` is the document
//!   (so CI fails on drift);
//! - `tests/it/openapi_conformance.rs`: live responses of every operation validate (with the
//!   `jsonschema` crate) against the schema the document declares for their path, method and
//!   status, and a status the document does not declare fails;
//! - the unit tests below: ids are unique, every `$ref` resolves, path parameters are declared.
//!
//! **Documenting a new route**: its request and response bodies are types in `crate::api` (with
//! `ToSchema`, listed in their family's `schemas()`); put a `#[utoipa::path]` on its handler
//! naming them (see `paths.rs` for the conventions), list the handler in its module's `Doc`,
//! exercise it in `tests/it/openapi_conformance.rs`, then regenerate the committed copy with
//! `cargo run -- openapi > openapi.json`.

mod html;
mod paths;

use std::collections::BTreeSet;
use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};

use crate::app::App;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/openapi.json", get(serve_document))
        .route("/docs", get(serve_docs))
}

static DOCUMENT: LazyLock<Value> = LazyLock::new(build);
static DOCUMENT_TEXT: LazyLock<String> = LazyLock::new(|| to_text(&DOCUMENT));
static DOCS: LazyLock<String> = LazyLock::new(|| html::render(&DOCUMENT));

/// The OpenAPI document.
pub fn document() -> &'static Value {
    &DOCUMENT
}

/// The document as committed in `openapi.json` and printed by `plantilla openapi`: pretty JSON
/// with a final newline.
pub fn document_text() -> &'static str {
    &DOCUMENT_TEXT
}

/// The HTML reference page.
pub fn docs_html() -> &'static str {
    &DOCS
}

fn to_text(doc: &Value) -> String {
    let mut text = serde_json::to_string_pretty(doc).expect("a JSON value prints");
    text.push('\n');
    text
}

/// The operations of this module the document derives from their `#[utoipa::path]`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(serve_document, serve_docs))]
pub(crate) struct Doc;

/// The answer of `GET /openapi.json`, for the document.
struct OpenApiDocument;

impl utoipa::PartialSchema for OpenApiDocument {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("An OpenAPI 3.1 document."))
            .into()
    }
}

impl utoipa::ToSchema for OpenApiDocument {}

#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "getOpenApi",
    tag = REFERENCE,
    summary = "This OpenAPI document",
    description = "",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = inline(OpenApiDocument))),
)]
async fn serve_document() -> Response {
    let mut r = (StatusCode::OK, document_text()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::JSON_UTF8),
    );
    r
}

#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "getDocs",
    tag = REFERENCE,
    summary = "This reference as a page",
    description = "",
    responses((status = 200, description = "A self-contained HTML page rendered from this document.", content_type = "text/html", body = String)),
)]
async fn serve_docs() -> Response {
    let mut r = (StatusCode::OK, docs_html()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

// --- Problem types -------------------------------------------------------------------------

/// A problem type of the native and admin APIs: `type` is `/problems/<slug>`.
pub(crate) struct ProblemType {
    pub slug: &'static str,
    pub status: u16,
    pub title: &'static str,
    pub when: &'static str,
}

const fn problem(
    slug: &'static str,
    status: u16,
    title: &'static str,
    when: &'static str,
) -> ProblemType {
    ProblemType {
        slug,
        status,
        title,
        when,
    }
}

/// Every problem type the API answers, with the title it carries.
pub(crate) const PROBLEMS: &[ProblemType] = &[
    problem(
        "validation",
        400,
        "Invalid request",
        "the body, a query parameter or a header is wrong; `errors` names each failing field",
    ),
    problem(
        "idempotency-key-invalid",
        400,
        "Invalid Idempotency-Key",
        "the `Idempotency-Key` header is not 1 to 255 visible ASCII characters",
    ),
    problem(
        "invalid-field",
        400,
        "Invalid field",
        "admin API: a field is missing, unknown or wrong; `errors` names it",
    ),
    problem(
        "unauthorized",
        401,
        "Unauthorized",
        "no bearer token, or not one of this server",
    ),
    problem(
        "conversation-limit",
        402,
        "Conversation limit reached",
        "the send needs a new conversation and the account has used its plan's conversations this month (UTC); `conversationLimit` is the plan",
    ),
    problem(
        "not-found",
        404,
        "Not found",
        "no such thing, or not visible to the caller",
    ),
    problem(
        "conversation-pending",
        409,
        "Conversation pending",
        "an earlier template to the number is not confirmed by WhatsApp yet; nothing was sent; `conversationId` is that conversation",
    ),
    problem(
        "message-not-cancellable",
        409,
        "Message cannot be cancelled",
        "the message was already handed to WhatsApp (or ended, or is being sent); `messageStatus` is its status",
    ),
    problem(
        "send-at-beyond-horizon",
        422,
        "Send time too far ahead",
        "`sendAt` is more than `PLANTILLA_SCHEDULE_HORIZON_DAYS` (default 35) days ahead; `errors` names the field",
    ),
    problem(
        "channel-not-connected",
        409,
        "Channel not connected",
        "the channel's status is not `connected`; `channelStatus` is its status",
    ),
    problem(
        "template-not-found",
        422,
        "Template not found",
        "the account has no such template (by id, or by name and language)",
    ),
    problem(
        "template-incomplete",
        422,
        "Template incomplete",
        "the template has no `appId` or no `message`; `missing` lists them",
    ),
    problem(
        "template-not-sendable",
        422,
        "Template cannot be sent",
        "the template is not APPROVED or is deactivated (`templateStatus` is its status), or it has a component plantilla cannot send (`errors` names `template.components` with the reason)",
    ),
    problem(
        "missing-params",
        422,
        "Template params missing or refused",
        "a placeholder has no value, or a value WhatsApp refuses (newline, tab, more than 4 spaces in a row), or a media header has no media (`header`); `errors` names each param",
    ),
    problem(
        "invalid-params",
        422,
        "Template values refused",
        "a value Meta would refuse: a media link that is not http(s) or of the wrong kind, a button value on an index whose button is of another type or that the template lacks, a coupon over 15 characters, coordinates out of range, the wrong number of carousel cards, an offer expiry in the past; `errors` names each field",
    ),
    problem(
        "group-not-found",
        422,
        "Group not found",
        "`groupName` names no group of the account",
    ),
    problem(
        "recipient-opted-out",
        422,
        "Recipient opted out",
        "the template is MARKETING and the number is on the account's suppression list (an opt-out keyword, a marketing opt-out button, Meta's 131050, or the API); `errors` names `to`. UTILITY and AUTHENTICATION templates still go",
    ),
    problem(
        "idempotency-key-reused",
        422,
        "Idempotency key reused",
        "the `Idempotency-Key` was used with a different request",
    ),
    problem(
        "request-timeout",
        408,
        "Request Timeout",
        "the body did not arrive within the request timeout (`PLANTILLA_REQUEST_TIMEOUT_MS`)",
    ),
    problem(
        "payload-too-large",
        413,
        "Payload Too Large",
        "the body is larger than the limit (`PLANTILLA_MAX_BODY_BYTES`, 256 KiB by default; bulk sends and media uploads have their own)",
    ),
    problem(
        "media-too-large",
        413,
        "Media too large",
        "the uploaded file is larger than WhatsApp takes for its type; `limit` is that limit in bytes, `size` the file's",
    ),
    problem(
        "unsupported-media-type",
        415,
        "Unsupported media type",
        "the body's `Content-Type` is not one the operation takes (JSON, or `multipart/form-data` for media uploads; `contentType` is the given one, `accepted` lists those taken), or the uploaded file's type is not one WhatsApp takes (`mimeType` is its type, `accepted` lists those WhatsApp takes)",
    ),
    problem(
        "request-header-fields-too-large",
        431,
        "Request Header Fields Too Large",
        "the request line and headers are larger than `PLANTILLA_MAX_HEADER_BYTES` (64 KiB by default)",
    ),
    problem(
        "rate-limited",
        429,
        "Too many requests",
        "the token made more requests than its rate allows (`PLANTILLA_TOKEN_RATE_PER_SEC`); `Retry-After` says in how many seconds to retry",
    ),
    problem(
        "internal",
        500,
        "Internal Server Error",
        "something unexpected; `errorId` finds the cause in the server's log",
    ),
    problem(
        "upstream",
        502,
        "The provider refused",
        "Meta's Graph API refused or failed; `detail` has its answer",
    ),
    problem(
        "service-unavailable",
        503,
        "Service Unavailable",
        "the request took longer than the request timeout; `Retry-After` is 1",
    ),
];

/// The slug of every problem type.
pub(crate) fn problem_types() -> impl Iterator<Item = &'static str> {
    PROBLEMS.iter().map(|p| p.slug)
}

// --- The document --------------------------------------------------------------------------

pub(crate) const NATIVE: &str = "Native API";
pub(crate) const COMPAT_OLD: &str = "Compatible API (old family)";
pub(crate) const COMPAT_NEW: &str = "Compatible API (new family)";
pub(crate) const ADMIN: &str = "Admin API";
pub(crate) const WEBHOOKS: &str = "Meta webhooks";
pub(crate) const REFERENCE: &str = "Reference";
pub(crate) const OPERATIONS: &str = "Operations";

/// Tags in the order the reference page shows them, with their descriptions.
const TAGS: &[(&str, &str)] = &[
    (
        NATIVE,
        "The native API for new integrations: sends with idempotency keys, bulk sends, message \
         status and timelines, conversations and templates. Authenticate with a channel's \
         public token (calls see that channel) or an account API key (`ak_…`, account-wide; \
         sends name their `channelId`). Errors are RFC 9457 `application/problem+json`.",
    ),
    (
        COMPAT_OLD,
        "The AtomChat-compatible Template API, old family (`/api/Template…`). Authenticate \
         with a channel's public token. Paths are case-insensitive. Bodies follow AtomChat's \
         contract exactly, including its error shapes.",
    ),
    (
        COMPAT_NEW,
        "The AtomChat-compatible Template API, new family (`/templates…`): the same \
         behaviour as the old family; every error is the `{code, body}` envelope.",
    ),
    (
        ADMIN,
        "Setting up accounts, channels, groups, templates and API keys; looking at \
         conversations and messages. Mounted only when `PLANTILLA_ADMIN_TOKEN` is set; \
         authenticate with it. Errors are `application/problem+json` naming the field.",
    ),
    (
        WEBHOOKS,
        "Where Meta delivers WhatsApp notifications (statuses, inbound messages, template \
         status updates). Not for integrators; subscribe these URLs in Meta's app dashboard.",
    ),
    (REFERENCE, "This document and its reference page."),
    (
        OPERATIONS,
        "Liveness, readiness and Prometheus metrics for operators. No token (`/metrics` \
         takes one when `PLANTILLA_METRICS_TOKEN` is set): do not expose them publicly.",
    ),
];

fn description() -> String {
    let mut text = String::from(
        "plantilla sends WhatsApp template messages through an official WhatsApp number. \
         This document describes its whole HTTP surface: the native API (`/v1`), the \
         AtomChat-compatible Template API (both families), the admin API (`/v1/admin`), \
         Meta's webhooks, and this reference.\n\n\
         Every JSON body is UTF-8. Times are RFC 3339 in UTC with milliseconds. Ids are \
         opaque strings with a prefix (`msg_…`, `conv_…`, `tpl_…`). Response schemas \
         describe every field the server sends today; new fields may be added, so clients \
         should ignore fields they do not know. A path the server does not have answers 404 \
         with the compatible API's `{code, body}` envelope.\n\n\
         Every response carries `X-Request-Id` (the request's own when it is 1 to 64 of \
         `[A-Za-z0-9._-]`, else a new one). Every operation may also answer 413 (body larger \
         than the limit), 408 (body not received in time), 503 with `Retry-After` (the \
         request took longer than the timeout), 431 (request line and headers larger than \
         `PLANTILLA_MAX_HEADER_BYTES`) or 400 (a path parameter whose percent-decoding is \
         not UTF-8, named as this document names it), in the error shape of its API; the \
         native and compatible APIs answer 429 with `Retry-After` when a token exceeds its rate.\n\n\
         Problem types of the native and admin APIs (`type`, HTTP status, title: when):\n\n",
    );
    for p in PROBLEMS {
        text.push_str(&format!(
            "- `/problems/{}` {} {}: {}\n",
            p.slug, p.status, p.title, p.when
        ));
    }
    text
}

fn build() -> Value {
    let mut paths = Map::new();
    for (method, path, op) in paths::all() {
        let item = paths
            .entry(path.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        let twice = item
            .as_object_mut()
            .expect("a path item is an object")
            .insert(method.to_ascii_lowercase(), op)
            .is_some();
        assert!(!twice, "{method} {path} is declared twice");
    }
    let paths = Value::Object(paths);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "plantilla",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": env!("CARGO_PKG_DESCRIPTION"),
            "description": description(),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": TAGS.iter().map(|(name, d)| json!({"name": name, "description": d})).collect::<Vec<_>>(),
        "paths": paths,
        "components": {
            "schemas": components(&paths),
            "securitySchemes": {
                "channelToken": {
                    "type": "http", "scheme": "bearer",
                    "description": "A channel's public token (`pk_…`), shown when the channel is created or its token rotated. Calls see that channel and its account's templates.",
                },
                "apiKey": {
                    "type": "http", "scheme": "bearer",
                    "description": "An account API key (`ak_…`) from `POST /v1/admin/accounts/{id}/api-keys`. Account-wide: sends name their `channelId`.",
                },
                "adminToken": {
                    "type": "http", "scheme": "bearer",
                    "description": "The operator's `PLANTILLA_ADMIN_TOKEN`.",
                },
            },
        },
    })
}

/// The component schemas: derived from the API's types ([`crate::api::schemas`]) and from the
/// types the operations' attributes name ([`paths::schemas`]). A type of the API is as its
/// family's `schemas()` gives it, with the rules it adds to the derive (closed variants, a
/// send's choice of template).
fn components(paths: &Value) -> Value {
    let mut all = Map::new();
    let mut api_types = BTreeSet::new();
    for (name, schema) in crate::api::schemas() {
        all.insert(
            name.clone(),
            serde_json::to_value(schema).expect("a schema serializes"),
        );
        api_types.insert(name);
    }
    // Those the operations name that no type brought (an id type of a path parameter).
    let mut named = Vec::new();
    references(paths, &mut named);
    references(&Value::Object(all.clone()), &mut named);
    for (name, schema) in paths::schemas() {
        match all.get(&name) {
            Some(_) if api_types.contains(&name) => {}
            Some(known) => assert_eq!(known, &schema, "two schemas are named {name}"),
            None if named.contains(&name) => {
                all.insert(name, schema);
            }
            None => {}
        }
    }
    Value::Object(all)
}

/// The names of the components `v` refers to.
fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(name) = m
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                out.push(name.to_string());
            }
            m.values().for_each(|v| references(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// `(METHOD, path)` of every operation, e.g. `("GET", "/v1/messages/{id}")`.
pub fn operations() -> BTreeSet<(String, String)> {
    paths::all()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ref_resolves_and_every_schema_is_used() {
        let doc = document();
        let mut found = Vec::new();
        references(doc, &mut found);
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in &found {
            assert!(schemas.contains_key(name), "{name} does not resolve");
        }
        for name in schemas.keys() {
            assert!(found.contains(name), "schema {name} is never used");
        }
    }

    #[test]
    fn operations_are_unique_and_declare_their_path_parameters() {
        let ops = paths::all();
        let mut ids = BTreeSet::new();
        let mut routes = BTreeSet::new();
        for (method, path, op) in &ops {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id), "operationId {id} twice");
            assert!(routes.insert((method, path)), "{method} {path} twice");
            let in_path: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let no_params = Vec::new();
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .unwrap_or(&no_params)
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(in_path, declared, "{method} {path}");
            assert!(!op["responses"].as_object().unwrap().is_empty(), "{id}");
            let tag = op["tags"][0].as_str().unwrap();
            assert!(TAGS.iter().any(|(t, _)| *t == tag), "{id}");
        }
    }

    #[test]
    fn problem_types_are_known_and_answered_with_their_status() {
        for (_, _, op) in paths::all() {
            let id = op["operationId"].as_str().unwrap();
            for (status, response) in op["responses"].as_object().unwrap() {
                let Some(schema) = response["content"].get(PROBLEM_JSON) else {
                    continue;
                };
                for uri in schema["schema"]["allOf"][1]["properties"]["type"]["enum"]
                    .as_array()
                    .unwrap()
                {
                    let slug = uri.as_str().unwrap().trim_start_matches("/problems/");
                    let p = PROBLEMS
                        .iter()
                        .find(|p| p.slug == slug)
                        .unwrap_or_else(|| panic!("{id}: unknown problem type {slug}"));
                    assert_eq!(p.status.to_string(), *status, "{id}: {slug}");
                }
            }
        }
        let slugs: BTreeSet<&str> = PROBLEMS.iter().map(|p| p.slug).collect();
        assert_eq!(slugs.len(), PROBLEMS.len());
    }

    #[test]
    fn the_document_is_openapi_3_1_with_the_crate_version() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(document_text().ends_with("}\n"));
    }
}
