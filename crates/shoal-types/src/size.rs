//! Item size, computed the DynamoDB way (Developer Guide, "Item sizes and formats").
//!
//! - `S`: UTF-8 bytes; `B`: raw (decoded) bytes;
//! - `N`: 1 byte per two significant digits, plus 1 (`(digits + 1) / 2 + 1`, at most 21);
//! - `BOOL`, `NULL`: 1 byte;
//! - `M`, `L`: 3 bytes, plus 1 byte per element, plus the elements (and, for `M`, their names);
//! - `SS`, `NS`, `BS`: the sum of the elements' sizes.
//!
//! An item is the sum over its attributes of name bytes plus value size, and may not exceed
//! [`MAX_ITEM_SIZE`].

use crate::{AttributeValue, Item, Number};

/// The maximum item size, 400 KB, including attribute names.
pub const MAX_ITEM_SIZE: usize = 400 * 1024;

/// Size of a number: 1 byte per two significant digits, plus 1 byte.
pub fn number_size(n: &Number) -> usize {
    usize::try_from(n.significant_digits().div_ceil(2) + 1).unwrap_or(usize::MAX)
}

/// Size of a value, without any attribute name. Never overflows (saturates).
pub fn attribute_value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.len(),
        AttributeValue::Bool(_) | AttributeValue::Null => 1,
        AttributeValue::M(m) => m.iter().fold(3usize, |acc, (name, v)| {
            acc.saturating_add(1)
                .saturating_add(name.len())
                .saturating_add(attribute_value_size(v))
        }),
        AttributeValue::L(l) => l.iter().fold(3usize, |acc, v| {
            acc.saturating_add(1)
                .saturating_add(attribute_value_size(v))
        }),
        AttributeValue::Ss(ss) => ss.iter().fold(0usize, |acc, s| acc.saturating_add(s.len())),
        AttributeValue::Ns(ns) => ns
            .iter()
            .fold(0usize, |acc, n| acc.saturating_add(number_size(n))),
        AttributeValue::Bs(bs) => bs.iter().fold(0usize, |acc, b| acc.saturating_add(b.len())),
    }
}

/// Size of one attribute: its name's UTF-8 bytes plus its value's size.
pub fn attribute_size(name: &str, v: &AttributeValue) -> usize {
    name.len().saturating_add(attribute_value_size(v))
}

/// Size of an item: the sum of its attributes' sizes. Compare with [`MAX_ITEM_SIZE`].
pub fn item_size(item: &Item) -> usize {
    item.iter().fold(0usize, |acc, (name, v)| {
        acc.saturating_add(attribute_size(name, v))
    })
}

#[cfg(test)]
mod tests;
