//! Transaction rows of a partition: item locks, read marks and decisions, kept in
//! [`Space::Index`] under [`TX_ID`] and the item's storage key, so a split copies them with the
//! item's hash range like local index entries, and snapshots and moves carry them.
//!
//! - A **lock** (`TxPrepare`) holds an item for one transaction with its pending change (the
//!   new item, a delete, or nothing for a condition check), the transaction's start time and
//!   where its decision is kept. Single writes and other transactions' prepares are refused
//!   while it is held. `TxResolve` applies the change (commit) or drops it (abort).
//! - A **read mark** (`TxRead`) records that a read transaction read the item; every change of
//!   the item removes all its marks, so `TxCheck` (and `TxRelease`, which removes it) tells the
//!   reader whether the item stayed unchanged since its read.
//! - A **decision** (`TxDecide`) records commit or abort of a transaction next to its primary
//!   item. The first decision wins, so the coordinator and a recovering node can never decide
//!   differently. With a client token, a committed decision also carries the token and the
//!   request's hash, so a retry is answered without writing again.
//!
//! Every row's value starts with its kind and carries the item's key, so recovery can list them
//! ([`Partition::tx_rows`]) without decoding storage keys.

use std::collections::{BTreeMap, HashMap};

use shoal_types::Item;
use shoal_types::codec::{decode_item, encode_item};
use shoal_types::index::IndexDef;
use shoal_types::size::item_size;

use crate::partition::{Decision, Pending as BatchPending, State, check};
use crate::{
    Applied, ApplyError, Command, Partition, Space, StorageError, TxId, TxOp, TxPrimary, TxToken,
};

/// The [`Space::Index`] prefix of transaction rows: an index id never assigned (ids count up
/// from 0; `u32::MAX` is the item collection sizes).
pub(crate) const TX_ID: u32 = u32::MAX - 1;

const KIND_LOCK: u8 = 0;
const KIND_MARK: u8 = 1;
const KIND_DECISION: u8 = 2;

/// What a lock's transaction will do to the item when it commits.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    /// Nothing (a condition check, a delete of an absent item, an update that creates nothing).
    Keep,
    /// Delete the item.
    Delete,
    /// Write this item.
    Write(Item),
}

/// A transaction row as listed by [`Partition::tx_rows`].
#[derive(Debug, Clone, PartialEq)]
pub enum TxRow {
    /// An item locked by a prepared transaction.
    Lock {
        txid: TxId,
        ts: u64,
        key: Item,
        primary: TxPrimary,
        /// The client token's key, when the transaction has one.
        token: Option<[u8; 16]>,
        pending: Pending,
    },
    /// A read mark of a read transaction.
    Mark { txid: TxId, ts: u64, key: Item },
    /// A decision recorded next to a primary item.
    Decision {
        txid: TxId,
        ts: u64,
        key: Item,
        commit: bool,
        /// The client token, for a committed transaction with one (kept 10 minutes).
        token: Option<TxToken>,
        /// Whether every lock of the transaction was resolved ([`Command::TxForget`] on a
        /// decision kept for its token): it is then needed only for the token's window.
        settled: bool,
    },
}

/// The row key of `skey`'s lock.
pub(crate) fn lock_key(skey: &[u8]) -> Vec<u8> {
    row_key(skey, KIND_LOCK, None)
}

/// The prefix of `skey`'s read marks.
pub(crate) fn mark_prefix(skey: &[u8]) -> Vec<u8> {
    row_key(skey, KIND_MARK, None)
}

/// The row key of `txid`'s read mark on `skey`.
pub(crate) fn mark_key(skey: &[u8], txid: &TxId) -> Vec<u8> {
    row_key(skey, KIND_MARK, Some(txid))
}

/// The row key of `txid`'s decision next to the primary item `skey`.
pub(crate) fn decision_key(skey: &[u8], txid: &TxId) -> Vec<u8> {
    row_key(skey, KIND_DECISION, Some(txid))
}

