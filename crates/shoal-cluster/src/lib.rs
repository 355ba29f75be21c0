//! Test harness: a cluster of real `shoal` processes on 127.0.0.1.
//!
//! [`Cluster::start`] bootstraps node 1, reads its join token (`shoal cluster join-token`),
//! joins nodes 2..=n to it and waits until `GET /status` on node 1 lists every node and every
//! group has a leader. Nodes are numbered from 1 (node `i` is the `i`-th process started; the
//! bootstrap node is 1). Each node has its own data and key directories under one temporary
//! directory, and its stdout and stderr go to `node<i>/log` there; when the test panics, dropping
//! the [`Cluster`] prints the tail of every log (set `SHOAL_CLUSTER_KEEP=1` to keep the
//! directory). Dropping the cluster kills every node (SIGKILL). [`Cluster::start`] and
//! [`Cluster::create_hash_table`] return only once every partition group has `min(n, 3)` voters
//! (the metadata group 5 from 5 nodes on; joined
//! nodes start as learners), so a test's first kill meets a replicated cluster.
//!
//! The binary is `SHOAL_BIN` when set, otherwise this workspace's `shoal`, built on first use
//! with `cargo build -p shoal` (so `cargo test -p shoal-cluster` always runs the current code).
//! Every node gets the admin key [`ADMIN_KEY_ID`]/[`ADMIN_SECRET`] through the environment,
//! as `shoal_tests::ProcessNode` does, and [`Cluster::client`] signs with it.
//!
//! ```ignore
//! let mut c = Cluster::start(3).await;
//! must_create_hash_table(&c.client(2), "t").await;
//! let leader = c.leader_of("t").await.unwrap();
//! c.kill(leader);
//! c.restart(leader).await;
//! ```
//!
//! The harness panics on failure (that is how a test fails), so `expect` is allowed here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod load;

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;
use tempfile::TempDir;

/// Access key id of the admin key every node is started with (the same as `shoal-tests`').
pub const ADMIN_KEY_ID: &str = "AKIDSHOALTEST0000001";
/// Secret of the admin key every node is started with.
pub const ADMIN_SECRET: &str = "shoal-test-secret-key-0000000000000000000";
/// Region every node serves.
pub const REGION: &str = "us-east-1";

/// How long a node may take to answer `GET /health` after it is spawned.
pub const NODE_STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
/// How long [`Cluster::start`] waits for the whole cluster (all nodes listed, leaders elected).
pub const CLUSTER_STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Lines of each log printed when a test fails.
pub const LOG_TAIL_LINES: usize = 60;

/// Environment variables of the test process that must not leak into the nodes.
const SCRUBBED_ENV: &[&str] = &[
    "SHOAL_LISTEN",
    "SHOAL_CLUSTER_LISTEN",
    "SHOAL_DATA_DIR",
    "SHOAL_KEYS_DIR",
    "SHOAL_REGION",
    "SHOAL_CONFIG",
    "SHOAL_JOIN",
    "SHOAL_JOIN_TOKEN",
    "SHOAL_JOIN_TOKEN_FILE",
    "SHOAL_FAILPOINT_RAFT_PANIC_FILE",
    "SHOAL_ADMIN_ACCESS_KEY_ID",
    "SHOAL_ADMIN_SECRET_ACCESS_KEY",
];

/// The `shoal` binary: `SHOAL_BIN`, or this workspace's, built once per test process.
///
/// # Panics
/// If the build fails or produces no `shoal` executable.
pub fn shoal_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("SHOAL_BIN") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out = Command::new(cargo)
            .current_dir(&workspace)
            .args([
                "build",
                "-p",
                "shoal",
                "--bin",
                "shoal",
                "--message-format=json-render-diagnostics",
            ])
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build -p shoal");
        assert!(out.status.success(), "cargo build -p shoal failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "shoal")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo build -p shoal reported no shoal executable")
    })
    .clone()
}

