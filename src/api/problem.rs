//! The error body of the native and admin APIs: an RFC 9457 problem document.
//!
//! (A description is one doc-comment line: utoipa keeps a wrapped comment's line breaks.)

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Type};

use super::templates::TemplateStatus;
use crate::domain::ids::ConversationId;
use crate::domain::status::MessageStatus;
use crate::service::input::FieldError;
use crate::store::ProviderError;

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = Problem)]
pub struct ProblemDocument {
    /// Stable problem type.
    #[serde(rename = "type")]
    #[schema(schema_with = problem_type)]
    pub problem_type: String,
    /// Short, fixed title of the type.
    pub title: String,
    /// The HTTP status.
    #[schema(value_type = i64)]
    pub status: u16,
    /// What exactly is wrong, for a person.
    pub detail: String,
    /// The failing fields (validation problems).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// `conversation-pending`: the pending conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub conversation_id: Option<ConversationId>,
    /// `conversation-pending`: the field of the number (`to`, or `recipients[i].to` in a batch).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
    /// `template-incomplete`: the missing template fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub missing: Option<Vec<String>>,
    /// `template-not-sendable`: the template's status.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable = false)]
    pub template_status: Option<TemplateStatus>,
    /// `upstream` of a template submission or deletion: Meta's error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub meta_code: Option<i64>,
    /// `upstream` of a template submission or deletion: Meta's error message.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub meta_message: Option<String>,
    /// `channel-not-connected`: the channel's status.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub channel_status: Option<String>,
    /// `message-not-cancellable`: the message's status.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message_status: Option<MessageStatus>,
    /// `conversation-limit`: the plan's new conversations per month.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub conversation_limit: Option<i64>,
    /// `internal`: the id of the log line with the cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error_id: Option<String>,
    /// `unsupported-media-type`, `media-too-large`: the file's type (null when it had none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub mime_type: Option<Option<String>>,
    /// `unsupported-media-type` (request body): the request's `Content-Type` (null when it had none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub content_type: Option<Option<String>>,
    /// `unsupported-media-type`: the body types the operation takes, or the MIME types WhatsApp takes for an uploaded file.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub accepted: Option<Vec<String>>,
    /// `media-too-large`: the kind of media the type is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = media_kind)]
    pub media_kind: Option<String>,
    /// `media-too-large`: the file's size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = i64)]
    pub size: Option<u64>,
    /// `media-too-large`: the largest file of its type WhatsApp takes, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = i64)]
    pub limit: Option<u64>,
    /// `upstream` (media uploads): the Graph API's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub provider_error: Option<ProviderError>,
}

/// `/problems/<slug>` of every problem type.
fn problem_type() -> ObjectBuilder {
    let types = crate::http::openapi::problem_types().map(|slug| format!("/problems/{slug}"));
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(types))
        .description(Some("Stable problem type."))
}

fn media_kind() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["audio", "document", "image", "sticker", "video"]))
        .description(Some("`media-too-large`: the kind of media the type is."))
}
