//! The AtomChat-compatible template API, both families:
//! old `/api/Template…` and new `/templates…`. Same behaviour, different error envelopes.

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::{Ref, RefOr, Schema};

use super::openapi::{COMPAT_NEW, COMPAT_OLD};
use super::{bearer, error_id, sorted_json, typed_json};
use crate::api::compat::{
    CompatAlreadyPending, CompatEnvelope, CompatErrorBody, CompatInvalidBody, CompatLimitReached,
    CompatSendAccepted, CompatSendRequest, CompatSendRequestNew, CompatTemplateDetail,
    CompatTemplateList, ErrorContext, LIMIT_REACHED, Label, SendState,
};
use crate::app::App;
use crate::domain::ids::{TemplateId, hash_token};
use crate::domain::phone::PhoneNumber;
use crate::domain::rate_limit::retry_after_secs;
use crate::domain::template::first_control;
use crate::service::input::{AnyJson, MAX_JSON_DEPTH, describe, json_too_deep, too_deep_detail};
use crate::service::send::{self, SendError, SendOutcome, SendRequest};
use crate::service::views;
use crate::store::{Channel, TemplateFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// "API de Plantillas": `/api/Template…`.
    Old,
    /// `/templates…`: every error in the `{code, body}` envelope.
    New,
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/template/sendmessage", post(send_old))
        .route("/api/template", get(list_old))
        .route("/api/template/{id}", get(detail_old))
        .route("/templates", post(send_new).get(list_new))
        .route("/templates/{id}", get(detail_new))
}

type Answer = Result<Response, CompatError>;

// --- The document ------------------------------------------------------------------------------

/// The operations of this module the document derives from their `#[utoipa::path]`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(send_old, list_old, detail_old, send_new, list_new, detail_new))]
pub(crate) struct Doc;

/// Row 2 of the contract's send table, as each operation's 400 names it.
macro_rules! unknown_token {
    () => {
        "The token names no channel (`Cannot find a channel associated with the public token Bearer`; the token is never echoed)."
    };
}

const UNKNOWN_TOKEN: &str = unknown_token!();
const SEND_SUMMARY: &str = "Send a template";
const SEND_DOC: &str = "Sends a template to a number. Outcomes, checked in this order: no token (401), unknown token (400), bad body (400), template not found (404), template without appId or message (400), template not sendable (400), channel not connected (400), params missing or refused (400), unknown group (400), a MARKETING template to a number on the account's suppression list (400, `body.phoneNumber`, `The recipient has opted out of marketing messages`); then by the number's conversation: open → 200 `Sent`, pending → 202 (nothing sent), none and the plan's conversations used up → 401, none → 200 `Pending` (a pending conversation is created; it opens when WhatsApp confirms the message, and closes if it fails).";
const SEND_BODY: &str = "The send.";
const SENT: &str = "Stored and queued: `Pending` (new conversation) or `Sent` (open conversation).";
const ALREADY_PENDING: &str = "The number has a pending conversation: nothing new is sent.";
const SEND_REFUSED_OLD: &str = concat!(
    unknown_token!(),
    " Or the body is wrong (`No hay datos para enviar` with `detail`). Or the template, channel, params or group refuse the send, or the number opted out of marketing (the envelope)."
);
const SEND_REFUSED_NEW: &str = concat!(
    unknown_token!(),
    " Or the body is wrong, or the template, channel, params or group refuse the send, or the number opted out of marketing."
);
const LIST_SUMMARY: &str = "List templates";
const LIST_DOC: &str = "The templates of the token's account, by page.";
const A_PAGE: &str = "A page of templates.";
const LIST_REFUSED: &str = concat!(
    unknown_token!(),
    " Or `page`/`size` is not a whole number in range (the envelope)."
);
const DETAIL_SUMMARY: &str = "Get a template";
const TEMPLATE_ID: &str = "The template id.";
const THE_TEMPLATE: &str = "The template.";
const NO_SUCH_TEMPLATE: &str = "The account has no such template.";
/// Row 1 of the contract's send table, old family: a text.
const NO_TOKEN_TEXT: &str = "No Authorization header: the text `No authorization token found.`";
/// Row 1, new family: the envelope.
const NO_TOKEN: &str = "No Authorization header.";
/// The per-token rate limit, checked before the token is looked up.
const RATE_LIMITED: &str = "The token made more requests than its rate allows (`type` `Too Many Requests`); `Retry-After` says in how many seconds to retry.";
const INTERNAL: &str =
    "Something unexpected happened; `context.value` is the id of the log line with the cause.";

/// One of `schemas` (components), for an answer of several shapes.
fn one_of(schemas: &[std::borrow::Cow<'static, str>]) -> RefOr<Schema> {
    schemas
        .iter()
        .fold(OneOfBuilder::new(), |one_of, name| {
            one_of.item(Ref::from_schema_name(name.clone()))
        })
        .into()
}

/// The old family's 400 of a send: an unknown token (the bare error), a body it cannot send
/// (row 3), or a refused send (the envelope).
struct OldSendRefused;

impl utoipa::PartialSchema for OldSendRefused {
    fn schema() -> RefOr<Schema> {
        one_of(&[
            CompatErrorBody::name(),
            CompatInvalidBody::name(),
            CompatEnvelope::name(),
        ])
    }
}

impl ToSchema for OldSendRefused {}

/// The old family's 400 of a list: an unknown token (the bare error) or a wrong `page`/`size`
/// (the envelope).
struct OldListRefused;

impl utoipa::PartialSchema for OldListRefused {
    fn schema() -> RefOr<Schema> {
        one_of(&[CompatErrorBody::name(), CompatEnvelope::name()])
    }
}

impl ToSchema for OldListRefused {}

/// `page` of a template list, as the document says it: 1 to [`MAX_PAGE`], 1 by default.
pub(crate) struct PageNumber;

impl utoipa::PartialSchema for PageNumber {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_PAGE))
            .default(Some(json!(1)))
            .into()
    }
}

impl ToSchema for PageNumber {}

