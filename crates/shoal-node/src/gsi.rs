//! Global secondary indexes on one node: their files, the shippers that carry base-partition
//! outbox records to them, and the background work of creating (backfill) and deleting them.
//!
//! Layout: each GSI is a separately partitioned index table in the table's directory,
//! `tables/<table-id>/i<index-id>-p<partition-id>.db`, encrypted with the table's data key. For
//! now one partition covers the index's whole partition-key hash space; records are still routed
//! by the hash of the index partition key (bytes 4..12 of an entry key), so splitting an index
//! later changes nothing here.
//!
//! Flow: a base partition's apply writes, in the same transaction as the item, one outbox record
//! per changed GSI entry. After each group commit the base partition's [`Shipper`] is poked; it
//! reads the outbox in sequence order, applies the records to the index partitions
//! (`IndexPartition::apply_outbox`, idempotent per source partition and sequence number: a record
//! applied twice — after a crash between apply and trim — is skipped). Shipped records are
//! trimmed from the outbox lazily (every [`TRIM_EVERY`] records or [`TRIM_AFTER`]), to spare the
//! base partition an fsync per round; records shipped but not yet trimmed when the node stops
//! are shipped again at start and skipped. A shipper also runs once at start, so records left by
//! a crash are shipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use shoal_storage::{
    Durability, IndexPartition, OutboxRecord, Partition, SqlCipherEngine, StorageError,
    entry_key_hash,
};
use shoal_types::index::{IndexDef, IndexKind, IndexStatus};
use shoal_types::key::KeySchema;
use tokio::sync::{Notify, watch};

use crate::NodeError;
use crate::catalog::PartitionRecord;

/// Outbox records read (and shipped) per round.
const SHIP_BATCH: usize = 1024;
/// Trim the outbox once this many shipped records are waiting...
const TRIM_EVERY: u64 = 512;
/// ... or when the last trim is this old.
const TRIM_AFTER: Duration = Duration::from_millis(500);
/// Items backfilled per base-partition transaction (each chunk holds the apply lock).
pub(crate) const BACKFILL_CHUNK: usize = 256;

/// The file of partition `part` of index `index`.
pub(crate) fn gsi_path(dir: &Path, index: u32, part: u64) -> PathBuf {
    dir.join(format!("i{index}-p{part:08}.db"))
}

/// The partitions of a GSI: one covering the whole index hash space (splits are a later issue).
pub(crate) fn gsi_partitions(_def: &IndexDef) -> Vec<PartitionRecord> {
    vec![PartitionRecord {
        id: 1,
        hash_start: 0,
        hash_end: u64::MAX,
    }]
}

/// The global indexes of `indexes` whose entries are stored (not being deleted).
pub(crate) fn stored_gsis(indexes: &[IndexDef]) -> impl Iterator<Item = &IndexDef> {
    indexes
        .iter()
        .filter(|d| d.kind == IndexKind::Global && d.status != IndexStatus::Deleting)
}

/// Every GSI file of a table's index list (including indexes being deleted).
pub(crate) fn gsi_files(dir: &Path, indexes: &[IndexDef]) -> Vec<PathBuf> {
    indexes
        .iter()
        .filter(|d| d.kind == IndexKind::Global)
        .flat_map(|d| {
            gsi_partitions(d)
                .into_iter()
                .map(move |p| gsi_path(dir, d.id, p.id))
        })
        .collect()
}

/// One open partition of a GSI.
pub(crate) struct GsiPartition {
    pub(crate) record: PartitionRecord,
    pub(crate) partition: Arc<IndexPartition>,
    pub(crate) path: Arc<Path>,
}

/// One open GSI.
pub(crate) struct Gsi {
    pub(crate) def: IndexDef,
    pub(crate) partitions: Vec<GsiPartition>,
}

/// The open GSIs of a table by index id, shared with its shippers.
pub(crate) type GsiMap = Arc<RwLock<BTreeMap<u32, Arc<Gsi>>>>;

impl Gsi {
    /// Opens (creating if missing) the files of `def` in `dir` with the table's data key.
    pub(crate) fn open(
        dir: &Path,
        def: &IndexDef,
        table: &KeySchema,
        key: &[u8; 32],
    ) -> Result<Gsi, NodeError> {
        let mut partitions = Vec::new();
        for record in gsi_partitions(def) {
            let path: Arc<Path> = gsi_path(dir, def.id, record.id).into();
            let engine = SqlCipherEngine::open(&path, key, Durability::Sync)
                .map_err(|e| NodeError::storage_in(e, &path))?;
            let partition = IndexPartition::new(Box::new(engine), def.clone(), table.clone())
                .map_err(|e| NodeError::storage_in(e, &path))?;
            partitions.push(GsiPartition {
                record,
                partition: Arc::new(partition),
                path,
            });
        }
        Ok(Gsi {
            def: def.clone(),
            partitions,
        })
    }

