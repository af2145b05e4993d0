// Live responses against the OpenAPI document: real requests to every operation of every API
// family (success and error statuses), each response validated against the schema the document
// declares for its path, method, status and media type. A status the document does not
// declare for the operation fails; so does an operation no request exercised.
//
// The validator covers the JSON Schema the document uses: `$ref`, `type` (and type arrays),
// `enum`, `const`, `properties`, `required`, `additionalProperties`, `items`, `oneOf`,
// `anyOf`, `allOf`, `if`/`then`, `pattern`, `uniqueItems` and numeric, length and item-count
// bounds; `format` and annotations are
// ignored, and any other keyword fails the test (so the document cannot use a keyword the
// validator would silently skip).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use common::*;
use fake_graph::{
    DEFAULT_WABA_ID, FakeButton, FakeGraph, FakeGraphConfig, FakeTemplate, signature,
};
use plantilla::config::Secret;
use plantilla::http::openapi;
use serde_json::{Value, json};

// --- The validator -------------------------------------------------------------------------

const ANNOTATIONS: &[&str] = &["description", "format", "default", "title", "examples"];

struct Validator<'a> {
    doc: &'a Value,
}

impl Validator<'_> {
    fn resolve(&self, reference: &str) -> &Value {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local $refs: {reference}"));
        self.doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("$ref {reference} does not resolve"))
    }

    fn errors(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, value, "$", &mut errors);
        errors
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let Some(schema) = schema.as_object() else {
            if schema == &Value::Bool(false) {
                errors.push(format!("{at}: not allowed"));
            }
            return;
        };
        for (keyword, arg) in schema {
            match keyword.as_str() {
                "$ref" => self.check(self.resolve(arg.as_str().unwrap()), value, at, errors),
                "type" => {
                    let types: Vec<&str> = match arg {
                        Value::String(t) => vec![t],
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                        _ => panic!("bad type {arg}"),
                    };
                    if !types.iter().any(|t| has_type(value, t)) {
                        errors.push(format!(
                            "{at}: {} is not of type {}",
                            short(value),
                            types.join(" or ")
                        ));
                    }
                }
                "enum" => {
                    if !arg.as_array().unwrap().contains(value) {
                        errors.push(format!("{at}: {} is not one of {arg}", short(value)));
                    }
                }
                "const" => {
                    if arg != value {
                        errors.push(format!("{at}: {} is not {arg}", short(value)));
                    }
                }
                "properties" => {
                    if let Value::Object(obj) = value {
                        for (name, sub) in arg.as_object().unwrap() {
                            if let Some(v) = obj.get(name) {
                                self.check(sub, v, &format!("{at}.{name}"), errors);
                            }
                        }
                    }
                }
                "required" => {
                    if let Value::Object(obj) = value {
                        for name in arg.as_array().unwrap().iter().filter_map(Value::as_str) {
                            if !obj.contains_key(name) {
                                errors.push(format!("{at}: required field {name} is missing"));
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    if let Value::Object(obj) = value {
                        let known = schema.get("properties").and_then(Value::as_object);
                        for (name, v) in obj {
                            if known.is_some_and(|k| k.contains_key(name)) {
                                continue;
                            }
                            match arg {
                                Value::Bool(false) => {
                                    errors.push(format!("{at}: field {name} is not in the schema"))
                                }
                                Value::Bool(true) => {}
                                sub => self.check(sub, v, &format!("{at}.{name}"), errors),
                            }
                        }
                    }
                }
                "items" => {
                    if let Value::Array(items) = value {
                        for (i, v) in items.iter().enumerate() {
                            self.check(arg, v, &format!("{at}[{i}]"), errors);
                        }
                    }
                }
                "oneOf" | "anyOf" => {
                    let branches = arg.as_array().unwrap();
                    let results: Vec<Vec<String>> =
                        branches.iter().map(|b| self.errors(b, value)).collect();
                    let passing = results.iter().filter(|e| e.is_empty()).count();
                    let ok = if keyword == "oneOf" {
                        passing == 1
                    } else {
                        passing >= 1
                    };
                    if !ok {
                        let why: Vec<String> = results
                            .iter()
                            .enumerate()
                            .map(|(i, e)| format!("branch {i}: {}", e.join("; ")))
                            .collect();
                        errors.push(format!(
                            "{at}: {passing} of the {keyword} branches match ({})",
                            why.join(" | ")
                        ));
                    }
                }
                "allOf" => {
                    for b in arg.as_array().unwrap() {
                        self.check(b, value, at, errors);
                    }
                }
                "minimum" | "maximum" => {
                    if let Some(n) = value.as_f64() {
                        let bound = arg.as_f64().unwrap();
                        if (keyword == "minimum" && n < bound)
                            || (keyword == "maximum" && n > bound)
                        {
                            errors.push(format!("{at}: {n} is out of {keyword} {bound}"));
                        }
                    }
                }
                "minLength" | "maxLength" | "minItems" | "maxItems" => {
                    let len = match value {
                        Value::String(s) if keyword.ends_with("Length") => s.chars().count(),
                        Value::Array(a) if keyword.ends_with("Items") => a.len(),
                        _ => continue,
                    };
                    let bound = arg.as_u64().unwrap() as usize;
                    if (keyword.starts_with("min") && len < bound)
                        || (keyword.starts_with("max") && len > bound)
                    {
                        errors.push(format!("{at}: length {len} is out of {keyword} {bound}"));
                    }
                }
                "pattern" => {
                    if let Value::String(text) = value {
                        let re = regex_automata::meta::Regex::new(arg.as_str().unwrap())
                            .unwrap_or_else(|e| panic!("bad pattern {arg}: {e}"));
                        if !re.is_match(text) {
                            errors.push(format!("{at}: {} does not match {arg}", short(value)));
                        }
                    }
                }
                "uniqueItems" => {
                    if let (Value::Array(items), Value::Bool(true)) = (value, arg) {
                        for (i, v) in items.iter().enumerate() {
                            if items[..i].contains(v) {
                                errors.push(format!("{at}[{i}]: {} is listed twice", short(v)));
                            }
                        }
                    }
                }
                "if" => {
                    if self.errors(arg, value).is_empty()
                        && let Some(then) = schema.get("then")
                    {
                        self.check(then, value, at, errors);
                    }
                }
                "then" => {} // with `if`
                "propertyNames" => {
                    if let Value::Object(obj) = value {
                        for name in obj.keys() {
                            let key = Value::String(name.clone());
                            self.check(arg, &key, &format!("{at} key {name}"), errors);
                        }
                    }
                }
                k if ANNOTATIONS.contains(&k) => {}
                k => panic!("the validator does not support the keyword {k} (at {at})"),
            }
        }
    }
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        other => panic!("unknown type {other}"),
    }
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 80 {
        format!(
            "{}…",
            &text[..text.char_indices().nth(80).map_or(text.len(), |(i, _)| i)]
        )
    } else {
        text
    }
}

#[test]
fn the_validator_accepts_and_rejects_what_json_schema_does() {
    let doc = json!({"components": {"schemas": {
        "Item": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": false},
    }}});
    let v = Validator { doc: &doc };
    let item = json!({"$ref": "#/components/schemas/Item"});
    assert!(v.errors(&item, &json!({"n": 1})).is_empty());
    assert!(!v.errors(&item, &json!({"n": 1.5})).is_empty(), "integer");
    assert!(!v.errors(&item, &json!({})).is_empty(), "required");
    assert!(
        !v.errors(&item, &json!({"n": 1, "x": 2})).is_empty(),
        "additionalProperties"
    );
    assert!(!v.errors(&item, &json!([])).is_empty(), "type");
    let nullable = json!({"type": ["string", "null"], "enum": ["a", null]});
    assert!(v.errors(&nullable, &json!(null)).is_empty());
    assert!(v.errors(&nullable, &json!("a")).is_empty());
    assert!(!v.errors(&nullable, &json!("b")).is_empty(), "enum");
    let one = json!({"oneOf": [{"type": "string"}, {"type": ["string", "null"]}]});
    assert!(
        !v.errors(&one, &json!("x")).is_empty(),
        "oneOf: two branches match"
    );
    assert!(v.errors(&one, &json!(null)).is_empty());
    let any = json!({"anyOf": [{"type": "string"}, {"type": ["string", "null"]}]});
    assert!(v.errors(&any, &json!("x")).is_empty());
    assert!(!v.errors(&any, &json!(1)).is_empty());
    let list = json!({"type": "array", "items": item, "maxItems": 2});
    assert!(v.errors(&list, &json!([{"n": 1}])).is_empty());
    assert!(!v.errors(&list, &json!([{"n": "1"}])).is_empty(), "items");
    assert!(
        !v.errors(&list, &json!([{"n": 1}, {"n": 1}, {"n": 1}]))
            .is_empty(),
        "maxItems"
    );
    let all = json!({"allOf": [item, {"properties": {"n": {"enum": [1, 2]}}}]});
    assert!(v.errors(&all, &json!({"n": 2})).is_empty());
    assert!(!v.errors(&all, &json!({"n": 3})).is_empty(), "allOf");
    assert!(
        !v.errors(&json!({"const": true}), &json!(false)).is_empty(),
        "const"
    );
    let map = json!({"type": "object", "additionalProperties": {"type": "integer"}});
    assert!(v.errors(&map, &json!({"a": 1})).is_empty());
    assert!(!v.errors(&map, &json!({"a": "1"})).is_empty(), "map values");
    let digits = json!({"type": "string", "pattern": "^[1-9][0-9]*$"});
    assert!(v.errors(&digits, &json!("507")).is_empty());
    assert!(!v.errors(&digits, &json!("0507")).is_empty(), "pattern");
    let unique = json!({"type": "array", "uniqueItems": true});
    assert!(v.errors(&unique, &json!(["a", "b"])).is_empty());
    assert!(
        !v.errors(&unique, &json!(["a", "a"])).is_empty(),
        "uniqueItems"
    );
    let cond = json!({"if": {"properties": {"k": {"const": "cloud"}}, "required": ["k"]},
                      "then": {"required": ["id"]}});
    assert!(v.errors(&cond, &json!({"k": "sandbox"})).is_empty());
    assert!(
        v.errors(&cond, &json!({"k": "cloud", "id": "1"}))
            .is_empty()
    );
    assert!(
        !v.errors(&cond, &json!({"k": "cloud"})).is_empty(),
        "if/then"
    );
}