/// The query of a template list, as [`list`] reads it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Page number.
    #[param(value_type = Option<PageNumber>, inline)]
    page: u32,
    /// Templates per page.
    // `isize`: an integer without a `format`.
    #[param(value_type = Option<isize>, minimum = 1, maximum = 200, default = 50)]
    size: u32,
    /// Only templates with this status.
    status: Option<String>,
    /// Only templates with this name.
    name: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/Template/SendMessage",
    operation_id = "sendTemplateOld",
    tag = COMPAT_OLD,
    summary = SEND_SUMMARY,
    description = SEND_DOC,
    request_body(content = CompatSendRequest, description = SEND_BODY),
    responses(
        (status = 200, description = SENT, body = CompatSendAccepted),
        (status = 202, description = ALREADY_PENDING, body = CompatAlreadyPending),
        (status = 400, description = SEND_REFUSED_OLD, body = inline(OldSendRefused)),
        (status = 401, description = "No Authorization header (the text `No authorization token found.`), or the plan's conversations are used up this month (JSON).", content(
            (String = "text/plain"),
            (CompatLimitReached = "application/json"),
        )),
        (status = 404, description = NO_SUCH_TEMPLATE, body = CompatEnvelope),
        (status = 500, description = INTERNAL, body = CompatErrorBody),
        (status = 429, description = RATE_LIMITED, body = CompatErrorBody),
    ),
)]
async fn send_old(
    State(app): State<App>,
    TokenChannel(c, _): TokenChannel<SendOld>,
    body: Bytes,
) -> Answer {
    send_template(&app, Family::Old, c, &body).await
}
#[utoipa::path(
    post,
    path = "/templates",
    operation_id = "sendTemplateNew",
    tag = COMPAT_NEW,
    summary = SEND_SUMMARY,
    description = SEND_DOC,
    request_body(content = CompatSendRequestNew, description = SEND_BODY),
    responses(
        (status = 200, description = SENT, body = CompatSendAccepted),
        (status = 202, description = ALREADY_PENDING, body = CompatAlreadyPending),
        (status = 400, description = SEND_REFUSED_NEW, body = CompatEnvelope),
        (status = 401, description = "No Authorization header, or the plan's conversations are used up this month (`context.label` `account.conversationLimit`).", body = CompatEnvelope),
        (status = 404, description = NO_SUCH_TEMPLATE, body = CompatEnvelope),
        (status = 500, description = INTERNAL, body = CompatEnvelope),
        (status = 429, description = RATE_LIMITED, body = CompatEnvelope),
    ),
)]
async fn send_new(
    State(app): State<App>,
    TokenChannel(c, _): TokenChannel<SendNew>,
    body: Bytes,
) -> Answer {
    send_template(&app, Family::New, c, &body).await
}
#[utoipa::path(
    get,
    path = "/api/Template",
    operation_id = "listTemplatesOld",
    tag = COMPAT_OLD,
    summary = LIST_SUMMARY,
    description = LIST_DOC,
    params(ListQuery),
    responses(
        (status = 200, description = A_PAGE, body = CompatTemplateList),
        (status = 400, description = LIST_REFUSED, body = inline(OldListRefused)),
        (status = 401, description = NO_TOKEN_TEXT, content_type = "text/plain", body = String),
        (status = 500, description = INTERNAL, body = CompatErrorBody),
        (status = 429, description = RATE_LIMITED, body = CompatErrorBody),
    ),
)]
async fn list_old(
    State(app): State<App>,
    q: Query<HashMap<String, String>>,
    TokenChannel(c, _): TokenChannel<ListOld>,
) -> Answer {
    list(&app, Family::Old, c, &q).await
}
#[utoipa::path(
    get,
    path = "/templates",
    operation_id = "listTemplatesNew",
    tag = COMPAT_NEW,
    summary = LIST_SUMMARY,
    description = LIST_DOC,
    params(ListQuery),
    responses(
        (status = 200, description = A_PAGE, body = CompatTemplateList),
        (status = 400, description = LIST_REFUSED, body = CompatEnvelope),
        (status = 401, description = NO_TOKEN, body = CompatEnvelope),
        (status = 500, description = INTERNAL, body = CompatEnvelope),
        (status = 429, description = RATE_LIMITED, body = CompatEnvelope),
    ),
)]
async fn list_new(
    State(app): State<App>,
    q: Query<HashMap<String, String>>,
    TokenChannel(c, _): TokenChannel<ListNew>,
) -> Answer {
    list(&app, Family::New, c, &q).await
}
#[utoipa::path(
    get,
    path = "/api/Template/{templateId}",
    operation_id = "getTemplateOld",
    tag = COMPAT_OLD,
    summary = DETAIL_SUMMARY,
    description = "",
    params(("templateId" = TemplateId, Path, description = TEMPLATE_ID)),
    responses(
        (status = 200, description = THE_TEMPLATE, body = CompatTemplateDetail),
        (status = 400, description = UNKNOWN_TOKEN, body = CompatErrorBody),
        (status = 404, description = NO_SUCH_TEMPLATE, body = CompatEnvelope),
        (status = 401, description = NO_TOKEN_TEXT, content_type = "text/plain", body = String),
        (status = 500, description = INTERNAL, body = CompatErrorBody),
        (status = 429, description = RATE_LIMITED, body = CompatErrorBody),
    ),
)]
async fn detail_old(
    State(app): State<App>,
    Path(id): Path<TemplateId>,
    TokenChannel(c, _): TokenChannel<DetailOld>,
) -> Answer {
    detail(&app, Family::Old, c, &id).await
}
#[utoipa::path(
    get,
    path = "/templates/{templateId}",
    operation_id = "getTemplateNew",
    tag = COMPAT_NEW,
    summary = DETAIL_SUMMARY,
    description = "",
    params(("templateId" = TemplateId, Path, description = TEMPLATE_ID)),
    responses(
        (status = 200, description = THE_TEMPLATE, body = CompatTemplateDetail),
        (status = 400, description = UNKNOWN_TOKEN, body = CompatEnvelope),
        (status = 404, description = NO_SUCH_TEMPLATE, body = CompatEnvelope),
        (status = 401, description = NO_TOKEN, body = CompatEnvelope),
        (status = 500, description = INTERNAL, body = CompatEnvelope),
        (status = 429, description = RATE_LIMITED, body = CompatEnvelope),
    ),
)]
async fn detail_new(
    State(app): State<App>,
    Path(id): Path<TemplateId>,
    TokenChannel(c, _): TokenChannel<DetailNew>,
) -> Answer {
    detail(&app, Family::New, c, &id).await
}

