//! Where a webhook is applied: Meta's payloads (statuses, inbound messages, template status
//! updates) turned into changes of messages, conversations, contacts and templates.
//!
//! Payload reference: developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components
//! (`entry[].changes[].value` with `metadata`, `statuses`, `messages`, `contacts`) and
//! `message_template_status_update` (whose entry `id` is the WhatsApp Business Account).

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

pub mod fast;
pub mod messages;
pub mod statuses;

use crate::app::App;
use crate::domain::inbound::{InboundContent, content_of};
use crate::domain::status::MessageStatus;
use crate::now_ms;
use crate::store::{
    Channel, ChannelQualityChange, Pricing, ProviderError, StatusApplied, StatusUpdate,
    StoreResult, TemplateHealthChange,
};
use statuses as status;

/// Whether `header` (`X-Hub-Signature-256: sha256=<hex>`) is the HMAC-SHA256 of `body` with
/// `secret`. The comparison is constant-time.
pub fn signature_valid(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    if secret.is_empty() {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// One thing a webhook reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Status {
        phone_number_id: String,
        update: StatusUpdateData,
        /// The recipient's business-scoped user id (`recipient_user_id`), when given; with
        /// `recipient_id` (the number) possibly absent.
        recipient_user_id: Option<String>,
    },
    Inbound {
        phone_number_id: String,
        message: Box<InboundReport>,
    },
    /// `message_template_status_update`, `template_category_update`,
    /// `message_template_quality_update`.
    TemplateHealth {
        waba_id: String,
        template_id: String,
        change: TemplateHealthChange,
    },
    /// `phone_number_quality_update` and `account_update`: the number's quality and its
    /// (since Oct 2025 the business portfolio's) messaging limit, unique users of new
    /// business-initiated conversations per rolling 24 h (`Some(None)`: unlimited).
    NumberQuality {
        waba_id: String,
        change: ChannelQualityChange,
    },
}

/// A messaging limit as Meta writes it: a tier name (`TIER_2K`), a plain number (`2000`,
/// as a string or a JSON number) or `UNLIMITED`. `Some(None)`: unlimited.
fn messaging_limit_of(v: &Value) -> Option<Option<i64>> {
    match v {
        Value::Number(n) => n.as_i64().filter(|n| *n > 0).map(Some),
        Value::String(s) => messaging_limit_of_tier(s),
        _ => None,
    }
}

/// Meta's times: Unix seconds as a number or a string, or an RFC 3339 / `YYYY-MM-DD` text.
fn time_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().map(|s| s.saturating_mul(1000)),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map(|s| s.saturating_mul(1000))
            .ok()
            .or_else(|| {
                chrono::DateTime::parse_from_rfc3339(s.trim())
                    .map(|t| t.timestamp_millis())
                    .ok()
                    .or_else(|| {
                        chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                            .ok()
                            .and_then(|d| d.and_hms_opt(0, 0, 0))
                            .map(|t| t.and_utc().timestamp_millis())
                    })
            }),
        _ => None,
    }
}

/// A status's `pricing` object, when it has one.
fn pricing_of(v: &Value) -> Option<Pricing> {
    let p = Pricing {
        pricing_type: text(&v["type"]),
        category: text(&v["category"]),
        pricing_model: text(&v["pricing_model"]),
        billable: v["billable"].as_bool(),
    };
    (p != Pricing::default()).then_some(p)
}

/// A messaging-limit tier as Meta names it (`TIER_250`, `TIER_2K`, `TIER_UNLIMITED`…):
/// `Some(None)` is unlimited, `None` a name not known.
pub fn messaging_limit_of_tier(tier: &str) -> Option<Option<i64>> {
    let upper = tier.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("TIER_").unwrap_or(&upper);
    if name == "UNLIMITED" {
        return Some(None);
    }
    let (digits, factor) = match name.strip_suffix('K') {
        Some(d) => (d, 1000),
        None => (name, 1),
    };
    digits
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(|n| Some(n * factor))
}

