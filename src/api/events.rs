//! Usage, suppressions, webhook endpoints and callback deliveries, media, provider errors.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{Array, Object, RefOr, Schema};

use crate::domain::callback::EventType;
use crate::domain::ids::{ChannelId, EventId, MessageId, TemplateId, WebhookEndpointId};
use crate::domain::phone::PhoneNumber;
use crate::provider::MediaFile;

/// This family's component schemas ([`super::schemas`]).
pub(super) fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
    super::collect::<crate::store::ProviderError>(out);
    super::collect::<crate::domain::template::MediaRef>(out);
    super::collect::<Media>(out);
    super::collect::<MediaUpload>(out);
    super::collect::<Usage>(out);
    super::collect::<UsageRow>(out);
    super::collect::<Suppression>(out);
    super::collect::<SuppressionCreate>(out);
    super::collect::<SuppressionPage>(out);
    super::collect::<EventType>(out);
    super::collect::<WebhookEndpointCreate>(out);
    super::collect::<WebhookEndpoint>(out);
    super::collect::<WebhookEndpointCreated>(out);
    super::collect::<WebhookEndpointList>(out);
    super::collect::<CallbackDelivery>(out);
    super::collect::<CallbackDeliveryPage>(out);
    super::collect::<MetaNotification>(out);
}

// --- Media ---------------------------------------------------------------------------------

/// An uploaded file.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Media {
    /// The media id: Meta's for cloud channels, `sandbox-media-…` for sandbox ones. Use it as a template header's `id`.
    pub id: String,
    /// The file's MIME type, as sent to Meta.
    pub mime_type: String,
    /// The file's size in bytes.
    pub size: u64,
    /// The channel it was uploaded through.
    pub channel_id: ChannelId,
}

/// A media upload (`multipart/form-data`).
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct MediaUpload {
    /// The file; its part's `Content-Type` is its MIME type, its file name is kept.
    #[schema(value_type = String, format = Binary, required = true)]
    pub file: Option<MediaFile>,
    /// The channel (with an account API key, unless given as a query parameter).
    // A string with `minLength`: a `$ref` to `ChannelId` would drop the bound.
    #[schema(value_type = Option<String>, min_length = 1, nullable = false)]
    pub channel_id: Option<ChannelId>,
}

// --- Usage ---------------------------------------------------------------------------------

/// Billable and free messages per group and category.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"from": "2026-12-01T00:00:00.000Z", "to": "2026-12-04T23:59:59.999Z", "groupBy": "category",
    "currency": "USD",
    "data": [{"key": "marketing", "category": "marketing", "billable": 2, "free": 0, "estimatedCost": 0.12},
             {"key": "utility", "category": "utility", "billable": 1, "free": 1, "estimatedCost": 0.01}],
    "total": {"billable": 3, "free": 1, "estimatedCost": 0.13}})))]
pub struct Usage {
    #[schema(format = DateTime)]
    pub from: String,
    /// The window's last instant (inclusive).
    #[schema(format = DateTime)]
    pub to: String,
    #[schema(schema_with = group_by)]
    pub group_by: crate::domain::usage::GroupBy,
    /// The price table's currency; null without one.
    #[schema(required = true)]
    pub currency: Option<String>,
    pub data: Vec<UsageRow>,
    #[schema(inline)]
    pub total: UsageTotal,
}

// The sums of `data` (no description: it is inline in `Usage`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageTotal {
    pub billable: u64,
    pub free: u64,
    #[schema(schema_with = total_cost, required = true)]
    pub estimated_cost: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageRow {
    /// The group: a day (YYYY-MM-DD), a template id, a channel id or a category.
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub day: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub template_id: Option<TemplateId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub channel_id: Option<ChannelId>,
    /// Meta's pricing category.
    pub category: String,
    /// Messages Meta charges.
    pub billable: u64,
    /// Free messages (customer service window, free entry point).
    pub free: u64,
    #[schema(schema_with = estimated_cost, required = true)]
    pub estimated_cost: Option<f64>,
}

/// A number or `null` (amounts of money: no `format`, they are decimal amounts).
fn nullable_number() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
}

/// [`UsageTotal::estimated_cost`].
fn total_cost() -> Object {
    nullable_number().build()
}

/// [`UsageRow::estimated_cost`].
fn estimated_cost() -> Object {
    nullable_number()
        .description(Some(
            "Billable messages times the configured price (null without a price table, or when one has no price).",
        ))
        .build()
}

/// [`Usage::group_by`]: the enum, inline, without the Rust type's description.
fn group_by() -> Schema {
    string_enum::<crate::domain::usage::GroupBy>(None)
}

/// The schema of `T`, a string enum, inline with `description` in place of its own.
fn string_enum<T: ToSchema>(description: Option<&str>) -> Schema {
    let mut schema = match T::schema() {
        RefOr::T(schema) => schema,
        RefOr::Ref(_) => unreachable!("a derived enum's schema is inline"),
    };
    if let Schema::Object(object) = &mut schema {
        object.description = description.map(str::to_string);
    }
    schema
}

// --- Suppressions --------------------------------------------------------------------------

/// A number that opted out of the account's marketing messages.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"phoneNumber": "50755667788", "reason": "keyword", "note": "STOP",
    "automatic": true, "channelId": "ch_01a2b3", "createdAt": "2026-12-04T16:00:00.000Z"})))]
