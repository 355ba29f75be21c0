//! The API server's limits and timeouts: `--max-connections`, `--header-timeout-ms`, ... (each
//! also an environment variable and a config-file key), composed into a
//! [`shoal_api::server::ServerConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Deserialize;
use shoal_api::server::{MetricsToken, ServerConfig};

use super::FileConfig;

/// Flags of `shoal start` that bound what clients can cost (see docs/SECURITY.md, "Limits and
/// timeouts").
#[derive(Args, Debug, Default, Clone)]
pub struct ApiArgs {
    /// Most client connections open at once; past it a connection is answered 503
    /// (ThrottlingException) and closed. Lowered so a quarter of the file-descriptor limit stays
    /// free [default: 4096; config: max_connections]
    #[arg(long, env = "SHOAL_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Time a client has to send a request head, from its first byte (and a new connection to
    /// send anything) [default: 10000; config: header_timeout_ms]
    #[arg(long, env = "SHOAL_HEADER_TIMEOUT_MS")]
    pub header_timeout_ms: Option<u64>,
    /// Time a keep-alive connection may stay idle before it is closed
    /// [default: 60000; config: idle_timeout_ms]
    #[arg(long, env = "SHOAL_IDLE_TIMEOUT_MS")]
    pub idle_timeout_ms: Option<u64>,
    /// Time a client has to send a request body; then 408 and close
    /// [default: 30000; config: body_timeout_ms]
    #[arg(long, env = "SHOAL_BODY_TIMEOUT_MS")]
    pub body_timeout_ms: Option<u64>,
    /// Largest request head (request line and headers) in bytes, at least 8192
    /// [default: 32768; config: max_header_bytes]
    #[arg(long, env = "SHOAL_MAX_HEADER_BYTES")]
    pub max_header_bytes: Option<usize>,
    /// Bytes of request bodies held in memory at once across all connections, at least 16 MiB
    /// [default: 268435456; config: max_body_bytes_in_flight]
    #[arg(long, env = "SHOAL_MAX_BODY_BYTES_IN_FLIGHT")]
    pub max_body_bytes_in_flight: Option<usize>,
    /// Requests processed at once [default: 1024; config: max_concurrent_requests]
    #[arg(long, env = "SHOAL_MAX_CONCURRENT_REQUESTS")]
    pub max_concurrent_requests: Option<usize>,
    /// Requests that may wait for body memory or a processing slot; past it
    /// ThrottlingException [default: 4096; config: max_queued_requests]
    #[arg(long, env = "SHOAL_MAX_QUEUED_REQUESTS")]
    pub max_queued_requests: Option<usize>,
    /// Longest wait in that queue before ThrottlingException
    /// [default: 2000; config: queue_timeout_ms]
    #[arg(long, env = "SHOAL_QUEUE_TIMEOUT_MS")]
    pub queue_timeout_ms: Option<u64>,
    /// Bearer token `GET /metrics` accepts (for Prometheus) besides a request signed by an admin
    /// key; anonymous requests are answered only from loopback addresses. Prefer the
    /// environment variable or the config file: a flag is visible in `ps` [config: metrics_token]
    #[arg(long, env = "SHOAL_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Serve the API over HTTPS too, with this PEM certificate chain (leaf first; needs
    /// --tls-key). Reloaded when the file changes [config: tls_cert]
    #[arg(long, env = "SHOAL_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1) [config: tls_key]
    #[arg(long, env = "SHOAL_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// `self-signed`: serve the API over HTTPS too, with a certificate the node generates once
    /// and keeps in its data directory (its SHA-256 fingerprint and PEM file are printed at
    /// start) [config: tls]
    #[arg(long, env = "SHOAL_TLS", value_enum)]
    pub tls: Option<TlsMode>,
    /// Address of the HTTPS listener (HTTP stays on --listen) [default: the API host with the
    /// API port + 443, so 8000 gives 8443 (port 0 when the API port is 0); config: tls_listen]
    #[arg(long, env = "SHOAL_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,
    /// File descriptors kept free for the node's files (tests only) [default: a quarter of the
    /// limit, at least 64]
    #[arg(long, env = "SHOAL_RESERVED_FDS", hide = true)]
    pub reserved_fds: Option<usize>,
}

