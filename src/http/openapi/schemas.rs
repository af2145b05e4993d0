//! The component schemas not derived from types yet (the template submission bodies,
//! TemplateSubmit and AdminTemplateSubmit), and the schema builders `operations.rs` uses for
//! parameters. Every other component is derived from `crate::api`.

use serde_json::{Map, Value, json};

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

/// A phone number as the send paths take it: country code and national number, digits only,
/// no leading 0, at most 15 digits (E.164). The numbering plan is checked too (a 400 naming
/// the field); no pattern can say that.
pub(crate) fn phone_number() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 15, "pattern": "^[1-9][0-9]*$"})
}

/// A list cursor ([`crate::http::params::Cursor`]).
pub(crate) fn cursor() -> Value {
    let schema = <crate::http::params::Cursor as utoipa::PartialSchema>::schema();
    serde_json::to_value(schema).expect("a schema serializes")
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

// --- Shapes --------------------------------------------------------------------------------

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

/// The component schemas not yet derived from types (`crate::api`), by name.
pub(super) fn all() -> Value {
    let schemas: Vec<(&str, Value)> = vec![
        // Media.
        // Native API.
        // Admin API.
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
        // Opt-outs.
        // Status callbacks.
        // Webhooks.
    ];
    Value::Object(
        schemas
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}
