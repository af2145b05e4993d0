//! The HTTP side: routes, request checks, throughput limits, fault injection,
//! template listing, and a listener whose connections a handler can drop.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Path, Query, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::{IncomingStream, Listener};
use rand::Rng;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::arrival::{self, Arrival};
use super::error::GraphError;
use super::payload::{self, BusinessIds, StatusError};
use super::webhook::{self, StatusPlan};
use super::{
    Action, FakeTemplate, RequestOutcome, RequestRec, SentRec, Shared, State, digits,
    max_in_window, success_body,
};

// ---------------------------------------------------------------------------
// A listener whose connections can be dropped from a handler
// ---------------------------------------------------------------------------

pub(crate) struct KillableListener(TcpListener);

/// Connection info handed to handlers: the peer and a switch that makes the
/// connection fail its next write, so hyper closes it without an answer.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    #[allow(dead_code)]
    pub(crate) remote: SocketAddr,
    kill: Arc<AtomicBool>,
    /// When the bytes last read from the connection arrived.
    arrival: Arrival,
}

impl Conn {
    pub(crate) fn kill(&self) {
        self.kill.store(true, Ordering::SeqCst);
    }
}

pub(crate) struct KillableStream {
    inner: TcpStream,
    kill: Arc<AtomicBool>,
    arrival: Arrival,
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "fake-graph dropped the connection",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        let this = &mut *self;
        arrival::poll_read(&mut this.inner, &this.arrival, cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = Conn;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, remote)) => {
                    let _ = stream.set_nodelay(true);
                    let kill = Arc::new(AtomicBool::new(false));
                    let arrival = Arrival::default();
                    let conn = Conn {
                        remote,
                        kill: kill.clone(),
                        arrival: arrival.clone(),
                    };
                    return (
                        KillableStream {
                            inner: stream,
                            kill,
                            arrival,
                        },
                        conn,
                    );
                }
                Err(e) => {
                    tracing::warn!("fake-graph: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Conn {
            remote: self.0.local_addr()?,
            kill: Arc::new(AtomicBool::new(false)),
            arrival: Arrival::default(),
        })
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        stream.remote_addr().clone()
    }
}

pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let cancel = shared.cancel.clone();
    arrival::enable(&listener);
    let app = router(shared.clone())
        .merge(super::authoring::router(shared.clone()))
        .merge(super::health::router(shared));
    let result = axum::serve(
        KillableListener(listener),
        app.into_make_service_with_connect_info::<Conn>(),
    )
    .with_graceful_shutdown(async move { cancel.cancelled().await })
    .await;
    if let Err(e) = result {
        tracing::warn!("fake-graph: server error: {e}");
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_fake/stats", get(stats_handler))
        .route("/_fake/inbound", post(inbound_handler))
        .route("/{version}/{id}/messages", post(messages_versioned))
        .route("/{id}/messages", post(messages_unversioned))
        .route(
            "/{version}/{id}/message_templates",
            get(templates_versioned),
        )
        .route("/{id}/message_templates", get(templates_unversioned))
        .route("/{version}/{id}/media", super::media::route())
        .fallback(fallback)
        .with_state(shared)
}

async fn fallback(method: Method, uri: Uri) -> Response {
    GraphError::meta(100)
        .with_subcode(33)
        .with_details(format!(
            "Unsupported {} request to {}: fake-graph serves POST /{{version}}/{{phone-number-id}}/messages and GET /{{version}}/{{waba-id}}/message_templates",
            method,
            uri.path()
        ))
        .into_response()
}

/// Meta's answer to a path it does not serve.
pub(crate) fn unsupported(request: &str) -> Response {
    GraphError::meta(100)
        .with_subcode(33)
        .with_details(format!("Unsupported request {request}"))
        .into_response()
}

async fn stats_handler(AxState(shared): AxState<Arc<Shared>>) -> Response {
    axum::Json(stats(&shared)).into_response()
}

