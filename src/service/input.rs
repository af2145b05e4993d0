//! Reading JSON objects field by field, so every bad input names its field.

use serde_json::{Map, Value};

/// One failing field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldError {
    /// Path of the field: `to`, `recipients[3].params.name`…
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

pub type FieldResult<T> = Result<T, FieldError>;

/// A JSON object being read. `null` counts as absent for optional fields.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Fields<'a> {
    pub fn of(value: &'a Value) -> FieldResult<Self> {
        match value {
            Value::Object(map) => Ok(Self { map }),
            other => Err(FieldError::new(
                "body",
                format!("must be a JSON object, got {}", type_name(other)),
            )),
        }
    }

    /// Rejects keys not in `known`, so a typo does not pass silently.
    pub fn only(&self, known: &[&str]) -> FieldResult<()> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(FieldError::new(
                k.as_str(),
                format!("unknown field; expected one of: {}", known.join(", ")),
            )),
            None => Ok(()),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn opt_str(&self, key: &str) -> FieldResult<Option<&'a str>> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(FieldError::new(
                key,
                format!("must be a string, got {}", type_name(v)),
            )),
        }
    }

    /// A required string, trimmed, that must not be empty.
    pub fn str(&self, key: &str) -> FieldResult<&'a str> {
        match self.opt_str(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s.trim()),
            Some(_) => Err(FieldError::new(key, "must not be empty")),
            None => Err(FieldError::new(key, "is required")),
        }
    }

    pub fn opt_bool(&self, key: &str) -> FieldResult<Option<bool>> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(FieldError::new(
                key,
                format!("must be true or false, got {}", type_name(v)),
            )),
        }
    }

    pub fn opt_int(&self, key: &str, min: i64, max: i64) -> FieldResult<Option<i64>> {
        match self.raw(key) {
            None => Ok(None),
            // A whole number written with a fraction (`15394.0`) is an integer to JSON Schema,
            // so it is one here too.
            Some(Value::Number(n)) => match n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            }) {
                Some(i) if (min..=max).contains(&i) => Ok(Some(i)),
                _ => Err(FieldError::new(
                    key,
                    format!("must be a whole number from {min} to {max}, got {n}"),
                )),
            },
            Some(v) => Err(FieldError::new(
                key,
                format!("must be a whole number, got {}", type_name(v)),
            )),
        }
    }

    pub fn opt_str_list(&self, key: &str) -> FieldResult<Option<Vec<String>>> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(FieldError::new(
                        format!("{key}[{i}]"),
                        format!("must be a string, got {}", type_name(other)),
                    )),
                })
                .collect::<FieldResult<Vec<_>>>()
                .map(Some),
            Some(v) => Err(FieldError::new(
                key,
                format!("must be an array of strings, got {}", type_name(v)),
            )),
        }
    }

    /// A string restricted to `choices`; the comparison ignores case and the result is the
    /// canonical spelling from `choices`.
    pub fn opt_choice(
        &self,
        key: &str,
        choices: &[&'static str],
    ) -> FieldResult<Option<&'static str>> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some(s) => choices
                .iter()
                .find(|c| c.eq_ignore_ascii_case(s.trim()))
                .map(|c| Some(*c))
                .ok_or_else(|| {
                    FieldError::new(
                        key,
                        format!("must be one of {}, got '{s}'", choices.join(", ")),
                    )
                }),
        }
    }
}

pub fn describe(v: &Value) -> &'static str {
    type_name(v)
}

/// Deepest nesting of arrays and objects a JSON body may have. Real bodies (a send, an admin
/// object, Meta's webhook) nest fewer than ten levels; a deep one is only good for exhausting
/// a parser.
pub const MAX_JSON_DEPTH: usize = 32;

