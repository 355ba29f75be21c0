//! The payload of a `DATA` RPC: one data-plane call forwarded to a node holding a replica of the
//! partition it needs, and its result.
//!
//! Fields are length-prefixed (`u32` BE) or fixed-width (`u64` BE); items and values use the
//! item codec of `shoal-types`, filters the condition codec and commands the command codec of
//! `shoal_storage::wire` (both checked when decoded, so a peer's bytes never build a structure
//! deeper than those codecs allow).

use shoal_catalog::{DataError, QueryRequest, ScanRequest, TableStats};
use shoal_expr::SortKeyCondition;
use shoal_storage::{
    Applied, ChangeRecord, Command, Page, RecordsFrom, RecordsRead, ShardClose, ShardSummary, wire,
};
use shoal_types::{AttributeValue, Item};

/// A forwarded data-plane call on table `table`.
#[derive(Debug, Clone)]
pub(crate) enum DataCall {
    Get {
        table: String,
        key: Item,
        consistent: bool,
    },
    Query {
        table: String,
        request: QueryRequest,
    },
    Scan {
        table: String,
        request: ScanRequest,
    },
    Write {
        table: String,
        command: Command,
    },
    CollectionSize {
        table: String,
        partition_key: AttributeValue,
    },
    /// The stats of the table (`index` `None`) or of one of its indexes.
    Stats {
        table: String,
        index: Option<u32>,
    },
    /// The stats of one partition of the table (`index` `None`) or of one of its local indexes
    /// in that partition: a table of several partitions sums them over the replicas holding
    /// each.
    PartitionStats {
        table: String,
        partition: u64,
        index: Option<u32>,
    },
    /// Whether global index `index` is active on the replica (its backfill finished there):
    /// `Size(1)` if so, else `Size(0)`.
    IndexActive {
        table: String,
        index: u32,
    },
    /// Whether this node's replica of base partition `partition` finished the backfill of
    /// global index `index` (or the index is active here): `Size(1)` if so.
    IndexBuilt {
        table: String,
        index: u32,
        partition: u64,
    },
    /// A GSI Query or Scan (`call`) of only the shards of the base partitions in
    /// `start..=end` (one partition's part of a GSI read; see `gsi_read.rs`).
    Shard {
        start: u64,
        end: u64,
        call: Box<DataCall>,
    },
    /// Whether this node's replica of base partition `partition` has its expiry index built for
    /// `attr` (`None`: dropped): `Size(1)` if so.
    TtlSettled {
        table: String,
        partition: u64,
        attr: Option<String>,
    },
    /// The shards of stream `stream` in this node's replica of base partition `partition`.
    StreamShards {
        table: String,
        partition: u64,
        stream: u32,
    },
    /// A read of the shard of stream `stream` at `epoch` in base partition `partition`.
    StreamRecords {
        table: String,
        partition: u64,
        stream: u32,
        epoch: u64,
        from: RecordsFrom,
        limit: u64,
    },
}

/// What a [`DataCall`] returns.
#[derive(Debug)]
pub(crate) enum DataReply {
    Item(Option<Item>),
    Page(Page),
    Applied(Applied),
    Size(u64),
    Stats(TableStats),
    /// A replica's shards of a stream, and whether it writes the stream's records now.
    Shards(Vec<ShardSummary>, bool),
    Records(RecordsRead),
}