/// The prefix of the decisions kept next to `skey`.
pub(crate) fn decision_prefix(skey: &[u8]) -> Vec<u8> {
    row_key(skey, KIND_DECISION, None)
}

/// The prefix of every transaction row.
pub(crate) fn all_prefix() -> Vec<u8> {
    TX_ID.to_be_bytes().to_vec()
}

fn row_key(skey: &[u8], kind: u8, txid: Option<&TxId>) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + skey.len() + 1 + 16);
    k.extend_from_slice(&TX_ID.to_be_bytes());
    k.extend_from_slice(skey);
    k.push(kind);
    if let Some(t) = txid {
        k.extend_from_slice(t);
    }
    k
}

fn put_u32_len(n: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

fn put_item(item: &Item, out: &mut Vec<u8>) {
    let mut buf = Vec::new();
    encode_item(item, &mut buf);
    put_u32_len(buf.len(), out);
    out.extend_from_slice(&buf);
}

fn put_opt16(v: Option<&[u8; 16]>, out: &mut Vec<u8>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            out.extend_from_slice(v);
        }
    }
}

impl TxRow {
    /// The stored value of the row.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        match self {
            TxRow::Lock {
                txid,
                ts,
                key,
                primary,
                token,
                pending,
            } => {
                out.push(KIND_LOCK);
                out.extend_from_slice(txid);
                out.extend_from_slice(&ts.to_be_bytes());
                put_item(key, &mut out);
                put_u32_len(primary.table.len(), &mut out);
                out.extend_from_slice(primary.table.as_bytes());
                put_item(&primary.key, &mut out);
                put_opt16(token.as_ref(), &mut out);
                match pending {
                    Pending::Keep => out.push(0),
                    Pending::Delete => out.push(1),
                    Pending::Write(item) => {
                        out.push(2);
                        put_item(item, &mut out);
                    }
                }
            }
            TxRow::Mark { txid, ts, key } => {
                out.push(KIND_MARK);
                out.extend_from_slice(txid);
                out.extend_from_slice(&ts.to_be_bytes());
                put_item(key, &mut out);
            }
            TxRow::Decision {
                txid,
                ts,
                key,
                commit,
                token,
                settled,
            } => {
                out.push(KIND_DECISION);
                out.extend_from_slice(txid);
                out.extend_from_slice(&ts.to_be_bytes());
                put_item(key, &mut out);
                out.push(u8::from(*commit));
                out.push(u8::from(*settled));
                match token {
                    None => out.push(0),
                    Some(t) => {
                        out.push(1);
                        out.extend_from_slice(&t.key);
                        out.extend_from_slice(&t.request);
                    }
                }
            }
        }
        out
    }

    /// Decodes a stored row value.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] when it does not decode.
    pub(crate) fn decode(bytes: &[u8]) -> Result<TxRow, StorageError> {
        let mut r = Reader { bytes, pos: 0 };
        let row = match r.byte()? {
            KIND_LOCK => TxRow::Lock {
                txid: r.id()?,
                ts: r.u64()?,
                key: r.item()?,
                primary: TxPrimary {
                    table: r.string()?,
                    key: r.item()?,
                },
                token: r.opt_id()?,
                pending: match r.byte()? {
                    0 => Pending::Keep,
                    1 => Pending::Delete,
                    _ => Pending::Write(r.item()?),
                },
            },
            KIND_MARK => TxRow::Mark {
                txid: r.id()?,
                ts: r.u64()?,
                key: r.item()?,
            },
            KIND_DECISION => TxRow::Decision {
                txid: r.id()?,
                ts: r.u64()?,
                key: r.item()?,
                commit: r.byte()? == 1,
                settled: r.byte()? == 1,
                token: match r.byte()? {
                    0 => None,
                    _ => Some(TxToken {
                        key: r.id()?,
                        request: r.id()?,
                    }),
                },
            },
            kind => return Err(corrupt(&format!("unknown kind {kind}"))),
        };
        Ok(row)
    }
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt {
        context: format!("transaction row: {what}"),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], StorageError> {
        let end = self.pos.checked_add(n).ok_or_else(|| corrupt("length"))?;
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| corrupt("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, StorageError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, StorageError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    fn len(&mut self) -> Result<usize, StorageError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        usize::try_from(u32::from_be_bytes(b)).map_err(|_| corrupt("length"))
    }

    fn id(&mut self) -> Result<[u8; 16], StorageError> {
        let mut id = [0u8; 16];
        id.copy_from_slice(self.take(16)?);
        Ok(id)
    }

    fn opt_id(&mut self) -> Result<Option<[u8; 16]>, StorageError> {
        match self.byte()? {
            0 => Ok(None),
            _ => self.id().map(Some),
        }
    }

    fn item(&mut self) -> Result<Item, StorageError> {
        let n = self.len()?;
        decode_item(self.take(n)?).map_err(|e| corrupt(&e.to_string()))
    }

    fn string(&mut self) -> Result<String, StorageError> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| corrupt("table name"))
    }
}

