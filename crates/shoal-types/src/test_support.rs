//! Proptest strategies shared by the unit tests.

use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

use crate::{AttributeValue, Item, Number};

/// Valid numbers, mixing nearby and extreme exponents.
pub fn number() -> impl Strategy<Value = Number> {
    (
        any::<bool>(),
        1u32..=38,
        any::<u128>(),
        prop_oneof![-12i64..12, -167i64..=125],
    )
        .prop_filter_map("out of range", |(neg, digits, m, e)| {
            Number::from_parts(neg, m % 10u128.pow(digits), e).ok()
        })
}

/// Short strings, including NUL and non-ASCII characters.
pub fn string() -> impl Strategy<Value = String> {
    "[a-c\u{0}\u{7f}\u{e9}\u{10000}]{0,6}"
}

/// Short byte strings rich in 0x00 and 0xFF.
pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![Just(0u8), Just(1u8), Just(0xFFu8), any::<u8>()],
        0..6,
    )
}

/// Valid attribute values (sets non-empty and duplicate-free), nested a few levels.
pub fn attribute_value() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        string().prop_map(AttributeValue::S),
        number().prop_map(AttributeValue::N),
        bytes().prop_map(AttributeValue::B),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null),
        btree_set(string(), 1..4).prop_map(|s| AttributeValue::Ss(s.into_iter().collect())),
        btree_set(number(), 1..4).prop_map(|s| AttributeValue::Ns(s.into_iter().collect())),
        btree_set(bytes(), 1..4).prop_map(|s| AttributeValue::Bs(s.into_iter().collect())),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            btree_map(string(), inner.clone(), 0..4).prop_map(AttributeValue::M),
            vec(inner, 0..4).prop_map(AttributeValue::L),
        ]
    })
}

/// Valid items.
pub fn item() -> impl Strategy<Value = Item> {
    btree_map(string(), attribute_value(), 0..5)
}
