//! HTTPS for the API: the server certificate and its reloading.
//!
//! - [`CertResolver`] holds the certificate and key in force (a rustls `ResolvesServerCert`);
//!   [`CertResolver::replace`] swaps in a new pair for the connections that start afterwards.
//! - [`CertFiles`] is a PEM certificate chain and a PEM private key on disk;
//!   [`CertFiles::watch`] checks them every few seconds and swaps in a changed pair once it
//!   parses and its key matches its certificate (a bad pair is logged and the old one kept).
//! - [`acceptor`] builds the TLS acceptor the accept loop puts in front of HTTP/1.1: rustls with
//!   aws-lc-rs, its default protocol versions (TLS 1.2 and 1.3) and cipher suites, ALPN
//!   `http/1.1`.
//!
//! ```no_run
//! # async fn run() -> Result<(), shoal_api::server::TlsError> {
//! use std::sync::Arc;
//! use shoal_api::server::{CertFiles, CertResolver, acceptor};
//! let files = CertFiles::new("cert.pem".into(), "key.pem".into());
//! let resolver = Arc::new(CertResolver::new(files.load()?));
//! let tls = acceptor(Arc::clone(&resolver))?;
//! tokio::spawn(files.watch(resolver, std::time::Duration::from_secs(2)));
//! # let _ = tls; Ok(()) }
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// How often [`CertFiles::watch`] looks at the files when the node starts it.
pub const CERT_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file holds no usable PEM certificate or key.
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    /// The key is of a kind rustls cannot sign with, or does not belong to the certificate.
    #[error("certificate {cert} and key {key}: {message}")]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
    /// rustls refused the server configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The SHA-256 fingerprint of a DER certificate as `openssl x509 -fingerprint -sha256` prints
/// it: upper-case hex bytes joined by colons.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    let mut out = String::with_capacity(95);
    for (i, b) in digest.as_ref().iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// A certificate chain and its private key, both PEM (a chain of `CERTIFICATE` blocks, leaf
/// first; a PKCS#8, PKCS#1 or SEC1 key), parsed and checked to belong together. `cert` and `key`
/// name the sources in errors.
///
/// # Errors
/// [`TlsError::Pem`] for a missing or malformed block, [`TlsError::Pair`] for a key rustls
/// cannot use or one that is not the certificate's.
pub fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert: &Path,
    key: &Path,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert.to_path_buf(),
            message: format!("not a PEM certificate chain: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: cert.to_path_buf(),
            message: "no CERTIFICATE block".to_owned(),
        });
    }
    let private = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Pem {
        path: key.to_path_buf(),
        message: format!("no PEM private key: {e}"),
    })?;
    let pair = CertifiedKey::from_der(chain, private, &provider()).map_err(|e| TlsError::Pair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(Arc::new(pair))
}

/// The fingerprint of the leaf certificate of `pair`.
pub fn leaf_fingerprint(pair: &CertifiedKey) -> String {
    pair.cert
        .first()
        .map_or_else(String::new, |c| fingerprint(c))
}

/// The certificate in force for new TLS connections; every handshake reads it, so a
/// [`CertResolver::replace`] applies from the next handshake on (open connections keep theirs).
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    /// A resolver serving `pair`.
    pub fn new(pair: Arc<CertifiedKey>) -> Self {
        CertResolver {
            current: RwLock::new(pair),
        }
    }

    /// Serves `pair` from now on.
    pub fn replace(&self, pair: Arc<CertifiedKey>) {
        *self.current.write() = pair;
    }

    /// The pair in force.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read())
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The TLS acceptor of the HTTPS listener: rustls (aws-lc-rs) with its default versions and
/// cipher suites, no client certificates, ALPN `http/1.1`, the certificate from `resolver`.
///
/// # Errors
/// [`TlsError::Config`] if the crypto provider lacks the default protocol versions (it does
/// not: the error exists because rustls's builder returns one).
pub fn acceptor(resolver: Arc<CertResolver>) -> Result<TlsAcceptor, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// What identifies a version of a file: size, modification time, inode (a file renamed over,
/// or a symlink switched, as Kubernetes does with mounted secrets, changes the inode).
type Stamp = Option<(u64, SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?, m.ino()))
}

/// A certificate chain file and a private key file, PEM.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
}

impl CertFiles {
    /// The pair at these paths.
    pub fn new(cert: PathBuf, key: PathBuf) -> Self {
        CertFiles { cert, key }
    }

    /// Reads and checks the pair (blocking file reads: two small files).
    ///
    /// # Errors
    /// A file cannot be read, does not parse, or the key is not the certificate's.
    pub fn load(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| TlsError::Read {
                path: p.to_path_buf(),
                source,
            })
        };
        let cert = read(&self.cert)?;
        let key = zeroize::Zeroizing::new(read(&self.key)?);
        certified_key(&cert, &key, &self.cert, &self.key)
    }

    fn stamps(&self) -> (Stamp, Stamp) {
        (stamp(&self.cert), stamp(&self.key))
    }

    /// Looks at the files every `every` and, when either changed, loads the pair and gives it
    /// to `resolver`. A pair that does not load (a half-written file, a key of another
    /// certificate) is logged and the one in force kept; it is tried again when a file changes
    /// again. Runs until dropped.
    pub async fn watch(self, resolver: Arc<CertResolver>, every: Duration) {
        let mut seen = self.stamps();
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = self.stamps();
            if now == seen {
                continue;
            }
            seen = now;
            let files = self.clone();
            match tokio::task::spawn_blocking(move || files.load()).await {
                Ok(Ok(pair)) => {
                    let fingerprint = leaf_fingerprint(&pair);
                    resolver.replace(pair);
                    tracing::info!(
                        cert = %self.cert.display(),
                        sha256 = %fingerprint,
                        "API TLS certificate reloaded"
                    );
                }
                Ok(Err(e)) => tracing::warn!(
                    error = %e,
                    "the API TLS certificate files changed but cannot be used; still serving the previous certificate"
                ),
                Err(e) => tracing::warn!(error = %e, "reloading the API TLS certificate failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_look_like_openssl() {
        let f = fingerprint(b"");
        assert_eq!(
            f,
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }

    #[test]
    fn garbage_is_refused_with_the_file_named() {
        let e = certified_key(
            b"not pem",
            b"nor this",
            Path::new("c.pem"),
            Path::new("k.pem"),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("c.pem"), "{e}");
    }
}
