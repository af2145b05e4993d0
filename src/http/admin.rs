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
use super::openapi::ADMIN;
use super::problem::Problem;
use super::typed_json;
use crate::api::admin::{
    Account, AccountCreate, AccountUpdate, AdminMessage, ApiKey, ApiKeyCreate, CallbackSecret,
    Channel, ChannelCreate, ChannelCreated, ChannelUpdate, Group, GroupCreate, TokenRotated,
};
use crate::api::messages::Conversation;
use crate::api::templates::{Template, TemplateCreate, TemplateUpdate};
use crate::app::App;
use crate::domain::ids::{AccountId, ChannelId, ConversationId, MessageId, TemplateId};
use crate::service::admin::{self, AdminError};
use crate::service::input::{FieldError, MAX_JSON_DEPTH, json_too_deep, too_deep_detail};
use crate::service::templates::SyncSummary;

/// The operations of this module the document derives from their `#[utoipa::path]` (and those
/// of the operator's suppression list, mounted here).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create_account,
    get_account,
    update_account,
    create_api_key,
    rotate_callback_secret,
    create_channel,
    get_channel,
    update_channel,
    rotate_token,
    sync_templates,
    submit_template,
    create_group,
    create_template,
    delete_template,
    get_template,
    update_template,
    get_conversation,
    close_conversation,
    get_message,
    super::suppressions::admin_list,
    super::suppressions::admin_add,
    super::suppressions::admin_remove,
))]
pub(crate) struct Doc;

/// A 400 of a wrong field.
pub(super) const INVALID: &str = "A field is missing, unknown or wrong; `errors` names it.";
pub(super) const ACCOUNT_ID: &str = "The account id.";
pub(super) const NO_ACCOUNT: &str = "No such account.";
const CHANNEL_ID: &str = "The channel id.";
const NO_CHANNEL: &str = "No such channel.";
const TEMPLATE_ID: &str = "The template id.";
const NO_TEMPLATE: &str = "No such template.";
const CONVERSATION_ID: &str = "The conversation id.";
const NO_CONVERSATION: &str = "No such conversation.";

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

