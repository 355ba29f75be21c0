//! Read capacity across replicas: a replica that serves reads of a partition it does not lead
//! reports the read units to the partition's leader, which charges its own buckets with them
//! and answers with its balances; the replica takes those as its own. So reads spread over the
//! replicas of a partition count against one limit, as writes (which all go through the leader)
//! do. What replicas serve between two reports (at most [`REPORT_EVERY`] apart, each replica
//! within its own local balance) is the slack.
//!
//! `READ_UNITS` RPC: JSON `[[ReadReport, units], ...]`; reply JSON `[[balance, ...], ...]`, one
//! list per report, in its order (empty for a table or partition the leader does not know).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shoal_catalog::TableMeta;
use shoal_meta::MetaState;
use shoal_types::index::IndexDef;

use super::{Cluster, kind};
use crate::throttle::{ReadReport, Share};

/// How long reports gather before they are sent.
pub(crate) const REPORT_EVERY: Duration = Duration::from_millis(50);

/// How long a leader has to answer a report (late ones are dropped: the replica's own buckets
/// still hold it back).
const REPORT_TIMEOUT: Duration = Duration::from_secs(1);

type Reports = Vec<(ReadReport, f64)>;

/// The table, partition share and global index a report is about, in `meta`.
fn lookup<'a>(
    meta: &'a MetaState,
    read: &ReadReport,
) -> Option<(&'a TableMeta, Share, Option<&'a IndexDef>)> {
    let table = meta.tables.get(&read.table)?;
    let part = table.partitions.get(read.group)?;
    let index = match read.index {
        None => None,
        Some(id) => Some(table.meta.indexes.iter().find(|d| d.id == id)?),
    };
    let share = Share::of(read.group, part.hash_start, part.hash_end);
    Some((&table.meta, share, index))
}

/// Runs on a leader: charges the reported reads and answers each one's balances.
pub(crate) fn serve(cluster: &Cluster, payload: &[u8]) -> Result<Bytes, String> {
    let reports: Reports = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let meta = cluster.meta();
    let balances: Vec<Vec<f64>> = reports
        .iter()
        .map(|(read, units)| match lookup(&meta, read) {
            Some((table, share, index)) => {
                cluster.throttles.charge(table, share, index, false, *units);
                cluster.throttles.balances(table, share, index, false)
            }
            None => Vec::new(),
        })
        .collect();
    serde_json::to_vec(&balances)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

/// Sends the reads noted on this node to their partitions' leaders, [`REPORT_EVERY`] at most,
/// and only while there are some (an idle node does not wake up for it).
pub(crate) fn spawn_reporter(
    cluster: Arc<Cluster>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                () = cluster.throttles.reported.notified() => {}
            }
            tokio::time::sleep(REPORT_EVERY).await;
            let mut by_leader: HashMap<u64, Reports> = HashMap::new();
            for (read, units) in cluster.throttles.take_reports() {
                // A leader elsewhere, known: it counts them. None (an election): they are
                // dropped, as the new leader's buckets start afresh anyway.
                if let Some(leader) = cluster
                    .raft
                    .leader(read.group)
                    .filter(|l| *l != cluster.node_id)
                {
                    by_leader.entry(leader).or_default().push((read, units));
                }
            }
            for (leader, reports) in by_leader {
                tokio::spawn(send(Arc::clone(&cluster), leader, reports));
            }
        }
    })
}

/// Reports `reports` to `leader` and mirrors the balances it answers.
async fn send(cluster: Arc<Cluster>, leader: u64, reports: Reports) {
    let Some(addr) = cluster.peer_addr(leader) else {
        return;
    };
    let Ok(payload) = serde_json::to_vec(&reports) else {
        return;
    };
    let reply = match cluster
        .rpc
        .call(&addr, kind::READ_UNITS, payload.into(), REPORT_TIMEOUT)
        .await
    {
        Ok(reply) => reply,
        Err(e) => {
            tracing::debug!(leader, error = %e, "read units not reported");
            return;
        }
    };
    let Ok(balances) = serde_json::from_slice::<Vec<Vec<f64>>>(&reply) else {
        return;
    };
    let meta = cluster.meta();
    for ((read, _), balances) in reports.iter().zip(balances) {
        if let Some((table, share, index)) = lookup(&meta, read) {
            cluster
                .throttles
                .mirror(table, share, index, false, &balances);
        }
    }
}
