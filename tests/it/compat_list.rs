// The template API's list and detail, both families; case-insensitive paths.

use crate::common;

use std::collections::BTreeSet;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const JSON_UTF8: &str = "application/json; charset=utf-8";

/// `(list path, detail path prefix)` of each family.
const FAMILIES: [(&str, &str); 2] = [
    ("/api/Template", "/api/Template/"),
    ("/templates", "/templates/"),
];

fn envelope(code: u16, context: Value, message: &str, path: Value, kind: &str) -> Value {
    json!({"code": code, "body": {"context": context, "message": message, "path": path, "type": kind}})
}

fn assert_reply(r: &Reply, status: StatusCode, body: &Value) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.content_type, JSON_UTF8, "{}", r.text);
    assert_eq!(&r.json, body, "{}", r.text);
}

async fn get(t: &TestApp, path: &str, token: &str) -> Reply {
    t.call("GET", path, Some(token), None).await
}

/// Lists with `query` and asserts the page's envelope; returns the page's templates.
async fn list(
    t: &TestApp,
    path: &str,
    token: &str,
    query: &str,
    page: u64,
    size: u64,
    total: u64,
) -> Vec<Value> {
    let r = get(t, &format!("{path}{query}"), token).await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text);
    assert_eq!(r.content_type, JSON_UTF8);
    let data = r.json["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        r.json,
        json!({"success": true, "data": data, "page": page, "size": size, "total": total}),
        "{query}"
    );
    data
}

fn ids(templates: &[Value]) -> Vec<String> {
    templates.iter().map(|t| s(&t["id"])).collect()
}

fn names(templates: &[Value]) -> BTreeSet<String> {
    templates.iter().map(|t| s(&t["name"])).collect()
}

async fn create_template(t: &TestApp, account_id: &str, mut body: Value) -> Value {
    body["accountId"] = json!(account_id);
    t.create("/v1/admin/templates", body).await
}

/// A template with a text header, a body and two buttons (one URL with a placeholder).
fn rich_template() -> Value {
    json!({
        "name": "shipping_notice",
        "language": "es_MX",
        "category": "UTILITY",
        "status": "APPROVED",
        "appId": "1234567890",
        "header": {"format": "TEXT", "text": "Pedido {{order}}"},
        "message": "Hola {{name}}, tu pedido {{order}} llega el {{date}}",
        "footer": "Gracias por tu compra",
        "buttons": [
            {"type": "QUICK_REPLY", "text": "Gracias"},
            {"type": "URL", "text": "Seguir envío", "url": "https://example.com/track/{{tracking}}"}
        ]
    })
}

both_databases!(a_template_has_every_documented_field_and_its_params_in_order);
async fn a_template_has_every_documented_field_and_its_params_in_order() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let created = create_template(&t, &seed.account_id, rich_template()).await;
    let id = s(&created["id"]);
    let created_at = s(&created["createdAt"]);
    let updated_at = s(&created["updatedAt"]);
    assert!(
        chrono::DateTime::parse_from_rfc3339(&created_at).is_ok(),
        "{created_at}"
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(&updated_at).is_ok(),
        "{updated_at}"
    );
    let expected = json!({
        "id": id,
        "name": "shipping_notice",
        "language": "es_MX",
        "category": "UTILITY",
        "status": "APPROVED",
        "appId": "1234567890",
        "message": "Hola {{name}}, tu pedido {{order}} llega el {{date}}",
        // Header, then body, then URL buttons; each name once.
        "params": ["order", "name", "date", "tracking"],
        "header": {"format": "TEXT", "text": "Pedido {{order}}"},
        "footer": "Gracias por tu compra",
        "buttons": [
            {"type": "QUICK_REPLY", "text": "Gracias"},
            {"type": "URL", "text": "Seguir envío", "url": "https://example.com/track/{{tracking}}"}
        ],
        "groupName": null,
        "active": true,
        "sendable": true,
        "unsendableReason": null,
        "createdAt": created_at,
        "updatedAt": updated_at,
    });
    assert_eq!(created, expected);

    for (list_path, detail_prefix) in FAMILIES {
        let r = get(&t, &format!("{detail_prefix}{id}"), &seed.token).await;
        assert_reply(
            &r,
            StatusCode::OK,
            &json!({"success": true, "data": expected}),
        );

        let data = list(&t, list_path, &seed.token, "?name=shipping", 1, 50, 1).await;
        assert_eq!(data, vec![expected.clone()]);
    }

    // The seeded template: named body placeholders only, no header, footer or buttons.
    for (list_path, _) in FAMILIES {
        let data = list(&t, list_path, &seed.token, "?name=order_update", 1, 50, 1).await;
        let tpl = &data[0];
        assert_eq!(tpl["id"], seed.template_id.as_str());
        assert_eq!(tpl["params"], json!(["name", "order"]));
        assert_eq!(tpl["header"], Value::Null);
        assert_eq!(tpl["footer"], Value::Null);
        assert_eq!(tpl["buttons"], json!([]));
        let keys: BTreeSet<&str> = tpl
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let documented: BTreeSet<&str> = [
            "id",
            "name",
            "language",
            "category",
            "status",
            "appId",
            "message",
            "params",
            "header",
            "footer",
            "buttons",
            "groupName",
            "active",
            "createdAt",
            "updatedAt",
        ]
        .into();
        assert!(
            keys.is_superset(&documented),
            "missing {:?}",
            documented.difference(&keys)
        );
    }
}