pub struct Suppression {
    /// Country code first, digits only.
    pub phone_number: String,
    #[schema(schema_with = suppression_reason)]
    pub reason: crate::domain::opt_out::Reason,
    /// Free text: the API's `reason`, the keyword or button text, Meta's error details.
    #[schema(required = true)]
    pub note: Option<String>,
    /// Added by plantilla itself (every reason but `api`): an opt-in keyword removes only these.
    pub automatic: bool,
    /// The channel it came through, when known.
    #[schema(required = true)]
    pub channel_id: Option<ChannelId>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

// A number to add to the suppression list, as the service takes it (read by
// `service::suppressions::parse_add`, which refuses other fields).
#[derive(Debug, Clone, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"phoneNumber": "50755667788", "reason": "asked by phone"})))]
pub struct SuppressionCreate {
    /// The number, country code first, digits only; checked like a send's recipient.
    #[schema(value_type = String, min_length = 1, max_length = 15, pattern = "^[1-9][0-9]*$")]
    pub phone_number: PhoneNumber,
    /// Free text, kept as the entry's `note` (the entry's reason is `api`).
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// [`Suppression::reason`].
fn suppression_reason() -> Schema {
    string_enum::<crate::domain::opt_out::Reason>(Some(
        "How the number got here: an inbound opt-out keyword, a marketing template's opt-out button, Meta's error 131050 on a send, or the API/operator.",
    ))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SuppressionPage {
    /// Oldest first.
    pub data: Vec<Suppression>,
    /// Pass as `cursor` for the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

// --- Webhook endpoints and callback deliveries ---------------------------------------------

/// A new webhook endpoint.
#[derive(Debug, Clone, ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct WebhookEndpointCreate {
    #[schema(schema_with = endpoint_url)]
    pub url: String,
    #[schema(schema_with = event_type_set)]
    pub event_types: Vec<EventType>,
    /// A note for people.
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

/// Longest endpoint URL, in bytes.
pub const MAX_ENDPOINT_URL: usize = 2048;

/// An absolute http:// or https:// URL (the scheme in any case), at most 2048 characters. The
/// pattern gives the usual shape, a host name or an IPv4 address and an optional port, path
/// and query; the server takes any URL of those schemes it can parse (an IPv6 host too).
fn endpoint_url() -> Object {
    const OCTET: &str = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    const PORT: &str =
        "[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]";
    let host = format!("(([A-Za-z0-9-]+[.])*[A-Za-z][A-Za-z0-9-]*|({OCTET}[.]){{3}}{OCTET})");
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_ENDPOINT_URL))
        .pattern(Some(format!(
            "^[Hh][Tt][Tt][Pp]([Ss])?://{host}(:({PORT}))?([/?#][!-~]*)?$"
        )))
        .description(Some("An http(s) URL, at most 2048 characters."))
        .build()
}

/// The events an endpoint receives: at least one, each once.
fn event_type_set() -> Array {
    ArrayBuilder::new()
        .items(super::component(&EventType::name()))
        .min_items(Some(1))
        .unique_items(true)
        .description(Some("The events to receive, each once."))
        .build()
}

/// An endpoint that receives the account's events (its secret is shown only on creation).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookEndpoint {
    /// Id (`we_…`).
    pub id: WebhookEndpointId,
    pub url: String,
    pub event_types: Vec<EventType>,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A new webhook endpoint, with its signing secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookEndpointCreated {
    /// Id (`we_…`).
    pub id: WebhookEndpointId,
    pub url: String,
    pub event_types: Vec<EventType>,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The signing secret (`whsec_…`, Standard Webhooks): shown only now.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointList {
    pub data: Vec<WebhookEndpoint>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    /// The status of a stored delivery (`pending`, `delivered` or `failed`).
    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One event sent (or to be sent) to an endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallbackDelivery {
    /// Sent as `webhook-id`; the same on every attempt.
    pub id: EventId,
    pub event_type: EventType,
    /// The message the event is about, if any.
    #[schema(required = true)]
    pub message_id: Option<MessageId>,
    #[schema(schema_with = delivery_status)]
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i64,
    /// The HTTP status of the last attempt's answer.
    #[schema(required = true)]
    pub last_response_status: Option<i64>,
    /// Why the last attempt failed.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When it is tried next (`pending` only).
    #[schema(required = true, format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(required = true, format = DateTime)]
    pub delivered_at: Option<String>,
    /// The JSON body, as signed and sent.
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// [`CallbackDelivery::status`].
fn delivery_status() -> Schema {
    string_enum::<DeliveryStatus>(Some("`failed`: given up."))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallbackDeliveryPage {
    /// Oldest first.
    pub data: Vec<CallbackDelivery>,
    /// Pass as `cursor` for the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

// --- Meta's webhooks -----------------------------------------------------------------------

/// A WhatsApp Business webhook notification (`object`, `entry[].changes[]`), as Meta sends it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct MetaNotification(pub Value);

/// What `plantilla admin suppressions add` did: the entry, and whether it is new (a command's
/// answer, not the HTTP API's).
#[derive(Debug, Clone, Serialize)]
pub struct SuppressionAdded {
    #[serde(flatten)]
    pub entry: Suppression,
    pub created: bool,
}

/// What `plantilla admin suppressions remove` removed (a command's answer).
#[derive(Debug, Clone, Serialize)]
pub struct SuppressionRemoved {
    pub removed: Suppression,
}
