//! [`TestNode`]: a Shoal node running in-process on a real socket, in its own temp directory —
//! or, with `SHOAL_TEST_CLUSTER=N` (N ≥ 2) in the environment, an in-process N-node cluster
//! whose clients talk to node 2 (see [`TestNode`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;
use tempfile::TempDir;

use crate::raw::{RawConnection, RawRequest, Signing};

/// Access key id of the admin key every [`TestNode`] is started with.
pub const ADMIN_KEY_ID: &str = "AKIDSHOALTEST0000001";
/// Secret of the admin key every [`TestNode`] is started with.
pub const ADMIN_SECRET: &str = "shoal-test-secret-key-0000000000000000000";
/// Region every test node runs in.
pub const REGION: &str = "us-east-1";

/// The environment variable that selects cluster mode: `SHOAL_TEST_CLUSTER=3` makes every
/// [`TestNode`] a 3-node in-process cluster.
pub const CLUSTER_ENV: &str = "SHOAL_TEST_CLUSTER";

/// How long [`TestNode`] waits for a cluster to form (or re-form after a restart).
pub const CLUSTER_FORM_TIMEOUT: Duration = Duration::from_secs(60);

/// The file in a cluster-mode [`TestNode`]'s directory that records each member's ports, so
/// [`TestNode::start_in`] restarts the members where the others expect them.
const PORTS_FILE: &str = "test-cluster-ports";

/// The number of nodes a [`TestNode`] starts: `SHOAL_TEST_CLUSTER` when it is a number ≥ 2,
/// else 1 (single-node mode, the default).
///
/// # Panics
/// If `SHOAL_TEST_CLUSTER` is set but is not a number.
pub fn test_cluster_size() -> usize {
    match std::env::var(CLUSTER_ENV) {
        Ok(v) if !v.trim().is_empty() => {
            let n: usize = v
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{CLUSTER_ENV}={v:?} is not a node count: {e}"));
            n.max(1)
        }
        _ => 1,
    }
}

/// True in cluster mode ([`test_cluster_size`] > 1).
pub fn cluster_mode() -> bool {
    test_cluster_size() > 1
}

/// Skips the calling test in cluster mode: prints why and returns true (the test then returns).
/// For tests that inspect single-node internals.
pub fn skip_in_cluster_mode(test: &str, reason: &str) -> bool {
    if cluster_mode() {
        eprintln!("SKIPPED in cluster mode ({CLUSTER_ENV}): {test}: {reason}");
        true
    } else {
        false
    }
}

/// One member of a [`TestNode`].
struct Member {
    node: Option<shoal_node::RunningNode>,
    /// Holds `data/` and `keys/`.
    base: PathBuf,
    /// API listen address (port 0 in single-node mode: a new port on every start).
    api: SocketAddr,
    /// Cluster listen address (port 0 in single-node mode).
    cluster: SocketAddr,
}

/// A Shoal node started in-process (`shoal_node::Node::start`) on 127.0.0.1, with its data in a
/// temporary directory that is removed when the `TestNode` is dropped, and the admin key
/// [`ADMIN_KEY_ID`]/[`ADMIN_SECRET`].
///
/// **Cluster mode** (`SHOAL_TEST_CLUSTER=N`, N ≥ 2): [`TestNode::start`] starts node 1
/// (bootstrap), then nodes 2..=N joining it, and waits until node 1's `GET /status` lists N
/// nodes, every group has a leader and min(N, 3) voters, and every node sees a leader for every
/// group. [`TestNode::client`], [`TestNode::addr`], [`TestNode::data_dir`] etc. are node 2's (a
/// follower of most groups, since node 1 bootstraps everything, so writes are forwarded).
/// Node 2's data and keys are in `<dir>/data` and `<dir>/keys` as in single-node mode; node
/// `i`'s are in `<dir>/node<i>/`. Every member has the same admin key. Members listen on fixed
/// ports (recorded in the directory), so [`TestNode::restart`] restarts node 2 where the others
/// expect it, and [`TestNode::shutdown`] + [`TestNode::start_in`] restart the whole cluster.
pub struct TestNode {
    members: Vec<Member>,
    /// Index in `members` of the node clients talk to.
    client: usize,
    dir: TempDir,
}

