//! The real `plantilla serve` binary as a child process: started on port 0 with JSON logs,
//! its address read from its "serving" log line, its log lines kept, stopped by signal.
//!
//! The binary is cargo's (`CARGO_BIN_EXE_plantilla`), or `PLANTILLA_TEST_BIN` when set: where
//! several checkouts share one target directory, each build replaces `target/debug/plantilla`,
//! so a copy taken right after building keeps the binary under test the right one.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct ServeProcess {
    child: Child,
    pub base: String,
    pub pid: u32,
    logs: Arc<Mutex<Vec<String>>>,
    /// The thread keeping the log lines: done once the process has exited and its last
    /// lines are kept.
    reader: std::thread::JoinHandle<()>,
}

impl ServeProcess {
    /// Starts `plantilla serve` with `env` (on top of the test's environment without any
    /// `PLANTILLA_*` or `DATABASE_URL`), listening on a free loopback port, and waits (at most
    /// 60 s) until it serves.
    pub fn start(env: &[(&str, String)]) -> ServeProcess {
        let binary = std::env::var("PLANTILLA_TEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_plantilla").to_string());
        let mut command = Command::new(binary);
        for (key, _) in std::env::vars() {
            if key.starts_with("PLANTILLA_") || key == "DATABASE_URL" {
                command.env_remove(key);
            }
        }
        command
            .arg("serve")
            .env("PLANTILLA_LISTEN", "127.0.0.1:0")
            .env("PLANTILLA_LOG_FORMAT", "json")
            .env("PLANTILLA_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start plantilla serve");
        let pid = child.id();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let kept = logs.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                kept.lock().unwrap().push(line);
            }
        });
        let started = Instant::now();
        let addr = loop {
            let found = logs.lock().unwrap().iter().find_map(|line| {
                let v: Value = serde_json::from_str(line).ok()?;
                (v["fields"]["message"] == "plantilla is serving")
                    .then(|| v["fields"]["addr"].as_str().map(str::to_string))?
            });
            if let Some(addr) = found {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "plantilla serve exited ({status}) before serving:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "plantilla serve did not start within 60 s:\n{}",
                logs.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        ServeProcess {
            child,
            base: format!("http://{addr}"),
            pid,
            logs,
            reader,
        }
    }

    /// `kill -TERM <pid>`.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits (polling) up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The lines written before the exit may still be in the pipe: wait (at most
                // 5 s) until the reader has kept them all, so `logs` after this sees them.
                let read = Instant::now();
                while !self.reader.is_finished() && read.elapsed() < Duration::from_secs(5) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return Some(status);
            }
            if started.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The log lines so far, parsed (JSON format).
    pub fn log_records(&self) -> Vec<Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
