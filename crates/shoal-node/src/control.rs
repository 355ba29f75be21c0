//! The local control socket: how `shoal keys ...` reaches a running node.
//!
//! A running node listens on the Unix domain socket `<data-dir>/`[`SOCKET_FILE`] (mode 0600,
//! so only the node's user can connect; replaced at start if a crashed node left it, removed on
//! shutdown). The protocol is one JSON [`Request`] line, answered by one JSON [`Response`] line,
//! then the connection closes. Admin commands therefore never write the data or key
//! directories from a second process while a node owns them: the node does the work.
//!
//! When no node runs, `shoal keys` opens the data directory itself (taking its LOCK) and runs
//! the same [`Admin::execute`].

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::NodeError;
use crate::backend::NodeBackend;
use crate::keys::KeyInfo;
use crate::rotation::{DataKeyRotated, MasterRotated, Rotator};

/// The socket's file name inside the data directory.
pub const SOCKET_FILE: &str = "control.sock";

/// Longest request line accepted.
const MAX_REQUEST: u64 = 64 * 1024;

/// An admin request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Create an access key, with an IAM policy document or without one (full access); the
    /// reply carries its secret (the only time it is shown).
    CreateKey {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy: Option<String>,
    },
    /// Set the IAM policy of an access key (`None`: remove it, full access again).
    SetKeyPolicy {
        /// The access key id.
        id: String,
        /// The policy document.
        #[serde(default)]
        policy: Option<String>,
    },
    /// List access keys (no secrets).
    ListKeys,
    /// Delete an access key.
    DeleteKey {
        /// The access key id.
        id: String,
    },
    /// Rotate the master key.
    RotateMaster,
    /// Rotate the data key of one table, or of every table.
    RotateData {
        /// The table name; `None` for every table.
        #[serde(default)]
        table: Option<String>,
    },
    /// Create a new join token, valid cluster-wide for `ttl_secs` (default 24 hours); the
    /// previous one is revoked. Needs the running node (the cluster takes the change).
    CreateJoinToken {
        /// Validity in seconds; `None` for the default.
        #[serde(default)]
        ttl_secs: Option<u64>,
    },
}

/// The answer to a [`Request`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// [`Request::CreateKey`].
    KeyCreated {
        /// The new access key id.
        id: String,
        /// Its secret.
        secret: String,
    },
    /// [`Request::ListKeys`].
    Keys {
        /// Every key.
        keys: Vec<KeyInfo>,
    },
    /// [`Request::DeleteKey`].
    KeyDeleted {
        /// Whether a key with that id existed.
        existed: bool,
    },
    /// [`Request::SetKeyPolicy`].
    PolicySet {
        /// Whether a key with that id existed.
        existed: bool,
    },
    /// [`Request::RotateMaster`].
    MasterRotated(MasterRotated),
    /// [`Request::RotateData`].
    DataRotated {
        /// The tables rotated.
        tables: Vec<DataKeyRotated>,
    },
    /// [`Request::CreateJoinToken`].
    JoinTokenCreated {
        /// The token (`SHOAL2-...`): secret, shown only this once.
        token: String,
        /// Seconds since the Unix epoch after which it admits no node.
        expires_at: u64,
    },
    /// The request failed.
    Error {
        /// Why.
        message: String,
    },
}

