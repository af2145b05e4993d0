//! The native API (`/v1`): message status, idempotent sends, bulk sends, conversations and
//! templates, for new integrations. Same services as the compatible API; errors are RFC 9457
//! problem documents with a stable `type`.
//!
//! Authentication: a channel's public token (calls scoped to that channel) or an account API
//! key (`ak_…`, account-wide; sends name their `channelId`).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{bearer, error_id, json_response};
use crate::app::{App, Event};
use crate::domain::ids::hash_token;
use crate::domain::phone::PhoneNumber;
use crate::domain::rate_limit::retry_after_secs;
use crate::domain::status::MessageStatus;
use crate::domain::template::first_control;
use crate::now_ms;
use crate::service::batch::{self, MAX_RECIPIENTS, RecipientResult};
use crate::service::input::{FieldError, MAX_JSON_DEPTH, describe, json_too_deep, too_deep_detail};
use crate::service::send::{self, SendError, SendOutcome, SendRequest, TemplateRef};
use crate::service::{authoring, templates, views};
use crate::store::{
    CancelOutcome, Channel, ConversationFilter, IdempotencyKey, MessageFilter, TemplateFilter,
};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/messages", post(create_message).get(list_messages))
        .route("/v1/messages/batch", post(create_batch))
        .route("/v1/messages/{id}", get(get_message))
        .route("/v1/messages/{id}/cancel", post(cancel_message))
        .route("/v1/batches/{id}", get(get_batch))
        .route("/v1/batches/{id}/cancel", post(cancel_batch))
        .route("/v1/batches/{id}/pause", post(pause_batch))
        .route("/v1/batches/{id}/resume", post(resume_batch))
        .route("/v1/conversations", get(list_conversations))
        .route("/v1/conversations/{id}", get(get_conversation))
        .route("/v1/conversations/{id}/close", post(close_conversation))
        .route(
            "/v1/conversations/{id}/messages",
            get(conversation_messages),
        )
        .route("/v1/templates", get(list_templates).post(create_template))
        .route("/v1/templates/sync", post(sync_templates))
        .route(
            "/v1/templates/{id}",
            get(get_template).delete(delete_template),
        )
        .route("/v1/templates/{id}/preview", post(preview_template))
        .route("/v1/media", post(super::media::upload))
        .route("/v1/usage", get(get_usage))
}

// --- Problems -----------------------------------------------------------------------------

/// An RFC 9457 problem: `type` is stable (`/problems/<slug>`), `detail` says exactly what is
/// wrong, `errors` names failing fields.
pub struct Problem {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    extra: Map<String, Value>,
    /// `Retry-After` seconds (429).
    retry_after: Option<u64>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            status,
            slug,
            title,
            detail: detail.into(),
            extra: Map::new(),
            retry_after: None,
        }
    }

    fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub(crate) fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    pub(crate) fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let list: Vec<Value> = errors
            .iter()
            .map(|e| json!({"field": e.field, "message": e.message}))
            .collect();
        Problem::new(
            StatusCode::BAD_REQUEST,
            "validation",
            "Invalid request",
            detail,
        )
        .with("errors", Value::Array(list))
    }

    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        Problem::validation(vec![FieldError::new(field, message)])
    }

    pub(crate) fn not_found(kind: &str, id: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no {kind} with id '{id}'"),
        )
    }

    pub(crate) fn idempotency_key_reused() -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency key reused",
            "this Idempotency-Key was used with a different request; use a new key for a new request",
        )
    }

    pub(crate) fn internal(e: &anyhow::Error) -> Self {
        let id = error_id();
        tracing::error!(error_id = %id, error = format!("{e:#}"), "native API request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal Server Error",
            format!("something went wrong; the log has the cause under {id}"),
        )
        .with("errorId", Value::String(id))
    }

    pub fn body(&self) -> Value {
        let mut body = json!({
            "type": format!("/problems/{}", self.slug),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Value::Object(b) = &mut body {
            b.extend(self.extra.clone());
        }
        body
    }

    pub(crate) fn response(self) -> Response {
        let mut r = json_response(self.status, &self.body());
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

impl From<anyhow::Error> for Problem {
    fn from(e: anyhow::Error) -> Self {
        Problem::internal(&e)
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Self {
        Problem::internal(&e.into())
    }
}

/// The problem of a refused send; `field_prefix` locates fields of a batch recipient.
pub fn send_problem(e: SendError, field_prefix: &str) -> Problem {
    let f = |name: &str| format!("{field_prefix}{name}");
    match e {
        SendError::TemplateNotFound(t) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "template-not-found",
            "Template not found",
            format!("the account has no template {t}"),
        )
        .with(
            "errors",
            json!([{"field": f("templateId"), "message": "no such template"}]),
        ),
        SendError::TemplateIncomplete(missing) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "template-incomplete",
            "Template incomplete",
            format!("the template has no {}", missing.join(" and ")),
        )
        .with("missing", json!(missing)),
        SendError::TemplateNotSendable { status, reason } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "template-not-sendable",
            "Template cannot be sent",
            reason,
        )
        .with("templateStatus", Value::String(status)),
        SendError::TemplateUnsupported(reason) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "template-not-sendable",
            "Template cannot be sent",
            format!("the template cannot be sent: {reason}"),
        )
        .with(
            "errors",
            json!([{"field": "template.components", "message": reason}]),
        ),
        SendError::InvalidParams(invalid) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-params",
            "Template values refused",
            invalid
                .iter()
                .map(|v| v.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        )
        .with(
            "errors",
            Value::Array(
                invalid
                    .iter()
                    .map(|v| json!({"field": f(&native_field(&v.key)), "message": v.message}))
                    .collect(),
            ),
        ),
        SendError::ChannelNotConnected(status) => Problem::new(
            StatusCode::CONFLICT,
            "channel-not-connected",
            "Channel not connected",
            format!("the channel is {status}; ask the operator to connect it"),
        )
        .with("channelStatus", Value::String(status)),
        SendError::MissingParams { missing, detail } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing-params",
            "Template params missing or refused",
            detail.join("; "),
        )
        .with(
            "errors",
            Value::Array(
                missing
                    .iter()
                    .zip(detail.iter())
                    .map(|(m, d)| json!({"field": f(&native_field(m)), "message": d}))
                    .collect(),
            ),
        ),
        SendError::GroupNotFound(name) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "group-not-found",
            "Group not found",
            format!("the account has no group named '{name}'"),
        )
        .with(
            "errors",
            json!([{"field": f("groupName"), "message": "no such group"}]),
        ),
        SendError::RecipientOptedOut => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "recipient-opted-out",
            "Recipient opted out",
            "the recipient has opted out of marketing messages from this account; only UTILITY and AUTHENTICATION templates can be sent to it",
        )
        .with(
            "errors",
            json!([{"field": f("to"), "message": "has opted out of marketing messages"}]),
        ),
        SendError::ConversationLimit { limit } => Problem::new(
            StatusCode::PAYMENT_REQUIRED,
            "conversation-limit",
            "Conversation limit reached",
            format!(
                "the account has used the {limit} new conversations of its plan this month (UTC)"
            ),
        )
        .with("conversationLimit", json!(limit)),
        SendError::SendAtBeyondHorizon { horizon_days } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "send-at-beyond-horizon",
            "Send time too far ahead",
            format!("sendAt may be at most {horizon_days} days ahead"),
        )
        .with(
            "errors",
            json!([{"field": f("sendAt"), "message": format!("more than {horizon_days} days ahead")}]),
        ),
        SendError::IdempotencyKeyReused => Problem::idempotency_key_reused(),
        SendError::Internal(e) => Problem::internal(&e),
    }
}

