//! The HTTP front end: one POST per operation, HTTP/1.1 keep-alive, graceful shutdown, and a
//! bounded cost for every client.
//!
//! Request path: framing checks (no `Transfer-Encoding`; `Content-Length` at most 16 MB) → SigV4
//! pre-check of the head ([`Verifier::precheck`]: header form, known access key, date) → body
//! memory reserved ([`ServerConfig::max_body_bytes_in_flight`]) → body read within
//! [`ServerConfig::body_timeout`] → signature over the body → `X-Amz-Target` → a processing slot
//! ([`ServerConfig::max_concurrent_requests`]) → JSON parse (duplicate keys refused) →
//! [`crate::ops::dispatch`]. Every response carries `x-amzn-RequestId` and `x-amz-crc32` (CRC32
//! of the body), errors included; a response to a request whose body was not read carries
//! `Connection: close`.
//!
//! Modules: [`config`] (limits and timeouts), `accept` (the accept loop, connection limit,
//! descriptor exhaustion), `conn` (per-connection deadlines), `admission` (body memory and
//! processing slots), `json` (strict parsing), `response` (request ids, headers), [`tls`] (HTTPS:
//! the certificate in force, reloaded when its files change).

mod accept;
mod admission;
pub mod config;
mod conn;
mod encoding;
mod json;
mod pages;
mod response;
pub mod tls;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

pub use accept::{Listener, REFUSING_AT_ONCE, serve, serve_all};
pub use config::{ConfigError, MAX_REQUEST_BYTES, ServerConfig};
pub use pages::MetricsToken;
pub use tls::{CertFiles, CertResolver, TlsError, acceptor};

use crate::backend::Backend;
use crate::error::{ApiError, ErrorKind};
use crate::metrics::{self, ApiMetrics};
use crate::sigv4::{AuthError, Verifier};
use admission::Admission;
use response::{RESPONSE_CAPACITY, RequestId, respond};

/// A request refused before it reached an operation: the operation name when known, the error,
/// and whether the connection must close (its body was not read, or its framing is suspect).
struct Refused {
    op: Option<String>,
    error: ApiError,
    close: bool,
}

impl Refused {
    fn new(op: Option<String>, error: ApiError) -> Self {
        Refused {
            op,
            error,
            close: false,
        }
    }

    fn closing(error: ApiError) -> Self {
        Refused {
            op: None,
            error,
            close: true,
        }
    }
}

/// The API service: a backend, the SigV4 verifier, the server's limits and the admission state
/// that enforces them.
pub struct Api {
    backend: Arc<dyn Backend>,
    verifier: Verifier,
    config: ServerConfig,
    admission: Admission,
    metrics: ApiMetrics,
    policies: crate::authz::PolicyCache,
}

