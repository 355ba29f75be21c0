//! [`Update::apply`]: runs a parsed update expression against an item.

use std::collections::BTreeSet;

use shoal_types::json::{MAX_NESTING_DEPTH, NESTING_EXCEEDED};
use shoal_types::{AttributeValue, Item};

use crate::ExprError;
use crate::path::{DocPath, PathElem};
use crate::update::{Update, UpdateValue};

const MISSING_ATTRIBUTE: &str =
    "The provided expression refers to an attribute that does not exist in the item";
const WRONG_TYPE: &str = "An operand in the update expression has an incorrect data type";
const INVALID_PATH: &str =
    "The document path provided in the update expression is invalid for update";

impl Update {
    /// Applies the update to `item` in place (give it a copy if the original must survive an
    /// error: on error `item` may be partly updated).
    ///
    /// `SET` values are computed from the item as it was before the update. Setting a list
    /// index past the end appends (several appends in index order); `REMOVE` of list elements
    /// shifts later elements down; `ADD` adds numbers (a missing attribute counts as 0) or
    /// unions sets; `DELETE` removes set elements and removes the attribute if none remain.
    ///
    /// # Errors
    /// DynamoDB's runtime messages: `The provided expression refers to an attribute that does
    /// not exist in the item`, `An operand in the update expression has an incorrect data type`,
    /// `The document path provided in the update expression is invalid for update`, the
    /// number overflow / underflow / precision messages, and `Nesting Levels have exceeded
    /// supported limits` when a `SET` leaves an attribute nested deeper than 32 levels.
    pub fn apply(&self, item: &mut Item) -> Result<(), ExprError> {
        let mut sets = Vec::with_capacity(self.set.len());
        for (path, value) in &self.set {
            sets.push((path, eval(value, item)?));
        }
        sets.sort_by(|a, b| a.0.cmp(b.0));
        for (path, v) in sets {
            set_path(item, path, v)?;
        }
        let mut removes: Vec<&DocPath> = self.remove.iter().collect();
        removes.sort_by(|a, b| b.cmp(a));
        for path in removes {
            remove_path(item, path)?;
        }
        for (path, v) in &self.add {
            let new = match path.get(item) {
                None => v.clone(),
                Some(old) => add_values(old, v)?,
            };
            set_path(item, path, new)?;
        }
        for (path, v) in &self.delete {
            let Some(old) = path.get(item) else { continue };
            match delete_elements(old, v)? {
                Some(rest) => set_path(item, path, rest)?,
                None => remove_path(item, path)?,
            }
        }
        check_nesting(item, self.set.iter().map(|(p, _)| p.top()))
    }
}

/// Refuses an item that `SET` nested deeper than DynamoDB's 32 levels (`SET a.b.c = :v` puts
/// `:v`, itself up to 32 levels deep, under three more). Only the attributes written by `SET`
/// can have grown deeper (`ADD` and `DELETE` write numbers and sets).
fn check_nesting<'a>(item: &Item, written: impl Iterator<Item = &'a str>) -> Result<(), ExprError> {
    let mut seen = std::collections::HashSet::new();
    for name in written {
        if seen.insert(name)
            && item
                .get(name)
                .is_some_and(|v| v.nesting_depth() > MAX_NESTING_DEPTH)
        {
            return Err(err(NESTING_EXCEEDED));
        }
    }
    Ok(())
}

fn err(msg: &str) -> ExprError {
    ExprError::new(msg)
}

fn eval(v: &UpdateValue, item: &Item) -> Result<AttributeValue, ExprError> {
    match v {
        UpdateValue::Path(p) => p.get(item).cloned().ok_or_else(|| err(MISSING_ATTRIBUTE)),
        UpdateValue::Value(v) => Ok(v.clone()),
        UpdateValue::IfNotExists(p, default) => match p.get(item) {
            Some(v) => Ok(v.clone()),
            None => eval(default, item),
        },
        UpdateValue::ListAppend(a, b) => match (eval(a, item)?, eval(b, item)?) {
            (AttributeValue::L(mut a), AttributeValue::L(b)) => {
                a.extend(b);
                Ok(AttributeValue::L(a))
            }
            _ => Err(err(WRONG_TYPE)),
        },
        UpdateValue::Plus(a, b) | UpdateValue::Minus(a, b) => {
            match (eval(a, item)?, eval(b, item)?) {
                (AttributeValue::N(a), AttributeValue::N(b)) => {
                    let r = if matches!(v, UpdateValue::Plus(..)) {
                        a.checked_add(&b)
                    } else {
                        a.checked_sub(&b)
                    };
                    r.map(AttributeValue::N)
                        .map_err(|e| ExprError::new(e.to_string()))
                }
                _ => Err(err(WRONG_TYPE)),
            }
        }
    }
}

