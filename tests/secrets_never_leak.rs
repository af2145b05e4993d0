// No secret leaves plantilla: not in an HTTP answer (body or header), not in the log (captured
// at DEBUG for every crate), not in the admin CLI's output, and not in the database in
// plaintext when an encryption key is configured. And the encryption keys rotate: old keys
// still decrypt, `plantilla admin secrets reencrypt` moves everything to the current key, and
// a key that is needed but missing is named.
//
// The secrets: the admin token, each channel's access token, app secret and verify token, the
// app-level Meta app secret and verify token, public tokens (shown once when created or
// rotated, never again), the encryption keys, and credentials presented by callers.

// Its own test binary: it installs the process's global tracing subscriber (DEBUG, every
// crate) and scans everything logged, which would capture the other tests' logs too.
#[macro_use]
#[path = "it/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::*;
use fake_graph::{DEFAULT_WABA_ID, FakeGraph, FakeGraphConfig, FakeTemplate};
use plantilla::app::App;
use plantilla::config::{Config, Secret};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PN1: &str = "1000003";
const PN2: &str = "1000004";
const ACCESS_1: &str = "EAAGYQ5Q8xbfyK6QhDJmqgmJlcMXTkUfvt";
const ACCESS_2: &str = "EAAGLpzO2tg85xm1VqcSH9jR9QV8NIfFTK";
const WRONG_ACCESS: &str = "EAAGUn2Vm64gyOyyubwarMKI8PRsweSrV0";
const CH_APP_SECRET: &str = "chappVs9e2SMK47tVoTb8cTjxmqGk9bI";
const CH_VERIFY: &str = "chvfyC5kIlnV1kflbXS7j5hNZWFxIBhU";
const META_APP_SECRET: &str = "mtappVlm2jlpAT1KFJMT8NlYZsOag2RH";
const META_VERIFY: &str = "mtvfydWt3Rg0XWsTAjZkk2hqxfNB2Kua";
const WRONG_ADMIN: &str = "badadmm5CkyT8JDm9n33lY4Gq2JdZYoq";
const WRONG_PUBLIC: &str = "pk_zpQ1EQ9lJzLTj8DjQYkQKbRxvvVAX";
/// Encryption keys: one in hex, one in base64 (both forms are accepted).
const KEY_1: &str = "f166cf439e445a110e54e6475e36f881cf3ed92ddff0be22f0bb222312d653fc";
const KEY_2_HEX: &str = "29fcdafbb78f36cca7ee0677ed74b1a8ae862ea3c5eeb94c5b545a15e206b547";
const KEY_2_B64: &str = "Kfza+7ePNsyn7gZ37XSxqK6GLqPF7rlMW1RaFeIGtUc=";
const KEY_3: &str = "c7d7c116b6935057395aa4064b5da13a24f87bb6e5dcece57361e339d896c0e8";

fn key_id(key: &str) -> String {
    plantilla::secrets::key_id(&plantilla::secrets::decode_key(key).unwrap())
}