// --- Matching requests to operations -------------------------------------------------------

/// The operation of `method` whose path template matches `path` (static segments ignoring
/// case, as the server does; the template with most static segments wins).
fn find_operation<'a>(doc: &'a Value, method: &str, path: &str) -> Option<(&'a str, &'a Value)> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut best: Option<(usize, &str, &Value)> = None;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get(method.to_ascii_lowercase()) else {
            continue;
        };
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut statics = 0;
        let matches = parts.iter().zip(&segments).all(|(p, s)| {
            if p.starts_with('{') {
                !s.is_empty()
            } else {
                statics += 1;
                p.eq_ignore_ascii_case(s)
            }
        });
        if matches && best.is_none_or(|(n, _, _)| statics > n) {
            best = Some((statics, template, op));
        }
    }
    best.map(|(_, t, op)| (t, op))
}

// --- Driving the server --------------------------------------------------------------------

struct Checker {
    t: TestApp,
    doc: &'static Value,
    /// operationId → statuses seen.
    seen: Mutex<BTreeMap<String, BTreeSet<u16>>>,
    failures: Mutex<Vec<String>>,
}

enum Body {
    Json(Value),
    Raw(String),
    /// A body with its own content type (multipart uploads).
    Typed(String, Vec<u8>),
}

/// One part of a multipart body: its name, for a file part `(file name, content type)`, and
/// its bytes.
type Part<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

/// A `multipart/form-data` body of these parts.
fn multipart(parts: &[Part]) -> Body {
    let boundary = "conformance-boundary-7f3a";
    let mut bytes = Vec::new();
    for (name, file, data) in parts {
        bytes.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some((filename, content_type)) => bytes.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => bytes.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        bytes.extend_from_slice(data);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Body::Typed(format!("multipart/form-data; boundary={boundary}"), bytes)
}

struct Call<'a> {
    c: &'a Checker,
    method: &'static str,
    path: String,
    token: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Body>,
}

impl Checker {
    fn req(&self, method: &'static str, path: impl Into<String>) -> Call<'_> {
        Call {
            c: self,
            method,
            path: path.into(),
            token: None,
            headers: Vec::new(),
            body: None,
        }
    }

    fn fail(&self, message: String) {
        self.failures.lock().unwrap().push(message);
    }

    /// Checks one exchange against the document.
    fn conform(&self, call: &Call, status: u16, content_type: &str, text: &str) {
        let path = call.path.split('?').next().unwrap();
        let what = format!("{} {path} → {status}", call.method);
        let Some((template, op)) = find_operation(self.doc, call.method, path) else {
            self.fail(format!("{what}: no operation of the document matches"));
            return;
        };
        let id = op["operationId"].as_str().unwrap().to_string();
        self.seen
            .lock()
            .unwrap()
            .entry(id.clone())
            .or_default()
            .insert(status);
        let v = Validator { doc: self.doc };
        if (200..300).contains(&status)
            && let Some(Body::Json(body)) = &call.body
            && let Some(schema) = op.pointer("/requestBody/content/application~1json/schema")
        {
            let errors = v.errors(schema, body);
            if !errors.is_empty() {
                self.fail(format!(
                    "{what} ({id}): the accepted request body does not match the documented request schema: {}\n  body: {body}",
                    errors.join("; ")
                ));
            }
        }
        let Some(response) = op["responses"].get(status.to_string()) else {
            self.fail(format!(
                "{what} ({id}, {template}): the document does not declare status {status}\n  body: {text}"
            ));
            return;
        };
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            if !text.is_empty() {
                self.fail(format!(
                    "{what} ({id}): documented without a body, answered: {text}"
                ));
            }
            return;
        };
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let Some(schema) = content.get(media).map(|c| &c["schema"]) else {
            self.fail(format!(
                "{what} ({id}): media type '{content_type}' is not one of the documented {:?}\n  body: {text}",
                content.keys().collect::<Vec<_>>()
            ));
            return;
        };
        let value = if media.ends_with("json") {
            match serde_json::from_str::<Value>(text) {
                Ok(v) => v,
                Err(e) => {
                    self.fail(format!(
                        "{what} ({id}): {media} body is not JSON ({e}): {text}"
                    ));
                    return;
                }
            }
        } else {
            Value::String(text.to_string())
        };
        let errors = v.errors(schema, &value);
        if !errors.is_empty() {
            self.fail(format!(
                "{what} ({id}): the body does not match the documented schema:\n  - {}\n  body: {text}",
                errors.join("\n  - ")
            ));
        }
    }
}

impl Call<'_> {
    fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    fn admin(self) -> Self {
        self.token(ADMIN_TOKEN)
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn json(mut self, body: Value) -> Self {
        self.body = Some(Body::Json(body));
        self
    }

    fn raw(mut self, body: &str) -> Self {
        self.body = Some(Body::Raw(body.to_string()));
        self
    }

    fn body(mut self, body: Body) -> Self {
        self.body = Some(body);
        self
    }

    /// Sends the request, checks the answer against the document and expects `status`;
    /// returns the body (JSON, or the text as a JSON string).
    async fn expect(self, status: u16) -> Value {
        let t = &self.c.t;
        let mut req = t.client.request(
            self.method.parse().unwrap(),
            format!("{}{}", t.base, self.path),
        );
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match &self.body {
            Some(Body::Json(v)) => req = req.json(v),
            Some(Body::Raw(s)) => {
                req = req
                    .header("Content-Type", "application/json")
                    .body(s.clone())
            }
            Some(Body::Typed(content_type, bytes)) => {
                req = req
                    .header("Content-Type", content_type.as_str())
                    .body(bytes.clone())
            }
            None => {}
        }
        let res = req.send().await.expect("request");
        let got = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = res.text().await.unwrap();
        self.c.conform(&self, got, &content_type, &text);
        assert_eq!(
            got, status,
            "{} {}: expected {status}, got {got}: {text}",
            self.method, self.path
        );
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

// --- The tour ------------------------------------------------------------------------------

const PN: &str = "1000006";
const GRAPH_TOKEN: &str = "graph-token";
const APP_SECRET: &str = "meta-app-secret";
const VERIFY_TOKEN: &str = "meta-verify-token";

#[tokio::test]
async fn live_responses_match_the_openapi_document() {
    let fake = FakeGraph::start(
        FakeGraphConfig::default()
            .with_phone(PN, GRAPH_TOKEN)
            .with_template(
                FakeTemplate::new("shipping", "es", "Hola {{1}}, tu pedido va en camino")
                    .with_header("Pedido {{2}}")
                    .with_footer("Gracias")
                    .with_url_button("Seguir", "https://example.com/track/{{3}}")
                    .with_quick_reply("Ok")
                    .with_button(FakeButton::PhoneNumber {
                        text: "Llamar".into(),
                        phone_number: "+50760000000".into(),
                    }),
            )
            .with_template(
                FakeTemplate::new("brochure", "es", "Nuestro catálogo").with_media_header("IMAGE"),
            ),
    )
    .await;
    let graph = fake.base_url().to_string();
    let t = spawn_app_with(|c| {
        c.graph_base_url = graph;
        c.meta_app_secret = Some(Secret::new(APP_SECRET));
        c.meta_verify_token = Some(Secret::new(VERIFY_TOKEN));
    })
    .await;
    let c = Checker {
        t,
        doc: openapi::document(),
        seen: Mutex::new(BTreeMap::new()),
        failures: Mutex::new(Vec::new()),
    };

    let setup = admin_api(&c).await;
    native_api(&c, &setup).await;
    suppressions(&c, &setup).await;
    compatible_api(
        &c,
        &setup,
        "/api/Template/SendMessage",
        "/api/Template",
        true,
    )
    .await;
    compatible_api(&c, &setup, "/templates", "/templates", false).await;
    webhooks(&c, &setup).await;
    authoring(&c, &setup).await;
    c.req("GET", "/openapi.json").expect(200).await;
    c.req("GET", "/docs").expect(200).await;
    // Operations: this server's dispatcher is driven by hand, so it is not ready.
    c.req("GET", "/healthz").expect(200).await;
    let readiness = c.req("GET", "/readyz").expect(503).await;
    assert_eq!(readiness["notReady"], json!(["dispatcher"]), "{readiness}");
    c.req("GET", "/metrics").expect(200).await;

    // Every operation was exercised.
    let seen = c.seen.lock().unwrap().clone();
    let mut missing = Vec::new();
    for (path, item) in c.doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            if !seen.contains_key(id) {
                missing.push(format!("{} {path} ({id})", method.to_ascii_uppercase()));
            }
        }
    }
    for (id, statuses) in &seen {
        eprintln!("{id}: {statuses:?}");
    }
    let failures = c.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} responses do not conform to the OpenAPI document:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(
        missing.is_empty(),
        "operations no request of this test exercised: {missing:?}"
    );
}