const CALL_GET: u8 = 1;
const CALL_QUERY: u8 = 2;
const CALL_SCAN: u8 = 3;
const CALL_WRITE: u8 = 4;
const CALL_SIZE: u8 = 5;
const CALL_STATS: u8 = 6;
const CALL_INDEX_ACTIVE: u8 = 7;
/// A Query with a sort prefix (multi-attribute index keys): [`CALL_QUERY`]'s fields with the
/// prefix, as one list value, after the partition key. A Query without one keeps
/// [`CALL_QUERY`], which nodes of earlier versions read.
const CALL_QUERY_PREFIXED: u8 = 8;
/// [`DataCall::PartitionStats`] (sent only for tables of several partitions, which exist once
/// every member reads metadata format 3).
const CALL_PARTITION_STATS: u8 = 9;
/// [`DataCall::Shard`]: the base range, then the inner Query or Scan (sent only for tables
/// whose global indexes are sharded, which exist once every member reads metadata format 5).
const CALL_SHARD: u8 = 10;
/// [`DataCall::IndexBuilt`] (sent only for tables of several partitions with a global index
/// being created, which exist once every member reads metadata format 5).
const CALL_INDEX_BUILT: u8 = 11;
/// [`DataCall::StreamShards`] (sent only for tables with a stream).
const CALL_STREAM_SHARDS: u8 = 12;
/// [`DataCall::StreamRecords`] (sent only for tables with a stream).
const CALL_STREAM_RECORDS: u8 = 13;
/// [`DataCall::TtlSettled`] (sent only by DescribeTimeToLive on tables of several partitions).
const CALL_TTL_SETTLED: u8 = 14;

const FROM_TRIM_HORIZON: u8 = 1;
const FROM_LATEST: u8 = 2;
const FROM_AT: u8 = 3;
const FROM_AFTER: u8 = 4;

const SORT_EQ: u8 = 1;
const SORT_LT: u8 = 2;
const SORT_LE: u8 = 3;
const SORT_GT: u8 = 4;
const SORT_GE: u8 = 5;
const SORT_BETWEEN: u8 = 6;
const SORT_BEGINS: u8 = 7;

const ERR_TABLE_NOT_FOUND: u8 = 1;
const ERR_TABLE_EXISTS: u8 = 2;
const ERR_CONFLICT: u8 = 3;
const ERR_INDEX_NOT_FOUND: u8 = 4;
const ERR_APPLY: u8 = 5;
const ERR_INTERNAL: u8 = 6;
const ERR_UNAVAILABLE: u8 = 7;
/// Refused by the partition's capacity buckets: reason, resource.
const ERR_THROTTLED: u8 = 8;
const ERR_SHARD_NOT_FOUND: u8 = 9;
const ERR_TRIMMED: u8 = 10;

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    fn bytes(&mut self, b: &[u8]) {
        // Frames are far below 4 GiB (the RPC layer bounds them).
        self.0.extend_from_slice(&(b.len() as u32).to_be_bytes());
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn item(&mut self, item: &Item) {
        let mut b = Vec::new();
        shoal_types::encode_item(item, &mut b);
        self.bytes(&b);
    }
    fn opt_item(&mut self, item: Option<&Item>) {
        self.bool(item.is_some());
        if let Some(i) = item {
            self.item(i);
        }
    }
    fn value(&mut self, v: &AttributeValue) {
        let mut b = Vec::new();
        shoal_types::codec::encode_value(v, &mut b);
        self.bytes(&b);
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        self.bool(v.is_some());
        self.u64(v.unwrap_or(0));
    }
    fn filter(&mut self, c: Option<&shoal_expr::Condition>) {
        let mut b = Vec::new();
        wire::encode_condition(c, &mut b);
        self.bytes(&b);
    }
    fn sort(&mut self, s: Option<&SortKeyCondition>) {
        let Some(s) = s else {
            self.u8(0);
            return;
        };
        match s {
            SortKeyCondition::Eq(v) => self.tagged(SORT_EQ, &[v]),
            SortKeyCondition::Lt(v) => self.tagged(SORT_LT, &[v]),
            SortKeyCondition::Le(v) => self.tagged(SORT_LE, &[v]),
            SortKeyCondition::Gt(v) => self.tagged(SORT_GT, &[v]),
            SortKeyCondition::Ge(v) => self.tagged(SORT_GE, &[v]),
            SortKeyCondition::Between(a, b) => self.tagged(SORT_BETWEEN, &[a, b]),
            SortKeyCondition::BeginsWith(v) => self.tagged(SORT_BEGINS, &[v]),
        }
    }
    fn tagged(&mut self, tag: u8, values: &[&AttributeValue]) {
        self.u8(tag);
        for v in values {
            self.value(v);
        }
    }
    fn page(&mut self, p: &Page) {
        self.u64(p.items.len() as u64);
        for i in &p.items {
            self.item(i);
        }
        self.u64(p.scanned_count as u64);
        self.u64(p.scanned_bytes as u64);
        self.opt_item(p.last_evaluated_key.as_ref());
    }
}

