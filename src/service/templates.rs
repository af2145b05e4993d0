//! Template sync: reads a WhatsApp Business Account's templates from the Graph API
//! (`GET /{waba-id}/message_templates`, following `paging.next`) and creates or updates
//! plantilla's templates from them.

use serde::Serialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::domain::ids::new_id;
use crate::domain::meta_error::MetaError;
use crate::domain::template::{Button, Card, Header, Offer, TemplateContent};
use crate::domain::template_send;
use crate::now_ms;
use crate::provider::cloud::transport_error;
use crate::store::{Channel, ProviderKind, StoreError, Template};

/// Pages followed at most, so a misbehaving `next` cannot loop forever.
const MAX_PAGES: usize = 1000;

/// What a template sync did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncSummary {
    pub created: usize,
    pub updated: usize,
    /// Templates plantilla cannot represent (the log says why).
    pub skipped: usize,
    /// Pages of Meta's template list read.
    pub pages: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    NotSyncable(String),
    #[error("the Graph API refused: {0}")]
    Graph(MetaError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        SyncError::Internal(e.into())
    }
}

/// The content of one of Meta's templates (`components` and `parameter_format` of a
/// `message_templates` entry), in plantilla's shape. Everything Meta lists is kept: every
/// button in Meta's order (so each keeps the index Meta counts it by; a type plantilla does
/// not know is kept as `OTHER`), carousel cards, a limited-time offer, Meta's media sample
/// (shown, never sent). A component plantilla cannot send marks the template unsendable with
/// the reason instead of failing the sync; only placeholders that are not valid fail it.
pub fn content_from_meta(
    components: &Value,
    parameter_format: Option<&str>,
) -> Result<TemplateContent, String> {
    let mut content = TemplateContent::default();
    content.extra.parameter_format = parameter_format.map(str::to_ascii_uppercase);
    let mut unsupported: Vec<String> = Vec::new();
    for c in components.as_array().into_iter().flatten() {
        let kind = c["type"].as_str().unwrap_or("").to_ascii_uppercase();
        match kind.as_str() {
            "HEADER" => match header_from_meta(c) {
                Ok(h) => content.header = Some(h),
                Err(reason) => unsupported.push(reason),
            },
            "BODY" => content.body = c["text"].as_str().unwrap_or_default().to_string(),
            "FOOTER" => content.footer = c["text"].as_str().map(str::to_string),
            "BUTTONS" => content.buttons = buttons_from_meta(&c["buttons"]),
            "CAROUSEL" => {
                for (i, card) in c["cards"].as_array().into_iter().flatten().enumerate() {
                    let mut out = Card::default();
                    for part in card["components"].as_array().into_iter().flatten() {
                        match part["type"].as_str().unwrap_or("").to_ascii_uppercase().as_str() {
                            "HEADER" => match header_from_meta(part) {
                                Ok(h) => out.header = Some(h),
                                Err(reason) => unsupported.push(format!("carousel[{i}]: {reason}")),
                            },
                            "BODY" => out.body = part["text"].as_str().unwrap_or_default().into(),
                            "BUTTONS" => out.buttons = buttons_from_meta(&part["buttons"]),
                            other => unsupported.push(format!(
                                "carousel[{i}] has a {other} component, which plantilla cannot send yet"
                            )),
                        }
                    }
                    content.extra.carousel.push(out);
                }
            }
            "LIMITED_TIME_OFFER" => {
                let offer = &c["limited_time_offer"];
                content.extra.limited_time_offer = Some(Offer {
                    text: offer["text"].as_str().unwrap_or_default().to_string(),
                    has_expiration: offer["has_expiration"].as_bool().unwrap_or(false),
                });
            }
            other => unsupported.push(format!(
                "the template has a {} component, which plantilla cannot send yet",
                if other.is_empty() { "typeless" } else { other }
            )),
        }
    }
    if !unsupported.is_empty() {
        content.extra.unsupported = Some(unsupported.join("; "));
    }
    content.validate()?;
    Ok(content)
}

