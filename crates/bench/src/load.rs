//! The load generator: `connections` tokio tasks share one HTTP client and take request
//! numbers from a counter until `n` requests are done (or the deadline passes), each
//! recording its requests' latencies.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One request of a run: given its number, does it and says whether it went as expected.
pub type Job =
    Arc<dyn Fn(usize) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// Latency samples (microseconds), sorted.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<u64>);

impl Samples {
    pub fn new(mut v: Vec<u64>) -> Samples {
        v.sort_unstable();
        Samples(v)
    }

    /// Nearest-rank percentile, in the samples' unit; `None` without samples.
    pub fn pct(&self, p: f64) -> Option<u64> {
        if self.0.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        Some(self.0[rank.clamp(1, self.0.len()) - 1])
    }

    /// A percentile of microsecond samples, in milliseconds.
    pub fn pct_ms(&self, p: f64) -> Option<f64> {
        self.pct(p).map(|us| us as f64 / 1000.0)
    }
}

#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Requests done (answered as expected or not).
    pub done: usize,
    pub errors: usize,
    /// The first few unexpected answers.
    pub error_samples: Vec<String>,
    pub latency: Samples,
    /// From the first request sent to the last answer.
    pub elapsed: Duration,
    /// Whether the deadline cut the run short.
    pub truncated: bool,
}

impl LoadResult {
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        }
    }

    pub fn ok(&self) -> usize {
        self.done - self.errors
    }
}

struct TaskResult {
    latencies: Vec<u64>,
    done: usize,
    errors: usize,
    samples: Vec<String>,
}

/// Runs `n` requests over `connections` concurrent tasks; stops taking new ones after
/// `deadline`.
pub async fn run(connections: usize, n: usize, deadline: Duration, job: Job) -> LoadResult {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let stop_at = started + deadline;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        let next = next.clone();
        let job = job.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = TaskResult {
                latencies: Vec::with_capacity((n / connections.max(1) + 1).min(1 << 16)),
                done: 0,
                errors: 0,
                samples: Vec::new(),
            };
            loop {
                if Instant::now() >= stop_at {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t0 = Instant::now();
                let outcome = job(i).await;
                r.latencies.push(t0.elapsed().as_micros() as u64);
                r.done += 1;
                if let Err(e) = outcome {
                    r.errors += 1;
                    if r.samples.len() < 3 {
                        r.samples.push(e);
                    }
                }
            }
            r
        }));
    }
    let mut latencies = Vec::with_capacity(n.min(1 << 20));
    let mut done = 0;
    let mut errors = 0;
    let mut error_samples = Vec::new();
    for task in tasks {
        match task.await {
            Ok(r) => {
                latencies.extend(r.latencies);
                done += r.done;
                errors += r.errors;
                for s in r.samples {
                    if error_samples.len() < 5 {
                        error_samples.push(s);
                    }
                }
            }
            Err(e) => {
                errors += 1;
                error_samples.push(format!("load task panicked: {e}"));
            }
        }
    }
    let elapsed = started.elapsed();
    LoadResult {
        done,
        errors,
        error_samples,
        latency: Samples::new(latencies),
        elapsed,
        truncated: done < n,
    }
}

/// A client for load: HTTP/1.1 keep-alive, no idle limit below the connection count.
pub fn client(connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections * 2 + 8)
        .pool_idle_timeout(Duration::from_secs(120))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// Posts `body` and checks the status and that the answer contains `expect` (when given).
pub async fn post_expect(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    status: u16,
    expect: Option<&str>,
) -> Result<(), String> {
    let mut req = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.map_err(|e| format!("transport: {e}"))?;
    let code = resp.status().as_u16();
    let text = resp.bytes().await.map_err(|e| format!("body: {e}"))?;
    if code != status {
        return Err(format!(
            "HTTP {code}: {}",
            String::from_utf8_lossy(&text[..text.len().min(300)])
        ));
    }
    if let Some(want) = expect
        && !contains(&text, want.as_bytes())
    {
        return Err(format!(
            "unexpected answer (want {want}): {}",
            String::from_utf8_lossy(&text[..text.len().min(300)])
        ));
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Samples::new((1..=100).rev().collect());
        assert_eq!(s.pct(50.0), Some(50));
        assert_eq!(s.pct(99.0), Some(99));
        assert_eq!(s.pct(100.0), Some(100));
        assert_eq!(s.pct(0.0), Some(1));
        assert_eq!(Samples::default().pct(50.0), None);
    }
}