struct Reader<'a> {
    b: &'a [u8],
}

type Decoded<T> = Result<T, String>;

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Decoded<&'a [u8]> {
        if self.b.len() < n {
            return Err("truncated data call".to_string());
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Decoded<u8> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Decoded<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn usize(&mut self) -> Decoded<usize> {
        usize::try_from(self.u64()?).map_err(|e| e.to_string())
    }
    fn bool(&mut self) -> Decoded<bool> {
        Ok(self.u8()? != 0)
    }
    fn bytes(&mut self) -> Decoded<&'a [u8]> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        self.take(u32::from_be_bytes(a) as usize)
    }
    fn str(&mut self) -> Decoded<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|e| e.to_string())
    }
    fn item(&mut self) -> Decoded<Item> {
        shoal_types::decode_item(self.bytes()?).map_err(|e| e.to_string())
    }
    fn opt_item(&mut self) -> Decoded<Option<Item>> {
        Ok(if self.bool()? {
            Some(self.item()?)
        } else {
            None
        })
    }
    fn value(&mut self) -> Decoded<AttributeValue> {
        let b = self.bytes()?;
        let (v, used) = shoal_types::codec::decode_value(b).map_err(|e| e.to_string())?;
        if used != b.len() {
            return Err("trailing bytes after a value".to_string());
        }
        Ok(v)
    }
    fn opt_u64(&mut self) -> Decoded<Option<u64>> {
        let some = self.bool()?;
        let v = self.u64()?;
        Ok(some.then_some(v))
    }
    fn opt_usize(&mut self) -> Decoded<Option<usize>> {
        self.opt_u64()?
            .map(|v| usize::try_from(v).map_err(|e| e.to_string()))
            .transpose()
    }
    fn opt_index(&mut self) -> Decoded<Option<u32>> {
        self.opt_u64()?
            .map(|v| u32::try_from(v).map_err(|e| e.to_string()))
            .transpose()
    }
    fn filter(&mut self) -> Decoded<Option<shoal_expr::Condition>> {
        wire::decode_condition(self.bytes()?).map_err(|e| e.to_string())
    }
    fn sort(&mut self) -> Decoded<Option<SortKeyCondition>> {
        Ok(Some(match self.u8()? {
            0 => return Ok(None),
            SORT_EQ => SortKeyCondition::Eq(self.value()?),
            SORT_LT => SortKeyCondition::Lt(self.value()?),
            SORT_LE => SortKeyCondition::Le(self.value()?),
            SORT_GT => SortKeyCondition::Gt(self.value()?),
            SORT_GE => SortKeyCondition::Ge(self.value()?),
            SORT_BETWEEN => SortKeyCondition::Between(self.value()?, self.value()?),
            SORT_BEGINS => SortKeyCondition::BeginsWith(self.value()?),
            tag => return Err(format!("unknown sort condition {tag}")),
        }))
    }
    fn page(&mut self) -> Decoded<Page> {
        let n = self.usize()?;
        // Each item takes at least its 4-byte length: a count past the bytes left is a lie.
        if n > self.b.len() / 4 {
            return Err("item count past the end of the data".to_string());
        }
        let items = (0..n).map(|_| self.item()).collect::<Decoded<Vec<_>>>()?;
        Ok(Page {
            items,
            scanned_count: self.usize()?,
            scanned_bytes: self.usize()?,
            last_evaluated_key: self.opt_item()?,
        })
    }
    /// A count of entries each at least `min` bytes long: a count past the bytes left is a lie.
    fn count(&mut self, min: usize) -> Decoded<usize> {
        let n = self.usize()?;
        if n > self.b.len() / min {
            return Err("count past the end of the data".to_string());
        }
        Ok(n)
    }
    fn shards(&mut self) -> Decoded<Vec<ShardSummary>> {
        let n = self.count(8)?;
        (0..n)
            .map(|_| {
                let epoch = self.u64()?;
                let first_seq = self.opt_u64()?;
                let trimmed = self.opt_u64()?;
                let closed = if self.bool()? {
                    let last_seq = self.u64()?;
                    let closed_ms = self.u64()?;
                    let k = self.count(16)?;
                    let children = (0..k)
                        .map(|_| Ok((self.u64()?, self.u64()?)))
                        .collect::<Decoded<Vec<_>>>()?;
                    Some(ShardClose {
                        last_seq,
                        children,
                        closed_ms,
                    })
                } else {
                    None
                };
                Ok(ShardSummary {
                    epoch,
                    first_seq,
                    trimmed,
                    closed,
                })
            })
            .collect()
    }
    fn records(&mut self) -> Decoded<RecordsRead> {
        let next = self.opt_u64()?;
        let n = self.count(12)?;
        let records = (0..n)
            .map(|_| {
                let seq = self.u64()?;
                ChangeRecord::decode(seq, self.bytes()?).map_err(|e| e.to_string())
            })
            .collect::<Decoded<Vec<_>>>()?;
        Ok(RecordsRead { records, next })
    }
    fn finish(&self) -> Decoded<()> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes after a data call".to_string())
        }
    }
}

