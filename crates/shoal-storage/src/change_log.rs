//! The change log of a table with a stream: one record per item change, written in the same
//! batch as the change by every write (single writes, transaction commits, TTL deletes), so a
//! record exists exactly when its change does.
//!
//! Which stream a partition writes records for is itself replicated: [`Command::SetStream`]
//! changes it at one point of the log (stored under [`STREAM_KEY`], carried by snapshots and
//! given to a split's child), so every replica writes the same records.
//!
//! Rows live in [`Space::Index`] under `STREAM_ID ‖ stream u32 ‖ epoch u64 ‖ seq u64` (all
//! big-endian): `stream` is the table's stream ([`StreamSetting::stream`]; a stream disabled
//! and enabled again is a new one), `epoch` the replica's epoch (its range's, 0 before its
//! first split) and `seq` the Raft index of the change, so records of one shard (a partition at
//! one epoch) are in log order. Two more rows per shard:
//! - `seq` [`TRIMMED_SEQ`] (0): the last sequence number trimmed, once records were trimmed;
//! - `seq` [`CLOSED_SEQ`] (`u64::MAX`): written by the split that closes the shard, with its
//!   last sequence number and its two children (this partition at its new epoch, and the
//!   partition split off at its epoch).
//!
//! Records carry the local clock of the replica that applied them
//! ([`ChangeRecord::created_ms`]; DynamoDB's `ApproximateCreationDateTime` is approximate too)
//! and are trimmed by it ([`Partition::trim_changes`]) on each replica.

use serde::{Deserialize, Serialize};
use shoal_types::Item;
use shoal_types::codec::{decode_item, encode_item};
use shoal_types::size::item_size;

use crate::snapshot::SCAN_CHUNK;
use crate::{Command, Partition, Space, StorageError, WriteBatch};

/// The [`Space::Index`] prefix of change rows: an index id never assigned (see `ttl.rs`).
pub(crate) const STREAM_ID: u32 = u32::MAX - 3;
/// The engine key of the partition's [`StreamSetting`] (absent: no stream).
pub(crate) const STREAM_KEY: &[u8] = &[6];
/// The `stream` field of the rows keeping, for each pending split child, the stream setting it
/// starts with (never a stream id: ids count up from 1).
const CHILD_SETTINGS: u32 = u32::MAX;
/// The `seq` of a shard's trim mark.
pub const TRIMMED_SEQ: u64 = 0;
/// The `seq` of a shard's close row.
pub const CLOSED_SEQ: u64 = u64::MAX;
/// The most bytes of records one read returns (DynamoDB's GetRecords answers at most 1 MB).
pub const MAX_READ_BYTES: u64 = 1024 * 1024;

/// `StreamViewType`: what each record holds besides the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamViewType {
    KeysOnly,
    NewImage,
    OldImage,
    NewAndOldImages,
}

impl StreamViewType {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamViewType::KeysOnly => "KEYS_ONLY",
            StreamViewType::NewImage => "NEW_IMAGE",
            StreamViewType::OldImage => "OLD_IMAGE",
            StreamViewType::NewAndOldImages => "NEW_AND_OLD_IMAGES",
        }
    }

    /// Parses [`StreamViewType::as_str`].
    pub fn parse(s: &str) -> Option<StreamViewType> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Every view type, in tag order ([`StreamViewType::tag`]).
    const ALL: [StreamViewType; 4] = [
        StreamViewType::KeysOnly,
        StreamViewType::NewImage,
        StreamViewType::OldImage,
        StreamViewType::NewAndOldImages,
    ];

    /// Its one-byte encoding.
    pub fn tag(self) -> u8 {
        match self {
            StreamViewType::KeysOnly => 0,
            StreamViewType::NewImage => 1,
            StreamViewType::OldImage => 2,
            StreamViewType::NewAndOldImages => 3,
        }
    }

    /// Decodes [`StreamViewType::tag`].
    pub fn from_tag(tag: u8) -> Option<StreamViewType> {
        Self::ALL.get(usize::from(tag)).copied()
    }

    fn keeps_old(self) -> bool {
        matches!(
            self,
            StreamViewType::OldImage | StreamViewType::NewAndOldImages
        )
    }

    fn keeps_new(self) -> bool {
        matches!(
            self,
            StreamViewType::NewImage | StreamViewType::NewAndOldImages
        )
    }
}

