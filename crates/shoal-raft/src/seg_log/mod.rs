//! The shared Raft log of one node as encrypted, append-only segment files ([`SegLogStore`]).
//!
//! Every [`LogStore::write`] (one round of the driver, all groups) is **one sealed record
//! appended to the current segment and one `fdatasync`**: no pages, no B-tree, no write-ahead
//! log of a log. Records are sealed with AES-256-GCM under a per-segment subkey of the node key
//! (`segment.rs`, [`shoal_crypto::record`]); nothing is written in plaintext but the segment
//! header (a magic, a version and the segment's random stream id).
//!
//! The store keeps the log's current state in memory (every group's hard state, conf state,
//! snapshot position and live entries: what raft's in-memory storage holds too; compaction
//! keeps it small). When the current segment passes its target size, a new segment is started
//! whose first record is a **checkpoint** of that state, and the older segments are deleted.
//! Opening replays the segments in order (a checkpoint replaces everything before it), then
//! starts a new segment the same way, so a segment is never appended to after a restart and a
//! torn record can only be the last of a segment.
//!
//! Opening with a legacy SQLCipher log (`raft.db`, [`crate::SqlLogStore`]) and no segments
//! migrates it: its state becomes the first checkpoint, and the legacy files are removed only
//! after that checkpoint is durable.

mod codec;
mod segment;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use shoal_crypto::DataKey;

use crate::{GroupId, GroupState, GroupWrite, LogBatch, LogStore, RaftError};

pub(crate) use codec::{decode_conf, encode_conf, entry_kind, kind_entry_type};

/// Default size at which a new segment (with a checkpoint) is started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// The durable Raft log of all groups of one node, in encrypted segment files of a directory.
pub struct SegLogStore {
    dir: PathBuf,
    key: DataKey,
    groups: BTreeMap<GroupId, GroupState>,
    writer: segment::Writer,
    /// Plaintext bytes of the last checkpoint: a segment rotates once it holds this many bytes
    /// twice over (and at least `segment_bytes`), so a large live log is not rewritten often.
    checkpoint_bytes: u64,
    segment_bytes: u64,
    buf: Vec<u8>,
    /// Why a write failed: the store refuses every later write (fail-stop).
    failed: Option<String>,
}

impl std::fmt::Debug for SegLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegLogStore")
            .field("dir", &self.dir)
            .field("segment", &self.writer.number())
            .finish_non_exhaustive()
    }
}

/// Applies one record's writes to the state (the reference semantics of [`GroupWrite`]).
fn apply(groups: &mut BTreeMap<GroupId, GroupState>, writes: &[GroupWrite]) {
    for w in writes {
        if w.removed {
            groups.remove(&w.group);
            continue;
        }
        w.apply_to(groups.entry(w.group).or_default());
    }
}

/// The legacy log's files: the database and its WAL and shared-memory files.
fn legacy_files(legacy: &Path) -> Vec<PathBuf> {
    let mut out = vec![legacy.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = legacy.as_os_str().to_owned();
        name.push(suffix);
        out.push(PathBuf::from(name));
    }
    out
}

impl SegLogStore {
    /// Opens (or creates) the log in directory `dir`, sealed under the raw 32-byte node `key`.
    /// A wrong key or a damaged segment is a [`RaftError::Log`].
    pub fn open(dir: &Path, key: &[u8; 32]) -> Result<SegLogStore, RaftError> {
        SegLogStore::open_inner(dir, key, None)
    }

    /// As [`SegLogStore::open`], migrating the legacy SQLCipher log at `legacy` (same key) if
    /// `dir` holds no segment yet; the legacy files are removed once the log is in `dir`.
    pub fn open_migrating(
        dir: &Path,
        key: &[u8; 32],
        legacy: &Path,
    ) -> Result<SegLogStore, RaftError> {
        SegLogStore::open_inner(dir, key, Some(legacy))
    }

