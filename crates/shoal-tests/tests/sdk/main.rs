//! Integration tests: an in-process Shoal node on a real socket, driven by the official AWS SDK
//! for Rust and by raw HTTP. One module per area; each test starts its own node.
//!
//! Expected behaviour (error types, messages, response fields) is DynamoDB's, from the spec.
// Helpers outside `#[test]` functions panic on purpose: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod at_rest;
mod auth;
mod concurrency;
mod items;
mod key_dir;
mod partiql;
mod partiql_transaction;
mod persistence;
mod protocol;
mod sse;
mod streams;
mod tables;
mod throughput_settings;
mod transactions;
mod types;
mod validation;
