//! The admin API's types: accounts, API keys, channels, groups.
//!
//! Request bodies are read by the field checks of `service::admin` (their messages name the
//! field as the API always has), which produce these types; the services take them and return
//! the response types.

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};

use crate::format_ms;

/// This family's component schemas ([`super::schemas`]).
pub(super) fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
    super::collect::<Account>(out);
    super::collect::<AccountCreate>(out);
    super::collect::<AccountUpdate>(out);
    super::collect::<QuietHours>(out);
    super::collect::<ApiKey>(out);
    super::collect::<ApiKeyCreate>(out);
    super::collect::<CallbackSecret>(out);
}

// --- Accounts --------------------------------------------------------------------------------

/// A customer company.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Account {
    /// Id (`acc_…`).
    pub id: String,
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
            id: a.id.clone(),
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
    /// At most 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\u0000-\\u001F\\u007F-\\u009F \\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
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
    pub id: String,
    pub account_id: String,
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
    pub account_id: String,
    /// The new secret (`whsec_…`) signing deliveries to messages' `callbackUrl`: shown only now; the old one stops signing at once.
    pub secret: String,
}
