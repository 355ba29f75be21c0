//! Fail-stop: the first failure of something the node cannot serve without (the Raft driver,
//! the reconciler, placement, the key-rotation schedule, the API server) is recorded in [`FailStop`]. From then
//! on `GET /health` and `GET /` answer 503 with the reason, `GET /status` shows it, requests
//! that need the failed part get a retryable error, and the binary exits non-zero after a short
//! grace so its supervisor (systemd, Kubernetes) restarts it. A node never keeps running as a
//! zombie that looks healthy while every write fails.
//!
//! What reaches `/health` and `/status` (both unauthenticated) names the failed part and the
//! kind of failure only; a panic's message, which may quote data, goes to the node's log.

use std::sync::Arc;

use serde::Serialize;
use shoal_raft::{DriverExit, RaftHandle};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

/// What failed, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The part that failed (`raft driver`, `reconciler`, ...).
    pub component: String,
    /// What happened to it (no panic message: see the node's log).
    pub reason: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.component, self.reason)
    }
}

/// The node's first essential failure, if any (cheap to clone; shared by every part).
#[derive(Clone, Debug)]
pub(crate) struct FailStop(Arc<watch::Sender<Option<Failure>>>);

impl Default for FailStop {
    fn default() -> Self {
        FailStop(Arc::new(watch::Sender::new(None)))
    }
}

impl FailStop {
    /// Records a failure of `component` (only the first one is kept: later ones are usually its
    /// consequences) and logs it at error level.
    pub(crate) fn record(&self, component: &str, reason: impl Into<String>) {
        let reason = reason.into();
        tracing::error!(
            component,
            reason = %reason,
            "an essential part of this node failed: the node reports itself unhealthy and stops"
        );
        self.0.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(Failure {
                component: component.to_string(),
                reason,
                at: crate::catalog::now_secs(),
            });
            true
        });
    }

    /// The recorded failure; `None` while the node is healthy.
    pub(crate) fn current(&self) -> Option<Failure> {
        self.0.borrow().clone()
    }

    /// Resolves with the first failure, once there is one.
    pub(crate) async fn failed(&self) -> Failure {
        let mut rx = self.0.subscribe();
        loop {
            if let Some(f) = rx.borrow_and_update().clone() {
                return f;
            }
            if rx.changed().await.is_err() {
                // Unreachable while `self` holds the sender.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// The reason recorded for a panicked essential task (its message goes to the log only).
pub(crate) const PANICKED: &str = "the task panicked (the panic message is in the node's log)";

/// The node-level description of why the Raft driver ended.
pub(crate) fn driver_failure(exit: &DriverExit) -> Option<String> {
    match exit {
        DriverExit::Shutdown => None,
        DriverExit::LogFailed(why) => Some(format!("the Raft log write failed ({why})")),
        DriverExit::Panicked(_) => {
            Some("the Raft driver panicked (the panic message is in the node's log)".to_string())
        }
    }
}

/// Records the Raft driver's end as a failure unless it was asked to stop.
pub(crate) fn watch_raft(raft: RaftHandle, fail: FailStop) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Some(reason) = driver_failure(&raft.exited().await) {
            fail.record("raft driver", reason);
        }
    })
}

/// Aborts a task when dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches the essential task `task`: a panic in it is recorded as a failure of `name`.
/// Aborting the returned handle aborts `task` too (as shutdown does).
pub(crate) fn supervise(
    name: &'static str,
    fail: FailStop,
    task: JoinHandle<()>,
) -> JoinHandle<()> {
    let guard = AbortOnDrop(task.abort_handle());
    tokio::spawn(async move {
        let _guard = guard;
        if let Err(e) = task.await
            && e.is_panic()
        {
            fail.record(name, PANICKED);
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_panicking_essential_task_is_recorded_once_and_abort_reaches_the_task() {
        let fail = FailStop::default();
        assert_eq!(fail.current(), None);
        let boom = tokio::spawn(async { panic!("essential task bug") });
        let watcher = supervise("reconciler", fail.clone(), boom);
        let failure = tokio::time::timeout(Duration::from_secs(5), fail.failed())
            .await
            .unwrap_or_else(|_| panic!("the panic was not recorded"));
        assert_eq!(failure.component, "reconciler");
        assert!(failure.reason.contains("panicked"), "{failure}");
        assert!(
            !failure.reason.contains("essential task bug"),
            "the panic message stays in the log: {failure}"
        );
        let _ = watcher.await;
        // A later failure does not replace the first.
        fail.record("placement", "something else");
        assert_eq!(
            fail.current().map(|f| f.component),
            Some("reconciler".into())
        );

        // A task ending normally is no failure; aborting the watcher aborts the task.
        let quiet = FailStop::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let long = tokio::spawn(async move {
            let _tx = tx;
            std::future::pending::<()>().await;
        });
        let watcher = supervise("placement", quiet.clone(), long);
        watcher.abort();
        assert!(
            tokio::time::timeout(Duration::from_secs(5), rx)
                .await
                .is_ok(),
            "the supervised task still runs after its watcher was aborted"
        );
        assert_eq!(quiet.current(), None, "an aborted task is not a failure");
    }
}
