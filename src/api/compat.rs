//! The AtomChat-compatible API's envelopes and send requests (wording dictated by the contract).
//!
//! The bodies are built from these types, so each is what its schema says. Fields whose value
//! the contract fixes (`success`, `status`, a dictated `message`) are set by the constructors;
//! their schemas are `const`.

use super::templates::Template;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, SchemaType, Type,
};
use utoipa::openapi::{RefOr, Schema};

use crate::domain::ids::{ConversationId, MessageId, TemplateId};
use crate::domain::phone::PhoneNumber;
use crate::service::send::{SendRequest, TemplateRef};

/// This family's component schemas ([`super::schemas`]).
pub(super) fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
    super::collect::<CompatSendRequest>(out);
    super::collect::<CompatSendRequestNew>(out);
    super::collect::<SendHeader>(out);
    super::collect::<SendButton>(out);
    super::collect::<SendCard>(out);
    super::collect::<TypedParam>(out);
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

/// A send's `params` in the compatible API: placeholder values and reserved dotted keys.
fn compat_params_schema() -> ObjectBuilder {
    const DOC: &str = "`{name: value}` for each placeholder; numbers and booleans are taken as their text. Reserved dotted keys give the rest of a send's values: `header.link` or `header.id` and `header.filename` (media headers), `header.latitude`, `header.longitude`, `header.name`, `header.address` (location headers), `button.<index>.payload` (quick reply), `button.<index>.coupon_code` (copy code), `button.<index>.flow_token` (flow), `card.<n>.<placeholder>`, `card.<n>.header.link`/`.id`, `card.<n>.button.<index>.payload` (carousels), `offer.expiration_time_ms` (limited-time offers).";
    let scalar = ObjectBuilder::new().schema_type(SchemaType::from_iter([
        Type::String,
        Type::Number,
        Type::Boolean,
        Type::Null,
    ]));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(scalar))
        .description(Some(DOC))
        .examples([
            json!({"customer_name": "Ana", "header.link": "https://files.example.com/f-77.pdf",
                          "header.filename": "Factura F-77.pdf", "button.0.payload": "pay:F-77"}),
        ])
}

// --- Send requests ---------------------------------------------------------------------------
//
// Read field by field by `http::compat::parse_send_body` (every refusal names its field in the
// contract's words); these are what it yields. `templateId` is looked up among the account's
// templates' own ids (`tpl_…`); its schema is a string with `minLength` (a `$ref` to
// `TemplateId` would drop the bound).

/// A template send (old family).
#[derive(Debug, Clone, ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct CompatSendRequest {
    /// plantilla's template id.
    #[schema(value_type = String, min_length = 1)]
    pub template_id: TemplateId,
    /// Country code and national number, digits only, no `+` or spaces: `50755667788`.
    #[schema(value_type = String, min_length = 1, max_length = 15, pattern = "^[1-9][0-9]*$")]
    pub phone_number: PhoneNumber,
    /// The contact's name; default the number.
    pub client_name: Option<String>,
    /// The group to route the conversation to; default the channel's first group.
    pub group_name: Option<String>,
    /// true: assign to an agent; otherwise the bot. Default false.
    pub assign: Option<bool>,
    // Each value as its text; null values left out.
    #[schema(schema_with = compat_params_schema)]
    pub params: Option<BTreeMap<String, String>>,
}

/// A template send (new family).
#[derive(Debug, Clone, ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct CompatSendRequestNew {
    /// plantilla's template id.
    #[schema(value_type = String, min_length = 1)]
    pub template_id: TemplateId,
    /// Country code and national number, digits only, no `+` or spaces: `50755667788`.
    #[schema(value_type = String, min_length = 1, max_length = 15, pattern = "^[1-9][0-9]*$")]
    pub phone_number: PhoneNumber,
    /// The contact's name; default the number.
    pub client_name: Option<String>,
    /// Joined with lastName when clientName is absent.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The group to route the conversation to; default the channel's first group.
    pub group_name: Option<String>,
    /// true: assign to an agent; otherwise the bot. Default false.
    pub assign: Option<bool>,
    // Each value as its text; null values left out.
    #[schema(schema_with = compat_params_schema)]
    pub params: Option<BTreeMap<String, String>>,
}

