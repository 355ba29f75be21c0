//! Operating a node safely (issue #12, "one request never takes a node down"), against real
//! `shoal` processes:
//! - `fail_stop`: a Raft driver panic (injected through the debug-build-only failpoint) makes the
//!   node unhealthy, visible in `/health`, `/` and `/status`, fails requests with a retryable
//!   error, and exits with code 70 after a short grace; the restart loses nothing.
//! - `limits`: the node raises its open-files soft limit to the hard limit and disables core
//!   dumps (read from `/proc/<pid>/limits`).
//! - `secrets`: with every log level on (`SHOAL_LOG=trace`), neither the admin secret nor a join
//!   token nor a created access key's secret appears in the node's log.
//! - `join_tokens`: tokens created through any member are valid cluster-wide, a new one revokes
//!   the previous, expired and revoked tokens are refused with a clear message (and a warning
//!   on the member), and a token passed by file or environment admits a node.
//!
//! `cargo test -p shoal-cluster --test ops` (builds the debug `shoal` binary first).

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fail_stop;
mod join_tokens;
mod limits;
mod secrets;
mod support;

/// The process-level tests are run one at a time (they start several processes each and the
/// machine has two cores).
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
