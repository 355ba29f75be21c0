//! [`IndexKeySchema`]: the key of a secondary index, with one to four partition (`HASH`)
//! attributes and up to four sort (`RANGE`) attributes (DynamoDB's multi-attribute GSI keys).
//!
//! A local index and a single-attribute global index have one `HASH` and at most one `RANGE`
//! attribute, exactly as a table ([`KeySchema`]); their key values, hashes and encodings are the
//! table's, so entries written before multi-attribute keys existed read the same.
//!
//! With several attributes:
//! - the *partition key value* is the list (`AttributeValue::L`) of the `HASH` values in schema
//!   order ([`partition_key_value`]); it is hashed and encoded as any value, so entries of one
//!   tuple are contiguous and placed by [`partition_hash`] of that list;
//! - the sort key is the concatenation of [`encode_key_value`] of each `RANGE` value, which
//!   orders entries by the first `RANGE` value, then the second, ... (each by its type's order;
//!   the encodings are self-delimiting and a value sorts before its extensions).
//!
//! ```
//! use shoal_types::index_key::{IndexKeySchema, KeyRole};
//! use shoal_types::{KeyAttr, ScalarType};
//!
//! let attr = |n: &str| KeyAttr { name: n.into(), ty: ScalarType::S };
//! let schema = IndexKeySchema::from_elements(vec![
//!     (attr("tenant"), KeyRole::Hash),
//!     (attr("region"), KeyRole::Hash),
//!     (attr("day"), KeyRole::Range),
//! ])
//! .unwrap();
//! assert_eq!(schema.hash().len(), 2);
//! assert!(schema.is_key_attr("day"));
//! ```

use serde::{Deserialize, Serialize};

use crate::key::{
    KeyAttr, KeySchema, MAX_PARTITION_KEY_SIZE, MAX_SORT_KEY_SIZE, encode_key, encode_key_value,
    partition_hash,
};
use crate::size::attribute_value_size;
use crate::{AttributeValue, Item, TypeError};

/// At most this many `HASH` attributes in a global index key schema.
pub const MAX_HASH_ATTRS: usize = 4;
/// At most this many `RANGE` attributes in a global index key schema.
pub const MAX_RANGE_ATTRS: usize = 4;

/// `KeyType` of a key schema element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    Hash,
    Range,
}

/// Why a list of key schema elements is not an index key schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyShapeError {
    /// No element at all.
    #[error("Invalid KeySchema: Some index key attribute have no definition")]
    Empty,
    /// The first element is a `RANGE`.
    #[error("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")]
    FirstNotHash,
    /// A `HASH` element after a `RANGE` element.
    #[error(
        "Invalid KeySchema: HASH key elements must come before RANGE key elements; {name} is a HASH key element after a RANGE key element"
    )]
    HashAfterRange { name: String },
    /// More than [`MAX_HASH_ATTRS`] `HASH` elements.
    #[error(
        "Invalid KeySchema: A key schema may have at most {MAX_HASH_ATTRS} HASH key elements, got {count}"
    )]
    TooManyHash { count: usize },
    /// More than [`MAX_RANGE_ATTRS`] `RANGE` elements.
    #[error(
        "Invalid KeySchema: A key schema may have at most {MAX_RANGE_ATTRS} RANGE key elements, got {count}"
    )]
    TooManyRange { count: usize },
    /// One `HASH` and one `RANGE` element of the same name (the table's message).
    #[error(
        "Invalid KeySchema: Both the Hash Key and the Range Key element in the KeySchema have the same name"
    )]
    HashEqualsRange,
    /// An attribute named twice in a multi-attribute key schema.
    #[error("Invalid KeySchema: The attribute {name} appears more than once in the KeySchema")]
    Duplicate { name: String },
}

/// The key schema of a secondary index: `HASH` attributes (1..=4) then `RANGE` attributes
/// (0..=4), every name distinct. Built by [`IndexKeySchema::from_elements`] or from a table-style
/// [`KeySchema`].
///
/// Stored in the catalog as JSON: a single-attribute schema as the `KeySchema` record earlier
/// versions wrote (`{"hash": {..}, "range": {..} | null}`), a multi-attribute one with lists
/// (`{"hash": [..], "range": [..]}`); both decode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "repr::Repr", into = "repr::Repr")]
pub struct IndexKeySchema {
    hash: Vec<KeyAttr>,
    range: Vec<KeyAttr>,
}