/// The suppression list over `/v1` and the admin API, and a refused MARKETING send.
async fn suppressions(c: &Checker, setup: &Setup) {
    let token = setup.token.as_str();
    let channel = c
        .req("GET", format!("/v1/admin/channels/{}", setup.channel_id))
        .admin()
        .expect(200)
        .await;
    let account_id = s(&channel["accountId"]);
    c.req("GET", "/v1/suppressions").expect(401).await;
    c.req("POST", "/v1/suppressions")
        .token(token)
        .json(json!({"phoneNumber": "50755669001", "reason": "asked by phone"}))
        .expect(201)
        .await;
    c.req("POST", "/v1/suppressions")
        .token(token)
        .json(json!({"phoneNumber": "50755669001"}))
        .expect(200)
        .await;
    c.req("POST", "/v1/suppressions")
        .token(token)
        .json(json!({"phoneNumber": "12"}))
        .expect(400)
        .await;
    c.req("GET", "/v1/suppressions?limit=1")
        .token(token)
        .expect(200)
        .await;
    c.req("GET", "/v1/suppressions?cursor=zz")
        .token(token)
        .expect(400)
        .await;
    // A MARKETING template to the number: refused, natively 422.
    let promo = c
        .req("POST", "/v1/admin/templates")
        .admin()
        .json(
            json!({"accountId": account_id, "name": "promo_optout", "language": "es",
                     "category": "MARKETING", "status": "APPROVED", "appId": "app_promo",
                     "message": "Oferta para {{name}}"}),
        )
        .expect(201)
        .await;
    let refused = c
        .req("POST", "/v1/messages")
        .token(token)
        .json(json!({"to": "50755669001", "templateId": promo["id"], "params": {"name": "Ana"}}))
        .expect(422)
        .await;
    assert_eq!(
        refused["type"], "/problems/recipient-opted-out",
        "{refused}"
    );
    c.req("DELETE", "/v1/suppressions/50755669001")
        .token(token)
        .expect(204)
        .await;
    c.req("DELETE", "/v1/suppressions/50755669001")
        .token(token)
        .expect(404)
        .await;
    c.req("DELETE", "/v1/suppressions/12")
        .token(token)
        .expect(400)
        .await;
    c.req("DELETE", "/v1/suppressions/50755669001")
        .expect(401)
        .await;
    // The admin API.
    let path = format!("/v1/admin/accounts/{account_id}/suppressions");
    c.req("POST", path.clone())
        .admin()
        .json(json!({"phoneNumber": "50755669002"}))
        .expect(201)
        .await;
    c.req("POST", path.clone())
        .admin()
        .json(json!({"phoneNumber": "50755669002", "reason": null}))
        .expect(200)
        .await;
    c.req("POST", path.clone())
        .admin()
        .json(json!({"phone": "50755669002"}))
        .expect(400)
        .await;
    c.req("POST", "/v1/admin/accounts/acc_nope/suppressions")
        .admin()
        .json(json!({"phoneNumber": "50755669002"}))
        .expect(404)
        .await;
    c.req("POST", path.clone()).expect(401).await;
    c.req("GET", path.clone()).admin().expect(200).await;
    c.req("GET", format!("{path}?limit=500"))
        .admin()
        .expect(400)
        .await;
    c.req("GET", "/v1/admin/accounts/acc_nope/suppressions")
        .admin()
        .expect(404)
        .await;
    c.req("GET", path.clone()).expect(401).await;
    c.req("DELETE", format!("{path}/50755669002"))
        .admin()
        .expect(204)
        .await;
    c.req("DELETE", format!("{path}/50755669002"))
        .admin()
        .expect(404)
        .await;
    c.req("DELETE", format!("{path}/12"))
        .admin()
        .expect(400)
        .await;
    c.req("DELETE", format!("{path}/50755669002"))
        .expect(401)
        .await;
    // Keywords on the account.
    c.req("PATCH", format!("/v1/admin/accounts/{account_id}"))
        .admin()
        .json(json!({"optOutKeywords": ["STOP", "BASTA"], "optInKeywords": null}))
        .expect(200)
        .await;
    c.req("PATCH", format!("/v1/admin/accounts/{account_id}"))
        .admin()
        .json(json!({"optOutKeywords": []}))
        .expect(400)
        .await;
}

/// What the admin tour set up for the others.
struct Setup {
    /// A connected sandbox channel.
    token: String,
    channel_id: String,
    template_id: String,
    /// An account API key.
    api_key: String,
    /// A connected cloud channel on the fake Graph API (syncs templates).
    cloud_id: String,
    cloud_token: String,
    /// A cloud channel whose access token Meta refuses.
    broken_cloud_token: String,
    /// A disconnected sandbox channel.
    disconnected_token: String,
    /// A channel of an account with no conversations left.
    exhausted_token: String,
    /// Templates that cannot be sent: not approved; without an appId.
    pending_template_id: String,
    incomplete_template_id: String,
}

