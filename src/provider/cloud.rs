//! The WhatsApp Cloud API client: one template send per call to
//! `POST {graph_base_url}/{graph_version}/{phone-number-id}/messages`.
//!
//! Media uploads go to `POST {graph_base_url}/{graph_version}/{phone-number-id}/media`
//! (multipart: `messaging_product`, `type`, `file`).
//!
//! Reference: developers.facebook.com/docs/whatsapp/cloud-api/guides/send-message-templates,
//! developers.facebook.com/docs/whatsapp/cloud-api/reference/media

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};

use super::{Accepted, MediaFile, Provider};
use crate::config::Config;
use crate::domain::meta_error::MetaError;
use crate::domain::template::cloud_components;
use crate::service::views::template_content;
use crate::store::{Channel, ClaimedJob};

pub struct CloudProvider {
    http: reqwest::Client,
    base: String,
    version: String,
    /// Timeout of one media upload (files up to 100 MB take longer than a send).
    upload_timeout: Duration,
}

impl CloudProvider {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.graph_timeout_ms))
            .connect_timeout(Duration::from_secs(5))
            // Every channel's sends go to one host: a pass's sends for many channels leave
            // together, and a connection not kept idle is opened again for the next ones
            // (a connect per send at a few hundred in flight). Idle ones close after 90 s.
            .pool_max_idle_per_host(1024)
            .build()?;
        Ok(Self {
            http,
            base: config.graph_base_url.trim_end_matches('/').to_string(),
            version: config.graph_version.clone(),
            upload_timeout: Duration::from_millis(
                config.graph_timeout_ms.max(config.batch_request_timeout_ms),
            ),
        })
    }

    /// The Graph API URL of `segments` under the configured version, each segment
    /// percent-encoded as one path segment (an id can never add a path or a query). An
    /// empty, `.` or `..` segment is refused: it would name another node than the one meant.
    pub fn node_url(&self, segments: &[&str]) -> Result<reqwest::Url, String> {
        if let Some(bad) = segments
            .iter()
            .find(|s| s.is_empty() || **s == "." || **s == "..")
        {
            return Err(format!("'{bad}' is not a Graph API node id"));
        }
        let mut url = reqwest::Url::parse(&self.base)
            .map_err(|e| format!("graph_base_url is not a URL: {e}"))?;
        url.path_segments_mut()
            .map_err(|()| "graph_base_url cannot have a path".to_string())?
            .pop_if_empty()
            .push(&self.version)
            .extend(segments);
        Ok(url)
    }

    /// Whether `url` (a paging link Meta handed back) is on the configured Graph API host,
    /// under the configured version: only then is it followed with the channel's token.
    pub fn is_own_url(&self, url: &reqwest::Url) -> bool {
        let Ok(prefix) = self.node_url(&[]) else {
            return false;
        };
        url.origin() == prefix.origin()
            && url
                .path()
                .strip_prefix(prefix.path())
                .is_some_and(|rest| rest.starts_with('/'))
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
        let url = self
            .node_url(&[&channel.phone_number_id, "messages"])
            .map_err(MetaError::connection)?;
        let response = self
            .http
            .post(url)
            .bearer_auth(&channel.access_token)
            .json(&message_payload(job))
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let (value, body) = graph_answer(response).await?;
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

    async fn upload_media(&self, channel: &Channel, file: &MediaFile) -> Result<String, MetaError> {
        let url = self
            .node_url(&[&channel.phone_number_id, "media"])
            .map_err(MetaError::connection)?;
        let part = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::from(file.bytes.clone()),
            file.bytes.len() as u64,
        )
        .file_name(file.name_or_default())
        .mime_str(&file.mime_type)
        .map_err(|e| MetaError::connection(format!("media type '{}': {e}", file.mime_type)))?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", file.mime_type.clone())
            .part("file", part);
        let response = self
            .http
            .post(url)
            .bearer_auth(&channel.access_token)
            .timeout(self.upload_timeout)
            .multipart(form)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let (value, body) = graph_answer(response).await?;
        match value["id"].as_str().filter(|id| !id.is_empty()) {
            Some(id) => Ok(id.to_string()),
            // A 2xx without an id: the upload cannot be used.
            None => Err(MetaError::from_response(502, &body, None)),
        }
    }
}

/// A Graph API answer: its JSON (null when not JSON) and raw body on a 2xx; Meta's error
/// (with `Retry-After`) otherwise.
async fn graph_answer(response: reqwest::Response) -> Result<(Value, bytes::Bytes), MetaError> {
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
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok((value, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_keep_ids_in_one_segment() {
        let config = Config {
            graph_base_url: "http://127.0.0.1:9/graph/".into(),
            ..Config::default()
        };
        let cloud = CloudProvider::new(&config).unwrap();
        assert_eq!(
            cloud.node_url(&["1234", "media"]).unwrap().as_str(),
            "http://127.0.0.1:9/graph/v23.0/1234/media"
        );
        assert_eq!(
            cloud.node_url(&["../x?y=1#z", "media"]).unwrap().as_str(),
            "http://127.0.0.1:9/graph/v23.0/..%2Fx%3Fy=1%23z/media"
        );
        for bad in ["", ".", ".."] {
            assert!(cloud.node_url(&[bad, "media"]).is_err(), "{bad:?}");
        }
        let own = |u: &str| cloud.is_own_url(&reqwest::Url::parse(u).unwrap());
        assert!(own(
            "http://127.0.0.1:9/graph/v23.0/55/message_templates?after=x"
        ));
        assert!(!own("http://127.0.0.1:9/graph/v23.0x/55"));
        assert!(!own("http://127.0.0.1:9/graph/me/accounts"));
        assert!(!own("http://evil.example/graph/v23.0/55/message_templates"));
        assert!(!own("https://127.0.0.1:9/graph/v23.0/55/message_templates"));
    }

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
