//! Setting up accounts, channels, groups and templates; looking at conversations and messages.
//! The admin HTTP API and `plantilla admin` both call these with JSON objects.

use serde_json::Value;

use super::input::{FieldError, Fields};
use super::views;
use crate::api::admin as api;
use crate::api::messages::Conversation;
use crate::api::templates::{Template as TemplateView, TemplateCreate, TemplateUpdate};
use crate::app::{App, Event};
use crate::domain::ids::{ChannelId, hash_token, new_id, new_secret};
use crate::domain::status::CloseReason;
use crate::domain::template::{
    Button, Card, Header, Offer, TemplateContent, TemplateExtra, first_control,
};
use crate::now_ms;
use crate::store::{Account, Channel, Group, ProviderKind, StoreError, Template};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(FieldError),
    #[error("no {kind} with id '{id}'")]
    NotFound { kind: &'static str, id: String },
    /// The provider (Meta's Graph API) refused or failed.
    #[error("{0}")]
    Upstream(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<FieldError> for AdminError {
    fn from(e: FieldError) -> Self {
        AdminError::Invalid(e)
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => AdminError::Internal(anyhow::anyhow!("conflict: {m}")),
            StoreError::Other(e) => AdminError::Internal(e),
        }
    }
}

/// Template statuses Meta reports; only `APPROVED` can be sent.
pub const TEMPLATE_STATUSES: &[&str] = &[
    "APPROVED",
    "PENDING",
    "REJECTED",
    "PAUSED",
    "DISABLED",
    "IN_APPEAL",
    "PENDING_DELETION",
    "DELETED",
    "LIMIT_EXCEEDED",
    "ARCHIVED",
];
pub const TEMPLATE_CATEGORIES: &[&str] = &["MARKETING", "UTILITY", "AUTHENTICATION"];
const CHANNEL_STATUSES: &[&str] = &["connected", "disconnected"];
const PROVIDERS: &[&str] = &["sandbox", "cloud"];

fn invalid(field: &str, message: impl Into<String>) -> AdminError {
    AdminError::Invalid(FieldError::new(field, message))
}

fn name_field(f: &Fields, key: &str) -> Result<String, AdminError> {
    let name = f.str(key)?;
    if name.chars().count() > 200 {
        return Err(invalid(key, "must be at most 200 characters"));
    }
    no_control(key, name)?;
    Ok(name.to_string())
}

/// Refuses a value with a control character (Meta refuses them; an id or token with one
/// would change the URL or header it goes into).
fn no_control(key: &str, value: &str) -> Result<(), AdminError> {
    match first_control(value) {
        Some(c) => Err(invalid(
            key,
            format!(
                "must not contain control characters (found U+{:04X})",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// Meta's node ids (phone number ids, WhatsApp Business Account ids) are decimal digits.
pub fn is_graph_id(value: &str) -> bool {
    (1..=32).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
}

/// An account creation's body, checked field by field.
pub fn account_create(body: &Value) -> Result<api::AccountCreate, AdminError> {
    let f = Fields::of(body)?;
    f.only(&["name", "conversationLimit"])?;
    Ok(api::AccountCreate {
        name: name_field(&f, "name")?,
        conversation_limit: f.opt_int("conversationLimit", 0, i64::from(i32::MAX))?,
    })
}

pub async fn create_account(
    app: &App,
    new: api::AccountCreate,
) -> Result<api::Account, AdminError> {
    let now = now_ms();
    let account = Account {
        id: new_id("acc"),
        name: new.name,
        conversation_limit: new.conversation_limit.unwrap_or(1000),
        created_at: now,
        updated_at: now,
        quiet_hours: None,
    };
    app.store.insert_account(&account).await?;
    // As `get_account` shows it (with its keyword lists).
    get_account(app, &account.id).await
}

pub async fn get_account(app: &App, id: &str) -> Result<api::Account, AdminError> {
    let account = app
        .store
        .account(id)
        .await?
        .ok_or_else(|| AdminError::NotFound {
            kind: "account",
            id: id.into(),
        })?;
    let mut view = api::Account::of(&account);
    if let Some(words) = super::suppressions::keywords(app, id).await? {
        view.opt_out_keywords = Some(words.opt_out);
        view.opt_in_keywords = Some(words.opt_in);
    }
    Ok(view)
}

/// An account update's body, checked field by field: `quietHours` (`{start, end}` as `HH:MM`,
/// or null for off), `optOutKeywords` and `optInKeywords` (arrays of keywords, or null for the
/// defaults).
pub fn account_update(body: &Value) -> Result<api::AccountUpdate, AdminError> {
    let f = Fields::of(body)?;
    f.only(&["quietHours", "optOutKeywords", "optInKeywords"])?;
    Ok(api::AccountUpdate {
        opt_out_keywords: super::suppressions::parse_keyword_field(&f, "optOutKeywords")?,
        opt_in_keywords: super::suppressions::parse_keyword_field(&f, "optInKeywords")?,
        quiet_hours: quiet_hours_field(&f)?,
    })
}

/// Changes an account's settings (checked before anything is written, so a bad list changes
/// nothing).
pub async fn update_account(
    app: &App,
    id: &str,
    change: api::AccountUpdate,
) -> Result<api::Account, AdminError> {
    let api::AccountUpdate {
        quiet_hours,
        opt_out_keywords: opt_out,
        opt_in_keywords: opt_in,
    } = change;
    if (opt_out.is_some() || opt_in.is_some())
        && !app
            .store
            .set_opt_keywords(id, opt_out, opt_in, now_ms())
            .await?
    {
        return Err(AdminError::NotFound {
            kind: "account",
            id: id.into(),
        });
    }
    if let Some(window) = quiet_hours
        && !app.store.set_quiet_hours(id, window, now_ms()).await?
    {
        return Err(AdminError::NotFound {
            kind: "account",
            id: id.into(),
        });
    }
    get_account(app, id).await
}

/// An account update's `quietHours`: `Some(None)` for null (off), `None` when absent.
fn quiet_hours_field(f: &Fields) -> Result<Option<Option<(i64, i64)>>, AdminError> {
    if !f.has("quietHours") {
        return Ok(None);
    }
    let window = match f.raw("quietHours") {
        None => None,
        Some(Value::Object(o)) => {
            if let Some(k) = o.keys().find(|k| *k != "start" && *k != "end") {
                return Err(invalid(
                    &format!("quietHours.{k}"),
                    "unknown field; expected start, end",
                ));
            }
            let time = |key: &str| match o.get(key) {
                Some(Value::String(t)) => crate::domain::quiet_hours::parse_minutes(t)
                    .map_err(|m| invalid(&format!("quietHours.{key}"), m)),
                _ => Err(invalid(
                    &format!("quietHours.{key}"),
                    "is required: a time of day as HH:MM",
                )),
            };
            let (start, end) = (time("start")?, time("end")?);
            if start == end {
                return Err(invalid(
                    "quietHours.end",
                    "must differ from start (use null to turn quiet hours off)",
                ));
            }
            Some((start, end))
        }
        Some(_) => {
            return Err(invalid(
                "quietHours",
                "must be an object {start, end} or null",
            ));
        }
    };
    Ok(Some(window))
}

/// An API key creation's body (an empty one is `{}`).
pub fn api_key_create(body: &Value) -> Result<api::ApiKeyCreate, AdminError> {
    let f = Fields::of(body)?;
    f.only(&["name"])?;
    Ok(api::ApiKeyCreate {
        name: f.opt_str("name")?.map(str::to_string),
    })
}

/// A new API key for an account: account-wide access to the native API. The key is shown
/// only here; its SHA-256 is stored.
pub async fn create_api_key(
    app: &App,
    account_id: &str,
    new: api::ApiKeyCreate,
) -> Result<api::ApiKey, AdminError> {
    let account = app
        .store
        .account(account_id)
        .await?
        .ok_or_else(|| AdminError::NotFound {
            kind: "account",
            id: account_id.into(),
        })?;
    let name = match new.name.as_deref() {
        Some(n) if !n.trim().is_empty() => n.trim().to_string(),
        _ => "default".to_string(),
    };
    let key = crate::store::ApiKey {
        id: new_id("key"),
        account_id: account.id,
        name,
        created_at: now_ms(),
    };
    let secret = new_secret("ak_");
    app.store.insert_api_key(&key, &hash_token(&secret)).await?;
    Ok(api::ApiKey {
        id: key.id.into(),
        account_id: key.account_id.into(),
        name: key.name,
        key: secret,
        created_at: crate::format_ms(key.created_at),
    })
}

const CHANNEL_FIELDS: &[&str] = &[
    "accountId",
    "name",
    "provider",
    "phoneNumberId",
    "wabaId",
    "accessToken",
    "appSecret",
    "verifyToken",
    "status",
    "messagesPerSecond",
];

/// The channel fields present in `f` (all of them on create, any on update), checked.
fn channel_fields(f: &Fields, into: &mut api::ChannelUpdate) -> Result<(), AdminError> {
    if f.has("name") {
        into.name = Some(name_field(f, "name")?);
    }
    // A provider is never null: openapi.json says a string (sandbox or cloud), so a null is
    // refused rather than read as absent (on create that would quietly make a sandbox).
    if f.has("provider") && f.raw("provider").is_none() {
        return Err(invalid("provider", "must be sandbox or cloud, not null"));
    }
    if let Some(p) = f.opt_choice("provider", PROVIDERS)? {
        into.provider = Some(ProviderKind::parse(p).expect("choice is a provider"));
    }
    for (key, slot) in [
        ("phoneNumberId", &mut into.phone_number_id),
        ("wabaId", &mut into.waba_id),
        ("accessToken", &mut into.access_token),
        ("appSecret", &mut into.app_secret),
        ("verifyToken", &mut into.verify_token),
    ] {
        if f.has(key) {
            let value = f.opt_str(key)?.unwrap_or_default().trim().to_string();
            no_control(key, &value)?;
            *slot = Some(value);
        }
    }
    if let Some(s) = f.opt_choice("status", CHANNEL_STATUSES)? {
        into.status = Some(match s {
            "disconnected" => api::ChannelStatus::Disconnected,
            _ => api::ChannelStatus::Connected,
        });
    }
    into.messages_per_second = f.opt_int("messagesPerSecond", 1, 10_000)?;
    Ok(())
}

/// Applies the fields given in `change` to `c`, and checks a cloud channel has what it needs.
fn apply_channel_fields(c: &mut Channel, change: &api::ChannelUpdate) -> Result<(), AdminError> {
    if let Some(name) = &change.name {
        c.name = name.clone();
    }
    if let Some(provider) = change.provider {
        c.provider = provider;
    }
    for (value, slot) in [
        (&change.phone_number_id, &mut c.phone_number_id),
        (&change.waba_id, &mut c.waba_id),
        (&change.access_token, &mut c.access_token),
        (&change.app_secret, &mut c.app_secret),
        (&change.verify_token, &mut c.verify_token),
    ] {
        if let Some(value) = value {
            *slot = value.clone();
        }
    }
    if let Some(status) = change.status {
        c.status = status.as_str().to_string();
    }
    if let Some(rate) = change.messages_per_second {
        c.messages_per_second = rate;
    }
    if c.provider == ProviderKind::Cloud {
        for (key, value) in [
            ("phoneNumberId", &c.phone_number_id),
            ("accessToken", &c.access_token),
        ] {
            if value.is_empty() {
                return Err(invalid(key, "is required for a cloud channel"));
            }
        }
        // These go into Graph API URLs. Checked when given or when the channel becomes a
        // cloud channel, so a channel stored before this rule can still be patched.
        for (key, given, value) in [
            ("phoneNumberId", &change.phone_number_id, &c.phone_number_id),
            ("wabaId", &change.waba_id, &c.waba_id),
        ] {
            if (given.is_some() || change.provider.is_some())
                && !value.is_empty()
                && !is_graph_id(value)
            {
                return Err(invalid(
                    key,
                    format!(
                        "must be Meta's id of the number or account: digits only, at most 32 (got '{}')",
                        value.escape_default()
                    ),
                ));
            }
        }
    }
    Ok(())
}

pub(crate) async fn load_channel(app: &App, id: &str) -> Result<Channel, AdminError> {
    app.store
        .channel(id)
        .await?
        .ok_or_else(|| AdminError::NotFound {
            kind: "channel",
            id: id.into(),
        })
}

async fn existing_account(app: &App, f: &Fields<'_>) -> Result<Account, AdminError> {
    let id = f.str("accountId")?;
    app.store
        .account(id)
        .await?
        .ok_or_else(|| invalid("accountId", format!("no account with id '{id}'")))
}

/// A channel creation's body, checked field by field.
pub fn channel_create(body: &Value) -> Result<api::ChannelCreate, AdminError> {
    let f = Fields::of(body)?;
    f.only(CHANNEL_FIELDS)?;
    let account_id = f.str("accountId")?.into();
    if !f.has("provider") {
        return Err(invalid("provider", "is required: sandbox or cloud"));
    }
    f.str("name")?;
    let mut fields = api::ChannelUpdate::default();
    channel_fields(&f, &mut fields)?;
    let api::ChannelUpdate {
        name: Some(name),
        provider: Some(provider),
        ..
    } = fields
    else {
        unreachable!("a name and a provider were required")
    };
    Ok(api::ChannelCreate {
        account_id,
        name,
        provider,
        phone_number_id: fields.phone_number_id,
        waba_id: fields.waba_id,
        access_token: fields.access_token,
        app_secret: fields.app_secret,
        verify_token: fields.verify_token,
        status: fields.status,
        messages_per_second: fields.messages_per_second,
    })
}

pub async fn create_channel(
    app: &App,
    new: api::ChannelCreate,
) -> Result<api::ChannelCreated, AdminError> {
    let account = app.store.account(&new.account_id).await?.ok_or_else(|| {
        invalid(
            "accountId",
            format!("no account with id '{}'", new.account_id),
        )
    })?;
    let now = now_ms();
    let mut channel = Channel {
        id: new_id("ch"),
        account_id: account.id,
        name: String::new(),
        provider: ProviderKind::Sandbox,
        phone_number_id: String::new(),
        waba_id: String::new(),
        access_token: String::new(),
        app_secret: String::new(),
        verify_token: String::new(),
        status: "connected".into(),
        messages_per_second: 80,
        health: "ok".into(),
        health_error: None,
        messaging_limit: None,
        created_at: now,
        updated_at: now,
    };
    apply_channel_fields(&mut channel, &new.into())?;
    let token = new_secret("pk_");
    app.store
        .insert_channel(&channel, &hash_token(&token))
        .await?;
    Ok(api::ChannelCreated::of(&channel, token))
}

pub async fn get_channel(app: &App, id: &str) -> Result<api::Channel, AdminError> {
    let channel = load_channel(app, id).await?;
    let qualities = app.store.channel_qualities().await?;
    Ok(api::Channel::with_quality(
        &channel,
        qualities.get(&channel.id),
    ))
}

/// A channel update's body, checked field by field.
pub fn channel_update(body: &Value) -> Result<api::ChannelUpdate, AdminError> {
    let f = Fields::of(body)?;
    let mut known = CHANNEL_FIELDS[1..].to_vec();
    known.push("messagingLimit");
    f.only(&known)?;
    let mut change = api::ChannelUpdate::default();
    channel_fields(&f, &mut change)?;
    let limit = f.opt_int("messagingLimit", 1, i64::from(i32::MAX))?;
    change.messaging_limit = f.has("messagingLimit").then_some(limit);
    Ok(change)
}

pub async fn update_channel(
    app: &App,
    id: &str,
    change: api::ChannelUpdate,
) -> Result<api::Channel, AdminError> {
    let mut channel = load_channel(app, id).await?;
    apply_channel_fields(&mut channel, &change)?;
    channel.updated_at = now_ms();
    app.store.update_channel(&channel).await?;
    // Its rate may have changed: the dispatcher's pacer learns it at its next pass.
    app.wake_dispatcher();
    if let Some(limit) = change.messaging_limit {
        app.store
            .set_messaging_limit(&channel.id, limit, channel.updated_at)
            .await?;
        channel.messaging_limit = limit;
        app.wake_dispatcher();
    }
    if channel.health != "ok" {
        // An operator acted on a halted channel (a new token, a paid bill): try again.
        app.store
            .set_channel_health(&channel.id, None, channel.updated_at)
            .await?;
        channel.health = "ok".into();
        channel.health_error = None;
        app.wake_dispatcher();
    }
    let qualities = app.store.channel_qualities().await?;
    Ok(api::Channel::with_quality(
        &channel,
        qualities.get(&channel.id),
    ))
}

pub async fn rotate_channel_token(app: &App, id: &str) -> Result<api::TokenRotated, AdminError> {
    let token = new_secret("pk_");
    if !app
        .store
        .set_channel_token(id, &hash_token(&token), now_ms())
        .await?
    {
        return Err(AdminError::NotFound {
            kind: "channel",
            id: id.into(),
        });
    }
    Ok(api::TokenRotated {
        id: id.into(),
        public_token: token,
    })
}

/// Rewrites every channel's secrets under the current encryption key, the step of a key
/// rotation after which the old key can be removed. Answers what it did and how the secrets
/// are stored afterwards.
pub async fn reencrypt_secrets(app: &App) -> Result<api::SecretsReencrypted, AdminError> {
    let cipher = app.config.cipher()?;
    let Some(key_id) = cipher.current_key_id() else {
        return Err(invalid(
            "encryption_key",
            "is not set: set PLANTILLA_ENCRYPTION_KEY to the key to encrypt with",
        ));
    };
    let done = app.store.reseal_channel_secrets().await?;
    let census = app.store.seal_census().await?;
    Ok(api::SecretsReencrypted {
        key_id: key_id.to_string(),
        channels: done.channels,
        rewritten: done.rewritten,
        stored: census,
    })
}

pub async fn sync_templates(
    app: &App,
    channel_id: &str,
) -> Result<super::templates::SyncSummary, AdminError> {
    use super::templates::{self, SyncError};
    let channel = load_channel(app, channel_id).await?;
    match templates::sync(app, &channel).await {
        Ok(summary) => Ok(summary),
        Err(SyncError::NotSyncable(m)) => Err(invalid("channel", m)),
        Err(SyncError::Graph(e)) => Err(AdminError::Upstream(format!(
            "the Graph API answered {} ({}): {}",
            e.code,
            e.title,
            e.description()
        ))),
        Err(SyncError::Internal(e)) => Err(AdminError::Internal(e)),
    }
}

/// A group creation's body, checked field by field.
pub fn group_create(body: &Value) -> Result<api::GroupCreate, AdminError> {
    let f = Fields::of(body)?;
    f.only(&["accountId", "name", "channelIds"])?;
    Ok(api::GroupCreate {
        account_id: f.str("accountId")?.into(),
        name: name_field(&f, "name")?,
        channel_ids: f
            .opt_str_list("channelIds")?
            .map(|ids| ids.into_iter().map(ChannelId::from).collect()),
    })
}

pub async fn create_group(app: &App, new: api::GroupCreate) -> Result<api::Group, AdminError> {
    let account = app.store.account(&new.account_id).await?.ok_or_else(|| {
        invalid(
            "accountId",
            format!("no account with id '{}'", new.account_id),
        )
    })?;
    let name = new.name;
    if app.store.group_by_name(&account.id, &name).await?.is_some() {
        return Err(invalid(
            "name",
            format!("the account already has a group named '{name}'"),
        ));
    }
    let channel_ids = new.channel_ids.unwrap_or_default();
    for (i, id) in channel_ids.iter().enumerate() {
        let field = format!("channelIds[{i}]");
        match app.store.channel(id).await? {
            Some(c) if c.account_id == account.id => {}
            Some(_) => {
                return Err(invalid(
                    &field,
                    format!("channel '{id}' belongs to another account"),
                ));
            }
            None => return Err(invalid(&field, format!("no channel with id '{id}'"))),
        }
        if channel_ids[..i].contains(id) {
            return Err(invalid(&field, format!("channel '{id}' is listed twice")));
        }
    }
    let group = Group {
        id: new_id("grp"),
        account_id: account.id,
        name,
        channel_ids: channel_ids.into_iter().map(String::from).collect(),
        created_at: now_ms(),
    };
    app.store.insert_group(&group).await?;
    Ok(api::Group::of(&group))
}

const TEMPLATE_FIELDS: &[&str] = &[
    "accountId",
    "name",
    "language",
    "category",
    "status",
    "appId",
    "message",
    "header",
    "footer",
    "buttons",
    "groupName",
    "active",
    "carousel",
    "limitedTimeOffer",
    "parameterFormat",
];

fn valid_template_name(name: &str) -> bool {
    name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Meta's language codes: `es`, `en_US`, `pt_BR`, `zh_CN`, `ha`, `fil`.
fn valid_language(code: &str) -> bool {
    let (lang, region) = code.split_once('_').unwrap_or((code, ""));
    (2..=3).contains(&lang.len())
        && lang.chars().all(|c| c.is_ascii_lowercase())
        && (region.is_empty()
            || (region.len() == 2 && region.chars().all(|c| c.is_ascii_uppercase())))
}

/// Reads and checks the template fields of an admin body (`accountId` aside), in the order the
/// errors have always come in; a `groupName` must name a group of `account_id`.
pub(crate) async fn template_fields(
    app: &App,
    account_id: &str,
    f: &Fields<'_>,
) -> Result<TemplateUpdate, AdminError> {
    let mut out = TemplateUpdate::default();
    if f.has("name") {
        let name = f.str("name")?;
        if !valid_template_name(name) {
            return Err(invalid(
                "name",
                "must be Meta's template name: lowercase letters, digits and underscores",
            ));
        }
        out.name = Some(name.to_string());
    }
    if f.has("language") {
        let language = f.str("language")?;
        if !valid_language(language) {
            return Err(invalid(
                "language",
                format!("'{language}' is not a language code such as es, en_US or pt_BR"),
            ));
        }
        out.language = Some(language.to_string());
    }
    out.category = f
        .opt_choice("category", TEMPLATE_CATEGORIES)?
        .map(str::to_string);
    out.status = f
        .opt_choice("status", TEMPLATE_STATUSES)?
        .map(str::to_string);
    if f.has("appId") {
        let app_id = f.opt_str("appId")?.unwrap_or_default().trim().to_string();
        no_control("appId", &app_id)?;
        out.app_id = Some(app_id);
    }
    if f.has("message") {
        out.message = Some(f.opt_str("message")?.unwrap_or_default().to_string());
    }
    if f.has("header") {
        out.header = Some(match f.raw("header") {
            None => None,
            Some(v) => {
                // Only the fields openapi.json lists (TemplateHeader is a closed object).
                const FIELDS: [&str; 5] = ["format", "text", "example", "sample", "defaultMedia"];
                if let Some(unknown) = v
                    .as_object()
                    .and_then(|o| o.keys().find(|k| !FIELDS.contains(&k.as_str())))
                {
                    return Err(invalid(
                        "header",
                        format!(
                            "header.{unknown} is not a field of a header ({})",
                            FIELDS.join(", ")
                        ),
                    ));
                }
                Some(Header::from_json(v).map_err(|m| invalid("header", m))?)
            }
        });
    }
    if f.has("footer") {
        out.footer = Some(
            f.opt_str("footer")?
                .map(str::to_string)
                .filter(|s| !s.is_empty()),
        );
    }
    if f.has("buttons") {
        out.buttons = Some(
            Button::list_from_json(f.raw("buttons").unwrap_or(&Value::Null))
                .map_err(|m| invalid("buttons", m))?,
        );
    }
    if f.has("groupName") {
        out.group_name = Some(
            match f
                .opt_str("groupName")?
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                None => None,
                Some(name) => {
                    if app.store.group_by_name(account_id, name).await?.is_none() {
                        return Err(invalid(
                            "groupName",
                            format!("the account has no group named '{name}'"),
                        ));
                    }
                    Some(name.to_string())
                }
            },
        );
    }
    out.active = f.opt_bool("active")?;
    if f.has("carousel") {
        out.carousel = Some(
            Card::list_from_json(f.raw("carousel").unwrap_or(&Value::Null))
                .map_err(|m| invalid("carousel", m))?,
        );
    }
    if f.has("limitedTimeOffer") {
        out.limited_time_offer = Some(match f.raw("limitedTimeOffer") {
            None | Some(Value::Null) => None,
            Some(v) => Some(Offer::from_json(v).map_err(|m| invalid("limitedTimeOffer", m))?),
        });
    }
    if f.has("parameterFormat") {
        out.parameter_format = Some(
            f.opt_choice("parameterFormat", &["NAMED", "POSITIONAL"])?
                .map(str::to_string),
        );
    }
    Ok(out)
}

/// Sets the given fields on `t` and checks the content they make.
pub(crate) fn apply_template_fields(t: &mut Template, f: TemplateUpdate) -> Result<(), AdminError> {
    if let Some(name) = f.name {
        t.name = name;
    }
    if let Some(language) = f.language {
        t.language = language;
    }
    if let Some(category) = f.category {
        t.category = category;
    }
    if let Some(status) = f.status {
        t.status = status;
    }
    if let Some(app_id) = f.app_id {
        t.app_id = app_id;
    }
    if let Some(message) = f.message {
        t.message = message;
    }
    if let Some(header) = f.header {
        t.header = header
            .map(serde_json::to_value)
            .transpose()
            .map_err(anyhow::Error::from)?;
    }
    if let Some(footer) = f.footer {
        t.footer = footer;
    }
    if let Some(buttons) = f.buttons {
        t.buttons = serde_json::to_value(buttons).map_err(anyhow::Error::from)?;
    }
    if let Some(group_name) = f.group_name {
        t.group_name = group_name;
    }
    if let Some(active) = f.active {
        t.active = active;
    }
    let mut extra: TemplateExtra =
        serde_json::from_value(t.extra.clone()).map_err(anyhow::Error::from)?;
    if let Some(carousel) = f.carousel {
        extra.carousel = carousel;
    }
    if let Some(offer) = f.limited_time_offer {
        extra.limited_time_offer = offer;
    }
    if let Some(format) = f.parameter_format {
        extra.parameter_format = format;
    }
    t.extra = serde_json::to_value(&extra).map_err(anyhow::Error::from)?;
    let content = TemplateContent {
        extra,
        header: t
            .header
            .as_ref()
            .map(|h| serde_json::from_value(h.clone()))
            .transpose()
            .map_err(anyhow::Error::from)?,
        body: t.message.clone(),
        footer: t.footer.clone(),
        buttons: serde_json::from_value(t.buttons.clone()).map_err(anyhow::Error::from)?,
    };
    content.validate().map_err(|m| {
        let field = m.split([' ', ':']).next().unwrap_or("message").to_string();
        AdminError::Invalid(FieldError::new(field, m))
    })?;
    Ok(())
}

/// Reads a template to create: `accountId` an account's, `name` and `language` given, the
/// other fields as [`template_fields`] reads them.
async fn template_create(app: &App, f: &Fields<'_>) -> Result<TemplateCreate, AdminError> {
    let account = existing_account(app, f).await?;
    f.str("name")?;
    f.str("language")?;
    let fields = template_fields(app, &account.id, f).await?;
    Ok(TemplateCreate {
        account_id: account.id,
        name: fields.name.unwrap_or_default(),
        language: fields.language.unwrap_or_default(),
        category: fields.category,
        status: fields.status,
        app_id: fields.app_id,
        message: fields.message,
        header: fields.header,
        footer: fields.footer,
        buttons: fields.buttons,
        group_name: fields.group_name,
        active: fields.active,
        carousel: fields.carousel,
        limited_time_offer: fields.limited_time_offer,
        parameter_format: fields.parameter_format,
    })
}

pub async fn create_template(app: &App, body: &Value) -> Result<TemplateView, AdminError> {
    let f = Fields::of(body)?;
    f.only(TEMPLATE_FIELDS)?;
    let (account_id, fields) = template_create(app, &f).await?.into_fields();
    let now = now_ms();
    let mut template = Template {
        id: new_id("tpl"),
        account_id,
        name: String::new(),
        language: String::new(),
        category: "UTILITY".into(),
        status: "APPROVED".into(),
        app_id: String::new(),
        message: String::new(),
        header: None,
        footer: None,
        buttons: Value::Array(vec![]),
        extra: Value::Object(Default::default()),
        group_name: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    apply_template_fields(&mut template, fields)?;
    app.store.insert_template(&template).await?;
    template_view(app, &template).await
}

pub(crate) async fn load_template(app: &App, id: &str) -> Result<Template, AdminError> {
    app.store
        .template(id)
        .await?
        .ok_or_else(|| AdminError::NotFound {
            kind: "template",
            id: id.into(),
        })
}

/// A template with its health, as every admin template answer shows it.
async fn template_view(
    app: &App,
    template: &crate::store::Template,
) -> Result<TemplateView, AdminError> {
    let healths = app.store.template_healths(&template.account_id).await?;
    Ok(views::template_with_health(
        template,
        healths.get(&template.id),
    ))
}

pub async fn get_template(app: &App, id: &str) -> Result<TemplateView, AdminError> {
    let template = load_template(app, id).await?;
    template_view(app, &template).await
}

pub async fn update_template(
    app: &App,
    id: &str,
    body: &Value,
) -> Result<TemplateView, AdminError> {
    let f = Fields::of(body)?;
    f.only(&TEMPLATE_FIELDS[1..])?;
    let mut template = load_template(app, id).await?;
    let fields = template_fields(app, &template.account_id, &f).await?;
    apply_template_fields(&mut template, fields)?;
    template.updated_at = now_ms();
    app.store.update_template(&template).await?;
    template_view(app, &template).await
}

/// Submits a template to WhatsApp through a channel (see `service::authoring`): stored
/// `PENDING` with Meta's id, followed to APPROVED/REJECTED by the status webhook and sync.
/// `create_template` still registers a template locally without Meta.
pub async fn submit_template(
    app: &App,
    channel_id: &str,
    body: &Value,
) -> Result<TemplateView, AdminError> {
    use super::authoring;
    let channel = load_channel(app, channel_id).await?;
    let draft = authoring::parse(app, &channel.account_id, body)
        .await
        .map_err(authoring::AuthorError::into_admin)?;
    let template = authoring::submit(app, &channel, draft)
        .await
        .map_err(authoring::AuthorError::into_admin)?;
    template_view(app, &template).await
}

/// Deletes a template: at Meta first when `at_meta` and it was submitted there, then locally
/// (status `DELETED`, inactive; messages keep referring to it).
pub async fn delete_template(app: &App, id: &str, at_meta: bool) -> Result<(), AdminError> {
    use super::authoring;
    let template = load_template(app, id).await?;
    authoring::delete(app, &template, at_meta)
        .await
        .map_err(authoring::AuthorError::into_admin)
}

pub async fn get_conversation(app: &App, id: &str) -> Result<Conversation, AdminError> {
    let c = app
        .store
        .conversation(id)
        .await?
        .ok_or_else(|| AdminError::NotFound {
            kind: "conversation",
            id: id.into(),
        })?;
    Ok(Conversation::from(&c))
}

pub async fn close_conversation(app: &App, id: &str) -> Result<Conversation, AdminError> {
    Ok(Conversation::from(&close(app, id).await?))
}

/// Closes a conversation by the operator (the admin and native APIs): the closed conversation.
pub async fn close(app: &App, id: &str) -> Result<crate::store::Conversation, AdminError> {
    let before = app.store.conversation(id).await?;
    let c = app
        .store
        .close_conversation(id, CloseReason::Operator, now_ms())
        .await?
        .ok_or_else(|| AdminError::NotFound {
            kind: "conversation",
            id: id.into(),
        })?;
    if before.is_some_and(|b| b.status != c.status) {
        app.publish(Event::ConversationStatus {
            conversation_id: c.id.clone(),
            status: c.status,
        });
    }
    Ok(c)
}

pub async fn get_message(app: &App, id: &str) -> Result<api::AdminMessage, AdminError> {
    let m = app
        .store
        .message(id)
        .await?
        .ok_or_else(|| AdminError::NotFound {
            kind: "message",
            id: id.into(),
        })?;
    Ok(api::AdminMessage::new(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_names_and_languages_follow_meta() {
        assert!(valid_template_name("order_update_2"));
        assert!(!valid_template_name("Order Update"));
        for ok in ["es", "en_US", "pt_BR", "fil"] {
            assert!(valid_language(ok), "{ok}");
        }
        for bad in ["", "e", "EN", "en-US", "en_us", "english"] {
            assert!(!valid_language(bad), "{bad}");
        }
    }
}