/// `ADD` of `v` to an existing value. Set unions and differences are O((n + m) log n), so a
/// set of 100,000 elements costs milliseconds, not minutes.
fn add_values(old: &AttributeValue, v: &AttributeValue) -> Result<AttributeValue, ExprError> {
    use AttributeValue as V;
    Ok(match (old, v) {
        (V::N(a), V::N(b)) => V::N(
            a.checked_add(b)
                .map_err(|e| ExprError::new(e.to_string()))?,
        ),
        (V::Ss(a), V::Ss(b)) => V::Ss(union(a, b)),
        (V::Ns(a), V::Ns(b)) => V::Ns(union(a, b)),
        (V::Bs(a), V::Bs(b)) => V::Bs(union(a, b)),
        _ => return Err(err(WRONG_TYPE)),
    })
}

/// `a` then the elements of `b` not in `a` (numbers compare numerically: `Number`'s `Ord`).
fn union<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let have: BTreeSet<&T> = a.iter().collect();
    let mut out = a.to_vec();
    out.extend(b.iter().filter(|e| !have.contains(e)).cloned());
    out
}

/// The elements of `a` not in `b`.
fn difference<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let gone: BTreeSet<&T> = b.iter().collect();
    a.iter().filter(|e| !gone.contains(e)).cloned().collect()
}

/// `DELETE` of the elements of `v` from a set; `None` when no element remains.
fn delete_elements(
    old: &AttributeValue,
    v: &AttributeValue,
) -> Result<Option<AttributeValue>, ExprError> {
    use AttributeValue as V;
    let rest = match (old, v) {
        (V::Ss(a), V::Ss(b)) => V::Ss(difference(a, b)),
        (V::Ns(a), V::Ns(b)) => V::Ns(difference(a, b)),
        (V::Bs(a), V::Bs(b)) => V::Bs(difference(a, b)),
        _ => return Err(err(WRONG_TYPE)),
    };
    let empty = match &rest {
        V::Ss(s) => s.is_empty(),
        V::Ns(s) => s.is_empty(),
        V::Bs(s) => s.is_empty(),
        _ => false,
    };
    Ok((!empty).then_some(rest))
}

/// The value at `elems` (a path's parent steps), mutably.
fn get_mut<'a>(item: &'a mut Item, elems: &[PathElem]) -> Option<&'a mut AttributeValue> {
    let (first, rest) = elems.split_first()?;
    let PathElem::Name(n) = first else {
        return None;
    };
    let mut cur = item.get_mut(n)?;
    for e in rest {
        cur = match (cur, e) {
            (AttributeValue::M(m), PathElem::Name(n)) => m.get_mut(n)?,
            (AttributeValue::L(l), PathElem::Index(i)) => l.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Writes `v` at `path`; the parent must exist and be a map (or a list, for an index; an index
/// past the end appends).
fn set_path(item: &mut Item, path: &DocPath, v: AttributeValue) -> Result<(), ExprError> {
    let Some((last, parent)) = path.elems.split_last() else {
        return Err(err(INVALID_PATH));
    };
    if parent.is_empty() {
        let PathElem::Name(n) = last else {
            return Err(err(INVALID_PATH));
        };
        item.insert(n.clone(), v);
        return Ok(());
    }
    match (get_mut(item, parent), last) {
        (Some(AttributeValue::M(m)), PathElem::Name(n)) => {
            m.insert(n.clone(), v);
        }
        (Some(AttributeValue::L(l)), PathElem::Index(i)) => match l.get_mut(*i) {
            Some(slot) => *slot = v,
            None => l.push(v),
        },
        _ => return Err(err(INVALID_PATH)),
    }
    Ok(())
}

/// Removes the value at `path`; nothing happens if it does not exist.
fn remove_path(item: &mut Item, path: &DocPath) -> Result<(), ExprError> {
    let Some((last, parent)) = path.elems.split_last() else {
        return Ok(());
    };
    if parent.is_empty() {
        if let PathElem::Name(n) = last {
            item.remove(n);
        }
        return Ok(());
    }
    match (get_mut(item, parent), last) {
        (None, _) => {}
        (Some(AttributeValue::M(m)), PathElem::Name(n)) => {
            m.remove(n);
        }
        (Some(AttributeValue::L(l)), PathElem::Index(i)) => {
            if *i < l.len() {
                l.remove(*i);
            }
        }
        _ => return Err(err(INVALID_PATH)),
    }
    Ok(())
}
