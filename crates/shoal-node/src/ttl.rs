//! Time to Live: every node keeps the expiry index of its replicas on the table's TTL attribute
//! (`shoal_storage::Partition::set_ttl`), and each partition's leader deletes what expired,
//! every [`crate::ClusterConfig::ttl_sweep_interval`].
//!
//! A sweep reads only the expiry index ([`shoal_storage::Partition::expired`]): it costs what
//! expired, not the table size. Each expired item is deleted through the partition's log like a
//! DeleteItem made by the service ([`Command::Expire`]: not metered, and its stream record
//! names the service), under the condition that its TTL attribute is still a number between five years
//! ago and now: an item whose expiry was moved since (or that a lagging index still lists) is
//! left alone. Local and global secondary indexes follow the deletes as they follow any delete.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use shoal_catalog::{DataError, DataPlane, TableMeta};
use shoal_expr::{Condition, DocPath, Operand};
use shoal_storage::{ApplyError, Command, TTL_MAX_AGE_SECS};
use shoal_types::{AttributeValue, Number};

use crate::backend::{NodeBackend, blocking};
use crate::cluster::Cluster;

/// Default time between two sweeps: an expired item is deleted within about this long.
pub const DEFAULT_TTL_SWEEP: Duration = Duration::from_secs(20);
/// Expired items read from the index at a time.
const CHUNK: usize = 256;
/// Deletes in flight at once per partition.
const PARALLEL: usize = 16;
/// The most items one partition deletes per sweep (the rest waits for the next).
const MAX_PER_SWEEP: usize = 10_000;

/// Runs the sweeps until `stop`.
pub(crate) fn spawn_ttl_sweeper(
    backend: Arc<NodeBackend>,
    cluster: Arc<Cluster>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(every) => {}
            }
            sweep_once(&backend, &cluster).await;
        }
    })
}

fn seconds_now() -> u64 {
    crate::transact::now_ms() / 1000
}

fn number(n: u64) -> AttributeValue {
    AttributeValue::N(Number::from_i64(i64::try_from(n).unwrap_or(i64::MAX)))
}

async fn sweep_once(backend: &NodeBackend, cluster: &Cluster) {
    let led: std::collections::HashSet<u64> = cluster
        .raft
        .status()
        .iter()
        .filter(|g| g.leader == Some(cluster.node_id) && g.role == "Leader")
        .map(|g| g.group)
        .collect();
    let handles: Vec<_> = backend.tables.read().values().cloned().collect();
    for handle in handles {
        let meta = Arc::clone(&handle.meta.read());
        for part in &handle.partitions {
            // Every replica keeps its index on the attribute the catalog names now.
            let partition = Arc::clone(&part.partition);
            let attr = meta.time_to_live.clone();
            match blocking(move || partition.set_ttl(attr)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, table = %meta.name, "expiry index not rebuilt");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "expiry index not rebuilt");
                    continue;
                }
            }
            let Some(attr) = meta.time_to_live.as_deref() else {
                continue;
            };
            if led.contains(&part.record.id) {
                let deleted = sweep_partition(backend, &meta, &part.partition, attr).await;
                if deleted > 0 {
                    tracing::debug!(table = %meta.name, deleted, "expired items deleted");
                }
            }
        }
    }
}

/// Deletes what expired in one partition this node leads; returns how many items.
async fn sweep_partition(
    backend: &NodeBackend,
    meta: &Arc<TableMeta>,
    partition: &Arc<shoal_storage::Partition>,
    attr: &str,
) -> usize {
    let now = seconds_now();
    let condition = Condition::Between {
        value: Operand::Path(DocPath::attr(attr)),
        low: Operand::Value(number(now.saturating_sub(TTL_MAX_AGE_SECS))),
        high: Operand::Value(number(now)),
    };
    let mut deleted = 0;
    let mut done = 0;
    while done < MAX_PER_SWEEP {
        let p = Arc::clone(partition);
        let expired = match blocking(move || p.expired(now, CHUNK)).await {
            Ok(Ok(keys)) => keys,
            _ => break,
        };
        if expired.is_empty() {
            break;
        }
        let full = expired.len() == CHUNK;
        for group in expired.chunks(PARALLEL) {
            let deletes = group.iter().map(|(_, key)| {
                backend.write(
                    meta,
                    Command::Expire {
                        key: key.clone(),
                        condition: Some(condition.clone()),
                    },
                )
            });
            for r in join_all(deletes).await {
                match r {
                    Ok(a) if a.old.is_some() => deleted += 1,
                    // Gone already, or its expiry moved: nothing to do.
                    Ok(_) | Err(DataError::Apply(ApplyError::ConditionalCheckFailed { .. })) => {}
                    // A transaction holds it: the next sweep tries again.
                    Err(DataError::Apply(ApplyError::TransactionConflict)) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "expired item not deleted: next sweep");
                        return deleted;
                    }
                }
            }
        }
        done += expired.len();
        if !full {
            break;
        }
    }
    deleted
}

impl NodeBackend {
    /// Whether this node's replica of partition `partition` of `table` has its expiry index
    /// complete for `attr` (dropped for `None`).
    pub(crate) async fn local_ttl_settled(
        &self,
        table: &str,
        partition: u64,
        attr: Option<String>,
    ) -> Result<bool, DataError> {
        let p = self.ready_replica(table, partition).await?;
        let built = blocking(move || p.ttl_built())
            .await?
            .map_err(crate::backend::internal)?;
        Ok(built == attr)
    }

    /// [`DataPlane::time_to_live_settled`]: asks a replica of each base partition.
    pub(crate) async fn ttl_settled(&self, table: &TableMeta) -> Result<bool, DataError> {
        for partition in self.base_partitions(table)? {
            let attr = table.time_to_live.clone();
            let settled = if self.holds_partition(table, partition) {
                self.local_ttl_settled(&table.name, partition, attr).await?
            } else {
                let call = crate::remote::codec::DataCall::TtlSettled {
                    table: table.name.clone(),
                    partition,
                    attr,
                };
                matches!(
                    self.forward(call).await?,
                    crate::remote::codec::DataReply::Size(1)
                )
            };
            if !settled {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
