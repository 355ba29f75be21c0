//! One client connection: where it is in the request cycle, and the deadlines that follow.
//!
//! [`ConnState`] records the phase of a connection and when it began:
//! - `Head`: a request head is arriving (from its first byte; a new connection starts here) and
//!   must be complete within [`ServerConfig::header_timeout`] — a client sending one byte a
//!   second gains nothing;
//! - `Busy`: a request is being handled (its body read under
//!   [`ServerConfig::body_timeout`] by the handler, then processed);
//! - `Idle`: the response is written or being written; the connection may stay without reading
//!   or writing a byte for [`ServerConfig::idle_timeout`].
//!
//! [`WatchedIo`] wraps the socket and moves `Idle` to `Head` on the first byte read; the service
//! marks `Busy` and back to `Idle` around each request. [`watchdog`] resolves when the deadline of
//! the current phase passes; the connection task then drops (closes) the connection.

use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[cfg(doc)]
use super::config::ServerConfig;

const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;

/// Milliseconds since the first call in this process (a monotonic clock in an atomic's width).
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The phase of one connection and its timestamps. Timestamps only grow; a phase is stored after
/// its start time (release) and read before it (acquire), so a reader never pairs a new phase
/// with an older start and never closes a connection early.
#[derive(Debug)]
pub(crate) struct ConnState {
    phase: AtomicU8,
    since: AtomicU64,
    last_io: AtomicU64,
}

impl ConnState {
    /// A new connection: waiting for its first request head.
    pub(crate) fn new() -> Self {
        let now = now_ms();
        ConnState {
            phase: AtomicU8::new(HEAD),
            since: AtomicU64::new(now),
            last_io: AtomicU64::new(now),
        }
    }

    fn on_read(&self) {
        let now = now_ms();
        self.last_io.store(now, Ordering::Relaxed);
        if self.phase.load(Ordering::Acquire) == IDLE {
            self.since.store(now, Ordering::Relaxed);
            self.phase.store(HEAD, Ordering::Release);
        }
    }

    fn on_write(&self) {
        self.last_io.store(now_ms(), Ordering::Relaxed);
    }

    /// A request head was parsed and its handler runs.
    pub(crate) fn request_started(&self) {
        self.since.store(now_ms(), Ordering::Relaxed);
        self.phase.store(BUSY, Ordering::Release);
    }

    /// The handler returned its response.
    pub(crate) fn request_finished(&self) {
        self.since.store(now_ms(), Ordering::Relaxed);
        self.phase.store(IDLE, Ordering::Release);
    }
}

/// Which deadline closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// The request head did not arrive in time.
    Header,
    /// The connection was idle too long.
    Idle,
}

/// Resolves when the deadline of the connection's current phase has passed.
pub(crate) async fn watchdog(state: &ConnState, header: Duration, idle: Duration) -> Expired {
    let header_ms = u64::try_from(header.as_millis()).unwrap_or(u64::MAX);
    let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    loop {
        let phase = state.phase.load(Ordering::Acquire);
        let since = state.since.load(Ordering::Relaxed);
        let now = now_ms();
        let (deadline, expired) = match phase {
            IDLE => {
                let last = since.max(state.last_io.load(Ordering::Relaxed));
                (last.saturating_add(idle_ms), Expired::Idle)
            }
            HEAD => (since.saturating_add(header_ms), Expired::Header),
            // The handler bounds its own body read; look again later.
            _ => (now.saturating_add(idle_ms.max(header_ms)), Expired::Idle),
        };
        if phase != BUSY && deadline <= now {
            return expired;
        }
        // A phase that starts while this sleeps ends no sooner than `shortest` after it starts,
        // so waking at least that often never closes a connection late.
        let shortest = header_ms.min(idle_ms).max(1);
        tokio::time::sleep(Duration::from_millis((deadline - now).min(shortest))).await;
    }
}

/// A socket that reports reads and writes to its [`ConnState`].
#[derive(Debug)]
pub(crate) struct WatchedIo<T> {
    inner: T,
    state: std::sync::Arc<ConnState>,
}

impl<T> WatchedIo<T> {
    pub(crate) fn new(inner: T, state: std::sync::Arc<ConnState>) -> Self {
        WatchedIo { inner, state }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.on_read();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn busy_connections_are_not_expired_and_idle_ones_are() {
        let state = ConnState::new();
        state.request_started();
        let r = tokio::time::timeout(
            Duration::from_millis(100),
            watchdog(&state, Duration::from_millis(10), Duration::from_millis(10)),
        )
        .await;
        assert!(r.is_err(), "a busy connection must not expire");
        state.request_finished();
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            watchdog(&state, Duration::from_secs(3600), Duration::from_millis(20)),
        )
        .await;
        assert_eq!(r, Ok(Expired::Idle));
    }

    #[tokio::test]
    async fn a_phase_change_during_a_long_sleep_is_noticed_in_time() {
        let state = std::sync::Arc::new(ConnState::new());
        let watched = std::sync::Arc::clone(&state);
        let watch = tokio::spawn(async move {
            watchdog(
                &watched,
                Duration::from_secs(30),
                Duration::from_millis(200),
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        state.request_started();
        state.request_finished();
        let r = tokio::time::timeout(Duration::from_secs(2), watch).await;
        assert!(matches!(r, Ok(Ok(Expired::Idle))), "{r:?}");
    }

    #[tokio::test]
    async fn a_byte_after_idle_starts_the_header_deadline() {
        let state = ConnState::new();
        state.request_finished();
        state.on_read();
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            watchdog(&state, Duration::from_millis(20), Duration::from_secs(3600)),
        )
        .await;
        assert_eq!(r, Ok(Expired::Header));
    }
}