both_databases!(positional_params_are_listed_by_appearance);
async fn positional_params_are_listed_by_appearance() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let created = create_template(
        &t,
        &seed.account_id,
        json!({"name": "positional", "language": "en_US", "status": "APPROVED", "appId": "9",
               "header": "Order {{3}}", "message": "Hi {{1}}, your order {{2}} ships {{1}}",
               "buttons": [{"type": "URL", "text": "Track", "url": "https://x.example/t/{{4}}"}]}),
    )
    .await;
    assert_eq!(created["params"], json!(["3", "1", "2", "4"]));
    let r = get(
        &t,
        &format!("/templates/{}", s(&created["id"])),
        &seed.token,
    )
    .await;
    assert_eq!(r.json["data"]["params"], json!(["3", "1", "2", "4"]));
}

both_databases!(lists_page_through_the_accounts_templates_only);
async fn lists_page_through_the_accounts_templates_only() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let other = t.seed().await;
    let mut all = vec![seed.template_id.clone()];
    for i in 0..4 {
        let v = create_template(
            &t,
            &seed.account_id,
            json!({"name": format!("promo_{i}"), "language": "es", "status": "APPROVED",
                   "appId": format!("app_{i}"), "message": "Hola"}),
        )
        .await;
        all.push(s(&v["id"]));
    }
    create_template(
        &t,
        &other.account_id,
        json!({"name": "promo_other", "language": "es", "message": "Hola", "appId": "x"}),
    )
    .await;
    let all_set: BTreeSet<String> = all.iter().cloned().collect();

    for (path, _) in FAMILIES {
        // Defaults: page 1, size 50.
        let data = list(&t, path, &seed.token, "", 1, 50, 5).await;
        assert_eq!(ids(&data).into_iter().collect::<BTreeSet<_>>(), all_set);
        assert!(!names(&data).contains("promo_other"));

        // Pages of 2: 2 + 2 + 1, no repeats, then an empty page.
        let mut seen = Vec::new();
        for (page, len) in [(1, 2), (2, 2), (3, 1), (4, 0)] {
            let data = list(
                &t,
                path,
                &seed.token,
                &format!("?page={page}&size=2"),
                page,
                2,
                5,
            )
            .await;
            assert_eq!(data.len(), len, "page {page}");
            seen.extend(ids(&data));
        }
        assert_eq!(seen.len(), 5);
        assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all_set);

        // The largest page allowed.
        assert_eq!(
            list(&t, path, &seed.token, "?size=200", 1, 200, 5)
                .await
                .len(),
            5
        );
    }

    // The other account sees only its own two.
    let data = list(&t, "/templates", &other.token, "", 1, 50, 2).await;
    assert_eq!(
        names(&data),
        ["order_update", "promo_other"].map(String::from).into()
    );
    assert!(ids(&data).iter().all(|id| !all_set.contains(id)));
}

