//! Short constructors for `AttributeValue`s and items, so tests read like the data they write.
//!
//! ```ignore
//! let it = item([("pk", s("user#1")), ("age", n("42")), ("tags", ss(["a", "b"]))]);
//! ```

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

/// An item or key: attribute name → value.
pub type Item = HashMap<String, AttributeValue>;

/// `S` (string).
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// `N` (number, given as its decimal text).
pub fn n(v: impl Into<String>) -> AttributeValue {
    AttributeValue::N(v.into())
}

/// `B` (binary).
pub fn b(v: impl Into<Vec<u8>>) -> AttributeValue {
    AttributeValue::B(Blob::new(v.into()))
}

/// `BOOL`.
pub fn boolean(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

/// `NULL`.
pub fn null() -> AttributeValue {
    AttributeValue::Null(true)
}

/// `SS` (string set).
pub fn ss<I: IntoIterator<Item = S>, S: Into<String>>(v: I) -> AttributeValue {
    AttributeValue::Ss(v.into_iter().map(Into::into).collect())
}

/// `NS` (number set).
pub fn ns<I: IntoIterator<Item = S>, S: Into<String>>(v: I) -> AttributeValue {
    AttributeValue::Ns(v.into_iter().map(Into::into).collect())
}

/// `BS` (binary set).
pub fn bs<I: IntoIterator<Item = V>, V: Into<Vec<u8>>>(v: I) -> AttributeValue {
    AttributeValue::Bs(v.into_iter().map(|x| Blob::new(x.into())).collect())
}

/// `L` (list).
pub fn list(v: impl IntoIterator<Item = AttributeValue>) -> AttributeValue {
    AttributeValue::L(v.into_iter().collect())
}

/// `M` (map).
pub fn map<K: Into<String>>(v: impl IntoIterator<Item = (K, AttributeValue)>) -> AttributeValue {
    AttributeValue::M(item(v))
}

/// An item (or key) from name/value pairs.
pub fn item<K: Into<String>>(v: impl IntoIterator<Item = (K, AttributeValue)>) -> Item {
    v.into_iter().map(|(k, v)| (k.into(), v)).collect()
}

/// A value nested `depth` maps deep: `depth` = 1 is `{"M":{"a":{"S":"leaf"}}}`.
pub fn nested_maps(depth: usize) -> AttributeValue {
    let mut v = s("leaf");
    for _ in 0..depth {
        v = map([("a", v)]);
    }
    v
}

/// True when two `N` texts denote the same number (compared exactly, as decimal digits and
/// exponent, never through floating point). Returns false when either is not a number.
pub fn same_number(a: &str, b: &str) -> bool {
    match (canonical_number(a), canonical_number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Compares two values the way DynamoDB defines equality: sets are unordered, numbers are
/// compared numerically (so a normalised `1.50` equals `1.5`), everything else exactly.
pub fn same_value(a: &AttributeValue, b: &AttributeValue) -> bool {
    use AttributeValue as V;
    match (a, b) {
        (V::N(x), V::N(y)) => same_number(x, y),
        (V::Ns(x), V::Ns(y)) => {
            x.len() == y.len() && x.iter().all(|xv| y.iter().any(|yv| same_number(xv, yv)))
        }
        (V::Ss(x), V::Ss(y)) => sorted(x.clone()) == sorted(y.clone()),
        (V::Bs(x), V::Bs(y)) => {
            let xs: Vec<Vec<u8>> = x.iter().map(|v| v.as_ref().to_vec()).collect();
            let ys: Vec<Vec<u8>> = y.iter().map(|v| v.as_ref().to_vec()).collect();
            sorted(xs) == sorted(ys)
        }
        (V::L(x), V::L(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q)),
        (V::M(x), V::M(y)) => same_item(x, y),
        _ => a == b,
    }
}

/// [`same_value`] for whole items.
pub fn same_item(a: &Item, b: &Item) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| same_value(v, w)))
}

/// Asserts [`same_item`], printing both items when they differ.
///
/// # Panics
/// If the items differ or `actual` is `None`.
#[track_caller]
pub fn assert_same_item(actual: Option<&Item>, expected: &Item) {
    match actual {
        Some(a) => assert!(
            same_item(a, expected),
            "items differ\n  actual:   {a:?}\n  expected: {expected:?}"
        ),
        None => panic!("no item returned, expected {expected:?}"),
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// (negative, significant digits without leading/trailing zeros, exponent of the last digit).
fn canonical_number(text: &str) -> Option<(bool, String, i64)> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (t.get(..i)?, t.get(i + 1..)?.parse::<i64>().ok()?),
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mut exp = exp - i64::try_from(frac.len()).ok()?;
    let trimmed_end = digits.trim_end_matches('0');
    exp += i64::try_from(digits.len() - trimmed_end.len()).ok()?;
    let sig = trimmed_end.trim_start_matches('0').to_string();
    if sig.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((neg, sig, exp))
}

#[cfg(test)]
mod tests {
    use super::same_number;

    #[test]
    fn same_number_compares_exactly() {
        assert!(same_number("1E+125", &format!("1{}", "0".repeat(125))));
        assert!(same_number("-1E-130", &format!("-0.{}1", "0".repeat(129))));
        assert!(same_number("1.50", "1.5"));
        assert!(same_number("-0", "0"));
        assert!(same_number("007", "7"));
        assert!(!same_number("1.5", "1.05"));
        assert!(!same_number("1", "-1"));
        assert!(!same_number("abc", "abc"));
    }
}
