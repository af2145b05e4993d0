//! The JSON shapes of stored things, shared by every adapter that shows them.

use serde::Deserialize;

use crate::domain::template::{Button, Header, TemplateContent, TemplateExtra};
use crate::format_ms;
use crate::store::{Template, TemplateHealth};

/// The typed content of a stored template (its header, buttons and extra were validated when
/// stored).
pub fn template_content(t: &Template) -> TemplateContent {
    TemplateContent {
        // Read from the stored values in place: every send builds this.
        header: t.header.as_ref().and_then(|h| Header::deserialize(h).ok()),
        body: t.message.clone(),
        footer: t.footer.clone(),
        buttons: Vec::<Button>::deserialize(&t.buttons).unwrap_or_default(),
        extra: TemplateExtra::deserialize(&t.extra).unwrap_or_default(),
    }
}

/// A list's cursor, opaque to callers: hex of `<ms>.<id>` of the last item seen.
pub fn cursor(ms: i64, id: &str) -> String {
    hex::encode(format!("{ms}.{id}"))
}

/// The `(ms, id)` of a [`cursor`]; `None` when it is not one.
pub fn parse_cursor(raw: &str) -> Option<(i64, String)> {
    let text = String::from_utf8(hex::decode(raw).ok()?).ok()?;
    let (ms, id) = text.split_once('.')?;
    Some((ms.parse().ok()?, id.to_string()))
}

/// A template as every API shows it (the compatible API's envelopes embed it as it is).
pub fn template(t: &Template) -> crate::api::templates::Template {
    let content = template_content(t);
    let unsendable = content.unsendable_reason();
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    crate::api::templates::Template {
        id: t.id.clone().into(),
        name: t.name.clone(),
        language: t.language.clone(),
        category: t.category.as_str().into(),
        status: t.status.as_str().into(),
        app_id: non_empty(&t.app_id),
        message: non_empty(&t.message),
        params: content.params(),
        sendable: unsendable.is_none(),
        unsendable_reason: unsendable,
        header: content.header,
        footer: t.footer.clone(),
        buttons: content.buttons,
        group_name: t.group_name.clone(),
        active: t.active,
        created_at: format_ms(t.created_at),
        updated_at: format_ms(t.updated_at),
        carousel: content.extra.carousel,
        limited_time_offer: content.extra.limited_time_offer,
        parameter_format: content.extra.parameter_format,
        health: None,
    }
}

/// A template as the native and admin APIs show it: [`template`] and, once Meta has reported
/// on it, its `health` (status event and reason, disable date, flag, quality score, a pending
/// category change). The compatible API's envelopes keep [`template`].
pub fn template_with_health(
    t: &Template,
    health: Option<&TemplateHealth>,
) -> crate::api::templates::Template {
    crate::api::templates::Template {
        health: health.map(Into::into),
        ..template(t)
    }
}
