//! Item sizes as the Developer Guide computes them.

use crate::size::{attribute_value_size, item_size};
use crate::{AttributeValue as V, Item, Number};

fn n(s: &str) -> V {
    V::N(s.parse::<Number>().unwrap())
}

#[test]
fn scalar_sizes() {
    assert_eq!(attribute_value_size(&V::S("héllo".into())), 6);
    assert_eq!(attribute_value_size(&V::B(vec![0; 10])), 10);
    assert_eq!(attribute_value_size(&V::Bool(true)), 1);
    assert_eq!(attribute_value_size(&V::Null), 1);
}

#[test]
fn number_size_is_one_byte_per_two_significant_digits_plus_one() {
    assert_eq!(attribute_value_size(&n("0")), 1);
    assert_eq!(attribute_value_size(&n("7")), 2);
    assert_eq!(attribute_value_size(&n("12")), 2);
    assert_eq!(attribute_value_size(&n("123")), 3);
    assert_eq!(attribute_value_size(&n("1000000")), 2); // trailing zeros trimmed
    assert_eq!(attribute_value_size(&n("0.000123")), 3); // leading zeros trimmed
    assert_eq!(attribute_value_size(&n(&"9".repeat(38))), 20);
}

#[test]
fn documents_have_three_bytes_plus_one_per_element() {
    assert_eq!(attribute_value_size(&V::L(vec![])), 3);
    assert_eq!(attribute_value_size(&V::M(Item::new())), 3);
    assert_eq!(
        attribute_value_size(&V::L(vec![V::S("ab".into()), V::Null])),
        3 + (1 + 2) + (1 + 1)
    );
    let m: Item = [("key".to_string(), V::S("ab".into()))].into();
    assert_eq!(attribute_value_size(&V::M(m)), 3 + 1 + 3 + 2);
}

#[test]
fn sets_are_the_sum_of_their_elements() {
    assert_eq!(
        attribute_value_size(&V::Ss(vec!["ab".into(), "c".into()])),
        3
    );
    assert_eq!(attribute_value_size(&V::Bs(vec![vec![1, 2], vec![3]])), 3);
    let ns = V::Ns(vec!["1".parse().unwrap(), "123".parse().unwrap()]);
    assert_eq!(attribute_value_size(&ns), 2 + 3);
}

#[test]
fn item_size_adds_attribute_names() {
    let item: Item = [
        ("id".to_string(), V::S("abc".into())),
        ("n".to_string(), n("12")),
    ]
    .into();
    assert_eq!(item_size(&item), 2 + 3 + 1 + 2);
    assert_eq!(crate::size::MAX_ITEM_SIZE, 409_600);
}