async fn admin_api(c: &Checker) -> Setup {
    // Authentication.
    c.req("POST", "/v1/admin/accounts")
        .json(json!({"name": "Acme"}))
        .expect(401)
        .await;
    c.req("GET", "/v1/admin/accounts/acc_x")
        .token("wrong-token-0123456789")
        .expect(401)
        .await;
    // Accounts and API keys.
    let account = c
        .req("POST", "/v1/admin/accounts")
        .admin()
        .json(json!({"name": "Acme", "conversationLimit": 1000}))
        .expect(201)
        .await;
    let account_id = s(&account["id"]);
    c.req("POST", "/v1/admin/accounts")
        .admin()
        .json(json!({"name": "Acme", "plan": "gold"}))
        .expect(400)
        .await;
    c.req("POST", "/v1/admin/accounts")
        .admin()
        .raw("{not json")
        .expect(400)
        .await;
    // A body that is not JSON, or JSON in another charset: 415, naming the type.
    let refused = c
        .req("POST", "/v1/admin/accounts")
        .admin()
        .body(Body::Typed(
            "application/json; charset=utf-16".into(),
            br#"{"name":"Acme"}"#.to_vec(),
        ))
        .expect(415)
        .await;
    assert_eq!(refused["contentType"], "application/json; charset=utf-16");
    c.req("GET", format!("/v1/admin/accounts/{account_id}"))
        .admin()
        .expect(200)
        .await;
    c.req("GET", "/v1/admin/accounts/acc_nope")
        .admin()
        .expect(404)
        .await;
    c.req("PATCH", format!("/v1/admin/accounts/{account_id}"))
        .admin()
        .json(json!({"quietHours": {"start": "21:00", "end": "08:00"}}))
        .expect(200)
        .await;
    c.req("PATCH", format!("/v1/admin/accounts/{account_id}"))
        .admin()
        .json(json!({"quietHours": {"start": "25:00", "end": "08:00"}}))
        .expect(400)
        .await;
    c.req("PATCH", format!("/v1/admin/accounts/{account_id}"))
        .admin()
        .json(json!({"quietHours": null}))
        .expect(200)
        .await;
    c.req("PATCH", "/v1/admin/accounts/acc_nope")
        .admin()
        .json(json!({"quietHours": null}))
        .expect(404)
        .await;
    c.req(
        "POST",
        format!("/v1/admin/accounts/{account_id}/callback-secret"),
    )
    .admin()
    .expect(200)
    .await;
    c.req("POST", "/v1/admin/accounts/acc_nope/callback-secret")
        .admin()
        .expect(404)
        .await;
    c.req(
        "POST",
        format!("/v1/admin/accounts/{account_id}/callback-secret"),
    )
    .expect(401)
    .await;
    let key = c
        .req("POST", format!("/v1/admin/accounts/{account_id}/api-keys"))
        .admin()
        .json(json!({"name": "crm"}))
        .expect(201)
        .await;
    c.req("POST", format!("/v1/admin/accounts/{account_id}/api-keys"))
        .admin()
        .json(json!({"name": 7}))
        .expect(400)
        .await;
    c.req("POST", "/v1/admin/accounts/acc_nope/api-keys")
        .admin()
        .json(json!({}))
        .expect(404)
        .await;

    // Channels.
    let channel = c
        .req("POST", "/v1/admin/channels")
        .admin()
        .json(
            json!({"accountId": account_id, "name": "Main", "provider": "sandbox",
                     "status": "connected", "messagesPerSecond": 1000}),
        )
        .expect(201)
        .await;
    let channel_id = s(&channel["id"]);
    c.req("POST", "/v1/admin/channels")
        .admin()
        .json(json!({"accountId": account_id, "name": "No provider"}))
        .expect(400)
        .await;
    let cloud = c
        .req("POST", "/v1/admin/channels")
        .admin()
        .json(
            json!({"accountId": account_id, "name": "Cloud", "provider": "cloud",
                     "phoneNumberId": PN, "wabaId": DEFAULT_WABA_ID, "accessToken": GRAPH_TOKEN,
                     "appSecret": "channel-secret", "verifyToken": "channel-verify",
                     "messagesPerSecond": 80}),
        )
        .expect(201)
        .await;
    let broken = c
        .req("POST", "/v1/admin/channels")
        .admin()
        .json(
            json!({"accountId": account_id, "name": "Broken", "provider": "cloud",
                     "phoneNumberId": PN, "wabaId": DEFAULT_WABA_ID, "accessToken": "expired"}),
        )
        .expect(201)
        .await;
    let disconnected = c
        .req("POST", "/v1/admin/channels")
        .admin()
        .json(json!({"accountId": account_id, "name": "Spare", "provider": "sandbox"}))
        .expect(201)
        .await;
    let disconnected_id = s(&disconnected["id"]);
    c.req("GET", format!("/v1/admin/channels/{channel_id}"))
        .admin()
        .expect(200)
        .await;
    c.req("GET", "/v1/admin/channels/ch_nope")
        .admin()
        .expect(404)
        .await;
    c.req("PATCH", format!("/v1/admin/channels/{disconnected_id}"))
        .admin()
        .json(json!({"status": "disconnected", "name": "Spare (off)"}))
        .expect(200)
        .await;
    c.req("PATCH", format!("/v1/admin/channels/{disconnected_id}"))
        .admin()
        .json(json!({"messagesPerSecond": 0}))
        .expect(400)
        .await;
    c.req("PATCH", "/v1/admin/channels/ch_nope")
        .admin()
        .json(json!({"name": "x"}))
        .expect(404)
        .await;
    let rotated = c
        .req(
            "POST",
            format!("/v1/admin/channels/{disconnected_id}/rotate-token"),
        )
        .admin()
        .expect(200)
        .await;
    c.req("POST", "/v1/admin/channels/ch_nope/rotate-token")
        .admin()
        .expect(404)
        .await;
    // Template sync: a cloud channel, a sandbox one (cannot sync), an unknown one, and one
    // whose token Meta refuses.
    let cloud_id = s(&cloud["id"]);
    c.req(
        "POST",
        format!("/v1/admin/channels/{cloud_id}/templates/sync"),
    )
    .admin()
    .expect(200)
    .await;
    c.req(
        "POST",
        format!("/v1/admin/channels/{channel_id}/templates/sync"),
    )
    .admin()
    .expect(400)
    .await;
    c.req("POST", "/v1/admin/channels/ch_nope/templates/sync")
        .admin()
        .expect(404)
        .await;
    c.req(
        "POST",
        format!("/v1/admin/channels/{}/templates/sync", s(&broken["id"])),
    )
    .admin()
    .expect(502)
    .await;

    // Groups.
    c.req("POST", "/v1/admin/groups")
        .admin()
        .json(json!({"accountId": account_id, "name": "Ventas", "channelIds": [channel_id, cloud_id]}))
        .expect(201)
        .await;
    c.req("POST", "/v1/admin/groups")
        .admin()
        .json(json!({"accountId": account_id, "name": "Ventas"}))
        .expect(400)
        .await;

    // Templates: named params, header, footer and every kind of button; one not approved;
    // one without an appId.
    let template = c
        .req("POST", "/v1/admin/templates")
        .admin()
        .json(json!({"accountId": account_id, "name": "order_update", "language": "es",
                     "category": "UTILITY", "status": "APPROVED", "appId": "app_1",
                     "message": "Hola {{name}}, tu pedido {{order}} va en camino",
                     "header": {"format": "TEXT", "text": "Pedido {{order}}"},
                     "footer": "Gracias por tu compra", "groupName": "Ventas",
                     "buttons": [
                         {"type": "URL", "text": "Seguir", "url": "https://example.com/t/{{order}}"},
                         {"type": "QUICK_REPLY", "text": "Ok"},
                         {"type": "PHONE_NUMBER", "text": "Llamar", "phoneNumber": "+50760000000"},
                         {"type": "COPY_CODE", "example": "ABC123"}]}))
        .expect(201)
        .await;
    let template_id = s(&template["id"]);
    let pending = c
        .req("POST", "/v1/admin/templates")
        .admin()
        .json(
            json!({"accountId": account_id, "name": "promo", "language": "es",
                     "status": "PENDING", "appId": "app_2", "message": "Oferta",
                     "header": {"format": "IMAGE", "example": "https://example.com/a.png"}}),
        )
        .expect(201)
        .await;
    let incomplete = c
        .req("POST", "/v1/admin/templates")
        .admin()
        .json(
            json!({"accountId": account_id, "name": "draft", "language": "en_US",
                     "message": "Hi {{1}}", "header": "Hello"}),
        )
        .expect(201)
        .await;
    c.req("POST", "/v1/admin/templates")
        .admin()
        .json(json!({"accountId": account_id, "name": "Bad Name", "language": "es"}))
        .expect(400)
        .await;
    c.req("GET", format!("/v1/admin/templates/{template_id}"))
        .admin()
        .expect(200)
        .await;
    c.req("GET", "/v1/admin/templates/tpl_nope")
        .admin()
        .expect(404)
        .await;
    c.req(
        "PATCH",
        format!("/v1/admin/templates/{}", s(&pending["id"])),
    )
    .admin()
    .json(json!({"footer": null, "category": "MARKETING", "active": true}))
    .expect(200)
    .await;
    c.req("PATCH", format!("/v1/admin/templates/{template_id}"))
        .admin()
        .json(json!({"language": "Spanish"}))
        .expect(400)
        .await;
    c.req("PATCH", "/v1/admin/templates/tpl_nope")
        .admin()
        .json(json!({"active": false}))
        .expect(404)
        .await;

    // An account with no conversations left.
    let poor = c
        .req("POST", "/v1/admin/accounts")
        .admin()
        .json(json!({"name": "Poor", "conversationLimit": 0}))
        .expect(201)
        .await;
    let exhausted = c
        .req("POST", "/v1/admin/channels")
        .admin()
        .json(json!({"accountId": poor["id"], "name": "Poor", "provider": "sandbox"}))
        .expect(201)
        .await;
    c.req("POST", "/v1/admin/templates")
        .admin()
        .json(json!({"accountId": poor["id"], "name": "order_update", "language": "es",
                     "appId": "app_9", "message": "Hola {{name}}, tu pedido {{order}} va en camino"}))
        .expect(201)
        .await;

    // Conversations and messages, after a send (and one that fails: numbers ending in 0000).
    let token = s(&channel["publicToken"]);
    let sent = c
        .req("POST", "/v1/messages")
        .token(&token)
        .json(json!({"to": "50755660001", "templateId": template_id,
                     "params": {"name": "Ana", "order": "A-1"}}))
        .expect(202)
        .await;
    let failing = c
        .req("POST", "/v1/messages")
        .token(&token)
        .json(json!({"to": "50755660000", "templateId": template_id,
                     "params": {"name": "Ana", "order": "A-1"}}))
        .expect(202)
        .await;
    c.t.drain().await;
    let conversation = s(&sent["conversation"]["id"]);
    c.req("GET", format!("/v1/admin/conversations/{conversation}"))
        .admin()
        .expect(200)
        .await;
    c.req("GET", "/v1/admin/conversations/conv_nope")
        .admin()
        .expect(404)
        .await;
    c.req(
        "POST",
        format!("/v1/admin/conversations/{conversation}/close"),
    )
    .admin()
    .expect(200)
    .await;
    c.req("POST", "/v1/admin/conversations/conv_nope/close")
        .admin()
        .expect(404)
        .await;
    for m in [&sent, &failing] {
        c.req("GET", format!("/v1/admin/messages/{}", s(&m["id"])))
            .admin()
            .expect(200)
            .await;
    }
    c.req("GET", "/v1/admin/messages/msg_nope")
        .admin()
        .expect(404)
        .await;

    Setup {
        token,
        channel_id,
        template_id,
        api_key: s(&key["key"]),
        cloud_id,
        cloud_token: s(&cloud["publicToken"]),
        broken_cloud_token: s(&broken["publicToken"]),
        disconnected_token: s(&rotated["publicToken"]),
        exhausted_token: s(&exhausted["publicToken"]),
        pending_template_id: s(&pending["id"]),
        incomplete_template_id: s(&incomplete["id"]),
    }
}

