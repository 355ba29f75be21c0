//! One keep-alive HTTP/1.1 connection to a DynamoDB endpoint that signs and sends JSON requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use std::io::Write as _;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::sigv4::{self, Signer};

/// Where requests go and how they are signed.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The `host` header value (`host:port` as written in the URL).
    pub host: String,
    /// The resolved address to connect to.
    pub addr: SocketAddr,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret: String,
    /// Region of the credential scope.
    pub region: String,
}

impl Endpoint {
    /// Parses an `http://host:port` URL (port 80 if omitted) and resolves the host.
    ///
    /// # Errors
    /// For a URL that is not plain HTTP or a host that does not resolve.
    pub async fn resolve(
        url: &str,
        access_key_id: &str,
        secret: &str,
        region: &str,
    ) -> anyhow::Result<Self> {
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("invalid endpoint URL {url:?}"))?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http"),
            "endpoint {url:?}: only http:// endpoints are supported"
        );
        let authority = uri
            .authority()
            .with_context(|| format!("endpoint {url:?} has no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((authority.host(), port))
            .await
            .with_context(|| format!("cannot resolve {}", authority.host()))?
            .next()
            .with_context(|| format!("{} resolves to no address", authority.host()))?;
        Ok(Endpoint {
            host: authority.as_str().to_string(),
            addr,
            access_key_id: access_key_id.to_string(),
            secret: secret.to_string(),
            region: region.to_string(),
        })
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The service answered with an error (`__type` after `#`, or `HTTP <status>` if absent).
    Service {
        /// The error type, e.g. `ResourceNotFoundException`.
        kind: String,
        /// The error message (may be empty).
        message: String,
    },
    /// The connection failed; the next call reconnects.
    Transport(String),
}

impl CallError {
    /// The name errors are counted under.
    pub fn kind(&self) -> &str {
        match self {
            CallError::Service { kind, .. } => kind,
            CallError::Transport(_) => "ConnectionError",
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Service { kind, message } => write!(f, "{kind}: {message}"),
            CallError::Transport(m) => write!(f, "connection error: {m}"),
        }
    }
}

impl std::error::Error for CallError {}

/// A signed, keep-alive HTTP/1.1 connection. Not shared: one per worker.
///
/// A minimal client on purpose: the request is written into a reused buffer and sent with one
/// write, the response head is parsed with `httparse`, the body is framed by `content-length`
/// or chunked encoding (or read to EOF). No background task, no per-request header map.
pub struct Conn {
    endpoint: Arc<Endpoint>,
    signer: Signer,
    stream: Option<TcpStream>,
    out: Vec<u8>,
    input: Vec<u8>,
    body: Vec<u8>,
}

/// Responses larger than this are refused (DynamoDB answers are at most a few MB).
const MAX_RESPONSE: usize = 64 << 20;

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    /// Bytes of the head, including the empty line.
    len: usize,
    status: u16,
    framing: Framing,
    close: bool,
}

/// An exchange failure; `started` when response bytes had arrived (then it is not retried).
struct Failed {
    started: bool,
    message: String,
}

fn failed(started: bool, e: impl std::fmt::Display) -> Failed {
    Failed {
        started,
        message: e.to_string(),
    }
}

impl Conn {
    /// Opens a connection.
    ///
    /// # Errors
    /// When the TCP connection fails.
    pub async fn connect(endpoint: Arc<Endpoint>) -> anyhow::Result<Self> {
        let signer = Signer::new(
            &endpoint.access_key_id,
            &endpoint.secret,
            &endpoint.region,
            &endpoint.host,
        );
        anyhow::ensure!(
            !endpoint.host.bytes().any(|b| b.is_ascii_control()),
            "invalid host {:?}",
            endpoint.host
        );
        let mut conn = Conn {
            endpoint,
            signer,
            stream: None,
            out: Vec::with_capacity(4096),
            input: Vec::with_capacity(16 * 1024),
            body: Vec::with_capacity(16 * 1024),
        };
        conn.stream = Some(conn.open().await.map_err(|f| anyhow::anyhow!(f.message))?);
        Ok(conn)
    }

    async fn open(&self) -> Result<TcpStream, Failed> {
        let tcp = TcpStream::connect(self.endpoint.addr)
            .await
            .map_err(|e| failed(false, e))?;
        tcp.set_nodelay(true).map_err(|e| failed(false, e))?;
        Ok(tcp)
    }

