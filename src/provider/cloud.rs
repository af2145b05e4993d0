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
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::Serialize;
use serde_json::Value;

use super::{Accepted, MediaFile, Provider};
use crate::config::Config;
use crate::domain::meta_error::MetaError;
use crate::domain::template::cloud_components;
use crate::service::views::template_content;
use crate::store::{Channel, ClaimedJob};

pub struct CloudProvider {
    http: reqwest::Client,
    /// `graph_base_url` with the version appended, parsed once (every send's URL starts
    /// with it), or why that cannot be.
    prefix: Result<reqwest::Url, String>,
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
            prefix: versioned_base(
                config.graph_base_url.trim_end_matches('/'),
                &config.graph_version,
            ),
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
        let mut url = self.prefix.clone()?;
        if !segments.is_empty() {
            url.path_segments_mut()
                .map_err(|()| "graph_base_url cannot have a path".to_string())?
                .extend(segments);
        }
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

/// `base` (no trailing `/`) with `version` as its last path segment.
fn versioned_base(base: &str, version: &str) -> Result<reqwest::Url, String> {
    let mut url =
        reqwest::Url::parse(base).map_err(|e| format!("graph_base_url is not a URL: {e}"))?;
    url.path_segments_mut()
        .map_err(|()| "graph_base_url cannot have a path".to_string())?
        .pop_if_empty()
        .push(version);
    Ok(url)
}

/// The body of a template send. Written from borrowed fields, in the key order a
/// `serde_json::Value` has (sorted), so the bytes are those of the `json!` it replaced.
#[derive(Serialize)]
struct SendBody<'a> {
    /// Comes back in every status webhook: a status can be matched to the message even
    /// when this call's response is lost.
    biz_opaque_callback_data: &'a str,
    messaging_product: &'static str,
    recipient_type: &'static str,
    template: SendTemplate<'a>,
    to: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct SendTemplate<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    components: Vec<Value>,
    language: Language<'a>,
    name: &'a str,
}

#[derive(Serialize)]
struct Language<'a> {
    code: &'a str,
}