impl Partition {
    /// Up to `limit` transaction rows of this replica (locks, read marks and decisions), in key
    /// order, for recovery: a lock whose coordinator is gone is resolved by the decision next to
    /// its primary item.
    ///
    /// # Errors
    /// Engine failures; a row that does not decode.
    pub fn tx_rows(&self, limit: usize) -> Result<Vec<TxRow>, StorageError> {
        Ok(self.tx_rows_after(None, limit)?.0)
    }

    /// As [`Partition::tx_rows`], from after the position `after` a previous call returned;
    /// also returns the position to continue from (`None` once every row was listed).
    ///
    /// # Errors
    /// Engine failures; a row that does not decode.
    pub fn tx_rows_after(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<TxRow>, Option<Vec<u8>>), StorageError> {
        let prefix = all_prefix();
        let start = match after {
            Some(k) => crate::range::key_successor(k),
            None => prefix.clone(),
        };
        let end = crate::range::prefix_end(&prefix);
        let chunk =
            self.engine
                .scan_in(Space::Index, Some(&start), end.as_deref(), false, limit)?;
        let next = match chunk.last() {
            Some((k, _)) if chunk.len() == limit => Some(k.clone()),
            _ => None,
        };
        let rows = chunk
            .iter()
            .map(|(_, v)| TxRow::decode(v))
            .collect::<Result<_, _>>()?;
        Ok((rows, next))
    }

    /// Whether the replica holds any transaction row (checked once at open, then kept by the
    /// applies): single writes skip the lock lookup while it holds none.
    pub(crate) fn has_tx_rows(engine: &dyn crate::Engine) -> Result<bool, StorageError> {
        let prefix = all_prefix();
        let end = crate::range::prefix_end(&prefix);
        Ok(!engine
            .scan_in(Space::Index, Some(&prefix), end.as_deref(), false, 1)?
            .is_empty())
    }
}

/// How long a committed decision with a client token is kept: DynamoDB's idempotency window.
pub const TOKEN_WINDOW_MS: u64 = 10 * 60 * 1000;

/// The most read marks of one item looked at by one write.
const MARK_SCAN_LIMIT: usize = 100_000;

/// Storage key → encoded item after the batch so far (`None`: deleted).
type Overlay = HashMap<Vec<u8>, Option<Vec<u8>>>;

impl Partition {
    /// A transaction row as the batch so far left it.
    fn tx_get(&self, key: &[u8], pending: &BatchPending) -> Result<Option<TxRow>, StorageError> {
        let raw = match pending.index.get(key) {
            Some(v) => v.clone(),
            None => self.engine.get_for_write(Space::Index, key)?,
        };
        raw.as_deref().map(TxRow::decode).transpose()
    }

