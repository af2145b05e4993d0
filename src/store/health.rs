//! Template and number health, and per-message pricing (issue 15, items 3 to 5): the shapes
//! both backends store and the pure decisions they share (what a Meta health event changes,
//! which callback events it queues). The backends only read, call [`plan_template`] /
//! [`plan_channel`], and write the plan in one transaction.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{OutboxEvent, Template, event_payload};
use crate::domain::callback::EventType;
use crate::format_ms;

/// Meta's `pricing` object of a status: `type` (`regular`, `free_customer_service`,
/// `free_entry_point`), `category`, `pricing_model` (`PMP`), `billable` (deprecated by Meta
/// but still sent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pricing {
    pub pricing_type: Option<String>,
    pub category: Option<String>,
    pub pricing_model: Option<String>,
    pub billable: Option<bool>,
}

impl Pricing {
    /// Whether Meta charges for the message: `type` decides (`regular` is charged, `free_*`
    /// not); without a type, `billable`; without either, `None`.
    pub fn is_billable(&self) -> Option<bool> {
        match self.pricing_type.as_deref() {
            Some("regular") => Some(true),
            Some(t) if t.starts_with("free") => Some(false),
            _ => self.billable,
        }
    }
}

/// What plantilla knows of a template's health besides its status and category. Times are
/// Unix ms; kept as JSON in `template_health`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TemplateHealth {
    /// Meta's last `message_template_status_update` event (`FLAGGED`, `PAUSED`, …).
    pub last_event: Option<String>,
    pub reason: Option<String>,
    pub status_updated_at: Option<i64>,
    /// `disable_info.disable_date`: when a flagged template will be (or was) disabled.
    pub disable_date: Option<i64>,
    /// `other_info {title, description}` (template locked or unlocked).
    pub other_info: Option<Value>,
    pub flagged: bool,
    pub flagged_at: Option<i64>,
    pub quality_score: Option<String>,
    pub previous_quality_score: Option<String>,
    pub quality_updated_at: Option<i64>,
    pub previous_category: Option<String>,
    pub category_updated_at: Option<i64>,
    /// An announced category change that has not happened yet, and when Meta will make it.
    pub pending_category: Option<String>,
    pub pending_category_at: Option<i64>,
    pub pending_category_notified_at: Option<i64>,
}

fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(format_ms(ms)))
}

/// One health report from Meta about a template.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateHealthChange {
    /// `message_template_status_update`.
    Status {
        event: String,
        reason: Option<String>,
        category: Option<String>,
        disable_date: Option<i64>,
        other_info: Option<Value>,
    },
    /// `template_category_update`, a change made.
    Category {
        previous: Option<String>,
        new: String,
    },
    /// `template_category_update`, the advance notice of a change: the category has not
    /// changed yet.
    CategoryNotice {
        correct: String,
        effective_at: Option<i64>,
    },
    /// `message_template_quality_update`.
    Quality {
        previous: Option<String>,
        new: String,
    },
}

/// The status a template-status event leaves, or `None` when the event does not change the
/// status (`FLAGGED` warns while the template stays approved; unknown events are recorded
/// but move nothing).
pub fn template_status_of_event(event: &str) -> Option<&'static str> {
    let upper = event.to_ascii_uppercase();
    if upper == "REINSTATED" || upper == "UNARCHIVED" || upper == "UNFLAGGED" {
        return Some("APPROVED");
    }
    crate::service::admin::TEMPLATE_STATUSES
        .iter()
        .find(|s| **s == upper)
        .copied()
}

/// What applying a change writes: the template's new status and category, its health, and
/// the events to queue (none when the report repeats what is known: Meta retries).
#[derive(Debug, Clone)]
pub(crate) struct TemplatePlan {
    pub status: String,
    pub category: String,
    pub health: TemplateHealth,
    pub events: Vec<OutboxEvent>,
}

