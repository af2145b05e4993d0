//! A fake WhatsApp Cloud API (Graph API) server for tests and benchmarks.
//!
//! It listens on loopback and answers the two Graph API calls plantilla makes,
//! under any version prefix (`/v23.0/...`) or none:
//!
//! - `POST /{version}/{phone-number-id}/messages`: checks the bearer token of
//!   the phone number, the payload (`messaging_product`, `to`,
//!   `type: "template"`, `template.name`, `template.language.code`) and, for a
//!   template it knows, the header / body / button parameters (count,
//!   `parameter_name` for named templates) the way Meta does, answering Meta's
//!   error JSON (190, 100, 131008, 132000, 132001, 132012, 132015, 132016,
//!   130429, 131056…). Accepted sends get a `wamid.…` and, when a webhook URL
//!   is set, signed status webhooks (`sent` → `delivered` → `read`, or
//!   `failed`).
//! - `GET /{version}/{waba-id}/message_templates?limit=&after=`: the
//!   registered templates in Meta's shape, with cursor paging and an absolute
//!   `paging.next`.
//!
//! Errors are injected by [`Rule`]s (matched in insertion order, each firing a
//! number of times) or at random with [`FakeGraphConfig::fail_ratio`] (seeded).
//! Throughput is limited per phone number ([`FakeGraphConfig::max_rps`], 130429)
//! and per recipient ([`FakeGraphConfig::pair_rate`], 131056). Everything
//! received is recorded for assertions ([`FakeGraph::sent`],
//! [`FakeGraph::requests`], [`FakeGraph::max_per_second`]…).
//!
//! Template sends are checked against Meta-shaped templates
//! ([`FakeTemplate::from_meta`]) of every kind: media / location headers,
//! typed body parameters, every button type at Meta's index, OTP,
//! limited-time offers and carousels (see `check.rs` for the rules and the
//! pages they follow).
//!
//! Template authoring (see `authoring.rs`): `POST` / `DELETE
//! /{version}/{waba-id}/message_templates`, the resumable upload API
//! (`POST /{version}/{app-id}/uploads`, `POST /{version}/upload:…`), and
//! review through [`FakeGraph::review_template`] or
//! `POST /_fake/templates/{id}/review` (signed
//! `message_template_status_update` webhook), or automatically after
//! [`FakeGraphConfig::auto_approve_after`].
//!
//! Health webhooks (template status, category and quality, phone number quality, account
//! update): built by [`FakeGraph::template_status_update_full`],
//! [`FakeGraph::template_category_update`], [`FakeGraph::template_category_notice`],
//! [`FakeGraph::template_quality_update`], [`FakeGraph::phone_quality_update`] and
//! [`FakeGraph::account_update`] (post with [`FakeGraph::post_webhook_for`]), or posted signed
//! on request by `POST /_fake/webhooks/{field}` (see `health.rs`).
//!
//! `GET /_fake/stats` answers a JSON summary (for benchmark scripts).
//!
//! Inbound messages: [`FakeGraph::emit_inbound`] or `POST /_fake/inbound` posts a signed
//! `messages` webhook carrying an [`InboundEvent`] (a text, a quick-reply click with
//! `context.id`, any other type, from a number and/or a business-scoped `user_id`), retried
//! like the status webhooks.
//!
//! The `fake-graph` binary (`src/main.rs` of this crate) runs it as a process.

mod arrival;
mod authoring;
mod check;
pub mod error;
mod health;
mod media;
pub mod payload;
mod server;
pub mod template;
mod webhook;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use authoring::{CreatedTemplate, DeletedTemplate, UPLOAD_FILE_TYPES, UploadRecord};
pub use error::GraphError;
pub use media::MediaUpload;
pub use payload::{
    BusinessIds, InboundEvent, StatusError, StatusEvent, TemplateStatusUpdate, signature,
};
pub use template::{FakeButton, FakeTemplate};

/// WABA id given to phone numbers that do not name one.
pub const DEFAULT_WABA_ID: &str = "100000000000001";
/// Display number given to phone numbers that do not name one.
pub const DEFAULT_DISPLAY_PHONE_NUMBER: &str = "15550000001";

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// A business phone number the fake knows: its id, the access token that may
/// send from it, its WABA and display number. `webhook_url` / `app_secret`
/// override the global ones for this number's status webhooks (e.g. a
/// per-channel webhook endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakePhoneNumber {
    pub phone_number_id: String,
    pub access_token: String,
    #[serde(default = "default_waba")]
    pub waba_id: String,
    #[serde(default = "default_display")]
    pub display_phone_number: String,
    /// Overrides [`FakeGraphConfig::max_rps`] for this number.
    #[serde(default)]
    pub max_rps: Option<u32>,
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub app_secret: Option<String>,
}

fn default_waba() -> String {
    DEFAULT_WABA_ID.to_string()
}

fn default_display() -> String {
    DEFAULT_DISPLAY_PHONE_NUMBER.to_string()
}

impl FakePhoneNumber {
    pub fn new(phone_number_id: impl Into<String>, access_token: impl Into<String>) -> Self {
        FakePhoneNumber {
            phone_number_id: phone_number_id.into(),
            access_token: access_token.into(),
            waba_id: default_waba(),
            display_phone_number: default_display(),
            max_rps: None,
            webhook_url: None,
            app_secret: None,
        }
    }

    pub fn with_waba(mut self, waba_id: impl Into<String>) -> Self {
        self.waba_id = waba_id.into();
        self
    }

    pub fn with_display_phone_number(mut self, number: impl Into<String>) -> Self {
        self.display_phone_number = number.into();
        self
    }

    pub fn with_max_rps(mut self, max_rps: u32) -> Self {
        self.max_rps = Some(max_rps);
        self
    }

    /// Status webhooks of this number go to `url`, signed with `app_secret`.
    pub fn with_webhook(mut self, url: impl Into<String>, app_secret: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self.app_secret = Some(app_secret.into());
        self
    }
}

