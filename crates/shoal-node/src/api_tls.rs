//! HTTPS for the DynamoDB API: where the certificate comes from (`--tls-cert`/`--tls-key`, or
//! `--tls self-signed`) and the node's self-signed certificate.
//!
//! The self-signed certificate (ECDSA P-256, SANs `localhost`, `127.0.0.1`, `::1`, the
//! listening addresses and this machine's host name) is generated on the first start with
//! `--tls self-signed` and kept in the data directory: the certificate in `api-tls-cert.pem`
//! (public: clients use it as their CA bundle), its private key in `api-tls-key.sealed`
//! (mode 0600, sealed under the node key like the private keys of `cluster.json`). Delete both
//! to get a new one.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shoal_api::server::tls::{self, CertFiles, CertResolver};
use shoal_crypto::DataKey;

use crate::NodeError;

/// The self-signed certificate's file in the data directory (PEM).
pub const SELF_SIGNED_CERT_FILE: &str = "api-tls-cert.pem";
/// The self-signed certificate's private key in the data directory, sealed under the node key.
pub const SELF_SIGNED_KEY_FILE: &str = "api-tls-key.sealed";

/// What the sealed key is bound to (AES-GCM additional data).
const KEY_AAD: &[u8] = b"api-tls-key";

/// Where the HTTPS listener's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// A PEM certificate chain and private key, reloaded when the files change.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate the node generates once and keeps in its data directory.
    SelfSigned,
}

/// The HTTPS listener of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTlsConfig {
    /// Its address (port 0 picks a free port). Plain HTTP stays on [`crate::NodeConfig::listen`].
    pub listen: SocketAddr,
    /// Its certificate.
    pub source: TlsSource,
}

/// The HTTPS listener of a running node, as clients need to know it.
#[derive(Debug, Clone)]
pub struct ApiTlsInfo {
    /// The bound address.
    pub addr: SocketAddr,
    /// SHA-256 fingerprint of the certificate served at start (colon hex, as openssl prints it).
    pub fingerprint: String,
    /// The PEM certificate file: the node's self-signed certificate (a CA bundle for clients),
    /// or the `--tls-cert` file.
    pub cert_path: PathBuf,
}

/// The certificate to serve at start, and for certificate files, what to watch.
pub(crate) struct Prepared {
    pub(crate) resolver: Arc<CertResolver>,
    pub(crate) watch: Option<CertFiles>,
    pub(crate) cert_path: PathBuf,
    pub(crate) fingerprint: String,
}

fn tls_err(e: impl std::fmt::Display) -> NodeError {
    NodeError::Crypto(format!("API TLS: {e}"))
}

/// Loads (or, self-signed on a first start, creates) the certificate of `config`. `api` is the
/// plain HTTP address (its host goes into a new self-signed certificate too).
pub(crate) fn prepare(
    config: &ApiTlsConfig,
    api: SocketAddr,
    data_dir: &Path,
    node_key: &DataKey,
) -> Result<Prepared, NodeError> {
    let (pair, watch, cert_path) = match &config.source {
        TlsSource::Files { cert, key } => {
            let files = CertFiles::new(cert.clone(), key.clone());
            let pair = files.load().map_err(tls_err)?;
            (pair, Some(files), cert.clone())
        }
        TlsSource::SelfSigned => {
            let hosts = [config.listen.ip(), api.ip()];
            let pair = self_signed(data_dir, node_key, &hosts)?;
            (pair, None, data_dir.join(SELF_SIGNED_CERT_FILE))
        }
    };
    let fingerprint = tls::leaf_fingerprint(&pair);
    Ok(Prepared {
        resolver: Arc::new(CertResolver::new(pair)),
        watch,
        cert_path,
        fingerprint,
    })
}