impl From<CompatSendRequest> for SendRequest {
    fn from(r: CompatSendRequest) -> Self {
        SendRequest {
            client_name: r.client_name.filter(|s| !s.trim().is_empty()),
            group_name: r
                .group_name
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            assign: r.assign.unwrap_or(false),
            params: r.params.unwrap_or_default(),
            ..SendRequest::new(TemplateRef::Id(r.template_id), r.phone_number)
        }
    }
}

impl From<CompatSendRequestNew> for SendRequest {
    /// `clientName`, or else `firstName` and `lastName` joined with a space.
    fn from(r: CompatSendRequestNew) -> Self {
        let joined = [r.first_name, r.last_name]
            .into_iter()
            .flatten()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let client_name = r
            .client_name
            .filter(|s| !s.trim().is_empty())
            .or(Some(joined).filter(|s| !s.is_empty()));
        SendRequest::from(CompatSendRequest {
            template_id: r.template_id,
            phone_number: r.phone_number,
            client_name,
            group_name: r.group_name,
            assign: r.assign,
            params: r.params,
        })
    }
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
    conversation_id: ConversationId,
    message_id: MessageId,
}

impl CompatSendAccepted {
    pub fn new(state: SendState, conversation_id: ConversationId, message_id: MessageId) -> Self {
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

/// A body with its keys in the order a `serde_json::Value` writes them (sorted, as every
/// body's always are), so it can be serialized straight to text: the send's answers, which
/// every accepted send writes, skip the `Value` tree. Each type's test checks the text is
/// the `Value` way's.
pub trait SortedKeys {
    fn sorted(&self) -> impl Serialize + '_;
}

impl SortedKeys for CompatSendAccepted {
    fn sorted(&self) -> impl Serialize + '_ {
        // `CompatSendData`'s own keys are in order.
        #[derive(Serialize)]
        struct Sorted<'a> {
            data: &'a CompatSendData,
            message: SendState,
            success: bool,
        }
        Sorted {
            data: &self.data,
            message: self.message,
            success: self.success,
        }
    }
}

/// The number has a pending conversation: nothing new is sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CompatAlreadyPending {
    #[schema(schema_with = const_false)]
    success: bool,
    conversation_id: ConversationId,
    #[schema(schema_with = const_202)]
    status: u16,
}

impl CompatAlreadyPending {
    pub fn new(conversation_id: ConversationId) -> Self {
        Self {
            success: false,
            conversation_id,
            status: 202,
        }
    }
}

impl SortedKeys for CompatAlreadyPending {
    fn sorted(&self) -> impl Serialize + '_ {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Sorted<'a> {
            conversation_id: &'a ConversationId,
            status: u16,
            success: bool,
        }
        Sorted {
            conversation_id: &self.conversation_id,
            status: self.status,
            success: self.success,
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
    data: Vec<Template>,
    page: u32,
    size: u32,
    /// Templates matching the filters, on every page.
    total: u64,
}

impl CompatTemplateList {
    /// `data`: the page's templates, as `views::template` shows them.
    pub fn new(data: Vec<Template>, page: u32, size: u32, total: u64) -> Self {
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
    data: Template,
}

impl CompatTemplateDetail {
    /// `data`: the template as `views::template` shows it.
    pub fn new(data: Template) -> Self {
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

// --- Send values (every send: native, bulk, preview) ------------------------------------------
//
// Read field by field by `http::native_send` (every refusal names its field), which yields
// these and turns them into the reserved param keys of `domain::template_send`.

/// `type` of a header value: the template's media kind, in either case.
fn header_type_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([
            json!("image"),
            json!("video"),
            json!("gif"),
            json!("document"),
            json!("IMAGE"),
            json!("VIDEO"),
            json!("GIF"),
            json!("DOCUMENT"),
            Value::Null,
        ]))
}

/// A coordinate: a number (or its text).
fn coordinate_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([
        Type::Number,
        Type::String,
        Type::Null,
    ]))
}

fn non_empty_or_null() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .min_length(Some(1))
}

