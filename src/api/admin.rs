//! The admin API's types: accounts, API keys, channels, groups.
//!
//! Request bodies are read by the field checks of `service::admin` (their messages name the
//! field as the API always has), which produce these types; the services take them and return
//! the response types.

use std::collections::BTreeMap;

use crate::domain::ids::{AccountId, ApiKeyId, ChannelId, GroupId};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::{RefOr, Schema};

use crate::format_ms;
use crate::store::{ProviderError, ProviderKind};

/// This family's component schemas ([`super::schemas`]).
pub(super) fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
    super::collect::<Account>(out);
    super::collect::<AccountCreate>(out);
    super::collect::<AccountUpdate>(out);
    super::collect::<QuietHours>(out);
    super::collect::<ApiKey>(out);
    super::collect::<ApiKeyCreate>(out);
    super::collect::<CallbackSecret>(out);
    super::collect::<Channel>(out);
    super::collect::<ChannelCreated>(out);
    super::collect::<ChannelQuality>(out);
    super::collect::<ChannelCreate>(out);
    super::collect::<ChannelUpdate>(out);
    super::collect::<TokenRotated>(out);
    super::collect::<crate::service::templates::SyncSummary>(out);
    super::collect::<Group>(out);
    super::collect::<GroupCreate>(out);
    super::collect::<AdminMessage>(out);
}

/// A name the admin API takes (an account's, a channel's, a group's): 1 to 200 characters, not
/// only spaces, no control characters (the server trims it and refuses control characters).
fn name_with(description: &str) -> ObjectBuilder {
    const CONTROL: &str = "\\u0000-\\u001F\\u007F-\\u009F";
    const SPACE: &str = " \\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(200))
        .pattern(Some(format!(
            "^[^{CONTROL}]*[^{CONTROL}{SPACE}][^{CONTROL}]*$"
        )))
        .description(Some(description))
}

/// An account's or a channel's name.
fn name_text() -> ObjectBuilder {
    name_with("At most 200 characters.")
}

// --- Accounts --------------------------------------------------------------------------------

/// A customer company.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Account {
    /// Id (`acc_…`).
    pub id: AccountId,
    pub name: String,
    /// New conversations per calendar month (UTC).
    pub conversation_limit: i64,
    /// When MARKETING sends are held, in the recipient's local time; null: off.
    #[schema(required = true)]
    pub quiet_hours: Option<QuietHours>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Inbound texts that opt the number out of marketing (exactly one of them, case, accents and surrounding spaces and punctuation aside). Shown by GET and PATCH.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub opt_out_keywords: Option<Vec<String>>,
    /// Inbound texts that remove an automatic opt-out. Shown by GET and PATCH.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub opt_in_keywords: Option<Vec<String>>,
}

impl Account {
    /// A stored account, without its keyword lists.
    pub fn of(a: &crate::store::Account) -> Self {
        Account {
            id: a.id.clone().into(),
            name: a.name.clone(),
            conversation_limit: a.conversation_limit,
            quiet_hours: a.quiet_hours.map(QuietHours::of),
            created_at: format_ms(a.created_at),
            updated_at: format_ms(a.updated_at),
            opt_out_keywords: None,
            opt_in_keywords: None,
        }
    }
}

/// A daily window in the recipient's local time (its zone from the number's country and area code); it may cross midnight. `start` and `end` differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"start": "21:00", "end": "08:00"})))]
pub struct QuietHours {
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: String,
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub end: String,
}

impl QuietHours {
    /// A window of minutes of the day, `(start, end)`.
    pub fn of((start, end): (i64, i64)) -> Self {
        use crate::domain::quiet_hours::format_minutes;
        QuietHours {
            start: format_minutes(start),
            end: format_minutes(end),
        }
    }
}

// A new account (no description in the document).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountCreate {
    #[schema(schema_with = name_text)]
    pub name: String,
    /// Default 1000.
    #[schema(minimum = 0, maximum = 2147483647)]
    pub conversation_limit: Option<i64>,
}

// Changes to an account: each field absent (`None`) is left as it is; `Some(None)` (null)
// sets its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"quietHours": {"start": "21:00", "end": "08:00"}, "optOutKeywords": ["STOP", "BAJA", "BASTA"]})))]
pub struct AccountUpdate {
    /// MARKETING sends falling inside are held until the window ends; UTILITY and AUTHENTICATION are not. null turns quiet hours off.
    #[schema(value_type = Option<QuietHours>)]
    pub quiet_hours: Option<Option<QuietHoursWindow>>,
    /// The account's opt-out keywords ([`opt_out_keywords`] describes it).
    #[schema(schema_with = opt_out_keywords)]
    pub opt_out_keywords: Option<Option<Vec<String>>>,
    /// The account's opt-in keywords ([`opt_in_keywords`] describes it).
    #[schema(schema_with = opt_in_keywords)]
    pub opt_in_keywords: Option<Option<Vec<String>>>,
}

