//! Reads of a global secondary index.
//!
//! A GSI is sharded by base partition (`gsi.rs`): each base partition holds the entries of its
//! own items. A Query or Scan of a GSI therefore reads every base partition's shard, here when
//! this node holds a replica of the partition and on a node that does otherwise
//! ([`DataCall::Shard`]), each part up to the request's item and byte limits, and merges the
//! parts in index order: entry key order (index partition key hash, index keys, then table
//! keys, the order every shard is stored in). A part that stopped early cuts the merge at its
//! last entry, since it read nothing after it. The filter is applied to the merged page, so
//! `Count`, `ScannedCount` and `LastEvaluatedKey` are those of one ordered read of the whole
//! index. Paging stays exact across splits: an `ExclusiveStartKey` is a position in index
//! order, which every shard, old or new, resumes after.
//!
//! Each shard is read with its partition's own hash range: a partition split keeps the entries
//! of the half split off in its shard until it drops them, and they are not read there (the
//! child's shard has them).

use std::sync::Arc;

use shoal_catalog::{DataError, QueryRequest, ScanRequest, TableMeta};
use shoal_expr::Condition;
use shoal_storage::{Page, QuerySpec, ScanSpec, entry_key};
use shoal_types::Item;
use shoal_types::index::IndexDef;
use shoal_types::key::KeySchema;
use shoal_types::size::item_size;

use crate::backend::{NodeBackend, TableHandle, blocking, internal};
use crate::remote::codec::{DataCall, DataReply};
use crate::storage_failure::storage_failure;

/// A read of a global index: a Query or a Scan (with its `index` set).
#[derive(Clone)]
pub(crate) enum GsiRead {
    Query(Arc<QueryRequest>),
    Scan(Arc<ScanRequest>),
}

impl GsiRead {
    fn index(&self) -> Option<u32> {
        match self {
            GsiRead::Query(r) => r.index,
            GsiRead::Scan(r) => r.index,
        }
    }

    fn filter(&self) -> Option<&Condition> {
        match self {
            GsiRead::Query(r) => r.filter.as_ref(),
            GsiRead::Scan(r) => r.filter.as_ref(),
        }
    }

    fn limit(&self) -> Option<usize> {
        match self {
            GsiRead::Query(r) => r.limit,
            GsiRead::Scan(r) => r.limit,
        }
    }

    fn byte_limit(&self) -> usize {
        match self {
            GsiRead::Query(r) => r.byte_limit,
            GsiRead::Scan(r) => r.byte_limit,
        }
    }

    /// Ascending index order (a Scan, or a Query with `ScanIndexForward`).
    fn forward(&self) -> bool {
        match self {
            GsiRead::Query(r) => r.forward,
            GsiRead::Scan(_) => true,
        }
    }

    /// The same read without its filter: each part returns every entry it read, and the merge
    /// filters.
    fn unfiltered(&self) -> GsiRead {
        match self {
            GsiRead::Query(r) => GsiRead::Query(Arc::new(QueryRequest {
                filter: None,
                ..QueryRequest::clone(r)
            })),
            GsiRead::Scan(r) => GsiRead::Scan(Arc::new(ScanRequest {
                filter: None,
                ..ScanRequest::clone(r)
            })),
        }
    }

    /// The read as a forwarded call on `table`.
    fn call(&self, table: &str) -> DataCall {
        match self {
            GsiRead::Query(r) => DataCall::Query {
                table: table.to_string(),
                request: QueryRequest::clone(r),
            },
            GsiRead::Scan(r) => DataCall::Scan {
                table: table.to_string(),
                request: ScanRequest::clone(r),
            },
        }
    }
}

/// One base partition's part of a GSI read: its hash range, and whether this node holds it.
type Part = (u64, u64, bool);

