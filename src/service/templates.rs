//! Template sync: reads a WhatsApp Business Account's templates from the Graph API
//! (`GET /{waba-id}/message_templates`, following `paging.next`) and creates or updates
//! plantilla's templates from them.

use serde::Serialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::domain::ids::new_id;
use crate::domain::meta_error::MetaError;
use crate::domain::template::{Button, Header, TemplateContent};
use crate::now_ms;
use crate::provider::cloud::transport_error;
use crate::store::{Channel, ProviderKind, StoreError, Template};

/// Pages followed at most, so a misbehaving `next` cannot loop forever.
const MAX_PAGES: usize = 1000;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SyncSummary {
    pub created: usize,
    pub updated: usize,
    /// Templates plantilla cannot represent (their reasons are logged).
    pub skipped: usize,
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

/// The content of one of Meta's templates, in plantilla's shape.
pub fn content_from_meta(components: &Value) -> Result<TemplateContent, String> {
    let mut content = TemplateContent {
        header: None,
        body: String::new(),
        footer: None,
        buttons: Vec::new(),
    };
    for c in components.as_array().into_iter().flatten() {
        match c["type"].as_str().map(str::to_ascii_uppercase).as_deref() {
            Some("HEADER") => {
                let format = c["format"].as_str().unwrap_or("TEXT").to_ascii_uppercase();
                let header = if format == "TEXT" {
                    json!({"format": "TEXT", "text": c["text"]})
                } else {
                    json!({"format": format, "example": c["example"]["header_handle"][0]})
                };
                content.header = Some(Header::from_json(&header)?);
            }
            Some("BODY") => content.body = c["text"].as_str().unwrap_or_default().to_string(),
            Some("FOOTER") => content.footer = c["text"].as_str().map(str::to_string),
            Some("BUTTONS") => {
                let buttons: Vec<Value> = c["buttons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|b| {
                        let kind = b["type"].as_str()?.to_ascii_uppercase();
                        Some(match kind.as_str() {
                            "URL" => json!({"type": "URL", "text": b["text"], "url": b["url"]}),
                            "QUICK_REPLY" => json!({"type": "QUICK_REPLY", "text": b["text"]}),
                            "PHONE_NUMBER" => json!({"type": "PHONE_NUMBER", "text": b["text"],
                                                     "phoneNumber": b["phone_number"]}),
                            "COPY_CODE" => json!({"type": "COPY_CODE", "example": b["example"]}),
                            _ => return None,
                        })
                    })
                    .collect();
                content.buttons = Button::list_from_json(&Value::Array(buttons))?;
            }
            _ => {}
        }
    }
    content.validate()?;
    Ok(content)
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
    let mut url = app.graph.url(&format!(
        "{}/message_templates?limit={}&fields=id,name,language,status,category,components",
        channel.waba_id,
        app.config.template_sync_page_size.clamp(1, 1000)
    ));
    loop {
        let response = app
            .graph
            .client()
            .get(&url)
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
            Some(next) if summary.pages < MAX_PAGES => url = without_access_token(next),
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
    let content = match content_from_meta(&t["components"]) {
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
    let account = &channel.account_id;
    let existing = match app.store.template_by_app_id(account, &meta_id).await? {
        Some(t) => Some(t),
        None => app.store.template_by_name(account, name, language).await?,
    };
    let now = now_ms();
    match existing {
        Some(mut existing) => {
            existing.name = name.to_string();
            existing.language = language.to_string();
            existing.category = category;
            existing.status = status;
            existing.app_id = meta_id;
            existing.message = content.body;
            existing.header = header;
            existing.footer = content.footer;
            existing.buttons = buttons;
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

/// Syncs every connected cloud channel with a WABA, forever, every `interval`.
pub async fn sync_periodically(
    app: App,
    interval: std::time::Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let channels = match app.store.list_channels().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "template sync: cannot list channels");
                continue;
            }
        };
        for channel in channels.iter().filter(|c| {
            c.provider == ProviderKind::Cloud && !c.waba_id.is_empty() && c.status == "connected"
        }) {
            if let Err(e) = sync(&app, channel).await {
                tracing::warn!(channel_id = channel.id, error = %e, "template sync failed");
            }
        }
    }
}

/// Meta's paging links repeat the access token in their query. It is sent as a header
/// instead, so it never sits in a URL, which errors and proxies print.
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
    fn meta_components_become_content() {
        let components = json!([
            {"type": "HEADER", "format": "TEXT", "text": "Pedido {{order}}"},
            {"type": "BODY", "text": "Hola {{name}}, tu pedido {{order}} va en camino"},
            {"type": "FOOTER", "text": "Gracias"},
            {"type": "BUTTONS", "buttons": [
                {"type": "URL", "text": "Seguir", "url": "https://x.example/t/{{1}}"},
                {"type": "QUICK_REPLY", "text": "OK"},
                {"type": "FLOW", "text": "ignored"}
            ]}
        ]);
        let c = content_from_meta(&components).unwrap();
        assert_eq!(c.body, "Hola {{name}}, tu pedido {{order}} va en camino");
        assert_eq!(c.footer.as_deref(), Some("Gracias"));
        assert_eq!(c.buttons.len(), 2);
        assert_eq!(c.params(), vec!["order", "name", "1"]);
    }

    #[test]
    fn media_headers_keep_their_example() {
        let c = content_from_meta(&json!([
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://x.example/a.png"]}},
            {"type": "BODY", "text": "Hola"}
        ]))
        .unwrap();
        assert!(matches!(c.header, Some(Header::Image { example: Some(_) })));
    }

    #[test]
    fn invalid_placeholders_are_refused() {
        assert!(
            content_from_meta(&json!([{"type": "BODY", "text": "Hola {{Bad Name}}"}])).is_err()
        );
    }
}
