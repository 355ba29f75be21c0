//! Data-plane integration tests: Query, Scan, BatchGetItem/BatchWriteItem, expressions end to
//! end, ReturnValues and ReturnConsumedCapacity, driven by the official AWS SDK for Rust against
//! an in-process Shoal node. Each test starts its own node.
//!
//! Expected behaviour (results, error types and messages) is DynamoDB's, from the spec.
// Helpers outside `#[test]` functions panic on purpose: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batch;
mod capacity;
mod expressions;
mod legacy;
mod query;
mod return_values;
mod scan;
mod support;
mod throttling;
mod ttl;