impl Drop for Response {
    fn drop(&mut self) {
        match self {
            Response::KeyCreated { secret, .. }
            | Response::JoinTokenCreated { token: secret, .. } => {
                zeroize::Zeroize::zeroize(secret);
            }
            _ => {}
        }
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Response::KeyCreated { id, .. } => f
                .debug_struct("KeyCreated")
                .field("id", id)
                .field("secret", &"<redacted>")
                .finish(),
            Response::Keys { keys } => f.debug_struct("Keys").field("keys", keys).finish(),
            Response::KeyDeleted { existed } => f
                .debug_struct("KeyDeleted")
                .field("existed", existed)
                .finish(),
            Response::PolicySet { existed } => f
                .debug_struct("PolicySet")
                .field("existed", existed)
                .finish(),
            Response::MasterRotated(r) => f.debug_tuple("MasterRotated").field(r).finish(),
            Response::DataRotated { tables } => f
                .debug_struct("DataRotated")
                .field("tables", tables)
                .finish(),
            Response::JoinTokenCreated { expires_at, .. } => f
                .debug_struct("JoinTokenCreated")
                .field("token", &"<redacted>")
                .field("expires_at", expires_at)
                .finish(),
            Response::Error { message } => {
                f.debug_struct("Error").field("message", message).finish()
            }
        }
    }
}

/// Runs admin requests against an open data directory (a running node's, or one `shoal keys`
/// opened itself).
#[derive(Debug)]
pub struct Admin {
    rotator: Rotator,
}

impl Admin {
    /// Admin operations on `backend`.
    pub fn new(backend: Arc<NodeBackend>) -> Admin {
        Admin {
            rotator: Rotator::new(backend),
        }
    }

    /// The key rotator (also driven by the schedule).
    pub fn rotator(&self) -> &Rotator {
        &self.rotator
    }

    /// Proposes an access-key change to the cluster (a node without a cluster, i.e. an admin
    /// command on a stopped node, keeps it local: the node offers it when it next starts).
    /// `Ok(true)` when the cluster knew the key.
    async fn share(&self, command: shoal_meta::MetaCommand) -> Result<bool, NodeError> {
        let Some(cluster) = self.rotator.backend().cluster.get().cloned() else {
            return Ok(false);
        };
        match cluster.meta_propose(command).await {
            Ok(shoal_meta::MetaResult::NotFound) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(NodeError::Keys(format!(
                "the cluster did not take the change: {e}"
            ))),
        }
    }

    /// Whether the cluster (if any) can take access-key policy changes now.
    fn policies_shareable(&self) -> bool {
        self.rotator
            .backend()
            .cluster
            .get()
            .is_none_or(|c| crate::keys::policies_shareable(&c.meta()))
    }

    async fn create_join_token(&self, ttl_secs: Option<u64>) -> Result<Response, NodeError> {
        let Some(cluster) = self.rotator.backend().cluster.get().cloned() else {
            return Err(NodeError::Admin(
                "a join token is created by the running node (the whole cluster must take it): start the node on this data directory first".into(),
            ));
        };
        let ttl = ttl_secs.map_or(crate::cluster::join_token::DEFAULT_TTL, Duration::from_secs);
        let created = crate::cluster::join_token::create(&cluster, ttl).await?;
        Ok(Response::JoinTokenCreated {
            token: created.token.clone(),
            expires_at: created.expires_at,
        })
    }

