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

/// A string the server requires non-empty (an id, a name, a code).
pub(crate) fn text() -> Value {
    json!({"type": "string", "minLength": 1})
}

/// A name the admin API takes (an account's, a channel's, a group's): 1 to 200 characters, not
/// only spaces, no control characters (the server trims it and refuses control characters).
pub(crate) fn name_text() -> Value {
    const CONTROL: &str = "\\u0000-\\u001F\\u007F-\\u009F";
    const SPACE: &str = " \\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
    json!({"type": "string", "minLength": 1, "maxLength": 200,
           "pattern": format!("^[^{CONTROL}]*[^{CONTROL}{SPACE}][^{CONTROL}]*$")})
}

/// A phone number as the send paths take it: country code and national number, digits only,
/// no leading 0, at most 15 digits (E.164). The numbering plan is checked too (a 400 naming
/// the field); no pattern can say that.
pub(crate) fn phone_number() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 15, "pattern": "^[1-9][0-9]*$"})
}

/// An absolute http:// or https:// URL (the scheme in any case). The pattern gives the usual
/// shape, a host name or an IPv4 address and an optional port, path and query; the server takes
/// any URL of those schemes it can parse (an IPv6 host too).
pub(crate) fn http_url(max: u32) -> Value {
    const OCTET: &str = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    const PORT: &str =
        "[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]";
    let host = format!("(([A-Za-z0-9-]+[.])*[A-Za-z][A-Za-z0-9-]*|({OCTET}[.]){{3}}{OCTET})");
    json!({"type": "string", "maxLength": max,
           "pattern": format!("^[Hh][Tt][Tt][Pp]([Ss])?://{host}(:({PORT}))?([/?#][!-~]*)?$")})
}

/// A list cursor: the `nextCursor` of a previous page, opaque (hex of `<ms>.<id>`).
pub(crate) fn cursor() -> Value {
    json!({"type": "string", "minLength": 6, "pattern": "^(3[0-9]){1,18}2e(3[0-9]|[46][1-9a-f]|[57][0-9a]|5f)+$"})
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

/// `schema` with an example (JSON Schema's `examples`).
pub(crate) fn ex(mut schema: Value, example: Value) -> Value {
    schema["examples"] = json!([example]);
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

/// An account's keyword list.
fn keyword_list() -> Value {
    json!({"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 200},
           "minItems": 1, "maxItems": 50})
}

fn id(prefix: &str) -> Value {
    d(string(), &format!("Id (`{prefix}_…`)."))
}

/// `HH:MM`, 00:00 to 23:59.
fn time_of_day() -> Value {
    json!({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"})
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
                    "metaCode",
                    d(
                        integer(),
                        "`upstream` of a template submission or deletion: Meta's error code.",
                    ),
                ),
                (
                    "metaMessage",
                    d(
                        string(),
                        "`upstream` of a template submission or deletion: Meta's error message.",
                    ),
                ),
                (
                    "channelStatus",
                    d(string(), "`channel-not-connected`: the channel's status."),
                ),
                (
                    "messageStatus",
                    d(
                        r("MessageStatus"),
                        "`message-not-cancellable`: the message's status.",
                    ),
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
                (
                    "mimeType",
                    d(
                        nullable(string()),
                        "`unsupported-media-type`, `media-too-large`: the file's type (null when it had none).",
                    ),
                ),
                (
                    "contentType",
                    d(
                        nullable(string()),
                        "`unsupported-media-type` (request body): the request's `Content-Type` (null when it had none).",
                    ),
                ),
                (
                    "accepted",
                    d(
                        array(string()),
                        "`unsupported-media-type`: the body types the operation takes, or the MIME types WhatsApp takes for an uploaded file.",
                    ),
                ),
                (
                    "mediaKind",
                    d(
                        one_of_strings(&["audio", "document", "image", "sticker", "video"]),
                        "`media-too-large`: the kind of media the type is.",
                    ),
                ),
                (
                    "size",
                    d(integer(), "`media-too-large`: the file's size in bytes."),
                ),
                (
                    "limit",
                    d(
                        integer(),
                        "`media-too-large`: the largest file of its type WhatsApp takes, in bytes.",
                    ),
                ),
                (
                    "providerError",
                    d(
                        r("ProviderError"),
                        "`upstream` (media uploads): the Graph API's error.",
                    ),
                ),
            ],
            &["type", "title", "status", "detail"],
        ),
        "An RFC 9457 problem document (`application/problem+json`).",
    )
}

fn webhook_endpoint_props() -> Vec<(&'static str, Value)> {
    vec![
        ("id", id("we")),
        ("url", string()),
        ("eventTypes", array(r("EventType"))),
        ("description", nullable(string())),
        ("createdAt", time()),
    ]
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
        (
            "buttons",
            d(
                array(r("TemplateButton")),
                "Every button, in Meta's order: a button's position is the `index` a send uses for it.",
            ),
        ),
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
        (
            "sendable",
            d(
                boolean(),
                "false when the template has a component or button plantilla cannot send (`unsendableReason` says which); a send of it is refused before anything is queued.",
            ),
        ),
        ("unsendableReason", nullable(string())),
        ("createdAt", time()),
        ("updatedAt", time()),
    ]
}

