//! Status callbacks in the native API (`/v1/webhook-endpoints`): an account registers the
//! endpoints that receive its events and looks at what was delivered to them. Authentication
//! and problem documents as in the rest of `/v1`; endpoints belong to the caller's account
//! (a channel token's account, or an API key's). A create honours `Idempotency-Key` as the
//! sends do: a retry with the same key and body gets the endpoint the first one created.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::json_response;
use super::native::{
    Problem, authenticate, encode_cursor, idempotency, parse_cursor, parse_json, parse_limit,
};
use crate::app::App;
use crate::service::callbacks::{self, CallbackError};

pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/v1/webhook-endpoints",
            get(list_endpoints).post(create_endpoint),
        )
        .route(
            "/v1/webhook-endpoints/{id}",
            get(get_endpoint).delete(delete_endpoint),
        )
        .route(
            "/v1/webhook-endpoints/{id}/deliveries",
            get(list_deliveries),
        )
}

fn problem(e: CallbackError) -> Problem {
    match e {
        CallbackError::Invalid(errors) => Problem::validation(errors),
        CallbackError::NotFound { kind, id } => Problem::not_found(kind, &id),
        CallbackError::IdempotencyKeyReused => Problem::idempotency_key_reused(),
        CallbackError::CreatedEndpointDeleted(id) => Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!(
                "the webhook endpoint '{id}' this Idempotency-Key created was deleted since; \
                 use a new key to register an endpoint again"
            ),
        ),
        CallbackError::Internal(e) => Problem::internal(&e),
    }
}

async fn create_endpoint(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let body = parse_json(&body)?;
        let idem = idempotency(&app, &caller, &headers, "/v1/webhook-endpoints", &body)?;
        let created = callbacks::create_endpoint(&app, caller.account_id(), &body, idem)
            .await
            .map_err(problem)?;
        Ok::<_, Problem>(json_response(StatusCode::CREATED, &created))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

async fn list_endpoints(State(app): State<App>, headers: HeaderMap) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let list = callbacks::list_endpoints(&app, caller.account_id())
            .await
            .map_err(problem)?;
        Ok::<_, Problem>(json_response(StatusCode::OK, &list))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

async fn get_endpoint(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let endpoint = callbacks::get_endpoint(&app, caller.account_id(), &id)
            .await
            .map_err(problem)?;
        Ok::<_, Problem>(json_response(StatusCode::OK, &endpoint))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

async fn delete_endpoint(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        callbacks::delete_endpoint(&app, caller.account_id(), &id)
            .await
            .map_err(problem)?;
        Ok::<_, Problem>(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

async fn list_deliveries(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let limit = parse_limit(&q)?;
        // The cursor names the last delivery seen by its place in the outbox.
        let after = parse_cursor(&q)?.map(|(seq, _)| seq);
        let (data, next) = callbacks::deliveries(&app, caller.account_id(), &id, after, limit)
            .await
            .map_err(problem)?;
        let next = next.map(|seq| encode_cursor(seq, &id));
        Ok::<_, Problem>(json_response(
            StatusCode::OK,
            &json!({"data": data, "nextCursor": next}),
        ))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}