/// The native field a send value came from: `header.link` → `header.link`,
/// `button.1.coupon_code` → `buttons[index=1].couponCode`, `card.0.1` → `cards[0].params.1`,
/// `offer.expiration_time_ms` → `offerExpiresAt`, a placeholder → `params.<name>`.
pub fn native_field(key: &str) -> String {
    fn camel(s: &str) -> String {
        let mut out = String::new();
        let mut up = false;
        for c in s.chars() {
            if c == '_' {
                up = true;
            } else if up {
                out.extend(c.to_uppercase());
                up = false;
            } else {
                out.push(c);
            }
        }
        out
    }
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        ["header", field] => format!("header.{}", camel(field)),
        ["header"] => "header".into(),
        ["button", i, field] => format!("buttons[index={i}].{}", camel(field)),
        ["offer", _] => "offerExpiresAt".into(),
        ["card", c] => format!("cards[{c}]"),
        ["cards", ..] => "cards".into(),
        ["card", c, "header"] => format!("cards[{c}].header"),
        ["card", c, "header", field] => format!("cards[{c}].header.{}", camel(field)),
        ["card", c, "button", i, field] => {
            format!("cards[{c}].buttons[index={i}].{}", camel(field))
        }
        ["card", c, name] => format!("cards[{c}].params.{name}"),
        ["params"] => "params".into(),
        _ => format!("params.{key}"),
    }
}

// --- Authentication ------------------------------------------------------------------------

/// Who is calling.
pub enum Caller {
    /// A channel's public token: calls see that channel only.
    Channel(Box<Channel>),
    /// An account API key: calls see the account's channels.
    Account(String),
}

impl Caller {
    pub(crate) fn account_id(&self) -> &str {
        match self {
            Caller::Channel(c) => &c.account_id,
            Caller::Account(a) => a,
        }
    }

    fn scope(&self) -> String {
        match self {
            Caller::Channel(c) => format!("ch:{}", c.id),
            Caller::Account(a) => format!("acc:{a}"),
        }
    }

    /// The channel a call works through: the token's, or `channelId` of an account's call.
    pub(crate) async fn channel(
        &self,
        app: &App,
        channel_id: Option<&str>,
    ) -> Result<Channel, Problem> {
        match (self, channel_id) {
            (Caller::Channel(c), None) => Ok((**c).clone()),
            (Caller::Channel(c), Some(id)) if id == c.id => Ok((**c).clone()),
            (Caller::Channel(_), Some(_)) => Err(Problem::field(
                "channelId",
                "a channel token can only use its own channel; omit channelId or use an account API key",
            )),
            (Caller::Account(_), None) => Err(Problem::field(
                "channelId",
                "is required with an account API key",
            )),
            (Caller::Account(account), Some(id)) => match app.store.channel(id).await? {
                Some(c) if &c.account_id == account => Ok(c),
                _ => Err(Problem::field(
                    "channelId",
                    format!("the account has no channel '{id}'"),
                )),
            },
        }
    }

    /// Restricts a list's `channelId` filter to the caller's channel when it has a channel
    /// token; another channel asked for is a validation problem.
    fn scope_channel_filter(&self, channel_id: &mut Option<String>) -> Result<(), Problem> {
        if let Caller::Channel(c) = self {
            if channel_id.as_deref().is_some_and(|id| id != c.id) {
                return Err(Problem::field(
                    "channelId",
                    "a channel token sees only its own channel",
                ));
            }
            *channel_id = Some(c.id.clone());
        }
        Ok(())
    }

    /// Whether a thing of `channel_id` in `account_id` is visible to this caller.
    fn sees(&self, account_id: &str, channel_id: &str) -> bool {
        match self {
            Caller::Channel(c) => c.id == channel_id,
            Caller::Account(a) => a == account_id,
        }
    }
}

pub(crate) async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Caller, Problem> {
    let unauthorized = |detail: &str| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    };
    let Some(token) = bearer(headers).filter(|t| !t.is_empty()) else {
        return Err(unauthorized(
            "send a channel's public token or an account API key as 'Authorization: Bearer <token>'",
        ));
    };
    let hash = hash_token(token);
    // Limited by the token's hash (never the token), before the lookup, as the template API.
    if let Err(wait) = app.rate_limiter.check(&hash, Instant::now()) {
        app.metrics.rate_limited();
        let secs = retry_after_secs(wait);
        return Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!("too many requests with this token: retry in {secs} s"),
        )
        .retry_after(secs));
    }
    if let Some(channel) = app.store.channel_by_token(&hash).await? {
        return Ok(Caller::Channel(Box::new(channel)));
    }
    if let Some(key) = app.store.api_key(&hash).await? {
        return Ok(Caller::Account(key.account_id));
    }
    Err(unauthorized(
        "the token is not a channel token or API key of this server",
    ))
}

// --- Idempotency ---------------------------------------------------------------------------

/// The request's `Idempotency-Key`, checked: 1 to 255 visible ASCII characters.
///
/// Operations that are safe to repeat by nature (closing a conversation, syncing templates)
/// check the key only, so every `POST` of `/v1` treats the header alike; they store nothing.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, Problem> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "idempotency-key-invalid",
            "Invalid Idempotency-Key",
            "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(key))
}

/// The request's `Idempotency-Key`, with the fingerprint of the request it comes with.
pub(crate) fn idempotency(
    app: &App,
    caller: &Caller,
    headers: &HeaderMap,
    path: &str,
    body: &Value,
) -> Result<Option<IdempotencyKey>, Problem> {
    let Some(key) = idempotency_key(headers)? else {
        return Ok(None);
    };
    // serde_json's maps are sorted, so the same body always prints the same.
    let fingerprint = hex::encode(Sha256::digest(format!("POST {path}\n{body}").as_bytes()));
    let ttl =
        i64::try_from(app.config.idempotency_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 4);
    Ok(Some(IdempotencyKey {
        scope: caller.scope(),
        key: key.to_string(),
        fingerprint,
        expires_at: now_ms().saturating_add(ttl),
    }))
}

// --- Parsing -------------------------------------------------------------------------------

pub(crate) fn parse_json(body: &[u8]) -> Result<Value, Problem> {
    if json_too_deep(body, MAX_JSON_DEPTH) {
        return Err(Problem::field("body", too_deep_detail()));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::field("body", format!("is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Problem::field(
            "body",
            format!("must be a JSON object, got {}", describe(&value)),
        ));
    }
    Ok(value)
}

fn opt_string(
    obj: &Map<String, Value>,
    key: &str,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::String(_)) => {
            errors.push(FieldError::new(
                format!("{prefix}{key}"),
                "must not be empty",
            ));
            None
        }
        Some(v) => {
            errors.push(FieldError::new(
                format!("{prefix}{key}"),
                format!("must be a string, got {}", describe(v)),
            ));
            None
        }
    }
}

/// The template of a send: `templateId`, or `templateName` with `language`.
fn template_ref(obj: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<TemplateRef> {
    let id = opt_string(obj, "templateId", "", errors);
    let name = opt_string(obj, "templateName", "", errors);
    let language = opt_string(obj, "language", "", errors);
    match (id, name, language) {
        (Some(id), None, None) => Some(TemplateRef::Id(id)),
        (None, Some(name), Some(language)) => Some(TemplateRef::Name { name, language }),
        (None, Some(_), None) => {
            errors.push(FieldError::new("language", "is required with templateName"));
            None
        }
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            errors.push(FieldError::new(
                "templateId",
                "give templateId or templateName with language, not both",
            ));
            None
        }
        _ => {
            errors.push(FieldError::new(
                "templateId",
                "is required (or templateName with language)",
            ));
            None
        }
    }
}