/// Decides what `change` does to `template` (with its current `health`) at `now`; `None`
/// when it changes nothing.
pub(crate) fn plan_template(
    template: &Template,
    health: &TemplateHealth,
    change: &TemplateHealthChange,
    now: i64,
) -> Option<TemplatePlan> {
    let mut h = health.clone();
    let mut status = template.status.clone();
    let mut category = template.category.clone();
    let mut events = Vec::new();
    let base = |t: &Template| json!({"templateId": t.id, "name": t.name, "language": t.language});
    match change {
        TemplateHealthChange::Status {
            event,
            reason,
            category: meta_category,
            disable_date,
            other_info,
        } => {
            let event = event.to_ascii_uppercase();
            let reason = reason.clone().filter(|r| !r.is_empty());
            let new_status = template_status_of_event(&event).map(str::to_string);
            if h.last_event.as_deref() == Some(event.as_str())
                && h.reason == reason
                && new_status.as_ref().is_none_or(|s| *s == status)
                && h.disable_date == *disable_date
            {
                return None;
            }
            if let Some(s) = &new_status {
                status = s.clone();
            }
            // The category Meta states with a status is its current one: a different stored
            // one has changed (and is reported as such, after the status event).
            let mut category_event = None;
            if let Some(c) = meta_category
                .as_deref()
                .map(str::to_ascii_uppercase)
                .filter(|c| crate::service::admin::TEMPLATE_CATEGORIES.contains(&c.as_str()))
                && c != category
            {
                let before = std::mem::replace(&mut category, c.clone());
                h.previous_category = Some(before.clone());
                h.category_updated_at = Some(now);
                h.pending_category = None;
                h.pending_category_at = None;
                h.pending_category_notified_at = None;
                let mut data = base(template);
                let fields = data.as_object_mut().expect("an object");
                fields.insert("previousCategory".into(), json!(before));
                fields.insert("newCategory".into(), json!(c));
                fields.insert("notice".into(), json!(false));
                category_event = Some(event_of(
                    EventType::TemplateCategoryChanged,
                    &template.id,
                    now,
                    data,
                ));
            }
            match event.as_str() {
                "FLAGGED" => {
                    h.flagged = true;
                    h.flagged_at = Some(now);
                }
                "APPROVED" | "REINSTATED" | "UNFLAGGED" | "UNARCHIVED" => {
                    h.flagged = false;
                }
                _ => {}
            }
            h.last_event = Some(event.clone());
            h.reason = reason.clone();
            h.status_updated_at = Some(now);
            if disable_date.is_some() {
                h.disable_date = *disable_date;
            } else if status == "APPROVED" {
                h.disable_date = None;
            }
            if other_info.is_some() {
                h.other_info = other_info.clone();
            }
            let mut data = base(template);
            let fields = data.as_object_mut().expect("an object");
            fields.insert("status".into(), json!(status));
            fields.insert("previousStatus".into(), json!(template.status));
            // The fields below are only present when Meta sent them, so the event of a plain
            // status change keeps its historical shape.
            if new_status.as_ref() != Some(&event) {
                fields.insert("event".into(), json!(event));
            }
            if let Some(r) = &reason {
                fields.insert("reason".into(), json!(r));
            }
            if let Some(d) = disable_date {
                fields.insert("disableDate".into(), json!(format_ms(*d)));
            }
            if let Some(info) = other_info {
                fields.insert("otherInfo".into(), info.clone());
            }
            if h.flagged {
                fields.insert("flagged".into(), json!(true));
            }
            events.push(event_of(
                EventType::TemplateStatusChanged,
                &template.id,
                now,
                data,
            ));
            events.extend(category_event);
        }
        TemplateHealthChange::Category { previous, new } => {
            let new = new.to_ascii_uppercase();
            if new == category && h.pending_category.is_none() {
                return None;
            }
            let before = std::mem::replace(&mut category, new.clone());
            h.previous_category = Some(before.clone());
            h.category_updated_at = Some(now);
            h.pending_category = None;
            h.pending_category_at = None;
            h.pending_category_notified_at = None;
            let mut data = base(template);
            let fields = data.as_object_mut().expect("an object");
            fields.insert(
                "previousCategory".into(),
                json!(
                    previous
                        .as_deref()
                        .map(str::to_ascii_uppercase)
                        .unwrap_or(before)
                ),
            );
            fields.insert("newCategory".into(), json!(new));
            fields.insert("notice".into(), json!(false));
            events.push(event_of(
                EventType::TemplateCategoryChanged,
                &template.id,
                now,
                data,
            ));
        }
        TemplateHealthChange::CategoryNotice {
            correct,
            effective_at,
        } => {
            let correct = correct.to_ascii_uppercase();
            if h.pending_category.as_deref() == Some(correct.as_str())
                && h.pending_category_at == *effective_at
            {
                return None;
            }
            h.pending_category = Some(correct.clone());
            h.pending_category_at = *effective_at;
            h.pending_category_notified_at = Some(now);
            let mut data = base(template);
            let fields = data.as_object_mut().expect("an object");
            fields.insert("previousCategory".into(), json!(category));
            fields.insert("newCategory".into(), json!(category));
            fields.insert("correctCategory".into(), json!(correct));
            fields.insert("effectiveAt".into(), time(*effective_at));
            fields.insert("notice".into(), json!(true));
            events.push(event_of(
                EventType::TemplateCategoryChanged,
                &template.id,
                now,
                data,
            ));
        }
        TemplateHealthChange::Quality { previous, new } => {
            let new = new.to_ascii_uppercase();
            if h.quality_score.as_deref() == Some(new.as_str()) {
                return None;
            }
            let before = previous
                .as_deref()
                .map(str::to_ascii_uppercase)
                .or_else(|| h.quality_score.clone());
            h.previous_quality_score = before.clone();
            h.quality_score = Some(new.clone());
            h.quality_updated_at = Some(now);
            if new == "GREEN" {
                h.flagged = false;
            }
            let mut data = base(template);
            let fields = data.as_object_mut().expect("an object");
            fields.insert("previousQualityScore".into(), json!(before));
            fields.insert("newQualityScore".into(), json!(new));
            events.push(event_of(
                EventType::TemplateQualityChanged,
                &template.id,
                now,
                data,
            ));
        }
    }
    Some(TemplatePlan {
        status,
        category,
        health: h,
        events,
    })
}