impl DataCall {
    /// The table the call is on.
    pub(crate) fn table(&self) -> &str {
        match self {
            DataCall::Get { table, .. }
            | DataCall::Query { table, .. }
            | DataCall::Scan { table, .. }
            | DataCall::Write { table, .. }
            | DataCall::CollectionSize { table, .. }
            | DataCall::Stats { table, .. }
            | DataCall::PartitionStats { table, .. }
            | DataCall::IndexActive { table, .. }
            | DataCall::IndexBuilt { table, .. }
            | DataCall::StreamShards { table, .. }
            | DataCall::StreamRecords { table, .. }
            | DataCall::TtlSettled { table, .. } => table,
            DataCall::Shard { call, .. } => call.table(),
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            DataCall::Get {
                table,
                key,
                consistent,
            } => {
                w.u8(CALL_GET);
                w.str(table);
                w.item(key);
                w.bool(*consistent);
            }
            DataCall::Query { table, request: r } => {
                if r.sort_prefix.is_empty() {
                    w.u8(CALL_QUERY);
                    w.str(table);
                    w.value(&r.partition_key);
                } else {
                    w.u8(CALL_QUERY_PREFIXED);
                    w.str(table);
                    w.value(&r.partition_key);
                    w.value(&AttributeValue::L(r.sort_prefix.clone()));
                }
                w.sort(r.sort.as_ref());
                w.bool(r.forward);
                w.opt_item(r.exclusive_start.as_ref());
                w.opt_u64(r.limit.map(|l| l as u64));
                w.u64(r.byte_limit as u64);
                w.filter(r.filter.as_ref());
                w.bool(r.consistent);
                w.opt_u64(r.index.map(u64::from));
            }
            DataCall::Scan { table, request: r } => {
                w.u8(CALL_SCAN);
                w.str(table);
                w.u64(r.hash_start);
                w.u64(r.hash_end);
                w.opt_item(r.exclusive_start.as_ref());
                w.opt_u64(r.limit.map(|l| l as u64));
                w.u64(r.byte_limit as u64);
                w.filter(r.filter.as_ref());
                w.bool(r.consistent);
                w.opt_u64(r.index.map(u64::from));
            }
            DataCall::Write { table, command } => {
                w.u8(CALL_WRITE);
                w.str(table);
                let mut b = Vec::new();
                wire::encode_command(command, &mut b);
                w.bytes(&b);
            }
            DataCall::CollectionSize {
                table,
                partition_key,
            } => {
                w.u8(CALL_SIZE);
                w.str(table);
                w.value(partition_key);
            }
            DataCall::Stats { table, index } => {
                w.u8(CALL_STATS);
                w.str(table);
                w.opt_u64(index.map(u64::from));
            }
            DataCall::PartitionStats {
                table,
                partition,
                index,
            } => {
                w.u8(CALL_PARTITION_STATS);
                w.str(table);
                w.u64(*partition);
                w.opt_u64(index.map(u64::from));
            }
            DataCall::IndexActive { table, index } => {
                w.u8(CALL_INDEX_ACTIVE);
                w.str(table);
                w.u64(u64::from(*index));
            }
            DataCall::IndexBuilt {
                table,
                index,
                partition,
            } => {
                w.u8(CALL_INDEX_BUILT);
                w.str(table);
                w.u64(u64::from(*index));
                w.u64(*partition);
            }
            DataCall::Shard { start, end, call } => {
                w.u8(CALL_SHARD);
                w.u64(*start);
                w.u64(*end);
                w.0.extend_from_slice(&call.encode());
            }
            DataCall::TtlSettled {
                table,
                partition,
                attr,
            } => {
                w.u8(CALL_TTL_SETTLED);
                w.str(table);
                w.u64(*partition);
                w.bool(attr.is_some());
                w.str(attr.as_deref().unwrap_or_default());
            }
            DataCall::StreamShards {
                table,
                partition,
                stream,
            } => {
                w.u8(CALL_STREAM_SHARDS);
                w.str(table);
                w.u64(*partition);
                w.u64(u64::from(*stream));
            }
            DataCall::StreamRecords {
                table,
                partition,
                stream,
                epoch,
                from,
                limit,
            } => {
                w.u8(CALL_STREAM_RECORDS);
                w.str(table);
                w.u64(*partition);
                w.u64(u64::from(*stream));
                w.u64(*epoch);
                let (tag, seq) = match from {
                    RecordsFrom::TrimHorizon => (FROM_TRIM_HORIZON, 0),
                    RecordsFrom::Latest => (FROM_LATEST, 0),
                    RecordsFrom::At(s) => (FROM_AT, *s),
                    RecordsFrom::After(s) => (FROM_AFTER, *s),
                };
                w.u8(tag);
                w.u64(seq);
                w.u64(*limit);
            }
        }
        w.0
    }

