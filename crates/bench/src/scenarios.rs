//! The scenarios of issue 5. Each starts its own processes on a fresh database, measures,
//! then checks the counts at the fake Graph server and in the database against what was
//! accepted.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::load::{self, Job, LoadResult, Samples};
use crate::procs::{self, CpuMeter, Proc, RssSampler};
use crate::stack::{
    self, APP_SECRET, BAD_TOKEN, ChannelSeed, GOOD_TOKEN, Probe, Stack, StackConfig,
};
use crate::targets::Figure;
use crate::{Options, Row};

const POLL: Duration = Duration::from_millis(100);
/// How long a count may stay still before a wait gives up.
const STALL: Duration = Duration::from_secs(30);

/// Messages per scenario. `baseline`, `accept` and `pending` are timed in a full run (as
/// many requests as fit in `timed`); the others are counts, since their checks and rates
/// are about a known number of messages.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub timed: Option<Duration>,
    pub baseline: usize,
    pub accept_open: usize,
    pub accept: usize,
    pub pending: usize,
    pub webhooks: usize,
    pub full: usize,
    pub full_channels: usize,
    pub full_rate: u32,
    pub rate1000: usize,
    pub r100_channels: usize,
    pub r100_per_channel: usize,
}

impl Sizes {
    pub fn new(quick: bool, scale: f64, seconds: u64) -> Sizes {
        let s = |n: usize| ((n as f64 * scale).round() as usize).max(1);
        if quick {
            Sizes {
                timed: None,
                baseline: s(300),
                accept_open: 20,
                accept: s(300),
                pending: s(300),
                webhooks: s(100),
                full: s(300),
                full_channels: 2,
                full_rate: 2000,
                rate1000: s(300),
                r100_channels: 10,
                r100_per_channel: s(30),
            }
        } else {
            const UNBOUNDED: usize = 100_000_000;
            Sizes {
                timed: Some(Duration::from_secs(seconds)),
                baseline: UNBOUNDED,
                accept_open: 500,
                accept: UNBOUNDED,
                pending: UNBOUNDED,
                webhooks: s(5_000),
                full: s(10_000),
                full_channels: 10,
                full_rate: 2000,
                rate1000: s(10_000),
                r100_channels: 100,
                r100_per_channel: s(400),
            }
        }
    }

