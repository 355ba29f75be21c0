//! Durability of the real `shoal` binary under bad conditions:
//! - `sigkill`: SIGKILL at random moments during a concurrent write workload, restart, and
//!   check every acknowledged write (and nothing the client was told failed);
//! - `corruption`: damaged partition files are reported as corrupt, never read as data;
//! - `disk_full`: a full disk (real ENOSPC on a small tmpfs) fails writes clearly, loses
//!   nothing acknowledged, and the node recovers once there is space;
//! - `gsi`: SIGKILL while writing to a table with a global secondary index; after the restart
//!   the index converges to exactly the table's items (nothing lost, duplicated or stale).
//!
//! The binary is this package's (`CARGO_BIN_EXE_shoal`), so `cargo test -p shoal --test crash`
//! builds it first.
// Helpers outside `#[test]` functions panic on purpose: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corruption;
mod disk_full;
mod gsi;
mod sigkill;
mod support;