/// An SDK client for the API at `endpoint` (`http://host:port`) with the admin key, retries
/// disabled, and this operation timeout.
pub fn sdk_client(endpoint: &str, timeout: Duration) -> Client {
    client_with(endpoint, timeout, RetryConfig::disabled())
}

/// An SDK client for the API at `endpoint` with the admin key and the SDK's default (standard)
/// retries: what an application uses.
pub fn sdk_client_with_retries(endpoint: &str, timeout: Duration) -> Client {
    client_with(endpoint, timeout, RetryConfig::standard())
}

fn client_with(endpoint: &str, timeout: Duration, retry: RetryConfig) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ADMIN_KEY_ID,
            ADMIN_SECRET,
            None,
            None,
            "shoal-cluster",
        ))
        .retry_config(retry)
        .timeout_config(TimeoutConfig::builder().operation_timeout(timeout).build())
        .build();
    Client::from_conf(config)
}

/// A `Command` for the `shoal` binary at `bin` with the test process's `SHOAL_*` settings
/// removed and the admin key and region every node gets, stdin closed.
pub fn command_for(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("SHOAL_REGION", REGION)
        .env("SHOAL_ADMIN_ACCESS_KEY_ID", ADMIN_KEY_ID)
        .env("SHOAL_ADMIN_SECRET_ACCESS_KEY", ADMIN_SECRET)
        .stdin(Stdio::null());
    cmd
}

/// Picks a free port on 127.0.0.1 (bind :0, read it, release it).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr")
}

/// One node's process and directories.
struct NodeProc {
    api: SocketAddr,
    cluster: SocketAddr,
    data_dir: PathBuf,
    keys_dir: PathBuf,
    log: PathBuf,
    /// `--join ADDR --join-token T`, passed only on the first start.
    join: Option<(SocketAddr, String)>,
    child: Option<Child>,
    /// The node id it reported in `/status`, once seen.
    node_id: Option<u64>,
    /// Environment variables for its next start only ([`Cluster::restart_with_env`]).
    once_env: Vec<(String, String)>,
}

/// N real `shoal` processes forming one cluster; see the crate docs.
pub struct Cluster {
    bin: PathBuf,
    dir: Option<TempDir>,
    nodes: Vec<NodeProc>,
    started: Instant,
    /// Environment variables every node gets (settings a test needs, like short timeouts).
    env: Vec<(String, String)>,
}

impl Cluster {
    /// Starts an `n`-node cluster and waits until node 1's `/status` lists `n` nodes and every
    /// group has a leader, and every other node's `/status` shows a leader for every group.
    ///
    /// # Panics
    /// If a node cannot start or join, or the cluster does not form within
    /// [`CLUSTER_STARTUP_TIMEOUT`].
    pub async fn start(n: usize) -> Cluster {
        Cluster::start_with_env(n, &[]).await
    }

    /// [`Cluster::start`] with environment variables every node gets, on every start.
    ///
    /// # Panics
    /// As [`Cluster::start`].
    pub async fn start_with_env(n: usize, env: &[(&str, &str)]) -> Cluster {
        assert!(n >= 1, "a cluster needs at least one node");
        let bin = tokio::task::spawn_blocking(shoal_bin)
            .await
            .expect("build shoal");
        let dir = tempfile::Builder::new()
            .prefix("shoal-cluster-")
            .tempdir()
            .expect("temp dir");
        let mut cluster = Cluster {
            bin,
            dir: Some(dir),
            nodes: Vec::new(),
            started: Instant::now(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        };
        let first = cluster.add_node(None);
        cluster.spawn(first);
        cluster.wait_healthy(first).await;
        let token = cluster.join_token(first).await;
        let seed = cluster.nodes[0].cluster;
        for _ in 2..=n {
            let i = cluster.add_node(Some((seed, token.clone())));
            cluster.spawn(i);
            cluster.wait_healthy(i).await;
        }
        cluster
            .wait_status(
                1,
                CLUSTER_STARTUP_TIMEOUT,
                "all nodes listed and every group led",
                |s| s["nodes"].as_array().is_some_and(|a| a.len() == n) && all_groups_led(s),
            )
            .await;
        cluster.wait_replicated().await;
        // Every node must see the leaders too (a joined node that never got the metadata
        // group's snapshot cannot route anything).
        for i in 2..=n {
            cluster
                .wait_status(
                    i,
                    CLUSTER_STARTUP_TIMEOUT,
                    "every group led, as this node sees it",
                    all_groups_led,
                )
                .await;
        }
        cluster
    }

    /// The number of nodes (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the cluster has no nodes (never, after [`Cluster::start`]).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The temporary directory holding every node's data, keys and log.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new("."), TempDir::path)
    }