/// The JSON body of a template send.
pub fn message_body(job: &ClaimedJob) -> serde_json::Result<Vec<u8>> {
    let content = template_content(&job.template);
    let body = SendBody {
        biz_opaque_callback_data: &job.message.id,
        messaging_product: "whatsapp",
        recipient_type: "individual",
        template: SendTemplate {
            components: cloud_components(&content, &job.message.params),
            language: Language {
                code: &job.template.language,
            },
            name: &job.template.name,
        },
        to: &job.message.phone_number,
        kind: "template",
    };
    serde_json::to_vec(&body)
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
            .header(CONTENT_TYPE, "application/json")
            .body(message_body(job).map_err(|e| MetaError::connection(e.to_string()))?)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let body = graph_body(response).await?;
        match send_answer(&body) {
            Some(accepted) => Ok(accepted),
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

/// What a send's 2xx answer says: `messages[0].id` (none: not accepted) and
/// `contacts[0].wa_id`. Read without a `Value` tree when the answer has the usual shape;
/// anything else (a wrong type, a repeated key) is read the `Value` way, as it always was.
fn send_answer(body: &[u8]) -> Option<Accepted> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        messages: Vec<Message>,
        #[serde(default)]
        contacts: Vec<Contact>,
    }
    #[derive(serde::Deserialize)]
    struct Message {
        id: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Contact {
        wa_id: Option<String>,
    }
    if let Ok(answer) = serde_json::from_slice::<Answer>(body) {
        let provider_message_id = answer.messages.into_iter().next()?.id?;
        return Some(Accepted {
            provider_message_id,
            wa_id: answer.contacts.into_iter().next().and_then(|c| c.wa_id),
        });
    }
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    Some(Accepted {
        provider_message_id: value["messages"][0]["id"].as_str()?.to_string(),
        wa_id: value["contacts"][0]["wa_id"].as_str().map(str::to_string),
    })
}

/// A Graph API answer's raw body on a 2xx; Meta's error (with `Retry-After`) otherwise.
async fn graph_body(response: reqwest::Response) -> Result<bytes::Bytes, MetaError> {
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
    Ok(body)
}

/// [`graph_body`] and its JSON (null when not JSON).
async fn graph_answer(response: reqwest::Response) -> Result<(Value, bytes::Bytes), MetaError> {
    let body = graph_body(response).await?;
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok((value, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::status::MessageStatus;
    use crate::store::{Message, Template};
    use serde_json::json;

    fn job(message: &str, params: &[(&str, &str)], buttons: Value) -> ClaimedJob {
        ClaimedJob {
            message: Message {
                id: "msg_\"1\"".into(),
                account_id: "acc_1".into(),
                channel_id: "ch_1".into(),
                conversation_id: "conv_1".into(),
                template_id: "tpl_1".into(),
                phone_number: "+5491122334455".into(),
                params: params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                status: MessageStatus::Sending,
                provider_message_id: None,
                wa_id: None,
                attempts: 1,
                error: None,
                queued_at: 1,
                sending_at: Some(2),
                sent_at: None,
                delivered_at: None,
                read_at: None,
                failed_at: None,
                pricing_category: None,
                pricing: None,
                batch_id: None,
                callback_url: None,
                metadata: None,
                updated_at: 2,
                scheduled_for: None,
                held_until: None,
                held_reason: None,
                cancelled_at: None,
            },
            template: Template {
                id: "tpl_1".into(),
                account_id: "acc_1".into(),
                name: "order_ready".into(),
                language: "es_AR".into(),
                category: "UTILITY".into(),
                status: "APPROVED".into(),
                app_id: String::new(),
                message: message.into(),
                header: None,
                footer: None,
                buttons,
                extra: json!({}),
                group_name: None,
                active: true,
                created_at: 1,
                updated_at: 1,
            },
            attempt: 1,
        }
    }

    /// The body as it was built before, through `json!`.
    fn payload_as_value(job: &ClaimedJob) -> Value {
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
            "biz_opaque_callback_data": job.message.id,
        })
    }

    #[test]
    fn a_sends_answer_reads_as_through_a_json_value() {
        let by_value = |body: &str| {
            let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            value["messages"][0]["id"].as_str().map(|id| {
                (
                    id.to_string(),
                    value["contacts"][0]["wa_id"].as_str().map(str::to_string),
                )
            })
        };
        for body in [
            r#"{"messaging_product":"whatsapp","contacts":[{"input":"+54","wa_id":"54"}],"messages":[{"id":"wamid.1"}]}"#,
            r#"{"messages":[{"id":"wamid.1","message_status":"accepted"},{"id":"wamid.2"}]}"#,
            r#"{"messages":[{"id":"wamid.1"}],"contacts":[]}"#,
            r#"{"messages":[{"id":"wamid.1"}],"contacts":[{"wa_id":7}]}"#,
            r#"{"messages":[{"id":"wamid.1"}],"contacts":{"wa_id":"54"}}"#,
            r#"{"messages":[{"id":"wamid.1"}],"messages":[{"id":"wamid.2"}]}"#,
            r#"{"messages":[{"id":null}]}"#,
            r#"{"messages":[{"id":5}]}"#,
            r#"{"messages":[]}"#,
            r#"{"messages":null}"#,
            r#"{"messages":{"0":{"id":"x"}}}"#,
            r#"{"id":"wamid.1"}"#,
            r#"[]"#,
            r#"not json"#,
            "",
        ] {
            assert_eq!(
                send_answer(body.as_bytes()).map(|a| (a.provider_message_id, a.wa_id)),
                by_value(body),
                "{body}"
            );
        }
    }

    #[test]
    fn a_sends_body_is_byte_for_byte_the_json_value_it_replaced() {
        let buttons = json!([{"type": "URL", "text": "Ver", "url": "https://x.example/{{1}}"}]);
        for (i, job) in [
            job("Sin variables", &[], json!([])),
            job(
                "Hola {{1}}, tu pedido {{2}} está listo",
                &[("1", "Ana \"la\" <b>"), ("2", "#123"), ("button.0", "abc")],
                buttons,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let expected = payload_as_value(&job);
            assert_eq!(
                expected["template"].get("components").is_some(),
                i == 1,
                "{expected}"
            );
            let body = message_body(&job).unwrap();
            assert_eq!(
                String::from_utf8(body).unwrap(),
                serde_json::to_string(&expected).unwrap()
            );
        }
    }

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