/// The stream a partition writes records for (set through the log by [`Command::SetStream`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSetting {
    /// The table's stream id (unique per table).
    pub stream: u32,
    pub view: StreamViewType,
    /// This partition's id: a split names it as the first child of the shard it closes.
    pub partition: u64,
}

impl StreamSetting {
    /// `stream u32 | view u8 | partition u64` (big-endian).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(13);
        out.extend_from_slice(&self.stream.to_be_bytes());
        out.push(self.view.tag());
        out.extend_from_slice(&self.partition.to_be_bytes());
        out
    }

    pub(crate) fn decode(b: &[u8]) -> Result<StreamSetting, StorageError> {
        let bad = || corrupt("stream setting");
        if b.len() != 13 {
            return Err(bad());
        }
        Ok(StreamSetting {
            stream: u32::from_be_bytes(b[..4].try_into().map_err(|_| bad())?),
            view: StreamViewType::from_tag(b[4]).ok_or_else(bad)?,
            partition: u64::from_be_bytes(b[5..].try_into().map_err(|_| bad())?),
        })
    }
}

/// The stored stream setting, read with `get` ([`STREAM_KEY`] in the items space).
pub(crate) fn load_setting(
    get: impl Fn(&[u8]) -> Result<Option<Vec<u8>>, StorageError>,
) -> Result<Option<StreamSetting>, StorageError> {
    get(STREAM_KEY)?
        .map(|b| StreamSetting::decode(&b))
        .transpose()
}

/// `eventName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeEvent {
    Insert,
    Modify,
    Remove,
}

impl ChangeEvent {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeEvent::Insert => "INSERT",
            ChangeEvent::Modify => "MODIFY",
            ChangeEvent::Remove => "REMOVE",
        }
    }

    fn tag(self) -> u8 {
        match self {
            ChangeEvent::Insert => 1,
            ChangeEvent::Modify => 2,
            ChangeEvent::Remove => 3,
        }
    }

    fn from_tag(t: u8) -> Option<ChangeEvent> {
        match t {
            1 => Some(ChangeEvent::Insert),
            2 => Some(ChangeEvent::Modify),
            3 => Some(ChangeEvent::Remove),
            _ => None,
        }
    }
}

/// One stream record.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// Its sequence number in its shard (the Raft index of the change).
    pub seq: u64,
    pub event: ChangeEvent,
    /// The item's key attributes.
    pub keys: Item,
    /// The item before the change, when the view type keeps it (and there was one).
    pub old: Option<Item>,
    /// The item after the change, when the view type keeps it (and there is one).
    pub new: Option<Item>,
    /// When the change was applied (ms since the epoch, the applying replica's clock).
    pub created_ms: u64,
    /// `SizeBytes`: the keys and the images kept.
    pub size_bytes: u64,
    /// Made by the service (a TTL delete): `userIdentity` is DynamoDB's service principal.
    pub by_service: bool,
}

/// A shard as one replica's rows show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSummary {
    pub epoch: u64,
    /// The first record kept, if any.
    pub first_seq: Option<u64>,
    /// The last sequence number trimmed, if any was.
    pub trimmed: Option<u64>,
    /// Set once a split closed the shard.
    pub closed: Option<ShardClose>,
}

/// How a split closed a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardClose {
    /// The last sequence number the shard may hold (the split's Raft index minus one).
    pub last_seq: u64,
    /// The child shards: `(partition, epoch)`.
    pub children: Vec<(u64, u64)>,
    /// When (ms since the epoch).
    pub closed_ms: u64,
}