    /// The rows under `prefix` as the batch so far left them.
    fn tx_scan(
        &self,
        prefix: &[u8],
        pending: &BatchPending,
    ) -> Result<Vec<(Vec<u8>, TxRow)>, StorageError> {
        let end = crate::range::prefix_end(prefix);
        let mut rows: BTreeMap<Vec<u8>, Vec<u8>> = self
            .engine
            .scan_in(
                Space::Index,
                Some(prefix),
                end.as_deref(),
                false,
                MARK_SCAN_LIMIT,
            )?
            .into_iter()
            .collect();
        for (k, v) in &pending.index {
            if k.starts_with(prefix) {
                match v {
                    Some(v) => rows.insert(k.clone(), v.clone()),
                    None => rows.remove(k),
                };
            }
        }
        rows.into_iter()
            .map(|(k, v)| Ok((k, TxRow::decode(&v)?)))
            .collect()
    }

    /// Whether a transaction holds the item `skey`: a single write of it is then refused.
    pub(crate) fn tx_locked(
        &self,
        skey: &[u8],
        pending: &BatchPending,
        next: &State,
    ) -> Result<bool, StorageError> {
        if !next.tx_rows {
            return Ok(false);
        }
        Ok(self.tx_get(&lock_key(skey), pending)?.is_some())
    }

    /// Removes every read mark of the item `skey`, which changes: the readers' releases then
    /// fail, so their transactions read again.
    pub(crate) fn tx_clear_marks(
        &self,
        skey: &[u8],
        pending: &mut BatchPending,
        next: &State,
    ) -> Result<(), StorageError> {
        if !next.tx_rows {
            return Ok(());
        }
        for (k, _) in self.tx_scan(&mark_prefix(skey), pending)? {
            pending.index.insert(k, None);
        }
        Ok(())
    }

    /// Applies a transaction command; `None` for other commands. Called by the apply loop
    /// after the range check, with the batch so far.
    pub(crate) fn tx_step(
        &self,
        cmd: &Command,
        indexes: &[IndexDef],
        overlay: &mut Overlay,
        pending: &mut BatchPending,
        next: &mut State,
    ) -> Result<Option<Result<Applied, ApplyError>>, StorageError> {
        let mut batch = Batch {
            indexes,
            overlay,
            pending,
            next,
        };
        let result = match cmd {
            Command::TxPrepare {
                txid,
                ts,
                primary,
                token,
                op,
            } => self.tx_prepare(&mut batch, txid, *ts, primary, token.as_ref(), op),
            Command::TxResolve { txid, key, commit } => {
                self.tx_resolve(&mut batch, txid, key, *commit)
            }
            Command::TxDecide {
                txid,
                key,
                commit,
                ts,
                token,
            } => self.tx_decide(&mut batch, txid, key, *commit, *ts, *token),
            Command::TxForget { txid, key } => self.tx_forget(&mut batch, txid, key),
            Command::TxRead { txid, key, ts } => self.tx_read(&mut batch, txid, key, *ts),
            Command::TxCheck { txid, key } => {
                self.storage_key_or_invalid(key, false).and_then(|skey| {
                    if self
                        .tx_get(&mark_key(&skey, txid), batch.pending)?
                        .is_some()
                    {
                        Ok(Applied::default())
                    } else {
                        Err(ApplyError::TransactionConflict)
                    }
                })
            }
            Command::TxRelease { txid, key } => {
                self.storage_key_or_invalid(key, false).and_then(|skey| {
                    let mk = mark_key(&skey, txid);
                    if self.tx_get(&mk, batch.pending)?.is_some() {
                        batch.pending.index.insert(mk, None);
                        Ok(Applied::default())
                    } else {
                        Err(ApplyError::TransactionConflict)
                    }
                })
            }
            _ => return Ok(None),
        };
        match result {
            Err(ApplyError::Storage(e)) => Err(e),
            other => Ok(Some(other)),
        }
    }

