//! Transactions across partitions and nodes: two-phase commit coordinated by the node that
//! received the request, over the partitions' own Raft logs (ARCHITECTURE.md, "Transactions").
//!
//! A write transaction:
//! 1. **Prepare** every action at once ([`Command::TxPrepare`], routed by key like any write):
//!    each item's partition evaluates the condition and the change and locks the item. A
//!    refusal (a failed condition, a lock held by another transaction, a validation error) is
//!    that action's cancellation reason.
//! 2. If every action voted yes, **decide** commit next to the primary item (the first
//!    action's, [`Command::TxDecide`]). The first decision recorded there wins: a node that
//!    found a lock whose coordinator died (`recovery.rs`) records abort the same way, and then
//!    the coordinator's commit comes back aborted.
//! 3. **Resolve** every lock ([`Command::TxResolve`]): commit applies the pending change, abort
//!    drops it. The answer is sent once every commit is applied, so a read after it sees it.
//! 4. **Forget** the decision once every lock is resolved (one with a client token is kept,
//!    settled, for the token's 10-minute window).
//!
//! An abort needs no decision: a lock without one is aborted by recovery. A read transaction
//! reads every item through its partition's log, leaving a read mark ([`Command::TxRead`],
//! refused while a write transaction holds the item), checks that every mark is still there
//! ([`Command::TxCheck`]: any change of an item removes its marks), then removes them
//! ([`Command::TxRelease`]); see [`read_once`].

use std::sync::Arc;

use futures_util::future::join_all;
use shoal_catalog::{
    DataError, DataPlane, TableMeta, TxGet, TxOutcome, TxReason, TxToken, TxWrite,
};
use shoal_storage::{Applied, ApplyError, Command, TxId, TxPrimary};
use shoal_types::Item;

use crate::backend::NodeBackend;

/// How many rounds a read transaction reads items again (a write transaction held them, or a
/// write changed them during the read) before it is canceled.
const READ_ATTEMPTS: u32 = 12;

/// Milliseconds since the Unix epoch on this node's clock.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn new_txid() -> TxId {
    rand::random()
}

/// How one action's prepare ended.
enum Vote {
    Yes(Applied),
    No(TxReason),
    /// The client token: the transaction committed already, the token names another request,
    /// or the same token's transaction holds the item.
    Token(TxOutcome<Applied>),
    /// Not known (a node failed or timed out): the action may be locked.
    Unknown(DataError),
}

fn vote(result: Result<Applied, DataError>) -> Vote {
    match result {
        Ok(applied) => Vote::Yes(applied),
        Err(DataError::Apply(e)) => match e {
            ApplyError::ConditionalCheckFailed { item } => {
                Vote::No(TxReason::ConditionalCheckFailed { item })
            }
            ApplyError::TransactionConflict => Vote::No(TxReason::TransactionConflict),
            ApplyError::Validation(m) => Vote::No(TxReason::ValidationError(m)),
            ApplyError::ItemCollectionSizeLimitExceeded => {
                Vote::No(TxReason::ItemCollectionSizeLimitExceeded)
            }
            ApplyError::TxAlreadyCommitted => Vote::Token(TxOutcome::AlreadyCommitted),
            ApplyError::TxTokenMismatch => Vote::Token(TxOutcome::TokenMismatch),
            ApplyError::TxInProgress => Vote::Token(TxOutcome::InProgress),
            other => Vote::Unknown(DataError::Apply(other)),
        },
        Err(DataError::Throttled(t)) => Vote::No(TxReason::ThrottlingError(t)),
        Err(e) => Vote::Unknown(e),
    }
}

/// Refuses transactions until every member applies their commands.
fn check_format(node: &NodeBackend) -> Result<(), DataError> {
    let format = node.cluster()?.meta().write_format();
    if format < shoal_meta::TRANSACTIONS_FORMAT {
        return Err(DataError::Unavailable(format!(
            "transactions need every node of the cluster to run a version that reads metadata \
             format {} (the cluster writes format {format}): finish the upgrade",
            shoal_meta::TRANSACTIONS_FORMAT
        )));
    }
    Ok(())
}