/// Whether `body` nests arrays and objects deeper than `max`: a byte scan, done before parsing,
/// that skips brackets inside strings. Says nothing about whether the body is valid JSON.
pub fn json_too_deep(body: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The sentence for a body [`json_too_deep`] refused.
pub fn too_deep_detail() -> String {
    format!("the body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep")
}

/// Any JSON value, read as a `serde_json::Value` would be (every number parsed, every string
/// decoded, so what `Value` refuses is refused) and kept nowhere: the typed fast paths skip
/// keys they do not read with it. (`serde::de::IgnoredAny` skips numbers without parsing
/// them, so it takes `1e999`, which `Value` refuses.)
pub struct AnyJson;

impl<'de> serde::Deserialize<'de> for AnyJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyJsonVisitor)
    }
}

struct AnyJsonVisitor;

impl<'de> serde::de::Visitor<'de> for AnyJsonVisitor {
    type Value = AnyJson;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_i64<E>(self, _: i64) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_u64<E>(self, _: u64) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_f64<E>(self, _: f64) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_str<E>(self, _: &str) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_unit<E>(self) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_none<E>(self) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<AnyJson, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<AnyJson, A::Error> {
        while seq.next_element::<AnyJson>()?.is_some() {}
        Ok(AnyJson)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<AnyJson, A::Error> {
        while map.next_key::<AnyJson>()?.is_some() {
            map.next_value::<AnyJson>()?;
        }
        Ok(AnyJson)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_name_themselves_in_errors() {
        let v = json!({"name": 3, "limit": "x", "list": ["a", 1], "empty": " "});
        let f = Fields::of(&v).unwrap();
        assert_eq!(f.str("name").unwrap_err().field, "name");
        assert_eq!(f.str("missing").unwrap_err().message, "is required");
        assert_eq!(f.str("empty").unwrap_err().message, "must not be empty");
        assert_eq!(f.opt_int("limit", 0, 10).unwrap_err().field, "limit");
        assert_eq!(f.opt_str_list("list").unwrap_err().field, "list[1]");
        assert_eq!(
            f.only(&["name", "limit", "list"]).unwrap_err().field,
            "empty"
        );
        assert!(Fields::of(&json!([1])).is_err());
    }

    #[test]
    fn choices_are_case_insensitive_and_canonical() {
        let v = json!({"p": "SandBox", "n": null});
        let f = Fields::of(&v).unwrap();
        assert_eq!(
            f.opt_choice("p", &["sandbox", "cloud"]).unwrap(),
            Some("sandbox")
        );
        assert_eq!(f.opt_choice("n", &["sandbox"]).unwrap(), None);
        assert!(f.opt_choice("p", &["cloud"]).is_err());
    }

    #[test]
    fn ints_are_range_checked() {
        let v = json!({"a": 5, "b": 5.5, "c": -1});
        let f = Fields::of(&v).unwrap();
        assert_eq!(f.opt_int("a", 0, 10).unwrap(), Some(5));
        assert!(f.opt_int("b", 0, 10).is_err());
        assert!(f.opt_int("c", 0, 10).is_err());
    }

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert!(!json_too_deep(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(json_too_deep(br#"{"a":[1,{"b":[2]}]}"#, 3));
        // Brackets in strings, escaped quotes included, do not count.
        assert!(!json_too_deep(br#"{"a":"[[[[{{{{"}"#, 1));
        assert!(!json_too_deep(br#"{"a":"\"[[[[\\"}"#, 1));
        assert!(json_too_deep(br#"{"a":"\\",   "b":[[1]]}"#, 2));
        let deep = "[".repeat(MAX_JSON_DEPTH + 1) + &"]".repeat(MAX_JSON_DEPTH + 1);
        assert!(json_too_deep(deep.as_bytes(), MAX_JSON_DEPTH));
        let ok = "[".repeat(MAX_JSON_DEPTH) + &"]".repeat(MAX_JSON_DEPTH);
        assert!(!json_too_deep(ok.as_bytes(), MAX_JSON_DEPTH));
        // Closing brackets first never go below zero.
        assert!(!json_too_deep(b"]]]]{}", 1));
    }
}