/// `POST /_fake/inbound`: emits an inbound message webhook, as a test or the bench asks.
/// Body: `{"phoneNumberId", "from"?, "userId"?, "name"?, "username"?, "type"? (default
/// `text`), "text"? (text), "payload"? and "buttonText"? (button), "body"? (the object of any
/// other type), "contextId"?, "id"? (the wamid; fresh by default)}`. Answers
/// `{"id": wamid, "delivered": bool}`; 400 without a phone number id or a sender.
async fn inbound_handler(AxState(shared): AxState<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "body must be JSON").into_response();
    };
    let field = |k: &str| {
        req[k]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let Some(pnid) = field("phoneNumberId") else {
        return (StatusCode::BAD_REQUEST, "phoneNumberId is required").into_response();
    };
    if field("from").is_none() && field("userId").is_none() {
        return (StatusCode::BAD_REQUEST, "from or userId is required").into_response();
    }
    let kind = field("type").unwrap_or_else(|| "text".into());
    let content = match kind.as_str() {
        "text" => json!({"body": field("text").unwrap_or_default()}),
        "button" => json!({"payload": field("payload"), "text": field("buttonText")}),
        _ => req["body"].clone(),
    };
    let mut event = payload::InboundEvent::new(field("from").unwrap_or_default(), kind, content);
    event.from = field("from");
    event.user_id = field("userId");
    event.profile_name = field("name");
    event.username = field("username");
    event.context_id = field("contextId");
    if let Some(id) = field("id") {
        event.id = id;
    }
    let biz = {
        let phone = shared.lock().phone(&pnid);
        BusinessIds {
            waba_id: phone.waba_id,
            phone_number_id: phone.phone_number_id,
            display_phone_number: phone.display_phone_number,
        }
    };
    let body = payload::inbound_payload(&biz, std::slice::from_ref(&event));
    let delivered = webhook::deliver(&shared, &pnid, body).await;
    axum::Json(json!({"id": event.id, "delivered": delivered})).into_response()
}

// ---------------------------------------------------------------------------
// POST /{version}/{phone-number-id}/messages
// ---------------------------------------------------------------------------

type Params = Query<HashMap<String, String>>;

async fn messages_versioned(
    AxState(shared): AxState<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path((_version, id)): Path<(String, String)>,
    Query(query): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    spawn_messages(shared, conn, id, query, headers, body).await
}

async fn messages_unversioned(
    AxState(shared): AxState<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path(id): Path<String>,
    Query(query): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    spawn_messages(shared, conn, id, query, headers, body).await
}

/// The request's access token: `Authorization: Bearer …` or `?access_token=`.
pub(crate) fn token(headers: &HeaderMap, query: &HashMap<String, String>) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
                .then(|| token.trim().to_string())
        })
        .or_else(|| query.get("access_token").cloned())
        .filter(|t| !t.is_empty())
}

pub(crate) fn invalid_token() -> GraphError {
    GraphError::meta(190)
}

pub(crate) fn unknown_object(id: &str) -> GraphError {
    GraphError::new(
        400,
        100,
        format!(
            "Unsupported post request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
        ),
    )
    .with_subcode(33)
}

/// What a rule or the random faults decided for this request.
fn pick_action(state: &mut State, phone_number_id: &str, to: Option<&str>) -> Option<Action> {
    for slot in state.rules.iter_mut() {
        let phone_ok = slot
            .phone_number_id
            .as_deref()
            .is_none_or(|p| p == phone_number_id);
        let to_ok = match (&slot.rule.to, to) {
            (None, _) => true,
            (Some(want), Some(to)) => want == to || digits(want) == digits(to),
            (Some(_), None) => false,
        };
        let live = slot.rule.times.is_none_or(|n| slot.fired < n);
        if phone_ok && to_ok && live {
            slot.fired += 1;
            return Some(slot.rule.action.clone());
        }
    }
    let ratio = state.config.fail_ratio;
    if ratio > 0.0 && state.rng.r#gen::<f64>() < ratio {
        let action = match state.rng.gen_range(0..4) {
            0 => Action::server_error(),
            1 => GraphError::meta(130429)
                .with_status(state.config.throughput_http_status)
                .with_details("Cloud API message throughput has been reached.")
                .into(),
            2 => Action::DropConnection,
            _ => Action::Delay(state.config.fault_delay),
        };
        return Some(action);
    }
    None
}

struct Incoming {
    phone_number_id: String,
    to: Option<String>,
    body: Option<Value>,
    /// The body's bytes, kept in the records.
    raw: Bytes,
    authorization: Option<String>,
    token: Option<String>,
    received_at: chrono::DateTime<chrono::Utc>,
}

impl Incoming {
    fn record(&self, state: &mut State, received: Instant, outcome: RequestOutcome) {
        state.requests.push(RequestRec {
            phone_number_id: self.phone_number_id.clone(),
            to: self.to.clone(),
            raw: self.raw.clone(),
            authorization: self.authorization.clone(),
            received_at: self.received_at,
            received,
            outcome,
        });
    }
}