impl TestNode {
    /// Starts a node (or, in cluster mode, a cluster) in a fresh temporary directory.
    ///
    /// # Panics
    /// If the node cannot start (or the cluster does not form).
    pub async fn start() -> TestNode {
        let dir = tempfile::tempdir().expect("temp dir");
        TestNode::start_in(dir).await
    }

    /// Starts a node whose data directory is `dir` (which may hold data of an earlier node).
    /// In cluster mode: restarts the cluster that was shut down in `dir`, or forms a new one
    /// when `dir` holds none.
    ///
    /// # Panics
    /// If the node cannot start (or the cluster does not form).
    pub async fn start_in(dir: TempDir) -> TestNode {
        let n = test_cluster_size();
        if n <= 1 {
            let mut member = Member {
                node: None,
                base: dir.path().to_path_buf(),
                api: "127.0.0.1:0".parse().expect("listen addr"),
                cluster: shoal_node::ClusterConfig::default().listen,
            };
            member.node = Some(start_member(&member, None).await);
            return TestNode {
                members: vec![member],
                client: 0,
                dir,
            };
        }
        match read_ports(dir.path()) {
            Some(ports) => TestNode::restart_cluster(dir, ports).await,
            None => TestNode::form_cluster(dir, n).await,
        }
    }

    /// Bootstraps node 1 in `dir/node1` and joins nodes 2..=n to it.
    async fn form_cluster(dir: TempDir, n: usize) -> TestNode {
        let mut members: Vec<Member> = (1..=n)
            .map(|i| Member {
                node: None,
                base: member_base(dir.path(), i),
                api: reserve_addr(),
                cluster: reserve_addr(),
            })
            .collect();
        write_ports(dir.path(), &members);
        let first = start_member(&members[0], None).await;
        let join = (first.cluster_addr(), first.join_token().unwrap_or_default());
        members[0].node = Some(first);
        for m in members.iter_mut().skip(1) {
            m.node = Some(start_member(m, Some(join.clone())).await);
        }
        let node = TestNode {
            members,
            client: 1,
            dir,
        };
        node.wait_formed().await;
        node
    }

    /// Starts every member of the cluster shut down in `dir` at once (no member can finish
    /// starting alone if it waits for a quorum).
    async fn restart_cluster(dir: TempDir, ports: Vec<(SocketAddr, SocketAddr)>) -> TestNode {
        let members: Vec<Member> = ports
            .into_iter()
            .enumerate()
            .map(|(i, (api, cluster))| Member {
                node: None,
                base: member_base(dir.path(), i + 1),
                api,
                cluster,
            })
            .collect();
        // `Node::start` is not `Send`: poll the starts concurrently on this task.
        let starts = members
            .iter()
            .map(|m| Box::pin(shoal_node::Node::start(member_config(m, None))))
            .collect();
        let mut started = Vec::new();
        for (m, r) in members.iter().zip(join_all(starts).await) {
            match r {
                Ok(node) => started.push(node),
                Err(e) => panic!("restart in-process node in {}: {e}", m.base.display()),
            }
        }
        let members = members
            .into_iter()
            .zip(started)
            .map(|(m, node)| Member {
                node: Some(node),
                ..m
            })
            .collect();
        let node = TestNode {
            members,
            client: 1,
            dir,
        };
        node.wait_formed().await;
        node
    }

    /// The number of nodes (1 in single-node mode).
    pub fn cluster_size(&self) -> usize {
        self.members.len()
    }

    fn client_member(&self) -> &Member {
        &self.members[self.client]
    }

