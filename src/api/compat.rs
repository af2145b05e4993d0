//! The AtomChat-compatible API's envelopes and send requests (wording dictated by the contract).
//!
//! The bodies are built from these types, so each is what its schema says. Fields whose value
//! the contract fixes (`success`, `status`, a dictated `message`) are set by the constructors;
//! their schemas are `const`.

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};

/// This family's component schemas ([`super::schemas`]).
pub(super) fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
    super::collect::<CompatEnvelope>(out);
    super::collect::<CompatErrorBody>(out);
    super::collect::<CompatInvalidBody>(out);
    super::collect::<CompatLimitReached>(out);
    super::collect::<CompatAlreadyPending>(out);
    super::collect::<CompatSendAccepted>(out);
    super::collect::<CompatTemplateList>(out);
    super::collect::<CompatTemplateDetail>(out);
}

// --- Field schemas the derive cannot say -----------------------------------------------------

/// `{"const": value}`: a value the contract fixes.
fn constant(value: Value) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .extensions(Some(Extensions::from_iter([("const", value)])))
}

fn const_true() -> ObjectBuilder {
    constant(json!(true))
}

fn const_false() -> ObjectBuilder {
    constant(json!(false))
}

fn const_202() -> ObjectBuilder {
    constant(json!(202))
}

fn const_401() -> ObjectBuilder {
    constant(json!(401))
}

fn const_limit_message() -> ObjectBuilder {
    constant(json!(LIMIT_REACHED))
}

fn const_invalid_body_message() -> ObjectBuilder {
    constant(json!(INVALID_BODY))
}

/// `{"type": "null"}`.
fn null() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Null)
}

/// A string or a list of strings (an error's `context.label`).
fn label_schema() -> AnyOfBuilder {
    AnyOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)))
}

fn context_value_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Integer]))
        .description(Some("The offending value (never a token)."))
}

/// The templates' family has not derived `Template` yet: referred to by name.
fn template_list() -> ArrayBuilder {
    ArrayBuilder::new().items(super::component("Template"))
}

fn template() -> utoipa::openapi::Ref {
    super::component("Template")
}

// --- Success bodies --------------------------------------------------------------------------

// Rows 13 and 10 of the send table: what became of an accepted send.
/// Pending: a new conversation, opened when WhatsApp confirms; Sent: on the number's open conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum SendState {
    Pending,
    Sent,
}

/// The send is stored and queued.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompatSendAccepted {
    #[schema(schema_with = const_true)]
    success: bool,
    #[schema(inline)]
    message: SendState,
    #[schema(inline)]
    data: CompatSendData,
}

// The ids of an accepted send.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompatSendData {
    conversation_id: String,
    message_id: String,
}

impl CompatSendAccepted {
    pub fn new(state: SendState, conversation_id: String, message_id: String) -> Self {
        Self {
            success: true,
            message: state,
            data: CompatSendData {
                conversation_id,
                message_id,
            },
        }
    }
}

/// The number has a pending conversation: nothing new is sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CompatAlreadyPending {
    #[schema(schema_with = const_false)]
    success: bool,
    conversation_id: String,
    #[schema(schema_with = const_202)]
    status: u16,
}

impl CompatAlreadyPending {
    pub fn new(conversation_id: String) -> Self {
        Self {
            success: false,
            conversation_id,
            status: 202,
        }
    }
}

/// The message of a send refused for the plan's conversation limit.
pub const LIMIT_REACHED: &str = "The client has reached conversations limit";

/// The account has used its plan's conversations this month.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CompatLimitReached {
    #[schema(schema_with = const_false)]
    success: bool,
    #[schema(schema_with = const_limit_message)]
    message: &'static str,
    /// Always null: no conversation was made.
    #[schema(schema_with = null)]
    conversation_id: (),
    #[schema(schema_with = const_401)]
    status: u16,
}

impl Default for CompatLimitReached {
    fn default() -> Self {
        Self {
            success: false,
            message: LIMIT_REACHED,
            conversation_id: (),
            status: 401,
        }
    }
}

