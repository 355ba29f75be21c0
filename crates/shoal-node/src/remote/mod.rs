//! Calls on partitions this node holds no replica of.
//!
//! A partition has replicas on `min(3, N)` nodes (see `shoal_meta`'s placement), so a node that
//! a client talks to often holds none of the partition a request needs. The router then sends
//! the whole data-plane call ([`codec::DataCall`]) over the cluster's mutual-TLS RPC (`DATA`) to
//! a node that holds one, which serves it as if a client had asked it: a write goes on to the
//! partition's leader, a consistent read takes a ReadIndex, an eventually consistent read waits
//! for a catching-up replica. The replica asked first is the same for every call from this node
//! (`node id mod replicas`), so a client that writes and then reads through one node reads its
//! own writes as it would on a replica; the others are tried when it is unreachable or no longer
//! a replica.
//!
//! A write is sent again only when it certainly was not run (the peer was not reached, or it
//! answered that it holds no replica); any other failure is returned as it is, since its
//! outcome may be unknown.

pub(crate) mod codec;

use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_catalog::{DataError, QueryRequest, TableMeta};
use shoal_types::index::IndexKind;
use shoal_types::key::partition_hash;

use crate::backend::{NodeBackend, TableHandle};
use crate::cluster::{ROUTE_DEADLINE, kind, rpc};
use crate::gsi_read::GsiRead;
use codec::{DataCall, DataReply};

/// How long a node that refused a call as not run there is asked last.
const REFUSAL_MEMORY: Duration = Duration::from_secs(10);

/// RPC timeout of a forwarded call (a write waits for its apply, a read for a ReadIndex).
const DATA_TIMEOUT: Duration = Duration::from_secs(15);

/// What a node answers for a call on a partition it holds no replica of, or any call once it is
/// stopping: the call did not run.
pub(crate) const NOT_A_REPLICA: &str = "this node holds no replica of the partition";

impl NodeBackend {
    /// Whether this node holds the replica `call` needs (of `handle`, open at `meta`): the
    /// partition of the key for point operations and base-table or LSI queries; the partitions
    /// covering a scan's hash range (the router sends each partition's part of a scan to a
    /// replica of it); any partition of the table for GSI queries and scans and table stats (a
    /// table with a GSI has one partition, and a node's GSI files are fed from its own base
    /// partitions).
    pub(crate) fn holds(&self, handle: &TableHandle, meta: &TableMeta, call: &DataCall) -> bool {
        let key_hash = |pk: Option<&shoal_types::AttributeValue>| {
            pk.map(partition_hash)
                .is_some_and(|h| handle.partition_for_hash(h).is_some())
        };
        match call {
            DataCall::Get { key, .. } => key_hash(key.get(&meta.key_schema.hash.name)),
            DataCall::Write { command, .. } => key_hash(
                command
                    .key_item()
                    .and_then(|k| k.get(&meta.key_schema.hash.name)),
            ),
            DataCall::CollectionSize { partition_key, .. } => key_hash(Some(partition_key)),
            DataCall::Query { request, .. } => holds_query(handle, meta, request),
            DataCall::Scan { request, .. } if !is_global_read(meta, request.index) => {
                covers(handle, request.hash_start, request.hash_end)
            }
            DataCall::PartitionStats { partition, .. }
            | DataCall::IndexBuilt { partition, .. }
            | DataCall::StreamShards { partition, .. }
            | DataCall::StreamRecords { partition, .. }
            | DataCall::TtlSettled { partition, .. } => {
                handle.partitions.iter().any(|p| p.record.id == *partition)
            }
            DataCall::Scan { .. } | DataCall::Stats { .. } | DataCall::IndexActive { .. } => {
                !handle.partitions.is_empty()
            }
            DataCall::Shard { start, end, .. } => covers(handle, *start, *end),
        }
    }

