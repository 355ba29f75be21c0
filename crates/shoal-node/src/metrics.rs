//! The node's Prometheus metrics (`GET /metrics`, after the API's own; see docs/METRICS.md).
//!
//! Events are counted where they happen ([`NodeMetrics`]: proposals, Raft log fsyncs, snapshot
//! transfers); states are read at scrape time from what the node already keeps (Raft status per
//! group, partition stats, GSI shippers, key ages, the process's RSS), so a scrape costs one
//! pass over the local groups and tables and nothing on the request path.

use std::fmt::Write;
use std::time::Duration;

use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use shoal_api::metrics::sample;

use crate::backend::NodeBackend;

/// `direction` (`sent` / `received`).
type Direction = [(&'static str, &'static str); 1];
/// `direction`, `result` (`ok` / `failed`).
type Transfer = [(&'static str, &'static str); 2];

/// Event counters of one node.
pub struct NodeMetrics {
    registry: Registry,
    proposals: Counter,
    log_fsync: Histogram,
    apply: Histogram,
    snapshot_transfers: Family<Transfer, Counter>,
    snapshot_bytes: Family<Direction, Counter>,
    snapshot_duration: Histogram,
}

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMetrics").finish_non_exhaustive()
    }
}

impl Default for NodeMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("shoal");
        let proposals = Counter::default();
        registry.register(
            "raft_proposals",
            "Entries this node proposed to the Raft groups it leads (writes, conf changes, metadata)",
            proposals.clone(),
        );
        // 50 µs to about 3 s, doubling.
        let log_fsync = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register_with_unit(
            "raft_log_fsync_duration",
            "Time to write and fsync one round of the Raft log (every group's entries and hard state)",
            Unit::Seconds,
            log_fsync.clone(),
        );
        // 10 µs to about 0.6 s, doubling.
        let apply = Histogram::new(exponential_buckets(0.000_01, 2.0, 16));
        registry.register_with_unit(
            "raft_apply_duration",
            "Time one partition replica took to apply one batch of committed entries, on the Raft driver thread (with the periodic sync of its file)",
            Unit::Seconds,
            apply.clone(),
        );
        let snapshot_transfers = Family::<Transfer, Counter>::default();
        registry.register(
            "snapshot_transfers",
            "Partition snapshot transfers into this node's replicas (direction=received), by result",
            snapshot_transfers.clone(),
        );
        let snapshot_bytes = Family::<Direction, Counter>::default();
        registry.register_with_unit(
            "snapshot_transfer",
            "Bytes of partition snapshots received, or served as chunks",
            Unit::Bytes,
            snapshot_bytes.clone(),
        );
        // 10 ms to about 20 min, doubling.
        let snapshot_duration = Histogram::new(exponential_buckets(0.01, 2.0, 18));
        registry.register_with_unit(
            "snapshot_transfer_duration",
            "Time to receive one partition snapshot (every part, every chunk)",
            Unit::Seconds,
            snapshot_duration.clone(),
        );
        NodeMetrics {
            registry,
            proposals,
            log_fsync,
            apply,
            snapshot_transfers,
            snapshot_bytes,
            snapshot_duration,
        }
    }
}

impl NodeMetrics {
    /// One entry proposed.
    pub(crate) fn proposed(&self) {
        self.proposals.inc();
    }

    /// One Raft log round written and fsync'd in `took`.
    pub(crate) fn log_fsync(&self, took: Duration) {
        self.log_fsync.observe(took.as_secs_f64());
    }

    /// One batch of committed entries applied to a partition replica in `took`.
    pub(crate) fn applied(&self, took: Duration) {
        self.apply.observe(took.as_secs_f64());
    }

    /// A snapshot received (`Ok(bytes)`) or a failed transfer, after `took`.
    pub(crate) fn snapshot_received(&self, result: Result<u64, ()>, took: Duration) {
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        self.snapshot_transfers
            .get_or_create(&[("direction", "received"), ("result", outcome)])
            .inc();
        if let Ok(bytes) = result {
            self.snapshot_bytes
                .get_or_create(&[("direction", "received")])
                .inc_by(bytes);
            self.snapshot_duration.observe(took.as_secs_f64());
        }
    }

    /// A snapshot chunk of `bytes` served to a follower.
    pub(crate) fn snapshot_chunk_sent(&self, bytes: u64) {
        self.snapshot_bytes
            .get_or_create(&[("direction", "sent")])
            .inc_by(bytes);
    }
}

/// Writes a `# HELP`/`# TYPE` header of a gauge family.
fn gauge_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// The node's metrics text: the event counters, then the states read now.
pub(crate) fn render(backend: &NodeBackend) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let _ = encode_registry(&mut out, &backend.metrics.registry);
    if let Ok(cluster) = backend.cluster() {
        let node = cluster.node_id.to_string();
        gauge_header(
            &mut out,
            "shoal_node_info",
            "This node's id and cluster (always 1)",
        );
        sample(
            &mut out,
            "shoal_node_info",
            &[("node", &node), ("cluster", &cluster.identity.cluster_id)],
            1.0,
        );
        raft_states(&mut out, &cluster);
    }
    table_states(&mut out, backend);
    gauge_header(
        &mut out,
        "shoal_process_resident_memory_bytes",
        "Resident memory of the node's process",
    );
    sample(
        &mut out,
        "shoal_process_resident_memory_bytes",
        &[],
        resident_bytes() as f64,
    );
    out
}

