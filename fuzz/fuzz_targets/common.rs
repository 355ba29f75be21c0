//! Fixtures shared by the fuzz targets: placeholder tables and an item to evaluate against.
#![allow(dead_code)]

use std::collections::HashMap;

use shoal_types::{AttributeValue, Item, Number};

fn num(s: &str) -> AttributeValue {
    AttributeValue::N(s.parse::<Number>().unwrap_or_else(|_| Number::from_i64(0)))
}

pub fn names() -> HashMap<String, String> {
    [("#a", "a"), ("#b", "b.c"), ("#n", "n")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn values() -> HashMap<String, AttributeValue> {
    [
        (":v", num("1")),
        (":w", num("99999999999999999999999999999999999999")),
        (":s", AttributeValue::S("a".into())),
        (":t", AttributeValue::S("N".into())),
        (":l", AttributeValue::L(vec![num("1")])),
        (":ss", AttributeValue::Ss(vec!["x".into()])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub fn item() -> Item {
    let mut m = Item::new();
    m.insert("x".into(), AttributeValue::Ss(vec!["x".into(), "y".into()]));
    [
        ("a", num("99999999999999999999999999999999999999")),
        ("b", AttributeValue::S("abc".into())),
        ("l", AttributeValue::L(vec![AttributeValue::L(vec![num("1")]), num("2")])),
        ("m", AttributeValue::M(m)),
        ("ss", AttributeValue::Ss(vec!["x".into()])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
