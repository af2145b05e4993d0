//! When a request reached the fake: the kernel's receive time of its bytes (Linux,
//! `SO_TIMESTAMPNS`), not the moment a task got to look at them. A test runs the fake in its
//! own process next to the rest of the suite, where its tasks can wait 100-200 ms for a
//! thread; sends that reached the socket 50 ms apart during such a wait would otherwise be
//! recorded together, and a one-second window would count more than went over the wire.
//! Elsewhere (or when the kernel gives no time) it is the time the handler runs.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use tokio::io::ReadBuf;
use tokio::net::{TcpListener, TcpStream};

/// The kernel's receive time of the bytes last read from a connection, in nanoseconds since
/// the Unix epoch (0: none).
#[derive(Clone, Debug, Default)]
pub(crate) struct Arrival(Arc<AtomicI64>);

impl Arrival {
    fn set(&self, nanos: Option<i64>) {
        self.0.store(nanos.unwrap_or(0), Ordering::SeqCst);
    }

    /// When the bytes last read arrived, on both clocks the records keep; now when the kernel
    /// gave no time. Read by a handler as it starts, so they are the request's last bytes
    /// (plantilla and reqwest send a connection's next request after this one's answer).
    pub(crate) fn at(&self) -> (DateTime<Utc>, Instant) {
        let (wall, now) = (SystemTime::now(), Instant::now());
        let nanos = self.0.load(Ordering::SeqCst);
        let Some(stamp) = u64::try_from(nanos)
            .ok()
            .filter(|n| *n > 0)
            .map(|n| UNIX_EPOCH + Duration::from_nanos(n))
        else {
            return (DateTime::<Utc>::from(wall), now);
        };
        // A stamp "after" now (the wall clock stepped back) counts as now.
        let age = wall.duration_since(stamp).unwrap_or_default();
        let received = now.checked_sub(age).unwrap_or(now);
        (DateTime::<Utc>::from(wall - age), received)
    }
}

/// Asks the kernel to time the bytes every connection accepted from `listener` receives
/// (accepted sockets inherit it, so even bytes that came before `accept` are timed).
pub(crate) fn enable(listener: &TcpListener) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket descriptor, and an option value of the size given.
        let rc = unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            tracing::warn!(
                "fake-graph: no kernel receive times ({}); requests are timed when handled",
                io::Error::last_os_error()
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = listener;
}

/// `poll_read` on `stream`, noting the kernel's receive time of what it read in `arrival`.
pub(crate) fn poll_read(
    stream: &mut TcpStream,
    arrival: &Arrival,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        loop {
            std::task::ready!(stream.poll_read_ready(cx))?;
            let fd = stream.as_raw_fd();
            // SAFETY: `recv` writes at most the unfilled part's length, and only the bytes it
            // reports written are marked initialized.
            let unfilled = unsafe { buf.unfilled_mut() };
            match stream.try_io(tokio::io::Interest::READABLE, || recv(fd, unfilled)) {
                Ok((n, stamp)) => {
                    if n > 0 {
                        arrival.set(stamp);
                    }
                    // SAFETY: `recv` initialized the first `n` bytes of the unfilled part.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        use tokio::io::AsyncRead;
        arrival.set(None);
        std::pin::Pin::new(stream).poll_read(cx, buf)
    }
}

/// One `recvmsg` into `into`: the bytes read and their receive time (ns since the epoch).
#[cfg(target_os = "linux")]
fn recv(
    fd: std::os::fd::RawFd,
    into: &mut [std::mem::MaybeUninit<u8>],
) -> io::Result<(usize, Option<i64>)> {
    let mut iov = libc::iovec {
        iov_base: into.as_mut_ptr().cast(),
        iov_len: into.len(),
    };
    // Room for one `timespec` control message, aligned for `cmsghdr`.
    let mut control = [0u64; 8];
    // SAFETY: an all-zero `msghdr` is valid; its pointers are set to live buffers below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at `iov` (over `into`) and `control`, both live for the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the control messages are walked with the kernel's own macros, within
    // `msg_controllen` as `recvmsg` set it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                stamp = Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec);
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((usize::try_from(n).unwrap_or(0), stamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One read of `server` through [`poll_read`]: the bytes, and their arrival as noted.
    #[cfg(target_os = "linux")]
    async fn read_timed(server: &mut TcpStream) -> (Vec<u8>, Arrival) {
        let arrival = Arrival::default();
        let mut buf = [0u8; 16];
        let mut read = ReadBuf::new(&mut buf);
        std::future::poll_fn(|cx| poll_read(server, &arrival, cx, &mut read))
            .await
            .unwrap();
        (read.filled().to_vec(), arrival)
    }

    /// Waits until the kernel stamps a packet. Linux switches receive timestamps on for the
    /// whole machine in a deferred work item when the first socket asks for them, so on a
    /// machine where no socket had them, bytes sent right after `enable` may come unstamped
    /// (timed when read) until that item has run, later on a loaded machine.
    #[cfg(target_os = "linux")]
    async fn stamped_once(listener: &TcpListener) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            client.write_all(b"warm").await.unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            let (_, arrival) = read_timed(&mut server).await;
            if arrival.0.load(Ordering::SeqCst) > 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the kernel stamped no packet within 10 s of SO_TIMESTAMPNS"
            );
            // No event says when the kernel's work item has run: try again shortly.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Bytes that wait in the socket (here 300 ms, before and after `accept`) keep the time
    /// they arrived, not the time they are read.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn bytes_keep_the_time_the_kernel_received_them() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        enable(&listener);
        stamped_once(&listener).await;
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let written = Instant::now();
        client.write_all(b"first").await.unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let (mut server, _) = listener.accept().await.unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let (bytes, arrival) = read_timed(&mut server).await;
        assert_eq!(bytes, b"first");
        let (_, received) = arrival.at();
        assert!(
            received.saturating_duration_since(written) < Duration::from_millis(100),
            "timed when it arrived: {:?} after the write, read 300 ms after",
            received.saturating_duration_since(written)
        );
        // A plain read on the other side still works.
        server.write_all(b"ok").await.unwrap();
        let mut back = [0u8; 2];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"ok");
    }
}