/// Per Raft group on this node: role, term, commit and apply lag; on leaders, each follower's
/// lag.
fn raft_states(out: &mut String, cluster: &crate::cluster::Cluster) {
    let groups = cluster.raft.status();
    let meta = cluster.meta();
    let table_of = |group: u64| -> String {
        if group == shoal_raft::META_GROUP {
            return "(metadata)".to_string();
        }
        meta.partition(group)
            .map(|(t, _)| t.meta.name.clone())
            .unwrap_or_default()
    };
    let families: [(&str, &str); 5] = [
        (
            "shoal_raft_leader",
            "1 when this node leads the group, else 0",
        ),
        (
            "shoal_raft_term",
            "The group's current Raft term on this node",
        ),
        (
            "shoal_raft_commit_index",
            "The group's commit index as this node knows it",
        ),
        (
            "shoal_raft_apply_lag_entries",
            "Committed entries this node's replica has not applied yet",
        ),
        (
            "shoal_raft_follower_lag_entries",
            "On the group's leader: committed entries each follower's log is behind",
        ),
    ];
    for (name, help) in families {
        gauge_header(out, name, help);
        for g in &groups {
            let group = g.group.to_string();
            let table = table_of(g.group);
            let labels = [("group", group.as_str()), ("table", table.as_str())];
            match name {
                "shoal_raft_leader" => {
                    sample(out, name, &labels, f64::from(u8::from(g.role == "Leader")));
                }
                "shoal_raft_term" => sample(out, name, &labels, g.term as f64),
                "shoal_raft_commit_index" => sample(out, name, &labels, g.commit as f64),
                "shoal_raft_apply_lag_entries" => {
                    sample(
                        out,
                        name,
                        &labels,
                        g.commit.saturating_sub(g.applied) as f64,
                    );
                }
                _ => {
                    if g.role != "Leader" {
                        continue;
                    }
                    for (follower, matched) in &g.progress {
                        if *follower == cluster.node_id {
                            continue;
                        }
                        let f = follower.to_string();
                        sample(
                            out,
                            name,
                            &[
                                ("group", group.as_str()),
                                ("table", table.as_str()),
                                ("follower", f.as_str()),
                            ],
                            g.commit.saturating_sub(*matched) as f64,
                        );
                    }
                }
            }
        }
    }
}

/// Per local table: partition replicas, items, bytes, GSI backlog, data-key age.
fn table_states(out: &mut String, backend: &NodeBackend) {
    let mut handles: Vec<_> = backend
        .tables
        .read()
        .iter()
        .map(|(n, h)| (n.clone(), std::sync::Arc::clone(h)))
        .collect();
    handles.sort_by(|a, b| a.0.cmp(&b.0));
    gauge_header(
        out,
        "shoal_partitions",
        "Partition replicas of the table held by this node",
    );
    for (name, h) in &handles {
        sample(
            out,
            "shoal_partitions",
            &[("table", name)],
            h.partitions.len() as f64,
        );
    }
    // A family's samples follow its header, all together (OpenMetrics).
    let sizes: Vec<(u64, u64)> = handles
        .iter()
        .map(|(_, h)| {
            h.partitions.iter().fold((0u64, 0u64), |(i, b), p| {
                let s = p.partition.stats();
                (i + s.item_count, b + s.size_bytes)
            })
        })
        .collect();
    gauge_header(
        out,
        "shoal_partition_items",
        "Items in this node's partition replicas of the table",
    );
    for ((name, _), (items, _)) in handles.iter().zip(&sizes) {
        sample(
            out,
            "shoal_partition_items",
            &[("table", name)],
            *items as f64,
        );
    }
    gauge_header(
        out,
        "shoal_partition_bytes",
        "Bytes of items in this node's partition replicas of the table (DynamoDB's item size)",
    );
    for ((name, _), (_, bytes)) in handles.iter().zip(&sizes) {
        sample(
            out,
            "shoal_partition_bytes",
            &[("table", name)],
            *bytes as f64,
        );
    }
    gauge_header(
        out,
        "shoal_gsi_backlog_records",
        "Outbox records of the table's partitions on this node not yet applied to its global secondary indexes",
    );
    for (name, h) in &handles {
        if h.partitions.iter().all(|p| p.gsis.read().is_empty()) {
            continue;
        }
        let backlog: u64 = h
            .partitions
            .iter()
            .map(|p| {
                p.partition
                    .last_outbox_seq()
                    .saturating_sub(p.shipper.shipped())
            })
            .sum();
        sample(
            out,
            "shoal_gsi_backlog_records",
            &[("table", name)],
            backlog as f64,
        );
    }
    let now = crate::catalog::now_secs();
    let keys: Vec<(Option<u64>, bool)> = handles
        .iter()
        .map(|(_, h)| {
            let k = h.keys.read();
            (k.data_key_created_at, k.pending_data_key.is_some())
        })
        .collect();
    gauge_header(
        out,
        "shoal_data_key_age_seconds",
        "Age of the table's data key on this node (rotated every --data-key-rotation-days)",
    );
    for ((name, _), (created, _)) in handles.iter().zip(&keys) {
        if let Some(created) = created {
            sample(
                out,
                "shoal_data_key_age_seconds",
                &[("table", name)],
                now.saturating_sub(*created) as f64,
            );
        }
    }
    gauge_header(
        out,
        "shoal_data_key_rotation_pending",
        "1 while a rotation of the table's data key is re-encrypting its files, else 0",
    );
    for ((name, _), (_, pending)) in handles.iter().zip(&keys) {
        sample(
            out,
            "shoal_data_key_rotation_pending",
            &[("table", name)],
            f64::from(u8::from(*pending)),
        );
    }
}

/// The process's resident set size in bytes (Linux: `/proc/self/statm`; 0 elsewhere).
fn resident_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
