//! `fake-graph`: the fake WhatsApp Cloud API server as its own process, for
//! benchmarks and manual runs. Dev tool; not part of plantilla.
//!
//! ```text
//! cargo run -p fake-graph -- --listen 127.0.0.1:9999 \
//!     --webhook-url http://127.0.0.1:8080/webhooks/whatsapp --app-secret S \
//!     [--status-delay-ms N] [--max-rps N] [--templates-file F] [--auto-approve-ms N]
//!     [--webhook-batch N [--webhook-linger-ms N] [--webhook-in-flight N]]
//! ```
//!
//! The templates file is a JSON array of `FakeTemplate`s: the fake's builder
//! shape (`body`, `header`, `buttons`…) or Meta's own (`components` exactly
//! as `GET /{waba-id}/message_templates` returns them, `parameter_format`).
//!
//! The first line on stdout is `listening on ADDR`. On Ctrl-C / SIGTERM it
//! prints a JSON summary (the same as `GET /_fake/stats`) on stdout and exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use fake_graph::{FakeGraph, FakeGraphConfig, FakePhoneNumber, FakeTemplate, PairRate};

#[derive(Debug, Parser)]
#[command(
    name = "fake-graph",
    about = "A fake WhatsApp Cloud API (Graph API) server"
)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where status webhooks are posted (none when absent).
    #[arg(long)]
    webhook_url: Option<String>,
    /// App secret signing the webhooks' X-Hub-Signature-256.
    #[arg(long, default_value = "fake-graph-app-secret")]
    app_secret: String,
    /// Delay before each status webhook of a message, in milliseconds.
    #[arg(long, default_value_t = 0)]
    status_delay_ms: u64,
    /// Accepted sends per phone number per second; above it 130429.
    #[arg(long)]
    max_rps: Option<u32>,
    /// JSON array of templates (FakeTemplate: the builder shape, or Meta's
    /// `components` with `parameter_format`).
    #[arg(long)]
    templates_file: Option<PathBuf>,
    /// Approve templates created through the API after this many
    /// milliseconds (with a message_template_status_update webhook).
    #[arg(long)]
    auto_approve_ms: Option<u64>,
    /// A phone number: `ID:TOKEN[:WABA_ID[:DISPLAY_NUMBER]]` (repeatable).
    #[arg(long = "phone")]
    phones: Vec<String>,
    /// Token accepted for any phone number / WABA not given with --phone.
    /// Without --token and --phone, any non-empty token is accepted.
    #[arg(long)]
    token: Option<String>,
    /// Accept sends of templates the fake does not know (no 132001).
    #[arg(long)]
    accept_unknown_templates: bool,
    /// Do not send `delivered` status webhooks.
    #[arg(long)]
    no_delivered: bool,
    /// Do not send `read` status webhooks.
    #[arg(long)]
    no_read: bool,
    /// Most statuses in one webhook POST (1: a POST per status). Above 1, the statuses of
    /// many messages share a POST as Meta batches them, each message's still in order.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    webhook_batch: u32,
    /// With --webhook-batch: how long a batch waits for more statuses after its first.
    #[arg(long, default_value_t = 0)]
    webhook_linger_ms: u64,
    /// With --webhook-batch: most batch POSTs in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    webhook_in_flight: u32,
    /// At most N sends to one recipient per --pair-window-ms (131056 above).
    #[arg(long)]
    pair_rate: Option<u32>,
    #[arg(long, default_value_t = 6000)]
    pair_window_ms: u64,
    /// Fraction of sends failing at random (500, 130429, drop, delay).
    #[arg(long, default_value_t = 0.0)]
    fail_ratio: f64,
    /// Delay of the random "delay" fault, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    fault_delay_ms: u64,
    /// Seed of the fault RNG.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Base of absolute URLs written by the fake (paging.next).
    #[arg(long)]
    public_url: Option<String>,
}

fn parse_phone(spec: &str) -> anyhow::Result<FakePhoneNumber> {
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() < 2 || parts[0].is_empty() || parts[1].is_empty() {
        anyhow::bail!("--phone wants ID:TOKEN[:WABA_ID[:DISPLAY_NUMBER]], got {spec:?}");
    }
    let mut phone = FakePhoneNumber::new(parts[0], parts[1]);
    if let Some(waba) = parts.get(2).filter(|s| !s.is_empty()) {
        phone = phone.with_waba(*waba);
    }
    if let Some(display) = parts.get(3).filter(|s| !s.is_empty()) {
        phone = phone.with_display_phone_number(*display);
    }
    Ok(phone)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let templates: Vec<FakeTemplate> = match &args.templates_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => Vec::new(),
    };
    let phone_numbers = args
        .phones
        .iter()
        .map(|p| parse_phone(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = FakeGraphConfig {
        listen: args.listen,
        public_base_url: args.public_url.clone(),
        accept_any_token: args.token.is_none() && phone_numbers.is_empty(),
        phone_numbers,
        default_access_token: args.token.clone(),
        templates,
        accept_unknown_templates: args.accept_unknown_templates,
        webhook_url: args.webhook_url.clone(),
        app_secret: args.app_secret.clone(),
        status_delay: Duration::from_millis(args.status_delay_ms),
        send_delivered: !args.no_delivered,
        send_read: !args.no_read,
        max_rps: args.max_rps,
        pair_rate: args.pair_rate.map(|max| PairRate {
            max,
            per: Duration::from_millis(args.pair_window_ms),
        }),
        fail_ratio: args.fail_ratio.clamp(0.0, 1.0),
        fault_delay: Duration::from_millis(args.fault_delay_ms),
        seed: args.seed,
        auto_approve_after: args.auto_approve_ms.map(Duration::from_millis),
        webhook_batch: args.webhook_batch as usize,
        webhook_linger: Duration::from_millis(args.webhook_linger_ms),
        webhook_in_flight: args.webhook_in_flight as usize,
        ..FakeGraphConfig::default()
    };
    let fake = FakeGraph::try_start(config).await?;
    println!("listening on {}", fake.addr());

    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await?;

    println!("{}", serde_json::to_string_pretty(&fake.stats())?);
    fake.stop().await;
    Ok(())
}
