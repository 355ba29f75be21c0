//! Recovery of transactions whose coordinator died or lost touch: every second, each node
//! looks at the transaction rows of the partitions it leads.
//!
//! - A lock older than [`LOCK_TIMEOUT`] asks the decision next to its primary item: it records
//!   abort unless commit was recorded first ([`Command::TxDecide`]: the first decision wins),
//!   then resolves the lock that way. So a transaction either commits everywhere or nowhere,
//!   whoever finishes it.
//! - A read mark older than [`MARK_TIMEOUT`] (its reader is gone) is dropped.
//! - A settled decision (every lock resolved, kept for its client token) is forgotten once the
//!   token's 10-minute window is over. One the coordinator could not settle is kept for
//!   [`DECISION_TTL`]: by then every lock of its transaction was resolved by recovery (a lock
//!   is resolved within seconds while its partition has a quorum).

use std::sync::Arc;
use std::time::Duration;

use shoal_catalog::{DataError, DataPlane};
use shoal_storage::{ApplyError, Command, TxRow};

use crate::backend::{NodeBackend, blocking};
use crate::cluster::Cluster;
use crate::transact::{now_ms, table_named};

/// A lock older than this is recovered (its coordinator normally resolves it in milliseconds;
/// one that is merely slow then finds its transaction aborted and cancels it).
pub(crate) const LOCK_TIMEOUT: Duration = Duration::from_secs(2);
/// A read mark older than this is dropped.
const MARK_TIMEOUT: Duration = Duration::from_secs(60);
/// A decision older than this is forgotten.
const DECISION_TTL: Duration = Duration::from_secs(24 * 3600);
/// How often a node looks.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Rows read at a time.
const ROWS_PER_CHUNK: usize = 1_000;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs the recovery every [`CHECK_EVERY`] until `stop`.
pub(crate) fn spawn_tx_recovery(
    backend: Arc<NodeBackend>,
    cluster: Arc<Cluster>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            recover_once(&backend, &cluster).await;
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
        }
    })
}

async fn recover_once(backend: &NodeBackend, cluster: &Cluster) {
    let led: std::collections::HashSet<u64> = cluster
        .raft
        .status()
        .iter()
        .filter(|g| g.leader == Some(cluster.node_id) && g.role == "Leader")
        .map(|g| g.group)
        .collect();
    let handles: Vec<_> = backend.tables.read().values().cloned().collect();
    for handle in handles {
        let meta = Arc::clone(&handle.meta.read());
        for part in handle
            .partitions
            .iter()
            .filter(|p| led.contains(&p.record.id))
        {
            // Every row, a chunk at a time (usually none at all).
            let mut after: Option<Vec<u8>> = None;
            loop {
                let partition = Arc::clone(&part.partition);
                let from = after.take();
                let listed =
                    blocking(move || partition.tx_rows_after(from.as_deref(), ROWS_PER_CHUNK))
                        .await;
                let (rows, next) = match listed {
                    Ok(Ok(listed)) => listed,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "transaction rows unreadable");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "transaction rows unreadable");
                        break;
                    }
                };
                let now = now_ms();
                for row in rows {
                    if let Err(e) = recover_row(backend, &meta, row, now).await {
                        tracing::debug!(error = %e, "transaction recovery: will retry");
                    }
                }
                match next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
    }
}

async fn recover_row(
    backend: &NodeBackend,
    meta: &Arc<shoal_catalog::TableMeta>,
    row: TxRow,
    now: u64,
) -> Result<(), DataError> {
    match row {
        TxRow::Lock {
            txid,
            ts,
            key,
            primary,
            ..
        } if now.saturating_sub(ts) > millis(LOCK_TIMEOUT) => {
            let commit = match table_named(backend, &primary.table).await {
                Ok(table) => {
                    let decide = Command::TxDecide {
                        txid,
                        key: primary.key,
                        commit: false,
                        ts: now,
                        token: None,
                    };
                    match backend.write(&table, decide).await {
                        Ok(_) => true,
                        Err(DataError::Apply(ApplyError::TransactionAborted)) => false,
                        Err(e) => return Err(e),
                    }
                }
                // The primary's table is gone with its decision: nothing can commit any more.
                Err(DataError::TableNotFound(_)) => false,
                Err(e) => return Err(e),
            };
            tracing::info!(
                commit,
                "recovered a transaction whose coordinator did not finish"
            );
            backend
                .write(meta, Command::TxResolve { txid, key, commit })
                .await
                .map(|_| ())
        }
        TxRow::Mark { txid, ts, key } if now.saturating_sub(ts) > millis(MARK_TIMEOUT) => {
            match backend.write(meta, Command::TxRelease { txid, key }).await {
                Ok(_) | Err(DataError::Apply(ApplyError::TransactionConflict)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        TxRow::Decision {
            txid,
            ts,
            key,
            settled,
            ..
        } if now.saturating_sub(ts)
            > if settled {
                shoal_storage::TOKEN_WINDOW_MS
            } else {
                millis(DECISION_TTL)
            } =>
        {
            backend
                .write(meta, Command::TxForget { txid, key })
                .await
                .map(|_| ())
        }
        _ => Ok(()),
    }
}
