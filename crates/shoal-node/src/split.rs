//! Partition splits: a partition that grew past the split size (or stays hot) is cut in two
//! hash-range halves, online, and the halves then spread over the nodes like any partition.
//!
//! 1. The partition's leader proposes [`MetaCommand::SplitPartition`]: the metadata now maps the
//!    upper half of the range to a new child partition on the same replicas (`splitting`, so
//!    placement leaves it and its parent alone for now), and both get a new epoch.
//! 2. The leader proposes [`Command::Split`] to the partition's own log. Each replica applies it
//!    where it stands among the writes: from there on the replica refuses keys of the upper half
//!    (`ApplyError::WrongPartition`), so those rows are frozen as of the split. A leader that
//!    dies between 1 and 2 is replaced by one that finds the split in the metadata but not in
//!    its replica and proposes it (idempotent: applying it twice changes nothing).
//! 3. Each node holding the parent copies the frozen rows into the child's new file
//!    (`shoal_storage::Partition::build_child`) and starts the child's group from it
//!    (bootstrap: every copy is the same, as of the same log entry); a replica of the child
//!    without the rows (its parent arrived by a snapshot taken after they were dropped) joins the
//!    group and catches up by snapshot. The child's first leader clears `splitting`.
//! 4. Each parent replica drops the copied rows once its node runs the child (or holds no
//!    replica of it).
//!
//! Requests routed with a map older than the split are refused where they land (a write by the
//! apply's range check, a read by the replica's own range) and the router retries them with a
//! fresh map ([`NodeBackend::rerouted`]), within the usual route deadline: clients see no error.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_catalog::{DataError, PartitionEntry};
use shoal_meta::{MetaCommand, MetaResult};
use shoal_storage::{ApplyError, Command, SplitChild};

use crate::backend::{NodeBackend, PartitionHandle, TableHandle, blocking};
use crate::cluster::{Cluster, ROUTE_DEADLINE};

/// Default split size: a partition whose items take more than 256 MiB is split (see
/// docs/OPERATIONS.md for why: the child's copy stays well inside the route deadline).
pub const DEFAULT_SPLIT_SIZE_BYTES: u64 = 256 << 20;
/// The smallest split size accepted (tests use small ones).
pub const MIN_SPLIT_SIZE_BYTES: u64 = 64 << 10;
/// Heat: a partition whose leader applies more writes per second than this, on average over
/// [`HEAT_WINDOW`], is split (DynamoDB's documented write limit of one partition).
pub const SPLIT_HEAT_WRITES_PER_SEC: u64 = 1_000;
/// The window over which heat is averaged.
pub const HEAT_WINDOW: Duration = Duration::from_secs(60);
/// How often a node looks at the partitions it leads.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What a replica answers for a read outside its range: the partition was split since the
/// request was routed (the router retries with a fresh map).
pub(crate) const WRONG_PARTITION: &str =
    "the partition was split since the request was routed: retry";

/// Whether `e` says the request went to a partition that no longer holds its key.
pub(crate) fn is_wrong_partition(e: &DataError) -> bool {
    match e {
        DataError::Apply(ApplyError::WrongPartition) => true,
        DataError::Unavailable(why) => why == WRONG_PARTITION,
        _ => false,
    }
}

/// Whether `e` says the request ran into a local replica that left its group (moved away; the
/// node drops it shortly): it did not run, and the router routes it again.
fn is_moved_away(e: &DataError) -> bool {
    matches!(e, DataError::Unavailable(why) if why == crate::remote::NOT_A_REPLICA)
}

/// The refusal of a read of `part` outside its range.
pub(crate) fn check_owns(part: &PartitionHandle, hash: u64) -> Result<(), DataError> {
    if part.partition.owns(hash) {
        Ok(())
    } else {
        Err(DataError::Unavailable(WRONG_PARTITION.to_string()))
    }
}

/// The refusal of a scan of `start..=end` of `part` reaching outside its range.
pub(crate) fn check_covers(part: &PartitionHandle, start: u64, end: u64) -> Result<(), DataError> {
    if part.partition.covers(start, end) {
        Ok(())
    } else {
        Err(DataError::Unavailable(WRONG_PARTITION.to_string()))
    }
}

/// Write rate of one led partition, measured over [`HEAT_WINDOW`].
struct Heat {
    since: Instant,
    applied: u64,
}

