//! A raw HTTP/1.1 client for protocol and authentication tests.
//!
//! The AWS SDK always produces well-formed, correctly signed requests; the tests in `protocol.rs`
//! and `auth.rs` need the opposite. [`RawRequest`] builds a request byte by byte (any method, path,
//! headers and body), optionally signs it with the official `aws-sigv4` signer, and
//! [`RawConnection`] sends it over a plain TCP connection and parses the response into a
//! [`RawResponse`] (status, headers, body). One connection can carry several requests
//! (keep-alive).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `X-Amz-Target` prefix of every DynamoDB operation.
pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// How long a raw request waits for a response before the test fails.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(30);

/// How a [`RawRequest`] is signed before it is sent.
#[derive(Clone, Debug)]
pub struct Signing {
    /// Access key id.
    pub key_id: String,
    /// Secret access key.
    pub secret: String,
    /// Region in the credential scope.
    pub region: String,
    /// Service name in the credential scope (`dynamodb`).
    pub service: String,
    /// Signing time (`x-amz-date`); `SystemTime::now()` unless a test wants a skewed clock.
    pub time: SystemTime,
    /// Extra header names (lower case) left out of `SignedHeaders`.
    pub unsigned_headers: Vec<String>,
}

impl Signing {
    /// Signs with the given key for `dynamodb` in `us-east-1`, at the current time.
    pub fn new(key_id: &str, secret: &str) -> Self {
        Signing {
            key_id: key_id.to_string(),
            secret: secret.to_string(),
            region: "us-east-1".to_string(),
            service: "dynamodb".to_string(),
            time: SystemTime::now(),
            unsigned_headers: Vec::new(),
        }
    }
}

/// An HTTP/1.1 request built by hand.
#[derive(Clone, Debug)]
pub struct RawRequest {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Request target, e.g. `/`.
    pub path: String,
    /// Headers in sending order; names are sent as given.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl RawRequest {
    /// A `POST /` with `Host` and `Content-Type: application/x-amz-json-1.0`, an `X-Amz-Target`
    /// for `operation` (e.g. `"ListTables"`) and the given body. Unsigned until [`RawRequest::signed`].
    pub fn dynamodb(addr: SocketAddr, operation: &str, body: impl Into<Vec<u8>>) -> Self {
        RawRequest::post(addr, body)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", &format!("{TARGET_PREFIX}{operation}"))
    }

    /// A `POST /` with only a `Host` header and the given body.
    pub fn post(addr: SocketAddr, body: impl Into<Vec<u8>>) -> Self {
        RawRequest {
            method: "POST".to_string(),
            path: "/".to_string(),
            headers: vec![("host".to_string(), addr.to_string())],
            body: body.into(),
        }
    }

    /// A `GET path` with only a `Host` header.
    pub fn get(addr: SocketAddr, path: &str) -> Self {
        RawRequest {
            method: "GET".to_string(),
            path: path.to_string(),
            headers: vec![("host".to_string(), addr.to_string())],
            body: Vec::new(),
        }
    }

    /// Adds a header (does not replace an existing one).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Removes every header with this name (case-insensitive).
    pub fn without_header(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Replaces the body (after signing this makes the signature wrong).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Signs the request as it is now (method, path, headers, body) with AWS SigV4 in the header
    /// form, using the official `aws-sigv4` crate, and adds `x-amz-date` and `authorization`.
    ///
    /// # Panics
    /// If the signer rejects the request (a bug in the test).
    pub fn signed(mut self, signing: &Signing) -> Self {
        let identity: Identity =
            Credentials::new(&signing.key_id, &signing.secret, None, None, "shoal-tests").into();
        let mut settings = SigningSettings::default();
        let mut excluded = settings.excluded_headers.take().unwrap_or_default();
        for h in &signing.unsigned_headers {
            excluded.push(h.to_lowercase().into());
        }
        settings.excluded_headers = Some(excluded);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&signing.region)
            .name(&signing.service)
            .time(signing.time)
            .settings(settings)
            .build()
            .expect("signing params")
            .into();
        let host = self.header_value("host").unwrap_or("localhost").to_string();
        let uri = format!("http://{host}{}", self.path);
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let signable = SignableRequest::new(
            &self.method,
            uri,
            headers.into_iter(),
            SignableBody::Bytes(&self.body),
        )
        .expect("signable request");
        let (instructions, _signature) = sign(signable, &params).expect("sign").into_parts();
        let (new_headers, _params) = instructions.into_parts();
        let added: Vec<(String, String)> = new_headers
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect();
        self.headers.extend(added);
        self
    }

    /// The first value of a header (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request head (request line and headers, ending in the empty line). A
    /// `content-length` header is added from the body unless one was set explicitly.
    pub fn head_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        let has_length = self.header_value("content-length").is_some()
            || self.header_value("transfer-encoding").is_some();
        if !has_length && (self.method != "GET" || !self.body.is_empty()) {
            out.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// Head and body, ready to write.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.head_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// Sends the request on a new connection and reads the response.
    ///
    /// # Panics
    /// If the connection fails or no complete response arrives within [`RAW_TIMEOUT`].
    pub async fn send(&self, addr: SocketAddr) -> RawResponse {
        let mut conn = RawConnection::connect(addr).await;
        conn.send(self).await
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Clone, Debug)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers in the order received, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes (chunked bodies are de-chunked).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    /// If the body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {:?}", self.text()))
    }

