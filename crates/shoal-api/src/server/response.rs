//! Responses: the `x-amzn-RequestId` of each request and the response builder that adds it,
//! `x-amz-crc32` and `Server` to every answer.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

/// The `Server` header of every response: DynamoDB answers `Server: Server`, and some clients
/// and proxies look for the header.
pub(crate) const SERVER: &str = "Server";

/// Initial capacity of a response body buffer.
pub(crate) const RESPONSE_CAPACITY: usize = 2048;

/// An `x-amzn-RequestId`: 32 upper-case hex digits.
///
/// Unique without a system call per request (a v4 UUID reads the kernel's random source each
/// time, a measurable share of a GetItem): a random 64-bit seed drawn once per process and a
/// counter, each passed through a bijective mixer, so ids never repeat within a process, differ
/// across processes with overwhelming probability, and consecutive ids look unrelated. Request
/// ids only correlate logs; they are not secrets.
pub(crate) struct RequestId([u8; 32]);

impl RequestId {
    pub(crate) fn next() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = *SEED.get_or_init(|| {
            let r = uuid::Uuid::new_v4().as_u128();
            (r >> 64) as u64 ^ r as u64
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let words = [mix64(seed ^ n), mix64(n)];
        let mut out = [0u8; 32];
        for (i, word) in words.iter().enumerate() {
            for j in 0..16 {
                let nibble = (word >> (60 - 4 * j)) & 0xf;
                out[i * 16 + j] = b"0123456789ABCDEF"[nibble as usize];
            }
        }
        RequestId(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// SplitMix64's finaliser: a bijection on `u64` that scatters consecutive inputs.
/// A complete HTTP/1.1 error response written straight to a socket (for answers the HTTP stack
/// does not produce: refused connections, refused request heads): `status` is the status line's
/// code and reason, `extra` more header lines (each ending in CRLF). The connection closes after
/// it.
pub(crate) fn raw_error_response(
    status: &str,
    error_type: &str,
    message: &str,
    extra: &str,
) -> Vec<u8> {
    let body = serde_json::json!({ "__type": error_type, "message": message }).to_string();
    let id = RequestId::next();
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\n\
         connection: close\r\n{extra}server: {SERVER}\r\nx-amzn-requestid: {}\r\n\
         x-amz-crc32: {}\r\ncontent-length: {}\r\n\r\n{body}",
        id.as_str(),
        crc32fast::hash(body.as_bytes()),
        body.len()
    )
    .into_bytes()
}

fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    request_id: &RequestId,
) -> Response<Full<Bytes>> {
    let crc = crc32fast::hash(&body);
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::SERVER, HeaderValue::from_static(SERVER));
    if let Ok(v) = HeaderValue::from_bytes(&request_id.0) {
        h.insert("x-amzn-requestid", v);
    }
    h.insert("x-amz-crc32", HeaderValue::from(crc));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_32_upper_hex_digits_and_never_repeat() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = RequestId::next();
            let text = id.as_str();
            assert_eq!(text.len(), 32);
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
                "{text}"
            );
            assert!(seen.insert(text.to_owned()), "repeated id {text}");
        }
    }

    #[test]
    fn mix64_is_a_bijection_on_a_sample() {
        let outputs: std::collections::HashSet<u64> = (0..100_000u64).map(mix64).collect();
        assert_eq!(outputs.len(), 100_000);
    }
}
