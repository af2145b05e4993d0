//! Templates as shown, created, updated, submitted and previewed.
//!
//! A template's content types are the domain's ([`crate::domain::template`]: `Header`,
//! `Button`, `Card`, `Offer` are the `TemplateHeader`, `TemplateButton`, `TemplateCard` and
//! `TemplateOffer` components); this module has the views built from a stored template.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::{AdditionalProperties, Object, Type};
use utoipa::openapi::{RefOr, Schema};

use super::compat::{SendButton, SendCard, SendHeader};
use super::messages::ParamValue;
use crate::domain::ids::TemplateId;
use crate::domain::template::{Button, Card, Header, Offer};
use crate::format_ms;
use crate::service::input::FieldError;

/// This family's component schemas ([`super::schemas`]).
pub(super) fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
    super::collect::<Template>(out);
    super::collect::<TemplatePage>(out);
    super::collect::<TemplatePreview>(out);
    super::collect::<crate::service::authoring::Sample>(out);
    super::collect::<TemplateCreate>(out);
    super::collect::<TemplateUpdate>(out);
    super::collect::<TemplatePreviewRequest>(out);
    super::collect::<TemplateSubmit>(out);
    super::collect::<AdminTemplateSubmit>(out);
}

/// The variants of `TemplateHeader` and `TemplateButton` are closed objects, as the server
/// sends them, and `TemplateSample`, `TemplateCreate`, `TemplateUpdate` and the submissions are
/// closed as the server reads them (a key beyond their fields is refused, naming it). utoipa closes a struct with `#[serde(deny_unknown_fields)]` but has no
/// way to say it of an enum's variants (serde takes that attribute on no variant) or of a type
/// serde does not read, so it is said here.
pub(crate) fn close_variants(schemas: &mut BTreeMap<String, RefOr<Schema>>) {
    let close = |object: &mut Object| {
        object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
    };
    for name in ["TemplateHeader", "TemplateButton"] {
        if let Some(RefOr::T(Schema::OneOf(one_of))) = schemas.get_mut(name) {
            for item in &mut one_of.items {
                if let RefOr::T(Schema::Object(variant)) = item {
                    close(variant);
                }
            }
        }
    }
    for name in [
        "TemplateSample",
        "TemplateCreate",
        "TemplateUpdate",
        "TemplatePreviewRequest",
        "TemplateSubmit",
        "AdminTemplateSubmit",
    ] {
        if let Some(RefOr::T(Schema::Object(object))) = schemas.get_mut(name) {
            close(object);
        }
    }
}

fn parameter_format() -> Object {
    Object::builder()
        .schema_type(Type::String)
        .enum_values(Some(["NAMED", "POSITIONAL"]))
        .description(Some("Meta's `parameter_format`."))
        .build()
}

/// A template known to plantilla.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Template {
    /// Id (`tpl_…`).
    pub id: TemplateId,
    /// Meta's template name.
    pub name: String,
    /// Language code: `es`, `en_US`, `pt_BR`…
    pub language: String,
    /// MARKETING, UTILITY or AUTHENTICATION (as Meta reports it).
    #[schema(value_type = String)]
    pub category: TemplateCategory,
    /// Meta's status: APPROVED, PENDING, REJECTED, PAUSED, DISABLED, …; only APPROVED templates are sent.
    #[schema(value_type = String)]
    pub status: TemplateStatus,
    /// The provider's template id.
    #[schema(required = true)]
    pub app_id: Option<String>,
    /// The body text with its placeholders (`{{name}}` or `{{1}}`).
    #[schema(required = true)]
    pub message: Option<String>,
    /// The placeholders a send must give values for (header, body and URL buttons), in order of appearance.
    pub params: Vec<String>,
    #[schema(required = true)]
    pub header: Option<Header>,
    #[schema(required = true)]
    pub footer: Option<String>,
    /// Every button, in Meta's order: a button's position is the `index` a send uses for it.
    pub buttons: Vec<Button>,
    /// The group conversations of this template go to, if not the channel's default.
    #[schema(required = true)]
    pub group_name: Option<String>,
    /// A deactivated template is not sent.
    pub active: bool,
    /// false when the template has a component or button plantilla cannot send (`unsendableReason` says which); a send of it is refused before anything is queued.
    pub sendable: bool,
    #[schema(required = true)]
    pub unsendable_reason: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// A carousel's cards, in order; a send gives each card's values (`cards`, or `card.<n>.…` params).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub carousel: Vec<Card>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub limited_time_offer: Option<Offer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = parameter_format)]
    pub parameter_format: Option<String>,
    /// What Meta last reported about the template (status event, reason, flag, quality, a pending category change): native and admin APIs, once Meta has reported on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub health: Option<TemplateHealth>,
}