impl NodeBackend {
    /// A Query or Scan of global index `def` of `table`: every base partition's shard, merged.
    pub(crate) async fn read_gsi(
        &self,
        table: &TableMeta,
        def: &IndexDef,
        read: GsiRead,
    ) -> Result<Page, DataError> {
        let handle = self.handle_for(table)?;
        let parts = self.gsi_parts(&handle, table);
        drop(handle);
        match parts[..] {
            // The map does not list the table (yet): the router looks again.
            [] => {
                return Err(DataError::Unavailable(
                    crate::split::WRONG_PARTITION.to_string(),
                ));
            }
            // One partition, held here: its shard answers the whole read, filter included.
            [(start, end, true)] => return self.read_gsi_here(table, read, start, end).await,
            // One partition held elsewhere: the whole read goes to a replica of it, as a plain
            // Query or Scan (which nodes of every version serve).
            [(_, _, false)] => {
                return self
                    .forward(read.call(&table.name))
                    .await
                    .and_then(DataReply::into_page);
            }
            _ => {}
        }
        let unfiltered = read.unfiltered();
        let mut pages = Vec::with_capacity(parts.len());
        for (start, end, local) in parts {
            let page = if local {
                self.read_gsi_here(table, unfiltered.clone(), start, end)
                    .await?
            } else {
                let call = DataCall::Shard {
                    start,
                    end,
                    call: Box::new(unfiltered.call(&table.name)),
                };
                self.forward(call).await.and_then(DataReply::into_page)?
            };
            pages.push(page);
        }
        Ok(merge(def, &table.key_schema, pages, &read))
    }

    /// The base partitions of `table` a GSI read covers, in hash order: from the cluster's
    /// partition map (the local replicas when the node serves no cluster).
    fn gsi_parts(&self, handle: &TableHandle, table: &TableMeta) -> Vec<Part> {
        let local = |start: u64, end: u64| {
            handle
                .partitions
                .iter()
                .any(|p| p.record.hash_start == start && p.record.hash_end == end)
        };
        let Ok(cluster) = self.cluster() else {
            return handle
                .partitions
                .iter()
                .map(|p| (p.record.hash_start, p.record.hash_end, true))
                .collect();
        };
        let meta = cluster.meta();
        let Some(entry) = meta
            .tables
            .get(&table.name)
            .filter(|t| t.meta.id == table.id)
        else {
            return Vec::new();
        };
        entry
            .partitions
            .of(None)
            .map(|p| (p.hash_start, p.hash_end, local(p.hash_start, p.hash_end)))
            .collect()
    }

    /// `read` of the GSI shards of the local replicas of the base partitions in
    /// `start..=end` (which they must cover), each restricted to its partition's range.
    pub(crate) async fn read_gsi_here(
        &self,
        table: &TableMeta,
        read: GsiRead,
        start: u64,
        end: u64,
    ) -> Result<Page, DataError> {
        let def = crate::backend::index_of(table, read.index())?
            .cloned()
            .ok_or_else(|| internal("a GSI read without its index"))?;
        let handle = self.handle_for(table)?;
        if !crate::remote::covers(&handle, start, end) {
            // Split or moved since the caller routed the read: it routes it again.
            return Err(DataError::Unavailable(
                crate::split::WRONG_PARTITION.to_string(),
            ));
        }
        let mut shards = Vec::new();
        for p in handle
            .partitions
            .iter()
            .filter(|p| p.record.hash_end >= start && p.record.hash_start <= end)
        {
            p.check_readable()?;
            self.ensure_ready(p).await?;
            let owned = (p.record.hash_start.max(start), p.record.hash_end.min(end));
            crate::split::check_covers(p, owned.0, owned.1)?;
            let gsi = p.gsi(&def)?;
            // A partition never split reads its whole shard without testing every entry.
            let restrict =
                (owned != (0, u64::MAX) || p.partition.owned_range().is_some()).then_some(owned);
            let meter = self.admit_read(table, &p.record, Some(&def), false)?;
            shards.push((gsi, restrict, meter));
        }
        drop(handle);
        let single = shards.len() == 1;
        let part_read = if single {
            read.clone()
        } else {
            read.unfiltered()
        };
        let meters: Vec<_> = shards.iter().map(|(_, _, meter)| *meter).collect();
        let pages = blocking(move || -> Result<Vec<Page>, DataError> {
            shards
                .iter()
                .map(|(gsi, restrict, _)| {
                    read_shard(&gsi.shard, &part_read, *restrict)
                        .map_err(|e| storage_failure(e, &gsi.path))
                })
                .collect()
        })
        .await??;
        // Each shard is charged what it read, before the merge cuts the pages.
        for (meter, page) in meters.into_iter().zip(&pages) {
            self.charge_read(table, meter, Some(&def), page.scanned_bytes);
        }
        if single {
            return pages
                .into_iter()
                .next()
                .ok_or_else(|| internal("no shard read"));
        }
        Ok(merge(&def, &table.key_schema, pages, &read))
    }
}

