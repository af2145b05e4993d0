//! `plantilla send`: the command line as a client of a plantilla server's native API.
//!
//! One number goes to `POST /v1/messages`; a CSV goes to `POST /v1/messages/batch` in chunks,
//! one request per chunk, each with an `Idempotency-Key` derived from one key for the whole
//! file (`<key>.<chunk number>`). The server derives a key per recipient from it, so sending
//! the same file again (after a crash, a lost answer, Ctrl-C) answers the rows already
//! accepted with their first answer and sends only what was not sent. The same key is what
//! makes retrying a request after a network error safe.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::csv;
use crate::config::Secret;
use crate::domain::phone::PhoneNumber;

/// Every row accepted (or, for `--dry-run`, every row valid).
pub const EXIT_OK: i32 = 0;
/// Not everything was attempted: network, authentication, a refused request, a bad file.
pub const EXIT_ERROR: i32 = 1;
/// Everything was attempted and some rows were rejected (or, for `--dry-run`, are invalid).
pub const EXIT_REJECTED: i32 = 2;

/// Longest `--idempotency-key`: the server allows 255 characters and adds `.<chunk>#<row>`.
const MAX_KEY_LEN: usize = 200;

const AFTER_HELP: &str = "\
Examples:
  export PLANTILLA_URL=http://127.0.0.1:8080 PLANTILLA_TOKEN=pk_…
  plantilla send --template tpl_… --to 50755667788 --param name=Ana --param order=A-1
  plantilla send --template-name order_update --language es --csv clientes.csv
  plantilla send --template tpl_… --csv clientes.csv --dry-run

The CSV has a header row. The column `to` (or `phoneNumber`) holds the numbers; `clientName`
and `groupName` are optional; every other column is a template param (a `param.` prefix is
also accepted, e.g. `param.name`). Empty cells are left out.

Results go to <csv>.results.csv (--results): row,to,status,messageId,conversationId,error in
the order of the input, status being accepted, rejected or not-sent.

Running the same command on the same file again resumes: rows already accepted are answered
with their first message id and not sent twice, for as long as the server keeps idempotency
keys (24 hours by default). Keep the same file, template, channel and --chunk to resume; an
edited file is a new send.

Exit codes: 0 every row accepted, 2 some rows rejected, 1 an error (network, token, file).";

#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
#[command(group(
    clap::ArgGroup::new("template_choice")
        .required(true)
        .args(["template", "template_name"])
))]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["to", "csv"])))]
pub struct SendArgs {
    /// The server's base URL.
    #[arg(long, env = "PLANTILLA_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A channel's public token or an account API key (ak_…). Prefer the environment variable:
    /// arguments are visible to other users of the machine.
    #[arg(long, env = "PLANTILLA_TOKEN", hide_env_values = true, value_parser = secret)]
    pub token: Option<Secret>,
    /// The channel to send through (needed with an account API key).
    #[arg(long)]
    pub channel: Option<String>,
    /// The template's id.
    #[arg(long)]
    pub template: Option<String>,
    /// The template's name (with --language) instead of its id.
    #[arg(long, requires = "language")]
    pub template_name: Option<String>,
    /// The template's language, e.g. es or en_US (with --template-name).
    #[arg(long, requires = "template_name")]
    pub language: Option<String>,
    /// One recipient: country code and number, digits only (e.g. 50755667788).
    #[arg(long)]
    pub to: Option<String>,
    /// A template param for --to, as name=value; repeat for each param.
    #[arg(long = "param", value_name = "NAME=VALUE", conflicts_with = "csv")]
    pub params: Vec<String>,
    /// The recipient's name, for --to.
    #[arg(long, conflicts_with = "csv")]
    pub client_name: Option<String>,
    /// The group (of the account) the conversation goes to, for --to.
    #[arg(long, conflicts_with = "csv")]
    pub group_name: Option<String>,
    /// A CSV of recipients, one per row (see below).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Where to write the results of a CSV send (default: <csv>.results.csv).
    #[arg(long, value_name = "FILE", conflicts_with = "to")]
    pub results: Option<PathBuf>,
    /// Recipients per batch request (1 to 10000).
    #[arg(long, default_value_t = 1000, conflicts_with = "to", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub chunk: u32,
    /// The idempotency key (default: for a CSV, derived from the file's bytes, the template and
    /// the channel, so the same command resumes; for --to, a new random key).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Schedule the send (every row of a CSV) for this time, RFC 3339 with its offset (e.g.
    /// 2026-12-05T09:00:00-05:00): stored now, sent then. A past time means now.
    #[arg(long, value_name = "TIME", value_parser = send_time)]
    pub at: Option<String>,
    /// Check the recipients (phone numbers, CSV shape) without sending anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Most attempts of one request when the network fails or the server answers 5xx or 429.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub attempts: u32,
    /// First delay between attempts, doubled after each (milliseconds).
    #[arg(long, default_value_t = 500, hide = true)]
    pub retry_delay_ms: u64,
}

