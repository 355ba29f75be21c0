//! Hostile clients against real Shoal processes: each test shows that one kind of abuse costs the
//! node a bounded amount and that valid requests keep being answered. One module per area.
// Helpers outside `#[test]` functions panic on purpose: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http;
