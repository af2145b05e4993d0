//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`. No token (except `/metrics` when
//! `metrics_token` is set): keep them off the public internet.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{bearer, json_response, same_secret};
use crate::app::App;
use crate::service::ops;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up and answering.
async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

async fn readyz(State(app): State<App>) -> Response {
    let readiness = ops::readiness(&app).await;
    let status = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &readiness.to_json())
}

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
