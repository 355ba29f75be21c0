//! Cluster CA, node certificates, join tokens and the TLS configurations built from them.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use subtle::ConstantTimeEq;

use crate::RpcError;

/// The DNS name every node certificate carries and every client verifies.
pub const NODE_DNS_NAME: &str = "shoal-node";
/// The ALPN protocol id of protocol version 1.
pub const ALPN_V1: &[u8] = b"shoal/1";
/// Years a certificate is valid.
const VALID_YEARS: i32 = 10;
/// Prefix of the textual join token (the "2" is the token format version).
const TOKEN_PREFIX: &str = "SHOAL2-";
/// Prefix of the first token format (no expiry), refused with a clear message.
const TOKEN_PREFIX_V1: &str = "SHOAL1-";

/// The crypto provider all configs use (never the process-wide default).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn cert_err(e: impl fmt::Display) -> RpcError {
    RpcError::Cert(e.to_string())
}

fn tls_err(e: impl fmt::Display) -> RpcError {
    RpcError::Tls(e.to_string())
}

/// SHA-256 of a DER blob.
fn sha256(der: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn parse_cert(pem: &str) -> Result<CertificateDer<'static>, RpcError> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| cert_err(format!("bad certificate PEM: {e}")))
}

fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, RpcError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| cert_err(format!("bad private key PEM: {e}")))
}

/// The current calendar year (approximate is fine: validity starts a year earlier).
fn current_year() -> i32 {
    let secs = unix_now();
    1970 + i32::try_from(secs / 31_556_952).unwrap_or(0)
}

fn validity(params: &mut CertificateParams) {
    let year = current_year();
    // Start a year early to tolerate clock skew between nodes.
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + VALID_YEARS, 12, 31);
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        DnValue::Utf8String(common_name.to_string()),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params);
    params
}

/// The cluster's certificate authority. The bootstrap node generates it; its key signs every node's certificate.
#[derive(Clone)]
pub struct ClusterCa {
    /// The CA certificate (PEM).
    pub cert_pem: String,
    /// The CA private key (PKCS#8 PEM). Secret.
    pub key_pem: String,
}

