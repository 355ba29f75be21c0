//! Helpers for the index tests: index definitions, paging loops over a table or an index, and
//! polling until an eventually consistent GSI shows what it should.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, GlobalSecondaryIndex, KeyType, LocalSecondaryIndex, Projection,
    ProjectionType, ScalarAttributeType, TableDescription,
};
use shoal_tests::*;

/// A projection: `ALL`, `KEYS_ONLY`, or `INCLUDE` of `include` when non-empty.
pub fn projection(kind: ProjectionType, include: &[&str]) -> Projection {
    let mut p = Projection::builder().projection_type(kind);
    for a in include {
        p = p.non_key_attributes(*a);
    }
    p.build()
}

/// An LSI on the table's partition key `pk` with sort key `sk_attr`.
pub fn lsi(name: &str, sk_attr: &str, proj: Projection) -> LocalSecondaryIndex {
    LocalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key_elem("pk", KeyType::Hash))
        .key_schema(key_elem(sk_attr, KeyType::Range))
        .projection(proj)
        .build()
        .expect("LocalSecondaryIndex")
}

/// A GSI with partition key `hash` and optional sort key `range`.
pub fn gsi(name: &str, hash: &str, range: Option<&str>, proj: Projection) -> GlobalSecondaryIndex {
    let mut g = GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key_elem(hash, KeyType::Hash))
        .projection(proj);
    if let Some(r) = range {
        g = g.key_schema(key_elem(r, KeyType::Range));
    }
    g.build().expect("GlobalSecondaryIndex")
}

/// Creates an on-demand table with key `pk` (S) and `sk` (when given), the attribute
/// definitions `attrs` (besides the table keys) and the given indexes; waits until it is active.
pub async fn must_create_indexed_table(
    client: &Client,
    name: &str,
    sk: Option<(&str, ScalarAttributeType)>,
    attrs: &[(&str, ScalarAttributeType)],
    lsis: Vec<LocalSecondaryIndex>,
    gsis: Vec<GlobalSecondaryIndex>,
) -> TableDescription {
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .key_schema(key_elem("pk", KeyType::Hash));
    if let Some((sk, t)) = sk {
        req = req
            .attribute_definitions(attr_def(sk, t))
            .key_schema(key_elem(sk, KeyType::Range));
    }
    for (a, t) in attrs {
        req = req.attribute_definitions(attr_def(a, t.clone()));
    }
    if !lsis.is_empty() {
        req = req.set_local_secondary_indexes(Some(lsis));
    }
    if !gsis.is_empty() {
        req = req.set_global_secondary_indexes(Some(gsis));
    }
    if let Err(e) = req.send().await {
        panic!("CreateTable {name}: {}", describe_error(&e));
    }
    must_wait_active(client, name).await
}

/// Every item of a Query (all pages), with `index` (or the table) and `limit` per page.
// The Query's own parameters, spelled out at each call: clearer than a builder here.
#[allow(clippy::too_many_arguments)]
pub async fn query_all(
    client: &Client,
    table: &str,
    index: Option<&str>,
    key_condition: &str,
    values: &[(&str, AttributeValue)],
    forward: bool,
    limit: Option<i32>,
    consistent: bool,
) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    for page in 0..10_000 {
        let mut req = client
            .query()
            .table_name(table)
            .set_index_name(index.map(str::to_string))
            .key_condition_expression(key_condition)
            .scan_index_forward(forward)
            .set_limit(limit)
            .consistent_read(consistent)
            .set_exclusive_start_key(start.clone());
        for (k, v) in values {
            req = req.expression_attribute_values(*k, v.clone());
        }
        let out = match req.send().await {
            Ok(o) => o,
            Err(e) => panic!(
                "Query {table}/{index:?} page {page}: {}",
                describe_error(&e)
            ),
        };
        let got = out.items.unwrap_or_default();
        if let Some(l) = limit {
            assert!(got.len() <= l as usize, "page larger than Limit");
        }
        items.extend(got);
        start = out.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
    panic!("Query did not finish within 10000 pages");
}

/// Every item of a Scan of `index` (or the table), paged by `limit`, one segment of
/// `segments` (or the whole hash space when `None`).
pub async fn scan_all(
    client: &Client,
    table: &str,
    index: Option<&str>,
    limit: Option<i32>,
    segment: Option<(i32, i32)>,
) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    for page in 0..10_000 {
        let mut req = client
            .scan()
            .table_name(table)
            .set_index_name(index.map(str::to_string))
            .set_limit(limit)
            .set_exclusive_start_key(start.clone());
        if let Some((seg, total)) = segment {
            req = req.segment(seg).total_segments(total);
        }
        let out = match req.send().await {
            Ok(o) => o,
            Err(e) => panic!("Scan {table}/{index:?} page {page}: {}", describe_error(&e)),
        };
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
    panic!("Scan did not finish within 10000 pages");
}

/// The `S` attribute `name` of `it`.
pub fn str_of<'a>(it: &'a Item, name: &str) -> &'a str {
    match it.get(name) {
        Some(AttributeValue::S(v)) => v,
        other => panic!("attribute {name} is not a string: {other:?} in {it:?}"),
    }
}

/// The attribute names of `it`, sorted.
pub fn names(it: &Item) -> Vec<String> {
    let mut v: Vec<String> = it.keys().cloned().collect();
    v.sort();
    v
}

/// A canonical text form of an item (sorted attributes), to compare sets of items.
pub fn canon(it: &Item) -> String {
    let sorted: BTreeMap<&String, String> = it.iter().map(|(k, v)| (k, format!("{v:?}"))).collect();
    format!("{sorted:?}")
}

/// Canonical forms of `items`, asserting none repeats.
pub fn canon_set(items: &[Item], what: &str) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for it in items {
        assert!(set.insert(canon(it)), "{what}: item returned twice: {it:?}");
    }
    set
}

/// Polls `check` every 10 ms until it returns `Ok`, failing with its last `Err` after
/// `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => {
                panic!("{what}: still not true after {within:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The description of index `index` of `table` (`None` when it is gone).
pub async fn describe_gsi(
    client: &Client,
    table: &str,
    index: &str,
) -> Option<aws_sdk_dynamodb::types::GlobalSecondaryIndexDescription> {
    let out = match client.describe_table().table_name(table).send().await {
        Ok(o) => o,
        Err(e) => panic!("DescribeTable {table}: {}", describe_error(&e)),
    };
    out.table
        .and_then(|t| t.global_secondary_indexes)
        .unwrap_or_default()
        .into_iter()
        .find(|g| g.index_name() == Some(index))
}