/// Per-recipient limit: at most `max` accepted messages from one phone number
/// to one recipient in any window of `per`; above it, 131056.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairRate {
    pub max: u32,
    pub per: Duration,
}

/// How the fake behaves. [`Default`] gives: loopback port 0, no phone numbers
/// (add some, or set `default_access_token` / `accept_any_token`), unknown
/// templates rejected with 132001, statuses sent → delivered → read with no
/// delay, no limits, no faults.
#[derive(Debug, Clone)]
pub struct FakeGraphConfig {
    /// Address to bind; `127.0.0.1:0` by default.
    pub listen: SocketAddr,
    /// Base of the absolute URLs the fake writes (`paging.next`); default
    /// `http://{bound address}`.
    pub public_base_url: Option<String>,
    pub phone_numbers: Vec<FakePhoneNumber>,
    /// A token accepted for any phone number id / WABA id that is not in
    /// `phone_numbers` (with the default WABA and display number).
    pub default_access_token: Option<String>,
    /// Accept any non-empty token for ids not in `phone_numbers`.
    pub accept_any_token: bool,
    pub templates: Vec<FakeTemplate>,
    /// Accept sends of templates the fake does not know (no parameter check)
    /// instead of answering 132001.
    pub accept_unknown_templates: bool,
    /// Where status webhooks go; none are sent when `None` (and no phone
    /// number has its own).
    pub webhook_url: Option<String>,
    /// Key of the webhooks' `X-Hub-Signature-256`.
    pub app_secret: String,
    /// Wait before each status webhook of a message.
    pub status_delay: Duration,
    /// Send `delivered` after `sent`.
    pub send_delivered: bool,
    /// Send `read` after `delivered`.
    pub send_read: bool,
    /// `pricing.pricing_model` of status webhooks (`PMP`: per-message pricing).
    pub pricing_model: String,
    /// Retries of a webhook POST that failed (connection error or non-2xx).
    pub webhook_retries: u32,
    /// Accepted sends per phone number in any 1-second window; above it,
    /// 130429.
    pub max_rps: Option<u32>,
    /// HTTP status of 130429 answers (400 by default).
    pub throughput_http_status: u16,
    pub pair_rate: Option<PairRate>,
    /// Fraction (0..=1) of sends that fail at random, evenly among: HTTP 500
    /// (131000), 130429, a dropped connection, and a delay of `fault_delay`
    /// before normal handling.
    pub fail_ratio: f64,
    pub fault_delay: Duration,
    /// Seed of the fault RNG.
    pub seed: u64,
    /// Templates created through `POST /{waba-id}/message_templates` are
    /// approved (with a `message_template_status_update` webhook) after this
    /// delay; `None`: they stay `PENDING` until reviewed.
    pub auto_approve_after: Option<Duration>,
    /// Most statuses in one status webhook POST. 1 (the default): each status is its own
    /// POST. Above 1, the statuses of many messages share a POST as Meta batches them
    /// (`entry[]` per WABA, `changes[]` per phone number, `statuses[]`); each message's
    /// statuses still come in order, the next only after the POST carrying the previous
    /// was answered. For benchmarks: a POST per status would cost the fake more than
    /// plantilla's own work.
    pub webhook_batch: usize,
    /// With `webhook_batch` above 1: how long a batch waits for more statuses after its
    /// first (none by default: a batch is what queued while the previous POSTs were busy).
    pub webhook_linger: Duration,
    /// With `webhook_batch` above 1: most batch POSTs in flight at once.
    pub webhook_in_flight: usize,
}

impl Default for FakeGraphConfig {
    fn default() -> Self {
        FakeGraphConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_base_url: None,
            phone_numbers: Vec::new(),
            default_access_token: None,
            accept_any_token: false,
            templates: Vec::new(),
            accept_unknown_templates: false,
            webhook_url: None,
            app_secret: "fake-graph-app-secret".to_string(),
            status_delay: Duration::ZERO,
            send_delivered: true,
            send_read: true,
            pricing_model: "PMP".to_string(),
            webhook_retries: 2,
            max_rps: None,
            throughput_http_status: 400,
            pair_rate: None,
            fail_ratio: 0.0,
            fault_delay: Duration::from_secs(3),
            seed: 0,
            auto_approve_after: None,
            webhook_batch: 1,
            webhook_linger: Duration::ZERO,
            webhook_in_flight: 32,
        }
    }
}

impl FakeGraphConfig {
    /// Adds a phone number with its token (default WABA and display number).
    pub fn with_phone(mut self, phone_number_id: &str, access_token: &str) -> Self {
        self.phone_numbers
            .push(FakePhoneNumber::new(phone_number_id, access_token));
        self
    }

    pub fn with_template(mut self, template: FakeTemplate) -> Self {
        self.templates.push(template);
        self
    }

    pub fn with_webhook(mut self, url: impl Into<String>, app_secret: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self.app_secret = app_secret.into();
        self
    }
}

// ---------------------------------------------------------------------------
// Error injection
// ---------------------------------------------------------------------------

/// An error-injection rule: when a send to `to` (any recipient when `None`)
/// arrives, `action` happens instead of (or before) normal handling, `times`
/// times (`None`: always). Rules are checked in insertion order; the first
/// live match fires. "500, 500, then success" is
/// `Rule::times(2, Action::server_error())`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub to: Option<String>,
    pub times: Option<u32>,
    pub action: Action,
}

impl Rule {
    /// Fires on every send.
    pub fn always(action: Action) -> Rule {
        Rule {
            to: None,
            times: None,
            action,
        }
    }

    /// Fires on the next `n` sends.
    pub fn times(n: u32, action: Action) -> Rule {
        Rule {
            to: None,
            times: Some(n),
            action,
        }
    }

    /// Fires on the next send.
    pub fn once(action: Action) -> Rule {
        Rule::times(1, action)
    }

