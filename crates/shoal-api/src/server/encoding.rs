//! Compressed request bodies: `Content-Encoding: gzip` or `deflate`, as DynamoDB accepts them.
//!
//! The signature covers the body as sent (compressed), so it is checked first; the body is then
//! inflated under the same limit as any request ([`MAX_REQUEST_BYTES`], applied to the inflated
//! size, so a decompression bomb costs at most that much), and the inflated bytes are reserved
//! from the server's body-memory budget as they grow, one MiB at a time, like any body.

use std::io::Read;

use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};
use tokio::sync::SemaphorePermit;

use super::admission::Admission;
use super::{MAX_REQUEST_BYTES, too_large};
use crate::error::ApiError;

/// How much more inflated body is reserved from the budget at a time.
const STEP: usize = 1 << 20;

/// A request body's `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
    /// HTTP's `deflate`: zlib-wrapped (RFC 1950); raw deflate (RFC 1951), which some clients
    /// send, is accepted too.
    Deflate,
}

impl Encoding {
    /// The encoding `headers` declare. Several `Content-Encoding` values (a body compressed
    /// twice) and unknown encodings are refused.
    pub(crate) fn of(headers: &http::HeaderMap) -> Result<Encoding, ApiError> {
        let mut values = headers.get_all(http::header::CONTENT_ENCODING).iter();
        let Some(value) = values.next() else {
            return Ok(Encoding::Identity);
        };
        let unsupported = || {
            ApiError::serialization(format!(
                "Unsupported Content-Encoding: {}; supported: gzip, deflate, identity",
                String::from_utf8_lossy(value.as_bytes())
                    .chars()
                    .take(64)
                    .collect::<String>()
            ))
        };
        if values.next().is_some() {
            return Err(unsupported());
        }
        let text = value.to_str().map_err(|_| unsupported())?.trim();
        if text.contains(',') {
            return Err(unsupported());
        }
        match text.to_ascii_lowercase().as_str() {
            "" | "identity" => Ok(Encoding::Identity),
            "gzip" | "x-gzip" => Ok(Encoding::Gzip),
            "deflate" => Ok(Encoding::Deflate),
            _ => Err(unsupported()),
        }
    }
}

/// The inflated `body`, with the permits reserving its memory (held until the response is
/// built). `Ok(None)` for an identity body (use it as it is).
///
/// # Errors
/// `RequestEntityTooLargeException` when it inflates past [`MAX_REQUEST_BYTES`],
/// `SerializationException` when it is not valid for its encoding, `ThrottlingException` when
/// the body-memory budget stays exhausted.
pub(crate) async fn inflate<'a>(
    encoding: Encoding,
    body: &[u8],
    admission: &'a Admission,
) -> Result<Option<(Vec<u8>, Vec<SemaphorePermit<'a>>)>, ApiError> {
    let reader: Box<dyn Read + Send + '_> = match encoding {
        Encoding::Identity => return Ok(None),
        Encoding::Gzip => Box::new(GzDecoder::new(body)),
        Encoding::Deflate if looks_like_zlib(body) => Box::new(ZlibDecoder::new(body)),
        Encoding::Deflate => Box::new(DeflateDecoder::new(body)),
    };
    let mut reader = reader;
    let mut out = Vec::new();
    let mut permits = Vec::new();
    loop {
        permits.extend(admission.reserve_body(STEP).await.map_err(ApiError::from)?);
        out.reserve_exact(STEP);
        let n = (&mut reader)
            .take(STEP as u64)
            .read_to_end(&mut out)
            .map_err(|e| {
                ApiError::serialization(format!(
                    "The request body could not be decompressed ({}): {e}",
                    if encoding == Encoding::Gzip {
                        "gzip"
                    } else {
                        "deflate"
                    }
                ))
            })?;
        if out.len() > MAX_REQUEST_BYTES {
            return Err(too_large());
        }
        if n < STEP {
            return Ok(Some((out, permits)));
        }
    }
}

/// Whether `body` starts with a zlib header (CMF/FLG: deflate method, a multiple of 31).
fn looks_like_zlib(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};

    use super::*;
    use crate::server::ServerConfig;

    fn admission() -> Admission {
        Admission::new(&ServerConfig::default())
    }

    fn headers(value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::CONTENT_ENCODING,
            http::HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn encodings_are_read_from_the_header() {
        assert_eq!(
            Encoding::of(&http::HeaderMap::new()).unwrap(),
            Encoding::Identity
        );
        assert_eq!(Encoding::of(&headers("GZIP")).unwrap(), Encoding::Gzip);
        assert_eq!(
            Encoding::of(&headers("deflate")).unwrap(),
            Encoding::Deflate
        );
        assert_eq!(
            Encoding::of(&headers("identity")).unwrap(),
            Encoding::Identity
        );
        assert!(Encoding::of(&headers("br")).is_err());
        assert!(Encoding::of(&headers("gzip, gzip")).is_err());
    }

    #[tokio::test]
    async fn gzip_zlib_and_raw_deflate_inflate() {
        let text = br#"{"TableName":"t"}"#.repeat(1000);
        let a = admission();
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&text).unwrap();
        let (out, _p) = inflate(Encoding::Gzip, &gz.finish().unwrap(), &a)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out, text);
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&text).unwrap();
        let (out, _p) = inflate(Encoding::Deflate, &z.finish().unwrap(), &a)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out, text);
        let mut d = DeflateEncoder::new(Vec::new(), Compression::default());
        d.write_all(&text).unwrap();
        let (out, _p) = inflate(Encoding::Deflate, &d.finish().unwrap(), &a)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out, text);
    }

    #[tokio::test]
    async fn a_bomb_stops_at_the_request_limit() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![b' '; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 200_000);
        let err = inflate(Encoding::Gzip, &bomb, &admission())
            .await
            .unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::RequestEntityTooLarge);
    }

    #[tokio::test]
    async fn garbage_is_a_serialization_error() {
        let err = inflate(Encoding::Gzip, b"not gzip at all", &admission())
            .await
            .unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::Serialization);
        assert!(err.message.contains("decompressed"), "{}", err.message);
    }
}
