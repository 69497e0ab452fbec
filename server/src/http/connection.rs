//! One connection's clocks: a request's headers arrive whole within the header timeout of
//! their first byte, an idle connection closes after the idle timeout, and an overflow
//! connection lives a short while at most.
//!
//! hyper 1.12 runs its own header timer from the end of one response to the next
//! headers, idle keep-alive time included, so it cannot tell a load balancer's pooled
//! connection from a client trickling headers. Here the IO is [`Watched`]: it notes the
//! first byte read while no request is being served, and the [`watch`]dog closes the
//! connection when no request has begun (hyper calls the service once the headers are
//! parsed) within the header timeout of that byte, or of the accept for the first request.
//! An idle connection with no byte pending closes after the idle timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// No byte pending: `first_byte` holds no instant.
const NONE: u64 = u64::MAX;

/// What one connection's watchdog reads: when requests began and ended, and when the
/// first byte of the next one arrived.
///
/// Orderings: the IO, [`Conn::begin`] (hyper calls the service from the connection's
/// own poll, for HTTP/1 and HTTP/2 alike) and the watchdog are polled by one task, the
/// connection's, so they see each other's writes in program order. Only the end of a
/// request may run on another task (an HTTP/2 stream's): it writes `last` before it
/// releases `active`, and the watchdog acquires `active` before it reads `last`, so a
/// watchdog that sees a request ended also sees when.
#[derive(Debug)]
pub struct Conn {
    /// The accept.
    epoch: Instant,
    /// Milliseconds from `epoch` to the last beginning or end of a request.
    last: AtomicU64,
    /// Requests being served.
    active: AtomicUsize,
    /// Whether a request has begun on this connection.
    begun: AtomicBool,
    /// HTTP/2: past the first request only the idle rule applies, since its PINGs,
    /// SETTINGS and WINDOW_UPDATEs are bytes that begin no request.
    h2: AtomicBool,
    /// Milliseconds from `epoch` to the first byte read while no request was served and
    /// none has begun since; [`NONE`] when there is none.
    first_byte: AtomicU64,
    /// Set to displace the connection from the overflow lane.
    evicted: AtomicBool,
    /// Set when the connection's task ends.
    ended: AtomicBool,
    /// Wakes the watchdog when its deadline may have come closer.
    wake: Notify,
}

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// No request began within the header timeout of the accept or of a first byte.
    HeaderTimeout,
    /// No request begun, served or ended for the idle timeout.
    Idle,
    /// An overflow connection outlived its deadline.
    OverflowDeadline,
    /// Displaced from a full overflow lane by a newer connection.
    Displaced,
}

impl Closed {
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header-timeout",
            Closed::Idle => "idle",
            Closed::OverflowDeadline => "overflow-deadline",
            Closed::Displaced => "overflow-displaced",
        }
    }
}