impl From<KeySchema> for IndexKeySchema {
    fn from(k: KeySchema) -> Self {
        IndexKeySchema {
            hash: vec![k.hash],
            range: k.range.into_iter().collect(),
        }
    }
}

impl From<&KeySchema> for IndexKeySchema {
    fn from(k: &KeySchema) -> Self {
        k.clone().into()
    }
}

impl IndexKeySchema {
    /// Checks the shape of key schema elements given as `(AttributeName, KeyType)` in request
    /// order: `HASH` elements first, then `RANGE` elements, at most [`MAX_HASH_ATTRS`] and
    /// [`MAX_RANGE_ATTRS`], no name twice.
    ///
    /// # Errors
    /// [`KeyShapeError`], checked in this order: empty, first element not `HASH`, too many
    /// `HASH`, too many `RANGE`; then element by element a name seen before or a `HASH` after a
    /// `RANGE`.
    pub fn check_shape(elems: &[(&str, KeyRole)]) -> Result<(), KeyShapeError> {
        match elems.first() {
            None => return Err(KeyShapeError::Empty),
            Some((_, KeyRole::Range)) => return Err(KeyShapeError::FirstNotHash),
            Some(_) => {}
        }
        let count = |role| elems.iter().filter(|(_, r)| *r == role).count();
        let (hashes, ranges) = (count(KeyRole::Hash), count(KeyRole::Range));
        if hashes > MAX_HASH_ATTRS {
            return Err(KeyShapeError::TooManyHash { count: hashes });
        }
        if ranges > MAX_RANGE_ATTRS {
            return Err(KeyShapeError::TooManyRange { count: ranges });
        }
        let mut seen_range = false;
        for (i, (name, role)) in elems.iter().enumerate() {
            if elems.iter().take(i).any(|(n, _)| n == name) {
                return Err(if hashes == 1 && ranges == 1 {
                    KeyShapeError::HashEqualsRange
                } else {
                    KeyShapeError::Duplicate {
                        name: name.to_string(),
                    }
                });
            }
            match role {
                KeyRole::Hash if seen_range => {
                    return Err(KeyShapeError::HashAfterRange {
                        name: name.to_string(),
                    });
                }
                KeyRole::Hash => {}
                KeyRole::Range => seen_range = true,
            }
        }
        Ok(())
    }

    /// A key schema from its elements in request order.
    ///
    /// # Errors
    /// As [`IndexKeySchema::check_shape`].
    pub fn from_elements(elems: Vec<(KeyAttr, KeyRole)>) -> Result<Self, KeyShapeError> {
        let shape: Vec<(&str, KeyRole)> =
            elems.iter().map(|(a, r)| (a.name.as_str(), *r)).collect();
        Self::check_shape(&shape)?;
        let (hash, range) = elems
            .into_iter()
            .partition::<Vec<_>, _>(|(_, r)| *r == KeyRole::Hash);
        Ok(IndexKeySchema {
            hash: hash.into_iter().map(|(a, _)| a).collect(),
            range: range.into_iter().map(|(a, _)| a).collect(),
        })
    }

    /// The `HASH` attributes, in schema order (at least one).
    pub fn hash(&self) -> &[KeyAttr] {
        &self.hash
    }

    /// The `RANGE` attributes, in schema order (possibly none).
    pub fn range(&self) -> &[KeyAttr] {
        &self.range
    }

    /// Every key attribute, `HASH` ones first, in schema order.
    pub fn attrs(&self) -> impl Iterator<Item = &KeyAttr> {
        self.hash.iter().chain(&self.range)
    }

    /// Whether `name` is one of the key attributes.
    pub fn is_key_attr(&self, name: &str) -> bool {
        self.attrs().any(|a| a.name == name)
    }

    /// The table-style schema (one `HASH`, at most one `RANGE`), or `None` for a
    /// multi-attribute key.
    pub fn as_simple(&self) -> Option<KeySchema> {
        match (self.hash.as_slice(), self.range.as_slice()) {
            ([h], []) => Some(KeySchema {
                hash: h.clone(),
                range: None,
            }),
            ([h], [r]) => Some(KeySchema {
                hash: h.clone(),
                range: Some(r.clone()),
            }),
            _ => None,
        }
    }

