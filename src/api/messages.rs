//! Messages, batches, conversations and their threads; what a send takes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa::openapi::schema::{
    AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{RefOr, Schema};

use super::compat::{SendButton, SendCard, SendHeader, TypedParam};
use crate::domain::ids::{
    AccountId, BatchId, ChannelId, ConversationId, InboundMessageId, MessageId, TemplateId,
};
use crate::domain::phone::PhoneNumber;
use crate::domain::status::{CloseReason, ConversationStatus, MessageStatus};
use crate::format_ms;
use crate::service::input::FieldError;
use crate::service::send::{self, TemplateRef};
use crate::store;

/// This family's component schemas ([`super::schemas`]).
pub(super) fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
    super::collect::<MessageStatus>(out);
    super::collect::<StatusTimes>(out);
    super::collect::<MessageError>(out);
    super::collect::<MessagePricing>(out);
    super::collect::<Message>(out);
    super::collect::<MessagePage>(out);
    super::collect::<MessageAccepted>(out);
    super::collect::<Conversation>(out);
    super::collect::<ConversationPage>(out);
    super::collect::<Batch>(out);
    super::collect::<BatchAccepted>(out);
    super::collect::<BatchRecipientAccepted>(out);
    super::collect::<BatchRecipientRejected>(out);
    super::collect::<InboundMessage>(out);
    super::collect::<OutboundMessage>(out);
    super::collect::<ConversationMessagePage>(out);
    let send = out.len();
    super::collect::<SendRequest>(out);
    template_choice_rule(&mut out[send].1);
    let batch = out.len();
    super::collect::<BatchRequest>(out);
    template_choice_rule(&mut out[batch].1);
    super::collect::<BatchRecipient>(out);
}

fn time(ms: Option<i64>) -> Option<String> {
    ms.map(format_ms)
}

/// `problem`: kept as the serialized document of the recipient's problem (`Problem`).
fn problem_ref() -> utoipa::openapi::Ref {
    let mut problem = super::component("Problem");
    problem.description =
        "Why, as the problem a single send would have answered; fields are `recipients[i].…`."
            .into();
    problem
}

// --- Messages ------------------------------------------------------------------------------

/// When the message reached each status (null: not yet, or skipped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusTimes {
    #[schema(format = DateTime)]
    pub queued: String,
    #[schema(format = DateTime, required = true)]
    pub sending: Option<String>,
    #[schema(format = DateTime, required = true)]
    pub sent: Option<String>,
    #[schema(format = DateTime, required = true)]
    pub delivered: Option<String>,
    #[schema(format = DateTime, required = true)]
    pub read: Option<String>,
    #[schema(format = DateTime, required = true)]
    pub failed: Option<String>,
    #[schema(format = DateTime, required = true)]
    pub cancelled: Option<String>,
}

impl From<&store::Message> for StatusTimes {
    fn from(m: &store::Message) -> Self {
        StatusTimes {
            queued: format_ms(m.queued_at),
            sending: time(m.sending_at),
            sent: time(m.sent_at),
            delivered: time(m.delivered_at),
            read: time(m.read_at),
            failed: time(m.failed_at),
            cancelled: time(m.cancelled_at),
        }
    }
}

/// The provider's last error for a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageError {
    /// Meta's error code.
    pub code: i64,
    pub title: String,
    #[schema(required = true)]
    pub details: Option<String>,
    /// Whether another attempt is scheduled.
    pub will_retry: bool,
    /// When, if it will be retried.
    #[schema(format = DateTime, required = true)]
    pub next_attempt_at: Option<String>,
}

/// Meta's `pricing` of the message, from its statuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"type": "regular", "category": "utility", "pricingModel": "PMP", "billable": true})))]
pub struct MessagePricing {
    /// `regular` (charged), `free_customer_service` or `free_entry_point`.
    #[serde(rename = "type")]
    #[schema(required = true)]
    pub pricing_type: Option<String>,
    /// marketing, utility, authentication, …
    #[schema(required = true)]
    pub category: Option<String>,
    /// `PMP` (per message, since July 2025).
    #[schema(required = true)]
    pub pricing_model: Option<String>,
    /// Whether Meta charges it (from `type`, else Meta's `billable`).
    #[schema(required = true)]
    pub billable: Option<bool>,
}

