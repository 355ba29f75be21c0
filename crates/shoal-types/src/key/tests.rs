//! Key validation messages and the order-preserving storage key encoding.

use proptest::prelude::*;

use crate::key::{
    KeyAttr, KeySchema, decode_key_value, encode_key, encode_key_value, partition_hash,
};
use crate::test_support;
use crate::{AttributeValue as V, Item, Number, ScalarType, TypeError};

fn schema(range: Option<ScalarType>) -> KeySchema {
    KeySchema {
        hash: KeyAttr {
            name: "pk".into(),
            ty: ScalarType::S,
        },
        range: range.map(|ty| KeyAttr {
            name: "sk".into(),
            ty,
        }),
    }
}

fn item(pairs: &[(&str, V)]) -> Item {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn num(s: &str) -> V {
    V::N(s.parse().unwrap())
}

fn invalid(msg: &str) -> Result<(), TypeError> {
    Err(TypeError::Validation(msg.to_string()))
}

#[test]
fn put_item_requires_each_key_attribute() {
    let s = schema(Some(ScalarType::N));
    assert_eq!(
        s.validate_item(&item(&[("sk", num("1"))])),
        invalid("One or more parameter values were invalid: Missing the key pk in the item")
    );
    assert_eq!(
        s.validate_item(&item(&[("pk", V::S("a".into()))])),
        invalid("One or more parameter values were invalid: Missing the key sk in the item")
    );
    assert_eq!(
        s.validate_item(&item(&[
            ("pk", V::S("a".into())),
            ("sk", num("1")),
            ("x", V::Null)
        ])),
        Ok(())
    );
}

#[test]
fn put_item_rejects_wrong_key_types() {
    let s = schema(Some(ScalarType::N));
    assert_eq!(
        s.validate_item(&item(&[("pk", num("1")), ("sk", num("1"))])),
        invalid(
            "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N"
        )
    );
    assert_eq!(
        s.validate_item(&item(&[
            ("pk", V::S("a".into())),
            ("sk", V::Ss(vec!["1".into()]))
        ])),
        invalid(
            "One or more parameter values were invalid: Type mismatch for key sk expected: N actual: SS"
        )
    );
}

#[test]
fn key_attributes_may_not_be_empty() {
    let s = schema(Some(ScalarType::B));
    assert_eq!(
        s.validate_item(&item(&[("pk", V::S(String::new())), ("sk", V::B(vec![1]))])),
        invalid(
            "One or more parameter values are not valid. The AttributeValue for a key attribute \
             cannot contain an empty string value. Key: pk"
        )
    );
    assert_eq!(
        s.validate_key(&item(&[("pk", V::S("a".into())), ("sk", V::B(vec![]))])),
        invalid(
            "One or more parameter values are not valid. The AttributeValue for a key attribute \
             cannot contain an empty binary value. Key: sk"
        )
    );
    // Empty strings are fine outside the key.
    assert_eq!(
        s.validate_item(&item(&[
            ("pk", V::S("a".into())),
            ("sk", V::B(vec![1])),
            ("other", V::S(String::new()))
        ])),
        Ok(())
    );
}

#[test]
fn key_size_limits() {
    let s = schema(Some(ScalarType::S));
    let ok = item(&[
        ("pk", V::S("a".repeat(2048))),
        ("sk", V::S("b".repeat(1024))),
    ]);
    assert_eq!(s.validate_item(&ok), Ok(()));
    assert_eq!(
        s.validate_item(&item(&[
            ("pk", V::S("a".repeat(2049))),
            ("sk", V::S("b".into()))
        ])),
        invalid(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes"
        )
    );
    assert_eq!(
        s.validate_key(&item(&[
            ("pk", V::S("a".into())),
            ("sk", V::S("b".repeat(1025)))
        ])),
        invalid(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
        )
    );
}

#[test]
fn key_parameter_must_match_schema_exactly() {
    let msg = "The provided key element does not match the schema";
    let s = schema(Some(ScalarType::N));
    assert_eq!(
        s.validate_key(&item(&[("pk", V::S("a".into())), ("sk", num("1"))])),
        Ok(())
    );
    for bad in [
        item(&[("pk", V::S("a".into()))]),
        item(&[("pk", V::S("a".into())), ("sk", V::S("1".into()))]),
        item(&[("pk", V::S("a".into())), ("sk", num("1")), ("x", V::Null)]),
        item(&[("pk", V::S("a".into())), ("other", num("1"))]),
        Item::new(),
    ] {
        assert_eq!(s.validate_key(&bad), invalid(msg), "{bad:?}");
    }
    let s = schema(None);
    assert_eq!(s.validate_key(&item(&[("pk", V::S("a".into()))])), Ok(()));
    assert_eq!(
        s.validate_key(&item(&[("pk", V::S("a".into())), ("sk", num("1"))])),
        invalid(msg)
    );
}

#[test]
fn key_of_and_storage_key() {
    let s = schema(Some(ScalarType::N));
    let full = item(&[("pk", V::S("a".into())), ("sk", num("1.0")), ("x", V::Null)]);
    let key = s.key_of(&full);
    assert_eq!(key, item(&[("pk", V::S("a".into())), ("sk", num("1"))]));
    assert_eq!(s.storage_key(&full), s.storage_key(&key));
    let pk = V::S("a".into());
    assert_eq!(
        s.storage_key(&key),
        Some(encode_key(partition_hash(&pk), &pk, Some(&num("1"))))
    );
    assert_eq!(s.storage_key(&item(&[("pk", V::S("a".into()))])), None);
    assert_eq!(
        s.storage_key(&item(&[("pk", num("1")), ("sk", num("1"))])),
        None
    );
}

#[test]
fn partition_hash_is_stable_and_numeric() {
    assert_eq!(partition_hash(&num("1")), partition_hash(&num("1.000")));
    assert_eq!(partition_hash(&num("100")), partition_hash(&num("1e2")));
    assert_ne!(
        partition_hash(&V::S("1".into())),
        partition_hash(&V::B(b"1".to_vec()))
    );
    // Pinned: data placement depends on these never changing.
    assert_eq!(
        partition_hash(&V::S("".into())),
        xxhash_rust::xxh3::xxh3_64(b"S")
    );
    assert_eq!(
        partition_hash(&V::S("abc".into())),
        xxhash_rust::xxh3::xxh3_64(b"Sabc")
    );
    assert_eq!(partition_hash(&V::S("abc".into())), 0x79ac_5c5f_4878_bb56);
    assert_eq!(partition_hash(&num("-12.5")), 0x970b_cda6_877d_3916);
}

#[test]
fn key_value_encoding_examples() {
    let enc = |v: &V| {
        let mut out = Vec::new();
        encode_key_value(v, &mut out);
        out
    };
    assert_eq!(enc(&V::S("ab".into())), vec![b'a', b'b', 0, 1]);
    assert_eq!(enc(&V::B(vec![0, 7])), vec![0, 0xFF, 7, 0, 1]);
    assert!(enc(&V::S("a".into())) < enc(&V::S("a\0".into())));
    assert!(enc(&V::S("a\0".into())) < enc(&V::S("a\u{1}".into())));
    assert_eq!(decode_key_value(ScalarType::S, &[b'a', 0, 2]), None);
    assert_eq!(decode_key_value(ScalarType::S, b"a"), None);
    assert_eq!(decode_key_value(ScalarType::S, &[0xFF, 0, 1]), None); // not UTF-8
    assert_eq!(
        encode_key(0x0102_0304_0506_0708, &V::S("a".into()), None),
        vec![1, 2, 3, 4, 5, 6, 7, 8, b'a', 0, 1]
    );
}

/// A scalar value of the given type, from the shared strategies.
fn scalar(ty: ScalarType) -> BoxedStrategy<V> {
    match ty {
        ScalarType::S => test_support::string().prop_map(V::S).boxed(),
        ScalarType::B => test_support::bytes().prop_map(V::B).boxed(),
        ScalarType::N => test_support::number().prop_map(V::N).boxed(),
    }
}

fn scalar_type() -> impl Strategy<Value = ScalarType> {
    prop_oneof![
        Just(ScalarType::S),
        Just(ScalarType::N),
        Just(ScalarType::B)
    ]
}

/// DynamoDB's order of two values of the same scalar type.
fn dynamo_cmp(a: &V, b: &V) -> std::cmp::Ordering {
    match (a, b) {
        (V::S(a), V::S(b)) => a.as_bytes().cmp(b.as_bytes()),
        (V::B(a), V::B(b)) => a.cmp(b),
        (V::N(a), V::N(b)) => a.cmp(b),
        _ => unreachable!("same scalar type"),
    }
}

fn pair_of_type() -> impl Strategy<Value = (ScalarType, V, V)> {
    scalar_type().prop_flat_map(|ty| (Just(ty), scalar(ty), scalar(ty)))
}

proptest! {
    #[test]
    fn key_value_byte_order_is_dynamodb_order((ty, a, b) in pair_of_type()) {
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        encode_key_value(&a, &mut ea);
        encode_key_value(&b, &mut eb);
        prop_assert_eq!(ea.cmp(&eb), dynamo_cmp(&a, &b));
        prop_assert_eq!(decode_key_value(ty, &ea), Some((a.clone(), ea.len())));
        // Self-delimiting: trailing bytes are not consumed.
        let mut joined = ea.clone();
        joined.extend_from_slice(&eb);
        prop_assert_eq!(decode_key_value(ty, &joined), Some((a, ea.len())));
    }

    #[test]
    fn composite_keys_order_by_partition_then_sort(
        (_, pk1, pk2) in pair_of_type(),
        (sk_ty, sk1, sk2) in pair_of_type(),
        same_pk in any::<bool>(),
    ) {
        let pk2 = if same_pk { pk1.clone() } else { pk2 };
        let k1 = encode_key(7, &pk1, Some(&sk1));
        let k2 = encode_key(7, &pk2, Some(&sk2));
        let expected = dynamo_cmp(&pk1, &pk2).then_with(|| dynamo_cmp(&sk1, &sk2));
        prop_assert_eq!(k1.cmp(&k2), expected);
        // Decoding the parts back.
        let pk_ty = pk1.scalar_type().unwrap();
        let (d_pk, used) = decode_key_value(pk_ty, &k1[8..]).unwrap();
        prop_assert_eq!(d_pk, pk1);
        let (d_sk, used2) = decode_key_value(sk_ty, &k1[8 + used..]).unwrap();
        prop_assert_eq!(d_sk, sk1);
        prop_assert_eq!(8 + used + used2, k1.len());
    }

    #[test]
    fn equal_numbers_share_hash_and_key(x in test_support::number()) {
        let reparsed: Number = x.to_string().parse().unwrap();
        prop_assert_eq!(partition_hash(&V::N(x)), partition_hash(&V::N(reparsed)));
    }

    #[test]
    fn decode_key_value_never_panics(ty in scalar_type(), bytes in prop::collection::vec(any::<u8>(), 0..32)) {
        let _ = decode_key_value(ty, &bytes);
    }
}
