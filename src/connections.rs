//! The HTTP/1 accept loop: how many connections may be open, how long one may take to send a
//! request head, how long a kept-alive one may sit idle, and graceful shutdown.
//!
//! Each connection is in one of three phases, kept by its [`Watch`]:
//! - *head*: it opened, or a byte of its next request arrived, and the request head is not
//!   complete yet: closed `header_read_timeout` after the phase began (a client dribbling
//!   one header byte at a time, or one that sends nothing, is cut off);
//! - *busy*: a request is being answered: no connection timer (the request timeout of
//!   `http::guard` bounds it);
//! - *idle*: its last response is out and no byte of a next request came: closed
//!   `idle_timeout` after the phase began (reading or writing anything counts as activity).
//!
//! At most `max_connections` are open at once: the loop accepts the next one only when one
//! has closed, so the rest wait in the listen backlog (the process never runs out of file
//! descriptors to them).
//!
//! Written here rather than taken from a crate: `axum::serve` has neither timeouts nor a bound,
//! and hyper 1's HTTP/1 builder times the request head but never an idle kept-alive connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// hyper's read buffer: the largest request head it parses at all (a larger one gets
    /// hyper's own 431, with an empty body, and the connection is closed).
    pub max_buf_size: usize,
    /// hyper's most header lines (more: hyper's own 431, empty body, connection closed).
    pub max_headers: usize,
}

/// Most header lines hyper parses; heads with more get hyper's bare 431.
pub const MAX_HEADER_LINES: usize = 500;

/// hyper's read buffer for a given `max_header_bytes`: that much and 1 MiB more, so a head
/// up to that size reaches the router, which answers 431 in the shape of its API.
pub fn max_buf_size(max_header_bytes: u64) -> usize {
    usize::try_from(max_header_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1024 * 1024)
        .max(8192)
}

impl Limits {
    pub fn of(config: &crate::config::Config) -> Limits {
        Limits {
            header_read_timeout: config.header_read_timeout(),
            idle_timeout: config.idle_timeout(),
            max_connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
            max_buf_size: max_buf_size(config.max_header_bytes),
            max_headers: MAX_HEADER_LINES,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Busy,
    Idle,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    since: Instant,
    in_flight: usize,
    /// Bytes read in the current head phase (none: a fresh connection that sent nothing).
    head_bytes: bool,
}

/// The phase of one connection, shared by its IO, its service and its task.
#[derive(Debug, Clone)]
struct Watch(Arc<Mutex<State>>);

impl Watch {
    fn new() -> Watch {
        Watch(Arc::new(Mutex::new(State {
            phase: Phase::Head,
            since: Instant::now(),
            in_flight: 0,
            head_bytes: false,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) {
        let mut s = self.lock();
        match s.phase {
            Phase::Idle => {
                s.phase = Phase::Head;
                s.since = Instant::now();
            }
            Phase::Head | Phase::Busy => {}
        }
        s.head_bytes = true;
    }

    fn wrote(&self) {
        let mut s = self.lock();
        if s.phase == Phase::Idle {
            s.since = Instant::now();
        }
    }

    fn request_started(&self) {
        let mut s = self.lock();
        s.in_flight += 1;
        s.phase = Phase::Busy;
    }

    fn request_finished(&self) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.phase = Phase::Idle;
            s.since = Instant::now();
            s.head_bytes = false;
        }
    }

    /// When the connection is to be closed if nothing happens.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        let s = self.lock();
        match s.phase {
            Phase::Head => Some(s.since + limits.header_read_timeout),
            Phase::Idle => Some(s.since + limits.idle_timeout),
            Phase::Busy => None,
        }
    }

    /// Nothing is being answered and no request has begun: closing loses nothing.
    fn quiet(&self) -> bool {
        let s = self.lock();
        s.phase == Phase::Idle || (s.phase == Phase::Head && !s.head_bytes)
    }

    fn phase(&self) -> Phase {
        self.lock().phase
    }
}

/// Marks a request finished when its response future ends, or is dropped.
struct InFlight(Watch);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A TCP stream that tells its [`Watch`] about what it reads and writes.
struct Watched {
    stream: TcpStream,
    watch: Watch,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.watch.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.watch.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves `service` on `listener` until `cancel`: then stops accepting, lets every request
/// in flight be answered, closes idle connections, and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    service: crate::http::Service,
    limits: Limits,
    cancel: CancellationToken,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let service = service.clone();
        let cancel = cancel.clone();
        connections.spawn(async move {
            serve_connection(stream, service, limits, cancel).await;
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// As `axum::serve`: a connection reset before it was accepted is nothing; anything else
/// (out of file descriptors) is logged and the loop pauses a second.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn serve_connection(
    stream: TcpStream,
    service: crate::http::Service,
    limits: Limits,
    cancel: CancellationToken,
) {
    let watch = Watch::new();
    let io = TokioIo::new(Watched {
        stream,
        watch: watch.clone(),
    });
    let requests = watch.clone();
    let hyper_service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        requests.request_started();
        let finished = InFlight(requests.clone());
        let service = service.clone();
        async move {
            let response = service.oneshot(req.map(Body::new)).await;
            drop(finished);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(true)
        .max_buf_size(limits.max_buf_size)
        .max_headers(limits.max_headers);
    let conn = builder.serve_connection(io, hyper_service);
    let mut conn = std::pin::pin!(conn);
    let mut cancelled = std::pin::pin!(cancel.cancelled_owned());
    let mut timer = std::pin::pin!(tokio::time::sleep(limits.idle_timeout));
    let mut shutting_down = false;
    let outcome = std::future::poll_fn(|cx| {
        loop {
            if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                return Poll::Ready(result.map_err(|e| e.to_string()));
            }
            if !shutting_down && cancelled.as_mut().poll(cx).is_ready() {
                shutting_down = true;
                if watch.quiet() {
                    return Poll::Ready(Ok(()));
                }
                // Answers what is in flight, then closes.
                conn.as_mut().graceful_shutdown();
                continue;
            }
            let Some(deadline) = watch.deadline(&limits) else {
                return Poll::Pending;
            };
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if watch.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                return Poll::Ready(Err(match watch.phase() {
                    Phase::Head => "no whole request head within the header read timeout".into(),
                    _ => "idle longer than the idle timeout".into(),
                }));
            }
        }
    })
    .await;
    if let Err(reason) = outcome {
        tracing::debug!(reason, "connection closed");
    }
}