fn header_from_meta(c: &Value) -> Result<Header, String> {
    let format = c["format"].as_str().unwrap_or("TEXT").to_ascii_uppercase();
    match format.as_str() {
        "TEXT" => Header::from_json(&json!({"format": "TEXT", "text": c["text"]})),
        "LOCATION" => Ok(Header::Location { example: None }),
        "IMAGE" | "VIDEO" | "GIF" | "DOCUMENT" => {
            let mut header = Header::media(&format, None).expect("a media format");
            let handle = c["example"]["header_handle"][0]
                .as_str()
                .map(str::to_string);
            match &mut header {
                Header::Image { sample, .. }
                | Header::Video { sample, .. }
                | Header::Gif { sample, .. }
                | Header::Document { sample, .. } => *sample = handle,
                _ => {}
            }
            Ok(header)
        }
        other => Err(format!(
            "its header is {other}, which plantilla cannot send yet"
        )),
    }
}

/// Meta's example of a button: a string, or an array whose first entry is the example.
fn first_example(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.first().and_then(Value::as_str).unwrap_or("").into(),
        _ => String::new(),
    }
}

fn buttons_from_meta(buttons: &Value) -> Vec<Button> {
    let text = |b: &Value| b["text"].as_str().unwrap_or_default().to_string();
    let opt = |b: &Value, k: &str| b[k].as_str().map(str::to_string);
    buttons
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            let kind = b["type"].as_str().unwrap_or("").to_ascii_uppercase();
            match kind.as_str() {
                "QUICK_REPLY" => Button::QuickReply { text: text(b) },
                "URL" => {
                    let url = b["url"].as_str().unwrap_or_default().to_string();
                    // An authentication template's code button, as Meta lists it once created:
                    // a URL button to its OTP page whose url carries `otp_type`.
                    match otp_type_in_url(&url) {
                        Some(otp_type) => Button::Otp {
                            otp_type,
                            text: opt(b, "text"),
                        },
                        None => Button::Url { text: text(b), url },
                    }
                }
                "PHONE_NUMBER" => Button::PhoneNumber {
                    text: text(b),
                    phone_number: b["phone_number"].as_str().unwrap_or_default().to_string(),
                },
                "COPY_CODE" => Button::CopyCode {
                    example: first_example(&b["example"]),
                },
                "OTP" => Button::Otp {
                    otp_type: b["otp_type"]
                        .as_str()
                        .unwrap_or("COPY_CODE")
                        .to_ascii_uppercase(),
                    text: opt(b, "text"),
                },
                "FLOW" => Button::Flow {
                    text: text(b),
                    flow_id: b["flow_id"]
                        .as_str()
                        .map(str::to_string)
                        .or_else(|| b["flow_id"].as_i64().map(|n| n.to_string())),
                    flow_action: opt(b, "flow_action"),
                    navigate_screen: opt(b, "navigate_screen"),
                },
                "CATALOG" => Button::Catalog { text: text(b) },
                "MPM" => Button::Mpm { text: text(b) },
                "VOICE_CALL" => Button::VoiceCall { text: text(b) },
                _ => Button::Other {
                    kind: if kind.is_empty() {
                        "UNKNOWN".into()
                    } else {
                        kind
                    },
                    raw: b.clone(),
                },
            }
        })
        .collect()
}

/// `COPY_CODE` from `https://www.whatsapp.com/otp/code/?otp_type=COPY_CODE&code=otp{{1}}`.
fn otp_type_in_url(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "otp_type").then(|| v.to_ascii_uppercase())
    })
}

/// What a send of `template` with `params` would show and send.
pub struct Preview {
    /// False when the template has a component plantilla cannot send.
    pub sendable: bool,
    /// What a send with these values would be refused for: `(key, message)`, keys as in
    /// `domain::template_send` (`header`, `button.1.coupon_code`, a placeholder's name).
    pub problems: Vec<(String, String)>,
    /// The text a recipient would see (`domain::template_send::preview`).
    pub preview: Value,
    /// The `components` plantilla would send to Meta.
    pub components: Vec<Value>,
}

/// [`preview`] of the values of `POST /v1/templates/{id}/preview`.
pub fn preview_values(
    template: &Template,
    values: crate::api::templates::TemplatePreviewRequest,
    now_ms: i64,
) -> Preview {
    preview(template, &values.into_params(), now_ms)
}