/// An inbound message as reported. The sender is named by `from` (the number), by
/// `from_user_id` (the business-scoped user id), or both.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundReport {
    pub wamid: String,
    pub from: Option<String>,
    pub user_id: Option<String>,
    /// `contacts[].profile.name` and `.username` of the sender.
    pub name: Option<String>,
    pub username: Option<String>,
    pub content: InboundContent,
    /// `context.id`: the wamid of the message replied to (or whose button was clicked).
    pub context_id: Option<String>,
    /// The message object as received.
    pub raw: Value,
    pub at: i64,
}

/// A status as reported (a `StatusUpdate` without store types, so parsing stays pure).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdateData {
    pub wamid: String,
    pub callback: Option<String>,
    pub status: MessageStatus,
    pub at: i64,
    pub error: Option<(i64, String, Option<String>)>,
    pub pricing_category: Option<String>,
    pub pricing: Option<Pricing>,
}

fn seconds_to_ms(v: &Value) -> i64 {
    let secs = match v {
        Value::String(s) => s.parse::<i64>().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    text_secs_to_ms(secs)
}

/// Unix seconds as milliseconds; without them, now.
fn text_secs_to_ms(secs: Option<i64>) -> i64 {
    secs.map(|s| s.saturating_mul(1000)).unwrap_or_else(now_ms)
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// One message of `messages[]` with its sender's entry of `contacts[]` (matched by `wa_id`
/// or `user_id`; the only entry when there is one). `None` without a wamid or a sender.
fn inbound_report(value: &Value, m: &Value) -> Option<InboundReport> {
    let wamid = text(&m["id"]).filter(|w| !w.is_empty())?;
    let from = text(&m["from"]).filter(|f| !f.is_empty());
    let contacts: Vec<&Value> = value["contacts"].as_array().into_iter().flatten().collect();
    let contact = contacts
        .iter()
        .find(|c| {
            from.as_deref()
                .is_some_and(|f| c["wa_id"].as_str() == Some(f))
                || text(&m["from_user_id"])
                    .is_some_and(|u| c["user_id"].as_str() == Some(u.as_str()))
        })
        .or(if contacts.len() == 1 {
            contacts.first()
        } else {
            None
        })
        .copied();
    let user_id = text(&m["from_user_id"])
        .or_else(|| contact.and_then(|c| text(&c["user_id"])))
        .filter(|u| !u.is_empty());
    let from = from.or_else(|| {
        contact
            .and_then(|c| text(&c["wa_id"]))
            .filter(|f| !f.is_empty())
    });
    if from.is_none() && user_id.is_none() {
        return None;
    }
    Some(InboundReport {
        wamid,
        from,
        user_id,
        name: contact.and_then(|c| text(&c["profile"]["name"])),
        username: contact.and_then(|c| text(&c["profile"]["username"])),
        content: content_of(m),
        context_id: text(&m["context"]["id"]).filter(|c| !c.is_empty()),
        raw: m.clone(),
        at: seconds_to_ms(&m["timestamp"]),
    })
}

/// Reads every report of a payload; anything unrecognised is skipped.
pub fn parse(payload: &Value) -> Vec<Report> {
    let mut reports = Vec::new();
    for entry in payload["entry"].as_array().into_iter().flatten() {
        for change in entry["changes"].as_array().into_iter().flatten() {
            let value = &change["value"];
            match change["field"].as_str() {
                Some("messages") => {
                    let Some(pnid) = text(&value["metadata"]["phone_number_id"]) else {
                        continue;
                    };
                    for s in value["statuses"].as_array().into_iter().flatten() {
                        let status = match s["status"].as_str() {
                            Some("sent") => MessageStatus::Sent,
                            Some("delivered") => MessageStatus::Delivered,
                            Some("read") => MessageStatus::Read,
                            Some("failed") => MessageStatus::Failed,
                            _ => continue,
                        };
                        let Some(wamid) = text(&s["id"]) else {
                            continue;
                        };
                        let error = s["errors"].get(0).map(|e| {
                            (
                                e["code"].as_i64().unwrap_or(0),
                                text(&e["title"]).unwrap_or_default(),
                                text(&e["error_data"]["details"]).or_else(|| text(&e["message"])),
                            )
                        });
                        reports.push(Report::Status {
                            phone_number_id: pnid.clone(),
                            update: StatusUpdateData {
                                wamid,
                                callback: text(&s["biz_opaque_callback_data"]),
                                status,
                                at: seconds_to_ms(&s["timestamp"]),
                                error,
                                pricing_category: text(&s["pricing"]["category"]),
                                pricing: pricing_of(&s["pricing"]),
                            },
                            recipient_user_id: text(&s["recipient_user_id"])
                                .filter(|u| !u.is_empty()),
                        });
                    }
                    for m in value["messages"].as_array().into_iter().flatten() {
                        if let Some(message) = inbound_report(value, m) {
                            reports.push(Report::Inbound {
                                phone_number_id: pnid.clone(),
                                message: Box::new(message),
                            });
                        }
                    }
                }
                Some(
                    field @ ("message_template_status_update"
                    | "template_category_update"
                    | "message_template_quality_update"),
                ) => {
                    let template_id = match &value["message_template_id"] {
                        Value::Number(n) => Some(n.to_string()),
                        Value::String(s) => Some(s.clone()),
                        _ => None,
                    };
                    let change = match field {
                        "message_template_status_update" => {
                            text(&value["event"]).map(|event| TemplateHealthChange::Status {
                                event,
                                reason: text(&value["reason"])
                                    .filter(|r| !r.is_empty() && r != "NONE"),
                                category: text(&value["message_template_category"]),
                                disable_date: time_of(&value["disable_info"]["disable_date"]),
                                other_info: value["other_info"]
                                    .is_object()
                                    .then(|| value["other_info"].clone()),
                            })
                        }
                        // An advance notice names the category the template will get; a
                        // change names the one it had.
                        "template_category_update" => match text(&value["correct_category"]) {
                            Some(correct) => Some(TemplateHealthChange::CategoryNotice {
                                correct,
                                effective_at: time_of(&value["category_update_timestamp"]),
                            }),
                            None => text(&value["new_category"]).map(|new| {
                                TemplateHealthChange::Category {
                                    previous: text(&value["previous_category"]),
                                    new,
                                }
                            }),
                        },
                        _ => text(&value["new_quality_score"]).map(|new| {
                            TemplateHealthChange::Quality {
                                previous: text(&value["previous_quality_score"]),
                                new,
                            }
                        }),
                    };
                    if let (Some(waba_id), Some(template_id), Some(change)) =
                        (text(&entry["id"]), template_id, change)
                    {
                        reports.push(Report::TemplateHealth {
                            waba_id,
                            template_id,
                            change,
                        });
                    }
                }
                Some(field @ ("phone_number_quality_update" | "account_update")) => {
                    // The current fields first, then the deprecated ones.
                    let limit = [
                        "max_daily_conversations_per_business",
                        "whatsapp_business_manager_messaging_limit",
                        "messaging_limit_tier",
                        "current_limit",
                    ]
                    .iter()
                    .find_map(|k| messaging_limit_of(&value[*k]));
                    let event = text(&value["event"]);
                    // A quality event always tells something; an account update only with a
                    // limit.
                    let tells = limit.is_some()
                        || (field == "phone_number_quality_update" && event.is_some());
                    if let (Some(waba_id), true) = (text(&entry["id"]), tells) {
                        reports.push(Report::NumberQuality {
                            waba_id,
                            change: ChannelQualityChange {
                                event,
                                display_phone_number: text(&value["display_phone_number"]),
                                quality_rating: text(&value["quality_rating"])
                                    .or_else(|| text(&value["new_quality_score"])),
                                limit,
                                learn_display: false,
                            },
                        });
                    }
                }
                _ => {}
            }
        }
    }
    reports
}

pub use crate::store::health::template_status_of_event;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub statuses: usize,
    pub kept_for_later: usize,
    pub inbound: usize,
    /// Inbound messages seen before (Meta retried the webhook): not stored again.
    pub duplicates: usize,
    pub templates: usize,
    pub limits: usize,
    pub ignored: usize,
}

/// Applies a verified payload. `scope` is the channel of a per-channel endpoint: reports for
/// other numbers are ignored there.
///
/// Reports are handled in their order. Statuses that follow one another are applied together
/// (`Store::apply_statuses`, one commit), then followed up one by one as when each was applied
/// alone; they are applied before any other report, or a status that may need more than the
/// store (a marketing decline), is handled, and before an error is returned.
pub async fn apply(app: &App, scope: Option<&Channel>, payload: &Value) -> StoreResult<Applied> {
    apply_reports(app, scope, parse(payload)).await
}

/// [`apply`] of a payload's reports, as [`parse`] (or [`fast::statuses`]) read them.
pub async fn apply_reports(
    app: &App,
    scope: Option<&Channel>,
    reports: Vec<Report>,
) -> StoreResult<Applied> {
    let mut applied = Applied::default();
    let mut statuses = Vec::new();
    let mut channels = StatusChannels::default();
    for report in reports {
        if let Err(e) = apply_report(
            app,
            scope,
            report,
            &mut channels,
            &mut statuses,
            &mut applied,
        )
        .await
        {
            // The statuses read before would have been applied one by one already.
            apply_statuses(app, &mut statuses, &mut applied).await?;
            return Err(e);
        }
    }
    apply_statuses(app, &mut statuses, &mut applied).await?;
    Ok(applied)
}

/// A status read from a webhook, for its channel, with the recipient's business-scoped user
/// id when given.
type ReadStatus = (StatusUpdate, Option<String>);

/// Applies the statuses waiting in `statuses` (emptied) in one go, then follows each up in
/// order. If the store cannot apply them together (it applied none: a PostgreSQL deadlock, a
/// failing write), they are applied one by one as they always were.
async fn apply_statuses(
    app: &App,
    statuses: &mut Vec<ReadStatus>,
    applied: &mut Applied,
) -> StoreResult<()> {
    if statuses.is_empty() {
        return Ok(());
    }
    let (updates, user_ids): (Vec<StatusUpdate>, Vec<Option<String>>) =
        std::mem::take(statuses).into_iter().unzip();
    let results = match app.store.apply_statuses(&updates).await {
        Ok(results) => results,
        Err(e) => {
            tracing::warn!(
                error = %e,
                statuses = updates.len(),
                "statuses applied one by one: applying them together failed"
            );
            for (update, user_id) in updates.iter().zip(&user_ids) {
                let result = status::apply(app, update).await?;
                status_applied(app, update, user_id.as_deref(), result, applied).await?;
            }
            return Ok(());
        }
    };
    if results.len() != updates.len() {
        return Err(anyhow::anyhow!(
            "the store answered {} of {} statuses",
            results.len(),
            updates.len()
        )
        .into());
    }
    // All of them are applied: each is followed up even if one of them fails, and the first
    // failure is returned.
    let mut first_error = None;
    for ((update, user_id), result) in updates.iter().zip(&user_ids).zip(results) {
        status::followed_up(app, update, &result).await;
        if let Err(e) = status_applied(app, update, user_id.as_deref(), result, applied).await {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// What the webhook does with a status once applied: the lag, the recipient's user id, a
/// status for a message not known (yet) kept for later; counted in `applied`.
async fn status_applied(
    app: &App,
    update: &StatusUpdate,
    recipient_user_id: Option<&str>,
    result: StatusApplied,
    applied: &mut Applied,
) -> StoreResult<()> {
    match result {
        StatusApplied::Applied { message_id, .. } => {
            app.metrics.webhook_lag(now_ms() - update.at);
            applied.statuses += 1;
            if let Some(user_id) = recipient_user_id {
                messages::link_user_id(app, &message_id, user_id).await?;
            }
        }
        StatusApplied::UnknownMessage => {
            // Expired here, where the table grows: a cheap indexed delete, and
            // no kept status outlives its TTL by more than the next one's wait.
            let now = now_ms();
            let ttl = i64::try_from(app.config.pending_status_ttl_ms).unwrap_or(i64::MAX);
            app.store
                .expire_pending_statuses(now.saturating_sub(ttl))
                .await?;
            let known = app.store.store_pending_status(update, now).await?;
            if known.is_empty() {
                applied.kept_for_later += 1;
            } else {
                // The send's response recorded the wamid after the lookup and took the
                // message's kept statuses before this one was kept: the store gave it back,
                // with any other status kept for the message, to apply now.
                for kept in &known {
                    if let StatusApplied::Applied { .. } = status::apply(app, kept).await? {
                        applied.statuses += 1;
                    }
                }
            }
        }
        // Another channel's message: never applied, never kept.
        StatusApplied::OtherChannel => applied.ignored += 1,
    }
    Ok(())
}

/// Handles one report: a status is read into `statuses` to be applied with the ones that
/// follow it; anything else first has the statuses before it applied.
async fn apply_report(
    app: &App,
    scope: Option<&Channel>,
    report: Report,
    channels: &mut StatusChannels,
    statuses: &mut Vec<ReadStatus>,
    applied: &mut Applied,
) -> StoreResult<()> {
    if !matches!(report, Report::Status { .. }) {
        apply_statuses(app, statuses, applied).await?;
    }
    match report {
        Report::Status {
            phone_number_id,
            update,
            recipient_user_id,
        } => {
            let Some(channel_id) = channels.id(app, scope, phone_number_id).await? else {
                applied.ignored += 1;
                return Ok(());
            };
            let update = StatusUpdate {
                provider_message_id: Some(update.wamid),
                message_id: update.callback,
                status: update.status,
                at: update.at,
                error: update.error.map(|(code, title, details)| ProviderError {
                    code,
                    title,
                    details,
                }),
                pricing_category: update.pricing_category,
                pricing: update.pricing,
                channel_id: Some(channel_id),
            };
            if status::store_alone_applies(&update) {
                statuses.push((update, recipient_user_id));
            } else {
                apply_statuses(app, statuses, applied).await?;
                let result = status::apply(app, &update).await?;
                status_applied(app, &update, recipient_user_id.as_deref(), result, applied).await?;
            }
        }
        Report::Inbound {
            phone_number_id,
            message,
        } => match channel_for(app, scope, &phone_number_id).await? {
            Some(channel) => {
                if messages::record(app, &channel, &message).await? {
                    applied.inbound += 1;
                } else {
                    applied.duplicates += 1;
                }
            }
            None => applied.ignored += 1,
        },
        Report::NumberQuality { waba_id, change } => {
            let channels = match scope {
                _ if waba_id.trim().is_empty() => vec![],
                Some(c) if c.waba_id == waba_id => vec![c.clone()],
                Some(_) => vec![],
                None => app.store.channels_by_waba(&waba_id).await?,
            };
            let (channels, learn_display) =
                numbers_named(app, channels, change.display_phone_number.as_deref()).await?;
            if channels.is_empty() {
                applied.ignored += 1;
            }
            let change = ChannelQualityChange {
                learn_display,
                ..change
            };
            for channel in channels {
                app.store
                    .apply_channel_quality(&channel.id, &change, now_ms())
                    .await?;
                applied.limits += 1;
            }
            app.wake_dispatcher();
        }
        Report::TemplateHealth {
            waba_id,
            template_id,
            change,
        } => {
            let channels = match scope {
                // An empty account id names no account: it matches nothing.
                _ if waba_id.trim().is_empty() => vec![],
                Some(c) if c.waba_id == waba_id => vec![c.clone()],
                Some(_) => vec![],
                None => app.store.channels_by_waba(&waba_id).await?,
            };
            let accounts: BTreeSet<String> = channels.into_iter().map(|c| c.account_id).collect();
            let mut found = false;
            for account_id in accounts {
                if let Some(t) = app
                    .store
                    .template_by_app_id(&account_id, &template_id)
                    .await?
                {
                    // Queues the template's events when something moves.
                    app.store
                        .apply_template_health(&t.id, &change, now_ms())
                        .await?;
                    applied.templates += 1;
                    found = true;
                }
            }
            if !found {
                applied.ignored += 1;
            }
        }
    }
    Ok(())
}

/// Of a WABA's `channels`, the ones a report about `display` (Meta's display number) is for:
/// the channel known to have that number; else the only channel of the WABA (whose number it
/// then learns: `true`); else every channel whose number is not known yet. Without a display
/// number, all of them.
async fn numbers_named(
    app: &App,
    channels: Vec<Channel>,
    display: Option<&str>,
) -> StoreResult<(Vec<Channel>, bool)> {
    let Some(display) = display.map(str::trim).filter(|d| !d.is_empty()) else {
        return Ok((channels, false));
    };
    if channels.len() <= 1 {
        return Ok((channels, true));
    }
    let known = app.store.channel_qualities().await?;
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let display = digits(display);
    let number_of = |c: &Channel| {
        known
            .get(&c.id)
            .and_then(|q| q.display_phone_number.as_deref())
            .map(digits)
    };
    let exact: Vec<Channel> = channels
        .iter()
        .filter(|c| number_of(c).as_deref() == Some(display.as_str()))
        .cloned()
        .collect();
    if !exact.is_empty() {
        return Ok((exact, true));
    }
    Ok((
        channels
            .into_iter()
            .filter(|c| number_of(c).is_none())
            .collect(),
        false,
    ))
}

/// The channel of the last phone number id a webhook's statuses named: Meta batches a
/// number's statuses together, so one lookup serves a run of them instead of a copy of the
/// whole channel per status.
#[derive(Default)]
struct StatusChannels {
    last: Option<(String, Option<String>)>,
}

impl StatusChannels {
    /// The id of the channel `phone_number_id` names (as [`channel_for`] finds it).
    async fn id(
        &mut self,
        app: &App,
        scope: Option<&Channel>,
        phone_number_id: String,
    ) -> StoreResult<Option<String>> {
        if let Some((number, id)) = &self.last
            && *number == phone_number_id
        {
            return Ok(id.clone());
        }
        let id = channel_for(app, scope, &phone_number_id)
            .await?
            .map(|c| c.id);
        self.last = Some((phone_number_id, id.clone()));
        Ok(id)
    }
}

async fn channel_for(
    app: &App,
    scope: Option<&Channel>,
    phone_number_id: &str,
) -> StoreResult<Option<Channel>> {
    // An empty id names no number (sandbox channels have none): it matches nothing.
    if phone_number_id.trim().is_empty() {
        return Ok(None);
    }
    match scope {
        Some(c) if c.phone_number_id == phone_number_id => Ok(Some(c.clone())),
        Some(_) => Ok(None),
        None => app.store.channel_by_phone_number_id(phone_number_id).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_are_checked_against_the_raw_body() {
        let body = br#"{"entry":[]}"#;
        let good = sign("s3cret", body);
        assert!(signature_valid("s3cret", body, Some(&good)));
        assert!(!signature_valid("other", body, Some(&good)));
        assert!(!signature_valid("s3cret", br#"{"entry":[1]}"#, Some(&good)));
        assert!(!signature_valid("s3cret", body, None));
        assert!(!signature_valid("s3cret", body, Some("sha256=zz")));
        assert!(!signature_valid(
            "s3cret",
            body,
            Some(good.trim_start_matches("sha256="))
        ));
        assert!(
            !signature_valid("", body, Some(&sign("", body))),
            "no secret, no trust"
        );
    }

    #[test]
    fn statuses_inbound_and_template_events_are_read() {
        let payload = json!({"object": "whatsapp_business_account", "entry": [
            {"id": "WABA1", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001", "phone_number_id": "PN1"},
                "contacts": [{"profile": {"name": "Ana"}, "wa_id": "50755667788"}],
                "messages": [{"from": "50755667788", "id": "wamid.in", "timestamp": "1700000000",
                              "type": "text", "text": {"body": "hola"}}],
                "statuses": [
                    {"id": "wamid.1", "status": "delivered", "timestamp": "1700000001",
                     "recipient_id": "50755667788", "biz_opaque_callback_data": "msg_1",
                     "pricing": {"billable": true, "pricing_model": "CBP", "category": "utility"}},
                    {"id": "wamid.2", "status": "failed", "timestamp": "1700000002",
                     "errors": [{"code": 131026, "title": "Message undeliverable",
                                 "error_data": {"details": "not on WhatsApp"}}]},
                    {"id": "wamid.3", "status": "deleted", "timestamp": "1700000003"}
                ]}}]},
            {"id": "WABA1", "changes": [{"field": "message_template_status_update", "value": {
                "event": "PAUSED", "message_template_id": 12345,
                "message_template_name": "order_update", "message_template_language": "es"}}]}
        ]});
        let reports = parse(&payload);
        assert_eq!(reports.len(), 4, "{reports:?}");
        assert_eq!(
            reports[0],
            Report::Status {
                phone_number_id: "PN1".into(),
                update: StatusUpdateData {
                    wamid: "wamid.1".into(),
                    callback: Some("msg_1".into()),
                    status: MessageStatus::Delivered,
                    at: 1_700_000_001_000,
                    error: None,
                    pricing_category: Some("utility".into()),
                    pricing: Some(Pricing {
                        pricing_type: None,
                        category: Some("utility".into()),
                        pricing_model: Some("CBP".into()),
                        billable: Some(true),
                    }),
                },
                recipient_user_id: None,
            }
        );
        let Report::Status { update, .. } = &reports[1] else {
            panic!()
        };
        assert_eq!(
            update.error,
            Some((
                131026,
                "Message undeliverable".into(),
                Some("not on WhatsApp".into())
            ))
        );
        let Report::Inbound {
            phone_number_id,
            message,
        } = &reports[2]
        else {
            panic!("{:?}", reports[2])
        };
        assert_eq!(phone_number_id, "PN1");
        assert_eq!(message.wamid, "wamid.in");
        assert_eq!(message.from.as_deref(), Some("50755667788"));
        assert_eq!(message.name.as_deref(), Some("Ana"));
        assert_eq!(message.at, 1_700_000_000_000);
        assert_eq!(message.content.text.as_deref(), Some("hola"));
        assert_eq!(message.user_id, None);
        assert_eq!(
            reports[3],
            Report::TemplateHealth {
                waba_id: "WABA1".into(),
                template_id: "12345".into(),
                change: TemplateHealthChange::Status {
                    event: "PAUSED".into(),
                    reason: None,
                    category: None,
                    disable_date: None,
                    other_info: None,
                }
            }
        );
    }

    /// Business-scoped user ids: an inbound with `from_user_id` and no `from`, its contact
    /// with `user_id` and no `wa_id`; a status with `recipient_user_id` and no `recipient_id`.
    #[test]
    fn user_ids_identify_senders_and_recipients() {
        let payload = json!({"entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": {
            "metadata": {"phone_number_id": "PN1"},
            "contacts": [{"profile": {"name": "Bob", "username": "@bob"},
                          "user_id": "US.13491208655302741918"}],
            "messages": [{"from_user_id": "US.13491208655302741918", "id": "wamid.u1",
                          "timestamp": "1700000000", "type": "button",
                          "context": {"from": "15550001", "id": "wamid.sent"},
                          "button": {"payload": "YES", "text": "Yes"}}],
            "statuses": [{"id": "wamid.sent", "status": "read", "timestamp": "1700000002",
                          "recipient_user_id": "US.13491208655302741918"}]
        }}]}]});
        let reports = parse(&payload);
        assert_eq!(reports.len(), 2, "{reports:?}");
        let Report::Status {
            recipient_user_id, ..
        } = &reports[0]
        else {
            panic!("{:?}", reports[0])
        };
        assert_eq!(
            recipient_user_id.as_deref(),
            Some("US.13491208655302741918")
        );
        let Report::Inbound { message, .. } = &reports[1] else {
            panic!("{:?}", reports[1])
        };
        assert_eq!(message.from, None);
        assert_eq!(message.user_id.as_deref(), Some("US.13491208655302741918"));
        assert_eq!(message.name.as_deref(), Some("Bob"));
        assert_eq!(message.username.as_deref(), Some("@bob"));
        assert_eq!(message.context_id.as_deref(), Some("wamid.sent"));
        assert_eq!(message.content.kind, "button");
        // Neither a number nor a user id: nobody to attach it to.
        let nobody = json!({"entry": [{"changes": [{"field": "messages", "value": {
            "metadata": {"phone_number_id": "PN1"},
            "messages": [{"id": "wamid.x", "type": "text", "text": {"body": "?"}}]}}]}]});
        assert!(parse(&nobody).is_empty());
    }

    #[test]
    fn unrelated_payloads_yield_nothing() {
        assert!(parse(&json!({"hello": "world"})).is_empty());
        assert!(
            parse(&json!({"entry": [{"changes": [{"field": "account_update", "value": {}}]}]}))
                .is_empty()
        );
    }

    #[test]
    fn messaging_limit_events_are_read() {
        assert_eq!(messaging_limit_of_tier("TIER_250"), Some(Some(250)));
        assert_eq!(messaging_limit_of_tier("TIER_2K"), Some(Some(2000)));
        assert_eq!(messaging_limit_of_tier("TIER_100K"), Some(Some(100_000)));
        assert_eq!(messaging_limit_of_tier("TIER_UNLIMITED"), Some(None));
        assert_eq!(messaging_limit_of_tier("TIER_X"), None);
        let reports = parse(&json!({"entry": [{"id": "WABA1", "changes": [
            {"field": "phone_number_quality_update", "value": {
                "display_phone_number": "15550001111", "event": "UPGRADE",
                "current_limit": "TIER_10K"}},
            {"field": "account_update", "value": {
                "whatsapp_business_manager_messaging_limit": "TIER_UNLIMITED",
                "current_limit": "TIER_250"}}
        ]}]}));
        let limits: Vec<_> = reports
            .iter()
            .map(|r| match r {
                Report::NumberQuality { waba_id, change } => {
                    assert_eq!(waba_id, "WABA1");
                    change.limit
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(limits, vec![Some(Some(10_000)), Some(None)]);
        // The current field wins over the deprecated one.
        let reports = parse(&json!({"entry": [{"id": "WABA1", "changes": [
            {"field": "phone_number_quality_update", "value": {
                "display_phone_number": "15550001111", "event": "FLAGGED",
                "old_limit": "TIER_1K", "current_limit": "TIER_1K",
                "max_daily_conversations_per_business": "TIER_2K"}}]}]}));
        let Report::NumberQuality { change, .. } = &reports[0] else {
            panic!("{reports:?}")
        };
        assert_eq!(change.limit, Some(Some(2000)));
        assert_eq!(change.event.as_deref(), Some("FLAGGED"));
        assert_eq!(change.display_phone_number.as_deref(), Some("15550001111"));
    }

    #[test]
    fn template_events_map_to_statuses() {
        assert_eq!(template_status_of_event("PAUSED"), Some("PAUSED"));
        assert_eq!(template_status_of_event("disabled"), Some("DISABLED"));
        assert_eq!(template_status_of_event("REINSTATED"), Some("APPROVED"));
        assert_eq!(template_status_of_event("FLAGGED"), None);
        assert_eq!(template_status_of_event("ARCHIVED"), Some("ARCHIVED"));
        assert_eq!(template_status_of_event("UNARCHIVED"), Some("APPROVED"));
    }

    #[test]
    fn template_health_events_are_read() {
        let reports = parse(&json!({"entry": [{"id": "WABA1", "changes": [
            {"field": "message_template_status_update", "value": {
                "event": "FLAGGED", "message_template_id": 7, "message_template_name": "n",
                "message_template_language": "es", "reason": "NONE",
                "message_template_category": "MARKETING",
                "disable_info": {"disable_date": 1_800_000_000},
                "other_info": {"title": "FIRST_PAUSE", "description": "paused"}}},
            {"field": "template_category_update", "value": {
                "message_template_id": 7, "message_template_name": "n",
                "message_template_language": "es", "correct_category": "MARKETING",
                "new_category": "UTILITY", "category_update_timestamp": 1_800_000_000}},
            {"field": "template_category_update", "value": {
                "message_template_id": 7, "previous_category": "UTILITY",
                "new_category": "MARKETING"}},
            {"field": "message_template_quality_update", "value": {
                "message_template_id": 7, "previous_quality_score": "GREEN",
                "new_quality_score": "YELLOW"}}
        ]}]}));
        let changes: Vec<_> = reports
            .into_iter()
            .map(|r| match r {
                Report::TemplateHealth { change, .. } => change,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            changes,
            vec![
                TemplateHealthChange::Status {
                    event: "FLAGGED".into(),
                    reason: None,
                    category: Some("MARKETING".into()),
                    disable_date: Some(1_800_000_000_000),
                    other_info: Some(json!({"title": "FIRST_PAUSE", "description": "paused"})),
                },
                TemplateHealthChange::CategoryNotice {
                    correct: "MARKETING".into(),
                    effective_at: Some(1_800_000_000_000),
                },
                TemplateHealthChange::Category {
                    previous: Some("UTILITY".into()),
                    new: "MARKETING".into(),
                },
                TemplateHealthChange::Quality {
                    previous: Some("GREEN".into()),
                    new: "YELLOW".into(),
                },
            ]
        );
    }
}
