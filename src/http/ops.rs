//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`. No token (except `/metrics` when
//! `metrics_token` is set): keep them off the public internet.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::openapi::OPERATIONS;
use super::{bearer, json_response, same_secret, typed_json};
use crate::api::compat::CompatEnvelope;
use crate::api::ops::{Alive, Health, Readiness};
use crate::app::App;
use crate::service::ops;

/// The operations of this module the document derives from their `#[utoipa::path]`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz, metrics))]
pub(crate) struct Doc;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up and answering.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "getHealth",
    tag = OPERATIONS,
    summary = "Liveness",
    description = "Answers while the process runs.",
    responses((status = 200, description = "The process is up.", body = inline(Health))),
)]
async fn healthz() -> Response {
    typed_json(StatusCode::OK, &Health { status: Alive::Ok })
}

#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "getReadiness",
    tag = OPERATIONS,
    summary = "Readiness",
    description = "Ready when the database answers (within 2 s), has every migration this binary embeds, the dispatcher loop runs and no shutdown is under way.",
    responses(
        (status = 200, description = "Ready.", body = inline(Readiness)),
        (status = 503, description = "Not ready: `notReady` names what is not.", body = inline(Readiness)),
    ),
)]
async fn readyz(State(app): State<App>) -> Response {
    let readiness = ops::readiness(&app).await;
    let status = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    typed_json(status, &readiness)
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "getMetrics",
    tag = OPERATIONS,
    summary = "Prometheus metrics",
    description = "Prometheus' text format: requests by route template and status, send latency, messages by status, queue depth and oldest age per channel, provider errors by code, channel health, webhook lag. Never a token, a secret or a phone number. With `PLANTILLA_METRICS_TOKEN` set it takes `Authorization: Bearer <that token>`.",
    responses(
        (status = 200, description = "The metrics (`text/plain; version=0.0.4`).", content_type = "text/plain", body = String),
        (status = 401, description = "`PLANTILLA_METRICS_TOKEN` is set and the request does not carry it.", body = CompatEnvelope),
    ),
)]
async fn metrics(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(expected) = &app.config.metrics_token {
        let given = bearer(&headers).unwrap_or("");
        if given.is_empty() || !same_secret(given, expected.expose()) {
            return json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"code": 401, "body": {
                    "context": {"key": "Authorization", "label": "headers.authorization"},
                    "message": "send the metrics token as 'Authorization: Bearer <token>'",
                    "path": ["headers.authorization"],
                    "type": "Unauthorized"}}),
            );
        }
    }
    let mut response = ops::render_metrics(&app).await.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
}