// --- Caller ----------------------------------------------------------------------------------

/// An endpoint of the compatible API: its family (the shape of its errors) and the controller
/// a 500 names.
pub(crate) trait Endpoint {
    const FAMILY: Family;
    const CONTROLLER: &'static str;
}

macro_rules! endpoints {
    ($($name:ident: $family:ident, $controller:ident;)*) => {$(
        pub(crate) struct $name;
        impl Endpoint for $name {
            const FAMILY: Family = Family::$family;
            const CONTROLLER: &'static str = $controller;
        }
    )*};
}

endpoints! {
    SendOld: Old, SEND_CONTROLLER;
    SendNew: New, SEND_CONTROLLER;
    ListOld: Old, LIST_CONTROLLER;
    ListNew: New, LIST_CONTROLLER;
    DetailOld: Old, DETAIL_CONTROLLER;
    DetailNew: New, DETAIL_CONTROLLER;
}

/// The channel a request's bearer token names, refused in the shape of endpoint `E`.
pub(crate) struct TokenChannel<E>(Channel, PhantomData<E>);

impl<E: Endpoint> FromRequestParts<App> for TokenChannel<E> {
    type Rejection = CompatError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, CompatError> {
        authenticate(app, E::FAMILY, &parts.headers, E::CONTROLLER)
            .await
            .map(|c| TokenChannel(c, PhantomData))
    }
}

// --- Errors ----------------------------------------------------------------------------------

/// An error of the compatible API, in its family's shape: the contract fixes each wording.
pub(crate) struct CompatError {
    status: StatusCode,
    /// Boxed: a handler's `Result` stays small.
    body: Box<ErrorBody>,
    /// `Retry-After` seconds, for a 429.
    retry_after: Option<u64>,
}

enum ErrorBody {
    /// The `{code, body}` envelope.
    Envelope(CompatEnvelope),
    /// The error body alone (the old family's errors the contract gives so).
    Bare(CompatErrorBody),
    /// The old family's refusal of a send body (row 3).
    InvalidBody(CompatInvalidBody),
    /// The old family's conversation limit (row 12).
    LimitReached(CompatLimitReached),
    /// The old family's plain-text answer.
    Text(&'static str),
}

impl CompatError {
    fn new(status: StatusCode, body: ErrorBody) -> Self {
        CompatError {
            status,
            body: Box::new(body),
            retry_after: None,
        }
    }

    /// `body` in the `{code, body}` envelope.
    pub(crate) fn envelope(status: StatusCode, body: CompatErrorBody) -> Self {
        let code = status.as_u16();
        CompatError::new(status, ErrorBody::Envelope(CompatEnvelope { code, body }))
    }

    /// The body itself (old family) or wrapped in `{code, body}` (new family).
    pub(crate) fn in_family(family: Family, status: StatusCode, body: CompatErrorBody) -> Self {
        match family {
            Family::Old => CompatError::new(status, ErrorBody::Bare(body)),
            Family::New => CompatError::envelope(status, body),
        }
    }

    /// The old family's 400 for a body it cannot send (row 3).
    pub(crate) fn invalid_body(status: StatusCode, detail: impl Into<String>) -> Self {
        CompatError::new(
            status,
            ErrorBody::InvalidBody(CompatInvalidBody::new(detail)),
        )
    }

    /// 500, logged under an id the answer gives.
    fn internal(family: Family, controller: &str, error: &anyhow::Error) -> Self {
        let id = error_id();
        tracing::error!(error_id = %id, error = format!("{error:#}"), "{controller} failed");
        let body = CompatErrorBody::new(
            ErrorContext::new("Api", format!("api.{controller}")).with_value(id),
            "Something went wrong while the operation was executed",
            "Internal Server Error",
        );
        CompatError::in_family(family, StatusCode::INTERNAL_SERVER_ERROR, body)
    }
}

impl IntoResponse for CompatError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut r = match self.body.as_ref() {
            ErrorBody::Envelope(body) => typed_json(status, body),
            ErrorBody::Bare(body) => typed_json(status, body),
            ErrorBody::InvalidBody(body) => typed_json(status, body),
            ErrorBody::LimitReached(body) => typed_json(status, body),
            ErrorBody::Text(text) => {
                let mut r = (status, *text).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                r
            }
        };
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

/// Rows 1 and 2 of the send table: the channel named by the bearer token.
async fn authenticate(
    app: &App,
    family: Family,
    headers: &HeaderMap,
    controller: &str,
) -> Result<Channel, CompatError> {
    let Some(token) = bearer(headers) else {
        return Err(match family {
            Family::Old => CompatError::new(
                StatusCode::UNAUTHORIZED,
                ErrorBody::Text("No authorization token found."),
            ),
            Family::New => CompatError::envelope(
                StatusCode::UNAUTHORIZED,
                CompatErrorBody::new(
                    ErrorContext::new("Authorization", "headers.authorization"),
                    "No authorization token found",
                    "Unauthorized",
                ),
            ),
        });
    };
    let found = if token.is_empty() {
        None
    } else {
        // Limited by the token's hash (never the token), before the lookup, so a flood
        // does not reach the database.
        let hash = hash_token(token);
        if let Err(wait) = app.rate_limiter.check(&hash, Instant::now()) {
            app.metrics.rate_limited();
            return Err(too_many_requests(family, wait));
        }
        app.store
            .channel_by_token(&hash)
            .await
            .map_err(|e| CompatError::internal(family, controller, &e.into()))?
    };
    found.ok_or_else(|| {
        // The token itself is never echoed: `value` is the scheme only.
        let body = CompatErrorBody::new(
            ErrorContext::new("Authorization", "headers.authorization").with_value("Bearer"),
            "Cannot find a channel associated with the public token Bearer",
            "Bad format",
        );
        CompatError::in_family(family, StatusCode::BAD_REQUEST, body)
    })
}

/// 429: the token made more requests than its rate allows; `Retry-After` says when to retry.
fn too_many_requests(family: Family, wait: Duration) -> CompatError {
    let secs = retry_after_secs(wait);
    let body = CompatErrorBody::new(
        ErrorContext::new("Authorization", "headers.authorization").with_value("Bearer"),
        format!("Too many requests with this token: retry in {secs} s"),
        "Too Many Requests",
    );
    let mut e = CompatError::in_family(family, StatusCode::TOO_MANY_REQUESTS, body);
    e.retry_after = Some(secs);
    e
}

/// What is wrong with a send body (row 3): the field and a sentence for the integrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    pub field: String,
    pub detail: String,
}

