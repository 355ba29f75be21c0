//! The wire envelope: length-prefixed protobuf [`Frame`]s.

use bytes::{Bytes, BytesMut};
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::RpcError;

/// Largest frame body accepted or sent (64 MiB).
pub const MAX_FRAME_LEN: usize = 64 << 20;
/// Largest frame body accepted from a peer without a client certificate (1 MiB).
pub const MAX_UNAUTHENTICATED_FRAME_LEN: usize = 1 << 20;
/// The protocol version this release speaks (carried in every frame's flags).
pub const PROTOCOL_VERSION: u32 = 1;

/// Frame flag bits (the low byte) and the protocol version (bits 16..24).
pub mod flags {
    /// A request: the receiver answers with a frame of the same id carrying [`RESPONSE`].
    pub const REQUEST: u32 = 1;
    /// A response to the request with the same id.
    pub const RESPONSE: u32 = 2;
    /// A one-way message (id 0, never answered).
    pub const ONEWAY: u32 = 4;
    /// With [`RESPONSE`]: the request failed; the payload is a UTF-8 message.
    pub const ERROR: u32 = 8;
    /// With [`REQUEST`]: addressed to `Handler::unauthenticated_call` (the only request a peer without a client
    /// certificate may send).
    pub const UNAUTHENTICATED: u32 = 16;
    /// Shift of the protocol version field.
    pub const VERSION_SHIFT: u32 = 16;
    /// Mask of the protocol version field (after shifting).
    pub const VERSION_MASK: u32 = 0xff;
}

/// One message on a connection.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Frame {
    /// Request id chosen by the requester (unique per connection); echoed in the response. 0 for one-way.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Application message kind (opaque to this crate).
    #[prost(uint32, tag = "2")]
    pub kind: u32,
    /// [`flags`] bits plus the sender's protocol version.
    #[prost(uint32, tag = "3")]
    pub flags: u32,
    /// Application payload.
    #[prost(bytes = "bytes", tag = "4")]
    pub payload: Bytes,
}

impl Frame {
    /// A frame with the given flag bits and this release's protocol version.
    pub fn new(id: u64, kind: u32, flag_bits: u32, payload: Bytes) -> Frame {
        Frame {
            id,
            kind,
            flags: flag_bits | (PROTOCOL_VERSION << flags::VERSION_SHIFT),
            payload,
        }
    }

    /// Whether all of `bits` are set.
    pub fn has(&self, bits: u32) -> bool {
        self.flags & bits == bits
    }

    /// The sender's protocol version.
    pub fn version(&self) -> u32 {
        (self.flags >> flags::VERSION_SHIFT) & flags::VERSION_MASK
    }

    /// Length prefix + body.
    pub fn encode_to_vec_prefixed(&self) -> Result<Vec<u8>, RpcError> {
        let len = self.encoded_len();
        if len > MAX_FRAME_LEN {
            return Err(RpcError::FrameTooLarge {
                len,
                max: MAX_FRAME_LEN,
            });
        }
        let mut out = Vec::with_capacity(4 + len);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        self.encode(&mut out)
            .map_err(|e| RpcError::Codec(e.to_string()))?;
        Ok(out)
    }
}

/// Writes one frame (not flushed).
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &Frame) -> Result<(), RpcError> {
    let buf = frame.encode_to_vec_prefixed()?;
    w.write_all(&buf).await?;
    Ok(())
}

/// Reads one frame. `Ok(None)` on a clean end of stream before a frame starts. A declared length above `max_len`
/// is rejected before anything is allocated for it.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max_len: usize,
) -> Result<Option<Frame>, RpcError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(RpcError::Codec(
                "stream ended inside a frame header".to_string(),
            ));
        }
        got += n;
    }
    let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    if len > max_len {
        return Err(RpcError::FrameTooLarge { len, max: max_len });
    }
    let mut body = BytesMut::zeroed(len);
    r.read_exact(&mut body).await?;
    Frame::decode(body.freeze())
        .map(Some)
        .map_err(|e| RpcError::Codec(e.to_string()))
}