// A page of templates (`GET /v1/templates`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplatePage {
    pub data: Vec<Template>,
    pub page: u32,
    pub limit: u32,
    /// Templates matching the filters, on every page.
    pub total: u64,
}

/// A template's category, written as Meta writes it. The store keeps what Meta reports (its
/// template sync and category updates), so a category this list lacks is kept as sent
/// (`Other`); the schema of a field of this type is a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateCategory {
    Marketing,
    Utility,
    Authentication,
    #[serde(untagged)]
    Other(String),
}

impl From<&str> for TemplateCategory {
    /// The category of a stored template: a known one only when written exactly so.
    fn from(s: &str) -> Self {
        match s {
            "MARKETING" => Self::Marketing,
            "UTILITY" => Self::Utility,
            "AUTHENTICATION" => Self::Authentication,
            other => Self::Other(other.to_string()),
        }
    }
}

/// A template's status, written as Meta writes it (`crate::service::admin::TEMPLATE_STATUSES`).
/// The store keeps what Meta's template sync reports, so a status this list lacks is kept as
/// sent (`Other`); the schema of a field of this type is a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateStatus {
    Approved,
    Pending,
    Rejected,
    Paused,
    Disabled,
    InAppeal,
    PendingDeletion,
    Deleted,
    LimitExceeded,
    Archived,
    #[serde(untagged)]
    Other(String),
}

impl From<&str> for TemplateStatus {
    /// The status of a stored template: a known one only when written exactly so.
    fn from(s: &str) -> Self {
        match s {
            "APPROVED" => Self::Approved,
            "PENDING" => Self::Pending,
            "REJECTED" => Self::Rejected,
            "PAUSED" => Self::Paused,
            "DISABLED" => Self::Disabled,
            "IN_APPEAL" => Self::InAppeal,
            "PENDING_DELETION" => Self::PendingDeletion,
            "DELETED" => Self::Deleted,
            "LIMIT_EXCEEDED" => Self::LimitExceeded,
            "ARCHIVED" => Self::Archived,
            other => Self::Other(other.to_string()),
        }
    }
}

/// A template's health as Meta reports it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"lastEvent": "FLAGGED", "reason": "LOW_QUALITY",
    "statusUpdatedAt": "2026-12-01T10:00:00.000Z", "disableDate": "2026-12-08T00:00:00.000Z",
    "otherInfo": null, "flagged": true, "flaggedAt": "2026-12-01T10:00:00.000Z",
    "qualityScore": "RED", "previousQualityScore": "YELLOW",
    "qualityUpdatedAt": "2026-12-01T09:00:00.000Z", "previousCategory": null,
    "categoryUpdatedAt": null, "pendingCategoryChange": null})))]
pub struct TemplateHealth {
    /// Meta's last `message_template_status_update` event: APPROVED, REJECTED, PENDING, PAUSED, DISABLED, ARCHIVED, UNARCHIVED, FLAGGED, REINSTATED, PENDING_DELETION, … (kept as sent).
    #[schema(required = true)]
    pub last_event: Option<String>,
    /// Meta's reason for it (`NONE` is null).
    #[schema(required = true)]
    pub reason: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub status_updated_at: Option<String>,
    /// `disable_info.disable_date`: when a flagged template will be disabled.
    #[schema(required = true, format = DateTime)]
    pub disable_date: Option<String>,
    /// `other_info {title, description}` as Meta sent it.
    #[schema(required = true, value_type = Option<Object>)]
    pub other_info: Option<Value>,
    /// FLAGGED and not since approved, reinstated or back to GREEN.
    pub flagged: bool,
    #[schema(required = true, format = DateTime)]
    pub flagged_at: Option<String>,
    /// GREEN, YELLOW, RED or UNKNOWN.
    #[schema(required = true)]
    pub quality_score: Option<String>,
    #[schema(required = true)]
    pub previous_quality_score: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub quality_updated_at: Option<String>,
    #[schema(required = true, value_type = Option<String>)]
    pub previous_category: Option<TemplateCategory>,
    #[schema(required = true, format = DateTime)]
    pub category_updated_at: Option<String>,
    /// A category change Meta announced (`correct_category`) and has not made yet.
    #[schema(required = true, inline)]
    pub pending_category_change: Option<PendingCategoryChange>,
}

