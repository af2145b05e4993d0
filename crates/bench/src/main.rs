//! `plantilla-bench`: throughput, latency and memory of plantilla against the machine's
//! limit (issue 5), and issue 13's targets.
//!
//! ```text
//! cargo build --release --workspace --bins
//! target/release/plantilla-bench all [--pg postgres://user@host:5432/postgres] [--quick]
//! target/release/plantilla-bench accept full-cycle      # some scenarios
//! ```
//!
//! It builds nothing: it runs `plantilla serve` and `fake-graph` from its own directory
//! (or `--bin-dir`) as separate processes on loopback, each scenario on a fresh SQLite file
//! (or a fresh PostgreSQL database, dropped afterwards), seeds them through the admin API,
//! drives load over HTTP with many connections, reads the results back from the fake's
//! `/_fake/stats` and from the database, and prints a table. A scenario whose counts do not
//! match (fake, database, accepted sends) is FAILED and the exit status is 1. Issue 13's
//! targets are reported separately (met / not met / not run, see `targets`) and do not
//! change the exit status.

mod db;
mod load;
mod procs;
mod scenarios;
mod stack;
mod targets;
mod trivial;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use scenarios::Sizes;

#[derive(Debug, Parser)]
#[command(
    name = "plantilla-bench",
    about = "Benchmarks plantilla (serve + fake-graph as separate processes) and checks the counts"
)]
struct Cli {
    /// Scenarios: all, baseline, accept, pending, webhooks, full-cycle, memory, rate-1000,
    /// rate-100x80, full-cycle-pg (with --pg).
    #[arg(required_unless_present = "trivial_server")]
    scenarios: Vec<String>,
    /// A PostgreSQL server URL: adds full-cycle-pg to `all` (a database
    /// plantilla_bench_<random> is created on it and dropped afterwards).
    #[arg(long)]
    pg: Option<String>,
    /// A few hundred messages per scenario (smoke test).
    #[arg(long)]
    quick: bool,
    /// Multiplies every scenario's message count.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Directory holding the `plantilla` and `fake-graph` executables (default: this
    /// program's own directory).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Concurrent HTTP connections of the load generator.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// How long the timed scenarios (baseline, accept, pending) send, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Longest a counted load phase may run before it stops asking (seconds).
    #[arg(long, default_value_t = 300)]
    max_secs: u64,
    /// Extra environment for `plantilla serve` (repeatable), e.g.
    /// `--plantilla-env PLANTILLA_SQLITE_SYNCHRONOUS=normal`.
    #[arg(long = "plantilla-env", value_parser = parse_kv)]
    plantilla_env: Vec<(String, String)>,
    /// Most statuses the fake puts in one webhook POST (its `--webhook-batch`; 1: a POST
    /// per status, as the fake does for the tests). Meta batches statuses too; a POST per
    /// status costs the fake more CPU than plantilla's own work.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    fake_webhook_batch: u32,
    /// How long a batch of the fake's webhooks waits for more statuses (its
    /// `--webhook-linger-ms`).
    #[arg(long, default_value_t = 2)]
    fake_webhook_linger_ms: u64,
    /// Keep each scenario's temp directory (databases, logs).
    #[arg(long)]
    keep: bool,
    /// Runs of each scenario (each from scratch). The table shows the run with the median
    /// rate; the details give every run's. Runs on a shared VM differ by up to 20 %.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=99))]
    repeat: u32,
    /// Internal: run the baseline's trivial server.
    #[arg(long, hide = true)]
    trivial_server: bool,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("want KEY=VALUE, got {s:?}"))
}

/// What every scenario needs to know.
#[derive(Debug, Clone)]
pub struct Options {
    pub bin_dir: PathBuf,
    pub connections: usize,
    pub deadline: Duration,
    pub plantilla_env: Vec<(String, String)>,
    pub keep: bool,
    /// The fake's `--webhook-batch` and `--webhook-linger-ms`.
    pub webhook_batch: u32,
    pub webhook_linger_ms: u64,
}