    pub(crate) fn decode(b: &[u8]) -> Result<DataCall, String> {
        let mut r = Reader { b };
        if b.first() == Some(&CALL_SHARD) {
            r.u8()?;
            let (start, end) = (r.u64()?, r.u64()?);
            // One level only: the inner call is a Query or a Scan.
            let call = match DataCall::decode(r.b)? {
                call @ (DataCall::Query { .. } | DataCall::Scan { .. }) => call,
                _ => return Err("a shard call wraps a Query or a Scan".to_string()),
            };
            return Ok(DataCall::Shard {
                start,
                end,
                call: Box::new(call),
            });
        }
        let call = match r.u8()? {
            CALL_GET => DataCall::Get {
                table: r.str()?,
                key: r.item()?,
                consistent: r.bool()?,
            },
            tag @ (CALL_QUERY | CALL_QUERY_PREFIXED) => DataCall::Query {
                table: r.str()?,
                request: QueryRequest {
                    partition_key: r.value()?,
                    sort_prefix: if tag == CALL_QUERY_PREFIXED {
                        match r.value()? {
                            AttributeValue::L(values) => values,
                            _ => return Err("query sort prefix is not a list".to_string()),
                        }
                    } else {
                        Vec::new()
                    },
                    sort: r.sort()?,
                    forward: r.bool()?,
                    exclusive_start: r.opt_item()?,
                    limit: r.opt_usize()?,
                    byte_limit: r.usize()?,
                    filter: r.filter()?,
                    consistent: r.bool()?,
                    index: r.opt_index()?,
                },
            },
            CALL_SCAN => DataCall::Scan {
                table: r.str()?,
                request: ScanRequest {
                    hash_start: r.u64()?,
                    hash_end: r.u64()?,
                    exclusive_start: r.opt_item()?,
                    limit: r.opt_usize()?,
                    byte_limit: r.usize()?,
                    filter: r.filter()?,
                    consistent: r.bool()?,
                    index: r.opt_index()?,
                },
            },
            CALL_WRITE => DataCall::Write {
                table: r.str()?,
                command: wire::decode_command(r.bytes()?).map_err(|e| e.to_string())?,
            },
            CALL_SIZE => DataCall::CollectionSize {
                table: r.str()?,
                partition_key: r.value()?,
            },
            CALL_STATS => DataCall::Stats {
                table: r.str()?,
                index: r.opt_index()?,
            },
            CALL_PARTITION_STATS => DataCall::PartitionStats {
                table: r.str()?,
                partition: r.u64()?,
                index: r.opt_index()?,
            },
            CALL_INDEX_ACTIVE => DataCall::IndexActive {
                table: r.str()?,
                index: u32::try_from(r.u64()?).map_err(|e| e.to_string())?,
            },
            CALL_INDEX_BUILT => DataCall::IndexBuilt {
                table: r.str()?,
                index: u32::try_from(r.u64()?).map_err(|e| e.to_string())?,
                partition: r.u64()?,
            },
            CALL_TTL_SETTLED => DataCall::TtlSettled {
                table: r.str()?,
                partition: r.u64()?,
                attr: {
                    let some = r.bool()?;
                    let a = r.str()?;
                    some.then_some(a)
                },
            },
            CALL_STREAM_SHARDS => DataCall::StreamShards {
                table: r.str()?,
                partition: r.u64()?,
                stream: u32::try_from(r.u64()?).map_err(|e| e.to_string())?,
            },
            CALL_STREAM_RECORDS => DataCall::StreamRecords {
                table: r.str()?,
                partition: r.u64()?,
                stream: u32::try_from(r.u64()?).map_err(|e| e.to_string())?,
                epoch: r.u64()?,
                from: {
                    let tag = r.u8()?;
                    let seq = r.u64()?;
                    match tag {
                        FROM_TRIM_HORIZON => RecordsFrom::TrimHorizon,
                        FROM_LATEST => RecordsFrom::Latest,
                        FROM_AT => RecordsFrom::At(seq),
                        FROM_AFTER => RecordsFrom::After(seq),
                        tag => return Err(format!("unknown shard position {tag}")),
                    }
                },
                limit: r.u64()?,
            },
            tag => return Err(format!("unknown data call {tag}")),
        };
        r.finish()?;
        Ok(call)
    }
}