    /// Only for sends to this recipient.
    pub fn to(mut self, to: impl Into<String>) -> Rule {
        self.to = Some(to.into());
        self
    }
}

/// What a [`Rule`] does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer this Graph API error (Meta's error JSON; `Retry-After` when
    /// `retry_after` is set).
    HttpError {
        status: u16,
        code: i64,
        subcode: Option<i64>,
        message: String,
        details: Option<String>,
        retry_after: Option<u64>,
    },
    /// Wait, then handle normally (client timeouts).
    Delay(Duration),
    /// Close the connection without answering.
    DropConnection,
    /// Accept (with a wamid), then report `failed` with this error in the
    /// status webhook.
    AcceptThenFail {
        code: i64,
        title: String,
        details: String,
    },
    /// Handle normally, then wait before answering.
    DelayResponse(Duration),
    /// Handle normally and answer only after the first status webhook of the
    /// message was delivered (a status that arrives before the send's
    /// response). Needs a webhook URL.
    StatusBeforeResponse,
}

impl Action {
    /// Meta's usual answer for `code` (status and `(#code) Title` message).
    pub fn error(code: i64) -> Action {
        GraphError::meta(code).into()
    }

    /// Meta's usual answer for `code`, with `error_data.details`.
    pub fn error_with_details(code: i64, details: impl Into<String>) -> Action {
        GraphError::meta(code).with_details(details).into()
    }

    /// HTTP 500 with code 131000 "Something went wrong".
    pub fn server_error() -> Action {
        Action::error_with_details(131000, "Something went wrong")
    }

    /// 130429 "Rate limit hit" (HTTP 400).
    pub fn throughput() -> Action {
        Action::error_with_details(130429, "Cloud API message throughput has been reached.")
    }

    /// 131056 pair rate limit (HTTP 400).
    pub fn pair_rate() -> Action {
        Action::error_with_details(131056, PAIR_RATE_DETAILS)
    }

    /// 190 expired access token (HTTP 401).
    pub fn expired_token() -> Action {
        Action::HttpError {
            status: 401,
            code: 190,
            subcode: Some(463),
            message: "Error validating access token: Session has expired.".to_string(),
            details: None,
            retry_after: None,
        }
    }

    /// Accept, then a `failed` status with this error.
    pub fn accept_then_fail(
        code: i64,
        title: impl Into<String>,
        details: impl Into<String>,
    ) -> Action {
        Action::AcceptThenFail {
            code,
            title: title.into(),
            details: details.into(),
        }
    }
}

impl From<GraphError> for Action {
    fn from(e: GraphError) -> Action {
        Action::HttpError {
            status: e.status,
            code: e.code,
            subcode: e.subcode,
            message: e.message,
            details: e.details,
            retry_after: e.retry_after,
        }
    }
}

pub(crate) const PAIR_RATE_DETAILS: &str = "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.";

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

/// What became of a `messages` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOutcome {
    Accepted {
        wamid: String,
    },
    Rejected {
        status: u16,
        code: i64,
    },
    /// The connection was closed without an answer.
    Dropped,
}

/// One `POST …/messages` attempt, accepted or not.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub phone_number_id: String,
    pub to: Option<String>,
    /// The JSON body (`Null` when it was not JSON).
    pub body: Value,
    pub authorization: Option<String>,
    /// When its bytes reached the fake's socket (on Linux the kernel's receive time, not
    /// when the fake got to handle it), on the wall clock and on `Instant`'s.
    pub received_at: DateTime<Utc>,
    pub received: Instant,
    pub outcome: RequestOutcome,
}

/// One accepted send.
#[derive(Debug, Clone)]
pub struct SentMessage {
    pub wamid: String,
    pub phone_number_id: String,
    /// `to` as sent.
    pub to: String,
    /// `to` with only its digits (the `wa_id` answered).
    pub wa_id: String,
    /// `template.name`.
    pub template: String,
    /// `template.language.code`.
    pub language: String,
    /// `template.components` (empty when absent).
    pub components: Vec<Value>,
    pub biz_opaque_callback_data: Option<String>,
    /// The whole request body.
    pub body: Value,
    /// When its request reached the fake's socket, as [`RequestRecord::received_at`].
    pub received_at: DateTime<Utc>,
    pub received: Instant,
    /// The error code its `failed` webhook reports ([`Action::AcceptThenFail`]).
    pub fails_with: Option<i64>,
}