/// `--tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// A self-signed certificate kept in the data directory.
    SelfSigned,
}

/// The HTTPS listener, if one is asked for (flags over config-file keys). `api` is the HTTP
/// address (the default HTTPS address derives from it).
///
/// # Errors
/// A certificate without its key (or the reverse), both a certificate and `--tls self-signed`,
/// or `--tls-listen` without either, or on the HTTP address.
pub fn resolve_tls(
    args: &ApiArgs,
    file: &FileConfig,
    api: SocketAddr,
) -> anyhow::Result<Option<shoal_node::ApiTlsConfig>> {
    let cert = args.tls_cert.clone().or_else(|| file.tls_cert.clone());
    let key = args.tls_key.clone().or_else(|| file.tls_key.clone());
    let mode = args.tls.or(file.tls);
    let listen = args.tls_listen.or(file.tls_listen);
    let source = match (cert, key, mode) {
        (Some(_), _, Some(TlsMode::SelfSigned)) | (_, Some(_), Some(TlsMode::SelfSigned)) => {
            anyhow::bail!(
                "--tls self-signed and --tls-cert/--tls-key both give the HTTPS certificate: choose one"
            )
        }
        (Some(cert), Some(key), None) => shoal_node::TlsSource::Files { cert, key },
        (Some(cert), None, None) => anyhow::bail!(
            "--tls-cert {} needs --tls-key FILE (its private key)",
            cert.display()
        ),
        (None, Some(key), None) => anyhow::bail!(
            "--tls-key {} needs --tls-cert FILE (its certificate chain)",
            key.display()
        ),
        (None, None, Some(TlsMode::SelfSigned)) => shoal_node::TlsSource::SelfSigned,
        (None, None, None) => {
            if let Some(listen) = listen {
                anyhow::bail!(
                    "--tls-listen {listen} needs a certificate: --tls-cert FILE --tls-key FILE, or --tls self-signed"
                );
            }
            return Ok(None);
        }
    };
    let listen = listen.unwrap_or_else(|| default_tls_listen(api));
    if listen.port() != 0
        && listen.port() == api.port()
        && (listen.ip() == api.ip() || listen.ip().is_unspecified() || api.ip().is_unspecified())
    {
        anyhow::bail!(
            "the HTTPS address {listen} is the HTTP address {api}: give --tls-listen another port"
        );
    }
    Ok(Some(shoal_node::ApiTlsConfig { listen, source }))
}

/// The HTTPS address when none is given: the API host, port + 443 (0 stays 0; past 65535, 0).
fn default_tls_listen(api: SocketAddr) -> SocketAddr {
    let port = match api.port() {
        0 => 0,
        p => p.checked_add(443).unwrap_or(0),
    };
    SocketAddr::new(api.ip(), port)
}