/// The message of the old family's refusal of a body.
pub const INVALID_BODY: &str = "No hay datos para enviar";

/// The body is not a valid send (old family).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompatInvalidBody {
    #[schema(schema_with = const_false)]
    success: bool,
    #[schema(schema_with = const_invalid_body_message)]
    message: &'static str,
    /// What exactly is wrong with the body.
    detail: String,
}

impl CompatInvalidBody {
    pub fn new(detail: impl Into<String>) -> Self {
        Self {
            success: false,
            message: INVALID_BODY,
            detail: detail.into(),
        }
    }
}

// `GET /api/Template`, `GET /templates`: a page of the account's templates.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompatTemplateList {
    #[schema(schema_with = const_true)]
    success: bool,
    #[schema(schema_with = template_list)]
    data: Vec<Value>,
    page: u32,
    size: u32,
    /// Templates matching the filters, on every page.
    total: u64,
}

impl CompatTemplateList {
    /// `data`: the page's templates, as `views::template` shows them.
    pub fn new(data: Vec<Value>, page: u32, size: u32, total: u64) -> Self {
        Self {
            success: true,
            data,
            page,
            size,
            total,
        }
    }
}

// `GET /api/Template/{id}`, `GET /templates/{id}`: one template.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompatTemplateDetail {
    #[schema(schema_with = const_true)]
    success: bool,
    #[schema(schema_with = template)]
    data: Value,
}

impl CompatTemplateDetail {
    /// `data`: the template as `views::template` shows it.
    pub fn new(data: Value) -> Self {
        Self {
            success: true,
            data,
        }
    }
}

// --- Errors ----------------------------------------------------------------------------------

/// AtomChat's error envelope.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompatEnvelope {
    /// The HTTP status.
    pub code: u16,
    pub body: CompatErrorBody,
}

/// AtomChat's error body.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = CompatError)]
#[serde(deny_unknown_fields)]
pub struct CompatErrorBody {
    #[schema(inline)]
    pub context: ErrorContext,
    pub message: String,
    pub path: Vec<String>,
    /// `Bad format`, `Not found`, `Unauthorized` or `Internal Server Error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Missing params: why each one is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub detail: Option<Vec<String>>,
}

// Where an error is: `key` names the part of the request (or the record) at fault.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorContext {
    /// `Authorization`, `Body`, `Query`, `Params`, `Template`, `Channel`, `Account` or `Api`.
    pub key: String,
    #[schema(schema_with = label_schema)]
    pub label: Label,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = context_value_schema)]
    pub value: Option<ContextValue>,
}

/// An error's `label` (and `path`): one field, or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Label {
    One(String),
    Many(Vec<String>),
}

/// The offending value of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ContextValue {
    Text(String),
    Number(i64),
}

impl From<&str> for ContextValue {
    fn from(s: &str) -> Self {
        ContextValue::Text(s.to_string())
    }
}

impl From<String> for ContextValue {
    fn from(s: String) -> Self {
        ContextValue::Text(s)
    }
}

impl From<i64> for ContextValue {
    fn from(n: i64) -> Self {
        ContextValue::Number(n)
    }
}

impl ErrorContext {
    /// `{key, label}`.
    pub fn new(key: &str, label: impl Into<String>) -> Self {
        Self {
            key: key.to_string(),
            label: Label::One(label.into()),
            value: None,
        }
    }

    /// `{key, label, value}`.
    pub fn with_value(mut self, value: impl Into<ContextValue>) -> Self {
        self.value = Some(value.into());
        self
    }
}

impl CompatErrorBody {
    /// An error whose `path` is its one `label`.
    pub fn new(context: ErrorContext, message: impl Into<String>, kind: &str) -> Self {
        let path = match &context.label {
            Label::One(l) => vec![l.clone()],
            Label::Many(ls) => ls.clone(),
        };
        Self {
            context,
            message: message.into(),
            path,
            kind: kind.to_string(),
            detail: None,
        }
    }
}