fn any_object(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
}

fn flow_action_data_schema() -> ObjectBuilder {
    any_object("FLOW: the data for the flow's first screen.")
}

fn action_schema() -> ObjectBuilder {
    any_object("CATALOG / MPM: Meta's action object (thumbnail_product_retailer_id, sections).")
}

fn card_params_schema() -> ObjectBuilder {
    let scalar = ObjectBuilder::new().schema_type(SchemaType::from_iter([
        Type::String,
        Type::Number,
        Type::Boolean,
        Type::Null,
    ]));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(scalar))
}

/// The header's values for this send: for an IMAGE, VIDEO, GIF or DOCUMENT header `link` (http or https) or `id` (a media id from `POST /v1/media`), `filename` (documents) and an optional `type` that must match the template's; for a LOCATION header `latitude`, `longitude` (numbers), `name`, `address`. Without it a media header uses the template's default media, if the operator set one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"link": "https://files.example.com/f-77.pdf", "filename": "Factura F-77.pdf"})))]
pub struct SendHeader {
    // As given (the template's check names it so).
    #[serde(rename = "type")]
    #[schema(schema_with = header_type_schema)]
    pub kind: Option<String>,
    // A null field is absent, as the server reads it.
    #[schema(schema_with = non_empty_or_null)]
    pub link: Option<String>,
    #[schema(schema_with = non_empty_or_null)]
    pub id: Option<String>,
    pub filename: Option<String>,
    // The number as written.
    #[schema(schema_with = coordinate_schema)]
    pub latitude: Option<String>,
    #[schema(schema_with = coordinate_schema)]
    pub longitude: Option<String>,
    pub name: Option<String>,
    pub address: Option<String>,
}

impl SendHeader {
    /// The field of JSON key `k` (`type`, `link`, …); `None` for a key a header does not have.
    pub fn field(&mut self, k: &str) -> Option<&mut Option<String>> {
        Some(match k {
            "type" => &mut self.kind,
            "link" => &mut self.link,
            "id" => &mut self.id,
            "filename" => &mut self.filename,
            "latitude" => &mut self.latitude,
            "longitude" => &mut self.longitude,
            "name" => &mut self.name,
            "address" => &mut self.address,
            _ => return None,
        })
    }

    /// Its values as reserved params under `key` (`header`, `card.0.header`).
    pub fn into_params(self, key: &str, params: &mut BTreeMap<String, String>) {
        let fields = [
            ("type", self.kind),
            ("link", self.link),
            ("id", self.id),
            ("filename", self.filename),
            ("latitude", self.latitude),
            ("longitude", self.longitude),
            ("name", self.name),
            ("address", self.address),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                params.insert(format!("{key}.{k}"), v);
            }
        }
    }
}

/// A value for one button of the template. A URL button's suffix is its placeholder's param; an OTP button takes the body's code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(examples(json!({"index": 0, "payload": "pay:F-77"})))]
pub struct SendButton {
    /// The button's position among the template's buttons, as Meta counts it.
    #[schema(minimum = 0, maximum = 9)]
    pub index: u8,
    /// QUICK_REPLY: the payload returned when the button is clicked.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub payload: Option<String>,
    /// COPY_CODE: the code to copy (at most 15 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, max_length = 15)]
    pub coupon_code: Option<String>,
    /// FLOW: the flow token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub flow_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = flow_action_data_schema)]
    pub flow_action_data: Option<serde_json::Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = action_schema)]
    pub action: Option<serde_json::Map<String, Value>>,
}

impl SendButton {
    /// Its values as reserved params under `key` (`button`, `card.0.button`):
    /// `<key>.<index>.payload`, `.coupon_code`, `.flow_token`, `.flow_action_data`, `.action`.
    pub fn into_params(self, key: &str, params: &mut BTreeMap<String, String>) {
        let object =
            |m: Option<serde_json::Map<String, Value>>| m.map(|m| Value::Object(m).to_string());
        let fields = [
            ("payload", self.payload),
            ("coupon_code", self.coupon_code),
            ("flow_token", self.flow_token),
            ("flow_action_data", object(self.flow_action_data)),
            ("action", object(self.action)),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                params.insert(format!("{key}.{}.{k}", self.index), v);
            }
        }
    }
}