/// The watchdog's timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Clocks {
    pub header: Duration,
    pub idle: Duration,
    /// An overflow connection's time, from the accept, while it is not being answered.
    pub lifetime: Option<Duration>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Conn {
    /// A connection accepted now.
    pub fn new() -> Arc<Conn> {
        Arc::new(Conn {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            begun: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            first_byte: AtomicU64::new(NONE),
            evicted: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            wake: Notify::new(),
        })
    }

    fn now(&self) -> u64 {
        ms(self.epoch.elapsed())
    }

    /// Bytes were read. Cheap: two loads on every read but the first of a request.
    fn on_read(&self) {
        if self.first_byte.load(Ordering::Relaxed) == NONE
            && self.active.load(Ordering::Relaxed) == 0
        {
            // No wake-up: the watchdog never sleeps longer than a header timeout, so it
            // looks again by this byte's header deadline at the latest (see `watch`).
            self.first_byte.store(self.now(), Ordering::Relaxed);
        }
    }

    /// A request's headers are parsed and it is about to be served; the returned guard
    /// ends it however its future ends (answered, or dropped with a reset stream).
    pub fn begin(self: &Arc<Self>, h2: bool) -> Request {
        self.first_byte.store(NONE, Ordering::Relaxed);
        self.begun.store(true, Ordering::Relaxed);
        self.h2.store(h2, Ordering::Relaxed);
        self.last.store(self.now(), Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        Request(self.clone())
    }

    /// Whether a request is being served.
    pub fn serving(&self) -> bool {
        self.active.load(Ordering::Acquire) > 0
    }

    /// Closes the connection soon: displaced from the overflow lane.
    pub fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    pub fn evicted(&self) -> bool {
        self.evicted.load(Ordering::Relaxed)
    }

    /// The connection's task has ended.
    pub fn end(&self) {
        self.ended.store(true, Ordering::Relaxed);
    }

    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }

    /// When, in milliseconds from the accept, the watchdog must look again; or why the
    /// connection closes now (`now` is also milliseconds from the accept).
    fn deadline(&self, clocks: &Clocks, now: u64) -> Result<u64, Closed> {
        if self.evicted() {
            return Err(Closed::Displaced);
        }
        if self.active.load(Ordering::Acquire) > 0 {
            // Served: the body and request timeouts bound it. Look again an idle
            // timeout from now; a request's end does not wake the watchdog.
            return Ok(now.saturating_add(ms(clocks.idle)));
        }
        let (at, reason) = if !self.begun.load(Ordering::Relaxed) {
            (ms(clocks.header), Closed::HeaderTimeout)
        } else {
            let first = self.first_byte.load(Ordering::Relaxed);
            if first != NONE && !self.h2.load(Ordering::Relaxed) {
                (
                    first.saturating_add(ms(clocks.header)),
                    Closed::HeaderTimeout,
                )
            } else {
                let last = self.last.load(Ordering::Relaxed);
                (last.saturating_add(ms(clocks.idle)), Closed::Idle)
            }
        };
        let (at, reason) = match clocks.lifetime.map(ms) {
            Some(life) if life < at => (life, Closed::OverflowDeadline),
            _ => (at, reason),
        };
        if now >= at { Err(reason) } else { Ok(at) }
    }
}

/// A request being served; dropping it ends the request.
#[derive(Debug)]
pub struct Request(Arc<Conn>);

impl Drop for Request {
    fn drop(&mut self) {
        let conn = &self.0;
        conn.last.store(conn.now(), Ordering::Relaxed);
        // Release: a watchdog that sees the request ended sees `last` above.
        conn.active.fetch_sub(1, Ordering::Release);
    }
}

/// Resolves when `conn` must close, with the reason. Sleeps until the nearest deadline;
/// an eviction wakes it earlier, and it never sleeps longer than the shorter of the
/// header and idle timeouts.
pub async fn watch(conn: &Conn, clocks: Clocks) -> Closed {
    // Never past that from now: a request's first byte (whose header deadline is a
    // header timeout after it) and a request's end (idle deadline an idle timeout after
    // it) then need no wake-up, since the watchdog looks again before either deadline;
    // so a busy keep-alive connection re-arms its timer once per look, not once per
    // request. An idle connection wakes that often to look, and sleeps on.
    let look = ms(clocks.header.min(clocks.idle)).max(1);
    loop {
        let now = conn.now();
        let at = match conn.deadline(&clocks, now) {
            Ok(at) => at.min(now.saturating_add(look)),
            Err(reason) => return reason,
        };
        let until = conn.epoch + Duration::from_millis(at);
        tokio::select! {
            () = tokio::time::sleep_until(until.into()) => {}
            // A permit stored by `notify_one` before this wait wakes it at once: no
            // wake-up is lost between computing the deadline and sleeping on it.
            () = conn.wake.notified() => {}
        }
    }
}

/// A connection's IO, noting the first byte of each request for its [`Conn`].
#[derive(Debug)]
pub struct Watched<T> {
    io: T,
    conn: Arc<Conn>,
}

