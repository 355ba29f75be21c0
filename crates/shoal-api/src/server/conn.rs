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

/// A socket that reports reads and writes to its [`ConnState`], and answers a refused request
/// head with a 400.
///
/// hyper refuses a request head larger than its buffer (`max_header_bytes`) or with more than
/// 100 headers itself, with a bodiless 431 (or 414 for a long request line) that no handler
/// sees. Clients expect DynamoDB's 400 with an error body, so when hyper starts writing such an
/// answer while a request head is arriving (no request of this connection is being handled),
/// the answer written instead is a 400 `ValidationException`; hyper closes the connection after
/// it, and what it writes meanwhile is dropped.
#[derive(Debug)]
pub(crate) struct WatchedIo<T> {
    inner: T,
    state: std::sync::Arc<ConnState>,
    /// The largest request head hyper accepts (for the refusal's message).
    max_head: usize,
    /// The 400 being written in place of hyper's refusal, and how much of it is written.
    refusal: Option<(Vec<u8>, usize)>,
}

impl<T> WatchedIo<T> {
    pub(crate) fn new(inner: T, state: std::sync::Arc<ConnState>, max_head: usize) -> Self {
        WatchedIo {
            inner,
            state,
            max_head,
            refusal: None,
        }
    }
}

/// Whether `first` (the start of what hyper writes) is its refusal of a request head.
fn is_head_refusal(first: &[u8]) -> bool {
    first.starts_with(b"HTTP/1.1 431 ") || first.starts_with(b"HTTP/1.1 414 ")
}

impl<T: AsyncWrite + Unpin> WatchedIo<T> {
    /// Starts the 400 in place of hyper's refusal when `first` is one (see [`WatchedIo`]).
    fn check_refusal(&mut self, first: &[u8]) {
        if self.refusal.is_none()
            && self.state.phase.load(Ordering::Acquire) == HEAD
            && is_head_refusal(first)
        {
            let message = format!(
                "The request line and headers must total at most {} bytes, in at most 100 header fields",
                self.max_head
            );
            let response = super::response::raw_error_response(
                "400 Bad Request",
                "com.amazon.coral.validate#ValidationException",
                &message,
                "",
            );
            self.refusal = Some((response, 0));
        }
    }

    /// Writes the rest of the 400; ready once all of it is written.
    fn poll_refusal(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = self.refusal.as_mut()
            && *written < bytes.len()
        {
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    *written += n;
                    self.state.on_write();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
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
        self.check_refusal(buf);
        if self.refusal.is_some() {
            return self.poll_refusal(cx).map_ok(|()| buf.len());
        }
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
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            self.check_refusal(first);
        }
        if self.refusal.is_some() {
            let total = bufs.iter().map(|b| b.len()).sum();
            return self.poll_refusal(cx).map_ok(|()| total);
        }
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
        std::task::ready!(self.poll_refusal(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_refusal(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the peer of a `WatchedIo` receives when hyper writes `written` in `phase`.
    async fn through_watched_io(busy: bool, written: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (ours, mut peer) = tokio::io::duplex(1 << 16);
        let state = std::sync::Arc::new(ConnState::new());
        if busy {
            state.request_started();
        }
        let mut io = WatchedIo::new(ours, state, 16384);
        io.write_all(written).await.unwrap();
        io.shutdown().await.unwrap();
        drop(io);
        let mut got = String::new();
        peer.read_to_string(&mut got).await.unwrap();
        got
    }

    #[tokio::test]
    async fn a_refused_request_head_is_answered_400_with_an_error_body() {
        let refusal = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        let got = through_watched_io(false, refusal).await;
        assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
        assert!(got.contains("ValidationException"), "{got}");
        assert!(got.contains("at most 16384 bytes"), "{got}");
        assert!(!got.contains("431"), "{got}");
        let long_line = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        assert!(
            through_watched_io(false, long_line)
                .await
                .starts_with("HTTP/1.1 400 ")
        );
        // A response to a request being handled passes through untouched, whatever it says.
        let answer = "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(through_watched_io(true, answer.as_bytes()).await, answer);
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(through_watched_io(false, ok.as_bytes()).await, ok);
    }

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
