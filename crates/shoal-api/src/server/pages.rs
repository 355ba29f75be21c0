//! The node's `GET` pages beside the DynamoDB API: `/status`, `/metrics`, the web console under
//! `/console`, and who may read them.
//!
//! `/status` and `/metrics` list the cluster's nodes, tables and traffic, so they answer an
//! anonymous request only from a loopback address. From anywhere else the request must be
//! SigV4-signed by an admin key (as `shoal status` signs it); `/metrics` also accepts
//! `Authorization: Bearer <token>` with the token set by `--metrics-token`
//! (`SHOAL_METRICS_TOKEN`), for Prometheus. Both answer CORS preflights, so the console can
//! read another node's metrics with the credentials its user logged in with.
//!
//! The console is a handful of static files embedded in the binary (`crates/shoal-api/console/`,
//! listed by the build script); it signs its API calls itself, in the browser.

use std::net::IpAddr;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;
use subtle::ConstantTimeEq;

use super::Api;
use super::response::{RequestId, respond};
use crate::error::{ApiError, ErrorKind};

mod console_files {
    include!(concat!(env!("OUT_DIR"), "/console_files.rs"));
}

/// What a `GET /metrics` may authenticate with besides SigV4: the bearer token Prometheus
/// sends. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsToken(String);

impl MetricsToken {
    /// A token; `None` when `token` is empty (no token accepted).
    pub fn new(token: impl Into<String>) -> Option<MetricsToken> {
        let token = token.into();
        (!token.is_empty()).then_some(MetricsToken(token))
    }

    fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

/// Whether `ip` is a loopback address (IPv4 `127.0.0.0/8`, `::1`, or an IPv4-mapped loopback).
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The headers every answer of a page readable across origins carries.
fn allow_any_origin(response: &mut Response<Full<Bytes>>) {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

impl Api {
    /// Serves the `GET`/`OPTIONS` pages; `None` when `parts` is not one of them (the request
    /// then goes to the DynamoDB API).
    pub(crate) async fn page(
        &self,
        parts: &http::request::Parts,
        peer: IpAddr,
        request_id: &RequestId,
    ) -> Option<Response<Full<Bytes>>> {
        let path = parts.uri.path();
        let readable_across_origins = matches!(path, "/status" | "/metrics");
        if parts.method == Method::OPTIONS && readable_across_origins {
            return Some(preflight(parts, "GET, OPTIONS", request_id));
        }
        // Browser apps using an AWS SDK call the API across origins, as they call DynamoDB.
        if parts.method == Method::OPTIONS && path == "/" {
            return Some(preflight(parts, "POST, GET, OPTIONS", request_id));
        }
        if parts.method != Method::GET {
            return None;
        }
        let mut response = match path {
            "/status" => self.status_page(parts, peer, request_id).await,
            "/metrics" => self.metrics_page(parts, peer, request_id).await,
            "/console/config.json" => respond(
                StatusCode::OK,
                "application/json",
                serde_json::to_vec(&serde_json::json!({
                    "region": self.backend.region(),
                    "node": self.backend.node_id(),
                }))
                .unwrap_or_default(),
                request_id,
            ),
            p if p == "/console" || p.starts_with("/console/") => console(p, request_id),
            "/health" | "/" => {
                let (code, body) = match self.backend.health() {
                    Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("unhealthy: {why}")),
                    Ok(()) if path == "/health" => (StatusCode::OK, "ok".to_string()),
                    Ok(()) => (StatusCode::OK, "healthy".to_string()),
                };
                respond(code, "text/plain", body.into_bytes(), request_id)
            }
            _ => return None,
        };
        if readable_across_origins {
            allow_any_origin(&mut response);
        }
        Some(response)
    }

    /// Whether the request may read `/status` or `/metrics`: anonymous from loopback, else signed
    /// by an admin key (or, when `token_ok`, carrying the metrics bearer token).
    fn may_read_cluster_pages(
        &self,
        parts: &http::request::Parts,
        peer: IpAddr,
        token_ok: bool,
    ) -> Result<(), ApiError> {
        let Some(auth) = parts.headers.get(header::AUTHORIZATION) else {
            if is_loopback(peer) {
                return Ok(());
            }
            return Err(ApiError::new(
                ErrorKind::MissingAuthenticationToken,
                format!(
                    "{} answers anonymous requests only from loopback addresses: sign the request with an admin key{}",
                    parts.uri.path(),
                    if token_ok {
                        " or send the metrics bearer token (--metrics-token)"
                    } else {
                        ""
                    }
                ),
            ));
        };
        if let Some(presented) = auth.to_str().ok().and_then(|a| a.strip_prefix("Bearer ")) {
            return match &self.config.metrics_token {
                Some(token) if token_ok && token.matches(presented.trim()) => Ok(()),
                _ => Err(ApiError::new(
                    ErrorKind::AccessDenied,
                    "The bearer token is not this node's metrics token",
                )),
            };
        }
        let action = if parts.uri.path() == "/metrics" {
            shoal_policy::arn::ACTION_READ_METRICS
        } else {
            shoal_policy::arn::ACTION_READ_STATUS
        };
        self.verify_admin(parts, peer, action, &format!("read {}", parts.uri.path()))
    }

    async fn status_page(
        &self,
        parts: &http::request::Parts,
        peer: IpAddr,
        request_id: &RequestId,
    ) -> Response<Full<Bytes>> {
        if let Err(e) = self.may_read_cluster_pages(parts, peer, false) {
            return refused(&e, request_id);
        }
        let (code, body) = match self.backend.status().await {
            Some(v) => (
                StatusCode::OK,
                serde_json::to_vec_pretty(&v).unwrap_or_default(),
            ),
            None => (StatusCode::NOT_FOUND, b"{}".to_vec()),
        };
        respond(code, "application/json", body, request_id)
    }

    async fn metrics_page(
        &self,
        parts: &http::request::Parts,
        peer: IpAddr,
        request_id: &RequestId,
    ) -> Response<Full<Bytes>> {
        if let Err(e) = self.may_read_cluster_pages(parts, peer, true) {
            return refused(&e, request_id);
        }
        let node = self.backend.metrics().await;
        respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            self.metrics.render(&node).into_bytes(),
            request_id,
        )
    }
}

