//! TiKV-style `must_*` helpers: one call per step of a scenario, panicking with context when the
//! server does not do what DynamoDB would.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PutRequest, ScalarAttributeType,
    TableDescription, TableStatus, WriteRequest,
};

use crate::attrs::Item;
use crate::errors::describe_error;

/// `AttributeDefinition` shorthand.
pub fn attr_def(name: &str, t: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(t)
        .build()
        .expect("attribute definition")
}

/// `KeySchemaElement` shorthand.
pub fn key_elem(name: &str, t: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(t)
        .build()
        .expect("key schema element")
}

/// Creates an on-demand table with partition key `hash` and optional sort key `range`, then
/// waits until it is `ACTIVE`.
///
/// # Panics
/// If creation fails or the table does not become active within 10 s.
pub async fn must_create_table(
    client: &Client,
    name: &str,
    hash: (&str, ScalarAttributeType),
    range: Option<(&str, ScalarAttributeType)>,
) -> TableDescription {
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr_def(hash.0, hash.1))
        .key_schema(key_elem(hash.0, KeyType::Hash));
    if let Some((rname, rtype)) = range {
        req = req
            .attribute_definitions(attr_def(rname, rtype))
            .key_schema(key_elem(rname, KeyType::Range));
    }
    if let Err(e) = req.send().await {
        panic!("CreateTable {name}: {}", describe_error(&e));
    }
    must_wait_active(client, name).await
}

/// Creates table `name` with a string partition key `pk` and waits until it is active.
pub async fn must_create_hash_table(client: &Client, name: &str) -> TableDescription {
    must_create_table(client, name, ("pk", ScalarAttributeType::S), None).await
}

/// Creates table `name` with string partition key `pk` and number sort key `sk`.
pub async fn must_create_hash_range_table(client: &Client, name: &str) -> TableDescription {
    must_create_table(
        client,
        name,
        ("pk", ScalarAttributeType::S),
        Some(("sk", ScalarAttributeType::N)),
    )
    .await
}

/// Polls DescribeTable until the table is `ACTIVE` (at most 10 s) and returns its description.
///
/// # Panics
/// If DescribeTable fails or the table stays in another state.
pub async fn must_wait_active(client: &Client, name: &str) -> TableDescription {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = match client.describe_table().table_name(name).send().await {
            Ok(o) => o,
            Err(e) => panic!("DescribeTable {name}: {}", describe_error(&e)),
        };
        let table = out.table.expect("DescribeTable returned no Table");
        if table.table_status == Some(TableStatus::Active) {
            return table;
        }
        assert!(
            Instant::now() < deadline,
            "table {name} not ACTIVE after 10 s: {:?}",
            table.table_status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Puts `item` into `table`.
///
/// # Panics
/// If PutItem fails.
pub async fn must_put(client: &Client, table: &str, item: Item) {
    if let Err(e) = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
    {
        panic!("PutItem into {table}: {}", describe_error(&e));
    }
}

/// Writes `items` into `table` with BatchWriteItem, 25 at a time.
///
/// # Panics
/// If a BatchWriteItem fails or leaves unprocessed items.
pub async fn must_batch_put(client: &Client, table: &str, items: Vec<Item>) {
    for chunk in items.chunks(25) {
        let reqs: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item.clone()))
                            .build()
                            .expect("put request"),
                    )
                    .build()
            })
            .collect();
        let out = match client
            .batch_write_item()
            .request_items(table, reqs)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => panic!("BatchWriteItem into {table}: {}", describe_error(&e)),
        };
        assert!(
            out.unprocessed_items.unwrap_or_default().is_empty(),
            "BatchWriteItem left unprocessed items"
        );
    }
}

/// Gets the item with `key` from `table` with a strongly consistent read; `None` if absent.
///
/// # Panics
/// If GetItem fails.
pub async fn must_get(client: &Client, table: &str, key: Item) -> Option<Item> {
    match client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
    {
        Ok(out) => out.item,
        Err(e) => panic!("GetItem from {table}: {}", describe_error(&e)),
    }
}

/// Asserts that the item with `key` reads back exactly as `expected`.
///
/// # Panics
/// If it does not.
#[track_caller]
pub fn assert_item_eq(actual: Option<&Item>, expected: &Item) {
    match actual {
        Some(a) => assert_eq!(a, expected, "item differs"),
        None => panic!("item not found, expected {expected:?}"),
    }
}

/// Deletes the item with `key` from `table`.
///
/// # Panics
/// If DeleteItem fails.
pub async fn must_delete(client: &Client, table: &str, key: Item) {
    if let Err(e) = client
        .delete_item()
        .table_name(table)
        .set_key(Some(key))
        .send()
        .await
    {
        panic!("DeleteItem from {table}: {}", describe_error(&e));
    }
}

/// Lists all table names, following `LastEvaluatedTableName`.
///
/// # Panics
/// If ListTables fails.
pub async fn must_list_all_tables(client: &Client) -> Vec<String> {
    let mut names = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let out = match client
            .list_tables()
            .set_exclusive_start_table_name(start.clone())
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => panic!("ListTables: {}", describe_error(&e)),
        };
        names.extend(out.table_names.unwrap_or_default());
        match out.last_evaluated_table_name {
            Some(last) => start = Some(last),
            None => return names,
        }
    }
}

/// Every file under `dir`, recursively.
///
/// # Panics
/// If a directory cannot be read.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Checks that no file under `dir` (databases, WAL, journal and shared-memory files, key files,
/// everything) contains any of `canaries` in its raw bytes; returns how many files were read.
///
/// # Panics
/// Naming the canary and the file, if one is found.
pub fn assert_no_plaintext(dir: &std::path::Path, canaries: &[&str]) -> usize {
    let files = files_under(dir);
    for path in &files {
        let bytes = std::fs::read(path).expect("read file");
        for canary in canaries {
            let found = bytes.windows(canary.len()).any(|w| w == canary.as_bytes());
            assert!(!found, "plaintext {canary:?} found in {}", path.display());
        }
    }
    files.len()
}
