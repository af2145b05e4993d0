//! What the native API reads from a request besides its fields: the JSON body as an object,
//! and a list's `limit`, `cursor` and time bounds. Each refusal is a 400 `validation` naming
//! the parameter. The schemas the document shows for those parameters are here too.

use std::collections::HashMap;
use std::marker::PhantomData;

use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::problem::Problem;
use crate::service::input::{MAX_JSON_DEPTH, describe, json_too_deep, too_deep_detail};
use crate::service::views;

/// The body as a JSON object.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, Problem> {
    if json_too_deep(body, MAX_JSON_DEPTH) {
        return Err(Problem::field("body", too_deep_detail()));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::field("body", format!("is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Problem::field(
            "body",
            format!("must be a JSON object, got {}", describe(&value)),
        ));
    }
    Ok(value)
}

const MAX_LIMIT: u32 = 200;
const DEFAULT_LIMIT: u32 = 50;

/// `limit`: 1 to 200, 50 by default.
pub(crate) fn parse_limit(q: &HashMap<String, String>) -> Result<u32, Problem> {
    match q.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(Problem::field(
                "limit",
                format!("must be a whole number from 1 to {MAX_LIMIT}, got '{raw}'"),
            )),
        },
    }
}

/// `limit` as [`parse_limit`] takes it, for a query's `IntoParams`:
/// `#[param(value_type = Limit, inline)]`.
pub(crate) struct Limit;

impl utoipa::PartialSchema for Limit {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_LIMIT))
            .default(Some(json!(DEFAULT_LIMIT)))
            .into()
    }
}

impl utoipa::ToSchema for Limit {}

/// An RFC 3339 time parameter, as milliseconds.
pub(crate) fn parse_time(q: &HashMap<String, String>, key: &str) -> Result<Option<i64>, Problem> {
    q.get(key)
        .map(|raw| {
            chrono::DateTime::parse_from_rfc3339(raw)
                .map(|t| t.timestamp_millis())
                .map_err(|_| {
                    Problem::field(
                        key,
                        format!(
                            "must be an RFC 3339 time such as 2026-11-25T09:00:00Z, got '{raw}'"
                        ),
                    )
                })
        })
        .transpose()
}

/// `cursor` as [`parse_cursor`] takes it, for a query's `IntoParams`:
/// `#[param(value_type = Option<Cursor>, inline)]`. The `nextCursor` of a previous page,
/// opaque (hex of `<ms>.<id>`, see [`views::cursor`]).
pub(crate) struct Cursor;

impl utoipa::PartialSchema for Cursor {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(6))
            .pattern(Some(
                "^(3[0-9]){1,18}2e(3[0-9]|[46][1-9a-f]|[57][0-9a]|5f)+$",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Cursor {}

/// `cursor`: one this API returned (see [`views::cursor`]).
pub(crate) fn parse_cursor(q: &HashMap<String, String>) -> Result<Option<(i64, String)>, Problem> {
    q.get("cursor")
        .map(|raw| {
            views::parse_cursor(raw)
                .ok_or_else(|| Problem::field("cursor", "is not a cursor this API returned"))
        })
        .transpose()
}

/// A page of a list read oldest first, as the query names it: what the handler read with
/// [`parse_cursor`] and [`parse_limit`] (each in its own order, which decides the error).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct OldestFirst {
    /// `nextCursor` of the previous page (oldest first).
    #[param(value_type = Option<Cursor>, inline)]
    pub cursor: Option<(i64, String)>,
    /// Items per page.
    #[param(value_type = Option<Limit>, inline)]
    pub limit: u32,
}

// --- The parameters as the document shows them --------------------------------------------
// Types named by the query structs' fields (`#[param(value_type = Option<Limit>, inline)]`)
// where the parsed type would not say the rule.

/// The string enum `T` without the type's own description (the parameter has its own). Named
/// through an alias (`type StatusEnum = Enum<Status>;`): utoipa inlines a generic type only
/// through a trait of its own.
pub(crate) struct Enum<T>(PhantomData<T>);

impl<T: ToSchema> PartialSchema for Enum<T> {
    fn schema() -> RefOr<Schema> {
        let mut schema = T::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.description = None;
        }
        schema
    }
}

impl<T: ToSchema> ToSchema for Enum<T> {}
