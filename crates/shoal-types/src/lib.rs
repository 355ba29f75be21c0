//! Shoal's data model.
//!
//! - [`AttributeValue`] and [`Item`]: DynamoDB's ten attribute types.
//! - [`Number`]: an exact decimal with 38 significant digits and exponent -130..=+125, as DynamoDB's
//!   `N`; no floating point anywhere. Canonical output is plain decimal (`1e3` prints `1000`).
//! - [`json`]: the DynamoDB JSON codec (`{"S": "x"}`), with DynamoDB's validation errors.
//! - [`size`]: item size computed the DynamoDB way (400 KB limit).
//! - [`key`]: key schema, the 64-bit partition hash, and the order-preserving storage key encoding.
//! - [`codec`]: a compact binary encoding of items for storage.
//! - [`index`], [`index_key`]: secondary index definitions and their (possibly multi-attribute)
//!   key schemas.
//!
//! ```
//! use shoal_types::{AttributeValue, Number};
//! let n: Number = "1.50".parse().unwrap();
//! assert_eq!(n.to_string(), "1.5");
//! let v = AttributeValue::N(n);
//! assert_eq!(v.type_name(), "N");
//! ```
//!
//! Parsing a request item, checking its key and building its storage key:
//!
//! ```
//! use shoal_types::key::{KeyAttr, KeySchema};
//! use shoal_types::{ScalarType, TypeError, item_from_json, item_size};
//!
//! let item = item_from_json(&serde_json::json!({
//!     "id": {"S": "user#1"},
//!     "score": {"N": "10.50"},
//! }))?;
//! let schema = KeySchema {
//!     hash: KeyAttr { name: "id".into(), ty: ScalarType::S },
//!     range: None,
//! };
//! schema.validate_item(&item)?;
//! // names + "user#1" + 3 significant digits as (3 + 1) / 2 + 1 bytes
//! assert_eq!(item_size(&item), 2 + 6 + 5 + 3);
//! let storage_key = schema.storage_key(&item).ok_or(TypeError::Validation("no key".into()))?;
//! assert_eq!(storage_key.len(), 8 + 6 + 2);
//!
//! let bad = item_from_json(&serde_json::json!({"n": {"N": "1e126"}}));
//! assert!(matches!(bad, Err(TypeError::Validation(_))));
//! # Ok::<(), TypeError>(())
//! ```

pub mod codec;
pub mod error;
pub mod index;
pub mod index_key;
pub mod json;
pub mod key;
pub mod number;
pub mod size;
pub mod value;

pub use codec::{CodecError, decode_item, encode_item};
pub use error::TypeError;
pub use json::{attribute_value_from_json, attribute_value_to_json, item_from_json, item_to_json};
pub use key::{KeyAttr, KeySchema, partition_hash};
pub use number::{Number, NumberError};
pub use size::{MAX_ITEM_SIZE, attribute_value_size, item_size};
pub use value::{AttributeValue, Item, ScalarType};

#[cfg(test)]
mod test_support;