both_databases!(bad_page_or_size_is_400_naming_the_query_field);
async fn bad_page_or_size_is_400_naming_the_query_field() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let cases = [
        ("size", "201"),
        ("size", "1000"),
        ("size", "0"),
        ("size", "ten"),
        ("page", "0"),
        ("page", "abc"),
        ("page", "-1"),
    ];
    for (path, _) in FAMILIES {
        for (field, value) in cases {
            let r = get(&t, &format!("{path}?{field}={value}"), &seed.token).await;
            let label = format!("query.{field}");
            let message = r.json["body"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert_reply(
                &r,
                StatusCode::BAD_REQUEST,
                &envelope(
                    400,
                    json!({"key": "Query", "label": label, "value": value}),
                    &message,
                    json!([label]),
                    "Bad format",
                ),
            );
            assert!(message.contains(field), "{message}");
        }
    }
}

both_databases!(empty_or_padded_page_and_size_are_400_and_page_stops_at_a_million);
/// `page` and `size` are integers, as openapi.json says: an empty or padded value is a 400
/// like any other non-number (it used to be taken as the default), an absent one the default,
/// and `page` goes up to 1,000,000, the bound the document states and `/v1/templates` shares.
async fn empty_or_padded_page_and_size_are_400_and_page_stops_at_a_million() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let doc = plantilla::http::openapi::document();
    for (path, _) in FAMILIES {
        for (field, value) in [
            ("size", ""),
            ("page", ""),
            ("size", "%205"),
            ("page", "1%20"),
            ("page", "1000001"),
            ("size", "+5"),
        ] {
            let r = get(&t, &format!("{path}?{field}={value}"), &seed.token).await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{path}?{field}={value}: {}",
                r.text
            );
            assert_eq!(
                r.json["body"]["path"],
                json!([format!("query.{field}")]),
                "{}",
                r.text
            );
        }
        // Absent: the defaults. The largest page: an empty one, not a 400.
        list(&t, path, &seed.token, "", 1, 50, 1).await;
        let r = get(&t, &format!("{path}?page=1000000&size=200"), &seed.token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["page"], 1_000_000);
        assert_eq!(r.json["data"], json!([]));
        // The document says the same bounds.
        let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        let page = params.iter().find(|p| p["name"] == "page").unwrap();
        assert_eq!(page["schema"]["type"], "integer");
        assert_eq!(page["schema"]["maximum"], 1_000_000);
        assert_eq!(page["schema"]["minimum"], 1);
    }
}

both_databases!(lists_filter_by_status_ignoring_case_and_by_name_substring);
async fn lists_filter_by_status_ignoring_case_and_by_name_substring() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    for (name, status) in [
        ("order_paused", "PAUSED"),
        ("welcome_paused", "PAUSED"),
        ("welcome_back", "APPROVED"),
        ("old_rejected", "REJECTED"),
    ] {
        create_template(
            &t,
            &seed.account_id,
            json!({"name": name, "language": "es", "status": status, "appId": "a",
                   "message": "Hola"}),
        )
        .await;
    }
    for (path, _) in FAMILIES {
        for status in ["PAUSED", "paused", "Paused"] {
            let data = list(
                &t,
                path,
                &seed.token,
                &format!("?status={status}"),
                1,
                50,
                2,
            )
            .await;
            assert_eq!(
                names(&data),
                ["order_paused", "welcome_paused"].map(String::from).into()
            );
            assert!(data.iter().all(|t| t["status"] == "PAUSED"));
        }
        let data = list(&t, path, &seed.token, "?status=approved", 1, 50, 2).await;
        assert_eq!(
            names(&data),
            ["order_update", "welcome_back"].map(String::from).into()
        );

        let data = list(&t, path, &seed.token, "?name=welcome", 1, 50, 2).await;
        assert_eq!(
            names(&data),
            ["welcome_back", "welcome_paused"].map(String::from).into()
        );
        let data = list(&t, path, &seed.token, "?name=order", 1, 50, 2).await;
        assert_eq!(
            names(&data),
            ["order_paused", "order_update"].map(String::from).into()
        );
        let data = list(&t, path, &seed.token, "?name=paus&status=paused", 1, 50, 2).await;
        assert_eq!(data.len(), 2);
        let data = list(
            &t,
            path,
            &seed.token,
            "?name=order&status=approved",
            1,
            50,
            1,
        )
        .await;
        assert_eq!(names(&data), ["order_update"].map(String::from).into());
        list(&t, path, &seed.token, "?name=nothing_like_this", 1, 50, 0).await;
        list(&t, path, &seed.token, "?status=DISABLED", 1, 50, 0).await;
    }
}

