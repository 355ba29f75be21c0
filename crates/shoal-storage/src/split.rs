//! Splitting a partition replica in two: [`Command::Split`] narrows the replica's hash range
//! where it stands in the Raft log, [`Partition::build_child`] copies the part split off into
//! the child partition's new file, and [`Partition::drop_split_off`] then deletes it here.
//!
//! The split itself is one cheap apply (two metadata rows), so the Raft driver never stalls on a
//! copy. From that entry on, the replica refuses every command and read outside its new range
//! ([`ApplyError::WrongPartition`]; the router refreshes its partition map and retries). So the
//! rows split off are frozen at their state as of the split: the copy runs in the background
//! and every replica that applied the split copies the same rows. Until the copy is dropped they
//! stay in this file, invisible (every read checks the range) and listed in the pending
//! children row ([`SplitChild`]). The first batch that drops rows of a child also removes it
//! from that list, so any consistent read of the file (a snapshot) that lists a child holds all
//! of its rows.

use serde::{Deserialize, Serialize};
use shoal_types::index::{IndexDef, IndexKind, IndexStatus};
use shoal_types::size::item_size;

use crate::index::{COLLECTIONS_ID, EntryOf, entry_size, stats_key};
use crate::partition::{decode_stored, decode_u64};
use crate::snapshot::SCAN_CHUNK;
use crate::stats::OUTBOX_SEQ_KEY;
use crate::stats::STATS_KEY;
use crate::{Engine, OutboxRecord, Partition, PartitionStats, Space, StorageError, WriteBatch};

/// The engine key of the replica's own range ([`OwnedRange`]), once a split set it. Short, like
/// the stats key, so it never collides with a storage key.
pub(crate) const RANGE_KEY: &[u8] = &[3];
/// The engine key of the children split off whose rows are still in this file.
pub(crate) const CHILDREN_KEY: &[u8] = &[4];
/// Set in a child's file once [`Partition::build_child`] has copied all of its rows.
pub(crate) const BUILT_KEY: &[u8] = &[2];

/// The hash range a replica serves, as the last split applied to it (or its build, for a child)
/// set it. A replica that was never split has none and serves whatever it is routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedRange {
    /// First hash (inclusive).
    pub start: u64,
    /// Last hash (inclusive).
    pub end: u64,
    /// The partition's epoch as of that split.
    pub epoch: u64,
}

impl OwnedRange {
    /// Whether `hash` is in the range.
    pub fn contains(&self, hash: u64) -> bool {
        self.start <= hash && hash <= self.end
    }
}

/// A child split off this replica whose rows (the hash range `start..=end`) are still here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitChild {
    /// The child partition's id (its Raft group).
    pub child: u64,
    /// First hash (inclusive).
    pub start: u64,
    /// Last hash (inclusive).
    pub end: u64,
    /// The child's epoch.
    pub epoch: u64,
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain integers cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt {
        context: format!("{what}: {e}"),
    })
}

/// The stored range, if any.
pub(crate) fn load_range(
    get: impl Fn(&[u8]) -> Result<Option<Vec<u8>>, StorageError>,
) -> Result<Option<OwnedRange>, StorageError> {
    get(RANGE_KEY)?
        .map(|b| from_json(&b, "partition range"))
        .transpose()
}

/// The stored pending children (none when absent).
pub(crate) fn load_children(
    get: impl Fn(&[u8]) -> Result<Option<Vec<u8>>, StorageError>,
) -> Result<Vec<SplitChild>, StorageError> {
    Ok(get(CHILDREN_KEY)?
        .map(|b| from_json(&b, "split children"))
        .transpose()?
        .unwrap_or_default())
}

/// The split rows a [`Command::Split`](crate::Command::Split) adds to a batch: the new range
/// and the pending children with `child` added.
pub(crate) fn split_rows(batch: &mut WriteBatch, range: OwnedRange, children: &[SplitChild]) {
    batch.put(RANGE_KEY.to_vec(), json(&range));
    batch.put(CHILDREN_KEY.to_vec(), json(&children));
}