/// The node's self-signed certificate: read from the data directory, or generated and stored
/// there when it has none.
fn self_signed(
    dir: &Path,
    node_key: &DataKey,
    hosts: &[IpAddr],
) -> Result<Arc<rustls::sign::CertifiedKey>, NodeError> {
    let cert_path = dir.join(SELF_SIGNED_CERT_FILE);
    let key_path = dir.join(SELF_SIGNED_KEY_FILE);
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => {
            let cert = std::fs::read(&cert_path)
                .map_err(|e| tls_err(format!("{}: {e}", cert_path.display())))?;
            let sealed = std::fs::read_to_string(&key_path)
                .map_err(|e| tls_err(format!("{}: {e}", key_path.display())))?;
            let sealed = hex::decode(sealed.trim())
                .map_err(|e| tls_err(format!("{}: {e}", key_path.display())))?;
            let key = shoal_crypto::record::open_secret(node_key, KEY_AAD, &sealed)
                .map_err(|e| tls_err(format!("{}: {e}", key_path.display())))?;
            tls::certified_key(&cert, &key, &cert_path, &key_path).map_err(tls_err)
        }
        (false, false) => {
            let (cert_pem, key_pem) = generate(hosts)?;
            let sealed = shoal_crypto::record::seal_secret(node_key, KEY_AAD, key_pem.as_bytes())
                .map_err(tls_err)?;
            write_file(&key_path, hex::encode(sealed).as_bytes(), 0o600)?;
            write_file(&cert_path, cert_pem.as_bytes(), 0o644)?;
            tracing::info!(cert = %cert_path.display(), "generated the API's self-signed TLS certificate");
            tls::certified_key(
                cert_pem.as_bytes(),
                key_pem.as_bytes(),
                &cert_path,
                &key_path,
            )
            .map_err(tls_err)
        }
        _ => Err(tls_err(format!(
            "the data directory has one of {} and {} but not the other: delete the remaining one to generate a new self-signed certificate",
            cert_path.display(),
            key_path.display()
        ))),
    }
}

/// A new self-signed server certificate (ECDSA P-256, not a CA, valid from a day ago for ten
/// years) for `localhost`, the loopback addresses, `hosts` (unless unspecified) and the host
/// name. Returns the certificate and its PKCS#8 key, PEM.
fn generate(hosts: &[IpAddr]) -> Result<(String, zeroize::Zeroizing<String>), NodeError> {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let mut sans = vec![
        SanType::DnsName("localhost".to_string().try_into().map_err(tls_err)?),
        SanType::IpAddress(IpAddr::from([127, 0, 0, 1])),
        SanType::IpAddress(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
    ];
    for ip in hosts {
        if !ip.is_unspecified() && !sans.contains(&SanType::IpAddress(*ip)) {
            sans.push(SanType::IpAddress(*ip));
        }
    }
    if let Some(name) = host_name()
        && let Ok(dns) = name.clone().try_into()
        && name != "localhost"
    {
        sans.push(SanType::DnsName(dns));
    }
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Shoal DynamoDB API (self-signed)");
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let key = KeyPair::generate().map_err(tls_err)?;
    let cert = params.self_signed(&key).map_err(tls_err)?;
    Ok((cert.pem(), zeroize::Zeroizing::new(key.serialize_pem())))
}

/// This machine's host name (Linux), if it has a usable one.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then(|| name.to_ascii_lowercase())
}

/// Writes `bytes` to `path` with `mode` (a temporary file, synced, renamed into place).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), NodeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| tls_err(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn self_signed_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let key = DataKey::generate().unwrap();
        let hosts = [IpAddr::from([10, 1, 2, 3])];
        let first = self_signed(dir.path(), &key, &hosts).unwrap();
        let again = self_signed(dir.path(), &key, &hosts).unwrap();
        assert_eq!(first.cert, again.cert);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(SELF_SIGNED_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = std::fs::read_to_string(dir.path().join(SELF_SIGNED_KEY_FILE)).unwrap();
        assert!(!sealed.contains("PRIVATE KEY"));
        let other = DataKey::generate().unwrap();
        assert!(self_signed(dir.path(), &other, &hosts).is_err());
    }
}
