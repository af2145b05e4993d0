// The operator console (`/console`): its sessions and CSRF over plain HTTP, and the page
// itself in a real headless Chromium (see tests/it/common/browser.rs): sign in, a message's
// timeline reaching `read`, a template's preview, resuming a halted channel, the language
// switch, signing out, and an account key that sees nothing of another account.
//
// With `PLANTILLA_SCREENSHOTS=1` the SQLite run writes `docs/console-overview.png`,
// `docs/console-message.png` and `docs/console-template.png`.

use crate::common;

use common::browser::Browser;
use common::{
    ADMIN_TOKEN, Seed, TestApp, on_postgres, s, send_body, spawn_app, spawn_app_dispatching,
};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

/// Signs in over HTTP; `(status, set-cookie, body)`.
async fn sign_in(t: &TestApp, token: &str, proto: Option<&str>) -> (StatusCode, String, Value) {
    let mut req = t
        .client
        .post(format!("{}/console/api/session", t.base))
        .json(&json!({"token": token}));
    if let Some(p) = proto {
        req = req.header("X-Forwarded-Proto", p);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let cookie = res
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, cookie, res.json().await.unwrap())
}

/// `name=value` of a Set-Cookie header.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

async fn console(
    t: &TestApp,
    method: &str,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = t
        .client
        .request(
            method.parse().unwrap(),
            format!("{}/console/api{path}", t.base),
        )
        .header(COOKIE, cookie);
    if let Some(token) = csrf {
        req = req.header("X-CSRF-Token", token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A second account with its own channel, template and a message sent to it.
async fn other_account(t: &TestApp) -> (Seed, String) {
    let account = t
        .create(
            "/v1/admin/accounts",
            json!({"name": "Other", "conversationLimit": 10}),
        )
        .await;
    let channel = t
        .create(
            "/v1/admin/channels",
            json!({"accountId": account["id"], "name": "Theirs", "provider": "sandbox",
                   "status": "connected", "messagesPerSecond": 1000}),
        )
        .await;
    let template = t
        .create(
            "/v1/admin/templates",
            json!({"accountId": account["id"], "name": "secret_offer", "language": "es",
                   "status": "APPROVED", "appId": "app_2", "message": "Oferta {{code}}"}),
        )
        .await;
    let seed = Seed {
        account_id: s(&account["id"]),
        channel_id: s(&channel["id"]),
        token: s(&channel["publicToken"]),
        group_id: String::new(),
        template_id: s(&template["id"]),
    };
    let reply = t
        .send_old(
            &seed.token,
            json!({"templateId": seed.template_id, "phoneNumber": "50766660001",
                   "params": {"code": "SECRETO-99"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    (seed, s(&reply.json["data"]["message_id"]))
}

async fn api_key(t: &TestApp, account_id: &str) -> String {
    let key = t
        .create(
            &format!("/v1/admin/accounts/{account_id}/api-keys"),
            json!({"name": "console"}),
        )
        .await;
    s(&key["key"])
}

both_databases!(sessions_cookies_and_csrf_over_http);
async fn sessions_cookies_and_csrf_over_http() {
    let t = spawn_app_dispatching().await;
    let seed = t.seed().await;

    // Bad sign-ins change nothing and say what is wrong.
    let (status, cookie, body) = sign_in(&t, "not-a-token", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(cookie.is_empty());
    let res = t
        .client
        .post(format!("{}/console/api/session", t.base))
        .json(&json!({"secret": ADMIN_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "secret", "{body}");
    assert_eq!(t.sql_i64("SELECT COUNT(*) FROM console_sessions").await, 0);

    // A malformed request is refused for itself, signed in or not.
    let (status, body) = console(&t, "GET", "/messages?limit=0", "", None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["field"], "limit", "{body}");
    let res = t
        .client
        .post(format!("{}/console/api/templates/tpl_x/preview", t.base))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // The admin token: a strict, HttpOnly cookie scoped to /console, Secure behind https.
    let (status, set_cookie, session) = sign_in(&t, ADMIN_TOKEN, None).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    assert!(!set_cookie.contains(ADMIN_TOKEN));
    assert_eq!(session["role"], "admin");
    let (_, https_cookie, _) = sign_in(&t, ADMIN_TOKEN, Some("https")).await;
    assert!(https_cookie.contains("; Secure"), "{https_cookie}");
    // Only the session token's hash is stored.
    let cookie = cookie_pair(&set_cookie);
    let token = cookie.split_once('=').unwrap().1.to_string();
    let stored = t
        .sql_strings("SELECT token_hash FROM console_sessions")
        .await;
    assert!(stored.iter().all(|h| h != &token && h.len() == 64));

    let csrf = s(&session["csrfToken"]);
    let (status, again) = console(&t, "GET", "/session", &cookie, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["csrfToken"], session["csrfToken"]);

    // Changing something needs the session's CSRF token.
    let halt = |t: &TestApp| {
        let app = t.app().clone();
        let id = seed.channel_id.clone();
        async move {
            let error = plantilla::store::ProviderError {
                code: 190,
                title: "Access token has expired".into(),
                details: None,
            };
            app.store
                .set_channel_health(&id, Some(&error), plantilla::now_ms())
                .await
                .unwrap();
        }
    };
    halt(&t).await;
    let resume = format!("/channels/{}/resume", seed.channel_id);
    for bad in [None, Some("wrong"), Some("")] {
        let (status, body) = console(&t, "POST", &resume, &cookie, bad, Some(json!({}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["type"], "/problems/csrf");
    }
    let health = |t: &TestApp| {
        let app = t.app().clone();
        let id = seed.channel_id.clone();
        async move { app.store.channel(&id).await.unwrap().unwrap().health }
    };
    assert_eq!(health(&t).await, "halted");
    let (status, body) = console(&t, "POST", &resume, &cookie, Some(&csrf), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["health"], "ok");
    assert_eq!(health(&t).await, "ok");

    // A rate change is checked as the admin API checks it, naming the field.
    let (status, body) = console(
        &t,
        "PATCH",
        &format!("/channels/{}", seed.channel_id),
        &cookie,
        Some(&csrf),
        Some(json!({"messagesPerSecond": 0})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["field"], "messagesPerSecond");

    // A session ends after its 12 hours.
    let (_, other_cookie, _) = sign_in(&t, ADMIN_TOKEN, None).await;
    let other_cookie = cookie_pair(&other_cookie);
    let (status, _) = console(&t, "GET", "/session", &other_cookie, None, None).await;
    assert_eq!(status, StatusCode::OK);
    let other_hash = plantilla::domain::ids::hash_token(other_cookie.split_once('=').unwrap().1);
    t.sql(&format!(
        "UPDATE console_sessions SET expires_at = 1 WHERE token_hash = '{other_hash}'"
    ))
    .await;
    let (status, _) = console(&t, "GET", "/session", &other_cookie, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Signing out ends the session: the same cookie is refused afterwards.
    let (status, _) = console(&t, "DELETE", "/session", &cookie, None, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "signing out needs the CSRF token too"
    );
    let (status, _) = console(&t, "DELETE", "/session", &cookie, Some(&csrf), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = console(&t, "GET", "/overview", &cookie, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = console(&t, "GET", "/session", "", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

both_databases!(an_account_key_sees_its_account_only_over_http);
async fn an_account_key_sees_its_account_only_over_http() {
    let t = spawn_app_dispatching().await;
    let seed = t.seed().await;
    let (other, other_message) = other_account(&t).await;
    let key = api_key(&t, &seed.account_id).await;
    let (status, set_cookie, session) = sign_in(&t, &key, None).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["role"], "account");
    assert_eq!(session["accounts"].as_array().unwrap().len(), 1);
    let cookie = cookie_pair(&set_cookie);
    let csrf = s(&session["csrfToken"]);

    for path in [
        format!("/messages/{other_message}"),
        format!("/templates/{}", other.template_id),
        format!("/overview?account={}", other.account_id),
        format!("/messages?account={}", other.account_id),
        format!("/channels?account={}", other.account_id),
    ] {
        let (status, body) = console(&t, "GET", &path, &cookie, None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(!body.to_string().contains("SECRETO"), "{body}");
    }
    let (status, body) = console(
        &t,
        "POST",
        &format!("/templates/{}/test", other.template_id),
        &cookie,
        Some(&csrf),
        Some(json!({"to": "50766660002", "params": {"code": "x"}})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Its own lists hold its own things only.
    let (_, list) = console(&t, "GET", "/messages", &cookie, None, None).await;
    assert!(!list.to_string().contains(&other_message), "{list}");
    // Channels are the operator's to change.
    let (status, body) = console(
        &t,
        "POST",
        &format!("/channels/{}/resume", seed.channel_id),
        &cookie,
        Some(&csrf),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Revoking the key ends its sessions.
    t.sql("UPDATE api_keys SET revoked_at = 1").await;
    let (status, _) = console(&t, "GET", "/session", &cookie, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Sends a message that the sandbox takes to `read`; its id.
async fn sent_message(t: &TestApp, seed: &Seed) -> String {
    let reply = t
        .send_old(&seed.token, send_body(seed, "50755667788"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    s(&reply.json["data"]["message_id"])
}

/// The inputs, selects and buttons of the page without a label or text.
const UNLABELLED: &str = "return [...document.querySelectorAll('input, select, button')]
    .filter(e => e.offsetParent !== null)
    .filter(e => e.tagName === 'BUTTON'
        ? !e.textContent.trim() && !e.getAttribute('aria-label')
        : !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
    .map(e => e.outerHTML)";

fn screenshot_path(name: &str) -> Option<std::path::PathBuf> {
    (std::env::var("PLANTILLA_SCREENSHOTS").as_deref() == Ok("1") && !on_postgres()).then(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join(name)
    })
}

async fn maybe_screenshot(b: &Browser, name: &str) {
    if let Some(path) = screenshot_path(name) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b.screenshot().await).unwrap();
    }
}

both_databases!(the_console_in_a_browser);
async fn the_console_in_a_browser() {
    let t = spawn_app_dispatching().await;
    let seed = t.seed().await;
    // A template with everything a preview shows.
    let rich = t
        .create(
            "/v1/admin/templates",
            json!({"accountId": seed.account_id, "name": "invoice_ready", "language": "es",
                   "category": "UTILITY", "status": "APPROVED", "appId": "app_rich",
                   "header": {"format": "IMAGE", "example": "https://example.com/factura.png"},
                   "message": "Hola {{name}}, tu factura {{invoice}} está lista.",
                   "footer": "Gracias por tu compra",
                   "buttons": [{"type": "QUICK_REPLY", "text": "Pagar ahora"},
                               {"type": "URL", "text": "Ver factura", "url": "https://example.com/f/{{invoice}}"}]}),
        )
        .await;
    let message_id = sent_message(&t, &seed).await;
    // The sandbox fails numbers ending in 0000 with Meta's 131026.
    let failing = t
        .send_old(&seed.token, send_body(&seed, "50755660000"))
        .await;
    assert_eq!(failing.status, StatusCode::OK, "{}", failing.text);
    let (status, batch) = native_post(
        &t,
        "/v1/messages/batch",
        &seed.token,
        json!({"templateId": seed.template_id, "recipients": [
            {"to": "50755550001", "params": {"name": "A", "order": "1"}},
            {"to": "50755550002", "params": {"name": "B", "order": "2"}},
        ]}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    let Some(b) = Browser::start().await else {
        return;
    };
    b.set_size(1280, 1100).await;

    // Signing in: the token goes in a form, never in the URL or the page's storage.
    b.goto(&format!("{}/console", t.base)).await;
    b.type_into("#signin-token", ADMIN_TOKEN).await;
    b.click("#signin-submit").await;
    b.wait_for("#chart-hour svg").await;
    b.wait_text("#nav-overview", "Overview").await;
    assert!(b.find("#nav-overview[aria-current=page]").await.is_some());
    let url = b.execute("return location.href").await;
    assert!(!url.to_string().contains(ADMIN_TOKEN), "{url}");
    let visible = b
        .execute(
            "return document.cookie + '|' + JSON.stringify(Object.assign({}, localStorage, sessionStorage))",
        )
        .await;
    assert!(
        !visible.to_string().contains("cs_") && !visible.to_string().contains(ADMIN_TOKEN),
        "the session is readable by the page: {visible}"
    );
    let cookies = b.cookies().await;
    let session_cookie = cookies
        .iter()
        .find(|c| c["name"] == "plantilla_console")
        .expect("the session cookie");
    assert_eq!(session_cookie["httpOnly"], true, "{session_cookie}");
    assert_eq!(session_cookie["sameSite"], "Strict", "{session_cookie}");
    let cookie = format!("plantilla_console={}", s(&session_cookie["value"]));

    // The message's page: its timeline reaches read, live, with the components sent to Meta.
    b.goto(&format!("{}/console#/messages/{message_id}", t.base))
        .await;
    b.wait_for("[data-testid=timeline] li[data-status=read][data-reached=true]")
        .await;
    b.wait_text("#message-status", "read").await;
    b.wait_text("[data-testid=components]", "A-1").await;
    b.wait_for("table[aria-label='Delivery attempts'] tbody tr")
        .await;
    maybe_screenshot(&b, "console-message.png").await;

    // The overview charts and counts both, and says what to do about the failure.
    b.set_size(1280, 1500).await;
    b.click("#nav-overview").await;
    b.wait_text("[data-testid=funnel] [data-step=read]", "read: 3")
        .await;
    b.wait_text("[data-testid=funnel] [data-step=failed]", "failed: 1")
        .await;
    b.wait_for("#chart-hour svg rect").await;
    b.wait_text("#whoami", "operator").await;
    let failures = b
        .wait_text(
            "table[aria-label='Top failure codes, last 24 hours']",
            "131026",
        )
        .await;
    assert!(failures.contains("not on WhatsApp"), "{failures}");
    maybe_screenshot(&b, "console-overview.png").await;
    b.set_size(1280, 1100).await;

    // A template's preview: header media, body with example values, footer, buttons; typing
    // a value updates it.
    b.goto(&format!("{}/console#/templates/{}", t.base, s(&rich["id"])))
        .await;
    b.wait_text("#template-preview", "Gracias por tu compra")
        .await;
    let preview = b.wait_text("#template-preview", "Pagar ahora").await;
    assert!(preview.contains("IMAGE"), "{preview}");
    assert!(preview.contains("[invoice]"), "{preview}");
    b.type_into("#param-invoice", "F-2026-001").await;
    b.wait_text(
        "[data-testid=preview-body]",
        "tu factura F-2026-001 está lista",
    )
    .await;
    maybe_screenshot(&b, "console-template.png").await;

    // A halted channel appears on the overview with its reason, and Resume resumes it.
    let error = plantilla::store::ProviderError {
        code: 131031,
        title: "Account has been locked".into(),
        details: None,
    };
    t.app()
        .store
        .set_channel_health(&seed.channel_id, Some(&error), plantilla::now_ms())
        .await
        .unwrap();
    b.click("#nav-overview").await;
    b.wait_text("#halted", "Account has been locked").await;
    b.click(&format!("[data-testid=resume-{}]", seed.channel_id))
        .await;
    b.wait_for("#halted [data-testid=none-halted]").await;
    let channel = t
        .app()
        .store
        .channel(&seed.channel_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(channel.health, "ok");

    // Spanish by the switch.
    b.click("#lang-switch").await;
    b.wait_text("#nav-overview", "Resumen").await;
    b.wait_text("#nav-messages", "Mensajes").await;
    assert_eq!(
        b.execute("return document.documentElement.lang").await,
        "es"
    );
    b.click("#lang-switch").await;
    b.wait_text("#nav-overview", "Overview").await;

    // Every page opens from the navigation bar.
    for (page, marker) in [
        ("messages", "#f-status"),
        ("templates", "#sync-templates"),
        ("channels", "[data-channel]"),
        ("batches", "[role=progressbar][aria-valuenow='2']"),
        ("callbacks", "#page-title"),
        ("conversations", "#c-status"),
    ] {
        b.click(&format!("#nav-{page}")).await;
        b.wait_for(&format!("#nav-{page}[aria-current=page]")).await;
        b.wait_for(marker).await;
        // Every control is labelled for screen readers.
        let unlabelled = b.execute(UNLABELLED).await;
        assert_eq!(unlabelled, json!([]), "{page}");
    }

    // A conversation's thread shows what the recipient read.
    b.click("main table tbody a").await;
    b.wait_text(".thread", "va en camino").await;

    // A phone's width: nothing wider than the screen but what scrolls inside its panel.
    b.set_size(390, 844).await;
    for page in ["overview", "messages", "templates", "channels"] {
        b.click(&format!("#nav-{page}")).await;
        b.wait_for(&format!("#nav-{page}[aria-current=page]")).await;
        b.wait_for("#page-title").await;
        let overflow = b
            .execute("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            .await;
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{page} is {overflow} px too wide"
        );
        if page == "messages" {
            maybe_screenshot(&b, "console-phone.png").await;
        }
    }
    b.set_size(1280, 1100).await;

    // Signing out: back to the sign-in form, and the session is gone on the server.
    b.click("#signout").await;
    b.wait_for("#signin-token").await;
    let (status, _) = console(&t, "GET", "/session", &cookie, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    b.quit().await;
}

both_databases!(an_account_key_cannot_open_another_accounts_message_in_a_browser);
async fn an_account_key_cannot_open_another_accounts_message_in_a_browser() {
    let t = spawn_app_dispatching().await;
    let seed = t.seed().await;
    let own_message = sent_message(&t, &seed).await;
    let (_, other_message) = other_account(&t).await;
    let key = api_key(&t, &seed.account_id).await;
    let Some(b) = Browser::start().await else {
        return;
    };
    b.goto(&format!("{}/console#/messages/{other_message}", t.base))
        .await;
    // By keyboard: the token field has the focus; Enter submits.
    b.wait_value("return document.activeElement.id", "signin-token".into())
        .await;
    b.type_into("#signin-token", &format!("{key}\u{E007}"))
        .await;
    b.wait_for("[data-testid=not-found]").await;
    let text = b.page_text().await;
    assert!(
        !text.contains("SECRETO") && !text.contains("50766660001"),
        "{text}"
    );
    // Its own message opens.
    b.goto(&format!("{}/console#/messages/{own_message}", t.base))
        .await;
    b.wait_for("[data-testid=timeline]").await;
    // The other account is not offered either.
    let accounts = b
        .execute(
            "return [...document.querySelectorAll('#account-select option')].map(o => o.value)",
        )
        .await;
    assert_eq!(accounts, json!([seed.account_id]));
    b.quit().await;
}

/// POST to the native API with a bearer token; `(status, body)`.
async fn native_post(t: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let res = t
        .client
        .post(format!("{}{path}", t.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

both_databases!(every_page_reads_through_the_services_over_http);
async fn every_page_reads_through_the_services_over_http() {
    // No background dispatcher: the test drives it (`drain`), so what each page shows is
    // decided before it is read, however loaded the machine is.
    let t = spawn_app().await;
    let seed = t.seed().await;
    // A callback endpoint nobody listens on: its deliveries fail and wait for a retry.
    let (status, endpoint) = native_post(
        &t,
        "/v1/webhook-endpoints",
        &seed.token,
        json!({"url": "http://127.0.0.1:9/hooks", "eventTypes": ["message.sent", "message.read"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let (status, batch) = native_post(
        &t,
        "/v1/messages/batch",
        &seed.token,
        json!({"templateId": seed.template_id, "recipients": [
            {"to": "50755550001", "params": {"name": "A", "order": "1"}},
            {"to": "50755550002", "params": {"name": "B", "order": "2"}},
            {"to": "50755550003", "params": {"name": "C"}},
        ]}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    let batch_id = s(&batch["batchId"]);
    let single = sent_message(&t, &seed).await;
    t.drain().await;
    t.drain_callbacks().await;

    let (_, set_cookie, _) = sign_in(&t, ADMIN_TOKEN, None).await;
    let cookie = cookie_pair(&set_cookie);
    let get = |path: String| {
        let t = &t;
        let cookie = cookie.clone();
        async move {
            let (status, body) = console(t, "GET", &path, &cookie, None, None).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            body
        }
    };

    // Batches: counts by status.
    let batches = get("/batches".into()).await;
    assert_eq!(batches["data"][0]["id"], batch_id.as_str(), "{batches}");
    assert_eq!(batches["data"][0]["accepted"], 2);
    assert_eq!(batches["data"][0]["rejected"], 1);
    assert_eq!(batches["data"][0]["byStatus"]["read"], 2, "{batches}");

    // Messages: newest first, filtered by batch, template and number, paged by cursor.
    let all = get("/messages?limit=2".into()).await;
    assert_eq!(all["data"][0]["id"], single.as_str(), "{all}");
    let cursor = s(&all["nextCursor"]);
    let rest = get(format!("/messages?limit=2&cursor={cursor}")).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1, "{rest}");
    let of_batch = get(format!("/messages?batchId={batch_id}")).await;
    assert_eq!(of_batch["data"].as_array().unwrap().len(), 2);
    let of_template = get(format!("/messages?templateId={}", seed.template_id)).await;
    assert_eq!(of_template["data"].as_array().unwrap().len(), 3);
    let none = get("/messages?templateId=tpl_none".into()).await;
    assert_eq!(none["data"], json!([]));
    let by_number = get("/messages?phoneNumber=50755550002&status=read".into()).await;
    assert_eq!(by_number["data"].as_array().unwrap().len(), 1);
    let (status, body) = console(&t, "GET", "/messages?status=lost", &cookie, None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["field"], "status");
    let (status, body) = console(&t, "GET", "/messages?from=yesterday", &cookie, None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["field"], "from");

    // A message's page: timeline, attempts, components and its callbacks.
    let m = get(format!("/messages/{single}")).await;
    assert_eq!(m["status"], "read");
    assert_eq!(m["attemptsList"][0]["outcome"], "accepted", "{m}");
    assert_eq!(m["components"][0]["type"], "body", "{m}");
    let events: Vec<&str> = m["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["eventType"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"message.read"), "{m}");

    // Callback endpoints: recent deliveries with their failure and next retry.
    let callbacks = get("/callbacks".into()).await;
    assert_eq!(callbacks["endpoints"][0]["id"], endpoint["id"]);
    assert!(callbacks["endpoints"][0].get("secret").is_none());
    let tried = callbacks["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["attempts"].as_i64() > Some(0))
        .unwrap_or_else(|| panic!("no delivery was attempted: {callbacks}"));
    assert_eq!(tried["status"], "pending", "{tried}");
    assert!(tried["lastError"].is_string(), "{tried}");
    assert!(tried["nextAttemptAt"].is_string(), "{tried}");

    // Conversations and a thread.
    let conversations = get("/conversations?status=open".into()).await;
    assert_eq!(
        conversations["data"].as_array().unwrap().len(),
        3,
        "{conversations}"
    );
    assert_eq!(
        conversations["data"][0]["phoneNumber"], "50755667788",
        "newest first: {conversations}"
    );
    let conversation = conversations["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["phoneNumber"] == "50755667788")
        .expect("the single send's conversation")
        .clone();
    let thread = get(format!("/conversations/{}", s(&conversation["id"]))).await;
    assert_eq!(thread["messages"][0]["id"], single.as_str(), "{thread}");
    assert_eq!(
        thread["messages"][0]["preview"]["body"], "Hola Ana, tu pedido A-1 va en camino",
        "{thread}"
    );

    // Templates, a preview with values, and a test send through the same send as the APIs.
    let templates = get("/templates".into()).await;
    assert_eq!(templates["data"][0]["id"], seed.template_id.as_str());
    let template = get(format!("/templates/{}", seed.template_id)).await;
    assert_eq!(
        template["preview"]["params"]["order"], "[order]",
        "{template}"
    );
    let (_, session) = console(&t, "GET", "/session", &cookie, None, None).await;
    let csrf = s(&session["csrfToken"]);
    let (status, preview) = console(
        &t,
        "POST",
        &format!("/templates/{}/preview", seed.template_id),
        &cookie,
        Some(&csrf),
        Some(json!({"params": {"name": "Eva", "order": "Z-9"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(
        preview["preview"]["body"],
        "Hola Eva, tu pedido Z-9 va en camino"
    );
    let test_send = |body: Value| {
        let t = &t;
        let cookie = cookie.clone();
        let csrf = csrf.clone();
        let path = format!("/templates/{}/test", seed.template_id);
        async move { console(t, "POST", &path, &cookie, Some(&csrf), Some(body)).await }
    };
    let before = t.sql_i64("SELECT COUNT(*) FROM messages").await;
    let (status, body) = test_send(json!({"to": "+50755", "params": {}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["field"], "to");
    let (status, body) = test_send(json!({"to": "50755551234", "params": {"name": "Eva"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "params.order", "{body}");
    assert_eq!(t.sql_i64("SELECT COUNT(*) FROM messages").await, before);
    let (status, body) = test_send(
        json!({"to": "50755551234", "channelId": seed.channel_id, "params": {"name": "Eva", "order": "Z-9"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sent = get(format!("/messages/{}", s(&body["messageId"]))).await;
    assert_eq!(sent["phoneNumber"], "50755551234");

    // Sync: sandbox channels have nothing to sync.
    let (status, body) = console(&t, "POST", "/templates/sync", &cookie, Some(&csrf), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["channels"], json!([]));

    // Channels: health, rate and queue; a rate change goes through the admin API's rules.
    let (status, body) = console(
        &t,
        "PATCH",
        &format!("/channels/{}", seed.channel_id),
        &cookie,
        Some(&csrf),
        Some(json!({"messagesPerSecond": 25})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The test send above is queued until the dispatcher runs.
    t.drain().await;
    let channels = get("/channels".into()).await;
    assert_eq!(channels["data"][0]["messagesPerSecond"], 25);
    assert_eq!(channels["data"][0]["queueDepth"], 0);
    assert!(channels["data"][0].get("accessToken").is_none());
    let (status, rotated) = console(
        &t,
        "POST",
        &format!("/channels/{}/rotate-token", seed.channel_id),
        &cookie,
        Some(&csrf),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_ne!(s(&rotated["publicToken"]), seed.token);
}

both_databases!(a_spanish_browser_gets_the_console_in_spanish);
async fn a_spanish_browser_gets_the_console_in_spanish() {
    let t = spawn_app_dispatching().await;
    t.seed().await;
    let Some(b) = Browser::start_in("es-ES").await else {
        return;
    };
    b.goto(&format!("{}/console", t.base)).await;
    b.wait_text("h1", "Iniciar sesión").await;
    b.type_into("#signin-token", ADMIN_TOKEN).await;
    b.click("#signin-submit").await;
    b.wait_text("#nav-overview", "Resumen").await;
    b.wait_text("#page-title", "Resumen").await;
    assert_eq!(
        b.execute("return document.documentElement.lang").await,
        "es"
    );
    // The switch changes it, and the choice outlives a reload.
    b.click("#lang-switch").await;
    b.wait_text("#nav-overview", "Overview").await;
    b.goto(&format!("{}/console#/templates", t.base)).await;
    b.wait_text("#nav-templates", "Templates").await;
    b.quit().await;
}

both_databases!(a_conversations_thread_shows_the_customers_replies);
/// A conversation's thread shows the customer's replies between the templates, by time: over
/// the console's API and in the page.
async fn a_conversations_thread_shows_the_customers_replies() {
    let t = spawn_app_dispatching().await;
    let seed = t.seed().await;
    let message_id = sent_message(&t, &seed).await;
    t.drain().await;
    let conversation_id = s(&t.message(&message_id).await["conversationId"]);
    // An inbound reply as the webhook stores it (sandbox channels receive no webhooks).
    let store = &t.app().store;
    let now = plantilla::now_ms();
    let insert = plantilla::store::InboundInsert {
        id: "in_reply_1".into(),
        account_id: seed.account_id.clone(),
        channel_id: seed.channel_id.clone(),
        provider_message_id: "wamid.reply-1".into(),
        phone_number: Some("50755667788".into()),
        user_id: None,
        contact_name: Some("Ana".into()),
        username: None,
        kind: "button".into(),
        text: None,
        content: json!({"button": {"payload": "WHERE", "text": "¿Dónde está mi pedido?"}}),
        raw: json!({"type": "button"}),
        context_id: None,
        sent_at: now,
        received_at: now,
    };
    store.record_inbound_message(&insert).await.unwrap();

    let (_, set_cookie, _) = sign_in(&t, ADMIN_TOKEN, None).await;
    let cookie = cookie_pair(&set_cookie);
    let (status, thread) = console(
        &t,
        "GET",
        &format!("/conversations/{conversation_id}"),
        &cookie,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{thread}");
    assert_eq!(thread["messages"][0]["id"], message_id.as_str(), "{thread}");
    assert_eq!(thread["inbound"][0]["id"], "in_reply_1", "{thread}");
    assert_eq!(thread["inbound"][0]["direction"], "inbound", "{thread}");

    let Some(b) = Browser::start().await else {
        return;
    };
    b.goto(&format!("{}/console", t.base)).await;
    b.type_into("#signin-token", ADMIN_TOKEN).await;
    b.click("#signin-submit").await;
    b.wait_for("#nav-overview[aria-current=page]").await;
    b.goto(&format!(
        "{}/console#/conversations/{conversation_id}",
        t.base
    ))
    .await;
    b.wait_text(".thread .bubble.inbound", "¿Dónde está mi pedido?")
        .await;
    // The template first, then the reply.
    let order = b
        .execute(
            "return [...document.querySelectorAll('.thread .bubble')].map(e => e.classList.contains('inbound'))",
        )
        .await;
    assert_eq!(order, json!([false, true]));
    b.quit().await;
}