fn body_error(field: &str, detail: impl Into<String>) -> BodyError {
    BodyError {
        field: field.to_string(),
        detail: detail.into(),
    }
}

/// Where a send body's fields are read from, in [`read_send_body`]'s order: a parsed
/// `serde_json::Value` object (every type refused with the field's message) or the typed
/// fast path's fields (already of the right types).
trait SendFields {
    /// `key` as a string: absent and null are `None`.
    fn string(&mut self, key: &'static str) -> Result<Option<String>, BodyError>;
    /// `assign`.
    fn flag(&mut self, key: &'static str) -> Result<Option<bool>, BodyError>;
    /// `params`: `{name: value}`, each value as its text (null values left out).
    fn params(&mut self) -> Result<Option<BTreeMap<String, String>>, BodyError>;
}

impl SendFields for &serde_json::Map<String, Value> {
    fn string(&mut self, key: &'static str) -> Result<Option<String>, BodyError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(body_error(
                key,
                format!("{key} must be a string, got {}", describe(v)),
            )),
        }
    }

    fn flag(&mut self, key: &'static str) -> Result<Option<bool>, BodyError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(body_error(
                key,
                format!("{key} must be true or false, got {}", describe(v)),
            )),
        }
    }

    fn params(&mut self) -> Result<Option<BTreeMap<String, String>>, BodyError> {
        compat_params(self)
    }
}

fn required_string(fields: &mut impl SendFields, key: &'static str) -> Result<String, BodyError> {
    match fields.string(key)? {
        Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(_) => Err(body_error(key, format!("{key} must not be empty"))),
        None => Err(body_error(key, format!("{key} is required"))),
    }
}

/// An optional string that is stored (a contact's name): refused with a control character,
/// which WhatsApp does not accept either.
fn no_control(
    fields: &mut impl SendFields,
    key: &'static str,
) -> Result<Option<String>, BodyError> {
    let value = fields.string(key)?;
    if let Some(c) = value.as_deref().and_then(first_control) {
        return Err(body_error(
            key,
            format!(
                "{key} contains a control character (U+{:04X}), which WhatsApp does not accept",
                u32::from(c)
            ),
        ));
    }
    Ok(value)
}

/// Parses a send body of either family ([`CompatSendRequest`], [`CompatSendRequestNew`]) into
/// a [`SendRequest`].
///
/// A body whose fields all have their types is read straight into [`TypedSendBody`] (no
/// `serde_json::Value` tree); any other body (not JSON, not an object, a field of the wrong
/// type, a key given twice) is parsed into a `Value` and read as it always was, so every
/// refusal is the same. Both read the fields in one order ([`read_send_body`]).
pub fn parse_send_body(body: &[u8], family: Family) -> Result<SendRequest, BodyError> {
    if json_too_deep(body, MAX_JSON_DEPTH) {
        return Err(body_error("body", too_deep_detail()));
    }
    if let Ok(mut typed) = serde_json::from_slice::<TypedSendBody>(body) {
        return read_send_body(&mut typed, family);
    }
    parse_send_value(body, family)
}

/// [`parse_send_body`] through a `serde_json::Value`: what every body took before the typed
/// fast path, and what a body the fast path does not take still takes.
fn parse_send_value(body: &[u8], family: Family) -> Result<SendRequest, BodyError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| body_error("body", format!("the body is not valid JSON: {e}")))?;
    let Value::Object(obj) = &value else {
        return Err(body_error(
            "body",
            format!("the body must be a JSON object, got {}", describe(&value)),
        ));
    };
    read_send_body(&mut &*obj, family)
}

/// The fields of a send body, checked in the contract's order: the first wrong one refuses.
fn read_send_body(fields: &mut impl SendFields, family: Family) -> Result<SendRequest, BodyError> {
    let template_id = TemplateId::from(required_string(fields, "templateId")?);
    let phone_raw = required_string(fields, "phoneNumber")?;
    let phone_number =
        PhoneNumber::parse(&phone_raw).map_err(|e| body_error("phoneNumber", e.to_string()))?;
    let client_name = no_control(fields, "clientName")?;
    let names = match family {
        Family::Old => None,
        Family::New => Some((
            no_control(fields, "firstName")?,
            no_control(fields, "lastName")?,
        )),
    };
    let group_name = fields.string("groupName")?;
    let assign = fields.flag("assign")?;
    let params = fields.params()?;
    Ok(match names {
        None => CompatSendRequest {
            template_id,
            phone_number,
            client_name,
            group_name,
            assign,
            params,
        }
        .into(),
        Some((first_name, last_name)) => CompatSendRequestNew {
            template_id,
            phone_number,
            client_name,
            first_name,
            last_name,
            group_name,
            assign,
            params,
        }
        .into(),
    })
}

/// `params`: `{name: value}`, each value as its text (null values left out).
fn compat_params(
    obj: &serde_json::Map<String, Value>,
) -> Result<Option<BTreeMap<String, String>>, BodyError> {
    let map = match obj.get("params") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(v) => {
            return Err(body_error(
                "params",
                format!(
                    "params must be an object of {{name: value}}, got {}",
                    describe(v)
                ),
            ));
        }
    };
    let mut params = BTreeMap::new();
    for (k, v) in map {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            other => {
                return Err(body_error(
                    &format!("params.{k}"),
                    format!(
                        "params.{k} must be a string, number or boolean, got {}",
                        describe(other)
                    ),
                ));
            }
        };
        params.insert(k.clone(), text);
    }
    Ok(Some(params))
}

