//! Streams on the node: each base partition writes the change records of the table's enabled
//! stream in its applies. Which stream that is goes through the partition's log: the leader
//! proposes `Command::SetStream` when the catalog's ([`setting`]) differs from the one applied
//! ([`NodeBackend::sync_stream_settings`], run by the reconciler), so every replica starts and
//! stops at the same entry. [`NodeBackend::shards`] and [`NodeBackend::records`] read them from a replica of
//! each partition, here or on a node holding one (`DATA` calls); a trimmer deletes, on every
//! replica, records older than the retention and the rows of streams no longer kept.
//!
//! A shard is a base partition at one epoch (see `shoal_catalog::ShardId`): the split that
//! closes a shard writes its close row, naming its two children, in the parent partition. The
//! shard list is assembled from every partition's rows, a child's parent found in those close
//! rows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use shoal_catalog::{
    DataError, RecordsFrom, RecordsPage, STREAM_RETENTION_SECS, ShardId, ShardInfo, StreamDef,
    StreamShards, TableMeta,
};
use shoal_storage::{ChangeReadError, ShardSummary, StreamSetting};

use crate::backend::{NodeBackend, blocking, internal};
use crate::remote::codec::{DataCall, DataReply};

/// How often each replica trims its change records.
const TRIM_EVERY: Duration = Duration::from_secs(60);

/// What partition `partition` of the table with `meta` writes records for.
pub(crate) fn setting(meta: &TableMeta, partition: u64) -> Option<StreamSetting> {
    meta.stream().map(|s| StreamSetting {
        stream: s.id,
        view: s.view_type,
        partition,
    })
}

/// What partition `partition` of the table with `meta` starts its log writing records for: the
/// stream CreateTable enabled, if any.
pub(crate) fn initial_setting(meta: &TableMeta, partition: u64) -> Option<StreamSetting> {
    meta.initial_stream.map(|(stream, view)| StreamSetting {
        stream,
        view,
        partition,
    })
}

impl NodeBackend {
    /// Proposes, for each base partition this node leads, the stream change that makes it
    /// follow its table's stream, where the applied setting differs.
    pub(crate) async fn sync_stream_settings(&self, cluster: &crate::cluster::Cluster) {
        let handles: Vec<_> = self.tables.read().values().cloned().collect();
        let mut led: Option<std::collections::HashSet<u64>> = None;
        for handle in handles {
            let meta = Arc::clone(&handle.meta.read());
            for part in &handle.partitions {
                let Some(change) = part.partition.stream_change(setting(&meta, part.record.id))
                else {
                    continue;
                };
                let led = led.get_or_insert_with(|| {
                    cluster
                        .raft
                        .status()
                        .iter()
                        .filter(|g| g.leader == Some(cluster.node_id) && g.role == "Leader")
                        .map(|g| g.group)
                        .collect()
                });
                if !led.contains(&part.record.id) {
                    continue;
                }
                let applied = part.applied.subscribe();
                if let Err(e) = cluster.write(part.record.id, &change, applied).await {
                    tracing::debug!(table = %meta.name, partition = part.record.id, error = %e, "stream change not applied yet");
                }
            }
        }
    }

    /// The base partitions of `table`: from the cluster's map, or the local ones without a
    /// cluster.
    pub(crate) fn base_partitions(&self, table: &TableMeta) -> Result<Vec<u64>, DataError> {
        match self.cluster() {
            Ok(cluster) => Ok(cluster
                .meta()
                .tables
                .get(&table.name)
                .filter(|t| t.meta.id == table.id)
                .map(|t| t.partitions.of(None).map(|p| p.id).collect())
                .unwrap_or_default()),
            Err(_) => Ok(self
                .handle_for(table)?
                .partitions
                .iter()
                .map(|p| p.record.id)
                .collect()),
        }
    }