/// One recipient's fields: `to`, `params`, `clientName`, `groupName`, `assign`, `callbackUrl`,
/// `metadata`. Errors are collected with `prefix` (e.g. `recipients[3].`).
fn recipient(
    obj: &Map<String, Value>,
    template: Option<TemplateRef>,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Option<SendRequest> {
    let before = errors.len();
    let phone = match obj.get("to") {
        Some(Value::String(s)) => match PhoneNumber::parse(s) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(FieldError::new(format!("{prefix}to"), e.to_string()));
                None
            }
        },
        None | Some(Value::Null) => {
            errors.push(FieldError::new(
                format!("{prefix}to"),
                "is required: the recipient's number, country code first, digits only",
            ));
            None
        }
        Some(v) => {
            errors.push(FieldError::new(
                format!("{prefix}to"),
                format!("must be a string, got {}", describe(v)),
            ));
            None
        }
    };
    let params = send_values(obj, prefix, errors);
    let client_name = opt_string(obj, "clientName", prefix, errors);
    if let Some(c) = client_name.as_deref().and_then(first_control) {
        errors.push(FieldError::new(
            format!("{prefix}clientName"),
            format!(
                "contains a control character (U+{:04X}), which WhatsApp does not accept",
                u32::from(c)
            ),
        ));
    }
    let group_name = opt_string(obj, "groupName", prefix, errors);
    let assign = match obj.get("assign") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            errors.push(FieldError::new(
                format!("{prefix}assign"),
                format!("must be true or false, got {}", describe(v)),
            ));
            false
        }
    };
    let callback_url = opt_string(obj, "callbackUrl", prefix, errors);
    if let Some(url) = &callback_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        errors.push(FieldError::new(
            format!("{prefix}callbackUrl"),
            "must be an http:// or https:// URL",
        ));
    }
    let metadata = match obj.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) if Value::Object(m.clone()).to_string().len() <= 4096 => {
            Some(Value::Object(m.clone()))
        }
        Some(Value::Object(_)) => {
            errors.push(FieldError::new(
                format!("{prefix}metadata"),
                "must be at most 4 KiB of JSON",
            ));
            None
        }
        Some(v) => {
            errors.push(FieldError::new(
                format!("{prefix}metadata"),
                format!("must be an object, got {}", describe(v)),
            ));
            None
        }
    };
    let send_at = send_at(obj, prefix, errors);
    if errors.len() > before {
        return None;
    }
    Some(SendRequest {
        client_name,
        group_name,
        assign,
        params,
        callback_url,
        metadata,
        send_at,
        ..SendRequest::new(template?, phone?)
    })
}

/// `sendAt`: an RFC 3339 time with its offset (a past one means now).
fn send_at(obj: &Map<String, Value>, prefix: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    let field = format!("{prefix}sendAt");
    match obj.get("sendAt") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match chrono::DateTime::parse_from_rfc3339(s.trim()) {
            Ok(t) => Some(t.timestamp_millis()),
            Err(_) => {
                errors.push(FieldError::new(
                    field,
                    format!("must be an RFC 3339 time such as 2026-11-25T09:00:00Z, got '{s}'"),
                ));
                None
            }
        },
        Some(v) => {
            errors.push(FieldError::new(
                field,
                format!("must be an RFC 3339 time string, got {}", describe(v)),
            ));
            None
        }
    }
}

/// The values of a send (`params`, `header`, `buttons`, `cards`, `offerExpiresAt`) as one
/// map of params with reserved keys (see `domain::template_send`).
fn send_values(
    obj: &Map<String, Value>,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    match obj.get("params") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                if let Some(text) = param_text(v) {
                    params.insert(k.clone(), text);
                    continue;
                }
                match v {
                    Value::Null => {}
                    Value::Object(typed) => {
                        typed_param(k, typed, &format!("{prefix}params.{k}"), &mut params, errors)
                    }
                    other => errors.push(FieldError::new(
                        format!("{prefix}params.{k}"),
                        format!(
                            "must be a string, number, boolean or a typed parameter ({{\"currency\": …}} or {{\"dateTime\": …}}), got {}",
                            describe(other)
                        ),
                    )),
                }
            }
        }
        Some(v) => errors.push(FieldError::new(
            format!("{prefix}params"),
            format!("must be an object, got {}", describe(v)),
        )),
    }
    rich_values(obj, prefix, &mut params, errors);
    params
}

/// A typed parameter: `{"currency": {"fallbackValue", "code", "amount1000"}}` or
/// `{"dateTime": {"fallbackValue"}}`, kept as the placeholder's text (the fallback) plus a
/// `<name>.currency` / `<name>.date_time` key (see `domain::template_send`).
fn typed_param(
    name: &str,
    typed: &Map<String, Value>,
    field: &str,
    params: &mut BTreeMap<String, String>,
    errors: &mut Vec<FieldError>,
) {
    let fallback = |v: &Value, at: &str, errors: &mut Vec<FieldError>| match v.get("fallbackValue")
    {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => {
            errors.push(FieldError::new(
                format!("{at}.fallbackValue"),
                "is required: the text shown where the value cannot be localized",
            ));
            None
        }
    };
    match (typed.get("currency"), typed.get("dateTime"), typed.len()) {
        (Some(c), None, 1) => {
            let at = format!("{field}.currency");
            let Some(text) = fallback(c, &at, errors) else {
                return;
            };
            let code = c.get("code").and_then(Value::as_str);
            let amount = c.get("amount1000").and_then(Value::as_i64);
            let valid = |c: &str| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase());
            match (code, amount) {
                (Some(code), Some(amount)) if valid(code) => {
                    params.insert(name.to_string(), text);
                    params.insert(
                        format!("{name}.currency"),
                        json!({"code": code, "amount_1000": amount}).to_string(),
                    );
                }
                (Some(code), _) if !valid(code) => errors.push(FieldError::new(
                    format!("{at}.code"),
                    "must be an ISO 4217 code in capitals, such as USD",
                )),
                _ => errors.push(FieldError::new(
                    at,
                    "needs code (ISO 4217, e.g. USD) and amount1000 (the amount times 1000, an integer)",
                )),
            }
        }
        (None, Some(d), 1) => {
            let at = format!("{field}.dateTime");
            if let Some(text) = fallback(d, &at, errors) {
                params.insert(name.to_string(), text);
                params.insert(format!("{name}.date_time"), "1".into());
            }
        }
        _ => errors.push(FieldError::new(
            field,
            "an object must be a typed parameter: {\"currency\": {…}} or {\"dateTime\": {…}}",
        )),
    }
}

