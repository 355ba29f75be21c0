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

pub mod api_tls;
pub mod backend;
pub mod catalog;
pub mod cluster;
pub mod control;
mod gsi;
mod gsi_read;
mod indexes;
pub mod keys;
mod local;
pub mod metrics;
mod moves;
mod remote;
pub mod rotation;
mod split;
mod storage_failure;
mod streams;
#[cfg(test)]
mod test_support;
mod throttle;
mod transact;
mod ttl;
mod tx_recovery;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use api_tls::{ApiTlsConfig, ApiTlsInfo, TlsSource};
pub use cluster::ClusterConfig;
pub use cluster::health::Failure as NodeFailure;
pub use cluster::liveness::DEFAULT_DEAD_NODE_TIMEOUT;
pub use keys::AccessKey;
pub use shoal_crypto::{KmsConfig, KmsCredentials};
pub use split::{DEFAULT_SPLIT_SIZE_BYTES, MIN_SPLIT_SIZE_BYTES, SPLIT_HEAT_WRITES_PER_SEC};
pub use ttl::DEFAULT_TTL_SWEEP;

/// The on-disk format this version reads and writes. Format 2: SQLCipher files keyed with data
/// keys wrapped by the master keys of the key directory (format 1 used a fixed placeholder key).
/// Format 3: a cluster member (Raft log `raft.db`, metadata `meta.db`, identity `cluster.json`,
/// partition files named by cluster-wide partition ids). Format 4: the Raft log is encrypted
/// segment files in `raft-log/` instead of the SQLCipher file `raft.db`.
pub const DATA_FORMAT: &str = "shoal-data-format 4";
/// The format this version upgrades in place: its `raft.db` is migrated to `raft-log/` when the
/// Raft log opens, and the FORMAT file is rewritten after that ([`upgrade_data_format`]).
const UPGRADABLE_DATA_FORMAT: &str = "shoal-data-format 3";
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
    /// Where the node's master key lives: the key directory (default) or KMS (`kms.key_id`).
    pub key_provider: KeyProviderKind,
    /// The KMS to use, for the KMS key provider and for tables whose `SSESpecification` names a
    /// KMS key. `None`: no KMS (such tables are refused).
    pub kms: Option<shoal_crypto::KmsConfig>,
    /// Age at which a table's data key is rotated (its files re-encrypted under a new key while
    /// the table serves). Default 30 days.
    pub data_key_rotation: Duration,
    /// How often the node looks for data keys due for rotation. Default one minute.
    pub data_key_rotation_check: Duration,
    /// The node's cluster address and, on first start, the cluster to join.
    pub cluster: ClusterConfig,
    /// Limits and timeouts of the DynamoDB API server (connections, timeouts, body memory,
    /// queued work).
    pub api: shoal_api::server::ServerConfig,
    /// An HTTPS listener for the API besides the HTTP one; `None`: HTTP only.
    pub tls: Option<ApiTlsConfig>,
}

/// Default [`NodeConfig::data_key_rotation`]: 30 days.
pub const DEFAULT_DATA_KEY_ROTATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Which provider holds the node's master key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyProviderKind {
    /// Master keys in the key directory ([`NodeConfig::keys_dir`]).
    #[default]
    File,
    /// The KMS key [`shoal_crypto::KmsConfig::key_id`] at [`NodeConfig::kms`]; no key directory.
    Kms,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: PathBuf::from("shoal-data"),
            keys_dir: PathBuf::from(shoal_crypto::DEFAULT_KEYS_DIR),
            region: "us-east-1".to_string(),
            admin_key: None,
            key_provider: KeyProviderKind::File,
            kms: None,
            data_key_rotation: DEFAULT_DATA_KEY_ROTATION,
            data_key_rotation_check: Duration::from_secs(60),
            cluster: ClusterConfig::default(),
            api: shoal_api::server::ServerConfig::default(),
            tls: None,
        }
    }
}

/// Why a node could not start or an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("data directory {path}: {message}")]
    DataDir { path: PathBuf, message: String },
    #[error("data directory {path}: is in use by another Shoal process (its LOCK file is held)")]
    Locked { path: PathBuf },
    #[error("{0}")]
    Admin(String),
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

