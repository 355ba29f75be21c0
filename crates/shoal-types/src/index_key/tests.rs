//! Index key schemas: element rules, catalog compatibility, and the composite key order.

use std::cmp::Ordering;

use proptest::prelude::*;

use super::*;
use crate::key::KeySchema;
use crate::test_support;
use crate::{Number, ScalarType};

fn attr(name: &str, ty: ScalarType) -> KeyAttr {
    KeyAttr {
        name: name.into(),
        ty,
    }
}

fn elems(spec: &[(&str, KeyRole)]) -> Vec<(KeyAttr, KeyRole)> {
    spec.iter()
        .map(|(n, r)| (attr(n, ScalarType::S), *r))
        .collect()
}

use KeyRole::{Hash as H, Range as R};

/// `tenant`, `region` (HASH, S) then `day` (S), `seq` (N), `tag` (B) (RANGE).
fn composite() -> IndexKeySchema {
    IndexKeySchema::from_elements(vec![
        (attr("tenant", ScalarType::S), H),
        (attr("region", ScalarType::S), H),
        (attr("day", ScalarType::S), R),
        (attr("seq", ScalarType::N), R),
        (attr("tag", ScalarType::B), R),
    ])
    .unwrap()
}

fn item(pairs: &[(&str, AttributeValue)]) -> Item {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.parse().unwrap())
}

#[test]
fn from_elements_accepts_up_to_four_hash_then_four_range_attributes() {
    let k = IndexKeySchema::from_elements(elems(&[
        ("a", H),
        ("b", H),
        ("c", H),
        ("d", H),
        ("e", R),
        ("f", R),
        ("g", R),
        ("h", R),
    ]))
    .unwrap();
    let names = |a: &[KeyAttr]| a.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(k.hash()), ["a", "b", "c", "d"]);
    assert_eq!(names(k.range()), ["e", "f", "g", "h"]);
    assert_eq!(k.as_simple(), None);
    let simple = IndexKeySchema::from_elements(elems(&[("a", H), ("b", R)])).unwrap();
    assert_eq!(
        simple.as_simple(),
        Some(KeySchema {
            hash: attr("a", ScalarType::S),
            range: Some(attr("b", ScalarType::S)),
        })
    );
}

#[test]
fn from_elements_refuses_bad_shapes_with_clear_messages() {
    let err = |spec: &[(&str, KeyRole)]| {
        IndexKeySchema::from_elements(elems(spec))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(&[]),
        "Invalid KeySchema: Some index key attribute have no definition"
    );
    assert_eq!(
        err(&[("a", R), ("b", H)]),
        "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"
    );
    assert_eq!(
        err(&[("a", H), ("b", H), ("c", H), ("d", H), ("e", H)]),
        "Invalid KeySchema: A key schema may have at most 4 HASH key elements, got 5"
    );
    assert_eq!(
        err(&[("a", H), ("b", R), ("c", R), ("d", R), ("e", R), ("f", R)]),
        "Invalid KeySchema: A key schema may have at most 4 RANGE key elements, got 5"
    );
    assert_eq!(
        err(&[("a", H), ("b", R), ("c", H)]),
        "Invalid KeySchema: HASH key elements must come before RANGE key elements; c is a HASH \
         key element after a RANGE key element"
    );
    assert_eq!(
        err(&[("a", H), ("a", R)]),
        "Invalid KeySchema: Both the Hash Key and the Range Key element in the KeySchema have \
         the same name"
    );
    assert_eq!(
        err(&[("a", H), ("b", H), ("a", R)]),
        "Invalid KeySchema: The attribute a appears more than once in the KeySchema"
    );
    assert_eq!(
        err(&[("a", H), ("a", H)]),
        "Invalid KeySchema: The attribute a appears more than once in the KeySchema"
    );
}

#[test]
fn single_attribute_schemas_keep_the_table_encoding() {
    let table = KeySchema {
        hash: attr("city", ScalarType::S),
        range: Some(attr("age", ScalarType::N)),
    };
    let index = IndexKeySchema::from(&table);
    let it = item(&[("city", s("Oslo")), ("age", n("3")), ("x", s("y"))]);
    assert_eq!(index.encode(&it), table.storage_key(&it));
    assert_eq!(index.partition_value(&it), Some(s("Oslo")));
    let hash_only = IndexKeySchema::from(KeySchema {
        hash: attr("city", ScalarType::S),
        range: None,
    });
    assert_eq!(
        hash_only.encode(&it),
        Some(encode_key(partition_hash(&s("Oslo")), &s("Oslo"), None))
    );
}

