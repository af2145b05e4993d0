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

use super::admin::{ACCOUNT_ID, INVALID, NO_ACCOUNT};
use super::caller::Caller;
use super::idempotency::{CheckedKey, IdempotencyHeader};
use super::openapi::{ADMIN, NATIVE};
use super::params::{Cursor, Limit, OldestFirst, parse_cursor, parse_json, parse_limit};
use super::problem::Problem;
use super::typed_json;
use crate::api::events::{Suppression, SuppressionCreate, SuppressionPage};
use crate::app::App;
use crate::domain::ids::AccountId;
use crate::domain::opt_out::Reason;
use crate::service::admin::AdminError;
use crate::service::input::FieldError;
use crate::service::suppressions::{self, Added};

/// The operations of this module the document derives from their `#[utoipa::path]`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_suppressions, add_suppression, remove_suppression))]
pub(crate) struct Doc;

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

/// A phone number path parameter.
const PHONE: &str = "The number, country code first, digits only (`50755667788`).";

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

#[utoipa::path(
    get,
    path = "/v1/suppressions",
    operation_id = "listSuppressions",
    tag = NATIVE,
    summary = "List the suppression list",
    description = "The caller's account's opted-out numbers, oldest first: MARKETING templates are not sent to them (UTILITY and AUTHENTICATION still are). Entries come from the API (`api`), an inbound opt-out keyword (`keyword`), a click on a marketing template's opt-out button (`button`) and Meta's error 131050 (`meta_131050`); `automatic` is true for all but `api`.",
    params(OldestFirst),
    responses(
        (status = 200, description = "A page of entries.", body = SuppressionPage),
        (status = 400, description = "`limit` or `cursor` is wrong.", extensions(("x-problems" = json!(["validation"])))),
    ),
)]
async fn list_suppressions(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
    caller: Caller,
) -> Answer {
    let query = OldestFirst {
        cursor: parse_cursor(&q)?,
        limit: parse_limit(&q)?,
    };
    let page = suppressions::list(&app, caller.account_id(), query.cursor, query.limit).await?;
    Ok(typed_json(StatusCode::OK, &page))
}

/// Adding twice is harmless: a key is checked, not stored.
#[utoipa::path(
    post,
    path = "/v1/suppressions",
    operation_id = "addSuppression",
    tag = NATIVE,
    summary = "Add a number to the suppression list",
    description = "Adds the number (normalised and checked like a send's recipient) with reason `api`; `reason` in the body is free text kept as the entry's `note`. A number already on the list keeps its entry (200). `contact.opted_out` is sent to the account's endpoints.",
    params(CheckedKey),
    request_body(content = SuppressionCreate, description = "The number."),
    responses(
        (status = 201, description = "Added.", body = Suppression),
        (status = 200, description = "Already on the list: its entry, unchanged.", body = Suppression),
        (status = 400, description = "The body is wrong (`errors` names the field), or the Idempotency-Key is.", extensions(("x-problems" = json!(["validation", "idempotency-key-invalid"])))),
    ),
)]
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

#[utoipa::path(
    delete,
    path = "/v1/suppressions/{phoneNumber}",
    operation_id = "removeSuppression",
    tag = NATIVE,
    summary = "Remove a number from the suppression list",
    description = "Removes the number's entry, whatever its reason; `contact.opted_in` is sent (reason `api`).",
    params(("phoneNumber" = String, Path, description = "The number, country code first, digits only (`50755667788`).", min_length = 1, max_length = 15, pattern = "^[1-9][0-9]*$")),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, description = "Not a phone number.", extensions(("x-problems" = json!(["validation"])))),
        (status = 404, description = "The number is not on the account's list.", extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
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

/// `limit` and `cursor` of an account's suppression list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AdminListQuery {
    /// Items per page.
    #[param(value_type = Limit, inline, required = false)]
    limit: u32,
    /// `nextCursor` of the previous page (oldest first).
    #[param(value_type = Option<Cursor>, inline)]
    cursor: Option<(i64, String)>,
}

impl AdminListQuery {
    /// The cursor read first, as in `/v1`.
    fn parse(q: &HashMap<String, String>) -> Result<Self, Problem> {
        let cursor = parse_cursor(q)?;
        let limit = parse_limit(q)?;
        Ok(AdminListQuery { limit, cursor })
    }
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

#[utoipa::path(
    get,
    path = "/v1/admin/accounts/{id}/suppressions",
    operation_id = "adminListSuppressions",
    tag = ADMIN,
    summary = "List an account's suppression list",
    description = "As `GET /v1/suppressions`, for any account.",
    params(("id" = AccountId, Path, description = ACCOUNT_ID), AdminListQuery),
    responses(
        (status = 200, description = "A page of entries.", body = SuppressionPage),
        (status = 400, description = "`limit` or `cursor` is wrong.", extensions(("x-problems" = json!(["validation"])))),
        (status = 404, description = NO_ACCOUNT, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn admin_list(
    State(app): State<App>,
    Path(id): Path<AccountId>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    account_exists(&app, &id).await?;
    let AdminListQuery { limit, cursor } = AdminListQuery::parse(&q)?;
    let page = suppressions::list(&app, &id, cursor, limit).await?;
    Ok(typed_json(StatusCode::OK, &page))
}

#[utoipa::path(
    post,
    path = "/v1/admin/accounts/{id}/suppressions",
    operation_id = "adminAddSuppression",
    tag = ADMIN,
    summary = "Add a number to an account's suppression list",
    description = "As `POST /v1/suppressions` (reason `api`).",
    params(("id" = AccountId, Path, description = ACCOUNT_ID)),
    request_body(content = SuppressionCreate, description = "The number."),
    responses(
        (status = 201, description = "Added.", body = Suppression),
        (status = 200, description = "Already on the list: its entry, unchanged.", body = Suppression),
        (status = 400, description = INVALID, extensions(("x-problems" = json!(["invalid-field"])))),
        (status = 404, description = NO_ACCOUNT, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn admin_add(State(app): State<App>, Path(id): Path<AccountId>, body: Bytes) -> Answer {
    account_exists(&app, &id).await?;
    let body: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| admin(FieldError::new("body", format!("is not valid JSON: {e}"))))?;
    let input = suppressions::parse_add(&body).map_err(admin)?;
    let phone = input.phone_number.as_str();
    let added = suppressions::add(&app, &id, phone, Reason::Api, input.reason, None).await?;
    added_response(&added)
}

#[utoipa::path(
    delete,
    path = "/v1/admin/accounts/{id}/suppressions/{phoneNumber}",
    operation_id = "adminRemoveSuppression",
    tag = ADMIN,
    summary = "Remove a number from an account's suppression list",
    description = "As `DELETE /v1/suppressions/{phoneNumber}`.",
    params(
        ("id" = AccountId, Path, description = ACCOUNT_ID),
        ("phoneNumber" = String, Path, description = PHONE, min_length = 1, max_length = 15, pattern = "^[1-9][0-9]*$"),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, description = INVALID, extensions(("x-problems" = json!(["invalid-field"])))),
        (status = 404, description = "No such account, or the number is not on its list.", extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn admin_remove(
    State(app): State<App>,
    Path((id, phone)): Path<(AccountId, String)>,
) -> Answer {
    account_exists(&app, &id).await?;
    let number = suppressions::parse_phone("phoneNumber", &phone).map_err(admin)?;
    let removed = suppressions::remove(&app, &id, number.as_str()).await?;
    removed_response(removed.is_some(), number.as_str())
}