    /// Runs one request; failures become [`Response::Error`].
    pub async fn execute(&self, request: Request) -> Response {
        let keys = &self.rotator.backend().keys;
        let result = match request {
            Request::CreateKey { policy } if policy.is_some() && !self.policies_shareable() => {
                Err(crate::keys::policies_not_shareable())
            }
            Request::SetKeyPolicy { .. } if !self.policies_shareable() => {
                Err(crate::keys::policies_not_shareable())
            }
            Request::CreateKey { policy } => match keys.create_with_policy(policy.as_deref()) {
                // Shared with the cluster (policy included) before it is shown, so it works on
                // every node, restricted from its first request.
                Ok(k) => {
                    let mut shared = self
                        .share(shoal_meta::MetaCommand::PutAccessKey {
                            id: k.id.clone(),
                            secret: k.secret.clone(),
                            admin: false,
                        })
                        .await;
                    if shared.is_ok() && policy.is_some() {
                        shared = self
                            .share(shoal_meta::MetaCommand::SetAccessKeyPolicy {
                                id: k.id.clone(),
                                policy,
                            })
                            .await;
                    }
                    shared.map(|_| Response::KeyCreated {
                        id: k.id.clone(),
                        secret: k.secret.clone(),
                    })
                }
                Err(e) => Err(e),
            },
            Request::SetKeyPolicy { id, policy } => {
                // Validated before the cluster sees it; then the cluster, then this node's file.
                match policy.as_deref().map(crate::keys::parse_policy).transpose() {
                    Err(e) => Err(e),
                    Ok(_) => {
                        let shared = self
                            .share(shoal_meta::MetaCommand::SetAccessKeyPolicy {
                                id: id.clone(),
                                policy: policy.clone(),
                            })
                            .await;
                        match shared {
                            Err(e) => Err(e),
                            Ok(in_cluster) => keys.set_policy(&id, policy.as_deref()).map(|here| {
                                Response::PolicySet {
                                    existed: here || in_cluster,
                                }
                            }),
                        }
                    }
                }
            }
            Request::ListKeys => Ok(Response::Keys { keys: keys.list() }),
            Request::DeleteKey { id } => {
                let shared = self
                    .share(shoal_meta::MetaCommand::DeleteAccessKey { id: id.clone() })
                    .await;
                match (shared, keys.delete(&id)) {
                    (Err(e), _) | (_, Err(e)) => Err(e),
                    (Ok(in_cluster), Ok(here)) => Ok(Response::KeyDeleted {
                        existed: here || in_cluster,
                    }),
                }
            }
            Request::RotateMaster => self
                .rotator
                .rotate_master()
                .await
                .map(Response::MasterRotated),
            Request::RotateData { table } => self
                .rotator
                .rotate_data(table.as_deref())
                .await
                .map(|tables| Response::DataRotated { tables }),
            Request::CreateJoinToken { ttl_secs } => self.create_join_token(ttl_secs).await,
        };
        result.unwrap_or_else(|e| Response::Error {
            message: e.to_string(),
        })
    }
}

/// The socket path of a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// Binds the control socket of `data_dir` (replacing a stale one: the caller holds the LOCK),
/// mode 0600.
///
/// # Errors
/// The socket cannot be created (e.g. its path is longer than the ~107 bytes Unix sockets allow).
pub(crate) fn bind(data_dir: &Path) -> Result<tokio::net::UnixListener, NodeError> {
    let path = socket_path(data_dir);
    let err = |e: std::io::Error| NodeError::DataDir {
        path: data_dir.to_path_buf(),
        message: format!("cannot create the control socket {}: {e}", path.display()),
    };
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let listener = tokio::net::UnixListener::bind(&path).map_err(err)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
}

/// Serves the control socket until `stop` resolves; each connection gets its own task.
pub(crate) async fn serve(
    listener: tokio::net::UnixListener,
    admin: Arc<Admin>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let admin = Arc::clone(&admin);
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, &admin).await {
                            tracing::warn!(error = %e, "control connection failed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn handle(stream: tokio::net::UnixStream, admin: &Admin) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST))
        .read_line(&mut line)
        .await?;
    let response = match serde_json::from_str::<Request>(line.trim()) {
        Ok(request) => {
            tracing::info!(?request, "control request");
            admin.execute(request).await
        }
        Err(e) => Response::Error {
            message: format!("invalid control request: {e}"),
        },
    };
    let mut out =
        zeroize::Zeroizing::new(serde_json::to_vec(&response).map_err(std::io::Error::other)?);
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

/// Sends `request` to the node serving `data_dir` and waits for its answer (blocking).
///
/// # Errors
/// [`std::io::ErrorKind::NotFound`] / `ConnectionRefused` when no node listens there; other
/// I/O errors; an answer that is not a [`Response`].
pub fn send(data_dir: &Path, request: &Request) -> std::io::Result<Response> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket_path(data_dir))?;
    let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = zeroize::Zeroizing::new(String::new());
    BufReader::new(stream).read_line(&mut answer)?;
    serde_json::from_str(answer.trim()).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("invalid answer from the node: {e}"),
        )
    })
}
