//! DynamoDB equality of attribute values.

use crate::{AttributeValue as V, Item, Number};

fn n(s: &str) -> Number {
    s.parse().unwrap()
}

#[test]
fn numbers_compare_numerically() {
    assert_eq!(V::N(n("1")), V::N(n("1.00")));
    assert_ne!(V::N(n("1")), V::S("1".into()));
}

#[test]
fn sets_ignore_element_order() {
    assert_eq!(
        V::Ss(vec!["a".into(), "b".into()]),
        V::Ss(vec!["b".into(), "a".into()])
    );
    assert_eq!(V::Ns(vec![n("1"), n("2.0")]), V::Ns(vec![n("2"), n("1.0")]));
    assert_eq!(V::Bs(vec![vec![1], vec![2]]), V::Bs(vec![vec![2], vec![1]]));
    assert_ne!(V::Ss(vec!["a".into()]), V::Ss(vec!["a".into(), "b".into()]));
    assert_ne!(V::Ss(vec!["a".into()]), V::Bs(vec![b"a".to_vec()]));
}

#[test]
fn lists_are_ordered_and_maps_structural() {
    let l1 = V::L(vec![V::N(n("1")), V::S("x".into())]);
    let l2 = V::L(vec![V::S("x".into()), V::N(n("1"))]);
    assert_ne!(l1, l2);
    let m1: Item = [
        ("a".to_string(), V::N(n("1.0"))),
        ("b".to_string(), V::Null),
    ]
    .into();
    let m2: Item = [("b".to_string(), V::Null), ("a".to_string(), V::N(n("1")))].into();
    assert_eq!(V::M(m1.clone()), V::M(m2));
    assert_ne!(V::M(m1), V::M(Item::new()));
}

#[test]
fn accessors_return_content_of_matching_type_only() {
    let s = V::from("x");
    assert_eq!(s.as_s(), Some("x"));
    assert_eq!(s.as_n(), None);
    assert_eq!(V::N(n("2")).as_n(), Some(&n("2")));
    assert_eq!(V::B(vec![1]).as_b(), Some(&[1u8][..]));
    assert_eq!(V::Bool(true).as_bool(), Some(true));
    assert!(V::Null.is_null());
    assert!(V::L(vec![]).is_document());
    assert!(V::Ns(vec![n("1")]).is_set());
}
