//! Group commit: one queue per partition, so concurrent writes share one fsync.
//!
//! A write pushes its command and a reply channel onto its partition's [`CommitQueue`]. If no
//! committer is running for that partition, the writer starts one on the blocking pool; the
//! committer repeatedly takes everything queued (at most [`MAX_BATCH`] commands), applies it
//! with [`Partition::apply_batch`] (one engine write, one fsync) and answers each writer, until
//! the queue is empty. While one batch is being fsync'd the next one accumulates, so throughput
//! grows with concurrency instead of being capped at one fsync per write.
//!
//! No writer is answered before the engine write of its batch returned: an acknowledged write
//! is durable. A committer that panics or is never run (the runtime shutting down) hands the
//! queue on through a drop guard, so requests never wait on a committer that is gone.
//!
//! After each batch the partition's GSI [`Shipper`] is poked (when the table has GSIs), so
//! outbox records the batch wrote reach the index partitions without waiting for a timer.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use shoal_api::backend::BackendError;
use shoal_storage::{Applied, ApplyError, Command, Partition, StorageError};
use tokio::sync::oneshot;

use crate::gsi::Shipper;

/// Most commands applied in one batch (one engine transaction).
pub(crate) const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Applied, ApplyError>>;

/// The group-commit queue of one partition replica.
pub(crate) struct CommitQueue {
    partition: Arc<Partition>,
    /// The partition file, named in storage errors.
    path: Arc<Path>,
    /// Poked after every batch, so GSI outbox records are shipped at once.
    shipper: Arc<Shipper>,
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    pending: VecDeque<(Command, Reply)>,
    /// True while a committer owns the queue (is running or scheduled to run).
    committing: bool,
}

/// Why a write got no result from its committer.
#[derive(Debug, thiserror::Error)]
#[error("the write's outcome is unknown: its group commit stopped before answering")]
pub(crate) struct CommitAborted;

impl CommitQueue {
    /// A queue that applies commands to `partition` (stored in the file `path`). It must be the
    /// only writer of `partition` (it numbers commands from the partition's applied index).
    pub(crate) fn new(
        partition: Arc<Partition>,
        path: Arc<Path>,
        shipper: Arc<Shipper>,
    ) -> Arc<CommitQueue> {
        Arc::new(CommitQueue {
            partition,
            path,
            shipper,
            state: Mutex::new(QueueState::default()),
        })
    }

    /// Queues `command` and waits until its batch has been applied (and fsync'd when the
    /// engine is synchronous).
    ///
    /// # Errors
    /// The command's own [`ApplyError`], or [`CommitAborted`] if the committer died before
    /// answering (the write may or may not have been applied).
    pub(crate) async fn submit(
        self: &Arc<Self>,
        command: Command,
    ) -> Result<Result<Applied, ApplyError>, CommitAborted> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut state = self.state.lock();
            state.pending.push_back((command, tx));
            !std::mem::replace(&mut state.committing, true)
        };
        if start {
            spawn_committer(Committer {
                queue: Arc::clone(self),
                finished: false,
            });
        }
        rx.await.map_err(|_| CommitAborted)
    }

    /// Takes the next batch, or releases the queue (under the same lock) when it is empty.
    fn next_batch(&self) -> Option<Vec<(Command, Reply)>> {
        let mut state = self.state.lock();
        if state.pending.is_empty() {
            state.committing = false;
            return None;
        }
        let n = state.pending.len().min(MAX_BATCH);
        Some(state.pending.drain(..n).collect())
    }
}

/// Owns a queue's committing role. Dropped without finishing (a panic, or never run because
/// the runtime is shutting down), it passes the role to a new committer, or fails the queued
/// writes when no runtime is left to run one.
struct Committer {
    queue: Arc<CommitQueue>,
    finished: bool,
}

impl Committer {
    fn run(mut self) {
        while let Some(batch) = self.queue.next_batch() {
            let (commands, replies): (Vec<Command>, Vec<Reply>) = batch.into_iter().unzip();
            // The committer is the partition's only writer: indexes continue from the last one.
            let first = self.queue.partition.applied_index().saturating_add(1);
            let results = self.queue.partition.apply_batch(first, &commands);
            // The batch may have written GSI outbox records: ship them before answering, so the
            // index starts catching up while the replies go out.
            self.queue.shipper.committed();
            for (reply, result) in replies.into_iter().zip(results) {
                let result = result.map_err(|e| match e {
                    ApplyError::Storage(e) => ApplyError::Storage(e.in_file(&self.queue.path)),
                    other => other,
                });
                // A writer that went away (client disconnected) no longer needs its answer.
                let _ = reply.send(result);
            }
        }
        // `next_batch` released the queue.
        self.finished = true;
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let queue = Arc::clone(&self.queue);
        if std::thread::panicking() && tokio::runtime::Handle::try_current().is_ok() {
            tracing::error!("group commit panicked; starting a new committer");
            spawn_committer(Committer {
                queue,
                finished: false,
            });
            return;
        }
        // Never ran (the runtime is gone): fail what is queued rather than leave it waiting.
        let mut state = queue.state.lock();
        state.pending.clear();
        state.committing = false;
    }
}

/// Runs `committer` on the blocking pool. If it cannot be scheduled, its drop guard releases
/// the queue.
fn spawn_committer(committer: Committer) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn_blocking(move || committer.run());
        }
        Err(_) => drop(committer),
    }
}

/// A storage failure of the partition in `path`, for the API: typed (so disk-full and corruption
/// reach the client as such) and naming the file (for the log).
pub(crate) fn storage_failure(e: StorageError, path: &Path) -> BackendError {
    if let StorageError::UnknownIndex(id) = e {
        // The index went away between validation and the read.
        return BackendError::IndexNotFound(id.to_string());
    }
    BackendError::Apply(ApplyError::Storage(e.in_file(path)))
}
