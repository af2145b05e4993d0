//! The operations declared on their handlers with `#[utoipa::path]`, gathered from each HTTP
//! family's `Doc` (`#[derive(utoipa::OpenApi)]` listing its handlers), and the conventions the
//! document adds to every operation so the attributes say only what is particular to one.
//!
//! An operation's attribute names its request and response types (`request_body = SendRequest`,
//! `body = Message`), so the document refers to the types the handler really reads and answers.
//! Its problem answers are written
//! `(status = 404, description = "…", extensions(("x-problems" = json!(["not-found"]))))`:
//! [`finish`] turns the slugs into the `application/problem+json` content (the `Problem` schema
//! with `type` limited to those slugs' URIs) and lists them in the description. By tag, it adds
//! the security and the answers every operation of that API gives (native: 401, 429 and 500;
//! admin: 401 and 500), and a 415 to every `/v1` operation that takes JSON. A request body is
//! required unless the attribute reads it as `Option<T>` (then it is `T`, not required).

use serde_json::{Map, Value, json};
use utoipa::openapi::OpenApi;

use super::{ADMIN, COMPAT_NEW, COMPAT_OLD, NATIVE, PROBLEM_JSON, PROBLEMS};

const JSON: &str = "application/json";

/// Each HTTP family's operations, as utoipa derives them from the `#[utoipa::path]` of its
/// handlers (with the component schemas those name).
fn docs() -> Vec<OpenApi> {
    vec![
        <crate::http::native::Doc as utoipa::OpenApi>::openapi(),
        <crate::http::callbacks::Doc as utoipa::OpenApi>::openapi(),
        <crate::http::suppressions::Doc as utoipa::OpenApi>::openapi(),
        <crate::http::compat::Doc as utoipa::OpenApi>::openapi(),
        <crate::http::inbound::Doc as utoipa::OpenApi>::openapi(),
        <super::Doc as utoipa::OpenApi>::openapi(),
        <crate::http::ops::Doc as utoipa::OpenApi>::openapi(),
        <crate::http::admin::Doc as utoipa::OpenApi>::openapi(),
    ]
}

/// Every operation declared on a handler: `(METHOD, path, operation)`, finished.
pub(super) fn all() -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for doc in docs() {
        for (path, item) in doc.paths.paths {
            let Value::Object(item) = serde_json::to_value(item).expect("a path item serializes")
            else {
                unreachable!("a path item is an object")
            };
            for (method, op) in item {
                ops.push((method.to_ascii_uppercase(), path.clone(), finish(&path, op)));
            }
        }
    }
    ops
}

/// The component schemas the operations' attributes name, by name: those utoipa collects from
/// bodies (a type of the API keeps its family's schema, see `components()`), and the id types,
/// which path parameters name but utoipa does not collect.
pub(super) fn schemas() -> Vec<(String, Value)> {
    docs()
        .into_iter()
        .filter_map(|doc| doc.components)
        .flat_map(|components| components.schemas)
        .chain(crate::domain::ids::schemas())
        .map(|(name, schema)| {
            let schema = serde_json::to_value(schema).expect("a schema serializes");
            (name, schema)
        })
        .collect()
}

/// The conventions of the document, applied to one operation as utoipa wrote it.
fn finish(path: &str, mut op: Value) -> Value {
    let tag = op["tags"][0].as_str().unwrap_or_default().to_string();
    // Who may call it (`Authorization: Bearer …`), unless the attribute says.
    if op.get("security").is_none() {
        op["security"] = match tag.as_str() {
            NATIVE => json!([{"channelToken": []}, {"apiKey": []}]),
            ADMIN => json!([{"adminToken": []}]),
            COMPAT_OLD | COMPAT_NEW => json!([{"channelToken": []}]),
            _ => json!([]),
        };
    }
    if op["description"] == "" {
        op.as_object_mut().map(|o| o.remove("description"));
    }
    // An optional parameter is written without `required`, as the OpenAPI default says.
    if let Some(Value::Array(params)) = op.get_mut("parameters") {
        for p in params.iter_mut() {
            if p["required"] == false {
                p.as_object_mut().map(|o| o.remove("required"));
            }
        }
    }
    // A request body is required unless the attribute reads it as `Option<T>`: then it is `T`,
    // not required (a body left out is not a JSON `null`).
    if let Some(Value::Object(contents)) = op.pointer_mut("/requestBody/content") {
        let mut required = true;
        for media in contents.values_mut() {
            if let Some(Value::Array(one_of)) = media["schema"].get("oneOf")
                && let [schema, null] = one_of.as_slice()
                && *null == json!({"type": "null"})
            {
                media["schema"] = schema.clone();
                required = false;
            }
        }
        op["requestBody"]["required"] = json!(required);
    }
    let responses = op["responses"]
        .as_object_mut()
        .expect("an operation has responses");
    for response in responses.values_mut() {
        if let Some(Value::Array(slugs)) = response
            .as_object_mut()
            .and_then(|r| r.remove("x-problems"))
        {
            let slugs: Vec<&str> = slugs.iter().filter_map(Value::as_str).collect();
            let description = response["description"].as_str().unwrap_or_default();
            *response = problem_response(description, &slugs);
        }
    }
    let mut add = |status: u16, description: &str, slugs: &[&str]| {
        responses
            .entry(status.to_string())
            .or_insert_with(|| problem_response(description, slugs));
    };
    match tag.as_str() {
        NATIVE => {
            add(
                401,
                "No bearer token, or not a channel token or API key of this server.",
                &["unauthorized"],
            );
            add(
                429,
                "The token made more requests than its rate allows; `Retry-After` says when to retry.",
                &["rate-limited"],
            );
        }
        ADMIN => add(
            401,
            "No bearer token, or not the admin token.",
            &["unauthorized"],
        ),
        _ => {}
    }
    if matches!(tag.as_str(), NATIVE | ADMIN) {
        add(500, "Something unexpected happened.", &["internal"]);
    }
    let takes_json = op["requestBody"]["content"].get(JSON).is_some();
    if path.starts_with("/v1/") && takes_json {
        op["responses"]
            .as_object_mut()
            .expect("an operation has responses")
            .entry("415")
            .or_insert_with(|| problem_response(UNSUPPORTED_JSON, &["unsupported-media-type"]));
    }
    op
}

/// The 415 of every `/v1` operation that takes a JSON body.
const UNSUPPORTED_JSON: &str = "The body's `Content-Type` is not `application/json` (a \
    `charset` other than UTF-8 included; `application/*+json` is taken); `contentType` is the \
    given one.";

/// An `application/problem+json` response whose `type` is one of `slugs` (of [`PROBLEMS`]).
fn problem_response(description: &str, slugs: &[&str]) -> Value {
    let uris: Vec<String> = slugs.iter().map(|t| format!("/problems/{t}")).collect();
    let list = slugs
        .iter()
        .map(|t| {
            let title = PROBLEMS
                .iter()
                .find(|p| p.slug == *t)
                .map_or("?", |p| p.title);
            format!("`/problems/{t}` ({title})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let schema = json!({"allOf": [json!({"$ref": "#/components/schemas/Problem"}), {"properties": {"type": {"enum": uris}}}]});
    let mut content = Map::new();
    content.insert(PROBLEM_JSON.to_string(), json!({"schema": schema}));
    json!({
        "description": format!("{description} Problem types: {list}."),
        "content": content,
    })
}