impl MessageError {
    /// The provider's last error for `m`, if any, with when the next attempt goes (`next_attempt_at`, when one is scheduled).
    fn of(m: &store::Message, next_attempt_at: Option<i64>) -> Option<Self> {
        m.error.as_ref().map(|e| MessageError {
            code: e.code,
            title: e.title.clone(),
            details: e.details.clone(),
            will_retry: next_attempt_at.is_some(),
            next_attempt_at: time(next_attempt_at),
        })
    }
}

impl From<&store::Pricing> for MessagePricing {
    fn from(p: &store::Pricing) -> Self {
        MessagePricing {
            pricing_type: p.pricing_type.clone(),
            category: p.category.clone(),
            pricing_model: p.pricing_model.clone(),
            billable: p.is_billable(),
        }
    }
}

// Why a message is held (no doc: it would describe the field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HeldReason {
    QuietHours,
    MessagingLimit,
}

impl HeldReason {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            store::HELD_QUIET_HOURS => Some(Self::QuietHours),
            store::HELD_MESSAGING_LIMIT => Some(Self::MessagingLimit),
            _ => None,
        }
    }
}

// `"outbound"`: a message plantilla sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outbound {
    Outbound,
}

// `"inbound"`: a message a customer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Inbound {
    Inbound,
}

