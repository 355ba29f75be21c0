//! The accept loop: the connection limit, the per-connection task, and what happens when the
//! process runs out of file descriptors.
//!
//! - Past the connection limit a new connection is answered HTTP 503 `ThrottlingException`
//!   (`Connection: close`, `Retry-After: 1`) and closed, by at most [`REFUSING_AT_ONCE`] small
//!   tasks; past those it is closed at once.
//! - When `accept()` fails with `EMFILE`/`ENFILE` the server closes a spare descriptor it keeps
//!   open for this, accepts the waiting connection, answers it 503 ("out of file descriptors"),
//!   closes it and takes the spare back, so clients see an error instead of a hang while the
//!   node keeps the descriptors its open files need. The error is logged at most once a second.
//! - An HTTPS [`Listener`] runs each connection's TLS handshake inside the connection's task,
//!   under the same connection limit, within the header timeout; a failed handshake only ends
//!   that task. Refused TLS connections are closed without an answer (a plain 503 would be
//!   garbage to a TLS client). Several listeners (HTTP and HTTPS) share one limit.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::Api;
use super::config::ServerConfig;
use super::conn::{ConnState, WatchedIo, watchdog};

/// Connections being refused (answered 503) at once; more are closed without an answer.
pub const REFUSING_AT_ONCE: usize = 64;

/// How long a refused connection may take to receive its answer.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// How long in-flight requests get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A socket the API serves: plain HTTP, or HTTPS through a TLS acceptor.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Listener {
    /// Plain HTTP on `tcp`.
    pub fn http(tcp: TcpListener) -> Self {
        Listener { tcp, tls: None }
    }

    /// HTTPS on `tcp`: each connection's TLS handshake runs in its own task and must finish
    /// within the header timeout.
    pub fn https(tcp: TcpListener, tls: TlsAcceptor) -> Self {
        Listener {
            tcp,
            tls: Some(tls),
        }
    }
}

/// Serves the API on `listener` (plain HTTP) until `shutdown` resolves; see [`serve_all`].
///
/// # Errors
/// None today (see [`serve_all`]).
pub async fn serve(
    listener: TcpListener,
    api: Arc<Api>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_all(vec![Listener::http(listener)], api, shutdown).await
}

/// One listener's accept loop (it never ends by itself).
type AcceptLoop<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What the accept loops of one server share: the connection limit counts the connections of
/// every listener.
struct Shared {
    api: Arc<Api>,
    config: ServerConfig,
    limit: usize,
    slots: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    graceful: GracefulShutdown,
}