    /// Sends one request (`target` is the operation) and returns the body of a 200 answer.
    ///
    /// A request on a reused connection that fails before any response byte arrives (the
    /// server closed an idle connection) is sent once more on a new connection.
    ///
    /// # Errors
    /// [`CallError::Service`] for an error answer, [`CallError::Transport`] when the connection
    /// fails (the next call reconnects).
    pub async fn call(&mut self, target: Target, body: &[u8]) -> Result<&[u8], CallError> {
        self.write_request(target, body);
        let reused = self.stream.is_some();
        let head = match self.exchange().await {
            Ok(h) => h,
            Err(f) if reused && !f.started => {
                self.stream = None;
                self.exchange().await.map_err(|f| {
                    self.stream = None;
                    CallError::Transport(f.message)
                })?
            }
            Err(f) => {
                self.stream = None;
                return Err(CallError::Transport(f.message));
            }
        };
        if head.close {
            self.stream = None;
        }
        if head.status == 200 {
            Ok(&self.body)
        } else {
            Err(service_error(head.status, &self.body))
        }
    }

    fn write_request(&mut self, target: Target, body: &[u8]) {
        let signed = self.signer.sign(SystemTime::now(), target.header(), body);
        self.out.clear();
        // Infallible: writing to a Vec.
        let _ = write!(
            self.out,
            "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: {}\r\nx-amz-target: {}\r\nx-amz-date: {}\r\nauthorization: {}\r\ncontent-length: {}\r\n\r\n",
            self.signer.host(),
            sigv4::CONTENT_TYPE,
            target.header(),
            signed.amz_date,
            signed.authorization,
            body.len()
        );
        self.out.extend_from_slice(body);
    }

    /// Writes `self.out` and reads one response into `self.body`.
    async fn exchange(&mut self) -> Result<Head, Failed> {
        if self.stream.is_none() {
            self.stream = Some(self.open().await?);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(failed(false, "not connected"));
        };
        stream
            .write_all(&self.out)
            .await
            .map_err(|e| failed(false, e))?;
        self.input.clear();
        self.body.clear();
        let head = loop {
            if let Some(head) = parse_head(&self.input).map_err(|e| failed(true, e))? {
                break head;
            }
            read_more(stream, &mut self.input).await?;
        };
        let mut pos = head.len;
        match head.framing {
            Framing::Length(n) => {
                let end = pos.checked_add(n).filter(|e| *e <= MAX_RESPONSE);
                let end = end.ok_or_else(|| failed(true, "response too large"))?;
                while self.input.len() < end {
                    read_more(stream, &mut self.input).await?;
                }
                self.body
                    .extend_from_slice(self.input.get(pos..end).unwrap_or_default());
            }
            Framing::Chunked => loop {
                let mut progressed = true;
                while progressed {
                    match decode_chunk(self.input.get(pos..).unwrap_or_default(), &mut self.body)
                        .map_err(|e| failed(true, e))?
                    {
                        Chunk::Data(used) => pos += used,
                        Chunk::End(used) => {
                            debug_assert!(pos + used <= self.input.len());
                            return Ok(head);
                        }
                        Chunk::Incomplete => progressed = false,
                    }
                }
                read_more(stream, &mut self.input).await?;
            },
            Framing::UntilClose => {
                while read_more(stream, &mut self.input).await.is_ok() {}
                self.body
                    .extend_from_slice(self.input.get(pos..).unwrap_or_default());
                return Ok(Head {
                    close: true,
                    ..head
                });
            }
        }
        Ok(head)
    }
}

/// Reads more bytes into `input`; EOF is an error (a response was expected).
async fn read_more(stream: &mut TcpStream, input: &mut Vec<u8>) -> Result<(), Failed> {
    if input.len() >= MAX_RESPONSE {
        return Err(failed(true, "response too large"));
    }
    input.reserve(16 * 1024);
    let started = !input.is_empty();
    match stream.read_buf(input).await {
        Ok(0) => Err(failed(started, "connection closed by the server")),
        Ok(_) => Ok(()),
        Err(e) => Err(failed(started, e)),
    }
}

