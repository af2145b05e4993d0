//! The suppression list over HTTP: `/v1/suppressions` for the integrator (a channel token or
//! an account API key: the caller's account's list) and `/v1/admin/accounts/{id}/suppressions`
//! for the operator. Both map to `service::suppressions`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};

use super::caller::Caller;
use super::idempotency::IdempotencyHeader;
use super::params::{parse_cursor, parse_json, parse_limit};
use super::problem::Problem;
use super::typed_json;
use crate::app::App;
use crate::domain::opt_out::Reason;
use crate::service::admin::AdminError;
use crate::service::input::FieldError;
use crate::service::suppressions::{self, Added};

/// The integrator's routes (native API).
pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/v1/suppressions",
            get(list_suppressions).post(add_suppression),
        )
        .route("/v1/suppressions/{phone}", delete(remove_suppression))
}

/// The operator's routes (mounted by the admin API, behind its token).
pub fn admin_routes() -> Router<App> {
    Router::new()
        .route(
            "/v1/admin/accounts/{id}/suppressions",
            get(admin_list).post(admin_add),
        )
        .route(
            "/v1/admin/accounts/{id}/suppressions/{phone}",
            delete(admin_remove),
        )
}

type Answer = Result<Response, Problem>;

fn added_response(added: &Added) -> Answer {
    let status = match added {
        Added::New(_) => StatusCode::CREATED,
        Added::Existing(_) => StatusCode::OK,
    };
    Ok(typed_json(status, &suppressions::view(added.entry())?))
}

/// 204 when the number's entry was removed, else 404 naming the number.
fn removed_response(removed: bool, phone: &str) -> Answer {
    if removed {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Err(Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        format!("the number '{phone}' is not on the account's suppression list"),
    ))
}

async fn list_suppressions(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
    caller: Caller,
) -> Answer {
    let after = parse_cursor(&q)?;
    let limit = parse_limit(&q)?;
    let page = suppressions::list(&app, caller.account_id(), after, limit).await?;
    Ok(typed_json(StatusCode::OK, &page))
}

/// Adding twice is harmless: a key is checked, not stored.
async fn add_suppression(
    State(app): State<App>,
    caller: Caller,
    _key: IdempotencyHeader,
    body: Bytes,
) -> Answer {
    let body = parse_json(&body)?;
    let input = suppressions::parse_add(&body)?;
    let added = suppressions::add(
        &app,
        caller.account_id(),
        input.phone_number.as_str(),
        Reason::Api,
        input.reason,
        caller.channel_id(),
    )
    .await?;
    added_response(&added)
}

async fn remove_suppression(
    State(app): State<App>,
    Path(phone): Path<String>,
    caller: Caller,
) -> Answer {
    let number = suppressions::parse_phone("phoneNumber", &phone)?;
    let removed = suppressions::remove(&app, caller.account_id(), number.as_str()).await?;
    removed_response(removed.is_some(), number.as_str())
}

// --- Admin -------------------------------------------------------------------------------

/// An admin error as its problem (the list's `cursor` and `limit` are refused as in `/v1`).
fn admin(e: impl Into<AdminError>) -> Problem {
    super::admin::problem(e.into())
}

/// Refuses an account that does not exist.
async fn account_exists(app: &App, id: &str) -> Result<(), Problem> {
    match app.store.account(id).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(admin(AdminError::NotFound {
            kind: "account",
            id: id.to_string(),
        })),
        Err(e) => Err(Problem::from(e)),
    }
}

async fn admin_list(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    account_exists(&app, &id).await?;
    let after = parse_cursor(&q)?;
    let limit = parse_limit(&q)?;
    let page = suppressions::list(&app, &id, after, limit).await?;
    Ok(typed_json(StatusCode::OK, &page))
}

async fn admin_add(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Answer {
    account_exists(&app, &id).await?;
    let body: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| admin(FieldError::new("body", format!("is not valid JSON: {e}"))))?;
    let input = suppressions::parse_add(&body).map_err(admin)?;
    let phone = input.phone_number.as_str();
    let added = suppressions::add(&app, &id, phone, Reason::Api, input.reason, None).await?;
    added_response(&added)
}

async fn admin_remove(State(app): State<App>, Path((id, phone)): Path<(String, String)>) -> Answer {
    account_exists(&app, &id).await?;
    let number = suppressions::parse_phone("phoneNumber", &phone).map_err(admin)?;
    let removed = suppressions::remove(&app, &id, number.as_str()).await?;
    removed_response(removed.is_some(), number.as_str())
}