/// Where a read of a shard starts (`ShardIteratorType` with its sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordsFrom {
    /// The oldest record kept.
    TrimHorizon,
    /// After the newest record (nothing already written).
    Latest,
    /// At this sequence number.
    At(u64),
    /// After this sequence number.
    After(u64),
}

/// What one read of a shard found.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordsRead {
    pub records: Vec<ChangeRecord>,
    /// The sequence number the next read continues after; `None` once the shard is closed and
    /// every record was read.
    pub next: Option<u64>,
}

/// Why a shard read failed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeReadError {
    /// The records from the position on were trimmed (older than the retention).
    #[error("records before sequence number {0} were trimmed")]
    Trimmed(u64),
    /// The replica holds no such shard (of this stream, at this epoch).
    #[error("no such shard")]
    UnknownShard,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn shard_prefix(stream: u32, epoch: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(16);
    k.extend_from_slice(&STREAM_ID.to_be_bytes());
    k.extend_from_slice(&stream.to_be_bytes());
    k.extend_from_slice(&epoch.to_be_bytes());
    k
}

fn row_key(stream: u32, epoch: u64, seq: u64) -> Vec<u8> {
    let mut k = shard_prefix(stream, epoch);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The [`Space::Index`] key of the stream setting split child `child` starts with, as of the
/// split (written by the split's apply, read when the child is built, dropped with the rows
/// split off). Shorter than a change row: readers of change rows skip it.
pub(crate) fn child_setting_key(child: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(16);
    k.extend_from_slice(&STREAM_ID.to_be_bytes());
    k.extend_from_slice(&CHILD_SETTINGS.to_be_bytes());
    k.extend_from_slice(&child.to_be_bytes());
    k
}

/// `(stream, epoch, seq)` of a change row key.
fn parse_key(key: &[u8]) -> Option<(u32, u64, u64)> {
    let rest = key.strip_prefix(&STREAM_ID.to_be_bytes()[..])?;
    if rest.len() != 20 {
        return None;
    }
    let stream = u32::from_be_bytes(rest[..4].try_into().ok()?);
    let epoch = u64::from_be_bytes(rest[4..12].try_into().ok()?);
    let seq = u64::from_be_bytes(rest[12..].try_into().ok()?);
    Some((stream, epoch, seq))
}

/// Every change row, of every stream.
fn all_prefix() -> Vec<u8> {
    STREAM_ID.to_be_bytes().to_vec()
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt {
        context: format!("change record: {what}"),
    }
}

const RECORD_VERSION: u8 = 1;
const HAS_OLD: u8 = 1;
const HAS_NEW: u8 = 2;
const BY_SERVICE: u8 = 4;

fn put_item(out: &mut Vec<u8>, item: &Item) {
    let mut bytes = Vec::with_capacity(64);
    encode_item(item, &mut bytes);
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&bytes);
}

fn take_item(bytes: &mut &[u8]) -> Result<Item, StorageError> {
    if bytes.len() < 4 {
        return Err(corrupt("truncated"));
    }
    let (len, rest) = bytes.split_at(4);
    let len = u32::from_be_bytes(len.try_into().map_err(|_| corrupt("truncated"))?) as usize;
    if rest.len() < len {
        return Err(corrupt("truncated"));
    }
    let (item, rest) = rest.split_at(len);
    *bytes = rest;
    decode_item(item).map_err(|e| corrupt(&e.to_string()))
}

/// `version u8 | event u8 | flags u8 | created_ms u64 | size u64 | keys | old? | new?`, items
/// length-prefixed (`u32`) in the item codec.
fn encode_record(r: &ChangeRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(RECORD_VERSION);
    out.push(r.event.tag());
    let mut flags = 0;
    if r.old.is_some() {
        flags |= HAS_OLD;
    }
    if r.new.is_some() {
        flags |= HAS_NEW;
    }
    if r.by_service {
        flags |= BY_SERVICE;
    }
    out.push(flags);
    out.extend_from_slice(&r.created_ms.to_be_bytes());
    out.extend_from_slice(&r.size_bytes.to_be_bytes());
    put_item(&mut out, &r.keys);
    if let Some(old) = &r.old {
        put_item(&mut out, old);
    }
    if let Some(new) = &r.new {
        put_item(&mut out, new);
    }
    out
}