/// One line of the table, plus what was checked and the figures the targets need.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub name: String,
    pub ops: Option<f64>,
    pub unit: &'static str,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    /// ms
    pub e2e_sent_p50: Option<f64>,
    /// ms
    pub e2e_read_p99: Option<f64>,
    pub errors: u64,
    pub idle_rss_mb: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    pub failures: Vec<String>,
    pub notes: Vec<String>,
    /// Figures besides the columns, for the targets.
    pub figures: std::collections::BTreeMap<targets::Figure, f64>,
}

impl Row {
    pub fn new(name: &str) -> Row {
        Row {
            name: name.to_string(),
            unit: "",
            ..Row::default()
        }
    }

    pub fn fail(&mut self, why: String) {
        self.failures.push(why);
    }

    pub fn note(&mut self, what: String) {
        self.notes.push(what);
    }

    pub fn figure(&mut self, figure: targets::Figure, value: f64) {
        self.figures.insert(figure, value);
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.trivial_server {
        return trivial::serve();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = rt.block_on(run(cli))?;
    drop(rt);
    std::process::exit(code);
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    for s in &cli.scenarios {
        scenarios::check_name(s)?;
    }
    let bin_dir = match cli.bin_dir.clone() {
        Some(d) => d,
        None => std::env::current_exe()?
            .parent()
            .context("the executable has no directory")?
            .to_path_buf(),
    };
    for exe in ["plantilla", "fake-graph"] {
        if !bin_dir.join(exe).is_file() {
            bail!(
                "no {exe} in {} (run `cargo build --release --workspace --bins` first, or pass --bin-dir)",
                bin_dir.display()
            );
        }
    }
    let opts = Options {
        bin_dir,
        connections: cli.connections.max(1),
        deadline: Duration::from_secs(cli.max_secs),
        plantilla_env: cli.plantilla_env.clone(),
        keep: cli.keep,
        webhook_batch: cli.fake_webhook_batch,
        webhook_linger_ms: cli.fake_webhook_linger_ms,
    };
    let sizes = Sizes::new(cli.quick, cli.scale, cli.seconds.max(1));

    let wanted: Vec<&str> = if cli.scenarios.iter().any(|s| s == "all") {
        scenarios::ALL
            .iter()
            .copied()
            .filter(|s| *s != "full-cycle-pg" || cli.pg.is_some())
            .collect()
    } else {
        scenarios::ALL
            .iter()
            .copied()
            .filter(|s| cli.scenarios.iter().any(|w| w == s))
            .collect()
    };
    if wanted.contains(&"full-cycle-pg") && cli.pg.is_none() {
        bail!("full-cycle-pg needs --pg postgres://…");
    }

    print_machine(&cli, &opts);
    let mut rows: Vec<Row> = Vec::new();
    for name in &wanted {
        if *name == "memory" {
            // Read off the full-cycle run (made here if it was not asked for).
            if !rows.iter().any(|r| r.name == "full-cycle") {
                let full = run_scenario("full-cycle", &cli, &opts, &sizes).await?;
                rows.push(full);
            }
            let full = rows
                .iter()
                .find(|r| r.name == "full-cycle")
                .expect("full-cycle row");
            rows.push(scenarios::memory(full));
            continue;
        }
        rows.push(run_scenario(name, &cli, &opts, &sizes).await?);
    }

    print_table(&rows);
    println!("\nLoad average at the end: {}", load_average());
    let failed: Vec<&Row> = rows.iter().filter(|r| !r.failures.is_empty()).collect();
    if failed.is_empty() {
        println!("\nAll checks passed.");
        Ok(0)
    } else {
        println!(
            "\nFAILED: {}",
            failed
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(1)
    }
}

/// `name` run `--repeat` times; the row of the run with the median rate, failing if any
/// run failed.
async fn run_scenario(name: &str, cli: &Cli, opts: &Options, sizes: &Sizes) -> anyhow::Result<Row> {
    let mut runs = Vec::new();
    for run in 1..=cli.repeat {
        if cli.repeat > 1 {
            eprintln!("▶ {name} (run {run} of {}) …", cli.repeat);
        } else {
            eprintln!("▶ {name} …");
        }
        let started = std::time::Instant::now();
        let row = match name {
            "baseline" => scenarios::baseline(opts, sizes).await,
            "accept" => scenarios::accept(opts, sizes).await,
            "pending" => scenarios::pending(opts, sizes).await,
            "webhooks" => scenarios::webhooks(opts, sizes).await,
            "full-cycle" => scenarios::full_cycle(opts, sizes, None).await,
            "rate-1000" => scenarios::rate(opts, "rate-1000", 1, 1000, sizes.rate1000, true).await,
            "rate-100x80" => {
                scenarios::rate(
                    opts,
                    "rate-100x80",
                    sizes.r100_channels,
                    80,
                    sizes.r100_per_channel,
                    false,
                )
                .await
            }
            "full-cycle-pg" => scenarios::full_cycle(opts, sizes, cli.pg.as_deref()).await,
            other => bail!("unknown scenario {other}"),
        };
        report_progress(&row, started);
        runs.push(row);
    }
    Ok(median_run(runs))
}

/// The run with the median rate (the lower middle one of an even count), with every run's
/// rate noted and every run's failures kept.
fn median_run(mut runs: Vec<Row>) -> Row {
    if runs.len() == 1 {
        return runs.pop().expect("one run");
    }
    let rates: Vec<String> = runs
        .iter()
        .map(|r| r.ops.map_or("–".into(), |o| format!("{o:.0}")))
        .collect();
    let failures: Vec<String> = runs
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.failures
                .iter()
                .map(move |f| format!("run {}: {f}", i + 1))
        })
        .collect();
    let count = runs.len();
    let mut order: Vec<usize> = (0..count).collect();
    order.sort_by(|&a, &b| {
        let rate = |i: usize| runs[i].ops.unwrap_or(f64::NEG_INFINITY);
        rate(a).total_cmp(&rate(b))
    });
    let middle = order[(count - 1) / 2];
    let mut row = runs.swap_remove(middle);
    row.failures = failures;
    row.notes.insert(
        0,
        format!(
            "{count} runs, {} {}; the table shows run {} (the median)",
            rates.join(", "),
            row.unit,
            middle + 1
        ),
    );
    row
}

fn report_progress(row: &Row, started: std::time::Instant) {
    let status = if row.failures.is_empty() {
        "ok"
    } else {
        "FAILED"
    };
    eprintln!(
        "  {} {status} in {:.1} s{}",
        row.name,
        started.elapsed().as_secs_f64(),
        row.ops
            .map(|o| format!(": {o:.0} {}", row.unit))
            .unwrap_or_default()
    );
    for f in &row.failures {
        eprintln!("  ✗ {f}");
    }
}

fn print_machine(cli: &Cli, opts: &Options) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    let mem_kb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines().find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
    });
    let load = load_average();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("# plantilla-bench");
    println!();
    println!(
        "- date: {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    );
    println!(
        "- machine: {cores} cores, {cpu}, {:.1} GB RAM, load average at start {}",
        mem_kb.unwrap_or(0) as f64 / 1024.0 / 1024.0,
        load
    );
    println!(
        "- command: plantilla-bench {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    println!(
        "- binaries: {}; {} connections; the fake's webhooks: up to {} statuses per POST, linger {} ms{}",
        opts.bin_dir.display(),
        opts.connections,
        opts.webhook_batch,
        opts.webhook_linger_ms,
        if cli.quick { "; quick" } else { "" }
    );
    let built = |exe: &str| {
        std::fs::metadata(opts.bin_dir.join(exe))
            .and_then(|m| m.modified())
            .map(|t| {
                chrono::DateTime::<chrono::Utc>::from(t)
                    .format("%Y-%m-%d %H:%M UTC")
                    .to_string()
            })
            .unwrap_or_else(|_| "?".into())
    };
    println!(
        "- built: plantilla {}, fake-graph {} (the bench builds nothing: `cargo build --release --workspace --bins` first)",
        built("plantilla"),
        built("fake-graph")
    );
    if let Some(rev) = git_revision() {
        println!("- source: {rev}");
    }
    println!();
}