impl NodeError {
    /// A storage failure of the file `path` (named in the message).
    pub(crate) fn storage_in(e: shoal_storage::StorageError, path: &Path) -> NodeError {
        NodeError::Storage(e.in_file(path).to_string())
    }
}

/// A node being started.
pub struct Node;

/// A running node.
pub struct RunningNode {
    addr: SocketAddr,
    tls: Option<ApiTlsInfo>,
    /// Reloads the HTTPS certificate files when they change (aborted at shutdown).
    cert_watch: Option<tokio::task::JoinHandle<()>>,
    created_admin_key: Option<AccessKey>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    admin: Arc<control::Admin>,
    /// Set to stop the control socket and the rotation schedule.
    background_stop: tokio::sync::watch::Sender<bool>,
    background: Vec<tokio::task::JoinHandle<()>>,
    data_dir: PathBuf,
    cluster: cluster::start::ClusterRuntime,
    _lock: fs::File,
}

/// Written into the data directory of a node removed from its cluster (`shoal cluster
/// remove`): such a directory never starts again.
pub(crate) const REMOVED_FILE: &str = "REMOVED";

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
    lock.try_lock().map_err(|_| NodeError::Locked {
        path: dir.to_path_buf(),
    })?;
    if let Ok(why) = fs::read_to_string(dir.join(REMOVED_FILE)) {
        return Err(data_dir_error(
            dir,
            format!(
                "belongs to a node removed from its cluster ({}); it cannot serve or rejoin with \
                 this identity: start the node with an empty data directory (and a join token) \
                 to join again as a new member",
                why.trim()
            ),
        ));
    }
    let format_path = dir.join(FORMAT_FILE);
    let mut fresh = false;
    match fs::read_to_string(&format_path) {
        Ok(found) if found.trim() == DATA_FORMAT || found.trim() == UPGRADABLE_DATA_FORMAT => {}
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
                        e.map(|e| {
                            let name = e.file_name();
                            // FORMAT.tmp: a first start that stopped while writing FORMAT.
                            name != LOCK_FILE && name != keys::KEY_FILE && name != "FORMAT.tmp"
                        })
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
            write_format(dir)?;
            fresh = true;
        }
        Err(e) => return Err(data_dir_error(dir, format!("cannot read FORMAT: {e}"))),
    }
    Ok((lock, fresh))
}

/// Records that the data directory is in [`DATA_FORMAT`] once what the upgrade from
/// [`UPGRADABLE_DATA_FORMAT`] needs is done (the Raft log migrated): the FORMAT file is replaced
/// atomically, so an older version refuses the directory from then on.
pub(crate) fn upgrade_data_format(dir: &Path) -> Result<(), NodeError> {
    let format_path = dir.join(FORMAT_FILE);
    match fs::read_to_string(&format_path) {
        Ok(found) if found.trim() == UPGRADABLE_DATA_FORMAT => {}
        _ => return Ok(()),
    }
    write_format(dir)?;
    tracing::info!(data_dir = %dir.display(), format = DATA_FORMAT, "data directory upgraded");
    Ok(())
}

/// Writes the FORMAT file saying [`DATA_FORMAT`], atomically (a temporary file renamed over it)
/// and durably.
fn write_format(dir: &Path) -> Result<(), NodeError> {
    let tmp = dir.join("FORMAT.tmp");
    fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(format!("{DATA_FORMAT}\n").as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, dir.join(FORMAT_FILE)))
        .and_then(|()| fs::File::open(dir).and_then(|d| d.sync_all()))
        .map_err(|e| data_dir_error(dir, format!("cannot write FORMAT: {e}")))
}

