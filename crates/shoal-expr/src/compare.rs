//! Value comparison with DynamoDB semantics: equality for every type (sets unordered, numbers
//! numeric), ordering only between two values of the same scalar type `S`, `N` or `B`.

use std::cmp::Ordering;

use shoal_types::AttributeValue;

/// DynamoDB equality: same type and same value; sets compare as sets.
pub fn values_equal(a: &AttributeValue, b: &AttributeValue) -> bool {
    use AttributeValue as V;
    match (a, b) {
        (V::S(x), V::S(y)) => x == y,
        (V::N(x), V::N(y)) => x.cmp(y) == Ordering::Equal,
        (V::B(x), V::B(y)) => x == y,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Null, V::Null) => true,
        (V::M(x), V::M(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        (V::L(x), V::L(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| values_equal(v, w))
        }
        (V::Ss(x), V::Ss(y)) => x.len() == y.len() && x.iter().all(|e| y.contains(e)),
        (V::Ns(x), V::Ns(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|e| y.iter().any(|f| e.cmp(f) == Ordering::Equal))
        }
        (V::Bs(x), V::Bs(y)) => x.len() == y.len() && x.iter().all(|e| y.contains(e)),
        _ => false,
    }
}

/// Order of two values of the same scalar type (`S` and `B` by bytes, `N` numerically);
/// `None` for any other pair.
pub fn compare_scalars(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    use AttributeValue as V;
    match (a, b) {
        (V::S(x), V::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (V::N(x), V::N(y)) => Some(x.cmp(y)),
        (V::B(x), V::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// `begins_with`: a string prefix of a string, or a byte prefix of a binary.
pub fn begins_with(v: &AttributeValue, prefix: &AttributeValue) -> bool {
    use AttributeValue as V;
    match (v, prefix) {
        (V::S(x), V::S(p)) => x.starts_with(p.as_str()),
        (V::B(x), V::B(p)) => x.starts_with(p),
        _ => false,
    }
}

/// `contains`: substring of a string (or byte run of a binary), element of a set of the
/// operand's type, or element of a list.
pub fn contains(v: &AttributeValue, needle: &AttributeValue) -> bool {
    use AttributeValue as V;
    match (v, needle) {
        (V::S(x), V::S(n)) => x.contains(n.as_str()),
        (V::B(x), V::B(n)) => n.is_empty() || x.windows(n.len()).any(|w| w == n.as_slice()),
        (V::Ss(x), V::S(n)) => x.contains(n),
        (V::Ns(x), V::N(n)) => x.iter().any(|e| e.cmp(n) == Ordering::Equal),
        (V::Bs(x), V::B(n)) => x.contains(n),
        (V::L(x), n) => x.iter().any(|e| values_equal(e, n)),
        _ => false,
    }
}

/// `size`: characters of a string, bytes of a binary, elements of a set, list or map.
/// `None` for numbers, booleans and null.
pub fn size(v: &AttributeValue) -> Option<usize> {
    use AttributeValue as V;
    match v {
        V::S(s) => Some(s.chars().count()),
        V::B(b) => Some(b.len()),
        V::Ss(s) => Some(s.len()),
        V::Ns(s) => Some(s.len()),
        V::Bs(s) => Some(s.len()),
        V::L(l) => Some(l.len()),
        V::M(m) => Some(m.len()),
        V::N(_) | V::Bool(_) | V::Null => None,
    }
}

/// DynamoDB's short rendering of a value in messages: `{N:5}`, `{S:abc}`.
pub(crate) fn render(v: &AttributeValue) -> String {
    use AttributeValue as V;
    match v {
        V::S(s) => format!("{{S:{s}}}"),
        V::N(n) => format!("{{N:{n}}}"),
        V::B(b) => format!("{{B:{} bytes}}", b.len()),
        other => format!("{{{}:...}}", other.type_name()),
    }
}