/// Handles the request in its own task, so that a client that gives up (a
/// timeout) does not cancel it: like Meta, the fake still processes it.
async fn spawn_messages(
    shared: Arc<Shared>,
    conn: Conn,
    phone_number_id: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Read as the handler starts: the time the request's last bytes reached the socket.
    let arrived = conn.arrival.at();
    let task = tokio::spawn(handle_messages(
        shared,
        conn,
        arrived,
        phone_number_id,
        query,
        headers,
        body,
    ));
    task.await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn handle_messages(
    shared: Arc<Shared>,
    conn: Conn,
    (received_at, received): (chrono::DateTime<chrono::Utc>, Instant),
    phone_number_id: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = Bytes::copy_from_slice(&body);
    let body: Option<Value> = serde_json::from_slice(&raw).ok();
    let incoming = Incoming {
        raw,
        to: body
            .as_ref()
            .and_then(|b| b.get("to"))
            .and_then(Value::as_str)
            .map(str::to_string),
        body,
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        token: token(&headers, &query),
        received_at,
        phone_number_id,
    };

    let action = {
        let mut state = shared.lock();
        pick_action(
            &mut state,
            &incoming.phone_number_id,
            incoming.to.as_deref(),
        )
    };
    let mut fail_with = None;
    let mut response_delay = None;
    let mut status_first = false;
    match action {
        Some(Action::HttpError {
            status,
            code,
            subcode,
            message,
            details,
            retry_after,
        }) => {
            let error = GraphError {
                status,
                code,
                subcode,
                message,
                details,
                retry_after,
            };
            incoming.record(
                &mut shared.lock(),
                received,
                RequestOutcome::Rejected { status, code },
            );
            return error.into_response();
        }
        Some(Action::DropConnection) => {
            incoming.record(&mut shared.lock(), received, RequestOutcome::Dropped);
            conn.kill();
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(Action::Delay(d)) => {
            let finished = shared.sleep(d).await;
            if !finished {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        }
        Some(Action::AcceptThenFail {
            code,
            title,
            details,
        }) => fail_with = Some(StatusError::new(code, title, Some(details))),
        Some(Action::DelayResponse(d)) => response_delay = Some(d),
        Some(Action::StatusBeforeResponse) => status_first = true,
        None => {}
    }

    let outcome = {
        let mut state = shared.lock();
        // Timed by arrival, as the records are: a request the fake got to late (its tasks
        // waited for a thread, or a delay fault) counts in the second it came in.
        let now = received;
        let result = accept(&mut state, &incoming, now, fail_with);
        let outcome = match &result {
            Ok((answer, _)) => RequestOutcome::Accepted {
                wamid: answer.wamid.clone(),
            },
            Err(e) => RequestOutcome::Rejected {
                status: e.status,
                code: e.code,
            },
        };
        incoming.record(&mut state, now, outcome);
        // Its webhooks are pending from the moment the send shows in `sent`: counted under
        // the lock that records it, so no one sees the send (`wait_for_sent`) and then no
        // webhook pending (`wait_webhooks_idle`) before they are posted.
        if let Ok((_, Some(_))) = &result {
            shared.pending_webhooks.fetch_add(1, Ordering::SeqCst);
        }
        result
    };
    match outcome {
        Err(error) => error.into_response(),
        Ok((answer, plan)) => {
            let mut first_rx = None;
            if let Some(plan) = plan {
                let (tx, rx) = oneshot::channel();
                if status_first {
                    first_rx = Some(rx);
                }
                webhook::spawn_statuses(shared.clone(), plan, Some(tx));
            }
            if let Some(rx) = first_rx {
                let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
            }
            if let Some(d) = response_delay {
                if !shared.sleep(d).await {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
            }
            let body = success_body(&answer.to, &answer.wa_id, &answer.wamid);
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
    }
}

fn required(field: &str) -> GraphError {
    GraphError::new(
        400,
        100,
        format!("(#100) The parameter {field} is required."),
    )
}

/// Meta's checks, in order: token, payload, throughput, pair rate, template.
/// On success records the send and returns its status plan (when a webhook
/// URL is set).
fn accept(
    state: &mut State,
    incoming: &Incoming,
    now: Instant,
    fail_with: Option<StatusError>,
) -> Result<(Answer, Option<StatusPlan>), GraphError> {
    let phone_id = incoming.phone_number_id.as_str();
    // Token.
    let token = incoming.token.as_deref().ok_or_else(invalid_token)?;
    if let Some(phone) = state.phones.get(phone_id) {
        if phone.access_token != token {
            return Err(invalid_token());
        }
    } else {
        let default_ok = state.config.default_access_token.as_deref() == Some(token);
        if !default_ok && !state.config.accept_any_token {
            let known = state.phones.values().any(|p| p.access_token == token);
            return Err(if known {
                unknown_object(phone_id)
            } else {
                invalid_token()
            });
        }
    }
    let phone = state.phone(phone_id);

    // Payload.
    let body = match &incoming.body {
        Some(Value::Object(_)) => incoming.body.as_ref().unwrap_or(&Value::Null),
        _ => {
            return Err(
                GraphError::meta(100).with_details("The request body must be a JSON object")
            );
        }
    };
    match body.get("messaging_product").and_then(Value::as_str) {
        Some(p) if p.eq_ignore_ascii_case("whatsapp") => {}
        Some(other) => {
            return Err(GraphError::new(
                400,
                100,
                format!(
                    "(#100) Param messaging_product must be one of {{WHATSAPP}} - got \"{other}\"."
                ),
            ));
        }
        None => return Err(required("messaging_product")),
    }
    if let Some(kind) = body.get("recipient_type").and_then(Value::as_str) {
        if kind != "individual" {
            return Err(GraphError::meta(100).with_details(format!(
                "recipient_type must be \"individual\", got \"{kind}\""
            )));
        }
    }
    let to = match body.get("to").and_then(Value::as_str).map(str::trim) {
        Some(to) if !to.is_empty() => to.to_string(),
        _ => return Err(required("to")),
    };
    let wa_id = digits(&to);
    if wa_id.is_empty() {
        return Err(
            GraphError::meta(100).with_details(format!("Invalid WhatsApp recipient '{to}'"))
        );
    }
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("text");
    if kind != "template" {
        return Err(GraphError::meta(100).with_details(format!(
            "fake-graph supports only template messages (type \"template\"), got \"{kind}\""
        )));
    }
    let template = body.get("template").ok_or_else(|| required("template"))?;
    let name = template
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| required("template[name]"))?
        .to_string();
    let language = template
        .get("language")
        .and_then(|l| l.get("code"))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| required("template[language][code]"))?
        .to_string();

    // Throughput of the phone number.
    let max_rps = phone.max_rps.or(state.config.max_rps);
    if let Some(max) = max_rps {
        let window = state.windows.entry(phone_id.to_string()).or_default();
        prune(window, now, Duration::from_secs(1));
        if window.len() >= max as usize {
            return Err(GraphError::meta(130429)
                .with_status(state.config.throughput_http_status)
                .with_details("Cloud API message throughput has been reached."));
        }
    }
    // Pair rate to the recipient.
    if let Some(pair) = state.config.pair_rate {
        let window = state
            .pair_windows
            .entry((phone_id.to_string(), wa_id.clone()))
            .or_default();
        prune(window, now, pair.per);
        if window.len() >= pair.max as usize {
            return Err(GraphError::meta(131056).with_details(super::PAIR_RATE_DETAILS));
        }
    }

    // The template.
    let waba = phone.waba_id.clone();
    let known: Option<&FakeTemplate> = state.templates.iter().find(|t| {
        t.name == name && t.language == language && t.waba_id.as_deref().is_none_or(|w| w == waba)
    });
    let category = match known {
        None if state.config.accept_unknown_templates => "utility".to_string(),
        None => {
            return Err(GraphError::meta(132001).with_details(format!(
                "template name ({name}) does not exist in {language}"
            )));
        }
        Some(t) => {
            match t.status.to_ascii_uppercase().as_str() {
                "APPROVED" => {}
                "PAUSED" => {
                    return Err(GraphError::meta(132015)
                        .with_details(format!("Template {name} is paused due to low quality")));
                }
                "DISABLED" => {
                    return Err(GraphError::meta(132016)
                        .with_details(format!("Template {name} has been disabled")));
                }
                other => {
                    return Err(GraphError::meta(132001).with_details(format!(
                        "template name ({name}) does not exist in {language} (status {other})"
                    )));
                }
            }
            t.check_components(template.get("components"))?;
            t.category.to_ascii_lowercase()
        }
    };

    // Accepted.
    if max_rps.is_some() {
        state
            .windows
            .entry(phone_id.to_string())
            .or_default()
            .push_back(now);
    }
    if state.config.pair_rate.is_some() {
        state
            .pair_windows
            .entry((phone_id.to_string(), wa_id.clone()))
            .or_default()
            .push_back(now);
    }
    let wamid = payload::new_wamid();
    let callback_data = body
        .get("biz_opaque_callback_data")
        .and_then(Value::as_str)
        .map(str::to_string);
    state.sent.push(SentRec {
        wamid: wamid.clone(),
        phone_number_id: phone_id.to_string(),
        to: to.clone(),
        wa_id: wa_id.clone(),
        template: name,
        language,
        biz_opaque_callback_data: callback_data.clone(),
        raw: incoming.raw.clone(),
        received_at: incoming.received_at,
        received: now,
        fails_with: fail_with.as_ref().map(|e| e.code),
    });

    // Conversation: one per (number, recipient) for 24 hours.
    let unix_now = chrono::Utc::now().timestamp();
    let key = (phone_id.to_string(), wa_id.clone());
    let (conversation_id, expiration) = match state.conversations.get(&key) {
        Some((id, exp)) if *exp > unix_now => (id.clone(), *exp),
        _ => {
            let fresh = (payload::new_conversation_id(), unix_now + 86_400);
            state.conversations.insert(key, fresh.clone());
            fresh
        }
    };

    let (url, _) = state.webhook_target(Some(phone_id));
    let plan = url.map(|_| {
        let steps = match fail_with {
            Some(error) => vec![("failed", Some(error))],
            None => {
                let mut steps = vec![("sent", None)];
                if state.config.send_delivered {
                    steps.push(("delivered", None));
                }
                if state.config.send_read {
                    steps.push(("read", None));
                }
                steps
            }
        };
        StatusPlan {
            biz: BusinessIds {
                waba_id: phone.waba_id.clone(),
                phone_number_id: phone_id.to_string(),
                display_phone_number: phone.display_phone_number.clone(),
            },
            wamid: wamid.clone(),
            recipient_id: wa_id.clone(),
            callback_data,
            conversation_id,
            expiration,
            category,
            pricing_model: state.config.pricing_model.clone(),
            delay: state.config.status_delay,
            steps,
        }
    });
    Ok((Answer { wamid, to, wa_id }, plan))
}

/// What an accepted send is answered with.
struct Answer {
    wamid: String,
    to: String,
    wa_id: String,
}

fn prune(window: &mut std::collections::VecDeque<Instant>, now: Instant, width: Duration) {
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= width)
    {
        window.pop_front();
    }
}

// ---------------------------------------------------------------------------
// GET /{version}/{waba-id}/message_templates
// ---------------------------------------------------------------------------

async fn templates_versioned(
    AxState(shared): AxState<Arc<Shared>>,
    Path((version, id)): Path<(String, String)>,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    list_templates(&shared, Some(version), id, query, headers)
}

async fn templates_unversioned(
    AxState(shared): AxState<Arc<Shared>>,
    Path(id): Path<String>,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    list_templates(&shared, None, id, query, headers)
}

fn cursor(template_id: &str) -> String {
    hex::encode(format!("fake-cursor:{template_id}"))
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = hex::decode(cursor).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("fake-cursor:")
        .map(str::to_string)
}

fn list_templates(
    shared: &Shared,
    version: Option<String>,
    waba_id: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
) -> Response {
    let mut state = shared.lock();
    state.template_list_requests += 1;
    let Some(token) = token(&headers, &query) else {
        return invalid_token().into_response();
    };
    let authorized = state
        .phones
        .values()
        .any(|p| p.waba_id == waba_id && p.access_token == token)
        || state.config.default_access_token.as_deref() == Some(token.as_str())
        || state.config.accept_any_token;
    if !authorized {
        let known = state.phones.values().any(|p| p.access_token == token);
        return if known {
            unknown_object(&waba_id).into_response()
        } else {
            invalid_token().into_response()
        };
    }

    let all: Vec<&FakeTemplate> = state
        .templates
        .iter()
        .filter(|t| t.waba_id.as_deref().is_none_or(|w| w == waba_id))
        .filter(|t| query.get("name").is_none_or(|n| &t.name == n))
        .filter(|t| {
            query
                .get("status")
                .is_none_or(|s| t.status.eq_ignore_ascii_case(s))
        })
        .collect();
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 25,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            return GraphError::meta(100)
                .with_details("limit must be a positive integer")
                .into_response();
        }
    };
    let position = |c: &str| -> Option<usize> {
        let id = decode_cursor(c)?;
        all.iter().position(|t| t.id == id)
    };
    let (start, end) = if let Some(after) = query.get("after") {
        let Some(pos) = position(after) else {
            return GraphError::meta(100)
                .with_details("Invalid cursor in after")
                .into_response();
        };
        (pos + 1, (pos + 1 + limit).min(all.len()))
    } else if let Some(before) = query.get("before") {
        let Some(pos) = position(before) else {
            return GraphError::meta(100)
                .with_details("Invalid cursor in before")
                .into_response();
        };
        (pos.saturating_sub(limit), pos)
    } else {
        (0, limit.min(all.len()))
    };
    let page = &all[start.min(all.len())..end];
    let data: Vec<Value> = page.iter().map(|t| t.to_graph_json()).collect();
    let mut body = json!({ "data": data });
    if let (Some(first), Some(last)) = (page.first(), page.last()) {
        let before = cursor(&first.id);
        let after = cursor(&last.id);
        let mut paging = json!({ "cursors": { "before": before, "after": after } });
        let link = |key: &str, value: &str| -> String {
            let path = match &version {
                Some(v) => format!("{}/{v}/{waba_id}/message_templates", shared.base_url),
                None => format!("{}/{waba_id}/message_templates", shared.base_url),
            };
            let mut url = reqwest::Url::parse(&path).expect("base URL is a valid URL");
            {
                let mut pairs = url.query_pairs_mut();
                let kept: BTreeMap<&String, &String> = query
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "after" | "before" | "limit"))
                    .collect();
                for (k, v) in kept {
                    pairs.append_pair(k, v);
                }
                pairs.append_pair("limit", &limit.to_string());
                pairs.append_pair(key, value);
            }
            url.to_string()
        };
        if end < all.len() {
            paging["next"] = Value::from(link("after", &after));
        }
        if start > 0 {
            paging["previous"] = Value::from(link("before", &before));
        }
        body["paging"] = paging;
    }
    axum::Json(body).into_response()
}

