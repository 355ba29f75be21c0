//! The HTTP front end: one POST per operation, HTTP/1.1 keep-alive, graceful shutdown.
//!
//! Request path: body-size limit (before reading the body) → read the body → SigV4 verification
//! → `X-Amz-Target` → JSON parse → [`crate::ops::dispatch`]. Every response carries
//! `x-amzn-RequestId` and `x-amz-crc32` (CRC32 of the body), errors included.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::backend::Backend;
use crate::error::{ApiError, ErrorKind};
use crate::sigv4::{AuthError, Verifier};

/// Largest request body accepted (DynamoDB: 16 MB).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

const TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// The API service: a backend plus the SigV4 verifier.
pub struct Api {
    backend: Arc<dyn Backend>,
    verifier: Verifier,
}

impl Api {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        let verifier = Verifier::new(backend.region().to_string());
        Api { backend, verifier }
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Handles one HTTP request; never fails (errors become DynamoDB error responses).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let request_id = RequestId::next();
        let (parts, body) = req.into_parts();

        if parts.method == Method::GET && parts.uri.path() == "/status" {
            let (code, body) = match self.backend.status().await {
                Some(v) => (
                    StatusCode::OK,
                    serde_json::to_vec_pretty(&v).unwrap_or_default(),
                ),
                None => (StatusCode::NOT_FOUND, b"{}".to_vec()),
            };
            return respond(code, "application/json", body, &request_id);
        }
        if parts.method == Method::GET && parts.uri.path() == "/health" {
            return respond(StatusCode::OK, "text/plain", b"ok".to_vec(), &request_id);
        }
        if parts.method == Method::GET && parts.uri.path() == "/" {
            let body = format!("healthy: shoal {}", self.backend.region());
            return respond(StatusCode::OK, "text/plain", body.into_bytes(), &request_id);
        }

        let result = self.handle_post(&parts, body).await;
        let (status, body, op) = match result {
            Ok((op, value)) => {
                // Sized for a typical 1 KB item so the buffer does not grow four times.
                let mut out = Vec::with_capacity(RESPONSE_CAPACITY);
                if serde_json::to_writer(&mut out, &value).is_err() {
                    out.clear();
                }
                (StatusCode::OK, out, op)
            }
            Err((op, err)) => (err.kind.status(), err.body(), op),
        };
        tracing::debug!(
            op = op.as_deref().unwrap_or("-"),
            status = status.as_u16(),
            micros = started.elapsed().as_micros() as u64,
            request_id = request_id.as_str(),
            "request"
        );
        respond(status, "application/x-amz-json-1.0", body, &request_id)
    }

    async fn handle_post<B>(
        &self,
        parts: &http::request::Parts,
        body: B,
    ) -> Result<(Option<String>, serde_json::Value), (Option<String>, ApiError)>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if parts.method != Method::POST {
            return Err((
                None,
                ApiError::new(
                    ErrorKind::UnknownOperation,
                    "Only POST requests are supported (GET / is the health check)",
                ),
            ));
        }
        // The size limit comes before reading the body.
        if let Some(len) = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && len > MAX_REQUEST_BYTES as u64
        {
            return Err((None, too_large()));
        }
        let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    return Err((None, too_large()));
                }
                return Err((
                    None,
                    ApiError::serialization(format!("Could not read the request body: {e}")),
                ));
            }
        };

        // Authentication before anything else looks at the request.
        let identity = self
            .verifier
            .verify(
                &parts.method,
                &parts.uri,
                &parts.headers,
                &body,
                SystemTime::now(),
                self.backend.keys(),
            )
            .map_err(|e| (None, auth_error(e)))?;

        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(op) = target.strip_prefix(TARGET_PREFIX) else {
            return Err((None, ApiError::new(ErrorKind::UnknownOperation, "")));
        };
        let op_name = Some(op.to_string());
        check_content_type(&parts.headers).map_err(|e| (op_name.clone(), e))?;

        let input: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            serde_json::from_slice(&body).map_err(|e| (op_name.clone(), malformed_json(&e)))?
        };
        let ctx = crate::ops::Ctx {
            backend: self.backend.as_ref(),
            identity: &identity,
        };
        crate::ops::dispatch(&ctx, op, &input)
            .await
            .map(|v| (op_name.clone(), v))
            .map_err(|e| (op_name, e))
    }
}

/// A body that does not parse. JSON nested past serde_json's 128 levels can only come from
/// attribute values nested far past DynamoDB's 32 levels (every other member is shallow), so it
/// gets the answer a parse would have led to: `Nesting Levels have exceeded supported limits`.
fn malformed_json(e: &serde_json::Error) -> ApiError {
    if e.to_string().starts_with("recursion limit exceeded") {
        return ApiError::validation(shoal_types::json::NESTING_EXCEEDED);
    }
    ApiError::serialization(format!("Malformed JSON: {e}"))
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorKind::RequestEntityTooLarge,
        format!("Request size exceeded {MAX_REQUEST_BYTES} bytes"),
    )
}

fn check_content_type(headers: &http::HeaderMap) -> Result<(), ApiError> {
    match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => Ok(()),
        Some(ct) => {
            let mime = ct.split(';').next().unwrap_or("").trim();
            if mime.eq_ignore_ascii_case("application/x-amz-json-1.0")
                || mime.eq_ignore_ascii_case("application/x-amz-json-1.1")
                || mime.eq_ignore_ascii_case("application/json")
            {
                Ok(())
            } else {
                Err(ApiError::serialization(format!(
                    "Unsupported Content-Type: {ct}; expected application/x-amz-json-1.0"
                )))
            }
        }
    }
}

fn auth_error(e: AuthError) -> ApiError {
    let kind = match &e {
        AuthError::MissingAuthenticationToken(_) => ErrorKind::MissingAuthenticationToken,
        AuthError::UnrecognizedClient(_) => ErrorKind::UnrecognizedClient,
        AuthError::InvalidSignature(_) => ErrorKind::InvalidSignature,
        AuthError::IncompleteSignature(_) => ErrorKind::IncompleteSignature,
        #[allow(unreachable_patterns)]
        _ => ErrorKind::AccessDenied,
    };
    ApiError::new(kind, e.message().to_string())
}

/// Initial capacity of a response body buffer.
const RESPONSE_CAPACITY: usize = 2048;

/// An `x-amzn-RequestId`: 32 upper-case hex digits.
///
/// Unique without a system call per request (a v4 UUID reads the kernel's random source each
/// time, a measurable share of a GetItem): a random 64-bit seed drawn once per process and a
/// counter, each passed through a bijective mixer, so ids never repeat within a process, differ
/// across processes with overwhelming probability, and consecutive ids look unrelated. Request
/// ids only correlate logs; they are not secrets.
struct RequestId([u8; 32]);

impl RequestId {
    fn next() -> Self {
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

    fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// SplitMix64's finaliser: a bijection on `u64` that scatters consecutive inputs.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn respond(
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
    if let Ok(v) = HeaderValue::from_bytes(&request_id.0) {
        h.insert("x-amzn-requestid", v);
    }
    h.insert("x-amz-crc32", HeaderValue::from(crc));
    resp
}

/// Serves the API on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    api: Arc<Api>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer): (_, SocketAddr) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and similar: back off briefly instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let api = api.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let api = api.clone();
                    async move { Ok::<_, Infallible>(api.handle(req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    // In-flight requests get a bounded time to finish.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await;
    Ok(())
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
