//! Every operation of the HTTP surface: one [`Op`] per method and path of the router
//! (`tests/it/openapi.rs` checks that the two agree).

use serde_json::json;

use super::schemas::{cursor, d, one_of_strings, phone_number, r, string};
use super::{Auth, JSON, Op, TEXT};
use crate::http::idempotency::CHECKED as IDEMPOTENT_BY_NATURE;

pub(crate) const NATIVE: &str = "Native API";
pub(crate) const COMPAT_OLD: &str = "Compatible API (old family)";
pub(crate) const COMPAT_NEW: &str = "Compatible API (new family)";
pub(crate) const ADMIN: &str = "Admin API";
pub(crate) const WEBHOOKS: &str = "Meta webhooks";
pub(crate) const REFERENCE: &str = "Reference";
pub(crate) const OPERATIONS: &str = "Operations";

pub(super) fn all() -> Vec<Op> {
    let mut ops = native();
    ops.extend(compat());
    ops.extend(admin());
    ops.extend(suppressions());
    ops.extend(webhooks());
    ops.extend(reference());
    ops.extend(operations());
    ops.into_iter().map(json_content_type).collect()
}

/// An operation of the native or admin API that takes a JSON body refuses any other body type.
fn json_content_type(op: Op) -> Op {
    let takes_json = op.path.starts_with("/v1/")
        && op
            .body
            .as_ref()
            .is_some_and(|b| b["content"].get(JSON).is_some());
    if !takes_json || op.responses.iter().any(|(status, _)| *status == 415) {
        return op;
    }
    op.problem(415, UNSUPPORTED_JSON, &["unsupported-media-type"])
}

/// The 415 of every `/v1` operation that takes a JSON body.
pub(super) const UNSUPPORTED_JSON: &str = "The body's `Content-Type` is not `application/json` \
    (a `charset` other than UTF-8 included; `application/*+json` is taken); `contentType` is \
    the given one.";

// --- Native API ----------------------------------------------------------------------------

const IDEMPOTENCY_ENDPOINT: &str = "Makes a retry safe: the same key with the same body \
    answers 201 with the endpoint the first request registered, the same id and secret (nothing \
    new is registered, even for retries sent at once); the same key with a different body is a \
    422 `idempotency-key-reused` and registers nothing; a 404 `not-found` if that endpoint was \
    deleted since. The key keeps only the endpoint's id, never its secret. Keys are scoped to \
    the caller (channel token or API key) and expire after 24 hours (configurable).";

fn idempotency_key_schema() -> serde_json::Value {
    // 1 to 255 visible ASCII characters (no spaces): a 400 `idempotency-key-invalid` otherwise.
    json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"})
}

/// `page` of the template lists (native and compatible alike): 1 to 1,000,000.
fn page_schema() -> serde_json::Value {
    json!({"type": "integer", "minimum": 1, "maximum": crate::http::compat::MAX_PAGE, "default": 1})
}

fn v1(method: &'static str, path: &'static str, id: &'static str, summary: &'static str) -> Op {
    Op::new(method, path, id, NATIVE, Auth::ChannelOrKey, summary)
        .problem(
            401,
            "No bearer token, or not a channel token or API key of this server.",
            &["unauthorized"],
        )
        .problem(
            429,
            "The token made more requests than its rate allows; `Retry-After` says when to retry.",
            &["rate-limited"],
        )
}

fn internal(op: Op) -> Op {
    op.problem(500, "Something unexpected happened.", &["internal"])
}

