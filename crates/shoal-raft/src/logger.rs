//! raft-rs logs through slog: forward its warnings and errors to `tracing`, drop the rest.

use slog::{Drain, Level, OwnedKVList, Record};

/// A slog drain that forwards warnings and errors to `tracing`.
struct TracingDrain;

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, _values: &OwnedKVList) -> Result<(), slog::Never> {
        match record.level() {
            Level::Critical | Level::Error => tracing::error!(target: "raft", "{}", record.msg()),
            Level::Warning => tracing::warn!(target: "raft", "{}", record.msg()),
            _ => {}
        }
        Ok(())
    }
}

/// The logger handed to every RawNode.
pub(crate) fn logger() -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!())
}