/// Opens the master keys and the node's key ring. A new data directory may create the key
/// directory; an existing one requires it (without its keys the data cannot be read).
fn open_key_ring(
    data_dir: &Path,
    keys_dir: &Path,
    fresh: bool,
    kind: KeyProviderKind,
    kms: Option<&shoal_crypto::KmsConfig>,
) -> Result<Arc<shoal_crypto::KeyRing>, NodeError> {
    let crypto = |e: shoal_crypto::CryptoError| NodeError::Crypto(e.to_string());
    let kms_client = kms
        .map(|c| shoal_crypto::KmsClient::new(c).map(Arc::new))
        .transpose()
        .map_err(crypto)?;
    let provider: Arc<dyn shoal_crypto::KeyProvider> = match (kind, &kms_client) {
        (KeyProviderKind::File, _) => Arc::new(
            if fresh {
                shoal_crypto::FileKeyProvider::open_or_create(keys_dir)
            } else {
                shoal_crypto::FileKeyProvider::open(keys_dir)
            }
            .map_err(|e| {
                NodeError::Crypto(format!("{e} (data directory {})", data_dir.display()))
            })?,
        ),
        (KeyProviderKind::Kms, Some(client)) => {
            let key_id = kms.and_then(|c| c.key_id.as_deref()).ok_or_else(|| {
                NodeError::Crypto(
                    "the KMS key provider needs a KMS key id (--kms-key-id / SHOAL_KMS_KEY_ID)"
                        .into(),
                )
            })?;
            Arc::new(shoal_crypto::KmsKeyProvider::new(client.clone(), key_id).map_err(crypto)?)
        }
        (KeyProviderKind::Kms, None) => {
            return Err(NodeError::Crypto(
                "the KMS key provider needs a KMS endpoint (--kms-endpoint / SHOAL_KMS_ENDPOINT)"
                    .into(),
            ));
        }
    };
    let ring =
        shoal_crypto::KeyRing::open_in_with_kms(provider, kms_client, data_dir).map_err(crypto)?;
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
        // A node joining a cluster takes the cluster's access keys rather than making its own.
        let joining = config.cluster.join.is_some() && !dir.join("cluster.json").exists();
        let (lock, ring, keys, created_admin_key) = open_dir(&config, !joining).await?;
        let (listener, addr) = bind(config.listen).await?;
        let tls = match &config.tls {
            None => None,
            Some(tls) => {
                let prepared = {
                    let (tls, dir, key) = (tls.clone(), dir.clone(), ring.node_key());
                    let api = config.listen;
                    tokio::task::spawn_blocking(move || api_tls::prepare(&tls, api, &dir, &key))
                        .await
                        .map_err(|e| NodeError::Crypto(e.to_string()))??
                };
                let (tcp, tls_addr) = bind(tls.listen).await?;
                Some((prepared, tcp, tls_addr))
            }
        };
        let region = config.region.clone();
        let backend = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || {
                backend::NodeBackend::open(&dir, region, vec![addr.to_string()], keys, ring)
            })
            .await
            .map_err(|e| NodeError::Storage(e.to_string()))??
        };
        let backend = Arc::new(backend);
        let cluster = cluster::start::start(Arc::clone(&backend), &config.cluster, addr).await?;
        let admin = Arc::new(control::Admin::new(Arc::clone(&backend)));
        let control_listener = control::bind(&dir)?;
        let api = Arc::new(shoal_api::server::Api::with_config(
            backend,
            config.api.clone(),
        ));
        let mut listeners = vec![shoal_api::server::Listener::http(listener)];
        let mut tls_info = None;
        let mut cert_watch = None;
        if let Some((prepared, tcp, tls_addr)) = tls {
            let acceptor = shoal_api::server::acceptor(Arc::clone(&prepared.resolver))
                .map_err(|e| NodeError::Crypto(format!("API TLS: {e}")))?;
            listeners.push(shoal_api::server::Listener::https(tcp, acceptor));
            if let Some(files) = prepared.watch {
                cert_watch = Some(tokio::spawn(files.watch(
                    Arc::clone(&prepared.resolver),
                    shoal_api::server::tls::CERT_CHECK_INTERVAL,
                )));
            }
            tracing::info!(
                addr = %tls_addr,
                cert = %prepared.cert_path.display(),
                sha256 = %prepared.fingerprint,
                "serving the DynamoDB API over HTTPS too"
            );
            tls_info = Some(ApiTlsInfo {
                addr: tls_addr,
                fingerprint: prepared.fingerprint,
                cert_path: prepared.cert_path,
            });
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(shoal_api::server::serve_all(listeners, api, async move {
            let _ = rx.await;
        }));
        // The API server is essential: a panic in its accept loop fails the node (fail-stop).
        let server = {
            let fail = cluster.cluster.fail_stop.clone();
            tokio::spawn(async move {
                match serving.await {
                    Ok(result) => result,
                    Err(e) => {
                        if e.is_panic() {
                            fail.record("API server", cluster::health::PANICKED);
                        }
                        Err(std::io::Error::other(e))
                    }
                }
            })
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let control = {
            let mut stop = stop_rx.clone();
            tokio::spawn(control::serve(
                control_listener,
                Arc::clone(&admin),
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            ))
        };
        let scheduler = cluster::health::supervise(
            "key rotation schedule",
            cluster.cluster.fail_stop.clone(),
            tokio::spawn(rotation_schedule(
                Arc::clone(&admin),
                config.data_key_rotation,
                config.data_key_rotation_check,
                stop_rx,
            )),
        );
        tracing::info!(%addr, data_dir = %config.data_dir.display(), region = %config.region, "Shoal node serving the DynamoDB API");
        Ok(RunningNode {
            addr,
            tls: tls_info,
            cert_watch,
            created_admin_key,
            shutdown: tx,
            server,
            admin,
            background_stop: stop_tx,
            background: vec![control, scheduler],
            data_dir: dir,
            cluster,
            _lock: lock,
        })
    }
}