/// A send body whose every known field has its type: the fast path of [`parse_send_body`].
/// Deserializing fails (and the body goes the `Value` way) on anything else: a body that is
/// not an object, a known field of another type, a key (or a param) given twice, a number
/// `serde_json` would not keep as a number. Unknown keys are skipped, as the `Value` way
/// ignores them.
#[derive(Debug, Default)]
struct TypedSendBody {
    template_id: Option<String>,
    phone_number: Option<String>,
    client_name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    group_name: Option<String>,
    assign: Option<bool>,
    params: Option<BTreeMap<String, String>>,
}

impl SendFields for TypedSendBody {
    fn string(&mut self, key: &'static str) -> Result<Option<String>, BodyError> {
        Ok(match key {
            "templateId" => self.template_id.take(),
            "phoneNumber" => self.phone_number.take(),
            "clientName" => self.client_name.take(),
            "firstName" => self.first_name.take(),
            "lastName" => self.last_name.take(),
            "groupName" => self.group_name.take(),
            _ => unreachable!("a send body has no string field {key}"),
        })
    }

    fn flag(&mut self, _key: &'static str) -> Result<Option<bool>, BodyError> {
        Ok(self.assign)
    }

    fn params(&mut self) -> Result<Option<BTreeMap<String, String>>, BodyError> {
        Ok(self.params.take())
    }
}

impl<'de> serde::Deserialize<'de> for TypedSendBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TypedSendBodyVisitor)
    }
}

struct TypedSendBodyVisitor;

/// A key of a send body, matched without copying it.
enum SendKey {
    TemplateId,
    PhoneNumber,
    ClientName,
    FirstName,
    LastName,
    GroupName,
    Assign,
    Params,
    Other,
}

impl<'de> serde::Deserialize<'de> for SendKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = SendKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<SendKey, E> {
                Ok(match key {
                    "templateId" => SendKey::TemplateId,
                    "phoneNumber" => SendKey::PhoneNumber,
                    "clientName" => SendKey::ClientName,
                    "firstName" => SendKey::FirstName,
                    "lastName" => SendKey::LastName,
                    "groupName" => SendKey::GroupName,
                    "assign" => SendKey::Assign,
                    "params" => SendKey::Params,
                    _ => SendKey::Other,
                })
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Marks a key as given: a key given twice goes the `Value` way (where the last one wins).
fn first_time<E: serde::de::Error>(seen: &mut bool) -> Result<(), E> {
    if std::mem::replace(seen, true) {
        return Err(E::custom("a key given twice"));
    }
    Ok(())
}

impl<'de> serde::de::Visitor<'de> for TypedSendBodyVisitor {
    type Value = TypedSendBody;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a send body")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<TypedSendBody, A::Error> {
        let mut body = TypedSendBody::default();
        // Which keys were given (a null value counts).
        let mut seen = [false; 8];
        while let Some(key) = map.next_key::<SendKey>()? {
            match key {
                SendKey::TemplateId => {
                    let v: Option<String> = map.next_value()?;
                    first_time(&mut seen[0])?;
                    body.template_id = v;
                }
                SendKey::PhoneNumber => {
                    let v: Option<String> = map.next_value()?;
                    first_time(&mut seen[1])?;
                    body.phone_number = v;
                }
                SendKey::ClientName => {
                    let v: Option<String> = map.next_value()?;
                    first_time(&mut seen[2])?;
                    body.client_name = v;
                }
                SendKey::FirstName => {
                    let v: Option<String> = map.next_value()?;
                    first_time(&mut seen[3])?;
                    body.first_name = v;
                }
                SendKey::LastName => {
                    let v: Option<String> = map.next_value()?;
                    first_time(&mut seen[4])?;
                    body.last_name = v;
                }
                SendKey::GroupName => {
                    let v: Option<String> = map.next_value()?;
                    first_time(&mut seen[5])?;
                    body.group_name = v;
                }
                SendKey::Assign => {
                    let v: Option<bool> = map.next_value()?;
                    first_time(&mut seen[6])?;
                    body.assign = v;
                }
                SendKey::Params => {
                    let v: Option<TypedParams> = map.next_value()?;
                    first_time(&mut seen[7])?;
                    body.params = v.map(|p| p.0);
                }
                SendKey::Other => {
                    map.next_value::<AnyJson>()?;
                }
            }
        }
        Ok(body)
    }
}

/// `params` of the fast path: an object of strings, numbers, booleans and nulls, each
/// non-null value as [`compat_params`] writes it; a name given twice is refused.
struct TypedParams(BTreeMap<String, String>);

impl<'de> serde::Deserialize<'de> for TypedParams {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ParamsVisitor;
        impl<'de> serde::de::Visitor<'de> for ParamsVisitor {
            type Value = TypedParams;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of params")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TypedParams, A::Error> {
                let mut params = BTreeMap::new();
                // Null values are left out, but their names count as given.
                let mut nulls = std::collections::BTreeSet::new();
                while let Some(name) = map.next_key::<String>()? {
                    let value: ParamText = map.next_value()?;
                    if params.contains_key(&name) || nulls.contains(&name) {
                        return Err(serde::de::Error::custom("a param given twice"));
                    }
                    match value.0 {
                        Some(text) => {
                            params.insert(name, text);
                        }
                        None => {
                            nulls.insert(name);
                        }
                    }
                }
                Ok(TypedParams(params))
            }
        }
        d.deserialize_map(ParamsVisitor)
    }
}

/// A param's value as its text (`Value::Number`'s and `bool`'s own), `None` for null.
struct ParamText(Option<String>);

