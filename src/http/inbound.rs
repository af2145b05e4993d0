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

use crate::api::events::MetaNotification;
use crate::app::App;
use crate::service::inbound as webhook;
use crate::service::input::{MAX_JSON_DEPTH, json_too_deep, too_deep_detail};
use crate::store::Channel;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/webhooks/whatsapp", get(verify_app).post(receive_app))
        .route(
            "/webhooks/whatsapp/{channel_id}",
            get(verify_channel).post(receive_channel),
        )
}

fn challenge(q: &HashMap<String, String>, expected: Option<&str>) -> Response {
    let matches = match (q.get("hub.verify_token"), expected) {
        (Some(given), Some(expected)) if !expected.is_empty() => {
            crate::http::same_secret(given, expected)
        }
        _ => false,
    };
    if q.get("hub.mode").map(String::as_str) == Some("subscribe") && matches {
        (
            StatusCode::OK,
            q.get("hub.challenge").cloned().unwrap_or_default(),
        )
            .into_response()
    } else {
        (StatusCode::FORBIDDEN, "verification failed").into_response()
    }
}

async fn verify_app(State(app): State<App>, Query(q): Query<HashMap<String, String>>) -> Response {
    challenge(
        &q,
        app.config.meta_verify_token.as_ref().map(|t| t.expose()),
    )
}

async fn verify_channel(
    State(app): State<App>,
    Path(channel_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match app.store.channel(&channel_id).await {
        Ok(Some(c)) => challenge(&q, Some(&c.verify_token)),
        Ok(None) => (StatusCode::FORBIDDEN, "verification failed").into_response(),
        Err(e) => internal(&e.into()),
    }
}

async fn receive_app(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let secret = app
        .config
        .meta_app_secret
        .as_ref()
        .map(|s| s.expose().to_string());
    receive(&app, secret.as_deref(), None, &headers, &body).await
}

async fn receive_channel(
    State(app): State<App>,
    Path(channel_id): Path<String>,
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
    let Ok(MetaNotification(payload)) = serde_json::from_slice(body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    match webhook::apply(app, scope, &payload).await {
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
