//! Child processes: `plantilla serve`, `fake-graph` and the trivial baseline server, each
//! a separate process on loopback; their resident memory read from `/proc`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A child process, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    pub name: String,
    pub pid: u32,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stderr (and stdout, unless `capture_stdout`) appended to `log`.
    /// With `capture_stdout`, stdout lines arrive on the returned channel.
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        log: PathBuf,
        capture_stdout: bool,
    ) -> anyhow::Result<(Proc, Option<mpsc::Receiver<String>>)> {
        let file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null()).stderr(file.try_clone()?);
        if capture_stdout {
            cmd.stdout(Stdio::piped());
        } else {
            cmd.stdout(file);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        let lines = if capture_stdout {
            let stdout = child.stdout.take().expect("piped stdout");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                // Keep reading to the end so the child never blocks on a full pipe.
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let _ = tx.send(line);
                }
            });
            Some(rx)
        } else {
            None
        };
        Ok((
            Proc {
                name: name.to_string(),
                pid: child.id(),
                child: Some(child),
                log,
            },
            lines,
        ))
    }

    /// Whether the process has exited (and how).
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    /// The last `lines` lines of the process's log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits for a `listening on ADDR` line on a child's stdout.
pub fn listening_addr(
    proc: &mut Proc,
    lines: &mpsc::Receiver<String>,
    timeout: Duration,
) -> anyhow::Result<String> {
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "{} did not print 'listening on ADDR' within {timeout:?}\n{}",
                proc.name,
                proc.log_tail(20)
            );
        }
        match lines.recv_timeout(left.min(Duration::from_millis(100))) {
            Ok(line) => {
                if let Some(addr) = line.trim().strip_prefix("listening on ") {
                    return Ok(addr.trim().to_string());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(status) = proc.exited() {
                    bail!("{} exited ({status})\n{}", proc.name, proc.log_tail(20));
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!(
                    "{} closed its stdout before 'listening on'\n{}",
                    proc.name,
                    proc.log_tail(20)
                );
            }
        }
    }
}

/// A free loopback port: bound, then released.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Samples a process's `VmRSS` every 100 ms in a thread, keeping the highest.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
    pid: u32,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                if let Some(kb) = status_kb(pid, "VmRSS") {
                    peak = peak.max(kb);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        });
        RssSampler {
            stop,
            handle: Some(handle),
            pid,
        }
    }

    /// The peak in kB: the highest sample, or the kernel's high-water mark (`VmHWM`) when
    /// that is higher (a peak between two samples).
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let sampled = self.handle.take().and_then(|h| h.join().ok()).unwrap_or(0);
        sampled.max(status_kb(self.pid, "VmHWM").unwrap_or(0))
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// CPU seconds (user + system, all threads) a process has used, from `/proc/<pid>/stat`
/// (in clock ticks of 1/100 s, Linux's fixed `USER_HZ`); with `reaped`, also what its
/// children that have exited used (`cutime`, `cstime`).
fn stat_cpu_secs(pid: u32, reaped: bool) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14,
    // stime 15, cutime 16, cstime 17.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let take = if reaped { 4 } else { 2 };
    let mut ticks = 0.0;
    for field in fields.get(11..11 + take)? {
        ticks += field.parse::<f64>().ok()?;
    }
    Some(ticks / 100.0)
}

pub fn cpu_secs(pid: u32) -> Option<f64> {
    stat_cpu_secs(pid, false)
}

/// CPU seconds of a PostgreSQL server on this machine: every `postgres` process, and the
/// backends that have exited (counted in their parent's `cutime`). `None` when no such
/// process is visible (a server elsewhere).
pub fn postgres_cpu_secs() -> Option<f64> {
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() == "postgres"
            && let Some(secs) = stat_cpu_secs(pid, true)
        {
            *total.get_or_insert(0.0) += secs;
        }
    }
    total
}

/// Where the machine's CPU went during a run: plantilla, the fake Graph API and the load
/// generator (this process), and the PostgreSQL server when it runs here, against the wall
/// time × cores available.
pub struct CpuMeter {
    started: std::time::Instant,
    procs: Vec<(&'static str, u32, f64)>,
    postgres: Option<f64>,
}

impl CpuMeter {
    pub fn start(procs: &[(&'static str, u32)]) -> CpuMeter {
        CpuMeter {
            started: std::time::Instant::now(),
            procs: procs
                .iter()
                .map(|&(name, pid)| (name, pid, cpu_secs(pid).unwrap_or(0.0)))
                .collect(),
            postgres: None,
        }
    }

    /// Also counts the local PostgreSQL server (all its processes, whoever they serve).
    pub fn with_postgres(mut self) -> CpuMeter {
        self.postgres = postgres_cpu_secs();
        self
    }

    /// Each process's CPU seconds, plantilla's, the fake's (and PostgreSQL's) per operation,
    /// and how busy the machine's cores were.
    pub fn finish(&self, ops: u64, unit: &str) -> CpuUse {
        let wall = self.started.elapsed().as_secs_f64();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let mut parts = Vec::new();
        let mut per_op = Vec::new();
        let mut total = 0.0;
        let mut used_by = |name: &'static str, used: f64, counted: bool| {
            total += used;
            if counted && ops > 0 {
                let us = used * 1e6 / ops as f64;
                per_op.push((name, us));
                parts.push(format!("{name} {used:.2} s ({us:.0} µs per {unit})"));
            } else {
                parts.push(format!("{name} {used:.2} s"));
            }
        };
        for &(name, pid, before) in &self.procs {
            let used = cpu_secs(pid).map_or(0.0, |now| now - before);
            used_by(name, used, name == "plantilla" || name == "fake-graph");
        }
        if let Some(before) = self.postgres
            && let Some(now) = postgres_cpu_secs()
        {
            used_by("PostgreSQL", now - before, true);
        }
        CpuUse {
            line: format!(
                "CPU over {wall:.1} s: {}; together {:.0} % of {cores} cores",
                parts.join(", "),
                100.0 * total / (wall * cores)
            ),
            per_op,
        }
    }
}

/// What [`CpuMeter::finish`] found.
pub struct CpuUse {
    /// One line for the details.
    pub line: String,
    /// µs per operation of plantilla, the fake (and PostgreSQL), by name.
    pub per_op: Vec<(&'static str, f64)>,
}

impl CpuUse {
    pub fn per_op_us(&self, name: &str) -> Option<f64> {
        self.per_op
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, us)| us)
    }
}