impl Api {
    /// The API over `backend` with the default [`ServerConfig`].
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self::with_config(backend, ServerConfig::default())
    }

    /// The API over `backend` with these limits and timeouts (see [`ServerConfig::validate`];
    /// a header limit under 8 KiB is raised to 8 KiB).
    pub fn with_config(backend: Arc<dyn Backend>, config: ServerConfig) -> Self {
        let verifier = Verifier::new(backend.region().to_string());
        let admission = Admission::new(&config);
        Api {
            backend,
            verifier,
            config,
            admission,
            metrics: ApiMetrics::new(),
            policies: crate::authz::PolicyCache::default(),
        }
    }

    /// The limits and timeouts in force.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Handles one HTTP request from `peer`; never fails (errors become DynamoDB error
    /// responses).
    pub async fn handle<B>(&self, req: Request<B>, peer: IpAddr) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let request_id = RequestId::next();
        let (parts, body) = req.into_parts();

        if parts.method == Method::POST && parts.uri.path() == "/cluster/remove" {
            let (code, body) = match self.remove_node(&parts, peer).await {
                Ok(v) => (
                    StatusCode::OK,
                    serde_json::to_vec_pretty(&v).unwrap_or_default(),
                ),
                Err(e) => (e.kind.status(), e.body()),
            };
            return respond(code, "application/json", body, &request_id);
        }
        if let Some(response) = self.page(&parts, peer, &request_id).await {
            return response;
        }

        let ((result, table), consumed) =
            metrics::collecting(self.handle_post(&parts, body, peer)).await;
        self.observe(&result, table.as_deref(), &consumed, started);
        let (status, body, op, close) = match result {
            Ok((op, value)) => {
                // Sized for a typical 1 KB item so the buffer does not grow four times.
                let mut out = Vec::with_capacity(RESPONSE_CAPACITY);
                if serde_json::to_writer(&mut out, &value).is_err() {
                    out.clear();
                }
                (StatusCode::OK, out, op, false)
            }
            Err(r) => (r.error.kind.status(), r.error.body(), r.op, r.close),
        };
        tracing::debug!(
            op = op.as_deref().unwrap_or("-"),
            status = status.as_u16(),
            micros = started.elapsed().as_micros() as u64,
            request_id = request_id.as_str(),
            "request"
        );
        let mut response = respond(status, "application/x-amz-json-1.0", body, &request_id);
        pages::cors_for_api(&parts, &mut response);
        if close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    /// [`Api::handle_post_named`], with the `TableName` the request named (for the metrics).
    async fn handle_post<B>(
        &self,
        parts: &http::request::Parts,
        body: B,
        peer: IpAddr,
    ) -> (
        Result<(Option<String>, serde_json::Value), Refused>,
        Option<String>,
    )
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut table = None;
        let result = self.handle_post_named(parts, body, peer, &mut table).await;
        (result, table)
    }

    /// Records an answered request in the metrics. The table label is only ever a table this
    /// node knows, so clients cannot make label values up.
    fn observe(
        &self,
        result: &Result<(Option<String>, serde_json::Value), Refused>,
        table: Option<&str>,
        consumed: &[crate::metrics::Consumed],
        started: Instant,
    ) {
        let (op, error) = match result {
            Ok((op, _)) => (op.as_deref(), None),
            Err(r) => (r.op.as_deref(), Some(r.error.kind.name())),
        };
        let operation = op
            .and_then(crate::ops::Operation::by_name)
            .map_or("unknown", crate::ops::Operation::name);
        let table = table.filter(|t| self.backend.knows_table(t)).unwrap_or("");
        self.metrics
            .observe(operation, table, error, started.elapsed());
        for (t, units, write) in consumed {
            if self.backend.knows_table(t) {
                self.metrics.consumed(operation, t, *units, *write);
            }
        }
    }

    async fn handle_post_named<B>(
        &self,
        parts: &http::request::Parts,
        body: B,
        peer: IpAddr,
        table: &mut Option<String>,
    ) -> Result<(Option<String>, serde_json::Value), Refused>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let declared = declared_length(&parts.headers);
        let unread = |error: ApiError| Refused {
            op: None,
            error,
            close: declared > 0,
        };
        if parts.method != Method::POST {
            return Err(unread(ApiError::new(
                ErrorKind::UnknownOperation,
                "Only POST requests are supported (GET / is the health check)",
            )));
        }
        // hyper frames a request by Transfer-Encoding and drops a Content-Length sent with it;
        // such a request may be smuggled past a proxy that read the Content-Length.
        if parts.headers.contains_key(header::TRANSFER_ENCODING) {
            return Err(Refused::closing(ApiError::serialization(
                "Transfer-Encoding is not supported: send the request body with a Content-Length \
                 header (a request with both is refused as a request-smuggling attempt)",
            )));
        }
        // Everything that needs only the head comes before the body is read.
        if declared > MAX_REQUEST_BYTES as u64 {
            return Err(Refused::closing(too_large()));
        }
        let encoding = encoding::Encoding::of(&parts.headers).map_err(unread)?;
        let prechecked = self
            .verifier
            .precheck(&parts.headers, SystemTime::now(), self.backend.keys())
            .map_err(|e| unread(auth_error(e)))?;
        let declared = usize::try_from(declared).unwrap_or(MAX_REQUEST_BYTES);
        let _body_memory = self
            .admission
            .reserve_body(declared)
            .await
            .map_err(|o| unread(o.into()))?;
        let body =
            match tokio::time::timeout(self.config.body_timeout, read_body(body, declared)).await {
                Ok(Ok(body)) => body,
                Ok(Err(e)) => return Err(Refused::closing(e)),
                Err(_) => {
                    return Err(Refused::closing(ApiError::new(
                        ErrorKind::RequestTimeout,
                        format!(
                            "The request body was not received within {} ms",
                            self.config.body_timeout.as_millis()
                        ),
                    )));
                }
            };

        let identity = self
            .verifier
            .verify_body(
                &prechecked,
                &parts.method,
                &parts.uri,
                &parts.headers,
                &body,
            )
            .map_err(|e| Refused::new(None, auth_error(e)))?;

        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some((op, operation)) = crate::ops::Operation::from_target(target) else {
            return Err(Refused::new(
                None,
                ApiError::new(ErrorKind::UnknownOperation, ""),
            ));
        };
        let op_name = Some(op.to_string());
        check_content_type(&parts.headers).map_err(|e| Refused::new(op_name.clone(), e))?;

        let _slot = self
            .admission
            .enter()
            .await
            .map_err(|o| Refused::new(op_name.clone(), o.into()))?;
        // The signature covered the body as sent; a compressed one is inflated now.
        let (body, _inflated_memory) =
            match encoding::inflate(encoding, &body, &self.admission).await {
                Ok(Some((inflated, permits))) => (inflated, permits),
                Ok(None) => (body, Vec::new()),
                Err(e) => return Err(Refused::new(op_name, e)),
            };
        let input: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            json::parse(&body).map_err(|e| Refused::new(op_name.clone(), malformed_json(&e)))?
        };
        drop(body);
        *table = input
            .get("TableName")
            .and_then(serde_json::Value::as_str)
            .filter(|t| t.len() <= 255)
            .map(str::to_owned);
        let ctx = crate::ops::Ctx {
            backend: self.backend.as_ref(),
            identity: &identity,
            peer,
            policies: &self.policies,
        };
        crate::ops::dispatch(&ctx, operation, &input)
            .await
            .map(|v| (op_name.clone(), v))
            .map_err(|e| Refused::new(op_name, e))
    }
}

