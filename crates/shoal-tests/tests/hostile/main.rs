//! Hostile requests: one authenticated request must never take a node down. Each module sends
//! the worst case of one kind to a running node and checks DynamoDB's answer, then that the node
//! still serves. A stack overflow aborts this whole test binary, so it cannot pass silently.
// Helpers outside `#[test]` functions panic on purpose: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod depth;