async fn native_api(c: &Checker, setup: &Setup) {
    let token = setup.token.as_str();
    let send = |to: &str| {
        json!({"to": to, "templateId": setup.template_id, "params": {"name": "Ana", "order": "A-1"},
               "clientName": "Ana", "groupName": "Ventas", "assign": true,
               "callbackUrl": "https://example.com/hook", "metadata": {"crm": 42}})
    };
    // Authentication.
    c.req("POST", "/v1/messages")
        .json(send("50755661001"))
        .expect(401)
        .await;
    let refused = c
        .req("POST", "/v1/messages")
        .token(token)
        .body(Body::Typed(
            "text/plain".into(),
            send("50755661001").to_string().into_bytes(),
        ))
        .expect(415)
        .await;
    assert_eq!(
        refused["accepted"],
        json!(["application/json"]),
        "{refused}"
    );
    c.req("GET", "/v1/messages")
        .token("pk_nope")
        .expect(401)
        .await;
    // A webhook endpoint, registered before the sends so their events are delivered to it
    // (nothing listens there: the deliveries fail and wait for a retry).
    let endpoint = c
        .req("POST", "/v1/webhook-endpoints")
        .token(token)
        .json(
            json!({"url": "http://127.0.0.1:9/events", "description": "CRM",
                     "eventTypes": ["message.sent", "message.delivered", "conversation.opened"]}),
        )
        .expect(201)
        .await;
    let endpoint_id = s(&endpoint["id"]);
    // Sends: a new number, then again on its open conversation; by name; idempotent.
    let first = c
        .req("POST", "/v1/messages")
        .token(token)
        .json(send("50755661001"))
        .expect(202)
        .await;
    c.req("POST", "/v1/messages")
        .token(token)
        .json(send("50755661001"))
        .expect(409)
        .await;
    c.t.drain().await;
    c.req("POST", "/v1/messages")
        .token(token)
        .json(send("50755661001"))
        .expect(202)
        .await;
    c.req("POST", "/v1/messages")
        .token(token)
        .json(
            json!({"to": "50755661002", "templateName": "order_update", "language": "es",
                     "params": {"name": "Ana", "order": "A-2"}}),
        )
        .expect(202)
        .await;
    for _ in 0..2 {
        c.req("POST", "/v1/messages")
            .token(token)
            .header("Idempotency-Key", "order-A-3")
            .json(send("50755661003"))
            .expect(202)
            .await;
    }
    c.req("POST", "/v1/messages")
        .token(token)
        .header("Idempotency-Key", "order-A-3")
        .json(send("50755661004"))
        .expect(422)
        .await;
    c.req("POST", "/v1/messages")
        .token(token)
        .header("Idempotency-Key", "has space")
        .json(send("50755661005"))
        .expect(400)
        .await;
    // With an account API key, naming the channel (and without: a validation problem).
    let mut by_key = send("50755661006");
    by_key["channelId"] = json!(setup.channel_id);
    c.req("POST", "/v1/messages")
        .token(&setup.api_key)
        .json(by_key)
        .expect(202)
        .await;
    c.req("POST", "/v1/messages")
        .token(&setup.api_key)
        .json(send("50755661007"))
        .expect(400)
        .await;
    // Every refusal.
    c.req("POST", "/v1/messages")
        .token(token)
        .json(json!({"to": "+1 nope", "params": []}))
        .expect(400)
        .await;
    c.req("POST", "/v1/messages")
        .token(token)
        .raw("[1, 2]")
        .expect(400)
        .await;
    c.req("POST", "/v1/messages")
        .token(token)
        .json(json!({"to": "50755661008", "templateId": "tpl_nope"}))
        .expect(422)
        .await;
    c.req("POST", "/v1/messages")
        .token(token)
        .json(json!({"to": "50755661008", "templateId": setup.template_id, "params": {"name": "Ana"}}))
        .expect(422)
        .await;
    c.req("POST", "/v1/messages")
        .token(token)
        .json(
            json!({"to": "50755661008", "templateId": setup.template_id, "groupName": "Nadie",
                     "params": {"name": "Ana", "order": "A-1"}}),
        )
        .expect(422)
        .await;
    c.req("POST", "/v1/messages")
        .token(token)
        .json(json!({"to": "50755661008", "templateId": setup.pending_template_id}))
        .expect(422)
        .await;
    c.req("POST", "/v1/messages")
        .token(token)
        .json(
            json!({"to": "50755661008", "templateId": setup.incomplete_template_id,
                     "params": {"1": "Ana"}}),
        )
        .expect(422)
        .await;
    c.req("POST", "/v1/messages")
        .token(&setup.disconnected_token)
        .json(send("50755661008"))
        .expect(409)
        .await;
    let exhausted_template = c
        .req("GET", "/v1/templates?name=order_update")
        .token(&setup.exhausted_token)
        .expect(200)
        .await;
    c.req("POST", "/v1/messages")
        .token(&setup.exhausted_token)
        .json(
            json!({"to": "50755661008", "templateId": exhausted_template["data"][0]["id"],
                     "params": {"name": "Ana", "order": "A-1"}}),
        )
        .expect(402)
        .await;

    // A batch: accepted, unparsable, missing params, pending, all in order.
    let batch = c
        .req("POST", "/v1/messages/batch")
        .token(token)
        .header("Idempotency-Key", "batch-1")
        .json(json!({"templateId": setup.template_id, "recipients": [
            {"to": "50755662001", "params": {"name": "Ana", "order": "B-1"}, "metadata": {"row": 1}},
            {"to": "555", "params": {"name": "Ana", "order": "B-2"}},
            {"to": "50755662003", "params": {"name": "Ana"}},
            {"to": "50755662001", "params": {"name": "Ana", "order": "B-4"}},
        ]}))
        .expect(202)
        .await;
    c.req("POST", "/v1/messages/batch")
        .token(token)
        .json(json!({"templateId": setup.template_id, "recipients": []}))
        .expect(400)
        .await;
    c.req("POST", "/v1/messages/batch")
        .json(json!({"templateId": setup.template_id, "recipients": [{"to": "50755662001"}]}))
        .expect(401)
        .await;
    let batch_id = s(&batch["batchId"]);
    c.req("GET", format!("/v1/batches/{batch_id}"))
        .token(token)
        .expect(200)
        .await;
    c.req("GET", "/v1/batches/bat_nope")
        .token(token)
        .expect(404)
        .await;
    // Campaigns: a scheduled batch paused, resumed and cancelled; a message cancelled.
    let scheduled = c
        .req("POST", "/v1/messages/batch")
        .token(token)
        .json(json!({"templateId": setup.template_id, "sendAt": "2099-01-01T00:00:00Z",
                     "recipients": [{"to": "50755662101", "params": {"name": "Ana", "order": "S-1"},
                                     "sendAt": plantilla::format_ms(plantilla::now_ms() + 3_600_000)}]}))
        .expect(202)
        .await;
    let scheduled_id = s(&scheduled["batchId"]);
    for action in ["pause", "resume", "cancel"] {
        c.req("POST", format!("/v1/batches/{scheduled_id}/{action}"))
            .token(token)
            .expect(200)
            .await;
        c.req("POST", format!("/v1/batches/bat_nope/{action}"))
            .token(token)
            .expect(404)
            .await;
    }
    let later = c
        .req("POST", "/v1/messages")
        .token(token)
        .json(json!({"templateId": setup.template_id, "to": "50755662102",
                     "params": {"name": "Ana", "order": "S-2"},
                     "sendAt": plantilla::format_ms(plantilla::now_ms() + 3_600_000)}))
        .expect(202)
        .await;
    c.req("POST", "/v1/messages")
        .token(token)
        .json(json!({"templateId": setup.template_id, "to": "50755662103",
                     "params": {"name": "Ana", "order": "S-3"}, "sendAt": "2099-01-01T00:00:00Z"}))
        .expect(422)
        .await;
    let later_id = s(&later["id"]);
    c.req("POST", format!("/v1/messages/{later_id}/cancel"))
        .token(token)
        .expect(200)
        .await;
    c.req("POST", format!("/v1/messages/{later_id}/cancel"))
        .token(token)
        .expect(409)
        .await;
    c.req("POST", "/v1/messages/msg_nope/cancel")
        .token(token)
        .expect(404)
        .await;

    // Messages: lists with paging and filters, one message in each state.
    c.t.drain().await;
    let page = c
        .req("GET", "/v1/messages?limit=2")
        .token(token)
        .expect(200)
        .await;
    let cursor = s(&page["nextCursor"]);
    c.req("GET", format!("/v1/messages?limit=2&cursor={cursor}"))
        .token(token)
        .expect(200)
        .await;
    c.req(
        "GET",
        format!("/v1/messages?status=read&batchId={batch_id}&from=2020-01-01T00:00:00Z"),
    )
    .token(&setup.api_key)
    .expect(200)
    .await;
    c.req("GET", "/v1/messages?status=lost")
        .token(token)
        .expect(400)
        .await;
    c.req("GET", "/v1/messages?limit=0")
        .token(token)
        .expect(400)
        .await;
    let all = c
        .req("GET", "/v1/messages?limit=200")
        .token(&setup.api_key)
        .expect(200)
        .await;
    for m in all["data"].as_array().unwrap().iter().take(12) {
        c.req("GET", format!("/v1/messages/{}", s(&m["id"])))
            .token(&setup.api_key)
            .expect(200)
            .await;
    }
    c.req("GET", format!("/v1/messages/{}", s(&first["id"])))
        .token(&setup.cloud_token)
        .expect(404)
        .await;

    // Conversations.
    let conversations = c
        .req("GET", "/v1/conversations?status=open&limit=1")
        .token(token)
        .expect(200)
        .await;
    c.req("GET", "/v1/conversations?status=weird")
        .token(token)
        .expect(400)
        .await;
    c.req(
        "GET",
        format!("/v1/conversations?channelId={}", setup.cloud_id),
    )
    .token(token)
    .expect(400)
    .await;
    let conversation = s(&conversations["data"][0]["id"]);
    c.req("GET", format!("/v1/conversations/{conversation}"))
        .token(token)
        .expect(200)
        .await;
    c.req("GET", "/v1/conversations/conv_nope")
        .token(token)
        .expect(404)
        .await;
    c.req(
        "GET",
        format!("/v1/conversations/{conversation}/messages?limit=5"),
    )
    .token(token)
    .expect(200)
    .await;
    c.req(
        "GET",
        format!("/v1/conversations/{conversation}/messages?limit=0"),
    )
    .token(token)
    .expect(400)
    .await;
    c.req("GET", "/v1/conversations/conv_nope/messages")
        .token(token)
        .expect(404)
        .await;
    c.req("POST", format!("/v1/conversations/{conversation}/close"))
        .token(token)
        .expect(200)
        .await;
    // Safe to repeat: a key is checked, not needed.
    c.req("POST", format!("/v1/conversations/{conversation}/close"))
        .token(token)
        .header("Idempotency-Key", "close-1")
        .expect(200)
        .await;
    c.req("POST", format!("/v1/conversations/{conversation}/close"))
        .token(token)
        .header("Idempotency-Key", "has space")
        .expect(400)
        .await;
    c.req("POST", "/v1/conversations/conv_nope/close")
        .token(token)
        .expect(404)
        .await;

    // Templates, including the synced ones (headers and buttons from Meta).
    c.req("GET", "/v1/templates?limit=200")
        .token(token)
        .expect(200)
        .await;
    c.req("GET", "/v1/templates?page=0")
        .token(token)
        .expect(400)
        .await;
    c.req("GET", format!("/v1/templates/{}", setup.template_id))
        .token(token)
        .expect(200)
        .await;
    c.req("GET", "/v1/templates/tpl_nope")
        .token(token)
        .expect(404)
        .await;
    // Previews: valid, refused values, a malformed body, another template.
    let preview = c
        .req(
            "POST",
            format!("/v1/templates/{}/preview", setup.template_id),
        )
        .token(token)
        .json(json!({"params": {"name": "Ana", "order": "A-1"}}))
        .expect(200)
        .await;
    assert_eq!(preview["valid"], true, "{preview}");
    let preview = c
        .req(
            "POST",
            format!("/v1/templates/{}/preview", setup.template_id),
        )
        .token(token)
        .json(json!({"params": {"name": "Ana"}, "buttons": [{"index": 9, "payload": "x"}]}))
        .expect(200)
        .await;
    assert_eq!(preview["valid"], false, "{preview}");
    c.req(
        "POST",
        format!("/v1/templates/{}/preview", setup.template_id),
    )
    .token(token)
    .json(json!({"header": "nope"}))
    .expect(400)
    .await;
    c.req("POST", "/v1/templates/tpl_nope/preview")
        .token(token)
        .json(json!({}))
        .expect(404)
        .await;
    c.req("POST", "/v1/templates/sync")
        .token(&setup.cloud_token)
        .expect(200)
        .await;
    c.req("POST", "/v1/templates/sync")
        .token(&setup.cloud_token)
        .header("Idempotency-Key", "sync-1")
        .expect(200)
        .await;
    c.req("POST", "/v1/templates/sync")
        .token(&setup.cloud_token)
        .header("Idempotency-Key", "has space")
        .expect(400)
        .await;
    c.req(
        "POST",
        format!("/v1/templates/sync?channelId={}", setup.cloud_id),
    )
    .token(&setup.api_key)
    .expect(200)
    .await;
    c.req("POST", "/v1/templates/sync")
        .token(token)
        .expect(400)
        .await;
    c.req("POST", "/v1/templates/sync")
        .token(&setup.broken_cloud_token)
        .expect(502)
        .await;
    c.req("POST", "/v1/templates/sync").expect(401).await;

    // Media uploads.
    let pdf = b"%PDF-1.7 conformance".as_slice();
    let pdf_part = || multipart(&[("file", Some(("invoice.pdf", "application/pdf")), pdf)]);
    c.req("POST", "/v1/media")
        .token(token)
        .body(pdf_part())
        .expect(201)
        .await;
    c.req("POST", "/v1/media")
        .token(&setup.cloud_token)
        .body(multipart(&[(
            "file",
            Some(("logo.png", "image/png")),
            b"\x89PNG....",
        )]))
        .expect(201)
        .await;
    c.req("POST", "/v1/media")
        .token(&setup.api_key)
        .body(multipart(&[
            ("channelId", None, setup.cloud_id.as_bytes()),
            ("file", Some(("invoice.pdf", "application/pdf")), pdf),
        ]))
        .expect(201)
        .await;
    c.req("POST", format!("/v1/media?channelId={}", setup.channel_id))
        .token(&setup.api_key)
        .header("Idempotency-Key", "media-1")
        .body(pdf_part())
        .expect(201)
        .await;
    c.req("POST", "/v1/media")
        .token(&setup.api_key)
        .body(pdf_part())
        .expect(400)
        .await;
    c.req("POST", "/v1/media")
        .token(token)
        .json(json!({"file": "invoice.pdf"}))
        .expect(415)
        .await;
    c.req("POST", "/v1/media")
        .token(token)
        .header("Idempotency-Key", "has space")
        .body(pdf_part())
        .expect(400)
        .await;
    c.req("POST", "/v1/media")
        .token(&setup.disconnected_token)
        .body(pdf_part())
        .expect(409)
        .await;
    c.req("POST", "/v1/media")
        .token(token)
        .body(multipart(&[(
            "file",
            Some(("big.png", "image/png")),
            &vec![0u8; 5 * 1024 * 1024 + 1],
        )]))
        .expect(413)
        .await;
    c.req("POST", "/v1/media")
        .token(token)
        .body(multipart(&[(
            "file",
            Some(("a.gif", "image/gif")),
            b"GIF89a",
        )]))
        .expect(415)
        .await;
    c.req("POST", "/v1/media")
        .token(&setup.broken_cloud_token)
        .body(pdf_part())
        .expect(502)
        .await;
    c.req("POST", "/v1/media")
        .body(pdf_part())
        .expect(401)
        .await;

    // What messages cost (the sandbox prices its messages as Meta does).
    c.t.drain().await;
    c.req("GET", "/v1/usage?groupBy=category")
        .token(token)
        .expect(200)
        .await;
    c.req(
        "GET",
        "/v1/usage?groupBy=template&from=2026-01-01&to=2026-12-31",
    )
    .token(token)
    .expect(200)
    .await;
    c.req("GET", "/v1/usage?from=2026-13-01")
        .token(token)
        .expect(400)
        .await;
    c.req("GET", "/v1/usage").expect(401).await;

    // Webhook endpoints and their deliveries.
    c.t.drain().await;
    c.t.drain_callbacks().await;
    c.req("POST", "/v1/webhook-endpoints")
        .token(token)
        .json(json!({"url": "ftp://example.com", "eventTypes": ["message.queued"]}))
        .expect(400)
        .await;
    c.req("POST", "/v1/webhook-endpoints")
        .token(token)
        .raw("{not json")
        .expect(400)
        .await;
    c.req("POST", "/v1/webhook-endpoints")
        .json(json!({"url": "https://example.com/events", "eventTypes": ["message.read"]}))
        .expect(401)
        .await;
    let by_key = c
        .req("POST", "/v1/webhook-endpoints")
        .token(&setup.api_key)
        .json(json!({"url": "https://example.com/events", "eventTypes": ["message.read"]}))
        .expect(201)
        .await;
    // Idempotent registration: a retry replays the endpoint (with its secret), another body
    // is refused, a malformed key too, and a retry after the endpoint's deletion is a 404.
    let hook = json!({"url": "https://example.com/keyed", "eventTypes": ["message.read"]});
    let keyed = c
        .req("POST", "/v1/webhook-endpoints")
        .token(token)
        .header("Idempotency-Key", "hook-1")
        .json(hook.clone())
        .expect(201)
        .await;
    let replayed = c
        .req("POST", "/v1/webhook-endpoints")
        .token(token)
        .header("Idempotency-Key", "hook-1")
        .json(hook.clone())
        .expect(201)
        .await;
    assert_eq!(replayed, keyed);
    c.req("POST", "/v1/webhook-endpoints")
        .token(token)
        .header("Idempotency-Key", "hook-1")
        .json(json!({"url": "https://example.com/other", "eventTypes": ["message.read"]}))
        .expect(422)
        .await;
    c.req("POST", "/v1/webhook-endpoints")
        .token(token)
        .header("Idempotency-Key", "has space")
        .json(hook.clone())
        .expect(400)
        .await;
    c.req(
        "DELETE",
        format!("/v1/webhook-endpoints/{}", s(&keyed["id"])),
    )
    .token(token)
    .expect(204)
    .await;
    c.req("POST", "/v1/webhook-endpoints")
        .token(token)
        .header("Idempotency-Key", "hook-1")
        .json(hook)
        .expect(404)
        .await;
    c.req("GET", "/v1/webhook-endpoints")
        .token(token)
        .expect(200)
        .await;
    c.req("GET", "/v1/webhook-endpoints").expect(401).await;
    c.req("GET", format!("/v1/webhook-endpoints/{endpoint_id}"))
        .token(&setup.api_key)
        .expect(200)
        .await;
    c.req("GET", "/v1/webhook-endpoints/we_nope")
        .token(token)
        .expect(404)
        .await;
    c.req("GET", format!("/v1/webhook-endpoints/{endpoint_id}"))
        .expect(401)
        .await;
    let page = c
        .req(
            "GET",
            format!("/v1/webhook-endpoints/{endpoint_id}/deliveries?limit=1"),
        )
        .token(token)
        .expect(200)
        .await;
    assert!(
        !page["data"].as_array().unwrap().is_empty(),
        "the sends' events are deliveries: {page}"
    );
    if let Some(cursor) = page["nextCursor"].as_str() {
        c.req(
            "GET",
            format!("/v1/webhook-endpoints/{endpoint_id}/deliveries?cursor={cursor}"),
        )
        .token(token)
        .expect(200)
        .await;
    }
    c.req(
        "GET",
        format!("/v1/webhook-endpoints/{endpoint_id}/deliveries?limit=0"),
    )
    .token(token)
    .expect(400)
    .await;
    c.req(
        "GET",
        format!("/v1/webhook-endpoints/{endpoint_id}/deliveries?cursor=zz"),
    )
    .token(token)
    .expect(400)
    .await;
    c.req("GET", "/v1/webhook-endpoints/we_nope/deliveries")
        .token(token)
        .expect(404)
        .await;
    c.req(
        "GET",
        format!("/v1/webhook-endpoints/{endpoint_id}/deliveries"),
    )
    .expect(401)
    .await;
    c.req(
        "DELETE",
        format!("/v1/webhook-endpoints/{}", s(&by_key["id"])),
    )
    .token(token)
    .expect(204)
    .await;
    c.req("DELETE", "/v1/webhook-endpoints/we_nope")
        .token(token)
        .expect(404)
        .await;
    c.req("DELETE", format!("/v1/webhook-endpoints/{endpoint_id}"))
        .expect(401)
        .await;
}

