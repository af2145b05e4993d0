//! Every operation of the HTTP surface: one [`Op`] per method and path of the router
//! (`tests/it/openapi.rs` checks that the two agree).

use serde_json::json;

use super::schemas::{cursor, phone_number, r};
use super::{Auth, JSON, Op};

pub(crate) const NATIVE: &str = "Native API";
pub(crate) const COMPAT_OLD: &str = "Compatible API (old family)";
pub(crate) const COMPAT_NEW: &str = "Compatible API (new family)";
pub(crate) const ADMIN: &str = "Admin API";
pub(crate) const WEBHOOKS: &str = "Meta webhooks";
pub(crate) const REFERENCE: &str = "Reference";
pub(crate) const OPERATIONS: &str = "Operations";

pub(super) fn all() -> Vec<Op> {
    let mut ops = admin();
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
