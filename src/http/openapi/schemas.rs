//! The schema builders `operations.rs` uses for parameters. Every component is derived from
//! `crate::api`.

use serde_json::{Value, json};

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

/// A list cursor: the `nextCursor` of a previous page, opaque (hex of `<ms>.<id>`).
pub(crate) fn cursor() -> Value {
    json!({"type": "string", "minLength": 6, "pattern": "^(3[0-9]){1,18}2e(3[0-9]|[46][1-9a-f]|[57][0-9a]|5f)+$"})
}

pub(crate) fn one_of_strings(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}