/// A sent message's fields, as every view of one has them ([`Message`], [`OutboundMessage`], [`super::admin::AdminMessage`]), then `$extra` fields: a closed object each, so one cannot be another flattened. `new` makes the view of a stored message `$m` (and `$arg`s), each extra field as its expression says.
macro_rules! sent_message {
    ($(#[$attr:meta])* $name:ident ($m:ident $(, $arg:ident: $arg_ty:ty)*) { $($(#[$fattr:meta])* $field:ident: $ty:ty = $init:expr),* $(,)? }) => {
        $(#[$attr])*
        #[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            /// Id (`msg_…`).
            pub id: crate::domain::ids::MessageId,
            pub conversation_id: crate::domain::ids::ConversationId,
            pub channel_id: crate::domain::ids::ChannelId,
            pub template_id: crate::domain::ids::TemplateId,
            pub phone_number: String,
            pub status: crate::domain::status::MessageStatus,
            /// WhatsApp's message id (`wamid.…`).
            #[schema(required = true)]
            pub provider_message_id: Option<String>,
            /// The recipient's WhatsApp id, as Meta reports it.
            #[schema(required = true)]
            pub wa_id: Option<String>,
            /// The params the template was rendered with.
            pub params: std::collections::BTreeMap<String, String>,
            /// Delivery attempts so far.
            pub attempts: i64,
            #[schema(required = true)]
            pub pricing_category: Option<String>,
            #[schema(required = true)]
            pub pricing: Option<crate::api::messages::MessagePricing>,
            pub status_times: crate::api::messages::StatusTimes,
            /// When a scheduled send goes (its `sendAt`).
            #[schema(format = DateTime, required = true)]
            pub scheduled_for: Option<String>,
            /// When a held message will go (quiet hours or the messaging limit).
            #[schema(format = DateTime, required = true)]
            pub held_until: Option<String>,
            /// Why the message is held.
            #[schema(inline, required = true)]
            pub held_reason: Option<crate::api::messages::HeldReason>,
            #[schema(format = DateTime)]
            pub created_at: String,
            #[schema(format = DateTime)]
            pub updated_at: String,
            $($(#[$fattr])* pub $field: $ty,)*
        }

        impl $name {
            /// The view of the stored message.
            pub fn new($m: &crate::store::Message $(, $arg: $arg_ty)*) -> Self {
                use crate::api::messages::{HeldReason, MessagePricing, StatusTimes};
                let time = |ms: Option<i64>| ms.map(crate::format_ms);
                $name {
                    id: $m.id.clone().into(),
                    conversation_id: $m.conversation_id.clone().into(),
                    channel_id: $m.channel_id.clone().into(),
                    template_id: $m.template_id.clone().into(),
                    phone_number: $m.phone_number.clone(),
                    status: $m.status,
                    provider_message_id: $m.provider_message_id.clone(),
                    wa_id: $m.wa_id.clone(),
                    params: $m.params.clone(),
                    attempts: $m.attempts,
                    pricing_category: $m.pricing_category.clone(),
                    pricing: $m.pricing.as_ref().map(MessagePricing::from),
                    status_times: StatusTimes::from($m),
                    scheduled_for: time($m.scheduled_for),
                    held_until: time($m.held_until),
                    held_reason: $m.held_reason.as_deref().and_then(HeldReason::parse),
                    created_at: crate::format_ms($m.queued_at),
                    updated_at: crate::format_ms($m.updated_at),
                    $($field: $init,)*
                }
            }
        }
    };
}
pub(crate) use sent_message;

/// A message as the native API shows it ([`sent_message`]): with the provider's error and when the next attempt goes (`next_attempt_at`, when one is scheduled), the send's batch, metadata and callback URL, then `$extra` fields.
macro_rules! message_type {
    ($(#[$attr:meta])* $name:ident { $($extra:tt)* }) => {
        sent_message! {
            $(#[$attr])*
            #[derive(PartialEq)]
            $name (m, next_attempt_at: Option<i64>) {
                /// The provider's last error.
                #[schema(required = true)]
                error: Option<MessageError> = MessageError::of(m, next_attempt_at),
                #[schema(required = true)]
                batch_id: Option<BatchId> = m.batch_id.clone().map(BatchId::from),
                /// The send's metadata, as given.
                #[schema(value_type = Option<Object>, required = true)]
                metadata: Option<Value> = m.metadata.clone(),
                #[schema(required = true)]
                callback_url: Option<String> = m.callback_url.clone(),
                $($extra)*
            }
        }
    };
}

message_type! {
    /// A message with its status timeline.
    Message {}
}

message_type! {
    /// A template message plantilla sent, in a conversation's thread.
    OutboundMessage {
        #[schema(inline)]
        direction: Outbound = Outbound::Outbound,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessagePage {
    pub data: Vec<Message>,
    /// Pass as `cursor` for the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// scheduled: it waits for its `sendAt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AcceptedStatus {
    Queued,
    Scheduled,
}

/// pending: a new conversation, opened when WhatsApp confirms the message; open: the number's open conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AcceptedConversationStatus {
    Pending,
    Open,
}

// The conversation an accepted send went on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptedConversation {
    pub id: ConversationId,
    #[schema(inline)]
    pub status: AcceptedConversationStatus,
}

/// A send accepted: stored and queued for delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageAccepted {
    /// The message id (`msg_…`).
    pub id: MessageId,
    #[schema(inline)]
    pub status: AcceptedStatus,
    /// When a scheduled send goes.
    #[schema(format = DateTime, required = true)]
    pub scheduled_for: Option<String>,
    pub channel_id: ChannelId,
    pub to: String,
    #[schema(inline)]
    pub conversation: AcceptedConversation,
}

// --- Conversations -------------------------------------------------------------------------

// `agent` or `bot`: who a conversation is assigned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Assignee {
    Agent,
    Bot,
}

/// A thread between a channel and a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Conversation {
    /// Id (`conv_…`).
    pub id: ConversationId,
    pub account_id: AccountId,
    pub channel_id: ChannelId,
    pub phone_number: String,
    #[schema(inline)]
    pub status: ConversationStatus,
    #[schema(inline)]
    pub assignee: Assignee,
    #[schema(required = true)]
    pub group_name: Option<String>,
    pub client_name: String,
    /// The contact's business-scoped user id (Meta's `user_id`, e.g. `US.13491208655302741918`), once a webhook gave it.
    #[schema(required = true)]
    pub user_id: Option<String>,
    #[schema(inline, required = true)]
    pub close_reason: Option<CloseReason>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime, required = true)]
    pub opened_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    pub closed_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_activity_at: String,
}