    /// The error name after the `#` in the body's `__type` (e.g. `ResourceNotFoundException`),
    /// or `None` when the body has no `__type`.
    pub fn error_type(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        let t = v.get("__type")?.as_str()?;
        Some(t.rsplit('#').next().unwrap_or(t).to_string())
    }

    /// The error message (`message` or `Message`) of an error body.
    pub fn error_message(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v.get("message")
            .or_else(|| v.get("Message"))
            .and_then(|m| m.as_str())
            .map(str::to_string)
    }
}

/// One client TCP connection that can carry several requests (HTTP/1.1 keep-alive).
#[derive(Debug)]
pub struct RawConnection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConnection {
    /// Connects to `addr`.
    ///
    /// # Panics
    /// If the connection is refused.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        RawConnection {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes the request and reads one response.
    ///
    /// # Panics
    /// On I/O errors or when no complete response arrives within [`RAW_TIMEOUT`].
    pub async fn send(&mut self, req: &RawRequest) -> RawResponse {
        self.write(&req.to_bytes()).await;
        self.read_response().await
    }

    /// Writes bytes as they are.
    ///
    /// # Panics
    /// On I/O errors.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .await
            .unwrap_or_else(|e| panic!("write request: {e}"));
    }

    /// Writes bytes, returning the I/O error instead of panicking (the server may close the
    /// connection early, e.g. after refusing an oversized body).
    pub async fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads one response, waiting at most [`RAW_TIMEOUT`].
    ///
    /// # Panics
    /// On I/O errors, malformed responses, or timeout.
    pub async fn read_response(&mut self) -> RawResponse {
        self.read_response_within(RAW_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("reading response: {e}"))
    }

    /// Reads one response, waiting at most `timeout`; errors are returned as text.
    pub async fn read_response_within(&mut self, timeout: Duration) -> Result<RawResponse, String> {
        match tokio::time::timeout(timeout, self.read_response_inner()).await {
            Ok(r) => r,
            Err(_) => Err(format!("no response within {timeout:?}")),
        }
    }

    /// True when the server has sent anything (a response or EOF) within `timeout`: a connection
    /// the server accepted and is still waiting on stays silent.
    pub async fn answered_within(&mut self, timeout: Duration) -> bool {
        let mut tmp = [0u8; 1];
        tokio::time::timeout(timeout, self.stream.peek(&mut tmp))
            .await
            .is_ok()
    }

    /// True when the server has closed the connection (reads EOF within `timeout`).
    pub async fn is_closed_within(&mut self, timeout: Duration) -> bool {
        let mut tmp = [0u8; 1];
        matches!(
            tokio::time::timeout(timeout, self.stream.read(&mut tmp)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    async fn fill(&mut self) -> Result<(), String> {
        let mut tmp = vec![0u8; 64 * 1024];
        let n = self
            .stream
            .read(&mut tmp)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "connection closed (have {} bytes: {:?})",
                self.buf.len(),
                String::from_utf8_lossy(&self.buf)
            ));
        }
        self.buf.extend_from_slice(tmp.get(..n).unwrap_or_default());
        Ok(())
    }

    async fn read_response_inner(&mut self) -> Result<RawResponse, String> {
        let head_end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos;
            }
            self.fill().await?;
        };
        let head =
            String::from_utf8_lossy(self.buf.get(..head_end).unwrap_or_default()).into_owned();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        for line in lines {
            if let Some((n, v)) = line.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let body = if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            self.read_chunked().await?
        } else if let Some(len) = get("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| format!("bad content-length {len}"))?;
            while self.buf.len() < len {
                self.fill().await?;
            }
            self.buf.drain(..len).collect()
        } else if status == 204 || status == 304 || (100..200).contains(&status) {
            Vec::new()
        } else {
            // Body delimited by connection close.
            while self.fill().await.is_ok() {}
            std::mem::take(&mut self.buf)
        };
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    async fn read_chunked(&mut self) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(pos) = find(&self.buf, b"\r\n") {
                    break pos;
                }
                self.fill().await?;
            };
            let line =
                String::from_utf8_lossy(self.buf.get(..line_end).unwrap_or_default()).into_owned();
            self.buf.drain(..line_end + 2);
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    let end = loop {
                        if let Some(pos) = find(&self.buf, b"\r\n") {
                            break pos;
                        }
                        self.fill().await?;
                    };
                    self.buf.drain(..end + 2);
                    if end == 0 {
                        return Ok(body);
                    }
                }
            }
            while self.buf.len() < size + 2 {
                self.fill().await?;
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// CRC32 (IEEE) of `bytes`, as DynamoDB puts in `x-amz-crc32`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}
