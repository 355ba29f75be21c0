//! The RPC client: one multiplexed connection per destination, one-way queues, and the join call.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tracing::{debug, trace};

use crate::frame::{Frame, MAX_FRAME_LEN, flags, read_frame, write_frame};
use crate::pki::{node_server_name, pinned_ca_client_config};
use crate::server::MAX_COALESCE;
use crate::{RpcError, TlsIdentity};

/// Capacity of a destination's queue (calls and one-way messages).
pub const PEER_QUEUE: usize = 4096;
/// TCP connect + TLS handshake limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How often abandoned (timed out) calls are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

type Reply = oneshot::Sender<Result<Bytes, RpcError>>;
type Pending = Arc<Mutex<HashMap<u64, Reply>>>;

enum Outgoing {
    Call { frame: Frame, reply: Reply },
    Oneway(Frame),
}

impl Outgoing {
    /// Fails a call (a one-way message is just dropped).
    fn fail(self, err: impl FnOnce() -> RpcError) {
        if let Outgoing::Call { reply, .. } = self {
            let _ = reply.send(Err(err()));
        }
    }
}

/// A client of other nodes' [`crate::RpcServer`]s. Cheap to clone (clones share connections).
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<ClientConfig>,
    peers: Mutex<HashMap<String, mpsc::Sender<Outgoing>>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient").finish_non_exhaustive()
    }
}

