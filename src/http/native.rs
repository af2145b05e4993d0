//! The native API (`/v1`): message status, idempotent sends, bulk sends, conversations and
//! templates, for new integrations. Same services as the compatible API; errors are RFC 9457
//! problem documents with a stable `type` (see `problem`).
//!
//! Authentication: a channel's public token (calls scoped to that channel) or an account API
//! key (`ak_…`, account-wide; sends name their `channelId`): the [`Caller`] extractor, with
//! the tenant rules in `service::access`. Each handler parses, calls a service and maps the
//! result.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::caller::Caller;
use super::idempotency::{CheckedKey, IdempotencyHeader};
use super::native_send::{
    batch_request, native_field, pending_problem, send_problem, send_request, send_value_parts,
};
use super::openapi::NATIVE;
use super::params::{parse_cursor, parse_json, parse_limit, parse_time};
use super::problem::Problem;
use super::{json_response, typed_json};
use crate::api::messages::{
    self as api, AcceptedConversation, AcceptedConversationStatus, AcceptedStatus, Batch,
    BatchAccepted, BatchRecipientAccepted, BatchRecipientRejected, BatchRecipientResult,
    Conversation, ConversationMessagePage, ConversationPage, InboundMessage, Message,
    MessageAccepted, MessagePage, OutboundMessage, ThreadMessage,
};
use crate::app::App;
use crate::domain::ids::{BatchId, ConversationId, MessageId, TemplateId};
use crate::domain::status::MessageStatus;
use crate::service::batch::{self, RecipientResult};
use crate::service::input::FieldError;
use crate::service::send::{self, SendOutcome, SendRequest};
use crate::service::{authoring, templates, usage, views};
use crate::store::{CancelOutcome, ConversationFilter, MessageFilter, TemplateFilter};

/// The operations of this module the document derives from their `#[utoipa::path]`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(get_batch, cancel_batch, pause_batch, resume_batch))]
pub(crate) struct Doc;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/messages", post(create_message).get(list_messages))
        .route("/v1/messages/batch", post(create_batch))
        .route("/v1/messages/{id}", get(get_message))
        .route("/v1/messages/{id}/cancel", post(cancel_message))
        .route("/v1/batches/{id}", get(get_batch))
        .route("/v1/batches/{id}/cancel", post(cancel_batch))
        .route("/v1/batches/{id}/pause", post(pause_batch))
        .route("/v1/batches/{id}/resume", post(resume_batch))
        .route("/v1/conversations", get(list_conversations))
        .route("/v1/conversations/{id}", get(get_conversation))
        .route("/v1/conversations/{id}/close", post(close_conversation))
        .route(
            "/v1/conversations/{id}/messages",
            get(conversation_messages),
        )
        .route("/v1/templates", get(list_templates).post(create_template))
        .route("/v1/templates/sync", post(sync_templates))
        .route(
            "/v1/templates/{id}",
            get(get_template).delete(delete_template),
        )
        .route("/v1/templates/{id}/preview", post(preview_template))
        .route("/v1/media", post(super::media::upload))
        .route("/v1/usage", get(get_usage))
}

type Answer = Result<Response, Problem>;

fn ok(body: &Value) -> Answer {
    Ok(json_response(StatusCode::OK, body))
}

fn typed_ok<T: serde::Serialize>(body: &T) -> Answer {
    Ok(typed_json(StatusCode::OK, body))
}

// --- Messages ------------------------------------------------------------------------------

/// The answer to an accepted send: built from the decision alone, so a replay answers the same.
fn accepted_body(outcome: &SendOutcome, channel_id: &str, to: &str) -> MessageAccepted {
    let (message_id, conversation_id, conversation_status) = match outcome {
        SendOutcome::Sent {
            conversation_id,
            message_id,
        } => (
            message_id,
            conversation_id,
            AcceptedConversationStatus::Open,
        ),
        SendOutcome::Pending {
            conversation_id,
            message_id,
        } => (
            message_id,
            conversation_id,
            AcceptedConversationStatus::Pending,
        ),
        SendOutcome::AlreadyPending { .. } => unreachable!("not an accepted send"),
    };
    MessageAccepted {
        id: message_id.clone(),
        status: AcceptedStatus::Queued,
        scheduled_for: None,
        channel_id: channel_id.into(),
        to: to.to_string(),
        conversation: AcceptedConversation {
            id: conversation_id.clone(),
            status: conversation_status,
        },
    }
}

