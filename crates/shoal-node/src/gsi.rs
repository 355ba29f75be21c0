//! Global secondary indexes on one node: their shards, the shippers that carry base-partition
//! outbox records to them, and the background work of creating (backfill) and deleting them.
//!
//! Layout: a GSI is sharded by base partition. Each base partition replica has one shard file
//! per global index next to its own file, `tables/<table-id>/i<index-id>-p<partition-id>.db`,
//! encrypted with the table's data key, holding the index entries of that partition's items.
//! So a shard lives, moves, splits and catches up with its base partition: a snapshot of the
//! partition carries its shards, a split child builds its shards from its own rows, and every
//! replica of a partition has the same shard. A GSI Query or Scan reads every base partition's
//! shard (here or on a node holding it) and merges them in index order (`gsi_read.rs`).
//!
//! Flow: a base partition's apply writes, in the same transaction as the item, one outbox record
//! per changed GSI entry. After each group commit the base partition's [`Shipper`] is poked; it
//! reads the outbox in sequence order, applies the records to the partition's shards
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
};
use shoal_types::index::{IndexDef, IndexKind, IndexStatus};
use shoal_types::key::KeySchema;
use tokio::sync::{Notify, watch};

use crate::NodeError;

/// Outbox records read (and shipped) per round.
const SHIP_BATCH: usize = 1024;
/// Trim the outbox once this many shipped records are waiting...
const TRIM_EVERY: u64 = 512;
/// ... or when the last trim is this old.
const TRIM_AFTER: Duration = Duration::from_millis(500);
/// Items backfilled per base-partition transaction (each chunk holds the apply lock).
pub(crate) const BACKFILL_CHUNK: usize = 256;

/// The file of index `index`'s shard of base partition `part`.
pub(crate) fn gsi_path(dir: &Path, index: u32, part: u64) -> PathBuf {
    dir.join(format!("i{index}-p{part:08}.db"))
}

/// The global indexes of `indexes` whose entries are stored (not being deleted).
pub(crate) fn stored_gsis(indexes: &[IndexDef]) -> impl Iterator<Item = &IndexDef> {
    indexes
        .iter()
        .filter(|d| d.kind == IndexKind::Global && d.status != IndexStatus::Deleting)
}

/// The GSI shard files in the table directory `dir` of index `index` and base partition `part`
/// (`None`: any), as found on disk: those of partitions that moved away or were dropped too.
pub(crate) fn gsi_files(dir: &Path, index: Option<u32>, part: Option<u64>) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|path| {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                return false;
            };
            let Some((id, rest)) = name
                .strip_prefix('i')
                .and_then(|n| n.strip_suffix(".db"))
                .and_then(|n| n.split_once("-p"))
            else {
                return false;
            };
            let (Ok(id), Ok(shard)) = (id.parse::<u32>(), rest.parse::<u64>()) else {
                return false;
            };
            index.is_none_or(|i| i == id) && part.is_none_or(|p| p == shard)
        })
        .collect();
    files.sort();
    files
}

/// One base partition's shard of a GSI: the entries of that partition's items.
pub(crate) struct Gsi {
    pub(crate) def: IndexDef,
    pub(crate) shard: Arc<IndexPartition>,
    pub(crate) path: Arc<Path>,
}

/// The open GSI shards of one base partition by index id, shared with its shipper.
pub(crate) type GsiMap = Arc<RwLock<BTreeMap<u32, Arc<Gsi>>>>;

/// The partition id in the name of a GSI file from before GSIs were sharded by base partition
/// (one file per index, named as partition 1 of the index).
const LEGACY_SHARD: u64 = 1;

impl Gsi {
    /// Opens (creating if missing) base partition `part`'s shard of `def` in `dir` with the
    /// table's data key.
    pub(crate) fn open(
        dir: &Path,
        def: &IndexDef,
        table: &KeySchema,
        key: &[u8; 32],
        part: u64,
    ) -> Result<Gsi, NodeError> {
        let path: Arc<Path> = gsi_path(dir, def.id, part).into();
        let engine = SqlCipherEngine::open(&path, key, Durability::Sync)
            .map_err(|e| NodeError::storage_in(e, &path))?;
        let shard = IndexPartition::new(Box::new(engine), def.clone(), table.clone())
            .map_err(|e| NodeError::storage_in(e, &path))?;
        Ok(Gsi {
            def: def.clone(),
            shard: Arc::new(shard),
            path,
        })
    }

    /// Opens base partition `part`'s shards of every stored GSI of `indexes`.
    pub(crate) fn open_all(
        dir: &Path,
        indexes: &[IndexDef],
        table: &KeySchema,
        key: &[u8; 32],
        part: u64,
    ) -> Result<GsiMap, NodeError> {
        let map: GsiMap = Arc::default();
        for def in stored_gsis(indexes) {
            let gsi = Gsi::open(dir, def, table, key, part)?;
            map.write().insert(def.id, Arc::new(gsi));
        }
        Ok(map)
    }