/// `--at`: an RFC 3339 time, passed on as written.
fn send_time(s: &str) -> Result<String, String> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|_| s.trim().to_string())
        .map_err(|_| {
            format!(
                "'{s}' is not an RFC 3339 time with its offset, such as 2026-12-05T09:00:00-05:00"
            )
        })
}

fn secret(s: &str) -> Result<Secret, String> {
    Ok(Secret::new(s.trim()))
}

/// Runs `plantilla send` and exits with its code.
pub async fn main(args: SendArgs) -> anyhow::Result<()> {
    let code = run(args).await?;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    if code != EXIT_OK {
        std::process::exit(code);
    }
    Ok(())
}

/// Runs `plantilla send`; the exit code (an `Err` is an error before anything was sent).
pub async fn run(args: SendArgs) -> anyhow::Result<i32> {
    let template = TemplateSpec::from_args(&args)?;
    if let Some(key) = &args.idempotency_key {
        check_key(key)?;
    }
    match &args.csv {
        Some(path) => bulk(&args, &template, path).await,
        None => single(&args, &template).await,
    }
}

fn check_key(key: &str) -> anyhow::Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.chars().all(|c| c.is_ascii_graphic()) {
        bail!("--idempotency-key must be 1 to {MAX_KEY_LEN} visible ASCII characters (no spaces)");
    }
    Ok(())
}

// --- Requests ------------------------------------------------------------------------------

enum TemplateSpec {
    Id(String),
    Name { name: String, language: String },
}

impl TemplateSpec {
    fn from_args(args: &SendArgs) -> anyhow::Result<Self> {
        match (&args.template, &args.template_name, &args.language) {
            (Some(id), None, None) => Ok(TemplateSpec::Id(id.clone())),
            (None, Some(name), Some(language)) => Ok(TemplateSpec::Name {
                name: name.clone(),
                language: language.clone(),
            }),
            _ => bail!("give --template <id>, or --template-name with --language"),
        }
    }

    fn add_to(&self, body: &mut Map<String, Value>) {
        match self {
            TemplateSpec::Id(id) => {
                body.insert("templateId".into(), json!(id));
            }
            TemplateSpec::Name { name, language } => {
                body.insert("templateName".into(), json!(name));
                body.insert("language".into(), json!(language));
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            TemplateSpec::Id(id) => format!("id:{id}"),
            TemplateSpec::Name { name, language } => format!("name:{name}:{language}"),
        }
    }
}

/// The server's answer: its status and its JSON body (`Null` when it is not JSON).
struct Answer {
    status: u16,
    body: Value,
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: Secret,
    attempts: u32,
    retry_delay: Duration,
}

impl Api {
    fn new(args: &SendArgs) -> anyhow::Result<Api> {
        let base = args.url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!(
                "--url must be an http:// or https:// URL, got '{}'",
                args.url
            );
        }
        let token = args
            .token
            .clone()
            .filter(|t| !t.expose().is_empty())
            .context(
                "no token: set PLANTILLA_TOKEN (or --token) to a channel's public token or an account API key",
            )?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .user_agent(concat!("plantilla-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Api {
            http,
            base,
            token,
            attempts: args.attempts,
            retry_delay: Duration::from_millis(args.retry_delay_ms),
        })
    }