/// Shows an accepted send as `scheduled` with its time, when it is.
async fn scheduled(
    app: &App,
    body: &mut MessageAccepted,
    outcome: &SendOutcome,
) -> Result<(), Problem> {
    let (SendOutcome::Sent { message_id, .. } | SendOutcome::Pending { message_id, .. }) = outcome
    else {
        return Ok(());
    };
    // Accepted as scheduled, whatever it became since (the dispatcher may have taken it).
    let message = app.store.message(message_id).await?;
    if let Some(at) = message.and_then(|m| m.scheduled_for) {
        body.status = AcceptedStatus::Scheduled;
        body.scheduled_for = Some(crate::format_ms(at));
    }
    Ok(())
}

/// `POST /v1/messages`. The body is checked before the `Idempotency-Key`.
async fn create_message(
    State(app): State<App>,
    caller: Caller,
    key: Result<IdempotencyHeader, Problem>,
    body: Bytes,
) -> Answer {
    let value = parse_json(&body)?;
    let idem = key?.for_request(&app, &caller, "/v1/messages", &value);
    let obj = value.as_object().expect("checked object");
    let mut errors = Vec::new();
    let Some(request) = send_request(obj, &mut errors) else {
        return Err(Problem::validation(errors));
    };
    let channel = caller.channel(&app, request.channel_id.as_deref()).await?;
    let mut request = SendRequest::from(request);
    request.idempotency = idem;
    let to = request.phone.as_str().to_string();
    let send_at = request.send_at;
    let outcome = send::send(&app, &channel, request)
        .await
        .map_err(|e| send_problem(e, ""))?;
    if let SendOutcome::AlreadyPending { conversation_id } = &outcome {
        return Err(pending_problem(conversation_id, ""));
    }
    let mut body = accepted_body(&outcome, &channel.id, &to);
    if send_at.is_some() {
        scheduled(&app, &mut body, &outcome).await?;
    }
    Ok(typed_json(StatusCode::ACCEPTED, &body))
}

/// `POST /v1/messages/batch`. The body is checked before the `Idempotency-Key`.
async fn create_batch(
    State(app): State<App>,
    caller: Caller,
    key: Result<IdempotencyHeader, Problem>,
    body: Bytes,
) -> Answer {
    let value = parse_json(&body)?;
    let idem = key?.for_request(&app, &caller, "/v1/messages/batch", &value);
    let obj = value.as_object().expect("checked object");
    let mut errors = Vec::new();
    let Some(request) = batch_request(obj, &mut errors) else {
        return Err(Problem::validation(errors));
    };
    let channel = caller.channel(&app, request.channel_id.as_deref()).await?;
    let recipients = obj["recipients"].as_array().expect("checked array");
    // Each recipient was read on its own: a bad one is rejected, the others go.
    let mut parse_errors: HashMap<usize, Problem> = HashMap::new();
    let requests: Vec<Option<SendRequest>> = request
        .into_sends()
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.map_err(|errors| parse_errors.insert(i, Problem::validation(errors)))
                .ok()
        })
        .collect();
    let now = app.clock.now_ms();
    let scheduled_for: Vec<Option<i64>> = requests
        .iter()
        .map(|r| r.as_ref().and_then(|r| r.send_at).filter(|t| *t > now))
        .collect();
    let outcome = batch::send_batch(&app, &channel, requests, idem)
        .await
        .map_err(|e| send_problem(e, ""))?;
    let mut accepted = 0;
    let results: Vec<BatchRecipientResult> = outcome
        .results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let to = recipients[i]["to"].as_str().unwrap_or_default();
            let prefix = format!("recipients[{i}].");
            match r {
                RecipientResult::Unparsed => {
                    rejected(i, parse_errors.get(&i).map_or(Value::Null, problem_value))
                }
                RecipientResult::Accepted(SendOutcome::AlreadyPending { conversation_id }) => {
                    rejected(
                        i,
                        problem_value(&pending_problem(&conversation_id, &prefix)),
                    )
                }
                RecipientResult::Accepted(o) => {
                    accepted += 1;
                    let body = accepted_body(&o, &channel.id, to);
                    BatchRecipientResult::Accepted(BatchRecipientAccepted {
                        index: i,
                        status: api::Accepted::Accepted,
                        message_id: body.id,
                        scheduled_for: scheduled_for[i].map(crate::format_ms),
                        channel_id: body.channel_id,
                        to: body.to,
                        conversation: body.conversation,
                    })
                }
                RecipientResult::Rejected(e) => {
                    rejected(i, problem_value(&send_problem(e, &prefix)))
                }
            }
        })
        .collect();
    Ok(typed_json(
        StatusCode::ACCEPTED,
        &BatchAccepted {
            batch_id: outcome.batch_id,
            total: results.len(),
            accepted,
            rejected: results.len() - accepted,
            results,
        },
    ))
}

