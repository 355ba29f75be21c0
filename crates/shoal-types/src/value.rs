//! [`AttributeValue`]: the ten DynamoDB attribute types.

use std::collections::BTreeMap;

use crate::Number;

/// An item, or the contents of an `M` value: attribute name to value.
///
/// A `BTreeMap` so that encoding and output are deterministic.
pub type Item = BTreeMap<String, AttributeValue>;

/// One DynamoDB attribute value.
///
/// Sets keep their elements in the order given; they never hold duplicates or no element
/// (the JSON codec rejects both). Set equality ignores order.
#[derive(Debug, Clone)]
pub enum AttributeValue {
    S(String),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    M(Item),
    L(Vec<AttributeValue>),
    Ss(Vec<String>),
    Ns(Vec<Number>),
    Bs(Vec<Vec<u8>>),
}

/// The three scalar types allowed for key attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ScalarType {
    S,
    N,
    B,
}

impl ScalarType {
    /// `"S"`, `"N"` or `"B"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScalarType::S => "S",
            ScalarType::N => "N",
            ScalarType::B => "B",
        }
    }

    /// Parses `"S"`, `"N"` or `"B"`.
    pub fn parse(s: &str) -> Option<ScalarType> {
        match s {
            "S" => Some(ScalarType::S),
            "N" => Some(ScalarType::N),
            "B" => Some(ScalarType::B),
            _ => None,
        }
    }
}

impl AttributeValue {
    /// The DynamoDB type descriptor: `S N B BOOL NULL M L SS NS BS`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Null => "NULL",
            AttributeValue::M(_) => "M",
            AttributeValue::L(_) => "L",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
        }
    }

    /// The scalar type, for `S`, `N` and `B` values.
    pub fn scalar_type(&self) -> Option<ScalarType> {
        match self {
            AttributeValue::S(_) => Some(ScalarType::S),
            AttributeValue::N(_) => Some(ScalarType::N),
            AttributeValue::B(_) => Some(ScalarType::B),
            _ => None,
        }
    }
}

/// Accessors: each returns the content if the value has that type.
impl AttributeValue {
    /// The string of an `S` value.
    pub fn as_s(&self) -> Option<&str> {
        match self {
            AttributeValue::S(s) => Some(s),
            _ => None,
        }
    }

    /// The number of an `N` value.
    pub fn as_n(&self) -> Option<&Number> {
        match self {
            AttributeValue::N(n) => Some(n),
            _ => None,
        }
    }

    /// The bytes of a `B` value.
    pub fn as_b(&self) -> Option<&[u8]> {
        match self {
            AttributeValue::B(b) => Some(b),
            _ => None,
        }
    }

    /// The boolean of a `BOOL` value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AttributeValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Whether this is the `NULL` value.
    pub fn is_null(&self) -> bool {
        matches!(self, AttributeValue::Null)
    }

    /// The entries of an `M` value.
    pub fn as_m(&self) -> Option<&Item> {
        match self {
            AttributeValue::M(m) => Some(m),
            _ => None,
        }
    }

    /// The elements of an `L` value.
    pub fn as_l(&self) -> Option<&[AttributeValue]> {
        match self {
            AttributeValue::L(l) => Some(l),
            _ => None,
        }
    }

    /// The elements of an `SS` value.
    pub fn as_ss(&self) -> Option<&[String]> {
        match self {
            AttributeValue::Ss(v) => Some(v),
            _ => None,
        }
    }

    /// The elements of an `NS` value.
    pub fn as_ns(&self) -> Option<&[Number]> {
        match self {
            AttributeValue::Ns(v) => Some(v),
            _ => None,
        }
    }

    /// The elements of a `BS` value.
    pub fn as_bs(&self) -> Option<&[Vec<u8>]> {
        match self {
            AttributeValue::Bs(v) => Some(v),
            _ => None,
        }
    }

    /// Whether this is `M` or `L` (a document type that can nest).
    pub fn is_document(&self) -> bool {
        matches!(self, AttributeValue::M(_) | AttributeValue::L(_))
    }

    /// How many `M` and `L` values nest on the longest chain through this value: 0 for a
    /// scalar or set, 1 for a map or list of scalars. DynamoDB accepts at most
    /// [`crate::json::MAX_NESTING_DEPTH`] (32). Iterative: safe on a value of any depth.
    pub fn nesting_depth(&self) -> usize {
        let mut max = 0;
        let mut stack: Vec<(&AttributeValue, usize)> = vec![(self, 0)];
        while let Some((v, above)) = stack.pop() {
            let depth = above + 1;
            match v {
                AttributeValue::M(m) => stack.extend(m.values().map(|c| (c, depth))),
                AttributeValue::L(l) => stack.extend(l.iter().map(|c| (c, depth))),
                _ => {
                    max = max.max(above);
                    continue;
                }
            }
            max = max.max(depth);
        }
        max
    }

    /// Whether this is `SS`, `NS` or `BS`.
    pub fn is_set(&self) -> bool {
        matches!(
            self,
            AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
        )
    }
}

/// Whether two sets hold the same elements, in any order (sets never hold duplicates, but this
/// compares as multisets so it stays an equivalence relation even if one does).
fn same_elements<T: Ord>(a: &[T], b: &[T]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut a: Vec<&T> = a.iter().collect();
    let mut b: Vec<&T> = b.iter().collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

impl PartialEq for AttributeValue {
    /// DynamoDB equality: same type, and numbers numerically (`1` = `1.0`), sets regardless of
    /// element order, maps and lists element by element. Values of different types are unequal.
    fn eq(&self, other: &AttributeValue) -> bool {
        use AttributeValue as V;
        match (self, other) {
            (V::S(a), V::S(b)) => a == b,
            (V::N(a), V::N(b)) => a == b,
            (V::B(a), V::B(b)) => a == b,
            (V::Bool(a), V::Bool(b)) => a == b,
            (V::Null, V::Null) => true,
            (V::M(a), V::M(b)) => a == b,
            (V::L(a), V::L(b)) => a == b,
            (V::Ss(a), V::Ss(b)) => same_elements(a, b),
            (V::Ns(a), V::Ns(b)) => same_elements(a, b),
            (V::Bs(a), V::Bs(b)) => same_elements(a, b),
            _ => false,
        }
    }
}

impl Eq for AttributeValue {}

impl From<&str> for AttributeValue {
    fn from(s: &str) -> AttributeValue {
        AttributeValue::S(s.to_string())
    }
}

impl From<String> for AttributeValue {
    fn from(s: String) -> AttributeValue {
        AttributeValue::S(s)
    }
}

impl From<Number> for AttributeValue {
    fn from(n: Number) -> AttributeValue {
        AttributeValue::N(n)
    }
}

impl From<bool> for AttributeValue {
    fn from(b: bool) -> AttributeValue {
        AttributeValue::Bool(b)
    }
}

#[cfg(test)]
mod tests;