    /// POSTs `body` with `key`, retrying (with the same key, so nothing is sent twice) on
    /// network errors, 408, 429 and 5xx. `Err` says why the last attempt failed.
    async fn post(
        &self,
        path: &str,
        key: &str,
        body: &Value,
        mut on_retry: impl FnMut(String),
    ) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base);
        let payload = body.to_string();
        let mut attempt = 1;
        loop {
            let (why, retry_after) = match self.try_post(&url, key, &payload).await {
                Ok((answer, _)) if !retryable(answer.status) => return Ok(answer),
                Ok((answer, retry_after)) => {
                    let (_, text) = problem_text(&answer.body, None);
                    (format!("HTTP {}: {text}", answer.status), retry_after)
                }
                Err(e) => (e, None),
            };
            if attempt >= self.attempts {
                return Err(format!("{why} (after {attempt} attempts)"));
            }
            let backoff = self
                .retry_delay
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(Duration::from_secs(30));
            let delay = retry_after
                .map(|d| d.min(Duration::from_secs(60)))
                .unwrap_or(backoff);
            on_retry(format!(
                "{why}; attempt {} of {} in {:.1} s with the same idempotency key",
                attempt + 1,
                self.attempts,
                delay.as_secs_f64()
            ));
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn try_post(
        &self,
        url: &str,
        key: &str,
        payload: &str,
    ) -> Result<(Answer, Option<Duration>), String> {
        let response = self
            .http
            .post(url)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", self.token.expose()),
            )
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", key)
            .body(payload.to_string())
            .send()
            .await
            .map_err(describe_reqwest)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.map_err(describe_reqwest)?;
        let body = serde_json::from_str(&text).unwrap_or_else(|_| {
            let mut short: String = text.chars().take(200).collect();
            if short.trim().is_empty() {
                short = "(no body)".into();
            }
            json!({"detail": short})
        });
        Ok((Answer { status, body }, retry_after))
    }
}

fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// A reqwest error with its causes ("error sending request: connection refused").
fn describe_reqwest(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = if e.is_timeout() {
        "the request timed out".to_string()
    } else if e.is_connect() {
        "cannot connect to the server".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// A problem's type slug (`missing-params`) and its text, with the batch's field prefix
/// (`recipients[3].`) taken out so it reads as being about the row.
fn problem_text(problem: &Value, prefix: Option<&str>) -> (String, String) {
    let slug = problem["type"]
        .as_str()
        .map(|t| t.rsplit('/').next().unwrap_or(t).to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let mut text = problem["detail"]
        .as_str()
        .filter(|d| !d.is_empty())
        .or(problem["title"].as_str())
        .unwrap_or("no details")
        .to_string();
    if let Some(prefix) = prefix {
        text = text.replace(prefix, "");
    }
    (slug, text)
}

// --- One number ----------------------------------------------------------------------------

fn parse_params(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    for p in raw {
        let Some((name, value)) = p.split_once('=') else {
            bail!("--param '{p}' must be name=value");
        };
        let name = name.trim();
        if name.is_empty() {
            bail!("--param '{p}' has no name before '='");
        }
        if params.insert(name.to_string(), value.to_string()).is_some() {
            bail!("--param {name} is given twice");
        }
    }
    Ok(params)
}

async fn single(args: &SendArgs, template: &TemplateSpec) -> anyhow::Result<i32> {
    let to = args.to.as_deref().unwrap_or_default().trim();
    let params = parse_params(&args.params)?;
    if args.dry_run {
        return Ok(match PhoneNumber::parse(to) {
            Ok(_) => {
                println!("{to}: valid; nothing was sent (--dry-run)");
                EXIT_OK
            }
            Err(e) => {
                println!("{to}: invalid: {e}; nothing was sent (--dry-run)");
                EXIT_REJECTED
            }
        });
    }
    let api = Api::new(args)?;
    let mut body = Map::new();
    template.add_to(&mut body);
    if let Some(channel) = &args.channel {
        body.insert("channelId".into(), json!(channel));
    }
    body.insert("to".into(), json!(to));
    body.insert("params".into(), json!(params));
    if let Some(name) = &args.client_name {
        body.insert("clientName".into(), json!(name));
    }
    if let Some(group) = &args.group_name {
        body.insert("groupName".into(), json!(group));
    }
    if let Some(at) = &args.at {
        body.insert("sendAt".into(), json!(at));
    }
    let key = args
        .idempotency_key
        .clone()
        .unwrap_or_else(|| crate::domain::ids::new_id("cli"));
    let answer = api
        .post("/v1/messages", &key, &Value::Object(body), |why| {
            eprintln!("retrying: {why}")
        })
        .await;
    let answer = match answer {
        Ok(a) => a,
        Err(why) => {
            eprintln!(
                "error: {why}\nThe message may or may not have been accepted; to find out without \
                 sending twice, run the same command with --idempotency-key {key}"
            );
            return Ok(EXIT_ERROR);
        }
    };
    let (slug, text) = problem_text(&answer.body, None);
    match answer.status {
        200..=299 => {
            println!("{}", serde_json::to_string_pretty(&answer.body)?);
            Ok(EXIT_OK)
        }
        401 | 403 => {
            eprintln!("error: the server refused the token: {text}");
            Ok(EXIT_ERROR)
        }
        400..=499 => {
            println!("{}", serde_json::to_string_pretty(&answer.body)?);
            eprintln!("rejected ({} {slug}): {text}", answer.status);
            Ok(EXIT_REJECTED)
        }
        status => {
            eprintln!("error: the server answered {status}: {text}");
            Ok(EXIT_ERROR)
        }
    }
}

// --- A CSV of recipients -------------------------------------------------------------------

/// What a CSV column holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Column {
    To,
    ClientName,
    GroupName,
    Param(String),
}

fn columns(header: &[String]) -> anyhow::Result<Vec<Column>> {
    let mut columns = Vec::new();
    let mut seen: HashMap<Column, usize> = HashMap::new();
    for (i, raw) in header.iter().enumerate() {
        let name = raw.trim();
        let column = match name.to_ascii_lowercase().as_str() {
            "" => bail!("column {} of the header has no name", i + 1),
            "to" | "phonenumber" => Column::To,
            "clientname" => Column::ClientName,
            "groupname" => Column::GroupName,
            _ => {
                let param = name.strip_prefix("param.").unwrap_or(name).trim();
                if param.is_empty() {
                    bail!("column {} of the header names no param", i + 1);
                }
                Column::Param(param.to_string())
            }
        };
        if let Some(first) = seen.insert(column.clone(), i) {
            bail!(
                "columns {} ('{}') and {} ('{name}') of the header say the same thing",
                first + 1,
                header[first].trim(),
                i + 1
            );
        }
        columns.push(column);
    }
    if !columns.contains(&Column::To) {
        bail!(
            "the header needs a column 'to' (or 'phoneNumber') with the numbers; it has: {}",
            header.join(", ")
        );
    }
    Ok(columns)
}

/// One data row of the CSV.
struct Row {
    /// 1 for the first row after the header.
    number: usize,
    /// Where it starts in the file.
    line: usize,
    to: String,
    /// The recipient as the batch API takes it, or why the row cannot be sent.
    recipient: Result<Value, String>,
}

fn read_rows(text: &str) -> anyhow::Result<Vec<Row>> {
    let records = csv::parse(text)?;
    let Some((header, data)) = records.split_first() else {
        bail!("the file is empty; it needs a header row and one row per recipient");
    };
    let columns = columns(&header.fields)?;
    let rows = data
        .iter()
        .enumerate()
        .map(|(i, record)| {
            let mut to = String::new();
            let mut recipient = Map::new();
            let mut params = Map::new();
            for (column, value) in columns.iter().zip(&record.fields) {
                let value = value.trim();
                match column {
                    Column::To => to = value.to_string(),
                    _ if value.is_empty() => {}
                    Column::ClientName => {
                        recipient.insert("clientName".into(), json!(value));
                    }
                    Column::GroupName => {
                        recipient.insert("groupName".into(), json!(value));
                    }
                    Column::Param(name) => {
                        params.insert(name.clone(), json!(value));
                    }
                }
            }
            let recipient = if record.fields.len() != columns.len() {
                Err(format!(
                    "the row has {} fields but the header has {}",
                    record.fields.len(),
                    columns.len()
                ))
            } else {
                recipient.insert("to".into(), json!(to));
                recipient.insert("params".into(), Value::Object(params));
                Ok(Value::Object(recipient))
            };
            Row {
                number: i + 1,
                line: record.line,
                to,
                recipient,
            }
        })
        .collect();
    Ok(rows)
}

/// The default key of a CSV send: the same file, template and channel give the same key.
fn derived_key(bytes: &[u8], template: &TemplateSpec, channel: Option<&str>) -> String {
    let mut hash = Sha256::new();
    hash.update(b"plantilla send v1\0");
    hash.update(bytes);
    hash.update(b"\0");
    hash.update(template.describe().as_bytes());
    hash.update(b"\0");
    hash.update(channel.unwrap_or_default().as_bytes());
    format!("csv-{}", &hex::encode(hash.finalize())[..32])
}

fn default_results_path(csv: &Path) -> PathBuf {
    let mut path = csv.as_os_str().to_owned();
    path.push(".results.csv");
    PathBuf::from(path)
}

/// What happened to one row.
#[derive(Debug, Clone, Default)]
struct Outcome {
    status: &'static str,
    message_id: String,
    conversation_id: String,
    /// The problem type of a rejected row (`validation`, `missing-params`, `csv`, …).
    kind: String,
    error: String,
}

impl Outcome {
    fn rejected(kind: &str, error: String) -> Outcome {
        Outcome {
            status: "rejected",
            kind: kind.into(),
            error: format!("{kind}: {error}"),
            ..Outcome::default()
        }
    }

    fn not_sent(why: &str) -> Outcome {
        Outcome {
            status: "not-sent",
            error: why.into(),
            ..Outcome::default()
        }
    }

    /// One item of a batch answer's `results`.
    fn from_result(result: &Value) -> Outcome {
        let index = result["index"].as_u64().unwrap_or_default();
        if result["status"] == "accepted" {
            return Outcome {
                status: "accepted",
                message_id: result["messageId"].as_str().unwrap_or_default().into(),
                conversation_id: result["conversation"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
                ..Outcome::default()
            };
        }
        let problem = &result["problem"];
        let (kind, text) = problem_text(problem, Some(&format!("recipients[{index}].")));
        Outcome {
            conversation_id: problem["conversationId"]
                .as_str()
                .unwrap_or_default()
                .into(),
            ..Outcome::rejected(&kind, text)
        }
    }
}

/// The progress on stderr: indicatif's bar on a terminal; elsewhere (a file, a pipe), where a
/// bar would be escape codes, a line now and then.
struct Progress {
    /// Hidden when stderr is not a terminal.
    bar: ProgressBar,
    total: usize,
    start: Instant,
    last_line: Option<Instant>,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr())
            .with_style(
                ProgressStyle::with_template("[{bar:30}] {pos}/{len} rows {rate}")
                    .expect("a valid template")
                    .with_key(
                        "rate",
                        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.0}/s", state.per_sec());
                        },
                    )
                    .progress_chars("## "),
            );
        Progress {
            bar,
            total,
            start: Instant::now(),
            last_line: None,
        }
    }

    fn update(&mut self, done: usize) {
        if !self.bar.is_hidden() {
            self.bar.set_position(done as u64);
        } else if done == self.total
            || self
                .last_line
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
        {
            let rate = done as f64 / self.start.elapsed().as_secs_f64().max(1e-3);
            eprintln!("sent {done}/{} rows ({rate:.0} rows/s)", self.total);
            self.last_line = Some(Instant::now());
        }
    }

    /// A message of its own line, above the bar.
    fn note(&self, message: &str) {
        self.bar.suspend(|| eprintln!("{message}"));
    }

    fn finish(&self) {
        if !self.bar.is_hidden() {
            // The bar stays, and what follows starts below it.
            self.bar.finish();
            eprintln!();
        }
    }
}

