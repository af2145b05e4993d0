//! The admin API (`/v1/admin/…`), mounted only when an admin token is configured.
//! Errors are RFC 9457 problem documents that name the failing field.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{bearer, error_id, json_response, same_secret};
use crate::app::App;
use crate::service::admin::{self, AdminError, AdminResult};
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

pub(crate) fn problem(
    status: StatusCode,
    kind: &str,
    title: &str,
    detail: &str,
    extra: Value,
) -> Response {
    let mut body = json!({
        "type": format!("/problems/{kind}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let mut r = json_response(status, &body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

async fn require_admin(State(app): State<App>, req: Request, next: Next) -> Response {
    let expected = app.config.admin_token.as_ref().map(|t| t.expose());
    match (bearer(req.headers()), expected) {
        (Some(given), Some(expected)) if !given.is_empty() && same_secret(given, expected) => {
            next.run(req).await
        }
        _ => problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "send the admin token as 'Authorization: Bearer <token>'",
            json!({}),
        ),
    }
}

fn respond(result: AdminResult, created: bool) -> Response {
    match result {
        Ok(v) => json_response(
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            &v,
        ),
        Err(AdminError::Invalid(e)) => problem(
            StatusCode::BAD_REQUEST,
            "invalid-field",
            "Invalid field",
            &e.to_string(),
            json!({"errors": [{"field": e.field, "message": e.message}]}),
        ),
        Err(e @ AdminError::NotFound { .. }) => problem(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            &e.to_string(),
            json!({}),
        ),
        Err(AdminError::Upstream(detail)) => problem(
            StatusCode::BAD_GATEWAY,
            "upstream",
            "The provider refused",
            &detail,
            json!({}),
        ),
        Err(AdminError::Internal(e)) => {
            let id = error_id();
            tracing::error!(error_id = %id, error = format!("{e:#}"), "admin request failed");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal Server Error",
                &format!("something went wrong; the log has the cause under {id}"),
                json!({"errorId": id}),
            )
        }
    }
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

async fn with_body<F, Fut>(body: &[u8], f: F) -> AdminResult
where
    F: FnOnce(Value) -> Fut,
    Fut: Future<Output = AdminResult>,
{
    f(parse_body(body)?).await
}

async fn create_account(State(app): State<App>, body: Bytes) -> Response {
    respond(
        with_body(
            &body,
            |v| async move { admin::create_account(&app, &v).await },
        )
        .await,
        true,
    )
}
async fn create_api_key(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Response {
    let body = if body.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    respond(
        with_body(&body, |v| async move {
            admin::create_api_key(&app, &id, &v).await
        })
        .await,
        true,
    )
}
async fn rotate_callback_secret(State(app): State<App>, Path(id): Path<String>) -> Response {
    respond(
        crate::service::callbacks::rotate_callback_secret(&app, &id).await,
        false,
    )
}
async fn get_account(State(app): State<App>, Path(id): Path<String>) -> Response {
    respond(admin::get_account(&app, &id).await, false)
}
async fn update_account(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Response {
    respond(
        with_body(&body, |v| async move {
            admin::update_account(&app, &id, &v).await
        })
        .await,
        false,
    )
}
async fn create_channel(State(app): State<App>, body: Bytes) -> Response {
    respond(
        with_body(
            &body,
            |v| async move { admin::create_channel(&app, &v).await },
        )
        .await,
        true,
    )
}
async fn get_channel(State(app): State<App>, Path(id): Path<String>) -> Response {
    respond(admin::get_channel(&app, &id).await, false)
}
async fn update_channel(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Response {
    respond(
        with_body(&body, |v| async move {
            admin::update_channel(&app, &id, &v).await
        })
        .await,
        false,
    )
}
async fn rotate_token(State(app): State<App>, Path(id): Path<String>) -> Response {
    respond(admin::rotate_channel_token(&app, &id).await, false)
}
async fn sync_templates(State(app): State<App>, Path(id): Path<String>) -> Response {
    respond(admin::sync_templates(&app, &id).await, false)
}
async fn create_group(State(app): State<App>, body: Bytes) -> Response {
    respond(
        with_body(
            &body,
            |v| async move { admin::create_group(&app, &v).await },
        )
        .await,
        true,
    )
}
async fn create_template(State(app): State<App>, body: Bytes) -> Response {
    respond(
        with_body(
            &body,
            |v| async move { admin::create_template(&app, &v).await },
        )
        .await,
        true,
    )
}
async fn submit_template(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Response {
    respond(
        with_body(&body, |v| async move {
            admin::submit_template(&app, &id, &v).await
        })
        .await,
        true,
    )
}
/// `?atMeta=false` deletes only plantilla's copy (a template already gone at Meta).
async fn delete_template(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let at_meta = match q.get("atMeta").map(String::as_str) {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return respond(
                Err(AdminError::Invalid(FieldError::new(
                    "atMeta",
                    format!("must be true or false, got '{other}'"),
                ))),
                false,
            );
        }
    };
    match admin::delete_template(&app, &id, at_meta).await {
        Ok(()) => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(axum::body::Body::empty())
            .expect("a static response"),
        Err(e) => respond(Err(e), false),
    }
}
async fn get_template(State(app): State<App>, Path(id): Path<String>) -> Response {
    respond(admin::get_template(&app, &id).await, false)
}
async fn update_template(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Response {
    respond(
        with_body(&body, |v| async move {
            admin::update_template(&app, &id, &v).await
        })
        .await,
        false,
    )
}
async fn get_conversation(State(app): State<App>, Path(id): Path<String>) -> Response {
    respond(admin::get_conversation(&app, &id).await, false)
}
async fn close_conversation(State(app): State<App>, Path(id): Path<String>) -> Response {
    respond(admin::close_conversation(&app, &id).await, false)
}
async fn get_message(State(app): State<App>, Path(id): Path<String>) -> Response {
    respond(admin::get_message(&app, &id).await, false)
}