/// A JSON scalar as the text a param carries (strings as they are, numbers as written,
/// booleans as `true`/`false`); None for anything else.
fn param_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `header`, `buttons`, `cards` and `offerExpiresAt` of a send, as reserved param keys
/// (`header.link`, `button.1.coupon_code`, `card.0.header.link`, …; see
/// `domain::template_send`). Shapes are checked here; whether they fit the template is checked
/// with the template, before anything is queued.
fn rich_values(
    obj: &Map<String, Value>,
    prefix: &str,
    params: &mut BTreeMap<String, String>,
    errors: &mut Vec<FieldError>,
) {
    if let Some(v) = obj.get("header").filter(|v| !v.is_null()) {
        header_values(v, &format!("{prefix}header"), "header", params, errors);
    }
    if let Some(v) = obj.get("buttons").filter(|v| !v.is_null()) {
        button_values(v, &format!("{prefix}buttons"), "button", params, errors);
    }
    match obj.get("cards") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cards)) => {
            for (c, card) in cards.iter().enumerate() {
                let at = format!("{prefix}cards[{c}]");
                let Value::Object(card) = card else {
                    errors.push(FieldError::new(
                        at,
                        format!("must be an object, got {}", describe(card)),
                    ));
                    continue;
                };
                for key in card.keys() {
                    if !["header", "params", "buttons"].contains(&key.as_str()) {
                        errors.push(FieldError::new(
                            format!("{at}.{key}"),
                            "is not a field of a card (header, params, buttons)",
                        ));
                    }
                }
                // Present even when empty, so a card given with nothing is still counted.
                if let Some(h) = card.get("header").filter(|v| !v.is_null()) {
                    header_values(
                        h,
                        &format!("{at}.header"),
                        &format!("card.{c}.header"),
                        params,
                        errors,
                    );
                }
                match card.get("params") {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(map)) => {
                        for (k, v) in map {
                            match param_text(v) {
                                Some(text) => {
                                    params.insert(format!("card.{c}.{k}"), text);
                                }
                                None if v.is_null() => {}
                                None => errors.push(FieldError::new(
                                    format!("{at}.params.{k}"),
                                    format!(
                                        "must be a string, number or boolean, got {}",
                                        describe(v)
                                    ),
                                )),
                            }
                        }
                    }
                    Some(v) => errors.push(FieldError::new(
                        format!("{at}.params"),
                        format!("must be an object, got {}", describe(v)),
                    )),
                }
                if let Some(b) = card.get("buttons").filter(|v| !v.is_null()) {
                    button_values(
                        b,
                        &format!("{at}.buttons"),
                        &format!("card.{c}.button"),
                        params,
                        errors,
                    );
                }
            }
            // The number of cards given is checked against the template's.
            params.insert("cards.given".into(), cards.len().to_string());
        }
        Some(v) => errors.push(FieldError::new(
            format!("{prefix}cards"),
            format!("must be an array of cards, got {}", describe(v)),
        )),
    }
    match obj.get("offerExpiresAt") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => {
                params.insert(
                    "offer.expiration_time_ms".into(),
                    t.timestamp_millis().to_string(),
                );
            }
            Err(_) => errors.push(FieldError::new(
                format!("{prefix}offerExpiresAt"),
                format!("must be an RFC 3339 time such as 2026-12-31T23:59:00Z, got \"{s}\""),
            )),
        },
        Some(v) => errors.push(FieldError::new(
            format!("{prefix}offerExpiresAt"),
            format!("must be an RFC 3339 time as a string, got {}", describe(v)),
        )),
    }
}

fn header_values(
    v: &Value,
    at: &str,
    key: &str,
    params: &mut BTreeMap<String, String>,
    errors: &mut Vec<FieldError>,
) {
    let Value::Object(h) = v else {
        errors.push(FieldError::new(
            at,
            format!(
                "must be an object: {{\"link\"|\"id\", \"filename\"}} for media, {{\"latitude\", \"longitude\", \"name\", \"address\"}} for a location; got {}",
                describe(v)
            ),
        ));
        return;
    };
    for (k, value) in h {
        let known = [
            "type",
            "link",
            "id",
            "filename",
            "latitude",
            "longitude",
            "name",
            "address",
        ];
        if !known.contains(&k.as_str()) {
            errors.push(FieldError::new(
                format!("{at}.{k}"),
                "is not a field of a header (type, link, id, filename, latitude, longitude, name, address)",
            ));
            continue;
        }
        if value.is_null() {
            continue;
        }
        const TYPES: [&str; 8] = [
            "image", "video", "gif", "document", "IMAGE", "VIDEO", "GIF", "DOCUMENT",
        ];
        let numeric = k == "latitude" || k == "longitude";
        match (numeric, value) {
            // The header's media type, as openapi.json lists it (a 400 here, as the document
            // says, rather than a mismatch found later against the template).
            // A media link or id is never empty (openapi.json: minLength 1).
            (_, Value::String(s)) if (k == "link" || k == "id") && s.trim().is_empty() => {
                errors.push(FieldError::new(format!("{at}.{k}"), "must not be empty"));
            }
            (_, Value::String(s)) if k == "type" && !TYPES.contains(&s.as_str()) => {
                errors.push(FieldError::new(
                    format!("{at}.{k}"),
                    format!("must be image, video, gif or document, got '{s}'"),
                ));
            }
            (_, Value::String(s)) => {
                params.insert(format!("{key}.{k}"), s.clone());
            }
            (true, Value::Number(n)) => {
                params.insert(format!("{key}.{k}"), n.to_string());
            }
            _ => errors.push(FieldError::new(
                format!("{at}.{k}"),
                format!(
                    "must be a {}, got {}",
                    if numeric { "number" } else { "string" },
                    describe(value)
                ),
            )),
        }
    }
}

fn button_values(
    v: &Value,
    at: &str,
    key: &str,
    params: &mut BTreeMap<String, String>,
    errors: &mut Vec<FieldError>,
) {
    let Value::Array(buttons) = v else {
        errors.push(FieldError::new(
            at,
            format!("must be an array of {{\"index\", …}}, got {}", describe(v)),
        ));
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    for (n, b) in buttons.iter().enumerate() {
        let here = format!("{at}[{n}]");
        let Value::Object(b) = b else {
            errors.push(FieldError::new(
                here,
                format!("must be an object, got {}", describe(b)),
            ));
            continue;
        };
        let Some(index) = b.get("index").and_then(Value::as_u64).filter(|i| *i < 10) else {
            errors.push(FieldError::new(
                format!("{here}.index"),
                "is required: the button's position among the template's buttons, 0 to 9",
            ));
            continue;
        };
        if !seen.insert(index) {
            errors.push(FieldError::new(
                format!("{here}.index"),
                format!("gives button {index} twice"),
            ));
            continue;
        }
        for (k, value) in b {
            let target = match k.as_str() {
                "index" => continue,
                "payload" => "payload",
                "couponCode" => "coupon_code",
                "flowToken" => "flow_token",
                "flowActionData" => "flow_action_data",
                "action" => "action",
                _ => {
                    errors.push(FieldError::new(
                        format!("{here}.{k}"),
                        "is not a field of a button value (index, payload, couponCode, flowToken, flowActionData, action)",
                    ));
                    continue;
                }
            };
            let text = match (target, value) {
                ("flow_action_data" | "action", Value::Object(_)) => value.to_string(),
                ("flow_action_data" | "action", _) => {
                    errors.push(FieldError::new(
                        format!("{here}.{k}"),
                        format!("must be an object, got {}", describe(value)),
                    ));
                    continue;
                }
                (_, Value::String(s)) => s.clone(),
                _ => {
                    errors.push(FieldError::new(
                        format!("{here}.{k}"),
                        format!("must be a string, got {}", describe(value)),
                    ));
                    continue;
                }
            };
            params.insert(format!("{key}.{index}.{target}"), text);
        }
    }
}

// --- Messages ------------------------------------------------------------------------------

/// The answer to an accepted send: built from the decision alone, so a replay answers the same.
fn accepted_body(outcome: &SendOutcome, channel_id: &str, to: &str) -> Value {
    let (message_id, conversation_id, conversation_status) = match outcome {
        SendOutcome::Sent {
            conversation_id,
            message_id,
        } => (message_id, conversation_id, "open"),
        SendOutcome::Pending {
            conversation_id,
            message_id,
        } => (message_id, conversation_id, "pending"),
        SendOutcome::AlreadyPending { .. } => unreachable!("not an accepted send"),
    };
    json!({
        "id": message_id,
        "status": "queued",
        "scheduledFor": null,
        "channelId": channel_id,
        "to": to,
        "conversation": {"id": conversation_id, "status": conversation_status},
    })
}

/// Shows an accepted send as `scheduled` with its time, when it is.
async fn scheduled(app: &App, body: &mut Value, outcome: &SendOutcome) -> Result<(), Problem> {
    let (SendOutcome::Sent { message_id, .. } | SendOutcome::Pending { message_id, .. }) = outcome
    else {
        return Ok(());
    };
    // Accepted as scheduled, whatever it became since (the dispatcher may have taken it).
    let message = app.store.message(message_id).await?;
    if let Some(at) = message.and_then(|m| m.scheduled_for) {
        body["status"] = json!("scheduled");
        body["scheduledFor"] = json!(crate::format_ms(at));
    }
    Ok(())
}

fn pending_problem(conversation_id: &str, prefix: &str) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "conversation-pending",
        "Conversation pending",
        "an earlier template to this number is not confirmed by WhatsApp yet; nothing was sent",
    )
    .with("conversationId", Value::String(conversation_id.to_string()))
    .with("field", Value::String(format!("{prefix}to")))
}