async fn bulk(args: &SendArgs, template: &TemplateSpec, path: &Path) -> anyhow::Result<i32> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not UTF-8 (byte {}); save it as \"CSV UTF-8\"",
            path.display(),
            e.valid_up_to() + 1
        )
    })?;
    let rows = read_rows(text).with_context(|| format!("cannot read {}", path.display()))?;
    if args.dry_run {
        return Ok(dry_run(&rows));
    }
    let api = Api::new(args)?;
    let key = match &args.idempotency_key {
        Some(k) => k.clone(),
        // Another time is another send: the same file scheduled differently is not a retry.
        None => match &args.at {
            None => derived_key(&bytes, template, args.channel.as_deref()),
            Some(at) => {
                let at = chrono::DateTime::parse_from_rfc3339(at)
                    .map(|t| t.timestamp_millis())
                    .unwrap_or_default();
                format!(
                    "{}-at{at}",
                    derived_key(&bytes, template, args.channel.as_deref())
                )
            }
        },
    };
    let results_path = args
        .results
        .clone()
        .unwrap_or_else(|| default_results_path(path));
    let mut results = ResultsFile::create(&results_path)?;

    let mut outcomes: Vec<Option<Outcome>> = rows
        .iter()
        .map(|r| {
            r.recipient
                .as_ref()
                .err()
                .map(|e| Outcome::rejected("csv", e.clone()))
        })
        .collect();
    let sendable: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].recipient.is_ok())
        .collect();
    let chunks: Vec<&[usize]> = sendable.chunks(args.chunk as usize).collect();
    eprintln!(
        "sending {} rows of {} in {} request{} to {} (idempotency key {key})",
        rows.len(),
        path.display(),
        chunks.len(),
        if chunks.len() == 1 { "" } else { "s" },
        api.base,
    );
    let mut progress = Progress::new(rows.len());
    let mut fatal: Option<String> = None;
    for (n, chunk) in chunks.iter().enumerate() {
        let first = rows[chunk[0]].number;
        let last = rows[*chunk.last().expect("chunks are not empty")].number;
        let mut body = Map::new();
        template.add_to(&mut body);
        if let Some(channel) = &args.channel {
            body.insert("channelId".into(), json!(channel));
        }
        let recipients: Vec<Value> = chunk
            .iter()
            .map(|&i| rows[i].recipient.clone().expect("sendable"))
            .collect();
        body.insert("recipients".into(), Value::Array(recipients));
        if let Some(at) = &args.at {
            body.insert("sendAt".into(), json!(at));
        }
        let answer = api
            .post(
                "/v1/messages/batch",
                &format!("{key}.{n}"),
                &Value::Object(body),
                |why| progress.note(&format!("rows {first}-{last}: {why}")),
            )
            .await;
        match answer {
            Ok(a) if a.status == 202 => {
                let items = a.body["results"].as_array().map_or(&[][..], Vec::as_slice);
                if items.len() != chunk.len() {
                    fatal = Some(format!(
                        "the server answered rows {first}-{last} with {} results for {} rows",
                        items.len(),
                        chunk.len()
                    ));
                }
                for (item, &i) in items.iter().zip(chunk.iter()) {
                    let outcome = Outcome::from_result(item);
                    if outcome.kind == "idempotency-key-reused" {
                        fatal = Some(format!(
                            "idempotency key {key} was used before for other rows: was {} \
                             edited, or --chunk changed? Resume with the same file and --chunk, \
                             or give a new --idempotency-key to send it as a new batch",
                            path.display()
                        ));
                    }
                    outcomes[i] = Some(outcome);
                }
            }
            Ok(a) => {
                let (slug, text) = problem_text(&a.body, None);
                fatal = Some(match a.status {
                    401 | 403 => format!("the server refused the token: {text}"),
                    s => format!("the server refused rows {first}-{last} ({s} {slug}): {text}"),
                });
            }
            Err(why) => fatal = Some(format!("rows {first}-{last} could not be sent: {why}")),
        }
        if let Some(why) = &fatal {
            for o in outcomes.iter_mut().filter(|o| o.is_none()) {
                *o = Some(Outcome::not_sent(why));
            }
        }
        let done = results.write_ready(&rows, &outcomes)?;
        progress.update(done);
        if fatal.is_some() {
            break;
        }
    }
    let done = results.write_ready(&rows, &outcomes)?;
    if chunks.is_empty() || done < rows.len() {
        progress.update(done);
    }
    progress.finish();
    let outcomes: Vec<Outcome> = outcomes.into_iter().flatten().collect();
    print_summary(&outcomes, progress.start.elapsed(), &results_path);
    if let Some(why) = fatal {
        eprintln!(
            "error: {why}\nRun the same command again to resume: rows already accepted are not sent twice."
        );
        return Ok(EXIT_ERROR);
    }
    if outcomes.iter().all(|o| o.status == "accepted") {
        Ok(EXIT_OK)
    } else {
        Ok(EXIT_REJECTED)
    }
}