/// TransactWriteItems.
pub(crate) async fn write(
    node: &NodeBackend,
    writes: Vec<TxWrite>,
    token: Option<TxToken>,
) -> Result<TxOutcome<Applied>, DataError> {
    check_format(node)?;
    let Some(first) = writes.first() else {
        return Ok(TxOutcome::Committed(Vec::new()));
    };
    let txid = new_txid();
    let ts = now_ms();
    let primary_table = Arc::clone(&first.table);
    let primary = TxPrimary {
        table: first.table.name.clone(),
        key: first.table.key_schema.key_of(first.op.key_item()),
    };
    let prepares = writes.iter().map(|w| {
        let command = Command::TxPrepare {
            txid,
            ts,
            primary: primary.clone(),
            token,
            op: w.op.clone(),
        };
        node.write(&w.table, command)
    });
    let votes: Vec<Vote> = join_all(prepares).await.into_iter().map(vote).collect();
    let all_yes = votes.iter().all(|v| matches!(v, Vote::Yes(_)));
    if !all_yes {
        // Release what was locked; a lock whose prepare outcome is unknown is aborted by
        // recovery (no decision is recorded: the coordinator can no longer commit).
        let locked = writes
            .iter()
            .zip(&votes)
            .filter(|(_, v)| matches!(v, Vote::Yes(_) | Vote::Unknown(_)));
        resolve_all(node, txid, locked.map(|(w, _)| w), false).await;
        return cancel(votes);
    }
    let decided = node
        .write(
            &primary_table,
            Command::TxDecide {
                txid,
                key: primary.key.clone(),
                commit: true,
                ts,
                token,
            },
        )
        .await;
    match decided {
        Ok(_) => {}
        // A recovering node found a lock and aborted the transaction first.
        Err(DataError::Apply(ApplyError::TransactionAborted)) => {
            resolve_all(node, txid, writes.iter(), false).await;
            return Ok(TxOutcome::Canceled(
                writes
                    .iter()
                    .map(|_| TxReason::TransactionConflict)
                    .collect(),
            ));
        }
        // Unknown: recovery finishes it one way or the other.
        Err(e) => return Err(e),
    }
    let resolved = resolve_all(node, txid, writes.iter(), true).await;
    if resolved {
        let forget = Command::TxForget {
            txid,
            key: primary.key,
        };
        if let Err(e) = node.write(&primary_table, forget).await {
            tracing::debug!(error = %e, "transaction decision not forgotten (recovery will)");
        }
    }
    let applied = votes
        .into_iter()
        .filter_map(|v| match v {
            Vote::Yes(a) => Some(a),
            _ => None,
        })
        .collect();
    Ok(TxOutcome::Committed(applied))
}

/// Resolves every lock of `writes` (commit or abort); returns whether all were resolved (the
/// rest are left to recovery).
async fn resolve_all<'a>(
    node: &NodeBackend,
    txid: TxId,
    writes: impl Iterator<Item = &'a TxWrite>,
    commit: bool,
) -> bool {
    let resolves = writes.map(|w| {
        let command = Command::TxResolve {
            txid,
            key: w.table.key_schema.key_of(w.op.key_item()),
            commit,
        };
        node.write(&w.table, command)
    });
    let mut all = true;
    for r in join_all(resolves).await {
        if let Err(e) = r {
            tracing::warn!(error = %e, commit, "transaction lock not resolved (recovery will)");
            all = false;
        }
    }
    all
}

/// The outcome of a transaction some action refused.
fn cancel(votes: Vec<Vote>) -> Result<TxOutcome<Applied>, DataError> {
    let mut reasons = Vec::with_capacity(votes.len());
    let mut unknown = None;
    for v in votes {
        match v {
            Vote::Token(outcome) => return Ok(outcome),
            Vote::Yes(_) => reasons.push(TxReason::None),
            Vote::No(reason) => reasons.push(reason),
            Vote::Unknown(e) => {
                reasons.push(TxReason::None);
                unknown.get_or_insert(e);
            }
        }
    }
    if reasons.iter().all(|r| *r == TxReason::None)
        && let Some(e) = unknown
    {
        return Err(e);
    }
    Ok(TxOutcome::Canceled(reasons))
}