/// A batch recipient refused with `problem`.
fn rejected(index: usize, problem: Value) -> BatchRecipientResult {
    BatchRecipientResult::Rejected(BatchRecipientRejected {
        index,
        status: api::Rejected::Rejected,
        problem,
    })
}

async fn get_message(State(app): State<App>, Path(id): Path<MessageId>, caller: Caller) -> Answer {
    let m = caller
        .message(&app, &id)
        .await?
        .ok_or_else(|| Problem::not_found("message", &id))?;
    let next = app.store.next_attempt_at(&m.id).await?;
    typed_ok(&Message::new(&m, next))
}

async fn list_messages(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
    caller: Caller,
) -> Answer {
    let mut filter = MessageFilter {
        channel_id: q.get("channelId").cloned(),
        status: q.get("status").cloned(),
        phone_number: q.get("phoneNumber").cloned(),
        batch_id: q.get("batchId").cloned(),
        from: parse_time(&q, "from")?,
        to: parse_time(&q, "to")?,
        after: parse_cursor(&q)?,
        limit: parse_limit(&q)?,
        ..MessageFilter::default()
    };
    if let Some(status) = &filter.status
        && status.parse::<MessageStatus>().is_err()
    {
        let known: Vec<&str> = MessageStatus::ALL.iter().map(|s| s.as_str()).collect();
        return Err(Problem::field(
            "status",
            format!("'{status}' is not a message status ({})", known.join(", ")),
        ));
    }
    caller.scope_channel_filter(&mut filter.channel_id)?;
    let messages = app
        .store
        .list_messages(caller.account_id(), &filter)
        .await?;
    let next = (messages.len() == filter.limit as usize)
        .then(|| messages.last().map(|m| views::cursor(m.queued_at, &m.id)))
        .flatten();
    typed_ok(&MessagePage {
        data: messages.iter().map(|m| Message::new(m, None)).collect(),
        next_cursor: next,
    })
}

async fn cancel_message(
    State(app): State<App>,
    Path(id): Path<MessageId>,
    caller: Caller,
    _key: IdempotencyHeader,
) -> Answer {
    let m = caller
        .message(&app, &id)
        .await?
        .ok_or_else(|| Problem::not_found("message", &id))?;
    match send::cancel(&app, &m.account_id, &id).await? {
        CancelOutcome::NotFound => Err(Problem::not_found("message", &id)),
        CancelOutcome::NotCancellable(status) => Err(Problem::new(
            StatusCode::CONFLICT,
            "message-not-cancellable",
            "Message cannot be cancelled",
            format!(
                "the message is {status}: only a scheduled or queued message not yet handed to WhatsApp can be cancelled"
            ),
        )
        .with(|p| p.message_status = Some(status))),
        CancelOutcome::Cancelled { message, .. } => typed_ok(&Message::new(&message, None)),
    }
}

// --- Batches -------------------------------------------------------------------------------