/// Binds a TCP listener for the API; returns it with its address.
async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), NodeError> {
    let listen = |source| NodeError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
    let bound = listener.local_addr().map_err(listen)?;
    Ok((listener, bound))
}

/// The open parts of a data directory: its LOCK, key ring and access keys (plus an admin key
/// created now, if any).
type OpenDir = (
    fs::File,
    Arc<shoal_crypto::KeyRing>,
    keys::KeyStore,
    Option<AccessKey>,
);

/// Takes the data directory (creating it if new), opens the master keys and the key ring,
/// completes any data-key rotation a crash interrupted, and opens the access keys.
async fn open_dir(config: &NodeConfig, create_admin: bool) -> Result<OpenDir, NodeError> {
    let dir = config.data_dir.clone();
    let (lock, fresh) = prepare_data_dir(&dir)?;
    let ring = {
        let (dir, keys_dir) = (dir.clone(), config.keys_dir.clone());
        let (kind, kms) = (config.key_provider, config.kms.clone());
        tokio::task::spawn_blocking(move || {
            let ring = open_key_ring(&dir, &keys_dir, fresh, kind, kms.as_ref())?;
            rotation::finish_interrupted_rotations(&dir, &ring)?;
            Ok::<_, NodeError>(ring)
        })
        .await
        .map_err(|e| NodeError::Crypto(e.to_string()))??
    };
    let (keys, created) = keys::KeyStore::open(
        &dir,
        ring.node_key(),
        config.admin_key.as_ref(),
        create_admin,
    )?;
    Ok((lock, ring, keys, created))
}

/// Rotates data keys older than `period`, looking every `check`, until `stop` turns true. A
/// rotation in progress is never interrupted: shutdown waits for it.
async fn rotation_schedule(
    admin: Arc<control::Admin>,
    period: Duration,
    check: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(check.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // Any change (or the sender dropping) means stop.
            _ = stop.changed() => break,
            _ = tick.tick() => {
                if let Err(e) = admin.rotator().rotate_due(period).await {
                    tracing::warn!(error = %e, "scheduled data-key rotation failed; retrying at the next check");
                }
            }
        }
    }
}

/// A data directory opened by an admin command while no node serves it (`shoal keys ...`): the
/// directory's LOCK is held until this is dropped.
pub struct OfflineNode {
    admin: control::Admin,
    _lock: fs::File,
}

impl OfflineNode {
    /// Opens the data directory of `config` (creating it if new, as a node would) without
    /// serving it. No admin key is generated.
    ///
    /// # Errors
    /// As [`Node::start`], notably [`NodeError::Locked`] when a node runs on the directory.
    pub async fn open(config: &NodeConfig) -> Result<OfflineNode, NodeError> {
        let (lock, ring, keys, _) = open_dir(config, false).await?;
        let dir = config.data_dir.clone();
        let region = config.region.clone();
        let backend = tokio::task::spawn_blocking(move || {
            backend::NodeBackend::open(&dir, region, Vec::new(), keys, ring)
        })
        .await
        .map_err(|e| NodeError::Storage(e.to_string()))??;
        Ok(OfflineNode {
            admin: control::Admin::new(Arc::new(backend)),
            _lock: lock,
        })
    }