    fn tx_prepare(
        &self,
        batch: &mut Batch<'_>,
        txid: &TxId,
        ts: u64,
        primary: &TxPrimary,
        token: Option<&TxToken>,
        op: &TxOp,
    ) -> Result<Applied, ApplyError> {
        let whole = matches!(op, TxOp::Put { .. });
        let skey = self.storage_key_or_invalid(op.key_item(), whole)?;
        let lk = lock_key(&skey);
        if let Some(TxRow::Lock {
            token: held_token, ..
        }) = self.tx_get(&lk, batch.pending)?
        {
            if token.is_some() && held_token == token.map(|t| t.key) {
                return Err(ApplyError::TxInProgress);
            }
            return Err(ApplyError::TransactionConflict);
        }
        if let Some(token) = token
            && batch.next.tx_rows
        {
            for (_, row) in self.tx_scan(&decision_prefix(&skey), batch.pending)? {
                if let TxRow::Decision {
                    commit: true,
                    token: Some(t),
                    ts: decided,
                    ..
                } = row
                    && t.key == token.key
                    && ts.saturating_sub(decided) < TOKEN_WINDOW_MS
                {
                    return Err(if t.request == token.request {
                        ApplyError::TxAlreadyCommitted
                    } else {
                        ApplyError::TxTokenMismatch
                    });
                }
            }
        }
        let single = match op {
            TxOp::Put { item, condition } => Command::Put {
                item: item.clone(),
                condition: condition.clone(),
            },
            TxOp::Update {
                key,
                update,
                condition,
            } => Command::Update {
                key: key.clone(),
                update: update.clone(),
                condition: condition.clone(),
            },
            TxOp::Delete { key, condition } => Command::Delete {
                key: key.clone(),
                condition: condition.clone(),
            },
            TxOp::Check { condition, .. } => {
                let old = self.current(&skey, batch.overlay)?;
                check(Some(condition), old.as_ref())?;
                return self.tx_lock(
                    batch,
                    &skey,
                    txid,
                    ts,
                    primary,
                    token,
                    op,
                    Pending::Keep,
                    old.clone(),
                    old,
                );
            }
        };
        let (change, old, new) = match self.decide(&single, batch.overlay)? {
            Decision::Write { old, new, .. } => {
                // The index side is checked now (key types, the collection limit), on a copy:
                // the commit writes it.
                let mut scratch_next = batch.next.clone();
                let mut scratch = BatchPending::default();
                self.index_writes(
                    batch.indexes,
                    old.as_ref(),
                    new.as_ref(),
                    &mut scratch_next,
                    &mut scratch,
                    true,
                )?;
                let change = match &new {
                    Some(n) => Pending::Write(n.clone()),
                    None => Pending::Delete,
                };
                (change, old, new)
            }
            Decision::Noop(_) => (Pending::Keep, None, None),
        };
        self.tx_lock(batch, &skey, txid, ts, primary, token, op, change, old, new)
    }

    #[allow(clippy::too_many_arguments)]
    fn tx_lock(
        &self,
        batch: &mut Batch<'_>,
        skey: &[u8],
        txid: &TxId,
        ts: u64,
        primary: &TxPrimary,
        token: Option<&TxToken>,
        op: &TxOp,
        change: Pending,
        old: Option<Item>,
        new: Option<Item>,
    ) -> Result<Applied, ApplyError> {
        let row = TxRow::Lock {
            txid: *txid,
            ts,
            key: self.schema.key_of(op.key_item()),
            primary: primary.clone(),
            token: token.map(|t| t.key),
            pending: change,
        };
        self.tx_clear_marks(skey, batch.pending, batch.next)?;
        batch
            .pending
            .index
            .insert(lock_key(skey), Some(row.encode()));
        batch.next.tx_rows = true;
        Ok(Applied { old, new })
    }