#[utoipa::path(
    post,
    path = "/v1/admin/accounts",
    operation_id = "adminCreateAccount",
    tag = ADMIN,
    summary = "Create an account",
    description = "",
    request_body(content = AccountCreate, description = "The account."),
    responses(
        (status = 201, description = "Created.", body = Account),
        (status = 400, description = INVALID, extensions(("x-problems" = json!(["invalid-field"])))),
    ),
)]
async fn create_account(State(app): State<App>, body: Bytes) -> Answer {
    let new = admin::account_create(&parse_body(&body)?)?;
    created(admin::create_account(&app, new).await?)
}
/// An empty body is `{}`.
#[utoipa::path(
    post,
    path = "/v1/admin/accounts/{id}/api-keys",
    operation_id = "adminCreateApiKey",
    tag = ADMIN,
    summary = "Create an account API key",
    description = "An API key gives account-wide access to the native API. The key is shown only in this answer; its SHA-256 is stored. An empty body is `{}`.",
    params(("id" = AccountId, Path, description = ACCOUNT_ID)),
    request_body(content = Option<ApiKeyCreate>, description = "The key's name."),
    responses(
        (status = 201, description = "Created.", body = ApiKey),
        (status = 400, description = INVALID, extensions(("x-problems" = json!(["invalid-field"])))),
        (status = 404, description = NO_ACCOUNT, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn create_api_key(State(app): State<App>, Path(id): Path<AccountId>, body: Bytes) -> Answer {
    let body = if body.is_empty() { &b"{}"[..] } else { &body };
    let new = admin::api_key_create(&parse_body(body)?)?;
    created(admin::create_api_key(&app, &id, new).await?)
}
#[utoipa::path(
    post,
    path = "/v1/admin/accounts/{id}/callback-secret",
    operation_id = "adminRotateCallbackSecret",
    tag = ADMIN,
    summary = "Rotate an account's callback secret",
    description = "A new secret for the account's deliveries to messages' own `callbackUrl` (endpoints have their own secrets). The old secret stops signing at once.",
    params(("id" = AccountId, Path, description = ACCOUNT_ID)),
    responses(
        (status = 200, description = "The new secret.", body = CallbackSecret),
        (status = 404, description = NO_ACCOUNT, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn rotate_callback_secret(State(app): State<App>, Path(id): Path<AccountId>) -> Answer {
    ok(crate::service::callbacks::rotate_callback_secret(&app, &id).await?)
}
#[utoipa::path(
    get,
    path = "/v1/admin/accounts/{id}",
    operation_id = "adminGetAccount",
    tag = ADMIN,
    summary = "Get an account",
    description = "",
    params(("id" = AccountId, Path, description = ACCOUNT_ID)),
    responses(
        (status = 200, description = "The account.", body = Account),
        (status = 404, description = NO_ACCOUNT, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn get_account(State(app): State<App>, Path(id): Path<AccountId>) -> Answer {
    ok(admin::get_account(&app, &id).await?)
}
#[utoipa::path(
    patch,
    path = "/v1/admin/accounts/{id}",
    operation_id = "adminUpdateAccount",
    tag = ADMIN,
    summary = "Update an account",
    description = "Sets the account's quiet hours: MARKETING sends that would reach a recipient inside the window, in the recipient's local time (from the number's country and area code, by libphonenumber's time-zone data), are held until it ends and show `heldUntil`; UTILITY and AUTHENTICATION are not held. A number whose possible zones have different offsets (a country code alone for a country of several zones) is not held. `{\"quietHours\": null}` turns them off. `optOutKeywords` / `optInKeywords` set the inbound texts that opt a number out of the account's marketing or back in (exactly one keyword, case, accents and surrounding spaces and punctuation aside); null restores the defaults. A wrong field changes nothing.",
    params(("id" = AccountId, Path, description = ACCOUNT_ID)),
    request_body(content = AccountUpdate, description = "The settings to change."),
    responses(
        (status = 200, description = "The account.", body = Account),
        (status = 400, description = INVALID, extensions(("x-problems" = json!(["invalid-field"])))),
        (status = 404, description = NO_ACCOUNT, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn update_account(State(app): State<App>, Path(id): Path<AccountId>, body: Bytes) -> Answer {
    let change = admin::account_update(&parse_body(&body)?)?;
    ok(admin::update_account(&app, &id, change).await?)
}
#[utoipa::path(
    post,
    path = "/v1/admin/channels",
    operation_id = "adminCreateChannel",
    tag = ADMIN,
    summary = "Create a channel",
    description = "The public token is shown only in this answer (and on rotation); only its SHA-256 is stored. Secrets are never shown.",
    request_body(content = ChannelCreate, description = "The channel."),
    responses(
        (status = 201, description = "Created, with its public token.", body = ChannelCreated),
        (status = 400, description = INVALID, extensions(("x-problems" = json!(["invalid-field"])))),
    ),
)]
async fn create_channel(State(app): State<App>, body: Bytes) -> Answer {
    let new = admin::channel_create(&parse_body(&body)?)?;
    created(admin::create_channel(&app, new).await?)
}
#[utoipa::path(
    get,
    path = "/v1/admin/channels/{id}",
    operation_id = "adminGetChannel",
    tag = ADMIN,
    summary = "Get a channel",
    description = "Shows `health` and, when halted, the error that halted it.",
    params(("id" = ChannelId, Path, description = CHANNEL_ID)),
    responses(
        (status = 200, description = "The channel.", body = Channel),
        (status = 404, description = NO_CHANNEL, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn get_channel(State(app): State<App>, Path(id): Path<ChannelId>) -> Answer {
    ok(admin::get_channel(&app, &id).await?)
}
#[utoipa::path(
    patch,
    path = "/v1/admin/channels/{id}",
    operation_id = "adminUpdateChannel",
    tag = ADMIN,
    summary = "Update a channel",
    description = "Changes the fields given. Any PATCH of a halted channel resumes it. `messagingLimit` sets Meta's messaging limit of the number (null: unlimited): new conversations beyond it in a rolling 24 h are held, not sent to be refused.",
    params(("id" = ChannelId, Path, description = CHANNEL_ID)),
    request_body(content = ChannelUpdate, description = "The fields to change."),
    responses(
        (status = 200, description = "The channel.", body = Channel),
        (status = 400, description = INVALID, extensions(("x-problems" = json!(["invalid-field"])))),
        (status = 404, description = NO_CHANNEL, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn update_channel(State(app): State<App>, Path(id): Path<ChannelId>, body: Bytes) -> Answer {
    let change = admin::channel_update(&parse_body(&body)?)?;
    ok(admin::update_channel(&app, &id, change).await?)
}
#[utoipa::path(
    post,
    path = "/v1/admin/channels/{id}/rotate-token",
    operation_id = "adminRotateChannelToken",
    tag = ADMIN,
    summary = "Rotate a channel's public token",
    description = "",
    params(("id" = ChannelId, Path, description = CHANNEL_ID)),
    responses(
        (status = 200, description = "The new token.", body = TokenRotated),
        (status = 404, description = NO_CHANNEL, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn rotate_token(State(app): State<App>, Path(id): Path<ChannelId>) -> Answer {
    ok(admin::rotate_channel_token(&app, &id).await?)
}
#[utoipa::path(
    post,
    path = "/v1/admin/channels/{id}/templates/sync",
    operation_id = "adminSyncTemplates",
    tag = ADMIN,
    summary = "Sync a channel's templates",
    description = "Reads the channel's WABA templates from Meta (following paging) and creates or updates plantilla's.",
    params(("id" = ChannelId, Path, description = CHANNEL_ID)),
    responses(
        (status = 200, description = "What the sync did.", body = SyncSummary),
        (status = 400, description = "The channel cannot sync (not a connected cloud channel with a WABA id).", extensions(("x-problems" = json!(["invalid-field"])))),
        (status = 404, description = NO_CHANNEL, extensions(("x-problems" = json!(["not-found"])))),
        (status = 502, description = "Meta's Graph API refused.", extensions(("x-problems" = json!(["upstream"])))),
    ),
)]
async fn sync_templates(State(app): State<App>, Path(id): Path<ChannelId>) -> Answer {
    ok(admin::sync_templates(&app, &id).await?)
}
#[utoipa::path(
    post,
    path = "/v1/admin/groups",
    operation_id = "adminCreateGroup",
    tag = ADMIN,
    summary = "Create a group",
    description = "A channel's first group is its default group.",
    request_body(content = GroupCreate, description = "The group."),
    responses(
        (status = 201, description = "Created.", body = Group),
        (status = 400, description = INVALID, extensions(("x-problems" = json!(["invalid-field"])))),
    ),
)]
async fn create_group(State(app): State<App>, body: Bytes) -> Answer {
    let new = admin::group_create(&parse_body(&body)?)?;
    created(admin::create_group(&app, new).await?)
}
#[utoipa::path(
    post,
    path = "/v1/admin/templates",
    operation_id = "adminCreateTemplate",
    tag = ADMIN,
    summary = "Create a template",
    description = "Header, body and buttons are checked as Meta would (placeholders, lengths, button rules).",
    request_body(content = TemplateCreate, description = "The template."),
    responses(
        (status = 201, description = "Created.", body = Template),
        (status = 400, description = INVALID, extensions(("x-problems" = json!(["invalid-field"])))),
    ),
)]
async fn create_template(State(app): State<App>, body: Bytes) -> Answer {
    created(admin::create_template(&app, &parse_body(&body)?).await?)
}
#[utoipa::path(
    post,
    path = "/v1/admin/channels/{id}/templates",
    operation_id = "adminSubmitTemplate",
    tag = ADMIN,
    summary = "Submit a template to WhatsApp",
    description = "As `POST /v1/templates`, through the channel of the path. (`POST /v1/admin/templates` still registers a template here without Meta.)",
    params(("id" = ChannelId, Path, description = CHANNEL_ID)),
    request_body(content = crate::api::templates::AdminTemplateSubmit, description = "The template."),
    responses(
        (status = 201, description = "Submitted: the template, `PENDING`.", body = Template),
        (status = 400, description = INVALID, extensions(("x-problems" = json!(["invalid-field"])))),
        (status = 404, description = NO_CHANNEL, extensions(("x-problems" = json!(["not-found"])))),
        (status = 502, description = "Meta refused the template or the upload; nothing was stored.", extensions(("x-problems" = json!(["upstream"])))),
    ),
)]
async fn submit_template(State(app): State<App>, Path(id): Path<ChannelId>, body: Bytes) -> Answer {
    created(admin::submit_template(&app, &id, &parse_body(&body)?).await?)
}
/// The query of `DELETE /v1/admin/templates/{id}`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DeleteQuery {
    /// Delete it at Meta too.
    #[param(rename = "atMeta", required = false, default = json!(true))]
    at_meta: bool,
}

impl DeleteQuery {
    /// `atMeta`: `true` (the default) or `false`.
    fn parse(q: &HashMap<String, String>) -> Result<Self, AdminError> {
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
        Ok(DeleteQuery { at_meta })
    }
}

/// `?atMeta=false` deletes only plantilla's copy (a template already gone at Meta).
#[utoipa::path(
    delete,
    path = "/v1/admin/templates/{id}",
    operation_id = "adminDeleteTemplate",
    tag = ADMIN,
    summary = "Delete a template",
    description = "At Meta first when it was submitted there (`atMeta=false`: only here), then here: status `DELETED`, inactive, hidden from lists; messages keep referring to it.",
    params(("id" = TemplateId, Path, description = TEMPLATE_ID), DeleteQuery),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = INVALID, extensions(("x-problems" = json!(["invalid-field"])))),
        (status = 404, description = NO_TEMPLATE, extensions(("x-problems" = json!(["not-found"])))),
        (status = 502, description = "Meta refused the deletion; nothing changed here.", extensions(("x-problems" = json!(["upstream"])))),
    ),
)]
async fn delete_template(
    State(app): State<App>,
    Path(id): Path<TemplateId>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let DeleteQuery { at_meta } = DeleteQuery::parse(&q)?;
    admin::delete_template(&app, &id, at_meta).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
#[utoipa::path(
    get,
    path = "/v1/admin/templates/{id}",
    operation_id = "adminGetTemplate",
    tag = ADMIN,
    summary = "Get a template",
    description = "",
    params(("id" = TemplateId, Path, description = TEMPLATE_ID)),
    responses(
        (status = 200, description = "The template.", body = Template),
        (status = 404, description = NO_TEMPLATE, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn get_template(State(app): State<App>, Path(id): Path<TemplateId>) -> Answer {
    ok(admin::get_template(&app, &id).await?)
}
#[utoipa::path(
    patch,
    path = "/v1/admin/templates/{id}",
    operation_id = "adminUpdateTemplate",
    tag = ADMIN,
    summary = "Update a template",
    description = "",
    params(("id" = TemplateId, Path, description = TEMPLATE_ID)),
    request_body(content = TemplateUpdate, description = "The fields to change."),
    responses(
        (status = 200, description = "The template.", body = Template),
        (status = 400, description = INVALID, extensions(("x-problems" = json!(["invalid-field"])))),
        (status = 404, description = NO_TEMPLATE, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn update_template(
    State(app): State<App>,
    Path(id): Path<TemplateId>,
    body: Bytes,
) -> Answer {
    ok(admin::update_template(&app, &id, &parse_body(&body)?).await?)
}
#[utoipa::path(
    get,
    path = "/v1/admin/conversations/{id}",
    operation_id = "adminGetConversation",
    tag = ADMIN,
    summary = "Get a conversation",
    description = "",
    params(("id" = ConversationId, Path, description = CONVERSATION_ID)),
    responses(
        (status = 200, description = "The conversation.", body = Conversation),
        (status = 404, description = NO_CONVERSATION, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn get_conversation(State(app): State<App>, Path(id): Path<ConversationId>) -> Answer {
    ok(admin::get_conversation(&app, &id).await?)
}
#[utoipa::path(
    post,
    path = "/v1/admin/conversations/{id}/close",
    operation_id = "adminCloseConversation",
    tag = ADMIN,
    summary = "Close a conversation",
    description = "",
    params(("id" = ConversationId, Path, description = CONVERSATION_ID)),
    responses(
        (status = 200, description = "The closed conversation.", body = Conversation),
        (status = 404, description = NO_CONVERSATION, extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn close_conversation(State(app): State<App>, Path(id): Path<ConversationId>) -> Answer {
    ok(admin::close_conversation(&app, &id).await?)
}
#[utoipa::path(
    get,
    path = "/v1/admin/messages/{id}",
    operation_id = "adminGetMessage",
    tag = ADMIN,
    summary = "Get a message",
    description = "Status, provider ids, params, attempts, the last error and when each status was reached.",
    params(("id" = MessageId, Path, description = "The message id.")),
    responses(
        (status = 200, description = "The message.", body = AdminMessage),
        (status = 404, description = "No such message.", extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn get_message(State(app): State<App>, Path(id): Path<MessageId>) -> Answer {
    ok(admin::get_message(&app, &id).await?)
}
