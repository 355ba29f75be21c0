//! Process limits set at start: no core dumps, and as many open files as the hard limit allows.
//!
//! - `RLIMIT_CORE` soft and hard limits become 0, and the process is made non-dumpable
//!   (`prctl(PR_SET_DUMPABLE, 0)`): a crash leaves no core file holding keys, secrets or item
//!   data, and other processes of the same user can neither attach a debugger nor read the
//!   node's memory or `/proc/<pid>/environ` (where `SHOAL_JOIN_TOKEN` would be). Root (or
//!   `CAP_SYS_PTRACE`) still can, so profile a node as root, or set `SHOAL_ALLOW_DEBUGGING=1`,
//!   which keeps the process dumpable (core dumps stay off).
//! - `RLIMIT_NOFILE`'s soft limit is raised to its hard limit: every client connection, peer
//!   connection and partition file is a descriptor, and distributions start processes with a
//!   soft limit of 1024.
//!
//! Failures are reported, never fatal: a node that cannot change a limit still runs.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// What [`apply`] did, for the log (logging starts after the limits are set).
#[derive(Debug, Default)]
pub struct Applied {
    /// `RLIMIT_NOFILE` (soft, hard) after the change.
    pub nofile: Option<(u64, u64)>,
    /// `RLIMIT_NOFILE`'s soft limit before the change.
    pub nofile_before: Option<u64>,
    /// Whether the process is non-dumpable now.
    pub non_dumpable: bool,
    /// Whether core dumps are off (`RLIMIT_CORE` 0/0).
    pub no_core: bool,
    /// What could not be done.
    pub problems: Vec<String>,
}

/// The environment variable that keeps the process dumpable (for debuggers and profilers).
pub const ALLOW_DEBUGGING: &str = "SHOAL_ALLOW_DEBUGGING";

/// Turns core dumps off and makes the process non-dumpable (unless [`ALLOW_DEBUGGING`] is
/// `1`). For every command: admin commands handle secrets too.
pub fn disable_core_dumps(applied: &mut Applied) {
    match setrlimit(Resource::RLIMIT_CORE, 0, 0) {
        Ok(()) => applied.no_core = true,
        Err(e) => applied
            .problems
            .push(format!("cannot disable core dumps (RLIMIT_CORE): {e}")),
    }
    if std::env::var(ALLOW_DEBUGGING).is_ok_and(|v| v == "1") {
        return;
    }
    match nix::sys::prctl::set_dumpable(false) {
        Ok(()) => applied.non_dumpable = true,
        Err(e) => applied.problems.push(format!(
            "cannot make the process non-dumpable (PR_SET_DUMPABLE): {e}"
        )),
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit.
pub fn raise_nofile(applied: &mut Applied) {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => {
            applied
                .problems
                .push(format!("cannot read RLIMIT_NOFILE: {e}"));
            return;
        }
    };
    applied.nofile_before = Some(soft);
    if soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        applied.problems.push(format!(
            "cannot raise RLIMIT_NOFILE from {soft} to {hard}: {e}"
        ));
    }
    applied.nofile = getrlimit(Resource::RLIMIT_NOFILE).ok();
}

impl Applied {
    /// Logs the outcome (call once logging is set up).
    pub fn log(&self) {
        if let Some((soft, hard)) = self.nofile {
            tracing::info!(
                soft,
                hard,
                before = self.nofile_before.unwrap_or(soft),
                "open files limit (RLIMIT_NOFILE)"
            );
        }
        tracing::info!(
            core_dumps = if self.no_core { "off" } else { "unchanged" },
            dumpable = !self.non_dumpable,
            "core dumps"
        );
        for p in &self.problems {
            tracing::warn!("{p}");
        }
    }
}
