//! The command line: `serve`, `demo` and `admin`. Thin: it loads configuration and calls the
//! same services as the HTTP API. `send` is different: a client of a server's API (`cli/send.rs`).

pub mod csv;
pub mod send;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::app::App;
use crate::config::{Config, Secret};
use crate::service::admin::{self, AdminError};
use crate::service::suppressions;

#[derive(Debug, Parser)]
#[command(
    name = "plantilla",
    version,
    about = "WhatsApp template gateway with an AtomChat-compatible API"
)]
pub struct Cli {
    /// TOML configuration file (also PLANTILLA_CONFIG). Environment variables override it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Log format: text or json (also PLANTILLA_LOG_FORMAT); overrides the configuration.
    #[arg(long, global = true, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API, the webhook receiver and the dispatcher.
    Serve,
    /// Print the OpenAPI 3.1 document of the HTTP API (as served at /openapi.json).
    ///
    /// The repository commits it: `cargo run -- openapi > openapi.json`.
    Openapi,
    /// Start a ready-to-try server: SQLite, a sandbox channel, a group and a sample template.
    Demo {
        /// The demo's SQLite file; it is recreated on every run.
        #[arg(long, default_value = "plantilla-demo.db")]
        db: PathBuf,
        /// Address to listen on (default: the configured `listen`, 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Set up accounts, channels, groups and templates; look at conversations and messages.
    ///
    /// Fields are `key=value` (a string) or `key:=json` (a number, boolean, array, object or
    /// null), named as in the admin API. Prints JSON.
    ///
    /// Examples:
    ///   plantilla admin accounts create name=Acme conversationLimit:=1000
    ///   plantilla admin channels create accountId=acc_… name=Main provider=sandbox
    ///   plantilla admin channels update ch_… status=disconnected
    ///   plantilla admin accounts update acc_… quietHours:='{"start":"21:00","end":"08:00"}'
    ///   plantilla admin channels rotate-token ch_…
    ///   plantilla admin groups create accountId=acc_… name=Ventas channelIds:='["ch_…"]'
    ///   plantilla admin templates create accountId=acc_… name=order_update language=es appId=123 message='Hola {{name}}'
    ///   plantilla admin templates sync --channel ch_…
    ///   plantilla admin templates submit --channel ch_… name=promo language=es category=MARKETING \
    ///       message='Hola {{name}}' examples:='{"name":"Ana"}' header:='{"format":"IMAGE"}' \
    ///       --sample-file promo.png      (submits to WhatsApp; the file is the header's sample)
    ///   plantilla admin templates delete tpl_…   (at Meta too; atMeta:=false: only here)
    ///   plantilla admin messages get msg_…
    ///   plantilla admin secrets reencrypt      (after changing PLANTILLA_ENCRYPTION_KEY)
    ///   plantilla admin suppressions list acc_… [limit:=50] [cursor=…]
    ///   plantilla admin suppressions add acc_… phoneNumber=50755667788 reason='asked by phone'
    ///   plantilla admin suppressions remove acc_… phoneNumber=50755667788
    #[command(verbatim_doc_comment)]
    Admin {
        /// accounts, channels, groups, templates, conversations, messages or secrets
        resource: String,
        /// create, get, update, rotate-token, sync, submit, delete, close or reencrypt
        action: String,
        /// An id (for get, update, rotate-token, close), then fields.
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Send a template through a server's API: to one number (--to) or to each row of a CSV.
    Send(Box<send::SendArgs>),
}

/// Logs to stderr, as text or as one JSON object per line (with the fields of the current
/// span and its parents, so a request's lines carry its `request_id`).
pub fn init_tracing(filter: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
    } else {
        builder.try_init()
    };
}

pub async fn main(cli: Cli) -> anyhow::Result<()> {
    if let Command::Openapi = cli.command {
        // No configuration needed: the document depends on the code only.
        use std::io::Write;
        return match std::io::stdout().write_all(crate::http::openapi::document_text().as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(()),
        };
    }
    if let Command::Send(args) = cli.command {
        // A client: it needs no server configuration.
        return send::main(*args).await;
    }
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(format) = cli.log_format {
        config.log_format = format;
    }
    init_tracing(&config.log, &config.log_format);
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Openapi => unreachable!("handled above"),
        Command::Demo { db, listen } => demo(config, db, listen).await,
        Command::Admin {
            resource,
            action,
            args,
        } => {
            let app = App::open(config).await?;
            let out = run_admin(&app, &resource, &action, &args).await?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Send(_) => unreachable!("handled above"),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let app = App::open(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let server = crate::server::start(app, listener, true).await?;
    tracing::info!(addr = %server.addr, "plantilla is serving");
    server.run_until_signal().await
}

/// Splits `args` into an optional leading id and the fields object.
pub fn parse_admin_args(args: &[String]) -> anyhow::Result<(Option<String>, Value)> {
    let mut id = None;
    let mut fields = Map::new();
    let mut args = args.iter().enumerate();
    while let Some((i, arg)) = args.next() {
        if let Some(key) = arg.strip_prefix("--") {
            // `--channel ch_1` is the field `channel`.
            let (_, value) = args
                .next()
                .with_context(|| format!("--{key} needs a value"))?;
            fields.insert(key.to_string(), Value::String(value.clone()));
        } else if let Some((key, raw)) = arg.split_once(":=") {
            let value: Value = serde_json::from_str(raw)
                .with_context(|| format!("{key}:= must be followed by JSON, got '{raw}'"))?;
            fields.insert(key.to_string(), value);
        } else if let Some((key, value)) = arg.split_once('=') {
            fields.insert(key.to_string(), Value::String(value.to_string()));
        } else if i == 0 {
            id = Some(arg.clone());
        } else {
            bail!("'{arg}' is not a field: write key=value or key:=json");
        }
    }
    Ok((id, Value::Object(fields)))
}

pub async fn run_admin(
    app: &App,
    resource: &str,
    action: &str,
    args: &[String],
) -> anyhow::Result<Value> {
    let (id, body) = parse_admin_args(args)?;
    let need_id = || {
        id.clone()
            .with_context(|| format!("{resource} {action} needs an id"))
    };
    let result = match (resource, action) {
        ("accounts", "create") => match admin::account_create(&body) {
            Ok(new) => json_of(admin::create_account(app, new).await),
            Err(e) => Err(e),
        },
        ("accounts", "get") => json_of(admin::get_account(app, &need_id()?).await),
        ("accounts", "update") => {
            let id = need_id()?;
            match admin::account_update(&body) {
                Ok(change) => json_of(admin::update_account(app, &id, change).await),
                Err(e) => Err(e),
            }
        }
        ("accounts", "api-key") => {
            let id = need_id()?;
            match admin::api_key_create(&body) {
                Ok(new) => json_of(admin::create_api_key(app, &id, new).await),
                Err(e) => Err(e),
            }
        }
        ("channels", "create") => match admin::channel_create(&body) {
            Ok(new) => json_of(admin::create_channel(app, new).await),
            Err(e) => Err(e),
        },
        ("channels", "get") => json_of(admin::get_channel(app, &need_id()?).await),
        ("channels", "update") => {
            let id = need_id()?;
            match admin::channel_update(&body) {
                Ok(change) => json_of(admin::update_channel(app, &id, change).await),
                Err(e) => Err(e),
            }
        }
        ("channels", "rotate-token") => {
            json_of(admin::rotate_channel_token(app, &need_id()?).await)
        }
        ("groups", "create") => match admin::group_create(&body) {
            Ok(new) => json_of(admin::create_group(app, new).await),
            Err(e) => Err(e),
        },
        ("templates", "create") => json_of(admin::create_template(app, &body).await),
        ("templates", "get") => json_of(admin::get_template(app, &need_id()?).await),
        ("templates", "update") => json_of(admin::update_template(app, &need_id()?, &body).await),
        ("templates", "sync") => {
            let channel = body["channel"]
                .as_str()
                .map(str::to_string)
                .or(id.clone())
                .context("templates sync needs --channel <channel id>")?;
            json_of(admin::sync_templates(app, &channel).await)
        }
        ("templates", "submit") => {
            let mut body = body;
            let fields = body.as_object_mut().expect("fields are an object");
            let channel = fields
                .remove("channel")
                .and_then(|c| c.as_str().map(str::to_string))
                .context("templates submit needs --channel <channel id>")?;
            if let Some(path) = fields.remove("sample-file") {
                let path = path.as_str().unwrap_or_default().to_string();
                let bytes = std::fs::read(&path).with_context(|| format!("cannot read {path}"))?;
                let mime = crate::domain::media::from_filename(&path)
                    .map(|m| m.mime)
                    .with_context(|| format!("cannot tell the media type of {path}"))?;
                let header = fields
                    .entry("header")
                    .or_insert_with(|| serde_json::json!({}));
                let Some(header) = header.as_object_mut() else {
                    bail!("--sample-file needs header:='{{\"format\":\"IMAGE\"}}' (an object)");
                };
                use base64::Engine;
                header.insert(
                    "sample".into(),
                    serde_json::json!({
                        "data": base64::engine::general_purpose::STANDARD.encode(bytes),
                        "mimeType": mime,
                        "filename": std::path::Path::new(&path).file_name().map(|n| n.to_string_lossy().to_string()),
                    }),
                );
            }
            json_of(admin::submit_template(app, &channel, &body).await)
        }
        ("templates", "delete") => {
            let at_meta = body["atMeta"].as_bool().unwrap_or(true);
            admin::delete_template(app, &need_id()?, at_meta)
                .await
                .map(|()| serde_json::json!({"id": id, "deleted": true}))
        }
        ("conversations", "get") => json_of(admin::get_conversation(app, &need_id()?).await),
        ("conversations", "close") => json_of(admin::close_conversation(app, &need_id()?).await),
        ("messages", "get") => json_of(admin::get_message(app, &need_id()?).await),
        ("secrets", "reencrypt") => json_of(admin::reencrypt_secrets(app).await),
        ("suppressions", "list") => {
            json_of(suppressions::admin_list(app, &need_id()?, &body).await)
        }
        ("suppressions", "add") => json_of(suppressions::admin_add(app, &need_id()?, &body).await),
        ("suppressions", "remove") => {
            json_of(suppressions::admin_remove(app, &need_id()?, &body).await)
        }
        _ => bail!("unknown admin command '{resource} {action}'; see plantilla admin --help"),
    };
    result.map_err(|e| match e {
        AdminError::Invalid(f) => anyhow::anyhow!("invalid {}: {}", f.field, f.message),
        other => anyhow::Error::from(other),
    })
}

/// A typed admin answer as the JSON `plantilla admin` prints.
fn json_of<T: serde::Serialize>(result: Result<T, AdminError>) -> Result<Value, AdminError> {
    result.and_then(|body| {
        serde_json::to_value(body).map_err(|e| AdminError::Internal(anyhow::Error::from(e)))
    })
}

/// What `demo` set up.
pub struct DemoSetup {
    pub public_token: String,
    pub template_id: String,
    /// A MARKETING template with an IMAGE header and a quick-reply button.
    pub image_template_id: String,
}

pub async fn seed_demo(app: &App) -> anyhow::Result<DemoSetup> {
    let account = admin::create_account(
        app,
        admin::account_create(&json!({"name": "Demo company", "conversationLimit": 1000}))?,
    )
    .await?;
    let channel = admin::create_channel(
        app,
        admin::channel_create(
            &json!({"accountId": account.id, "name": "Demo WhatsApp number", "provider": "sandbox",
                    "status": "connected", "messagesPerSecond": 80}),
        )?,
    )
    .await?;
    admin::create_group(
        app,
        admin::group_create(
            &json!({"accountId": account.id, "name": "Ventas", "channelIds": [channel.id]}),
        )?,
    )
    .await?;
    let template = admin::create_template(
        app,
        &json!({"accountId": account.id, "name": "order_update", "language": "es",
                "category": "UTILITY", "status": "APPROVED", "appId": "demo_order_update",
                "message": "Hola {{customer_name}}, tu pedido {{order_id}} está en camino.",
                "footer": "Gracias por tu compra"}),
    )
    .await?;
    let image_template = admin::create_template(
        app,
        &json!({"accountId": account.id, "name": "promo_image", "language": "es",
                "category": "MARKETING", "status": "APPROVED", "appId": "demo_promo_image",
                "header": {"format": "IMAGE"},
                "message": "Hola {{customer_name}}, mira lo nuevo de esta semana.",
                "buttons": [{"type": "QUICK_REPLY", "text": "Me interesa"},
                            {"type": "QUICK_REPLY", "text": "No, gracias"}]}),
    )
    .await?;
    Ok(DemoSetup {
        public_token: channel.public_token,
        template_id: template.id.to_string(),
        image_template_id: image_template.id.to_string(),
    })
}

async fn demo(
    mut config: Config,
    db: PathBuf,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.clone().into_os_string();
        path.push(suffix);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot recreate {}", db.display()));
            }
            _ => {}
        }
    }
    config.database_url = format!("sqlite://{}", db.display());
    if let Some(listen) = listen {
        config.listen = listen;
    }
    let admin_token = match &config.admin_token {
        Some(t) => t.clone(),
        None => Secret::new(crate::domain::ids::new_secret("adm_")),
    };
    config.admin_token = Some(admin_token.clone());
    config.console_at_root = true;
    let listen = config.listen;
    let app = App::open(config).await?;
    let setup = seed_demo(&app).await?;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} (use --listen to pick another address)")
    })?;
    let server = crate::server::start(app, listener, true).await?;
    let base = format!("http://{}", server.addr);
    let body = json!({"templateId": setup.template_id, "phoneNumber": "50755667788", "clientName": "Ana",
                      "params": {"customer_name": "Ana", "order_id": "A-1001"}});
    let image_body = json!({"templateId": setup.image_template_id, "phoneNumber": "50766778899",
                            "clientName": "Luis",
                            "params": {"customer_name": "Luis",
                                       "header.link": "https://example.com/promos/semana.jpg",
                                       "button.0.payload": "promo-semana-si"}});
    println!(
        "plantilla demo: serving on {base} with a sandbox channel (SQLite file {db})\n\n\
         public token: {token}\nadmin token:  {admin}\n\n\
         Console: {base}/console (also {base}/) — sign in with the admin token printed above.\n\n\
         Send a template:\n\n  curl -sS -X POST {base}/api/Template/SendMessage \
         -H 'Content-Type: application/json' -H 'Authorization: Bearer {token}' -d '{body}'\n\n\
         Send one with an image header chosen per send and a quick-reply payload:\n\n  \
         curl -sS -X POST {base}/api/Template/SendMessage \
         -H 'Content-Type: application/json' -H 'Authorization: Bearer {token}' -d '{image_body}'\n\n\
         Preview a send without sending it (what the recipient sees, what goes to Meta):\n\n  \
         curl -sS -X POST {base}/v1/templates/{image_id}/preview \
         -H 'Content-Type: application/json' -H 'Authorization: Bearer {token}' -d '{preview}'\n\n\
         Then follow the message (use data.message_id from the answer):\n\n  \
         curl -sS {base}/v1/admin/messages/MESSAGE_ID -H 'Authorization: Bearer {admin}'\n\n\
         Press Ctrl-C to stop.",
        db = db.display(),
        token = setup.public_token,
        admin = admin_token.expose(),
        image_id = setup.image_template_id,
        preview = json!({"params": image_body["params"]}),
    );
    server.run_until_signal().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_args_split_into_id_and_fields() {
        let args: Vec<String> = ["ch_1", "name=Main", "messagesPerSecond:=10", "x:=null"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (id, body) = parse_admin_args(&args).unwrap();
        assert_eq!(id.as_deref(), Some("ch_1"));
        assert_eq!(
            body,
            json!({"name": "Main", "messagesPerSecond": 10, "x": null})
        );
        assert!(parse_admin_args(&["a".into(), "b".into()]).is_err());
        let (_, body) = parse_admin_args(&["--channel".into(), "ch_1".into()]).unwrap();
        assert_eq!(body, json!({"channel": "ch_1"}));
        assert!(parse_admin_args(&["--channel".into()]).is_err());
        assert!(parse_admin_args(&["n:=nope".into()]).is_err());
        let (id, body) = parse_admin_args(&["message=Hola {{a}} = b".into()]).unwrap();
        assert_eq!(id, None);
        assert_eq!(body["message"], "Hola {{a}} = b");
    }

    #[test]
    fn log_format_is_a_global_flag() {
        let cli = Cli::try_parse_from(["plantilla", "serve", "--log-format", "json"]).unwrap();
        assert_eq!(cli.log_format.as_deref(), Some("json"));
        let cli = Cli::try_parse_from(["plantilla", "--log-format", "text", "serve"]).unwrap();
        assert_eq!(cli.log_format.as_deref(), Some("text"));
        assert!(Cli::try_parse_from(["plantilla", "--log-format", "xml", "serve"]).is_err());
        assert_eq!(
            Cli::try_parse_from(["plantilla", "serve"])
                .unwrap()
                .log_format,
            None
        );
    }
}
