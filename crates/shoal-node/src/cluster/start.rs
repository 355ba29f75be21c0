//! Bringing a node into its cluster at start: load the identity (or bootstrap a new cluster, or
//! join one with a token), start the Raft driver and the cluster RPC server, create the
//! metadata group, and start the reconciler and placement loops.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use shoal_meta::{Member, MetaCommand};
use shoal_raft::{GroupFactory, GroupId, RaftNode, StateMachine};
use shoal_rpc::{JoinToken, RpcClient, RpcServer};

use super::health::FailStop;
use super::identity::Identity;
use super::rpc::{NodeRpc, request_join};
use super::sm::{MetaSm, Pending};
use super::{Cluster, ClusterConfig, RpcTransport, group_init};
use crate::NodeError;
use crate::backend::NodeBackend;

/// The running cluster parts of a node (stopped by [`ClusterRuntime::shutdown`]).
pub(crate) struct ClusterRuntime {
    pub(crate) cluster: Arc<Cluster>,
    raft: RaftNode,
    server: RpcServer,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    /// The join token created when this start bootstrapped a new cluster. Secret.
    pub(crate) first_token: Option<String>,
}

impl ClusterRuntime {
    /// Hands every group this node leads to another voter (up to 3 s), so that stopping it
    /// fails no request: called first when the node stops, while its API still serves.
    pub(crate) async fn hand_off(&self) {
        let left =
            super::placement::hand_off_leadership(&self.cluster, Duration::from_secs(3)).await;
        if left > 0 {
            tracing::warn!(
                groups = left,
                "stopping while still leading (no caught-up voter took over in time)"
            );
        }
    }

    pub(crate) async fn shutdown(self) {
        // Calls other nodes forwarded here finish first (new ones are refused as not run, and
        // the caller asks another replica).
        let running = self.cluster.data_calls.close(Duration::from_secs(10)).await;
        if running > 0 {
            tracing::warn!(
                calls = running,
                "stopping with forwarded calls still running"
            );
        }
        // The RPC server abandons replies not yet written when it stops; a refusal ("not run
        // here") that is lost that way looks to a forwarding node like a write whose outcome is
        // unknown. Keep refusing for a moment so those replies go out and callers move on.
        tokio::time::sleep(REFUSAL_GRACE).await;
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.abort();
        }
        self.server.shutdown().await;
        let raft = self.raft;
        let _ = tokio::task::spawn_blocking(move || raft.shutdown()).await;
    }
}

/// How long a stopping node keeps its RPC server up after it stopped running forwarded calls.
const REFUSAL_GRACE: Duration = Duration::from_millis(300);

/// Rebuilds the state machines of groups found in the Raft log at start.
struct Factory {
    backend: Arc<NodeBackend>,
    pending: Arc<Pending>,
    snapshots: Arc<super::snapshot::Snapshots>,
    /// The metadata state machine, handed out once.
    meta: Mutex<Option<MetaSm>>,
}

impl GroupFactory for Factory {
    fn open(&self, group: GroupId) -> Option<Box<dyn StateMachine>> {
        if group == shoal_raft::META_GROUP {
            return self
                .meta
                .lock()
                .take()
                .map(|m| Box::new(m) as Box<dyn StateMachine>);
        }
        let sm = self
            .backend
            .partition_sm_for_group(group, &self.pending, &self.snapshots)?;
        self.backend.groups.lock().insert(group);
        Some(Box::new(sm))
    }
}

fn cluster_err(e: impl std::fmt::Display) -> NodeError {
    NodeError::Admin(format!("cluster: {e}"))
}

/// A free port on `addr`'s host when its port is 0 (the address is announced to other nodes,
/// so it must be known before the server starts).
fn concrete(addr: SocketAddr) -> Result<SocketAddr, NodeError> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let l =
        std::net::TcpListener::bind(addr).map_err(|source| NodeError::Listen { addr, source })?;
    l.local_addr()
        .map_err(|source| NodeError::Listen { addr, source })
}