async fn create_message(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    match create_message_inner(&app, &headers, &body).await {
        Ok(r) => r,
        Err(p) => p.response(),
    }
}

async fn create_message_inner(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Problem> {
    let caller = authenticate(app, headers).await?;
    let value = parse_json(body)?;
    let idem = idempotency(app, &caller, headers, "/v1/messages", &value)?;
    let obj = value.as_object().expect("checked object");
    let mut errors = Vec::new();
    let channel_id = opt_string(obj, "channelId", "", &mut errors);
    let template = template_ref(obj, &mut errors);
    let request = recipient(obj, template, "", &mut errors);
    let (Some(mut request), true) = (request, errors.is_empty()) else {
        return Err(Problem::validation(errors));
    };
    let channel = caller.channel(app, channel_id.as_deref()).await?;
    request.idempotency = idem;
    let to = request.phone.as_str().to_string();
    let send_at = request.send_at;
    match send::send(app, &channel, request).await {
        Ok(SendOutcome::AlreadyPending { conversation_id }) => {
            Err(pending_problem(&conversation_id, ""))
        }
        Ok(outcome) => {
            let mut body = accepted_body(&outcome, &channel.id, &to);
            if send_at.is_some() {
                scheduled(app, &mut body, &outcome).await?;
            }
            Ok(json_response(StatusCode::ACCEPTED, &body))
        }
        Err(e) => Err(send_problem(e, "")),
    }
}

async fn create_batch(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    match create_batch_inner(&app, &headers, &body).await {
        Ok(r) => r,
        Err(p) => p.response(),
    }
}

async fn create_batch_inner(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Problem> {
    let caller = authenticate(app, headers).await?;
    let value = parse_json(body)?;
    let idem = idempotency(app, &caller, headers, "/v1/messages/batch", &value)?;
    let obj = value.as_object().expect("checked object");
    let mut errors = Vec::new();
    let channel_id = opt_string(obj, "channelId", "", &mut errors);
    let template = template_ref(obj, &mut errors);
    let recipients = match obj.get("recipients") {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_RECIPIENTS => {
            items.clone()
        }
        Some(Value::Array(items)) => {
            errors.push(FieldError::new(
                "recipients",
                format!(
                    "must hold 1 to {MAX_RECIPIENTS} recipients, got {}",
                    items.len()
                ),
            ));
            vec![]
        }
        _ => {
            errors.push(FieldError::new(
                "recipients",
                "is required: an array of {to, params, …}",
            ));
            vec![]
        }
    };
    let batch_send_at = send_at(obj, "", &mut errors);
    let (Some(template), true) = (template, errors.is_empty()) else {
        return Err(Problem::validation(errors));
    };
    let channel = caller.channel(app, channel_id.as_deref()).await?;
    // Each recipient is parsed on its own: a bad one is rejected, the others go.
    let mut parse_errors: HashMap<usize, Problem> = HashMap::new();
    let requests: Vec<Option<SendRequest>> = recipients
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let prefix = format!("recipients[{i}].");
            let mut errors = Vec::new();
            let parsed = match r {
                Value::Object(o) => recipient(o, Some(template.clone()), &prefix, &mut errors),
                other => {
                    errors.push(FieldError::new(
                        format!("recipients[{i}]"),
                        format!("must be an object, got {}", describe(other)),
                    ));
                    None
                }
            };
            if parsed.is_none() {
                parse_errors.insert(i, Problem::validation(errors));
            }
            // A recipient's own sendAt wins over the batch's.
            parsed.map(|mut p| {
                p.send_at = p.send_at.or(batch_send_at);
                p
            })
        })
        .collect();
    let now = app.clock.now_ms();
    let scheduled_for: Vec<Option<i64>> = requests
        .iter()
        .map(|r| r.as_ref().and_then(|r| r.send_at).filter(|t| *t > now))
        .collect();
    let outcome = batch::send_batch(app, &channel, requests, idem)
        .await
        .map_err(|e| send_problem(e, ""))?;
    let mut accepted = 0;
    let results: Vec<Value> = outcome
        .results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let to = recipients[i]["to"].as_str().unwrap_or_default();
            let prefix = format!("recipients[{i}].");
            match r {
                RecipientResult::Unparsed => {
                    let problem = parse_errors.get(&i).map(Problem::body);
                    json!({"index": i, "status": "rejected", "problem": problem})
                }
                RecipientResult::Accepted(SendOutcome::AlreadyPending { conversation_id }) => {
                    json!({"index": i, "status": "rejected", "problem": pending_problem(&conversation_id, &prefix).body()})
                }
                RecipientResult::Accepted(o) => {
                    accepted += 1;
                    let mut body = accepted_body(&o, &channel.id, to);
                    body["index"] = json!(i);
                    body["messageId"] = body["id"].take();
                    body.as_object_mut().map(|b| b.remove("id"));
                    body["status"] = json!("accepted");
                    body["scheduledFor"] = json!(scheduled_for[i].map(crate::format_ms));
                    body
                }
                RecipientResult::Rejected(e) => {
                    json!({"index": i, "status": "rejected", "problem": send_problem(e, &prefix).body()})
                }
            }
        })
        .collect();
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({
            "batchId": outcome.batch_id,
            "total": results.len(),
            "accepted": accepted,
            "rejected": results.len() - accepted,
            "results": results,
        }),
    ))
}