async fn compatible_api(c: &Checker, setup: &Setup, send: &str, list: &str, old: bool) {
    let token = setup.token.as_str();
    let prefix = if old { "5075566" } else { "5075567" };
    let body = |n: &str| {
        json!({"templateId": setup.template_id, "phoneNumber": format!("{prefix}{n}"),
               "clientName": "Ana", "groupName": "Ventas", "assign": false,
               "params": {"name": "Ana", "order": 1001}})
    };
    // Rows of the contract's send table, in order.
    c.req("POST", send).json(body("3001")).expect(401).await;
    c.req("POST", send)
        .token("pk_unknown")
        .json(body("3001"))
        .expect(400)
        .await;
    c.req("POST", send)
        .token(token)
        .raw("not json")
        .expect(400)
        .await;
    c.req("POST", send)
        .token(token)
        .json(json!({"templateId": setup.template_id, "phoneNumber": "+50755667788"}))
        .expect(400)
        .await;
    c.req("POST", send)
        .token(token)
        .json(json!({"templateId": "tpl_nope", "phoneNumber": format!("{prefix}3001")}))
        .expect(404)
        .await;
    c.req("POST", send)
        .token(token)
        .json(json!({"templateId": setup.incomplete_template_id, "phoneNumber": format!("{prefix}3001")}))
        .expect(400)
        .await;
    c.req("POST", send)
        .token(token)
        .json(json!({"templateId": setup.pending_template_id, "phoneNumber": format!("{prefix}3001")}))
        .expect(400)
        .await;
    c.req("POST", send)
        .token(&setup.disconnected_token)
        .json(body("3001"))
        .expect(400)
        .await;
    c.req("POST", send)
        .token(token)
        .json(
            json!({"templateId": setup.template_id, "phoneNumber": format!("{prefix}3001"),
                     "params": {"name": "Ana"}}),
        )
        .expect(400)
        .await;
    let mut no_group = body("3001");
    no_group["groupName"] = json!("Nadie");
    c.req("POST", send)
        .token(token)
        .json(no_group)
        .expect(400)
        .await;
    // Pending, already pending, sent.
    c.req("POST", send)
        .token(token)
        .json(body("3001"))
        .expect(200)
        .await;
    c.req("POST", send)
        .token(token)
        .json(body("3001"))
        .expect(202)
        .await;
    c.t.drain().await;
    let mut by_name = body("3001");
    if !old {
        by_name.as_object_mut().unwrap().remove("clientName");
        by_name["firstName"] = json!("Ana");
        by_name["lastName"] = json!("Pérez");
    }
    c.req("POST", send)
        .token(token)
        .json(by_name)
        .expect(200)
        .await;
    // The plan's conversations used up.
    let exhausted_templates = c
        .req("GET", list)
        .token(&setup.exhausted_token)
        .expect(200)
        .await;
    c.req("POST", send)
        .token(&setup.exhausted_token)
        .json(json!({"templateId": exhausted_templates["data"][0]["id"],
                     "phoneNumber": format!("{prefix}3002"),
                     "params": {"name": "Ana", "order": "A-1"}}))
        .expect(401)
        .await;

    // List and detail.
    c.req("GET", format!("{list}?page=1&size=200&status=APPROVED"))
        .token(token)
        .expect(200)
        .await;
    c.req("GET", format!("{list}?size=500"))
        .token(token)
        .expect(400)
        .await;
    c.req("GET", list).token("pk_unknown").expect(400).await;
    c.req("GET", list).expect(401).await;
    c.req("GET", format!("{list}/{}", setup.template_id))
        .token(token)
        .expect(200)
        .await;
    c.req("GET", format!("{list}/tpl_nope"))
        .token(token)
        .expect(404)
        .await;
    c.req("GET", format!("{list}/{}", setup.template_id))
        .token("pk_unknown")
        .expect(400)
        .await;
    c.req("GET", format!("{list}/{}", setup.template_id))
        .expect(401)
        .await;
}