// ---------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------

pub(crate) fn stats(shared: &Shared) -> Value {
    let state = shared.lock();
    let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
    let mut dropped = 0u64;
    for r in &state.requests {
        match r.outcome {
            RequestOutcome::Rejected { code, .. } => {
                *rejected.entry(code.to_string()).or_default() += 1
            }
            RequestOutcome::Dropped => dropped += 1,
            RequestOutcome::Accepted { .. } => {}
        }
    }
    let mut per_phone: BTreeMap<String, Vec<&SentRec>> = BTreeMap::new();
    for s in &state.sent {
        per_phone
            .entry(s.phone_number_id.clone())
            .or_default()
            .push(s);
    }
    let phones: BTreeMap<String, Value> = per_phone
        .into_iter()
        .map(|(phone, sent)| {
            let times: Vec<Instant> = sent.iter().map(|s| s.received).collect();
            let first = sent.iter().map(|s| s.received).min();
            let last = sent.iter().map(|s| s.received).max();
            let span = match (first, last) {
                (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
                _ => 0.0,
            };
            let rate = if span > 0.0 {
                (sent.len() as f64 - 1.0) / span
            } else {
                0.0
            };
            (
                phone,
                json!({
                    "accepted": sent.len(),
                    "max_per_second": max_in_window(times, Duration::from_secs(1)),
                    "first_to_last_seconds": span,
                    "average_rate": rate,
                }),
            )
        })
        .collect();
    let delivered = state.webhooks.iter().filter(|w| w.delivered).count();
    json!({
        "requests": state.requests.len(),
        "accepted": state.sent.len(),
        "rejected": rejected,
        "dropped": dropped,
        "phone_numbers": phones,
        "template_list_requests": state.template_list_requests,
        "templates": super::authoring::stats(&state),
        "webhooks": {
            "delivered": delivered,
            "undelivered": state.webhooks.len() - delivered,
            "failed_attempts": shared.webhook_failures.load(Ordering::SeqCst),
            "pending": shared.pending_webhooks.load(Ordering::SeqCst),
        },
    })
}