/// Encodes the result of a call.
pub(crate) fn encode_result(result: Result<DataReply, DataError>) -> Vec<u8> {
    let mut w = Writer::default();
    match result {
        Ok(reply) => {
            w.u8(0);
            match reply {
                DataReply::Item(item) => w.opt_item(item.as_ref()),
                DataReply::Page(page) => w.page(&page),
                DataReply::Applied(applied) => {
                    let mut b = Vec::new();
                    wire::encode_outcome(&Ok(applied), &mut b);
                    w.bytes(&b);
                }
                DataReply::Size(n) => w.u64(n),
                DataReply::Stats(s) => {
                    w.u64(s.item_count);
                    w.u64(s.size_bytes);
                }
                DataReply::Shards(shards, writing) => {
                    w.bool(writing);
                    w.u64(shards.len() as u64);
                    for s in &shards {
                        w.u64(s.epoch);
                        w.opt_u64(s.first_seq);
                        w.opt_u64(s.trimmed);
                        w.bool(s.closed.is_some());
                        if let Some(c) = &s.closed {
                            w.u64(c.last_seq);
                            w.u64(c.closed_ms);
                            w.u64(c.children.len() as u64);
                            for (p, e) in &c.children {
                                w.u64(*p);
                                w.u64(*e);
                            }
                        }
                    }
                }
                DataReply::Records(read) => {
                    w.opt_u64(read.next);
                    w.u64(read.records.len() as u64);
                    for rec in &read.records {
                        w.u64(rec.seq);
                        w.bytes(&rec.encode());
                    }
                }
            }
        }
        Err(e) => {
            w.u8(1);
            match e {
                DataError::TableNotFound(s) => {
                    w.u8(ERR_TABLE_NOT_FOUND);
                    w.str(&s);
                }
                DataError::TableExists(s) => {
                    w.u8(ERR_TABLE_EXISTS);
                    w.str(&s);
                }
                DataError::Conflict(s) => {
                    w.u8(ERR_CONFLICT);
                    w.str(&s);
                }
                DataError::IndexNotFound(s) => {
                    w.u8(ERR_INDEX_NOT_FOUND);
                    w.str(&s);
                }
                DataError::Apply(a) => {
                    w.u8(ERR_APPLY);
                    let mut b = Vec::new();
                    wire::encode_outcome(&Err(a), &mut b);
                    w.bytes(&b);
                }
                DataError::Internal(s) => {
                    w.u8(ERR_INTERNAL);
                    w.str(&s);
                }
                DataError::Unavailable(s) => {
                    w.u8(ERR_UNAVAILABLE);
                    w.str(&s);
                }
                DataError::Throttled(t) => {
                    w.u8(ERR_THROTTLED);
                    w.str(&t.reason);
                    w.str(&t.resource);
                }
                DataError::ShardNotFound(s) => {
                    w.u8(ERR_SHARD_NOT_FOUND);
                    w.str(&s);
                }
                DataError::Trimmed(s) => {
                    w.u8(ERR_TRIMMED);
                    w.str(&s);
                }
            }
        }
    }
    w.0
}

