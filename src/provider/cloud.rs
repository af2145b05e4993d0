//! The WhatsApp Cloud API client: one template send per call to
//! `POST {graph_base_url}/{graph_version}/{phone-number-id}/messages`.
//!
//! Reference: developers.facebook.com/docs/whatsapp/cloud-api/guides/send-message-templates

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};

use super::{Accepted, Provider};
use crate::config::Config;
use crate::domain::meta_error::MetaError;
use crate::domain::template::cloud_components;
use crate::service::views::template_content;
use crate::store::{Channel, ClaimedJob};

pub struct CloudProvider {
    http: reqwest::Client,
    base: String,
    version: String,
}

impl CloudProvider {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.graph_timeout_ms))
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self {
            http,
            base: config.graph_base_url.trim_end_matches('/').to_string(),
            version: config.graph_version.clone(),
        })
    }

    /// The Graph API URL of a path under the configured version.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}",
            self.base,
            self.version,
            path.trim_start_matches('/')
        )
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }
}

/// The body of a template send.
pub fn message_payload(job: &ClaimedJob) -> Value {
    let content = template_content(&job.template);
    let components = cloud_components(&content, &job.message.params);
    let mut template = json!({
        "name": job.template.name,
        "language": {"code": job.template.language},
    });
    if !components.is_empty() {
        template["components"] = Value::Array(components);
    }
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": job.message.phone_number,
        "type": "template",
        "template": template,
        // Comes back in every status webhook: a status can be matched to the message even
        // when this call's response is lost.
        "biz_opaque_callback_data": job.message.id,
    })
}

/// Turns a transport failure into Meta's shape so it is classified like any error. The
/// error's text names the URL; its query is cut off, since a URL Meta hands back (a paging
/// link) can carry an access token, and this text is logged and shown to operators.
pub fn transport_error(e: &reqwest::Error) -> MetaError {
    if e.is_timeout() {
        return MetaError::timeout();
    }
    let mut text = e.to_string();
    if let Some(url) = e.url()
        && url.query().is_some()
    {
        let mut bare = url.clone();
        bare.set_query(None);
        text = text.replace(url.as_str(), bare.as_str());
    }
    MetaError::connection(text)
}

#[async_trait]
impl Provider for CloudProvider {
    async fn send(&self, channel: &Channel, job: &ClaimedJob) -> Result<Accepted, MetaError> {
        let url = self.url(&format!("{}/messages", channel.phone_number_id));
        let response = self
            .http
            .post(url)
            .bearer_auth(&channel.access_token)
            .json(&message_payload(job))
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.bytes().await.map_err(|e| transport_error(&e))?;
        if !(200..300).contains(&status) {
            return Err(MetaError::from_response(
                status,
                &body,
                retry_after.as_deref(),
            ));
        }
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match value["messages"][0]["id"].as_str() {
            Some(wamid) => Ok(Accepted {
                provider_message_id: wamid.to_string(),
                wa_id: value["contacts"][0]["wa_id"].as_str().map(str::to_string),
            }),
            // A 2xx without a message id: Meta did not take the message as far as we can
            // tell; retry (the callback data lets a late status reconcile it).
            None => Err(MetaError::from_response(502, &body, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn transport_errors_do_not_repeat_the_query() {
        // Nothing listens on port 1 of loopback: the connection is refused.
        let err = reqwest::Client::new()
            .get("http://127.0.0.1:1/v23.0/123/message_templates?access_token=EAAGsecret&after=x")
            .send()
            .await
            .unwrap_err();
        let shown = transport_error(&err).description().to_string();
        assert!(
            shown.contains("127.0.0.1:1/v23.0/123/message_templates"),
            "{shown}"
        );
        assert!(
            !shown.contains("EAAGsecret") && !shown.contains("after="),
            "{shown}"
        );
    }
}