#[test]
fn composite_keys_need_every_attribute_with_its_type() {
    let k = composite();
    let full = item(&[
        ("tenant", s("t")),
        ("region", s("eu")),
        ("day", s("d")),
        ("seq", n("1")),
        ("tag", AttributeValue::B(vec![1])),
    ]);
    assert!(k.encode(&full).is_some());
    assert_eq!(
        k.partition_value(&full),
        Some(AttributeValue::L(vec![s("t"), s("eu")]))
    );
    for missing in ["tenant", "region", "day", "seq", "tag"] {
        let mut it = full.clone();
        it.remove(missing);
        assert_eq!(k.encode(&it), None, "without {missing}");
    }
    let mut wrong = full.clone();
    wrong.insert("seq".into(), s("1"));
    assert_eq!(k.encode(&wrong), None);
}

#[test]
fn old_catalog_records_decode_and_single_schemas_encode_as_before() {
    let old = r#"{"hash":{"name":"city","ty":"S"},"range":{"name":"age","ty":"N"}}"#;
    let k: IndexKeySchema = serde_json::from_str(old).unwrap();
    assert_eq!(
        k.as_simple(),
        Some(KeySchema {
            hash: attr("city", ScalarType::S),
            range: Some(attr("age", ScalarType::N)),
        })
    );
    assert_eq!(serde_json::to_string(&k).unwrap(), old);
    let old_hash_only = r#"{"hash":{"name":"city","ty":"S"},"range":null}"#;
    let k: IndexKeySchema = serde_json::from_str(old_hash_only).unwrap();
    assert_eq!(k.range(), &[]);
    assert_eq!(serde_json::to_string(&k).unwrap(), old_hash_only);

    let c = composite();
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.starts_with(r#"{"hash":[{"name":"tenant""#), "{json}");
    assert_eq!(serde_json::from_str::<IndexKeySchema>(&json).unwrap(), c);
    assert!(serde_json::from_str::<IndexKeySchema>(r#"{"hash":[],"range":[]}"#).is_err());
}

#[test]
fn range_values_are_limited_together_and_hash_values_each() {
    let k = composite();
    let ok = item(&[
        ("day", s(&"d".repeat(1000))),
        ("tenant", s(&"t".repeat(2048))),
    ]);
    assert_eq!(k.check_key_sizes(&ok), Ok(()));
    let over = item(&[
        ("day", s(&"d".repeat(1000))),
        ("tag", AttributeValue::B(vec![0; 25])),
    ]);
    assert!(
        matches!(k.check_key_sizes(&over), Err(TypeError::Validation(m)) if m.contains("Aggregated size of all range keys"))
    );
    let hash_over = item(&[("region", s(&"r".repeat(2049)))]);
    assert!(
        matches!(k.check_key_sizes(&hash_over), Err(TypeError::Validation(m)) if m.contains("Size of hashkey"))
    );
}

/// The model order of the composite sort key: each RANGE value by its type's order, left to
/// right.
fn model_cmp(a: &(String, Number, Vec<u8>), b: &(String, Number, Vec<u8>)) -> Ordering {
    a.0.as_bytes()
        .cmp(b.0.as_bytes())
        .then_with(|| a.1.cmp(&b.1))
        .then_with(|| a.2.cmp(&b.2))
}

fn sort_item(t: &(String, Number, Vec<u8>)) -> Item {
    item(&[
        ("tenant", s("t")),
        ("region", s("eu")),
        ("day", AttributeValue::S(t.0.clone())),
        ("seq", AttributeValue::N(t.1)),
        ("tag", AttributeValue::B(t.2.clone())),
    ])
}

proptest! {
    #[test]
    fn composite_encoding_orders_as_the_range_tuple(
        a in (test_support::string(), test_support::number(), test_support::bytes()),
        b in (test_support::string(), test_support::number(), test_support::bytes()),
    ) {
        let k = composite();
        let (ea, eb) = (k.encode(&sort_item(&a)).unwrap(), k.encode(&sort_item(&b)).unwrap());
        prop_assert_eq!(ea.cmp(&eb), model_cmp(&a, &b));
    }

    #[test]
    fn equal_hash_tuples_share_the_partition_prefix(
        a in (test_support::string(), test_support::number(), test_support::bytes()),
        b in (test_support::string(), test_support::number(), test_support::bytes()),
    ) {
        let k = composite();
        let prefix = {
            let pv = k.partition_value(&sort_item(&a)).unwrap();
            encode_key(partition_hash(&pv), &pv, None)
        };
        prop_assert!(k.encode(&sort_item(&a)).unwrap().starts_with(&prefix));
        prop_assert!(k.encode(&sort_item(&b)).unwrap().starts_with(&prefix));
    }
}