    /// Admin operations on the directory.
    pub fn admin(&self) -> &control::Admin {
        &self.admin
    }
}

/// Runs an admin request on the data directory of `config`: through the control socket of the
/// node serving it, or, when none does, by opening the directory (see [`OfflineNode`]).
///
/// # Errors
/// The socket fails mid-request, or the directory cannot be opened. A failed request is an
/// `Ok(`[`control::Response::Error`]`)`.
pub async fn admin_request(
    config: &NodeConfig,
    request: control::Request,
) -> Result<control::Response, NodeError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (dir, req) = (config.data_dir.clone(), request.clone());
        let sent = tokio::task::spawn_blocking(move || control::send(&dir, &req))
            .await
            .map_err(|e| NodeError::Admin(e.to_string()))?;
        match sent {
            Ok(response) => return Ok(response),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) => {}
            Err(e) => {
                return Err(NodeError::Admin(format!(
                    "the node's control socket {} failed: {e}",
                    control::socket_path(&config.data_dir).display()
                )));
            }
        }
        // No node answers: open the directory here, unless a node holds it (starting or
        // stopping: its socket appears or the lock goes away shortly).
        match OfflineNode::open(config).await {
            Ok(offline) => return Ok(offline.admin().execute(request).await),
            Err(NodeError::Locked { .. }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

impl RunningNode {
    /// The node-to-node address (mutual TLS).
    pub fn cluster_addr(&self) -> String {
        self.cluster.cluster.cluster_addr.clone()
    }

    /// The join token this start created when it bootstrapped a new cluster (valid for
    /// [`cluster::join_token::DEFAULT_TTL`]); `None` on any other start. A new token comes from
    /// [`control::Request::CreateJoinToken`] (`shoal cluster join-token`).
    pub fn join_token(&self) -> Option<String> {
        self.cluster.first_token.clone()
    }

    /// The node's essential failure, if one happened (see [`cluster::health`]): the node then
    /// reports itself unhealthy and should stop.
    pub fn failure(&self) -> Option<NodeFailure> {
        self.cluster.cluster.fail_stop.current()
    }

    /// Resolves once an essential part of the node failed (the Raft driver stopped on its own,
    /// a background task panicked), with what failed. The binary then exits non-zero so that a
    /// supervisor restarts it.
    pub async fn failed(&self) -> NodeFailure {
        self.cluster.cluster.fail_stop.failed().await
    }

    /// The address the API is bound to (plain HTTP).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTPS listener, when [`NodeConfig::tls`] asked for one: its address, its
    /// certificate's fingerprint and file.
    pub fn tls(&self) -> Option<&ApiTlsInfo> {
        self.tls.as_ref()
    }

    /// Admin operations (access keys, key rotation) on this node, as the control socket runs
    /// them.
    pub fn admin(&self) -> &Arc<control::Admin> {
        &self.admin
    }

    /// The admin key generated on this start, if the data directory had none.
    pub fn created_admin_key(&self) -> Option<&AccessKey> {
        self.created_admin_key.as_ref()
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 10 s), and closes the
    /// data directory.
    pub async fn shutdown(self) {
        // Leaderships first, while the API still serves: writes in flight follow their entries.
        self.cluster.hand_off().await;
        let _ = self.shutdown.send(());
        if let Some(watch) = &self.cert_watch {
            watch.abort();
        }
        match self.server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "server stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "server task failed"),
        }
        let _ = self.background_stop.send(true);
        for task in self.background {
            let _ = task.await;
        }
        // A rotation requested through the socket runs in its connection's task: let it finish.
        let _quiet = self.admin.rotator().quiesce().await;
        self.cluster.shutdown().await;
        let _ = fs::remove_file(control::socket_path(&self.data_dir));
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