async fn get_message(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let m = app.store.message(&id).await?;
        let m = m
            .filter(|m| caller.sees(&m.account_id, &m.channel_id))
            .ok_or_else(|| Problem::not_found("message", &id))?;
        let next = app.store.next_attempt_at(&m.id).await?;
        Ok::<_, Problem>(json_response(StatusCode::OK, &native_message(&m, next)))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

/// A message with its timeline and, when it has one, the provider's error and what comes next.
fn native_message(m: &crate::store::Message, next_attempt_at: Option<i64>) -> Value {
    let mut v = views::message(m);
    v["batchId"] = json!(m.batch_id);
    v["metadata"] = json!(m.metadata);
    v["callbackUrl"] = json!(m.callback_url);
    let will_retry = next_attempt_at.is_some() && m.error.is_some();
    if let Some(error) = &m.error {
        v["error"] = json!({
            "code": error.code,
            "title": error.title,
            "details": error.details,
            "willRetry": will_retry,
            "nextAttemptAt": if will_retry { next_attempt_at.map(crate::format_ms) } else { None },
        });
    }
    v
}

const MAX_LIMIT: u32 = 200;

pub(crate) fn parse_limit(q: &HashMap<String, String>) -> Result<u32, Problem> {
    match q.get("limit") {
        None => Ok(50),
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(Problem::field(
                "limit",
                format!("must be a whole number from 1 to {MAX_LIMIT}, got '{raw}'"),
            )),
        },
    }
}

pub(crate) fn parse_time(q: &HashMap<String, String>, key: &str) -> Result<Option<i64>, Problem> {
    q.get(key)
        .map(|raw| {
            chrono::DateTime::parse_from_rfc3339(raw)
                .map(|t| t.timestamp_millis())
                .map_err(|_| {
                    Problem::field(
                        key,
                        format!(
                            "must be an RFC 3339 time such as 2026-11-25T09:00:00Z, got '{raw}'"
                        ),
                    )
                })
        })
        .transpose()
}

/// Cursors are opaque to callers: hex of `<ms>.<id>` of the last item seen.
pub(crate) fn encode_cursor(ms: i64, id: &str) -> String {
    views::cursor(ms, id)
}

pub(crate) fn parse_cursor(q: &HashMap<String, String>) -> Result<Option<(i64, String)>, Problem> {
    let Some(raw) = q.get("cursor") else {
        return Ok(None);
    };
    let bad = || Problem::field("cursor", "is not a cursor this API returned");
    let text = String::from_utf8(hex::decode(raw).map_err(|_| bad())?).map_err(|_| bad())?;
    let (ms, id) = text.split_once('.').ok_or_else(bad)?;
    Ok(Some((ms.parse().map_err(|_| bad())?, id.to_string())))
}