// A category change Meta announced (shown inline in `TemplateHealth`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PendingCategoryChange {
    #[schema(value_type = String)]
    pub category: TemplateCategory,
    #[schema(required = true, format = DateTime)]
    pub effective_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub notified_at: Option<String>,
}

fn time(ms: Option<i64>) -> Option<String> {
    ms.map(format_ms)
}

impl From<&crate::store::TemplateHealth> for TemplateHealth {
    fn from(h: &crate::store::TemplateHealth) -> Self {
        TemplateHealth {
            last_event: h.last_event.clone(),
            reason: h.reason.clone(),
            status_updated_at: time(h.status_updated_at),
            disable_date: time(h.disable_date),
            other_info: h.other_info.clone(),
            flagged: h.flagged,
            flagged_at: time(h.flagged_at),
            quality_score: h.quality_score.clone(),
            previous_quality_score: h.previous_quality_score.clone(),
            quality_updated_at: time(h.quality_updated_at),
            previous_category: h.previous_category.as_deref().map(TemplateCategory::from),
            category_updated_at: time(h.category_updated_at),
            pending_category_change: h.pending_category.as_ref().map(|category| {
                PendingCategoryChange {
                    category: category.as_str().into(),
                    effective_at: time(h.pending_category_at),
                    notified_at: time(h.pending_category_notified_at),
                }
            }),
        }
    }
}

// What a send with given values would show and send (`POST /v1/templates/{id}/preview`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplatePreview {
    /// Id (`tpl_…`).
    pub template_id: TemplateId,
    pub sendable: bool,
    /// true when a send with these values would be accepted.
    pub valid: bool,
    pub errors: Vec<FieldError>,
    /// What the recipient would see: `header` (text, media or location), `body`, `footer`, `buttons` (index, type, text, value), `cards`, `offer`.
    #[schema(value_type = Object)]
    pub preview: Value,
    /// The `template.components` plantilla would send to Meta.
    #[schema(value_type = Vec<Object>)]
    pub components: Vec<Value>,
}

fn nullable_enum(values: &[&str], description: Option<&str>) -> Object {
    let mut values: Vec<Value> = values.iter().map(|v| Value::from(*v)).collect();
    values.push(Value::Null);
    Object::builder()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .enum_values(Some(values))
        .description(description)
        .build()
}

fn category_schema() -> Object {
    nullable_enum(
        crate::service::admin::TEMPLATE_CATEGORIES,
        Some("Default UTILITY."),
    )
}

fn status_schema() -> Object {
    nullable_enum(
        crate::service::admin::TEMPLATE_STATUSES,
        Some("Default APPROVED."),
    )
}

fn parameter_format_input() -> Object {
    nullable_enum(&["NAMED", "POSITIONAL"], None)
}

/// An admin template body's `header`: a string (a text header), a header object or null.
fn header_input() -> Schema {
    utoipa::openapi::schema::AnyOfBuilder::new()
        .item(Object::with_type(Type::String))
        .item(super::component("TemplateHeader"))
        .item(Object::with_type(Type::Null))
        .description(Some(
            "A string is a text header; `format` is case-insensitive.",
        ))
        .build()
        .into()
}

