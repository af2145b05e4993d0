//! Inbound messages: what a customer wrote or clicked, kept on its conversation and forwarded
//! to the account's webhook endpoints as `message.received`; and a conversation's thread,
//! both directions in order.
//!
//! Where an inbound message goes: the channel's pending or open conversation with the
//! sender's number, else the latest conversation with it (closed); an inbound from a number
//! plantilla never wrote to, or from a user known only by a business-scoped user id that no
//! contact has yet, is stored and forwarded with no conversation (`conversationId: null`).
//! Inbound messages never create conversations: a conversation is what a template send
//! starts, and it counts against the account's plan.

use serde_json::{Map, Value, json};

use super::InboundReport;
use crate::app::App;
use crate::domain::ids::new_id;
use crate::store::{
    Channel, Conversation, InboundInsert, InboundMessage, InboundRecorded, Message, MessageFilter,
    StoreResult,
};

/// An inbound message as the rules that act on replies see it (see [`on_first_receipt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// plantilla's id of the stored inbound message.
    pub id: String,
    /// Meta's type (`text`, `button`, `interactive`, `image`, …).
    pub kind: String,
    /// `text.body` of a text message.
    pub text: Option<String>,
    /// A quick-reply click: the button's payload and label.
    pub button_payload: Option<String>,
    pub button_text: Option<String>,
    /// plantilla's message it replies to (Meta's `context.id`), and that message's template.
    pub reply_to: Option<String>,
    pub reply_to_template_id: Option<String>,
    /// The sender's business-scoped user id, when given.
    pub user_id: Option<String>,
}

/// Stores an inbound message and queues `message.received` (one transaction); `false` when
/// the channel had this wamid already (Meta retried), in which case nothing happens.
pub async fn record(app: &App, channel: &Channel, report: &InboundReport) -> StoreResult<bool> {
    let mut content: Map<String, Value> = report.content.fields.clone();
    if let Some(button) = &report.content.button {
        content.insert(
            "button".into(),
            json!({"payload": button.payload, "text": button.text}),
        );
    }
    let insert = InboundInsert {
        id: new_id("in"),
        account_id: channel.account_id.clone(),
        channel_id: channel.id.clone(),
        provider_message_id: report.wamid.clone(),
        phone_number: report.from.clone(),
        user_id: report.user_id.clone(),
        contact_name: report.name.clone(),
        username: report.username.clone(),
        kind: report.content.kind.clone(),
        text: report.content.text.clone(),
        content: Value::Object(content),
        raw: report.raw.clone(),
        context_id: report.context_id.clone(),
        sent_at: report.at,
        received_at: crate::now_ms(),
    };
    match app.store.record_inbound_message(&insert).await? {
        InboundRecorded::Duplicate => {
            tracing::debug!(
                channel_id = %channel.id,
                wamid = %report.wamid,
                "inbound message seen before: not stored again"
            );
            Ok(false)
        }
        InboundRecorded::Stored {
            message,
            reply_to_template_id,
        } => {
            let received = ReceivedMessage {
                id: message.id.clone(),
                kind: message.kind.clone(),
                text: message.text.clone(),
                button_payload: report
                    .content
                    .button
                    .as_ref()
                    .and_then(|b| b.payload.clone()),
                button_text: report.content.button.as_ref().and_then(|b| b.text.clone()),
                reply_to: message.reply_to.clone(),
                reply_to_template_id,
                user_id: message.user_id.clone(),
            };
            on_first_receipt(app, channel, message.phone_number.as_deref(), &received).await?;
            Ok(true)
        }
    }
}

/// Runs once per inbound message, right after it was first stored (never for a duplicate
/// webhook): the place for rules that act on what a customer wrote or clicked (opt-out and
/// opt-in keywords, a marketing opt-out button). `phone` is the sender's number when known
/// (given, or found through their user id).
pub async fn on_first_receipt(
    app: &App,
    channel: &Channel,
    phone: Option<&str>,
    message: &ReceivedMessage,
) -> StoreResult<()> {
    tracing::debug!(
        channel_id = %channel.id,
        phone,
        inbound_id = %message.id,
        kind = %message.kind,
        reply_to = message.reply_to.as_deref(),
        "inbound message stored"
    );
    // Opt-out and opt-in keywords, and a marketing template's opt-out button: they need the
    // number, since the suppression list is kept by number.
    let Some(phone) = phone else {
        return Ok(());
    };
    let button = match (&message.button_payload, &message.button_text) {
        (None, None) => None,
        (payload, text) => Some((
            payload.as_deref().unwrap_or_default(),
            text.as_deref().unwrap_or_default(),
        )),
    };
    let replied_template = match &message.reply_to_template_id {
        Some(id) => app.store.template(id).await?,
        None => None,
    };
    crate::service::suppressions::on_inbound(
        app,
        channel,
        phone,
        message.text.as_deref(),
        button,
        replied_template.as_ref(),
    )
    .await?;
    Ok(())
}

/// Keeps a status's `recipient_user_id` on the contact its message was sent to.
pub async fn link_user_id(app: &App, message_id: &str, user_id: &str) -> StoreResult<()> {
    app.store
        .link_message_user_id(message_id, user_id, crate::now_ms())
        .await
}

/// One item of a conversation's thread.
#[derive(Debug, Clone)]
pub enum ThreadItem {
    Outbound(Box<Message>),
    Inbound(Box<InboundMessage>),
}

impl ThreadItem {
    /// Where it sits in the thread: an outbound message when it was queued, an inbound one
    /// when plantilla received it (Meta's timestamps have whole seconds only, too coarse to
    /// order a reply after the template it answers); ties by id.
    pub fn position(&self) -> (i64, &str) {
        match self {
            ThreadItem::Outbound(m) => (m.queued_at, &m.id),
            ThreadItem::Inbound(m) => (m.received_at, &m.id),
        }
    }
}

/// A page of a conversation's messages, both directions, oldest first, after the cursor
/// (the last item's `position`); at most `limit`.
pub async fn thread(
    app: &App,
    conversation: &Conversation,
    after: Option<(i64, String)>,
    limit: u32,
) -> StoreResult<Vec<ThreadItem>> {
    let outbound = app
        .store
        .list_messages(
            &conversation.account_id,
            &MessageFilter {
                conversation_id: Some(conversation.id.clone()),
                after: after.clone(),
                limit,
                ..MessageFilter::default()
            },
        )
        .await?;
    let inbound = app
        .store
        .conversation_inbound(&conversation.id, after, limit)
        .await?;
    let mut items: Vec<ThreadItem> = outbound
        .into_iter()
        .map(|m| ThreadItem::Outbound(Box::new(m)))
        .chain(
            inbound
                .into_iter()
                .map(|m| ThreadItem::Inbound(Box::new(m))),
        )
        .collect();
    items.sort_by(|a, b| a.position().cmp(&b.position()));
    items.truncate(limit as usize);
    Ok(items)
}