fn event_of(event_type: EventType, ordering_key: &str, at: i64, data: Value) -> OutboxEvent {
    OutboxEvent {
        event_type,
        ordering_key: ordering_key.to_string(),
        message_id: None,
        callback_url: None,
        payload: event_payload(event_type, at, data),
    }
}

/// A number's quality as Meta last reported it. Kept as JSON in `channel_quality`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ChannelQuality {
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`.
    pub quality_rating: Option<String>,
    pub previous_quality_rating: Option<String>,
    /// Meta's last event (`FLAGGED`, `UNFLAGGED`, `UPGRADE`, `DOWNGRADE`, …).
    pub last_event: Option<String>,
    pub updated_at: Option<i64>,
    /// The number as Meta displays it, learnt from a report only this channel could match.
    pub display_phone_number: Option<String>,
}

/// One `phone_number_quality_update` or `account_update` for a number.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelQualityChange {
    pub event: Option<String>,
    pub display_phone_number: Option<String>,
    /// A quality rating Meta stated outright, if any.
    pub quality_rating: Option<String>,
    /// The messaging limit reported: `None` not reported, `Some(None)` unlimited.
    pub limit: Option<Option<i64>>,
    /// Whether the report is known to be this channel's (so its display number is kept).
    pub learn_display: bool,
}

/// The quality rating an event implies when Meta does not state one: `FLAGGED` means the
/// rating dropped to low (RED), `UNFLAGGED` that it recovered; other events (limit upgrades
/// and downgrades) leave it.
pub fn quality_of_event(event: &str) -> Option<&'static str> {
    match event.to_ascii_uppercase().as_str() {
        "FLAGGED" => Some("RED"),
        "UNFLAGGED" => Some("GREEN"),
        _ => None,
    }
}

pub(crate) struct ChannelPlan {
    pub quality: ChannelQuality,
    /// The new messaging limit, when it moves.
    pub limit: Option<Option<i64>>,
    pub event: OutboxEvent,
}

/// Decides what `change` does to a channel (`channel_id`, its display number, its current
/// `limit` and `quality`); `None` when it repeats what is known.
pub(crate) fn plan_channel(
    channel_id: &str,
    current_limit: Option<i64>,
    quality: &ChannelQuality,
    change: &ChannelQualityChange,
    now: i64,
) -> Option<ChannelPlan> {
    let event = change.event.as_ref().map(|e| e.to_ascii_uppercase());
    let rating = change
        .quality_rating
        .as_ref()
        .map(|r| r.to_ascii_uppercase())
        .or_else(|| {
            event
                .as_deref()
                .and_then(quality_of_event)
                .map(str::to_string)
        })
        .or_else(|| quality.quality_rating.clone());
    let limit_moves = change.limit.filter(|l| *l != current_limit);
    let rating_moves = rating != quality.quality_rating;
    if limit_moves.is_none() && !rating_moves && event == quality.last_event {
        return None;
    }
    let mut q = quality.clone();
    if rating_moves {
        q.previous_quality_rating = quality.quality_rating.clone();
    }
    q.quality_rating = rating.clone();
    if event.is_some() {
        q.last_event = event.clone();
    }
    q.updated_at = Some(now);
    if change.learn_display && change.display_phone_number.is_some() {
        q.display_phone_number = change.display_phone_number.clone();
    }
    let new_limit = change.limit.unwrap_or(current_limit);
    let data = json!({
        "channelId": channel_id,
        "displayPhoneNumber": change.display_phone_number,
        "event": event,
        "qualityRating": rating,
        "previousQualityRating": if rating_moves { quality.quality_rating.clone() } else { rating.clone() },
        "messagingLimit": new_limit,
        "previousMessagingLimit": current_limit,
        "at": format_ms(now),
    });
    Some(ChannelPlan {
        quality: q,
        limit: limit_moves,
        event: event_of(EventType::ChannelQualityChanged, channel_id, now, data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        Template {
            id: "tpl_1".into(),
            account_id: "acc".into(),
            name: "order_update".into(),
            language: "es".into(),
            category: "UTILITY".into(),
            status: "APPROVED".into(),
            app_id: "1".into(),
            message: "hola".into(),
            header: None,
            footer: None,
            buttons: json!([]),
            extra: json!({}),
            group_name: None,
            active: true,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn flagged_keeps_the_status_and_repeats_change_nothing() {
        let t = template();
        let change = TemplateHealthChange::Status {
            event: "FLAGGED".into(),
            reason: Some("LOW_QUALITY".into()),
            category: None,
            disable_date: Some(1_800_000_000_000),
            other_info: None,
        };
        let plan = plan_template(&t, &TemplateHealth::default(), &change, 5).unwrap();
        assert_eq!(plan.status, "APPROVED");
        assert!(plan.health.flagged);
        assert_eq!(plan.health.flagged_at, Some(5));
        assert_eq!(plan.events.len(), 1);
        let body: Value = serde_json::from_str(&plan.events[0].payload).unwrap();
        assert_eq!(body["data"]["event"], "FLAGGED");
        assert_eq!(body["data"]["reason"], "LOW_QUALITY");
        assert!(plan_template(&t, &plan.health, &change, 6).is_none());
    }

    #[test]
    fn a_category_stated_with_a_status_is_a_change_reported_after_it() {
        let t = template();
        let change = TemplateHealthChange::Status {
            event: "APPROVED".into(),
            reason: None,
            category: Some("MARKETING".into()),
            disable_date: None,
            other_info: None,
        };
        let plan = plan_template(&t, &TemplateHealth::default(), &change, 1).unwrap();
        assert_eq!(plan.category, "MARKETING");
        let types: Vec<EventType> = plan.events.iter().map(|e| e.event_type).collect();
        assert_eq!(
            types,
            [
                EventType::TemplateStatusChanged,
                EventType::TemplateCategoryChanged
            ]
        );
    }

    #[test]
    fn a_notice_does_not_change_the_category_the_change_does() {
        let t = template();
        let notice = TemplateHealthChange::CategoryNotice {
            correct: "MARKETING".into(),
            effective_at: Some(1_900_000_000_000),
        };
        let plan = plan_template(&t, &TemplateHealth::default(), &notice, 1).unwrap();
        assert_eq!(plan.category, "UTILITY");
        assert_eq!(plan.health.pending_category.as_deref(), Some("MARKETING"));
        let change = TemplateHealthChange::Category {
            previous: Some("UTILITY".into()),
            new: "MARKETING".into(),
        };
        let plan = plan_template(&t, &plan.health, &change, 2).unwrap();
        assert_eq!(plan.category, "MARKETING");
        assert_eq!(plan.health.pending_category, None);
        assert_eq!(plan.health.previous_category.as_deref(), Some("UTILITY"));
    }

    #[test]
    fn pricing_billable_follows_the_type() {
        let mut p = Pricing {
            pricing_type: Some("free_customer_service".into()),
            billable: Some(true),
            ..Pricing::default()
        };
        assert_eq!(p.is_billable(), Some(false));
        p.pricing_type = Some("regular".into());
        assert_eq!(p.is_billable(), Some(true));
        p.pricing_type = None;
        assert_eq!(p.is_billable(), Some(true));
    }

    #[test]
    fn number_quality_follows_flags_and_limits() {
        let change = ChannelQualityChange {
            event: Some("FLAGGED".into()),
            display_phone_number: Some("15550001111".into()),
            quality_rating: None,
            limit: None,
            learn_display: true,
        };
        let plan = plan_channel("ch", Some(1000), &ChannelQuality::default(), &change, 3).unwrap();
        assert_eq!(plan.quality.quality_rating.as_deref(), Some("RED"));
        assert_eq!(plan.limit, None);
        assert!(plan_channel("ch", Some(1000), &plan.quality, &change, 4).is_none());
        let up = ChannelQualityChange {
            event: Some("UPGRADE".into()),
            limit: Some(Some(10_000)),
            ..change
        };
        let plan = plan_channel("ch", Some(1000), &plan.quality, &up, 5).unwrap();
        assert_eq!(plan.limit, Some(Some(10_000)));
        assert_eq!(plan.quality.quality_rating.as_deref(), Some("RED"));
    }
}