/// One shard's part of `read`, restricted to the entries of items in `owned`.
fn read_shard(
    shard: &shoal_storage::IndexPartition,
    read: &GsiRead,
    owned: Option<(u64, u64)>,
) -> Result<Page, shoal_storage::StorageError> {
    match read {
        GsiRead::Query(r) => shard.query(
            &QuerySpec {
                partition_key: &r.partition_key,
                sort_prefix: &r.sort_prefix,
                sort: r.sort.as_ref(),
                forward: r.forward,
                exclusive_start: r.exclusive_start.as_ref(),
                limit: r.limit,
                byte_limit: r.byte_limit,
                filter: r.filter.as_ref(),
            },
            owned,
        ),
        GsiRead::Scan(r) => shard.scan(
            &ScanSpec {
                hash_start: r.hash_start,
                hash_end: r.hash_end,
                exclusive_start: r.exclusive_start.as_ref(),
                limit: r.limit,
                byte_limit: r.byte_limit,
                filter: r.filter.as_ref(),
            },
            owned,
        ),
    }
}

/// Merges unfiltered parts of `read` (each in index order, each stopped early only with a
/// `last_evaluated_key`) into the page one ordered read of the whole index would give.
fn merge(def: &IndexDef, table: &KeySchema, pages: Vec<Page>, read: &GsiRead) -> Page {
    let forward = read.forward();
    let key = |item: &Item| entry_key(def, table, item).unwrap_or_default();
    let before = |a: &[u8], b: &[u8]| if forward { a < b } else { a > b };
    // The first point (in read order) where a part stopped: nothing after it was read there.
    let mut cutoff: Option<(Vec<u8>, Item)> = None;
    let mut entries: Vec<(Vec<u8>, Item)> = Vec::new();
    for page in pages {
        if let Some(lek) = page.last_evaluated_key {
            let k = key(&lek);
            if cutoff.as_ref().is_none_or(|(c, _)| before(&k, c)) {
                cutoff = Some((k, lek));
            }
        }
        entries.extend(page.items.into_iter().map(|i| (key(&i), i)));
    }
    entries.sort_by(|a, b| {
        if forward {
            a.0.cmp(&b.0)
        } else {
            b.0.cmp(&a.0)
        }
    });
    let (limit, byte_limit, filter) = (read.limit(), read.byte_limit(), read.filter());
    let mut page = Page::default();
    if limit == Some(0) {
        return page;
    }
    for (k, item) in entries {
        if cutoff.as_ref().is_some_and(|(c, _)| before(c, &k)) {
            break;
        }
        page.scanned_count += 1;
        page.scanned_bytes = page.scanned_bytes.saturating_add(item_size(&item));
        let stop =
            limit.is_some_and(|l| page.scanned_count >= l) || page.scanned_bytes >= byte_limit;
        if stop {
            let mut lek = table.key_of(&item);
            lek.extend(def.key_schema.key_of(&item));
            page.last_evaluated_key = Some(lek);
        }
        if filter.is_none_or(|f| f.evaluate(&item)) {
            page.items.push(item);
        }
        if stop {
            return page;
        }
    }
    page.last_evaluated_key = cutoff.map(|(_, lek)| lek);
    page
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use shoal_types::index::{IndexKind, IndexStatus, Projection, ProjectionType};
    use shoal_types::key::{KeyAttr, KeySchema};
    use shoal_types::{AttributeValue, ScalarType};

    use super::*;

    fn table() -> KeySchema {
        KeySchema {
            hash: KeyAttr {
                name: "pk".into(),
                ty: ScalarType::S,
            },
            range: None,
        }
    }

    fn def() -> IndexDef {
        IndexDef {
            id: 1,
            name: "by_g".into(),
            kind: IndexKind::Global,
            key_schema: KeySchema {
                hash: KeyAttr {
                    name: "g".into(),
                    ty: ScalarType::S,
                },
                range: Some(KeyAttr {
                    name: "n".into(),
                    ty: ScalarType::N,
                }),
            }
            .into(),
            projection: Projection {
                kind: ProjectionType::All,
                non_key_attributes: Vec::new(),
            },
            status: IndexStatus::Active,
            backfilling: false,
        }
    }

    fn item(pk: &str, n: u32) -> Item {
        [
            ("pk".to_string(), AttributeValue::S(pk.into())),
            ("g".to_string(), AttributeValue::S("x".into())),
            (
                "n".to_string(),
                AttributeValue::N(shoal_types::Number::from_i64(i64::from(n))),
            ),
        ]
        .into_iter()
        .collect()
    }

    fn key(item: &Item) -> Item {
        let mut k = table().key_of(item);
        k.extend(def().key_schema.key_of(item));
        k
    }

    fn query(limit: Option<usize>, forward: bool) -> GsiRead {
        GsiRead::Query(Arc::new(QueryRequest {
            partition_key: AttributeValue::S("x".into()),
            sort_prefix: Vec::new(),
            sort: None,
            forward,
            exclusive_start: None,
            limit,
            byte_limit: 1 << 20,
            filter: None,
            consistent: false,
            index: Some(1),
        }))
    }

    fn ns(page: &Page) -> Vec<String> {
        page.items
            .iter()
            .map(|i| match i.get("n") {
                Some(AttributeValue::N(n)) => n.to_string(),
                _ => String::new(),
            })
            .collect()
    }

    #[test]
    fn parts_merge_in_index_order_up_to_the_limit() {
        let a = Page {
            items: vec![item("a", 1), item("b", 4), item("c", 6)],
            scanned_count: 3,
            scanned_bytes: 30,
            last_evaluated_key: None,
        };
        let b = Page {
            items: vec![item("d", 2), item("e", 3), item("f", 5)],
            scanned_count: 3,
            scanned_bytes: 30,
            last_evaluated_key: None,
        };
        let page = merge(
            &def(),
            &table(),
            vec![a.clone(), b.clone()],
            &query(None, true),
        );
        assert_eq!(ns(&page), ["1", "2", "3", "4", "5", "6"]);
        assert_eq!(page.last_evaluated_key, None);
        let page = merge(&def(), &table(), vec![a, b], &query(Some(4), true));
        assert_eq!(ns(&page), ["1", "2", "3", "4"]);
        assert_eq!(page.scanned_count, 4);
        assert_eq!(page.last_evaluated_key, Some(key(&item("b", 4))));
    }

    #[test]
    fn a_part_that_stopped_early_cuts_the_merge_at_its_last_entry() {
        // The second part read two entries and stopped: entries after its last one (3) may be
        // missing from it, so the page ends there and the next page resumes after 3.
        let a = Page {
            items: vec![item("a", 1), item("b", 4), item("c", 6)],
            scanned_count: 3,
            scanned_bytes: 30,
            last_evaluated_key: None,
        };
        let b = Page {
            items: vec![item("d", 2), item("e", 3)],
            scanned_count: 2,
            scanned_bytes: 20,
            last_evaluated_key: Some(key(&item("e", 3))),
        };
        let page = merge(&def(), &table(), vec![a, b], &query(Some(10), true));
        assert_eq!(ns(&page), ["1", "2", "3"]);
        assert_eq!(page.last_evaluated_key, Some(key(&item("e", 3))));
    }

    #[test]
    fn backward_queries_merge_in_descending_order() {
        let a = Page {
            items: vec![item("c", 6), item("a", 1)],
            scanned_count: 2,
            scanned_bytes: 20,
            last_evaluated_key: None,
        };
        let b = Page {
            items: vec![item("f", 5), item("e", 3)],
            scanned_count: 2,
            scanned_bytes: 20,
            last_evaluated_key: Some(key(&item("e", 3))),
        };
        let page = merge(&def(), &table(), vec![a, b], &query(None, false));
        assert_eq!(ns(&page), ["6", "5", "3"]);
        assert_eq!(page.last_evaluated_key, Some(key(&item("e", 3))));
    }
}
