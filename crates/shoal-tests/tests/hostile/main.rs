//! Hostile clients and requests against running Shoal nodes: each test shows that one kind of
//! abuse costs the node a bounded amount, gets DynamoDB's answer, and that valid requests keep
//! being answered. One module per area. A stack overflow aborts this whole test binary, so it
//! cannot pass silently.
// Helpers outside `#[test]` functions panic on purpose: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod depth;
mod http;