async fn list_messages(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let mut filter = MessageFilter {
            channel_id: q.get("channelId").cloned(),
            status: q.get("status").cloned(),
            phone_number: q.get("phoneNumber").cloned(),
            batch_id: q.get("batchId").cloned(),
            from: parse_time(&q, "from")?,
            to: parse_time(&q, "to")?,
            after: parse_cursor(&q)?,
            limit: parse_limit(&q)?,
            ..MessageFilter::default()
        };
        if let Some(status) = &filter.status
            && status.parse::<crate::domain::status::MessageStatus>().is_err()
        {
            use crate::domain::status::MessageStatus;
            let known: Vec<&str> = MessageStatus::ALL.iter().map(|s| s.as_str()).collect();
            return Err(Problem::field(
                "status",
                format!("'{status}' is not a message status ({})", known.join(", ")),
            ));
        }
        caller.scope_channel_filter(&mut filter.channel_id)?;
        let messages = app.store.list_messages(caller.account_id(), &filter).await?;
        let next = (messages.len() == filter.limit as usize)
            .then(|| messages.last().map(|m| encode_cursor(m.queued_at, &m.id)))
            .flatten();
        Ok::<_, Problem>(json_response(
            StatusCode::OK,
            &json!({"data": messages.iter().map(|m| native_message(m, None)).collect::<Vec<_>>(), "nextCursor": next}),
        ))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

async fn get_batch(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    batch_action(app, headers, id, BatchAction::Show).await
}

async fn cancel_batch(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    batch_action(app, headers, id, BatchAction::Cancel).await
}

async fn pause_batch(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    batch_action(app, headers, id, BatchAction::Pause).await
}

async fn resume_batch(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    batch_action(app, headers, id, BatchAction::Resume).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BatchAction {
    Show,
    Cancel,
    Pause,
    Resume,
}

/// Does `action` to a batch of the caller, then answers its report.
async fn batch_action(app: App, headers: HeaderMap, id: String, action: BatchAction) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        if action != BatchAction::Show {
            idempotency_key(&headers)?;
        }
        app.store
            .batch(&id)
            .await?
            .filter(|b| caller.sees(&b.account_id, &b.channel_id))
            .ok_or_else(|| Problem::not_found("batch", &id))?;
        let now = app.clock.now_ms();
        match action {
            BatchAction::Show => {}
            BatchAction::Cancel => {
                for message_id in app.store.cancel_batch(&id, now).await? {
                    app.publish(Event::MessageStatus {
                        message_id,
                        status: MessageStatus::Cancelled,
                    });
                }
            }
            BatchAction::Pause | BatchAction::Resume => {
                app.store
                    .set_batch_paused(&id, action == BatchAction::Pause)
                    .await?;
                app.wake.notify_one();
            }
        }
        Ok::<_, Problem>(json_response(
            StatusCode::OK,
            &batch_report(&app, &id).await?,
        ))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

/// A batch with its counts by status, error code, template and hold reason, its progress and
/// an estimate of when it completes.
async fn batch_report(app: &App, id: &str) -> Result<Value, Problem> {
    let b = app
        .store
        .batch(id)
        .await?
        .ok_or_else(|| Problem::not_found("batch", id))?;
    let counts = app.store.batch_counts(id).await?;
    let report = app.store.batch_report(id).await?;
    let count = |statuses: &[&str]| -> i64 {
        counts
            .iter()
            .filter(|(s, _)| statuses.contains(&s.as_str()))
            .map(|(_, n)| n)
            .sum()
    };
    let done = count(&["sent", "delivered", "read", "failed", "cancelled"]);
    let waiting = count(&["scheduled", "queued", "sending"]);
    let by_status: Map<String, Value> = counts.iter().map(|(s, n)| (s.clone(), json!(n))).collect();
    let by_error_code: Map<String, Value> = report
        .by_error_code
        .iter()
        .map(|(code, n)| (code.to_string(), json!(n)))
        .collect();
    let mut by_template: Map<String, Value> = Map::new();
    for (template_id, status, n) in &report.by_template {
        by_template
            .entry(template_id.clone())
            .or_insert_with(|| json!({}))[status] = json!(n);
    }
    let held: Map<String, Value> = report
        .held
        .iter()
        .map(|(r, n)| (r.clone(), json!(n)))
        .collect();
    let estimate = if waiting == 0 || b.paused {
        None
    } else {
        let channel = app.store.channel(&b.channel_id).await?;
        let now = app.clock.now_ms();
        let rate = channel.as_ref().map_or(1, |c| c.messages_per_second.max(1));
        let mut at = now + waiting * 1000 / rate;
        if let Some(limit) = channel.as_ref().and_then(|c| c.messaging_limit) {
            // Each new recipient past the limit's room waits for the window to roll.
            let recent = app
                .store
                .new_recipients(&b.channel_id, now - 24 * 3600 * 1000)
                .await?;
            let over = waiting - (limit - recent.count).max(0);
            if over > 0 {
                at += (over + limit - 1) / limit * 24 * 3600 * 1000;
            }
        }
        // Scheduled and held messages go at their time at the earliest.
        Some(report.last_due.map_or(at, |due| at.max(due)))
    };
    Ok(json!({
        "id": b.id,
        "channelId": b.channel_id,
        "total": b.total,
        "accepted": b.accepted,
        "rejected": b.rejected,
        "byStatus": by_status,
        "byErrorCode": by_error_code,
        "byTemplate": by_template,
        "held": held,
        "progress": {
            "done": done,
            "waiting": waiting,
            "percent": if b.accepted > 0 { (done * 1000 / b.accepted) as f64 / 10.0 } else { 100.0 },
        },
        "paused": b.paused,
        "estimatedCompletionAt": estimate.map(crate::format_ms),
        "createdAt": crate::format_ms(b.created_at),
    }))
}

async fn cancel_message(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        idempotency_key(&headers)?;
        let m = app.store.message(&id).await?;
        let m = m
            .filter(|m| caller.sees(&m.account_id, &m.channel_id))
            .ok_or_else(|| Problem::not_found("message", &id))?;
        match app
            .store
            .cancel_message(&m.account_id, &id, app.clock.now_ms())
            .await?
        {
            CancelOutcome::NotFound => Err(Problem::not_found("message", &id)),
            CancelOutcome::NotCancellable(status) => Err(Problem::new(
                StatusCode::CONFLICT,
                "message-not-cancellable",
                "Message cannot be cancelled",
                format!(
                    "the message is {status}: only a scheduled or queued message not yet handed to WhatsApp can be cancelled"
                ),
            )
            .with("messageStatus", json!(status.as_str()))),
            CancelOutcome::Cancelled {
                message,
                conversation,
            } => {
                app.publish(Event::MessageStatus {
                    message_id: message.id.clone(),
                    status: MessageStatus::Cancelled,
                });
                if let Some((conversation_id, status)) = conversation {
                    app.publish(Event::ConversationStatus {
                        conversation_id,
                        status,
                    });
                }
                Ok(json_response(StatusCode::OK, &native_message(&message, None)))
            }
        }
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

// --- Conversations -------------------------------------------------------------------------

async fn list_conversations(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let mut filter = ConversationFilter {
            channel_id: q.get("channelId").cloned(),
            status: q.get("status").cloned(),
            phone_number: q.get("phoneNumber").cloned(),
            after: parse_cursor(&q)?,
            limit: parse_limit(&q)?,
            newest_first: false,
        };
        if let Some(status) = &filter.status
            && status.parse::<crate::domain::status::ConversationStatus>().is_err()
        {
            return Err(Problem::field("status", format!("'{status}' is not a conversation status (pending, open, closed)")));
        }
        caller.scope_channel_filter(&mut filter.channel_id)?;
        let list = app.store.list_conversations(caller.account_id(), &filter).await?;
        let next = (list.len() == filter.limit as usize)
            .then(|| list.last().map(|c| encode_cursor(c.created_at, &c.id)))
            .flatten();
        Ok::<_, Problem>(json_response(
            StatusCode::OK,
            &json!({"data": list.iter().map(views::conversation).collect::<Vec<_>>(), "nextCursor": next}),
        ))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

async fn visible_conversation(
    app: &App,
    caller: &Caller,
    id: &str,
) -> Result<crate::store::Conversation, Problem> {
    app.store
        .conversation(id)
        .await?
        .filter(|c| caller.sees(&c.account_id, &c.channel_id))
        .ok_or_else(|| Problem::not_found("conversation", id))
}

async fn get_conversation(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let c = visible_conversation(&app, &caller, &id).await?;
        Ok::<_, Problem>(json_response(StatusCode::OK, &views::conversation(&c)))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

/// `GET /v1/conversations/{id}/messages`: both directions, oldest first, paged like
/// `GET /v1/messages` (`limit`, `cursor`); each item says its `direction`.
async fn conversation_messages(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    use crate::service::inbound::messages::{ThreadItem, thread};
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let after = parse_cursor(&q)?;
        let limit = parse_limit(&q)?;
        let c = visible_conversation(&app, &caller, &id).await?;
        let items = thread(&app, &c, after, limit).await?;
        let next = (items.len() == limit as usize)
            .then(|| {
                items.last().map(|i| {
                    let (ms, id) = i.position();
                    encode_cursor(ms, id)
                })
            })
            .flatten();
        let data: Vec<Value> = items
            .iter()
            .map(|i| match i {
                ThreadItem::Outbound(m) => {
                    let mut v = native_message(m, None);
                    v["direction"] = json!("outbound");
                    v
                }
                ThreadItem::Inbound(m) => views::inbound_message(m),
            })
            .collect();
        Ok::<_, Problem>(json_response(
            StatusCode::OK,
            &json!({"data": data, "nextCursor": next}),
        ))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

async fn close_conversation(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        // A key is checked but not stored: closing is idempotent by nature.
        idempotency_key(&headers)?;
        visible_conversation(&app, &caller, &id).await?;
        // Closing twice is harmless: the answer is the closed conversation either way.
        let closed = crate::service::admin::close_conversation(&app, &id)
            .await
            .map_err(|e| match e {
                crate::service::admin::AdminError::NotFound { .. } => {
                    Problem::not_found("conversation", &id)
                }
                other => Problem::internal(&anyhow::anyhow!(other)),
            })?;
        Ok::<_, Problem>(json_response(StatusCode::OK, &closed))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

// --- Usage ---------------------------------------------------------------------------------

/// `GET /v1/usage?from=…&to=…&groupBy=day|template|channel|category`: the caller's messages
/// Meta priced, billable and free, per group and category, with an estimated cost when the
/// configuration has a price table. `from`/`to` are dates (`YYYY-MM-DD`, whole UTC days) or
/// RFC 3339 instants, both inclusive; by default the current UTC month so far. `groupBy`
/// defaults to `day`. A window is at most 366 days.
async fn get_usage(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    use crate::domain::usage::{self, GroupBy, PriceTable, Priced};
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let known = ["from", "to", "groupBy"];
        if let Some(unknown) = q.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Problem::field(
                unknown,
                "is not a parameter of this endpoint (from, to, groupBy)",
            ));
        }
        let group_by = match q.get("groupBy").map(String::as_str) {
            None => GroupBy::Day,
            Some(raw) => GroupBy::parse(raw).ok_or_else(|| {
                Problem::field(
                    "groupBy",
                    format!("must be one of {}, got '{raw}'", GroupBy::NAMES.join(", ")),
                )
            })?,
        };
        let bound = |name: &str, is_end: bool| -> Result<Option<i64>, Problem> {
            match q.get(name).map(String::as_str) {
                None => Ok(None),
                Some(raw) => usage::parse_bound(raw, is_end).map(Some).ok_or_else(|| {
                    Problem::field(
                        name,
                        format!("must be a date (YYYY-MM-DD) or an RFC 3339 instant, got '{raw}'"),
                    )
                }),
            }
        };
        let now = crate::now_ms();
        let to = bound("to", true)?.unwrap_or(now + 1);
        let from = match bound("from", false)? {
            Some(from) => from,
            None => {
                let month = usage::day_of(to - 1);
                usage::parse_bound(&format!("{}-01", &month[..7]), false).unwrap_or(0)
            }
        };
        if from >= to {
            return Err(Problem::field("from", "must not be after to"));
        }
        if to - from > 366 * 86_400_000 {
            return Err(Problem::field("to", "must be at most 366 days after from"));
        }
        let prices = app
            .config
            .prices
            .as_deref()
            .and_then(|p| PriceTable::parse(p).ok());
        let messages = app
            .store
            .priced_messages(caller.account_id(), from, to)
            .await?;
        let rows = usage::count(
            messages.iter().map(|m| Priced {
                key: match group_by {
                    GroupBy::Day => usage::day_of(m.at),
                    GroupBy::Template => m.template_id.clone(),
                    GroupBy::Channel => m.channel_id.clone(),
                    GroupBy::Category => m
                        .pricing
                        .category
                        .clone()
                        .unwrap_or_default()
                        .to_ascii_lowercase(),
                },
                category: m.pricing.category.as_deref().unwrap_or(""),
                billable: m.pricing.is_billable().unwrap_or(true),
                phone_number: &m.phone_number,
            }),
            prices.as_ref(),
        );
        let key_name = match group_by {
            GroupBy::Day => "day",
            GroupBy::Template => "templateId",
            GroupBy::Channel => "channelId",
            GroupBy::Category => "category",
        };
        let (mut billable, mut free, mut cost) = (0u64, 0u64, Some(0.0f64));
        let data: Vec<Value> = rows
            .iter()
            .map(|r| {
                billable += r.billable;
                free += r.free;
                cost = match (cost, r.estimated_cost) {
                    (Some(a), Some(b)) => Some(a + b),
                    _ => None,
                };
                let mut row = json!({
                    "key": r.key,
                    "category": r.category,
                    "billable": r.billable,
                    "free": r.free,
                    "estimatedCost": r.estimated_cost,
                });
                row[key_name] = json!(r.key);
                row
            })
            .collect();
        let priced = prices.is_some();
        Ok::<_, Problem>(json_response(
            StatusCode::OK,
            &json!({
                "from": crate::format_ms(from),
                "to": crate::format_ms(to - 1),
                "groupBy": group_by.as_str(),
                "currency": priced.then(|| app.config.price_currency.clone()),
                "data": data,
                "total": {
                    "billable": billable,
                    "free": free,
                    "estimatedCost": if priced { cost.map(|c| (c * 1e6).round() / 1e6) } else { None },
                },
            }),
        ))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

// --- Templates -----------------------------------------------------------------------------

async fn list_templates(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let limit = parse_limit(&q)?;
        let page = match q.get("page") {
            None => 1,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|p| (1..=crate::http::compat::MAX_PAGE).contains(p))
                .ok_or_else(|| {
                    Problem::field(
                        "page",
                        format!(
                            "must be a whole number from 1 to {}, got '{raw}'",
                            crate::http::compat::MAX_PAGE
                        ),
                    )
                })?,
        };
        let filter = TemplateFilter {
            status: q.get("status").cloned(),
            name: q.get("name").cloned(),
            offset: (page - 1).saturating_mul(limit),
            limit,
        };
        let (list, total) = app
            .store
            .list_templates(caller.account_id(), &filter)
            .await?;
        let healths = app.store.template_healths(caller.account_id()).await?;
        let data: Vec<Value> = list
            .iter()
            .map(|t| views::template_with_health(t, healths.get(&t.id)))
            .collect();
        Ok::<_, Problem>(json_response(
            StatusCode::OK,
            &json!({"data": data, "page": page, "limit": limit, "total": total}),
        ))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

async fn get_template(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let t = app
            .store
            .account_template(caller.account_id(), &id)
            .await?
            .ok_or_else(|| Problem::not_found("template", &id))?;
        let healths = app.store.template_healths(caller.account_id()).await?;
        Ok::<_, Problem>(json_response(
            StatusCode::OK,
            &views::template_with_health(&t, healths.get(&t.id)),
        ))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

/// `POST /v1/templates/{id}/preview`: what a send with these values would show and send,
/// without sending anything.
async fn preview_template(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let value = parse_json(&body)?;
        let Value::Object(obj) = &value else {
            return Err(Problem::field("body", "must be a JSON object"));
        };
        for key in obj.keys() {
            if !["params", "header", "buttons", "cards", "offerExpiresAt"].contains(&key.as_str()) {
                return Err(Problem::field(
                    key,
                    "is not a field of a preview (params, header, buttons, cards, offerExpiresAt)",
                ));
            }
        }
        let mut errors = Vec::new();
        let params = send_values(obj, "", &mut errors);
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        let t = app
            .store
            .account_template(caller.account_id(), &id)
            .await?
            .ok_or_else(|| Problem::not_found("template", &id))?;
        let p = templates::preview(&t, &params, crate::now_ms());
        let errors: Vec<Value> = p
            .problems
            .iter()
            .map(|(key, message)| json!({"field": native_field(key), "message": message}))
            .collect();
        Ok::<_, Problem>(json_response(
            StatusCode::OK,
            &json!({
                "templateId": t.id,
                "sendable": p.sendable,
                "valid": errors.is_empty() && p.sendable,
                "errors": errors,
                "preview": p.preview,
                "components": p.components,
            }),
        ))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

async fn sync_templates(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        // A repeated sync updates the same templates and creates none, so a key is checked
        // but not stored.
        idempotency_key(&headers)?;
        let channel = caller
            .channel(&app, q.get("channelId").map(String::as_str))
            .await?;
        let summary = crate::service::admin::sync_templates(&app, &channel.id)
            .await
            .map_err(|e| match e {
                crate::service::admin::AdminError::Invalid(f) => {
                    Problem::field("channelId", f.message)
                }
                crate::service::admin::AdminError::Upstream(detail) => Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "upstream",
                    "The provider refused",
                    detail,
                ),
                other => Problem::internal(&anyhow::anyhow!(other)),
            })?;
        Ok::<_, Problem>(json_response(StatusCode::OK, &summary))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

// --- Templates authored from plantilla -------------------------------------------------------

/// The problem of a failed submission or deletion.
pub(crate) fn authoring_problem(e: authoring::AuthorError) -> Problem {
    match e {
        authoring::AuthorError::Invalid(errors) => Problem::validation(errors),
        authoring::AuthorError::NotFound(id) => Problem::not_found("template", &id),
        authoring::AuthorError::Upstream(meta) => Problem::new(
            StatusCode::BAD_GATEWAY,
            "upstream",
            "The provider refused",
            authoring::upstream_detail(&meta),
        )
        .with("metaCode", json!(meta.code))
        .with("metaMessage", json!(meta.description())),
        authoring::AuthorError::Internal(e) => Problem::internal(&e),
    }
}

/// `POST /v1/templates`: submits a template to WhatsApp through a channel (the token's, or
/// `channelId` with an account API key) and stores it `PENDING` with Meta's id.
async fn create_template(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        // A repeat of a submission is refused (the name exists); a key is checked, not stored.
        idempotency_key(&headers)?;
        let mut value = parse_json(&body)?;
        let channel_id = match value.as_object_mut().and_then(|o| o.remove("channelId")) {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id),
            Some(_) => return Err(Problem::field("channelId", "must be a string")),
        };
        let channel = caller.channel(&app, channel_id.as_deref()).await?;
        let draft = authoring::parse(&app, &channel.account_id, &value)
            .await
            .map_err(authoring_problem)?;
        let template = authoring::submit(&app, &channel, draft)
            .await
            .map_err(authoring_problem)?;
        Ok::<_, Problem>(json_response(
            StatusCode::CREATED,
            &views::template_with_health(&template, None),
        ))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

/// `DELETE /v1/templates/{id}`: removes the template at Meta, then locally.
async fn delete_template(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let t = app
            .store
            .account_template(caller.account_id(), &id)
            .await?
            .ok_or_else(|| Problem::not_found("template", &id))?;
        authoring::delete(&app, &t, true)
            .await
            .map_err(authoring_problem)?;
        Ok::<_, Problem>(
            Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(axum::body::Body::empty())
                .expect("a static response"),
        )
    }
    .await;
    result.unwrap_or_else(Problem::response)
}