/// Template fields shown only when the template has them.
fn template_optional_props() -> Vec<(&'static str, Value)> {
    vec![
        (
            "carousel",
            d(
                array(r("TemplateCard")),
                "A carousel's cards, in order; a send gives each card's values (`cards`, or `card.<n>.…` params).",
            ),
        ),
        ("limitedTimeOffer", r("TemplateOffer")),
        (
            "parameterFormat",
            d(
                one_of_strings(&["NAMED", "POSITIONAL"]),
                "Meta's `parameter_format`.",
            ),
        ),
        (
            "health",
            d(
                r("TemplateHealth"),
                "What Meta last reported about the template (status event, reason, flag, quality, a pending category change): native and admin APIs, once Meta has reported on it.",
            ),
        ),
    ]
}

fn template_health() -> Value {
    ex(
        d(
            record(vec![
                (
                    "lastEvent",
                    d(
                        nullable(string()),
                        "Meta's last `message_template_status_update` event: APPROVED, REJECTED, PENDING, PAUSED, DISABLED, ARCHIVED, UNARCHIVED, FLAGGED, REINSTATED, PENDING_DELETION, … (kept as sent).",
                    ),
                ),
                (
                    "reason",
                    d(nullable(string()), "Meta's reason for it (`NONE` is null)."),
                ),
                ("statusUpdatedAt", nullable(time())),
                (
                    "disableDate",
                    d(
                        nullable(time()),
                        "`disable_info.disable_date`: when a flagged template will be disabled.",
                    ),
                ),
                (
                    "otherInfo",
                    d(
                        nullable(json!({"type": "object"})),
                        "`other_info {title, description}` as Meta sent it.",
                    ),
                ),
                (
                    "flagged",
                    d(
                        boolean(),
                        "FLAGGED and not since approved, reinstated or back to GREEN.",
                    ),
                ),
                ("flaggedAt", nullable(time())),
                (
                    "qualityScore",
                    d(nullable(string()), "GREEN, YELLOW, RED or UNKNOWN."),
                ),
                ("previousQualityScore", nullable(string())),
                ("qualityUpdatedAt", nullable(time())),
                ("previousCategory", nullable(string())),
                ("categoryUpdatedAt", nullable(time())),
                (
                    "pendingCategoryChange",
                    d(
                        nullable(record(vec![
                            ("category", string()),
                            ("effectiveAt", nullable(time())),
                            ("notifiedAt", nullable(time())),
                        ])),
                        "A category change Meta announced (`correct_category`) and has not made yet.",
                    ),
                ),
            ]),
            "A template's health as Meta reports it.",
        ),
        json!({"lastEvent": "FLAGGED", "reason": "LOW_QUALITY", "statusUpdatedAt": "2026-12-01T10:00:00.000Z",
               "disableDate": "2026-12-08T00:00:00.000Z", "otherInfo": null, "flagged": true,
               "flaggedAt": "2026-12-01T10:00:00.000Z", "qualityScore": "RED", "previousQualityScore": "YELLOW",
               "qualityUpdatedAt": "2026-12-01T09:00:00.000Z", "previousCategory": null, "categoryUpdatedAt": null,
               "pendingCategoryChange": null}),
    )
}

fn channel_quality() -> Value {
    d(
        record(vec![
            (
                "qualityRating",
                d(nullable(string()), "GREEN, YELLOW, RED or UNKNOWN."),
            ),
            ("previousQualityRating", nullable(string())),
            (
                "lastEvent",
                d(
                    nullable(string()),
                    "Meta's last event: FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE, …",
                ),
            ),
            ("updatedAt", nullable(time())),
            (
                "displayPhoneNumber",
                d(
                    nullable(string()),
                    "The number as Meta displays it, once known.",
                ),
            ),
        ]),
        "A number's quality as Meta last reported it.",
    )
}

fn usage_row() -> Value {
    let mut row = open_object(
        vec![
            (
                "key",
                d(
                    string(),
                    "The group: a day (YYYY-MM-DD), a template id, a channel id or a category.",
                ),
            ),
            ("day", string()),
            ("templateId", string()),
            ("channelId", string()),
            ("category", d(string(), "Meta's pricing category.")),
            ("billable", d(integer(), "Messages Meta charges.")),
            (
                "free",
                d(
                    integer(),
                    "Free messages (customer service window, free entry point).",
                ),
            ),
            (
                "estimatedCost",
                d(
                    nullable(json!({"type": "number"})),
                    "Billable messages times the configured price (null without a price table, or when one has no price).",
                ),
            ),
        ],
        &["key", "category", "billable", "free", "estimatedCost"],
    );
    row["additionalProperties"] = json!(false);
    row
}

fn media_ref() -> Value {
    d(
        object(
            vec![
                (
                    "link",
                    d(
                        json!({"type": "string", "minLength": 1}),
                        "An http(s) URL of the media.",
                    ),
                ),
                (
                    "id",
                    d(
                        json!({"type": "string", "minLength": 1}),
                        "A media id (from `POST /v1/media`).",
                    ),
                ),
                (
                    "filename",
                    d(
                        string(),
                        "A document's file name, as the recipient sees it.",
                    ),
                ),
            ],
            &[],
        ),
        "A media file: `link` or `id`, and for documents an optional `filename`.",
    )
}

fn template_card() -> Value {
    d(
        object(
            vec![
                (
                    "header",
                    d(
                        json!({"allOf": [r("TemplateHeader"), {"properties": {"format": {"enum": ["IMAGE", "VIDEO"]}}}]}),
                        "An IMAGE or VIDEO header, the same kind on every card.",
                    ),
                ),
                (
                    "body",
                    d(
                        string(),
                        "The card's text; positional placeholders. Empty when left out.",
                    ),
                ),
                (
                    "buttons",
                    d(nullable(array(r("TemplateButton"))), "None when null."),
                ),
            ],
            &["header"],
        ),
        "One card of a carousel template.",
    )
}

