//! The plaintext of one log record: a batch of group writes, or a checkpoint of every group.
//!
//! Integers are little-endian. A record is `kind (1)` then its groups:
//! `count (u32)`, then per group `group (u64) ‖ flags (u8)` and the fields the flags name, in
//! [`GroupWrite`]'s apply order: snapshot `(index u64, term u64, conf)`, entries
//! `(count u32; per entry index u64, term u64, type u8, data, context)`, hard state
//! `(term, vote, commit: u64)`, conf state, compact-to `u64`. Byte strings are `len (u32) ‖ bytes`.
//! A conf state is [`encode_conf`]'s blob as a byte string.
//!
//! Records are authenticated by the record cipher before they are decoded, so a decoding error
//! means a bug or a format change, never a torn write; the decoder still checks every length and
//! never panics.

use raft::eraftpb::{ConfState, Entry, EntryType, HardState};

use crate::{GroupId, GroupState, GroupWrite, RaftError};

/// A record holding one [`crate::LogBatch`].
pub(super) const KIND_BATCH: u8 = 1;
/// A record holding every group's whole state; replaces everything replayed before it.
pub(super) const KIND_CHECKPOINT: u8 = 2;

const F_REMOVED: u8 = 1;
const F_SNAPSHOT: u8 = 1 << 1;
const F_ENTRIES: u8 = 1 << 2;
const F_HARD_STATE: u8 = 1 << 3;
const F_CONF_STATE: u8 = 1 << 4;
const F_COMPACT_TO: u8 = 1 << 5;