/// A refusal of a cluster page: 401 without credentials, 403 with credentials that may not read
/// it; the body is DynamoDB's error JSON.
fn refused(e: &ApiError, request_id: &RequestId) -> Response<Full<Bytes>> {
    let code = match e.kind {
        ErrorKind::MissingAuthenticationToken => StatusCode::UNAUTHORIZED,
        _ => StatusCode::FORBIDDEN,
    };
    respond(code, "application/x-amz-json-1.0", e.body(), request_id)
}

/// The headers a preflight allows when it names none.
const DEFAULT_ALLOWED_HEADERS: &str = "authorization, content-type, x-amz-date, x-amz-target, \
    x-amz-content-sha256, x-amz-security-token, x-amz-user-agent, amz-sdk-invocation-id, \
    amz-sdk-request, content-encoding";

/// The response headers a browser script may read (the SDKs check the request id and CRC).
const EXPOSED_HEADERS: &str = "x-amzn-requestid, x-amzn-errortype, x-amz-crc32, date";

/// The answer to a CORS preflight of the API (`/`) or of `/status` and `/metrics`: any origin,
/// the `methods` given, and the request headers the browser asks for (credentials travel in the
/// signature, never in cookies, so no origin needs to be singled out).
fn preflight(
    parts: &http::request::Parts,
    methods: &'static str,
    request_id: &RequestId,
) -> Response<Full<Bytes>> {
    let mut response = respond(StatusCode::OK, "text/plain", Vec::new(), request_id);
    allow_any_origin(&mut response);
    let asked = parts
        .headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .filter(|v| !v.is_empty())
        .cloned();
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        asked.unwrap_or(HeaderValue::from_static(DEFAULT_ALLOWED_HEADERS)),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

/// Adds the CORS headers of an API answer to a request that came with an `Origin`.
pub(super) fn cors_for_api(parts: &http::request::Parts, response: &mut Response<Full<Bytes>>) {
    if parts.headers.contains_key(header::ORIGIN) {
        allow_any_origin(response);
        response.headers_mut().insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
}

/// One file of the console (`/console` and `/console/` are `index.html`).
fn console(path: &str, request_id: &RequestId) -> Response<Full<Bytes>> {
    let name = path.trim_start_matches("/console").trim_start_matches('/');
    let name = if name.is_empty() { "index.html" } else { name };
    let Some((_, body)) = console_files::FILES.iter().find(|(n, _)| *n == name) else {
        return respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            b"not found".to_vec(),
            request_id,
        );
    };
    let content_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    let mut response = respond(StatusCode::OK, content_type, body.to_vec(), request_id);
    let h = response.headers_mut();
    // Nothing is loaded from elsewhere; API calls may go to other nodes (their /metrics).
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; connect-src *; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses() {
        for ip in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "10.0.0.1",
            "192.168.1.2",
            "::ffff:10.0.0.1",
            "fe80::1",
            "0.0.0.0",
        ] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn metrics_token_compares_and_hides() {
        assert!(MetricsToken::new("").is_none());
        let t = MetricsToken::new("s3cret").unwrap();
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
