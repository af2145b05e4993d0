//! Component schemas: the JSON shapes of requests and responses (JSON Schema 2020-12, the
//! dialect of OpenAPI 3.1). Response objects are closed (`additionalProperties: false`) so the
//! conformance test catches a field the code sends and this file does not describe.

use serde_json::{Map, Value, json};

use super::PROBLEMS;

// --- Helpers -------------------------------------------------------------------------------

pub(crate) fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

pub(crate) fn string() -> Value {
    json!({"type": "string"})
}

pub(crate) fn integer() -> Value {
    json!({"type": "integer"})
}

pub(crate) fn boolean() -> Value {
    json!({"type": "boolean"})
}

pub(crate) fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

pub(crate) fn one_of_strings(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

pub(crate) fn constant(value: Value) -> Value {
    json!({"const": value})
}

pub(crate) fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// A map from strings to `values`.
pub(crate) fn map(values: Value) -> Value {
    json!({"type": "object", "additionalProperties": values})
}

/// `schema` with a description.
pub(crate) fn d(mut schema: Value, description: &str) -> Value {
    schema["description"] = json!(description);
    schema
}

/// `schema` or `null`.
pub(crate) fn nullable(mut schema: Value) -> Value {
    if let Some(Value::String(t)) = schema.get("type").cloned() {
        schema["type"] = json!([t, "null"]);
        if let Some(Value::Array(values)) = schema.get_mut("enum") {
            values.push(Value::Null);
        }
        schema
    } else {
        let description = schema.as_object_mut().and_then(|o| o.remove("description"));
        let mut any = json!({"anyOf": [schema, {"type": "null"}]});
        if let Some(description) = description {
            any["description"] = description;
        }
        any
    }
}

/// A closed object: `props` and nothing else; `required` must be present.
pub(crate) fn object(props: Vec<(&str, Value)>, required: &[&str]) -> Value {
    let mut o = open_object(props, required);
    o["additionalProperties"] = json!(false);
    o
}

/// A closed object whose every property is required.
pub(crate) fn record(props: Vec<(&str, Value)>) -> Value {
    let names: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    object(props, &names)
}

/// An object that may carry properties beyond `props` (request bodies the server reads
/// leniently).
pub(crate) fn open_object(props: Vec<(&str, Value)>, required: &[&str]) -> Value {
    let properties: Map<String, Value> =
        props.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let mut o = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

fn id(prefix: &str) -> Value {
    d(string(), &format!("Id (`{prefix}_…`)."))
}

// --- Shapes --------------------------------------------------------------------------------

fn problem() -> Value {
    let types: Vec<String> = PROBLEMS
        .iter()
        .map(|p| format!("/problems/{}", p.slug))
        .collect();
    d(
        object(
            vec![
                (
                    "type",
                    d(
                        json!({"type": "string", "enum": types}),
                        "Stable problem type.",
                    ),
                ),
                ("title", d(string(), "Short, fixed title of the type.")),
                ("status", d(integer(), "The HTTP status.")),
                (
                    "detail",
                    d(string(), "What exactly is wrong, for a person."),
                ),
                (
                    "errors",
                    d(
                        array(r("FieldError")),
                        "The failing fields (validation problems).",
                    ),
                ),
                (
                    "conversationId",
                    d(
                        string(),
                        "`conversation-pending`: the pending conversation.",
                    ),
                ),
                (
                    "field",
                    d(
                        string(),
                        "`conversation-pending`: the field of the number (`to`, or `recipients[i].to` in a batch).",
                    ),
                ),
                (
                    "missing",
                    d(
                        array(string()),
                        "`template-incomplete`: the missing template fields.",
                    ),
                ),
                (
                    "templateStatus",
                    d(string(), "`template-not-sendable`: the template's status."),
                ),
                (
                    "channelStatus",
                    d(string(), "`channel-not-connected`: the channel's status."),
                ),
                (
                    "conversationLimit",
                    d(
                        integer(),
                        "`conversation-limit`: the plan's new conversations per month.",
                    ),
                ),
                (
                    "errorId",
                    d(
                        string(),
                        "`internal`: the id of the log line with the cause.",
                    ),
                ),
            ],
            &["type", "title", "status", "detail"],
        ),
        "An RFC 9457 problem document (`application/problem+json`).",
    )
}

fn template_props() -> Vec<(&'static str, Value)> {
    vec![
        ("id", id("tpl")),
        ("name", d(string(), "Meta's template name.")),
        (
            "language",
            d(string(), "Language code: `es`, `en_US`, `pt_BR`…"),
        ),
        (
            "category",
            d(
                string(),
                "MARKETING, UTILITY or AUTHENTICATION (as Meta reports it).",
            ),
        ),
        (
            "status",
            d(
                string(),
                "Meta's status: APPROVED, PENDING, REJECTED, PAUSED, DISABLED, …; only APPROVED templates are sent.",
            ),
        ),
        (
            "appId",
            d(nullable(string()), "The provider's template id."),
        ),
        (
            "message",
            d(
                nullable(string()),
                "The body text with its placeholders (`{{name}}` or `{{1}}`).",
            ),
        ),
        (
            "params",
            d(
                array(string()),
                "The placeholders a send must give values for (header, body and URL buttons), in order of appearance.",
            ),
        ),
        ("header", nullable(r("TemplateHeader"))),
        ("footer", nullable(string())),
        ("buttons", array(r("TemplateButton"))),
        (
            "groupName",
            d(
                nullable(string()),
                "The group conversations of this template go to, if not the channel's default.",
            ),
        ),
        (
            "active",
            d(boolean(), "A deactivated template is not sent."),
        ),
        ("createdAt", time()),
        ("updatedAt", time()),
    ]
}

fn template_header() -> Value {
    d(
        json!({"oneOf": [
            record(vec![("format", constant(json!("TEXT"))), ("text", string())]),
            object(
                vec![
                    ("format", one_of_strings(&["IMAGE", "VIDEO", "DOCUMENT", "LOCATION"])),
                    ("example", d(string(), "Public URL of the media, sent as the header's media link.")),
                ],
                &["format"],
            ),
        ]}),
        "A template header: text (with placeholders) or media.",
    )
}

fn template_button() -> Value {
    d(
        json!({"oneOf": [
            record(vec![("type", constant(json!("QUICK_REPLY"))), ("text", string())]),
            record(vec![
                ("type", constant(json!("URL"))),
                ("text", string()),
                ("url", d(string(), "May end with a placeholder, e.g. `https://x.com/track/{{1}}`.")),
            ]),
            record(vec![
                ("type", constant(json!("PHONE_NUMBER"))),
                ("text", string()),
                ("phoneNumber", string()),
            ]),
            record(vec![("type", constant(json!("COPY_CODE"))), ("example", string())]),
        ]}),
        "A template button.",
    )
}

/// Fields of an admin template body (`accountId` only on create).
fn template_input(create: bool) -> Value {
    let mut props = vec![];
    if create {
        props.push((
            "accountId",
            d(string(), "The account the template belongs to."),
        ));
    }
    props.extend([
        (
            "name",
            d(
                string(),
                "Meta's template name: lowercase letters, digits and underscores.",
            ),
        ),
        (
            "language",
            d(
                string(),
                "Meta's language code: `es`, `en_US`, `pt_BR`, `fil`…",
            ),
        ),
        (
            "category",
            nullable(d(
                one_of_strings(&["MARKETING", "UTILITY", "AUTHENTICATION"]),
                "Default UTILITY.",
            )),
        ),
        (
            "status",
            nullable(d(
                one_of_strings(&[
                    "APPROVED",
                    "PENDING",
                    "REJECTED",
                    "PAUSED",
                    "DISABLED",
                    "IN_APPEAL",
                    "PENDING_DELETION",
                    "DELETED",
                    "LIMIT_EXCEEDED",
                    "ARCHIVED",
                ]),
                "Default APPROVED.",
            )),
        ),
        (
            "appId",
            d(
                nullable(string()),
                "The provider's template id (required to send).",
            ),
        ),
        (
            "message",
            d(
                nullable(string()),
                "Body text; placeholders `{{name}}` or `{{1}}` (required to send).",
            ),
        ),
        (
            "header",
            d(
                json!({"anyOf": [string(), r("TemplateHeader"), {"type": "null"}]}),
                "A string is a text header; `format` is case-insensitive.",
            ),
        ),
        ("footer", nullable(string())),
        (
            "buttons",
            d(
                nullable(array(r("TemplateButton"))),
                "At most 10; `type` is case-insensitive.",
            ),
        ),
        (
            "groupName",
            d(nullable(string()), "A group of the account."),
        ),
        ("active", nullable(boolean())),
    ]);
    let required: &[&str] = if create {
        &["accountId", "name", "language"]
    } else {
        &[]
    };
    object(props, required)
}

fn channel_props(with_token: bool) -> Vec<(&'static str, Value)> {
    let mut props = vec![
        ("id", id("ch")),
        ("accountId", string()),
        ("name", string()),
        ("provider", one_of_strings(&["sandbox", "cloud"])),
        (
            "phoneNumberId",
            d(
                string(),
                "Meta's phone-number id (empty for sandbox channels).",
            ),
        ),
        (
            "wabaId",
            d(
                string(),
                "The WhatsApp Business Account id (template sync).",
            ),
        ),
        (
            "accessTokenSet",
            d(
                boolean(),
                "Whether an access token is stored (it is never shown).",
            ),
        ),
        ("appSecretSet", boolean()),
        ("verifyTokenSet", boolean()),
        ("status", one_of_strings(&["connected", "disconnected"])),
        (
            "messagesPerSecond",
            d(integer(), "The channel's send rate."),
        ),
        (
            "health",
            d(
                one_of_strings(&["ok", "halted"]),
                "`halted` after an error no retry fixes: messages stay queued until a PATCH of the channel.",
            ),
        ),
        (
            "healthError",
            d(
                nullable(r("ProviderError")),
                "The error that halted the channel.",
            ),
        ),
        ("createdAt", time()),
        ("updatedAt", time()),
    ];
    if with_token {
        props.push((
            "publicToken",
            d(
                string(),
                "The channel's public token (`pk_…`): shown only now.",
            ),
        ));
    }
    props
}

fn channel_input(create: bool) -> Value {
    let mut props = vec![];
    if create {
        props.push(("accountId", string()));
    }
    props.extend([
        ("name", d(string(), "At most 200 characters.")),
        (
            "provider",
            d(
                one_of_strings(&["sandbox", "cloud"]),
                "`cloud` needs phoneNumberId and accessToken.",
            ),
        ),
        ("phoneNumberId", nullable(string())),
        ("wabaId", nullable(string())),
        ("accessToken", nullable(string())),
        (
            "appSecret",
            d(
                nullable(string()),
                "Checks signatures of `/webhooks/whatsapp/{channelId}`.",
            ),
        ),
        ("verifyToken", nullable(string())),
        (
            "status",
            d(
                nullable(one_of_strings(&["connected", "disconnected"])),
                "Default connected.",
            ),
        ),
        (
            "messagesPerSecond",
            d(
                json!({"type": ["integer", "null"], "minimum": 1, "maximum": 10000}),
                "Default 80.",
            ),
        ),
    ]);
    let required: &[&str] = if create {
        &["accountId", "name", "provider"]
    } else {
        &[]
    };
    let description = if create {
        "A new channel."
    } else {
        "Fields to change; any PATCH also resumes a halted channel."
    };
    d(object(props, required), description)
}

fn status_times() -> Value {
    d(
        record(vec![
            ("queued", time()),
            ("sending", nullable(time())),
            ("sent", nullable(time())),
            ("delivered", nullable(time())),
            ("read", nullable(time())),
            ("failed", nullable(time())),
        ]),
        "When the message reached each status (null: not yet, or skipped).",
    )
}

fn message_props(native: bool) -> Vec<(&'static str, Value)> {
    let mut props = vec![
        ("id", id("msg")),
        ("conversationId", string()),
        ("channelId", string()),
        ("templateId", string()),
        ("phoneNumber", string()),
        ("status", r("MessageStatus")),
        (
            "providerMessageId",
            d(nullable(string()), "WhatsApp's message id (`wamid.…`)."),
        ),
        (
            "waId",
            d(
                nullable(string()),
                "The recipient's WhatsApp id, as Meta reports it.",
            ),
        ),
        (
            "params",
            d(map(string()), "The params the template was rendered with."),
        ),
        ("attempts", d(integer(), "Delivery attempts so far.")),
        ("pricingCategory", nullable(string())),
        ("statusTimes", r("StatusTimes")),
        ("createdAt", time()),
        ("updatedAt", time()),
    ];
    if native {
        props.extend([
            (
                "error",
                d(nullable(r("MessageError")), "The provider's last error."),
            ),
            ("batchId", nullable(string())),
            (
                "metadata",
                d(
                    nullable(json!({"type": "object"})),
                    "The send's metadata, as given.",
                ),
            ),
            ("callbackUrl", nullable(string())),
        ]);
    } else {
        props.push((
            "error",
            d(nullable(r("ProviderError")), "The provider's last error."),
        ));
    }
    props
}

/// The fields of one recipient (of `POST /v1/messages`, or of a batch).
fn recipient_props() -> Vec<(&'static str, Value)> {
    vec![
        (
            "to",
            d(
                string(),
                "The recipient: country code and number, digits only (`50755667788`).",
            ),
        ),
        (
            "params",
            d(
                map(json!({"type": ["string", "number", "boolean", "null"]})),
                "`{name: value}` for each placeholder; numbers and booleans are taken as their text; null is absent.",
            ),
        ),
        (
            "clientName",
            d(
                nullable(string()),
                "The contact's name; default the number.",
            ),
        ),
        (
            "groupName",
            d(
                nullable(string()),
                "The group to route the conversation to; default the channel's first group.",
            ),
        ),
        (
            "assign",
            d(
                nullable(boolean()),
                "true: assign to an agent; otherwise the bot.",
            ),
        ),
        (
            "callbackUrl",
            d(
                nullable(json!({"type": "string", "format": "uri"})),
                "http:// or https:// URL told about this message's statuses.",
            ),
        ),
        (
            "metadata",
            d(
                nullable(json!({"type": "object"})),
                "Your own data, at most 4 KiB of JSON, returned with the message.",
            ),
        ),
    ]
}

fn template_choice() -> Vec<(&'static str, Value)> {
    vec![
        (
            "channelId",
            d(
                nullable(string()),
                "The channel to send through: required with an account API key; with a channel token, omit it or give that channel.",
            ),
        ),
        ("templateId", d(nullable(string()), "The template, by id…")),
        (
            "templateName",
            d(nullable(string()), "…or by name, with `language`."),
        ),
        ("language", nullable(string())),
    ]
}

fn template_choice_rule() -> Value {
    json!([{"required": ["templateId"]}, {"required": ["templateName", "language"]}])
}

fn compat_send_request(new_family: bool) -> Value {
    let mut props = vec![
        ("templateId", d(string(), "plantilla's template id.")),
        (
            "phoneNumber",
            d(
                string(),
                "Country code and national number, digits only, no `+` or spaces: `50755667788`.",
            ),
        ),
        (
            "clientName",
            d(
                nullable(string()),
                "The contact's name; default the number.",
            ),
        ),
    ];
    if new_family {
        props.extend([
            (
                "firstName",
                d(
                    nullable(string()),
                    "Joined with lastName when clientName is absent.",
                ),
            ),
            ("lastName", nullable(string())),
        ]);
    }
    props.extend([
        ("groupName", d(nullable(string()), "The group to route the conversation to; default the channel's first group.")),
        ("assign", d(nullable(boolean()), "true: assign to an agent; otherwise the bot. Default false.")),
        ("params", d(
            nullable(map(json!({"type": ["string", "number", "boolean", "null"]}))),
            "`{name: value}` for each placeholder; numbers and booleans are taken as their text.",
        )),
    ]);
    open_object(props, &["templateId", "phoneNumber"])
}

/// Every component schema, by name.
pub(super) fn all() -> Value {
    let schemas: Vec<(&str, Value)> = vec![
        // Common.
        ("Problem", problem()),
        (
            "FieldError",
            d(
                record(vec![
                    (
                        "field",
                        d(
                            string(),
                            "Path of the field: `to`, `recipients[3].params.name`…",
                        ),
                    ),
                    ("message", string()),
                ]),
                "One failing field.",
            ),
        ),
        (
            "ProviderError",
            d(
                record(vec![
                    ("code", d(integer(), "Meta's error code.")),
                    ("title", string()),
                    ("details", nullable(string())),
                ]),
                "An error the provider (WhatsApp) reported.",
            ),
        ),
        (
            "MessageStatus",
            d(
                one_of_strings(&["queued", "sending", "sent", "delivered", "read", "failed"]),
                "queued → sending → sent → delivered → read, or failed (final).",
            ),
        ),
        (
            "Template",
            d(record(template_props()), "A template known to plantilla."),
        ),
        ("TemplateHeader", template_header()),
        ("TemplateButton", template_button()),
        (
            "Conversation",
            d(
                record(vec![
                    ("id", id("conv")),
                    ("accountId", string()),
                    ("channelId", string()),
                    ("phoneNumber", string()),
                    (
                        "status",
                        d(
                            one_of_strings(&["pending", "open", "closed"]),
                            "pending: a first template is not confirmed by WhatsApp yet; open; closed.",
                        ),
                    ),
                    ("assignee", one_of_strings(&["agent", "bot"])),
                    ("groupName", nullable(string())),
                    ("clientName", string()),
                    (
                        "closeReason",
                        nullable(one_of_strings(&[
                            "operator",
                            "expired",
                            "first_message_failed",
                        ])),
                    ),
                    ("createdAt", time()),
                    ("openedAt", nullable(time())),
                    ("closedAt", nullable(time())),
                    ("lastActivityAt", time()),
                ]),
                "A thread between a channel and a number.",
            ),
        ),
        ("StatusTimes", status_times()),
        // Native API.
        (
            "SendRequest",
            d(
                {
                    let mut props = template_choice();
                    props.extend(recipient_props());
                    let mut o = open_object(props, &["to"]);
                    o["anyOf"] = template_choice_rule();
                    o
                },
                "One template send: the template by `templateId`, or by `templateName` and `language`.",
            ),
        ),
        (
            "MessageAccepted",
            d(
                record(vec![
                    ("id", d(string(), "The message id (`msg_…`).")),
                    ("status", constant(json!("queued"))),
                    ("channelId", string()),
                    ("to", string()),
                    (
                        "conversation",
                        record(vec![
                            ("id", string()),
                            (
                                "status",
                                d(
                                    one_of_strings(&["pending", "open"]),
                                    "pending: a new conversation, opened when WhatsApp confirms the message; open: the number's open conversation.",
                                ),
                            ),
                        ]),
                    ),
                ]),
                "A send accepted: stored and queued for delivery.",
            ),
        ),
        (
            "BatchRequest",
            d(
                {
                    let mut props = template_choice();
                    props.push(("recipients", d(
                    json!({"type": "array", "minItems": 1, "maxItems": 10000, "items": r("BatchRecipient")}),
                    "1 to 10,000 recipients, each with its own params.",
                )));
                    let mut o = open_object(props, &["recipients"]);
                    o["anyOf"] = template_choice_rule();
                    o
                },
                "One template to many recipients.",
            ),
        ),
        (
            "BatchRecipient",
            d(
                open_object(recipient_props(), &["to"]),
                "One recipient of a batch.",
            ),
        ),
        (
            "BatchAccepted",
            d(
                record(vec![
                    (
                        "batchId",
                        d(
                            string(),
                            "The batch id (`bat_…`); the same for a retry with the same Idempotency-Key.",
                        ),
                    ),
                    ("total", integer()),
                    ("accepted", integer()),
                    ("rejected", integer()),
                    (
                        "results",
                        d(
                            array(
                                json!({"oneOf": [r("BatchRecipientAccepted"), r("BatchRecipientRejected")]}),
                            ),
                            "One result per recipient, in the request's order.",
                        ),
                    ),
                ]),
                "A batch: every recipient accepted or rejected on its own.",
            ),
        ),
        (
            "BatchRecipientAccepted",
            record(vec![
                (
                    "index",
                    d(integer(), "The recipient's position in the request."),
                ),
                ("status", constant(json!("accepted"))),
                ("messageId", string()),
                ("channelId", string()),
                ("to", string()),
                (
                    "conversation",
                    record(vec![
                        ("id", string()),
                        ("status", one_of_strings(&["pending", "open"])),
                    ]),
                ),
            ]),
        ),
        (
            "BatchRecipientRejected",
            record(vec![
                (
                    "index",
                    d(integer(), "The recipient's position in the request."),
                ),
                ("status", constant(json!("rejected"))),
                (
                    "problem",
                    d(
                        r("Problem"),
                        "Why, as the problem a single send would have answered; fields are `recipients[i].…`.",
                    ),
                ),
            ]),
        ),
        (
            "Batch",
            d(
                record(vec![
                    ("id", string()),
                    ("channelId", string()),
                    ("total", integer()),
                    ("accepted", integer()),
                    ("rejected", integer()),
                    (
                        "byStatus",
                        d(map(integer()), "Accepted messages by their current status."),
                    ),
                    ("createdAt", time()),
                ]),
                "A batch's counts.",
            ),
        ),
        (
            "MessageError",
            d(
                record(vec![
                    ("code", d(integer(), "Meta's error code.")),
                    ("title", string()),
                    ("details", nullable(string())),
                    (
                        "willRetry",
                        d(boolean(), "Whether another attempt is scheduled."),
                    ),
                    (
                        "nextAttemptAt",
                        d(nullable(time()), "When, if it will be retried."),
                    ),
                ]),
                "The provider's last error for a message.",
            ),
        ),
        (
            "Message",
            d(
                record(message_props(true)),
                "A message with its status timeline.",
            ),
        ),
        (
            "MessagePage",
            record(vec![
                ("data", array(r("Message"))),
                (
                    "nextCursor",
                    d(
                        nullable(string()),
                        "Pass as `cursor` for the next page; null on the last.",
                    ),
                ),
            ]),
        ),
        (
            "ConversationPage",
            record(vec![
                ("data", array(r("Conversation"))),
                (
                    "nextCursor",
                    d(
                        nullable(string()),
                        "Pass as `cursor` for the next page; null on the last.",
                    ),
                ),
            ]),
        ),
        (
            "TemplatePage",
            record(vec![
                ("data", array(r("Template"))),
                ("page", integer()),
                ("limit", integer()),
                (
                    "total",
                    d(integer(), "Templates matching the filters, on every page."),
                ),
            ]),
        ),
        (
            "SyncSummary",
            d(
                record(vec![
                    ("created", integer()),
                    ("updated", integer()),
                    (
                        "skipped",
                        d(
                            integer(),
                            "Templates plantilla cannot represent (the log says why).",
                        ),
                    ),
                    ("pages", d(integer(), "Pages of Meta's template list read.")),
                ]),
                "What a template sync did.",
            ),
        ),
        // Compatible API.
        (
            "CompatSendRequest",
            d(compat_send_request(false), "A template send (old family)."),
        ),
        (
            "CompatSendRequestNew",
            d(compat_send_request(true), "A template send (new family)."),
        ),
        (
            "CompatSendAccepted",
            d(
                record(vec![
                    ("success", constant(json!(true))),
                    (
                        "message",
                        d(
                            one_of_strings(&["Pending", "Sent"]),
                            "Pending: a new conversation, opened when WhatsApp confirms; Sent: on the number's open conversation.",
                        ),
                    ),
                    (
                        "data",
                        record(vec![
                            ("conversation_id", string()),
                            ("message_id", string()),
                        ]),
                    ),
                ]),
                "The send is stored and queued.",
            ),
        ),
        (
            "CompatAlreadyPending",
            d(
                record(vec![
                    ("success", constant(json!(false))),
                    ("conversationId", string()),
                    ("status", constant(json!(202))),
                ]),
                "The number has a pending conversation: nothing new is sent.",
            ),
        ),
        (
            "CompatLimitReached",
            d(
                record(vec![
                    ("success", constant(json!(false))),
                    (
                        "message",
                        constant(json!("The client has reached conversations limit")),
                    ),
                    ("conversationId", json!({"type": "null"})),
                    ("status", constant(json!(401))),
                ]),
                "The account has used its plan's conversations this month.",
            ),
        ),
        (
            "CompatInvalidBody",
            d(
                record(vec![
                    ("success", constant(json!(false))),
                    ("message", constant(json!("No hay datos para enviar"))),
                    (
                        "detail",
                        d(string(), "What exactly is wrong with the body."),
                    ),
                ]),
                "The body is not a valid send (old family).",
            ),
        ),
        (
            "CompatError",
            d(
                object(
                    vec![
                        (
                            "context",
                            object(
                                vec![
                                    (
                                        "key",
                                        d(
                                            string(),
                                            "`Authorization`, `Body`, `Query`, `Params`, `Template`, `Channel`, `Account` or `Api`.",
                                        ),
                                    ),
                                    ("label", json!({"anyOf": [string(), array(string())]})),
                                    (
                                        "value",
                                        d(
                                            json!({"type": ["string", "integer"]}),
                                            "The offending value (never a token).",
                                        ),
                                    ),
                                ],
                                &["key", "label"],
                            ),
                        ),
                        ("message", string()),
                        ("path", array(string())),
                        (
                            "type",
                            d(
                                string(),
                                "`Bad format`, `Not found`, `Unauthorized` or `Internal Server Error`.",
                            ),
                        ),
                        (
                            "detail",
                            d(array(string()), "Missing params: why each one is refused."),
                        ),
                    ],
                    &["context", "message", "path", "type"],
                ),
                "AtomChat's error body.",
            ),
        ),
        (
            "CompatEnvelope",
            d(
                record(vec![
                    ("code", d(integer(), "The HTTP status.")),
                    ("body", r("CompatError")),
                ]),
                "AtomChat's error envelope.",
            ),
        ),
        (
            "CompatTemplateList",
            record(vec![
                ("success", constant(json!(true))),
                ("data", array(r("Template"))),
                ("page", integer()),
                ("size", integer()),
                (
                    "total",
                    d(integer(), "Templates matching the filters, on every page."),
                ),
            ]),
        ),
        (
            "CompatTemplateDetail",
            record(vec![
                ("success", constant(json!(true))),
                ("data", r("Template")),
            ]),
        ),
        // Admin API.
        (
            "Account",
            d(
                record(vec![
                    ("id", id("acc")),
                    ("name", string()),
                    (
                        "conversationLimit",
                        d(integer(), "New conversations per calendar month (UTC)."),
                    ),
                    ("createdAt", time()),
                    ("updatedAt", time()),
                ]),
                "A customer company.",
            ),
        ),
        (
            "AccountCreate",
            object(
                vec![
                    ("name", d(string(), "At most 200 characters.")),
                    (
                        "conversationLimit",
                        d(
                            json!({"type": ["integer", "null"], "minimum": 0, "maximum": 2147483647}),
                            "Default 1000.",
                        ),
                    ),
                ],
                &["name"],
            ),
        ),
        (
            "ApiKeyCreate",
            object(
                vec![("name", d(nullable(string()), "Default `default`."))],
                &[],
            ),
        ),
        (
            "ApiKey",
            d(
                record(vec![
                    ("id", id("key")),
                    ("accountId", string()),
                    ("name", string()),
                    ("key", d(string(), "The key (`ak_…`): shown only now.")),
                    ("createdAt", time()),
                ]),
                "A new account API key.",
            ),
        ),
        (
            "Channel",
            d(
                record(channel_props(false)),
                "A WhatsApp number of an account, without its secrets.",
            ),
        ),
        (
            "ChannelCreated",
            d(
                record(channel_props(true)),
                "A new channel, with its public token.",
            ),
        ),
        ("ChannelCreate", channel_input(true)),
        ("ChannelUpdate", channel_input(false)),
        (
            "TokenRotated",
            record(vec![
                ("id", string()),
                (
                    "publicToken",
                    d(
                        string(),
                        "The new public token: shown only now; the old one stops working.",
                    ),
                ),
            ]),
        ),
        (
            "Group",
            d(
                record(vec![
                    ("id", id("grp")),
                    ("accountId", string()),
                    ("name", string()),
                    (
                        "channelIds",
                        d(
                            array(string()),
                            "In association order; a channel's first group is its default.",
                        ),
                    ),
                    ("createdAt", time()),
                ]),
                "A team conversations are routed to.",
            ),
        ),
        (
            "GroupCreate",
            object(
                vec![
                    ("accountId", string()),
                    ("name", d(string(), "Unique in the account.")),
                    (
                        "channelIds",
                        d(nullable(array(string())), "Channels of the account."),
                    ),
                ],
                &["accountId", "name"],
            ),
        ),
        ("TemplateCreate", d(template_input(true), "A new template.")),
        (
            "TemplateUpdate",
            d(template_input(false), "Fields to change."),
        ),
        (
            "AdminMessage",
            d(
                record(message_props(false)),
                "A message, as the operator sees it.",
            ),
        ),
        // Webhooks.
        (
            "MetaNotification",
            d(
                json!({"type": "object"}),
                "A WhatsApp Business webhook notification (`object`, `entry[].changes[]`), as Meta sends it.",
            ),
        ),
    ];
    Value::Object(
        schemas
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}