    /// This node's replica of partition `partition` of `table`, ready to read (a replica
    /// catching up waits for it, as eventually consistent reads do). `Unavailable`
    /// ([`crate::remote::NOT_A_REPLICA`]) when this node holds none.
    pub(crate) async fn ready_replica(
        &self,
        table: &str,
        partition: u64,
    ) -> Result<Arc<shoal_storage::Partition>, DataError> {
        let handle = self.handle(table)?;
        let part = handle
            .partitions
            .iter()
            .find(|p| p.record.id == partition)
            .ok_or_else(|| DataError::Unavailable(crate::remote::NOT_A_REPLICA.to_string()))?;
        part.check_readable()?;
        self.ensure_ready(part).await?;
        Ok(Arc::clone(&part.partition))
    }

    /// The shards of stream `stream` in this node's replica of partition `partition`, and
    /// whether it writes the stream's records now.
    pub(crate) async fn local_shards(
        &self,
        table: &str,
        partition: u64,
        stream: u32,
    ) -> Result<(Vec<ShardSummary>, bool), DataError> {
        let p = self.ready_replica(table, partition).await?;
        blocking(move || Ok((p.change_shards(stream)?, p.writes_stream(stream))))
            .await?
            .map_err(|e: shoal_storage::StorageError| internal(e))
    }

    /// A read of shard `epoch` of stream `stream` in this node's replica of `partition`.
    pub(crate) async fn local_records(
        &self,
        table: &str,
        partition: u64,
        stream: u32,
        epoch: u64,
        from: RecordsFrom,
        limit: u64,
    ) -> Result<shoal_storage::RecordsRead, DataError> {
        let p = self.ready_replica(table, partition).await?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let shard = ShardId { partition, epoch };
        match blocking(move || p.read_changes(stream, epoch, from, limit)).await? {
            Ok(read) => Ok(read),
            Err(ChangeReadError::UnknownShard) => Err(DataError::ShardNotFound(shard.to_string())),
            Err(e @ ChangeReadError::Trimmed(_)) => Err(DataError::Trimmed(e.to_string())),
            Err(ChangeReadError::Storage(e)) => Err(internal(e)),
        }
    }

    /// Whether this node holds a replica of partition `partition` of `table`.
    pub(crate) fn holds_partition(&self, table: &TableMeta, partition: u64) -> bool {
        self.handle_for(table)
            .is_ok_and(|h| h.partitions.iter().any(|p| p.record.id == partition))
    }

    async fn shards_in(
        &self,
        table: &TableMeta,
        partition: u64,
        stream: u32,
    ) -> Result<(Vec<ShardSummary>, bool), DataError> {
        if self.holds_partition(table, partition) {
            match self.local_shards(&table.name, partition, stream).await {
                Err(DataError::Unavailable(why)) if why == crate::remote::NOT_A_REPLICA => {}
                other => return other,
            }
        }
        let call = DataCall::StreamShards {
            table: table.name.clone(),
            partition,
            stream,
        };
        match self.forward(call).await? {
            DataReply::Shards(s, writing) => Ok((s, writing)),
            _ => Err(internal("a stream shards call answered something else")),
        }
    }