/// `prefix ‖ hash` (big-endian): where the keys of `hash` start under `prefix`.
fn at(prefix: &[u8], hash: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 8);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&hash.to_be_bytes());
    k
}

/// The engine key range `[start, end)` of the hashes `start..=end` under `prefix`.
fn bounds(prefix: &[u8], start: u64, end: u64) -> (Vec<u8>, Option<Vec<u8>>) {
    let upper = match end.checked_add(1) {
        Some(next) => Some(at(prefix, next)),
        None => crate::range::prefix_end(prefix),
    };
    (at(prefix, start), upper)
}

/// One key range of the rows of a hash range: the items, or one local index's entries (with the
/// index id), or the item collection sizes.
#[derive(Clone, Copy)]
enum Rows {
    Items,
    Entries(u32),
    Collections,
    /// Transaction rows (locks, read marks, decisions: `txn.rs`).
    Txn,
}

impl Rows {
    fn space(self) -> Space {
        match self {
            Rows::Items => Space::Items,
            Rows::Entries(_) | Rows::Collections | Rows::Txn => Space::Index,
        }
    }

    fn prefix(self) -> Vec<u8> {
        match self {
            Rows::Items => Vec::new(),
            Rows::Entries(id) => id.to_be_bytes().to_vec(),
            Rows::Collections => COLLECTIONS_ID.to_be_bytes().to_vec(),
            Rows::Txn => crate::txn::TX_ID.to_be_bytes().to_vec(),
        }
    }
}

impl Partition {
    /// The hash range this replica serves, once a split set it (`None`: never split, it serves
    /// what it is routed).
    pub fn owned_range(&self) -> Option<OwnedRange> {
        self.state.read().range
    }

    /// Whether this replica serves `hash` (see [`Partition::owned_range`]).
    pub fn owns(&self, hash: u64) -> bool {
        self.owned_range().is_none_or(|r| r.contains(hash))
    }

