//! The crate's error type.

/// Everything that can go wrong in shoal-rpc.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Certificate generation or parsing failed.
    #[error("certificate error: {0}")]
    Cert(String),
    /// A TLS configuration could not be built or a TLS handshake failed.
    #[error("TLS error: {0}")]
    Tls(String),
    /// A socket error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The destination could not be reached (TCP connect or TLS handshake failed).
    #[error("cannot connect to {addr}: {message}")]
    Connect {
        /// The destination address.
        addr: String,
        /// Why.
        message: String,
    },
    /// The call did not complete within its timeout.
    #[error("RPC timed out")]
    Timeout,
    /// The connection broke before the response arrived (the request may or may not have been handled).
    #[error("connection lost before the response arrived")]
    ConnectionLost,
    /// The remote handler returned an error (its message), or the server refused the request.
    #[error("remote error: {0}")]
    Remote(String),
    /// A frame's declared length exceeds the limit; nothing was allocated for it.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Declared length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A frame could not be decoded.
    #[error("malformed frame: {0}")]
    Codec(String),
    /// The peer violated the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The per-destination queue is full.
    #[error("too many queued messages for {0}")]
    Overloaded(String),
    /// A join token could not be parsed.
    #[error("invalid join token: {0}")]
    InvalidToken(String),
}
