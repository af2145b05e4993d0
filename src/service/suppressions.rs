//! Opt-outs: each account's suppression list, kept by the integrator (the native API), the
//! operator (admin API, CLI), inbound keywords and buttons ([`on_inbound`]) and Meta's 131050
//! ([`on_meta_opt_out`]). A MARKETING send to a number on it is refused
//! (`service::send::prepare`). Every change queues `contact.opted_out` / `contact.opted_in`
//! in its own transaction.

use serde_json::Value;

use super::admin::AdminError;
use super::input::{FieldError, Fields, describe};
use crate::api::events::{self as api, SuppressionCreate, SuppressionPage};
use crate::app::App;
use crate::domain::opt_out::{self, Intent, Reason};
use crate::domain::phone::PhoneNumber;
use crate::format_ms;
use crate::store::{Channel, OptKeywords, StoreError, Suppression, SuppressionRemoval, Template};

/// Longest free-text note kept on an entry.
pub const MAX_NOTE_CHARS: usize = 500;

/// An entry as the APIs show it. A stored reason that is not one is an error of the store.
pub fn view(s: &Suppression) -> Result<api::Suppression, StoreError> {
    let reason = Reason::parse(&s.reason).ok_or_else(|| {
        StoreError::Other(anyhow::anyhow!(
            "the suppression of '{}' has an unknown reason '{}'",
            s.phone_number,
            s.reason
        ))
    })?;
    Ok(api::Suppression {
        phone_number: s.phone_number.clone(),
        reason,
        note: s.note.clone(),
        automatic: s.automatic,
        channel_id: s.channel_id.clone().map(Into::into),
        created_at: format_ms(s.created_at),
    })
}

/// The cursor of an entry in a listing (opaque to callers).
pub fn cursor_of(s: &Suppression) -> String {
    super::views::cursor(s.created_at, &s.phone_number)
}

/// Reads `{"phoneNumber", "reason"}` of an add: the number, normalised and checked like a
/// send's recipient, and the optional free-text reason (kept as the entry's note).
pub fn parse_add(body: &Value) -> Result<SuppressionCreate, FieldError> {
    let f = Fields::of(body)?;
    f.only(&["phoneNumber", "reason"])?;
    let phone = match f.raw("phoneNumber") {
        None => {
            return Err(FieldError::new(
                "phoneNumber",
                "is required: the number, country code first, digits only",
            ));
        }
        Some(Value::String(s)) => parse_phone("phoneNumber", s)?,
        Some(v) => {
            return Err(FieldError::new(
                "phoneNumber",
                format!("must be a string, got {}", describe(v)),
            ));
        }
    };
    let note = f
        .opt_str("reason")?
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if let Some(n) = note {
        if n.chars().count() > MAX_NOTE_CHARS {
            return Err(FieldError::new(
                "reason",
                format!("must be at most {MAX_NOTE_CHARS} characters"),
            ));
        }
        if n.chars().any(char::is_control) {
            return Err(FieldError::new(
                "reason",
                "must not contain control characters",
            ));
        }
    }
    Ok(SuppressionCreate {
        phone_number: phone,
        reason: note.map(str::to_string),
    })
}

/// A phone number from a request (a body field or a path segment).
pub fn parse_phone(field: &str, raw: &str) -> Result<PhoneNumber, FieldError> {
    PhoneNumber::parse(raw.trim()).map_err(|e| FieldError::new(field, e.to_string()))
}

/// Whether MARKETING templates may not go to `phone` for this account.
pub async fn is_suppressed(app: &App, account_id: &str, phone: &str) -> Result<bool, StoreError> {
    Ok(app.store.suppression(account_id, phone).await?.is_some())
}

/// One page of the account's list, oldest first.
pub async fn list(
    app: &App,
    account_id: &str,
    after: Option<(i64, String)>,
    limit: u32,
) -> Result<SuppressionPage, StoreError> {
    let entries = app
        .store
        .list_suppressions(account_id, after, limit)
        .await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(cursor_of))
        .flatten();
    Ok(SuppressionPage {
        data: entries.iter().map(view).collect::<Result<_, _>>()?,
        next_cursor: next,
    })
}

/// What an add did.
#[derive(Debug, Clone)]
pub enum Added {
    /// The number was added (and `contact.opted_out` queued).
    New(Suppression),
    /// The number was already on the list: its entry, unchanged.
    Existing(Suppression),
}

