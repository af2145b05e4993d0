//! Meta's webhooks: verification (`GET`, `hub.challenge`) and notifications (`POST`, signed
//! with the app secret). `/webhooks/whatsapp` serves one Meta app for many channels (routed by
//! phone-number id); `/webhooks/whatsapp/{channelId}` uses that channel's own secrets.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};

use super::openapi::WEBHOOKS;
use crate::api::events::MetaNotification;
use crate::app::App;
use crate::domain::ids::ChannelId;
use crate::service::inbound as webhook;
use crate::service::input::{MAX_JSON_DEPTH, json_too_deep, too_deep_detail};
use crate::store::Channel;

/// The operations of this module the document derives from their `#[utoipa::path]`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(verify_app, receive_app, verify_channel, receive_channel))]
pub(crate) struct Doc;

/// The description of a subscription check whose verify token is `$token`.
macro_rules! verify_doc {
    ($token:literal) => {
        concat!(
            "Meta's verification request when the callback URL is subscribed: answers `hub.challenge` when `hub.mode` is `subscribe` and `hub.verify_token` is ",
            $token,
            "."
        )
    };
}

/// The description of a notification's receipt, checked with `$secret`.
macro_rules! receive_doc {
    ($secret:literal $(, $more:literal)?) => {
        concat!(
            "Statuses update messages and conversations (idempotent, never backwards); inbound messages keep the contact's name; `message_template_status_update` updates template statuses. The signature is checked, in constant time, before the body is parsed, with ",
            $secret,
            "."
            $(, " ", $more)?
        )
    };
}

const VERIFY_SUMMARY: &str = "Answer Meta's subscription check";
const RECEIVE_SUMMARY: &str = "Receive a WhatsApp notification";
const CHANNEL_ID: &str = "The channel whose secrets check the call.";
const RECEIVE_BODY: &str = "Meta's notification.";
const CHALLENGE: &str = "The challenge.";
const VERIFICATION_FAILED: &str = "`verification failed`.";
const NOT_JSON: &str = "`body is not JSON`.";
const INVALID_SIGNATURE: &str = "`invalid signature`.";
const RECEIVE_FAILED: &str =
    "Something unexpected happened: an error id. Meta retries the notification.";

/// The query of a subscription check, as [`challenge`] reads it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Subscription {
    /// `subscribe`.
    #[param(rename = "hub.mode")]
    mode: Option<String>,
    /// The verify token.
    #[param(rename = "hub.verify_token")]
    verify_token: Option<String>,
    /// Echoed back.
    #[param(rename = "hub.challenge")]
    challenge: Option<String>,
}

impl Subscription {
    fn read(q: &HashMap<String, String>) -> Self {
        Subscription {
            mode: q.get("hub.mode").cloned(),
            verify_token: q.get("hub.verify_token").cloned(),
            challenge: q.get("hub.challenge").cloned(),
        }
    }
}

/// The `X-Hub-Signature-256` header of a notification.
struct Signature;

impl utoipa::IntoParams for Signature {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("`sha256=<hex>`"));
        vec![
            ParameterBuilder::new()
                .name("X-Hub-Signature-256")
                .parameter_in(ParameterIn::Header)
                .description(Some("HMAC-SHA256 of the raw body with the app secret."))
                .schema(Some(schema))
                .build(),
        ]
    }
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/webhooks/whatsapp", get(verify_app).post(receive_app))
        .route(
            "/webhooks/whatsapp/{channel_id}",
            get(verify_channel).post(receive_channel),
        )
}

fn challenge(q: &HashMap<String, String>, expected: Option<&str>) -> Response {
    let q = Subscription::read(q);
    let matches = match (&q.verify_token, expected) {
        (Some(given), Some(expected)) if !expected.is_empty() => {
            crate::http::same_secret(given, expected)
        }
        _ => false,
    };
    if q.mode.as_deref() == Some("subscribe") && matches {
        (StatusCode::OK, q.challenge.unwrap_or_default()).into_response()
    } else {
        (StatusCode::FORBIDDEN, "verification failed").into_response()
    }
}

#[utoipa::path(
    get,
    path = "/webhooks/whatsapp",
    operation_id = "verifyWebhook",
    tag = WEBHOOKS,
    summary = VERIFY_SUMMARY,
    description = verify_doc!("`PLANTILLA_META_VERIFY_TOKEN`"),
    params(Subscription),
    responses(
        (status = 200, description = CHALLENGE, content_type = "text/plain", body = String),
        (status = 403, description = VERIFICATION_FAILED, content_type = "text/plain", body = String),
    ),
)]
async fn verify_app(State(app): State<App>, Query(q): Query<HashMap<String, String>>) -> Response {
    challenge(
        &q,
        app.config.meta_verify_token.as_ref().map(|t| t.expose()),
    )
}