impl From<&store::Conversation> for Conversation {
    fn from(c: &store::Conversation) -> Self {
        Conversation {
            id: c.id.clone().into(),
            account_id: c.account_id.clone().into(),
            channel_id: c.channel_id.clone().into(),
            phone_number: c.phone_number.clone(),
            status: c.status,
            // The store takes only `agent` and `bot`.
            assignee: if c.assignee == "agent" {
                Assignee::Agent
            } else {
                Assignee::Bot
            },
            group_name: c.group_name.clone(),
            client_name: c.client_name.clone(),
            user_id: c.user_id.clone(),
            close_reason: c.close_reason.as_deref().and_then(CloseReason::parse),
            created_at: format_ms(c.created_at),
            opened_at: time(c.opened_at),
            closed_at: time(c.closed_at),
            last_activity_at: format_ms(c.last_activity_at),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConversationPage {
    pub data: Vec<Conversation>,
    /// Pass as `cursor` for the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

// A quick-reply click.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundButton {
    #[schema(required = true)]
    pub payload: Option<String>,
    #[schema(required = true)]
    pub text: Option<String>,
}

/// What a customer wrote or clicked: typed fields for the types plantilla reads, and the raw message always.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({
    "id": "in_01933b7e0c8a7f3e9d1c2b4a5e6f7081",
    "direction": "inbound",
    "channelId": "ch_01933b7e0c8a7f3e9d1c2b4a5e6f7000",
    "conversationId": "conv_01933b7e0c8a7f3e9d1c2b4a5e6f7001",
    "from": "50755667788",
    "userId": "PA.13491208655302741918",
    "contactName": "Ana María",
    "type": "button",
    "text": null,
    "button": {"payload": "TRACK_ORDER", "text": "Track my order"},
    "replyTo": "msg_01933b7e0c8a7f3e9d1c2b4a5e6f7002",
    "contextId": "wamid.HBgLNTA3NTU2Njc3ODgVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3AA==",
    "providerMessageId": "wamid.HBgLNTA3NTU2Njc3ODgVAgASGBQzQUVCNTg4RTFBMzcxNjY2QjYA",
    "timestamp": "2026-12-04T15:04:05.000Z",
    "receivedAt": "2026-12-04T15:04:05.412Z",
    "raw": {"from": "50755667788", "id": "wamid.HBgLNTA3NTU2Njc3ODgVAgASGBQzQUVCNTg4RTFBMzcxNjY2QjYA",
            "timestamp": "1796396645", "type": "button",
            "context": {"from": "15550001234", "id": "wamid.HBgLNTA3NTU2Njc3ODgVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3AA=="},
            "button": {"payload": "TRACK_ORDER", "text": "Track my order"}}
})))]
pub struct InboundMessage {
    /// Id (`in_…`).
    pub id: InboundMessageId,
    #[schema(inline)]
    pub direction: Inbound,
    pub channel_id: ChannelId,
    /// The channel's pending or open conversation with the sender, else the latest one; null when there is none (nothing was ever sent to the number, or the sender is known only by a user id no contact has).
    #[schema(required = true)]
    pub conversation_id: Option<ConversationId>,
    /// The sender's number (digits); null when Meta gave only a user id that no contact has.
    #[schema(required = true)]
    pub from: Option<String>,
    /// The sender's business-scoped user id (Meta's `from_user_id` / `contacts[].user_id`).
    #[schema(required = true)]
    pub user_id: Option<String>,
    /// The sender's WhatsApp profile name.
    #[schema(required = true)]
    pub contact_name: Option<String>,
    /// Meta's type: text, button, interactive, image, video, audio, document, sticker, location, contacts, reaction, or any other (kept raw).
    #[serde(rename = "type")]
    pub kind: String,
    /// A text message's body.
    #[schema(required = true)]
    pub text: Option<String>,
    /// A click on a template's quick-reply button: its payload and label.
    #[schema(inline, required = true)]
    pub button: Option<InboundButton>,
    /// plantilla's message replied to (or whose button was clicked): the message with Meta's `context.id` as its wamid on this channel.
    #[schema(required = true)]
    pub reply_to: Option<MessageId>,
    /// Meta's `context.id`, as received.
    #[schema(required = true)]
    pub context_id: Option<String>,
    /// WhatsApp's id of the inbound message (`wamid.…`).
    pub provider_message_id: String,
    /// When the customer sent it (Meta's timestamp, whole seconds).
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// When plantilla received it.
    #[schema(format = DateTime)]
    pub received_at: String,
    /// Meta's message object, as received (the only content of types plantilla does not read).
    #[schema(value_type = Object)]
    pub raw: Value,
    /// `type` (list_reply, button_reply, …) with `id`, `title` and `description` of the row or button chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub interactive: Option<Value>,
    /// image, video, audio, document, sticker: `id` (download it from Meta), `mimeType`, `sha256`, `caption`, `filename`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub media: Option<Value>,
    /// `latitude`, `longitude`, `name`, `address`, `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub location: Option<Value>,
    /// The shared contact cards, as Meta sent them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<Value>)]
    pub contacts: Option<Value>,
    /// `messageId` (the wamid reacted to) and `emoji` (empty when removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub reaction: Option<Value>,
}

