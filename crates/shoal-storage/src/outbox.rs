//! [`OutboxRecord`]: a pending change of a global secondary index, and its stored form.

use shoal_types::Item;
use shoal_types::codec::encode_item;

use crate::StorageError;
use crate::partition::decode_stored;

/// One change of one global secondary index entry, written to the base partition's outbox in
/// the same engine write as the item change that caused it, and shipped to the index
/// partitions in `seq` order ([`crate::IndexPartition::apply_outbox`]).
///
/// Applying a record removes `delete` (if set), then stores `put` (if set); replaying records
/// yields the same index state.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    /// Position in the partition's outbox: strictly increasing, never reused (continues after
    /// a reopen and after the outbox was trimmed empty).
    pub seq: u64,
    /// The global secondary index (`IndexDef::id`).
    pub index_id: u32,
    /// The entry key to remove (the old entry of an item whose entry key changed or went away).
    pub delete: Option<Vec<u8>>,
    /// The entry key and the projected entry to store (new or changed entry).
    pub put: Option<(Vec<u8>, Item)>,
}

const HAS_DELETE: u8 = 1;
const HAS_PUT: u8 = 2;

/// The outbox key of `seq`: big-endian, so key order is seq order.
pub(crate) fn outbox_key(seq: u64) -> Vec<u8> {
    seq.to_be_bytes().to_vec()
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt {
        context: format!("outbox record: {what}"),
    }
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

fn take_bytes<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], StorageError> {
    let len: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("truncated length"))?;
    let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| corrupt("length"))?;
    let rest = bytes.get(4..).ok_or_else(|| corrupt("truncated"))?;
    let value = rest.get(..len).ok_or_else(|| corrupt("truncated key"))?;
    *bytes = rest.get(len..).unwrap_or_default();
    Ok(value)
}

impl OutboxRecord {
    /// The stored value (the key holds `seq`): `index_id` (u32 BE), a flags byte, the delete
    /// key and the put key (each u32 BE length + bytes, when present), then the encoded entry.
    /// Adds the record to `batch`, under its seq's key.
    pub(crate) fn put_into(&self, batch: &mut crate::WriteBatch) {
        batch.put_in(crate::Space::Outbox, outbox_key(self.seq), self.encode());
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&self.index_id.to_be_bytes());
        let flags = if self.delete.is_some() { HAS_DELETE } else { 0 }
            | if self.put.is_some() { HAS_PUT } else { 0 };
        out.push(flags);
        if let Some(key) = &self.delete {
            push_bytes(&mut out, key);
        }
        if let Some((key, entry)) = &self.put {
            push_bytes(&mut out, key);
            encode_item(entry, &mut out);
        }
        out
    }

    /// Decodes a stored record.
    pub(crate) fn decode(key: &[u8], value: &[u8]) -> Result<OutboxRecord, StorageError> {
        let seq: [u8; 8] = key.try_into().map_err(|_| corrupt("key is not a seq"))?;
        let id: [u8; 4] = value
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| corrupt("truncated"))?;
        let flags = *value.get(4).ok_or_else(|| corrupt("truncated"))?;
        let mut rest = value.get(5..).unwrap_or_default();
        let delete = if flags & HAS_DELETE != 0 {
            Some(take_bytes(&mut rest)?.to_vec())
        } else {
            None
        };
        let put = if flags & HAS_PUT != 0 {
            let key = take_bytes(&mut rest)?.to_vec();
            Some((key, decode_stored(rest)?))
        } else {
            None
        };
        Ok(OutboxRecord {
            seq: u64::from_be_bytes(seq),
            index_id: u32::from_be_bytes(id),
            delete,
            put,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_types::AttributeValue;

    #[test]
    fn records_round_trip() {
        let entry: Item = [("a".to_string(), AttributeValue::S("x".into()))]
            .into_iter()
            .collect();
        for (delete, put) in [
            (None, None),
            (Some(vec![1, 2, 3]), None),
            (None, Some((vec![4, 0, 5], entry.clone()))),
            (Some(vec![]), Some((vec![9; 40], entry))),
        ] {
            let r = OutboxRecord {
                seq: 77,
                index_id: 3,
                delete,
                put,
            };
            let back = OutboxRecord::decode(&outbox_key(77), &r.encode());
            assert_eq!(back.ok(), Some(r));
        }
        assert!(OutboxRecord::decode(&outbox_key(1), &[0, 0, 0, 1, 3, 0, 0]).is_err());
    }
}
