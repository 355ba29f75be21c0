//! [`TestNode`]: a Shoal node running in-process on a real socket, in its own temp directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use tempfile::TempDir;

use crate::raw::{RawRequest, Signing};

/// Access key id of the admin key every [`TestNode`] is started with.
pub const ADMIN_KEY_ID: &str = "AKIDSHOALTEST0000001";
/// Secret of the admin key every [`TestNode`] is started with.
pub const ADMIN_SECRET: &str = "shoal-test-secret-key-0000000000000000000";
/// Region every test node runs in.
pub const REGION: &str = "us-east-1";

/// A single Shoal node started in-process (`shoal_node::Node::start`) on `127.0.0.1:0`, with its
/// data in a temporary directory that is removed when the `TestNode` is dropped, and the admin
/// key [`ADMIN_KEY_ID`]/[`ADMIN_SECRET`].
pub struct TestNode {
    node: Option<shoal_node::RunningNode>,
    addr: SocketAddr,
    dir: TempDir,
}

impl TestNode {
    /// Starts a node in a fresh temporary directory.
    ///
    /// # Panics
    /// If the node cannot start.
    pub async fn start() -> TestNode {
        let dir = tempfile::tempdir().expect("temp dir");
        TestNode::start_in(dir).await
    }

    /// Starts a node whose data directory is `dir` (which may hold data of an earlier node).
    ///
    /// # Panics
    /// If the node cannot start.
    pub async fn start_in(dir: TempDir) -> TestNode {
        let node = start_node(dir.path()).await;
        let addr = node.local_addr();
        TestNode {
            node: Some(node),
            addr,
            dir,
        }
    }

    /// The address the node listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, the endpoint URL clients use.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// An SDK client authenticated with the admin key, retries disabled.
    pub fn client(&self) -> Client {
        client_for(&self.endpoint(), ADMIN_KEY_ID, ADMIN_SECRET)
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
        RawRequest::dynamodb(self.addr, operation, body.to_string()).signed(&self.signing())
    }

    /// Stops the node and starts a new one on the same data directory (the new node may listen
    /// on a different port; clients must be recreated with [`TestNode::client`]).
    ///
    /// # Panics
    /// If the node cannot restart.
    pub async fn restart(&mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown().await;
        }
        let node = start_node(self.dir.path()).await;
        self.addr = node.local_addr();
        self.node = Some(node);
    }

    /// Stops the node and hands back its data directory.
    pub async fn shutdown(mut self) -> TempDir {
        if let Some(node) = self.node.take() {
            node.shutdown().await;
        }
        self.dir
    }
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

async fn start_node(dir: &Path) -> shoal_node::RunningNode {
    let config = node_config(dir);
    match shoal_node::Node::start(config).await {
        Ok(node) => node,
        Err(e) => panic!("start in-process node in {}: {e}", dir.display()),
    }
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
