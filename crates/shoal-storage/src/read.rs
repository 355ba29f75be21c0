//! Query and Scan over a [`Partition`]: key ranges, paging, limits and filters.

use shoal_expr::{Condition, SortKeyCondition};
use shoal_types::key::{encode_key, encode_key_value, partition_hash};
use shoal_types::size::item_size;
use shoal_types::{AttributeValue, Item};

use crate::partition::decode_stored;
use crate::range::{KeyRange, key_successor, prefix_end, sort_key_range};
use crate::{Engine, Partition, Space, StorageError};

/// Entries fetched from the engine per round trip.
const CHUNK: usize = 128;

/// Storage keys are at least this long (the hash); shorter engine keys are partition metadata.
const MIN_STORAGE_KEY: usize = 8;

/// A Query of one partition key.
#[derive(Debug, Clone, Copy)]
pub struct QuerySpec<'a> {
    /// The partition key value (of the schema's type; for a multi-attribute index key, the
    /// list of its partition attributes' values).
    pub partition_key: &'a AttributeValue,
    /// Values the first sort attributes must equal, in schema order (multi-attribute index
    /// keys only; empty otherwise).
    pub sort_prefix: &'a [AttributeValue],
    /// The condition on the sort attribute after `sort_prefix`, if any.
    pub sort: Option<&'a SortKeyCondition>,
    /// Ascending sort key order when true (`ScanIndexForward`), descending otherwise.
    pub forward: bool,
    /// Resume after this key (`ExclusiveStartKey`): only its key attributes are used.
    pub exclusive_start: Option<&'a Item>,
    /// Maximum items read (before the filter), `None` = no limit.
    pub limit: Option<usize>,
    /// Stop once this many bytes (DynamoDB item sizes) were read; the item that crosses the
    /// limit is the last one read. DynamoDB's page is 1 MB.
    pub byte_limit: usize,
    /// `FilterExpression`, applied after reading (does not reduce what is counted as read).
    pub filter: Option<&'a Condition>,
}

/// A Scan of a hash range of the partition, in storage-key order.
#[derive(Debug, Clone, Copy)]
pub struct ScanSpec<'a> {
    /// First partition hash included.
    pub hash_start: u64,
    /// Last partition hash included.
    pub hash_end: u64,
    /// Resume after this item's storage key (`ExclusiveStartKey`).
    pub exclusive_start: Option<&'a Item>,
    /// Maximum items read (before the filter), `None` = no limit.
    pub limit: Option<usize>,
    /// As [`QuerySpec::byte_limit`].
    pub byte_limit: usize,
    /// `FilterExpression`.
    pub filter: Option<&'a Condition>,
}

/// One page of a Query or Scan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// The items read that passed the filter, in read order.
    pub items: Vec<Item>,
    /// Items read (before the filter): DynamoDB's `ScannedCount`.
    pub scanned_count: usize,
    /// Sum of the DynamoDB sizes of the items read, for capacity accounting.
    pub scanned_bytes: usize,
    /// The key attributes of the last item read, set whenever the read stopped because of
    /// `limit` or `byte_limit` (even if nothing is left after it).
    pub last_evaluated_key: Option<Item>,
}

/// Whether an item read from the range belongs to the result.
pub(crate) enum Accept {
    Take,
    Skip,
    /// Past the end of the matching items: stop without a `last_evaluated_key`.
    Stop,
}

impl Partition {
    /// Reads the items of one partition key in sort key order (descending when `!forward`),
    /// restricted by the sort key condition and paged by `exclusive_start`, `limit` and
    /// `byte_limit`; the filter then drops items from the page (they still count as read).
    ///
    /// # Errors
    /// [`StorageError::InvalidKey`] when `exclusive_start` lacks the key attributes; engine
    /// failures; [`StorageError::Corrupt`] if a stored item does not decode.
    pub fn query(&self, spec: &QuerySpec<'_>) -> Result<crate::Page, StorageError> {
        let mut prefix = encode_key(partition_hash(spec.partition_key), spec.partition_key, None);
        for v in spec.sort_prefix {
            encode_key_value(v, &mut prefix);
        }
        let start = spec
            .exclusive_start
            .map(|e| self.start_key(e))
            .transpose()?;
        // A sort prefix (never sent for a table) fixes the one sort key: nothing is left to test.
        let range_attr = self
            .schema
            .range
            .as_ref()
            .filter(|_| spec.sort_prefix.is_empty())
            .map(|r| r.name.as_str());
        self.source()
            .query(&prefix, sort_key_range, start, spec, range_attr, |item| {
                self.schema.key_of(item)
            })
    }

