//! [`ServerConfig`]: the HTTP server's limits and timeouts.
//!
//! Every bound a client can push against is here, so one request (or many) costs a bounded amount:
//! connections, time to send a request head, idle time between requests, time to send a body,
//! bytes of request bodies held in memory, and requests waiting for a worker. Defaults suit a
//! production node; tests shrink them to run in seconds.

use std::time::Duration;

use serde::Deserialize;

/// Largest request body accepted (DynamoDB: 16 MB).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// Limits and timeouts of the DynamoDB API server. `shoal start` sets each with a flag, an
/// environment variable and a config-file key named after the serde name below
/// (`max_connections`: `--max-connections`, `SHOAL_MAX_CONNECTIONS`).
///
/// Durations are whole milliseconds (`header_timeout_ms = 10000`); missing keys take the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Most client connections open at once. Past it a new connection gets an HTTP 503
    /// `ThrottlingException` (retryable) and is closed. The server also keeps a quarter of the
    /// process's file-descriptor limit (at least 64) for its own files, so the effective limit is
    /// the smaller of this and what the descriptor limit leaves. Default 4096.
    pub max_connections: usize,
    /// How long a client may take to send a complete request head (request line and headers),
    /// from its first byte; also how long a new connection may stay silent. The connection is then
    /// closed. Default 10 s.
    #[serde(rename = "header_timeout_ms", with = "millis")]
    pub header_timeout: Duration,
    /// How long a keep-alive connection may stay idle between requests (or not read a response)
    /// before the server closes it. Default 60 s.
    #[serde(rename = "idle_timeout_ms", with = "millis")]
    pub idle_timeout: Duration,
    /// How long a client may take to send a request body, from the end of its head. Past it the
    /// request is answered HTTP 408 `RequestTimeoutException` and the connection closed.
    /// Default 30 s.
    #[serde(rename = "body_timeout_ms", with = "millis")]
    pub body_timeout: Duration,
    /// Largest request head (request line plus headers) in bytes; a larger head, or one with
    /// more than 100 headers, gets HTTP 400 `ValidationException` and the connection is closed.
    /// At least 8192. Default 32 KiB.
    pub max_header_bytes: usize,
    /// Total bytes of request bodies held in memory at once, across all connections: a request
    /// reserves its `Content-Length` before its body is read and keeps it until it is answered.
    /// A request that cannot reserve waits in the queue, then gets `ThrottlingException`.
    /// At least 16 MiB (one largest request). Default 256 MiB.
    pub max_body_bytes_in_flight: usize,
    /// Requests processed at once (after their body is read and their signature checked);
    /// others wait in the queue. Default 1024.
    pub max_concurrent_requests: usize,
    /// Requests that may wait for body memory or for a processing slot; past it a request is
    /// answered `ThrottlingException` at once. Default 4096.
    pub max_queued_requests: usize,
    /// How long a request may wait in the queue before it is answered `ThrottlingException`.
    /// Default 2 s.
    #[serde(rename = "queue_timeout_ms", with = "millis")]
    pub queue_timeout: Duration,
    /// File descriptors kept free for the node's own files (tables, logs); `None`: a quarter of
    /// the process's limit, at least 64. Only tests set it (to exercise descriptor exhaustion).
    pub reserved_fds: Option<usize>,
    /// The bearer token `GET /metrics` accepts besides an admin key's signature
    /// (`--metrics-token`, `SHOAL_METRICS_TOKEN`); `None`: none.
    #[serde(skip)]
    pub metrics_token: Option<super::pages::MetricsToken>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_header_bytes: 32 * 1024,
            max_body_bytes_in_flight: 256 * 1024 * 1024,
            max_concurrent_requests: 1024,
            max_queued_requests: 4096,
            queue_timeout: Duration::from_secs(2),
            reserved_fds: None,
            metrics_token: None,
        }
    }
}

/// A [`ServerConfig`] value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    /// The config-file key of the setting.
    pub setting: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ServerConfig {
    /// Checks the ranges documented on each field.
    ///
    /// # Errors
    /// The first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |setting, message: &str| {
            Err(ConfigError {
                setting,
                message: message.to_owned(),
            })
        };
        if self.max_connections == 0 {
            return err("max_connections", "must be at least 1");
        }
        for (setting, d) in [
            ("header_timeout_ms", self.header_timeout),
            ("idle_timeout_ms", self.idle_timeout),
            ("body_timeout_ms", self.body_timeout),
        ] {
            if d.is_zero() {
                return err(setting, "must be at least 1 ms");
            }
        }
        if self.max_header_bytes < 8192 {
            return err("max_header_bytes", "must be at least 8192");
        }
        if self.max_body_bytes_in_flight < MAX_REQUEST_BYTES {
            return err(
                "max_body_bytes_in_flight",
                "must be at least 16777216 (one largest request)",
            );
        }
        if self.max_concurrent_requests == 0 {
            return err("max_concurrent_requests", "must be at least 1");
        }
        Ok(())
    }
}

/// `Duration` as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ServerConfig::default().validate(), Ok(()));
    }

    #[test]
    fn out_of_range_settings_are_named() {
        let c = ServerConfig {
            max_header_bytes: 100,
            ..ServerConfig::default()
        };
        assert_eq!(c.validate().map_err(|e| e.setting), Err("max_header_bytes"));
        let c = ServerConfig {
            idle_timeout: Duration::ZERO,
            ..ServerConfig::default()
        };
        assert_eq!(c.validate().map_err(|e| e.setting), Err("idle_timeout_ms"));
    }
}