both_databases!(detail_of_another_accounts_or_an_unknown_template_is_404);
async fn detail_of_another_accounts_or_an_unknown_template_is_404() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let other = t.seed().await;
    for (_, prefix) in FAMILIES {
        for id in [
            other.template_id.as_str(),
            "tpl_0000000000000000000000000000dead",
        ] {
            let r = get(&t, &format!("{prefix}{id}"), &seed.token).await;
            assert_reply(
                &r,
                StatusCode::NOT_FOUND,
                &envelope(
                    404,
                    json!({"key": "Params", "label": "params.templateId", "value": id}),
                    "Template not found",
                    json!(["params.templateId"]),
                    "Not found",
                ),
            );
        }
        // Its own account sees it.
        let r = get(&t, &format!("{prefix}{}", other.template_id), &other.token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["data"]["id"], other.template_id.as_str());
    }
}

both_databases!(paths_match_ignoring_case_and_a_trailing_slash);
async fn paths_match_ignoring_case_and_a_trailing_slash() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let id = &seed.template_id;
    for path in [
        "/API/TEMPLATE",
        "/api/template",
        "/Api/Template/",
        "/Templates",
        "/TEMPLATES/",
        "/templates/",
    ] {
        let data = list(&t, path, &seed.token, "", 1, 50, 1).await;
        assert_eq!(ids(&data), vec![id.clone()], "{path}");
    }
    for path in [
        format!("/API/TEMPLATE/{id}"),
        format!("/api/template/{id}/"),
        format!("/Templates/{id}"),
        format!("/TEMPLATES/{id}/"),
    ] {
        let r = get(&t, &path, &seed.token).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(r.json["data"]["id"], id.as_str(), "{path}");
    }
    for (path, phone) in [
        ("/api/template/SENDMESSAGE", "50755667701"),
        ("/API/Template/sendMessage/", "50755667702"),
        ("/Templates", "50755667703"),
        ("/TEMPLATES/", "50755667704"),
    ] {
        let body = send_body(&seed, phone).to_string();
        let r = t.call("POST", path, Some(&seed.token), Some(&body)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(r.json["message"], "Pending", "{path}");
    }
}

both_databases!(list_and_detail_need_a_known_token);
async fn list_and_detail_need_a_known_token() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let unknown = json!({
        "context": {"key": "Authorization", "label": "headers.authorization", "value": "Bearer"},
        "message": "Cannot find a channel associated with the public token Bearer",
        "path": ["headers.authorization"],
        "type": "Bad format"
    });
    let no_token_new = json!({"code": 401, "body": {
        "context": {"key": "Authorization", "label": "headers.authorization"},
        "message": "No authorization token found",
        "path": ["headers.authorization"],
        "type": "Unauthorized"}});
    let wrong = "pk_not_a_real_token_0123456789";
    for (i, (list_path, prefix)) in FAMILIES.into_iter().enumerate() {
        let old = i == 0;
        for path in [
            list_path.to_string(),
            format!("{prefix}{}", seed.template_id),
        ] {
            // Row 1: no Authorization header.
            let r = t.call("GET", &path, None, None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
            if old {
                assert_eq!(r.text, "No authorization token found.");
                assert!(
                    r.content_type.starts_with("text/plain"),
                    "{}",
                    r.content_type
                );
            } else {
                assert_reply(&r, StatusCode::UNAUTHORIZED, &no_token_new);
            }
            // Row 2: unknown token.
            let r = get(&t, &path, wrong).await;
            let expected = if old {
                unknown.clone()
            } else {
                json!({"code": 400, "body": unknown})
            };
            assert_reply(&r, StatusCode::BAD_REQUEST, &expected);
            assert!(!r.text.contains(wrong));
        }
    }
}
