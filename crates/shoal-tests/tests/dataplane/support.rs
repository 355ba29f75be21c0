//! Helpers local to the data-plane tests: table setup, bulk loading, paging loops and value
//! accessors.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::batch_write_item::builders::BatchWriteItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::ScanOutput;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, PutRequest, ScalarAttributeType, WriteRequest,
};
use shoal_tests::*;

/// Starts a node and creates table `name` with string partition key `pk` and, when given, a
/// sort key `sk` of type `sk`.
pub async fn node_with_table(name: &str, sk: Option<ScalarAttributeType>) -> (TestNode, Client) {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_table(
        &client,
        name,
        ("pk", ScalarAttributeType::S),
        sk.map(|t| ("sk", t)),
    )
    .await;
    (node, client)
}

/// A Query on `table` with key condition `cond` and `:p` bound to `p`; more values, filters and
/// options are added by the caller.
pub fn query_where(
    client: &Client,
    table: &str,
    cond: impl Into<String>,
    p: AttributeValue,
) -> QueryFluentBuilder {
    client
        .query()
        .table_name(table)
        .key_condition_expression(cond)
        .expression_attribute_values(":p", p)
}

/// A BatchWriteItem of `reqs` into `table`; more tables can be added by the caller.
pub fn batch_write(
    client: &Client,
    table: &str,
    reqs: Vec<WriteRequest>,
) -> BatchWriteItemFluentBuilder {
    client.batch_write_item().request_items(table, reqs)
}

/// A put request for `item`.
pub fn put_req(item: Item) -> WriteRequest {
    WriteRequest::builder()
        .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
        .build()
}

/// A delete request for `key`.
pub fn delete_req(key: Item) -> WriteRequest {
    WriteRequest::builder()
        .delete_request(DeleteRequest::builder().set_key(Some(key)).build().unwrap())
        .build()
}

/// Runs the query built by `build(exclusive_start_key)` page after page until no
/// `LastEvaluatedKey` is returned (at most 1000 pages); returns every page.
pub async fn query_pages(build: impl Fn(Option<Item>) -> QueryFluentBuilder) -> Vec<QueryOutput> {
    let mut pages = Vec::new();
    let mut start = None;
    for _ in 0..1000 {
        let out = match build(start.clone()).send().await {
            Ok(o) => o,
            Err(e) => panic!("Query page {}: {}", pages.len(), describe_error(&e)),
        };
        start = out.last_evaluated_key.clone();
        pages.push(out);
        if start.is_none() {
            return pages;
        }
    }
    panic!("Query did not finish within 1000 pages");
}

/// [`query_pages`] for Scan.
pub async fn scan_pages(build: impl Fn(Option<Item>) -> ScanFluentBuilder) -> Vec<ScanOutput> {
    let mut pages = Vec::new();
    let mut start = None;
    for _ in 0..1000 {
        let out = match build(start.clone()).send().await {
            Ok(o) => o,
            Err(e) => panic!("Scan page {}: {}", pages.len(), describe_error(&e)),
        };
        start = out.last_evaluated_key.clone();
        pages.push(out);
        if start.is_none() {
            return pages;
        }
    }
    panic!("Scan did not finish within 1000 pages");
}

/// All items of all query pages, in order.
pub fn query_items(pages: &[QueryOutput]) -> Vec<Item> {
    pages
        .iter()
        .flat_map(|p| p.items.clone().unwrap_or_default())
        .collect()
}

/// All items of all scan pages, in order.
pub fn scan_items(pages: &[ScanOutput]) -> Vec<Item> {
    pages
        .iter()
        .flat_map(|p| p.items.clone().unwrap_or_default())
        .collect()
}

/// The `S` value of attribute `name`.
pub fn str_of<'a>(it: &'a Item, name: &str) -> &'a str {
    match it.get(name) {
        Some(AttributeValue::S(v)) => v,
        other => panic!("attribute {name} is not a string: {other:?} in {it:?}"),
    }
}

/// The `N` value of attribute `name`, as an integer.
pub fn int_of(it: &Item, name: &str) -> i64 {
    match it.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .unwrap_or_else(|_| panic!("attribute {name} = {v} is not an integer")),
        other => panic!("attribute {name} is not a number: {other:?} in {it:?}"),
    }
}

/// The integer sort keys (`sk`) of `items`, in order.
pub fn sort_keys(items: &[Item]) -> Vec<i64> {
    items.iter().map(|i| int_of(i, "sk")).collect()
}

/// The string sort keys (`sk`) of `items`, in order.
pub fn str_sort_keys(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| str_of(i, "sk").to_string()).collect()
}

/// The set of `(pk, sk)` keys of `items` (sk rendered as its text), asserting none repeats.
pub fn distinct_keys(items: &[Item]) -> BTreeSet<(String, String)> {
    let mut seen = BTreeSet::new();
    for it in items {
        let pk = str_of(it, "pk").to_string();
        let sk = match it.get("sk") {
            Some(AttributeValue::N(v)) | Some(AttributeValue::S(v)) => v.clone(),
            None => String::new(),
            other => panic!("unexpected sort key {other:?}"),
        };
        assert!(
            seen.insert((pk.clone(), sk.clone())),
            "item ({pk}, {sk}) returned more than once"
        );
    }
    seen
}

/// The key `{pk, sk}` with a numeric sort key.
pub fn key_n(pk: &str, sk: i64) -> Item {
    item([("pk", s(pk)), ("sk", n(sk.to_string()))])
}

/// The key `{pk}` of a hash-only table.
pub fn key_s(pk: &str) -> Item {
    item([("pk", s(pk))])
}