    /// Reads the items whose partition hash lies in `[hash_start, hash_end]` in storage-key
    /// order, after `exclusive_start`, paged by `limit` and `byte_limit`; the filter then drops
    /// items from the page. The union of scans over disjoint hash ranges is the whole table.
    ///
    /// # Errors
    /// As [`Partition::query`].
    pub fn scan(&self, spec: &ScanSpec<'_>) -> Result<crate::Page, StorageError> {
        let Some(range) = hash_range(&[], spec) else {
            return Ok(Page::default());
        };
        let start = spec
            .exclusive_start
            .map(|e| self.start_key(e))
            .transpose()?;
        self.source()
            .scan(range, start, spec, |item| self.schema.key_of(item))
    }

    fn start_key(&self, esk: &Item) -> Result<Vec<u8>, StorageError> {
        self.schema.storage_key(esk).ok_or_else(invalid_start_key)
    }

    fn source(&self) -> RangeSource<'_> {
        RangeSource {
            engine: self.engine.as_ref(),
            space: Space::Items,
            min_key_len: MIN_STORAGE_KEY,
            owned: None,
        }
    }
}

/// The error for an `ExclusiveStartKey` that lacks the key attributes or has them mistyped.
pub(crate) fn invalid_start_key() -> StorageError {
    StorageError::InvalidKey(
        "The provided starting key is invalid: The provided key element does not match the schema"
            .into(),
    )
}

/// The keys under `prefix` whose partition hash (the 8 bytes after `prefix`) lies in a Scan's
/// `[hash_start, hash_end]`; `None` when that range is empty.
pub(crate) fn hash_range(prefix: &[u8], spec: &ScanSpec<'_>) -> Option<KeyRange> {
    if spec.hash_start > spec.hash_end {
        return None;
    }
    let at = |hash: u64| {
        let mut k = prefix.to_vec();
        k.extend_from_slice(&hash.to_be_bytes());
        k
    };
    Some(KeyRange {
        start: Some(at(spec.hash_start)),
        end: match spec.hash_end.checked_add(1) {
            Some(e) => Some(at(e)),
            None => prefix_end(prefix),
        },
    })
}

/// The acceptance test of a Query with an optional sort key condition on `range_attr`: the
/// items satisfying it are contiguous in key order, so once a match was seen, the first
/// non-match ends the result.
pub(crate) fn sort_key_filter<'a>(
    sort: Option<&'a SortKeyCondition>,
    range_attr: Option<&'a str>,
) -> impl FnMut(&Item) -> Accept + 'a {
    let mut seen_match = false;
    move |item: &Item| -> Accept {
        let Some(cond) = sort else {
            return Accept::Take;
        };
        let matched = range_attr
            .and_then(|name| item.get(name))
            .is_some_and(|sk| cond.matches(sk));
        if matched {
            seen_match = true;
            Accept::Take
        } else if seen_match {
            Accept::Stop
        } else {
            Accept::Skip
        }
    }
}

/// Where a range read takes its entries from.
pub(crate) struct RangeSource<'a> {
    pub engine: &'a dyn Engine,
    pub space: Space,
    /// Shorter keys are metadata, skipped.
    pub min_key_len: usize,
    /// Only the entries whose item's partition key (this attribute) hashes into this range
    /// are read; the others are skipped and not counted (a GSI shard of a base partition that
    /// was split keeps the entries of the half split off until they are dropped).
    pub owned: Option<(&'a str, u64, u64)>,
}