impl From<&store::InboundMessage> for InboundMessage {
    fn from(m: &store::InboundMessage) -> Self {
        let content = |key: &str| m.content.get(key).cloned();
        InboundMessage {
            id: m.id.clone().into(),
            direction: Inbound::Inbound,
            channel_id: m.channel_id.clone().into(),
            conversation_id: m.conversation_id.clone().map(ConversationId::from),
            from: m.phone_number.clone(),
            user_id: m.user_id.clone(),
            contact_name: m.contact_name.clone(),
            kind: m.kind.clone(),
            text: m.text.clone(),
            button: content("button").and_then(|b| serde_json::from_value(b).ok()),
            reply_to: m.reply_to.clone().map(MessageId::from),
            context_id: m.context_id.clone(),
            provider_message_id: m.provider_message_id.clone(),
            timestamp: format_ms(m.sent_at),
            received_at: format_ms(m.received_at),
            raw: m.raw.clone(),
            interactive: content("interactive"),
            media: content("media"),
            location: content("location"),
            contacts: content("contacts"),
            reaction: content("reaction"),
        }
    }
}

// One item of a conversation's thread.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ThreadMessage {
    Outbound(OutboundMessage),
    Inbound(InboundMessage),
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConversationMessagePage {
    /// Oldest first; `direction` tells them apart.
    #[schema(inline)]
    pub data: Vec<ThreadMessage>,
    /// Pass as `cursor` for the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

// --- Batches -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchProgress {
    /// Messages in a final status or handed to WhatsApp.
    pub done: i64,
    /// Messages scheduled, queued or being sent.
    pub waiting: i64,
    /// done / accepted, 0 to 100.
    pub percent: f64,
}

/// A batch's report.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Batch {
    pub id: BatchId,
    pub channel_id: ChannelId,
    pub total: i64,
    pub accepted: i64,
    pub rejected: i64,
    /// Accepted messages by their current status.
    pub by_status: BTreeMap<String, i64>,
    /// Failed messages by Meta's error code.
    pub by_error_code: BTreeMap<String, i64>,
    /// Messages by template id, then by status.
    pub by_template: BTreeMap<String, BTreeMap<String, i64>>,
    /// Messages held now, by reason (`quiet-hours`, `messaging-limit`).
    pub held: BTreeMap<String, i64>,
    #[schema(inline)]
    pub progress: BatchProgress,
    /// A paused batch's messages not yet claimed wait.
    pub paused: bool,
    /// When its last message should go, from the channel's rate, its messaging limit and the messages' scheduled and held times; null when nothing waits or the batch is paused.
    #[schema(format = DateTime, required = true)]
    pub estimated_completion_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

// `"accepted"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Accepted {
    Accepted,
}