impl Heat {
    /// Whether the partition stayed hot over a whole window ending now.
    fn hot(&mut self, applied: u64, threshold: u64) -> bool {
        let elapsed = self.since.elapsed();
        if elapsed < HEAT_WINDOW {
            return false;
        }
        let rate = applied.saturating_sub(self.applied) as f64 / elapsed.as_secs_f64();
        self.since = Instant::now();
        self.applied = applied;
        rate >= threshold as f64
    }
}

impl NodeBackend {
    /// Runs `call` again while it lands on a partition split since it was routed, with a fresh
    /// map each time, until it is done or [`ROUTE_DEADLINE`] passes.
    pub(crate) async fn rerouted<T, F, Fut>(&self, mut call: F) -> Result<T, DataError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, DataError>>,
    {
        let deadline = Instant::now() + ROUTE_DEADLINE;
        let mut backoff = Duration::from_millis(5);
        loop {
            match call().await {
                Err(e)
                    if (is_wrong_partition(&e) || is_moved_away(&e))
                        && Instant::now() < deadline =>
                {
                    if let Ok(cluster) = self.cluster() {
                        let _ = cluster.refresh_meta().await;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    /// How a new local replica of child partition `p` (split off `parent` of `handle`) starts:
    /// `Some(child)` when this node's replica of the parent holds the child's rows to copy,
    /// `None` when it joins the group empty; `Err` while the parent's replica has not applied
    /// the split yet (try again later).
    pub(crate) fn child_rows(
        &self,
        handle: &TableHandle,
        p: &PartitionEntry,
    ) -> Result<Option<(PartitionHandle, SplitChild)>, ()> {
        let Some(parent_id) = p.parent else {
            return Ok(None);
        };
        if p.generation != 0 {
            return Ok(None);
        }
        let Some(parent) = handle.partitions.iter().find(|h| h.record.id == parent_id) else {
            tracing::debug!(child = p.id, parent = parent_id, "no local parent replica");
            return Ok(None);
        };
        let epoch = parent.partition.owned_range().map_or(0, |r| r.epoch);
        if epoch < p.epoch {
            return Err(());
        }
        let children = parent.partition.split_children();
        tracing::debug!(
            child = p.id,
            parent = parent_id,
            epoch,
            ?children,
            "child partition's rows"
        );
        Ok(children
            .into_iter()
            .find(|c| c.child == p.id)
            .map(|c| (parent.clone(), c)))
    }

    /// Drops the rows of children split off the local replicas of `entry`'s table once this
    /// node runs the child (or holds no replica of it).
    pub(crate) async fn drop_split_rows(&self, cluster: &Cluster, name: &str) {
        let Some(handle) = self.tables.read().get(name).cloned() else {
            return;
        };
        // The latest map: a child unknown to an older copy must not lose its rows.
        let meta = cluster.meta();
        let Some(entry) = meta.tables.get(name) else {
            return;
        };
        for part in &handle.partitions {
            for child in part.partition.split_children() {
                let Some(placed) = entry.partitions.get(child.child) else {
                    continue;
                };
                if placed.replicas.contains(&cluster.node_id)
                    && !self.groups.lock().contains(&child.child)
                {
                    continue;
                }
                let partition = Arc::clone(&part.partition);
                let dropped = blocking(move || partition.drop_split_off(child.child)).await;
                // The drop wrote outbox deletes of the rows' GSI entries.
                part.shipper.poke();
                match dropped {
                    Ok(Ok(_)) => tracing::info!(
                        group = part.record.id,
                        child = child.child,
                        "rows split off to the child partition dropped here"
                    ),
                    Ok(Err(e)) => {
                        tracing::warn!(group = part.record.id, error = %e, "dropping split rows failed; retrying")
                    }
                    Err(e) => tracing::warn!(error = %e, "dropping split rows failed; retrying"),
                }
            }
        }
    }
}

/// Writes the file of child partition `id` of a table in `dir` from its rows in `parent` (run
/// before the child's replica opens). A file left by an interrupted copy is replaced.
pub(crate) fn copy_child(
    dir: &std::path::Path,
    id: u64,
    parent: &shoal_storage::Partition,
    child: &SplitChild,
    key: &shoal_crypto::DataKey,
) -> Result<(), crate::NodeError> {
    let path = crate::backend::partition_path(dir, id);
    let started = Instant::now();
    // With the GSI shards an interrupted copy's replica may have filled: the new file's outbox
    // feeds them again from its first record.
    for stale in std::iter::once(path.clone()).chain(crate::gsi::gsi_files(dir, None, Some(id))) {
        shoal_storage::SqlCipherEngine::destroy(&stale)
            .map_err(|e| crate::NodeError::storage_in(e, &stale))?;
    }
    let engine = shoal_storage::SqlCipherEngine::open(
        &path,
        key.as_bytes(),
        shoal_storage::Durability::Sync,
    )
    .map_err(|e| crate::NodeError::storage_in(e, &path))?;
    parent
        .build_child(child, &engine)
        .map_err(|e| crate::NodeError::storage_in(e, &path))?;
    tracing::info!(
        child = id,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "child partition's rows copied from its parent"
    );
    Ok(())
}

/// Looks at the partitions this node leads, every [`CHECK_EVERY`]: settles children that run,
/// carries splits the metadata has but the partition's log lacks, and splits partitions over
/// the split size or hot.
pub(crate) fn spawn_splitter(
    backend: Arc<NodeBackend>,
    cluster: Arc<Cluster>,
    split_size: u64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut heat: HashMap<u64, Heat> = HashMap::new();
        loop {
            split_once(&backend, &cluster, split_size, &mut heat).await;
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
        }
    })
}

async fn split_once(
    backend: &NodeBackend,
    cluster: &Cluster,
    split_size: u64,
    heat: &mut HashMap<u64, Heat>,
) {
    let meta = cluster.meta();
    // An older member could not apply the split or copy the child's rows.
    if meta.write_format() < 4 {
        return;
    }
    let groups = cluster.raft.status();
    let led: Vec<&shoal_raft::GroupStatus> = groups
        .iter()
        .filter(|g| g.leader == Some(cluster.node_id) && g.role == "Leader")
        .collect();
    heat.retain(|id, _| led.iter().any(|g| g.group == *id));
    let handles: Vec<Arc<TableHandle>> = backend.tables.read().values().cloned().collect();
    for handle in handles {
        let table_id = handle.meta.read().id.clone();
        let Some(entry) = meta.table_by_id(&table_id) else {
            continue;
        };
        // Until every member shards global indexes by partition, a table with one keeps one
        // partition (an older member feeds the index from it).
        let global = entry.partitions.all().iter().any(|p| p.index.is_some())
            || (meta.write_format() < shoal_meta::GLOBAL_INDEX_SPLIT_FORMAT
                && crate::gsi::stored_gsis(&entry.meta.indexes)
                    .next()
                    .is_some());
        // Provisioned throughput raised since the table was created: as many partitions as
        // DynamoDB's per-partition limits imply, by halving the widest ranges.
        let wanted =
            crate::backend::initial_partitions(&entry.meta).min(shoal_meta::MAX_INITIAL_PARTITIONS);
        let width_wanted = u64::MAX / wanted.max(1);
        let short = (entry.partitions.of(None).count() as u64) < wanted;
        for part in &handle.partitions {
            let id = part.record.id;
            let Some(g) = led.iter().find(|g| g.group == id) else {
                continue;
            };
            let Some(p) = entry.partitions.get(id) else {
                continue;
            };
            if p.splitting {
                // Every voter holds the child's rows (its own copy, or the leader's snapshot)
                // and its log: from now on placement may move the child and its parent.
                let caught_up = g.voters.iter().all(|v| {
                    g.progress
                        .iter()
                        .any(|(id, matched)| id == v && *matched >= g.commit)
                });
                if caught_up {
                    settle(cluster, &table_id, id).await;
                }
                continue;
            }
            // The metadata split it, and this replica still serves past its new end (never
            // split, or not this time): the split has to be carried to its log.
            let local_end = part.partition.owned_range().map(|r| r.end);
            let child =
                entry.partitions.all().iter().find(|c| {
                    c.parent == Some(id) && p.hash_end.checked_add(1) == Some(c.hash_start)
                });
            if let Some(child) = child
                && local_end.is_none_or(|end| end > p.hash_end)
            {
                carry_split(cluster, part, p, child).await;
                continue;
            }
            let hot = heat
                .entry(id)
                .or_insert_with(|| Heat {
                    since: Instant::now(),
                    applied: g.applied,
                })
                .hot(g.applied, SPLIT_HEAT_WRITES_PER_SEC);
            let size = part.partition.stats().size_bytes;
            let throughput = short && p.hash_end - p.hash_start > width_wanted;
            if global || (size < split_size && !hot && !throughput) {
                continue;
            }
            if crate::cluster::moving(&groups, &meta, id)
                || !part.partition.split_children().is_empty()
            {
                continue;
            }
            let Some(at) = p.midpoint() else {
                continue;
            };
            tracing::info!(
                group = id,
                size_bytes = size,
                hot,
                throughput,
                at,
                "splitting a partition"
            );
            let split = MetaCommand::SplitPartition {
                table_id: table_id.clone(),
                partition: id,
                epoch: p.epoch,
                at,
            };
            match cluster.meta_propose(split).await {
                Ok(MetaResult::Ok) => {}
                other => {
                    tracing::debug!(group = id, result = ?other, "split not recorded");
                    continue;
                }
            }
            let meta = cluster.meta();
            let Some(entry) = meta.table_by_id(&table_id) else {
                continue;
            };
            let (Some(p), Some(child)) = (
                entry.partitions.get(id),
                entry
                    .partitions
                    .all()
                    .iter()
                    .find(|c| c.parent == Some(id) && c.hash_start == at),
            ) else {
                continue;
            };
            carry_split(cluster, part, p, child).await;
        }
    }
}

/// Proposes the split the metadata recorded (`p` now ends before `child`) to `p`'s own log.
async fn carry_split(
    cluster: &Cluster,
    part: &PartitionHandle,
    p: &PartitionEntry,
    child: &PartitionEntry,
) {
    let command = Command::Split {
        start: p.hash_start,
        end: p.hash_end,
        epoch: p.epoch,
        child: SplitChild {
            child: child.id,
            start: child.hash_start,
            end: child.hash_end,
            epoch: child.epoch,
        },
    };
    match cluster
        .write(p.id, &command, part.applied.subscribe())
        .await
    {
        Ok(Ok(_)) => tracing::info!(
            group = p.id,
            child = child.id,
            at = child.hash_start,
            "partition split"
        ),
        Ok(Err(e)) => tracing::warn!(group = p.id, error = %e, "split refused"),
        Err(e) => tracing::debug!(group = p.id, error = %e, "split not applied; retrying"),
    }
}

/// Tells the metadata that the child partition `id`, which this node leads, runs.
async fn settle(cluster: &Cluster, table_id: &str, id: u64) {
    let command = MetaCommand::SplitSettled {
        table_id: table_id.to_string(),
        partition: id,
    };
    if let Err(e) = cluster.meta_propose(command).await {
        tracing::debug!(group = id, error = %e, "settling a split partition not proposed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_is_the_write_rate_over_a_whole_window() {
        let window_ago = Instant::now() - HEAT_WINDOW;
        let mut heat = Heat {
            since: window_ago,
            applied: 100,
        };
        // Just over 1,000 writes/s over the window: hot, and a new window starts.
        let applied = 100 + SPLIT_HEAT_WRITES_PER_SEC * (HEAT_WINDOW.as_secs() + 1);
        assert!(heat.hot(applied, SPLIT_HEAT_WRITES_PER_SEC));
        assert_eq!(heat.applied, applied);
        // Within the new window nothing is decided yet.
        assert!(!heat.hot(applied * 10, SPLIT_HEAT_WRITES_PER_SEC));
        // Half the rate over a whole window: not hot.
        let mut cool = Heat {
            since: window_ago,
            applied: 0,
        };
        assert!(!cool.hot(
            SPLIT_HEAT_WRITES_PER_SEC * HEAT_WINDOW.as_secs() / 2,
            SPLIT_HEAT_WRITES_PER_SEC
        ));
    }

    #[test]
    fn wrong_partition_and_moved_away_are_rerouted() {
        assert!(is_wrong_partition(&DataError::Apply(
            ApplyError::WrongPartition
        )));
        assert!(is_wrong_partition(&DataError::Unavailable(
            WRONG_PARTITION.to_string()
        )));
        assert!(is_moved_away(&DataError::Unavailable(
            crate::remote::NOT_A_REPLICA.to_string()
        )));
        assert!(!is_wrong_partition(&DataError::Unavailable(
            "the write was not applied in time; its outcome is unknown".to_string()
        )));
    }
}