impl SentMessage {
    /// The components of a type (`header`, `body`, `button`), case-insensitive.
    pub fn components_of(&self, kind: &str) -> Vec<&Value> {
        self.components
            .iter()
            .filter(|c| {
                c.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case(kind))
            })
            .collect()
    }

    /// The `text` of each parameter of the first component of a type.
    pub fn texts(&self, kind: &str) -> Vec<String> {
        self.components_of(kind)
            .first()
            .and_then(|c| c.get("parameters"))
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        p.get("text")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `(parameter_name, text)` of each body parameter.
    pub fn named_body_params(&self) -> Vec<(Option<String>, String)> {
        self.components_of("body")
            .first()
            .and_then(|c| c.get("parameters"))
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        (
                            p.get("parameter_name")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            p.get("text")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A `messages` request as kept: its bytes, parsed again only when a test asks for its
/// [`RequestRecord`] (a copy of every body per request would cost the benchmark more than
/// the checks themselves).
pub(crate) struct RequestRec {
    pub(crate) phone_number_id: String,
    pub(crate) to: Option<String>,
    pub(crate) raw: bytes::Bytes,
    pub(crate) authorization: Option<String>,
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) received: Instant,
    pub(crate) outcome: RequestOutcome,
}

impl RequestRec {
    fn record(&self) -> RequestRecord {
        RequestRecord {
            phone_number_id: self.phone_number_id.clone(),
            to: self.to.clone(),
            body: serde_json::from_slice(&self.raw).unwrap_or(Value::Null),
            authorization: self.authorization.clone(),
            received_at: self.received_at,
            received: self.received,
            outcome: self.outcome.clone(),
        }
    }
}

/// An accepted send as kept: what the fake itself needs, and the request's bytes for the
/// [`SentMessage`] a test asks for.
pub(crate) struct SentRec {
    pub(crate) wamid: String,
    pub(crate) phone_number_id: String,
    pub(crate) to: String,
    pub(crate) wa_id: String,
    pub(crate) template: String,
    pub(crate) language: String,
    pub(crate) biz_opaque_callback_data: Option<String>,
    pub(crate) raw: bytes::Bytes,
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) received: Instant,
    pub(crate) fails_with: Option<i64>,
}

impl SentRec {
    fn message(&self) -> SentMessage {
        let body: Value = serde_json::from_slice(&self.raw).unwrap_or(Value::Null);
        SentMessage {
            wamid: self.wamid.clone(),
            phone_number_id: self.phone_number_id.clone(),
            to: self.to.clone(),
            wa_id: self.wa_id.clone(),
            template: self.template.clone(),
            language: self.language.clone(),
            components: body
                .pointer("/template/components")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            biz_opaque_callback_data: self.biz_opaque_callback_data.clone(),
            body,
            received_at: self.received_at,
            received: self.received,
            fails_with: self.fails_with,
        }
    }
}

/// One webhook the fake posted on its own (status webhooks), as kept: the body as sent,
/// turned into a [`WebhookRecord`] only when asked for.
pub(crate) struct PostedWebhook {
    pub(crate) phone_number_id: String,
    pub(crate) url: String,
    pub(crate) body: bytes::Bytes,
    pub(crate) status: Option<u16>,
    pub(crate) attempts: u32,
    pub(crate) delivered: bool,
    pub(crate) at: DateTime<Utc>,
}

impl PostedWebhook {
    fn record(&self) -> WebhookRecord {
        WebhookRecord {
            phone_number_id: self.phone_number_id.clone(),
            url: self.url.clone(),
            body: serde_json::from_slice(&self.body).unwrap_or(Value::Null),
            status: self.status,
            attempts: self.attempts,
            delivered: self.delivered,
            at: self.at,
        }
    }
}

/// One webhook the fake posted on its own (status webhooks). With
/// [`FakeGraphConfig::webhook_batch`], `phone_number_id` is the first of the body's.
#[derive(Debug, Clone)]
pub struct WebhookRecord {
    pub phone_number_id: String,
    pub url: String,
    pub body: Value,
    /// HTTP status of the last attempt; `None` on a connection error.
    pub status: Option<u16>,
    pub attempts: u32,
    pub delivered: bool,
    pub at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------

pub(crate) struct RuleSlot {
    pub(crate) phone_number_id: Option<String>,
    pub(crate) rule: Rule,
    pub(crate) fired: u32,
}

pub(crate) struct State {
    pub(crate) config: FakeGraphConfig,
    pub(crate) phones: HashMap<String, FakePhoneNumber>,
    pub(crate) templates: Vec<FakeTemplate>,
    pub(crate) next_template_id: u64,
    pub(crate) rules: Vec<RuleSlot>,
    pub(crate) requests: Vec<RequestRec>,
    pub(crate) sent: Vec<SentRec>,
    pub(crate) windows: HashMap<String, VecDeque<Instant>>,
    pub(crate) pair_windows: HashMap<(String, String), VecDeque<Instant>>,
    /// (phone number id, wa_id) → (conversation id, expiration unix secs).
    pub(crate) conversations: HashMap<(String, String), (String, i64)>,
    pub(crate) webhooks: Vec<PostedWebhook>,
    pub(crate) rng: StdRng,
    pub(crate) template_list_requests: u64,
    pub(crate) media_uploads: Vec<MediaUpload>,
    pub(crate) authoring: authoring::AuthoringState,
}

impl State {
    /// The phone number, or a default one for an unregistered id.
    pub(crate) fn phone(&self, phone_number_id: &str) -> FakePhoneNumber {
        self.phones
            .get(phone_number_id)
            .cloned()
            .unwrap_or_else(|| {
                FakePhoneNumber::new(
                    phone_number_id,
                    self.config.default_access_token.clone().unwrap_or_default(),
                )
            })
    }

    pub(crate) fn add_template(&mut self, mut template: FakeTemplate) -> String {
        if template.id.is_empty() {
            self.next_template_id += 1;
            template.id = (900_000_000_000_000 + self.next_template_id).to_string();
        }
        let id = template.id.clone();
        // Same name and language (and account) replaces.
        if let Some(existing) = self.templates.iter_mut().find(|t| {
            t.name == template.name
                && t.language == template.language
                && t.waba_id == template.waba_id
        }) {
            *existing = template;
        } else {
            self.templates.push(template);
        }
        id
    }

    /// Webhook URL and secret for a phone number's webhooks.
    pub(crate) fn webhook_target(&self, phone_number_id: Option<&str>) -> (Option<String>, String) {
        let phone = phone_number_id.and_then(|id| self.phones.get(id));
        let url = phone
            .and_then(|p| p.webhook_url.clone())
            .or_else(|| self.config.webhook_url.clone());
        let secret = phone
            .and_then(|p| p.app_secret.clone())
            .unwrap_or_else(|| self.config.app_secret.clone());
        (url, secret)
    }
}

pub(crate) struct Shared {
    pub(crate) base_url: String,
    pub(crate) state: Mutex<State>,
    pub(crate) hold: watch::Sender<bool>,
    pub(crate) http: reqwest::Client,
    pub(crate) cancel: CancellationToken,
    pub(crate) webhook_failures: AtomicU64,
    pub(crate) pending_webhooks: AtomicUsize,
    /// Where statuses go when they are batched ([`FakeGraphConfig::webhook_batch`] > 1).
    pub(crate) batcher: Option<tokio::sync::mpsc::UnboundedSender<webhook::Unit>>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps unless the fake stops first; false when it stopped.
    pub(crate) async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.cancel.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    /// Waits while webhooks are held.
    pub(crate) async fn wait_released(&self) {
        let mut rx = self.hold.subscribe();
        let _ = rx.wait_for(|held| !*held).await;
    }
}

// ---------------------------------------------------------------------------
// The server handle
// ---------------------------------------------------------------------------

/// A running fake Graph API. Stops when dropped (or with [`FakeGraph::stop`]).
pub struct FakeGraph {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Option<JoinHandle<()>>,
}

impl FakeGraph {
    /// Starts the fake; panics when it cannot bind (use [`FakeGraph::try_start`]
    /// to handle that).
    pub async fn start(config: FakeGraphConfig) -> FakeGraph {
        FakeGraph::try_start(config)
            .await
            .expect("fake Graph API server failed to start")
    }

    pub async fn try_start(config: FakeGraphConfig) -> anyhow::Result<FakeGraph> {
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let base_url = config
            .public_base_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{addr}"));
        let mut state = State {
            phones: HashMap::new(),
            templates: Vec::new(),
            next_template_id: 0,
            rules: Vec::new(),
            requests: Vec::new(),
            sent: Vec::new(),
            windows: HashMap::new(),
            pair_windows: HashMap::new(),
            conversations: HashMap::new(),
            webhooks: Vec::new(),
            rng: StdRng::seed_from_u64(config.seed),
            template_list_requests: 0,
            media_uploads: Vec::new(),
            authoring: Default::default(),
            config: config.clone(),
        };
        for phone in config.phone_numbers {
            state.phones.insert(phone.phone_number_id.clone(), phone);
        }
        for template in config.templates {
            state.add_template(template);
        }
        state.config.phone_numbers.clear();
        state.config.templates.clear();
        let (hold, _) = watch::channel(false);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let cancel = CancellationToken::new();
        let batch = (config.webhook_batch > 1).then_some(webhook::BatchConfig {
            max: config.webhook_batch,
            linger: config.webhook_linger,
            in_flight: config.webhook_in_flight,
        });
        let shared = Arc::new_cyclic(|weak| Shared {
            base_url,
            state: Mutex::new(state),
            hold,
            http,
            cancel: cancel.clone(),
            webhook_failures: AtomicU64::new(0),
            pending_webhooks: AtomicUsize::new(0),
            batcher: batch.map(|b| webhook::start_batcher(weak.clone(), cancel.clone(), b)),
        });
        let server = tokio::spawn(server::serve(listener, shared.clone()));
        Ok(FakeGraph {
            shared,
            addr,
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT` (or the configured public base URL): plantilla's
    /// `graph_base_url`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving, drops held and pending webhooks.
    pub async fn stop(mut self) {
        self.shared.cancel.cancel();
        if let Some(mut server) = self.server.take() {
            if tokio::time::timeout(Duration::from_secs(3), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
    }

    // --- configuration at run time -----------------------------------------

    /// Adds (or replaces) a phone number.
    pub fn add_phone_number(&self, phone: FakePhoneNumber) {
        self.shared
            .lock()
            .phones
            .insert(phone.phone_number_id.clone(), phone);
    }

    /// Changes the token of a phone number (registering it when unknown): the
    /// old one then gets 190.
    pub fn set_access_token(&self, phone_number_id: &str, token: &str) {
        let mut state = self.shared.lock();
        let mut phone = state.phone(phone_number_id);
        phone.access_token = token.to_string();
        state.phones.insert(phone_number_id.to_string(), phone);
    }

    /// Registers a template (replacing one with the same name, language and
    /// account); returns its id.
    pub fn add_template(&self, template: FakeTemplate) -> String {
        self.shared.lock().add_template(template)
    }

    pub fn templates(&self) -> Vec<FakeTemplate> {
        self.shared.lock().templates.clone()
    }

    /// Sets the status of the templates with this name and language (e.g.
    /// `PAUSED`: sends then get 132015). False when there is none.
    pub fn set_template_status(&self, name: &str, language: &str, status: &str) -> bool {
        let mut state = self.shared.lock();
        let mut found = false;
        for t in state
            .templates
            .iter_mut()
            .filter(|t| t.name == name && t.language == language)
        {
            t.status = status.to_string();
            found = true;
        }
        found
    }

    /// Removes the templates with this name and language.
    pub fn remove_template(&self, name: &str, language: &str) -> bool {
        let mut state = self.shared.lock();
        let before = state.templates.len();
        state
            .templates
            .retain(|t| !(t.name == name && t.language == language));
        state.templates.len() != before
    }

    /// Adds an error-injection rule for sends from any phone number.
    pub fn add_rule(&self, rule: Rule) {
        self.push_rule(None, rule);
    }

    /// Adds an error-injection rule for sends from one phone number.
    pub fn add_phone_rule(&self, phone_number_id: &str, rule: Rule) {
        self.push_rule(Some(phone_number_id.to_string()), rule);
    }

    fn push_rule(&self, phone_number_id: Option<String>, rule: Rule) {
        self.shared.lock().rules.push(RuleSlot {
            phone_number_id,
            rule,
            fired: 0,
        });
    }

    /// How many times each rule fired, in insertion order.
    pub fn rules_fired(&self) -> Vec<u32> {
        self.shared.lock().rules.iter().map(|r| r.fired).collect()
    }

    pub fn clear_rules(&self) {
        self.shared.lock().rules.clear();
    }

    /// Accepted sends per phone number per second (None: no limit).
    pub fn set_max_rps(&self, max_rps: Option<u32>) {
        self.shared.lock().config.max_rps = max_rps;
    }

    pub fn set_pair_rate(&self, pair_rate: Option<PairRate>) {
        self.shared.lock().config.pair_rate = pair_rate;
    }

    pub fn set_fail_ratio(&self, fail_ratio: f64) {
        self.shared.lock().config.fail_ratio = fail_ratio.clamp(0.0, 1.0);
    }

    pub fn set_accept_unknown_templates(&self, accept: bool) {
        self.shared.lock().config.accept_unknown_templates = accept;
    }

    pub fn set_status_delay(&self, delay: Duration) {
        self.shared.lock().config.status_delay = delay;
    }

    /// Which statuses follow `sent` for later sends.
    pub fn set_status_lifecycle(&self, delivered: bool, read: bool) {
        let mut state = self.shared.lock();
        state.config.send_delivered = delivered;
        state.config.send_read = read;
    }

    /// Where status webhooks go (read when each webhook is posted, so it also
    /// redirects held ones).
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.shared.lock().config.webhook_url = url;
    }

    pub fn set_app_secret(&self, secret: &str) {
        self.shared.lock().config.app_secret = secret.to_string();
    }

    /// `true`: status webhooks wait (in order) until released with `false`.
    pub fn hold_webhooks(&self, hold: bool) {
        self.shared.hold.send_replace(hold);
    }

    // --- records -----------------------------------------------------------

    /// Accepted sends, in order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared
            .lock()
            .sent
            .iter()
            .map(SentRec::message)
            .collect()
    }

    /// Every `messages` request, accepted or not, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .lock()
            .requests
            .iter()
            .map(RequestRec::record)
            .collect()
    }

    /// Accepted sends from a phone number.
    pub fn sent_count(&self, phone_number_id: &str) -> usize {
        self.shared
            .lock()
            .sent
            .iter()
            .filter(|s| s.phone_number_id == phone_number_id)
            .count()
    }

    /// Requests (all attempts) for a phone number.
    pub fn request_count(&self, phone_number_id: &str) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.phone_number_id == phone_number_id)
            .count()
    }

    /// Accepted sends to a recipient (`to` as sent, or its digits).
    pub fn sent_to(&self, to: &str) -> Vec<SentMessage> {
        self.shared
            .lock()
            .sent
            .iter()
            .filter(|s| s.to == to || s.wa_id == to)
            .map(SentRec::message)
            .collect()
    }

    /// Requests answered with this Meta error code.
    pub fn rejected_with(&self, code: i64) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| matches!(r.outcome, RequestOutcome::Rejected { code: c, .. } if c == code))
            .count()
    }

    /// Requests whose connection was dropped.
    pub fn dropped(&self) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.outcome == RequestOutcome::Dropped)
            .count()
    }

    /// `GET message_templates` calls answered (any outcome).
    pub fn template_list_requests(&self) -> u64 {
        self.shared.lock().template_list_requests
    }

    /// Most sends accepted from a phone number in any 1-second window.
    pub fn max_per_second(&self, phone_number_id: &str) -> u32 {
        let times: Vec<Instant> = self
            .shared
            .lock()
            .sent
            .iter()
            .filter(|s| s.phone_number_id == phone_number_id)
            .map(|s| s.received)
            .collect();
        max_in_window(times, Duration::from_secs(1))
    }

    /// Most requests (all attempts) for a phone number in any 1-second window.
    pub fn max_requests_per_second(&self, phone_number_id: &str) -> u32 {
        let times: Vec<Instant> = self
            .shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.phone_number_id == phone_number_id)
            .map(|r| r.received)
            .collect();
        max_in_window(times, Duration::from_secs(1))
    }

    /// Accepted sends of a phone number per wall-clock second: `(unix second, count)`.
    pub fn per_second_counts(&self, phone_number_id: &str) -> Vec<(i64, u32)> {
        let mut counts: std::collections::BTreeMap<i64, u32> = Default::default();
        for s in self
            .shared
            .lock()
            .sent
            .iter()
            .filter(|s| s.phone_number_id == phone_number_id)
        {
            *counts.entry(s.received_at.timestamp()).or_default() += 1;
        }
        counts.into_iter().collect()
    }

    /// Forgets recorded requests, sends and webhooks (not configuration).
    pub fn reset_records(&self) {
        let mut state = self.shared.lock();
        state.requests.clear();
        state.sent.clear();
        state.webhooks.clear();
        state.windows.clear();
        state.pair_windows.clear();
        self.shared.webhook_failures.store(0, Ordering::SeqCst);
    }

    /// Waits until at least `n` sends were accepted; false on timeout.
    pub async fn wait_for_sent(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.shared.lock().sent.len() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // --- webhooks ----------------------------------------------------------

    /// Failed attempts of the fake's own webhook POSTs (connection errors and
    /// non-2xx answers, retries included).
    pub fn webhook_failures(&self) -> u64 {
        self.shared.webhook_failures.load(Ordering::SeqCst)
    }

    /// The fake's own webhooks, in completion order.
    pub fn webhooks(&self) -> Vec<WebhookRecord> {
        self.shared
            .lock()
            .webhooks
            .iter()
            .map(PostedWebhook::record)
            .collect()
    }

    /// Messages whose status webhooks are not all posted yet (held, delayed
    /// or in flight).
    pub fn pending_webhooks(&self) -> usize {
        self.shared.pending_webhooks.load(Ordering::SeqCst)
    }

    /// Waits until no status webhook is pending; false on timeout.
    pub async fn wait_webhooks_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.pending_webhooks() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The WABA, phone number id and display number of a phone number.
    pub fn business_ids(&self, phone_number_id: &str) -> BusinessIds {
        let phone = self.shared.lock().phone(phone_number_id);
        BusinessIds {
            waba_id: phone.waba_id,
            phone_number_id: phone.phone_number_id,
            display_phone_number: phone.display_phone_number,
        }
    }

    /// A status webhook for an accepted send (`sent`, `delivered`, `read`;
    /// use [`FakeGraph::failed_status_payload`] for `failed`), echoing its
    /// `biz_opaque_callback_data`.
    pub fn status_payload(&self, message: &SentMessage, status: &str) -> Value {
        let (conversation, pricing_model, category) = {
            let state = self.shared.lock();
            let conversation = state
                .conversations
                .get(&(message.phone_number_id.clone(), message.wa_id.clone()))
                .cloned();
            let category = state
                .templates
                .iter()
                .find(|t| t.name == message.template && t.language == message.language)
                .map(|t| t.category.to_ascii_lowercase())
                .unwrap_or_else(|| "utility".to_string());
            (conversation, state.config.pricing_model.clone(), category)
        };
        let (conversation_id, expiration) = conversation.unwrap_or_else(|| {
            (
                payload::new_conversation_id(),
                chrono::Utc::now().timestamp() + 86_400,
            )
        });
        let mut event = StatusEvent::new(&message.wamid, status, &message.wa_id)
            .with_callback_data(message.biz_opaque_callback_data.clone())
            .with_conversation(conversation_id, (status == "sent").then_some(expiration));
        event.pricing_model = pricing_model;
        event.category = category;
        self.statuses_payload(&message.phone_number_id, &[event])
    }

    /// A `failed` status webhook for an accepted send.
    pub fn failed_status_payload(
        &self,
        message: &SentMessage,
        code: i64,
        title: &str,
        details: &str,
    ) -> Value {
        let event = StatusEvent::new(&message.wamid, "failed", &message.wa_id)
            .with_callback_data(message.biz_opaque_callback_data.clone())
            .with_error(StatusError::new(code, title, Some(details.to_string())));
        self.statuses_payload(&message.phone_number_id, &[event])
    }

    /// A `messages` webhook with these statuses, for a phone number.
    pub fn statuses_payload(&self, phone_number_id: &str, statuses: &[StatusEvent]) -> Value {
        payload::statuses_payload(&self.business_ids(phone_number_id), statuses)
    }

    /// A `message_template_status_update` webhook for a template (looked up
    /// by name and language for its id, category and WABA; unknown ones get
    /// id `0` and the default WABA). Does not change the fake's template; see
    /// [`FakeGraph::set_template_status`].
    pub fn template_status_update(
        &self,
        name: &str,
        language: &str,
        event: &str,
        reason: Option<&str>,
    ) -> Value {
        let template = self
            .shared
            .lock()
            .templates
            .iter()
            .find(|t| t.name == name && t.language == language)
            .cloned();
        let waba_id = template
            .as_ref()
            .and_then(|t| t.waba_id.clone())
            .unwrap_or_else(default_waba);
        let update = TemplateStatusUpdate {
            event: event.to_string(),
            message_template_id: template
                .as_ref()
                .map(|t| t.id.clone())
                .unwrap_or_else(|| "0".into()),
            message_template_name: name.to_string(),
            message_template_language: language.to_string(),
            reason: reason.map(str::to_string),
            message_template_category: template.map(|t| t.category),
        };
        payload::template_status_payload(&waba_id, &update)
    }

    /// The id, name, language and WABA of a known template (unknown ones get id `0` and the
    /// default WABA).
    fn template_keys(&self, name: &str, language: &str) -> (String, String) {
        let template = self
            .shared
            .lock()
            .templates
            .iter()
            .find(|t| t.name == name && t.language == language)
            .cloned();
        let waba_id = template
            .as_ref()
            .and_then(|t| t.waba_id.clone())
            .unwrap_or_else(default_waba);
        let id = template.map(|t| t.id).unwrap_or_else(|| "0".into());
        (id, waba_id)
    }

    /// A `message_template_status_update` webhook with everything Meta can put in it:
    /// `reason`, `disable_info.disable_date` (Unix seconds) and `other_info`.
    pub fn template_status_update_full(
        &self,
        name: &str,
        language: &str,
        event: &str,
        reason: Option<&str>,
        disable_date: Option<i64>,
        other_info: Option<(&str, &str)>,
    ) -> Value {
        let mut payload = self.template_status_update(name, language, event, reason);
        let value = &mut payload["entry"][0]["changes"][0]["value"];
        if let Some(date) = disable_date {
            value["disable_info"] = serde_json::json!({ "disable_date": date });
        }
        if let Some((title, description)) = other_info {
            value["other_info"] = serde_json::json!({"title": title, "description": description});
        }
        payload
    }

    /// A `template_category_update` webhook for a template: the change from `previous` to
    /// `new` (also made on the fake's template).
    pub fn template_category_update(
        &self,
        name: &str,
        language: &str,
        previous: &str,
        new: &str,
    ) -> Value {
        let (id, waba_id) = self.template_keys(name, language);
        if let Some(t) = self
            .shared
            .lock()
            .templates
            .iter_mut()
            .find(|t| t.name == name && t.language == language)
        {
            t.category = new.to_string();
        }
        payload::template_category_payload(&waba_id, (&id, name, language), previous, new, None)
    }

    /// A `template_category_update` advance notice: the template (now `current`) will become
    /// `correct` at `at` (Unix seconds). Nothing changes yet.
    pub fn template_category_notice(
        &self,
        name: &str,
        language: &str,
        current: &str,
        correct: &str,
        at: i64,
    ) -> Value {
        let (id, waba_id) = self.template_keys(name, language);
        payload::template_category_payload(
            &waba_id,
            (&id, name, language),
            current,
            correct,
            Some(at),
        )
    }

    /// A `message_template_quality_update` webhook (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`).
    pub fn template_quality_update(
        &self,
        name: &str,
        language: &str,
        previous: &str,
        new: &str,
    ) -> Value {
        let (id, waba_id) = self.template_keys(name, language);
        payload::template_quality_payload(&waba_id, (&id, name, language), previous, new)
    }

    /// A `phone_number_quality_update` webhook for a phone number (its WABA and display
    /// number): `event` and the limit (`TIER_2K`, …).
    pub fn phone_quality_update(
        &self,
        phone_number_id: &str,
        event: &str,
        limit: &str,
        old_limit: Option<&str>,
    ) -> Value {
        payload::phone_quality_payload(&self.business_ids(phone_number_id), event, limit, old_limit)
    }

    /// An `account_update` webhook for a phone number's WABA with the portfolio's messaging
    /// limit.
    pub fn account_update(&self, phone_number_id: &str, event: &str, limit: &str) -> Value {
        payload::account_update_payload(&self.business_ids(phone_number_id).waba_id, event, limit)
    }

    /// Signs and posts a WABA-level payload (template or number health: no
    /// `metadata.phone_number_id`) to the webhook URL of `phone_number_id` (else the global
    /// one). Returns plantilla's answer.
    pub async fn post_webhook_for(&self, phone_number_id: &str, payload: &Value) -> StatusCode {
        let (url, secret) = self.shared.lock().webhook_target(Some(phone_number_id));
        let url = url.expect("no webhook URL set");
        let body = serde_json::to_vec(payload).expect("a JSON payload");
        let sig = signature(&secret, &body);
        self.post_raw_to(&url, body, Some(sig))
            .await
            .expect("posting the webhook failed")
    }

    /// An inbound text message webhook from `from` (with its profile name) to
    /// a phone number.
    pub fn inbound_message(
        &self,
        phone_number_id: &str,
        from: &str,
        profile_name: &str,
        text: &str,
    ) -> Value {
        payload::inbound_text_payload(
            &self.business_ids(phone_number_id),
            from,
            profile_name,
            text,
            chrono::Utc::now().timestamp(),
        )
    }

    /// A `messages` webhook carrying these inbound messages, to a phone number.
    pub fn inbound_payload(&self, phone_number_id: &str, messages: &[InboundEvent]) -> Value {
        payload::inbound_payload(&self.business_ids(phone_number_id), messages)
    }

    /// Emits an inbound message webhook (see [`InboundEvent`]: a text, a quick-reply click
    /// with `context.id`, a sender known only by user id…) to the phone number's webhook URL,
    /// signed with its app secret, as Meta would: retried on failure and recorded in
    /// [`FakeGraph::webhooks`]. Whether it was delivered.
    pub async fn emit_inbound(&self, phone_number_id: &str, message: &InboundEvent) -> bool {
        let body = self.inbound_payload(phone_number_id, std::slice::from_ref(message));
        webhook::deliver(&self.shared, phone_number_id, body).await
    }

    /// `sha256=<hex>` of a body with the global app secret.
    pub fn sign(&self, body: &[u8]) -> String {
        signature(&self.shared.lock().config.app_secret, body)
    }

    /// Signs and posts a payload to the webhook URL of its phone number
    /// (`metadata.phone_number_id`), else the global one. Not held, not
    /// retried, not counted in [`FakeGraph::webhook_failures`]. Panics when
    /// there is no webhook URL or the POST fails to connect.
    pub async fn post_webhook(&self, payload: &Value) -> StatusCode {
        self.try_post_webhook(payload)
            .await
            .expect("posting the webhook failed")
    }

    pub async fn try_post_webhook(&self, payload: &Value) -> anyhow::Result<StatusCode> {
        let phone = payload
            .pointer("/entry/0/changes/0/value/metadata/phone_number_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let (url, secret) = self.shared.lock().webhook_target(phone.as_deref());
        let url = url.ok_or_else(|| anyhow::anyhow!("no webhook URL set"))?;
        let body = serde_json::to_vec(payload)?;
        let sig = signature(&secret, &body);
        self.post_raw_to(&url, body, Some(sig)).await
    }

    /// Posts raw bytes to the global webhook URL with this
    /// `X-Hub-Signature-256` (none when `None`): for signature tests.
    pub async fn post_webhook_raw(&self, body: Vec<u8>, signature: Option<String>) -> StatusCode {
        let url = self
            .shared
            .lock()
            .config
            .webhook_url
            .clone()
            .expect("no webhook URL set");
        self.post_raw_to(&url, body, signature)
            .await
            .expect("posting the webhook failed")
    }

    /// Posts raw bytes to any URL with this `X-Hub-Signature-256`.
    pub async fn post_raw_to(
        &self,
        url: &str,
        body: Vec<u8>,
        signature: Option<String>,
    ) -> anyhow::Result<StatusCode> {
        let mut request = self
            .shared
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(sig) = signature {
            request = request.header("X-Hub-Signature-256", sig);
        }
        Ok(request.send().await?.status())
    }

    /// A JSON summary: requests, accepted, rejections by code, dropped, per
    /// phone number accepted and max per second, webhooks.
    pub fn stats(&self) -> Value {
        server::stats(&self.shared)
    }
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Most events within any window of `width` (events at `t` and `t + width`
/// are in different windows).
pub(crate) fn max_in_window(mut times: Vec<Instant>, width: Duration) -> u32 {
    times.sort();
    let mut best = 0usize;
    let mut start = 0usize;
    for end in 0..times.len() {
        while times[end].duration_since(times[start]) >= width {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best as u32
}

pub(crate) fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Meta's answer to an accepted send, written straight to bytes.
pub(crate) fn success_body(to: &str, wa_id: &str, wamid: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Contact<'a> {
        input: &'a str,
        wa_id: &'a str,
    }
    #[derive(Serialize)]
    struct Message<'a> {
        id: &'a str,
        message_status: &'static str,
    }
    #[derive(Serialize)]
    struct Answer<'a> {
        messaging_product: &'static str,
        contacts: [Contact<'a>; 1],
        messages: [Message<'a>; 1],
    }
    let answer = Answer {
        messaging_product: "whatsapp",
        contacts: [Contact { input: to, wa_id }],
        messages: [Message {
            id: wamid,
            message_status: "accepted",
        }],
    };
    serde_json::to_vec(&answer).expect("the answer serializes")
}
