//! Key schema, partition hash and the order-preserving storage key encoding.
//!
//! - [`KeySchema`] checks that items (`PutItem`) and keys (`GetItem`, `DeleteItem`, ...) carry the
//!   key attributes DynamoDB requires, with DynamoDB's messages.
//! - [`partition_hash`] is the stable 64-bit hash of a partition key value (xxh3 of a type tag
//!   and the value's bytes), which places the item on the hash ring.
//! - [`encode_key`] builds the storage key `hash (8 bytes, big-endian) ++ pk ++ sk`, where each key
//!   value is encoded by [`encode_key_value`] so that byte order is DynamoDB's order: `S` and `B`
//!   by unsigned bytes, `N` numerically.
//!
//! `S` and `B` values are written with every `0x00` byte escaped as `0x00 0xFF` and a terminator
//! `0x00 0x01`; a prefix therefore sorts before its extensions and encodings can be concatenated.
//! `N` values use [`Number::encode_ordered`], which is already self-delimiting.

use serde::{Deserialize, Serialize};

use crate::size::attribute_value_size;
use crate::{AttributeValue, Item, Number, ScalarType, TypeError, codec};

/// Largest partition key value, in bytes.
pub const MAX_PARTITION_KEY_SIZE: usize = 2048;
/// Largest sort key value, in bytes.
pub const MAX_SORT_KEY_SIZE: usize = 1024;

/// One key attribute: its name and scalar type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttr {
    pub name: String,
    pub ty: ScalarType,
}

/// A table's (or index's) primary key: a partition (hash) key and an optional sort (range) key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySchema {
    pub hash: KeyAttr,
    pub range: Option<KeyAttr>,
}

fn invalid(msg: String) -> TypeError {
    TypeError::Validation(format!("One or more parameter values were invalid: {msg}"))
}

impl KeySchema {
    /// The key attributes, partition key first.
    pub fn attrs(&self) -> impl Iterator<Item = &KeyAttr> {
        std::iter::once(&self.hash).chain(self.range.as_ref())
    }

    /// Whether `name` is one of the key attributes.
    pub fn is_key_attr(&self, name: &str) -> bool {
        self.attrs().any(|a| a.name == name)
    }

    /// Checks the key attributes of a whole item (`PutItem`'s `Item`).
    ///
    /// # Errors
    /// `TypeError::Validation` with DynamoDB's message, checking the partition key, then the sort
    /// key: `Missing the key {name} in the item`, `Type mismatch for key {name} expected: {S}
    /// actual: {N}`, an empty string or binary, or a key value over 2048 (partition) or 1024
    /// (sort) bytes.
    pub fn validate_item(&self, item: &Item) -> Result<(), TypeError> {
        for attr in self.attrs() {
            let Some(v) = item.get(&attr.name) else {
                return Err(invalid(format!(
                    "Missing the key {} in the item",
                    attr.name
                )));
            };
            if v.scalar_type() != Some(attr.ty) {
                return Err(invalid(format!(
                    "Type mismatch for key {} expected: {} actual: {}",
                    attr.name,
                    attr.ty.as_str(),
                    v.type_name()
                )));
            }
        }
        self.check_key_values(item)
    }

    /// Checks the `Key` parameter of `GetItem`, `DeleteItem`, `UpdateItem`, ...
    ///
    /// # Errors
    /// `TypeError::Validation`: `The provided key element does not match the schema` unless `key`
    /// holds exactly the key attributes with the right types; then the empty-value and size
    /// errors of [`KeySchema::validate_item`].
    pub fn validate_key(&self, key: &Item) -> Result<(), TypeError> {
        let expected = 1 + usize::from(self.range.is_some());
        let matches = key.len() == expected
            && self
                .attrs()
                .all(|a| key.get(&a.name).and_then(AttributeValue::scalar_type) == Some(a.ty));
        if !matches {
            return Err(TypeError::Validation(
                "The provided key element does not match the schema".to_string(),
            ));
        }
        self.check_key_values(key)
    }

    /// Empty and size checks of present, well-typed key values.
    fn check_key_values(&self, item: &Item) -> Result<(), TypeError> {
        for attr in self.attrs() {
            let Some(v) = item.get(&attr.name) else {
                continue;
            };
            if let Some(kind) = empty_kind(v) {
                return Err(TypeError::Validation(format!(
                    "One or more parameter values are not valid. The AttributeValue for a key \
                     attribute cannot contain an empty {kind} value. Key: {}",
                    attr.name
                )));
            }
        }
        self.check_key_sizes(item)
    }

    /// The size limits of present key values: partition key ≤ 2048 bytes, sort key ≤ 1024
    /// bytes, with DynamoDB's messages. Also applied to secondary index keys.
    pub(crate) fn check_key_sizes(&self, item: &Item) -> Result<(), TypeError> {
        if let Some(v) = item.get(&self.hash.name)
            && attribute_value_size(v) > MAX_PARTITION_KEY_SIZE
        {
            return Err(invalid(
                "Size of hashkey has exceeded the maximum size limit of2048 bytes".to_string(),
            ));
        }
        if let Some(range) = &self.range
            && let Some(v) = item.get(&range.name)
            && attribute_value_size(v) > MAX_SORT_KEY_SIZE
        {
            return Err(invalid(
                "Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
                    .to_string(),
            ));
        }
        Ok(())
    }