fn limit_param(op: Op) -> Op {
    op.query(
        "limit",
        json!({"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
        "Items per page.",
    )
}

fn native() -> Vec<Op> {
    vec![
        internal(
            v1("POST", "/v1/webhook-endpoints", "createWebhookEndpoint", "Register a webhook endpoint")
                .doc("The endpoint receives the account's events of the types given, signed as Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with its secret, retried with backoff, in order per message. The secret is shown only in this answer (and to a retry with the same Idempotency-Key and body).")
                .header("Idempotency-Key", idempotency_key_schema(), IDEMPOTENCY_ENDPOINT)
                .body(r("WebhookEndpointCreate"), "The endpoint.")
                .json(201, "Created, with its secret; or, for a retry with the same Idempotency-Key and body, the endpoint that request created.", r("WebhookEndpointCreated"))
                .problem(400, "The body is wrong (`errors` names each failing field), or the Idempotency-Key is.", &["validation", "idempotency-key-invalid"])
                .problem(404, "The endpoint this Idempotency-Key created was deleted since.", &["not-found"])
                .problem(422, "The Idempotency-Key was used with another body; nothing was registered.", &["idempotency-key-reused"]),
        ),
        internal(
            v1("GET", "/v1/webhook-endpoints", "listWebhookEndpoints", "List webhook endpoints")
                .doc("The caller's account's endpoints, without their secrets.")
                .json(200, "The endpoints.", r("WebhookEndpointList")),
        ),
        internal(
            v1("GET", "/v1/webhook-endpoints/{id}", "getWebhookEndpoint", "Get a webhook endpoint")
                .path_param("id", "The endpoint id.")
                .json(200, "The endpoint, without its secret.", r("WebhookEndpoint"))
                .problem(404, "The account has no such endpoint.", &["not-found"]),
        ),
        internal(
            v1("DELETE", "/v1/webhook-endpoints/{id}", "deleteWebhookEndpoint", "Delete a webhook endpoint")
                .doc("Deletes the endpoint and its deliveries: nothing more is sent to it.")
                .path_param("id", "The endpoint id.")
                .answer(204, "Deleted.", &[])
                .problem(404, "The account has no such endpoint.", &["not-found"]),
        ),
        internal(limit_param(
            v1("GET", "/v1/webhook-endpoints/{id}/deliveries", "listWebhookDeliveries", "List an endpoint's deliveries")
                .doc("What was sent, or is still to be sent, to the endpoint, oldest first: status, attempts, the last answer or error, and the payload.")
                .path_param("id", "The endpoint id.")
                .query("cursor", cursor(), "`nextCursor` of the previous page (oldest first).")
                .json(200, "A page of deliveries.", r("CallbackDeliveryPage"))
                .problem(400, "`limit` or `cursor` is wrong.", &["validation"])
                .problem(404, "The account has no such endpoint.", &["not-found"]),
        )),
    ]
}

// --- Compatible API ------------------------------------------------------------------------

/// The routes of one family: `old` uses `/api/Template…`, the new one `/templates…`.
fn compat_family(old: bool) -> Vec<Op> {
    let (tag, send_path, list_path, detail_path) = if old {
        (
            COMPAT_OLD,
            "/api/Template/SendMessage",
            "/api/Template",
            "/api/Template/{templateId}",
        )
    } else {
        (
            COMPAT_NEW,
            "/templates",
            "/templates",
            "/templates/{templateId}",
        )
    };
    let ids = if old {
        ["sendTemplateOld", "listTemplatesOld", "getTemplateOld"]
    } else {
        ["sendTemplateNew", "listTemplatesNew", "getTemplateNew"]
    };
    let envelope = || r("CompatEnvelope");
    let internal_compat = |op: Op| -> Op {
        op.json(
            500,
            "Something unexpected happened; `context.value` is the id of the log line with the cause.",
            if old { r("CompatError") } else { envelope() },
        )
    };
    // Row 1 of the contract's send table, and anything unexpected.
    let auth_and_internal = |op: Op| -> Op {
        internal_compat(if old {
            op.text(
                401,
                "No Authorization header: the text `No authorization token found.`",
            )
        } else {
            op.json(401, "No Authorization header.", envelope())
        })
    };
    // The per-token rate limit, checked before the token is looked up.
    let rate_limited = |op: Op| -> Op {
        op.json(
            429,
            "The token made more requests than its rate allows (`type` `Too Many Requests`); \
             `Retry-After` says in how many seconds to retry.",
            if old { r("CompatError") } else { envelope() },
        )
    };
    let unknown_token = "The token names no channel (`Cannot find a channel associated with the public token Bearer`; the token is never echoed).";

    let send_doc = "Sends a template to a number. Outcomes, checked in this order: no token \
        (401), unknown token (400), bad body (400), template not found (404), template without \
        appId or message (400), template not sendable (400), channel not connected (400), \
        params missing or refused (400), unknown group (400), a MARKETING template to a \
        number on the account's suppression list (400, `body.phoneNumber`, `The recipient has \
        opted out of marketing messages`); then by the number's \
        conversation: open → 200 `Sent`, pending → 202 (nothing sent), none and the plan's \
        conversations used up → 401, none → 200 `Pending` (a pending conversation is created; \
        it opens when WhatsApp confirms the message, and closes if it fails).";
    let send = Op::new(
        "POST",
        send_path,
        ids[0],
        tag,
        Auth::Channel,
        "Send a template",
    )
    .doc(send_doc)
    .body(
        if old {
            r("CompatSendRequest")
        } else {
            r("CompatSendRequestNew")
        },
        "The send.",
    )
    .json(
        200,
        "Stored and queued: `Pending` (new conversation) or `Sent` (open conversation).",
        r("CompatSendAccepted"),
    )
    .json(
        202,
        "The number has a pending conversation: nothing new is sent.",
        r("CompatAlreadyPending"),
    );
    let send = if old {
        send.json(
            400,
            &format!(
                "{unknown_token} Or the body is wrong (`No hay datos para enviar` with `detail`). \
                 Or the template, channel, params or group refuse the send, or the number opted \
                 out of marketing (the envelope)."
            ),
            json!({"oneOf": [r("CompatError"), r("CompatInvalidBody"), envelope()]}),
        )
        .answer(
            401,
            "No Authorization header (the text `No authorization token found.`), or the plan's \
             conversations are used up this month (JSON).",
            &[
                (TEXT, json!({"type": "string"})),
                (JSON, r("CompatLimitReached")),
            ],
        )
    } else {
        send.json(
            400,
            &format!(
                "{unknown_token} Or the body is wrong, or the template, channel, params or \
                 group refuse the send, or the number opted out of marketing."
            ),
            envelope(),
        )
        .json(
            401,
            "No Authorization header, or the plan's conversations are used up this month \
             (`context.label` `account.conversationLimit`).",
            envelope(),
        )
    };
    let send = internal_compat(send.json(404, "The account has no such template.", envelope()));

    let list = auth_and_internal(
        Op::new(
            "GET",
            list_path,
            ids[1],
            tag,
            Auth::Channel,
            "List templates",
        )
        .doc("The templates of the token's account, by page.")
        .query("page", page_schema(), "Page number.")
        .query(
            "size",
            json!({"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
            "Templates per page.",
        )
        .query("status", string(), "Only templates with this status.")
        .query("name", string(), "Only templates with this name.")
        .json(200, "A page of templates.", r("CompatTemplateList"))
        .json(
            400,
            &format!(
                "{unknown_token} Or `page`/`size` is not a whole number in range (the envelope)."
            ),
            if old {
                json!({"oneOf": [r("CompatError"), envelope()]})
            } else {
                envelope()
            },
        ),
    );

    let detail = auth_and_internal(
        Op::new(
            "GET",
            detail_path,
            ids[2],
            tag,
            Auth::Channel,
            "Get a template",
        )
        .path_param("templateId", "The template id.")
        .json(200, "The template.", r("CompatTemplateDetail"))
        .json(
            400,
            unknown_token,
            if old { r("CompatError") } else { envelope() },
        )
        .json(404, "The account has no such template.", envelope()),
    );
    vec![rate_limited(send), rate_limited(list), rate_limited(detail)]
}

fn compat() -> Vec<Op> {
    let mut ops = compat_family(true);
    ops.extend(compat_family(false));
    ops
}

// --- Admin API -----------------------------------------------------------------------------

fn adm(method: &'static str, path: &'static str, id: &'static str, summary: &'static str) -> Op {
    Op::new(method, path, id, ADMIN, Auth::Admin, summary).problem(
        401,
        "No bearer token, or not the admin token.",
        &["unauthorized"],
    )
}

fn invalid(op: Op) -> Op {
    op.problem(
        400,
        "A field is missing, unknown or wrong; `errors` names it.",
        &["invalid-field"],
    )
}

fn not_found(op: Op, what: &str) -> Op {
    op.problem(404, &format!("No such {what}."), &["not-found"])
}

fn admin() -> Vec<Op> {
    vec![
        internal(invalid(
            adm("POST", "/v1/admin/accounts", "adminCreateAccount", "Create an account")
                .body(r("AccountCreate"), "The account.")
                .json(201, "Created.", r("Account")),
        )),
        internal(not_found(
            adm("GET", "/v1/admin/accounts/{id}", "adminGetAccount", "Get an account")
                .path_param("id", "The account id.")
                .json(200, "The account.", r("Account")),
            "account",
        )),
        internal(not_found(
            invalid(
                adm("PATCH", "/v1/admin/accounts/{id}", "adminUpdateAccount", "Update an account")
                    .doc("Sets the account's quiet hours: MARKETING sends that would reach a recipient inside the window, in the recipient's local time (from the number's country and area code, by libphonenumber's time-zone data), are held until it ends and show `heldUntil`; UTILITY and AUTHENTICATION are not held. A number whose possible zones have different offsets (a country code alone for a country of several zones) is not held. `{\"quietHours\": null}` turns them off. `optOutKeywords` / `optInKeywords` set the inbound texts that opt a number out of the account's marketing or back in (exactly one keyword, case, accents and surrounding spaces and punctuation aside); null restores the defaults. A wrong field changes nothing.")
                    .path_param("id", "The account id.")
                    .body(r("AccountUpdate"), "The settings to change.")
                    .json(200, "The account.", r("Account")),
            ),
            "account",
        )),
        internal(not_found(
            invalid(
                adm("POST", "/v1/admin/accounts/{id}/api-keys", "adminCreateApiKey", "Create an account API key")
                    .doc("An API key gives account-wide access to the native API. The key is shown only in this answer; its SHA-256 is stored. An empty body is `{}`.")
                    .path_param("id", "The account id.")
                    .optional_body(r("ApiKeyCreate"), "The key's name.")
                    .json(201, "Created.", r("ApiKey")),
            ),
            "account",
        )),
        internal(not_found(
            adm("POST", "/v1/admin/accounts/{id}/callback-secret", "adminRotateCallbackSecret", "Rotate an account's callback secret")
                .doc("A new secret for the account's deliveries to messages' own `callbackUrl` (endpoints have their own secrets). The old secret stops signing at once.")
                .path_param("id", "The account id.")
                .json(200, "The new secret.", r("CallbackSecret")),
            "account",
        )),
        internal(invalid(
            adm("POST", "/v1/admin/channels", "adminCreateChannel", "Create a channel")
                .doc("The public token is shown only in this answer (and on rotation); only its SHA-256 is stored. Secrets are never shown.")
                .body(r("ChannelCreate"), "The channel.")
                .json(201, "Created, with its public token.", r("ChannelCreated")),
        )),
        internal(not_found(
            adm("GET", "/v1/admin/channels/{id}", "adminGetChannel", "Get a channel")
                .doc("Shows `health` and, when halted, the error that halted it.")
                .path_param("id", "The channel id.")
                .json(200, "The channel.", r("Channel")),
            "channel",
        )),
        internal(not_found(
            invalid(
                adm("PATCH", "/v1/admin/channels/{id}", "adminUpdateChannel", "Update a channel")
                    .doc("Changes the fields given. Any PATCH of a halted channel resumes it. `messagingLimit` sets Meta's messaging limit of the number (null: unlimited): new conversations beyond it in a rolling 24 h are held, not sent to be refused.")
                    .path_param("id", "The channel id.")
                    .body(r("ChannelUpdate"), "The fields to change.")
                    .json(200, "The channel.", r("Channel")),
            ),
            "channel",
        )),
        internal(not_found(
            adm("POST", "/v1/admin/channels/{id}/rotate-token", "adminRotateChannelToken", "Rotate a channel's public token")
                .path_param("id", "The channel id.")
                .json(200, "The new token.", r("TokenRotated")),
            "channel",
        )),
        internal(not_found(
            adm("POST", "/v1/admin/channels/{id}/templates/sync", "adminSyncTemplates", "Sync a channel's templates")
                .doc("Reads the channel's WABA templates from Meta (following paging) and creates or updates plantilla's.")
                .path_param("id", "The channel id.")
                .json(200, "What the sync did.", r("SyncSummary"))
                .problem(400, "The channel cannot sync (not a connected cloud channel with a WABA id).", &["invalid-field"])
                .problem(502, "Meta's Graph API refused.", &["upstream"]),
            "channel",
        )),
        internal(not_found(
            invalid(
                adm("POST", "/v1/admin/channels/{id}/templates", "adminSubmitTemplate", "Submit a template to WhatsApp")
                    .doc("As `POST /v1/templates`, through the channel of the path. (`POST /v1/admin/templates` still registers a template here without Meta.)")
                    .path_param("id", "The channel id.")
                    .body(r("AdminTemplateSubmit"), "The template.")
                    .json(201, "Submitted: the template, `PENDING`.", r("Template"))
                    .problem(502, "Meta refused the template or the upload; nothing was stored.", &["upstream"]),
            ),
            "channel",
        )),
        internal(invalid(
            adm("POST", "/v1/admin/groups", "adminCreateGroup", "Create a group")
                .doc("A channel's first group is its default group.")
                .body(r("GroupCreate"), "The group.")
                .json(201, "Created.", r("Group")),
        )),
        internal(invalid(
            adm("POST", "/v1/admin/templates", "adminCreateTemplate", "Create a template")
                .doc("Header, body and buttons are checked as Meta would (placeholders, lengths, button rules).")
                .body(r("TemplateCreate"), "The template.")
                .json(201, "Created.", r("Template")),
        )),
        internal(not_found(
            invalid(
                adm("DELETE", "/v1/admin/templates/{id}", "adminDeleteTemplate", "Delete a template")
                    .doc("At Meta first when it was submitted there (`atMeta=false`: only here), then here: status `DELETED`, inactive, hidden from lists; messages keep referring to it.")
                    .path_param("id", "The template id.")
                    .query("atMeta", json!({"type": "boolean", "default": true}), "Delete it at Meta too.")
                    .answer(204, "Deleted.", &[])
                    .problem(502, "Meta refused the deletion; nothing changed here.", &["upstream"]),
            ),
            "template",
        )),
        internal(not_found(
            adm("GET", "/v1/admin/templates/{id}", "adminGetTemplate", "Get a template")
                .path_param("id", "The template id.")
                .json(200, "The template.", r("Template")),
            "template",
        )),
        internal(not_found(
            invalid(
                adm("PATCH", "/v1/admin/templates/{id}", "adminUpdateTemplate", "Update a template")
                    .path_param("id", "The template id.")
                    .body(r("TemplateUpdate"), "The fields to change.")
                    .json(200, "The template.", r("Template")),
            ),
            "template",
        )),
        internal(not_found(
            adm("GET", "/v1/admin/conversations/{id}", "adminGetConversation", "Get a conversation")
                .path_param("id", "The conversation id.")
                .json(200, "The conversation.", r("Conversation")),
            "conversation",
        )),
        internal(not_found(
            adm("POST", "/v1/admin/conversations/{id}/close", "adminCloseConversation", "Close a conversation")
                .path_param("id", "The conversation id.")
                .json(200, "The closed conversation.", r("Conversation")),
            "conversation",
        )),
        internal(not_found(
            adm("GET", "/v1/admin/messages/{id}", "adminGetMessage", "Get a message")
                .doc("Status, provider ids, params, attempts, the last error and when each status was reached.")
                .path_param("id", "The message id.")
                .json(200, "The message.", r("AdminMessage")),
            "message",
        )),
    ]
}

// --- Webhooks ------------------------------------------------------------------------------

fn webhook_pair(per_channel: bool) -> Vec<Op> {
    let (path, ids, secret, token) = if per_channel {
        (
            "/webhooks/whatsapp/{channelId}",
            ["verifyChannelWebhook", "receiveChannelWebhook"],
            "the channel's `appSecret`",
            "the channel's `verifyToken`",
        )
    } else {
        (
            "/webhooks/whatsapp",
            ["verifyWebhook", "receiveWebhook"],
            "`PLANTILLA_META_APP_SECRET`",
            "`PLANTILLA_META_VERIFY_TOKEN`",
        )
    };
    let with_channel = |op: Op| {
        if per_channel {
            op.path_param("channelId", "The channel whose secrets check the call.")
        } else {
            op
        }
    };
    let verify = with_channel(Op::new(
        "GET",
        path,
        ids[0],
        WEBHOOKS,
        Auth::Public,
        "Answer Meta's subscription check",
    ))
    .doc(&format!(
        "Meta's verification request when the callback URL is subscribed: answers \
         `hub.challenge` when `hub.mode` is `subscribe` and `hub.verify_token` is {token}."
    ))
    .query("hub.mode", string(), "`subscribe`.")
    .query("hub.verify_token", string(), "The verify token.")
    .query("hub.challenge", string(), "Echoed back.")
    .text(200, "The challenge.")
    .text(403, "`verification failed`.");
    let verify = if per_channel {
        verify.text(500, "Something unexpected happened: an error id.")
    } else {
        verify
    };
    let receive = with_channel(Op::new(
        "POST",
        path,
        ids[1],
        WEBHOOKS,
        Auth::Public,
        "Receive a WhatsApp notification",
    ))
    .doc(&format!(
        "Statuses update messages and conversations (idempotent, never backwards); inbound \
         messages keep the contact's name; `message_template_status_update` updates template \
         statuses. The signature is checked, in constant time, before the body is parsed, \
         with {secret}. {}",
        if per_channel {
            ""
        } else {
            "Notifications are routed to channels by `phone_number_id`."
        }
    ))
    .header(
        "X-Hub-Signature-256",
        d(string(), "`sha256=<hex>`"),
        "HMAC-SHA256 of the raw body with the app secret.",
    )
    .body(r("MetaNotification"), "Meta's notification.")
    .answer(200, "Applied.", &[])
    .text(400, "`body is not JSON`.")
    .text(401, "`invalid signature`.")
    .text(
        500,
        "Something unexpected happened: an error id. Meta retries the notification.",
    );
    vec![verify, receive]
}

fn webhooks() -> Vec<Op> {
    let mut ops = webhook_pair(false);
    ops.extend(webhook_pair(true));
    ops
}

// --- Reference -----------------------------------------------------------------------------

fn reference() -> Vec<Op> {
    vec![
        Op::new(
            "GET",
            "/openapi.json",
            "getOpenApi",
            REFERENCE,
            Auth::Public,
            "This OpenAPI document",
        )
        .json(
            200,
            "The OpenAPI 3.1 document.",
            d(json!({"type": "object"}), "An OpenAPI 3.1 document."),
        ),
        Op::new(
            "GET",
            "/docs",
            "getDocs",
            REFERENCE,
            Auth::Public,
            "This reference as a page",
        )
        .answer(
            200,
            "A self-contained HTML page rendered from this document.",
            &[("text/html", json!({"type": "string"}))],
        ),
    ]
}

// --- Operations ----------------------------------------------------------------------------

fn operations() -> Vec<Op> {
    let check = d(
        string(),
        "`ok`, or why not (`unreachable`, `timed out`, `not applied`, `not running`, `in progress`).",
    );
    let readiness = d(
        json!({
            "type": "object",
            "properties": {
                "status": one_of_strings(&["ready", "not ready"]),
                "checks": {
                    "type": "object",
                    "properties": {"database": check, "migrations": check, "dispatcher": check, "shutdown": check},
                    "required": ["database", "migrations", "dispatcher"],
                },
                "notReady": {"type": "array", "items": string()},
            },
            "required": ["status", "checks", "notReady"],
        }),
        "Each check, and the names of those not `ok`.",
    );
    vec![
        Op::new(
            "GET",
            "/healthz",
            "getHealth",
            OPERATIONS,
            Auth::Public,
            "Liveness",
        )
        .doc("Answers while the process runs.")
        .json(
            200,
            "The process is up.",
            json!({"type": "object", "properties": {"status": {"const": "ok"}}, "required": ["status"]}),
        ),
        Op::new(
            "GET",
            "/readyz",
            "getReadiness",
            OPERATIONS,
            Auth::Public,
            "Readiness",
        )
        .doc(
            "Ready when the database answers (within 2 s), has every migration this binary \
             embeds, the dispatcher loop runs and no shutdown is under way.",
        )
        .json(200, "Ready.", readiness.clone())
        .json(503, "Not ready: `notReady` names what is not.", readiness),
        Op::new(
            "GET",
            "/metrics",
            "getMetrics",
            OPERATIONS,
            Auth::Public,
            "Prometheus metrics",
        )
        .doc(
            "Prometheus' text format: requests by route template and status, send latency, \
             messages by status, queue depth and oldest age per channel, provider errors by \
             code, channel health, webhook lag. Never a token, a secret or a phone number. \
             With `PLANTILLA_METRICS_TOKEN` set it takes `Authorization: Bearer <that token>`.",
        )
        .text(200, "The metrics (`text/plain; version=0.0.4`).")
        .json(
            401,
            "`PLANTILLA_METRICS_TOKEN` is set and the request does not carry it.",
            r("CompatEnvelope"),
        ),
    ]
}

// --- Opt-outs ------------------------------------------------------------------------------

fn suppressions() -> Vec<Op> {
    const PHONE: &str = "The number, country code first, digits only (`50755667788`).";
    vec![
        internal(limit_param(
            v1("GET", "/v1/suppressions", "listSuppressions", "List the suppression list")
                .doc("The caller's account's opted-out numbers, oldest first: MARKETING templates are not sent to them (UTILITY and AUTHENTICATION still are). Entries come from the API (`api`), an inbound opt-out keyword (`keyword`), a click on a marketing template's opt-out button (`button`) and Meta's error 131050 (`meta_131050`); `automatic` is true for all but `api`.")
                .query("cursor", cursor(), "`nextCursor` of the previous page (oldest first).")
                .json(200, "A page of entries.", r("SuppressionPage"))
                .problem(400, "`limit` or `cursor` is wrong.", &["validation"]),
        )),
        internal(
            v1("POST", "/v1/suppressions", "addSuppression", "Add a number to the suppression list")
                .doc("Adds the number (normalised and checked like a send's recipient) with reason `api`; `reason` in the body is free text kept as the entry's `note`. A number already on the list keeps its entry (200). `contact.opted_out` is sent to the account's endpoints.")
                .header("Idempotency-Key", idempotency_key_schema(), IDEMPOTENT_BY_NATURE)
                .body(r("SuppressionCreate"), "The number.")
                .json(201, "Added.", r("Suppression"))
                .json(200, "Already on the list: its entry, unchanged.", r("Suppression"))
                .problem(400, "The body is wrong (`errors` names the field), or the Idempotency-Key is.", &["validation", "idempotency-key-invalid"]),
        ),
        internal(
            v1("DELETE", "/v1/suppressions/{phoneNumber}", "removeSuppression", "Remove a number from the suppression list")
                .doc("Removes the number's entry, whatever its reason; `contact.opted_in` is sent (reason `api`).")
                .path_param_with("phoneNumber", phone_number(), PHONE)
                .answer(204, "Removed.", &[])
                .problem(400, "Not a phone number.", &["validation"])
                .problem(404, "The number is not on the account's list.", &["not-found"]),
        ),
        internal(not_found(
            adm("GET", "/v1/admin/accounts/{id}/suppressions", "adminListSuppressions", "List an account's suppression list")
                .doc("As `GET /v1/suppressions`, for any account.")
                .path_param("id", "The account id.")
                .query("limit", json!({"type": "integer", "minimum": 1, "maximum": 200, "default": 50}), "Items per page.")
                .query("cursor", cursor(), "`nextCursor` of the previous page (oldest first).")
                .json(200, "A page of entries.", r("SuppressionPage"))
                .problem(400, "`limit` or `cursor` is wrong.", &["validation"]),
            "account",
        )),
        internal(not_found(
            invalid(
                adm("POST", "/v1/admin/accounts/{id}/suppressions", "adminAddSuppression", "Add a number to an account's suppression list")
                    .doc("As `POST /v1/suppressions` (reason `api`).")
                    .path_param("id", "The account id.")
                    .body(r("SuppressionCreate"), "The number.")
                    .json(201, "Added.", r("Suppression"))
                    .json(200, "Already on the list: its entry, unchanged.", r("Suppression")),
            ),
            "account",
        )),
        internal(
            invalid(
                adm("DELETE", "/v1/admin/accounts/{id}/suppressions/{phoneNumber}", "adminRemoveSuppression", "Remove a number from an account's suppression list")
                    .doc("As `DELETE /v1/suppressions/{phoneNumber}`.")
                    .path_param("id", "The account id.")
                    .path_param_with("phoneNumber", phone_number(), PHONE)
                    .answer(204, "Removed.", &[]),
            )
            .problem(404, "No such account, or the number is not on its list.", &["not-found"]),
        ),
    ]
}