fn template_offer() -> Value {
    d(
        object(
            vec![
                (
                    "text",
                    d(string(), "The offer's headline (at most 16 characters)."),
                ),
                (
                    "hasExpiration",
                    d(
                        nullable(boolean()),
                        "true: every send gives `offerExpiresAt` (`offer.expiration_time_ms` in the compatible API).",
                    ),
                ),
            ],
            &["text"],
        ),
        "A limited-time offer.",
    )
}

const SEND_HEADER_DOC: &str = "The header's values for this send: for an IMAGE, VIDEO, GIF or \
    DOCUMENT header `link` (http or https) or `id` (a media id from `POST /v1/media`), \
    `filename` (documents) and an optional `type` that must match the template's; for a \
    LOCATION header `latitude`, `longitude` (numbers), `name`, `address`. Without it a media \
    header uses the template's default media, if the operator set one.";

fn send_header() -> Value {
    d(
        object(
            vec![
                (
                    "type",
                    nullable(one_of_strings(&[
                        "image", "video", "gif", "document", "IMAGE", "VIDEO", "GIF", "DOCUMENT",
                    ])),
                ),
                // A null field is absent, as the server reads it.
                ("link", nullable(json!({"type": "string", "minLength": 1}))),
                ("id", nullable(json!({"type": "string", "minLength": 1}))),
                ("filename", nullable(string())),
                ("latitude", json!({"type": ["number", "string", "null"]})),
                ("longitude", json!({"type": ["number", "string", "null"]})),
                ("name", nullable(string())),
                ("address", nullable(string())),
            ],
            &[],
        ),
        SEND_HEADER_DOC,
    )
}

fn send_button() -> Value {
    d(
        object(
            vec![
                (
                    "index",
                    d(
                        json!({"type": "integer", "minimum": 0, "maximum": 9}),
                        "The button's position among the template's buttons, as Meta counts it.",
                    ),
                ),
                (
                    "payload",
                    d(
                        string(),
                        "QUICK_REPLY: the payload returned when the button is clicked.",
                    ),
                ),
                (
                    "couponCode",
                    d(
                        json!({"type": "string", "maxLength": 15}),
                        "COPY_CODE: the code to copy (at most 15 characters).",
                    ),
                ),
                ("flowToken", d(string(), "FLOW: the flow token.")),
                (
                    "flowActionData",
                    d(
                        json!({"type": "object"}),
                        "FLOW: the data for the flow's first screen.",
                    ),
                ),
                (
                    "action",
                    d(
                        json!({"type": "object"}),
                        "CATALOG / MPM: Meta's action object (thumbnail_product_retailer_id, sections).",
                    ),
                ),
            ],
            &["index"],
        ),
        "A value for one button of the template. A URL button's suffix is its placeholder's param; an OTP button takes the body's code.",
    )
}

fn send_card() -> Value {
    d(
        object(
            vec![
                // Each is absent when null, as the server reads it.
                ("header", nullable(r("SendHeader"))),
                (
                    "params",
                    nullable(map(
                        json!({"type": ["string", "number", "boolean", "null"]}),
                    )),
                ),
                ("buttons", nullable(array(r("SendButton")))),
            ],
            &[],
        ),
        "One carousel card's values, in the template's card order (as many cards as the template has).",
    )
}

fn typed_param() -> Value {
    d(
        json!({"oneOf": [
            record(vec![("currency", record(vec![
                ("fallbackValue", string()),
                ("code", d(json!({"type": "string", "pattern": "^[A-Z]{3}$"}), "ISO 4217.")),
                ("amount1000", d(integer(), "The amount times 1000.")),
            ]))]),
            record(vec![("dateTime", record(vec![("fallbackValue", string())]))]),
        ]}),
        "A typed parameter (Meta's currency or date_time); its fallbackValue is the text shown.",
    )
}

/// `params`, `header`, `buttons`, `cards`, `offerExpiresAt`: the values of a send.
fn send_value_props() -> Vec<(&'static str, Value)> {
    vec![
        (
            "params",
            d(
                nullable(map(
                    json!({"anyOf": [{"type": ["string", "number", "boolean", "null"]}, r("TypedParam")]}),
                )),
                "`{name: value}` for each placeholder (`params: null` is no params); numbers and booleans are taken as their text; null is absent; an object is a typed parameter. The compatible API's reserved keys (`header.link`, `button.1.payload`, …) work here too.",
            ),
        ),
        // Each of these is absent when null, as the server reads them.
        ("header", nullable(r("SendHeader"))),
        ("buttons", nullable(array(r("SendButton")))),
        ("cards", nullable(array(r("SendCard")))),
        (
            "offerExpiresAt",
            d(
                nullable(json!({"type": "string", "format": "date-time", "minLength": 20})),
                "A limited-time offer's expiry (RFC 3339), when the template's offer shows one.",
            ),
        ),
    ]
}

fn template_preview() -> Value {
    record(vec![
        ("templateId", id("tpl")),
        ("sendable", boolean()),
        (
            "valid",
            d(
                boolean(),
                "true when a send with these values would be accepted.",
            ),
        ),
        ("errors", array(r("FieldError"))),
        (
            "preview",
            d(
                json!({"type": "object"}),
                "What the recipient would see: `header` (text, media or location), `body`, `footer`, `buttons` (index, type, text, value), `cards`, `offer`.",
            ),
        ),
        (
            "components",
            d(
                array(json!({"type": "object"})),
                "The `template.components` plantilla would send to Meta.",
            ),
        ),
    ])
}

