//! [`DocPath`]: a document path such as `a.b[2].c`, with placeholders already substituted.

use std::fmt;

use shoal_types::{AttributeValue, Item};

/// One step of a document path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElem {
    /// A map key (or, first in a path, a top-level attribute name).
    Name(String),
    /// A list index `[n]`.
    Index(usize),
}

/// A document path. Invariant: non-empty, and the first element is a [`PathElem::Name`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocPath {
    pub elems: Vec<PathElem>,
}

impl DocPath {
    /// A top-level attribute path.
    pub fn attr(name: impl Into<String>) -> Self {
        DocPath {
            elems: vec![PathElem::Name(name.into())],
        }
    }

    /// The top-level attribute name.
    pub fn top(&self) -> &str {
        match self.elems.first() {
            Some(PathElem::Name(n)) => n,
            _ => "",
        }
    }

    /// The value at this path in `item`, if every step exists and has the right type.
    pub fn get<'a>(&self, item: &'a Item) -> Option<&'a AttributeValue> {
        let (first, rest) = self.elems.split_first()?;
        let PathElem::Name(n) = first else {
            return None;
        };
        let mut cur = item.get(n)?;
        for e in rest {
            cur = step(cur, e)?;
        }
        Some(cur)
    }

    /// `true` when one path is a prefix of the other (equal paths included).
    pub(crate) fn overlaps(&self, other: &DocPath) -> bool {
        self.elems.iter().zip(&other.elems).all(|(a, b)| a == b)
    }

    /// `true` when the paths agree up to a step where one indexes a list and the other a map.
    pub(crate) fn conflicts(&self, other: &DocPath) -> bool {
        for (a, b) in self.elems.iter().zip(&other.elems) {
            match (a, b) {
                (PathElem::Name(x), PathElem::Name(y)) if x == y => continue,
                (PathElem::Index(x), PathElem::Index(y)) if x == y => continue,
                (PathElem::Name(_), PathElem::Index(_))
                | (PathElem::Index(_), PathElem::Name(_)) => {
                    return true;
                }
                _ => return false,
            }
        }
        false
    }
}

/// One dereference step.
pub(crate) fn step<'a>(v: &'a AttributeValue, e: &PathElem) -> Option<&'a AttributeValue> {
    match (v, e) {
        (AttributeValue::M(m), PathElem::Name(n)) => m.get(n),
        (AttributeValue::L(l), PathElem::Index(i)) => l.get(*i),
        _ => None,
    }
}

/// DynamoDB's rendering in path errors: `[a, b, [0]]`.
impl fmt::Display for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, e) in self.elems.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match e {
                PathElem::Name(n) => f.write_str(n)?,
                PathElem::Index(n) => write!(f, "[{n}]")?,
            }
        }
        f.write_str("]")
    }
}

/// Rejects overlapping or conflicting paths with DynamoDB's messages (`kind` gives the prefix).
pub(crate) fn check_disjoint(
    paths: &[&DocPath],
    kind: crate::ExprKind,
) -> Result<(), crate::ExprError> {
    for (i, a) in paths.iter().enumerate() {
        for b in paths.iter().skip(i + 1) {
            if a.overlaps(b) {
                return Err(kind.invalid(format!(
                    "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {a}, path two: {b}"
                )));
            }
            if a.conflicts(b) {
                return Err(kind.invalid(format!(
                    "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: {a}, path two: {b}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(elems: &[PathElem]) -> DocPath {
        DocPath {
            elems: elems.to_vec(),
        }
    }

    #[test]
    fn displays_like_dynamodb() {
        let path = p(&[
            PathElem::Name("a".into()),
            PathElem::Index(0),
            PathElem::Name("b".into()),
        ]);
        assert_eq!(path.to_string(), "[a, [0], b]");
    }

    #[test]
    fn prefix_paths_overlap_and_map_vs_list_steps_conflict() {
        let a = p(&[PathElem::Name("a".into())]);
        let ab = p(&[PathElem::Name("a".into()), PathElem::Name("b".into())]);
        let a0 = p(&[PathElem::Name("a".into()), PathElem::Index(0)]);
        let c = p(&[PathElem::Name("c".into())]);
        assert!(a.overlaps(&ab) && ab.overlaps(&a) && a.overlaps(&a));
        assert!(!ab.overlaps(&a0) && a0.conflicts(&ab));
        assert!(!a.overlaps(&c) && !a.conflicts(&c));
    }
}
