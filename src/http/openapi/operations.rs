//! Every operation of the HTTP surface: one [`Op`] per method and path of the router
//! (`tests/it/openapi.rs` checks that the two agree).

use serde_json::json;

use super::schemas::{cursor, d, one_of_strings, phone_number, r, string, text, time};
use super::{Auth, JSON, Op, TEXT};
use crate::http::idempotency::{CHECKED as IDEMPOTENT_BY_NATURE, STORED as IDEMPOTENCY};

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

fn cursor_param(op: Op) -> Op {
    op.query(
        "cursor",
        cursor(),
        "`nextCursor` of the previous page (newest first).",
    )
}

fn native() -> Vec<Op> {
    vec![
        internal(
            v1("POST", "/v1/messages", "createMessage", "Send a template")
                .doc(
                    "Accepts one template send: the message is stored and queued before the \
                     answer, then delivered at the channel's rate. The same rules as the \
                     compatible API, as problem types. A number with no conversation gets a \
                     `pending` conversation, opened when WhatsApp confirms the message; a \
                     number with an open conversation gets the message on it.",
                )
                .header("Idempotency-Key", idempotency_key_schema(), IDEMPOTENCY)
                .body(r("SendRequest"), "The send.")
                .json(202, "Accepted: stored and queued.", r("MessageAccepted"))
                .problem(400, "The body or the Idempotency-Key is wrong.", &["validation", "idempotency-key-invalid"])
                .problem(402, "The plan's conversations are used up this month.", &["conversation-limit"])
                .problem(409, "The number has a pending conversation (nothing was sent), or the channel is not connected.", &["conversation-pending", "channel-not-connected"])
                .problem(422, "The template or params cannot be sent, `sendAt` is beyond the horizon, or the Idempotency-Key was used with another body.", &[
                    "template-not-found", "template-incomplete", "template-not-sendable",
                    "missing-params", "invalid-params", "group-not-found", "idempotency-key-reused",
                    "send-at-beyond-horizon", "recipient-opted-out",
                ]),
        ),
        internal(
            v1("POST", "/v1/messages/batch", "createBatch", "Send a template to many recipients")
                .doc(
                    "Up to 10,000 recipients, each with its own params, accepted in one \
                     transaction per chunk. Each recipient is accepted or rejected on its own \
                     (a rejected one carries the problem a single send would have answered); \
                     results come in the request's order. With an Idempotency-Key, a retried \
                     batch resumes where it stopped and answers the same batch id.",
                )
                .header("Idempotency-Key", idempotency_key_schema(), IDEMPOTENCY)
                .body(r("BatchRequest"), "The batch.")
                .json(202, "Accepted: per-recipient results.", r("BatchAccepted"))
                .problem(400, "The body (template, channel, recipients list) or the Idempotency-Key is wrong.", &["validation", "idempotency-key-invalid"]),
        ),
        internal(limit_param(cursor_param(
            v1("GET", "/v1/messages", "listMessages", "List messages")
                .doc("Newest first, filtered; a channel token sees its channel's messages, an API key its account's.")
                .query("channelId", text(), "Only this channel's.")
                .query("status", r("MessageStatus"), "Only messages in this status.")
                .query("phoneNumber", string(), "Only to this number.")
                .query("batchId", string(), "Only this batch's.")
                .query("from", time(), "Accepted at or after (RFC 3339).")
                .query("to", time(), "Accepted before (RFC 3339).")
                .json(200, "A page of messages.", r("MessagePage"))
                .problem(400, "A filter is wrong.", &["validation"]),
        ))),
        internal(
            v1("GET", "/v1/messages/{id}", "getMessage", "Get a message")
                .doc("The message with its status timeline and the provider's error: its code, title and details, whether it will be retried and when.")
                .path_param("id", "The message id.")
                .json(200, "The message.", r("Message"))
                .problem(404, "No such message visible to the caller.", &["not-found"]),
        ),
        internal(
            v1("POST", "/v1/messages/{id}/cancel", "cancelMessage", "Cancel a message")
                .doc("Takes back a message not yet handed to WhatsApp (`scheduled` or `queued`, held ones included): it ends `cancelled`, a final status, and `message.cancelled` is sent to the callbacks. Decided in one conditional write that races the dispatcher safely: a message ends either sent or cancelled, never both. A message the dispatcher already took, or in a later status, is a 409 naming its status. A conversation the message had opened (pending) is closed.")
                .path_param("id", "The message id.")
                .header("Idempotency-Key", idempotency_key_schema(), IDEMPOTENT_BY_NATURE)
                .json(200, "The cancelled message.", r("Message"))
                .problem(400, "The Idempotency-Key is wrong.", &["idempotency-key-invalid"])
                .problem(404, "No such message visible to the caller.", &["not-found"])
                .problem(409, "The message cannot be cancelled any more; `messageStatus` is its status.", &["message-not-cancellable"]),
        ),
        internal(limit_param(cursor_param(
            v1("GET", "/v1/conversations", "listConversations", "List conversations")
                .doc("Newest first, filtered.")
                .query("channelId", text(), "Only this channel's.")
                .query("status", one_of_strings(&["pending", "open", "closed"]), "Only in this status.")
                .query("phoneNumber", string(), "Only with this number.")
                .json(200, "A page of conversations.", r("ConversationPage"))
                .problem(400, "A filter is wrong.", &["validation"]),
        ))),
        internal(
            v1("GET", "/v1/conversations/{id}", "getConversation", "Get a conversation")
                .path_param("id", "The conversation id.")
                .json(200, "The conversation.", r("Conversation"))
                .problem(404, "No such conversation visible to the caller.", &["not-found"]),
        ),
        internal(limit_param(cursor_param(
            v1("GET", "/v1/conversations/{id}/messages", "listConversationMessages", "List a conversation's messages, both directions")
                .doc("The templates plantilla sent (`direction: outbound`, as `GET /v1/messages/{id}` shows them) and what the customer wrote or clicked (`direction: inbound`, as `message.received` forwards it), oldest first: an outbound message by when it was accepted, an inbound one by when plantilla received it. Paged like `GET /v1/messages`. Inbound messages from a number with no conversation on the channel are forwarded but belong to no conversation.")
                .path_param("id", "The conversation id.")
                .json(200, "A page of the conversation's messages.", r("ConversationMessagePage"))
                .problem(400, "`limit` or `cursor` is wrong.", &["validation"])
                .problem(404, "No such conversation visible to the caller.", &["not-found"]),
        ))),
        internal(
            v1("POST", "/v1/conversations/{id}/close", "closeConversation", "Close a conversation")
                .doc("Closing a closed conversation is harmless: the answer is the closed conversation either way, so repeating a close is safe (an Idempotency-Key is checked, not needed). The next template to the number opens a new one.")
                .path_param("id", "The conversation id.")
                .header("Idempotency-Key", idempotency_key_schema(), IDEMPOTENT_BY_NATURE)
                .json(200, "The closed conversation.", r("Conversation"))
                .problem(400, "The Idempotency-Key is wrong.", &["idempotency-key-invalid"])
                .problem(404, "No such conversation visible to the caller.", &["not-found"]),
        ),
        internal(limit_param(
            v1("GET", "/v1/templates", "listTemplates", "List templates")
                .doc("The account's templates, by page.")
                .query("page", page_schema(), "Page number.")
                .query("status", string(), "Only templates with this status (e.g. APPROVED). Deleted templates are listed only with status=DELETED.")
                .query("name", string(), "Only templates with this name.")
                .json(200, "A page of templates.", r("TemplatePage"))
                .problem(400, "A parameter is wrong.", &["validation"]),
        )),
        internal(
            v1("POST", "/v1/templates", "submitTemplate", "Submit a template to WhatsApp")
                .doc("Checks the template as Meta reviews its shape (name, category rules, placeholders and their `examples`, button limits, a `sample` file for media headers), uploads media samples through Meta's resumable upload API (the app of `PLANTILLA_META_APP_ID`), submits it to the channel's WhatsApp Business Account and stores it `PENDING` with Meta's id as `appId`. Meta's review webhook (and sync) then moves it to APPROVED or REJECTED; only APPROVED templates can be sent. Sandbox channels submit nothing and approve it after `PLANTILLA_SANDBOX_APPROVE_DELAY_MS`. The body may be up to `PLANTILLA_MAX_BATCH_BODY_BYTES` (samples are inline). A repeat is refused (the name exists), so an Idempotency-Key is checked, not stored. Example: `{\"name\": \"promo_verano\", \"language\": \"es\", \"category\": \"MARKETING\", \"header\": {\"format\": \"IMAGE\", \"sample\": {\"data\": \"iVBORw0KGgo…\", \"mimeType\": \"image/png\", \"filename\": \"promo.png\"}}, \"message\": \"Hola {{name}}\", \"examples\": {\"name\": \"Ana\"}}`.")
                .header("Idempotency-Key", idempotency_key_schema(), IDEMPOTENT_BY_NATURE)
                .body(r("TemplateSubmit"), "The template.")
                .json(201, "Submitted: the template, `PENDING`.", r("Template"))
                .problem(400, "A field is wrong (`errors` names it: `examples.name`, `header.sample`, `buttons[1].text`…), channelId is missing or wrong, or the Idempotency-Key is wrong. Nothing reached Meta.", &["validation", "idempotency-key-invalid"])
                .problem(502, "Meta refused the template or the upload (`metaCode`, `metaMessage`); nothing was stored.", &["upstream"]),
        ),
        internal(
            v1("DELETE", "/v1/templates/{id}", "deleteTemplate", "Delete a template")
                .doc("Deletes the template at Meta (`DELETE /{waba-id}/message_templates?name=…&hsm_id=<appId>`, when it was submitted there), then here: it stays readable by id with status `DELETED` (messages refer to it) but leaves lists and cannot be sent.")
                .path_param("id", "The template id.")
                .answer(204, "Deleted.", &[])
                .problem(404, "The account has no such template (or it is already deleted).", &["not-found"])
                .problem(502, "Meta refused the deletion; nothing changed here.", &["upstream"]),
        ),
        internal(
            v1("GET", "/v1/templates/{id}", "getTemplate", "Get a template")
                .path_param("id", "The template id.")
                .json(200, "The template.", r("Template"))
                .problem(404, "The account has no such template.", &["not-found"]),
        ),
        internal(
            v1("POST", "/v1/templates/{id}/preview", "previewTemplate", "Preview a send")
                .doc("Takes the values a send would give (`params`, `header`, `buttons`, `cards`, `offerExpiresAt`, as in `POST /v1/messages`) and answers what the recipient would see and the `components` plantilla would send to Meta, with every problem a send would be refused for. Nothing is stored or sent.")
                .path_param("id", "The template id.")
                .body(r("TemplatePreviewRequest"), "The values of a send.")
                .json(200, "The preview; `valid` is false when a send with these values would be refused (`errors` says why).", r("TemplatePreview"))
                .problem(400, "The body is not JSON or a value has the wrong shape.", &["validation"])
                .problem(404, "The account has no such template.", &["not-found"]),
        ),
        internal(
            v1("POST", "/v1/templates/sync", "syncTemplates", "Sync templates from WhatsApp")
                .doc("Reads the channel's WhatsApp Business Account templates from Meta and creates or updates plantilla's. Only cloud channels with a WABA id that are connected can sync. Repeating a sync is safe: templates are matched by name and language, so a repeat creates no duplicates; it reads Meta again and its summary counts what that run did (an Idempotency-Key is checked, not needed).")
                .query("channelId", text(), "The channel: required with an account API key; with a channel token, omit it or give that channel.")
                .header("Idempotency-Key", idempotency_key_schema(), IDEMPOTENT_BY_NATURE)
                .json(200, "What the sync did.", r("SyncSummary"))
                .problem(400, "The channel cannot sync (not a connected cloud channel with a WABA id), channelId is wrong, or the Idempotency-Key is wrong.", &["validation", "idempotency-key-invalid"])
                .problem(502, "Meta's Graph API refused.", &["upstream"]),
        ),
        internal(
            v1("GET", "/v1/usage", "getUsage", "What messages cost")
                .doc("Counts the account's messages Meta priced (each status's `pricing`), billable (`type` regular) and free (`free_customer_service`, `free_entry_point`), per group and pricing category. With a price table in the configuration (`PLANTILLA_PRICES`, per category and recipient calling code) each row has an estimated cost in `PLANTILLA_PRICE_CURRENCY`. A message counts at its first status time (sent, else delivered, else read). This is Meta's per-message billing, not the compatible API's plan limit (AtomChat's own meter of conversations).")
                .query("from", date_or_instant(), "A date (`YYYY-MM-DD`, from the start of that UTC day) or an RFC 3339 instant. Default: the first day of the current UTC month.")
                .query("to", date_or_instant(), "A date (`YYYY-MM-DD`, to the end of that UTC day) or an RFC 3339 instant; inclusive. Default: now. At most 366 days after `from`.")
                .query("groupBy", one_of_strings(&["day", "template", "channel", "category"]), "How rows are grouped (default `day`).")
                .json(200, "The counts.", r("Usage"))
                .problem(400, "A parameter is wrong (`errors` names it): a bad date, `from` after `to`, a window over 366 days, an unknown `groupBy` or parameter.", &["validation"]),
        ),
        internal(
            v1("POST", "/v1/media", "uploadMedia", "Upload a media file")
                .doc("Uploads a file through a channel and answers its media id, to use as a template header's media (`header.id`). The body is `multipart/form-data` with the file in a part named `file`, its MIME type as the part's `Content-Type` (`curl -F 'file=@invoice.pdf;type=application/pdf'`; a part sent as `application/octet-stream` or without a type is typed by its file name's extension). WhatsApp's types and limits are checked while the file is read, before anything reaches Meta: audio 16 MB (`audio/aac`, `audio/amr`, `audio/mpeg`, `audio/mp4`, `audio/ogg` with OPUS), documents 100 MB (`text/plain`, `application/pdf`, Word, Excel and PowerPoint), images 5 MB (`image/jpeg`, `image/png`), stickers (`image/webp`) 100 KB or 500 KB animated, video 16 MB (`video/mp4`, `video/3gpp`). Cloud channels upload to Meta (`POST /{phone-number-id}/media`); Meta keeps the file 30 days. Sandbox channels answer a simulated id (`sandbox-media-…`). The body may be up to `PLANTILLA_MAX_MEDIA_BYTES` (100 MiB and the envelope). Each upload makes a new id (an Idempotency-Key is checked, not stored).")
                .query("channelId", text(), "The channel: required with an account API key (here or as a `channelId` part); with a channel token, omit it or give that channel.")
                .header("Idempotency-Key", idempotency_key_schema(), IDEMPOTENT_BY_NATURE)
                .multipart_body(r("MediaUpload"), "The file, and with an API key the channel.")
                .json(201, "Uploaded: the media id, its type and size.", r("Media"))
                .problem(400, "No `file` part (or a multipart body that cannot be read, or an empty file), channelId is missing or wrong, or the Idempotency-Key is wrong.", &["validation", "idempotency-key-invalid"])
                .problem(409, "The channel is not connected.", &["channel-not-connected"])
                .problem(413, "The file is larger than WhatsApp takes for its type (`limit`), or the body is larger than `PLANTILLA_MAX_MEDIA_BYTES`.", &["media-too-large", "payload-too-large"])
                .problem(415, "The body is not `multipart/form-data` (`contentType` is its type), or the file's type is not one WhatsApp takes; `accepted` lists those it does.", &["unsupported-media-type"])
                .problem(502, "Meta's Graph API refused or failed the upload; `providerError` is its error.", &["upstream"]),
        ),
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
    ]
}

/// A date (`YYYY-MM-DD`) or an RFC 3339 instant, as `GET /v1/usage` takes its bounds.
fn date_or_instant() -> serde_json::Value {
    serde_json::json!({"anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"}
    ]})
}
