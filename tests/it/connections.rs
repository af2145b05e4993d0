// Slow and idle connections (issue 16, item 1): a connection that does not send a whole
// request head within the header read timeout is closed, whether it dribbles one header byte
// at a time or sends nothing; a kept-alive connection with no new request is closed after the
// idle timeout (and not before, even when that is longer than the header read timeout); at most
// `max_connections` are open at once, the others wait to be accepted. Meanwhile `/healthz` on
// a fresh connection keeps answering. Timeouts are configured short so nothing waits long.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client that opens a new connection for every request.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

async fn healthz(app: &TestApp) -> reqwest::StatusCode {
    fresh_client()
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap()
        .status()
}

/// Reads until the server closes the connection (EOF or reset); how long it took, or `None`
/// if it was still open after `limit`.
async fn closed_within(reader: &mut (impl AsyncReadExt + Unpin), limit: Duration) -> Option<()> {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// Reads one response with a `Content-Length`: its status and body.
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a response in time")
            .expect("readable");
        assert!(n > 0, "closed before a whole response");
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                let status = head[9..12].parse().unwrap();
                return (status, text[end + 4..end + 4 + length].to_string());
            }
        }
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn slow_and_silent_connections_are_closed_within_the_header_read_timeout() {
    let app = spawn_app_with(|c| {
        c.header_read_timeout_ms = 800;
        c.idle_timeout_ms = 60_000;
    })
    .await;
    let target = addr(&app);

    // Five connections that send nothing and five that send one header byte every 200 ms.
    let mut watchers = Vec::new();
    for dribble in [false, true]
        .into_iter()
        .flat_map(|d| std::iter::repeat_n(d, 5))
    {
        let stream = TcpStream::connect(&target).await.unwrap();
        let opened = Instant::now();
        let (mut reader, mut writer) = stream.into_split();
        if dribble {
            tokio::spawn(async move {
                if writer
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ")
                    .await
                    .is_err()
                {
                    return;
                }
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if writer.write_all(b"a").await.is_err() {
                        return;
                    }
                }
            });
        } else {
            // Kept open (not dropped) for the whole test.
            tokio::spawn(async move {
                let _writer = writer;
                std::future::pending::<()>().await;
            });
        }
        watchers.push(tokio::spawn(async move {
            let closed = closed_within(&mut reader, Duration::from_secs(5)).await;
            (dribble, closed.map(|()| opened.elapsed()))
        }));
    }

    // While they are open, fresh connections are answered at once.
    for _ in 0..3 {
        let asked = Instant::now();
        assert_eq!(healthz(&app).await, 200);
        assert!(asked.elapsed() < Duration::from_millis(500));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for watcher in watchers {
        let (dribble, took) = watcher.await.unwrap();
        let took = took.unwrap_or_else(|| {
            panic!("a connection (dribbling: {dribble}) was still open after 5 s")
        });
        assert!(
            took >= Duration::from_millis(700) && took < Duration::from_millis(2500),
            "a connection (dribbling: {dribble}) was closed after {took:?}, not about 800 ms"
        );
    }
    assert_eq!(healthz(&app).await, 200);
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
    // The idle timeout is longer than the header read timeout: the two are apart.
    let app = spawn_app_with(|c| {
        c.header_read_timeout_ms = 300;
        c.idle_timeout_ms = 1_200;
    })
    .await;
    let mut stream = TcpStream::connect(addr(&app)).await.unwrap();
    stream.write_all(HEALTHZ).await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, 200);

    // Idle for longer than the header read timeout: still open, and it answers again.
    tokio::time::sleep(Duration::from_millis(700)).await;
    stream.write_all(HEALTHZ).await.unwrap();
    let (status, body) = read_response(&mut stream).await;
    assert_eq!(status, 200, "{body}");
    let answered = Instant::now();

    let closed = closed_within(&mut stream, Duration::from_secs(5)).await;
    let took = answered.elapsed();
    assert!(
        closed.is_some(),
        "an idle connection was still open after 5 s"
    );
    assert!(
        took >= Duration::from_millis(1_000) && took < Duration::from_millis(3_000),
        "the idle connection was closed after {took:?}, not about 1.2 s"
    );
    assert_eq!(healthz(&app).await, 200);
}

#[tokio::test]
async fn connections_beyond_the_bound_wait_until_one_closes() {
    let app = spawn_app_with(|c| {
        c.header_read_timeout_ms = 1_000;
        c.max_connections = 3;
    })
    .await;
    let target = addr(&app);
    // Three silent connections take every slot (the server accepts in arrival order, so they
    // hold the slots before the fourth is looked at).
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(TcpStream::connect(&target).await.unwrap());
    }
    let started = Instant::now();

    // A fourth is not served while they are open...
    let mut fourth = TcpStream::connect(&target).await.unwrap();
    fourth.write_all(HEALTHZ).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), fourth.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "a connection beyond the bound was served while the bound was reached: {early:?}"
    );

    // ...and is once the header read timeout has closed them.
    let (status, _) = read_response(&mut fourth).await;
    assert_eq!(status, 200);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(800),
        "the fourth connection was served after {took:?}, before a slot was free"
    );
    for mut s in silent {
        assert!(
            closed_within(&mut s, Duration::from_secs(1))
                .await
                .is_some(),
            "a silent connection is still open"
        );
    }
    assert_eq!(healthz(&app).await, 200);
}
