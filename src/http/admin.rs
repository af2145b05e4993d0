//! The admin API (`/v1/admin/…`), mounted only when an admin token is configured.
//! Errors are RFC 9457 problem documents that name the failing field.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;

use super::caller::AdminToken;
use super::problem::Problem;
use super::typed_json;
use crate::app::App;
use crate::domain::ids::{AccountId, ChannelId, ConversationId, MessageId};
use crate::service::admin::{self, AdminError};
use crate::service::input::{FieldError, MAX_JSON_DEPTH, json_too_deep, too_deep_detail};

pub fn routes(app: App) -> Router<App> {
    Router::new()
        .route("/v1/admin/accounts", post(create_account))
        .route(
            "/v1/admin/accounts/{id}",
            get(get_account).patch(update_account),
        )
        .route("/v1/admin/accounts/{id}/api-keys", post(create_api_key))
        .route(
            "/v1/admin/accounts/{id}/callback-secret",
            post(rotate_callback_secret),
        )
        .route("/v1/admin/channels", post(create_channel))
        .route(
            "/v1/admin/channels/{id}",
            get(get_channel).patch(update_channel),
        )
        .route("/v1/admin/channels/{id}/rotate-token", post(rotate_token))
        .route(
            "/v1/admin/channels/{id}/templates/sync",
            post(sync_templates),
        )
        .route("/v1/admin/channels/{id}/templates", post(submit_template))
        .route("/v1/admin/groups", post(create_group))
        .route("/v1/admin/templates", post(create_template))
        .route(
            "/v1/admin/templates/{id}",
            get(get_template)
                .patch(update_template)
                .delete(delete_template),
        )
        .route("/v1/admin/conversations/{id}", get(get_conversation))
        .route(
            "/v1/admin/conversations/{id}/close",
            post(close_conversation),
        )
        .route("/v1/admin/messages/{id}", get(get_message))
        .merge(super::suppressions::admin_routes())
        .route_layer(middleware::from_fn_with_state(app, require_admin))
}

/// Every admin route requires the admin token (see [`AdminToken`]).
async fn require_admin(_: AdminToken, req: Request, next: Next) -> Response {
    next.run(req).await
}

/// The problem of an admin API error.
pub(crate) fn problem(e: AdminError) -> Problem {
    match e {
        AdminError::Invalid(e) => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-field",
            "Invalid field",
            e.to_string(),
        )
        .errors(vec![e]),
        e @ AdminError::NotFound { .. } => Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            e.to_string(),
        ),
        AdminError::Upstream(detail) => Problem::new(
            StatusCode::BAD_GATEWAY,
            "upstream",
            "The provider refused",
            detail,
        ),
        AdminError::Internal(e) => Problem::internal_logged(&e, "admin request failed"),
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        problem(self).into_response()
    }
}

type Answer = Result<Response, AdminError>;

fn ok<T: Serialize>(body: T) -> Answer {
    Ok(typed_json(StatusCode::OK, &body))
}

fn created<T: Serialize>(body: T) -> Answer {
    Ok(typed_json(StatusCode::CREATED, &body))
}

fn parse_body(body: &[u8]) -> Result<Value, AdminError> {
    if json_too_deep(body, MAX_JSON_DEPTH) {
        return Err(AdminError::Invalid(FieldError::new(
            "body",
            too_deep_detail(),
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        AdminError::Invalid(FieldError::new("body", format!("is not valid JSON: {e}")))
    })
}

async fn create_account(State(app): State<App>, body: Bytes) -> Answer {
    let new = admin::account_create(&parse_body(&body)?)?;
    created(admin::create_account(&app, new).await?)
}
/// An empty body is `{}`.
async fn create_api_key(State(app): State<App>, Path(id): Path<AccountId>, body: Bytes) -> Answer {
    let body = if body.is_empty() { &b"{}"[..] } else { &body };
    let new = admin::api_key_create(&parse_body(body)?)?;
    created(admin::create_api_key(&app, &id, new).await?)
}
async fn rotate_callback_secret(State(app): State<App>, Path(id): Path<AccountId>) -> Answer {
    ok(crate::service::callbacks::rotate_callback_secret(&app, &id).await?)
}
async fn get_account(State(app): State<App>, Path(id): Path<AccountId>) -> Answer {
    ok(admin::get_account(&app, &id).await?)
}
async fn update_account(State(app): State<App>, Path(id): Path<AccountId>, body: Bytes) -> Answer {
    let change = admin::account_update(&parse_body(&body)?)?;
    ok(admin::update_account(&app, &id, change).await?)
}
async fn create_channel(State(app): State<App>, body: Bytes) -> Answer {
    let new = admin::channel_create(&parse_body(&body)?)?;
    created(admin::create_channel(&app, new).await?)
}
async fn get_channel(State(app): State<App>, Path(id): Path<ChannelId>) -> Answer {
    ok(admin::get_channel(&app, &id).await?)
}
async fn update_channel(State(app): State<App>, Path(id): Path<ChannelId>, body: Bytes) -> Answer {
    let change = admin::channel_update(&parse_body(&body)?)?;
    ok(admin::update_channel(&app, &id, change).await?)
}
async fn rotate_token(State(app): State<App>, Path(id): Path<ChannelId>) -> Answer {
    ok(admin::rotate_channel_token(&app, &id).await?)
}
async fn sync_templates(State(app): State<App>, Path(id): Path<ChannelId>) -> Answer {
    ok(admin::sync_templates(&app, &id).await?)
}
async fn create_group(State(app): State<App>, body: Bytes) -> Answer {
    let new = admin::group_create(&parse_body(&body)?)?;
    created(admin::create_group(&app, new).await?)
}
async fn create_template(State(app): State<App>, body: Bytes) -> Answer {
    created(admin::create_template(&app, &parse_body(&body)?).await?)
}
async fn submit_template(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Answer {
    created(admin::submit_template(&app, &id, &parse_body(&body)?).await?)
}
/// `?atMeta=false` deletes only plantilla's copy (a template already gone at Meta).
async fn delete_template(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let at_meta = match q.get("atMeta").map(String::as_str) {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(AdminError::Invalid(FieldError::new(
                "atMeta",
                format!("must be true or false, got '{other}'"),
            )));
        }
    };
    admin::delete_template(&app, &id, at_meta).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
async fn get_template(State(app): State<App>, Path(id): Path<String>) -> Answer {
    ok(admin::get_template(&app, &id).await?)
}
async fn update_template(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Answer {
    ok(admin::update_template(&app, &id, &parse_body(&body)?).await?)
}
async fn get_conversation(State(app): State<App>, Path(id): Path<ConversationId>) -> Answer {
    ok(admin::get_conversation(&app, &id).await?)
}
async fn close_conversation(State(app): State<App>, Path(id): Path<ConversationId>) -> Answer {
    ok(admin::close_conversation(&app, &id).await?)
}
async fn get_message(State(app): State<App>, Path(id): Path<MessageId>) -> Answer {
    ok(admin::get_message(&app, &id).await?)
}