/// Parses a response head; `None` if incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("invalid HTTP response: {e}")),
    };
    let status = response.code.unwrap_or(0);
    let mut framing = Framing::UntilClose;
    let mut close = response.version == Some(0);
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or("invalid content-length")?;
            if framing != Framing::Chunked {
                framing = Framing::Length(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if h.value.eq_ignore_ascii_case(b"chunked") || h.value.ends_with(b"chunked") {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    if status == 204 || status == 304 || (100..200).contains(&status) {
        framing = Framing::Length(0);
    }
    Ok(Some(Head {
        len,
        status,
        framing,
        close,
    }))
}

enum Chunk {
    /// A data chunk was appended; this many bytes were used.
    Data(usize),
    /// The last chunk and trailers; this many bytes were used.
    End(usize),
    Incomplete,
}

/// Decodes one chunk of a chunked body from `buf` into `out`.
fn decode_chunk(buf: &[u8], out: &mut Vec<u8>) -> Result<Chunk, String> {
    let (start, size) = match httparse::parse_chunk_size(buf) {
        Ok(httparse::Status::Complete(v)) => v,
        Ok(httparse::Status::Partial) => return Ok(Chunk::Incomplete),
        Err(_) => return Err("invalid chunk size".into()),
    };
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s <= MAX_RESPONSE)
        .ok_or("chunk too large")?;
    if size == 0 {
        // Trailers end with an empty line; without trailers the next bytes are just CRLF.
        let rest = buf.get(start..).unwrap_or_default();
        if rest.starts_with(b"\r\n") {
            return Ok(Chunk::End(start + 2));
        }
        return match rest.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(p) => Ok(Chunk::End(start + p + 4)),
            None => Ok(Chunk::Incomplete),
        };
    }
    let end = start + size;
    match buf.get(start..end + 2) {
        Some(data) => {
            out.extend_from_slice(data.get(..size).unwrap_or_default());
            Ok(Chunk::Data(end + 2))
        }
        None => Ok(Chunk::Incomplete),
    }
}

/// Decodes a DynamoDB error answer.
fn service_error(status: u16, body: &[u8]) -> CallError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(rename = "__type")]
        kind: Option<String>,
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (kind, message) = match parsed {
        Some(e) => (e.kind, e.message),
        None => (None, None),
    };
    let kind = match kind {
        Some(k) => k.rsplit('#').next().unwrap_or_default().to_string(),
        None => format!("HTTP {status}"),
    };
    CallError::Service {
        kind,
        message: message.unwrap_or_default(),
    }
}

/// The DynamoDB operations the bench sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    PutItem,
    GetItem,
    UpdateItem,
    Query,
    Scan,
    BatchWriteItem,
    BatchGetItem,
    TransactWriteItems,
    TransactGetItems,
    CreateTable,
    DescribeTable,
    DeleteTable,
}

impl Target {
    /// The `x-amz-target` header value.
    pub fn header(self) -> &'static str {
        match self {
            Target::PutItem => "DynamoDB_20120810.PutItem",
            Target::GetItem => "DynamoDB_20120810.GetItem",
            Target::UpdateItem => "DynamoDB_20120810.UpdateItem",
            Target::Query => "DynamoDB_20120810.Query",
            Target::Scan => "DynamoDB_20120810.Scan",
            Target::BatchWriteItem => "DynamoDB_20120810.BatchWriteItem",
            Target::BatchGetItem => "DynamoDB_20120810.BatchGetItem",
            Target::TransactWriteItems => "DynamoDB_20120810.TransactWriteItems",
            Target::TransactGetItems => "DynamoDB_20120810.TransactGetItems",
            Target::CreateTable => "DynamoDB_20120810.CreateTable",
            Target::DescribeTable => "DynamoDB_20120810.DescribeTable",
            Target::DeleteTable => "DynamoDB_20120810.DeleteTable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_are_counted_by_their_short_type() {
        let e = service_error(
            400,
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}"#,
        );
        assert_eq!(e.kind(), "ResourceNotFoundException");
        let e = service_error(502, b"<html>");
        assert_eq!(e.kind(), "HTTP 502");
    }
}

#[cfg(test)]
mod framing_tests {
    use super::*;

    #[test]
    fn content_length_and_connection_close_are_read_from_the_head() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{}")
            .unwrap()
            .unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Length(12));
        assert!(h.close);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None);
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_bodies_are_decoded_across_partial_reads() {
        let wire = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        // Feed the decoder every prefix: it must never consume a partial chunk.
        for cut in 0..wire.len() {
            let mut out = Vec::new();
            let mut pos = 0;
            let mut ended = false;
            for buf in [&wire[..cut], &wire[..]] {
                loop {
                    match decode_chunk(&buf[pos..], &mut out).unwrap() {
                        Chunk::Data(n) => pos += n,
                        Chunk::End(n) => {
                            pos += n;
                            ended = true;
                            break;
                        }
                        Chunk::Incomplete => break,
                    }
                }
            }
            assert!(ended);
            assert_eq!(pos, wire.len());
            assert_eq!(out, b"hello world");
        }
    }
}
