//! The node's cluster identity, `<data-dir>/cluster.json`: node id, cluster id, the cluster CA
//! (certificate and key), this node's certificate and key.
//!
//! The private keys are sealed under the node key (AES-256-GCM, see
//! `shoal_crypto::record::seal_secret`), so the file alone gives nothing away; the certificates are
//! public. No join token is stored (see `join_token.rs`); a `token_sealed` field written by an
//! earlier version is ignored.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shoal_crypto::DataKey;
use shoal_rpc::{ClusterCa, NodeCert, TlsIdentity};

use crate::NodeError;

const FILE: &str = "cluster.json";

/// What a node needs to talk to its cluster.
#[derive(Clone)]
pub(crate) struct Identity {
    pub(crate) node_id: u64,
    pub(crate) cluster_id: String,
    pub(crate) ca: ClusterCa,
    pub(crate) cert: NodeCert,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    node_id: u64,
    cluster_id: String,
    ca_cert_pem: String,
    /// Sealed under the node key, hex.
    ca_key_sealed: String,
    cert_pem: String,
    /// Sealed under the node key, hex.
    key_sealed: String,
}

fn err(path: &Path, e: impl std::fmt::Display) -> NodeError {
    NodeError::Crypto(format!("cluster identity {}: {e}", path.display()))
}

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

fn seal(key: &DataKey, what: &str, plain: &str, file: &Path) -> Result<String, NodeError> {
    shoal_crypto::record::seal_secret(key, what.as_bytes(), plain.as_bytes())
        .map(hex::encode)
        .map_err(|e| err(file, e))
}

fn open(key: &DataKey, what: &str, sealed: &str, file: &Path) -> Result<String, NodeError> {
    let bytes = hex::decode(sealed).map_err(|e| err(file, e))?;
    let plain = shoal_crypto::record::open_secret(key, what.as_bytes(), &bytes)
        .map_err(|e| err(file, e))?;
    String::from_utf8(plain.to_vec()).map_err(|e| err(file, e))
}

impl Identity {
    /// A new cluster whose first node is this one (id 1).
    pub(crate) fn bootstrap() -> Result<Identity, NodeError> {
        let cluster_id = uuid::Uuid::new_v4().to_string();
        let rpc = |e: shoal_rpc::RpcError| NodeError::Crypto(format!("cluster CA: {e}"));
        let ca = ClusterCa::generate(&cluster_id).map_err(rpc)?;
        let cert = ca.issue(1).map_err(rpc)?;
        Ok(Identity {
            node_id: 1,
            cluster_id,
            ca,
            cert,
        })
    }

    /// The TLS identity for node-to-node connections.
    pub(crate) fn tls(&self) -> Result<TlsIdentity, NodeError> {
        TlsIdentity::new(&self.ca.cert_pem, &self.cert)
            .map_err(|e| NodeError::Crypto(format!("cluster TLS: {e}")))
    }

    /// The stored identity of the data directory `dir`, if it has one.
    pub(crate) fn load(dir: &Path, key: &DataKey) -> Result<Option<Identity>, NodeError> {
        let file = path(dir);
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(&file, e)),
        };
        let s: Stored = serde_json::from_str(&text).map_err(|e| err(&file, e))?;
        Ok(Some(Identity {
            node_id: s.node_id,
            ca: ClusterCa {
                cert_pem: s.ca_cert_pem,
                key_pem: open(key, "cluster-ca-key", &s.ca_key_sealed, &file)?,
            },
            cert: NodeCert {
                cert_pem: s.cert_pem,
                key_pem: open(key, "node-key", &s.key_sealed, &file)?,
            },
            cluster_id: s.cluster_id,
        }))
    }

    /// Writes the identity (atomically: a temporary file renamed over the old one).
    pub(crate) fn save(&self, dir: &Path, key: &DataKey) -> Result<(), NodeError> {
        let file = path(dir);
        let stored = Stored {
            node_id: self.node_id,
            cluster_id: self.cluster_id.clone(),
            ca_cert_pem: self.ca.cert_pem.clone(),
            ca_key_sealed: seal(key, "cluster-ca-key", &self.ca.key_pem, &file)?,
            cert_pem: self.cert.cert_pem.clone(),
            key_sealed: seal(key, "node-key", &self.cert.key_pem, &file)?,
        };
        let json = serde_json::to_vec_pretty(&stored).map_err(|e| err(&file, e))?;
        let tmp = dir.join(format!("{FILE}.tmp"));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &file)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| err(&file, e))
    }
}