/// The template fields an admin body may change, shared by [`TemplateCreate`] and
/// [`TemplateUpdate`]: `None` is a field left out. A field given as `null` clears it
/// (`appId` and `message` become empty, `buttons` and `carousel` none); `category`, `status`
/// and `active` given as `null` are left as they are.
macro_rules! template_fields {
    ($(#[$meta:meta])* pub struct $name:ident { $($head:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, ToSchema)]
        #[schema(rename_all = "camelCase")]
        pub struct $name {
            $($head)*
            #[schema(schema_with = category_schema)]
            pub category: Option<String>,
            #[schema(schema_with = status_schema)]
            pub status: Option<String>,
            /// The provider's template id (required to send).
            pub app_id: Option<String>,
            /// Body text; placeholders `{{name}}` or `{{1}}` (required to send).
            pub message: Option<String>,
            #[schema(schema_with = header_input)]
            pub header: Option<Option<Header>>,
            #[schema(value_type = Option<String>)]
            pub footer: Option<Option<String>>,
            /// At most 10; `type` is case-insensitive.
            pub buttons: Option<Vec<Button>>,
            /// A group of the account.
            #[schema(value_type = Option<String>)]
            pub group_name: Option<Option<String>>,
            pub active: Option<bool>,
            /// A carousel's cards (2 to 10), each with an IMAGE or VIDEO header.
            #[schema(min_items = 2, max_items = 10)]
            pub carousel: Option<Vec<Card>>,
            #[schema(value_type = Option<Offer>)]
            pub limited_time_offer: Option<Option<Offer>>,
            #[schema(schema_with = parameter_format_input)]
            pub parameter_format: Option<Option<String>>,
        }
    };
}

template_fields! {
    /// A new template.
    pub struct TemplateCreate {
        /// The account the template belongs to.
        #[schema(min_length = 1)]
        pub account_id: String,
        /// Meta's template name: lowercase letters, digits and underscores.
        #[schema(min_length = 1, max_length = 512, pattern = "^[a-z0-9_]+$")]
        pub name: String,
        /// Meta's language code: `es`, `en_US`, `pt_BR`, `fil`…
        #[schema(pattern = "^[a-z]{2,3}(_[A-Z]{2})?$")]
        pub language: String,
    }
}

template_fields! {
    /// Fields to change.
    pub struct TemplateUpdate {
        /// Meta's template name: lowercase letters, digits and underscores.
        #[schema(nullable = false, min_length = 1, max_length = 512, pattern = "^[a-z0-9_]+$")]
        pub name: Option<String>,
        /// Meta's language code: `es`, `en_US`, `pt_BR`, `fil`…
        #[schema(nullable = false, pattern = "^[a-z]{2,3}(_[A-Z]{2})?$")]
        pub language: Option<String>,
    }
}

impl TemplateCreate {
    /// The account, and the fields to set on the new template.
    pub fn into_fields(self) -> (String, TemplateUpdate) {
        let fields = TemplateUpdate {
            name: Some(self.name),
            language: Some(self.language),
            category: self.category,
            status: self.status,
            app_id: self.app_id,
            message: self.message,
            header: self.header,
            footer: self.footer,
            buttons: self.buttons,
            group_name: self.group_name,
            active: self.active,
            carousel: self.carousel,
            limited_time_offer: self.limited_time_offer,
            parameter_format: self.parameter_format,
        };
        (self.account_id, fields)
    }
}

fn submit_category() -> Object {
    Object::builder()
        .schema_type(Type::String)
        .enum_values(Some(
            crate::service::admin::TEMPLATE_CATEGORIES.iter().copied(),
        ))
        .build()
}

fn submit_parameter_format() -> Object {
    nullable_enum(
        &["NAMED", "POSITIONAL"],
        Some("Default: NAMED when the header or body has named placeholders."),
    )
}

/// A submission's `header`: a string (a text header), a header object with its sample file, or
/// null.
fn submit_header() -> Schema {
    let header = Object::builder()
        .schema_type(Type::Object)
        .property(
            "format",
            Object::builder()
                .schema_type(Type::String)
                .enum_values(Some([
                    "TEXT", "IMAGE", "VIDEO", "GIF", "DOCUMENT", "LOCATION",
                ])),
        )
        .property(
            "text",
            Object::builder()
                .schema_type(Type::String)
                .description(Some(
                    "TEXT headers: at most 60 characters, one placeholder.",
                )),
        )
        .property(
            "sample",
            utoipa::openapi::Ref::builder()
                .ref_location_from_schema_name("TemplateSample")
                .description(Some("Required for IMAGE, VIDEO, GIF and DOCUMENT headers.")),
        )
        .property("example", Object::with_type(Type::String))
        .property("defaultMedia", super::component("MediaRef"))
        .required("format");
    utoipa::openapi::schema::AnyOfBuilder::new()
        .item(Object::with_type(Type::String))
        .item(header)
        .item(Object::with_type(Type::Null))
        .description(Some(
            "A string is a text header. Not for AUTHENTICATION templates.",
        ))
        .build()
        .into()
}

/// A submission's `limitedTimeOffer`: an offer or null (the description beside them, where the
/// reference page shows it).
fn submit_offer() -> Schema {
    utoipa::openapi::schema::AnyOfBuilder::new()
        .item(super::component("TemplateOffer"))
        .item(Object::with_type(Type::Null))
        .description(Some("MARKETING templates only."))
        .build()
        .into()
}

/// The fields of a template submission, shared by [`TemplateSubmit`] and
/// [`AdminTemplateSubmit`], as `service::authoring` reads them: the admin template fields
/// (without `accountId`, `status`, `appId`, `groupName`, `active`), `examples`, the
/// authentication options, and each media header's `sample` file, taken out of its header.
/// A field left out is `None`; `parameterFormat`, `header`, `footer` and `limitedTimeOffer`
/// given as `null` are `Some(None)`.
macro_rules! template_submit {
    ($(#[$meta:meta])* pub struct $name:ident { $($head:tt)* }) => {
        #[derive(Debug, Clone, ToSchema)]
        $(#[$meta])*
        #[schema(rename_all = "camelCase")]
        pub struct $name {
            $($head)*
            /// At most 512 lowercase letters, digits and underscores.
            #[schema(min_length = 1, max_length = 512, pattern = "^[a-z0-9_]+$")]
            pub name: String,
            /// Meta's language code: `es`, `en_US`…
            #[schema(min_length = 1)]
            pub language: String,
            #[schema(schema_with = submit_category)]
            pub category: String,
            #[schema(schema_with = submit_parameter_format)]
            pub parameter_format: Option<Option<String>>,
            #[schema(schema_with = submit_header)]
            pub header: Option<Option<Header>>,
            /// The media header's sample file.
            #[schema(ignore)]
            pub header_sample: Option<crate::service::authoring::Sample>,
            /// The body (at most 1024 characters); required except for AUTHENTICATION templates, whose body is Meta's.
            #[schema(required = true)]
            pub message: Option<String>,
            /// At most 60 characters, no placeholders; not with a limited-time offer.
            #[schema(value_type = Option<String>)]
            pub footer: Option<Option<String>>,
            /// At most 10: 2 URL, 1 PHONE_NUMBER, 1 COPY_CODE; quick replies grouped together; AUTHENTICATION: exactly one OTP (COPY_CODE).
            pub buttons: Option<Vec<Button>>,
            /// 2 to 10 cards; each card's header takes a `sample` like the template's.
            pub carousel: Option<Vec<Card>>,
            /// Each carousel card's sample file, in order.
            #[schema(ignore)]
            pub card_samples: Vec<Option<crate::service::authoring::Sample>>,
            #[schema(schema_with = submit_offer)]
            pub limited_time_offer: Option<Option<Offer>>,
            /// One example per placeholder, keyed as the template's `params`: `{"name": "Ana", "1": "A-1", "card.0.1": "Tenis"}`. Required for every placeholder.
            pub examples: Option<BTreeMap<String, String>>,
            /// AUTHENTICATION templates only.
            pub add_security_recommendation: Option<bool>,
            /// AUTHENTICATION templates only.
            #[schema(minimum = 1, maximum = 90)]
            pub code_expiration_minutes: Option<i64>,
        }
    };
}

template_submit! {
    /// A template to submit to WhatsApp (`POST /v1/templates`).
    // The handler reads `channelId` first (it picks the channel, so the account the other
    // fields are read for), then the fields of an `AdminTemplateSubmit`.
    #[schema(examples(json!({"name": "invoice_ready", "language": "es", "category": "UTILITY",
        "header": {"format": "DOCUMENT", "sample": {"data": "JVBERi0xLjQK",
                   "mimeType": "application/pdf", "filename": "sample.pdf"}},
        "message": "Hola {{name}}, tu factura {{invoice}} está lista.",
        "examples": {"name": "Ana", "invoice": "F-77"},
        "buttons": [{"type": "QUICK_REPLY", "text": "Pagar"}]})))]
    pub struct TemplateSubmit {
        /// The channel to submit through: required with an account API key; with a channel token, omit it or give that channel.
        #[schema(nullable = false)]
        pub channel_id: Option<String>,
    }
}

