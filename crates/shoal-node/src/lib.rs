//! One Shoal node, wired together: data directory, access keys, catalog, partitions, and the
//! DynamoDB API server on top.
//!
//! - [`Node::start`] opens (or initialises) a data directory and serves the API; it returns a
//!   [`RunningNode`] with the bound address and a clean [`RunningNode::shutdown`].
//! - [`backend::NodeBackend`] implements the API's `Backend` with local partitions.
//! - [`keys`] manages access keys (`shoal keys create|list|delete`).
//!
//! ```no_run
//! # async fn run() -> Result<(), shoal_node::NodeError> {
//! let node = shoal_node::Node::start(shoal_node::NodeConfig::default()).await?;
//! println!("serving on {}", node.local_addr());
//! node.shutdown().await;
//! # Ok(()) }
//! ```

pub mod backend;
pub mod catalog;
mod commit;
pub mod keys;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use keys::AccessKey;

/// The on-disk format this version reads and writes. Format 2: SQLCipher files keyed with data
/// keys wrapped by the master keys of the key directory (format 1 used a fixed placeholder key).
pub const DATA_FORMAT: &str = "shoal-data-format 2";
const FORMAT_FILE: &str = "FORMAT";
const LOCK_FILE: &str = "LOCK";

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Address of the DynamoDB API (HTTP). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where the node keeps its data; created if missing.
    pub data_dir: PathBuf,
    /// Where the master keys live: kept apart from the data directory, so a copy of the data
    /// directory alone is unreadable. Created with the data directory; required afterwards.
    pub keys_dir: PathBuf,
    /// The region in ARNs and in the SigV4 credential scope.
    pub region: String,
    /// The first admin key; when `None` and the directory has no key, one is generated and
    /// returned by [`RunningNode::created_admin_key`] (shown once by the CLI).
    pub admin_key: Option<AccessKey>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: PathBuf::from("shoal-data"),
            keys_dir: PathBuf::from(shoal_crypto::DEFAULT_KEYS_DIR),
            region: "us-east-1".to_string(),
            admin_key: None,
        }
    }
}

/// Why a node could not start or an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("data directory {path}: {message}")]
    DataDir { path: PathBuf, message: String },
    #[error("access keys: {0}")]
    Keys(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("encryption keys: {0}")]
    Crypto(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A node being started.
pub struct Node;

/// A running node.
pub struct RunningNode {
    addr: SocketAddr,
    created_admin_key: Option<AccessKey>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _lock: fs::File,
}

fn data_dir_error(path: &Path, message: impl Into<String>) -> NodeError {
    NodeError::DataDir {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Creates the data directory if needed, takes its lock, and checks its format. Returns the
/// lock and whether the directory was new.
fn prepare_data_dir(dir: &Path) -> Result<(fs::File, bool), NodeError> {
    fs::create_dir_all(dir).map_err(|e| data_dir_error(dir, format!("cannot create: {e}")))?;
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .map_err(|e| data_dir_error(dir, format!("cannot open the lock file: {e}")))?;
    lock.try_lock().map_err(|_| {
        data_dir_error(
            dir,
            "is in use by another Shoal process (its LOCK file is held)",
        )
    })?;
    let format_path = dir.join(FORMAT_FILE);
    let mut fresh = false;
    match fs::read_to_string(&format_path) {
        Ok(found) if found.trim() == DATA_FORMAT => {}
        Ok(found) => {
            return Err(data_dir_error(
                dir,
                format!(
                    "was written in format '{}', this version reads '{DATA_FORMAT}'",
                    found.trim()
                ),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let non_empty = fs::read_dir(dir)
                .map(|mut d| {
                    d.any(|e| {
                        e.map(|e| e.file_name() != LOCK_FILE && e.file_name() != keys::KEY_FILE)
                            .unwrap_or(true)
                    })
                })
                .unwrap_or(false);
            if non_empty {
                return Err(data_dir_error(
                    dir,
                    "is not empty and has no FORMAT file: it is not a Shoal data directory",
                ));
            }
            let mut f = fs::File::create(&format_path)
                .map_err(|e| data_dir_error(dir, format!("cannot write FORMAT: {e}")))?;
            f.write_all(format!("{DATA_FORMAT}\n").as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| data_dir_error(dir, format!("cannot write FORMAT: {e}")))?;
            fresh = true;
        }
        Err(e) => return Err(data_dir_error(dir, format!("cannot read FORMAT: {e}"))),
    }
    Ok((lock, fresh))
}

/// Opens the master keys and the node's key ring. A new data directory may create the key
/// directory; an existing one requires it (without its keys the data cannot be read).
fn open_key_ring(
    data_dir: &Path,
    keys_dir: &Path,
    fresh: bool,
) -> Result<Arc<shoal_crypto::KeyRing>, NodeError> {
    let crypto = |e: shoal_crypto::CryptoError| NodeError::Crypto(e.to_string());
    let provider = if fresh {
        shoal_crypto::FileKeyProvider::open_or_create(keys_dir)
    } else {
        shoal_crypto::FileKeyProvider::open(keys_dir)
    }
    .map_err(|e| NodeError::Crypto(format!("{e} (data directory {})", data_dir.display())))?;
    let ring = shoal_crypto::KeyRing::open_in(Arc::new(provider), data_dir).map_err(crypto)?;
    Ok(Arc::new(ring))
}

impl Node {
    /// Opens the data directory and starts serving. Returns once the API socket is bound.
    ///
    /// # Errors
    /// The data directory cannot be created, is locked by another process, or has another
    /// format; the key file or catalog cannot be read; the address cannot be bound.
    pub async fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
        let dir = config.data_dir.clone();
        let (lock, fresh) = prepare_data_dir(&dir)?;
        let ring = {
            let (dir, keys_dir) = (dir.clone(), config.keys_dir.clone());
            tokio::task::spawn_blocking(move || open_key_ring(&dir, &keys_dir, fresh))
                .await
                .map_err(|e| NodeError::Crypto(e.to_string()))??
        };
        let (keys, created_admin_key) = keys::KeyStore::open(&dir, config.admin_key.as_ref())?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| NodeError::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| NodeError::Listen {
            addr: config.listen,
            source,
        })?;
        let region = config.region.clone();
        let backend = tokio::task::spawn_blocking(move || {
            backend::NodeBackend::open(&dir, region, vec![addr.to_string()], keys, ring)
        })
        .await
        .map_err(|e| NodeError::Storage(e.to_string()))??;
        let api = Arc::new(shoal_api::server::Api::new(Arc::new(backend)));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(shoal_api::server::serve(listener, api, async move {
            let _ = rx.await;
        }));
        tracing::info!(%addr, data_dir = %config.data_dir.display(), region = %config.region, "Shoal node serving the DynamoDB API");
        Ok(RunningNode {
            addr,
            created_admin_key,
            shutdown: tx,
            server,
            _lock: lock,
        })
    }
}

impl RunningNode {
    /// The address the API is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin key generated on this start, if the data directory had none.
    pub fn created_admin_key(&self) -> Option<&AccessKey> {
        self.created_admin_key.as_ref()
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 10 s), and closes the
    /// data directory.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        match self.server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "server stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "server task failed"),
        }
        tracing::info!("Shoal node stopped");
    }

    /// Runs until the server stops by itself (it does not, unless it fails).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        match (&mut self.server).await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}