/// Refuses a batch the caller does not see.
async fn visible_batch(app: &App, caller: &Caller, id: &str) -> Result<(), Problem> {
    caller
        .batch(app, id)
        .await?
        .map(drop)
        .ok_or_else(|| Problem::not_found("batch", id))
}

/// The batch's report (see `service::batch::report`).
async fn batch_report(app: &App, id: &str) -> Answer {
    let report = batch::report(app, id)
        .await?
        .ok_or_else(|| Problem::not_found("batch", id))?;
    typed_ok(&report)
}

#[utoipa::path(
    get,
    path = "/v1/batches/{id}",
    operation_id = "getBatch",
    tag = NATIVE,
    summary = "Get a batch's report",
    description = "Counts by status, error code, template and hold reason, progress, whether it is paused, and an estimated completion time.",
    params(("id" = BatchId, Path, description = "The batch id.")),
    responses(
        (status = 200, description = "The batch.", body = Batch),
        (status = 404, description = "No such batch visible to the caller.", extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn get_batch(State(app): State<App>, Path(id): Path<BatchId>, caller: Caller) -> Answer {
    visible_batch(&app, &caller, &id).await?;
    batch_report(&app, &id).await
}

#[utoipa::path(
    post,
    path = "/v1/batches/{id}/cancel",
    operation_id = "cancelBatch",
    tag = NATIVE,
    summary = "Cancel a batch",
    description = "Cancels every message of the batch not yet handed to WhatsApp, as `POST /v1/messages/{id}/cancel` would; those the dispatcher already took go on. Answers the batch's report.",
    params(("id" = BatchId, Path, description = "The batch id."), CheckedKey),
    responses(
        (status = 200, description = "The batch's report.", body = Batch),
        (status = 400, description = "The Idempotency-Key is wrong.", extensions(("x-problems" = json!(["idempotency-key-invalid"])))),
        (status = 404, description = "No such batch visible to the caller.", extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn cancel_batch(
    State(app): State<App>,
    Path(id): Path<BatchId>,
    caller: Caller,
    _key: IdempotencyHeader,
) -> Answer {
    visible_batch(&app, &caller, &id).await?;
    batch::cancel(&app, &id).await?;
    batch_report(&app, &id).await
}

#[utoipa::path(
    post,
    path = "/v1/batches/{id}/pause",
    operation_id = "pauseBatch",
    tag = NATIVE,
    summary = "Pause a batch",
    description = "The batch's messages not yet claimed by the dispatcher wait until it resumes (those already taken go on). Answers the batch's report.",
    params(("id" = BatchId, Path, description = "The batch id."), CheckedKey),
    responses(
        (status = 200, description = "The batch's report.", body = Batch),
        (status = 400, description = "The Idempotency-Key is wrong.", extensions(("x-problems" = json!(["idempotency-key-invalid"])))),
        (status = 404, description = "No such batch visible to the caller.", extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn pause_batch(
    State(app): State<App>,
    Path(id): Path<BatchId>,
    caller: Caller,
    _key: IdempotencyHeader,
) -> Answer {
    visible_batch(&app, &caller, &id).await?;
    batch::set_paused(&app, &id, true).await?;
    batch_report(&app, &id).await
}

#[utoipa::path(
    post,
    path = "/v1/batches/{id}/resume",
    operation_id = "resumeBatch",
    tag = NATIVE,
    summary = "Resume a batch",
    description = "Its waiting messages go again, at the channel's rate. Answers the batch's report.",
    params(("id" = BatchId, Path, description = "The batch id."), CheckedKey),
    responses(
        (status = 200, description = "The batch's report.", body = Batch),
        (status = 400, description = "The Idempotency-Key is wrong.", extensions(("x-problems" = json!(["idempotency-key-invalid"])))),
        (status = 404, description = "No such batch visible to the caller.", extensions(("x-problems" = json!(["not-found"])))),
    ),
)]
async fn resume_batch(
    State(app): State<App>,
    Path(id): Path<BatchId>,
    caller: Caller,
    _key: IdempotencyHeader,
) -> Answer {
    visible_batch(&app, &caller, &id).await?;
    batch::set_paused(&app, &id, false).await?;
    batch_report(&app, &id).await
}

// --- Conversations -------------------------------------------------------------------------

async fn list_conversations(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
    caller: Caller,
) -> Answer {
    let mut filter = ConversationFilter {
        channel_id: q.get("channelId").cloned(),
        status: q.get("status").cloned(),
        phone_number: q.get("phoneNumber").cloned(),
        after: parse_cursor(&q)?,
        limit: parse_limit(&q)?,
        newest_first: false,
    };
    if let Some(status) = &filter.status
        && status
            .parse::<crate::domain::status::ConversationStatus>()
            .is_err()
    {
        return Err(Problem::field(
            "status",
            format!("'{status}' is not a conversation status (pending, open, closed)"),
        ));
    }
    caller.scope_channel_filter(&mut filter.channel_id)?;
    let list = app
        .store
        .list_conversations(caller.account_id(), &filter)
        .await?;
    let next = (list.len() == filter.limit as usize)
        .then(|| list.last().map(|c| views::cursor(c.created_at, &c.id)))
        .flatten();
    typed_ok(&ConversationPage {
        data: list.iter().map(Conversation::from).collect(),
        next_cursor: next,
    })
}

async fn visible_conversation(
    app: &App,
    caller: &Caller,
    id: &str,
) -> Result<crate::store::Conversation, Problem> {
    caller
        .conversation(app, id)
        .await?
        .ok_or_else(|| Problem::not_found("conversation", id))
}

async fn get_conversation(
    State(app): State<App>,
    Path(id): Path<ConversationId>,
    caller: Caller,
) -> Answer {
    let c = visible_conversation(&app, &caller, &id).await?;
    typed_ok(&Conversation::from(&c))
}

/// `GET /v1/conversations/{id}/messages`: both directions, oldest first, paged like
/// `GET /v1/messages` (`limit`, `cursor`); each item says its `direction`.
async fn conversation_messages(
    State(app): State<App>,
    Path(id): Path<ConversationId>,
    Query(q): Query<HashMap<String, String>>,
    caller: Caller,
) -> Answer {
    use crate::service::inbound::messages::{ThreadItem, thread};
    let after = parse_cursor(&q)?;
    let limit = parse_limit(&q)?;
    let c = visible_conversation(&app, &caller, &id).await?;
    let items = thread(&app, &c, after, limit).await?;
    let next = (items.len() == limit as usize)
        .then(|| {
            items.last().map(|i| {
                let (ms, id) = i.position();
                views::cursor(ms, id)
            })
        })
        .flatten();
    let data = items
        .iter()
        .map(|i| match i {
            ThreadItem::Outbound(m) => ThreadMessage::Outbound(OutboundMessage::new(m, None)),
            ThreadItem::Inbound(m) => ThreadMessage::Inbound(InboundMessage::from(&**m)),
        })
        .collect();
    typed_ok(&ConversationMessagePage {
        data,
        next_cursor: next,
    })
}

/// Closing is idempotent by nature: a key is checked but not stored, and closing twice
/// answers the closed conversation either way.
async fn close_conversation(
    State(app): State<App>,
    Path(id): Path<ConversationId>,
    caller: Caller,
    _key: IdempotencyHeader,
) -> Answer {
    visible_conversation(&app, &caller, &id).await?;
    let closed = crate::service::admin::close(&app, &id)
        .await
        .map_err(|e| match e {
            crate::service::admin::AdminError::NotFound { .. } => {
                Problem::not_found("conversation", &id)
            }
            other => Problem::internal(&anyhow::anyhow!(other)),
        })?;
    typed_ok(&Conversation::from(&closed))
}

// --- Usage ---------------------------------------------------------------------------------

/// `GET /v1/usage?from=…&to=…&groupBy=day|template|channel|category`: the caller's messages
/// Meta priced, billable and free, per group and category, with an estimated cost when the
/// configuration has a price table. `from`/`to` are dates (`YYYY-MM-DD`, whole UTC days) or
/// RFC 3339 instants, both inclusive; by default the current UTC month so far. `groupBy`
/// defaults to `day`. A window is at most 366 days.
async fn get_usage(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
    caller: Caller,
) -> Answer {
    use crate::domain::usage::{GroupBy, day_of, parse_bound};
    let known = ["from", "to", "groupBy"];
    if let Some(unknown) = q.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Problem::field(
            unknown,
            "is not a parameter of this endpoint (from, to, groupBy)",
        ));
    }
    let group_by = match q.get("groupBy").map(String::as_str) {
        None => GroupBy::Day,
        Some(raw) => GroupBy::parse(raw).ok_or_else(|| {
            Problem::field(
                "groupBy",
                format!("must be one of {}, got '{raw}'", GroupBy::NAMES.join(", ")),
            )
        })?,
    };
    let bound = |name: &str, is_end: bool| -> Result<Option<i64>, Problem> {
        match q.get(name).map(String::as_str) {
            None => Ok(None),
            Some(raw) => parse_bound(raw, is_end).map(Some).ok_or_else(|| {
                Problem::field(
                    name,
                    format!("must be a date (YYYY-MM-DD) or an RFC 3339 instant, got '{raw}'"),
                )
            }),
        }
    };
    let now = crate::now_ms();
    let to = bound("to", true)?.unwrap_or(now + 1);
    let from = match bound("from", false)? {
        Some(from) => from,
        None => {
            let month = day_of(to - 1);
            parse_bound(&format!("{}-01", &month[..7]), false).unwrap_or(0)
        }
    };
    if from >= to {
        return Err(Problem::field("from", "must not be after to"));
    }
    if to - from > 366 * 86_400_000 {
        return Err(Problem::field("to", "must be at most 366 days after from"));
    }
    let usage = usage::report(&app, caller.account_id(), from, to, group_by).await?;
    Ok(crate::http::typed_json(StatusCode::OK, &usage))
}

// --- Templates -----------------------------------------------------------------------------

async fn list_templates(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
    caller: Caller,
) -> Answer {
    let limit = parse_limit(&q)?;
    let page = match q.get("page") {
        None => 1,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|p| (1..=crate::http::compat::MAX_PAGE).contains(p))
            .ok_or_else(|| {
                Problem::field(
                    "page",
                    format!(
                        "must be a whole number from 1 to {}, got '{raw}'",
                        crate::http::compat::MAX_PAGE
                    ),
                )
            })?,
    };
    let filter = TemplateFilter {
        status: q.get("status").cloned(),
        name: q.get("name").cloned(),
        offset: (page - 1).saturating_mul(limit),
        limit,
    };
    let (list, total) = app
        .store
        .list_templates(caller.account_id(), &filter)
        .await?;
    let healths = app.store.template_healths(caller.account_id()).await?;
    let data = list
        .iter()
        .map(|t| views::template_with_health(t, healths.get(&t.id)))
        .collect();
    let page = crate::api::templates::TemplatePage {
        data,
        page,
        limit,
        total,
    };
    Ok(typed_json(StatusCode::OK, &page))
}

async fn visible_template(
    app: &App,
    caller: &Caller,
    id: &str,
) -> Result<crate::store::Template, Problem> {
    caller
        .template(app, id)
        .await?
        .ok_or_else(|| Problem::not_found("template", id))
}

async fn get_template(
    State(app): State<App>,
    Path(id): Path<TemplateId>,
    caller: Caller,
) -> Answer {
    let t = visible_template(&app, &caller, &id).await?;
    let healths = app.store.template_healths(caller.account_id()).await?;
    Ok(typed_json(
        StatusCode::OK,
        &views::template_with_health(&t, healths.get(&t.id)),
    ))
}

/// `POST /v1/templates/{id}/preview`: what a send with these values would show and send,
/// without sending anything.
async fn preview_template(
    State(app): State<App>,
    Path(id): Path<TemplateId>,
    caller: Caller,
    body: Bytes,
) -> Answer {
    let value = parse_json(&body)?;
    let Value::Object(obj) = &value else {
        return Err(Problem::field("body", "must be a JSON object"));
    };
    for key in obj.keys() {
        if !["params", "header", "buttons", "cards", "offerExpiresAt"].contains(&key.as_str()) {
            return Err(Problem::field(
                key,
                "is not a field of a preview (params, header, buttons, cards, offerExpiresAt)",
            ));
        }
    }
    let mut errors = Vec::new();
    let request = send_value_parts(obj, "", &mut errors);
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let t = visible_template(&app, &caller, &id).await?;
    let p = templates::preview_values(&t, request, crate::now_ms());
    let errors: Vec<FieldError> = p
        .problems
        .iter()
        .map(|(key, message)| FieldError::new(native_field(key), message.clone()))
        .collect();
    let preview = crate::api::templates::TemplatePreview {
        template_id: t.id.into(),
        sendable: p.sendable,
        valid: errors.is_empty() && p.sendable,
        errors,
        preview: p.preview,
        components: p.components,
    };
    Ok(typed_json(StatusCode::OK, &preview))
}

/// A repeated sync updates the same templates and creates none, so a key is checked but not
/// stored.
async fn sync_templates(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
    caller: Caller,
    _key: IdempotencyHeader,
) -> Answer {
    let channel = caller
        .channel(&app, q.get("channelId").map(String::as_str))
        .await?;
    let summary = crate::service::admin::sync_templates(&app, &channel.id)
        .await
        .map_err(|e| match e {
            crate::service::admin::AdminError::Invalid(f) => Problem::field("channelId", f.message),
            crate::service::admin::AdminError::Upstream(detail) => Problem::new(
                StatusCode::BAD_GATEWAY,
                "upstream",
                "The provider refused",
                detail,
            ),
            other => Problem::internal(&anyhow::anyhow!(other)),
        })?;
    ok(&serde_json::json!(summary))
}

// --- Templates authored from plantilla -------------------------------------------------------

/// The problem of a failed submission or deletion.
fn authoring_problem(e: authoring::AuthorError) -> Problem {
    match e {
        authoring::AuthorError::Invalid(errors) => Problem::validation(errors),
        authoring::AuthorError::NotFound(id) => Problem::not_found("template", &id),
        authoring::AuthorError::Upstream(meta) => Problem::new(
            StatusCode::BAD_GATEWAY,
            "upstream",
            "The provider refused",
            authoring::upstream_detail(&meta),
        )
        .with(|p| {
            p.meta_code = Some(meta.code);
            p.meta_message = Some(meta.description().to_string());
        }),
        authoring::AuthorError::Internal(e) => Problem::internal(&e),
    }
}

/// `POST /v1/templates`: submits a template to WhatsApp through a channel (the token's, or
/// `channelId` with an account API key) and stores it `PENDING` with Meta's id. A repeat of a
/// submission is refused (the name exists); a key is checked, not stored.
async fn create_template(
    State(app): State<App>,
    caller: Caller,
    _key: IdempotencyHeader,
    body: Bytes,
) -> Answer {
    let mut value = parse_json(&body)?;
    let channel_id = match value.as_object_mut().and_then(|o| o.remove("channelId")) {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id),
        Some(_) => return Err(Problem::field("channelId", "must be a string")),
    };
    let channel = caller.channel(&app, channel_id.as_deref()).await?;
    let draft = authoring::parse(&app, &channel.account_id, &value)
        .await
        .map_err(authoring_problem)?;
    let template = authoring::submit(&app, &channel, draft)
        .await
        .map_err(authoring_problem)?;
    Ok(typed_json(
        StatusCode::CREATED,
        &views::template_with_health(&template, None),
    ))
}

/// `DELETE /v1/templates/{id}`: removes the template at Meta, then locally.
async fn delete_template(
    State(app): State<App>,
    Path(id): Path<TemplateId>,
    caller: Caller,
) -> Answer {
    let t = visible_template(&app, &caller, &id).await?;
    authoring::delete(&app, &t, true)
        .await
        .map_err(authoring_problem)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A recipient's problem document, as a batch result carries it.
fn problem_value(problem: &Problem) -> Value {
    serde_json::to_value(problem.body()).unwrap_or(Value::Null)
}