/// `git describe` of the working tree the bench runs from, when there is one.
fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=10"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn f(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

fn print_table(rows: &[Row]) {
    let baseline = rows
        .iter()
        .find(|r| r.name == "baseline")
        .and_then(|r| r.ops);
    let header = [
        "scenario",
        "ops/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "e2e p50 accepted→sent ms",
        "e2e p99 accepted→read ms",
        "errors",
        "peak RSS MB",
        "× baseline",
        "check",
    ];
    let mut lines: Vec<Vec<String>> = Vec::new();
    for r in rows {
        let ratio = match (r.ops, baseline) {
            (Some(o), Some(b)) if b > 0.0 && r.name != "baseline" => format!("{:.3}", o / b),
            (Some(_), Some(_)) => "1".into(),
            _ => "–".into(),
        };
        lines.push(vec![
            r.name.clone(),
            r.ops.map_or("–".into(), |o| format!("{o:.0} {}", r.unit)),
            f(r.p50, 2),
            f(r.p90, 2),
            f(r.p99, 2),
            f(r.e2e_sent_p50, 0),
            f(r.e2e_read_p99, 0),
            r.errors.to_string(),
            match (r.name.as_str(), r.idle_rss_mb, r.peak_rss_mb) {
                ("memory", Some(i), Some(p)) => format!("idle {i:.1} / peak {p:.1}"),
                (_, _, p) => f(p, 1),
            },
            ratio,
            if r.failures.is_empty() {
                "ok".into()
            } else {
                "FAILED".into()
            },
        ]);
    }
    println!();
    print_markdown(&header, &lines);

    let evaluated: Vec<Vec<String>> = targets::evaluate(targets::ISSUE_13, rows)
        .into_iter()
        .map(|e| {
            vec![
                e.target.what.to_string(),
                e.measured,
                e.outcome.text().to_string(),
            ]
        })
        .collect();
    println!("\nIssue 13 targets (each scenario's row above: with --repeat, its median run):\n");
    print_markdown(&["target", "measured", "met"], &evaluated);

    println!("\nDetails:\n");
    for r in rows {
        for n in &r.notes {
            println!("- {}: {n}", r.name);
        }
        for fl in &r.failures {
            println!("- {}: FAILED: {fl}", r.name);
        }
    }
}

