//! Shoal's data model.
//!
//! - [`AttributeValue`] and [`Item`]: DynamoDB's ten attribute types.
//! - [`Number`]: an exact decimal with 38 significant digits and exponent -130..=+125, as DynamoDB's
//!   `N`; no floating point anywhere, no allocation.
//! - [`json`]: the DynamoDB JSON codec (`{"S": "x"}`), with DynamoDB's validation errors.
//! - [`size`]: item size computed the DynamoDB way (400 KB limit).
//! - [`key`]: key schema, the 64-bit partition hash, and the order-preserving storage key encoding.
//! - [`codec`]: a compact binary encoding of items for storage.
//!
//! ```
//! use shoal_types::{AttributeValue, Number};
//! let n: Number = "1.50".parse().unwrap();
//! assert_eq!(n.to_string(), "1.5");
//! let v = AttributeValue::N(n);
//! assert_eq!(v.type_name(), "N");
//! ```

pub mod codec;
pub mod error;
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
