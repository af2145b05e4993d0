//! The API's request and response types, and the component schemas of the OpenAPI document
//! derived from them (`utoipa::ToSchema`).
//!
//! A type that crosses the HTTP boundary is a serde struct or enum with `ToSchema`; the service
//! that makes it returns it and the handler serializes it. Its schema is what the document says
//! (`GET /openapi.json`), so a field is written once. Each family lists its types in its own
//! module; [`schemas`] gathers them (with every type they refer to).
//!
//! Conventions, so the derived schemas say what the server does:
//! - responses are closed objects: `#[serde(deny_unknown_fields)]` gives
//!   `additionalProperties: false` (the conformance test then catches a field the document
//!   lacks);
//! - a field always sent, possibly `null`, is `Option<T>` with `#[schema(required = true)]`;
//!   a field left out when empty has `#[serde(skip_serializing_if = …)]` and is not required;
//! - descriptions are the doc comments; patterns and bounds are `#[schema(…)]` attributes;
//! - times are RFC 3339 strings (`#[schema(format = DateTime)]`).
//!
//! JSON bodies keep their keys in sorted order whatever the field order of a type
//! ([`crate::http::json_response`] serializes through `serde_json::Value`), as they always have:
//! the compatible API answers byte-for-byte as before.

use std::collections::BTreeMap;

use utoipa::ToSchema;
use utoipa::openapi::{Ref, RefOr, Schema};

pub mod admin;
pub mod compat;
pub mod console;
pub mod events;
pub mod messages;
pub mod ops;
pub mod problem;
pub mod templates;

/// Every derived component schema, by name.
pub fn schemas() -> BTreeMap<String, RefOr<Schema>> {
    let mut out = Vec::new();
    collect::<crate::service::input::FieldError>(&mut out);
    admin::schemas(&mut out);
    compat::schemas(&mut out);
    events::schemas(&mut out);
    messages::schemas(&mut out);
    collect::<problem::ProblemDocument>(&mut out);
    templates::schemas(&mut out);
    // A type referred to by several is collected once per referrer; two types of one name
    // would be a mistake.
    let mut schemas = BTreeMap::new();
    for (name, schema) in out {
        if let Some(seen) = schemas.insert(name.clone(), schema.clone()) {
            let same = serde_json::to_value(&seen).ok() == serde_json::to_value(&schema).ok();
            assert!(same, "two types are named {name}");
        }
    }
    amend(&mut schemas);
    schemas
}

/// Adds to derived schemas, by name, what their derive cannot say (closed enum variants, a
/// conditional rule), so a type's schema is the same wherever it is collected.
fn amend(schemas: &mut BTreeMap<String, RefOr<Schema>>) {
    admin::amend(schemas);
    templates::close_variants(schemas);
}

/// `T`'s schema under its name, and the schemas of the types it refers to.
pub fn collect<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

/// A reference to a component by name, for the few schemas built by hand where the derive
/// cannot say a rule (a union with `null` or a string, a top-level `anyOf`).
pub fn component(name: &str) -> Ref {
    Ref::from_schema_name(name)
}