    /// Entry count and bytes of the shard.
    pub(crate) fn stats(&self) -> shoal_catalog::TableStats {
        let s = self.shard.stats();
        shoal_catalog::TableStats {
            item_count: s.item_count,
            size_bytes: s.size_bytes,
        }
    }
}

/// At open, before the shards: a node that ran a Shoal whose GSIs had one file per index
/// (`i<index>-p00000001.db`, always of a table with one partition, since such tables never
/// split) renames each to the shard name of the table's partition `part`. Partition ids count
/// from 1 over the cluster, so only the first table ever created has a partition 1, and its
/// old file already has its shard's name.
pub(crate) fn adopt_legacy_files(
    dir: &Path,
    indexes: &[IndexDef],
    partitions: &[u64],
) -> Result<(), NodeError> {
    let [part] = partitions else {
        return Ok(());
    };
    if *part == LEGACY_SHARD {
        return Ok(());
    }
    for def in stored_gsis(indexes) {
        let (legacy, path) = (
            gsi_path(dir, def.id, LEGACY_SHARD),
            gsi_path(dir, def.id, *part),
        );
        if legacy.exists() && !path.exists() {
            adopt_legacy(&legacy, &path)?;
        }
    }
    Ok(())
}

/// Renames a one-file-per-index GSI file (with its WAL) to the shard name of its partition.
fn adopt_legacy(legacy: &Path, path: &Path) -> Result<(), NodeError> {
    for suffix in ["", "-wal", "-shm"] {
        let (mut from, mut to) = (legacy.as_os_str().to_owned(), path.as_os_str().to_owned());
        from.push(suffix);
        to.push(suffix);
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(NodeError::Storage(format!(
                    "cannot rename {} to {}: {e}",
                    legacy.display(),
                    path.display()
                )));
            }
        }
    }
    tracing::info!(from = %legacy.display(), to = %path.display(), "GSI file renamed to its partition's shard");
    Ok(())
}

/// Ships one round: up to [`SHIP_BATCH`] outbox records after `after` are applied to the
/// partition's GSI shards. Returns the last sequence number shipped and how many records were
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
        let recs: Vec<OutboxRecord> = records
            .iter()
            .filter(|r| r.index_id == gsi.def.id)
            .cloned()
            .collect();
        if recs.is_empty() {
            continue;
        }
        gsi.shard
            .apply_outbox(source_id, &recs)
            .map_err(|e| e.in_file(&gsi.path))?;
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
    /// Starts the shipper of `partition` (id `source_id`) for its GSI shards in `gsis`. It ships once
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use shoal_types::index::{Projection, ProjectionType};
    use shoal_types::key::{KeyAttr, KeySchema};

    use super::*;

    fn global(id: u32, status: IndexStatus) -> IndexDef {
        IndexDef {
            id,
            name: format!("i{id}"),
            kind: IndexKind::Global,
            key_schema: KeySchema {
                hash: KeyAttr {
                    name: "g".into(),
                    ty: shoal_types::ScalarType::S,
                },
                range: None,
            }
            .into(),
            projection: Projection {
                kind: ProjectionType::All,
                non_key_attributes: Vec::new(),
            },
            status,
            backfilling: false,
        }
    }

    #[test]
    fn a_one_file_index_of_an_earlier_version_becomes_its_partitions_shard() {
        let dir = tempfile::tempdir().unwrap();
        let indexes = [global(2, IndexStatus::Active)];
        for suffix in ["", "-wal"] {
            let mut name = gsi_path(dir.path(), 2, LEGACY_SHARD).into_os_string();
            name.push(suffix);
            std::fs::write(&name, suffix).unwrap();
        }
        // A table of several partitions (never one with a legacy file) is left alone.
        adopt_legacy_files(dir.path(), &indexes, &[5, 6]).unwrap();
        assert!(gsi_path(dir.path(), 2, LEGACY_SHARD).exists());
        adopt_legacy_files(dir.path(), &indexes, &[5]).unwrap();
        assert!(!gsi_path(dir.path(), 2, LEGACY_SHARD).exists());
        assert!(gsi_path(dir.path(), 2, 5).exists());
        let mut wal = gsi_path(dir.path(), 2, 5).into_os_string();
        wal.push("-wal");
        assert_eq!(std::fs::read_to_string(wal).unwrap(), "-wal");
        assert_eq!(
            gsi_files(dir.path(), Some(2), None),
            vec![gsi_path(dir.path(), 2, 5)]
        );
        assert_eq!(
            gsi_files(dir.path(), None, Some(5)),
            vec![gsi_path(dir.path(), 2, 5)]
        );
        assert!(gsi_files(dir.path(), Some(3), None).is_empty());
    }

    #[test]
    fn the_first_tables_partition_one_keeps_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let indexes = [global(0, IndexStatus::Active)];
        std::fs::write(gsi_path(dir.path(), 0, 1), "x").unwrap();
        adopt_legacy_files(dir.path(), &indexes, &[1]).unwrap();
        assert!(gsi_path(dir.path(), 0, 1).exists());
    }
}