impl fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterCa")
            .field("fingerprint", &hex(&self.fingerprint()))
            .finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// Generates a new self-signed CA (ECDSA P-256) with CN "Shoal cluster `cluster_id`".
    pub fn generate(cluster_id: &str) -> Result<ClusterCa, RpcError> {
        let key = KeyPair::generate().map_err(cert_err)?;
        let cert = ca_params(&format!("Shoal cluster {cluster_id}"))
            .self_signed(&key)
            .map_err(cert_err)?;
        Ok(ClusterCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Reloads a CA saved earlier (checks that both PEMs parse and that the certificate is one this crate made).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<ClusterCa, RpcError> {
        let ca = ClusterCa {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
        };
        ca.issuer()?;
        Ok(ca)
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, RpcError> {
        let der = parse_cert(&self.cert_pem)?;
        let cn = der::subject_common_name(&der).ok_or_else(|| {
            cert_err("the CA certificate's subject is not a single UTF-8 common name")
        })?;
        let key = KeyPair::from_pem(&self.key_pem).map_err(cert_err)?;
        Ok(Issuer::new(ca_params(&cn), key))
    }

    /// Issues a node certificate: CN "shoal-node-`node_id`", SAN DNS "shoal-node", server + client auth,
    /// valid for about ten years.
    pub fn issue(&self, node_id: u64) -> Result<NodeCert, RpcError> {
        let issuer = self.issuer()?;
        let key = KeyPair::generate().map_err(cert_err)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            DnValue::Utf8String(format!("shoal-node-{node_id}")),
        );
        params.distinguished_name = dn;
        params.subject_alt_names = vec![SanType::DnsName(
            NODE_DNS_NAME.to_string().try_into().map_err(cert_err)?,
        )];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params);
        let cert = params.signed_by(&key, &issuer).map_err(cert_err)?;
        Ok(NodeCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// SHA-256 of the CA certificate's DER encoding (what join tokens pin). If `cert_pem` does not parse,
    /// this is the hash of the PEM text itself, which matches no certificate.
    pub fn fingerprint(&self) -> [u8; 32] {
        match parse_cert(&self.cert_pem) {
            Ok(der) => sha256(der.as_ref()),
            Err(_) => sha256(self.cert_pem.as_bytes()),
        }
    }
}

/// A node's certificate and private key, issued by the cluster CA.
#[derive(Clone)]
pub struct NodeCert {
    /// The node certificate (PEM).
    pub cert_pem: String,
    /// The node private key (PKCS#8 PEM). Secret.
    pub key_pem: String,
}

impl fmt::Debug for NodeCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCert").finish_non_exhaustive()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What a new node needs to join: the cluster id, a shared secret the cluster checks, when the
/// token expires, and the fingerprint of the cluster CA so the new node can authenticate the node it
/// joins through.
///
/// Textual form: `SHOAL2-` followed by base64url (no padding) of `secret (32) | ca_fingerprint (32)
/// | expires_at (8, big-endian seconds since the Unix epoch) | cluster id (UTF-8, rest)`. The
/// first format, `SHOAL1-` (no expiry), is refused by [`JoinToken::from_str`] with a message
/// saying to create a new token: a token that never expires is exactly what expiry removes.
///
/// The members decide whether a token is valid (its secret's digest and expiry are replicated in
/// the cluster's metadata, and a newer token revokes it); the expiry carried here lets a joining
/// node refuse an expired token before contacting anyone and shows people when it lapses.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// The cluster id.
    pub cluster_id: String,
    /// The shared secret (random).
    pub secret: [u8; 32],
    /// SHA-256 of the cluster CA certificate's DER.
    pub ca_fingerprint: [u8; 32],
    /// Seconds since the Unix epoch after which the token admits no node.
    pub expires_at: u64,
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinToken")
            .field("cluster_id", &self.cluster_id)
            .field("secret", &"<redacted>")
            .field("ca_fingerprint", &hex(&self.ca_fingerprint))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Seconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl JoinToken {
    /// A token with a fresh random secret for the cluster whose CA is `ca`, valid until
    /// `expires_at` (seconds since the Unix epoch).
    pub fn generate(cluster_id: &str, ca: &ClusterCa, expires_at: u64) -> JoinToken {
        JoinToken {
            cluster_id: cluster_id.to_string(),
            secret: rand::random(),
            ca_fingerprint: ca.fingerprint(),
            expires_at,
        }
    }

    /// Whether `secret` equals this token's secret (constant time).
    pub fn verify_secret(&self, secret: &[u8]) -> bool {
        self.secret.as_slice().ct_eq(secret).into()
    }

    /// SHA-256 of this token's secret: what a cluster stores to check tokens without keeping
    /// them.
    pub fn secret_digest(&self) -> [u8; 32] {
        secret_digest(&self.secret)
    }

    /// Whether the token has expired at `now` (seconds since the Unix epoch).
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }
}

/// SHA-256 of a join-token secret (see [`JoinToken::secret_digest`]).
pub fn secret_digest(secret: &[u8]) -> [u8; 32] {
    sha256(secret)
}

/// Whether two digests are equal (constant time).
pub fn digests_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(72 + self.cluster_id.len());
        raw.extend_from_slice(&self.secret);
        raw.extend_from_slice(&self.ca_fingerprint);
        raw.extend_from_slice(&self.expires_at.to_be_bytes());
        raw.extend_from_slice(self.cluster_id.as_bytes());
        write!(f, "{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
    }
}

impl FromStr for JoinToken {
    type Err = RpcError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.starts_with(TOKEN_PREFIX_V1) {
            return Err(RpcError::InvalidToken(format!(
                "this join token ({TOKEN_PREFIX_V1}...) is of the first format, which never expires and is no longer accepted; create a new one with `shoal cluster join-token` on a member"
            )));
        }
        let body = s.strip_prefix(TOKEN_PREFIX).ok_or_else(|| {
            RpcError::InvalidToken(format!("a join token starts with {TOKEN_PREFIX}"))
        })?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| RpcError::InvalidToken("the token body is not base64url".to_string()))?;
        let (Some(secret), Some(ca), Some(expiry), Some(cluster_id)) = (
            raw.get(..32),
            raw.get(32..64),
            raw.get(64..72),
            raw.get(72..),
        ) else {
            return Err(RpcError::InvalidToken("the token is truncated".to_string()));
        };
        let mut token = JoinToken {
            cluster_id: String::from_utf8(cluster_id.to_vec())
                .map_err(|_| RpcError::InvalidToken("the cluster id is not UTF-8".to_string()))?,
            secret: [0; 32],
            ca_fingerprint: [0; 32],
            expires_at: 0,
        };
        token.secret.copy_from_slice(secret);
        token.ca_fingerprint.copy_from_slice(ca);
        let mut be = [0u8; 8];
        be.copy_from_slice(expiry);
        token.expires_at = u64::from_be_bytes(be);
        Ok(token)
    }
}