fn template_header() -> Value {
    d(
        json!({"oneOf": [
            record(vec![("format", constant(json!("TEXT"))), ("text", string())]),
            object(
                vec![
                    ("format", one_of_strings(&["IMAGE", "VIDEO", "GIF", "DOCUMENT", "LOCATION"])),
                    ("example", d(nullable(string()), "Public URL of the media, sent as the header's media when a send gives none (unless `defaultMedia` is set).")),
                    ("sample", d(nullable(string()), "Meta's sample of a synced template (`header_handle`): shown, never sent.")),
                    ("defaultMedia", nullable(r("MediaRef"))),
                ],
                &["format"],
            ),
        ]}),
        "A template header: text (with placeholders), media chosen per send, or a location.",
    )
}

fn template_button() -> Value {
    let labelled = |kind: &str| record(vec![("type", constant(json!(kind))), ("text", string())]);
    d(
        json!({"oneOf": [
            labelled("QUICK_REPLY"),
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
            object(vec![
                ("type", constant(json!("OTP"))),
                ("otpType", one_of_strings(&["COPY_CODE", "ONE_TAP", "ZERO_TAP"])),
                ("text", string()),
            ], &["type", "otpType"]),
            object(vec![
                ("type", constant(json!("FLOW"))),
                ("text", string()),
                ("flowId", string()),
                ("flowAction", string()),
                ("navigateScreen", string()),
            ], &["type", "text"]),
            labelled("CATALOG"),
            labelled("MPM"),
            labelled("VOICE_CALL"),
            d(record(vec![
                ("type", constant(json!("OTHER"))),
                ("kind", d(string(), "Meta's type of the button.")),
                ("raw", json!({"type": "object"})),
            ]), "A button type plantilla does not know yet: kept so the other buttons keep their index; the template is not sendable."),
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
            d(text(), "The account the template belongs to."),
        ));
    }
    props.extend([
        (
            "name",
            d(
                json!({"type": "string", "minLength": 1, "maxLength": 512, "pattern": "^[a-z0-9_]+$"}),
                "Meta's template name: lowercase letters, digits and underscores.",
            ),
        ),
        (
            "language",
            d(
                json!({"type": "string", "pattern": "^[a-z]{2,3}(_[A-Z]{2})?$"}),
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
        (
            "carousel",
            d(
                nullable(json!({"type": "array", "items": r("TemplateCard"), "minItems": 2, "maxItems": 10})),
                "A carousel's cards (2 to 10), each with an IMAGE or VIDEO header.",
            ),
        ),
        ("limitedTimeOffer", nullable(r("TemplateOffer"))),
        (
            "parameterFormat",
            nullable(one_of_strings(&["NAMED", "POSITIONAL"])),
        ),
    ]);
    let required: &[&str] = if create {
        &["accountId", "name", "language"]
    } else {
        &[]
    };
    object(props, required)
}

/// A template submission: the admin template fields (without `accountId`, `status`,
/// `appId`, `groupName`, `active`), `examples`, and each media header's `sample` file.
fn template_submit(native: bool) -> Value {
    let media_header = open_object(
        vec![
            (
                "format",
                one_of_strings(&["TEXT", "IMAGE", "VIDEO", "GIF", "DOCUMENT", "LOCATION"]),
            ),
            (
                "text",
                d(
                    string(),
                    "TEXT headers: at most 60 characters, one placeholder.",
                ),
            ),
            (
                "sample",
                d(
                    r("TemplateSample"),
                    "Required for IMAGE, VIDEO, GIF and DOCUMENT headers.",
                ),
            ),
            ("example", string()),
            ("defaultMedia", r("MediaRef")),
        ],
        &["format"],
    );
    let mut props = vec![];
    if native {
        props.push((
            "channelId",
            d(
                string(),
                "The channel to submit through: required with an account API key; with a channel token, omit it or give that channel.",
            ),
        ));
    }
    props.extend([
        (
            "name",
            d(
                json!({"type": "string", "minLength": 1, "maxLength": 512, "pattern": "^[a-z0-9_]+$"}),
                "At most 512 lowercase letters, digits and underscores.",
            ),
        ),
        ("language", d(text(), "Meta's language code: `es`, `en_US`…")),
        (
            "category",
            one_of_strings(&["MARKETING", "UTILITY", "AUTHENTICATION"]),
        ),
        (
            "parameterFormat",
            d(
                nullable(one_of_strings(&["NAMED", "POSITIONAL"])),
                "Default: NAMED when the header or body has named placeholders.",
            ),
        ),
        (
            "header",
            d(
                json!({"anyOf": [string(), media_header, {"type": "null"}]}),
                "A string is a text header. Not for AUTHENTICATION templates.",
            ),
        ),
        (
            "message",
            d(
                nullable(string()),
                "The body (at most 1024 characters); required except for AUTHENTICATION templates, whose body is Meta's.",
            ),
        ),
        (
            "footer",
            d(
                nullable(string()),
                "At most 60 characters, no placeholders; not with a limited-time offer.",
            ),
        ),
        (
            "buttons",
            d(
                nullable(array(r("TemplateButton"))),
                "At most 10: 2 URL, 1 PHONE_NUMBER, 1 COPY_CODE; quick replies grouped together; AUTHENTICATION: exactly one OTP (COPY_CODE).",
            ),
        ),
        (
            "carousel",
            d(
                nullable(array(r("TemplateCard"))),
                "2 to 10 cards; each card's header takes a `sample` like the template's.",
            ),
        ),
        (
            "limitedTimeOffer",
            d(nullable(r("TemplateOffer")), "MARKETING templates only."),
        ),
        (
            "examples",
            d(
                nullable(map(string())),
                "One example per placeholder, keyed as the template's `params`: `{\"name\": \"Ana\", \"1\": \"A-1\", \"card.0.1\": \"Tenis\"}`. Required for every placeholder.",
            ),
        ),
        (
            "addSecurityRecommendation",
            d(nullable(boolean()), "AUTHENTICATION templates only."),
        ),
        (
            "codeExpirationMinutes",
            d(
                nullable(json!({"type": "integer", "minimum": 1, "maximum": 90})),
                "AUTHENTICATION templates only.",
            ),
        ),
    ]);
    open_object(props, &["name", "language", "category", "message"])
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
        (
            "messagingLimit",
            d(
                nullable(integer()),
                "Meta's messaging limit: unique recipients of new business-initiated conversations per rolling 24 h (null: unlimited). Sends beyond it are held until the window rolls.",
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
        props.push(("accountId", text()));
    }
    props.extend([
        ("name", d(name_text(), "At most 200 characters.")),
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
    if !create {
        props.push((
            "messagingLimit",
            ex(
                d(
                    json!({"type": ["integer", "null"], "minimum": 1, "maximum": 2147483647}),
                    "Meta's messaging limit of the number (250, 2000, 10000, 100000 as Meta's tiers go); null: unlimited.",
                ),
                json!(250),
            ),
        ));
    }
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
    let mut schema = object(props, required);
    if create {
        // A cloud channel is created with its phone number id and access token (a 400 naming
        // the missing one otherwise). An update's rule depends on the stored channel.
        let filled = json!({"type": "string", "pattern": "\\S"});
        schema["if"] =
            json!({"required": ["provider"], "properties": {"provider": {"const": "cloud"}}});
        schema["then"] = json!({"required": ["phoneNumberId", "accessToken"],
                                "properties": {"phoneNumberId": filled, "accessToken": filled}});
    }
    d(schema, description)
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
        ("pricing", nullable(r("MessagePricing"))),
        ("statusTimes", r("StatusTimes")),
        (
            "scheduledFor",
            d(
                nullable(time()),
                "When a scheduled send goes (its `sendAt`).",
            ),
        ),
        (
            "heldUntil",
            d(
                nullable(time()),
                "When a held message will go (quiet hours or the messaging limit).",
            ),
        ),
        (
            "heldReason",
            d(
                nullable(one_of_strings(&["quiet-hours", "messaging-limit"])),
                "Why the message is held.",
            ),
        ),
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
    let mut props = vec![
        (
            "to",
            d(
                phone_number(),
                "The recipient: country code and number, digits only (`50755667788`).",
            ),
        ),
        (
            "clientName",
            d(nullable(text()), "The contact's name; default the number."),
        ),
        (
            "groupName",
            d(
                nullable(text()),
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
                nullable(json!({"type": "string", "pattern": "^https?://"})),
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
        ("sendAt", send_at()),
    ];
    props.splice(1..1, send_value_props());
    props
}

/// `sendAt` of a send, a batch or a batch recipient.
fn send_at() -> Value {
    ex(
        d(
            nullable(json!({"type": "string", "format": "date-time"})),
            "When to send (RFC 3339): the message is stored at once as `scheduled` and not sent \
             before then. A past time means now; more than `PLANTILLA_SCHEDULE_HORIZON_DAYS` \
             (default 35) days ahead is a 422 `send-at-beyond-horizon`. In a batch, a \
             recipient's own `sendAt` wins over the batch's.",
        ),
        json!("2026-12-05T09:00:00-05:00"),
    )
}

fn template_choice() -> Vec<(&'static str, Value)> {
    vec![
        (
            "channelId",
            d(
                nullable(text()),
                "The channel to send through: required with an account API key; with a channel token, omit it or give that channel.",
            ),
        ),
        ("templateId", d(nullable(text()), "The template, by id…")),
        (
            "templateName",
            d(nullable(text()), "…or by name, with `language`."),
        ),
        ("language", nullable(text())),
    ]
}

fn template_choice_rule() -> Value {
    // One or the other, never both (a 400 "give templateId or templateName with language, not
    // both"); null is absent.
    json!([
        {"required": ["templateId"],
         "properties": {"templateId": {"type": "string"}, "templateName": {"type": "null"}, "language": {"type": "null"}}},
        {"required": ["templateName", "language"],
         "properties": {"templateId": {"type": "null"}, "templateName": {"type": "string"}, "language": {"type": "string"}}}
    ])
}

fn compat_send_request(new_family: bool) -> Value {
    let mut props = vec![
        ("templateId", d(text(), "plantilla's template id.")),
        (
            "phoneNumber",
            d(
                phone_number(),
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
        ("params", ex(d(
            nullable(map(json!({"type": ["string", "number", "boolean", "null"]}))),
            "`{name: value}` for each placeholder; numbers and booleans are taken as their text. Reserved dotted keys give the rest of a send's values: `header.link` or `header.id` and `header.filename` (media headers), `header.latitude`, `header.longitude`, `header.name`, `header.address` (location headers), `button.<index>.payload` (quick reply), `button.<index>.coupon_code` (copy code), `button.<index>.flow_token` (flow), `card.<n>.<placeholder>`, `card.<n>.header.link`/`.id`, `card.<n>.button.<index>.payload` (carousels), `offer.expiration_time_ms` (limited-time offers).",
            ),
            json!({"customer_name": "Ana", "header.link": "https://files.example.com/f-77.pdf",
                   "header.filename": "Factura F-77.pdf", "button.0.payload": "pay:F-77"}),
        )),
    ]);
    open_object(props, &["templateId", "phoneNumber"])
}

/// The component schemas not yet derived from types (`crate::api`), by name.
pub(super) fn all() -> Value {
    let schemas: Vec<(&str, Value)> = vec![
        // Common.
        ("Problem", problem()),
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
            "Template",
            d(
                {
                    let required: Vec<&str> = template_props().iter().map(|(k, _)| *k).collect();
                    let mut props = template_props();
                    props.extend(template_optional_props());
                    object(props, &required)
                },
                "A template known to plantilla.",
            ),
        ),
        ("TemplateHeader", template_header()),
        ("TemplateButton", template_button()),
        (
            "TemplateCard",
            ex(
                template_card(),
                json!({"header": {"format": "IMAGE"}, "body": "Producto {{1}}",
                       "buttons": [{"type": "QUICK_REPLY", "text": "Lo quiero"}]}),
            ),
        ),
        (
            "TemplateOffer",
            ex(
                template_offer(),
                json!({"text": "¡Solo hoy!", "hasExpiration": true}),
            ),
        ),
        (
            "MediaRef",
            ex(
                media_ref(),
                json!({"id": "1234567890", "filename": "catalogo.pdf"}),
            ),
        ),
        (
            "SendHeader",
            ex(
                send_header(),
                json!({"link": "https://files.example.com/f-77.pdf", "filename": "Factura F-77.pdf"}),
            ),
        ),
        (
            "SendButton",
            ex(send_button(), json!({"index": 0, "payload": "pay:F-77"})),
        ),
        (
            "SendCard",
            ex(
                send_card(),
                json!({"header": {"link": "https://shop.example.com/a.jpg"}, "params": {"1": "camisa"},
                       "buttons": [{"index": 0, "payload": "want:a"}]}),
            ),
        ),
        (
            "TypedParam",
            ex(
                typed_param(),
                json!({"currency": {"fallbackValue": "$10.50", "code": "USD", "amount1000": 10500}}),
            ),
        ),
        (
            "TemplatePreviewRequest",
            ex(
                d(
                    object(send_value_props(), &[]),
                    "The values of a send, as in `POST /v1/messages`.",
                ),
                json!({"params": {"1": "Ana", "2": "F-77"},
                       "header": {"link": "https://files.example.com/f-77.pdf", "filename": "Factura F-77.pdf"},
                       "buttons": [{"index": 0, "payload": "pay:F-77"}]}),
            ),
        ),
        ("TemplatePreview", template_preview()),
        // Media.
        (
            "MediaUpload",
            d(
                open_object(
                    vec![
                        (
                            "file",
                            d(
                                json!({"type": "string", "format": "binary"}),
                                "The file; its part's `Content-Type` is its MIME type, its file name is kept.",
                            ),
                        ),
                        (
                            "channelId",
                            d(
                                text(),
                                "The channel (with an account API key, unless given as a query parameter).",
                            ),
                        ),
                    ],
                    &["file"],
                ),
                "A media upload (`multipart/form-data`).",
            ),
        ),
        (
            "Media",
            d(
                record(vec![
                    (
                        "id",
                        d(
                            string(),
                            "The media id: Meta's for cloud channels, `sandbox-media-…` for sandbox ones. Use it as a template header's `id`.",
                        ),
                    ),
                    (
                        "mimeType",
                        d(string(), "The file's MIME type, as sent to Meta."),
                    ),
                    ("size", d(integer(), "The file's size in bytes.")),
                    (
                        "channelId",
                        d(string(), "The channel it was uploaded through."),
                    ),
                ]),
                "An uploaded file.",
            ),
        ),
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
            "BatchRequest",
            d(
                {
                    let mut props = template_choice();
                    props.push(("sendAt", send_at()));
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
                object(
                    vec![
                        ("id", id("acc")),
                        ("name", string()),
                        (
                            "conversationLimit",
                            d(integer(), "New conversations per calendar month (UTC)."),
                        ),
                        (
                            "quietHours",
                            d(
                                nullable(r("QuietHours")),
                                "When MARKETING sends are held, in the recipient's local time; null: off.",
                            ),
                        ),
                        ("createdAt", time()),
                        ("updatedAt", time()),
                        (
                            "optOutKeywords",
                            d(
                                array(string()),
                                "Inbound texts that opt the number out of marketing (exactly one of them, case, accents and surrounding spaces and punctuation aside). Shown by GET and PATCH.",
                            ),
                        ),
                        (
                            "optInKeywords",
                            d(
                                array(string()),
                                "Inbound texts that remove an automatic opt-out. Shown by GET and PATCH.",
                            ),
                        ),
                    ],
                    &[
                        "id",
                        "name",
                        "conversationLimit",
                        "quietHours",
                        "createdAt",
                        "updatedAt",
                    ],
                ),
                "A customer company.",
            ),
        ),
        (
            "QuietHours",
            ex(
                d(
                    record(vec![("start", time_of_day()), ("end", time_of_day())]),
                    "A daily window in the recipient's local time (its zone from the number's country and area code); it may cross midnight. `start` and `end` differ.",
                ),
                json!({"start": "21:00", "end": "08:00"}),
            ),
        ),
        (
            "AccountUpdate",
            ex(
                object(
                    vec![
                        (
                            "quietHours",
                            d(
                                nullable(r("QuietHours")),
                                "MARKETING sends falling inside are held until the window ends; UTILITY and AUTHENTICATION are not. null turns quiet hours off.",
                            ),
                        ),
                        (
                            "optOutKeywords",
                            d(
                                nullable(keyword_list()),
                                "The account's opt-out keywords; null: the defaults (STOP, BAJA, PARAR, CANCELAR, UNSUBSCRIBE, SAIR).",
                            ),
                        ),
                        (
                            "optInKeywords",
                            d(
                                nullable(keyword_list()),
                                "The account's opt-in keywords; null: the defaults (START, ALTA).",
                            ),
                        ),
                    ],
                    &[],
                ),
                json!({"quietHours": {"start": "21:00", "end": "08:00"}, "optOutKeywords": ["STOP", "BAJA", "BASTA"]}),
            ),
        ),
        (
            "AccountCreate",
            object(
                vec![
                    ("name", d(name_text(), "At most 200 characters.")),
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
                {
                    let required: Vec<&str> =
                        channel_props(false).iter().map(|(k, _)| *k).collect();
                    let mut props = channel_props(false);
                    props.push((
                        "qualityRating",
                        d(
                            nullable(string()),
                            "Meta's quality rating of the number (GREEN, YELLOW, RED, UNKNOWN), when reported; shown when a channel is read.",
                        ),
                    ));
                    props.push(("quality", r("ChannelQuality")));
                    object(props, &required)
                },
                "A WhatsApp number of an account, without its secrets.",
            ),
        ),
        ("ChannelQuality", channel_quality()),
        ("TemplateHealth", template_health()),
        ("UsageRow", usage_row()),
        (
            "Usage",
            ex(
                d(
                    record(vec![
                        ("from", time()),
                        ("to", d(time(), "The window's last instant (inclusive).")),
                        (
                            "groupBy",
                            one_of_strings(&["day", "template", "channel", "category"]),
                        ),
                        (
                            "currency",
                            d(
                                nullable(string()),
                                "The price table's currency; null without one.",
                            ),
                        ),
                        ("data", array(r("UsageRow"))),
                        (
                            "total",
                            record(vec![
                                ("billable", integer()),
                                ("free", integer()),
                                ("estimatedCost", nullable(json!({"type": "number"}))),
                            ]),
                        ),
                    ]),
                    "Billable and free messages per group and category.",
                ),
                json!({"from": "2026-12-01T00:00:00.000Z", "to": "2026-12-04T23:59:59.999Z", "groupBy": "category",
                       "currency": "USD",
                       "data": [{"key": "marketing", "category": "marketing", "billable": 2, "free": 0, "estimatedCost": 0.12},
                                {"key": "utility", "category": "utility", "billable": 1, "free": 1, "estimatedCost": 0.01}],
                       "total": {"billable": 3, "free": 1, "estimatedCost": 0.13}}),
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
                    ("accountId", text()),
                    ("name", d(name_text(), "Unique in the account.")),
                    (
                        "channelIds",
                        d(nullable(array(text())), "Channels of the account."),
                    ),
                ],
                &["accountId", "name"],
            ),
        ),
        ("TemplateCreate", d(template_input(true), "A new template.")),
        (
            "TemplateSubmit",
            ex(
                d(
                    template_submit(true),
                    "A template to submit to WhatsApp (`POST /v1/templates`).",
                ),
                json!({"name": "invoice_ready", "language": "es", "category": "UTILITY",
                       "header": {"format": "DOCUMENT", "sample": {"data": "JVBERi0xLjQK",
                                  "mimeType": "application/pdf", "filename": "sample.pdf"}},
                       "message": "Hola {{name}}, tu factura {{invoice}} está lista.",
                       "examples": {"name": "Ana", "invoice": "F-77"},
                       "buttons": [{"type": "QUICK_REPLY", "text": "Pagar"}]}),
            ),
        ),
        (
            "AdminTemplateSubmit",
            d(
                template_submit(false),
                "A template to submit to WhatsApp through the channel of the path.",
            ),
        ),
        (
            "TemplateSample",
            d(
                record(vec![
                    ("data", d(string(), "The file's bytes, base64.")),
                    (
                        "mimeType",
                        d(
                            one_of_strings(&[
                                "image/jpeg",
                                "image/png",
                                "video/mp4",
                                "application/pdf",
                            ]),
                            "IMAGE: image/jpeg or image/png; VIDEO and GIF: video/mp4; DOCUMENT: application/pdf.",
                        ),
                    ),
                    ("filename", nullable(string())),
                ]),
                "A media header's sample file, uploaded to Meta through its resumable upload API; Meta reviews the template with it.",
            ),
        ),
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
        // Opt-outs.
        (
            "Suppression",
            ex(
                d(
                    record(vec![
                        (
                            "phoneNumber",
                            d(string(), "Country code first, digits only."),
                        ),
                        (
                            "reason",
                            d(
                                one_of_strings(&["keyword", "button", "meta_131050", "api"]),
                                "How the number got here: an inbound opt-out keyword, a marketing template's opt-out button, Meta's error 131050 on a send, or the API/operator.",
                            ),
                        ),
                        (
                            "note",
                            d(
                                nullable(string()),
                                "Free text: the API's `reason`, the keyword or button text, Meta's error details.",
                            ),
                        ),
                        (
                            "automatic",
                            d(
                                boolean(),
                                "Added by plantilla itself (every reason but `api`): an opt-in keyword removes only these.",
                            ),
                        ),
                        (
                            "channelId",
                            d(
                                nullable(string()),
                                "The channel it came through, when known.",
                            ),
                        ),
                        ("createdAt", time()),
                    ]),
                    "A number that opted out of the account's marketing messages.",
                ),
                json!({"phoneNumber": "50755667788", "reason": "keyword", "note": "STOP",
                       "automatic": true, "channelId": "ch_01a2b3", "createdAt": "2026-12-04T16:00:00.000Z"}),
            ),
        ),
        (
            "SuppressionPage",
            record(vec![
                ("data", d(array(r("Suppression")), "Oldest first.")),
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
            "SuppressionCreate",
            ex(
                object(
                    vec![
                        (
                            "phoneNumber",
                            d(
                                phone_number(),
                                "The number, country code first, digits only; checked like a send's recipient.",
                            ),
                        ),
                        (
                            "reason",
                            d(
                                nullable(json!({"type": "string", "maxLength": 500})),
                                "Free text, kept as the entry's `note` (the entry's reason is `api`).",
                            ),
                        ),
                    ],
                    &["phoneNumber"],
                ),
                json!({"phoneNumber": "50755667788", "reason": "asked by phone"}),
            ),
        ),
        // Status callbacks.
        (
            "EventType",
            d(
                one_of_strings(&[
                    "message.sent",
                    "message.delivered",
                    "message.read",
                    "message.failed",
                    "message.cancelled",
                    "conversation.opened",
                    "conversation.closed",
                    "template.status_changed",
                    "message.received",
                    "contact.opted_out",
                    "contact.opted_in",
                    "template.category_changed",
                    "template.quality_changed",
                    "channel.quality_changed",
                ]),
                "An event a webhook endpoint can subscribe to. `message.received`: a customer wrote or clicked something (its `data` is an `InboundMessage` without `direction`), forwarded once per WhatsApp message id even when Meta retries the webhook. `contact.opted_out` / `contact.opted_in`: a number joined or left the account's suppression list; `data` has `accountId`, `phoneNumber`, `reason` (`keyword`, `button`, `meta_131050` or `api`; for `opted_in`, how it left: `keyword` or `api`), `channelId` when known and `at`.",
            ),
        ),
        (
            "WebhookEndpointCreate",
            d(
                open_object(
                    vec![
                        (
                            "url",
                            d(http_url(2048), "An http(s) URL, at most 2048 characters."),
                        ),
                        (
                            "eventTypes",
                            d(
                                json!({"type": "array", "items": r("EventType"), "minItems": 1, "uniqueItems": true}),
                                "The events to receive, each once.",
                            ),
                        ),
                        (
                            "description",
                            d(
                                nullable(json!({"type": "string", "maxLength": 500})),
                                "A note for people.",
                            ),
                        ),
                    ],
                    &["url", "eventTypes"],
                ),
                "A new webhook endpoint.",
            ),
        ),
        (
            "WebhookEndpoint",
            d(
                record(webhook_endpoint_props()),
                "An endpoint that receives the account's events (its secret is shown only on creation).",
            ),
        ),
        (
            "WebhookEndpointCreated",
            d(
                record({
                    let mut props = webhook_endpoint_props();
                    props.push((
                        "secret",
                        d(
                            string(),
                            "The signing secret (`whsec_…`, Standard Webhooks): shown only now.",
                        ),
                    ));
                    props
                }),
                "A new webhook endpoint, with its signing secret.",
            ),
        ),
        (
            "WebhookEndpointList",
            record(vec![("data", array(r("WebhookEndpoint")))]),
        ),
        (
            "CallbackDelivery",
            d(
                record(vec![
                    (
                        "id",
                        d(string(), "Sent as `webhook-id`; the same on every attempt."),
                    ),
                    ("eventType", r("EventType")),
                    (
                        "messageId",
                        d(
                            nullable(string()),
                            "The message the event is about, if any.",
                        ),
                    ),
                    (
                        "status",
                        d(
                            one_of_strings(&["pending", "delivered", "failed"]),
                            "`failed`: given up.",
                        ),
                    ),
                    ("attempts", d(integer(), "Attempts made so far.")),
                    (
                        "lastResponseStatus",
                        d(
                            nullable(integer()),
                            "The HTTP status of the last attempt's answer.",
                        ),
                    ),
                    (
                        "lastError",
                        d(nullable(string()), "Why the last attempt failed."),
                    ),
                    (
                        "nextAttemptAt",
                        d(nullable(time()), "When it is tried next (`pending` only)."),
                    ),
                    ("createdAt", time()),
                    ("deliveredAt", nullable(time())),
                    (
                        "payload",
                        d(
                            json!({"type": "object"}),
                            "The JSON body, as signed and sent.",
                        ),
                    ),
                ]),
                "One event sent (or to be sent) to an endpoint.",
            ),
        ),
        (
            "CallbackDeliveryPage",
            record(vec![
                ("data", d(array(r("CallbackDelivery")), "Oldest first.")),
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
            "CallbackSecret",
            record(vec![
                ("accountId", string()),
                (
                    "secret",
                    d(
                        string(),
                        "The new secret (`whsec_…`) signing deliveries to messages' `callbackUrl`: shown only now; the old one stops signing at once.",
                    ),
                ),
            ]),
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