/// A quiet-hours window as minutes of the day, `(start, end)`.
pub type QuietHoursWindow = (i64, i64);

fn opt_out_keywords() -> ArrayBuilder {
    keyword_list(
        "The account's opt-out keywords; null: the defaults (STOP, BAJA, PARAR, CANCELAR, UNSUBSCRIBE, SAIR).",
    )
}

fn opt_in_keywords() -> ArrayBuilder {
    keyword_list("The account's opt-in keywords; null: the defaults (START, ALTA).")
}

/// An account's keyword list, or null (a schema the attributes cannot say: bounds on the
/// items as well as on the list).
fn keyword_list(description: &str) -> ArrayBuilder {
    ArrayBuilder::new()
        .description(Some(description))
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Array,
            Type::Null,
        ]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(200)),
        )
        .min_items(Some(1))
        .max_items(Some(50))
}

/// A new account API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKey {
    /// Id (`key_…`).
    pub id: ApiKeyId,
    pub account_id: AccountId,
    pub name: String,
    /// The key (`ak_…`): shown only now.
    pub key: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

// A new API key's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreate {
    /// Default `default`.
    pub name: Option<String>,
}

// An account's new callback signing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallbackSecret {
    pub account_id: AccountId,
    /// The new secret (`whsec_…`) signing deliveries to messages' `callbackUrl`: shown only now; the old one stops signing at once.
    pub secret: String,
}

// --- Channels --------------------------------------------------------------------------------

/// A channel's fields, as a channel is read ([`Channel`]) and created ([`ChannelCreated`]):
/// written once for both.
macro_rules! channel {
    ($(#[$meta:meta])* pub struct $name:ident { $($extra:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Serialize, ToSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            /// Id (`ch_…`).
            pub id: ChannelId,
            pub account_id: AccountId,
            pub name: String,
            #[schema(inline)]
            pub provider: ProviderKind,
            /// Meta's phone-number id (empty for sandbox channels).
            pub phone_number_id: String,
            /// The WhatsApp Business Account id (template sync).
            pub waba_id: String,
            /// Whether an access token is stored (it is never shown).
            pub access_token_set: bool,
            pub app_secret_set: bool,
            pub verify_token_set: bool,
            #[schema(inline)]
            pub status: ChannelStatus,
            /// The channel's send rate.
            pub messages_per_second: i64,
            #[schema(inline)]
            pub health: ChannelHealth,
            /// The error that halted the channel.
            #[schema(required = true)]
            pub health_error: Option<ProviderError>,
            /// Meta's messaging limit: unique recipients of new business-initiated conversations per rolling 24 h (null: unlimited). Sends beyond it are held until the window rolls.
            #[schema(required = true)]
            pub messaging_limit: Option<i64>,
            #[schema(format = DateTime)]
            pub created_at: String,
            #[schema(format = DateTime)]
            pub updated_at: String,
            $($extra)*
        }
    };
}

channel! {
    /// A WhatsApp number of an account, without its secrets.
    pub struct Channel {
        /// Meta's quality rating of the number (GREEN, YELLOW, RED, UNKNOWN), when reported; shown when a channel is read.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        pub quality_rating: Option<Option<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        pub quality: Option<ChannelQuality>,
    }
}

channel! {
    /// A new channel, with its public token.
    pub struct ChannelCreated {
        /// The channel's public token (`pk_…`): shown only now.
        pub public_token: String,
    }
}

impl Channel {
    /// A stored channel without its secrets (only whether each is set) and without its quality.
    pub fn of(c: &crate::store::Channel) -> Self {
        Channel {
            id: c.id.clone().into(),
            account_id: c.account_id.clone().into(),
            name: c.name.clone(),
            provider: c.provider,
            phone_number_id: c.phone_number_id.clone(),
            waba_id: c.waba_id.clone(),
            access_token_set: !c.access_token.is_empty(),
            app_secret_set: !c.app_secret.is_empty(),
            verify_token_set: !c.verify_token.is_empty(),
            status: ChannelStatus::of(&c.status),
            messages_per_second: c.messages_per_second,
            health: ChannelHealth::of(&c.health),
            health_error: c.health_error.clone(),
            messaging_limit: c.messaging_limit,
            created_at: format_ms(c.created_at),
            updated_at: format_ms(c.updated_at),
            quality_rating: None,
            quality: None,
        }
    }