    fn open_inner(
        dir: &Path,
        key: &[u8; 32],
        legacy: Option<&Path>,
    ) -> Result<SegLogStore, RaftError> {
        fs::create_dir_all(dir)
            .map_err(|e| RaftError::Log(format!("creating {}: {e}", dir.display())))?;
        let key = DataKey::from_bytes(*key);
        let segments = segment::list(dir)?;
        let mut groups = BTreeMap::new();
        let legacy = legacy.filter(|l| l.exists());
        if segments.is_empty()
            && let Some(legacy) = legacy
        {
            let mut old = crate::SqlLogStore::open(legacy, key.as_bytes())?;
            groups = old.load()?.into_iter().collect();
            tracing::info!(
                from = %legacy.display(),
                to = %dir.display(),
                groups = groups.len(),
                "migrating the Raft log to segment files"
            );
        }
        for (_, path) in &segments {
            let end = segment::read(path, &key, |plain| {
                let (kind, writes) = codec::decode_record(plain)?;
                if kind == codec::KIND_CHECKPOINT {
                    groups.clear();
                }
                apply(&mut groups, &writes);
                Ok(())
            })?;
            if let segment::End::Torn { offset } = end {
                tracing::info!(
                    segment = %path.display(),
                    offset,
                    "the log segment ends in a record a crash cut short; it was never acknowledged"
                );
            }
        }
        let next = segments.last().map_or(1, |(n, _)| n + 1);
        let mut buf = Vec::new();
        let writes = codec::checkpoint_writes(groups.iter());
        codec::encode_record(codec::KIND_CHECKPOINT, &writes, &mut buf);
        let writer = segment::Writer::create(dir, next, &key, &buf)?;
        for (_, path) in &segments {
            fs::remove_file(path)
                .map_err(|e| RaftError::Log(format!("removing {}: {e}", path.display())))?;
        }
        if let Some(legacy) = legacy {
            for f in legacy_files(legacy) {
                match fs::remove_file(&f) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(RaftError::Log(format!("removing {}: {e}", f.display())));
                    }
                }
            }
            if let Some(parent) = legacy.parent() {
                segment::sync_dir(parent)?;
            }
        }
        segment::sync_dir(dir)?;
        Ok(SegLogStore {
            dir: dir.to_path_buf(),
            key,
            groups,
            writer,
            checkpoint_bytes: buf.len() as u64,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            buf,
            failed: None,
        })
    }

    /// Sets the size at which a new segment is started (tests use small ones).
    pub fn set_segment_bytes(&mut self, bytes: u64) {
        self.segment_bytes = bytes;
    }

    /// The number of the segment being appended to.
    pub fn current_segment(&self) -> u64 {
        self.writer.number()
    }

    /// Starts a new segment with a checkpoint of the state and deletes the older one.
    fn rotate(&mut self) -> Result<(), RaftError> {
        let writes = codec::checkpoint_writes(self.groups.iter());
        codec::encode_record(codec::KIND_CHECKPOINT, &writes, &mut self.buf);
        let next = self.writer.number() + 1;
        let old = segment::list(&self.dir)?;
        self.writer = segment::Writer::create(&self.dir, next, &self.key, &self.buf)?;
        self.checkpoint_bytes = self.buf.len() as u64;
        for (n, path) in old {
            if n < next {
                fs::remove_file(&path)
                    .map_err(|e| RaftError::Log(format!("removing {}: {e}", path.display())))?;
            }
        }
        // Deletions need not be durable: a surviving old segment replays before the checkpoint,
        // which replaces what it held.
        Ok(())
    }

    fn write_inner(&mut self, batch: &LogBatch) -> Result<(), RaftError> {
        codec::encode_record(codec::KIND_BATCH, &batch.groups, &mut self.buf);
        self.writer.append(&self.buf)?;
        apply(&mut self.groups, &batch.groups);
        if self.writer.len() > self.segment_bytes.max(2 * self.checkpoint_bytes) {
            self.rotate()?;
        }
        Ok(())
    }
}

impl LogStore for SegLogStore {
    fn load(&mut self) -> Result<Vec<(GroupId, GroupState)>, RaftError> {
        Ok(self
            .groups
            .iter()
            .map(|(g, st)| {
                let mut st = st.clone();
                let after = st.snapshot_index;
                st.entries.retain(|e| e.index > after);
                (*g, st)
            })
            .collect())
    }

    fn write(&mut self, batch: &LogBatch) -> Result<(), RaftError> {
        if let Some(why) = &self.failed {
            return Err(RaftError::Log(format!(
                "the log stopped after a failed write: {why}"
            )));
        }
        if batch.groups.is_empty() {
            return Ok(());
        }
        let result = self.write_inner(batch);
        if let Err(e) = &result {
            self.failed = Some(e.to_string());
        }
        result
    }
}
