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
use super::idempotency::{EndpointKey, IdempotencyHeader};
use super::openapi::NATIVE;
use super::params::{OldestFirst, parse_cursor, parse_json, parse_limit};
use super::problem::Problem;
use super::typed_json;
use crate::api::events::{
    CallbackDeliveryPage, WebhookEndpoint, WebhookEndpointCreate, WebhookEndpointCreated,
    WebhookEndpointList,
};
use crate::app::App;
use crate::domain::ids::WebhookEndpointId;
use crate::service::callbacks::{self, CallbackError};
use crate::service::views;

/// The operations of this module the document derives from their `#[utoipa::path]`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create_endpoint,
    list_endpoints,
    get_endpoint,
    delete_endpoint,
    list_deliveries
))]
pub(crate) struct Doc;

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

/// The 404 of an endpoint's operations.
const NO_SUCH_ENDPOINT: &str = "The account has no such endpoint.";

/// The body is checked before the `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints",
    operation_id = "createWebhookEndpoint",
    tag = NATIVE,
    summary = "Register a webhook endpoint",
    description = "The endpoint receives the account's events of the types given, signed as Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with its secret, retried with backoff, in order per message. The secret is shown only in this answer (and to a retry with the same Idempotency-Key and body).",
    params(EndpointKey),
    request_body(content = WebhookEndpointCreate, description = "The endpoint."),
    responses(
        (status = 201, description = "Created, with its secret; or, for a retry with the same Idempotency-Key and body, the endpoint that request created.", body = WebhookEndpointCreated),
        (status = 400, description = "The body is wrong (`errors` names each failing field), or the Idempotency-Key is.", extensions(("x-problems" = json!(["validation", "idempotency-key-invalid"])))),
        (status = 404, description = "The endpoint this Idempotency-Key created was deleted since.", extensions(("x-problems" = json!(["not-found"])))),
        (status = 422, description = "The Idempotency-Key was used with another body; nothing was registered.", extensions(("x-problems" = json!(["idempotency-key-reused"])))),
    ),
)]
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

#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints",
    operation_id = "listWebhookEndpoints",
    tag = NATIVE,
    summary = "List webhook endpoints",
    description = "The caller's account's endpoints, without their secrets.",
    responses((status = 200, description = "The endpoints.", body = WebhookEndpointList)),
)]
async fn list_endpoints(State(app): State<App>, caller: Caller) -> Answer {
    let list = callbacks::list_endpoints(&app, caller.account_id()).await?;
    Ok(typed_json(StatusCode::OK, &list))
}

#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}",
    operation_id = "getWebhookEndpoint",
    tag = NATIVE,
    summary = "Get a webhook endpoint",
    description = "",
    params(("id" = WebhookEndpointId, Path, description = "The endpoint id.")),
    responses(
        (status = 200, description = "The endpoint, without its secret.", body = WebhookEndpoint),
        (status = 404, description = NO_SUCH_ENDPOINT, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn get_endpoint(
    State(app): State<App>,
    Path(id): Path<WebhookEndpointId>,
    caller: Caller,
) -> Answer {
    let endpoint = callbacks::get_endpoint(&app, caller.account_id(), &id).await?;
    Ok(typed_json(StatusCode::OK, &endpoint))
}

#[utoipa::path(
    delete,
    path = "/v1/webhook-endpoints/{id}",
    operation_id = "deleteWebhookEndpoint",
    tag = NATIVE,
    summary = "Delete a webhook endpoint",
    description = "Deletes the endpoint and its deliveries: nothing more is sent to it.",
    params(("id" = WebhookEndpointId, Path, description = "The endpoint id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = NO_SUCH_ENDPOINT, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn delete_endpoint(
    State(app): State<App>,
    Path(id): Path<WebhookEndpointId>,
    caller: Caller,
) -> Answer {
    callbacks::delete_endpoint(&app, caller.account_id(), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}/deliveries",
    operation_id = "listWebhookDeliveries",
    tag = NATIVE,
    summary = "List an endpoint's deliveries",
    description = "What was sent, or is still to be sent, to the endpoint, oldest first: status, attempts, the last answer or error, and the payload.",
    params(("id" = WebhookEndpointId, Path, description = "The endpoint id."), OldestFirst),
    responses(
        (status = 200, description = "A page of deliveries.", body = CallbackDeliveryPage),
        (status = 400, description = "`limit` or `cursor` is wrong.", extensions(("x-problems" = json!(["validation"])))),
        (status = 404, description = NO_SUCH_ENDPOINT, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn list_deliveries(
    State(app): State<App>,
    Path(id): Path<WebhookEndpointId>,
    Query(q): Query<HashMap<String, String>>,
    caller: Caller,
) -> Answer {
    let page = OldestFirst {
        limit: parse_limit(&q)?,
        cursor: parse_cursor(&q)?,
    };
    // The cursor names the last delivery seen by its place in the outbox.
    let after = page.cursor.map(|(seq, _)| seq);
    let (data, next) =
        callbacks::deliveries(&app, caller.account_id(), &id, after, page.limit).await?;
    let page = CallbackDeliveryPage {
        data,
        next_cursor: next.map(|seq| views::cursor(seq, &id)),
    };
    Ok(typed_json(StatusCode::OK, &page))
}