// `"rejected"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Rejected {
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchRecipientAccepted {
    /// The recipient's position in the request.
    pub index: usize,
    #[schema(inline)]
    pub status: Accepted,
    pub message_id: MessageId,
    /// When a scheduled send goes.
    #[schema(format = DateTime, required = true)]
    pub scheduled_for: Option<String>,
    pub channel_id: ChannelId,
    pub to: String,
    #[schema(inline)]
    pub conversation: AcceptedConversation,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchRecipientRejected {
    /// The recipient's position in the request.
    pub index: usize,
    #[schema(inline)]
    pub status: Rejected,
    #[schema(schema_with = problem_ref)]
    pub problem: Value,
}

// One recipient's result.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchRecipientResult {
    Accepted(BatchRecipientAccepted),
    Rejected(BatchRecipientRejected),
}

/// A batch: every recipient accepted or rejected on its own.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchAccepted {
    /// The batch id (`bat_…`); the same for a retry with the same Idempotency-Key.
    pub batch_id: BatchId,
    pub total: usize,
    pub accepted: usize,
    pub rejected: usize,
    /// One result per recipient, in the request's order.
    #[schema(inline)]
    pub results: Vec<BatchRecipientResult>,
}

// --- Send requests ---------------------------------------------------------------------------
//
// Read field by field by `http::native_send` (every refusal names its field, as the API always
// has); these are what it yields, and what becomes the service's `send::SendRequest`. The ids
// they name (`channelId`, `templateId`) are id types whose schema is a string with `minLength`:
// a `$ref` to the id's component would drop the bound.

/// A placeholder's value in a send: its text (numbers and booleans as written), or a typed
/// parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    Text(String),
    Typed(TypedParam),
}

/// The values of a send as one map of params with reserved keys (`header.link`,
/// `button.1.coupon_code`, `card.0.header.link`, …; see `domain::template_send`): `params`
/// first, so a value given by its own field wins over a reserved key in `params`.
pub fn send_params(
    params: Option<BTreeMap<String, ParamValue>>,
    header: Option<SendHeader>,
    buttons: Option<Vec<SendButton>>,
    cards: Option<Vec<SendCard>>,
    offer_expires_at: Option<i64>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in params.into_iter().flatten() {
        match value {
            ParamValue::Text(text) => {
                out.insert(name, text);
            }
            ParamValue::Typed(typed) => typed.into_params(&name, &mut out),
        }
    }
    if let Some(header) = header {
        header.into_params("header", &mut out);
    }
    for button in buttons.into_iter().flatten() {
        button.into_params("button", &mut out);
    }
    if let Some(cards) = cards {
        let given = cards.len();
        for (n, card) in cards.into_iter().enumerate() {
            card.into_params(n, &mut out);
        }
        // The number of cards given is checked against the template's.
        out.insert("cards.given".into(), given.to_string());
    }
    if let Some(ms) = offer_expires_at {
        out.insert("offer.expiration_time_ms".into(), ms.to_string());
    }
    out
}

/// A send's `params`: placeholder values, typed parameters, reserved keys.
fn params_schema() -> ObjectBuilder {
    const DOC: &str = "`{name: value}` for each placeholder (`params: null` is no params); numbers and booleans are taken as their text; null is absent; an object is a typed parameter. The compatible API's reserved keys (`header.link`, `button.1.payload`, …) work here too.";
    let scalar = ObjectBuilder::new().schema_type(SchemaType::from_iter([
        Type::String,
        Type::Number,
        Type::Boolean,
        Type::Null,
    ]));
    let value = AnyOfBuilder::new()
        .item(scalar)
        .item(super::component("TypedParam"));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(RefOr::T(Schema::AnyOf(value.build()))))
        .description(Some(DOC))
}

fn offer_expires_at_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .min_length(Some(20))
        .description(Some(
            "A limited-time offer's expiry (RFC 3339), when the template's offer shows one.",
        ))
}

fn metadata_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some(
            "Your own data, at most 4 KiB of JSON, returned with the message.",
        ))
}

/// `sendAt` of a send, a batch or a batch recipient.
fn send_at_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some(
            "When to send (RFC 3339): the message is stored at once as `scheduled` and not sent \
             before then. A past time means now; more than `PLANTILLA_SCHEDULE_HORIZON_DAYS` \
             (default 35) days ahead is a 422 `send-at-beyond-horizon`. In a batch, a \
             recipient's own `sendAt` wins over the batch's.",
        ))
        .examples([json!("2026-12-05T09:00:00-05:00")])
}