    /// [`shoal_catalog::DataPlane::stream_shards`].
    pub(crate) async fn shards(
        &self,
        table: &TableMeta,
        stream: &StreamDef,
    ) -> Result<StreamShards, DataError> {
        let mut found: Vec<(u64, ShardSummary)> = Vec::new();
        let partitions = self.base_partitions(table)?;
        let mut writing = 0;
        for &partition in &partitions {
            let (shards, writes) = self.shards_in(table, partition, stream.id).await?;
            writing += usize::from(writes);
            for s in shards {
                found.push((partition, s));
            }
        }
        // Each child's parent, from the close rows.
        let mut parents: HashMap<ShardId, ShardId> = HashMap::new();
        for (partition, s) in &found {
            if let Some(c) = &s.closed {
                for &(cp, ce) in &c.children {
                    parents.insert(
                        ShardId {
                            partition: cp,
                            epoch: ce,
                        },
                        ShardId {
                            partition: *partition,
                            epoch: s.epoch,
                        },
                    );
                }
            }
        }
        let mut shards: Vec<ShardInfo> = found
            .iter()
            .map(|(partition, s)| {
                let id = ShardId {
                    partition: *partition,
                    epoch: s.epoch,
                };
                ShardInfo {
                    id,
                    parent: parents.get(&id).copied(),
                    starting_seq: s
                        .first_seq
                        .or(s.trimmed.map(|t| t.saturating_add(1)))
                        .unwrap_or(1),
                    ending_seq: s.closed.as_ref().map(|c| c.last_seq),
                }
            })
            .collect();
        let listed: std::collections::HashSet<ShardId> = shards.iter().map(|s| s.id).collect();
        for s in &mut shards {
            // A parent trimmed away is no parent to read first.
            s.parent = s.parent.filter(|p| listed.contains(p));
        }
        // Parents before their children: by depth in the lineage, then by id.
        let depth = |mut id: ShardId| {
            let mut d = 0u32;
            while let Some(p) = parents.get(&id).filter(|p| listed.contains(p)) {
                id = *p;
                d += 1;
                if d > 64 {
                    break;
                }
            }
            d
        };
        shards.sort_by_key(|s| (depth(s.id), s.id));
        Ok(StreamShards {
            shards,
            writing,
            partitions: partitions.len(),
        })
    }

    /// [`shoal_catalog::DataPlane::stream_records`].
    pub(crate) async fn records(
        &self,
        table: &TableMeta,
        stream: &StreamDef,
        shard: ShardId,
        from: RecordsFrom,
        limit: usize,
    ) -> Result<RecordsPage, DataError> {
        if !self.base_partitions(table)?.contains(&shard.partition) {
            return Err(DataError::ShardNotFound(shard.to_string()));
        }
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let read = if self.holds_partition(table, shard.partition) {
            match self
                .local_records(
                    &table.name,
                    shard.partition,
                    stream.id,
                    shard.epoch,
                    from,
                    limit,
                )
                .await
            {
                Err(DataError::Unavailable(why)) if why == crate::remote::NOT_A_REPLICA => None,
                other => Some(other?),
            }
        } else {
            None
        };
        let read = match read {
            Some(r) => r,
            None => {
                let call = DataCall::StreamRecords {
                    table: table.name.clone(),
                    partition: shard.partition,
                    stream: stream.id,
                    epoch: shard.epoch,
                    from,
                    limit,
                };
                match self.forward(call).await? {
                    DataReply::Records(r) => r,
                    _ => return Err(internal("a stream records call answered something else")),
                }
            }
        };
        Ok(RecordsPage {
            records: read.records,
            next: read.next,
        })
    }

    /// Trims every local replica's change records once: those older than the retention, and
    /// every record of a stream its table no longer keeps.
    async fn trim_once(&self) {
        let handles: Vec<_> = self.tables.read().values().cloned().collect();
        let before_ms = crate::transact::now_ms().saturating_sub(STREAM_RETENTION_SECS * 1000);
        for handle in handles {
            let meta = Arc::clone(&handle.meta.read());
            let kept: Vec<u32> = meta.streams.iter().map(|s| s.id).collect();
            for part in &handle.partitions {
                let p = Arc::clone(&part.partition);
                let kept = kept.clone();
                let result =
                    blocking(move || p.trim_changes(before_ms, &|stream| kept.contains(&stream)))
                        .await;
                if let Ok(Err(e)) = result {
                    tracing::warn!(table = %meta.name, error = %e, "trimming stream records failed");
                }
            }
        }
    }
}

/// Trims stream records every [`TRIM_EVERY`] until `stop`.
pub(crate) fn spawn_trimmer(
    backend: Arc<NodeBackend>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(TRIM_EVERY) => {}
            }
            backend.trim_once().await;
        }
    })
}
