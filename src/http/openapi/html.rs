//! The reference page: the OpenAPI document rendered to one self-contained HTML page (inline
//! CSS, no scripts, nothing fetched), grouped by tag, with every operation's parameters, body
//! and responses, and every schema's properties.

use std::fmt::Write;

use serde_json::{Map, Value};

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

const STYLE: &str = "
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#fff}
main{max-width:1040px;margin:0 auto;padding:24px}
nav{background:#f5f6f8;border-bottom:1px solid #dde1e7;padding:16px 24px}
nav ul{columns:2;list-style:none;padding:0;margin:4px 0 12px}
nav h2{font-size:14px;margin:8px 0 0;text-transform:uppercase;color:#555}
a{color:#1755b8;text-decoration:none}a:hover{text-decoration:underline}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;background:#f1f3f6;padding:1px 4px;border-radius:3px}
h1{margin:0 0 4px}h2.tag{border-bottom:2px solid #1d2330;padding-bottom:4px;margin-top:48px}
section.op{border:1px solid #dde1e7;border-radius:6px;margin:20px 0;padding:4px 16px 12px}
section.op h3{font-size:17px;margin:12px 0 4px}
.m{display:inline-block;min-width:56px;text-align:center;color:#fff;border-radius:4px;padding:1px 6px;font:600 13px ui-monospace,monospace;margin-right:8px}
.get{background:#1f7a4d}.post{background:#1755b8}.patch{background:#a35d00}.put{background:#7a3db8}.delete{background:#b8281f}
table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:14px}
th,td{border-bottom:1px solid #e6e9ee;text-align:left;padding:5px 8px;vertical-align:top}
th{background:#f8f9fb;font-weight:600}
td.n{white-space:nowrap}
.s{font-weight:600;font-family:ui-monospace,monospace}
.muted{color:#666}
h4{margin:14px 0 2px;font-size:14px;text-transform:uppercase;color:#555}
section.schema{margin:20px 0}
";

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One line of text with `code` spans.
fn inline(line: &str) -> String {
    let mut out = String::new();
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", esc(part));
        } else {
            out.push_str(&esc(part));
        }
    }
    out
}

/// Text with `code` spans, paragraphs (blank lines) and `- ` list items.
fn prose(text: &str) -> String {
    let mut html = String::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.iter().all(|l| l.starts_with("- ")) {
            html.push_str("<ul>");
            for l in lines {
                let _ = write!(html, "<li>{}</li>", inline(&l[2..]));
            }
            html.push_str("</ul>");
        } else {
            let _ = write!(html, "<p>{}</p>", inline(&lines.join(" ")));
        }
    }
    html
}

fn ref_name(schema: &Value) -> Option<&str> {
    schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
}

fn schema_link(name: &str) -> String {
    format!("<a href=\"#schema-{0}\">{0}</a>", esc(name))
}

fn literal(v: &Value) -> String {
    format!("<code>{}</code>", esc(&v.to_string()))
}

/// A one-line description of a schema's type, with links to named schemas.
fn type_label(schema: &Value) -> String {
    if let Some(name) = ref_name(schema) {
        return schema_link(name);
    }
    if let Some(c) = schema.get("const") {
        return literal(c);
    }
    for (key, word) in [("oneOf", "one of"), ("anyOf", "any of")] {
        if let Some(Value::Array(parts)) = schema.get(key) {
            let parts: Vec<String> = parts.iter().map(type_label).collect();
            if schema.get("type").is_none() && schema.get("properties").is_none() {
                return if parts.len() == 2 && parts[1] == "null" {
                    format!("{} or null", parts[0])
                } else {
                    format!("{word}: {}", parts.join(" | "))
                };
            }
        }
    }
    if let Some(Value::Array(parts)) = schema.get("allOf") {
        // A problem narrowed to some types.
        let base = parts.first().map(type_label).unwrap_or_default();
        let types = parts
            .get(1)
            .and_then(|p| p["properties"]["type"]["enum"].as_array())
            .map(|e| e.iter().map(literal).collect::<Vec<_>>().join(", "));
        return match types {
            Some(types) => format!("{base} with <code>type</code> {types}"),
            None => base,
        };
    }
    let mut label = match schema.get("type") {
        Some(Value::String(t)) => simple_type(t, schema),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(|t| simple_type(t, schema))
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_string(),
    };
    if let Some(Value::Array(values)) = schema.get("enum") {
        let values: Vec<String> = values.iter().map(literal).collect();
        label = format!("{label}: {}", values.join(" | "));
    }
    let bounds: Vec<String> = [
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minItems", "items ≥"),
        ("maxItems", "items ≤"),
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
    ]
    .iter()
    .filter_map(|(k, sym)| schema.get(*k).map(|v| format!("{sym} {v}")))
    .collect();
    if !bounds.is_empty() {
        label = format!("{label} ({})", bounds.join(", "));
    }
    if let Some(default) = schema.get("default") {
        label = format!("{label}, default {}", literal(default));
    }
    label
}

fn simple_type(t: &str, schema: &Value) -> String {
    match t {
        "array" => format!("array of {}", type_label(&schema["items"])),
        "object" => match schema.get("additionalProperties") {
            Some(Value::Bool(_)) | None => "object".to_string(),
            Some(values) => format!("map of string to {}", type_label(values)),
        },
        "string" => match schema["format"].as_str() {
            Some(f) => format!("string ({f})"),
            None => "string".to_string(),
        },
        other => other.to_string(),
    }
}

/// Rows of a property table: nested inline objects as dotted names.
fn property_rows(schema: &Value, prefix: &str, out: &mut String) {
    let Some(props) = schema["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, prop) in props {
        let _ = write!(
            out,
            "<tr><td class=\"n\"><code>{}{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(prefix),
            esc(name),
            type_label(prop),
            if required.contains(&name.as_str()) {
                "yes"
            } else {
                ""
            },
            prose(prop["description"].as_str().unwrap_or_default()),
        );
        if prop.get("properties").is_some() {
            property_rows(prop, &format!("{prefix}{name}."), out);
        }
    }
}

/// A schema: its type line, its properties, its variants.
fn schema_block(schema: &Value) -> String {
    let mut html = String::new();
    if schema.get("properties").is_some() {
        html.push_str(
            "<table><tr><th>field</th><th>type</th><th>required</th><th>meaning</th></tr>",
        );
        property_rows(schema, "", &mut html);
        html.push_str("</table>");
        if schema["additionalProperties"] == Value::Bool(false) {
            html.push_str("<p class=\"muted\">No other fields.</p>");
        }
        if let Some(Value::Array(rules)) = schema.get("anyOf") {
            let rules: Vec<String> = rules
                .iter()
                .map(|r| {
                    let names: Vec<String> = r["required"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(literal)
                        .collect();
                    names.join(" and ")
                })
                .collect();
            let _ = write!(html, "<p>Requires {}.</p>", rules.join(", or "));
        }
    } else if let Some(Value::Array(variants)) = schema.get("oneOf") {
        let inline = variants.iter().any(|v| v.get("properties").is_some());
        if inline {
            html.push_str("<p>One of:</p>");
            for v in variants {
                html.push_str(&schema_block(v));
            }
        } else {
            let _ = write!(html, "<p>{}</p>", type_label(schema));
        }
    } else {
        let _ = write!(html, "<p>{}</p>", type_label(schema));
    }
    html
}

fn operation_anchor(id: &str) -> String {
    format!("op-{}", esc(id))
}

struct OpRef<'a> {
    method: &'a str,
    path: &'a str,
    op: &'a Value,
}

fn operations_of<'a>(doc: &'a Value, tag: &str) -> Vec<OpRef<'a>> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            if let Some(op) = item.get(*method)
                && op["tags"][0] == tag
            {
                ops.push(OpRef { method, path, op });
            }
        }
    }
    ops
}

fn security_line(op: &Value, schemes: &Map<String, Value>) -> String {
    let names: Vec<String> = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|req| req.as_object()?.keys().next().cloned())
        .collect();
    if names.is_empty() {
        return "<p><b>Authentication:</b> none.</p>".to_string();
    }
    let list: Vec<String> = names
        .iter()
        .map(|n| {
            let d = schemes
                .get(n)
                .and_then(|s| s["description"].as_str())
                .unwrap_or_default();
            format!("<code>{}</code> — {}", esc(n), inline(d))
        })
        .collect();
    format!(
        "<p><b>Authentication:</b> <code>Authorization: Bearer …</code> with {}</p>",
        list.join(" or ")
    )
}

fn render_operation(o: &OpRef, schemes: &Map<String, Value>) -> String {
    let op = o.op;
    let id = op["operationId"].as_str().unwrap_or_default();
    let mut html = String::new();
    let _ = write!(
        html,
        "<section class=\"op\" id=\"{}\"><h3><span class=\"m {m}\">{}</span><code>{}</code></h3><p><b>{}</b> <span class=\"muted\">({})</span></p>{}",
        operation_anchor(id),
        o.method.to_ascii_uppercase(),
        esc(o.path),
        esc(op["summary"].as_str().unwrap_or_default()),
        esc(id),
        prose(op["description"].as_str().unwrap_or_default()),
        m = o.method,
    );
    html.push_str(&security_line(op, schemes));
    if let Some(Value::Array(params)) = op.get("parameters") {
        html.push_str("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>required</th><th>meaning</th></tr>");
        for p in params {
            let _ = write!(
                html,
                "<tr><td class=\"n\"><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(p["name"].as_str().unwrap_or_default()),
                esc(p["in"].as_str().unwrap_or_default()),
                type_label(&p["schema"]),
                if p["required"] == Value::Bool(true) {
                    "yes"
                } else {
                    ""
                },
                prose(p["description"].as_str().unwrap_or_default()),
            );
        }
        html.push_str("</table>");
    }
    if let Some(body) = op.get("requestBody") {
        html.push_str("<h4>Request body</h4>");
        for (media, content) in body["content"].as_object().into_iter().flatten() {
            let _ = write!(
                html,
                "<p><code>{}</code>: {} — {}</p>",
                esc(media),
                type_label(&content["schema"]),
                esc(body["description"].as_str().unwrap_or_default())
            );
        }
    }
    html.push_str("<h4>Responses</h4><table><tr><th>status</th><th>body</th><th>meaning</th></tr>");
    for (status, response) in op["responses"].as_object().into_iter().flatten() {
        let bodies: Vec<String> = response["content"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(media, c)| format!("<code>{}</code>: {}", esc(media), type_label(&c["schema"])))
            .collect();
        let _ = write!(
            html,
            "<tr><td class=\"s\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(status),
            if bodies.is_empty() {
                "<span class=\"muted\">empty</span>".to_string()
            } else {
                bodies.join("<br>")
            },
            prose(response["description"].as_str().unwrap_or_default()),
        );
    }
    html.push_str("</table></section>");
    html
}

/// The page.
pub(super) fn render(doc: &Value) -> String {
    let info = &doc["info"];
    let title = info["title"].as_str().unwrap_or("API");
    let version = info["version"].as_str().unwrap_or_default();
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let tags: Vec<(&str, &str)> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default(),
                t["description"].as_str().unwrap_or_default(),
            )
        })
        .collect();

    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t} {v} — API reference</title><style>{STYLE}</style></head><body>",
        t = esc(title),
        v = esc(version),
    );
    // Table of contents.
    let _ = write!(
        html,
        "<nav><h1>{} <span class=\"muted\">{}</span></h1><p>API reference, from <a href=\"/openapi.json\">openapi.json</a> (OpenAPI {}).</p>",
        esc(title),
        esc(version),
        esc(doc["openapi"].as_str().unwrap_or_default()),
    );
    for (tag, _) in &tags {
        let _ = write!(html, "<h2>{}</h2><ul>", esc(tag));
        for o in operations_of(doc, tag) {
            let _ = write!(
                html,
                "<li><a href=\"#{}\"><span class=\"m {m}\">{}</span>{}</a></li>",
                operation_anchor(o.op["operationId"].as_str().unwrap_or_default()),
                o.method.to_ascii_uppercase(),
                esc(o.path),
                m = o.method,
            );
        }
        html.push_str("</ul>");
    }
    html.push_str("<h2><a href=\"#schemas\">Schemas</a></h2></nav><main>");
    html.push_str(&prose(info["description"].as_str().unwrap_or_default()));
    for (tag, description) in &tags {
        let _ = write!(
            html,
            "<h2 class=\"tag\">{}</h2>{}",
            esc(tag),
            prose(description)
        );
        for o in operations_of(doc, tag) {
            html.push_str(&render_operation(&o, &schemes));
        }
    }
    html.push_str("<h2 class=\"tag\" id=\"schemas\">Schemas</h2>");
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let _ = write!(
            html,
            "<section class=\"schema\" id=\"schema-{n}\"><h3>{n}</h3>{}{}</section>",
            prose(schema["description"].as_str().unwrap_or_default()),
            schema_block(schema),
            n = esc(name),
        );
    }
    html.push_str("</main></body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_is_escaped_and_code_marked() {
        assert_eq!(
            prose("a <b> & `x<y>`"),
            "<p>a &lt;b&gt; &amp; <code>x&lt;y&gt;</code></p>"
        );
        assert_eq!(
            prose("- one\n- `two`"),
            "<ul><li>one</li><li><code>two</code></li></ul>"
        );
    }

    #[test]
    fn types_read_like_prose() {
        assert_eq!(
            type_label(&json!({"type": ["string", "null"]})),
            "string or null"
        );
        assert_eq!(
            type_label(&json!({"type": "array", "items": {"$ref": "#/components/schemas/X"}})),
            "array of <a href=\"#schema-X\">X</a>"
        );
        assert_eq!(
            type_label(&json!({"anyOf": [{"$ref": "#/components/schemas/X"}, {"type": "null"}]})),
            "<a href=\"#schema-X\">X</a> or null"
        );
    }

    #[test]
    fn the_page_lists_every_operation_and_schema() {
        let doc = super::super::document();
        let page = super::super::docs_html();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap();
                assert!(page.contains(&format!("id=\"op-{id}\"")), "{id}");
            }
        }
        for name in doc["components"]["schemas"].as_object().unwrap().keys() {
            assert!(page.contains(&format!("id=\"schema-{name}\"")), "{name}");
        }
        assert!(!page.contains("<script"), "no scripts");
        for fetch in [" src=", "<link", "@import", "url("] {
            assert!(!page.contains(fetch), "the page fetches nothing: {fetch}");
        }
    }
}