/// The rule the derive cannot say of a send and a batch: the template by `templateId`, or by
/// `templateName` with `language`, never both (a 400 naming the field otherwise); null is
/// absent.
fn template_choice_rule(schema: &mut RefOr<Schema>) {
    let RefOr::T(Schema::Object(object)) = schema else {
        unreachable!("a send request is an object")
    };
    let rule = object.extensions.get_or_insert_with(Default::default);
    rule.insert(
        "anyOf".into(),
        json!([
            {"required": ["templateId"],
             "properties": {"templateId": {"type": "string"}, "templateName": {"type": "null"}, "language": {"type": "null"}}},
            {"required": ["templateName", "language"],
             "properties": {"templateId": {"type": "null"}, "templateName": {"type": "string"}, "language": {"type": "string"}}}
        ]),
    );
}

/// The template of a request built by [`SendRequest::new`] or [`BatchRequest::new`].
fn template_of(
    id: Option<TemplateId>,
    name: Option<String>,
    language: Option<String>,
) -> TemplateRef {
    match (id, name, language) {
        (Some(id), _, _) => TemplateRef::Id(id),
        (None, Some(name), Some(language)) => TemplateRef::Name { name, language },
        _ => unreachable!("a request is built with its template"),
    }
}

/// The wire fields of a template choice.
fn template_fields(template: TemplateRef) -> (Option<TemplateId>, Option<String>, Option<String>) {
    match template {
        TemplateRef::Id(id) => (Some(id), None, None),
        TemplateRef::Name { name, language } => (None, Some(name), Some(language)),
    }
}

/// A struct with the fields of one recipient (of `POST /v1/messages`, or of a batch) after
/// its own fields.
macro_rules! with_recipient {
    ($(#[$meta:meta])* pub struct $name:ident { $($fields:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($fields)*
            /// The recipient: country code and number, digits only (`50755667788`).
            #[schema(value_type = String, min_length = 1, max_length = 15, pattern = "^[1-9][0-9]*$")]
            pub to: PhoneNumber,
            #[schema(schema_with = params_schema)]
            pub params: Option<BTreeMap<String, ParamValue>>,
            // Each of these is absent when null, as the server reads them.
            pub header: Option<SendHeader>,
            pub buttons: Option<Vec<SendButton>>,
            pub cards: Option<Vec<SendCard>>,
            // Milliseconds since the epoch.
            #[schema(schema_with = offer_expires_at_schema)]
            pub offer_expires_at: Option<i64>,
            /// The contact's name; default the number.
            #[schema(min_length = 1)]
            pub client_name: Option<String>,
            /// The group to route the conversation to; default the channel's first group.
            #[schema(min_length = 1)]
            pub group_name: Option<String>,
            /// true: assign to an agent; otherwise the bot.
            pub assign: Option<bool>,
            /// http:// or https:// URL told about this message's statuses.
            #[schema(pattern = "^https?://")]
            pub callback_url: Option<String>,
            #[schema(schema_with = metadata_schema)]
            pub metadata: Option<serde_json::Map<String, Value>>,
            // Milliseconds since the epoch.
            #[schema(schema_with = send_at_schema)]
            pub send_at: Option<i64>,
        }
    };
}

with_recipient! {
    /// One template send: the template by `templateId`, or by `templateName` and `language`.
    #[derive(Debug, Clone, PartialEq, ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct SendRequest {
        /// The channel to send through: required with an account API key; with a channel token, omit it or give that channel.
        #[schema(value_type = Option<String>, min_length = 1)]
        pub channel_id: Option<ChannelId>,
        // Set together by `new`: one template.
        /// The template, by id…
        #[schema(value_type = Option<String>, min_length = 1)]
        template_id: Option<TemplateId>,
        /// …or by name, with `language`.
        #[schema(min_length = 1)]
        template_name: Option<String>,
        #[schema(min_length = 1)]
        language: Option<String>,
    }
}

