//! [`DriverExit`]: why a node's Raft driver thread ended, and the test-only fault injection that
//! makes it panic.

/// Why the driver thread of a [`crate::RaftNode`] ended. Anything but [`DriverExit::Shutdown`]
/// is a failure: the node can no longer replicate, commit or apply anything, and must be
/// restarted (fail-stop).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriverExit {
    /// [`crate::RaftNode::shutdown`] (or dropping the node) asked it to stop.
    Shutdown,
    /// A write to the durable log failed (a full disk, an I/O error); the message says why.
    LogFailed(String),
    /// The driver panicked (a bug): the panic message. Pending and later calls fail with
    /// [`crate::RaftError::Stopped`].
    Panicked(String),
}

impl DriverExit {
    /// True for the failures (not a requested shutdown).
    pub fn is_failure(&self) -> bool {
        !matches!(self, DriverExit::Shutdown)
    }
}

impl std::fmt::Display for DriverExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverExit::Shutdown => f.write_str("the Raft driver was shut down"),
            DriverExit::LogFailed(why) => write!(f, "the Raft log write failed: {why}"),
            DriverExit::Panicked(why) => write!(f, "the Raft driver panicked: {why}"),
        }
    }
}

/// The text of a caught panic's payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Test-only fault injection, compiled into debug builds only (release builds have no trigger
/// at all, so nothing ships that could stop a node from outside).
///
/// With `SHOAL_FAILPOINT_RAFT_PANIC_FILE=PATH` in the environment, the driver panics on the
/// first tick after `PATH` exists.
#[cfg(debug_assertions)]
pub(crate) mod failpoint {
    use std::path::PathBuf;

    /// The environment variable naming the trigger file.
    pub(crate) const RAFT_PANIC_FILE: &str = "SHOAL_FAILPOINT_RAFT_PANIC_FILE";

    /// The trigger file, if the environment names one.
    pub(crate) fn raft_panic_file() -> Option<PathBuf> {
        std::env::var_os(RAFT_PANIC_FILE)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }
}
