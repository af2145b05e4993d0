// Errors at the HTTP edge in each API's shape (issue 16, items 4 and 6): a path id whose
// percent-decoding is not UTF-8, a request head over `max_header_bytes` (431), and bodies of
// the native and admin APIs that are not JSON (415; multipart for media uploads), while the
// compatible API stays lenient about the Content-Type.

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Answer {
    status: StatusCode,
    content_type: String,
    text: String,
    json: Value,
}

async fn request(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut req = app
        .client
        .request(method.parse().unwrap(), format!("{}{path}", app.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req.body(body.to_string());
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    Answer {
        status,
        content_type,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

const ADMIN: (&str, &str) = ("Authorization", "Bearer test-admin-token-0123456789");

#[tokio::test]
async fn a_path_id_that_is_not_utf8_is_answered_in_each_api_shape() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let bearer = format!("Bearer {}", seed.token);
    let token = [("Authorization", bearer.as_str())];
    assert_eq!(
        ADMIN.1,
        format!("Bearer {ADMIN_TOKEN}"),
        "the admin header is the tests' token"
    );

    // Native and admin APIs: a validation problem naming the parameter, with or without a token.
    for (path, headers) in [
        ("/v1/messages/%ff", &token[..]),
        ("/v1/messages/%FF%fe", &[][..]),
        ("/v1/conversations/ok%c3", &token[..]),
        ("/v1/templates/%ff/preview", &token[..]),
        ("/v1/admin/messages/%ff", &[ADMIN][..]),
        ("/v1/admin/channels/%ff", &[ADMIN][..]),
    ] {
        let method = if path.ends_with("/preview") {
            "POST"
        } else {
            "GET"
        };
        let a = request(&app, method, path, headers, None).await;
        assert_eq!(a.status, 400, "{path}: {}", a.text);
        assert_eq!(a.content_type, "application/problem+json", "{path}");
        assert_eq!(a.json["type"], "/problems/validation", "{path}: {}", a.text);
        assert_eq!(a.json["status"], 400);
        assert_eq!(a.json["errors"][0]["field"], "id", "{path}: {}", a.text);
        assert!(
            a.json["detail"]
                .as_str()
                .unwrap()
                .contains("percent-encoded UTF-8"),
            "{}",
            a.text
        );
    }
    // A valid escape is only an id: not found, as before.
    let a = request(&app, "GET", "/v1/messages/msg_%41", &token, None).await;
    assert_eq!(a.status, 404, "{}", a.text);
    assert_eq!(a.json["type"], "/problems/not-found");

    // The old compatible family: its bare `{context, message, path, type}` body.
    let a = request(&app, "GET", "/api/Template/%ff", &token, None).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(
        a.content_type.starts_with("application/json"),
        "{}",
        a.content_type
    );
    assert_eq!(
        a.json,
        json!({
            "context": {"key": "Params", "label": "params.templateId", "value": "%ff"},
            "message": "templateId is not valid percent-encoded UTF-8",
            "path": ["params.templateId"],
            "type": "Bad format",
        })
    );
    // The new family: the `{code, body}` envelope.
    let a = request(&app, "GET", "/templates/%ff", &[], None).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.content_type.starts_with("application/json"));
    assert_eq!(a.json["code"], 400);
    assert_eq!(a.json["body"]["path"], json!(["params.templateId"]));
    assert_eq!(a.json["body"]["type"], "Bad format");
    // Meta's webhooks answer plain text, as all their errors.
    let a = request(&app, "POST", "/webhooks/whatsapp/%ff", &[], Some("{}")).await;
    assert_eq!(a.status, 400);
    assert!(
        a.content_type.starts_with("text/plain"),
        "{}",
        a.content_type
    );
    assert_eq!(a.text, "channelId is not valid percent-encoded UTF-8");
    let a = request(&app, "GET", "/webhooks/whatsapp/%ff", &[], None).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.text, "channelId is not valid percent-encoded UTF-8");
}

#[tokio::test]
async fn a_request_head_over_the_limit_gets_431_in_each_api_shape() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let bearer = format!("Bearer {}", seed.token);
    // 1 MB in one header, and 1 MB over 200 headers.
    let one = "a".repeat(1024 * 1024);
    let piece = "b".repeat(5 * 1024);
    let names: Vec<String> = (0..200).map(|i| format!("x-many-{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), piece.as_str())).collect();
    for headers in [vec![("x-big", one.as_str())], many] {
        let mut with_token = headers.clone();
        with_token.push(("Authorization", bearer.as_str()));

        let a = request(&app, "GET", "/v1/messages", &with_token, None).await;
        assert_eq!(a.status, 431, "{}", a.text);
        assert_eq!(a.content_type, "application/problem+json");
        assert_eq!(a.json["type"], "/problems/request-header-fields-too-large");
        assert_eq!(a.json["status"], 431);
        assert!(
            a.json["detail"].as_str().unwrap().contains("65536"),
            "{}",
            a.text
        );

        let a = request(&app, "POST", "/v1/admin/accounts", &headers, Some("{}")).await;
        assert_eq!(a.status, 431, "{}", a.text);
        assert_eq!(a.json["type"], "/problems/request-header-fields-too-large");

        let a = request(&app, "GET", "/api/Template", &with_token, None).await;
        assert_eq!(a.status, 431, "{}", a.text);
        assert!(a.content_type.starts_with("application/json"));
        assert_eq!(a.json["type"], "Request Header Fields Too Large");
        assert_eq!(a.json["path"], json!(["headers"]));
        assert!(a.json.get("code").is_none(), "{}", a.text);

        let a = request(&app, "POST", "/templates", &with_token, Some("{}")).await;
        assert_eq!(a.status, 431, "{}", a.text);
        assert_eq!(a.json["code"], 431);
        assert_eq!(a.json["body"]["type"], "Request Header Fields Too Large");

        let a = request(&app, "POST", "/webhooks/whatsapp", &headers, Some("{}")).await;
        assert_eq!(a.status, 431);
        assert!(a.content_type.starts_with("text/plain"));
        assert!(a.text.contains("65536"), "{}", a.text);

        let a = request(&app, "GET", "/healthz", &headers, None).await;
        assert_eq!(a.status, 431);
        assert_eq!(a.json["code"], 431, "{}", a.text);
    }
    // A head just under the limit is served.
    let fits = "c".repeat(60 * 1024);
    let a = request(&app, "GET", "/healthz", &[("x-fits", fits.as_str())], None).await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn native_and_admin_bodies_must_be_json_and_the_compatible_api_is_lenient() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let bearer = format!("Bearer {}", seed.token);
    let send = json!({"to": "50755660001", "templateId": seed.template_id,
                      "params": {"name": "Ana", "order": "A-1"}})
    .to_string();

    // Refused: 415 naming the given type (null when there is none), before anything is sent.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/xml"),
        Some("application/json; charset=utf-16"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let mut headers = vec![("Authorization", bearer.as_str())];
        if let Some(ct) = content_type {
            headers.push(("Content-Type", ct));
        }
        let a = request(&app, "POST", "/v1/messages", &headers, Some(&send)).await;
        assert_eq!(a.status, 415, "{content_type:?}: {}", a.text);
        assert_eq!(a.content_type, "application/problem+json");
        assert_eq!(a.json["type"], "/problems/unsupported-media-type");
        assert_eq!(a.json["contentType"], json!(content_type));
        assert_eq!(a.json["accepted"], json!(["application/json"]));
    }
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM messages").await,
        0,
        "a refused send was stored"
    );
    // Admin creates and updates too.
    let a = request(
        &app,
        "POST",
        "/v1/admin/accounts",
        &[ADMIN, ("Content-Type", "text/plain")],
        Some(r#"{"name":"Acme"}"#),
    )
    .await;
    assert_eq!(a.status, 415, "{}", a.text);
    assert_eq!(a.json["contentType"], "text/plain");
    let a = request(
        &app,
        "PATCH",
        &format!("/v1/admin/channels/{}", seed.channel_id),
        &[ADMIN],
        Some(r#"{"name":"Renamed"}"#),
    )
    .await;
    assert_eq!(a.status, 415, "{}", a.text);
    assert_eq!(a.json["contentType"], Value::Null);
    // Media uploads take multipart/form-data only.
    let a = request(
        &app,
        "POST",
        "/v1/media",
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ],
        Some(r#"{"file":"x"}"#),
    )
    .await;
    assert_eq!(a.status, 415, "{}", a.text);
    assert_eq!(a.json["accepted"], json!(["multipart/form-data"]));

    // Accepted: JSON in any case, UTF-8 charset, `+json` types; body-less POSTs need no type.
    for (i, content_type) in [
        "application/json",
        "Application/JSON; Charset=\"UTF-8\"",
        "application/vnd.plantilla+json",
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"to": format!("5075566010{i}"), "templateId": seed.template_id,
                          "params": {"name": "Ana", "order": "A-1"}})
        .to_string();
        let a = request(
            &app,
            "POST",
            "/v1/messages",
            &[
                ("Authorization", bearer.as_str()),
                ("Content-Type", content_type),
            ],
            Some(&body),
        )
        .await;
        assert_eq!(a.status, 202, "{content_type}: {}", a.text);
    }
    let a = request(
        &app,
        "POST",
        &format!("/v1/admin/channels/{}/rotate-token", seed.channel_id),
        &[ADMIN],
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let bearer = format!("Bearer {}", s(&a.json["publicToken"]));

    // The compatible API takes the body whatever its Content-Type says, or without one.
    for (i, content_type) in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ]
    .into_iter()
    .enumerate()
    {
        for path in ["/api/Template/SendMessage", "/templates"] {
            let mut headers = vec![("Authorization", bearer.as_str())];
            if let Some(ct) = content_type {
                headers.push(("Content-Type", ct));
            }
            let phone = format!("507556620{i}{}", path.len() % 10);
            let body = send_body(&seed, &phone).to_string();
            let a = request(&app, "POST", path, &headers, Some(&body)).await;
            assert_eq!(a.status, 200, "{path} {content_type:?}: {}", a.text);
            assert_eq!(a.json["success"], true, "{}", a.text);
        }
    }
}