with_recipient! {
    /// One recipient of a batch.
    #[derive(Debug, Clone, PartialEq, ToSchema)]
    #[schema(rename_all = "camelCase")]
    pub struct BatchRecipient {}
}

impl SendRequest {
    /// The send of `recipient` through `channel_id` (or the caller's channel).
    pub fn new(channel_id: Option<ChannelId>, template: TemplateRef, r: BatchRecipient) -> Self {
        let (template_id, template_name, language) = template_fields(template);
        SendRequest {
            channel_id,
            template_id,
            template_name,
            language,
            to: r.to,
            params: r.params,
            header: r.header,
            buttons: r.buttons,
            cards: r.cards,
            offer_expires_at: r.offer_expires_at,
            client_name: r.client_name,
            group_name: r.group_name,
            assign: r.assign,
            callback_url: r.callback_url,
            metadata: r.metadata,
            send_at: r.send_at,
        }
    }
}

impl From<SendRequest> for send::SendRequest {
    fn from(r: SendRequest) -> Self {
        let template = template_of(r.template_id, r.template_name, r.language);
        BatchRecipient {
            to: r.to,
            params: r.params,
            header: r.header,
            buttons: r.buttons,
            cards: r.cards,
            offer_expires_at: r.offer_expires_at,
            client_name: r.client_name,
            group_name: r.group_name,
            assign: r.assign,
            callback_url: r.callback_url,
            metadata: r.metadata,
            send_at: r.send_at,
        }
        .into_send(template)
    }
}

impl BatchRecipient {
    /// The service's send of this recipient with `template`.
    pub fn into_send(self, template: TemplateRef) -> send::SendRequest {
        send::SendRequest {
            client_name: self.client_name,
            group_name: self.group_name,
            assign: self.assign.unwrap_or(false),
            params: send_params(
                self.params,
                self.header,
                self.buttons,
                self.cards,
                self.offer_expires_at,
            ),
            callback_url: self.callback_url,
            metadata: self.metadata.map(Value::Object),
            send_at: self.send_at,
            ..send::SendRequest::new(template, self.to)
        }
    }
}

/// One template to many recipients.
#[derive(Debug, Clone, PartialEq, ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct BatchRequest {
    /// The channel to send through: required with an account API key; with a channel token, omit it or give that channel.
    #[schema(value_type = Option<String>, min_length = 1)]
    pub channel_id: Option<ChannelId>,
    // Set together by `new`: one template.
    /// The template, by id…
    #[schema(value_type = Option<String>, min_length = 1)]
    template_id: Option<TemplateId>,
    /// …or by name, with `language`.
    #[schema(min_length = 1)]
    template_name: Option<String>,
    #[schema(min_length = 1)]
    language: Option<String>,
    // Milliseconds since the epoch.
    #[schema(schema_with = send_at_schema)]
    pub send_at: Option<i64>,
    /// 1 to 10,000 recipients, each with its own params.
    // Each as read on its own: a bad one is refused (its field errors), the others go.
    #[schema(value_type = Vec<BatchRecipient>, min_items = 1, max_items = 10000)]
    pub recipients: Vec<Result<BatchRecipient, Vec<FieldError>>>,
}

impl BatchRequest {
    pub fn new(
        channel_id: Option<ChannelId>,
        template: TemplateRef,
        send_at: Option<i64>,
        recipients: Vec<Result<BatchRecipient, Vec<FieldError>>>,
    ) -> Self {
        let (template_id, template_name, language) = template_fields(template);
        BatchRequest {
            channel_id,
            template_id,
            template_name,
            language,
            send_at,
            recipients,
        }
    }

    /// The service's send of each recipient (`None`: refused, its errors beside): a
    /// recipient's own `sendAt` wins over the batch's.
    pub fn into_sends(self) -> Vec<Result<send::SendRequest, Vec<FieldError>>> {
        let template = template_of(self.template_id, self.template_name, self.language);
        self.recipients
            .into_iter()
            .map(|r| {
                r.map(|r| {
                    let mut send = r.into_send(template.clone());
                    send.send_at = send.send_at.or(self.send_at);
                    send
                })
            })
            .collect()
    }
}
