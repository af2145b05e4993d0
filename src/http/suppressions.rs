//! The suppression list over HTTP: `/v1/suppressions` for the integrator (a channel token or
//! an account API key: the caller's account's list) and `/v1/admin/accounts/{id}/suppressions`
//! for the operator. Both map to `service::suppressions`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get};
use serde_json::json;

use super::admin::problem;
use super::json_response;
use super::native::{
    Problem, authenticate, idempotency_key, parse_cursor, parse_json, parse_limit,
};
use crate::app::App;
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

fn no_content() -> Response {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(axum::body::Body::empty())
        .expect("a static response")
}

fn added_response(added: &Added) -> Response {
    let status = match added {
        Added::New(_) => StatusCode::CREATED,
        Added::Existing(_) => StatusCode::OK,
    };
    json_response(status, &suppressions::view(added.entry()))
}

fn entry_not_found(phone: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        format!("the number '{phone}' is not on the account's suppression list"),
    )
}

async fn list_suppressions(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let after = parse_cursor(&q)?;
        let limit = parse_limit(&q)?;
        let page = suppressions::list(&app, caller.account_id(), after, limit).await?;
        Ok::<_, Problem>(json_response(StatusCode::OK, &page))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

async fn add_suppression(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        // Adding twice is harmless: a key is checked, not stored.
        idempotency_key(&headers)?;
        let body = parse_json(&body)?;
        let (phone, note) =
            suppressions::parse_add(&body).map_err(|e| Problem::validation(vec![e]))?;
        let channel_id = match &caller {
            super::native::Caller::Channel(c) => Some(c.id.clone()),
            super::native::Caller::Account(_) => None,
        };
        let added = suppressions::add(
            &app,
            caller.account_id(),
            phone.as_str(),
            crate::domain::opt_out::Reason::Api,
            note,
            channel_id.as_deref(),
        )
        .await?;
        Ok::<_, Problem>(added_response(&added))
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

async fn remove_suppression(
    State(app): State<App>,
    headers: HeaderMap,
    Path(phone): Path<String>,
) -> Response {
    let result = async {
        let caller = authenticate(&app, &headers).await?;
        let number = suppressions::parse_phone("phoneNumber", &phone)
            .map_err(|e| Problem::validation(vec![e]))?;
        match suppressions::remove(&app, caller.account_id(), number.as_str()).await? {
            Some(_) => Ok::<_, Problem>(no_content()),
            None => Err(entry_not_found(number.as_str())),
        }
    }
    .await;
    result.unwrap_or_else(Problem::response)
}

// --- Admin -------------------------------------------------------------------------------

fn admin_invalid(e: &crate::service::input::FieldError) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "invalid-field",
        "Invalid field",
        &e.to_string(),
        json!({"errors": [{"field": e.field, "message": e.message}]}),
    )
}

fn admin_not_found(detail: &str) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        detail,
        json!({}),
    )
}

fn admin_internal(e: impl Into<anyhow::Error>) -> Response {
    Problem::internal(&e.into()).response()
}

async fn account_exists(app: &App, id: &str) -> Result<(), Response> {
    match app.store.account(id).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(admin_not_found(&format!("no account with id '{id}'"))),
        Err(e) => Err(admin_internal(e)),
    }
}

async fn admin_list(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = account_exists(&app, &id).await {
        return r;
    }
    let (after, limit) = match (parse_cursor(&q), parse_limit(&q)) {
        (Ok(a), Ok(l)) => (a, l),
        (Err(p), _) | (_, Err(p)) => return p.response(),
    };
    match suppressions::list(&app, &id, after, limit).await {
        Ok(page) => json_response(StatusCode::OK, &page),
        Err(e) => admin_internal(e),
    }
}

async fn admin_add(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(r) = account_exists(&app, &id).await {
        return r;
    }
    let body = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return admin_invalid(&crate::service::input::FieldError::new(
                "body",
                format!("is not valid JSON: {e}"),
            ));
        }
    };
    let (phone, note) = match suppressions::parse_add(&body) {
        Ok(v) => v,
        Err(e) => return admin_invalid(&e),
    };
    match suppressions::add(
        &app,
        &id,
        phone.as_str(),
        crate::domain::opt_out::Reason::Api,
        note,
        None,
    )
    .await
    {
        Ok(added) => added_response(&added),
        Err(e) => admin_internal(e),
    }
}

async fn admin_remove(
    State(app): State<App>,
    Path((id, phone)): Path<(String, String)>,
) -> Response {
    if let Err(r) = account_exists(&app, &id).await {
        return r;
    }
    let number = match suppressions::parse_phone("phoneNumber", &phone) {
        Ok(n) => n,
        Err(e) => return admin_invalid(&e),
    };
    match suppressions::remove(&app, &id, number.as_str()).await {
        Ok(Some(_)) => no_content(),
        Ok(None) => admin_not_found(&format!(
            "the number '{}' is not on the account's suppression list",
            number.as_str()
        )),
        Err(e) => admin_internal(e),
    }
}