/// Loads this node's identity, or creates it: by joining `config.join`, or as a new cluster.
/// Returns the identity, whether the cluster is new, and the members known from a join.
async fn identity(
    backend: &NodeBackend,
    config: &ClusterConfig,
    api_addr: &str,
    cluster_addr: &str,
) -> Result<(Identity, bool, Vec<Member>), NodeError> {
    let key = backend.ring.node_key();
    if let Some(id) = Identity::load(&backend.data_dir, &key)? {
        if config.join.is_some() {
            tracing::info!("this data directory already belongs to a cluster; --join is ignored");
        }
        return Ok((id, false, Vec::new()));
    }
    let Some(join) = &config.join else {
        let id = Identity::bootstrap()?;
        id.save(&backend.data_dir, &key)?;
        return Ok((id, true, Vec::new()));
    };
    let token: JoinToken = config
        .join_token
        .as_deref()
        .ok_or_else(|| cluster_err("--join needs the cluster's join token (--join-token-file, SHOAL_JOIN_TOKEN or --join-token; `shoal cluster join-token` on a member creates one)"))?
        .parse()
        .map_err(|e| cluster_err(format!("the join token is not usable: {e}")))?;
    if token.is_expired(shoal_rpc::pki::unix_now()) {
        return Err(cluster_err(format!(
            "the join token expired at {}; create a new one with `shoal cluster join-token` on a member",
            super::join_token::rfc3339(token.expires_at)
        )));
    }
    let resp = request_join(join, &token, api_addr.to_string(), cluster_addr.to_string())
        .await
        .map_err(|e| cluster_err(format!("joining through {join}: {e}")))?;
    let id = Identity {
        node_id: resp.node_id,
        cluster_id: resp.cluster_id,
        ca: shoal_rpc::ClusterCa {
            cert_pem: resp.ca_cert_pem,
            key_pem: resp.ca_key_pem,
        },
        cert: shoal_rpc::NodeCert {
            cert_pem: resp.cert_pem,
            key_pem: resp.key_pem,
        },
    };
    id.save(&backend.data_dir, &key)?;
    tracing::info!(node_id = id.node_id, cluster = %id.cluster_id, "joined the cluster");
    Ok((id, false, resp.members))
}