    /// Whether this replica serves every hash of `start..=end`.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        self.owned_range()
            .is_none_or(|r| r.start <= start && end <= r.end)
    }

    /// The children split off this replica whose rows are still in its file.
    pub fn split_children(&self) -> Vec<SplitChild> {
        self.state.read().children.clone()
    }

    /// Whether this replica is a child's copy that [`Partition::build_child`] completed.
    ///
    /// # Errors
    /// Engine failures.
    pub fn is_built(&self) -> Result<bool, StorageError> {
        Ok(self.engine.get(BUILT_KEY)?.is_some())
    }

    /// The global indexes whose entries the outbox feeds (not being deleted).
    fn global_indexes(&self) -> Vec<IndexDef> {
        self.indexes
            .read()
            .iter()
            .filter(|d| d.kind == IndexKind::Global && d.status != IndexStatus::Deleting)
            .cloned()
            .collect()
    }

    fn row_kinds(&self) -> Vec<Rows> {
        let mut kinds = vec![Rows::Items, Rows::Collections, Rows::Txn];
        kinds.extend(
            self.indexes
                .read()
                .iter()
                .filter(|d| d.kind == IndexKind::Local)
                .map(|d| Rows::Entries(d.id)),
        );
        kinds
    }

    /// Copies the rows of `child` (a pending child of this replica) into `target`, the empty
    /// engine of the child's new file: its items, local index entries and item collection
    /// sizes, with the stats recomputed for them, its range, and last the mark that the copy is
    /// complete ([`Partition::is_built`]). Every batch is stamped with applied index 0 (the
    /// child's Raft group starts after its bootstrap snapshot). Reads only; this replica is
    /// unchanged.
    ///
    /// # Errors
    /// Engine failures, a stored row that does not decode.
    pub fn build_child(&self, child: &SplitChild, target: &dyn Engine) -> Result<(), StorageError> {
        let mut stats = PartitionStats::default();
        let mut index_stats: Vec<(u32, PartitionStats)> = Vec::new();
        let globals = self.global_indexes();
        let ttl = self.ttl_attribute();
        let mut outbox_seq = 0u64;
        for rows in self.row_kinds() {
            let mut sizes = PartitionStats::default();
            self.walk(rows, child, |chunk| {
                let mut batch = WriteBatch::new(0);
                for (key, value) in chunk {
                    match rows {
                        Rows::Items => {
                            let item = decode_stored(value)?;
                            sizes.add(item_size(&item));
                            // The child's expiry rows, for the same attribute.
                            if let Some(attr) = &ttl {
                                let k = self.schema.key_of(&item);
                                if let (_, Some((tk, tv))) =
                                    crate::ttl::row_changes(attr, key, &k, None, Some(&item))
                                {
                                    batch.put_in(Space::Index, tk, tv);
                                }
                            }
                            // The child's GSI shards are fed from its own outbox, like a
                            // backfill: one `put` per entry of each copied item.
                            for def in &globals {
                                if let Some(e) = EntryOf::of(def, &self.schema, Some(&item)) {
                                    outbox_seq += 1;
                                    OutboxRecord {
                                        seq: outbox_seq,
                                        index_id: def.id,
                                        delete: None,
                                        put: Some((e.key, e.entry)),
                                    }
                                    .put_into(&mut batch);
                                }
                            }
                        }
                        Rows::Entries(_) => sizes.add(entry_size(&decode_stored(value)?)),
                        Rows::Collections | Rows::Txn => {}
                    }
                    batch.put_in(rows.space(), key.clone(), value.clone());
                }
                target.write(&batch)
            })?;
            match rows {
                Rows::Items => stats = sizes,
                Rows::Entries(id) => index_stats.push((id, sizes)),
                Rows::Collections | Rows::Txn => {}
            }
        }
        let mut last = WriteBatch::new(0);
        last.put(STATS_KEY.to_vec(), stats.encode());
        if let Some(attr) = &ttl {
            last.put(crate::ttl::TTL_ATTR_KEY.to_vec(), attr.as_bytes().to_vec());
        }
        // The child writes records for the stream set when the split applied, from its first
        // entry, as itself.
        if let Some(setting) = self.engine.get_in(
            Space::Index,
            &crate::change_log::child_setting_key(child.child),
        )? {
            last.put(crate::change_log::STREAM_KEY.to_vec(), setting);
        }
        for (id, s) in index_stats {
            last.put_in(Space::Index, stats_key(id), s.encode());
        }
        let range = OwnedRange {
            start: child.start,
            end: child.end,
            epoch: child.epoch,
        };
        last.put(RANGE_KEY.to_vec(), json(&range));
        if outbox_seq > 0 {
            last.put(OUTBOX_SEQ_KEY.to_vec(), outbox_seq.to_be_bytes().to_vec());
        }
        last.put(BUILT_KEY.to_vec(), vec![1]);
        target.write(&last)
    }

    /// Calls `each` with the rows of kind `rows` in `child`'s hash range, a chunk at a time.
    fn walk(
        &self,
        rows: Rows,
        child: &SplitChild,
        mut each: impl FnMut(&[(Vec<u8>, Vec<u8>)]) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let (mut start, end) = bounds(&rows.prefix(), child.start, child.end);
        loop {
            let chunk = self.engine.scan_in(
                rows.space(),
                Some(&start),
                end.as_deref(),
                false,
                SCAN_CHUNK,
            )?;
            each(&chunk)?;
            match chunk.last() {
                Some((key, _)) if chunk.len() == SCAN_CHUNK => {
                    start = crate::range::key_successor(key);
                }
                _ => return Ok(()),
            }
        }
    }

    /// Deletes the rows of the pending child `child` from this replica, a chunk per engine write
    /// (the stats follow each chunk), once its own file holds them (or this node holds no copy
    /// of the child). The first write also removes it from the pending children. Returns
    /// whether it was pending.
    ///
    /// # Errors
    /// Engine failures; the rest is dropped by a later call.
    pub fn drop_split_off(&self, child: u64) -> Result<bool, StorageError> {
        let _serial = self.apply_lock.lock();
        let mut children = self.state.read().children.clone();
        let Some(pos) = children.iter().position(|c| c.child == child) else {
            return Ok(false);
        };
        let gone = children.remove(pos);
        let globals = self.global_indexes();
        let ttl = self.ttl_attribute();
        if !globals.is_empty() {
            self.load_outbox_seq()?;
        }
        let mut first = true;
        for rows in self.row_kinds() {
            self.walk(rows, &gone, |chunk| {
                if chunk.is_empty() && !first {
                    return Ok(());
                }
                let mut next = self.state.read().clone();
                let mut batch = WriteBatch::new(next.applied_index);
                if first {
                    batch.put(CHILDREN_KEY.to_vec(), json(&children));
                    batch.delete_in(Space::Index, crate::change_log::child_setting_key(child));
                    next.children.clone_from(&children);
                    first = false;
                }
                let outbox_before = next.outbox_seq;
                for (key, value) in chunk {
                    match rows {
                        Rows::Items => {
                            let item = decode_stored(value)?;
                            next.stats.remove(item_size(&item));
                            if let Some(attr) = &ttl {
                                let k = self.schema.key_of(&item);
                                if let (Some(tk), _) =
                                    crate::ttl::row_changes(attr, key, &k, Some(&item), None)
                                {
                                    batch.delete_in(Space::Index, tk);
                                }
                            }
                            // The entries of the rows split off leave this replica's GSI
                            // shards through the outbox, as deletes do.
                            for def in &globals {
                                if let Some(e) = EntryOf::of(def, &self.schema, Some(&item)) {
                                    next.outbox_seq = next.outbox_seq.saturating_add(1);
                                    OutboxRecord {
                                        seq: next.outbox_seq,
                                        index_id: def.id,
                                        delete: Some(e.key),
                                        put: None,
                                    }
                                    .put_into(&mut batch);
                                }
                            }
                        }
                        Rows::Entries(id) => {
                            if let Some(s) = next.index_stats.get_mut(&id) {
                                s.remove(entry_size(&decode_stored(value)?));
                            }
                        }
                        Rows::Collections => {
                            decode_u64(value, "item collection size")?;
                        }
                        Rows::Txn => {}
                    }
                    batch.delete_in(rows.space(), key.clone());
                }
                batch.put(STATS_KEY.to_vec(), next.stats.encode());
                if next.outbox_seq != outbox_before {
                    batch.put(
                        OUTBOX_SEQ_KEY.to_vec(),
                        next.outbox_seq.to_be_bytes().to_vec(),
                    );
                }
                if let Rows::Entries(id) = rows
                    && let Some(s) = next.index_stats.get(&id)
                {
                    batch.put_in(Space::Index, stats_key(id), s.encode());
                }
                self.engine.write(&batch)?;
                *self.state.write() = next;
                Ok(())
            })?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use shoal_types::key::{KeyAttr, KeySchema, partition_hash};
    use shoal_types::{AttributeValue, Item, ScalarType};

    use super::*;
    use crate::{ApplyError, Command, MemEngine};

    fn schema() -> KeySchema {
        KeySchema {
            hash: KeyAttr {
                name: "pk".into(),
                ty: ScalarType::S,
            },
            range: None,
        }
    }

    fn item(i: usize) -> Item {
        [
            ("pk".to_string(), AttributeValue::S(format!("k{i}"))),
            ("v".to_string(), AttributeValue::S("x".repeat(i % 50))),
        ]
        .into_iter()
        .collect()
    }

    fn hash(i: usize) -> u64 {
        partition_hash(&AttributeValue::S(format!("k{i}")))
    }

    const MID: u64 = 1 << 63;

    fn split() -> Command {
        Command::Split {
            start: 0,
            end: MID - 1,
            epoch: 2,
            child: SplitChild {
                child: 7,
                start: MID,
                end: u64::MAX,
                epoch: 2,
            },
        }
    }

    #[test]
    fn a_split_moves_the_upper_half_to_the_child_and_refuses_it_here() {
        let parent = Partition::new(Box::new(MemEngine::new()), schema()).unwrap();
        let n = 3000;
        for i in 0..n {
            let put = Command::Put {
                item: item(i),
                condition: None,
            };
            parent.apply(i as u64 + 1, &put).unwrap();
        }
        let before = parent.stats();
        let at = n as u64 + 1;
        parent.apply(at, &split()).unwrap();
        assert_eq!(parent.applied_index(), at);
        // Applied again (a replay): nothing changes.
        parent.apply(at + 1, &split()).unwrap();
        assert_eq!(parent.split_children().len(), 1);
        let upper = (0..n).find(|i| hash(*i) >= MID).unwrap();
        let lower = (0..n).find(|i| hash(*i) < MID).unwrap();
        let refused = parent.apply(
            at + 2,
            &Command::Delete {
                key: item(upper),
                condition: None,
            },
        );
        assert!(matches!(refused, Err(ApplyError::WrongPartition)));
        assert!(!parent.owns(hash(upper)) && parent.owns(hash(lower)));
        assert!(parent.covers(0, MID - 1) && !parent.covers(0, MID));

        let engine = MemEngine::new();
        let child_def = parent.split_children()[0];
        parent.build_child(&child_def, &engine).unwrap();
        let child = Partition::new(Box::new(engine), schema()).unwrap();
        assert!(child.is_built().unwrap());
        assert_eq!(child.applied_index(), 0);
        assert_eq!(
            child.owned_range(),
            Some(OwnedRange {
                start: MID,
                end: u64::MAX,
                epoch: 2
            })
        );
        assert!(parent.drop_split_off(7).unwrap());
        assert!(!parent.drop_split_off(7).unwrap());
        assert!(parent.split_children().is_empty());
        let (p, c) = (parent.stats(), child.stats());
        assert_eq!(p.item_count + c.item_count, before.item_count);
        assert_eq!(p.size_bytes + c.size_bytes, before.size_bytes);
        for i in 0..n {
            let (here, there) = if hash(i) >= MID {
                (&child, &parent)
            } else {
                (&parent, &child)
            };
            assert_eq!(here.get(&item(i)).unwrap(), Some(item(i)), "item {i}");
            assert_eq!(there.get(&item(i)).unwrap(), None, "item {i}");
        }
        // The child applies its own log from its bootstrap on.
        let put = Command::Put {
            item: item(upper),
            condition: None,
        };
        child.apply(6, &put).unwrap();
        let wrong = Command::Put {
            item: item(lower),
            condition: None,
        };
        assert!(matches!(
            child.apply(7, &wrong),
            Err(ApplyError::WrongPartition)
        ));
    }

    /// Item `i` with a GSI key `g` from item 1 on.
    fn gitem(i: usize) -> Item {
        let mut item = item(i);
        if i > 0 {
            item.insert("g".to_string(), AttributeValue::S(format!("g{}", i % 7)));
        }
        item
    }

    /// A global index on `g`, all attributes projected.
    fn by_v() -> IndexDef {
        use shoal_types::index::{Projection, ProjectionType};
        IndexDef {
            id: 3,
            name: "by_v".into(),
            kind: IndexKind::Global,
            key_schema: KeySchema {
                hash: KeyAttr {
                    name: "g".into(),
                    ty: ScalarType::S,
                },
                range: None,
            }
            .into(),
            projection: Projection {
                kind: ProjectionType::All,
                non_key_attributes: Vec::new(),
            },
            status: IndexStatus::Active,
            backfilling: false,
        }
    }

    /// Ships every outbox record of `part` (partition `id`) to `shard`.
    fn ship(part: &Partition, id: u64, shard: &crate::IndexPartition) {
        let records = part.outbox(0, usize::MAX).unwrap();
        shard.apply_outbox(id, &records).unwrap();
    }

    /// The table keys of every entry of `shard` read with `owned`.
    fn shard_keys(shard: &crate::IndexPartition, owned: Option<(u64, u64)>) -> Vec<String> {
        let page = shard
            .scan(
                &crate::ScanSpec {
                    hash_start: 0,
                    hash_end: u64::MAX,
                    exclusive_start: None,
                    limit: None,
                    byte_limit: usize::MAX,
                    filter: None,
                },
                owned,
            )
            .unwrap();
        let mut keys: Vec<String> = page
            .items
            .iter()
            .map(|i| match i.get("pk") {
                Some(AttributeValue::S(s)) => s.clone(),
                _ => String::new(),
            })
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn gsi_shards_follow_a_split() {
        let parent = Partition::new(Box::new(MemEngine::new()), schema()).unwrap();
        parent.set_indexes(vec![by_v()]).unwrap();
        let parent_shard =
            crate::IndexPartition::new(Box::new(MemEngine::new()), by_v(), schema()).unwrap();
        // Items 1.. have a `g` (item 0 none, so it is not indexed).
        let n = 400;
        for i in 0..n {
            let put = Command::Put {
                item: gitem(i),
                condition: None,
            };
            parent.apply(i as u64 + 1, &put).unwrap();
        }
        ship(&parent, 1, &parent_shard);
        let indexed = |pred: &dyn Fn(u64) -> bool| {
            let mut keys: Vec<String> = (1..n)
                .filter(|i| pred(hash(*i)))
                .map(|i| format!("k{i}"))
                .collect();
            keys.sort();
            keys
        };
        assert_eq!(shard_keys(&parent_shard, None), indexed(&|_| true));
        parent.apply(n as u64 + 1, &split()).unwrap();
        // Until the rows split off are dropped, the parent's shard still has their entries:
        // read with the parent's range, it shows only its own.
        assert_eq!(
            shard_keys(&parent_shard, Some((0, MID - 1))),
            indexed(&|h| h < MID)
        );
        // The child's file gets an outbox `put` of each of its items' entries.
        let engine = MemEngine::new();
        parent
            .build_child(&parent.split_children()[0], &engine)
            .unwrap();
        let child = Partition::new(Box::new(engine), schema()).unwrap();
        child.set_indexes(vec![by_v()]).unwrap();
        let child_shard =
            crate::IndexPartition::new(Box::new(MemEngine::new()), by_v(), schema()).unwrap();
        ship(&child, 7, &child_shard);
        assert_eq!(shard_keys(&child_shard, None), indexed(&|h| h >= MID));
        // The drop writes outbox deletes: shipped, the parent's shard holds its half only.
        assert!(parent.drop_split_off(7).unwrap());
        ship(&parent, 1, &parent_shard);
        assert_eq!(shard_keys(&parent_shard, None), indexed(&|h| h < MID));
        // The child's own writes keep numbering its outbox after the copied records.
        let upper = (1..n).find(|i| hash(*i) >= MID).unwrap();
        child
            .apply(
                1,
                &Command::Delete {
                    key: gitem(upper),
                    condition: None,
                },
            )
            .unwrap();
        ship(&child, 7, &child_shard);
        let mut left = indexed(&|h| h >= MID);
        left.retain(|k| *k != format!("k{upper}"));
        assert_eq!(shard_keys(&child_shard, None), left);
    }

    #[test]
    fn a_split_travels_in_a_snapshot() {
        let parent = Partition::new(Box::new(MemEngine::new()), schema()).unwrap();
        for i in 0..100 {
            let put = Command::Put {
                item: item(i),
                condition: None,
            };
            parent.apply(i as u64 + 1, &put).unwrap();
        }
        parent.apply(101, &split()).unwrap();
        let copy = Partition::new(Box::new(MemEngine::new()), schema()).unwrap();
        copy.import_snapshot(&parent.export_snapshot().unwrap())
            .unwrap();
        assert_eq!(copy.owned_range(), parent.owned_range());
        assert_eq!(copy.split_children(), parent.split_children());
    }
}
