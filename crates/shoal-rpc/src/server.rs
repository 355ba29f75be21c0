//! The RPC server: accepts TLS connections and dispatches frames to a [`Handler`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::frame::{
    Frame, MAX_FRAME_LEN, MAX_UNAUTHENTICATED_FRAME_LEN, PROTOCOL_VERSION, flags, read_frame,
};
use crate::{RpcError, TlsIdentity};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests of one connection being handled at the same time (more wait: back-pressure on the reader).
const MAX_INFLIGHT_PER_CONN: usize = 4096;
/// Frames coalesced into one flush at most.
pub(crate) const MAX_COALESCE: usize = 256;
/// Capacity of a connection's outgoing frame queue.
const RESPONSE_QUEUE: usize = 1024;

/// The application side of the server.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// A request from an authenticated member (client cert signed by the cluster CA) -> response payload.
    async fn call(&self, kind: u32, payload: Bytes) -> Result<Bytes, String>;
    /// A one-way message from an authenticated member. Called on the connection's reader in arrival order: it
    /// must not block (hand the message off).
    fn oneway(&self, kind: u32, payload: Bytes);
    /// A request from a peer WITHOUT a client certificate: only this entry point is reachable for them
    /// (the node uses it for Join, which checks the join token itself).
    async fn unauthenticated_call(&self, kind: u32, payload: Bytes) -> Result<Bytes, String>;
}

/// A running server. Dropping it stops accepting and closes its connections (like [`RpcServer::shutdown`], but
/// without waiting).
pub struct RpcServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RpcServer {
    /// Binds `addr` and starts accepting connections in the background.
    pub async fn bind(
        addr: SocketAddr,
        tls: &TlsIdentity,
        handler: Arc<dyn Handler>,
    ) -> Result<RpcServer, RpcError> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(tls.server_config());
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, acceptor, handler, stop_rx));
        Ok(RpcServer {
            local_addr,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// The bound address (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, closes every connection (in-flight requests are abandoned) and waits until the
    /// listening socket is closed.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handler: Arc<dyn Handler>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    conns.spawn(serve_conn(stream, peer, acceptor.clone(), handler.clone()));
                }
                Err(e) => {
                    // Typically EMFILE; back off a little instead of spinning.
                    warn!(error = %e, "rpc accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    conns.shutdown().await;
}

async fn serve_conn(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    handler: Arc<dyn Handler>,
) {
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "rpc TLS handshake failed");
            return;
        }
        Err(_) => {
            debug!(%peer, "rpc TLS handshake timed out");
            return;
        }
    };
    let authenticated = tls
        .get_ref()
        .1
        .peer_certificates()
        .is_some_and(|c| !c.is_empty());
    let (rd, wr) = tokio::io::split(tls);
    let (tx, rx) = mpsc::channel::<Frame>(RESPONSE_QUEUE);
    let reader = read_loop(rd, peer, authenticated, handler, tx);
    let writer = async {
        if let Err(e) = write_loop(wr, rx).await {
            debug!(%peer, error = %e, "rpc connection write failed");
        }
    };
    tokio::join!(reader, writer);
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    peer: SocketAddr,
    authenticated: bool,
    handler: Arc<dyn Handler>,
    tx: mpsc::Sender<Frame>,
) {
    let max_len = if authenticated {
        MAX_FRAME_LEN
    } else {
        MAX_UNAUTHENTICATED_FRAME_LEN
    };
    let permits = Arc::new(Semaphore::new(MAX_INFLIGHT_PER_CONN));
    let mut requests = JoinSet::new();
    loop {
        let frame = match read_frame(&mut rd, max_len).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                debug!(%peer, error = %e, "rpc connection read failed");
                break;
            }
        };
        let is_request = frame.has(flags::REQUEST);
        if frame.version() > PROTOCOL_VERSION {
            // A newer peer: answer requests with an error it can recognise and fall back from.
            if is_request {
                let message = format!("unsupported protocol version {}", frame.version());
                let _ = tx.send(error_frame(&frame, &message)).await;
            }
            continue;
        }
        if is_request {
            let unauthenticated_entry = frame.has(flags::UNAUTHENTICATED);
            if !authenticated && !unauthenticated_entry {
                let _ = tx
                    .send(error_frame(
                        &frame,
                        "authentication required: no client certificate",
                    ))
                    .await;
                break;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let handler = handler.clone();
            let tx = tx.clone();
            requests.spawn(async move {
                let _permit = permit;
                let Frame {
                    id, kind, payload, ..
                } = frame;
                let result = if unauthenticated_entry {
                    handler.unauthenticated_call(kind, payload).await
                } else {
                    handler.call(kind, payload).await
                };
                let response = match result {
                    Ok(payload) => Frame::new(id, kind, flags::RESPONSE, payload),
                    Err(message) => Frame::new(
                        id,
                        kind,
                        flags::RESPONSE | flags::ERROR,
                        Bytes::from(message),
                    ),
                };
                let _ = tx.send(response).await;
            });
            while requests.try_join_next().is_some() {}
        } else if frame.has(flags::ONEWAY) {
            if !authenticated {
                let _ = tx
                    .send(error_frame(
                        &frame,
                        "authentication required: no client certificate",
                    ))
                    .await;
                break;
            }
            handler.oneway(frame.kind, frame.payload);
        } else {
            debug!(%peer, flags = frame.flags, "rpc: unexpected frame from a client; closing");
            break;
        }
    }
    drop(tx);
    // Let in-flight requests answer; the writer ends once every sender is gone.
    while requests.join_next().await.is_some() {}
}

fn error_frame(request: &Frame, message: &str) -> Frame {
    Frame::new(
        request.id,
        request.kind,
        flags::RESPONSE | flags::ERROR,
        Bytes::from(message.to_string()),
    )
}

/// Writes queued frames, coalescing whatever is queued into one flush; closes the stream (TLS close_notify)
/// when the queue closes.
async fn write_loop<W: AsyncWrite + Unpin>(
    wr: W,
    mut rx: mpsc::Receiver<Frame>,
) -> Result<(), RpcError> {
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    while let Some(frame) = rx.recv().await {
        write_response(&mut w, &frame).await?;
        let mut n = 1;
        while n < MAX_COALESCE {
            let Ok(frame) = rx.try_recv() else { break };
            write_response(&mut w, &frame).await?;
            n += 1;
        }
        w.flush().await?;
    }
    w.shutdown().await?;
    Ok(())
}

async fn write_response<W: AsyncWrite + Unpin>(w: &mut W, frame: &Frame) -> Result<(), RpcError> {
    let bytes = match frame.encode_to_vec_prefixed() {
        Ok(bytes) => bytes,
        Err(e) => {
            error_frame(frame, &format!("response not sendable: {e}")).encode_to_vec_prefixed()?
        }
    };
    w.write_all(&bytes).await?;
    Ok(())
}