/// Decodes the result of a call of kind `call` (the reply's shape depends on it).
pub(crate) fn decode_result(
    call: &DataCall,
    b: &[u8],
) -> Result<Result<DataReply, DataError>, String> {
    let mut r = Reader { b };
    let result = if r.u8()? == 0 {
        Ok(match call {
            DataCall::Get { .. } => DataReply::Item(r.opt_item()?),
            DataCall::Query { .. } | DataCall::Scan { .. } | DataCall::Shard { .. } => {
                DataReply::Page(r.page()?)
            }
            DataCall::Write { .. } => match wire::decode_outcome(r.bytes()?) {
                Ok(Ok(applied)) => DataReply::Applied(applied),
                Ok(Err(_)) => return Err("an error outcome in a success reply".to_string()),
                Err(e) => return Err(e.to_string()),
            },
            DataCall::CollectionSize { .. }
            | DataCall::IndexActive { .. }
            | DataCall::IndexBuilt { .. }
            | DataCall::TtlSettled { .. } => DataReply::Size(r.u64()?),
            DataCall::Stats { .. } | DataCall::PartitionStats { .. } => {
                DataReply::Stats(TableStats {
                    item_count: r.u64()?,
                    size_bytes: r.u64()?,
                })
            }
            DataCall::StreamShards { .. } => {
                let writing = r.bool()?;
                DataReply::Shards(r.shards()?, writing)
            }
            DataCall::StreamRecords { .. } => DataReply::Records(r.records()?),
        })
    } else {
        Err(match r.u8()? {
            ERR_TABLE_NOT_FOUND => DataError::TableNotFound(r.str()?),
            ERR_TABLE_EXISTS => DataError::TableExists(r.str()?),
            ERR_CONFLICT => DataError::Conflict(r.str()?),
            ERR_INDEX_NOT_FOUND => DataError::IndexNotFound(r.str()?),
            ERR_APPLY => match wire::decode_outcome(r.bytes()?) {
                Ok(Err(e)) => DataError::Apply(e),
                Ok(Ok(_)) => return Err("a success outcome in an error reply".to_string()),
                Err(e) => return Err(e.to_string()),
            },
            ERR_INTERNAL => DataError::Internal(r.str()?),
            ERR_UNAVAILABLE => DataError::Unavailable(r.str()?),
            ERR_THROTTLED => DataError::Throttled(shoal_catalog::capacity::Throttled {
                reason: r.str()?,
                resource: r.str()?,
            }),
            ERR_SHARD_NOT_FOUND => DataError::ShardNotFound(r.str()?),
            ERR_TRIMMED => DataError::Trimmed(r.str()?),
            tag => return Err(format!("unknown data error {tag}")),
        })
    };
    r.finish()?;
    Ok(result)
}