/// One carousel card's values, in the template's card order (as many cards as the template has).
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"header": {"link": "https://shop.example.com/a.jpg"}, "params": {"1": "camisa"}, "buttons": [{"index": 0, "payload": "want:a"}]})))]
pub struct SendCard {
    // Each is absent when null, as the server reads it.
    pub header: Option<SendHeader>,
    // Each value as its text.
    #[schema(schema_with = card_params_schema)]
    pub params: Option<BTreeMap<String, String>>,
    pub buttons: Option<Vec<SendButton>>,
}

impl SendCard {
    /// Its values as reserved params of card `n`: `card.<n>.header.…`, `card.<n>.<placeholder>`,
    /// `card.<n>.button.…`.
    pub fn into_params(self, n: usize, params: &mut BTreeMap<String, String>) {
        if let Some(h) = self.header {
            h.into_params(&format!("card.{n}.header"), params);
        }
        for (k, v) in self.params.into_iter().flatten() {
            params.insert(format!("card.{n}.{k}"), v);
        }
        for b in self.buttons.into_iter().flatten() {
            b.into_params(&format!("card.{n}.button"), params);
        }
    }
}

/// A typed parameter (Meta's currency or date_time); its fallbackValue is the text shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum TypedParam {
    Currency(Currency),
    DateTime(DateTime),
}

// By hand: the derive leaves each variant's object open, and the server takes exactly one key.
impl utoipa::PartialSchema for TypedParam {
    fn schema() -> RefOr<Schema> {
        let variant = |key: &str, value: RefOr<Schema>| {
            ObjectBuilder::new()
                .property(key, value)
                .required(key)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        OneOfBuilder::new()
            .item(variant("currency", <Currency as utoipa::PartialSchema>::schema()))
            .item(variant("dateTime", <DateTime as utoipa::PartialSchema>::schema()))
            .description(Some(
                "A typed parameter (Meta's currency or date_time); its fallbackValue is the text shown.",
            ))
            .examples([json!({"currency": {"fallbackValue": "$10.50", "code": "USD", "amount1000": 10500}})])
            .into()
    }
}

impl ToSchema for TypedParam {}

// Meta's currency parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Currency {
    pub fallback_value: String,
    /// ISO 4217.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub code: String,
    /// The amount times 1000.
    pub amount1000: i64,
}

// Meta's date_time parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DateTime {
    pub fallback_value: String,
}

impl TypedParam {
    /// As the params of placeholder `name`: its text (the fallback) and `<name>.currency` /
    /// `<name>.date_time` (see `domain::template_send`).
    pub fn into_params(self, name: &str, params: &mut BTreeMap<String, String>) {
        match self {
            TypedParam::Currency(c) => {
                params.insert(name.to_string(), c.fallback_value);
                params.insert(
                    format!("{name}.currency"),
                    json!({"code": c.code, "amount_1000": c.amount1000}).to_string(),
                );
            }
            TypedParam::DateTime(d) => {
                params.insert(name.to_string(), d.fallback_value);
                params.insert(format!("{name}.date_time"), "1".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `http::typed_json` writes: through a `Value`, keys sorted.
    fn value_text<T: Serialize>(body: &T) -> String {
        serde_json::to_value(body).unwrap().to_string()
    }

    #[test]
    fn sorted_bodies_write_what_the_value_way_writes() {
        for state in [SendState::Sent, SendState::Pending] {
            let body = CompatSendAccepted::new(
                state,
                ConversationId::from("conv_0193\"é\\x".to_string()),
                MessageId::from("msg_01".to_string()),
            );
            let text = serde_json::to_string(&body.sorted()).unwrap();
            assert_eq!(text, value_text(&body));
        }
        let body = CompatAlreadyPending::new(ConversationId::from("conv_1\n".to_string()));
        let text = serde_json::to_string(&body.sorted()).unwrap();
        assert_eq!(text, value_text(&body));
        assert_eq!(
            text,
            r#"{"conversationId":"conv_1\n","status":202,"success":false}"#
        );
    }
}
