//! Byte-range arithmetic on storage keys, and the range of a sort key condition.

use shoal_expr::SortKeyCondition;
use shoal_types::AttributeValue;
use shoal_types::key::encode_key_value;

/// A half-open key range `[start, end)`; `None` = unbounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRange {
    pub start: Option<Vec<u8>>,
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// Every key that starts with `prefix`.
    pub(crate) fn prefix(prefix: &[u8]) -> KeyRange {
        KeyRange {
            start: Some(prefix.to_vec()),
            end: prefix_end(prefix),
        }
    }

    /// Narrows the start to at least `start`.
    pub(crate) fn raise_start(&mut self, start: Vec<u8>) {
        if self.start.as_ref().is_none_or(|s| *s < start) {
            self.start = Some(start);
        }
    }

    /// Narrows the end to at most `end`.
    pub(crate) fn lower_end(&mut self, end: Vec<u8>) {
        if self.end.as_ref().is_none_or(|e| *e > end) {
            self.end = Some(end);
        }
    }

    /// True when no key can lie in the range.
    pub(crate) fn is_empty(&self) -> bool {
        matches!((&self.start, &self.end), (Some(s), Some(e)) if s >= e)
    }
}

/// The smallest key greater than every key starting with `prefix`; `None` if there is none
/// (the prefix is all `0xFF`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The smallest key greater than `key`: `key ++ 0x00`.
pub(crate) fn key_successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// `prefix ++ encode_key_value(v)`: the storage key of sort key `v` under partition `prefix`.
fn with_sort_key(prefix: &[u8], v: &AttributeValue) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 16);
    key.extend_from_slice(prefix);
    encode_key_value(v, &mut key);
    key
}

/// The key range holding the items of partition `prefix` whose sort key may satisfy `cond`.
/// Exact for comparisons; for `begins_with` on `S`/`B` it covers the keys whose encoded sort key
/// starts with the escaped prefix (the terminator `0x00 0x01` dropped). Callers still check
/// `SortKeyCondition::matches` on each item.
pub(crate) fn sort_key_range(prefix: &[u8], cond: &SortKeyCondition) -> KeyRange {
    // An item key ends with its sort key: the one key with sort key `v` is `at(v)`.
    bounded_sort_key_range(prefix, cond, |at| Some(key_successor(at)))
}

/// As [`sort_key_range`], for keys in which more bytes follow the sort key (index entries:
/// `prefix ‖ sort key ‖ table key`): every key whose sort key equals a bound `v` starts with
/// the encoding of `v` (encodings are prefix-free), so inclusive upper bounds and exclusive
/// lower bounds end after all keys with that prefix.
pub(crate) fn entry_sort_key_range(prefix: &[u8], cond: &SortKeyCondition) -> KeyRange {
    let whole_end = prefix_end(prefix);
    // None from prefix_end: unbounded within this prefix.
    bounded_sort_key_range(prefix, cond, |at| {
        prefix_end(at).or_else(|| whole_end.clone())
    })
}

/// The range of [`sort_key_range`] given `past(at)`: the first key after every key whose sort
/// key is the one encoded at the end of `at` (`prefix ‖ sort key`).
fn bounded_sort_key_range(
    prefix: &[u8],
    cond: &SortKeyCondition,
    past: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> KeyRange {
    let whole = KeyRange::prefix(prefix);
    let at = |v: &AttributeValue| with_sort_key(prefix, v);
    let after = |v: &AttributeValue| past(&at(v));
    match cond {
        SortKeyCondition::Eq(v) => KeyRange {
            start: Some(at(v)),
            end: after(v),
        },
        SortKeyCondition::Lt(v) => KeyRange {
            start: whole.start,
            end: Some(at(v)),
        },
        SortKeyCondition::Le(v) => KeyRange {
            start: whole.start,
            end: after(v),
        },
        SortKeyCondition::Gt(v) => KeyRange {
            start: after(v),
            end: whole.end,
        },
        SortKeyCondition::Ge(v) => KeyRange {
            start: Some(at(v)),
            end: whole.end,
        },
        SortKeyCondition::Between(a, b) => KeyRange {
            start: Some(at(a)),
            end: after(b),
        },
        SortKeyCondition::BeginsWith(v) => match v {
            AttributeValue::S(_) | AttributeValue::B(_) => {
                let mut k = at(v);
                // Drop the 2-byte terminator: what remains prefixes every extension's encoding.
                k.truncate(k.len().saturating_sub(2).max(prefix.len()));
                KeyRange::prefix(&k)
            }
            _ => whole,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_ff() {
        assert_eq!(prefix_end(&[1, 2, 3]), Some(vec![1, 2, 4]));
        assert_eq!(prefix_end(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(&[]), None);
    }

    #[test]
    fn key_range_narrowing_keeps_the_tighter_bound() {
        let mut r = KeyRange::prefix(&[5]);
        r.raise_start(vec![5, 1]);
        r.raise_start(vec![4]);
        r.lower_end(vec![5, 9]);
        r.lower_end(vec![7]);
        assert_eq!(r.start, Some(vec![5, 1]));
        assert_eq!(r.end, Some(vec![5, 9]));
        assert!(!r.is_empty());
        r.raise_start(vec![5, 9]);
        assert!(r.is_empty());
    }
}