template_submit! {
    /// A template to submit to WhatsApp through the channel of the path.
    pub struct AdminTemplateSubmit {}
}

// Read field by field by `http::native_send::send_value_parts` (every refusal names its
// field), which yields this.
/// The values of a send, as in `POST /v1/messages`.
#[derive(Debug, Clone, Default, PartialEq, ToSchema)]
#[schema(
    rename_all = "camelCase",
    examples(json!({"params": {"1": "Ana", "2": "F-77"},
        "header": {"link": "https://files.example.com/f-77.pdf", "filename": "Factura F-77.pdf"},
        "buttons": [{"index": 0, "payload": "pay:F-77"}]}))
)]
pub struct TemplatePreviewRequest {
    #[schema(schema_with = send_params_schema)]
    pub params: Option<BTreeMap<String, ParamValue>>,
    // Each of these is absent when null, as the server reads them.
    pub header: Option<SendHeader>,
    pub buttons: Option<Vec<SendButton>>,
    pub cards: Option<Vec<SendCard>>,
    /// A limited-time offer's expiry (RFC 3339), when the template's offer shows one.
    #[schema(value_type = Option<String>, format = DateTime, min_length = 20)]
    pub offer_expires_at: Option<i64>,
}

/// A send's `params`; null values are absent, so the server never keeps one.
fn send_params_schema() -> Object {
    let scalar = Object::builder().schema_type(utoipa::openapi::schema::SchemaType::from_iter([
        Type::String,
        Type::Number,
        Type::Boolean,
        Type::Null,
    ]));
    let value = utoipa::openapi::schema::AnyOfBuilder::new()
        .item(scalar)
        .item(super::component("TypedParam"))
        .build();
    Object::builder()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Object,
            Type::Null,
        ]))
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(value.into()))))
        .description(Some(
            "`{name: value}` for each placeholder (`params: null` is no params); numbers and booleans are taken as their text; null is absent; an object is a typed parameter. The compatible API's reserved keys (`header.link`, `button.1.payload`, …) work here too.",
        ))
        .build()
}

