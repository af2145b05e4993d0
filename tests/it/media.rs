// Media uploads (`POST /v1/media`) over real HTTP: sandbox channels simulate an id, cloud
// channels upload to the fake Graph API; WhatsApp's types and sizes are refused before
// anything reaches it; authentication and channel choice like the rest of the native API.

use crate::common;

use common::*;
use fake_graph::{DEFAULT_WABA_ID, FakeGraph, FakeGraphConfig};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const PN: &str = "106540352242922";
const TOKEN: &str = "EAAG-media-token";

struct Reply {
    status: StatusCode,
    content_type: String,
    json: Value,
}

async fn post_media(t: &TestApp, query: &str, token: Option<&str>, form: Form) -> Reply {
    let mut req = t
        .client
        .post(format!("{}/v1/media{query}", t.base))
        .multipart(form);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    Reply {
        status,
        content_type,
        json: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

fn file(bytes: Vec<u8>, mime: &str, name: &str) -> Form {
    Form::new().part(
        "file",
        Part::bytes(bytes)
            .file_name(name.to_string())
            .mime_str(mime)
            .unwrap(),
    )
}

fn pdf(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.resize(len, b'x');
    bytes
}

/// A WebP header (`VP8X`) with the animation flag on or off, padded to `len` bytes.
fn webp(len: usize, animated: bool) -> Vec<u8> {
    let mut bytes = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0".to_vec();
    bytes.push(if animated { 0x02 } else { 0x00 });
    bytes.resize(len, 0);
    bytes
}

fn assert_problem(r: &Reply, status: StatusCode, slug: &str) {
    assert_eq!(r.status, status, "{}", r.json);
    assert_eq!(r.content_type, "application/problem+json", "{}", r.json);
    assert_eq!(r.json["type"], format!("/problems/{slug}"), "{}", r.json);
    assert_eq!(r.json["status"], status.as_u16(), "{}", r.json);
}

fn assert_field(r: &Reply, field: &str) {
    assert_problem(r, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(r.json["errors"][0]["field"], field, "{}", r.json);
}

async fn api_key(t: &TestApp, account_id: &str) -> String {
    let key = t
        .create(
            &format!("/v1/admin/accounts/{account_id}/api-keys"),
            json!({"name": "crm"}),
        )
        .await;
    s(&key["key"])
}

struct Cloud {
    t: TestApp,
    fake: FakeGraph,
    account_id: String,
    channel_id: String,
    token: String,
}

async fn spawn_cloud() -> Cloud {
    spawn_cloud_with(|_| {}).await
}

async fn spawn_cloud_with(adjust: impl FnOnce(&mut plantilla::config::Config)) -> Cloud {
    let fake = FakeGraph::start(FakeGraphConfig::default().with_phone(PN, TOKEN)).await;
    let base = fake.base_url().to_string();
    let t = spawn_app_with(|c| {
        c.graph_base_url = base;
        adjust(c);
    })
    .await;
    let account = t
        .create(
            "/v1/admin/accounts",
            json!({"name": "Acme", "conversationLimit": 1000}),
        )
        .await;
    let channel = cloud_channel(&t, &account["id"], PN, TOKEN).await;
    Cloud {
        account_id: s(&account["id"]),
        channel_id: s(&channel["id"]),
        token: s(&channel["publicToken"]),
        t,
        fake,
    }
}

async fn cloud_channel(t: &TestApp, account_id: &Value, pn: &str, token: &str) -> Value {
    t.create(
        "/v1/admin/channels",
        json!({"accountId": account_id, "name": "Main", "provider": "cloud",
               "phoneNumberId": pn, "wabaId": DEFAULT_WABA_ID, "accessToken": token,
               "appSecret": "channel-secret", "verifyToken": "channel-verify",
               "messagesPerSecond": 1000}),
    )
    .await
}

both_databases!(a_sandbox_channel_accepts_an_upload_and_simulates_an_id);
async fn a_sandbox_channel_accepts_an_upload_and_simulates_an_id() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let r = post_media(
        &t,
        "",
        Some(&seed.token),
        file(pdf(2048), "application/pdf", "invoice.pdf"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert!(
        r.content_type.starts_with("application/json"),
        "{}",
        r.content_type
    );
    let id = s(&r.json["id"]);
    assert!(id.starts_with("sandbox-media-"), "{id}");
    assert_eq!(r.json["mimeType"], "application/pdf");
    assert_eq!(r.json["size"], 2048);
    assert_eq!(r.json["channelId"], seed.channel_id.as_str());
    // Each upload is a new id.
    let again = post_media(
        &t,
        "",
        Some(&seed.token),
        file(pdf(10), "application/pdf", "invoice.pdf"),
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.json);
    assert_ne!(again.json["id"], r.json["id"]);
}

both_databases!(the_route_takes_files_above_the_global_body_limit_up_to_its_own);
async fn the_route_takes_files_above_the_global_body_limit_up_to_its_own() {
    let t = spawn_app_with(|c| {
        c.max_body_bytes = 64 * 1024;
        c.max_media_bytes = 1024 * 1024;
    })
    .await;
    let seed = t.seed().await;
    // 300 KB: above the global limit, within the media route's.
    let r = post_media(
        &t,
        "",
        Some(&seed.token),
        file(pdf(300 * 1024), "application/pdf", "big.pdf"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["size"], 300 * 1024);
    // Above PLANTILLA_MAX_MEDIA_BYTES: the guard refuses it before the handler.
    let r = post_media(
        &t,
        "",
        Some(&seed.token),
        file(pdf(1024 * 1024 + 1), "application/pdf", "huge.pdf"),
    )
    .await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
    // Other routes keep the global limit.
    let big = json!({"to": "5215550001111", "templateId": seed.template_id,
                     "params": {"name": "x".repeat(70 * 1024), "order": "1"}});
    let res = t
        .call(
            "POST",
            "/v1/messages",
            Some(&seed.token),
            Some(&big.to_string()),
        )
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.text);
}

both_databases!(a_cloud_upload_reaches_the_graph_api_with_meta_s_fields);
async fn a_cloud_upload_reaches_the_graph_api_with_meta_s_fields() {
    let c = spawn_cloud().await;
    let png = {
        let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
        b.resize(4096, 7);
        b
    };
    let r = post_media(
        &c.t,
        "",
        Some(&c.token),
        file(png.clone(), "image/png", "logo.png"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let uploads = c.fake.media_uploads();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let u = &uploads[0];
    assert_eq!(u.phone_number_id, PN);
    assert_eq!(
        u.authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(u.messaging_product.as_deref(), Some("whatsapp"));
    assert_eq!(u.mime_type.as_deref(), Some("image/png"));
    assert_eq!(u.file_content_type.as_deref(), Some("image/png"));
    assert_eq!(u.filename.as_deref(), Some("logo.png"));
    assert_eq!(u.size, 4096);
    assert_eq!(u.bytes, png);
    assert_eq!(u.error_code, None);
    // The id plantilla answers is the Graph API's.
    assert_eq!(r.json["id"].as_str(), u.id.as_deref());
    assert_eq!(r.json["mimeType"], "image/png");
    assert_eq!(r.json["size"], 4096);
    assert_eq!(r.json["channelId"], c.channel_id.as_str());
}

both_databases!(types_come_from_the_part_or_from_the_file_name_and_names_are_cleaned);
async fn types_come_from_the_part_or_from_the_file_name_and_names_are_cleaned() {
    let c = spawn_cloud().await;
    // application/octet-stream (what clients send for unknown files): the extension decides.
    let r = post_media(
        &c.t,
        "",
        Some(&c.token),
        file(
            pdf(100),
            "application/octet-stream",
            "C:\\facturas\\Factura 12.PDF",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["mimeType"], "application/pdf");
    // A Content-Type with parameters is read as its bare type.
    let r = post_media(
        &c.t,
        "",
        Some(&c.token),
        file(b"hola".to_vec(), "text/plain; charset=utf-8", "notes.txt"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["mimeType"], "text/plain");
    // No file name: plantilla names it after its type.
    let form = Form::new().part(
        "file",
        Part::bytes(vec![1u8; 64]).mime_str("video/mp4").unwrap(),
    );
    let r = post_media(&c.t, "", Some(&c.token), form).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let uploads = c.fake.media_uploads();
    assert_eq!(uploads.len(), 3);
    assert_eq!(uploads[0].mime_type.as_deref(), Some("application/pdf"));
    assert_eq!(
        uploads[0].file_content_type.as_deref(),
        Some("application/pdf")
    );
    assert_eq!(uploads[0].filename.as_deref(), Some("Factura 12.PDF"));
    assert_eq!(uploads[1].mime_type.as_deref(), Some("text/plain"));
    assert_eq!(uploads[2].mime_type.as_deref(), Some("video/mp4"));
    assert_eq!(uploads[2].filename.as_deref(), Some("upload.mp4"));
}

both_databases!(unsupported_types_are_refused_before_the_graph_api);
async fn unsupported_types_are_refused_before_the_graph_api() {
    let c = spawn_cloud().await;
    let r = post_media(
        &c.t,
        "",
        Some(&c.token),
        file(vec![0; 100], "image/gif", "a.gif"),
    )
    .await;
    assert_problem(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    assert_eq!(r.json["mimeType"], "image/gif");
    let detail = s(&r.json["detail"]);
    assert!(
        detail.contains("'image/gif'") && detail.contains("application/pdf"),
        "{detail}"
    );
    let accepted: Vec<&str> = r.json["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for mime in [
        "audio/aac",
        "audio/amr",
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
        "text/plain",
        "application/pdf",
        "application/msword",
        "image/jpeg",
        "image/png",
        "image/webp",
        "video/mp4",
        "video/3gpp",
    ] {
        assert!(accepted.contains(&mime), "{mime} not in {accepted:?}");
    }
    // No type at all and an extension that says nothing.
    let r = post_media(
        &c.t,
        "",
        Some(&c.token),
        file(vec![0; 10], "application/octet-stream", "blob"),
    )
    .await;
    assert_problem(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    assert!(s(&r.json["detail"]).contains("Content-Type"), "{}", r.json);
    // A supported extension does not override a declared unsupported type.
    let r = post_media(
        &c.t,
        "",
        Some(&c.token),
        file(vec![0; 10], "image/svg+xml", "x.png"),
    )
    .await;
    assert_problem(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    assert!(
        c.fake.media_uploads().is_empty(),
        "{:?}",
        c.fake.media_uploads()
    );
}

both_databases!(files_over_their_type_s_limit_are_refused_before_the_graph_api);
async fn files_over_their_type_s_limit_are_refused_before_the_graph_api() {
    let c = spawn_cloud().await;
    // An image: 5 MB.
    let r = post_media(
        &c.t,
        "",
        Some(&c.token),
        file(vec![0; 5 * 1024 * 1024 + 1], "image/jpeg", "photo.jpg"),
    )
    .await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "media-too-large");
    assert_eq!(r.json["limit"], 5 * 1024 * 1024);
    assert_eq!(r.json["size"], 5 * 1024 * 1024 + 1);
    assert_eq!(r.json["mimeType"], "image/jpeg");
    assert_eq!(r.json["mediaKind"], "image");
    assert!(s(&r.json["detail"]).contains("5 MB"), "{}", r.json);
    // A static sticker: 100 KB.
    let r = post_media(
        &c.t,
        "",
        Some(&c.token),
        file(webp(150 * 1024, false), "image/webp", "s.webp"),
    )
    .await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "media-too-large");
    assert_eq!(r.json["limit"], 100 * 1024);
    // An animated sticker: 500 KB.
    let r = post_media(
        &c.t,
        "",
        Some(&c.token),
        file(webp(600 * 1024, true), "image/webp", "a.webp"),
    )
    .await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "media-too-large");
    assert_eq!(r.json["limit"], 500 * 1024);
    assert_eq!(r.json["size"], 600 * 1024);
    assert!(
        c.fake.media_uploads().is_empty(),
        "{:?}",
        c.fake.media_uploads()
    );
    // At the limits, both go through (and the Graph API agrees).
    let r = post_media(
        &c.t,
        "",
        Some(&c.token),
        file(webp(150 * 1024, true), "image/webp", "a.webp"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let r = post_media(
        &c.t,
        "",
        Some(&c.token),
        file(vec![0; 5 * 1024 * 1024], "image/png", "p.png"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(c.fake.media_uploads().len(), 2);
    // An empty file is no file.
    let r = post_media(&c.t, "", Some(&c.token), file(vec![], "image/png", "p.png")).await;
    assert_field(&r, "file");
}

both_databases!(a_body_without_a_file_part_names_the_field);
async fn a_body_without_a_file_part_names_the_field() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let r = post_media(
        &t,
        "",
        Some(&seed.token),
        Form::new().text("note", "no file here"),
    )
    .await;
    assert_field(&r, "file");
    // Not multipart at all.
    let res = t
        .call(
            "POST",
            "/v1/media",
            Some(&seed.token),
            Some(r#"{"file":"x"}"#),
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        res.text
    );
    assert_eq!(res.json["type"], "/problems/unsupported-media-type");
    assert_eq!(
        res.json["accepted"],
        serde_json::json!(["multipart/form-data"])
    );
    // Two files.
    let form = file(pdf(10), "application/pdf", "a.pdf").part(
        "file",
        Part::bytes(pdf(10))
            .file_name("b.pdf")
            .mime_str("application/pdf")
            .unwrap(),
    );
    let r = post_media(&t, "", Some(&seed.token), form).await;
    assert_field(&r, "file");
}

both_databases!(api_keys_name_a_channel_of_their_account);
async fn api_keys_name_a_channel_of_their_account() {
    let c = spawn_cloud().await;
    let key = api_key(&c.t, &c.account_id).await;
    let upload = || file(pdf(100), "application/pdf", "a.pdf");
    // Without channelId.
    let r = post_media(&c.t, "", Some(&key), upload()).await;
    assert_field(&r, "channelId");
    // As a form field.
    let r = post_media(
        &c.t,
        "",
        Some(&key),
        upload().text("channelId", c.channel_id.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["channelId"], c.channel_id.as_str());
    // As a query parameter.
    let r = post_media(
        &c.t,
        &format!("?channelId={}", c.channel_id),
        Some(&key),
        upload(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    // Both, disagreeing.
    let r = post_media(
        &c.t,
        &format!("?channelId={}", c.channel_id),
        Some(&key),
        upload().text("channelId", "ch_other"),
    )
    .await;
    assert_field(&r, "channelId");
    assert_eq!(c.fake.media_uploads().len(), 2);

    // Another account's channel, by its key: not visible.
    let other =
        c.t.create(
            "/v1/admin/accounts",
            json!({"name": "Other", "conversationLimit": 10}),
        )
        .await;
    let other_key = api_key(&c.t, &s(&other["id"])).await;
    let r = post_media(
        &c.t,
        "",
        Some(&other_key),
        upload().text("channelId", c.channel_id.clone()),
    )
    .await;
    assert_field(&r, "channelId");
    // A channel token names only its own channel.
    let other_channel = cloud_channel(&c.t, &other["id"], "106540352242999", "EAAG-other").await;
    let r = post_media(
        &c.t,
        "",
        Some(&c.token),
        upload().text("channelId", s(&other_channel["id"])),
    )
    .await;
    assert_field(&r, "channelId");
    assert_eq!(
        c.fake.media_uploads().len(),
        2,
        "refused uploads reached the Graph API"
    );
}

both_databases!(uploads_need_a_token_of_this_server);
async fn uploads_need_a_token_of_this_server() {
    let c = spawn_cloud().await;
    let upload = || file(pdf(100), "application/pdf", "a.pdf");
    let r = post_media(&c.t, "", None, upload()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    let r = post_media(&c.t, "", Some("pk_not-a-token"), upload()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    // The admin token is not an API token.
    let r = post_media(&c.t, "", Some(ADMIN_TOKEN), upload()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(c.fake.media_uploads().is_empty());
}

both_databases!(a_disconnected_channel_uploads_nothing);
async fn a_disconnected_channel_uploads_nothing() {
    let t = spawn_app().await;
    let seed = t.seed_with(1000, "disconnected").await;
    let r = post_media(
        &t,
        "",
        Some(&seed.token),
        file(pdf(10), "application/pdf", "a.pdf"),
    )
    .await;
    assert_problem(&r, StatusCode::CONFLICT, "channel-not-connected");
    assert_eq!(r.json["channelStatus"], "disconnected");
}

both_databases!(a_graph_api_refusal_is_a_502_with_meta_s_error);
async fn a_graph_api_refusal_is_a_502_with_meta_s_error() {
    let c = spawn_cloud().await;
    // A channel whose access token Meta does not take.
    let account =
        c.t.create(
            "/v1/admin/accounts",
            json!({"name": "Broken", "conversationLimit": 10}),
        )
        .await;
    let channel = cloud_channel(&c.t, &account["id"], PN, "EAAG-expired").await;
    let r = post_media(
        &c.t,
        "",
        Some(&s(&channel["publicToken"])),
        file(pdf(100), "application/pdf", "a.pdf"),
    )
    .await;
    assert_problem(&r, StatusCode::BAD_GATEWAY, "upstream");
    assert_eq!(r.json["providerError"]["code"], 190, "{}", r.json);
    assert!(s(&r.json["detail"]).contains("190"), "{}", r.json);
    let uploads = c.fake.media_uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].error_code, Some(190));
    assert!(!r.json.to_string().contains("EAAG-expired"), "{}", r.json);
}

both_databases!(the_graph_api_down_is_a_502);
async fn the_graph_api_down_is_a_502() {
    let c = spawn_cloud().await;
    c.fake.stop().await;
    let r = post_media(
        &c.t,
        "",
        Some(&c.token),
        file(pdf(100), "application/pdf", "a.pdf"),
    )
    .await;
    assert_problem(&r, StatusCode::BAD_GATEWAY, "upstream");
    assert_eq!(r.json["providerError"]["code"], -2, "{}", r.json);
}

both_databases!(paths_ignore_case_like_every_route);
async fn paths_ignore_case_like_every_route() {
    let t = spawn_app().await;
    let seed = t.seed().await;
    let res = t
        .client
        .post(format!("{}/V1/Media/", t.base))
        .bearer_auth(&seed.token)
        .multipart(file(pdf(10), "application/pdf", "a.pdf"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

both_databases!(the_fake_graph_api_checks_uploads_as_meta_does);
async fn the_fake_graph_api_checks_uploads_as_meta_does() {
    let fake = FakeGraph::start(FakeGraphConfig::default().with_phone(PN, TOKEN)).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v23.0/{PN}/media", fake.base_url());
    let post = |token: &'static str, form: Form| {
        let req = client.post(&url).bearer_auth(token).multipart(form);
        async move {
            let res = req.send().await.unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    };
    let meta = |mime: &str, bytes: Vec<u8>| {
        file(bytes, mime, "f")
            .text("messaging_product", "whatsapp")
            .text("type", mime.to_string())
    };
    let (status, body) = post(TOKEN, meta("application/pdf", pdf(100))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(s(&body["id"]).chars().all(|c| c.is_ascii_digit()), "{body}");
    let (status, body) = post("EAAG-wrong", meta("application/pdf", pdf(100))).await;
    assert_eq!(
        (status.as_u16(), &body["error"]["code"]),
        (401, &json!(190))
    );
    let (_, body) = post(
        TOKEN,
        file(pdf(100), "application/pdf", "f").text("type", "application/pdf"),
    )
    .await;
    assert_eq!(body["error"]["code"], 100);
    assert!(
        s(&body["error"]["message"]).contains("messaging_product"),
        "{body}"
    );
    let (_, body) = post(
        TOKEN,
        file(pdf(100), "application/pdf", "f").text("messaging_product", "whatsapp"),
    )
    .await;
    assert!(s(&body["error"]["message"]).contains("type"), "{body}");
    let (_, body) = post(TOKEN, meta("image/gif", vec![1; 10])).await;
    assert_eq!(body["error"]["code"], 100, "{body}");
    let (_, body) = post(TOKEN, meta("image/png", vec![0; 5 * 1024 * 1024 + 1])).await;
    assert_eq!(body["error"]["code"], 131053, "{body}");
    let (_, body) = post(TOKEN, meta("image/webp", webp(200 * 1024, false))).await;
    assert_eq!(body["error"]["code"], 131053, "{body}");
    let (status, _) = post(TOKEN, meta("image/webp", webp(200 * 1024, true))).await;
    assert_eq!(status, StatusCode::OK);
    let uploads = fake.media_uploads();
    assert_eq!(uploads.len(), 8);
    assert_eq!(uploads.iter().filter(|u| u.id.is_some()).count(), 2);
}