    fn running(&self, m: &Member) -> SocketAddr {
        m.node
            .as_ref()
            .map(shoal_node::RunningNode::local_addr)
            .unwrap_or(m.api)
    }

    /// The address the node (in cluster mode: node 2) listens on.
    pub fn addr(&self) -> SocketAddr {
        self.running(self.client_member())
    }

    /// The API addresses of all members, node 1 first.
    pub fn member_addrs(&self) -> Vec<SocketAddr> {
        self.members.iter().map(|m| self.running(m)).collect()
    }

    /// `http://<addr>`, the endpoint URL clients use.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The data directory (in cluster mode: node 2's).
    pub fn data_dir(&self) -> PathBuf {
        self.client_member().base.join("data")
    }

    /// An SDK client authenticated with the admin key, retries disabled.
    pub fn client(&self) -> Client {
        client_for(&self.endpoint(), ADMIN_KEY_ID, ADMIN_SECRET)
    }

    /// A DynamoDB Streams client authenticated with the admin key, retries disabled.
    pub fn streams_client(&self) -> aws_sdk_dynamodbstreams::Client {
        streams_client_for(&self.endpoint(), ADMIN_KEY_ID, ADMIN_SECRET)
    }

    /// An SDK client using the given credentials, retries disabled.
    pub fn client_with_key(&self, key_id: &str, secret: &str) -> Client {
        client_for(&self.endpoint(), key_id, secret)
    }

    /// Signing settings for raw requests with the admin key.
    pub fn signing(&self) -> Signing {
        Signing::new(ADMIN_KEY_ID, ADMIN_SECRET)
    }

    /// A raw, admin-signed DynamoDB request for `operation` with a JSON body.
    pub fn signed_request(&self, operation: &str, body: &serde_json::Value) -> RawRequest {
        RawRequest::dynamodb(self.addr(), operation, body.to_string()).signed(&self.signing())
    }

    /// Stops the node and starts a new one on the same data directory (the new node may listen
    /// on a different port; clients must be recreated with [`TestNode::client`]).
    ///
    /// In cluster mode only node 2 (the one clients talk to) restarts, on the same ports, while
    /// the others keep running; this returns once the cluster has re-formed and node 2 has
    /// caught up with every group's leader.
    ///
    /// # Panics
    /// If the node cannot restart.
    pub async fn restart(&mut self) {
        let i = self.client;
        if let Some(node) = self.members[i].node.take() {
            node.shutdown().await;
        }
        let node = start_member(&self.members[i], None).await;
        self.members[i].node = Some(node);
        if self.members.len() > 1 {
            self.wait_formed().await;
        }
    }

    /// Stops the node (in cluster mode: every node) and hands back its data directory.
    pub async fn shutdown(mut self) -> TempDir {
        // The node clients talk to last, so it stops with everything it wrote applied.
        let order: Vec<usize> = (0..self.members.len())
            .filter(|&i| i != self.client)
            .chain([self.client])
            .collect();
        for i in order {
            if let Some(node) = self.members[i].node.take() {
                node.shutdown().await;
            }
        }
        self.dir
    }

    /// `GET /status` of member `i` (0-based; node 1 is 0), or why it could not be had.
    async fn try_status(&self, i: usize) -> Result<Value, String> {
        let addr = self.running(&self.members[i]);
        let req = RawRequest::get(addr, "/status");
        let mut conn = tokio::time::timeout(Duration::from_secs(5), RawConnection::connect(addr))
            .await
            .map_err(|_| format!("connect to {addr}: timed out"))?;
        let resp = tokio::time::timeout(Duration::from_secs(10), conn.send(&req))
            .await
            .map_err(|_| format!("GET /status on {addr}: timed out"))?;
        if resp.status != 200 {
            return Err(format!("GET /status: {}: {}", resp.status, resp.text()));
        }
        serde_json::from_slice(&resp.body).map_err(|e| format!("GET /status: not JSON: {e}"))
    }