/// The results CSV, written as rows get their outcome, in the order of the input.
struct ResultsFile {
    file: ::csv::Writer<std::fs::File>,
    path: PathBuf,
    written: usize,
}

impl ResultsFile {
    fn create(path: &Path) -> anyhow::Result<ResultsFile> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write the results to {}", path.display()))?;
        let mut results = ResultsFile {
            file: csv::writer(file),
            path: path.to_path_buf(),
            written: 0,
        };
        results.write(&[
            "row",
            "to",
            "status",
            "messageId",
            "conversationId",
            "error",
        ])?;
        results.flush()?;
        Ok(results)
    }

    fn write(&mut self, record: &[&str]) -> anyhow::Result<()> {
        self.file
            .write_record(record)
            .with_context(|| format!("cannot write the results to {}", self.path.display()))
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.file
            .flush()
            .with_context(|| format!("cannot write the results to {}", self.path.display()))
    }

    /// Writes the rows whose outcome is known and that follow the ones written; how many rows
    /// are written in all.
    fn write_ready(&mut self, rows: &[Row], outcomes: &[Option<Outcome>]) -> anyhow::Result<usize> {
        while let Some(Some(o)) = outcomes.get(self.written) {
            let row = &rows[self.written];
            self.write(&[
                row.number.to_string().as_str(),
                &row.to,
                o.status,
                &o.message_id,
                &o.conversation_id,
                &o.error,
            ])?;
            self.written += 1;
        }
        self.flush()?;
        Ok(self.written)
    }
}