impl RpcClient {
    /// A client presenting `tls`'s node certificate.
    pub fn new(tls: &TlsIdentity) -> RpcClient {
        RpcClient {
            inner: Arc::new(Inner {
                config: tls.client_config(),
                peers: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// The queue of `addr`, starting its connection task on first use. None outside a tokio runtime.
    fn peer(&self, addr: &str) -> Option<mpsc::Sender<Outgoing>> {
        let mut peers = self.inner.peers.lock();
        if let Some(tx) = peers.get(addr)
            && !tx.is_closed()
        {
            return Some(tx.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        runtime.spawn(peer_task(addr.to_string(), self.inner.config.clone(), rx));
        peers.insert(addr.to_string(), tx.clone());
        Some(tx)
    }

    /// Sends a request to the node at `addr` ("host:port") and waits for its response. Fails with
    /// [`RpcError::Timeout`] after `timeout`, [`RpcError::Remote`] when the handler failed, and
    /// [`RpcError::Connect`]/[`RpcError::ConnectionLost`] when the node is unreachable.
    pub async fn call(
        &self,
        addr: &str,
        kind: u32,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, RpcError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = Frame::new(id, kind, flags::REQUEST, payload);
        let Some(queue) = self.peer(addr) else {
            return Err(RpcError::Protocol(
                "RpcClient::call outside a tokio runtime".to_string(),
            ));
        };
        let (reply, response) = oneshot::channel();
        let exchange = async move {
            queue
                .send(Outgoing::Call { frame, reply })
                .await
                .map_err(|_| RpcError::ConnectionLost)?;
            response.await.map_err(|_| RpcError::ConnectionLost)?
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| RpcError::Timeout)?
    }

    /// Queues a one-way message to `addr`. Never blocks: the message is dropped when the destination's queue is
    /// full or the destination is unreachable (the caller's protocol retries).
    pub fn send(&self, addr: &str, kind: u32, payload: Bytes) {
        let Some(queue) = self.peer(addr) else {
            debug!("RpcClient::send outside a tokio runtime; message dropped");
            return;
        };
        match queue.try_send(Outgoing::Oneway(Frame::new(
            0,
            kind,
            flags::ONEWAY,
            payload,
        ))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => trace!(addr, "rpc queue full; one-way message dropped"),
            Err(TrySendError::Closed(_)) => {
                trace!(addr, "rpc queue closed; one-way message dropped")
            }
        }
    }
}

async fn connect(addr: &str, config: Arc<ClientConfig>) -> Result<TlsStream<TcpStream>, RpcError> {
    let connect_err = |message: String| RpcError::Connect {
        addr: addr.to_string(),
        message,
    };
    let server_name = node_server_name()?;
    let attempt = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(config)
            .connect(server_name, tcp)
            .await
            .map_err(|e| connect_err(e.to_string()))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| connect_err("connect timed out".to_string()))?
}

/// Owns the connection to one destination: connects on demand, reconnects after failures with backoff
/// (failing calls and dropping one-way messages while backing off).
async fn peer_task(addr: String, config: Arc<ClientConfig>, mut rx: mpsc::Receiver<Outgoing>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let Some(first) = rx.recv().await else { return };
        match connect(&addr, config.clone()).await {
            Ok(stream) => {
                backoff = MIN_BACKOFF;
                if run_connection(&addr, stream, first, &mut rx).await {
                    return;
                }
            }
            Err(e) => {
                let message = e.to_string();
                debug!(%addr, error = %message, "rpc connect failed");
                let err = || RpcError::Connect {
                    addr: addr.clone(),
                    message: message.clone(),
                };
                first.fail(err);
                let until = Instant::now() + backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => break,
                        item = rx.recv() => match item {
                            Some(item) => item.fail(err),
                            None => return,
                        },
                    }
                }
            }
        }
    }
}

/// Runs one connection until it breaks (false) or the client is gone (true).
async fn run_connection(
    addr: &str,
    stream: TlsStream<TcpStream>,
    first: Outgoing,
    rx: &mut mpsc::Receiver<Outgoing>,
) -> bool {
    let (rd, wr) = tokio::io::split(stream);
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let (done_tx, mut done_rx) = oneshot::channel::<()>();
    let reader = tokio::spawn(response_loop(rd, pending.clone(), done_tx));
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    let mut next = Some(first);
    let client_gone = loop {
        let item = match next.take() {
            Some(item) => item,
            None => tokio::select! {
                item = rx.recv() => match item {
                    Some(item) => item,
                    None => break true,
                },
                _ = &mut done_rx => break false,
                _ = sweep.tick() => {
                    pending.lock().retain(|_, reply| !reply.is_closed());
                    continue;
                }
            },
        };
        let mut result = write_item(&mut w, &pending, item).await;
        let mut n = 1;
        while result.is_ok() && n < MAX_COALESCE {
            let Ok(item) = rx.try_recv() else { break };
            result = write_item(&mut w, &pending, item).await;
            n += 1;
        }
        if result.is_ok() {
            result = w.flush().await.map_err(RpcError::from);
        }
        if let Err(e) = result {
            debug!(%addr, error = %e, "rpc write failed");
            break false;
        }
    };
    reader.abort();
    for (_, reply) in pending.lock().drain() {
        let _ = reply.send(Err(RpcError::ConnectionLost));
    }
    client_gone
}

async fn write_item<W: AsyncWrite + Unpin>(
    w: &mut W,
    pending: &Pending,
    item: Outgoing,
) -> Result<(), RpcError> {
    match item {
        Outgoing::Call { frame, reply } => {
            let bytes = match frame.encode_to_vec_prefixed() {
                Ok(bytes) => bytes,
                Err(e) => {
                    // Only this call fails (e.g. too large); the connection is fine.
                    let _ = reply.send(Err(e));
                    return Ok(());
                }
            };
            pending.lock().insert(frame.id, reply);
            w.write_all(&bytes).await?;
        }
        Outgoing::Oneway(frame) => match frame.encode_to_vec_prefixed() {
            Ok(bytes) => w.write_all(&bytes).await?,
            Err(e) => debug!(error = %e, "one-way message not sendable; dropped"),
        },
    }
    Ok(())
}

async fn response_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    pending: Pending,
    _done: oneshot::Sender<()>,
) {
    loop {
        match read_frame(&mut rd, MAX_FRAME_LEN).await {
            Ok(Some(frame)) if frame.has(flags::RESPONSE) => {
                let Some(reply) = pending.lock().remove(&frame.id) else {
                    continue;
                };
                let _ = reply.send(response_result(frame));
            }
            Ok(Some(frame)) => trace!(
                flags = frame.flags,
                "rpc: ignoring unexpected frame from server"
            ),
            Ok(None) => break,
            Err(e) => {
                debug!(error = %e, "rpc read failed");
                break;
            }
        }
    }
    for (_, reply) in pending.lock().drain() {
        let _ = reply.send(Err(RpcError::ConnectionLost));
    }
}

fn response_result(frame: Frame) -> Result<Bytes, RpcError> {
    if frame.has(flags::ERROR) {
        Err(RpcError::Remote(
            String::from_utf8_lossy(&frame.payload).into_owned(),
        ))
    } else {
        Ok(frame.payload)
    }
}

/// Join: sends one request to `addr`'s [`crate::Handler::unauthenticated_call`] over TLS WITHOUT a client
/// certificate. The server is trusted only if its chain holds a CA certificate whose SHA-256 fingerprint is
/// `ca_fingerprint` and its certificate verifies against that CA for the name "shoal-node".
pub async fn unauthenticated_call(
    addr: &str,
    ca_fingerprint: [u8; 32],
    kind: u32,
    payload: Bytes,
    timeout: Duration,
) -> Result<Bytes, RpcError> {
    let exchange = async {
        let config = pinned_ca_client_config(ca_fingerprint)?;
        let stream = connect(addr, config).await?;
        let (mut rd, mut wr) = tokio::io::split(stream);
        write_frame(
            &mut wr,
            &Frame::new(1, kind, flags::REQUEST | flags::UNAUTHENTICATED, payload),
        )
        .await?;
        wr.flush().await?;
        loop {
            match read_frame(&mut rd, MAX_FRAME_LEN).await {
                Ok(Some(frame)) if frame.id == 1 && frame.has(flags::RESPONSE) => {
                    return response_result(frame);
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err(RpcError::ConnectionLost),
                Err(e) => return Err(e),
            }
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| RpcError::Timeout)?
}