    /// The deadline of a timed load phase.
    fn timed_deadline(&self, opts: &Options) -> Duration {
        self.timed.unwrap_or(opts.deadline)
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A recipient no earlier send used (Panama, 8-digit national numbers).
fn new_phone(i: usize) -> String {
    format!("5076{:07}", i % 10_000_000)
}

/// One of the numbers whose conversations `accept` opens first.
fn open_phone(i: usize) -> String {
    format!("5077{:07}", i % 10_000_000)
}

/// Compat `SendMessage` number `i`: through channel `i % tokens`, to `phone(i)`, expecting
/// `"message":"<expect>"`.
fn send_job(
    st: &Stack,
    template_id: &str,
    channels: &[ChannelSeed],
    phone: impl Fn(usize) -> String + Send + Sync + 'static,
    expect: &'static str,
) -> Job {
    let client = st.client.clone();
    let url: Arc<str> = format!("{}/api/Template/SendMessage", st.base).into();
    let auth: Arc<Vec<String>> = Arc::new(
        channels
            .iter()
            .map(|c| format!("Bearer {}", c.token))
            .collect(),
    );
    let template_id: Arc<str> = template_id.into();
    let want: &'static str = match expect {
        "Sent" => r#""message":"Sent""#,
        _ => r#""message":"Pending""#,
    };
    Arc::new(move |i| {
        let client = client.clone();
        let url = url.clone();
        let auth = auth.clone();
        let body = format!(
            r#"{{"templateId":"{template_id}","phoneNumber":"{}","params":{{"name":"Ana"}}}}"#,
            phone(i)
        )
        .into_bytes();
        Box::pin(async move {
            let a = &auth[i % auth.len()];
            load::post_expect(
                &client,
                &url,
                &[("Authorization", a.as_str())],
                body,
                200,
                Some(want),
            )
            .await
        })
    })
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn request_columns(row: &mut Row, r: &LoadResult, timed: bool) {
    row.p50 = r.latency.pct_ms(50.0);
    row.p90 = r.latency.pct_ms(90.0);
    row.p99 = r.latency.pct_ms(99.0);
    row.errors += r.errors as u64;
    if r.errors > 0 {
        row.fail(format!(
            "{} of {} requests answered unexpectedly, e.g. {:?}",
            r.errors, r.done, r.error_samples
        ));
    }
    if r.truncated && !timed {
        row.note(format!(
            "deadline reached: {} requests done, not all asked",
            r.done
        ));
    }
}

fn counts_text(counts: &BTreeMap<String, i64>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fake stats `rejected` without the codes in `allowed`.
fn unexpected_rejections(stats: &Value, allowed: &[&str]) -> Vec<String> {
    stats["rejected"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(code, _)| !allowed.contains(&code.as_str()))
                .map(|(code, n)| format!("{code}×{n}"))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the fake's accepted count equals the messages with a wamid in the database
/// and the fake has no webhook in flight (sends still trickle at 1/s in `accept` and
/// `pending`). Returns the final fake stats and database count.
async fn settle(st: &Stack, timeout: Duration) -> anyhow::Result<(Value, i64)> {
    let until = Instant::now() + timeout;
    loop {
        let stats = st.fake_stats().await?;
        let with_id = st.db.with_provider_id().await?;
        let pending = stats["webhooks"]["pending"].as_i64().unwrap_or(0);
        if (stats["accepted"].as_i64() == Some(with_id) && pending == 0) || Instant::now() > until {
            return Ok((stats, with_id));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `body` on a fresh stack, always shutting it down.
async fn with_stack<F>(opts: &Options, name: &str, cfg: StackConfig, body: F) -> Row
where
    F: AsyncFnOnce(&mut Stack, &mut Row) -> anyhow::Result<()>,
{
    let mut row = Row::new(name);
    match Stack::start(opts, name, cfg).await {
        Ok(mut st) => {
            if let Err(e) = body(&mut st, &mut row).await {
                row.fail(format!("{e:#}"));
                if let Some(status) = st.plantilla.exited() {
                    row.fail(format!(
                        "plantilla exited ({status}): {}",
                        st.plantilla.log_tail(10)
                    ));
                }
            }
            st.shutdown().await;
        }
        Err(e) => row.fail(format!("could not start: {e:#}")),
    }
    row
}

// ---------------------------------------------------------------------------
// baseline
// ---------------------------------------------------------------------------

/// The load generator against a trivial handler in a child process: the machine's ceiling
/// for this load generator and connection count.
pub async fn baseline(opts: &Options, sizes: &Sizes) -> Row {
    let mut row = Row::new("baseline");
    if let Err(e) = baseline_inner(opts, sizes, &mut row).await {
        row.fail(format!("{e:#}"));
    }
    row
}

async fn baseline_inner(opts: &Options, sizes: &Sizes, row: &mut Row) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--trivial-server");
    let log = std::env::temp_dir().join(format!(
        "plantilla-bench-trivial-{}.log",
        std::process::id()
    ));
    let (mut proc, lines) = Proc::spawn("trivial-server", cmd, log.clone(), true)?;
    let addr = procs::listening_addr(
        &mut proc,
        lines.as_ref().expect("stdout"),
        Duration::from_secs(10),
    )?;
    let client = load::client(opts.connections);
    let url: Arc<str> = format!("http://{addr}/api/Template/SendMessage").into();
    let job: Job = Arc::new(move |i| {
        let client = client.clone();
        let url = url.clone();
        let body = format!(
            r#"{{"templateId":"tpl_0","phoneNumber":"{}","params":{{"name":"Ana"}}}}"#,
            new_phone(i)
        )
        .into_bytes();
        Box::pin(async move {
            load::post_expect(
                &client,
                &url,
                &[("Authorization", "Bearer pk_baseline")],
                body,
                200,
                Some(r#""success":true"#),
            )
            .await
        })
    });
    // Warm the connections up.
    load::run(
        opts.connections,
        opts.connections * 4,
        opts.deadline,
        job.clone(),
    )
    .await;
    let sampler = RssSampler::start(proc.pid);
    let r = load::run(
        opts.connections,
        sizes.baseline,
        sizes.timed_deadline(opts),
        job,
    )
    .await;
    row.peak_rss_mb = Some(mb(sampler.finish()));
    row.ops = Some(r.ops_per_sec());
    row.unit = "req/s";
    request_columns(row, &r, sizes.timed.is_some());
    row.note(format!(
        "{} requests in {:.1} s, {} connections, trivial axum handler in a child process",
        r.done,
        r.elapsed.as_secs_f64(),
        opts.connections
    ));
    proc.stop(Duration::from_secs(2));
    let _ = std::fs::remove_file(log);
    Ok(())
}

// ---------------------------------------------------------------------------
// accept / pending
// ---------------------------------------------------------------------------

/// Compat SendMessage to numbers whose conversations are open ("Sent"): the accept path.
/// The conversations are opened first (one send each, waited for until `read`); then the
/// channel's rate is lowered to 1/s so the dispatcher, which still wakes on every accept,
/// sends almost nothing while the accept path is measured.
pub async fn accept(opts: &Options, sizes: &Sizes) -> Row {
    let cfg = StackConfig {
        webhooks: true,
        pg_server: None,
    };
    let (k, n, conns) = (sizes.accept_open, sizes.accept, opts.connections);
    let deadline = opts.deadline;
    let (timed, measure) = (sizes.timed.is_some(), sizes.timed_deadline(opts));
    with_stack(opts, "accept", cfg, async move |st: &mut Stack, row: &mut Row| {
        let account = st.create_account().await?;
        let ch = st
            .create_channel(&account, "3000001", GOOD_TOKEN, 2000)
            .await?;
        let tpl = st.create_template(&account).await?;
        let channels = [ch];

        let pre = load::run(
            conns,
            k,
            deadline,
            send_job(st, &tpl, &channels, open_phone, "Pending"),
        )
        .await;
        if pre.errors > 0 {
            anyhow::bail!("opening conversations: {:?}", pre.error_samples);
        }
        st.wait_for(Probe::Read, k as i64, POLL, STALL).await?;
        st.patch_channel(&channels[0].id, json!({"messagesPerSecond": 1}))
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;

        let sampler = RssSampler::start(st.plantilla.pid);
        let cpu = CpuMeter::start(&[
            ("plantilla", st.plantilla.pid),
            ("fake-graph", st.fake.pid),
            ("load generator", std::process::id()),
        ]);
        let r = load::run(
            conns,
            n,
            measure,
            send_job(st, &tpl, &channels, move |i| open_phone(i % k), "Sent"),
        )
        .await;
        row.note(cpu.finish(r.done as u64, "request").line);
        row.peak_rss_mb = Some(mb(sampler.finish()));
        row.ops = Some(r.ops_per_sec());
        row.unit = "req/s";
        request_columns(row, &r, timed);

        let (stats, with_id) = settle(st, Duration::from_secs(10)).await?;
        let counts = st.db.status_counts().await?;
        let total: i64 = counts.values().sum();
        let want = (k + r.ok()) as i64;
        if total != want {
            row.fail(format!(
                "database has {total} messages, {want} were accepted ({})",
                counts_text(&counts)
            ));
        }
        if stats["accepted"].as_i64() != Some(with_id) {
            row.fail(format!(
                "fake accepted {} sends, database has {with_id} messages with a wamid",
                stats["accepted"]
            ));
        }
        if counts.get("failed").copied().unwrap_or(0) > 0 {
            row.fail(format!("failed messages: {}", counts_text(&counts)));
        }
        let bad = unexpected_rejections(&stats, &[]);
        if !bad.is_empty() {
            row.fail(format!("fake rejected sends: {bad:?}"));
        }
        row.note(format!(
            "{} sends in {:.1} s to {k} open conversations, {conns} connections; messages: {}; fake accepted {}",
            r.done,
            r.elapsed.as_secs_f64(),
            counts_text(&counts),
            stats["accepted"]
        ));
        row.figure(
            Figure::SynchronousFull,
            if sqlite_synchronous(opts) == "full" {
                1.0
            } else {
                0.0
            },
        );
        Ok(())
    })
    .await
}

/// The `synchronous` plantilla's SQLite runs with: its default, `full`, unless the bench
/// was told otherwise (`--plantilla-env PLANTILLA_SQLITE_SYNCHRONOUS=…`; the last one wins,
/// as it is the last set on the command).
fn sqlite_synchronous(opts: &Options) -> &str {
    opts.plantilla_env
        .iter()
        .rev()
        .find(|(k, _)| k == "PLANTILLA_SQLITE_SYNCHRONOUS")
        .map_or("full", |(_, v)| v.as_str())
}

/// Every send to a new number: a new pending conversation each time. The channel's rate is
/// 1/s, as in `accept`, to measure the accept path.
pub async fn pending(opts: &Options, sizes: &Sizes) -> Row {
    let cfg = StackConfig {
        webhooks: true,
        pg_server: None,
    };
    let (n, conns) = (sizes.pending, opts.connections);
    let (timed, measure) = (sizes.timed.is_some(), sizes.timed_deadline(opts));
    with_stack(opts, "pending", cfg, async move |st: &mut Stack, row: &mut Row| {
        let account = st.create_account().await?;
        let ch = st
            .create_channel(&account, "3000002", GOOD_TOKEN, 1)
            .await?;
        let tpl = st.create_template(&account).await?;
        let channels = [ch];
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sampler = RssSampler::start(st.plantilla.pid);
        let cpu = CpuMeter::start(&[
            ("plantilla", st.plantilla.pid),
            ("fake-graph", st.fake.pid),
            ("load generator", std::process::id()),
        ]);
        let r = load::run(
            conns,
            n,
            measure,
            send_job(st, &tpl, &channels, new_phone, "Pending"),
        )
        .await;
        row.note(cpu.finish(r.done as u64, "request").line);
        row.peak_rss_mb = Some(mb(sampler.finish()));
        row.ops = Some(r.ops_per_sec());
        row.unit = "req/s";
        request_columns(row, &r, timed);

        let (stats, with_id) = settle(st, Duration::from_secs(10)).await?;
        let counts = st.db.status_counts().await?;
        let total: i64 = counts.values().sum();
        let conversations = st.db.count("SELECT count(*) FROM conversations").await?;
        let want = r.ok() as i64;
        if total != want || conversations != want {
            row.fail(format!(
                "database has {total} messages and {conversations} conversations, {want} sends were accepted"
            ));
        }
        if stats["accepted"].as_i64() != Some(with_id) {
            row.fail(format!(
                "fake accepted {} sends, database has {with_id} messages with a wamid",
                stats["accepted"]
            ));
        }
        let bad = unexpected_rejections(&stats, &[]);
        if !bad.is_empty() {
            row.fail(format!("fake rejected sends: {bad:?}"));
        }
        row.note(format!(
            "{} sends in {:.1} s to new numbers, {conns} connections; messages: {}",
            r.done,
            r.elapsed.as_secs_f64(),
            counts_text(&counts)
        ));
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------
// webhooks
// ---------------------------------------------------------------------------

/// Webhook ingestion alone: messages are sent to the fake (which posts no webhooks here),
/// then the bench posts their signed `sent`, `delivered` and `read` statuses itself: all the
/// `sent` first, then the `delivered`, then the `read`.
pub async fn webhooks(opts: &Options, sizes: &Sizes) -> Row {
    let cfg = StackConfig {
        webhooks: false,
        pg_server: None,
    };
    let (n, conns, deadline) = (sizes.webhooks, opts.connections, opts.deadline);
    with_stack(opts, "webhooks", cfg, async move |st: &mut Stack, row: &mut Row| {
        let account = st.create_account().await?;
        let ch = st
            .create_channel(&account, "3000003", GOOD_TOKEN, 10_000)
            .await?;
        let tpl = st.create_template(&account).await?;
        let pn = ch.phone_number_id.clone();
        let channels = [ch];
        let fill = load::run(
            conns,
            n,
            deadline,
            send_job(st, &tpl, &channels, new_phone, "Pending"),
        )
        .await;
        if fill.errors > 0 {
            anyhow::bail!("sending the messages: {:?}", fill.error_samples);
        }
        st.wait_for(Probe::WithProviderId, n as i64, POLL, STALL)
            .await?;
        let ids = st.db.provider_ids().await?;

        use fake_graph::{BusinessIds, StatusEvent, payload, signature};
        let biz = BusinessIds {
            waba_id: stack::WABA_ID.into(),
            phone_number_id: pn,
            display_phone_number: stack::DISPLAY_NUMBER.into(),
        };
        let mut bodies = Vec::with_capacity(ids.len() * 3);
        for status in ["sent", "delivered", "read"] {
            for (wamid, wa_id) in &ids {
                let event = StatusEvent::new(wamid, status, wa_id);
                let body = serde_json::to_vec(&payload::statuses_payload(&biz, &[event]))?;
                let sig = signature(APP_SECRET, &body);
                bodies.push((body, sig));
            }
        }
        let bodies = Arc::new(bodies);
        let client = st.client.clone();
        let url: Arc<str> = format!("{}/webhooks/whatsapp", st.base).into();
        let total_requests = bodies.len();
        let job: Job = {
            let bodies = bodies.clone();
            Arc::new(move |j| {
                let client = client.clone();
                let url = url.clone();
                let bodies = bodies.clone();
                Box::pin(async move {
                    let (body, sig) = &bodies[j];
                    load::post_expect(
                        &client,
                        &url,
                        &[("X-Hub-Signature-256", sig.as_str())],
                        body.clone(),
                        200,
                        None,
                    )
                    .await
                })
            })
        };
        let sampler = RssSampler::start(st.plantilla.pid);
        let cpu = CpuMeter::start(&[
            ("plantilla", st.plantilla.pid),
            ("fake-graph", st.fake.pid),
            ("load generator", std::process::id()),
        ]);
        let r = load::run(conns, total_requests, deadline, job).await;
        row.note(cpu.finish(r.done as u64, "request").line);
        row.peak_rss_mb = Some(mb(sampler.finish()));
        row.ops = Some(r.ops_per_sec());
        row.unit = "req/s";
        request_columns(row, &r, false);

        if let Err(e) = st
            .wait_for(Probe::Read, ids.len() as i64, POLL, Duration::from_secs(10))
            .await
        {
            row.fail(format!("{e:#}"));
        }
        let counts = st.db.status_counts().await?;
        let stats = st.fake_stats().await?;
        let want = ids.len() as i64;
        if counts.get("read").copied().unwrap_or(0) != want
            || counts.values().sum::<i64>() != want
        {
            row.fail(format!(
                "want {want} messages read, database has {}",
                counts_text(&counts)
            ));
        }
        if stats["accepted"].as_i64() != Some(fill.ok() as i64) {
            row.fail(format!(
                "fake accepted {}, {} sends were accepted",
                stats["accepted"],
                fill.ok()
            ));
        }
        row.note(format!(
            "{} signed status webhooks (sent, delivered, read) for {} messages, {conns} connections; messages: {}",
            r.done,
            ids.len(),
            counts_text(&counts)
        ));
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------
// full cycle (+ memory)
// ---------------------------------------------------------------------------

/// Sends to new numbers over several fast channels while the dispatcher sends them to the
/// fake and the fake's `sent`, `delivered`, `read` webhooks come back; measured until every
/// message is `read`.
pub async fn full_cycle(opts: &Options, sizes: &Sizes, pg: Option<&str>) -> Row {
    let name = if pg.is_some() {
        "full-cycle-pg"
    } else {
        "full-cycle"
    };
    let cfg = StackConfig {
        webhooks: true,
        pg_server: pg.map(str::to_string),
    };
    let (n, conns, deadline) = (sizes.full, opts.connections, opts.deadline);
    let (channels_n, rate) = (sizes.full_channels, sizes.full_rate);
    let on_pg = pg.is_some();
    with_stack(
        opts,
        name,
        cfg,
        async move |st: &mut Stack, row: &mut Row| {
            let account = st.create_account().await?;
            let mut channels = Vec::new();
            for i in 0..channels_n {
                channels.push(
                    st.create_channel(&account, &format!("31000{i:02}"), GOOD_TOKEN, rate)
                        .await?,
                );
            }
            let tpl = st.create_template(&account).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            row.idle_rss_mb = st.rss_kb().map(mb);

            let sampler = RssSampler::start(st.plantilla.pid);
            let mut cpu = CpuMeter::start(&[
                ("plantilla", st.plantilla.pid),
                ("fake-graph", st.fake.pid),
                ("load generator", std::process::id()),
            ]);
            if on_pg {
                cpu = cpu.with_postgres();
            }
            let t0 = Instant::now();
            let r = load::run(
                conns,
                n,
                deadline,
                send_job(st, &tpl, &channels, new_phone, "Pending"),
            )
            .await;
            request_columns(row, &r, false);
            let accepted = r.ok() as i64;
            let waited = st.wait_for(Probe::Read, accepted, POLL, STALL).await;
            let cpu = cpu.finish(accepted as u64, "message");
            row.note(cpu.line.clone());
            if let Some(us) = cpu.per_op_us("plantilla") {
                row.figure(Figure::PlantillaCpuUs, us);
            }
            if let Some(us) = cpu.per_op_us("PostgreSQL") {
                row.figure(Figure::PostgresCpuUs, us);
            }
            let peak = sampler.finish();
            row.peak_rss_mb = Some(mb(peak));
            let t_read = match waited {
                Ok(t) => t,
                Err(e) => {
                    row.fail(format!("{e:#}"));
                    Instant::now()
                }
            };
            let secs = t_read.duration_since(t0).as_secs_f64();
            let rate_achieved = accepted as f64 / secs;
            row.ops = Some(rate_achieved);
            row.unit = "msg/s";

            // End to end, from the rows.
            let times = st.db.message_times().await?;
            let to_graph = Samples::new(
                times
                    .iter()
                    .filter_map(|t| t.accepted_by_graph.map(|s| (s - t.queued_at).max(0) as u64))
                    .collect(),
            );
            // `read_at` is the webhook's timestamp in whole seconds: the read happened within
            // [read_at, read_at + 1 s). The midpoint is the estimate, the ends are the bounds.
            let read_latency = |offset: i64| {
                Samples::new(
                    times
                        .iter()
                        .filter_map(|t| t.read_at.map(|s| (s + offset - t.queued_at).max(0) as u64))
                        .collect(),
                )
            };
            let to_read = read_latency(500);
            let (read_low, read_high) = (read_latency(0), read_latency(1000));
            row.e2e_sent_p50 = to_graph.pct(50.0).map(|v| v as f64);
            row.e2e_read_p99 = to_read.pct(99.0).map(|v| v as f64);

            // Checks.
            let stats = st.fake_stats().await?;
            let counts = st.db.status_counts().await?;
            if stats["accepted"].as_i64() != Some(accepted) {
                row.fail(format!(
                    "fake accepted {}, {accepted} sends were accepted",
                    stats["accepted"]
                ));
            }
            let bad = unexpected_rejections(&stats, &[]);
            if !bad.is_empty() || stats["dropped"].as_i64().unwrap_or(0) > 0 {
                row.fail(format!(
                    "fake rejected {bad:?}, dropped {}",
                    stats["dropped"]
                ));
            }
            if counts.get("read").copied() != Some(accepted)
                || counts.values().sum::<i64>() != accepted
            {
                row.fail(format!(
                    "want all {accepted} messages read, database has {}",
                    counts_text(&counts)
                ));
            }
            let undelivered = stats["webhooks"]["undelivered"].as_i64().unwrap_or(0);
            if undelivered > 0 {
                row.fail(format!(
                    "{undelivered} webhooks were not accepted by plantilla"
                ));
            }
            row.errors += undelivered as u64;
            row.note(format!(
                "{accepted} messages over {channels_n} channels × {rate}/s, {conns} connections; \
             accepted at {:.0}/s in {:.2} s, all read after {secs:.2} s; messages: {}; \
             webhooks delivered {}",
                r.ops_per_sec(),
                r.elapsed.as_secs_f64(),
                counts_text(&counts),
                stats["webhooks"]["delivered"]
            ));
            row.note(format!(
                "e2e accepted→sent (Graph API answer recorded, ms): p50 {} p90 {} p99 {}; \
             accepted→read (ms; read_at has 1 s resolution: midpoint [bounds]): \
             p50 {} [{}, {}] p90 {} [{}, {}] p99 {} [{}, {}]",
                fmt_opt(to_graph.pct(50.0)),
                fmt_opt(to_graph.pct(90.0)),
                fmt_opt(to_graph.pct(99.0)),
                fmt_opt(to_read.pct(50.0)),
                fmt_opt(read_low.pct(50.0)),
                fmt_opt(read_high.pct(50.0)),
                fmt_opt(to_read.pct(90.0)),
                fmt_opt(read_low.pct(90.0)),
                fmt_opt(read_high.pct(90.0)),
                fmt_opt(to_read.pct(99.0)),
                fmt_opt(read_low.pct(99.0)),
                fmt_opt(read_high.pct(99.0)),
            ));
            let read = counts.get("read").copied().unwrap_or(0);
            let messages = accepted.max(counts.values().sum::<i64>());
            row.figure(Figure::Unread, (messages - read).max(0) as f64);
            Ok(())
        },
    )
    .await
}

fn fmt_opt(v: Option<u64>) -> String {
    v.map_or("–".into(), |v| v.to_string())
}

/// Idle RSS and the peak during the full cycle, taken from a full-cycle row.
pub fn memory(full: &Row) -> Row {
    let mut row = Row::new("memory");
    row.idle_rss_mb = full.idle_rss_mb;
    row.peak_rss_mb = full.peak_rss_mb;
    if !full.failures.is_empty() {
        row.fail("the full-cycle run it measures failed".into());
    }
    match (full.idle_rss_mb, full.peak_rss_mb) {
        (Some(idle), Some(peak)) => {
            row.note(format!(
                "plantilla idle (after seeding, before load) {idle:.1} MB; peak (VmHWM) during full-cycle {peak:.1} MB"
            ));
        }
        _ => row.fail("no RSS measured".into()),
    }
    row
}

// ---------------------------------------------------------------------------
// rates
// ---------------------------------------------------------------------------

/// `channels` channels at `rate`/s, `per_channel` messages each, queued before sending
/// starts: the channels start with a revoked token, halt on the first 190, the queue is
/// filled, then a PATCH with the right token resumes them all. The fake measures each phone
/// number's rate. With `webhooks` false the fake posts no status webhooks, so what is
/// measured is the pacing alone (each channel held at its limit), and the run ends when
/// every message holds a wamid instead of when every message is `read`.
pub async fn rate(
    opts: &Options,
    name: &'static str,
    channels_n: usize,
    rate: u32,
    per_channel: usize,
    webhooks: bool,
) -> Row {
    let cfg = StackConfig {
        webhooks,
        pg_server: None,
    };
    let (conns, deadline) = (opts.connections, opts.deadline);
    with_stack(opts, name, cfg, async move |st: &mut Stack, row: &mut Row| {
        let account = st.create_account().await?;
        let mut channels = Vec::new();
        for i in 0..channels_n {
            channels.push(
                st.create_channel(&account, &format!("3200{i:03}"), BAD_TOKEN, rate)
                    .await?,
            );
        }
        let tpl = st.create_template(&account).await?;
        let n = channels_n * per_channel;
        let fill = load::run(
            conns,
            n,
            deadline,
            send_job(st, &tpl, &channels, new_phone, "Pending"),
        )
        .await;
        if fill.errors > 0 {
            row.errors += fill.errors as u64;
            row.fail(format!(
                "{} sends failed while queueing, e.g. {:?}",
                fill.errors, fill.error_samples
            ));
        }
        let accepted = fill.ok() as i64;
        // Every channel halted on the revoked token, nothing accepted by the fake yet.
        let until = Instant::now() + Duration::from_secs(30);
        for ch in &channels {
            while st.channel_health(&ch.id).await? != "halted" {
                if Instant::now() > until {
                    anyhow::bail!("channel {} did not halt on the revoked token", ch.id);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let before = st.fake_stats().await?;
        if before["accepted"].as_i64() != Some(0) {
            anyhow::bail!("the fake accepted sends before the channels resumed");
        }

        let t_resume = Instant::now();
        for ch in &channels {
            st.patch_channel(&ch.id, json!({"accessToken": GOOD_TOKEN}))
                .await?;
        }
        let sampler = RssSampler::start(st.plantilla.pid);
        let sent = st
            .wait_for(Probe::WithProviderId, accepted, POLL, STALL)
            .await;
        let all_sent_after = sent
            .as_ref()
            .map(|t| t.duration_since(t_resume).as_secs_f64())
            .unwrap_or(f64::NAN);
        let read = if webhooks {
            st.wait_for(Probe::Read, accepted, POLL, STALL).await
        } else {
            Ok(Instant::now())
        };
        row.peak_rss_mb = Some(mb(sampler.finish()));
        for w in [sent, read] {
            if let Err(e) = w {
                row.fail(format!("{e:#}"));
            }
        }

        let stats = st.fake_stats().await?;
        let phones = stats["phone_numbers"].as_object().cloned().unwrap_or_default();
        let limit = rate + (rate / 10).max(1);
        let mut rates = Vec::new();
        let mut worst_window = 0;
        for ch in &channels {
            let p = &phones.get(&ch.phone_number_id).cloned().unwrap_or(Value::Null);
            let got = p["accepted"].as_i64().unwrap_or(0);
            let avg = p["average_rate"].as_f64().unwrap_or(0.0);
            let window = p["max_per_second"].as_u64().unwrap_or(0) as u32;
            worst_window = worst_window.max(window);
            rates.push(avg);
            if fill.errors == 0 && got != per_channel as i64 {
                row.fail(format!(
                    "{}: fake accepted {got}, {per_channel} were queued",
                    ch.phone_number_id
                ));
            }
            if window > limit {
                row.fail(format!(
                    "{}: {window} sends in one second, above the limit + burst {limit}",
                    ch.phone_number_id
                ));
            }
        }
        if stats["accepted"].as_i64() != Some(accepted) {
            row.fail(format!(
                "fake accepted {}, {accepted} sends were accepted",
                stats["accepted"]
            ));
        }
        let bad = unexpected_rejections(&stats, &["190"]);
        if !bad.is_empty() {
            row.fail(format!("fake rejected sends: {bad:?}"));
        }
        let counts = st.db.status_counts().await?;
        if webhooks {
            if counts.get("read").copied() != Some(accepted) {
                row.fail(format!(
                    "want all {accepted} messages read, database has {}",
                    counts_text(&counts)
                ));
            }
        } else {
            // No statuses come back: every message was handed to the Graph API (a wamid),
            // none is left queued or failed.
            let with_id = st.db.with_provider_id().await?;
            let total: i64 = counts.values().sum();
            let stuck: i64 = ["scheduled", "queued", "failed", "cancelled"]
                .iter()
                .map(|s| counts.get(*s).copied().unwrap_or(0))
                .sum();
            if with_id != accepted || total != accepted || stuck > 0 {
                row.fail(format!(
                    "want all {accepted} messages handed to the Graph API, database has \
                     {with_id} with a wamid of {total} ({})",
                    counts_text(&counts)
                ));
            }
            if stats["webhooks"]["delivered"].as_i64().unwrap_or(0) > 0 {
                row.fail("the fake posted webhooks in a pacing run".into());
            }
        }

        let (first, last, count) = st.db.acceptance_span().await?;
        let wall = match (first, last) {
            (Some(a), Some(b)) if b > a => (count - 1) as f64 / ((b - a) as f64 / 1000.0),
            _ => 0.0,
        };
        let sum: f64 = rates.iter().sum();
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(0.0, f64::max);
        row.ops = Some(if channels_n == 1 { sum } else { wall });
        row.unit = "msg/s";
        row.note(format!(
            "{accepted} messages queued on {channels_n} halted channel(s) at {rate}/s, then resumed{}; \
             fake per-phone average rate min {min:.1} max {max:.1} (sum {sum:.0}); \
             aggregate first→last Graph acceptance {wall:.0}/s; busiest 1-s window {worst_window} \
             (limit + burst {limit}); all sent {all_sent_after:.1} s after resume; messages: {}",
            if webhooks {
                ""
            } else {
                " (the fake posts no webhooks: pacing alone)"
            },
            counts_text(&counts)
        ));
        row.figure(Figure::SlowestChannel, min);
        row.figure(Figure::FastestChannel, max);
        row.figure(Figure::BusiestWindow, f64::from(worst_window));
        row.figure(Figure::WindowLimit, f64::from(limit));
        Ok(())
    })
    .await
}

/// Names of the scenarios, in the order `all` runs them.
pub const ALL: &[&str] = &[
    "baseline",
    "accept",
    "pending",
    "webhooks",
    "full-cycle",
    "memory",
    "rate-1000",
    "rate-100x80",
    "full-cycle-pg",
];

pub fn check_name(name: &str) -> anyhow::Result<()> {
    if name == "all" || ALL.contains(&name) {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "unknown scenario '{name}': one of all, {}",
            ALL.join(", ")
        ))
        .context("scenario")
    }
}