    fn tx_resolve(
        &self,
        batch: &mut Batch<'_>,
        txid: &TxId,
        key: &Item,
        commit: bool,
    ) -> Result<Applied, ApplyError> {
        let skey = self.storage_key_or_invalid(key, false)?;
        let lk = lock_key(&skey);
        let change = match self.tx_get(&lk, batch.pending)? {
            Some(TxRow::Lock {
                txid: holder,
                pending,
                ..
            }) if holder == *txid => pending,
            _ => return Ok(Applied::default()),
        };
        batch.pending.index.insert(lk, None);
        if !commit {
            return Ok(Applied::default());
        }
        let old = self.current(&skey, batch.overlay)?;
        let new = match change {
            Pending::Keep => {
                return Ok(Applied {
                    old: old.clone(),
                    new: old,
                });
            }
            Pending::Delete => None,
            Pending::Write(item) => Some(item),
        };
        if old.is_none() && new.is_none() {
            return Ok(Applied::default());
        }
        // Checked when prepared; the commit cannot fail any more.
        self.index_writes(
            batch.indexes,
            old.as_ref(),
            new.as_ref(),
            batch.next,
            batch.pending,
            false,
        )?;
        if let Some(old) = &old {
            batch.next.stats.remove(item_size(old));
        }
        if let Some(new) = &new {
            batch.next.stats.add(item_size(new));
        }
        self.tx_clear_marks(&skey, batch.pending, batch.next)?;
        self.ttl_writes(&skey, old.as_ref(), new.as_ref(), batch.pending);
        batch
            .overlay
            .insert(skey, new.as_ref().map(crate::partition::encode_stored));
        Ok(Applied { old, new })
    }

    fn tx_decide(
        &self,
        batch: &mut Batch<'_>,
        txid: &TxId,
        key: &Item,
        commit: bool,
        ts: u64,
        token: Option<TxToken>,
    ) -> Result<Applied, ApplyError> {
        let skey = self.storage_key_or_invalid(key, false)?;
        let dk = decision_key(&skey, txid);
        let decided = match self.tx_get(&dk, batch.pending)? {
            Some(TxRow::Decision { commit, .. }) => commit,
            _ => {
                let row = TxRow::Decision {
                    txid: *txid,
                    ts,
                    key: self.schema.key_of(key),
                    commit,
                    token: token.filter(|_| commit),
                    settled: false,
                };
                batch.pending.index.insert(dk, Some(row.encode()));
                batch.next.tx_rows = true;
                commit
            }
        };
        if decided {
            Ok(Applied::default())
        } else {
            Err(ApplyError::TransactionAborted)
        }
    }

    /// Deletes the decision, or marks it settled while its client token's window lasts.
    fn tx_forget(
        &self,
        batch: &mut Batch<'_>,
        txid: &TxId,
        key: &Item,
    ) -> Result<Applied, ApplyError> {
        let skey = self.storage_key_or_invalid(key, false)?;
        let dk = decision_key(&skey, txid);
        let kept = match self.tx_get(&dk, batch.pending)? {
            Some(TxRow::Decision {
                txid,
                ts,
                key,
                commit,
                token: Some(token),
                settled: false,
            }) => Some(TxRow::Decision {
                txid,
                ts,
                key,
                commit,
                token: Some(token),
                settled: true,
            }),
            _ => None,
        };
        batch.pending.index.insert(dk, kept.map(|r| r.encode()));
        Ok(Applied::default())
    }

    fn tx_read(
        &self,
        batch: &mut Batch<'_>,
        txid: &TxId,
        key: &Item,
        ts: u64,
    ) -> Result<Applied, ApplyError> {
        let skey = self.storage_key_or_invalid(key, false)?;
        if self.tx_locked(&skey, batch.pending, batch.next)? {
            return Err(ApplyError::TransactionConflict);
        }
        let item = self.current(&skey, batch.overlay)?;
        let row = TxRow::Mark {
            txid: *txid,
            ts,
            key: self.schema.key_of(key),
        };
        batch
            .pending
            .index
            .insert(mark_key(&skey, txid), Some(row.encode()));
        batch.next.tx_rows = true;
        Ok(Applied {
            old: item.clone(),
            new: item,
        })
    }
}

/// The batch a transaction command is applied into.
struct Batch<'a> {
    indexes: &'a [IndexDef],
    overlay: &'a mut Overlay,
    pending: &'a mut BatchPending,
    next: &'a mut State,
}