/// The request's `Content-Length` (hyper has checked it is one valid number); 0 when absent.
fn declared_length(headers: &http::HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
}

/// Reads the whole body into one buffer of `declared` bytes (no copy, no growth).
///
/// # Errors
/// `RequestEntityTooLargeException` past [`MAX_REQUEST_BYTES`]; `SerializationException` when
/// the client breaks off.
async fn read_body<B>(body: B, declared: usize) -> Result<Vec<u8>, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut body = std::pin::pin!(body);
    let mut out = Vec::with_capacity(declared.min(MAX_REQUEST_BYTES));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::serialization(format!("Could not read the request body: {}", e.into()))
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > MAX_REQUEST_BYTES {
                return Err(too_large());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// A body that does not parse: `SerializationException` without a message, DynamoDB's answer
/// to a body that is not JSON (the parser's description and position go to the debug log).
/// Two exceptions: JSON nested past serde_json's 128 levels can only come from attribute values
/// nested far past DynamoDB's 32 levels (every other member is shallow), so it gets the answer a
/// parse would have led to, `Nesting Levels have exceeded supported limits`; and duplicate object
/// keys, which only Shoal refuses (see [`json`]), say so.
fn malformed_json(e: &serde_json::Error) -> ApiError {
    let text = e.to_string();
    if text.starts_with("recursion limit exceeded") {
        return ApiError::validation(shoal_types::json::NESTING_EXCEEDED);
    }
    if text.starts_with(json::DUPLICATE_KEY) {
        return ApiError::serialization(text);
    }
    tracing::debug!(cause = %e, "request body is not valid JSON");
    ApiError::serialization("")
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

impl Api {
    /// `POST /cluster/remove?node=ID` (empty body): decommissions a node. Only for requests
    /// signed with an admin key or a key whose policy allows `shoal:RemoveNode`.
    async fn remove_node(
        &self,
        parts: &http::request::Parts,
        peer: IpAddr,
    ) -> Result<serde_json::Value, ApiError> {
        self.verify_admin(
            parts,
            peer,
            shoal_policy::arn::ACTION_REMOVE_NODE,
            "remove a node",
        )?;
        let id = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix("node="))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| ApiError::validation("The query parameter node=ID is required"))?;
        self.backend
            .remove_node(id)
            .await
            .map_err(ApiError::validation)
    }
}

impl Api {
    /// Checks that a request without a body (`GET` pages, `POST /cluster/remove`) is SigV4-signed
    /// by an admin key, or by a key whose policy allows `action` (`shoal:RemoveNode`,
    /// `shoal:ReadStatus`, `shoal:ReadMetrics`) on the cluster
    /// (`arn:aws:shoal:<region>:<account>:cluster`); `what` completes "only an admin key may ..."
    /// in the refusal.
    pub(crate) fn verify_admin(
        &self,
        parts: &http::request::Parts,
        peer: IpAddr,
        action: &str,
        what: &str,
    ) -> Result<(), ApiError> {
        let identity = self
            .verifier
            .verify(
                &parts.method,
                &parts.uri,
                &parts.headers,
                b"",
                SystemTime::now(),
                self.backend.keys(),
            )
            .map_err(auth_error)?;
        let key_id = &identity.access_key_id;
        if self.backend.is_admin(key_id) {
            return Ok(());
        }
        let Some(policy) = self.backend.key_policy(key_id) else {
            return Err(ApiError::new(
                ErrorKind::AccessDenied,
                format!(
                    "The access key {key_id} is not an admin key: only an admin key, or a key whose policy allows {action}, may {what}"
                ),
            ));
        };
        let principal = shoal_policy::Principal::access_key(key_id, self.backend.account_id());
        let resource = shoal_policy::arn::cluster(self.backend.region(), self.backend.account_id());
        let mut context = shoal_policy::Context::new();
        context.set("aws:SourceIp", peer.to_string());
        let request = shoal_policy::Request {
            principal: &principal,
            action,
            resource: &resource,
            context: &context,
        };
        let verdict =
            shoal_policy::authorize(shoal_policy::Identity::Policy(&policy), None, &request);
        match verdict.message(&request) {
            None => Ok(()),
            Some(message) => Err(ApiError::new(ErrorKind::AccessDenied, message)),
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