// --- the log, captured for the whole test binary -------------------------------------------

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this process at DEBUG and above, from every crate (except the fake Graph
/// API, which is not plantilla), as `serve` would print it.
fn captured_log() -> String {
    static LOG: OnceLock<LogBuffer> = OnceLock::new();
    let log = LOG.get_or_init(|| {
        let log = LogBuffer::default();
        let writer = log.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug,fake_graph=off"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("the only subscriber of this test binary");
        log
    });
    String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned()
}

// --- the scan --------------------------------------------------------------------------------

/// Known secrets, and the texts they must not appear in.
#[derive(Default)]
struct Leaks {
    secrets: BTreeMap<String, String>,
    seen: Vec<(String, String)>,
}

/// What is looked for: the whole value, and 12-character pieces of its start, middle and end
/// (a secret shortened for display is still a leak).
fn pieces(value: &str) -> Vec<&str> {
    let mut out = vec![value];
    if value.len() >= 24 {
        let mid = value.len() / 2 - 6;
        out.extend([
            &value[..12],
            &value[mid..mid + 12],
            &value[value.len() - 12..],
        ]);
    }
    out
}

impl Leaks {
    fn secret(&mut self, name: &str, value: &str) {
        self.secrets.insert(name.to_string(), value.to_string());
    }

    /// Keeps a text to scan at the end (when every secret is known); `shown`, a secret this
    /// one answer is meant to show (a new public token), is blanked first.
    fn saw(&mut self, place: impl Into<String>, text: &str, shown: Option<&str>) {
        let text = match shown {
            Some(s) => text.replace(s, "<shown once>"),
            None => text.to_string(),
        };
        self.seen.push((place.into(), text));
    }

    fn assert_none(&self) {
        let mut found = Vec::new();
        for (place, text) in &self.seen {
            for (name, value) in &self.secrets {
                if let Some(piece) = pieces(value).into_iter().find(|p| text.contains(p)) {
                    found.push(format!("{name} ({piece:?}) in {place}"));
                }
            }
        }
        assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
    }

    /// The raw bytes of a file (the SQLite database) hold no secret.
    fn assert_not_in_file(&self, path: &std::path::Path) {
        let Ok(bytes) = std::fs::read(path) else {
            return;
        };
        for (name, value) in &self.secrets {
            for piece in pieces(value) {
                assert!(
                    !bytes.windows(piece.len()).any(|w| w == piece.as_bytes()),
                    "{name} ({piece:?}) is in {} in plaintext",
                    path.display()
                );
            }
        }
    }
}

/// An HTTP exchange whose answer (status line, headers, body) is kept for the scan.
async fn call(
    t: &TestApp,
    leaks: &mut Leaks,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (StatusCode, Value, String) {
    let mut req = t
        .client
        .request(method.parse().unwrap(), format!("{}{path}", t.base));
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let mut head = format!("{status}\n");
    for (k, v) in res.headers() {
        head.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    let text = res.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    let shown = json["publicToken"].as_str().map(str::to_string);
    leaks.saw(
        format!("the answer to {method} {path}"),
        &format!("{head}\n{text}"),
        shown.as_deref(),
    );
    (status, json, text)
}

async fn admin(
    t: &TestApp,
    leaks: &mut Leaks,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let body = body.map(|b| b.to_string());
    let (status, json, _) = call(
        t,
        leaks,
        method,
        path,
        Some(ADMIN_TOKEN),
        &[],
        body.as_deref(),
    )
    .await;
    (status, json)
}

async fn send(t: &TestApp, leaks: &mut Leaks, token: &str, body: &Value) -> (StatusCode, Value) {
    let (status, json, _) = call(
        t,
        leaks,
        "POST",
        "/api/Template/SendMessage",
        Some(token),
        &[],
        Some(&body.to_string()),
    )
    .await;
    (status, json)
}

/// `plantilla admin <args>` as the command line runs it, on the test's database: the
/// configuration from these environment variables, then the same parsing and services. What it
/// would print (the JSON, or the error it exits with) is kept for the scan; its log lines go
/// to the captured log. (In-process rather than the binary: the binary's path is shared by
/// every checkout building into the same target directory.)
async fn admin_command(
    t: &TestApp,
    leaks: &mut Leaks,
    env: &[(&str, &str)],
    args: &[&str],
) -> Result<Value, String> {
    let mut vars = vec![("DATABASE_URL".to_string(), t.config.database_url.clone())];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let rest: Vec<String> = args[2..].iter().map(|a| a.to_string()).collect();
    let result = async {
        let config = Config::from_sources(None, &vars)?;
        let app = App::open(config).await?;
        plantilla::cli::run_admin(&app, args[0], args[1], &rest).await
    }
    .await
    .map_err(|e| format!("error: {e:#}"));
    let printed = match &result {
        Ok(v) => serde_json::to_string_pretty(v).unwrap(),
        Err(e) => e.clone(),
    };
    leaks.saw(
        format!("the output of plantilla admin {}", args.join(" ")),
        &printed,
        None,
    );
    result
}

async fn fake_graph() -> FakeGraph {
    FakeGraph::start(
        FakeGraphConfig {
            app_secret: META_APP_SECRET.into(),
            status_delay: Duration::ZERO,
            ..FakeGraphConfig::default()
        }
        .with_phone(PN1, ACCESS_1)
        .with_phone(PN2, ACCESS_2)
        .with_template(FakeTemplate::new(
            "order_update",
            "es",
            "Hola {{name}}, tu pedido {{order}} va en camino",
        )),
    )
    .await
}

/// The stored (raw) secret columns of a channel.
async fn raw_secrets(t: &TestApp, channel_id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for column in ["access_token", "app_secret", "verify_token"] {
        out.extend(
            t.sql_strings(&format!(
                "SELECT {column} FROM channels WHERE id = '{channel_id}'"
            ))
            .await,
        );
    }
    out
}

/// The last `Authorization` the fake Graph API got for a phone number.
fn last_bearer(fake: &FakeGraph, phone_number_id: &str) -> Option<String> {
    fake.requests()
        .iter()
        .rev()
        .find(|r| r.phone_number_id == phone_number_id)
        .and_then(|r| r.authorization.clone())
}

struct CloudSeed {
    channel_id: String,
    token: String,
    template_id: String,
}

/// An account with a cloud channel on `phone_number_id`, its group and the template.
async fn seed_cloud(
    t: &TestApp,
    leaks: &mut Leaks,
    phone_number_id: &str,
    access_token: &str,
) -> CloudSeed {
    let (status, account) = admin(
        t,
        leaks,
        "POST",
        "/v1/admin/accounts",
        Some(json!({"name": "Acme", "conversationLimit": 1000})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    let (status, channel) = admin(
        t,
        leaks,
        "POST",
        "/v1/admin/channels",
        Some(
            json!({"accountId": account["id"], "name": "Main", "provider": "cloud",
                    "phoneNumberId": phone_number_id, "wabaId": DEFAULT_WABA_ID,
                    "accessToken": access_token, "appSecret": CH_APP_SECRET,
                    "verifyToken": CH_VERIFY, "messagesPerSecond": 1000}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    assert_eq!(channel["accessTokenSet"], true);
    let token = s(&channel["publicToken"]);
    leaks.secret(&format!("public token of {}", channel["id"]), &token);
    let (status, _) = admin(
        t,
        leaks,
        "POST",
        "/v1/admin/groups",
        Some(json!({"accountId": account["id"], "name": "Ventas", "channelIds": [channel["id"]]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, template) = admin(
        t,
        leaks,
        "POST",
        "/v1/admin/templates",
        Some(
            json!({"accountId": account["id"], "name": "order_update", "language": "es",
                    "appId": "1001", "message": "Hola {{name}}, tu pedido {{order}} va en camino"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{template}");
    CloudSeed {
        channel_id: s(&channel["id"]),
        token,
        template_id: s(&template["id"]),
    }
}

fn body_for(seed: &CloudSeed, phone: &str) -> Value {
    json!({"templateId": seed.template_id, "phoneNumber": phone, "clientName": "Ana",
           "params": {"name": "Ana", "order": "A-1"}})
}

/// Sends through the channel and drains: the fake Graph API got the channel's access token,
/// which proves the stored secret decrypts to what was configured.
async fn send_reaches_graph(
    t: &TestApp,
    leaks: &mut Leaks,
    fake: &FakeGraph,
    seed: &CloudSeed,
    (phone_number_id, access_token): (&str, &str),
    phone: &str,
) {
    let before = fake.sent_count(phone_number_id);
    let (status, reply) = send(t, leaks, &seed.token, &body_for(seed, phone)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    t.drain().await;
    assert_eq!(
        fake.sent_count(phone_number_id),
        before + 1,
        "{:?}",
        fake.requests()
    );
    assert_eq!(
        last_bearer(fake, phone_number_id).as_deref(),
        Some(format!("Bearer {access_token}").as_str())
    );
}

fn all_secrets(leaks: &mut Leaks) {
    for (name, value) in [
        ("admin token", ADMIN_TOKEN),
        ("access token 1", ACCESS_1),
        ("access token 2", ACCESS_2),
        ("replaced access token", WRONG_ACCESS),
        ("channel app secret", CH_APP_SECRET),
        ("channel verify token", CH_VERIFY),
        ("Meta app secret", META_APP_SECRET),
        ("Meta verify token", META_VERIFY),
        ("presented admin token", WRONG_ADMIN),
        ("presented public token", WRONG_PUBLIC),
        ("encryption key 1", KEY_1),
        ("encryption key 2 (hex)", KEY_2_HEX),
        ("encryption key 2 (base64)", KEY_2_B64),
        ("encryption key 3", KEY_3),
    ] {
        leaks.secret(name, value);
    }
    leaks.secret("encryption key 1 (upper case)", &KEY_1.to_uppercase());
}

both_databases!(no_secret_in_answers_logs_cli_output_or_the_database);
async fn no_secret_in_answers_logs_cli_output_or_the_database() {
    let _ = captured_log();
    let mut leaks = Leaks::default();
    all_secrets(&mut leaks);
    let fake = fake_graph().await;
    let graph = fake.base_url().to_string();
    let t = spawn_app_with(|c| {
        c.graph_base_url = graph;
        c.meta_app_secret = Some(Secret::new(META_APP_SECRET));
        c.meta_verify_token = Some(Secret::new(META_VERIFY));
        c.encryption_key = Some(Secret::new(KEY_1));
    })
    .await;
    fake.set_webhook_url(Some(format!("{}/webhooks/whatsapp", t.base)));
    let l = &mut leaks;

    // Set-up and sends through both families, statuses back through signed webhooks.
    let seed = seed_cloud(&t, l, PN1, ACCESS_1).await;
    let ch = format!("/v1/admin/channels/{}", seed.channel_id);
    send_reaches_graph(&t, l, &fake, &seed, (PN1, ACCESS_1), "50755667701").await;
    let (status, reply, _) = call(
        &t,
        l,
        "POST",
        "/templates",
        Some(&seed.token),
        &[],
        Some(&body_for(&seed, "50755667702").to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    t.drain().await;
    assert!(fake.wait_webhooks_idle(Duration::from_secs(10)).await);
    let message_id = s(&reply["data"]["message_id"]);
    let (status, message) = admin(
        &t,
        l,
        "GET",
        &format!("/v1/admin/messages/{message_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(message["status"], "read", "{message}");
    let conversation = s(&message["conversationId"]);
    admin(
        &t,
        l,
        "GET",
        &format!("/v1/admin/conversations/{conversation}"),
        None,
    )
    .await;
    call(
        &t,
        l,
        "GET",
        &format!("/api/Template/{}", seed.template_id),
        Some(&seed.token),
        &[],
        None,
    )
    .await;
    call(
        &t,
        l,
        "GET",
        "/templates?page=1&size=5",
        Some(&seed.token),
        &[],
        None,
    )
    .await;

    // The channel as the admin API and the CLI show it: whether each secret is set, no more.
    let (status, channel) = admin(&t, l, "GET", &ch, None).await;
    assert_eq!(status, StatusCode::OK);
    for flag in ["accessTokenSet", "appSecretSet", "verifyTokenSet"] {
        assert_eq!(channel[flag], true, "{channel}");
    }
    admin(&t, l, "PATCH", &ch, Some(json!({"name": "Renamed"}))).await;
    let key = [("PLANTILLA_ENCRYPTION_KEY", KEY_1)];
    let shown = admin_command(&t, l, &key, &["channels", "get", &seed.channel_id])
        .await
        .unwrap();
    assert_eq!(shown["accessTokenSet"], true, "{shown}");
    let loaded = t
        .app()
        .store
        .channel(&seed.channel_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        loaded.access_token, ACCESS_1,
        "services see the plain value"
    );
    l.saw("the Debug of a Channel", &format!("{loaded:?}"), None);

    // Webhooks: verification with wrong and right tokens, bad signatures, a good one.
    let channel_hook = format!("/webhooks/whatsapp/{}", seed.channel_id);
    for (path, token, expected) in [
        ("/webhooks/whatsapp", "wrong", StatusCode::FORBIDDEN),
        ("/webhooks/whatsapp", META_VERIFY, StatusCode::OK),
        (channel_hook.as_str(), "wrong", StatusCode::FORBIDDEN),
        (channel_hook.as_str(), CH_VERIFY, StatusCode::OK),
        (
            "/webhooks/whatsapp/ch_unknown",
            CH_VERIFY,
            StatusCode::FORBIDDEN,
        ),
    ] {
        let (status, _, text) = call(
            &t,
            l,
            "GET",
            &format!("{path}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"),
            None,
            &[],
            None,
        )
        .await;
        assert_eq!(status, expected, "{path} with {token}: {text}");
    }
    let payload = json!({"object": "whatsapp_business_account", "entry": []}).to_string();
    for (path, signature, expected) in [
        ("/webhooks/whatsapp", None, StatusCode::UNAUTHORIZED),
        (
            "/webhooks/whatsapp",
            Some(fake_graph::signature("not-the-secret", payload.as_bytes())),
            StatusCode::UNAUTHORIZED,
        ),
        (
            channel_hook.as_str(),
            Some(fake_graph::signature(META_APP_SECRET, payload.as_bytes())),
            StatusCode::UNAUTHORIZED,
        ),
        (
            channel_hook.as_str(),
            Some(fake_graph::signature(CH_APP_SECRET, payload.as_bytes())),
            StatusCode::OK,
        ),
        (
            "/webhooks/whatsapp",
            Some(fake_graph::signature(META_APP_SECRET, b"not json")),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let headers: Vec<(&str, &str)> = signature
            .as_deref()
            .map(|s| vec![("X-Hub-Signature-256", s)])
            .unwrap_or_default();
        let (status, _, text) = call(&t, l, "POST", path, None, &headers, Some(&payload)).await;
        assert_eq!(status, expected, "{path}: {text}");
    }

    // Admin errors: wrong credentials, bad fields carrying secrets, bad JSON, unknown ids.
    for token in [Some(WRONG_ADMIN), Some(""), None] {
        let (status, _, _) = call(&t, l, "GET", &ch, token, &[], None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    for body in [
        json!({"accessToken": 12345}),
        json!({"accesToken": WRONG_ACCESS}),
        json!({"appSecret": [WRONG_ACCESS]}),
        json!({"accessToken": "", "provider": "cloud"}),
        json!({"messagesPerSecond": WRONG_ACCESS}),
    ] {
        let (status, problem) = admin(&t, l, "PATCH", &ch, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    }
    let broken = format!("{{\"accessToken\": \"{WRONG_ACCESS}");
    let (status, _, _) = call(&t, l, "PATCH", &ch, Some(ADMIN_TOKEN), &[], Some(&broken)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = admin(&t, l, "GET", "/v1/admin/channels/ch_nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The template API with wrong credentials, including the admin token.
    for token in [WRONG_PUBLIC, ADMIN_TOKEN, ""] {
        let (status, _) = send(&t, l, token, &body_for(&seed, "50755667703")).await;
        assert!(status.is_client_error(), "{status}");
    }

    // A token Meta refuses: the channel halts with Meta's error, sync fails upstream.
    let (status, _) = admin(
        &t,
        l,
        "PATCH",
        &ch,
        Some(json!({"accessToken": WRONG_ACCESS})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&t, l, &seed.token, &body_for(&seed, "50755667704")).await;
    assert_eq!(status, StatusCode::OK);
    t.drain().await;
    assert_eq!(
        last_bearer(&fake, PN1).as_deref(),
        Some(format!("Bearer {WRONG_ACCESS}").as_str())
    );
    let (_, channel) = admin(&t, l, "GET", &ch, None).await;
    assert_eq!(channel["health"], "halted", "{channel}");
    assert_eq!(channel["healthError"]["code"], 190, "{channel}");
    let (status, _) = admin(&t, l, "POST", &format!("{ch}/templates/sync"), None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let (status, _) = admin(&t, l, "PATCH", &ch, Some(json!({"accessToken": ACCESS_1}))).await;
    assert_eq!(status, StatusCode::OK);
    t.drain().await;
    let (status, synced) = admin(&t, l, "POST", &format!("{ch}/templates/sync"), None).await;
    assert_eq!(status, StatusCode::OK, "{synced}");

    // Rotating the public token: the new one is shown once, the old one stops working.
    let (status, rotated) = admin(&t, l, "POST", &format!("{ch}/rotate-token"), None).await;
    assert_eq!(status, StatusCode::OK);
    let new_token = s(&rotated["publicToken"]);
    l.secret("rotated public token", &new_token);
    let (status, _) = send(&t, l, &seed.token, &body_for(&seed, "50755667705")).await;
    assert!(status.is_client_error());
    let rotated_seed = CloudSeed {
        token: new_token,
        ..seed
    };
    send_reaches_graph(&t, l, &fake, &rotated_seed, (PN1, ACCESS_1), "50755667706").await;

    // Whatever operational endpoints exist answer without secrets.
    for path in ["/metrics", "/healthz", "/readyz"] {
        call(&t, l, "GET", path, None, &[], None).await;
    }

    // The database holds the channel's secrets sealed under the key, never in plaintext.
    let kid = key_id(KEY_1);
    for stored in raw_secrets(&t, &rotated_seed.channel_id).await {
        assert!(stored.starts_with(&format!("v1:{kid}:")), "{stored}");
    }
    let hashes = t
        .sql_strings("SELECT public_token_hash FROM channels")
        .await;
    assert_eq!(hashes.len(), 1);
    assert_eq!(hashes[0].len(), 64, "only the SHA-256 of the public token");
    if !on_postgres() {
        for file in ["plantilla.db", "plantilla.db-wal"] {
            l.assert_not_in_file(&t.dir.path().join(file));
        }
    } else {
        let dump = t
            .sql_strings("SELECT CAST(c AS TEXT) FROM channels c")
            .await
            .join("\n");
        l.saw("the channels table", &dump, None);
    }

    // Last, a database failure: a 500 whose cause is logged, with nothing secret in either.
    t.sql("DROP TABLE delivery_jobs").await;
    let (status, reply) = send(
        &t,
        l,
        &rotated_seed.token,
        &body_for(&rotated_seed, "50755667707"),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let error_id = s(&reply["context"]["value"]);

    let log = captured_log();
    assert!(
        log.contains(&error_id) && log.contains("DEBUG"),
        "the log was captured at DEBUG, with the 500's cause under {error_id}"
    );
    l.saw("the log", &log, None);
    leaks.assert_none();
}

both_databases!(keys_rotate_through_reencrypt_and_a_missing_key_is_named);
async fn keys_rotate_through_reencrypt_and_a_missing_key_is_named() {
    let _ = captured_log();
    let mut leaks = Leaks::default();
    all_secrets(&mut leaks);
    let l = &mut leaks;
    let fake = fake_graph().await;
    let graph = fake.base_url().to_string();
    let (id_1, id_2) = (key_id(KEY_1), key_id(KEY_2_HEX));
    assert_eq!(id_2, key_id(KEY_2_B64));

    // No key: secrets are stored as given (the demo's and tests' way).
    let t = spawn_app_with(|c| {
        c.graph_base_url = graph;
        // Each restart's dispatcher is a new instance: let the previous one's channel lease
        // lapse quickly.
        c.channel_lease_ms = 300;
    })
    .await;
    let first = seed_cloud(&t, l, PN1, ACCESS_1).await;
    assert_eq!(
        raw_secrets(&t, &first.channel_id).await,
        [ACCESS_1, CH_APP_SECRET, CH_VERIFY]
    );
    assert!(captured_log().contains("PLANTILLA_ENCRYPTION_KEY is not set"));
    // Re-encrypting needs a key to encrypt with.
    let err = admin_command(&t, l, &[], &["secrets", "reencrypt"])
        .await
        .unwrap_err();
    assert!(err.contains("encryption_key: is not set"), "{err}");

    // A key is set: the plaintext rows still work, and are sealed on their next write.
    let t = t
        .restart_with(|c| c.encryption_key = Some(Secret::new(KEY_1)))
        .await;
    send_reaches_graph(&t, l, &fake, &first, (PN1, ACCESS_1), "50755667711").await;
    assert_eq!(raw_secrets(&t, &first.channel_id).await[0], ACCESS_1);
    assert!(
        captured_log().contains("3 channel secrets are not encrypted with the current key"),
        "a start-up warning names what is left to re-encrypt"
    );
    let (status, _) = admin(
        &t,
        l,
        "PATCH",
        &format!("/v1/admin/channels/{}", first.channel_id),
        Some(json!({"name": "Renamed"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for stored in raw_secrets(&t, &first.channel_id).await {
        assert!(stored.starts_with(&format!("v1:{id_1}:")), "{stored}");
    }
    let second = seed_cloud(&t, l, PN2, ACCESS_2).await;
    for stored in raw_secrets(&t, &second.channel_id).await {
        assert!(stored.starts_with(&format!("v1:{id_1}:")), "{stored}");
    }

    // Rotation: the new key is current, the old one only decrypts.
    let t = t
        .restart_with(|c| {
            c.encryption_key = Some(Secret::new(KEY_2_B64));
            c.encryption_old_keys = Some(Secret::new(KEY_1));
        })
        .await;
    send_reaches_graph(&t, l, &fake, &first, (PN1, ACCESS_1), "50755667712").await;
    let rotation = [
        ("PLANTILLA_ENCRYPTION_KEY", KEY_2_B64),
        ("PLANTILLA_ENCRYPTION_OLD_KEYS", KEY_1),
    ];
    let report = admin_command(&t, l, &rotation, &["secrets", "reencrypt"])
        .await
        .unwrap();
    assert_eq!(
        report,
        json!({"keyId": id_2, "channels": 2, "rewritten": 2,
               "stored": {"unencrypted": 0, "byKey": {id_2.clone(): 6}}})
    );
    for channel in [&first, &second] {
        for stored in raw_secrets(&t, &channel.channel_id).await {
            assert!(stored.starts_with(&format!("v1:{id_2}:")), "{stored}");
        }
    }
    let again = admin_command(&t, l, &rotation, &["secrets", "reencrypt"])
        .await
        .unwrap();
    assert_eq!(again["rewritten"], 0, "{again}");

    // The old key removed: everything still decrypts with the new one alone.
    let t = t
        .restart_with(|c| {
            c.encryption_key = Some(Secret::new(KEY_2_HEX));
            c.encryption_old_keys = None;
        })
        .await;
    send_reaches_graph(&t, l, &fake, &first, (PN1, ACCESS_1), "50755667713").await;
    send_reaches_graph(&t, l, &fake, &second, (PN2, ACCESS_2), "50755667714").await;

    // Without the key the secrets need, nothing starts, and the error names that key.
    let mut t = t;
    t.server.take().unwrap().stop().await.unwrap();
    for key in [Some(KEY_3), None] {
        let mut config = t.config.clone();
        config.encryption_key = key.map(Secret::new);
        let err = match App::open(config).await {
            Ok(_) => panic!("opened without key {id_2}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains(&id_2) && err.contains("PLANTILLA_ENCRYPTION_OLD_KEYS"),
            "{err}"
        );
        l.saw("the start-up error", &err, None);
    }
    let err = admin_command(
        &t,
        l,
        &[("PLANTILLA_ENCRYPTION_KEY", KEY_3)],
        &["secrets", "reencrypt"],
    )
    .await
    .unwrap_err();
    assert!(err.contains(&id_2), "{err}");
    // Old keys alone are refused: which key would encrypt?
    let err = admin_command(
        &t,
        l,
        &[("PLANTILLA_ENCRYPTION_OLD_KEYS", KEY_2_HEX)],
        &["secrets", "reencrypt"],
    )
    .await
    .unwrap_err();
    assert!(err.contains("without encryption_key"), "{err}");

    l.saw("the log", &captured_log(), None);
    leaks.assert_none();
}