fn decode_record(seq: u64, bytes: &[u8]) -> Result<ChangeRecord, StorageError> {
    if bytes.len() < 19 || bytes[0] != RECORD_VERSION {
        return Err(corrupt("bad header"));
    }
    let event = ChangeEvent::from_tag(bytes[1]).ok_or_else(|| corrupt("bad event"))?;
    let flags = bytes[2];
    let created_ms = u64::from_be_bytes(bytes[3..11].try_into().map_err(|_| corrupt("header"))?);
    let size_bytes = u64::from_be_bytes(bytes[11..19].try_into().map_err(|_| corrupt("header"))?);
    let mut rest = &bytes[19..];
    let keys = take_item(&mut rest)?;
    let old = (flags & HAS_OLD != 0)
        .then(|| take_item(&mut rest))
        .transpose()?;
    let new = (flags & HAS_NEW != 0)
        .then(|| take_item(&mut rest))
        .transpose()?;
    Ok(ChangeRecord {
        seq,
        event,
        keys,
        old,
        new,
        created_ms,
        size_bytes,
        by_service: flags & BY_SERVICE != 0,
    })
}

/// Milliseconds since the epoch, by this machine's clock.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The change record of `old` → `new` at `seq`, with the images `view` keeps; `None` when the
/// change changes nothing (DynamoDB writes no record for a write that leaves the item as it
/// was).
pub(crate) fn record_of(
    schema: &shoal_types::key::KeySchema,
    view: StreamViewType,
    seq: u64,
    old: Option<&Item>,
    new: Option<&Item>,
    by_service: bool,
) -> Option<ChangeRecord> {
    let event = match (old, new) {
        (None, Some(_)) => ChangeEvent::Insert,
        (Some(o), Some(n)) if o != n => ChangeEvent::Modify,
        (Some(_), None) => ChangeEvent::Remove,
        _ => return None,
    };
    let keys = schema.key_of(new.or(old)?);
    let old = old.filter(|_| view.keeps_old()).cloned();
    let new = new.filter(|_| view.keeps_new()).cloned();
    let size_bytes = [Some(&keys), old.as_ref(), new.as_ref()]
        .into_iter()
        .flatten()
        .map(|i| item_size(i) as u64)
        .sum();
    Some(ChangeRecord {
        seq,
        event,
        keys,
        old,
        new,
        created_ms: now_ms(),
        size_bytes,
        by_service,
    })
}

impl Partition {
    /// The stream the partition writes records for, as the last applied
    /// [`Command::SetStream`] left it.
    pub fn stream_setting(&self) -> Option<StreamSetting> {
        self.state.read().stream
    }

    /// Whether the partition writes records for stream `stream` now.
    pub fn writes_stream(&self, stream: u32) -> bool {
        self.stream_setting().is_some_and(|s| s.stream == stream)
    }

    /// Starts a partition that never applied an entry (and is no split child, which its
    /// parent's split gives its setting) writing records for `initial`: the stream its table
    /// was created with, so the log's first entries have records on every replica. Stored, so a
    /// restart keeps it; a snapshot installed later replaces it with the leader's. A no-op for
    /// any other partition.
    ///
    /// # Errors
    /// Engine failures.
    pub fn begin_stream(&self, initial: Option<StreamSetting>) -> Result<(), StorageError> {
        let Some(setting) = initial else {
            return Ok(());
        };
        let _serial = self.apply_lock.lock();
        {
            let state = self.state.read();
            if state.applied_index != 0 || state.range.is_some() || state.stream.is_some() {
                return Ok(());
            }
        }
        let mut batch = WriteBatch::new(0);
        batch.put(STREAM_KEY.to_vec(), setting.encode());
        self.engine.write(&batch)?;
        self.state.write().stream = Some(setting);
        Ok(())
    }