impl RangeSource<'_> {
    /// A Query of the keys under `prefix` (one partition key), narrowed by `sort_range` of the
    /// sort key condition when there is a sort key (attribute `range_attr`), read in the spec's
    /// direction from after `start` (the key of its `ExclusiveStartKey`), keeping the keys whose
    /// sort key satisfies the condition.
    pub(crate) fn query(
        &self,
        prefix: &[u8],
        sort_range: fn(&[u8], &SortKeyCondition) -> KeyRange,
        start: Option<Vec<u8>>,
        spec: &QuerySpec<'_>,
        range_attr: Option<&str>,
        key_of: impl Fn(&Item) -> Item,
    ) -> Result<Page, StorageError> {
        let mut range = match (spec.sort, range_attr) {
            (Some(cond), Some(_)) => sort_range(prefix, cond),
            _ => KeyRange::prefix(prefix),
        };
        if let Some(key) = start {
            if spec.forward {
                range.raise_start(key_successor(&key));
            } else {
                range.lower_end(key);
            }
        }
        let accept = sort_key_filter(spec.sort, range_attr);
        self.read(
            range,
            !spec.forward,
            spec.limit,
            spec.byte_limit,
            spec.filter,
            accept,
            key_of,
        )
    }

    /// A Scan of `range` in key order, from after `start` (the key of its `ExclusiveStartKey`).
    pub(crate) fn scan(
        &self,
        mut range: KeyRange,
        start: Option<Vec<u8>>,
        spec: &ScanSpec<'_>,
        key_of: impl Fn(&Item) -> Item,
    ) -> Result<Page, StorageError> {
        if let Some(key) = start {
            range.raise_start(key_successor(&key));
        }
        self.read(
            range,
            false,
            spec.limit,
            spec.byte_limit,
            spec.filter,
            |_| Accept::Take,
            key_of,
        )
    }

    /// The paging loop shared by Query and Scan of items and of index entries: reads `range`
    /// in chunks, decodes each value as an item, and stops at `limit` items or `byte_limit`
    /// bytes read (setting `last_evaluated_key` to `key_of` the last item read).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn read(
        &self,
        mut range: KeyRange,
        reverse: bool,
        limit: Option<usize>,
        byte_limit: usize,
        filter: Option<&Condition>,
        mut accept: impl FnMut(&Item) -> Accept,
        key_of: impl Fn(&Item) -> Item,
    ) -> Result<Page, StorageError> {
        let mut page = Page::default();
        if limit == Some(0) {
            return Ok(page);
        }
        loop {
            if range.is_empty() {
                return Ok(page);
            }
            let want = limit
                .map_or(CHUNK, |l| l.saturating_sub(page.scanned_count))
                .clamp(1, CHUNK);
            let entries = self.engine.scan_in(
                self.space,
                range.start.as_deref(),
                range.end.as_deref(),
                reverse,
                want,
            )?;
            let exhausted = entries.len() < want;
            for (key, value) in entries {
                let short = key.len() < self.min_key_len;
                if reverse {
                    range.end = Some(key);
                } else {
                    range.start = Some(key_successor(&key));
                }
                if short {
                    continue;
                }
                let item = decode_stored(&value)?;
                if let Some((name, start, end)) = self.owned {
                    let hash = item.get(name).map(partition_hash);
                    if !hash.is_some_and(|h| start <= h && h <= end) {
                        continue;
                    }
                }
                match accept(&item) {
                    Accept::Take => {}
                    Accept::Skip => continue,
                    Accept::Stop => return Ok(page),
                }
                page.scanned_count = page.scanned_count.saturating_add(1);
                page.scanned_bytes = page.scanned_bytes.saturating_add(item_size(&item));
                let stop = limit.is_some_and(|l| page.scanned_count >= l)
                    || page.scanned_bytes >= byte_limit;
                if stop {
                    page.last_evaluated_key = Some(key_of(&item));
                }
                if filter.is_none_or(|f| f.evaluate(&item)) {
                    page.items.push(item);
                }
                if stop {
                    return Ok(page);
                }
            }
            if exhausted {
                return Ok(page);
            }
        }
    }
}