impl<T> Watched<T> {
    pub fn new(io: T, conn: Arc<Conn>) -> Self {
        Self { io, conn }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.conn.on_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCKS: Clocks = Clocks {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(75),
        lifetime: None,
    };

    #[test]
    fn a_new_connection_has_the_header_timeout_from_the_accept() {
        let c = Conn::new();
        assert_eq!(c.deadline(&CLOCKS, 0), Ok(10_000));
        // Bytes before the first request do not move it.
        c.first_byte.store(9_000, Ordering::Relaxed);
        assert_eq!(c.deadline(&CLOCKS, 9_999), Ok(10_000));
        assert_eq!(c.deadline(&CLOCKS, 10_000), Err(Closed::HeaderTimeout));
    }

    #[test]
    fn an_idle_keep_alive_connection_has_the_idle_timeout_until_a_byte_comes() {
        let c = Conn::new();
        drop(c.begin(false));
        let last = c.last.load(Ordering::Relaxed);
        assert_eq!(c.deadline(&CLOCKS, last + 30_000), Ok(last + 75_000));
        assert_eq!(c.deadline(&CLOCKS, last + 75_000), Err(Closed::Idle));
        // The first byte of the next request: its headers have the header timeout,
        // whatever bytes follow.
        c.first_byte.store(last + 40_000, Ordering::Relaxed);
        c.on_read();
        assert_eq!(c.first_byte.load(Ordering::Relaxed), last + 40_000);
        assert_eq!(c.deadline(&CLOCKS, last + 45_000), Ok(last + 50_000));
        assert_eq!(
            c.deadline(&CLOCKS, last + 50_000),
            Err(Closed::HeaderTimeout)
        );
        // The request begins: the clock is the idle one again once it ends.
        let r = c.begin(false);
        assert_eq!(c.first_byte.load(Ordering::Relaxed), NONE);
        c.on_read(); // body bytes while served
        assert_eq!(c.first_byte.load(Ordering::Relaxed), NONE);
        assert!(c.deadline(&CLOCKS, last + 500_000).is_ok(), "served");
        drop(r);
        assert_eq!(c.active.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn http2_bytes_between_requests_do_not_start_the_header_clock() {
        let c = Conn::new();
        drop(c.begin(true));
        let last = c.last.load(Ordering::Relaxed);
        c.on_read(); // a PING acknowledgement
        assert_eq!(c.deadline(&CLOCKS, last + 20_000), Ok(last + 75_000));
    }

    #[test]
    fn an_overflow_connection_closes_at_its_deadline_unless_served_and_when_displaced() {
        let clocks = Clocks {
            lifetime: Some(Duration::from_secs(2)),
            ..CLOCKS
        };
        let c = Conn::new();
        assert_eq!(c.deadline(&clocks, 0), Ok(2_000));
        assert_eq!(c.deadline(&clocks, 2_000), Err(Closed::OverflowDeadline));
        let r = c.begin(false);
        assert!(c.deadline(&clocks, 2_500).is_ok(), "answered first");
        drop(r);
        assert_eq!(c.deadline(&clocks, 2_500), Err(Closed::OverflowDeadline));
        c.evict();
        assert_eq!(c.deadline(&clocks, 0), Err(Closed::Displaced));
    }

    #[tokio::test]
    async fn the_watchdog_wakes_for_a_first_byte_before_its_idle_deadline() {
        let c = Conn::new();
        drop(c.begin(false));
        let clocks = Clocks {
            header: Duration::from_millis(200),
            idle: Duration::from_secs(60),
            lifetime: None,
        };
        let watched = c.clone();
        let dog = tokio::spawn(async move { watch(&watched, clocks).await });
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            !dog.is_finished(),
            "idle past the header timeout, not closed"
        );
        let byte = Instant::now();
        c.on_read();
        let closed = tokio::time::timeout(Duration::from_secs(5), dog)
            .await
            .expect("closed well before the idle timeout")
            .expect("watchdog");
        assert_eq!(closed, Closed::HeaderTimeout);
        assert!(
            byte.elapsed() >= Duration::from_millis(150),
            "{:?}",
            byte.elapsed()
        );
    }

    #[tokio::test]
    async fn an_idle_timeout_shorter_than_the_header_timeout_is_kept() {
        let c = Conn::new();
        let clocks = Clocks {
            header: Duration::from_secs(60),
            idle: Duration::from_millis(200),
            lifetime: None,
        };
        let watched = c.clone();
        // The watchdog sleeps before the first request: its deadline is then the
        // header timeout from the accept, far past the idle one the request's end sets.
        let dog = tokio::spawn(async move { watch(&watched, clocks).await });
        // Long enough for the watchdog to be asleep on that deadline.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!dog.is_finished());
        let ended = Instant::now();
        drop(c.begin(true));
        let closed = tokio::time::timeout(Duration::from_secs(5), dog)
            .await
            .expect("closed an idle timeout after the request, not a header timeout")
            .expect("watchdog");
        assert_eq!(closed, Closed::Idle);
        assert!(
            ended.elapsed() >= Duration::from_millis(150),
            "{:?}",
            ended.elapsed()
        );
    }
}