    /// The partition whose index-hash range holds `hash`.
    pub(crate) fn partition_for_hash(&self, hash: u64) -> Option<&GsiPartition> {
        self.partitions
            .iter()
            .find(|p| p.record.hash_start <= hash && hash <= p.record.hash_end)
    }

    /// Item count and entry bytes over the partitions.
    pub(crate) fn stats(&self) -> shoal_catalog::TableStats {
        let mut s = shoal_catalog::TableStats::default();
        for p in &self.partitions {
            let ps = p.partition.stats();
            s.item_count += ps.item_count;
            s.size_bytes += ps.size_bytes;
        }
        s
    }
}

/// Ships one round: up to [`SHIP_BATCH`] outbox records after `after` are applied to their index
/// partitions. Returns the last sequence number shipped and how many records were
/// read. Records of indexes that are no longer open (deleted) are dropped.
fn ship_round(
    source: &Partition,
    source_id: u64,
    gsis: &RwLock<BTreeMap<u32, Arc<Gsi>>>,
    after: u64,
) -> Result<(u64, usize), StorageError> {
    let records = source.outbox(after, SHIP_BATCH)?;
    let Some(last) = records.last().map(|r| r.seq) else {
        return Ok((after, 0));
    };
    let read = records.len();
    let gsis: Vec<Arc<Gsi>> = gsis.read().values().cloned().collect();
    for gsi in &gsis {
        // Route each half of each record of this index to the partition owning its hash.
        let mut per_partition: Vec<Vec<OutboxRecord>> = vec![Vec::new(); gsi.partitions.len()];
        for r in records.iter().filter(|r| r.index_id == gsi.def.id) {
            let slot = |key: &[u8]| {
                let h = entry_key_hash(key).unwrap_or(0);
                gsi.partitions
                    .iter()
                    .position(|p| p.record.hash_start <= h && h <= p.record.hash_end)
            };
            let del = r.delete.as_deref().and_then(slot);
            let put = r.put.as_ref().and_then(|(k, _)| slot(k));
            if del == put || r.delete.is_none() || r.put.is_none() {
                if let Some(i) = put.or(del) {
                    per_partition[i].push(r.clone());
                }
                continue;
            }
            if let Some(i) = del {
                per_partition[i].push(OutboxRecord {
                    put: None,
                    ..r.clone()
                });
            }
            if let Some(i) = put {
                per_partition[i].push(OutboxRecord {
                    delete: None,
                    ..r.clone()
                });
            }
        }
        for (part, recs) in gsi.partitions.iter().zip(per_partition) {
            if recs.is_empty() {
                continue;
            }
            part.partition
                .apply_outbox(source_id, &recs)
                .map_err(|e| e.in_file(&part.path))?;
        }
    }
    Ok((last, read))
}

/// Shared state of one base partition's shipper.
struct ShipState {
    source_id: u64,
    wake: Notify,
    /// Set while the table has stored GSIs: commits poke the shipper only then.
    enabled: AtomicBool,
    stopped: AtomicBool,
    /// Bumped by every poke; a round that read the outbox after generation `g` was requested
    /// publishes `g` in `caught_up` once it found nothing more to ship.
    requested: AtomicU64,
    caught_up: watch::Sender<u64>,
    /// Bumped when the partition's content was replaced by a snapshot: the shipper starts over
    /// from the outbox's first record (the index partitions skip what they already have).
    resets: AtomicU64,
    /// Held while a snapshot replaces the partition's content, and by each trim.
    replacing: parking_lot::Mutex<()>,
    /// The last outbox seq shipped (for the backlog metric).
    shipped: AtomicU64,
}

/// The shipper of one base partition: a task carrying its outbox to the table's GSIs. Dropping
/// it stops the task.
pub(crate) struct Shipper {
    state: Arc<ShipState>,
}

