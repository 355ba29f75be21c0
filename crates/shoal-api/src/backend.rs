//! The [`Backend`] trait: what the API needs from a node. The table model and the data plane
//! come from `shoal-catalog` (re-exported here); this trait adds what only the HTTP front end
//! needs: the region, the access keys SigV4 verifies against, the endpoints and the status page.

use std::sync::Arc;

use async_trait::async_trait;
pub use shoal_catalog::{
    Billing, BillingMode, DataError, DataPlane, IndexThroughput, KmsKeyError, QueryRequest,
    ScanRequest, TableMeta, TableSse, TableStats, TableStatus,
};

use crate::sigv4::KeyLookup;

/// A node as the API sees it: its data plane plus the API's own needs.
#[async_trait]
pub trait Backend: DataPlane {
    /// The region this node serves (ARNs, credential scope).
    fn region(&self) -> &str;

    /// The account id used in ARNs.
    fn account_id(&self) -> &str;

    /// Where SigV4 verification finds secrets.
    fn keys(&self) -> &dyn KeyLookup;

    /// The API addresses clients may use (`DescribeEndpoints`).
    fn endpoints(&self) -> Vec<String>;

    /// Whether this node can serve: `Err(reason)` once an essential part of it failed (it is
    /// then stopping), which `GET /health` and `GET /` answer with 503 and the reason. Cheap and
    /// non-blocking (called for every health check); the reason must not quote data. The default
    /// is always healthy.
    fn health(&self) -> Result<(), String> {
        Ok(())
    }

    /// The cluster's health for `GET /status` (nodes, partitions, leaders, replication lag), as
    /// JSON; `None` when the backend has no cluster.
    async fn status(&self) -> Option<serde_json::Value> {
        None
    }

    /// The node's own Prometheus metrics for `GET /metrics`, in the OpenMetrics text format
    /// without the `# EOF` marker (the API adds its own families and the marker). The default
    /// has none.
    async fn metrics(&self) -> String {
        String::new()
    }

    /// Whether this node knows a table named `name` (cheap, no I/O): the metrics label a request
    /// with its table only then. The default knows none.
    fn knows_table(&self, name: &str) -> bool {
        let _ = name;
        false
    }

    /// This node's id in its cluster, if it has one (the console shows it).
    fn node_id(&self) -> Option<u64> {
        None
    }

    /// Whether `access_key_id` is an admin key (may administer the cluster). The default says
    /// no.
    fn is_admin(&self, access_key_id: &str) -> bool {
        let _ = access_key_id;
        false
    }

    /// The policy of access key `access_key_id`, parsed (cheap: called for every request).
    /// `None`: the key has no policy and may do everything except what a table's resource-based
    /// policy explicitly denies. The default has none.
    fn key_policy(&self, access_key_id: &str) -> Option<Arc<shoal_policy::Policy>> {
        let _ = access_key_id;
        None
    }

    /// Starts decommissioning node `id` (`POST /cluster/remove`, `shoal cluster remove`): its
    /// replicas move to other nodes, then it leaves the cluster. `Err` says why it cannot.
    async fn remove_node(&self, id: u64) -> Result<serde_json::Value, String> {
        let _ = id;
        Err("this node serves no cluster".to_string())
    }
}