    /// Runs `call` on a node holding the replica it needs (see the module docs).
    pub(crate) async fn forward(&self, call: DataCall) -> Result<DataReply, DataError> {
        let cluster = self.cluster()?;
        let payload: bytes::Bytes = call.encode().into();
        let write = matches!(call, DataCall::Write { .. });
        let deadline = Instant::now() + ROUTE_DEADLINE;
        let mut backoff = Duration::from_millis(10);
        let mut last = String::from("no replica is known");
        loop {
            for node in self.by_refusals(self.replicas_for(&call)) {
                if node == cluster.node_id {
                    continue;
                }
                let Some(addr) = cluster.peer_addr(node) else {
                    continue;
                };
                let reply = match cluster
                    .rpc
                    .call(&addr, kind::DATA, payload.clone(), DATA_TIMEOUT)
                    .await
                {
                    Ok(reply) => reply,
                    Err(e) if rpc::not_sent(&e) => {
                        last = format!("node {node} unreachable: {e}");
                        continue;
                    }
                    Err(e) if !write => {
                        last = format!("node {node}: {e}");
                        continue;
                    }
                    Err(e) => {
                        return Err(DataError::Unavailable(format!(
                            "the write was forwarded to node {node} and its outcome is unknown: {e}"
                        )));
                    }
                };
                match codec::decode_result(&call, &reply) {
                    // Split since it was routed: the caller routes it again.
                    Ok(Err(e)) if crate::split::is_wrong_partition(&e) => return Err(e),
                    Ok(Err(DataError::Unavailable(why)))
                        if why == NOT_A_REPLICA || (!write && is_retryable(&why)) =>
                    {
                        if why == NOT_A_REPLICA {
                            self.refused_by.lock().insert(node, Instant::now());
                        }
                        last = format!("node {node}: {why}");
                    }
                    Ok(result) => return result,
                    Err(e) => {
                        return Err(DataError::Internal(format!(
                            "undecodable reply from node {node}: {e}"
                        )));
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(DataError::Unavailable(format!(
                    "no replica of the partition could serve the request ({last}): retry"
                )));
            }
            // The placement may have changed: ask the metadata leader before the next round.
            let _ = cluster.refresh_meta().await;
            if self.split_apart(&call) || self.holds_now(&call) {
                return Err(DataError::Unavailable(
                    crate::split::WRONG_PARTITION.to_string(),
                ));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    /// `replicas` with the nodes that recently refused a call as not run here (stopping, or
    /// no longer a replica) moved last: a stopping node refuses every call until it closes its
    /// connections, and a call sent to it just as it closes them would be lost mid-flight (for
    /// a write: an unknown outcome), so calls go to the other replicas first meanwhile.
    fn by_refusals(&self, mut replicas: Vec<u64>) -> Vec<u64> {
        let mut refused = self.refused_by.lock();
        refused.retain(|_, at| at.elapsed() < REFUSAL_MEMORY);
        // A stable sort: the preferred order otherwise.
        replicas.sort_by_key(|n| refused.contains_key(n));
        replicas
    }

    /// Whether this node now holds the replica `call` needs (a child partition split off a
    /// local replica opened here meanwhile): the router serves it here.
    fn holds_now(&self, call: &DataCall) -> bool {
        let routed = matches!(
            call,
            DataCall::Get { .. }
                | DataCall::Write { .. }
                | DataCall::Query { .. }
                | DataCall::Scan { .. }
                | DataCall::Shard { .. }
        );
        routed
            && self.handle(call.table()).is_ok_and(|h| {
                let meta = h.meta.read().clone();
                !h.partitions.is_empty() && self.holds(&h, &meta, call)
            })
    }

    /// Whether `call` is a part of a scan whose hash range no longer lies in one partition (it
    /// was split since): the router cuts the scan again.
    fn split_apart(&self, call: &DataCall) -> bool {
        let Ok(cluster) = self.cluster() else {
            return false;
        };
        let meta = cluster.meta();
        if let DataCall::Shard { start, end, .. } = call {
            return meta
                .tables
                .get(call.table())
                .is_some_and(|t| t.partitions.overlapping(None, *start, *end).count() > 1);
        }
        let DataCall::Scan { request, .. } = call else {
            return false;
        };
        meta.tables.get(call.table()).is_some_and(|t| {
            !is_global_read(&t.meta, request.index)
                && t.partitions
                    .overlapping(None, request.hash_start, request.hash_end)
                    .count()
                    > 1
        })
    }

    /// The nodes holding the replica `call` needs, the preferred one first.
    fn replicas_for(&self, call: &DataCall) -> Vec<u64> {
        let Ok(cluster) = self.cluster() else {
            return Vec::new();
        };
        let meta = cluster.meta();
        let Some(entry) = meta.tables.get(call.table()) else {
            return Vec::new();
        };
        let hash = match call {
            DataCall::Get { key, .. } => key
                .get(&entry.meta.key_schema.hash.name)
                .map(partition_hash),
            DataCall::Write { command, .. } => command
                .key_item()
                .and_then(|k| k.get(&entry.meta.key_schema.hash.name))
                .map(partition_hash),
            DataCall::CollectionSize { partition_key, .. } => Some(partition_hash(partition_key)),
            DataCall::Query { request, .. } => Some(partition_hash(&request.partition_key)),
            DataCall::Scan { request, .. } => Some(request.hash_start),
            DataCall::Shard { start, .. } => Some(*start),
            DataCall::Stats { .. }
            | DataCall::IndexActive { .. }
            | DataCall::IndexBuilt { .. }
            | DataCall::PartitionStats { .. }
            | DataCall::StreamShards { .. }
            | DataCall::StreamRecords { .. }
            | DataCall::TtlSettled { .. } => None,
        };
        let part = match (hash, call) {
            (Some(h), _) => entry.partitions.find(None, h),
            (
                None,
                DataCall::PartitionStats { partition, .. }
                | DataCall::IndexBuilt { partition, .. }
                | DataCall::StreamShards { partition, .. }
                | DataCall::StreamRecords { partition, .. }
                | DataCall::TtlSettled { partition, .. },
            ) => entry.partitions.get(*partition),
            (None, _) => entry.partitions.of(None).next(),
        };
        let Some(part) = part else {
            return Vec::new();
        };
        let mut replicas = part.replicas.clone();
        if !replicas.is_empty() {
            let first = (cluster.node_id as usize) % replicas.len();
            replicas.rotate_left(first);
        }
        replicas
    }

    /// Serves a `DATA` call from another node: runs it here if this node holds the replica it
    /// needs, else says so ([`NOT_A_REPLICA`]) and the caller asks another node.
    pub(crate) async fn serve_data_call(&self, payload: &[u8]) -> Result<Vec<u8>, String> {
        let call = DataCall::decode(payload)?;
        let cluster = self.cluster().map_err(|e| e.to_string())?;
        let result = match cluster.data_calls.enter() {
            Some(_running) => self.run_here(call).await,
            // Stopping: not run, so the caller may send it to another replica.
            None => Err(DataError::Unavailable(NOT_A_REPLICA.to_string())),
        };
        Ok(codec::encode_result(result))
    }

    async fn run_here(&self, call: DataCall) -> Result<DataReply, DataError> {
        use shoal_catalog::DataPlane as _;
        let handle = self.handle_fresh(call.table()).await?;
        let meta = handle.meta.read().clone();
        if !self.holds(&handle, &meta, &call) {
            return Err(DataError::Unavailable(NOT_A_REPLICA.to_string()));
        }
        drop(handle);
        Ok(match call {
            DataCall::Get {
                key, consistent, ..
            } => DataReply::Item(self.get(&meta, &key, consistent).await?),
            DataCall::Query { request, .. } => DataReply::Page(self.query(&meta, request).await?),
            DataCall::Shard { start, end, call } => {
                let read = match *call {
                    DataCall::Query { request, .. } => GsiRead::Query(Arc::new(request)),
                    DataCall::Scan { request, .. } => GsiRead::Scan(Arc::new(request)),
                    _ => return Err(DataError::Internal("malformed shard call".to_string())),
                };
                DataReply::Page(self.read_gsi_here(&meta, read, start, end).await?)
            }
            DataCall::Scan { request, .. } => DataReply::Page(self.scan(&meta, request).await?),
            DataCall::Write { command, .. } => {
                DataReply::Applied(self.write(&meta, command).await?)
            }
            DataCall::CollectionSize { partition_key, .. } => {
                DataReply::Size(self.item_collection_size(&meta, &partition_key).await?)
            }
            DataCall::Stats { table, index } => DataReply::Stats(match index {
                None => self.table_stats(&table).await?,
                Some(i) => self.index_stats(&table, i).await?,
            }),
            DataCall::PartitionStats {
                table,
                partition,
                index,
            } => DataReply::Stats(self.local_partition_stats(&table, partition, index)?),
            DataCall::IndexBuilt { index, .. } => {
                let built = self.gsi_built.lock().contains(&(meta.id.clone(), index));
                DataReply::Size(u64::from(index_active(&meta, index) || built))
            }
            DataCall::IndexActive { index, .. } => {
                DataReply::Size(u64::from(index_active(&meta, index)))
            }
            DataCall::TtlSettled {
                table,
                partition,
                attr,
            } => DataReply::Size(u64::from(
                self.local_ttl_settled(&table, partition, attr).await?,
            )),
            DataCall::StreamShards {
                table,
                partition,
                stream,
            } => {
                let (shards, writing) = self.local_shards(&table, partition, stream).await?;
                DataReply::Shards(shards, writing)
            }
            DataCall::StreamRecords {
                table,
                partition,
                stream,
                epoch,
                from,
                limit,
            } => DataReply::Records(
                self.local_records(&table, partition, stream, epoch, from, limit)
                    .await?,
            ),
        })
    }

    /// A global index still being created becomes active on this node once every base
    /// partition finished its backfill: the local replicas here (`gsi_built`), each other
    /// partition on a node holding a replica of it. Until then a GSI read through this node
    /// could miss entries of a partition still being backfilled elsewhere. Run by the
    /// reconciler.
    pub(crate) async fn follow_index_status(&self, handle: &Arc<TableHandle>) {
        let meta = handle.meta.read().clone();
        let Ok(cluster) = self.cluster() else {
            return;
        };
        let partitions: Vec<u64> = cluster
            .meta()
            .tables
            .get(&meta.name)
            .filter(|t| t.meta.id == meta.id)
            .map(|t| t.partitions.of(None).map(|p| p.id).collect())
            .unwrap_or_default();
        let here = !handle.partitions.is_empty();
        for def in meta.indexes.iter().filter(|d| {
            d.kind == IndexKind::Global && d.status == shoal_types::index::IndexStatus::Creating
        }) {
            if here && !self.gsi_built.lock().contains(&(meta.id.clone(), def.id)) {
                continue;
            }
            let done = if !here && partitions.len() <= 1 {
                // One partition, held elsewhere: its replicas' status is the index's (asked as
                // nodes of every version answer it).
                let call = DataCall::IndexActive {
                    table: meta.name.clone(),
                    index: def.id,
                };
                matches!(self.forward(call).await, Ok(DataReply::Size(1)))
            } else {
                self.built_elsewhere(handle, &meta.name, def.id, &partitions)
                    .await
            };
            if done && let Err(e) = self.index_work().mark_active(handle, def.id).await {
                tracing::warn!(table = %meta.name, index = def.id, error = %e, "marking an index active failed; retrying");
            }
        }
    }

    /// Whether a replica of every partition of `partitions` not held here says its backfill
    /// of global index `index` finished.
    async fn built_elsewhere(
        &self,
        handle: &TableHandle,
        table: &str,
        index: u32,
        partitions: &[u64],
    ) -> bool {
        for &partition in partitions {
            if handle.partitions.iter().any(|p| p.record.id == partition) {
                continue;
            }
            let call = DataCall::IndexBuilt {
                table: table.to_string(),
                index,
                partition,
            };
            if !matches!(self.forward(call).await, Ok(DataReply::Size(1))) {
                return false;
            }
        }
        true
    }
}

/// Whether index `index` of `meta` is active.
fn index_active(meta: &TableMeta, index: u32) -> bool {
    meta.indexes
        .iter()
        .any(|d| d.id == index && d.status == shoal_types::index::IndexStatus::Active)
}

/// Whether this node holds what `request` reads: the partition of its key for the table or an
/// LSI; any partition of the table for a GSI (the read of every partition's shard starts here).
pub(crate) fn holds_query(handle: &TableHandle, meta: &TableMeta, request: &QueryRequest) -> bool {
    if is_global_read(meta, request.index) {
        !handle.partitions.is_empty()
    } else {
        handle
            .partition_for_hash(partition_hash(&request.partition_key))
            .is_some()
    }
}

/// Whether a read of `index` on `meta` reads a global secondary index.
fn is_global_read(meta: &TableMeta, index: Option<u32>) -> bool {
    index.is_some_and(|id| {
        meta.indexes
            .iter()
            .any(|d| d.id == id && d.kind == IndexKind::Global)
    })
}

/// Whether the local partitions of `handle` cover the hashes `start..=end` without a gap.
pub(crate) fn covers(handle: &TableHandle, start: u64, end: u64) -> bool {
    let mut at = start;
    loop {
        let Some(p) = handle.partition_for_hash(at) else {
            return false;
        };
        if p.record.hash_end >= end {
            return true;
        }
        at = p.record.hash_end + 1;
    }
}

/// Whether a read refused with `why` may be asked of another replica (one catching up, or
/// waiting for a leader).
fn is_retryable(why: &str) -> bool {
    why.contains("retry") || why.contains("catching up")
}

impl NodeBackend {
    /// The stats of table `name` (or of its index `index`): summed over its partitions, each
    /// from the local replica or a node holding one. A table of one partition that this node
    /// holds no replica of asks one node for all (as nodes before partition stats did).
    pub(crate) async fn spread_stats(
        &self,
        name: &str,
        index: Option<u32>,
    ) -> Result<shoal_catalog::TableStats, DataError> {
        let handle = self.handle(name)?;
        let partitions: Vec<u64> = match self.cluster() {
            Ok(cluster) => cluster
                .meta()
                .tables
                .get(name)
                .map(|t| t.partitions.of(None).map(|p| p.id).collect())
                .unwrap_or_default(),
            // No cluster (unit tests): every partition is local.
            Err(_) => handle.partitions.iter().map(|p| p.record.id).collect(),
        };
        let local = |id: u64| handle.partitions.iter().any(|p| p.record.id == id);
        if partitions.len() <= 1 && !partitions.iter().copied().all(local) {
            return self.remote_stats(name, index).await;
        }
        let mut total = shoal_catalog::TableStats::default();
        for id in partitions {
            let s = if local(id) {
                self.local_partition_stats(name, id, index)?
            } else {
                let call = DataCall::PartitionStats {
                    table: name.to_string(),
                    partition: id,
                    index,
                };
                match self.forward(call).await? {
                    DataReply::Stats(s) => s,
                    other => return Err(wrong_reply(&other)),
                }
            };
            total.item_count += s.item_count;
            total.size_bytes += s.size_bytes;
        }
        Ok(total)
    }

    /// The stats of the local replica of partition `id` of table `name` (or of its index
    /// `index` in it: its entries, or its shard of a global index).
    fn local_partition_stats(
        &self,
        name: &str,
        id: u64,
        index: Option<u32>,
    ) -> Result<shoal_catalog::TableStats, DataError> {
        let handle = self.handle(name)?;
        let p = handle
            .partitions
            .iter()
            .find(|p| p.record.id == id)
            .ok_or_else(|| DataError::Unavailable(NOT_A_REPLICA.to_string()))?;
        let s = match index {
            None => p.partition.stats(),
            // A global index: the partition's shard (none while it is being deleted).
            Some(i) => match p.gsis.read().get(&i) {
                Some(gsi) => return Ok(gsi.stats()),
                None => p.partition.index_stats(i),
            },
        };
        Ok(shoal_catalog::TableStats {
            item_count: s.item_count,
            size_bytes: s.size_bytes,
        })
    }

    /// The stats of table `name` (or of its index `index`) from a node holding a replica.
    pub(crate) async fn remote_stats(
        &self,
        name: &str,
        index: Option<u32>,
    ) -> Result<shoal_catalog::TableStats, DataError> {
        let call = DataCall::Stats {
            table: name.to_string(),
            index,
        };
        match self.forward(call).await? {
            DataReply::Stats(s) => Ok(s),
            other => Err(wrong_reply(&other)),
        }
    }
}

fn wrong_reply(reply: &DataReply) -> DataError {
    DataError::Internal(format!(
        "a forwarded call got the wrong kind of reply: {reply:?}"
    ))
}

impl DataReply {
    pub(crate) fn into_item(self) -> Result<Option<shoal_types::Item>, DataError> {
        match self {
            DataReply::Item(i) => Ok(i),
            other => Err(wrong_reply(&other)),
        }
    }

    pub(crate) fn into_page(self) -> Result<shoal_storage::Page, DataError> {
        match self {
            DataReply::Page(p) => Ok(p),
            other => Err(wrong_reply(&other)),
        }
    }

    pub(crate) fn into_applied(self) -> Result<shoal_storage::Applied, DataError> {
        match self {
            DataReply::Applied(a) => Ok(a),
            other => Err(wrong_reply(&other)),
        }
    }

    pub(crate) fn into_size(self) -> Result<u64, DataError> {
        match self {
            DataReply::Size(n) => Ok(n),
            other => Err(wrong_reply(&other)),
        }
    }
}

#[cfg(test)]
mod tests;