/// Previews a send without sending: the same checks as a send, the rendered message and the
/// components for Meta.
pub fn preview(
    template: &Template,
    params: &std::collections::BTreeMap<String, String>,
    now_ms: i64,
) -> Preview {
    let content = crate::service::views::template_content(template);
    let mut problems = Vec::new();
    let unsendable = content.unsendable_reason();
    if let Some(reason) = &unsendable {
        problems.push(("template.components".to_string(), reason.clone()));
    }
    if let Err(p) = template_send::check_send(&content, params, now_ms) {
        problems.extend(p.missing.into_iter().zip(p.missing_detail));
        problems.extend(p.invalid.into_iter().map(|v| (v.key, v.message)));
    }
    Preview {
        sendable: unsendable.is_none(),
        problems,
        preview: template_send::preview(&content, params),
        components: template_send::cloud_components(&content, params),
    }
}

/// Syncs one cloud channel's WhatsApp Business Account into the channel's account.
pub async fn sync(app: &App, channel: &Channel) -> Result<SyncSummary, SyncError> {
    if channel.provider != ProviderKind::Cloud {
        return Err(SyncError::NotSyncable(
            "only cloud channels have templates to sync".into(),
        ));
    }
    if channel.waba_id.is_empty() {
        return Err(SyncError::NotSyncable(
            "the channel has no wabaId (WhatsApp Business Account id)".into(),
        ));
    }
    let mut summary = SyncSummary::default();
    let mut url = first_page_url(
        &app.graph,
        &channel.waba_id,
        app.config.template_sync_page_size,
    )
    .map_err(|e| SyncError::NotSyncable(format!("the channel's wabaId cannot be used: {e}")))?;
    loop {
        let response = app
            .graph
            .client()
            .get(url.clone())
            .bearer_auth(&channel.access_token)
            .send()
            .await
            .map_err(|e| SyncError::Graph(transport_error(&e)))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| SyncError::Graph(transport_error(&e)))?;
        if !(200..300).contains(&status) {
            return Err(SyncError::Graph(MetaError::from_response(
                status, &body, None,
            )));
        }
        let page: Value = serde_json::from_slice(&body)
            .map_err(|e| SyncError::Internal(anyhow::anyhow!("template page is not JSON: {e}")))?;
        summary.pages += 1;
        for t in page["data"].as_array().into_iter().flatten() {
            upsert(app, channel, t, &mut summary).await?;
        }
        match page["paging"]["next"].as_str() {
            Some(next) if summary.pages < MAX_PAGES => match next_page_url(&app.graph, next) {
                Some(next) => url = next,
                None => {
                    tracing::warn!(
                        channel_id = channel.id,
                        "template sync stopped: the next page's link is not under the Graph API version"
                    );
                    break;
                }
            },
            _ => break,
        }
    }
    tracing::info!(channel_id = channel.id, ?summary, "templates synced");
    Ok(summary)
}

async fn upsert(
    app: &App,
    channel: &Channel,
    t: &Value,
    summary: &mut SyncSummary,
) -> Result<(), SyncError> {
    let (Some(meta_id), Some(name), Some(language)) = (
        t["id"]
            .as_str()
            .map(str::to_string)
            .or_else(|| t["id"].as_i64().map(|n| n.to_string())),
        t["name"].as_str(),
        t["language"].as_str(),
    ) else {
        summary.skipped += 1;
        return Ok(());
    };
    let content = match content_from_meta(&t["components"], t["parameter_format"].as_str()) {
        Ok(c) => c,
        Err(reason) => {
            tracing::warn!(template = name, language, reason, "template not synced");
            summary.skipped += 1;
            return Ok(());
        }
    };
    let status = t["status"]
        .as_str()
        .unwrap_or("PENDING")
        .to_ascii_uppercase();
    let category = t["category"]
        .as_str()
        .unwrap_or("UTILITY")
        .to_ascii_uppercase();
    let header = content
        .header
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(anyhow::Error::from)?;
    let buttons = serde_json::to_value(&content.buttons).map_err(anyhow::Error::from)?;
    let extra = serde_json::to_value(&content.extra).map_err(anyhow::Error::from)?;
    let account = &channel.account_id;
    let existing = match app.store.template_by_app_id(account, &meta_id).await? {
        Some(t) => Some(t),
        None => app.store.template_by_name(account, name, language).await?,
    };
    let now = now_ms();
    match existing {
        Some(mut existing) => {
            if existing.status != status {
                // First on its own, so the change queues `template.status_changed`.
                app.store
                    .set_template_status(&existing.id, &status, now)
                    .await?;
            }
            existing.name = name.to_string();
            existing.language = language.to_string();
            existing.category = category;
            existing.status = status;
            existing.app_id = meta_id;
            existing.message = content.body;
            existing.header = header;
            existing.footer = content.footer;
            existing.buttons = buttons;
            existing.extra = extra;
            existing.updated_at = now;
            app.store.update_template(&existing).await?;
            summary.updated += 1;
        }
        None => {
            app.store
                .insert_template(&Template {
                    id: new_id("tpl"),
                    account_id: account.clone(),
                    name: name.to_string(),
                    language: language.to_string(),
                    category,
                    status,
                    app_id: meta_id,
                    message: content.body,
                    header,
                    footer: content.footer,
                    buttons,
                    extra,
                    group_name: None,
                    active: true,
                    created_at: now,
                    updated_at: now,
                })
                .await?;
            summary.created += 1;
        }
    }
    Ok(())
}