impl Added {
    pub fn entry(&self) -> &Suppression {
        match self {
            Added::New(s) | Added::Existing(s) => s,
        }
    }
}

/// Adds `phone` to the account's list.
pub async fn add(
    app: &App,
    account_id: &str,
    phone: &str,
    reason: Reason,
    note: Option<String>,
    channel_id: Option<&str>,
) -> Result<Added, StoreError> {
    let entry = Suppression {
        account_id: account_id.to_string(),
        phone_number: phone.to_string(),
        reason: reason.as_str().to_string(),
        note,
        automatic: reason.is_automatic(),
        channel_id: channel_id.map(str::to_string),
        created_at: app.clock.now_ms(),
    };
    Ok(match app.store.add_suppression(&entry).await? {
        Some(existing) => Added::Existing(existing),
        None => {
            tracing::info!(
                account_id,
                reason = reason.as_str(),
                "number added to the suppression list"
            );
            Added::New(entry)
        }
    })
}

/// Removes `phone` from the account's list by the API (any entry); the removed entry.
pub async fn remove(
    app: &App,
    account_id: &str,
    phone: &str,
) -> Result<Option<Suppression>, StoreError> {
    let removal = SuppressionRemoval {
        reason: Reason::Api.as_str().to_string(),
        only_automatic: false,
        channel_id: None,
        now: app.clock.now_ms(),
    };
    app.store
        .remove_suppression(account_id, phone, &removal)
        .await
}

/// The account's keyword lists in effect (its own, else the defaults); `None` when there is
/// no such account.
pub async fn keywords(app: &App, account_id: &str) -> Result<Option<Keywords>, StoreError> {
    Ok(app
        .store
        .opt_keywords(account_id)
        .await?
        .map(Keywords::effective))
}

/// Keyword lists in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keywords {
    pub opt_out: Vec<String>,
    pub opt_in: Vec<String>,
}

impl Keywords {
    fn effective(stored: OptKeywords) -> Self {
        let defaults = |d: &[&str]| d.iter().map(|k| k.to_string()).collect();
        Keywords {
            opt_out: stored
                .opt_out
                .unwrap_or_else(|| defaults(opt_out::DEFAULT_OPT_OUT)),
            opt_in: stored
                .opt_in
                .unwrap_or_else(|| defaults(opt_out::DEFAULT_OPT_IN)),
        }
    }
}

/// What an inbound message did to the suppression list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundEffect {
    /// Nothing: not a keyword or an opt-out button (or already in that state).
    None,
    /// The number was added, for this reason.
    OptedOut(Reason),
    /// The number's automatic entry was removed.
    OptedIn,
}

/// Applies an inbound message from `phone` on `channel` to the account's list: an opt-out
/// keyword (`text`) adds the number (`keyword`); a button reply (`(payload, text)`) to a
/// MARKETING template (`replied_template`) that is Meta's "Stop promotions" or an opt-out
/// keyword adds it (`button`); an opt-in keyword removes an automatic entry only (an `api`
/// entry stays). Called by the inbound webhook path for each message.
pub async fn on_inbound(
    app: &App,
    channel: &Channel,
    phone: &str,
    text: Option<&str>,
    button: Option<(&str, &str)>,
    replied_template: Option<&Template>,
) -> Result<InboundEffect, StoreError> {
    if text.is_none() && button.is_none() {
        return Ok(InboundEffect::None);
    }
    // Stored as sends store recipients (Meta's `from` is already digits only).
    let normalized = PhoneNumber::parse(phone.trim());
    let phone = normalized.as_ref().map_or(phone, |p| p.as_str());
    let Some(words) = keywords(app, &channel.account_id).await? else {
        return Ok(InboundEffect::None);
    };
    let marketing = replied_template.is_some_and(|t| t.category.eq_ignore_ascii_case("MARKETING"));
    let Some(intent) = opt_out::intent(text, button, marketing, &words.opt_out, &words.opt_in)
    else {
        return Ok(InboundEffect::None);
    };
    match intent {
        Intent::OptOut(reason) => {
            let note = match reason {
                Reason::Button => button.map(|(payload, label)| {
                    if label.trim().is_empty() {
                        payload.to_string()
                    } else {
                        label.to_string()
                    }
                }),
                _ => text.map(str::to_string),
            }
            .map(|n| n.chars().take(MAX_NOTE_CHARS).collect::<String>());
            let added = add(
                app,
                &channel.account_id,
                phone,
                reason,
                note,
                Some(&channel.id),
            )
            .await?;
            Ok(match added {
                Added::New(_) => InboundEffect::OptedOut(reason),
                Added::Existing(_) => InboundEffect::None,
            })
        }
        Intent::OptIn => {
            let removal = SuppressionRemoval {
                reason: Reason::Keyword.as_str().to_string(),
                only_automatic: true,
                channel_id: Some(channel.id.clone()),
                now: app.clock.now_ms(),
            };
            let removed = app
                .store
                .remove_suppression(&channel.account_id, phone, &removal)
                .await?;
            Ok(if removed.is_some() {
                InboundEffect::OptedIn
            } else {
                InboundEffect::None
            })
        }
    }
}

