//! shoal-rpc: node-to-node messaging of a Shoal cluster.
//!
//! # Protocol
//!
//! Nodes talk over TCP + TLS (rustls with the aws-lc-rs provider, installed per configuration, never as the
//! process default). A connection carries [`Frame`]s in both directions:
//!
//! * the client sends *requests* (`flags::REQUEST`, a fresh non-zero id per request) and *one-way* messages
//!   (`flags::ONEWAY`, id 0);
//! * the server answers every request with exactly one *response* (`flags::RESPONSE`, same id; with
//!   `flags::ERROR` the payload is a UTF-8 error message). Responses may come in any order: requests of one
//!   connection are handled concurrently, so one connection per (client, destination) multiplexes everything;
//! * one-way messages are delivered to [`Handler::oneway`] in the order they were sent on the connection.
//!
//! `kind` is an application message type (opaque here). [`RpcClient`] keeps one connection per destination,
//! queues calls and one-way messages in a bounded per-destination queue (one-way messages are dropped, never
//! blocked on, when it is full or the destination is unreachable), coalesces whatever is queued into one TLS
//! write, reconnects on demand after a failure with exponential backoff (50 ms .. 1 s; calls fail fast with
//! [`RpcError::Connect`] while backing off) and fails calls in flight on a broken connection with
//! [`RpcError::ConnectionLost`].
//!
//! # Framing
//!
//! Each frame is a 4-byte big-endian length followed by that many bytes of a protobuf message
//! `Frame { uint64 id = 1; uint32 kind = 2; uint32 flags = 3; bytes payload = 4; }`. Lengths above
//! [`frame::MAX_FRAME_LEN`] (64 MiB; 1 MiB before the peer authenticated) are rejected before anything is
//! allocated and the connection is closed.
//!
//! # Versioning
//!
//! * TLS ALPN: both sides offer `shoal/1` ([`pki::ALPN_V1`]); a future release offers `shoal/2` first and
//!   falls back.
//! * Every frame carries the sender's protocol version in bits 16..24 of `flags` ([`frame::PROTOCOL_VERSION`],
//!   currently 1). A receiver handles frames of its own or an older version; it answers a request of a newer
//!   version with an error response "unsupported protocol version N" (so the newer peer can fall back) and
//!   ignores a newer one-way message.
//! * Unknown protobuf fields are ignored, so fields can be added to `Frame` compatibly; flag bits not defined
//!   here are ignored.
//!
//! # Security model
//!
//! * The bootstrap node generates the cluster CA ([`ClusterCa`], ECDSA P-256, self-signed, CN
//!   `Shoal cluster <id>`). Every node gets a certificate from it ([`ClusterCa::issue`]: SAN DNS `shoal-node`,
//!   server + client auth, ~10 years) and presents the chain `[node cert, CA cert]`.
//! * Clients verify the server against the cluster CA (the only trust root) for the name `shoal-node`.
//! * The server asks for a client certificate; if one is presented it must chain to the cluster CA, otherwise
//!   the handshake fails (a certificate from another CA never reaches the handler). A peer that presents a
//!   certificate is a *member*: its requests reach [`Handler::call`], its one-way messages
//!   [`Handler::oneway`].
//! * A peer without a certificate (a node that is joining) may only send requests flagged
//!   `flags::UNAUTHENTICATED`, which reach [`Handler::unauthenticated_call`] (the node checks the join token
//!   there). Any other frame from it gets an error response ("authentication required") and the connection is
//!   closed. Its frames are limited to 1 MiB.
//! * The joining node authenticates the server with the [`JoinToken`]: [`unauthenticated_call`] accepts the
//!   server only if the chain it presents contains a certificate whose SHA-256 fingerprint equals the token's
//!   `ca_fingerprint` and the server's certificate verifies against exactly that CA.
//! * The join token (`SHOAL2-...`, see [`JoinToken`]) is a secret with an expiry: its `Debug` output redacts
//!   the secret, [`JoinToken::verify_secret`] compares in constant time, and members keep only its
//!   [`JoinToken::secret_digest`]. Private keys are never logged.
//! * Membership revocation is not implemented: any holder of a certificate from the CA is a member.

mod client;
mod error;
pub mod frame;
pub mod pki;
mod server;

pub use bytes::Bytes;
pub use client::{PEER_QUEUE, RpcClient, unauthenticated_call};
pub use error::RpcError;
pub use frame::Frame;
pub use pki::{ClusterCa, JoinToken, NodeCert, TlsIdentity};
pub use server::{Handler, RpcServer};
