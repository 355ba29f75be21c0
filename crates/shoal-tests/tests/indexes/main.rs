//! Secondary indexes end to end, driven by the AWS SDK for Rust against in-process nodes:
//! local indexes (strongly consistent, every projection), global indexes (eventually consistent,
//! sparse, paging, parallel scan, restart), online creation and deletion of global indexes, and
//! the GSI propagation delay on an idle node.
// Helpers outside `#[test]` functions panic on purpose: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod at_rest;
mod gsi;
mod latency;
mod lsi;
mod multi_key;
mod online;
mod support;
mod transactions;
mod validation;