/// TransactGetItems.
pub(crate) async fn get(
    node: &NodeBackend,
    gets: Vec<TxGet>,
) -> Result<TxOutcome<Option<Item>>, DataError> {
    check_format(node)?;
    match read_once(node, &gets).await? {
        Read::Done(items) => Ok(TxOutcome::Committed(items)),
        Read::Canceled(reasons) => Ok(TxOutcome::Canceled(reasons)),
    }
}

enum Read {
    Done(Vec<Option<Item>>),
    /// A write transaction kept holding an item, writes kept changing items, or the table
    /// throttled a read.
    Canceled(Vec<TxReason>),
}

/// Pauses before attempt `attempt + 1`: growing and jittered (about 1 s over all attempts).
async fn backoff(attempt: u32) {
    let base = 2u64 << attempt.min(5);
    let pause = base + rand::random::<u64>() % base;
    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
}

/// Reads every item as of one moment. Each item is read with a mark ([`Command::TxRead`]; an
/// item a write transaction holds is read again on its own after a pause), then every mark is
/// checked in one round ([`Command::TxCheck`]). When all are still there, each item was
/// unchanged from its read to its check, and every check came after every read: the items are
/// their values at the last read. Items whose mark a change removed are read again, and all
/// marks checked again, up to [`READ_ATTEMPTS`] rounds.
async fn read_once(node: &NodeBackend, gets: &[TxGet]) -> Result<Read, DataError> {
    let txid = new_txid();
    let ts = now_ms();
    let mut items: Vec<Option<Item>> = vec![None; gets.len()];
    let mut reasons = vec![TxReason::None; gets.len()];
    let mut marked = vec![false; gets.len()];
    let outcome = 'rounds: {
        for attempt in 1..=READ_ATTEMPTS {
            let todo: Vec<usize> = (0..gets.len()).filter(|i| !marked[*i]).collect();
            let reads = todo.iter().map(|i| {
                let g = &gets[*i];
                node.write(
                    &g.table,
                    Command::TxRead {
                        txid,
                        key: g.key.clone(),
                        ts,
                    },
                )
            });
            for (i, r) in todo.iter().zip(join_all(reads).await) {
                match r {
                    Ok(applied) => {
                        items[*i] = applied.old;
                        reasons[*i] = TxReason::None;
                        marked[*i] = true;
                    }
                    Err(DataError::Apply(ApplyError::TransactionConflict)) => {
                        reasons[*i] = TxReason::TransactionConflict;
                    }
                    Err(DataError::Throttled(t)) => {
                        reasons[*i] = TxReason::ThrottlingError(t);
                        break 'rounds Ok(Read::Canceled(reasons.clone()));
                    }
                    Err(e) => break 'rounds Err(DataError::Unavailable(e.to_string())),
                }
            }
            if marked.iter().all(|m| *m) {
                let checks = gets.iter().map(|g| {
                    node.write(
                        &g.table,
                        Command::TxCheck {
                            txid,
                            key: g.key.clone(),
                        },
                    )
                });
                let mut changed = false;
                for (i, r) in join_all(checks).await.into_iter().enumerate() {
                    match r {
                        Ok(_) => {}
                        Err(DataError::Apply(ApplyError::TransactionConflict)) => {
                            reasons[i] = TxReason::TransactionConflict;
                            marked[i] = false;
                            changed = true;
                        }
                        Err(e) => break 'rounds Err(e),
                    }
                }
                if !changed {
                    break 'rounds Ok(Read::Done(std::mem::take(&mut items)));
                }
            }
            if attempt < READ_ATTEMPTS {
                backoff(attempt).await;
            }
        }
        Ok(Read::Canceled(reasons.clone()))
    };
    // Marks left behind (a failed release) are dropped by recovery after a minute.
    let releases = gets.iter().map(|g| {
        node.write(
            &g.table,
            Command::TxRelease {
                txid,
                key: g.key.clone(),
            },
        )
    });
    join_all(releases).await;
    outcome
}

/// The table of a transaction row's primary item, for recovery.
pub(crate) async fn table_named(
    node: &NodeBackend,
    name: &str,
) -> Result<Arc<TableMeta>, DataError> {
    node.table(name).await
}
