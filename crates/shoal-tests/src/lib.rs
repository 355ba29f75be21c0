//! Test harness for Shoal: start nodes, talk to them the way users do, check what DynamoDB
//! would answer.
//!
//! Principal types:
//! - [`TestNode`]: a node started in-process (`shoal_node::Node::start`) on `127.0.0.1:0` in a
//!   temporary directory, with a fixed admin key ([`ADMIN_KEY_ID`], [`ADMIN_SECRET`]);
//!   [`TestNode::client`] returns an `aws_sdk_dynamodb::Client` for it (retries disabled).
//! - [`ProcessNode`]: the real `shoal` binary as a child process (stdout/stderr captured,
//!   health-checked, `kill` / `terminate` / `restart`).
//! - [`RawRequest`], [`RawConnection`], [`RawResponse`]: hand-built HTTP/1.1 requests, optionally
//!   signed with the official `aws-sigv4` signer, for protocol and authentication tests.
//! - [`ApiError`], [`assert_code`], [`assert_validation`]: the DynamoDB error a call failed with.
//! - Value constructors ([`s`], [`n`], [`item`], ...) and `must_*` helpers ([`must_put`],
//!   [`must_get`], [`must_create_hash_table`], ...).
//!
//! ```ignore
//! let node = TestNode::start().await;
//! let client = node.client();
//! must_create_hash_table(&client, "users").await;
//! must_put(&client, "users", item([("pk", s("u1")), ("age", n("42"))])).await;
//! assert!(must_get(&client, "users", item([("pk", s("u1"))])).await.is_some());
//! ```
//!
//! The harness panics on failure (that is how a test fails), so `expect` is allowed here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod attrs;
mod errors;
mod helpers;
pub mod moto;
mod node;
mod process;
mod raw;

pub use attrs::{
    Item, assert_same_item, b, boolean, bs, item, list, map, n, nested_maps, ns, null, s,
    same_item, same_number, same_value, ss,
};
pub use errors::{ApiError, api_error, assert_code, assert_validation, describe_error};
pub use helpers::{
    assert_item_eq, assert_no_plaintext, attr_def, files_under, key_elem, must_batch_put,
    must_create_hash_range_table, must_create_hash_table, must_create_table, must_delete, must_get,
    must_list_all_tables, must_put, must_wait_active,
};
pub use node::{
    ADMIN_KEY_ID, ADMIN_SECRET, CLUSTER_ENV, CLUSTER_FORM_TIMEOUT, REGION, TestNode, client_for,
    cluster_mode, node_config, skip_in_cluster_mode, streams_client_for, test_cluster_size,
};
pub use process::{
    ProcessNode, ProcessNodeBuilder, STARTUP_TIMEOUT, free_addr, health_ok, parse_printed_key,
    run_command,
};
pub use raw::{RAW_TIMEOUT, RawConnection, RawRequest, RawResponse, Signing, TARGET_PREFIX, crc32};
