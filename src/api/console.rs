//! The operator console's answers (`/console/api/…`, [`crate::service::console`]): the page's
//! own JSON, not a public API, so these types have no schema and are not in the document. They
//! embed the API's types where the console shows the same thing (flattened, with the fields
//! the console adds beside them).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::admin::{AdminMessage, Channel};
use super::events::{CallbackDelivery, DeliveryStatus, WebhookEndpoint};
use super::messages::{Conversation, InboundMessage};
use super::templates::Template;
use crate::domain::callback::EventType;
use crate::domain::ids::{ConversationId, EventId, MessageId};
use crate::service::input::FieldError;
use crate::service::templates::SyncSummary;
use crate::store::console::Funnel;
use crate::store::{ProviderError, ProviderKind};

/// Who is signed in, which accounts they see, and the session's CSRF token.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// `admin` or `account`.
    pub role: &'static str,
    /// The account of an account session; null for the admin.
    pub account_id: Option<String>,
    pub accounts: Vec<super::admin::Account>,
    pub csrf_token: String,
    pub expires_at: String,
}

/// The answer to signing out.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedOut {
    pub signed_out: bool,
}

/// An account's overview: messages over time, the funnel, failures, queues, halted channels.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub account_id: String,
    pub now: i64,
    pub hour: Series,
    pub day: Series,
    pub funnel: Funnel,
    pub failures: Vec<Failure>,
    pub queues: Vec<Queue>,
    pub halted: Vec<Channel>,
}

/// Messages by status per time bucket.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    pub since: i64,
    pub bucket_ms: i64,
    pub points: Vec<Point>,
}

/// How many messages of a status a bucket (starting at `t`) has.
#[derive(Debug, Serialize)]
pub struct Point {
    pub t: i64,
    pub status: String,
    pub n: i64,
}

/// One of the commonest errors of failed messages.
#[derive(Debug, Serialize)]
pub struct Failure {
    pub code: i64,
    pub title: Option<String>,
    pub class: Option<&'static str>,
    pub messages: i64,
}

/// A channel's queue.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    pub channel_id: String,
    pub channel_name: String,
    pub depth: i64,
    pub oldest_age_seconds: Option<i64>,
}

/// A message as listed: the operator's view and its batch.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRow {
    #[serde(flatten)]
    pub message: AdminMessage,
    pub batch_id: Option<String>,
}

/// A page of messages, newest first.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    pub account_id: String,
    pub data: Vec<MessageRow>,
    pub next_cursor: Option<String>,
}

/// A message with its timeline, attempts, what was sent to Meta and its callbacks.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageDetail {
    #[serde(flatten)]
    pub row: MessageRow,
    pub template_name: Option<String>,
    pub channel_name: Option<String>,
    pub next_attempt_at: Option<String>,
    pub attempts_list: Vec<Attempt>,
    pub components: Vec<Value>,
    pub preview: Value,
    pub callbacks: Vec<MessageCallback>,
    pub metadata: Option<Value>,
    pub callback_url: Option<String>,
}

/// A delivery attempt of a message.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempt: i64,
    pub finished_at: String,
    pub outcome: String,
    pub error: Option<ProviderError>,
}

/// A callback delivered for a message, with where it went.
#[derive(Debug, Serialize)]
pub struct MessageCallback {
    #[serde(flatten)]
    pub delivery: CallbackDelivery,
    pub url: String,
}

/// An account's templates.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateList {
    pub account_id: String,
    pub data: Vec<Template>,
    pub total: u64,
}

/// A template with a preview of example values and the channels it can be sent through.
#[derive(Debug, Serialize)]
pub struct TemplateDetail {
    #[serde(flatten)]
    pub template: Template,
    pub preview: Preview,
    pub channels: Vec<ChannelName>,
}

/// A channel as a choice of the test send.
#[derive(Debug, Serialize)]
pub struct ChannelName {
    pub id: String,
    pub name: String,
    pub provider: ProviderKind,
}

/// What a send of a template with `params` would show and send.
#[derive(Debug, Serialize)]
pub struct Preview {
    pub sendable: bool,
    pub problems: Vec<FieldError>,
    pub preview: Value,
    pub components: Vec<Value>,
    pub params: BTreeMap<String, String>,
}

/// A test send, queued.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestSent {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
}

/// What syncing an account's templates did, channel by channel.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSync {
    pub account_id: String,
    pub channels: Vec<ChannelSync>,
}

/// One channel's sync: its summary, or why it failed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelSync {
    pub channel_id: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<SyncSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An account's channels, and whether the viewer may change them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelList {
    pub account_id: String,
    pub can_edit: bool,
    pub data: Vec<ChannelRow>,
}

/// A channel with its quality and its queue.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelRow {
    #[serde(flatten)]
    pub channel: Channel,
    pub queue_depth: i64,
    pub oldest_age_seconds: Option<i64>,
}

/// An account's newest batches.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchList {
    pub account_id: String,
    pub data: Vec<Batch>,
}

/// A batch and how many of its messages are in each status.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    pub id: String,
    pub channel_id: String,
    pub total: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub by_status: BTreeMap<String, i64>,
    pub created_at: String,
}

/// An account's webhook endpoints and newest callback deliveries.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Callbacks {
    pub account_id: String,
    pub endpoints: Vec<WebhookEndpoint>,
    pub deliveries: Vec<Delivery>,
}

/// A callback delivery as listed: [`CallbackDelivery`] without its payload, with its endpoint
/// and URL.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: EventId,
    pub event_type: EventType,
    pub message_id: Option<MessageId>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_response_status: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub endpoint_id: Option<String>,
    pub url: String,
}

impl Delivery {
    /// `delivery` without its payload, sent to `url` (of endpoint `endpoint_id`).
    pub fn of(delivery: CallbackDelivery, endpoint_id: Option<String>, url: String) -> Self {
        let CallbackDelivery {
            id,
            event_type,
            message_id,
            status,
            attempts,
            last_response_status,
            last_error,
            next_attempt_at,
            created_at,
            delivered_at,
            payload: _,
        } = delivery;
        Delivery {
            id,
            event_type,
            message_id,
            status,
            attempts,
            last_response_status,
            last_error,
            next_attempt_at,
            created_at,
            delivered_at,
            endpoint_id,
            url,
        }
    }
}

/// An account's conversations.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationList {
    pub account_id: String,
    pub data: Vec<Conversation>,
}

/// A conversation with its messages (oldest first) and what the customer sent.
#[derive(Debug, Serialize)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub messages: Vec<ThreadMessage>,
    pub inbound: Vec<InboundMessage>,
}

/// A message in a conversation's thread: as listed and, when its template is known, as the
/// recipient saw it.
#[derive(Debug, Serialize)]
pub struct ThreadMessage {
    #[serde(flatten)]
    pub row: MessageRow,
    #[serde(flatten)]
    pub rendered: Option<Rendered>,
}

/// A message's template and its text with the message's values.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rendered {
    pub template_name: String,
    pub preview: Value,
}
