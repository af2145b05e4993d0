// The OpenAPI document cannot drift from the code: every route of the router is an operation
// of the document and every operation a route; the committed `openapi.json` is the document
// the code generates; the server serves both it and the reference page.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use plantilla::http::openapi;
use reqwest::StatusCode;

/// A route as `(METHOD, path)` with static segments lowercased (paths are case-insensitive)
/// and parameters written `{}` (their names differ between the router and the document).
fn normalize(method: &str, path: &str) -> (String, String) {
    let path = path
        .split('/')
        .map(|s| {
            if s.starts_with('{') {
                "{}".to_string()
            } else {
                s.to_ascii_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    (method.to_ascii_uppercase(), path)
}

/// The text between the double quotes `s` starts with.
fn quoted(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('"')?;
    Some(&rest[..rest.find('"')?])
}

/// The routes of an axum router, read from its `Debug` output: the paths by route id
/// (`RouteId(3): "/v1/messages"`) and each route's method slots
/// (`RouteId(3): MethodRouter(MethodRouter { get: Route, head: None, post: Route, … })`).
/// axum has no API to list routes; if its `Debug` output changes, this finds nothing and the
/// test says so rather than passing.
fn router_routes(debug: &str) -> BTreeSet<(String, String)> {
    let path_router = debug
        .split_once("fallback_router:")
        .map_or(debug, |(p, _)| p);
    let mut paths: BTreeMap<u64, String> = BTreeMap::new();
    let mut methods: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for chunk in path_router.split("RouteId(").skip(1) {
        let Some((id, rest)) = chunk.split_once("): ") else {
            continue;
        };
        let Ok(id) = id.parse::<u64>() else { continue };
        if let Some(path) = quoted(rest) {
            paths.insert(id, path.to_string());
        } else if let Some(body) = rest.strip_prefix("MethodRouter(MethodRouter { ") {
            let slots = body.split(", fallback:").next().unwrap_or_default();
            let list = slots
                .split(", ")
                .filter_map(|slot| slot.split_once(": "))
                .filter(|(m, value)| *value != "None" && *m != "head")
                .map(|(m, _)| m.to_ascii_uppercase())
                .collect();
            methods.insert(id, list);
        }
    }
    let mut routes = BTreeSet::new();
    for (id, path) in &paths {
        let list = methods
            .get(id)
            .unwrap_or_else(|| panic!("no methods found for route {path} in: {debug}"));
        assert!(!list.is_empty(), "route {path} has no method");
        for m in list {
            routes.insert(normalize(m, path));
        }
    }
    routes
}

#[tokio::test]
async fn every_route_is_documented_and_every_operation_is_routed() {
    // The test server mounts the admin API too (it has an admin token).
    let t = spawn_app().await;
    let router = plantilla::http::router(t.app().clone());
    let mut routes = router_routes(&format!("{router:?}"));
    // The console's page and endpoints (`/console…`) belong to the page, not to the public
    // API: they are cookie-authenticated, CSRF-protected and may change with the page, so they
    // are left out of the document (and out of schemathesis' run).
    routes.retain(|(_, path)| path != "/console" && !path.starts_with("/console/"));
    assert!(
        routes.len() >= 30,
        "could not read the router's routes from its Debug output (did axum change it?): {routes:?}"
    );
    let documented: BTreeSet<(String, String)> = openapi::operations()
        .iter()
        .map(|(m, p)| normalize(m, p))
        .collect();
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "the router and the OpenAPI document disagree.\n\
         routes without an operation (put a #[utoipa::path] on the handler and list it in its module's Doc): {undocumented:?}\n\
         operations without a route: {unrouted:?}"
    );
}

#[test]
fn the_committed_openapi_json_is_the_generated_document() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let committed = std::fs::read_to_string(path)
        .unwrap_or_default()
        .replace("\r\n", "\n");
    let generated = openapi::document_text();
    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}:\n  committed: {a}\n  generated: {b}", i + 1))
            .unwrap_or_else(|| "one is a prefix of the other".to_string());
        panic!(
            "openapi.json is not the document the code generates; run\n\n    \
             cargo run -- openapi > openapi.json\n\nand commit it.\nFirst difference at {first_difference}"
        );
    }
}

#[tokio::test]
async fn the_document_and_the_reference_page_are_served() {
    let t = spawn_app().await;
    let r = t.call("GET", "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.content_type.starts_with("application/json"),
        "{}",
        r.content_type
    );
    assert_eq!(&r.json, openapi::document());
    assert_eq!(r.json["info"]["version"], env!("CARGO_PKG_VERSION"));

    let r = t.call("GET", "/docs", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "text/html; charset=utf-8");
    assert!(r.text.starts_with("<!doctype html>"));
    for item in openapi::document()["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap();
            assert!(
                r.text.contains(&format!("id=\"op-{id}\"")),
                "{id} is on the page"
            );
        }
    }
    // Paths of the reference are matched ignoring case, like every other path.
    let r = t.call("GET", "/OpenAPI.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
}
