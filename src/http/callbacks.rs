//! Status callbacks in the native API (`/v1/webhook-endpoints`): an account registers the
//! endpoints that receive its events and looks at what was delivered to them. Authentication
//! and problem documents as in the rest of `/v1`; endpoints belong to the caller's account
//! (a channel token's account, or an API key's). A create honours `Idempotency-Key` as the
//! sends do: a retry with the same key and body gets the endpoint the first one created.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::caller::Caller;
use super::idempotency::IdempotencyHeader;
use super::params::{parse_cursor, parse_json, parse_limit};
use super::problem::Problem;
use super::typed_json;
use crate::api::events::CallbackDeliveryPage;
use crate::app::App;
use crate::domain::ids::WebhookEndpointId;
use crate::service::callbacks::{self, CallbackError};
use crate::service::views;

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

impl From<CallbackError> for Problem {
    fn from(e: CallbackError) -> Self {
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
}

type Answer = Result<Response, Problem>;

/// The body is checked before the `Idempotency-Key`.
async fn create_endpoint(
    State(app): State<App>,
    caller: Caller,
    key: Result<IdempotencyHeader, Problem>,
    body: Bytes,
) -> Answer {
    let body = parse_json(&body)?;
    let idem = key?.for_request(&app, &caller, "/v1/webhook-endpoints", &body);
    let input = callbacks::parse_endpoint(&body)?;
    let created = callbacks::create_endpoint(&app, caller.account_id(), input, idem).await?;
    Ok(typed_json(StatusCode::CREATED, &created))
}

async fn list_endpoints(State(app): State<App>, caller: Caller) -> Answer {
    let list = callbacks::list_endpoints(&app, caller.account_id()).await?;
    Ok(typed_json(StatusCode::OK, &list))
}

async fn get_endpoint(
    State(app): State<App>,
    Path(id): Path<WebhookEndpointId>,
    caller: Caller,
) -> Answer {
    let endpoint = callbacks::get_endpoint(&app, caller.account_id(), &id).await?;
    Ok(typed_json(StatusCode::OK, &endpoint))
}

async fn delete_endpoint(
    State(app): State<App>,
    Path(id): Path<WebhookEndpointId>,
    caller: Caller,
) -> Answer {
    callbacks::delete_endpoint(&app, caller.account_id(), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_deliveries(
    State(app): State<App>,
    Path(id): Path<WebhookEndpointId>,
    Query(q): Query<HashMap<String, String>>,
    caller: Caller,
) -> Answer {
    let limit = parse_limit(&q)?;
    // The cursor names the last delivery seen by its place in the outbox.
    let after = parse_cursor(&q)?.map(|(seq, _)| seq);
    let (data, next) = callbacks::deliveries(&app, caller.account_id(), &id, after, limit).await?;
    let page = CallbackDeliveryPage {
        data,
        next_cursor: next.map(|seq| views::cursor(seq, &id)),
    };
    Ok(typed_json(StatusCode::OK, &page))
}