async fn webhooks(c: &Checker, setup: &Setup) {
    let notification = json!({"object": "whatsapp_business_account", "entry": [{
        "id": DEFAULT_WABA_ID,
        "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000001", "phone_number_id": PN},
            "statuses": []}}]}]});
    let body = notification.to_string();
    for (path, secret, verify) in [
        ("/webhooks/whatsapp".to_string(), APP_SECRET, VERIFY_TOKEN),
        (
            format!("/webhooks/whatsapp/{}", setup.cloud_id),
            "channel-secret",
            "channel-verify",
        ),
    ] {
        c.req(
            "GET",
            format!("{path}?hub.mode=subscribe&hub.verify_token={verify}&hub.challenge=1158201444"),
        )
        .expect(200)
        .await;
        c.req(
            "GET",
            format!("{path}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1"),
        )
        .expect(403)
        .await;
        c.req("POST", &path)
            .header("X-Hub-Signature-256", &signature(secret, body.as_bytes()))
            .raw(&body)
            .expect(200)
            .await;
        c.req("POST", &path)
            .header(
                "X-Hub-Signature-256",
                &signature("not-the-secret", body.as_bytes()),
            )
            .raw(&body)
            .expect(401)
            .await;
        c.req("POST", &path)
            .header("X-Hub-Signature-256", &signature(secret, b"not json"))
            .raw("not json")
            .expect(400)
            .await;
    }
    c.req(
        "GET",
        "/webhooks/whatsapp/ch_nope?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1",
    )
    .expect(403)
    .await;
}

/// Templates authored from plantilla: submit and delete, native and admin.
async fn authoring(c: &Checker, setup: &Setup) {
    let body = |name: &str| {
        json!({"name": name, "language": "es", "category": "UTILITY",
               "message": "Hola {{name}}", "examples": {"name": "Ana"},
               "buttons": [{"type": "QUICK_REPLY", "text": "Ok"}]})
    };
    let created = c
        .req("POST", "/v1/templates")
        .token(&setup.token)
        .header("Idempotency-Key", "author-1")
        .json(body("authored_one"))
        .expect(201)
        .await;
    c.req("POST", "/v1/templates")
        .token(&setup.token)
        .json(json!({"name": "x", "language": "es", "category": "UTILITY", "message": "Hola {{name}}"}))
        .expect(400)
        .await;
    c.req("POST", "/v1/templates")
        .token(&setup.broken_cloud_token)
        .json(body("authored_broken"))
        .expect(502)
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    c.req("DELETE", format!("/v1/templates/{id}"))
        .token(&setup.token)
        .expect(204)
        .await;
    c.req("DELETE", format!("/v1/templates/{id}"))
        .token(&setup.token)
        .expect(404)
        .await;

    let created = c
        .req(
            "POST",
            format!("/v1/admin/channels/{}/templates", setup.channel_id),
        )
        .admin()
        .json(body("authored_two"))
        .expect(201)
        .await;
    c.req(
        "POST",
        format!("/v1/admin/channels/{}/templates", setup.channel_id),
    )
    .admin()
    .json(json!({"name": "Bad Name", "language": "es", "category": "UTILITY", "message": "Hola"}))
    .expect(400)
    .await;
    c.req("POST", "/v1/admin/channels/ch_missing/templates")
        .admin()
        .json(body("authored_three"))
        .expect(404)
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    c.req("DELETE", format!("/v1/admin/templates/{id}?atMeta=maybe"))
        .admin()
        .expect(400)
        .await;
    c.req("DELETE", format!("/v1/admin/templates/{id}?atMeta=false"))
        .admin()
        .expect(204)
        .await;
    c.req("DELETE", format!("/v1/admin/templates/{id}"))
        .admin()
        .expect(404)
        .await;
}

// --- Requests: the document as strict as the server, the server as strict as the document ----

/// The JSON body schema the document declares for `method` `path` (a path template).
fn body_schema(doc: &Value, method: &str, path: &str) -> Value {
    doc["paths"][path][method.to_lowercase()]["requestBody"]["content"]["application/json"]
        ["schema"]
        .clone()
}

/// The schema of the parameter `name` of `method` `path`.
fn param_schema(doc: &Value, method: &str, path: &str, name: &str) -> Value {
    doc["paths"][path][method.to_lowercase()]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("{method} {path} has no parameters"))
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))["schema"]
        .clone()
}

/// A query or header value as JSON Schema sees it: a whole number is an integer, anything else
/// (the empty string too) a string.
fn raw_value(raw: &str) -> Value {
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        json!(raw.parse::<u64>().unwrap())
    } else {
        json!(raw)
    }
}

async fn request(
    t: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
    idempotency_key: Option<&str>,
) -> (reqwest::StatusCode, Value) {
    let mut req = t
        .client
        .request(method.parse().unwrap(), format!("{}{path}", t.base))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(body);
    }
    if let Some(key) = idempotency_key {
        req = req.header("Idempotency-Key", key);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(json!(text)))
}

/// The document accepts `value` exactly when the server did: a value the document refuses got
/// a 400, one it accepts a 2xx.
fn assert_agree(
    v: &Validator,
    schema: &Value,
    value: &Value,
    answer: &(reqwest::StatusCode, Value),
    what: &str,
) {
    let errors = v.errors(schema, value);
    let (status, body) = answer;
    if errors.is_empty() {
        assert!(
            status.is_success(),
            "{what}: the document accepts {value}, the server answered {status} {body}"
        );
    } else {
        assert_eq!(
            *status,
            reqwest::StatusCode::BAD_REQUEST,
            "{what}: the document refuses {value} ({errors:?}), the server answered {body}"
        );
    }
}

