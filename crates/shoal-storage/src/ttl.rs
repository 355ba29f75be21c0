//! The expiry index of a table with Time to Live: one row per item whose TTL attribute is a
//! number, ordered by expiry (`TTL_ID ‖ expiry seconds ‖ storage key` in [`Space::Index`],
//! the item's key as value), so the partition's leader finds what expired without reading the
//! table ([`Partition::expired`]): a sweep costs what expires, not the table size.
//!
//! The attribute comes from the catalog ([`Partition::set_ttl`], like the indexes); the rows
//! are written in the same batch as their item by every write (single writes, transaction
//! commits). Setting a new attribute rebuilds the rows from the items, a chunk at a time under
//! the apply lock. The index only tells the sweeper where to look: the delete it proposes is
//! conditional on the item's current value, so a replica whose index lags (it learned the
//! attribute later) never deletes anything it should not.

use shoal_types::codec::{decode_item, encode_item};
use shoal_types::{AttributeValue, Item};

use crate::partition::decode_stored;
use crate::snapshot::SCAN_CHUNK;
use crate::{Partition, Space, StorageError, WriteBatch};

/// The [`Space::Index`] prefix of expiry rows: an index id never assigned (ids count up from 0;
/// `u32::MAX` and `u32::MAX - 1` are the item collection sizes and transaction rows).
pub(crate) const TTL_ID: u32 = u32::MAX - 2;

/// The [`Space::Items`] key of the attribute the stored expiry rows were built for.
pub(crate) const TTL_ATTR_KEY: &[u8] = &[5];

/// DynamoDB does not expire items whose TTL value is five years old or more (a malformed value).
pub const TTL_MAX_AGE_SECS: u64 = 5 * 365 * 24 * 3600;

/// The expiry of `item` under attribute `attr`: its value in whole seconds since the epoch, when
/// it is a non-negative number.
pub(crate) fn expiry_of(item: &Item, attr: &str) -> Option<u64> {
    let AttributeValue::N(n) = item.get(attr)? else {
        return None;
    };
    let secs: f64 = n.to_string().parse().ok()?;
    if secs.is_finite() && (0.0..1.8e19).contains(&secs) {
        // Truncation to whole seconds is the point.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(secs.floor() as u64)
    } else {
        None
    }
}

fn prefix() -> Vec<u8> {
    TTL_ID.to_be_bytes().to_vec()
}

/// The row key of an item with storage key `skey` expiring at `at`.
pub(crate) fn row_key(at: u64, skey: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(12 + skey.len());
    k.extend_from_slice(&TTL_ID.to_be_bytes());
    k.extend_from_slice(&at.to_be_bytes());
    k.extend_from_slice(skey);
    k
}

/// An expiry row to delete, and one to put (key, value).
pub(crate) type RowChanges = (Option<Vec<u8>>, Option<(Vec<u8>, Vec<u8>)>);

/// The expiry row changes of one item change `old` → `new` (`None`: absent): rows to delete and
/// rows to put, with `key` the item's key attributes.
pub(crate) fn row_changes(
    attr: &str,
    skey: &[u8],
    key: &Item,
    old: Option<&Item>,
    new: Option<&Item>,
) -> RowChanges {
    let before = old.and_then(|i| expiry_of(i, attr));
    let after = new.and_then(|i| expiry_of(i, attr));
    if before == after {
        return (None, None);
    }
    let delete = before.map(|at| row_key(at, skey));
    let put = after.map(|at| {
        let mut value = Vec::with_capacity(64);
        encode_item(key, &mut value);
        (row_key(at, skey), value)
    });
    (delete, put)
}

impl Partition {
    /// Adds to `pending` the expiry row changes of the item change `old` → `new` under storage
    /// key `skey`, while the table has a TTL attribute.
    pub(crate) fn ttl_writes(
        &self,
        skey: &[u8],
        old: Option<&Item>,
        new: Option<&Item>,
        pending: &mut crate::partition::Pending,
    ) {
        let attr = self.ttl.read();
        let Some(attr) = attr.as_deref() else {
            return;
        };
        let Some(any) = new.or(old) else {
            return;
        };
        let key = self.schema.key_of(any);
        let (delete, put) = row_changes(attr, skey, &key, old, new);
        if let Some(k) = delete {
            pending.index.insert(k, None);
        }
        if let Some((k, v)) = put {
            pending.index.insert(k, Some(v));
        }
    }