    /// The key attributes of `item` (those present), as a new item.
    pub fn key_of(&self, item: &Item) -> Item {
        self.attrs()
            .filter_map(|a| item.get(&a.name).map(|v| (a.name.clone(), v.clone())))
            .collect()
    }

    fn typed<'a>(item: &'a Item, a: &KeyAttr) -> Option<&'a AttributeValue> {
        item.get(&a.name).filter(|v| v.scalar_type() == Some(a.ty))
    }

    /// The partition key value of `item` ([`partition_key_value`] of its `HASH` values), or
    /// `None` when one is missing or has another type.
    pub fn partition_value(&self, item: &Item) -> Option<AttributeValue> {
        let values = self
            .hash
            .iter()
            .map(|a| Self::typed(item, a).cloned())
            .collect::<Option<Vec<_>>>()?;
        Some(partition_key_value(values))
    }

    /// The index key of `item` in storage order: `encode_key(partition_hash(pv), pv, None)`
    /// (`pv` the partition key value), then [`encode_key_value`] of each `RANGE` value. For a
    /// single-attribute schema this is exactly the table encoding
    /// `encode_key(hash, pk, sk)`. `None` when a key attribute is missing or mistyped.
    pub fn encode(&self, item: &Item) -> Option<Vec<u8>> {
        let pv = self.partition_value(item)?;
        let mut out = encode_key(partition_hash(&pv), &pv, None);
        for a in &self.range {
            encode_key_value(Self::typed(item, a)?, &mut out);
        }
        Some(out)
    }

    /// The size limits of present key values, with the table keys' messages: each `HASH` value
    /// at most 2048 bytes, the `RANGE` values together at most 1024 bytes.
    ///
    /// # Errors
    /// `TypeError::Validation` naming the limit exceeded.
    pub fn check_key_sizes(&self, item: &Item) -> Result<(), TypeError> {
        let size = |a: &KeyAttr| item.get(&a.name).map_or(0, attribute_value_size);
        if self.hash.iter().any(|a| size(a) > MAX_PARTITION_KEY_SIZE) {
            return Err(TypeError::Validation(
                "One or more parameter values were invalid: Size of hashkey has exceeded the \
                 maximum size limit of2048 bytes"
                    .to_string(),
            ));
        }
        let ranges: usize = self.range.iter().map(size).sum();
        if ranges > MAX_SORT_KEY_SIZE {
            return Err(TypeError::Validation(
                "One or more parameter values were invalid: Aggregated size of all range keys \
                 has exceeded the size limit of 1024 bytes"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

/// The partition key value of an index whose `HASH` values are `values` (in schema order): the
/// value itself for one attribute, the list of them (`L`) for several.
pub fn partition_key_value(mut values: Vec<AttributeValue>) -> AttributeValue {
    if values.len() == 1
        && let Some(v) = values.pop()
    {
        return v;
    }
    AttributeValue::L(values)
}

/// The catalog representation (see [`IndexKeySchema`]).
mod repr {
    use serde::{Deserialize, Serialize};

    use super::{IndexKeySchema, KeyAttr};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    pub(super) enum Attrs {
        One(KeyAttr),
        Many(Vec<KeyAttr>),
    }

    impl Attrs {
        fn into_vec(self) -> Vec<KeyAttr> {
            match self {
                Attrs::One(a) => vec![a],
                Attrs::Many(v) => v,
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    pub(super) struct Repr {
        hash: Attrs,
        #[serde(default)]
        range: Option<Attrs>,
    }

    impl From<IndexKeySchema> for Repr {
        fn from(k: IndexKeySchema) -> Repr {
            match k.as_simple() {
                // Earlier versions' `KeySchema` record, byte for byte.
                Some(s) => Repr {
                    hash: Attrs::One(s.hash),
                    range: s.range.map(Attrs::One),
                },
                None => Repr {
                    hash: Attrs::Many(k.hash),
                    range: Some(Attrs::Many(k.range)),
                },
            }
        }
    }

    impl TryFrom<Repr> for IndexKeySchema {
        type Error = String;

        fn try_from(r: Repr) -> Result<Self, String> {
            let hash = r.hash.into_vec();
            let range = r.range.map(Attrs::into_vec).unwrap_or_default();
            if hash.is_empty() {
                return Err("index key schema without a HASH attribute".to_string());
            }
            Ok(IndexKeySchema { hash, range })
        }
    }
}

#[cfg(test)]
mod tests;