    /// Node `i`'s API address.
    pub fn api_addr(&self, i: usize) -> SocketAddr {
        self.node(i).api
    }

    /// `http://<node i's API address>`.
    pub fn api_url(&self, i: usize) -> String {
        format!("http://{}", self.node(i).api)
    }

    /// Node `i`'s cluster (Raft/RPC) address.
    pub fn cluster_addr(&self, i: usize) -> SocketAddr {
        self.node(i).cluster
    }

    /// Node `i`'s data directory.
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.node(i).data_dir
    }

    /// An SDK client for node `i` with the admin key, retries disabled, 30 s operation timeout.
    pub fn client(&self, i: usize) -> Client {
        self.client_with_timeout(i, Duration::from_secs(30))
    }

    /// An SDK client for node `i` with the admin key, retries disabled, and this operation
    /// timeout (short timeouts make availability measurements precise).
    pub fn client_with_timeout(&self, i: usize, timeout: Duration) -> Client {
        sdk_client(&self.api_url(i), timeout)
    }

    /// True while node `i`'s process runs (it has not been killed and has not exited).
    pub fn is_running(&mut self, i: usize) -> bool {
        let node = self.node_mut(i);
        match node.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                node.child = None;
                false
            }
            None => false,
        }
    }

    /// The node ids of the running nodes, by index.
    pub fn running(&mut self) -> Vec<usize> {
        (1..=self.len()).filter(|&i| self.is_running(i)).collect()
    }

    /// Kills node `i` with SIGKILL (no shutdown) and reaps it. No-op if it is not running.
    pub fn kill(&mut self, i: usize) {
        let elapsed = self.started.elapsed();
        let node = self.node_mut(i);
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            append_marker(&node.log, &format!("killed (SIGKILL) at +{elapsed:.1?}"));
        }
    }

    /// Stops node `i` the way an operator or a supervisor does: SIGTERM, then waits (up to 30 s)
    /// for it to exit. Returns its exit code. No-op (`None`) if it is not running.
    ///
    /// # Panics
    /// If the signal cannot be sent or the node does not exit in time.
    pub fn terminate(&mut self, i: usize) -> Option<i32> {
        let elapsed = self.started.elapsed();
        let node = self.node_mut(i);
        let mut child = node.child.take()?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("node {i} did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        append_marker(
            &node.log,
            &format!("stopped (SIGTERM) at +{elapsed:.1?}: {status}"),
        );
        status.code()
    }

    /// Kills every node.
    pub fn stop_all(&mut self) {
        for i in 1..=self.len() {
            self.kill(i);
        }
    }

    /// Starts node `i` again on its data directory with the same flags (without `--join`: the
    /// data directory already belongs to the cluster) and waits for `GET /health`. Kills it
    /// first if it still runs.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.node_mut(i).join = None;
        self.spawn(i);
        self.wait_healthy(i).await;
    }

    /// [`Cluster::restart`] with environment variables for this start only (a crash point:
    /// `FAILPOINTS=...`). Does not wait for `GET /health`: the node may crash on its way.
    pub fn restart_with_env(&mut self, i: usize, env: &[(&str, &str)]) {
        self.kill(i);
        let node = self.node_mut(i);
        node.join = None;
        node.once_env = env
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        self.spawn(i);
    }

    /// Starts a new node that joins the running cluster (with a new join token from node 1) and
    /// waits for its `GET /health`. Returns its index.
    pub async fn join_new_node(&mut self) -> usize {
        let token = self.join_token(1).await;
        let seed = self.nodes[0].cluster;
        let i = self.add_node(Some((seed, token)));
        self.spawn(i);
        self.wait_healthy(i).await;
        i
    }

    /// Kills node `i` (-9), wipes its data and key directories (a replaced disk), and starts it
    /// again at the same addresses, joining through node `through` with a new join token; waits
    /// for its `GET /health`. The cluster sees a new node (a new id) at a member's address.
    pub async fn rejoin_wiped(&mut self, i: usize, through: usize) {
        self.kill(i);
        let (data, keys) = (
            self.node_mut(i).data_dir.clone(),
            self.node_mut(i).keys_dir.clone(),
        );
        for dir in [data, keys] {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("wiping {}: {e}", dir.display()),
            }
        }
        let token = self.join_token(through).await;
        let seed = self.nodes[through - 1].cluster;
        let node = self.node_mut(i);
        node.join = Some((seed, token));
        node.node_id = None;
        self.spawn(i);
        self.wait_healthy(i).await;
    }

    /// Bytes of every file under node `i`'s data directory.
    pub fn data_bytes(&self, i: usize) -> u64 {
        fn walk(dir: &Path) -> u64 {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .flatten()
                    .map(|e| match e.metadata() {
                        Ok(m) if m.is_dir() => walk(&e.path()),
                        Ok(m) => m.len(),
                        Err(_) => 0,
                    })
                    .sum()
            })
        }
        walk(self.data_dir(i))
    }

    /// Waits until node `i` answers `GET /health` with 200.
    ///
    /// # Panics
    /// If the process exits or is not healthy within [`NODE_STARTUP_TIMEOUT`].
    pub async fn wait_healthy(&mut self, i: usize) {
        let deadline = Instant::now() + NODE_STARTUP_TIMEOUT;
        let url = format!("{}/health", self.api_url(i));
        loop {
            if !self.is_running(i) {
                self.fail(&format!(
                    "node {i} exited while waiting for it to be healthy"
                ));
            }
            if let Ok((200, _)) = http_get(&url).await {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "node {i} not healthy on {url} within {NODE_STARTUP_TIMEOUT:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Node `i`'s `GET /status` JSON, or why it could not be had.
    pub async fn try_status(&mut self, i: usize) -> Result<Value, String> {
        let url = format!("{}/status", self.api_url(i));
        let (code, body) = http_get(&url).await?;
        if code != 200 {
            return Err(format!("GET {url}: HTTP {code}: {body}"));
        }
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| format!("GET {url}: bad JSON ({e}): {body}"))?;
        if let Some(id) = v["node_id"].as_u64() {
            self.node_mut(i).node_id = Some(id);
        }
        Ok(v)
    }

    /// Node `i`'s `GET /status` JSON.
    ///
    /// # Panics
    /// If the request fails.
    pub async fn status(&mut self, i: usize) -> Value {
        match self.try_status(i).await {
            Ok(v) => v,
            Err(e) => self.fail(&e),
        }
    }

    /// Polls node `i`'s `/status` until `pred` holds (failed requests count as "not yet");
    /// returns the status that satisfied it.
    ///
    /// # Panics
    /// After `timeout`, with the last status (or error) and the log tails.
    pub async fn wait_status(
        &mut self,
        i: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.try_status(i).await {
                Ok(s) if pred(&s) => return s,
                Ok(s) => serde_json::to_string_pretty(&s).unwrap_or_default(),
                Err(e) => e,
            };
            if Instant::now() > deadline {
                self.fail(&format!(
                    "node {i}: {what}: not reached within {timeout:?}; last status:\n{last}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Node `i`'s Raft node id (from its `/status`, cached).
    pub async fn node_id(&mut self, i: usize) -> u64 {
        if let Some(id) = self.node(i).node_id {
            return id;
        }
        let s = self.status(i).await;
        match s["node_id"].as_u64() {
            Some(id) => id,
            None => self.fail(&format!("node {i}: /status has no node_id: {s}")),
        }
    }

    /// The index of the node that leads `table`'s (first) group, as seen by the first running
    /// node that answers `/status`; `None` when no node answers or the group has no leader.
    pub async fn leader_of(&mut self, table: &str) -> Option<usize> {
        for i in self.running() {
            let Ok(s) = self.try_status(i).await else {
                continue;
            };
            let leader = s["groups"]
                .as_array()?
                .iter()
                .find(|g| g["table"].as_str() == Some(table))?["leader"]
                .as_u64()?;
            return self.index_of(&s, leader).await;
        }
        None
    }

    /// The index of the node that leads the metadata group (group 0), as seen by the first
    /// running node that answers `/status`.
    pub async fn meta_leader(&mut self) -> Option<usize> {
        for i in self.running() {
            let Ok(s) = self.try_status(i).await else {
                continue;
            };
            let leader = s["groups"].as_array()?.iter().find(|g| {
                g["kind"].as_str() == Some("metadata") || g["group"].as_u64() == Some(0)
            })?["leader"]
                .as_u64()?;
            return self.index_of(&s, leader).await;
        }
        None
    }

    /// A `Command` for the `shoal` binary with the test process's `SHOAL_*` settings removed
    /// and the admin key and region every node gets (for runs outside the cluster, e.g. a node
    /// that must fail to join, or `shoal status`).
    pub fn command(&self) -> Command {
        command_for(&self.bin)
    }

    /// Creates `table` (hash key `pk` of type S, on-demand) through node `via` and waits until
    /// every running node describes it ACTIVE.
    ///
    /// # Panics
    /// If CreateTable fails or the table is not ACTIVE everywhere within 30 s.
    pub async fn create_hash_table(&mut self, via: usize, table: &str) {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
            TableStatus,
        };
        let created = self
            .client(via)
            .create_table()
            .table_name(table)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute definition"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key schema"),
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        if let Err(e) = created {
            self.fail(&format!(
                "CreateTable {table} through node {via}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ));
        }
        for i in self.running() {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let status = match self
                    .client(i)
                    .describe_table()
                    .table_name(table)
                    .send()
                    .await
                {
                    Ok(out) => match out.table.and_then(|t| t.table_status) {
                        Some(TableStatus::Active) => break,
                        other => format!("status {other:?}"),
                    },
                    Err(e) => format!(
                        "DescribeTable failed: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                    ),
                };
                if Instant::now() > deadline {
                    self.fail(&format!(
                        "table {table} not ACTIVE through node {i} within 30 s: {status}"
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        self.wait_replicated().await;
    }

    /// Waits until the first running node's `/status` shows every group led and with
    /// `min(nodes, 3)` voters: new members join groups as learners and are promoted later, and
    /// until then a group does not survive the loss of a node.
    ///
    /// # Panics
    /// After [`CLUSTER_STARTUP_TIMEOUT`].
    pub async fn wait_replicated(&mut self) {
        let want = self.len().min(3);
        // The metadata group has five voters once there are five members.
        let want_meta = if self.len() >= 5 { 5 } else { want };
        let Some(&i) = self.running().first() else {
            self.fail("no node is running");
        };
        self.wait_status(
            i,
            CLUSTER_STARTUP_TIMEOUT,
            &format!(
                "every partition group led with {want} voters, the metadata group with {want_meta}"
            ),
            |s| {
                all_groups_led(s)
                    && s["groups"].as_array().is_some_and(|gs| {
                        gs.iter().all(|g| {
                            let n = if g["kind"] == "metadata" {
                                want_meta
                            } else {
                                want
                            };
                            g["voters"].as_array().is_some_and(|v| v.len() == n)
                        })
                    })
            },
        )
        .await;
    }

    /// True when node `i` is caught up: for every group of node `i`'s `/status` that has a
    /// replica on node `i` (as a voter or learner), the running node that leads it reports (in
    /// its own `/status`) node `i` in `lag` with `behind == 0`, or node `i` leads the group
    /// itself.
    pub async fn caught_up(&mut self, i: usize) -> bool {
        let Ok(own) = self.try_status(i).await else {
            return false;
        };
        let Some(id) = own["node_id"].as_u64() else {
            return false;
        };
        let Some(groups) = own["groups"].as_array() else {
            return false;
        };
        let mut leader_views = Vec::new();
        for j in self.running() {
            if let Ok(s) = self.try_status(j).await {
                leader_views.push(s);
            }
        }
        let holds = |g: &Value| {
            ["voters", "learners"].iter().any(|k| {
                g[k].as_array()
                    .is_some_and(|ids| ids.iter().any(|v| v.as_u64() == Some(id)))
            })
        };
        groups.iter().filter(|g| holds(g)).all(|g| {
            let group = &g["group"];
            leader_views.iter().any(|s| {
                let me = &s["node_id"];
                s["groups"].as_array().is_some_and(|gs| {
                    gs.iter().any(|lg| {
                        &lg["group"] == group
                            && &lg["leader"] == me
                            && (me.as_u64() == Some(id) || lag_is_zero(lg, id))
                    })
                })
            })
        })
    }

    /// Prints (to stderr) the last `lines` lines of every node's log.
    pub fn print_logs(&self, lines: usize) {
        eprintln!("{}", self.log_tails(lines));
    }

    /// The last `lines` lines of every node's log.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for (k, node) in self.nodes.iter().enumerate() {
            out.push_str(&format!(
                "===== node {} (api {}, cluster {}) log {} =====\n",
                k + 1,
                node.api,
                node.cluster,
                node.log.display()
            ));
            out.push_str(&tail(&node.log, lines));
            out.push('\n');
        }
        out
    }

    /// The lines of every node's log (all its starts) on which the API logged an answer with
    /// status 5xx (`InternalServerError`: "internal error" or "request refused").
    pub fn server_errors(&self) -> Vec<String> {
        self.nodes
            .iter()
            .enumerate()
            .flat_map(|(k, node)| {
                std::fs::read_to_string(&node.log)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| {
                        l.contains("ERROR shoal_api")
                            && (l.contains("internal error") || l.contains("request refused"))
                    })
                    .map(|l| format!("node {}: {l}", k + 1))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Panics with `msg` (dropping the cluster during the unwind prints every node's log tail).
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{msg}");
    }

    /// Polls `pred` every 100 ms until it holds; panics with `what` and the log tails after
    /// `timeout`.
    pub async fn wait_until<F, Fut>(&self, timeout: Duration, what: &str, pred: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        if !wait_until(timeout, pred).await {
            self.fail(&format!("timed out after {timeout:?} waiting for: {what}"));
        }
    }

    // ---- internals ----

    fn node(&self, i: usize) -> &NodeProc {
        assert!(
            (1..=self.nodes.len()).contains(&i),
            "no node {i} (nodes are 1..={})",
            self.nodes.len()
        );
        &self.nodes[i - 1]
    }

    fn node_mut(&mut self, i: usize) -> &mut NodeProc {
        assert!(
            (1..=self.nodes.len()).contains(&i),
            "no node {i} (nodes are 1..={})",
            self.nodes.len()
        );
        &mut self.nodes[i - 1]
    }

    /// Maps a Raft node id to a harness index: through the `nodes` list of `status` (matching
    /// API addresses), else through the ids seen in each node's own status, else identity.
    async fn index_of(&mut self, status: &Value, id: u64) -> Option<usize> {
        if let Some(nodes) = status["nodes"].as_array()
            && let Some(api) = nodes
                .iter()
                .find(|n| n["id"].as_u64() == Some(id))
                .and_then(|n| n["api_addr"].as_str())
            && let Some(k) = self.nodes.iter().position(|n| n.api.to_string() == api)
        {
            return Some(k + 1);
        }
        if let Some(k) = self.nodes.iter().position(|n| n.node_id == Some(id)) {
            return Some(k + 1);
        }
        let i = usize::try_from(id).ok()?;
        (1..=self.len()).contains(&i).then_some(i)
    }

    fn add_node(&mut self, join: Option<(SocketAddr, String)>) -> usize {
        let i = self.nodes.len() + 1;
        let base = self.dir().join(format!("node{i}"));
        std::fs::create_dir_all(&base).expect("create node dir");
        self.nodes.push(NodeProc {
            api: free_addr(),
            cluster: free_addr(),
            data_dir: base.join("data"),
            keys_dir: base.join("keys"),
            log: base.join("log"),
            join,
            child: None,
            node_id: None,
            once_env: Vec::new(),
        });
        i
    }

    fn spawn(&mut self, i: usize) {
        let bin = self.bin.clone();
        let elapsed = self.started.elapsed();
        let env = self.env.clone();
        let node = self.node_mut(i);
        let mut cmd = Command::new(&bin);
        cmd.arg("start")
            .arg("--listen")
            .arg(node.api.to_string())
            .arg("--cluster-listen")
            .arg(node.cluster.to_string())
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--keys-dir")
            .arg(&node.keys_dir);
        if let Some((seed, token)) = &node.join {
            // Through a file, as operators should: never on the command line (`ps` shows it).
            let file = node.log.with_file_name("join-token");
            std::fs::write(&file, token).expect("write the join token file");
            std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod the join token file");
            cmd.arg("--join")
                .arg(seed.to_string())
                .arg("--join-token-file")
                .arg(file);
        }
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        cmd.env("SHOAL_REGION", REGION)
            .env("SHOAL_ADMIN_ACCESS_KEY_ID", ADMIN_KEY_ID)
            .env("SHOAL_ADMIN_SECRET_ACCESS_KEY", ADMIN_SECRET);
        if std::env::var_os("SHOAL_LOG").is_none() && std::env::var_os("RUST_LOG").is_none() {
            cmd.env("SHOAL_LOG", "info");
        }
        cmd.envs(env);
        cmd.envs(std::mem::take(&mut node.once_env));
        let joining = if node.join.is_some() {
            " (joining)"
        } else {
            ""
        };
        append_marker(
            &node.log,
            &format!("start{joining} at +{elapsed:.1?}: {}", bin.display()),
        );
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open node log");
        let err = out.try_clone().expect("clone log handle");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        node.child = Some(child);
    }

    /// A new join token, created through node `i`: runs `shoal cluster join-token --data-dir D`
    /// until it prints a `SHOAL2-` token (or finds the one the bootstrap node printed in its
    /// log). Creating a token revokes the previous one.
    ///
    /// # Panics
    /// If no token appears within [`NODE_STARTUP_TIMEOUT`].
    pub async fn join_token(&mut self, i: usize) -> String {
        let deadline = Instant::now() + NODE_STARTUP_TIMEOUT;
        let (data_dir, keys_dir, log) = {
            let n = self.node(i);
            (n.data_dir.clone(), n.keys_dir.clone(), n.log.clone())
        };
        loop {
            let bin = self.bin.clone();
            let (d, k) = (data_dir.clone(), keys_dir.clone());
            let out = tokio::task::spawn_blocking(move || {
                let mut cmd = Command::new(bin);
                for var in SCRUBBED_ENV {
                    cmd.env_remove(var);
                }
                cmd.args(["cluster", "join-token", "--data-dir"])
                    .arg(d)
                    .env("SHOAL_KEYS_DIR", k)
                    .stdin(Stdio::null())
                    .output()
            })
            .await
            .expect("join-token task");
            let last = match out {
                Ok(o) => {
                    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
                    if o.status.success()
                        && let Some(t) = find_token(&stdout)
                    {
                        return t;
                    }
                    format!(
                        "{}: {stdout}{}",
                        o.status,
                        String::from_utf8_lossy(&o.stderr)
                    )
                }
                Err(e) => e.to_string(),
            };
            // The bootstrap node also prints the token once in its log.
            if let Some(t) = find_token(&std::fs::read_to_string(&log).unwrap_or_default()) {
                return t;
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "`shoal cluster join-token --data-dir {}` gave no token within \
                     {NODE_STARTUP_TIMEOUT:?}; last: {last}",
                    data_dir.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
        if std::thread::panicking() {
            self.print_logs(LOG_TAIL_LINES);
        }
        if std::env::var_os("SHOAL_CLUSTER_KEEP").is_some()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!("shoal-cluster: kept {}", kept.display());
        }
    }
}

/// Polls `pred` every 100 ms until it holds (true) or `timeout` passes (false).
pub async fn wait_until<F, Fut>(timeout: Duration, mut pred: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if pred().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// True when `status` has a non-empty `groups` array whose every entry has a leader.
pub fn all_groups_led(status: &Value) -> bool {
    status["groups"]
        .as_array()
        .is_some_and(|gs| !gs.is_empty() && gs.iter().all(|g| g["leader"].as_u64().is_some()))
}

/// `GET url` with a 5 s timeout: (status code, body).
pub async fn http_get(url: &str) -> Result<(u16, String), String> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .get(&url)
            .call()
            .map_err(|e| format!("GET {url}: {e}"))?;
        let code = resp.status().as_u16();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("GET {url}: body: {e}"))?;
        Ok((code, body))
    })
    .await
    .map_err(|e| format!("GET task: {e}"))?
}

/// True when the group entry `g` of a `/status` lists `node` in `lag` with `behind == 0`.
fn lag_is_zero(g: &Value, node: u64) -> bool {
    g["lag"].as_array().is_some_and(|lag| {
        lag.iter()
            .any(|l| l["node"].as_u64() == Some(node) && l["behind"].as_u64() == Some(0))
    })
}

/// The last join token (`SHOAL2-...`) in `text`.
pub fn find_token(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .rfind(|w| w.starts_with("SHOAL2-") && w.len() > "SHOAL2-".len())
        .map(str::to_string)
}

fn append_marker(log: &Path, what: &str) {
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(f, "----- shoal-cluster: {what} -----");
    }
}

/// The last `lines` lines of the file (reads at most its last 256 KiB).
fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(256 * 1024);
    let _ = f.seek(SeekFrom::Start(start));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all = collapse_repeats(text.lines());
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Log lines with runs of the same message (timestamps aside) folded into one line and a
/// count, so a message logged every second does not push everything else out of a tail.
fn collapse_repeats<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    // Text log lines start with an RFC 3339 timestamp and a space.
    let message = |l: &'a str| l.split_once(' ').map_or(l, |(_, rest)| rest);
    let mut out: Vec<String> = Vec::new();
    let mut last: Option<&str> = None;
    let mut repeats = 0usize;
    for line in lines {
        if last.is_some_and(|m| m == message(line)) {
            repeats += 1;
            continue;
        }
        if repeats > 0 {
            out.push(format!(
                "    (the line above repeated {repeats} more times)"
            ));
            repeats = 0;
        }
        last = Some(message(line));
        out.push(line.to_string());
    }
    if repeats > 0 {
        out.push(format!(
            "    (the line above repeated {repeats} more times)"
        ));
    }
    out
}