/// Meta's paging links repeat the access token in their query. It is sent as a header
/// instead, so it never sits in a URL, which errors and proxies print.
/// The first page of a WhatsApp Business Account's templates: the id is one path segment and
/// the options are query pairs, so no stored value can leave the version prefix.
fn first_page_url(
    graph: &crate::provider::cloud::CloudProvider,
    waba_id: &str,
    page_size: u32,
) -> Result<reqwest::Url, String> {
    let mut url = graph.node_url(&[waba_id, "message_templates"])?;
    url.query_pairs_mut()
        .append_pair("limit", &page_size.clamp(1, 1000).to_string())
        .append_pair("fields", "id,name,language,status,category,components");
    Ok(url)
}

/// The next page's link as Meta gave it, without its access token, when it stays on the
/// Graph API host under the configured version (the channel's token goes with it).
fn next_page_url(
    graph: &crate::provider::cloud::CloudProvider,
    link: &str,
) -> Option<reqwest::Url> {
    let url = reqwest::Url::parse(&without_access_token(link)).ok()?;
    graph.is_own_url(&url).then_some(url)
}

fn without_access_token(link: &str) -> String {
    let Ok(mut url) = reqwest::Url::parse(link) else {
        return link.to_string();
    };
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "access_token")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_urls_keep_a_stored_waba_id_in_one_segment_and_follow_only_own_links() {
        let graph = crate::provider::cloud::CloudProvider::new(&crate::config::Config {
            graph_base_url: "http://127.0.0.1:9".into(),
            ..Default::default()
        })
        .unwrap();
        let url = first_page_url(&graph, "../../me/accounts?z=", 100).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/v23.0/..%2F..%2Fme%2Faccounts%3Fz=/message_templates\
             ?limit=100&fields=id%2Cname%2Clanguage%2Cstatus%2Ccategory%2Ccomponents"
        );
        assert!(first_page_url(&graph, "..", 100).is_err());
        let next = next_page_url(
            &graph,
            "http://127.0.0.1:9/v23.0/55/message_templates?access_token=EAAGx&after=QVFI",
        )
        .unwrap();
        assert_eq!(
            next.as_str(),
            "http://127.0.0.1:9/v23.0/55/message_templates?after=QVFI"
        );
        for elsewhere in [
            "http://127.0.0.1:9/me/accounts?after=QVFI",
            "http://127.0.0.1:9/v23.0/../me/accounts",
            "http://attacker.example/v23.0/55/message_templates",
        ] {
            assert!(next_page_url(&graph, elsewhere).is_none(), "{elsewhere}");
        }
    }

    #[test]
    fn paging_links_lose_their_access_token() {
        assert_eq!(
            without_access_token(
                "https://graph.facebook.com/v23.0/55/message_templates?access_token=EAAGx&limit=100&after=QVFI"
            ),
            "https://graph.facebook.com/v23.0/55/message_templates?limit=100&after=QVFI"
        );
        assert_eq!(
            without_access_token("http://127.0.0.1:9/v1/55/message_templates?access_token=EAAGx"),
            "http://127.0.0.1:9/v1/55/message_templates"
        );
        let plain = "http://127.0.0.1:9/v1/55/message_templates?limit=2&after=b";
        assert_eq!(without_access_token(plain), plain);
    }

    #[test]
    fn meta_components_become_content_keeping_every_button_at_its_index() {
        let components = json!([
            {"type": "HEADER", "format": "TEXT", "text": "Pedido {{order}}"},
            {"type": "BODY", "text": "Hola {{name}}, tu pedido {{order}} va en camino"},
            {"type": "FOOTER", "text": "Gracias"},
            {"type": "BUTTONS", "buttons": [
                {"type": "FLOW", "text": "Reservar", "flow_id": 123},
                {"type": "URL", "text": "Seguir", "url": "https://x.example/t/{{1}}"},
                {"type": "COPY_CODE", "example": ["SAVE10"]},
                {"type": "QUICK_REPLY", "text": "OK"}
            ]}
        ]);
        let c = content_from_meta(&components, Some("named")).unwrap();
        assert_eq!(c.body, "Hola {{name}}, tu pedido {{order}} va en camino");
        assert_eq!(c.footer.as_deref(), Some("Gracias"));
        let kinds: Vec<&str> = c.buttons.iter().map(Button::kind).collect();
        assert_eq!(kinds, ["FLOW", "URL", "COPY_CODE", "QUICK_REPLY"]);
        assert_eq!(
            c.buttons[2],
            Button::CopyCode {
                example: "SAVE10".into()
            }
        );
        assert_eq!(c.params(), vec!["order", "name", "1"]);
        assert_eq!(c.extra.parameter_format.as_deref(), Some("NAMED"));
        assert_eq!(c.unsendable_reason(), None);
    }

    #[test]
    fn media_headers_keep_metas_sample_apart_from_any_default() {
        let c = content_from_meta(
            &json!([
                {"type": "HEADER", "format": "GIF", "example": {"header_handle": ["https://x.example/a.mp4"]}},
                {"type": "BODY", "text": "Hola"}
            ]),
            None,
        )
        .unwrap();
        let header = c.header.unwrap();
        assert_eq!(header.format(), "GIF");
        assert_eq!(header.sample(), Some("https://x.example/a.mp4"));
        assert_eq!(header.default_media(), None, "Meta's sample is never sent");
    }

    #[test]
    fn otp_carousel_offer_and_unknown_parts_are_kept() {
        let c = content_from_meta(
            &json!([
                {"type": "BODY", "text": "*{{1}}* es tu código."},
                {"type": "BUTTONS", "buttons": [
                    {"type": "URL", "text": "Copiar", "url": "https://www.whatsapp.com/otp/code/?otp_type=COPY_CODE&code=otp{{1}}"}
                ]}
            ]),
            None,
        )
        .unwrap();
        assert!(matches!(&c.buttons[0], Button::Otp { otp_type, .. } if otp_type == "COPY_CODE"));

        let c = content_from_meta(
            &json!([
                {"type": "BODY", "text": "Mira {{1}}"},
                {"type": "LIMITED_TIME_OFFER", "limited_time_offer": {"text": "¡Corre!", "has_expiration": true}},
                {"type": "CAROUSEL", "cards": [
                    {"components": [
                        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["h1"]}},
                        {"type": "BODY", "text": "Card {{1}}"},
                        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Más"}]}]},
                    {"components": [
                        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["h2"]}},
                        {"type": "BODY", "text": "Otra"}]}
                ]},
                {"type": "BUTTONS", "buttons": [{"type": "BRAND_NEW", "text": "?"}]}
            ]),
            None,
        )
        .unwrap();
        assert_eq!(c.extra.carousel.len(), 2);
        assert!(c.extra.limited_time_offer.as_ref().unwrap().has_expiration);
        assert_eq!(c.params(), vec!["1", "card.0.1"]);
        let reason = c.unsendable_reason().unwrap();
        assert!(reason.contains("BRAND_NEW"), "{reason}");

        let c = content_from_meta(
            &json!([{"type": "BODY", "text": "x"}, {"type": "SOMETHING_NEW"}]),
            None,
        )
        .unwrap();
        assert!(c.unsendable_reason().unwrap().contains("SOMETHING_NEW"));
    }

    #[test]
    fn invalid_placeholders_are_refused() {
        assert!(
            content_from_meta(
                &json!([{"type": "BODY", "text": "Hola {{Bad Name}}"}]),
                None
            )
            .is_err()
        );
    }
}