impl<'de> serde::Deserialize<'de> for ParamText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl serde::de::Visitor<'_> for TextVisitor {
            type Value = ParamText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ParamText, E> {
                Ok(ParamText(Some(v.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<ParamText, E> {
                Ok(ParamText(Some(v)))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ParamText, E> {
                Ok(ParamText(Some(v.to_string())))
            }
            // As `serde_json::Value` keeps numbers, then as `compat_params` writes them.
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ParamText, E> {
                Ok(ParamText(Some(serde_json::Number::from(v).to_string())))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ParamText, E> {
                Ok(ParamText(Some(serde_json::Number::from(v).to_string())))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ParamText, E> {
                // `Value` keeps a number it cannot hold as null, which is left out.
                Ok(ParamText(
                    serde_json::Number::from_f64(v).map(|n| n.to_string()),
                ))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<ParamText, E> {
                Ok(ParamText(None))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<ParamText, E> {
                Ok(ParamText(None))
            }
        }
        d.deserialize_any(TextVisitor)
    }
}

const SEND_CONTROLLER: &str = "SendTemplateController";

async fn send_template(app: &App, family: Family, channel: Channel, body: &[u8]) -> Answer {
    let req = parse_send_body(body, family).map_err(|e| match family {
        Family::Old => CompatError::invalid_body(StatusCode::BAD_REQUEST, e.detail),
        Family::New => {
            let label = format!(
                "body.{}",
                e.field.trim_start_matches("body").trim_start_matches('.')
            );
            let label = label.trim_end_matches('.').to_string();
            CompatError::envelope(
                StatusCode::BAD_REQUEST,
                CompatErrorBody::new(ErrorContext::new("Body", label), e.detail, "Bad format"),
            )
        }
    })?;
    let outcome = send::send(app, &channel, req)
        .await
        .map_err(|e| send_error(family, e))?;
    Ok(match outcome {
        SendOutcome::Sent {
            conversation_id,
            message_id,
        } => sorted_json(
            StatusCode::OK,
            &CompatSendAccepted::new(SendState::Sent, conversation_id, message_id),
        ),
        SendOutcome::Pending {
            conversation_id,
            message_id,
        } => sorted_json(
            StatusCode::OK,
            &CompatSendAccepted::new(SendState::Pending, conversation_id, message_id),
        ),
        SendOutcome::AlreadyPending { conversation_id } => sorted_json(
            StatusCode::ACCEPTED,
            &CompatAlreadyPending::new(conversation_id),
        ),
    })
}

fn send_error(family: Family, e: SendError) -> CompatError {
    let bad = StatusCode::BAD_REQUEST;
    let bad_format =
        |context: ErrorContext, message: &str| CompatErrorBody::new(context, message, "Bad format");
    match e {
        SendError::TemplateNotFound(id) => CompatError::envelope(
            StatusCode::NOT_FOUND,
            CompatErrorBody::new(
                ErrorContext::new("Body", "body.templateId").with_value(id),
                "Template not found",
                "Not found",
            ),
        ),
        SendError::TemplateIncomplete(missing) => {
            let missing: Vec<String> = missing.into_iter().map(String::from).collect();
            let context = ErrorContext {
                key: "Body".into(),
                label: Label::Many(missing),
                value: None,
            };
            CompatError::envelope(bad, bad_format(context, "No data to send"))
        }
        SendError::TemplateNotSendable { status, reason } => CompatError::envelope(
            bad,
            bad_format(
                ErrorContext::new("Template", "template.status").with_value(status),
                &reason,
            ),
        ),
        SendError::TemplateUnsupported(reason) => CompatError::envelope(
            bad,
            bad_format(
                ErrorContext::new("Template", "template.components"),
                &format!("The template cannot be sent: {reason}"),
            ),
        ),
        SendError::InvalidParams(invalid) => {
            let labels: Vec<String> = invalid
                .iter()
                .map(|v| format!("body.params.{}", v.key))
                .collect();
            let messages: Vec<String> = invalid.iter().map(|v| v.message.clone()).collect();
            let body = CompatErrorBody {
                context: ErrorContext::new("Body", labels[0].clone()),
                message: messages.join("; "),
                path: labels,
                kind: "Bad format".into(),
                detail: Some(messages),
            };
            CompatError::envelope(bad, body)
        }
        SendError::ChannelNotConnected(status) => CompatError::envelope(
            bad,
            bad_format(
                ErrorContext::new("Channel", "channel.status").with_value(status),
                "The channel associated to the template is not configured yet, please contact the support team",
            ),
        ),
        SendError::MissingParams { missing, detail } => {
            let mut body = bad_format(
                ErrorContext::new("Body", "body.params"),
                &format!("Missing params:[{}] ", missing.join(",")),
            );
            body.detail = Some(detail);
            CompatError::envelope(bad, body)
        }
        SendError::GroupNotFound(name) => CompatError::envelope(
            bad,
            bad_format(
                ErrorContext::new("Body", "body.groupName").with_value(name),
                "Group not found",
            ),
        ),
        SendError::RecipientOptedOut => CompatError::envelope(
            bad,
            bad_format(
                ErrorContext::new("Body", "body.phoneNumber"),
                "The recipient has opted out of marketing messages",
            ),
        ),
        SendError::ConversationLimit { limit } => match family {
            Family::Old => CompatError::new(
                StatusCode::UNAUTHORIZED,
                ErrorBody::LimitReached(CompatLimitReached::default()),
            ),
            Family::New => CompatError::envelope(
                StatusCode::UNAUTHORIZED,
                CompatErrorBody::new(
                    ErrorContext::new("Account", "account.conversationLimit").with_value(limit),
                    LIMIT_REACHED,
                    "Unauthorized",
                ),
            ),
        },
        // The compatible API takes no idempotency keys.
        SendError::IdempotencyKeyReused => CompatError::internal(
            family,
            SEND_CONTROLLER,
            &anyhow::anyhow!("idempotency key on a compatible send"),
        ),
        SendError::SendAtBeyondHorizon { .. } => CompatError::internal(
            family,
            SEND_CONTROLLER,
            &anyhow::anyhow!("sendAt on a compatible send"),
        ),
        SendError::Internal(e) => CompatError::internal(family, SEND_CONTROLLER, &e),
    }
}

const LIST_CONTROLLER: &str = "ListTemplatesController";
const MAX_PAGE_SIZE: u32 = 200;
/// The largest `page` of a template list, here and on `GET /v1/templates` (and in openapi.json).
pub(crate) const MAX_PAGE: u32 = 1_000_000;

fn parse_number(
    q: &HashMap<String, String>,
    key: &str,
    default: u32,
    max: u32,
) -> Result<u32, CompatError> {
    // Strict, as openapi.json says (an integer): `size=` (empty) or ` 5` is a 400 like `ten`,
    // not the default; only an absent parameter takes the default.
    match q.get(key).map(String::as_str) {
        None => Ok(default),
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(CompatError::envelope(
                StatusCode::BAD_REQUEST,
                CompatErrorBody::new(
                    ErrorContext::new("Query", format!("query.{key}")).with_value(raw),
                    format!("{key} must be a whole number from 1 to {max}"),
                    "Bad format",
                ),
            )),
        },
    }
}

async fn list(app: &App, family: Family, channel: Channel, q: &HashMap<String, String>) -> Answer {
    let query = ListQuery {
        page: parse_number(q, "page", 1, MAX_PAGE)?,
        size: parse_number(q, "size", 50, MAX_PAGE_SIZE)?,
        status: q
            .get("status")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        name: q
            .get("name")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
    };
    let (page, size) = (query.page, query.size);
    let filter = TemplateFilter {
        status: query.status,
        name: query.name,
        offset: (page - 1).saturating_mul(size),
        limit: size,
    };
    let (templates, total) = app
        .store
        .list_templates(&channel.account_id, &filter)
        .await
        .map_err(|e| CompatError::internal(family, LIST_CONTROLLER, &e.into()))?;
    let data = templates.iter().map(views::template).collect();
    Ok(typed_json(
        StatusCode::OK,
        &CompatTemplateList::new(data, page, size, total),
    ))
}

const DETAIL_CONTROLLER: &str = "GetTemplateController";

async fn detail(app: &App, family: Family, channel: Channel, id: &str) -> Answer {
    let template = app
        .store
        .account_template(&channel.account_id, id)
        .await
        .map_err(|e| CompatError::internal(family, DETAIL_CONTROLLER, &e.into()))?
        .ok_or_else(|| {
            CompatError::envelope(
                StatusCode::NOT_FOUND,
                CompatErrorBody::new(
                    ErrorContext::new("Params", "params.templateId").with_value(id),
                    "Template not found",
                    "Not found",
                ),
            )
        })?;
    Ok(typed_json(
        StatusCode::OK,
        &CompatTemplateDetail::new(views::template(&template)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn parse(body: &str, family: Family) -> Result<SendRequest, BodyError> {
        parse_send_body(body.as_bytes(), family)
    }

    #[test]
    fn well_formed_bodies_parse() {
        let r = parse(
            r#"{"templateId":"tpl_1","phoneNumber":"50755667788","assign":true,
                "params":{"name":"Ana","n":3,"ok":true,"skip":null}}"#,
            Family::Old,
        )
        .unwrap();
        assert_eq!(r.phone.as_str(), "50755667788");
        assert!(r.assign);
        assert_eq!(r.params["n"], "3");
        assert_eq!(r.params["ok"], "true");
        assert!(!r.params.contains_key("skip"));
        assert_eq!(r.client_name, None);
    }

    #[test]
    fn new_family_joins_first_and_last_name() {
        let body = r#"{"templateId":"t","phoneNumber":"50755667788","firstName":"Ana","lastName":"Pérez"}"#;
        assert_eq!(
            parse(body, Family::New).unwrap().client_name.as_deref(),
            Some("Ana Pérez")
        );
        assert_eq!(parse(body, Family::Old).unwrap().client_name, None);
        let only_first = r#"{"templateId":"t","phoneNumber":"50755667788","firstName":"Ana"}"#;
        assert_eq!(
            parse(only_first, Family::New)
                .unwrap()
                .client_name
                .as_deref(),
            Some("Ana")
        );
        let both =
            r#"{"templateId":"t","phoneNumber":"50755667788","clientName":"X","firstName":"Ana"}"#;
        assert_eq!(
            parse(both, Family::New).unwrap().client_name.as_deref(),
            Some("X")
        );
    }

    #[test]
    fn bad_bodies_name_the_field() {
        let cases = [
            ("not json", "body"),
            ("[1,2]", "body"),
            (r#"{"phoneNumber":"50755667788"}"#, "templateId"),
            (
                r#"{"templateId":5,"phoneNumber":"50755667788"}"#,
                "templateId",
            ),
            (r#"{"templateId":"t"}"#, "phoneNumber"),
            (
                r#"{"templateId":"t","phoneNumber":"+50755667788"}"#,
                "phoneNumber",
            ),
            (
                r#"{"templateId":"t","phoneNumber":"507 55667788"}"#,
                "phoneNumber",
            ),
            (
                r#"{"templateId":"t","phoneNumber":"55667788"}"#,
                "phoneNumber",
            ),
            (
                r#"{"templateId":"t","phoneNumber":50755667788}"#,
                "phoneNumber",
            ),
            (
                r#"{"templateId":"t","phoneNumber":"50755667788","assign":"yes"}"#,
                "assign",
            ),
            (
                r#"{"templateId":"t","phoneNumber":"50755667788","clientName":1}"#,
                "clientName",
            ),
            (
                r#"{"templateId":"t","phoneNumber":"50755667788","params":[1]}"#,
                "params",
            ),
            (
                r#"{"templateId":"t","phoneNumber":"50755667788","params":{"a":{}}}"#,
                "params.a",
            ),
        ];
        for (body, field) in cases {
            let e = parse(body, Family::Old).unwrap_err();
            assert_eq!(e.field, field, "{body}: {}", e.detail);
            assert!(!e.detail.is_empty());
        }
    }

    /// The typed fast path and the `Value` way give the same request or the same refusal.
    fn same_both_ways(body: &str) {
        for family in [Family::Old, Family::New] {
            let fast = format!("{:?}", parse_send_body(body.as_bytes(), family));
            let value = format!("{:?}", parse_send_value(body.as_bytes(), family));
            assert_eq!(fast, value, "{family:?} {body}");
        }
    }

    /// Whether `body` takes the typed fast path.
    fn fast(body: &str) -> bool {
        serde_json::from_slice::<TypedSendBody>(body.as_bytes()).is_ok()
    }

    #[test]
    fn the_fast_path_takes_well_typed_bodies_and_answers_as_the_value_way() {
        let taken = [
            r#"{"templateId":"tpl_1","phoneNumber":"50755667788"}"#,
            r#"{"templateId":" tpl_1 ","phoneNumber":"50755667788","clientName":"Ana","groupName":" Ventas ","assign":false,"params":{"b":"x","a":1.50,"c":-3,"d":true,"e":null,"f":18446744073709551615,"g":1e3,"h":"\u00e9\n"}}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","firstName":" Ana ","lastName":"Pérez","other":{"deep":[1,{"x":null}]},"clientName":null}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","clientName":"   ","firstName":"","lastName":"B"}"#,
            r#" { "phoneNumber" : "50755667788" , "template\u0049d" : "t" , "assign" : null , "params" : null } "#,
            r#"{"templateId":"t","phoneNumber":"50755667788","params":{}}"#,
            // Refused after the types: the same order and message.
            r#"{"phoneNumber":"50755667788"}"#,
            r#"{"templateId":"  ","phoneNumber":"50755667788"}"#,
            r#"{"templateId":"t"}"#,
            r#"{"templateId":"t","phoneNumber":""}"#,
            r#"{"templateId":"t","phoneNumber":"+50755667788"}"#,
            r#"{"templateId":"t","phoneNumber":"55667788"}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","clientName":"A\u0007"}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","firstName":"A\tB"}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","lastName":"\u0000"}"#,
            r#"{"templateId":"","phoneNumber":"x","clientName":"\u0001"}"#,
            r#"{}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","x":[1,-2,3.5e300,{"y":null,"z":"\u00e9\ud83d\ude00"}],"y":false}"#,
        ];
        for body in taken {
            assert!(fast(body), "not taken: {body}");
            same_both_ways(body);
        }
        let not_taken = [
            "",
            "not json",
            "null",
            "[1,2]",
            r#"["t","50755667788"]"#,
            r#""templateId""#,
            r#"{"templateId":"t","phoneNumber":"50755667788"} x"#,
            r#"{"templateId":"t","phoneNumber":"50755667788""#,
            r#"{"templateId":5,"phoneNumber":"50755667788"}"#,
            r#"{"templateId":"t","phoneNumber":50755667788}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","assign":"yes"}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","assign":1}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","clientName":1}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","firstName":[]}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","lastName":{}}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","groupName":true}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","params":[1]}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","params":"a=1"}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","params":{"a":{}}}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","params":{"a":"x","b":[1]}}"#,
            // A wrong type after a refusal the `Value` way checks first.
            r#"{"templateId":"","phoneNumber":"50755667788","clientName":1}"#,
            r#"{"templateId":"t","phoneNumber":"1","assign":"no"}"#,
            // Keys given twice: the last one wins the `Value` way.
            r#"{"templateId":"a","templateId":"b","phoneNumber":"50755667788"}"#,
            r#"{"templateId":1,"templateId":"b","phoneNumber":"50755667788"}"#,
            r#"{"templateId":"b","phoneNumber":"50755667788","assign":true,"assign":null}"#,
            r#"{"templateId":"b","phoneNumber":"50755667788","params":{"a":"1","a":null}}"#,
            r#"{"templateId":"b","phoneNumber":"50755667788","params":{"a":null,"a":2}}"#,
            r#"{"templateId":"b","phoneNumber":"50755667788","params":{"a":1},"params":null}"#,
            // Not valid JSON inside an unknown key, or a lone surrogate.
            r#"{"templateId":"t","phoneNumber":"50755667788","x":[1,]}"#,
            r#"{"templateId":"\ud800","phoneNumber":"50755667788"}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","params":{"a":1e999}}"#,
            // What `Value` refuses under a key nobody reads.
            r#"{"templateId":"t","phoneNumber":"50755667788","x":1e999}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","x":[{"y":-1e400}]}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","x":"\udc00"}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","x":{"\ud800":1}}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","x":"\u12"}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","x":01}"#,
            r#"{"templateId":"t","phoneNumber":"50755667788","x":tru}"#,
        ];
        for body in not_taken {
            assert!(!fast(body), "taken: {body}");
            same_both_ways(body);
        }
    }

    #[test]
    fn the_fast_path_answers_as_the_value_way_on_generated_bodies() {
        let keys = [
            "templateId",
            "phoneNumber",
            "clientName",
            "firstName",
            "lastName",
            "groupName",
            "assign",
            "params",
            "other",
        ];
        let values = [
            r#""tpl_1""#,
            r#""50755667788""#,
            r#"" ""#,
            r#""""#,
            r#""A\u0007""#,
            r#""Ana Pérez""#,
            "null",
            "true",
            "false",
            "0",
            "-1",
            "2.5",
            "1e2",
            "[]",
            "{}",
            r#"{"a":"1","b":2,"c":null,"d":false}"#,
            r#"{"a":[]}"#,
            r#"{"a":1,"a":2}"#,
        ];
        // A seeded generator: the same bodies every run.
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x2545_f491_4f6c_dd1d);
        let mut next = |n: usize| rng.gen_range(0..n);
        let mut taken = 0;
        for _ in 0..5_000 {
            let mut parts = Vec::new();
            for _ in 0..next(7) {
                let key = keys[next(keys.len())];
                // Mostly well-typed values for the known keys, so many bodies get far.
                let value = match (key, next(3)) {
                    ("templateId", 0) => r#""tpl_1""#,
                    ("phoneNumber", 0) => r#""50755667788""#,
                    _ => values[next(values.len())],
                };
                parts.push(format!("\"{key}\":{value}"));
            }
            let body = format!("{{{}}}", parts.join(","));
            taken += usize::from(fast(&body));
            same_both_ways(&body);
        }
        assert!(taken > 500, "only {taken} bodies took the fast path");
    }

    #[test]
    fn deeply_nested_bodies_are_refused_before_parsing() {
        let body = format!(
            r#"{{"templateId":"t","phoneNumber":"50755667788","x":{}1{}}}"#,
            "[".repeat(40),
            "]".repeat(40)
        );
        let e = parse(&body, Family::Old).unwrap_err();
        assert_eq!(e.field, "body");
        assert!(e.detail.contains("32 levels"), "{}", e.detail);
    }
}