    /// The attribute the stored expiry rows are complete for (`None`: none), as the last
    /// [`Partition::set_ttl`] that finished left it: TTL is enabled (or disabled) on this
    /// replica once this is the catalog's attribute.
    ///
    /// # Errors
    /// Engine failures.
    pub fn ttl_built(&self) -> Result<Option<String>, StorageError> {
        Ok(self
            .engine
            .get(TTL_ATTR_KEY)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// The table's TTL attribute, as last set ([`Partition::set_ttl`]).
    pub fn ttl_attribute(&self) -> Option<String> {
        self.ttl.read().clone()
    }

    /// Sets the table's TTL attribute (`None`: TTL disabled). When it differs from the one the
    /// stored expiry rows were built for, the rows are rebuilt from the items, a chunk at a time
    /// under the apply lock (writes go on between chunks and keep their own rows).
    ///
    /// # Errors
    /// Engine failures; the rebuild then starts over at the next call.
    pub fn set_ttl(&self, attr: Option<String>) -> Result<(), StorageError> {
        let stored = self
            .engine
            .get(TTL_ATTR_KEY)?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        if stored == attr {
            *self.ttl.write() = attr;
            return Ok(());
        }
        // New writes keep rows for the new attribute from now on.
        *self.ttl.write() = attr.clone();
        // Drop every row of the old attribute, then index every item.
        let p = prefix();
        let end = crate::range::prefix_end(&p);
        loop {
            let _serial = self.apply_lock.lock();
            let chunk =
                self.engine
                    .scan_in(Space::Index, Some(&p), end.as_deref(), false, SCAN_CHUNK)?;
            if chunk.is_empty() {
                break;
            }
            let mut batch = WriteBatch::new(self.applied_index());
            for (k, _) in chunk {
                batch.delete_in(Space::Index, k);
            }
            self.engine.write(&batch)?;
        }
        if let Some(attr) = &attr {
            let mut start: Option<Vec<u8>> = None;
            loop {
                let _serial = self.apply_lock.lock();
                let chunk = self
                    .engine
                    .scan(start.as_deref(), None, false, SCAN_CHUNK)?;
                let mut batch = WriteBatch::new(self.applied_index());
                for (skey, value) in &chunk {
                    // Metadata rows have short keys; items have the 8-byte hash first.
                    if skey.len() < 8 {
                        continue;
                    }
                    let item = decode_stored(value)?;
                    let key = self.schema.key_of(&item);
                    if let (_, Some((k, v))) = row_changes(attr, skey, &key, None, Some(&item)) {
                        batch.put_in(Space::Index, k, v);
                    }
                }
                self.engine.write(&batch)?;
                match chunk.last() {
                    Some((k, _)) if chunk.len() == SCAN_CHUNK => {
                        start = Some(crate::range::key_successor(k));
                    }
                    _ => break,
                }
            }
        }
        let _serial = self.apply_lock.lock();
        let mut batch = WriteBatch::new(self.applied_index());
        match &attr {
            Some(a) => batch.put(TTL_ATTR_KEY.to_vec(), a.as_bytes().to_vec()),
            None => batch.delete(TTL_ATTR_KEY.to_vec()),
        };
        self.engine.write(&batch)
    }

    /// Up to `limit` keys of items whose expiry is at or before `now` (seconds since the
    /// epoch) but less than five years before it, oldest first, with their expiry.
    ///
    /// # Errors
    /// Engine failures; a row that does not decode.
    pub fn expired(&self, now: u64, limit: usize) -> Result<Vec<(u64, Item)>, StorageError> {
        let from = row_key(now.saturating_sub(TTL_MAX_AGE_SECS), &[]);
        let to = row_key(now.saturating_add(1), &[]);
        self.engine
            .scan_in(Space::Index, Some(&from), Some(&to), false, limit)?
            .iter()
            .map(|(k, v)| {
                let at = k
                    .get(4..12)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or_default();
                let key = decode_item(v).map_err(|e| StorageError::Corrupt {
                    context: format!("expiry row: {e}"),
                })?;
                Ok((at, key))
            })
            .collect()
    }
}