    /// A stored channel with its quality as Meta last reported it (`quality`, `qualityRating`).
    pub fn with_quality(
        c: &crate::store::Channel,
        quality: Option<&crate::store::ChannelQuality>,
    ) -> Self {
        let quality = quality.cloned().unwrap_or_default();
        Channel {
            quality_rating: Some(quality.quality_rating.clone()),
            quality: Some(ChannelQuality::of(&quality)),
            ..Channel::of(c)
        }
    }
}

impl ChannelCreated {
    /// A channel just stored, with the public token made for it.
    pub fn of(c: &crate::store::Channel, public_token: String) -> Self {
        let Channel {
            id,
            account_id,
            name,
            provider,
            phone_number_id,
            waba_id,
            access_token_set,
            app_secret_set,
            verify_token_set,
            status,
            messages_per_second,
            health,
            health_error,
            messaging_limit,
            created_at,
            updated_at,
            ..
        } = Channel::of(c);
        ChannelCreated {
            id,
            account_id,
            name,
            provider,
            phone_number_id,
            waba_id,
            access_token_set,
            app_secret_set,
            verify_token_set,
            status,
            messages_per_second,
            health,
            health_error,
            messaging_limit,
            created_at,
            updated_at,
            public_token,
        }
    }
}

// A channel's status (no description in the document).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelStatus {
    Connected,
    Disconnected,
}

impl ChannelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelStatus::Connected => "connected",
            ChannelStatus::Disconnected => "disconnected",
        }
    }

    /// A stored status: `connected`, or anything else, which the dispatcher does not send on.
    pub fn of(stored: &str) -> Self {
        if stored == ChannelStatus::Connected.as_str() {
            ChannelStatus::Connected
        } else {
            ChannelStatus::Disconnected
        }
    }
}

/// `halted` after an error no retry fixes: messages stay queued until a PATCH of the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelHealth {
    Ok,
    Halted,
}

impl ChannelHealth {
    /// A stored health: `ok`, or anything else, which the dispatcher does not send on.
    pub fn of(stored: &str) -> Self {
        if stored == "ok" {
            ChannelHealth::Ok
        } else {
            ChannelHealth::Halted
        }
    }
}

/// A number's quality as Meta last reported it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelQuality {
    /// GREEN, YELLOW, RED or UNKNOWN.
    #[schema(required = true)]
    pub quality_rating: Option<String>,
    #[schema(required = true)]
    pub previous_quality_rating: Option<String>,
    /// Meta's last event: FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE, …
    #[schema(required = true)]
    pub last_event: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub updated_at: Option<String>,
    /// The number as Meta displays it, once known.
    #[schema(required = true)]
    pub display_phone_number: Option<String>,
}

impl ChannelQuality {
    pub fn of(q: &crate::store::ChannelQuality) -> Self {
        ChannelQuality {
            quality_rating: q.quality_rating.clone(),
            previous_quality_rating: q.previous_quality_rating.clone(),
            last_event: q.last_event.clone(),
            updated_at: q.updated_at.map(format_ms),
            display_phone_number: q.display_phone_number.clone(),
        }
    }
}

/// A new channel.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelCreate {
    #[schema(value_type = String, min_length = 1)]
    pub account_id: AccountId,
    #[schema(schema_with = name_text)]
    pub name: String,
    #[schema(schema_with = provider_choice)]
    pub provider: ProviderKind,
    // Absent: empty; null is taken as empty too (so are the other secrets and ids).
    pub phone_number_id: Option<String>,
    pub waba_id: Option<String>,
    pub access_token: Option<String>,
    /// Checks signatures of `/webhooks/whatsapp/{channelId}`.
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
    /// Default connected.
    #[schema(inline)]
    pub status: Option<ChannelStatus>,
    /// Default 80.
    #[schema(minimum = 1, maximum = 10000)]
    pub messages_per_second: Option<i64>,
}

/// Fields to change; any PATCH also resumes a halted channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelUpdate {
    #[schema(schema_with = name_text)]
    pub name: Option<String>,
    #[schema(schema_with = provider_choice)]
    pub provider: Option<ProviderKind>,
    // Absent (`None`): unchanged; given (null is empty): replaced. So the other secrets and ids.
    pub phone_number_id: Option<String>,
    pub waba_id: Option<String>,
    pub access_token: Option<String>,
    /// Checks signatures of `/webhooks/whatsapp/{channelId}`.
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
    /// Default connected.
    #[schema(inline)]
    pub status: Option<ChannelStatus>,
    /// Default 80.
    #[schema(minimum = 1, maximum = 10000)]
    pub messages_per_second: Option<i64>,
    /// Meta's messaging limit of the number (250, 2000, 10000, 100000 as Meta's tiers go); null: unlimited.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 2147483647, examples(250))]
    pub messaging_limit: Option<Option<i64>>,
}