    /// The key attributes of `item` (those present), as a new item.
    pub fn key_of(&self, item: &Item) -> Item {
        self.attrs()
            .filter_map(|a| item.get(&a.name).map(|v| (a.name.clone(), v.clone())))
            .collect()
    }

    /// The storage key of an item or key: `encode_key(partition_hash(pk), pk, sk)`.
    /// `None` if a key attribute is missing or has the wrong type.
    pub fn storage_key(&self, item_or_key: &Item) -> Option<Vec<u8>> {
        let typed = |a: &KeyAttr| {
            item_or_key
                .get(&a.name)
                .filter(|v| v.scalar_type() == Some(a.ty))
        };
        let pk = typed(&self.hash)?;
        let sk = match &self.range {
            Some(r) => Some(typed(r)?),
            None => None,
        };
        Some(encode_key(partition_hash(pk), pk, sk))
    }
}

/// The stable 64-bit partition hash of a key value: xxh3-64 (seed 0) of a type tag (`S`, `N` or
/// `B`) followed by the value's bytes (UTF-8 for `S`, raw for `B`, [`Number::encode_ordered`] for
/// `N`, so numerically equal numbers hash alike). Other types hash their storage encoding under
/// the tag `#`. Never changes across versions or platforms: it decides data placement.
pub fn partition_hash(pk: &AttributeValue) -> u64 {
    let mut buf = Vec::with_capacity(32);
    match pk {
        AttributeValue::S(s) => {
            buf.push(b'S');
            buf.extend_from_slice(s.as_bytes());
        }
        AttributeValue::N(n) => {
            buf.push(b'N');
            n.encode_ordered(&mut buf);
        }
        AttributeValue::B(b) => {
            buf.push(b'B');
            buf.extend_from_slice(b);
        }
        other => {
            buf.push(b'#');
            codec::encode_value(other, &mut buf);
        }
    }
    xxhash_rust::xxh3::xxh3_64(&buf)
}

fn encode_escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Appends the order-preserving, self-delimiting encoding of a key value to `out`.
///
/// `S` (UTF-8 bytes) and `B` are escaped (`0x00` → `0x00 0xFF`) and terminated by `0x00 0x01`;
/// `N` is [`Number::encode_ordered`]. For two values of the same scalar type, the encodings
/// compare as DynamoDB orders the values. Non-scalar values (never valid keys) are written as
/// their escaped storage encoding, so the function is total.
pub fn encode_key_value(v: &AttributeValue, out: &mut Vec<u8>) {
    match v {
        AttributeValue::S(s) => encode_escaped(s.as_bytes(), out),
        AttributeValue::B(b) => encode_escaped(b, out),
        AttributeValue::N(n) => n.encode_ordered(out),
        other => {
            let mut buf = Vec::new();
            codec::encode_value(other, &mut buf);
            encode_escaped(&buf, out);
        }
    }
}

/// The storage key: `hash` big-endian, then [`encode_key_value`] of the partition key, then of
/// the sort key if any. Keys of one partition are contiguous and ordered by sort key.
pub fn encode_key(hash: u64, pk: &AttributeValue, sk: Option<&AttributeValue>) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 16);
    out.extend_from_slice(&hash.to_be_bytes());
    encode_key_value(pk, &mut out);
    if let Some(sk) = sk {
        encode_key_value(sk, &mut out);
    }
    out
}

fn decode_escaped(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let b = *bytes.get(i)?;
        if b == 0 {
            match *bytes.get(i + 1)? {
                0xFF => out.push(0),
                0x01 => return Some((out, i + 2)),
                _ => return None,
            }
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
}

/// Decodes one key value of type `ty` written by [`encode_key_value`] at the start of `bytes`,
/// returning it and the number of bytes consumed; `None` if the bytes are malformed.
pub fn decode_key_value(ty: ScalarType, bytes: &[u8]) -> Option<(AttributeValue, usize)> {
    match ty {
        ScalarType::S => {
            let (raw, used) = decode_escaped(bytes)?;
            Some((AttributeValue::S(String::from_utf8(raw).ok()?), used))
        }
        ScalarType::B => {
            let (raw, used) = decode_escaped(bytes)?;
            Some((AttributeValue::B(raw), used))
        }
        ScalarType::N => {
            let (n, used) = Number::decode_ordered(bytes)?;
            Some((AttributeValue::N(n), used))
        }
    }
}

/// `"string"` or `"binary"` when `v` is an empty `S` or `B` (not allowed as a key value), as
/// DynamoDB's messages name it.
pub(crate) fn empty_kind(v: &AttributeValue) -> Option<&'static str> {
    match v {
        AttributeValue::S(s) if s.is_empty() => Some("string"),
        AttributeValue::B(b) if b.is_empty() => Some("binary"),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