/// Serves the API on every listener until `shutdown` resolves, then lets in-flight requests
/// finish (for up to 10 s). Limits and timeouts come from [`Api::config`]; the connection limit
/// is shared by all listeners.
///
/// # Errors
/// None today: accept errors are logged and survived; the `Result` leaves room for start-up
/// failures.
pub async fn serve_all(
    listeners: Vec<Listener>,
    api: Arc<Api>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let config = api.config().clone();
    let fd_limit = fd_soft_limit();
    let limit = connection_limit(&config, fd_limit);
    tracing::info!(
        max_connections = limit,
        fd_limit = fd_limit.map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
        "API connection limit"
    );
    let shared = Shared {
        api,
        config,
        limit,
        slots: Arc::new(Semaphore::new(limit)),
        refusing: Arc::new(Semaphore::new(REFUSING_AT_ONCE)),
        graceful: GracefulShutdown::new(),
    };
    {
        // The loops never end by themselves; they (and their sockets) are dropped at shutdown.
        let mut loops: Vec<AcceptLoop<'_>> = listeners
            .into_iter()
            .map(|l| Box::pin(accept_loop(l, &shared)) as AcceptLoop<'_>)
            .collect();
        let all = std::future::poll_fn(|cx| {
            for l in &mut loops {
                let _ = l.as_mut().poll(cx);
            }
            Poll::<()>::Pending
        });
        tokio::select! {
            () = all => {}
            () = shutdown => {}
        }
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, shared.graceful.shutdown()).await;
    Ok(())
}

/// Accepts connections on one listener until dropped.
async fn accept_loop(listener: Listener, shared: &Shared) {
    let Listener { tcp, tls } = listener;
    let mut spare = open_spare();
    let mut warned = Warnings::default();
    let api = &shared.api;
    loop {
        match tcp.accept().await {
            Ok((stream, peer)) => match Arc::clone(&shared.slots).try_acquire_owned() {
                Ok(slot) => spawn_connection(stream, peer, slot, tls.clone(), shared),
                Err(_) => {
                    api.metrics.refused_connection("connection_limit");
                    warned.connections(shared.limit);
                    // A TLS client cannot read a plain answer: it is just closed.
                    if tls.is_none() {
                        refuse(stream, &shared.refusing, Refusal::Connections(shared.limit));
                    }
                }
            },
            Err(e) if is_fd_exhaustion(&e) => {
                api.metrics.refused_connection("file_descriptors");
                warned.descriptors(&e);
                if spare.take().is_some() {
                    // One descriptor is free now: use it to answer (or close) the waiting client.
                    if let Ok(Ok((stream, _))) =
                        tokio::time::timeout(Duration::from_millis(10), tcp.accept()).await
                        && tls.is_none()
                    {
                        refuse_now(stream, Refusal::Descriptors).await;
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                spare = open_spare();
            }
            Err(e) => {
                // A connection reset before it was accepted and the like: nothing to do.
                tracing::debug!(error = %e, "accept failed");
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

fn spawn_connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    tls: Option<TlsAcceptor>,
    shared: &Shared,
) {
    let _ = stream.set_nodelay(true);
    // Taken now, so a shutdown that starts during a TLS handshake still waits for this one.
    let watcher = shared.graceful.watcher();
    let api = Arc::clone(&shared.api);
    let config = shared.config.clone();
    let connections = api.metrics.connections.clone();
    connections.inc();
    tokio::spawn(async move {
        let _slot = slot;
        let _open = scopeguard(move || {
            connections.dec();
        });
        let Some(acceptor) = tls else {
            return serve_connection(stream, peer, api, &config, watcher).await;
        };
        // A client that never completes its handshake costs a slot for the header timeout.
        match tokio::time::timeout(config.header_timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => serve_connection(stream, peer, api, &config, watcher).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    });
}

/// Serves HTTP/1.1 on one connection (plain or TLS) until it closes, fails, or a deadline of
/// [`watchdog`] passes.
async fn serve_connection<IO>(
    io: IO,
    peer: SocketAddr,
    api: Arc<Api>,
    config: &ServerConfig,
    watcher: Watcher,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = Arc::new(ConnState::new());
    let io = TokioIo::new(WatchedIo::new(
        io,
        Arc::clone(&state),
        config.max_header_bytes.max(8192),
    ));
    let service = {
        let state = Arc::clone(&state);
        service_fn(move |req: hyper::Request<Incoming>| {
            let api = Arc::clone(&api);
            let state = Arc::clone(&state);
            async move {
                state.request_started();
                let response = api.handle(req, peer.ip()).await;
                state.request_finished();
                Ok::<_, Infallible>(response)
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        // hyper refuses a head that does not fit its buffer (431/414; 8 KiB is its minimum) or
        // has more than 100 headers (431); `WatchedIo` turns those answers into a 400.
        .max_buf_size(config.max_header_bytes.max(8192))
        .serve_connection(io, service);
    let conn = watcher.watch(conn);
    tokio::select! {
        result = conn => if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        },
        expired = watchdog(&state, config.header_timeout, config.idle_timeout) => {
            tracing::debug!(%peer, ?expired, "closing connection: timeout");
        }
    }
}

/// Why a connection is refused.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// The connection limit (the number) is reached.
    Connections(usize),
    /// `accept()` failed for lack of file descriptors.
    Descriptors,
}

impl Refusal {
    /// The complete HTTP response: 503 with a retryable `ThrottlingException` body.
    fn response(self) -> Vec<u8> {
        let message = match self {
            Refusal::Connections(n) => {
                format!("Too many open connections (the limit is {n}); retry later.")
            }
            Refusal::Descriptors => {
                "The server is out of file descriptors; retry later.".to_owned()
            }
        };
        super::response::raw_error_response(
            "503 Service Unavailable",
            "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            &message,
            "retry-after: 1\r\n",
        )
    }
}

/// Answers `stream` 503 in a small task and closes it, or closes it at once when
/// [`REFUSING_AT_ONCE`] refusals are already running.
fn refuse(stream: TcpStream, refusing: &Arc<Semaphore>, why: Refusal) {
    let Ok(permit) = Arc::clone(refusing).try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, answer_and_close(stream, why)).await;
    });
}

/// Writes the refusal, closes the write side, and reads what the client sends until it closes
/// (at most 64 KiB), so the close does not reset the connection before the client reads the
/// answer.
async fn answer_and_close(mut stream: TcpStream, why: Refusal) {
    if stream.write_all(&why.response()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut buf = [0u8; 4096];
    let mut left = 64 * 1024usize;
    while left > 0 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// Answers `stream` 503 almost without waiting (used with the spare descriptor, which must be
/// taken back soon): waits at most 20 ms for the request to arrive and reads it, so closing does
/// not reset the connection before the client reads the answer; writes the answer if the socket
/// takes it; closes.
async fn refuse_now(mut stream: TcpStream, why: Refusal) {
    let _ = tokio::time::timeout(Duration::from_millis(20), stream.readable()).await;
    let mut buf = [0u8; 4096];
    for _ in 0..16 {
        match stream.try_read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let _ = stream.try_write(&why.response());
    let _ = tokio::time::timeout(Duration::from_millis(5), stream.shutdown()).await;
}

fn is_fd_exhaustion(e: &std::io::Error) -> bool {
    // EMFILE (process limit) and ENFILE (system limit) on Linux and the BSDs.
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// A descriptor kept open so that one can be freed when the process runs out.
fn open_spare() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Rate limits for the overload warnings: at most one a second each.
#[derive(Default)]
struct Warnings {
    connections: Option<Instant>,
    descriptors: Option<Instant>,
}

impl Warnings {
    fn due(last: &mut Option<Instant>) -> bool {
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(now);
        true
    }

    fn connections(&mut self, limit: usize) {
        if Self::due(&mut self.connections) {
            tracing::warn!(
                limit,
                "connection limit reached: refusing new connections (503)"
            );
        }
    }

    fn descriptors(&mut self, e: &std::io::Error) {
        if Self::due(&mut self.descriptors) {
            tracing::error!(
                error = %e,
                "out of file descriptors: refusing new connections (503); raise the limit \
                 (ulimit -n) or lower max_connections"
            );
        }
    }
}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits` (`None` elsewhere or
/// when unlimited).
pub(crate) fn fd_soft_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The connection limit in force: [`ServerConfig::max_connections`], lowered so that the
/// reserved descriptors stay free (a quarter of the limit, at least 64, unless configured).
pub(crate) fn connection_limit(config: &ServerConfig, fd_limit: Option<usize>) -> usize {
    let Some(fds) = fd_limit else {
        return config.max_connections.max(1);
    };
    let reserve = config.reserved_fds.unwrap_or((fds / 4).max(64));
    config
        .max_connections
        .min(fds.saturating_sub(reserve))
        .max(1)
}

/// Runs `f` when dropped (a connection's task ends, however it ends).
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_limit_lowers_the_connection_limit() {
        let c = ServerConfig::default();
        assert_eq!(connection_limit(&c, None), 4096);
        assert_eq!(connection_limit(&c, Some(1_048_576)), 4096);
        assert_eq!(connection_limit(&c, Some(1024)), 768);
        assert_eq!(connection_limit(&c, Some(100)), 36);
        assert_eq!(connection_limit(&c, Some(10)), 1);
        let c = ServerConfig {
            reserved_fds: Some(0),
            ..ServerConfig::default()
        };
        assert_eq!(connection_limit(&c, Some(1024)), 1024);
    }

    #[test]
    fn this_process_has_a_readable_descriptor_limit() {
        if cfg!(target_os = "linux") {
            assert!(fd_soft_limit().is_some_and(|n| n > 0));
        }
    }

    #[test]
    fn refusals_are_complete_retryable_responses() {
        let text = String::from_utf8(Refusal::Connections(7).response()).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 "));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("connection: close"));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(
            v["__type"]
                .as_str()
                .unwrap()
                .ends_with("#ThrottlingException")
        );
        assert!(v["message"].as_str().unwrap().contains("limit is 7"));
    }
}