/// A channel's provider as a request gives it (never null).
fn provider_choice() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["sandbox", "cloud"]))
        .description(Some("`cloud` needs phoneNumberId and accessToken."))
}

impl From<ChannelCreate> for ChannelUpdate {
    fn from(c: ChannelCreate) -> Self {
        ChannelUpdate {
            name: Some(c.name),
            provider: Some(c.provider),
            phone_number_id: c.phone_number_id,
            waba_id: c.waba_id,
            access_token: c.access_token,
            app_secret: c.app_secret,
            verify_token: c.verify_token,
            status: c.status,
            messages_per_second: c.messages_per_second,
            messaging_limit: None,
        }
    }
}

/// What this family's derived schemas cannot say ([`super::amend`]): [`ChannelCreate`]'s rule.
pub(super) fn amend(schemas: &mut BTreeMap<String, RefOr<Schema>>) {
    if let Some(create) = schemas.get_mut("ChannelCreate") {
        cloud_needs_credentials(create);
    }
}

/// [`ChannelCreate`]'s rule the derive cannot say: a cloud channel is created with its phone
/// number id and access token (a 400 naming the missing one otherwise). An update's rule
/// depends on the stored channel.
fn cloud_needs_credentials(schema: &mut RefOr<Schema>) {
    let RefOr::T(Schema::Object(object)) = schema else {
        unreachable!("ChannelCreate is an object")
    };
    let filled = json!({"type": "string", "pattern": "\\S"});
    let rule = object.extensions.get_or_insert_with(Default::default);
    rule.insert(
        "if".into(),
        json!({"required": ["provider"], "properties": {"provider": {"const": "cloud"}}}),
    );
    rule.insert(
        "then".into(),
        json!({"required": ["phoneNumberId", "accessToken"],
               "properties": {"phoneNumberId": filled, "accessToken": filled}}),
    );
}

// The new public token of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRotated {
    pub id: ChannelId,
    /// The new public token: shown only now; the old one stops working.
    pub public_token: String,
}

/// What `plantilla admin secrets reencrypt` did (a command's answer, not the HTTP API's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretsReencrypted {
    /// The key the secrets are now encrypted with.
    pub key_id: String,
    /// Channels looked at.
    pub channels: u64,
    /// Channels whose secrets were rewritten under that key.
    pub rewritten: u64,
    /// How the channels' secrets are stored afterwards.
    pub stored: crate::secrets::SealCensus,
}

// --- Groups ----------------------------------------------------------------------------------

/// A team conversations are routed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Group {
    /// Id (`grp_…`).
    pub id: GroupId,
    pub account_id: AccountId,
    pub name: String,
    /// In association order; a channel's first group is its default.
    pub channel_ids: Vec<ChannelId>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl Group {
    pub fn of(g: &crate::store::Group) -> Self {
        Group {
            id: g.id.clone().into(),
            account_id: g.account_id.clone().into(),
            name: g.name.clone(),
            channel_ids: g.channel_ids.iter().cloned().map(ChannelId::from).collect(),
            created_at: format_ms(g.created_at),
        }
    }
}

// A new group (no description in the document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupCreate {
    #[schema(value_type = String, min_length = 1)]
    pub account_id: AccountId,
    #[schema(schema_with = group_name)]
    pub name: String,
    // Null or absent: none.
    #[schema(schema_with = group_channels)]
    pub channel_ids: Option<Vec<ChannelId>>,
}

fn group_name() -> ObjectBuilder {
    name_with("Unique in the account.")
}

/// A new group's channels: ids, or null.
fn group_channels() -> ArrayBuilder {
    ArrayBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Array,
            Type::Null,
        ]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1)),
        )
        .description(Some("Channels of the account."))
}

// --- Messages --------------------------------------------------------------------------------

super::messages::sent_message! {
    /// A message, as the operator sees it.
    AdminMessage (m) {
        #[schema(schema_with = provider_error, required = true)]
        error: Option<ProviderError> = m.error.clone(),
    }
}

fn provider_error() -> OneOfBuilder {
    OneOfBuilder::new()
        .item(super::component("ProviderError"))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some("The provider's last error."))
}