/// Encodes a conf state: a version byte, the auto-leave flag, then four length-prefixed lists
/// of little-endian u64 (voters, learners, outgoing voters, next learners).
pub(crate) fn encode_conf(cs: &ConfState) -> Vec<u8> {
    let lists = [
        &cs.voters,
        &cs.learners,
        &cs.voters_outgoing,
        &cs.learners_next,
    ];
    let mut out = Vec::with_capacity(2 + lists.iter().map(|l| 4 + 8 * l.len()).sum::<usize>());
    out.push(1u8);
    out.push(u8::from(cs.auto_leave));
    for list in lists {
        out.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for id in list.iter() {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    out
}

/// Decodes [`encode_conf`]'s format (an empty blob is the default conf state).
pub(crate) fn decode_conf(b: &[u8]) -> Result<ConfState, RaftError> {
    let mut cs = ConfState::default();
    if b.is_empty() {
        return Ok(cs);
    }
    let bad = || RaftError::Log("corrupt conf state in the log".to_string());
    if b.len() < 2 || b[0] != 1 {
        return Err(bad());
    }
    cs.auto_leave = b[1] != 0;
    let mut r = Reader { buf: &b[2..] };
    let mut lists: [Vec<u64>; 4] = Default::default();
    for list in &mut lists {
        let n = r.u32().map_err(|_| bad())? as usize;
        for _ in 0..n {
            list.push(r.u64().map_err(|_| bad())?);
        }
    }
    if !r.buf.is_empty() {
        return Err(bad());
    }
    let [voters, learners, voters_outgoing, learners_next] = lists;
    cs.voters = voters;
    cs.learners = learners;
    cs.voters_outgoing = voters_outgoing;
    cs.learners_next = learners_next;
    Ok(cs)
}

pub(crate) fn entry_kind(t: EntryType) -> u8 {
    match t {
        EntryType::EntryNormal => 0,
        EntryType::EntryConfChange => 1,
        EntryType::EntryConfChangeV2 => 2,
    }
}

pub(crate) fn kind_entry_type(k: u8) -> Result<EntryType, RaftError> {
    match k {
        0 => Ok(EntryType::EntryNormal),
        1 => Ok(EntryType::EntryConfChange),
        2 => Ok(EntryType::EntryConfChangeV2),
        other => Err(RaftError::Log(format!(
            "unknown entry type {other} in the log"
        ))),
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len() as u32);
    out.extend_from_slice(b);
}

/// Appends one group write to `out`.
fn encode_write(out: &mut Vec<u8>, w: &GroupWrite) {
    let mut flags = 0;
    if w.removed {
        flags |= F_REMOVED;
    }
    if w.snapshot.is_some() {
        flags |= F_SNAPSHOT;
    }
    if !w.entries.is_empty() {
        flags |= F_ENTRIES;
    }
    if w.hard_state.is_some() {
        flags |= F_HARD_STATE;
    }
    if w.conf_state.is_some() {
        flags |= F_CONF_STATE;
    }
    if w.compact_to.is_some() {
        flags |= F_COMPACT_TO;
    }
    put_u64(out, w.group);
    out.push(flags);
    if let Some((index, term, cs)) = &w.snapshot {
        put_u64(out, *index);
        put_u64(out, *term);
        put_bytes(out, &encode_conf(cs));
    }
    if !w.entries.is_empty() {
        put_u32(out, w.entries.len() as u32);
        for e in &w.entries {
            put_u64(out, e.index);
            put_u64(out, e.term);
            out.push(entry_kind(e.entry_type));
            put_bytes(out, &e.data);
            put_bytes(out, &e.context);
        }
    }
    if let Some(hs) = &w.hard_state {
        put_u64(out, hs.term);
        put_u64(out, hs.vote);
        put_u64(out, hs.commit);
    }
    if let Some(cs) = &w.conf_state {
        put_bytes(out, &encode_conf(cs));
    }
    if let Some(to) = w.compact_to {
        put_u64(out, to);
    }
}

/// The plaintext of a record holding `writes`.
pub(super) fn encode_record(kind: u8, writes: &[GroupWrite], out: &mut Vec<u8>) {
    out.clear();
    out.push(kind);
    put_u32(out, writes.len() as u32);
    for w in writes {
        encode_write(out, w);
    }
}

/// A checkpoint's group writes: each group's state as a snapshot reset, its entries and its
/// hard state, so replaying them over nothing rebuilds `groups` exactly.
pub(super) fn checkpoint_writes<'a>(
    groups: impl Iterator<Item = (&'a GroupId, &'a GroupState)>,
) -> Vec<GroupWrite> {
    groups
        .map(|(g, st)| GroupWrite {
            group: *g,
            snapshot: Some((st.snapshot_index, st.snapshot_term, st.conf_state.clone())),
            entries: st.entries.clone(),
            hard_state: Some(st.hard_state.clone()),
            ..GroupWrite::default()
        })
        .collect()
}

/// A cursor over a record's plaintext; every read checks the length left.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RaftError> {
        if self.buf.len() < n {
            return Err(RaftError::Log(
                "a log record ends early (format mismatch)".to_string(),
            ));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, RaftError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, RaftError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, RaftError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn bytes(&mut self) -> Result<&'a [u8], RaftError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Decodes a record: its kind and its group writes.
pub(super) fn decode_record(b: &[u8]) -> Result<(u8, Vec<GroupWrite>), RaftError> {
    let mut r = Reader { buf: b };
    let kind = r.u8()?;
    if kind != KIND_BATCH && kind != KIND_CHECKPOINT {
        return Err(RaftError::Log(format!("unknown log record kind {kind}")));
    }
    let n = r.u32()? as usize;
    // Each group takes at least 9 bytes: a count beyond that is corrupt, not a reason to allocate.
    let mut writes = Vec::with_capacity(n.min(r.buf.len() / 9));
    for _ in 0..n {
        let mut w = GroupWrite::new(r.u64()?);
        let flags = r.u8()?;
        w.removed = flags & F_REMOVED != 0;
        if flags & F_SNAPSHOT != 0 {
            let index = r.u64()?;
            let term = r.u64()?;
            w.snapshot = Some((index, term, decode_conf(r.bytes()?)?));
        }
        if flags & F_ENTRIES != 0 {
            let count = r.u32()? as usize;
            w.entries = Vec::with_capacity(count.min(r.buf.len() / 25));
            for _ in 0..count {
                let index = r.u64()?;
                let term = r.u64()?;
                let entry_type = kind_entry_type(r.u8()?)?;
                let data = r.bytes()?.to_vec();
                let context = r.bytes()?.to_vec();
                w.entries.push(Entry {
                    index,
                    term,
                    entry_type,
                    data: data.into(),
                    context: context.into(),
                    ..Entry::default()
                });
            }
        }
        if flags & F_HARD_STATE != 0 {
            w.hard_state = Some(HardState {
                term: r.u64()?,
                vote: r.u64()?,
                commit: r.u64()?,
                ..HardState::default()
            });
        }
        if flags & F_CONF_STATE != 0 {
            w.conf_state = Some(decode_conf(r.bytes()?)?);
        }
        if flags & F_COMPACT_TO != 0 {
            w.compact_to = Some(r.u64()?);
        }
        writes.push(w);
    }
    if !r.buf.is_empty() {
        return Err(RaftError::Log(
            "a log record has trailing bytes (format mismatch)".to_string(),
        ));
    }
    Ok((kind, writes))
}