/// A node's TLS identity: its certificate chain and key plus the cluster CA it trusts. Cheap to clone.
#[derive(Clone)]
pub struct TlsIdentity {
    pub(crate) server: Arc<ServerConfig>,
    pub(crate) client: Arc<ClientConfig>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// Builds the server and client TLS configurations of a node: TLS 1.3/1.2 via aws-lc-rs, the cluster CA as
    /// the only trust root, the node certificate presented as chain `[node, CA]` in both directions.
    pub fn new(ca_cert_pem: &str, node: &NodeCert) -> Result<Self, RpcError> {
        let ca = parse_cert(ca_cert_pem)?;
        let leaf = parse_cert(&node.cert_pem)?;
        let key = parse_key(&node.key_pem)?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone()).map_err(tls_err)?;
        let roots = Arc::new(roots);
        let chain = vec![leaf, ca];

        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
                .allow_unauthenticated()
                .build()
                .map_err(tls_err)?;
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(tls_err)?;
        server.alpn_protocols = vec![ALPN_V1.to_vec()];

        let mut client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(tls_err)?;
        client.alpn_protocols = vec![ALPN_V1.to_vec()];
        Ok(TlsIdentity {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// The client configuration (presents the node certificate, trusts only the cluster CA; server name
    /// [`NODE_DNS_NAME`]).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// The server configuration (client certificates optional but, when presented, must chain to the CA).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }
}

/// The server name every client verifies.
pub(crate) fn node_server_name() -> Result<ServerName<'static>, RpcError> {
    ServerName::try_from(NODE_DNS_NAME).map_err(tls_err)
}

/// Client configuration for a peer that has no certificate yet (join): trusts the server only if its chain
/// contains a CA certificate whose SHA-256 equals `ca_fingerprint` and the leaf verifies against that CA.
pub fn pinned_ca_client_config(ca_fingerprint: [u8; 32]) -> Result<Arc<ClientConfig>, RpcError> {
    let provider = provider();
    let verifier = Arc::new(PinnedCaVerifier {
        fingerprint: ca_fingerprint,
        provider: provider.clone(),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_V1.to_vec()];
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct PinnedCaVerifier {
    fingerprint: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| bool::from(sha256(c.as_ref()).ct_eq(&self.fingerprint)))
            .ok_or_else(|| {
                rustls::Error::General(
                    "the server's CA does not match the join token's CA fingerprint".to_string(),
                )
            })?;
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Just enough DER reading to recover the CA's subject common name (rcgen cannot parse certificates without
/// its optional x509-parser feature).
mod der {
    /// Splits one TLV off `input`: (tag, contents, rest). Only definite lengths (DER).
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let mut len = 0usize;
            for &b in &rest[..n] {
                len = (len << 8) | usize::from(b);
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }

    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const UTF8_STRING: u8 = 0x0c;
    const CN_OID: &[u8] = &[0x55, 0x04, 0x03];

    /// The subject CN of a certificate whose subject is exactly one RDN holding one UTF-8 common name.
    pub(super) fn subject_common_name(cert: &[u8]) -> Option<String> {
        let (SEQUENCE, cert, _) = tlv(cert)? else {
            return None;
        };
        let (SEQUENCE, mut tbs, _) = tlv(cert)? else {
            return None;
        };
        // Optional [0] version.
        if tbs.first() == Some(&0xa0) {
            tbs = tlv(tbs)?.2;
        }
        let (_serial, _, rest) = tlv(tbs)?;
        let (_sig_alg, _, rest) = tlv(rest)?;
        let (_issuer, _, rest) = tlv(rest)?;
        let (_validity, _, rest) = tlv(rest)?;
        let (SEQUENCE, subject, _) = tlv(rest)? else {
            return None;
        };
        let (SET, rdn, rest) = tlv(subject)? else {
            return None;
        };
        if !rest.is_empty() {
            return None;
        }
        let (SEQUENCE, atv, rest) = tlv(rdn)? else {
            return None;
        };
        if !rest.is_empty() {
            return None;
        }
        let (0x06, oid, value) = tlv(atv)? else {
            return None;
        };
        if oid != CN_OID {
            return None;
        }
        let (UTF8_STRING, name, rest) = tlv(value)? else {
            return None;
        };
        if !rest.is_empty() {
            return None;
        }
        String::from_utf8(name.to_vec()).ok()
    }
}