    /// The command that makes the partition write records for `setting` (`None`: none), when
    /// it does not already: the node proposes it through the partition's log.
    pub fn stream_change(&self, setting: Option<StreamSetting>) -> Option<Command> {
        (self.stream_setting() != setting).then_some(Command::SetStream { setting })
    }

    /// The replica's epoch as its change rows name it: its range's, 0 before its first split.
    pub fn change_epoch(&self) -> u64 {
        self.state.read().range.map_or(0, |r| r.epoch)
    }

    /// Adds to `pending` the change record of `old` → `new` applied at Raft index `seq`, while
    /// a stream is set (`setting`, the batch's).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn change_writes(
        &self,
        setting: Option<StreamSetting>,
        seq: u64,
        epoch: u64,
        old: Option<&Item>,
        new: Option<&Item>,
        by_service: bool,
        pending: &mut crate::partition::Pending,
    ) {
        let Some(setting) = setting else {
            return;
        };
        if let Some(record) = record_of(&self.schema, setting.view, seq, old, new, by_service) {
            pending.index.insert(
                row_key(setting.stream, epoch, seq),
                Some(encode_record(&record)),
            );
        }
    }

    /// Adds to `pending` the close row of the shard at `old_epoch`, split at Raft index `seq`
    /// into this partition at `new_epoch` and partition `child` at `child_epoch`, while a
    /// stream is set (`setting`, the batch's).
    pub(crate) fn close_shard_writes(
        setting: Option<StreamSetting>,
        seq: u64,
        old_epoch: u64,
        new_epoch: u64,
        child: (u64, u64),
        pending: &mut crate::partition::Pending,
    ) {
        let Some(setting) = setting else {
            return;
        };
        let close = ShardClose {
            last_seq: seq.saturating_sub(1),
            children: vec![(setting.partition, new_epoch), child],
            closed_ms: now_ms(),
        };
        let theirs = StreamSetting {
            partition: child.0,
            ..setting
        };
        pending
            .index
            .insert(child_setting_key(child.0), Some(theirs.encode()));
        // Serializing plain integers cannot fail.
        let value = serde_json::to_vec(&close).unwrap_or_default();
        pending
            .index
            .insert(row_key(setting.stream, old_epoch, CLOSED_SEQ), Some(value));
    }

    /// The shards of `stream` this replica holds rows of, by epoch, and its current one (even
    /// without records).
    ///
    /// # Errors
    /// Engine failures; a close row that does not decode.
    pub fn change_shards(&self, stream: u32) -> Result<Vec<ShardSummary>, StorageError> {
        let current = self.change_epoch();
        let mut out: Vec<ShardSummary> = Vec::new();
        let mut epoch = 0u64;
        loop {
            let start = shard_prefix(stream, epoch);
            let end = crate::range::prefix_end(&shard_prefix(stream, u64::MAX));
            let first =
                self.engine
                    .scan_in(Space::Index, Some(&start), end.as_deref(), false, 1)?;
            let Some((key, _)) = first.first() else {
                break;
            };
            let Some((_, e, _)) = parse_key(key) else {
                break;
            };
            out.push(self.shard_summary(stream, e)?);
            match e.checked_add(1) {
                Some(n) => epoch = n,
                None => break,
            }
        }
        if !out.iter().any(|s| s.epoch == current) && self.stream_setting().is_some() {
            out.push(ShardSummary {
                epoch: current,
                first_seq: None,
                trimmed: None,
                closed: None,
            });
        }
        Ok(out)
    }

    fn shard_summary(&self, stream: u32, epoch: u64) -> Result<ShardSummary, StorageError> {
        let trimmed = self
            .engine
            .get_in(Space::Index, &row_key(stream, epoch, TRIMMED_SEQ))?
            .map(|b| {
                b.as_slice()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| corrupt("trim mark"))
            })
            .transpose()?;
        let closed = self
            .engine
            .get_in(Space::Index, &row_key(stream, epoch, CLOSED_SEQ))?
            .map(|b| serde_json::from_slice::<ShardClose>(&b).map_err(|_| corrupt("close row")))
            .transpose()?;
        let first = self.engine.scan_in(
            Space::Index,
            Some(&row_key(stream, epoch, TRIMMED_SEQ + 1)),
            Some(&row_key(stream, epoch, CLOSED_SEQ)),
            false,
            1,
        )?;
        let first_seq = first.first().and_then(|(k, _)| parse_key(k)).map(|k| k.2);
        Ok(ShardSummary {
            epoch,
            first_seq,
            trimmed,
            closed,
        })
    }

    /// Up to `limit` records of the shard of `stream` at `epoch` from `from`, at most about
    /// [`MAX_READ_BYTES`] (always at least one record when one is there).
    ///
    /// # Errors
    /// [`ChangeReadError::UnknownShard`] when the replica has no such shard;
    /// [`ChangeReadError::Trimmed`] when records from `from` on were trimmed.
    pub fn read_changes(
        &self,
        stream: u32,
        epoch: u64,
        from: RecordsFrom,
        limit: usize,
    ) -> Result<RecordsRead, ChangeReadError> {
        // The applied index first: records up to it are all there.
        let applied = self.applied_index();
        let current = self.change_epoch() == epoch
            && self.stream_setting().is_some_and(|s| s.stream == stream);
        let summary = self.shard_summary(stream, epoch)?;
        if !current
            && summary.closed.is_none()
            && summary.first_seq.is_none()
            && summary.trimmed.is_none()
        {
            return Err(ChangeReadError::UnknownShard);
        }
        let after = match from {
            RecordsFrom::TrimHorizon => summary.trimmed.unwrap_or(TRIMMED_SEQ),
            RecordsFrom::Latest => {
                let last = summary.closed.as_ref().map_or(applied, |c| c.last_seq);
                return Ok(RecordsRead {
                    records: Vec::new(),
                    next: Some(last),
                });
            }
            RecordsFrom::At(seq) => seq.saturating_sub(1),
            RecordsFrom::After(seq) => seq,
        };
        if let Some(t) = summary.trimmed
            && after < t
        {
            return Err(ChangeReadError::Trimmed(t.saturating_add(1)));
        }
        let mut records = Vec::new();
        let mut bytes = 0u64;
        let end = row_key(stream, epoch, CLOSED_SEQ);
        let mut start = row_key(stream, epoch, after.saturating_add(1).max(1));
        'read: while records.len() < limit {
            let chunk = self.engine.scan_in(
                Space::Index,
                Some(&start),
                Some(&end),
                false,
                (limit - records.len()).min(SCAN_CHUNK),
            )?;
            let full = chunk.len() == (limit - records.len()).min(SCAN_CHUNK);
            for (key, value) in &chunk {
                let Some((_, _, seq)) = parse_key(key) else {
                    continue;
                };
                if !records.is_empty() && bytes.saturating_add(value.len() as u64) > MAX_READ_BYTES
                {
                    break 'read;
                }
                bytes = bytes.saturating_add(value.len() as u64);
                records.push(decode_record(seq, value)?);
            }
            match chunk.last() {
                Some((key, _)) if full => start = crate::range::key_successor(key),
                _ => break,
            }
        }
        let last_read = records.last().map_or(after, |r| r.seq);
        // A closed shard gets no more records: once none is left after what was read, the
        // consumer moves on to its children.
        let next = if summary.closed.is_some()
            && self
                .engine
                .scan_in(
                    Space::Index,
                    Some(&row_key(stream, epoch, last_read.saturating_add(1))),
                    Some(&end),
                    false,
                    1,
                )?
                .is_empty()
        {
            None
        } else {
            Some(last_read)
        };
        Ok(RecordsRead { records, next })
    }

    /// Deletes, on this replica, the change records applied before `before_ms` and the shards
    /// (and streams) left empty by that, a chunk per engine write; records of streams for
    /// which `keep` is false are deleted whatever their age. Returns how many rows went.
    ///
    /// # Errors
    /// Engine failures; the rest goes at a later call.
    pub fn trim_changes(
        &self,
        before_ms: u64,
        keep: &dyn Fn(u32) -> bool,
    ) -> Result<usize, StorageError> {
        let p = all_prefix();
        let end = crate::range::prefix_end(&p);
        let mut start = p.clone();
        let mut removed = 0;
        loop {
            let _serial = self.apply_lock.lock();
            let chunk = self.engine.scan_in(
                Space::Index,
                Some(&start),
                end.as_deref(),
                false,
                SCAN_CHUNK,
            )?;
            let Some((last, _)) = chunk.last() else {
                return Ok(removed);
            };
            let next_start = crate::range::key_successor(last);
            let full = chunk.len() == SCAN_CHUNK;
            let mut batch = WriteBatch::new(self.applied_index());
            // Per shard: the last seq trimmed in this chunk.
            let mut marks: std::collections::BTreeMap<(u32, u64), u64> = Default::default();
            let mut skip: Option<(u32, u64)> = None;
            for (key, value) in &chunk {
                let Some((stream, epoch, seq)) = parse_key(key) else {
                    continue;
                };
                if skip == Some((stream, epoch)) {
                    continue;
                }
                let dropped = !keep(stream);
                match seq {
                    TRIMMED_SEQ => {
                        if dropped {
                            batch.delete_in(Space::Index, key.clone());
                            removed += 1;
                        }
                    }
                    CLOSED_SEQ => {
                        // A closed shard goes once its records have and it closed long enough
                        // ago (its children then have no parent to read first).
                        let old = serde_json::from_slice::<ShardClose>(value)
                            .map_or(true, |c| c.closed_ms < before_ms);
                        let empty = self
                            .engine
                            .scan_in(
                                Space::Index,
                                Some(&row_key(stream, epoch, TRIMMED_SEQ + 1)),
                                Some(key),
                                false,
                                1,
                            )?
                            .iter()
                            .all(|(k, _)| batch_deletes(&batch, k));
                        if dropped || (old && empty) {
                            batch.delete_in(Space::Index, key.clone());
                            batch.delete_in(Space::Index, row_key(stream, epoch, TRIMMED_SEQ));
                            marks.remove(&(stream, epoch));
                            removed += 1;
                        }
                    }
                    _ => {
                        let created = decode_record(seq, value).map_or(0, |r| r.created_ms);
                        if dropped || created < before_ms {
                            batch.delete_in(Space::Index, key.clone());
                            if !dropped {
                                marks.insert((stream, epoch), seq);
                            }
                            removed += 1;
                        } else {
                            // Records are in time order within a shard: the rest stays.
                            skip = Some((stream, epoch));
                        }
                    }
                }
            }
            for ((stream, epoch), seq) in marks {
                batch.put_in(
                    Space::Index,
                    row_key(stream, epoch, TRIMMED_SEQ),
                    seq.to_be_bytes().to_vec(),
                );
            }
            if !batch.is_empty() {
                self.engine.write(&batch)?;
            }
            if !full {
                return Ok(removed);
            }
            start = next_start;
        }
    }
}

fn batch_deletes(batch: &WriteBatch, key: &[u8]) -> bool {
    batch
        .space_deletes
        .iter()
        .any(|(s, k)| *s == Space::Index && k == key)
}

impl ChangeRecord {
    /// The stored form (also what nodes send each other).
    pub fn encode(&self) -> Vec<u8> {
        encode_record(self)
    }

    /// Decodes [`ChangeRecord::encode`] of the record with sequence number `seq`.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] for bytes that do not decode.
    pub fn decode(seq: u64, bytes: &[u8]) -> Result<ChangeRecord, StorageError> {
        decode_record(seq, bytes)
    }
}