/// Meta refused a send to `phone` with 131050 (the user stopped marketing messages from the
/// business): the number joins the account's list (`meta_131050`).
pub async fn on_meta_opt_out(
    app: &App,
    account_id: &str,
    channel_id: &str,
    phone: &str,
    details: Option<&str>,
) -> Result<Added, StoreError> {
    add(
        app,
        account_id,
        phone,
        Reason::Meta131050,
        details.map(|d| d.chars().take(MAX_NOTE_CHARS).collect()),
        Some(channel_id),
    )
    .await
}

/// Reads an account update's `optOutKeywords` / `optInKeywords`: `Some(None)` for null (back
/// to the defaults), `Some(Some(list))` for a list, `None` when absent.
pub fn parse_keyword_field(
    f: &Fields,
    key: &str,
) -> Result<Option<Option<Vec<String>>>, FieldError> {
    if !f.has(key) {
        return Ok(None);
    }
    match f.opt_str_list(key)? {
        None => Ok(Some(None)),
        Some(list) => opt_out::check_keywords(&list)
            .map(|l| Some(Some(l)))
            .map_err(|m| FieldError::new(key, m)),
    }
}

// --- Operator (`plantilla admin suppressions …`) -------------------------------------------

async fn need_account(app: &App, account_id: &str) -> Result<(), AdminError> {
    match app.store.account(account_id).await? {
        Some(_) => Ok(()),
        None => Err(AdminError::NotFound {
            kind: "account",
            id: account_id.into(),
        }),
    }
}

/// `suppressions list <account> [limit:=N] [cursor=…]`: one page of the list.
pub async fn admin_list(
    app: &App,
    account_id: &str,
    body: &Value,
) -> Result<SuppressionPage, AdminError> {
    need_account(app, account_id).await?;
    let f = Fields::of(body)?;
    f.only(&["limit", "cursor"])?;
    let limit = f.opt_int("limit", 1, 200)?.unwrap_or(50);
    let after = match f.opt_str("cursor")? {
        None => None,
        Some(raw) => Some(
            super::views::parse_cursor(raw)
                .ok_or_else(|| FieldError::new("cursor", "is not a cursor this API returned"))?,
        ),
    };
    Ok(list(app, account_id, after, u32::try_from(limit).unwrap_or(50)).await?)
}

/// `suppressions add <account> phoneNumber=… [reason=…]`: adds the number (`api`).
pub async fn admin_add(
    app: &App,
    account_id: &str,
    body: &Value,
) -> Result<api::SuppressionAdded, AdminError> {
    need_account(app, account_id).await?;
    let input = parse_add(body)?;
    let phone = input.phone_number.as_str();
    let added = add(app, account_id, phone, Reason::Api, input.reason, None).await?;
    Ok(api::SuppressionAdded {
        entry: view(added.entry())?,
        created: matches!(added, Added::New(_)),
    })
}

/// `suppressions remove <account> phoneNumber=…`: removes the number's entry.
pub async fn admin_remove(
    app: &App,
    account_id: &str,
    body: &Value,
) -> Result<api::SuppressionRemoved, AdminError> {
    need_account(app, account_id).await?;
    let f = Fields::of(body)?;
    f.only(&["phoneNumber"])?;
    let phone = parse_phone("phoneNumber", f.str("phoneNumber")?)?;
    match remove(app, account_id, phone.as_str()).await? {
        Some(removed) => Ok(api::SuppressionRemoved {
            removed: view(&removed)?,
        }),
        None => Err(AdminError::NotFound {
            kind: "suppression for number",
            id: phone.as_str().to_string(),
        }),
    }
}
