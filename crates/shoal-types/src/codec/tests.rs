//! The storage codec round-trips every item and rejects corrupt bytes without panicking.

use proptest::prelude::*;

use crate::codec::{CodecError, decode_item, decode_value, encode_item, encode_value};
use crate::test_support;
use crate::{AttributeValue as V, Item};

fn encoded(item: &Item) -> Vec<u8> {
    let mut out = Vec::new();
    encode_item(item, &mut out);
    out
}

#[test]
fn empty_item_is_one_byte() {
    assert_eq!(encoded(&Item::new()), vec![0]);
    assert_eq!(decode_item(&[0]), Ok(Item::new()));
}

#[test]
fn corrupt_inputs_are_errors() {
    assert_eq!(decode_item(&[]), Err(CodecError::Truncated));
    assert_eq!(decode_item(&[0, 0]), Err(CodecError::TrailingBytes(1)));
    // One attribute "a" with an unknown tag.
    assert_eq!(
        decode_item(&[1, 1, b'a', 0x63]),
        Err(CodecError::UnknownTag {
            tag: 0x63,
            offset: 3
        })
    );
    // A string claiming more bytes than exist.
    assert_eq!(
        decode_item(&[1, 1, b'a', 1, 200]),
        Err(CodecError::Truncated)
    );
    // Invalid UTF-8 name.
    assert_eq!(
        decode_item(&[1, 1, 0xFF, 6]),
        Err(CodecError::BadUtf8 { offset: 1 })
    );
    // A huge count is not trusted for allocation.
    assert_eq!(
        decode_item(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
        Err(CodecError::Truncated)
    );
    // Overlong varint.
    assert!(matches!(
        decode_item(&[0xFF; 11]),
        Err(CodecError::BadVarint { .. })
    ));
    // Duplicate names.
    assert_eq!(
        decode_item(&[2, 1, b'a', 6, 1, b'a', 6]),
        Err(CodecError::DuplicateName { offset: 4 })
    );
}

#[test]
fn deep_nesting_is_bounded() {
    // L containing L containing ... 1000 levels.
    let mut bytes = vec![1, 1, b'a'];
    for _ in 0..1000 {
        bytes.extend_from_slice(&[8, 1]);
    }
    bytes.push(6);
    assert!(matches!(
        decode_item(&bytes),
        Err(CodecError::TooDeep { .. })
    ));
}

proptest! {
    #[test]
    fn items_round_trip(item in test_support::item()) {
        let bytes = encoded(&item);
        let back = decode_item(&bytes).unwrap();
        // Structural equality including set element order, not just DynamoDB equality.
        prop_assert_eq!(format!("{back:?}"), format!("{item:?}"));
    }

    #[test]
    fn values_round_trip(v in test_support::attribute_value()) {
        let mut bytes = Vec::new();
        encode_value(&v, &mut bytes);
        let (back, used) = decode_value(&bytes).unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(back, v);
    }

    #[test]
    fn truncated_encodings_are_errors(item in test_support::item(), cut in any::<prop::sample::Index>()) {
        let bytes = encoded(&item);
        let cut = cut.index(bytes.len());
        prop_assert!(decode_item(&bytes[..cut]).is_err());
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_item(&bytes);
    }

    #[test]
    fn mutated_encodings_never_panic(
        item in test_support::item(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = encoded(&item);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(decoded) = decode_item(&bytes) {
            prop_assert_eq!(decode_item(&encoded(&decoded)), Ok(decoded));
        }
    }
}

#[test]
fn value_tags_are_stable() {
    let mut out = Vec::new();
    encode_value(&V::Bool(true), &mut out);
    encode_value(&V::Null, &mut out);
    encode_value(&V::S("hi".into()), &mut out);
    assert_eq!(out, vec![5, 6, 1, 2, b'h', b'i']);
}