    /// The cluster status (`GET /status`) as the node clients talk to sees it.
    ///
    /// # Panics
    /// If it cannot be had.
    pub async fn status(&self) -> Value {
        match self.try_status(self.client).await {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    /// Waits until node 1's status lists every member, every group has a leader and
    /// min(n, 3) voters, and every member sees the same groups, each with a leader, and the
    /// client node is not behind any group's leader.
    async fn wait_formed(&self) {
        let n = self.members.len();
        let voters = n.min(3);
        let deadline = Instant::now() + CLUSTER_FORM_TIMEOUT;
        let mut last;
        loop {
            last = self.formed(n, voters).await;
            match &last {
                Ok(()) => return,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(why) => panic!(
                    "the {n}-node test cluster did not form within {CLUSTER_FORM_TIMEOUT:?}: {why}"
                ),
            }
        }
    }

    async fn formed(&self, n: usize, voters: usize) -> Result<(), String> {
        let first = self.try_status(0).await?;
        let nodes = first["nodes"].as_array().map_or(0, Vec::len);
        if nodes != n {
            return Err(format!("node 1 lists {nodes} nodes: {first}"));
        }
        let groups = first["groups"].as_array().cloned().unwrap_or_default();
        if groups.is_empty() {
            return Err(format!("node 1 lists no groups: {first}"));
        }
        for g in &groups {
            if g["leader"].as_u64().is_none_or(|l| l == 0) {
                return Err(format!(
                    "node 1: group {} has no leader: {first}",
                    g["group"]
                ));
            }
            let v = g["voters"].as_array().map_or(0, Vec::len);
            if v != voters {
                return Err(format!(
                    "node 1: group {} has {v} voters: {first}",
                    g["group"]
                ));
            }
        }
        for i in 1..n {
            let s = self.try_status(i).await?;
            let theirs = s["groups"].as_array().cloned().unwrap_or_default();
            if theirs.len() != groups.len() {
                return Err(format!(
                    "node {} sees {} groups, node 1 {}: {s}",
                    i + 1,
                    theirs.len(),
                    groups.len()
                ));
            }
            if let Some(g) = theirs
                .iter()
                .find(|g| g["leader"].as_u64().is_none_or(|l| l == 0))
            {
                return Err(format!(
                    "node {}: group {} has no leader: {s}",
                    i + 1,
                    g["group"]
                ));
            }
            if i == self.client {
                let me = s["node_id"].as_u64();
                for g in &theirs {
                    let behind = g["lag"].as_array().and_then(|lag| {
                        lag.iter()
                            .find(|l| l["node"].as_u64() == me)
                            .and_then(|l| l["behind"].as_u64())
                    });
                    if behind.is_none_or(|b| b > 0) {
                        return Err(format!(
                            "node {}: behind the leader of group {} ({behind:?}): {s}",
                            i + 1,
                            g["group"]
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Polls every future until all are ready; their outputs in order.
async fn join_all<F: std::future::Future + Unpin>(mut futures: Vec<F>) -> Vec<F::Output> {
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match std::pin::Pin::new(f).poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("ready")).collect()
}

/// Member `i` (1-based)'s base directory: node 2's is `dir` itself (so [`TestNode::data_dir`]
/// is `dir/data` in both modes), node `i`'s `dir/node<i>`.
fn member_base(dir: &Path, i: usize) -> PathBuf {
    if i == 2 {
        dir.to_path_buf()
    } else {
        dir.join(format!("node{i}"))
    }
}

fn write_ports(dir: &Path, members: &[Member]) {
    let text: String = members
        .iter()
        .map(|m| format!("{} {}\n", m.api, m.cluster))
        .collect();
    std::fs::write(dir.join(PORTS_FILE), text).expect("write the test cluster's ports");
}

fn read_ports(dir: &Path) -> Option<Vec<(SocketAddr, SocketAddr)>> {
    let text = std::fs::read_to_string(dir.join(PORTS_FILE)).ok()?;
    let ports = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let api = parts.next().and_then(|p| p.parse().ok());
            let cluster = parts.next().and_then(|p| p.parse().ok());
            match (api, cluster) {
                (Some(a), Some(c)) => (a, c),
                _ => panic!("bad line in {PORTS_FILE}: {l:?}"),
            }
        })
        .collect();
    Some(ports)
}

fn member_config(m: &Member, join: Option<(String, String)>) -> shoal_node::NodeConfig {
    let mut config = node_config(&m.base);
    config.listen = m.api;
    config.cluster = shoal_node::ClusterConfig {
        listen: m.cluster,
        join: join.as_ref().map(|j| j.0.clone()),
        join_token: join.map(|j| j.1),
        // Tests wait for expired items: a sweep every second, not every 20.
        ttl_sweep_interval: std::time::Duration::from_secs(1),
        ..shoal_node::ClusterConfig::default()
    };
    config
}

async fn start_member(m: &Member, join: Option<(String, String)>) -> shoal_node::RunningNode {
    // A restarted member reuses its ports; one may be briefly taken (a closing connection).
    let fixed = m.api.port() != 0 && join.is_none();
    let mut attempts = 0;
    loop {
        match shoal_node::Node::start(member_config(m, join.clone())).await {
            Ok(node) => return node,
            Err(e) if fixed && attempts < 20 && e.to_string().contains("in use") => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("start in-process node in {}: {e}", m.base.display()),
        }
    }
}

/// A port on 127.0.0.1 for a cluster-mode member, outside Linux's ephemeral range (32768..),
/// so that no outgoing connection and no `bind(0)` elsewhere can take it between this choice
/// and the node's bind; unique within this process (a counter), and checked to be free now.
fn reserve_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Different test processes start at different places in the range.
    let base = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..SPAN {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = LOW + (base + k) % SPAN;
        let addr = SocketAddr::from(([127, 0, 0, 1], port as u16));
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free port in 127.0.0.1:{LOW}..{}", LOW + SPAN)
}

/// The configuration of a [`TestNode`] in `dir`: a free port on 127.0.0.1, data and keys in
/// `dir/data` and `dir/keys`, region [`REGION`] and the admin key [`ADMIN_KEY_ID`].
// `..Default::default()` keeps this compiling when NodeConfig gains fields.
#[allow(clippy::needless_update)]
pub fn node_config(dir: &Path) -> shoal_node::NodeConfig {
    shoal_node::NodeConfig {
        listen: "127.0.0.1:0".parse().expect("listen addr"),
        data_dir: dir.join("data"),
        keys_dir: dir.join("keys"),
        region: REGION.into(),
        admin_key: Some(shoal_node::AccessKey {
            id: ADMIN_KEY_ID.into(),
            secret: ADMIN_SECRET.into(),
        }),
        ..Default::default()
    }
}
/// A DynamoDB Streams client (`aws-sdk-dynamodbstreams`) for `endpoint` with static
/// credentials, region [`REGION`] and retries disabled.
pub fn streams_client_for(
    endpoint: &str,
    key_id: &str,
    secret: &str,
) -> aws_sdk_dynamodbstreams::Client {
    use aws_sdk_dynamodbstreams::config;
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(config::Region::new(REGION))
        .credentials_provider(config::Credentials::new(
            key_id,
            secret,
            None,
            None,
            "shoal-tests",
        ))
        .retry_config(config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

/// An SDK client for `endpoint` with static credentials, region [`REGION`], retries disabled
/// (so every error reaches the test as it is) and a 30 s operation timeout.
pub fn client_for(endpoint: &str, key_id: &str, secret: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(key_id, secret, None, None, "shoal-tests"))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    Client::from_conf(config)
}