fn print_summary(outcomes: &[Outcome], elapsed: Duration, results: &Path) {
    let count = |status: &str| outcomes.iter().filter(|o| o.status == status).count();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| o.status == "rejected") {
        *by_kind.entry(o.kind.as_str()).or_default() += 1;
    }
    let rejected = count("rejected");
    let kinds = if by_kind.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        format!(" ({})", list.join(", "))
    };
    let secs = elapsed.as_secs_f64();
    println!("rows       {}", outcomes.len());
    println!("accepted   {}", count("accepted"));
    println!("rejected   {rejected}{kinds}");
    let not_sent = count("not-sent");
    if not_sent > 0 {
        println!("not sent   {not_sent}");
    }
    println!(
        "elapsed    {secs:.2} s ({:.0} rows/s)",
        outcomes.len() as f64 / secs.max(1e-3)
    );
    println!("results    {}", results.display());
}

/// `--dry-run` of a CSV: what the server would refuse for the shape of the rows and the
/// numbers (template params are checked by the server only).
fn dry_run(rows: &[Row]) -> i32 {
    let mut invalid = 0;
    let mut repeated = 0;
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for row in rows {
        let problem = match &row.recipient {
            Err(e) => Some(e.clone()),
            Ok(_) => PhoneNumber::parse(&row.to).err().map(|e| e.to_string()),
        };
        if let Some(problem) = problem {
            invalid += 1;
            println!("row {} (line {}): {problem}", row.number, row.line);
        } else if let Some(first) = first_seen.get(row.to.as_str()) {
            repeated += 1;
            println!(
                "row {} (line {}): warning: {} is also on row {first}; while that conversation \
                 is pending WhatsApp's confirmation the server refuses this one",
                row.number, row.line, row.to
            );
        } else {
            first_seen.insert(&row.to, row.number);
        }
    }
    println!(
        "{} rows: {} valid, {invalid} invalid{}; nothing was sent (--dry-run)",
        rows.len(),
        rows.len() - invalid,
        if repeated > 0 {
            format!(", {repeated} repeat an earlier number")
        } else {
            String::new()
        }
    );
    if invalid == 0 { EXIT_OK } else { EXIT_REJECTED }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_columns_are_recognised() {
        let h = |names: &[&str]| columns(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            h(&[
                "phoneNumber",
                "ClientName",
                "groupName",
                "name",
                "param.order"
            ])
            .unwrap(),
            vec![
                Column::To,
                Column::ClientName,
                Column::GroupName,
                Column::Param("name".into()),
                Column::Param("order".into())
            ]
        );
        let e = h(&["name", "order"]).unwrap_err().to_string();
        assert!(e.contains("needs a column 'to'"), "{e}");
        let e = h(&["to", "name", "param.name"]).unwrap_err().to_string();
        assert!(e.contains("columns 2 ('name') and 3"), "{e}");
        assert!(h(&["to", "phoneNumber"]).is_err());
        assert!(h(&["to", " "]).is_err());
    }

    #[test]
    fn rows_become_recipients() {
        let rows = read_rows(
            "to,clientName,name,order\n 50755667788 ,Ana,Ana,A-1\n50755667789,,Luis,\n507,x\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].to, "50755667788");
        assert_eq!(
            rows[0].recipient.as_ref().unwrap(),
            &json!({"to": "50755667788", "clientName": "Ana", "params": {"name": "Ana", "order": "A-1"}})
        );
        // Empty cells are left out.
        assert_eq!(
            rows[1].recipient.as_ref().unwrap(),
            &json!({"to": "50755667789", "params": {"name": "Luis"}})
        );
        let e = rows[2].recipient.as_ref().unwrap_err();
        assert!(e.contains("2 fields but the header has 4"), "{e}");
        assert!(read_rows("").is_err());
    }

    #[test]
    fn the_derived_key_depends_on_file_template_and_channel() {
        let id = TemplateSpec::Id("tpl_1".into());
        let k = derived_key(b"to\n1\n", &id, None);
        assert_eq!(k, derived_key(b"to\n1\n", &id, None));
        assert!(k.starts_with("csv-") && k.len() == 36);
        assert_ne!(k, derived_key(b"to\n2\n", &id, None));
        assert_ne!(k, derived_key(b"to\n1\n", &id, Some("ch_1")));
        assert_ne!(
            k,
            derived_key(b"to\n1\n", &TemplateSpec::Id("tpl_2".into()), None)
        );
    }

    #[test]
    fn params_are_name_value_pairs() {
        let p = parse_params(&["name=Ana".into(), "note=a=b".into()]).unwrap();
        assert_eq!(p["note"], "a=b");
        assert!(parse_params(&["name".into()]).is_err());
        assert!(parse_params(&["=x".into()]).is_err());
        assert!(parse_params(&["a=1".into(), "a=2".into()]).is_err());
    }

    #[test]
    fn problems_read_as_being_about_the_row() {
        let p = json!({"type": "/problems/validation", "title": "Invalid request",
                       "detail": "recipients[7].to: phoneNumber is empty"});
        let (kind, text) = problem_text(&p, Some("recipients[7]."));
        assert_eq!(kind, "validation");
        assert_eq!(text, "to: phoneNumber is empty");
        let o = Outcome::from_result(&json!({"index": 7, "status": "rejected", "problem": p}));
        assert_eq!(o.error, "validation: to: phoneNumber is empty");
        let o = Outcome::from_result(&json!({"index": 0, "status": "accepted",
            "messageId": "msg_1", "conversation": {"id": "conv_1", "status": "pending"}}));
        assert_eq!(
            (o.status, o.message_id.as_str(), o.conversation_id.as_str()),
            ("accepted", "msg_1", "conv_1")
        );
    }
}