#[tokio::test]
async fn the_document_and_the_server_refuse_and_accept_the_same_requests() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let doc = openapi::document();
    let v = Validator { doc };
    let admin = ADMIN_TOKEN;
    let token = seed.token.as_str();
    let tpl = seed.template_id.as_str();
    let acc = seed.account_id.as_str();

    // Admin bodies: non-empty names and ids, a provider that is never null, a cloud channel's
    // required fields, Meta's name and language formats, whole numbers written as 1000.0.
    let bodies: Vec<(&str, &str, Value)> = vec![
        ("POST", "/v1/admin/accounts", json!({"name": ""})),
        (
            "POST",
            "/v1/admin/accounts",
            json!({"name": "Fraction", "conversationLimit": 15394.0}),
        ),
        (
            "POST",
            "/v1/admin/accounts",
            json!({"name": "Half", "conversationLimit": 1.5}),
        ),
        (
            "POST",
            "/v1/admin/channels",
            json!({"accountId": acc, "name": "N", "provider": null}),
        ),
        (
            "POST",
            "/v1/admin/channels",
            json!({"accountId": acc, "name": "S", "provider": "sandbox"}),
        ),
        (
            "POST",
            "/v1/admin/channels",
            json!({"accountId": "", "name": "E", "provider": "sandbox"}),
        ),
        (
            "POST",
            "/v1/admin/channels",
            json!({"accountId": acc, "name": "", "provider": "sandbox"}),
        ),
        (
            "POST",
            "/v1/admin/channels",
            json!({"accountId": acc, "name": "C", "provider": "cloud"}),
        ),
        (
            "POST",
            "/v1/admin/channels",
            json!({"accountId": acc, "name": "C", "provider": "cloud",
                                              "phoneNumberId": "123456", "accessToken": "  "}),
        ),
        (
            "POST",
            "/v1/admin/channels",
            json!({"accountId": acc, "name": "C", "provider": "cloud",
                                              "phoneNumberId": "123456", "accessToken": "tok"}),
        ),
        (
            "POST",
            "/v1/admin/groups",
            json!({"accountId": acc, "name": ""}),
        ),
        (
            "POST",
            "/v1/admin/groups",
            json!({"accountId": acc, "name": "Soporte", "channelIds": [""]}),
        ),
        (
            "POST",
            "/v1/admin/groups",
            json!({"accountId": acc, "name": "Soporte"}),
        ),
        (
            "POST",
            "/v1/admin/templates",
            json!({"accountId": acc, "name": "promo", "language": "0", "message": "Hola"}),
        ),
        (
            "POST",
            "/v1/admin/templates",
            json!({"accountId": acc, "name": "Promo", "language": "es", "message": "Hola"}),
        ),
        (
            "POST",
            "/v1/admin/templates",
            json!({"accountId": acc, "name": "", "language": "es", "message": "Hola"}),
        ),
        (
            "POST",
            "/v1/admin/templates",
            json!({"accountId": acc, "name": "promo", "language": "pt_BR", "message": "Hola"}),
        ),
        (
            "POST",
            "/v1/admin/templates",
            json!({"accountId": acc, "name": "carrusel", "language": "es", "message": "Hola", "carousel": []}),
        ),
        (
            "POST",
            "/v1/admin/templates",
            json!({"accountId": acc, "name": "cabecera", "language": "es", "message": "Hola",
                   "header": {"format": "IMAGE", "size": 1}}),
        ),
        (
            "POST",
            "/v1/admin/templates",
            json!({"accountId": acc, "name": "cabecera", "language": "es", "message": "Hola",
                   "header": {"format": "IMAGE", "example": null, "sample": null, "defaultMedia": null}}),
        ),
    ];
    for (method, path, body) in &bodies {
        let answer = request(&t, method, path, admin, Some(body), None).await;
        assert_agree(
            &v,
            &body_schema(doc, method, path),
            body,
            &answer,
            &format!("{method} {path}"),
        );
    }
    // A PATCH's provider is never null either.
    let patch = json!({"provider": null});
    let answer = request(
        &t,
        "PATCH",
        &format!("/v1/admin/channels/{}", seed.channel_id),
        admin,
        Some(&patch),
        None,
    )
    .await;
    assert_agree(
        &v,
        &body_schema(doc, "PATCH", "/v1/admin/channels/{id}"),
        &patch,
        &answer,
        "PATCH channel",
    );
    // An API key's body may be left out: the document says so and the server takes it.
    let op = &doc["paths"]["/v1/admin/accounts/{id}/api-keys"]["post"];
    assert_eq!(op["requestBody"]["required"], json!(false));
    let (status, _) = request(
        &t,
        "POST",
        &format!("/v1/admin/accounts/{acc}/api-keys"),
        admin,
        None,
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED);

    // Native sends: a recipient, its names and callback URL non-empty, the template by id or
    // by name and language (not both), null as absent for the send's values.
    let params = json!({"name": "Ana", "order": "A-1"});
    let sends: Vec<Value> = vec![
        json!({"templateId": tpl, "to": ""}),
        json!({"templateId": tpl, "to": "050755667788", "params": params}),
        json!({"templateId": tpl, "to": "50755667701", "params": params, "clientName": ""}),
        json!({"templateId": tpl, "to": "50755667702", "params": params, "groupName": ""}),
        json!({"templateId": tpl, "to": "50755667703", "params": params, "channelId": ""}),
        json!({"templateId": tpl, "to": "50755667704", "params": params, "callbackUrl": ""}),
        json!({"templateId": tpl, "to": "50755667705", "params": params, "callbackUrl": "ftp://example.com/x"}),
        json!({"templateId": tpl, "templateName": "order_update", "language": "es", "to": "50755667706", "params": params}),
        json!({"templateId": "", "to": "50755667707", "params": params}),
        json!({"templateName": "order_update", "language": "es", "to": "50755667708", "params": params,
               "templateId": null}),
        json!({"templateId": tpl, "to": "50755667709", "params": params, "header": null, "buttons": null,
               "cards": null, "offerExpiresAt": null, "callbackUrl": "https://example.com/status"}),
        json!({"templateId": tpl, "to": "50755667710", "params": null}),
        json!({"templateId": tpl, "to": "50755667711", "params": params, "header": {"type": "AAA"}}),
    ];
    let schema = body_schema(doc, "POST", "/v1/messages");
    for body in &sends {
        let mut answer = request(&t, "POST", "/v1/messages", token, Some(body), None).await;
        if answer.0 == reqwest::StatusCode::UNPROCESSABLE_ENTITY && body["params"].is_null() {
            // Valid for both; the template then misses its params (a 422, not a 400).
            answer.0 = reqwest::StatusCode::ACCEPTED;
        }
        assert_agree(&v, &schema, body, &answer, "POST /v1/messages");
    }
    let preview = json!({"params": null, "header": null});
    let answer = request(
        &t,
        "POST",
        &format!("/v1/templates/{tpl}/preview"),
        token,
        Some(&preview),
        None,
    )
    .await;
    assert_agree(
        &v,
        &body_schema(doc, "POST", "/v1/templates/{id}/preview"),
        &preview,
        &answer,
        "preview",
    );

    // Webhook endpoints: an http(s) URL, each event type once.
    let endpoints = [
        json!({"url": "", "eventTypes": ["message.sent"]}),
        json!({"url": "mailto:ops@example.com", "eventTypes": ["message.sent"]}),
        json!({"url": "https://example.com/hook", "eventTypes": ["message.sent", "message.sent"]}),
        json!({"url": "https://example.com/hook", "eventTypes": ["message.sent", "message.read"]}),
    ];
    for body in &endpoints {
        let answer = request(&t, "POST", "/v1/webhook-endpoints", token, Some(body), None).await;
        assert_agree(
            &v,
            &body_schema(doc, "POST", "/v1/webhook-endpoints"),
            body,
            &answer,
            "POST /v1/webhook-endpoints",
        );
    }

    // The Idempotency-Key: 1 to 255 visible ASCII characters.
    let key_schema = param_schema(doc, "POST", "/v1/messages", "Idempotency-Key");
    for (i, key) in ["has space", "order-7/ok~", &"k".repeat(256)]
        .into_iter()
        .enumerate()
    {
        let body = json!({"templateId": tpl, "to": format!("5075566772{i}"), "params": params});
        let answer = request(&t, "POST", "/v1/messages", token, Some(&body), Some(key)).await;
        assert_agree(&v, &key_schema, &json!(key), &answer, "Idempotency-Key");
    }

    // Pages of the template lists: 1 to 1,000,000 on every family; an empty or padded value is
    // not a number (never the default).
    for path in ["/api/Template", "/templates", "/v1/templates"] {
        for (name, raw) in [
            ("page", "1000000"),
            ("page", "1000001"),
            ("page", ""),
            ("page", "0"),
            ("size", ""),
            ("size", " 5"),
            ("size", "200"),
            ("limit", ""),
            ("limit", "200"),
        ] {
            let Some(schema) = doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .map(|p| p["schema"].clone())
            else {
                continue;
            };
            let q = format!("{path}?{name}={}", raw.replace(' ', "%20"));
            let answer = request(&t, "GET", &q, token, None, None).await;
            assert_agree(&v, &schema, &raw_value(raw), &answer, &q);
        }
    }

    // Cursors: the nextCursor of a page is one; anything else is refused by both.
    let (status, page) = request(&t, "GET", "/v1/messages?limit=1", token, None, None).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let next = page["nextCursor"]
        .as_str()
        .expect("more than one message")
        .to_string();
    for path in ["/v1/messages", "/v1/conversations"] {
        let schema = param_schema(doc, "GET", path, "cursor");
        for cursor in [next.as_str(), "", "zz", "30302e30", "abc"] {
            let q = format!("{path}?cursor={cursor}");
            let answer = request(&t, "GET", &q, token, None, None).await;
            assert_agree(&v, &schema, &json!(cursor), &answer, &q);
        }
    }
}