/// Starts the node's cluster parts. `api_addr` is the bound API address.
pub(crate) async fn start(
    backend: Arc<NodeBackend>,
    config: &ClusterConfig,
    api_addr: SocketAddr,
) -> Result<ClusterRuntime, NodeError> {
    let listen = concrete(config.listen)?;
    let (api_addr, cluster_addr) = (api_addr.to_string(), listen.to_string());
    let (identity, fresh, joined_members) =
        identity(&backend, config, &api_addr, &cluster_addr).await?;
    let node_id = identity.node_id;
    let tls = identity.tls()?;
    let rpc = RpcClient::new(&tls);
    let pending = Pending::new(node_id);
    let snapshots = super::snapshot::Snapshots::new(node_id, Arc::clone(&backend.metrics));
    let key = backend.ring.node_key();
    let meta_sm = MetaSm::open(
        &backend.data_dir.join("meta.db"),
        key.as_bytes(),
        Arc::clone(&pending),
    )?;
    let meta = Arc::clone(&meta_sm.state);
    let meta_applied = meta_sm.applied_tx.subscribe();
    let peers: Arc<RwLock<HashMap<u64, String>>> = Arc::default();
    {
        let mut p = peers.write();
        for m in meta.read().members.values().chain(joined_members.iter()) {
            p.insert(m.id, m.cluster_addr.clone());
        }
    }
    let transport = Arc::new(RpcTransport {
        node_id,
        rpc: rpc.clone(),
        peers: Arc::clone(&peers),
        runtime: tokio::runtime::Handle::current(),
    });
    let factory = Arc::new(Factory {
        backend: Arc::clone(&backend),
        pending: Arc::clone(&pending),
        snapshots: Arc::clone(&snapshots),
        meta: Mutex::new(Some(meta_sm)),
    });
    let (failure, log_failure) = tokio::sync::watch::channel(None);
    let raft = {
        let (dir, key) = (backend.data_dir.clone(), *key.as_bytes());
        let factory: Arc<dyn GroupFactory> = factory.clone();
        let metrics = Arc::clone(&backend.metrics);
        tokio::task::spawn_blocking(move || {
            super::start_raft(&dir, &key, node_id, transport, factory, failure, metrics)
        })
        .await
        .map_err(cluster_err)??
    };
    let cluster = Arc::new(Cluster {
        node_id,
        identity,
        raft: raft.handle(),
        rpc,
        pending,
        snapshots,
        meta,
        meta_applied,
        started: Instant::now(),
        api_addr: api_addr.clone(),
        cluster_addr: cluster_addr.clone(),
        peers,
        log_failure,
        fail_stop: FailStop::default(),
        data_calls: super::Gate::default(),
        liveness: super::liveness::Liveness::new(config.dead_node_timeout),
        metrics: Arc::clone(&backend.metrics),
        throttles: crate::throttle::Throttles::default(),
    });
    let _ = backend.cluster.set(Arc::clone(&cluster));
    // The metadata group: created here the first time (a restart finds it in the log).
    let unopened = factory.meta.lock().take();
    if let Some(meta_sm) = unopened {
        let init = if fresh {
            group_init(node_id, &[node_id])
        } else {
            shoal_raft::GroupInit::Join
        };
        cluster
            .raft
            .create_group(shoal_raft::META_GROUP, init, Box::new(meta_sm))
            .await
            .map_err(cluster_err)?;
    }
    super::campaign_sole_groups(&cluster).await;
    let server = RpcServer::bind(
        listen,
        &tls,
        Arc::new(NodeRpc {
            cluster: Arc::clone(&cluster),
            backend: Arc::downgrade(&backend),
        }),
    )
    .await
    .map_err(|e| cluster_err(format!("cannot serve the cluster address {listen}: {e}")))?;
    if fresh {
        let first = Member {
            id: node_id,
            api_addr: api_addr.clone(),
            cluster_addr: cluster_addr.clone(),
            joined_at: crate::catalog::now_secs(),
            state: shoal_meta::MemberState::Active,
            instance: String::new(),
            format: shoal_meta::META_FORMAT_VERSION,
        };
        let init = MetaCommand::Init {
            cluster_id: cluster.identity.cluster_id.clone(),
            first,
        };
        cluster.meta_propose(init).await.map_err(cluster_err)?;
    }
    let first_token = if fresh {
        Some(bootstrap_token(&cluster, &cluster_addr).await?)
    } else {
        None
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let fail = cluster.fail_stop.clone();
    let tasks = vec![
        super::health::watch_raft(cluster.raft.clone(), fail.clone()),
        super::health::supervise(
            "reconciler",
            fail.clone(),
            spawn_reconciler(Arc::clone(&backend), Arc::clone(&cluster), stop_rx.clone()),
        ),
        super::health::supervise(
            "placement",
            fail,
            super::spawn_placement(Arc::clone(&cluster), stop_rx.clone()),
        ),
        super::health::supervise(
            "splitter",
            cluster.fail_stop.clone(),
            crate::split::spawn_splitter(
                Arc::clone(&backend),
                Arc::clone(&cluster),
                config.split_size_bytes,
                stop_rx.clone(),
            ),
        ),
        super::health::supervise(
            "transaction recovery",
            cluster.fail_stop.clone(),
            crate::tx_recovery::spawn_tx_recovery(
                Arc::clone(&backend),
                Arc::clone(&cluster),
                stop_rx.clone(),
            ),
        ),
        super::health::supervise(
            "ttl sweeper",
            cluster.fail_stop.clone(),
            crate::ttl::spawn_ttl_sweeper(
                Arc::clone(&backend),
                Arc::clone(&cluster),
                config.ttl_sweep_interval,
                stop_rx.clone(),
            ),
        ),
        super::health::supervise(
            "stream trimmer",
            cluster.fail_stop.clone(),
            crate::streams::spawn_trimmer(Arc::clone(&backend), stop_rx.clone()),
        ),
        spawn_address_update(Arc::clone(&cluster)),
        super::read_units::spawn_reporter(Arc::clone(&cluster), stop_rx.clone()),
    ];
    Ok(ClusterRuntime {
        cluster,
        raft,
        server,
        tasks,
        stop,
        first_token,
    })
}

/// Creates the new cluster's first join token (valid for the default period) and prints it on
/// stdout, never in the log.
async fn bootstrap_token(cluster: &Cluster, cluster_addr: &str) -> Result<String, NodeError> {
    let created = super::join_token::create(cluster, super::join_token::DEFAULT_TTL).await?;
    println!("join token: {}", created.token);
    println!(
        "  valid until {} (`shoal cluster join-token [--ttl 24h]` on a member creates a new one and revokes this one)",
        super::join_token::rfc3339(created.expires_at)
    );
    tracing::info!(
        "new cluster bootstrapped; other nodes join with `shoal start --join {cluster_addr} --join-token-file FILE` (the join token was printed on stdout)"
    );
    Ok(created.token)
}

/// Keeps the local tables in line with the catalog: after every metadata change, and every
/// second (to retry what failed); also refreshes the peer address book.
fn spawn_reconciler(
    backend: Arc<NodeBackend>,
    cluster: Arc<Cluster>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut applied = cluster.meta_applied.clone();
    tokio::spawn(async move {
        loop {
            {
                let meta = cluster.meta();
                let mut peers = cluster.peers.write();
                for m in meta.members.values() {
                    peers.insert(m.id, m.cluster_addr.clone());
                }
            }
            backend.reconcile().await;
            tokio::select! {
                _ = stop.changed() => break,
                _ = applied.changed() => {}
                () = backend.reconcile_soon.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    })
}

/// Records this node's addresses in the membership if they changed (restarted on other ports),
/// and the metadata format its binary reads if the membership has an older one (upgraded).
fn spawn_address_update(cluster: Arc<Cluster>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let member = cluster.meta().members.get(&cluster.node_id).cloned();
            match member {
                // A dead member's address may belong to a new node now: leave it.
                Some(m)
                    if m.state == shoal_meta::MemberState::Dead
                        || (m.api_addr == cluster.api_addr
                            && m.cluster_addr == cluster.cluster_addr
                            && m.format >= shoal_meta::META_FORMAT_VERSION) =>
                {
                    return;
                }
                Some(_) => {
                    let update = MetaCommand::UpdateMember {
                        id: cluster.node_id,
                        api_addr: cluster.api_addr.clone(),
                        cluster_addr: cluster.cluster_addr.clone(),
                        format: Some(shoal_meta::META_FORMAT_VERSION),
                    };
                    if cluster.meta_propose(update).await.is_ok() {
                        return;
                    }
                }
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}