fn print_markdown(header: &[&str], lines: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for l in lines {
        for (i, c) in l.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let row = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = widths[i] - c.chars().count();
                if i == 0 {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    println!("{}", row(header.iter().map(|h| h.to_string()).collect()));
    println!(
        "|{}|",
        widths
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 {
                format!(":{}", "-".repeat(w + 1))
            } else {
                format!("{}:", "-".repeat(w + 1))
            })
            .collect::<Vec<_>>()
            .join("|")
    );
    for l in lines {
        println!("{}", row(l.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ops: Option<f64>, failure: Option<&str>) -> Row {
        let mut row = Row::new("full-cycle");
        row.unit = "msg/s";
        row.ops = ops;
        row.failures = failure.into_iter().map(str::to_string).collect();
        row
    }

    #[test]
    fn the_median_run_is_shown_and_every_failure_kept() {
        let row = median_run(vec![
            run(Some(500.0), None),
            run(Some(100.0), Some("fake accepted 9")),
            run(Some(300.0), None),
        ]);
        assert_eq!(row.ops, Some(300.0));
        assert_eq!(row.failures, vec!["run 2: fake accepted 9".to_string()]);
        assert_eq!(
            row.notes[0],
            "3 runs, 500, 100, 300 msg/s; the table shows run 3 (the median)"
        );
        // An even count shows the lower middle one; a run without a rate counts lowest.
        let row = median_run(vec![run(Some(2.0), None), run(None, Some("x"))]);
        assert_eq!(row.ops, None);
        let row = median_run(vec![run(Some(7.0), None)]);
        assert!(row.notes.is_empty(), "one run is shown as it is");
    }
}
