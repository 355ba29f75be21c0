//! One keep-alive HTTP/1.1 connection to a DynamoDB endpoint that signs and sends JSON requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

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

/// A signed, keep-alive connection. Not shared: one per worker.
pub struct Conn {
    endpoint: Arc<Endpoint>,
    signer: Signer,
    host_value: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// Opens a connection.
    ///
    /// # Errors
    /// When the TCP connection or the HTTP handshake fails.
    pub async fn connect(endpoint: Arc<Endpoint>) -> anyhow::Result<Self> {
        let signer = Signer::new(
            &endpoint.access_key_id,
            &endpoint.secret,
            &endpoint.region,
            &endpoint.host,
        );
        let host_value = HeaderValue::from_str(&endpoint.host)
            .with_context(|| format!("invalid host {:?}", endpoint.host))?;
        let mut conn = Conn {
            endpoint,
            signer,
            host_value,
            sender: None,
        };
        conn.reconnect().await.map_err(anyhow::Error::new)?;
        Ok(conn)
    }

    async fn reconnect(&mut self) -> Result<(), CallError> {
        self.sender = None;
        let transport = |e: &dyn std::fmt::Display| CallError::Transport(e.to_string());
        let tcp = tokio::net::TcpStream::connect(self.endpoint.addr)
            .await
            .map_err(|e| transport(&e))?;
        tcp.set_nodelay(true).map_err(|e| transport(&e))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| transport(&e))?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the peer closes; errors surface on the sender.
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends one request (`target` is the operation name, e.g. `GetItem`) and returns the
    /// response body of a 200 answer.
    ///
    /// # Errors
    /// [`CallError::Service`] for an error answer, [`CallError::Transport`] when the connection
    /// fails (the next call reconnects).
    pub async fn call(&mut self, target: Target, body: &[u8]) -> Result<Bytes, CallError> {
        let ready = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !ready {
            self.reconnect().await?;
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err(CallError::Transport("not connected".into()));
        };

        let signed = self.signer.sign(SystemTime::now(), target.header(), body);
        let header = |v: &str| {
            HeaderValue::from_str(v).map_err(|e| CallError::Transport(format!("bad header: {e}")))
        };
        let request = http::Request::builder()
            .method(http::Method::POST)
            .uri("/")
            .header(HOST, self.host_value.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static(sigv4::CONTENT_TYPE))
            .header("x-amz-target", HeaderValue::from_static(target.header()))
            .header("x-amz-date", header(&signed.amz_date)?)
            .header(AUTHORIZATION, header(&signed.authorization)?)
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| CallError::Transport(format!("cannot build request: {e}")))?;

        let response = match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(CallError::Transport(e.to_string()));
            }
        };
        let status = response.status();
        let body = match response.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                self.sender = None;
                return Err(CallError::Transport(e.to_string()));
            }
        };
        if status == http::StatusCode::OK {
            Ok(body)
        } else {
            Err(service_error(status, &body))
        }
    }
}

/// Decodes a DynamoDB error answer.
fn service_error(status: http::StatusCode, body: &[u8]) -> CallError {
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
        None => format!("HTTP {}", status.as_u16()),
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
            http::StatusCode::BAD_REQUEST,
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}"#,
        );
        assert_eq!(e.kind(), "ResourceNotFoundException");
        let e = service_error(http::StatusCode::BAD_GATEWAY, b"<html>");
        assert_eq!(e.kind(), "HTTP 502");
    }
}