impl Shipper {
    /// Starts the shipper of `partition` (id `source_id`) for the GSIs in `gsis`. It ships once
    /// at start (records a crash left behind). Without a tokio runtime it does nothing.
    pub(crate) fn start(partition: &Arc<Partition>, source_id: u64, gsis: &GsiMap) -> Shipper {
        let (caught_up, _) = watch::channel(0);
        let state = Arc::new(ShipState {
            source_id,
            wake: Notify::new(),
            enabled: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            requested: AtomicU64::new(0),
            caught_up,
            resets: AtomicU64::new(0),
            replacing: parking_lot::Mutex::new(()),
            shipped: AtomicU64::new(0),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(run(
                Arc::clone(&state),
                Arc::downgrade(partition),
                Arc::downgrade(gsis),
            ));
            // The first round ships whatever an earlier run left in the outbox.
            state.requested.fetch_add(1, Ordering::SeqCst);
            state.wake.notify_one();
        }
        Shipper { state }
    }

    /// Whether commits should poke the shipper (the table has GSIs).
    pub(crate) fn set_enabled(&self, enabled: bool) {
        self.state.enabled.store(enabled, Ordering::SeqCst);
    }

    /// After a commit: wakes the shipper if the table has GSIs.
    pub(crate) fn committed(&self) {
        if self.state.enabled.load(Ordering::Relaxed) {
            self.poke();
        }
    }

    /// Wakes the shipper; returns the generation it will have caught up with once every outbox
    /// record written before this call is shipped.
    pub(crate) fn poke(&self) -> u64 {
        let generation = self.state.requested.fetch_add(1, Ordering::SeqCst) + 1;
        self.state.wake.notify_one();
        generation
    }

    /// Replaces the partition's content with `install` (a snapshot), with no outbox trim in
    /// between; then ships again from the outbox's first record, forgetting what an unfinished
    /// round shipped (the index partitions skip what they already have).
    pub(crate) fn replace<T>(&self, install: impl FnOnce() -> T) -> T {
        let result = {
            let _replacing = self.state.replacing.lock();
            let result = install();
            self.state.resets.fetch_add(1, Ordering::SeqCst);
            result
        };
        self.poke();
        result
    }

    /// The last outbox seq shipped to the GSIs.
    pub(crate) fn shipped(&self) -> u64 {
        self.state.shipped.load(Ordering::Relaxed)
    }

    /// Waits until every outbox record written before this call has been shipped.
    pub(crate) async fn caught_up(&self) {
        let generation = self.poke();
        let mut rx = self.state.caught_up.subscribe();
        // The sender lives in `self.state`: the wait ends when the generation is reached.
        let _ = rx.wait_for(|g| *g >= generation).await;
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        self.state.wake.notify_one();
    }
}

async fn run(
    state: Arc<ShipState>,
    partition: Weak<Partition>,
    gsis: Weak<RwLock<BTreeMap<u32, Arc<Gsi>>>>,
) {
    let mut after = 0u64;
    // Everything up to `trimmed` is gone from the outbox (0: unknown, trim at the first chance).
    let mut trimmed = 0u64;
    let mut last_trim = std::time::Instant::now();
    let mut backoff = Duration::from_millis(50);
    let mut seen_resets = state.resets.load(Ordering::SeqCst);
    loop {
        state.wake.notified().await;
        loop {
            if state.stopped.load(Ordering::SeqCst) {
                return;
            }
            let generation = state.requested.load(Ordering::SeqCst);
            let (Some(source), Some(map)) = (partition.upgrade(), gsis.upgrade()) else {
                return;
            };
            let source_id = state.source_id;
            let resets = state.resets.load(Ordering::SeqCst);
            if resets != seen_resets {
                seen_resets = resets;
                after = 0;
                trimmed = 0;
            }
            let round =
                tokio::task::spawn_blocking(move || ship_round(&source, source_id, &map, after))
                    .await;
            if state.resets.load(Ordering::SeqCst) != seen_resets {
                // The outbox was replaced during the round: start over.
                continue;
            }
            match round {
                Ok(Ok((last, read))) => {
                    after = last;
                    state.shipped.store(last, Ordering::Relaxed);
                    backoff = Duration::from_millis(50);
                    if after > trimmed
                        && (after - trimmed >= TRIM_EVERY
                            || trimmed == 0
                            || last_trim.elapsed() >= TRIM_AFTER)
                    {
                        let Some(source) = partition.upgrade() else {
                            return;
                        };
                        let upto = after;
                        let ship = Arc::clone(&state);
                        match tokio::task::spawn_blocking(move || {
                            // Not while a snapshot replaces the content, nor after it did.
                            let _replacing = ship.replacing.lock();
                            if ship.resets.load(Ordering::SeqCst) != seen_resets {
                                return Ok(());
                            }
                            source.trim_outbox(upto)
                        })
                        .await
                        {
                            Ok(Ok(())) => {
                                trimmed = upto;
                                last_trim = std::time::Instant::now();
                            }
                            // Shipped records stay until a later trim; shipping them again is
                            // harmless.
                            Ok(Err(e)) => {
                                tracing::warn!(partition = source_id, error = %e, "trimming the GSI outbox failed");
                            }
                            Err(e) => {
                                tracing::warn!(partition = source_id, error = %e, "trimming the GSI outbox failed");
                            }
                        }
                    }
                    if read < SHIP_BATCH {
                        state.caught_up.send_if_modified(|g| {
                            let newer = generation > *g;
                            if newer {
                                *g = generation;
                            }
                            newer
                        });
                        break;
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(partition = source_id, error = %e, "shipping GSI updates failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::error!(partition = source_id, error = %e, "GSI shipper round panicked; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