/// Flags over config-file keys over defaults, validated.
pub fn resolve(args: &ApiArgs, file: &FileConfig) -> anyhow::Result<ServerConfig> {
    let d = ServerConfig::default();
    let ms = |flag: Option<u64>, key: Option<u64>, default: Duration| {
        flag.or(key).map_or(default, Duration::from_millis)
    };
    let config = ServerConfig {
        max_connections: args
            .max_connections
            .or(file.max_connections)
            .unwrap_or(d.max_connections),
        header_timeout: ms(
            args.header_timeout_ms,
            file.header_timeout_ms,
            d.header_timeout,
        ),
        idle_timeout: ms(args.idle_timeout_ms, file.idle_timeout_ms, d.idle_timeout),
        body_timeout: ms(args.body_timeout_ms, file.body_timeout_ms, d.body_timeout),
        max_header_bytes: args
            .max_header_bytes
            .or(file.max_header_bytes)
            .unwrap_or(d.max_header_bytes),
        max_body_bytes_in_flight: args
            .max_body_bytes_in_flight
            .or(file.max_body_bytes_in_flight)
            .unwrap_or(d.max_body_bytes_in_flight),
        max_concurrent_requests: args
            .max_concurrent_requests
            .or(file.max_concurrent_requests)
            .unwrap_or(d.max_concurrent_requests),
        max_queued_requests: args
            .max_queued_requests
            .or(file.max_queued_requests)
            .unwrap_or(d.max_queued_requests),
        queue_timeout: ms(
            args.queue_timeout_ms,
            file.queue_timeout_ms,
            d.queue_timeout,
        ),
        reserved_fds: args.reserved_fds.or(d.reserved_fds),
        metrics_token: args
            .metrics_token
            .clone()
            .or_else(|| file.metrics_token.clone())
            .and_then(MetricsToken::new),
    };
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let file: FileConfig =
            toml::from_str("max_connections = 10\nidle_timeout_ms = 1500\n").unwrap();
        let args = ApiArgs {
            max_connections: Some(20),
            ..ApiArgs::default()
        };
        let c = resolve(&args, &file).unwrap();
        assert_eq!(c.max_connections, 20);
        assert_eq!(c.idle_timeout, Duration::from_millis(1500));
        assert_eq!(c.header_timeout, ServerConfig::default().header_timeout);
    }

    #[test]
    fn tls_settings_need_a_complete_certificate_and_one_mode() {
        let api: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let none = FileConfig::default();
        let tls = |args: &ApiArgs| resolve_tls(args, &none, api);
        assert!(tls(&ApiArgs::default()).unwrap().is_none());
        let self_signed = ApiArgs {
            tls: Some(TlsMode::SelfSigned),
            ..ApiArgs::default()
        };
        let c = tls(&self_signed).unwrap().unwrap();
        assert_eq!(c.listen, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(c.source, shoal_node::TlsSource::SelfSigned);
        let cert_only = ApiArgs {
            tls_cert: Some("c.pem".into()),
            ..ApiArgs::default()
        };
        let e = tls(&cert_only).unwrap_err().to_string();
        assert!(e.contains("needs --tls-key"), "{e}");
        let key_only = ApiArgs {
            tls_key: Some("k.pem".into()),
            ..ApiArgs::default()
        };
        let e = tls(&key_only).unwrap_err().to_string();
        assert!(e.contains("needs --tls-cert"), "{e}");
        let both = ApiArgs {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            tls: Some(TlsMode::SelfSigned),
            ..ApiArgs::default()
        };
        let e = tls(&both).unwrap_err().to_string();
        assert!(e.contains("choose one"), "{e}");
        let listen_only = ApiArgs {
            tls_listen: Some("127.0.0.1:9443".parse().unwrap()),
            ..ApiArgs::default()
        };
        assert!(tls(&listen_only).is_err());
        let same = ApiArgs {
            tls_listen: Some(api),
            ..self_signed.clone()
        };
        assert!(tls(&same).is_err());
        let file: FileConfig = toml::from_str(
            "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ntls_listen = \"0.0.0.0:9443\"\n",
        )
        .unwrap();
        let c = resolve_tls(&ApiArgs::default(), &file, api)
            .unwrap()
            .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9443".parse().unwrap());
        assert_eq!(
            c.source,
            shoal_node::TlsSource::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            }
        );
        let file: FileConfig = toml::from_str("tls = \"self-signed\"\n").unwrap();
        assert!(
            resolve_tls(&ApiArgs::default(), &file, api)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_key_name() {
        let args = ApiArgs {
            max_header_bytes: Some(100),
            ..ApiArgs::default()
        };
        let e = resolve(&args, &FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("max_header_bytes"), "{e}");
    }
}