impl TemplatePreviewRequest {
    /// The values as one map of params with reserved keys (see `domain::template_send`): the
    /// placeholders, then `header.…`, `button.…`, `card.<n>.…` and `cards.given`, and
    /// `offer.expiration_time_ms` (a later key wins over a param of the same name).
    pub fn into_params(self) -> BTreeMap<String, String> {
        super::messages::send_params(
            self.params,
            self.header,
            self.buttons,
            self.cards,
            self.offer_expires_at,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_categories_and_statuses_are_variants_written_as_before() {
        for s in crate::service::admin::TEMPLATE_CATEGORIES {
            let category = TemplateCategory::from(*s);
            assert!(!matches!(category, TemplateCategory::Other(_)), "{s}");
            assert_eq!(serde_json::to_value(&category).unwrap(), *s);
        }
        for s in crate::service::admin::TEMPLATE_STATUSES {
            let status = TemplateStatus::from(*s);
            assert!(!matches!(status, TemplateStatus::Other(_)), "{s}");
            assert_eq!(serde_json::to_value(&status).unwrap(), *s);
        }
    }

    #[test]
    fn a_value_meta_sent_that_the_lists_lack_is_kept_as_sent() {
        for s in ["IN_REVIEW", "approved", ""] {
            assert_eq!(TemplateStatus::from(s), TemplateStatus::Other(s.into()));
            assert_eq!(serde_json::to_value(TemplateStatus::from(s)).unwrap(), s);
        }
        for s in ["TRANSACTIONAL", "marketing"] {
            assert_eq!(TemplateCategory::from(s), TemplateCategory::Other(s.into()));
            assert_eq!(serde_json::to_value(TemplateCategory::from(s)).unwrap(), s);
        }
    }
}