#[utoipa::path(
    get,
    path = "/webhooks/whatsapp/{channelId}",
    operation_id = "verifyChannelWebhook",
    tag = WEBHOOKS,
    summary = VERIFY_SUMMARY,
    description = verify_doc!("the channel's `verifyToken`"),
    params(("channelId" = ChannelId, Path, description = CHANNEL_ID), Subscription),
    responses(
        (status = 200, description = CHALLENGE, content_type = "text/plain", body = String),
        (status = 403, description = VERIFICATION_FAILED, content_type = "text/plain", body = String),
        (status = 500, description = "Something unexpected happened: an error id.", content_type = "text/plain", body = String),
    ),
)]
async fn verify_channel(
    State(app): State<App>,
    Path(channel_id): Path<ChannelId>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match app.store.channel(&channel_id).await {
        Ok(Some(c)) => challenge(&q, Some(&c.verify_token)),
        Ok(None) => (StatusCode::FORBIDDEN, "verification failed").into_response(),
        Err(e) => internal(&e.into()),
    }
}

#[utoipa::path(
    post,
    path = "/webhooks/whatsapp",
    operation_id = "receiveWebhook",
    tag = WEBHOOKS,
    summary = RECEIVE_SUMMARY,
    description = receive_doc!("`PLANTILLA_META_APP_SECRET`", "Notifications are routed to channels by `phone_number_id`."),
    params(Signature),
    request_body(content = MetaNotification, description = RECEIVE_BODY),
    responses(
        (status = 200, description = "Applied."),
        (status = 400, description = NOT_JSON, content_type = "text/plain", body = String),
        (status = 401, description = INVALID_SIGNATURE, content_type = "text/plain", body = String),
        (status = 500, description = RECEIVE_FAILED, content_type = "text/plain", body = String),
    ),
)]
async fn receive_app(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let secret = app.config.meta_app_secret.as_ref().map(|s| s.expose());
    receive(&app, secret, None, &headers, &body).await
}

#[utoipa::path(
    post,
    path = "/webhooks/whatsapp/{channelId}",
    operation_id = "receiveChannelWebhook",
    tag = WEBHOOKS,
    summary = RECEIVE_SUMMARY,
    description = receive_doc!("the channel's `appSecret`"),
    params(("channelId" = ChannelId, Path, description = CHANNEL_ID), Signature),
    request_body(content = MetaNotification, description = RECEIVE_BODY),
    responses(
        (status = 200, description = "Applied."),
        (status = 400, description = NOT_JSON, content_type = "text/plain", body = String),
        (status = 401, description = INVALID_SIGNATURE, content_type = "text/plain", body = String),
        (status = 500, description = RECEIVE_FAILED, content_type = "text/plain", body = String),
    ),
)]
async fn receive_channel(
    State(app): State<App>,
    Path(channel_id): Path<ChannelId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let channel = match app.store.channel(&channel_id).await {
        Ok(c) => c,
        Err(e) => return internal(&e.into()),
    };
    let secret = channel.as_ref().map(|c| c.app_secret.clone());
    receive(&app, secret.as_deref(), channel.as_ref(), &headers, &body).await
}

async fn receive(
    app: &App,
    secret: Option<&str>,
    scope: Option<&Channel>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    // Checked before anything is parsed.
    if !secret.is_some_and(|s| webhook::signature_valid(s, body, signature)) {
        return (StatusCode::UNAUTHORIZED, "invalid signature").into_response();
    }
    if json_too_deep(body, MAX_JSON_DEPTH) {
        return (StatusCode::BAD_REQUEST, too_deep_detail()).into_response();
    }
    // A body of statuses alone is read without a `Value` tree; any other the `Value` way.
    let reports = match webhook::fast::statuses(body) {
        Some(reports) => reports,
        None => {
            let Ok(MetaNotification(payload)) = serde_json::from_slice(body) else {
                return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
            };
            webhook::parse(&payload)
        }
    };
    match webhook::apply_reports(app, scope, reports).await {
        Ok(applied) => {
            tracing::debug!(?applied, "webhook applied");
            StatusCode::OK.into_response()
        }
        Err(e) => internal(&e.into()),
    }
}

fn internal(e: &anyhow::Error) -> Response {
    let id = crate::http::error_id();
    tracing::error!(error_id = %id, error = format!("{e:#}"), "webhook failed");
    // Meta retries a webhook that does not get a 200.
    (StatusCode::INTERNAL_SERVER_ERROR, id).into_response()
}
