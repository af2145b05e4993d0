//! Every operation of the HTTP surface: one [`Op`] per method and path of the router
//! (`tests/it/openapi.rs` checks that the two agree).

use serde_json::json;

use super::schemas::{cursor, one_of_strings, phone_number, r, string, text, time};
use super::{Auth, JSON, Op};
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
    ops.extend(admin());
    ops.extend(suppressions());
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
    ]
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

// --- Opt-outs ------------------------------------------------------------------------------

fn suppressions() -> Vec<Op> {
    const PHONE: &str = "The number, country code first, digits only (`50755667788`).";
    vec![
        internal(not_found(
            adm(
                "GET",
                "/v1/admin/accounts/{id}/suppressions",
                "adminListSuppressions",
                "List an account's suppression list",
            )
            .doc("As `GET /v1/suppressions`, for any account.")
            .path_param("id", "The account id.")
            .query(
                "limit",
                json!({"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
                "Items per page.",
            )
            .query(
                "cursor",
                cursor(),
                "`nextCursor` of the previous page (oldest first).",
            )
            .json(200, "A page of entries.", r("SuppressionPage"))
            .problem(400, "`limit` or `cursor` is wrong.", &["validation"]),
            "account",
        )),
        internal(not_found(
            invalid(
                adm(
                    "POST",
                    "/v1/admin/accounts/{id}/suppressions",
                    "adminAddSuppression",
                    "Add a number to an account's suppression list",
                )
                .doc("As `POST /v1/suppressions` (reason `api`).")
                .path_param("id", "The account id.")
                .body(r("SuppressionCreate"), "The number.")
                .json(201, "Added.", r("Suppression"))
                .json(
                    200,
                    "Already on the list: its entry, unchanged.",
                    r("Suppression"),
                ),
            ),
            "account",
        )),
        internal(
            invalid(
                adm(
                    "DELETE",
                    "/v1/admin/accounts/{id}/suppressions/{phoneNumber}",
                    "adminRemoveSuppression",
                    "Remove a number from an account's suppression list",
                )
                .doc("As `DELETE /v1/suppressions/{phoneNumber}`.")
                .path_param("id", "The account id.")
                .path_param_with("phoneNumber", phone_number(), PHONE)
                .answer(204, "Removed.", &[]),
            )
            .problem(
                404,
                "No such account, or the number is not on its list.",
                &["not-found"],
            ),
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
