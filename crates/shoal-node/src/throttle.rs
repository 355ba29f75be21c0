//! Capacity throttling: DynamoDB's provisioned throughput with its burst credit, its
//! per-partition limits and the maxima of on-demand tables, enforced where the work happens.
//!
//! - **Shares.** A partition gets the share of its table's (and of each global index's)
//!   throughput that its hash range is of the whole key space: a table of 10 WCU split in two
//!   halves gives each 5. (DynamoDB's adaptive capacity, which lends a hot partition the unused
//!   share of the others, is not modelled.)
//! - **Buckets.** Each share is a token bucket refilled at its rate. A PROVISIONED share keeps up
//!   to 300 s of unused capacity as burst credit and, besides, never serves more than the
//!   per-partition limits (3,000 read and 1,000 write units per second, with one second of
//!   burst). An on-demand maximum (`OnDemandThroughput`) keeps one second. A new bucket (a new
//!   table, a node that just became leader) starts with one second of its rate: burst credit is
//!   capacity left unused, and none was yet.
//! - **Admission, then the exact charge.** A request is admitted while every bucket it draws
//!   from is above zero, and takes the least it can cost at once (one write unit; half or one
//!   read unit), so requests admitted together cannot all pass on the same credit; once it
//!   ran, it is charged the rest of what its `ConsumedCapacity` reports
//!   ([`shoal_catalog::capacity`]: the same arithmetic), so one large request may take a bucket
//!   below zero and the requests after it wait until it refilled, as in DynamoDB. A conditional
//!   write that failed is charged the existing item's size, as DynamoDB documents; local indexes
//!   draw from the table's buckets, global ones from their own.
//! - **Where.** Every write is proposed by its partition's leader, which admits and charges it
//!   (whichever node the client called). A read is admitted and charged by the replica that
//!   serves it; a replica that is not the leader also reports what it served to the leader
//!   (every 50 ms at most) and takes the leader's balances in return, which it does not refill
//!   on its own while they are fresh (`cluster/read_units.rs`). So reads spread over the
//!   replicas count against one limit: over time exactly, within a report's interval each
//!   replica may spend the balance it last heard of (the debt is then repaid before more is
//!   admitted).
//! - **Changes take effect at once**: the limits are read from the table's current definition
//!   at every admission.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;
use shoal_catalog::capacity::{Limit, Throttled, index_write_units, write_units};
use shoal_catalog::{
    BillingMode, DataError, MAX_PARTITION_READ_UNITS, MAX_PARTITION_WRITE_UNITS, TableMeta,
};
use shoal_storage::{Applied, ApplyError};
use shoal_types::index::{IndexDef, IndexKind, IndexStatus};
use shoal_types::size::item_size;

/// Seconds of unused provisioned capacity a partition keeps as burst credit (DynamoDB's 300).
pub(crate) const BURST_SECS: f64 = 300.0;

/// What an admitted write takes from its table's buckets at once: the least a write costs.
pub(crate) const WRITE_RESERVE: f64 = 1.0;

/// Buckets kept before the ones idle for [`IDLE_SECS`] are dropped (tables deleted, partitions
/// split or moved away): dropping one only forgets its burst credit.
const PRUNE_ABOVE: usize = 4096;
const IDLE_SECS: f64 = 600.0;

/// A partition as throttling sees it: its Raft group and the fraction of the key space its
/// hash range covers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Share {
    pub(crate) group: u64,
    pub(crate) fraction: f64,
}

impl Share {
    /// The share of the partition `group` covering the hashes `start..=end`.
    pub(crate) fn of(group: u64, start: u64, end: u64) -> Share {
        let width = (end.saturating_sub(start) as f64) + 1.0;
        Share {
            group,
            fraction: (width / 18_446_744_073_709_551_616.0).min(1.0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    group: u64,
    index: Option<u32>,
    write: bool,
    limit: Limit,
}

#[derive(Debug)]
struct Bucket {
    balance: f64,
    at: Instant,
    /// When the balance was last set to the partition leader's ([`Throttles::mirror`]).
    mirrored: Option<Instant>,
}

/// How long a replica's copy of its leader's balance stands without refilling on its own: the
/// leader refills it (every replica refilling too would multiply the rate by the replicas).
/// A copy older than this (reads stopped reaching the leader) refills here again.
const MIRROR_FRESH: std::time::Duration = std::time::Duration::from_millis(250);

impl Bucket {
    fn new(balance: f64, now: Instant) -> Bucket {
        Bucket {
            balance,
            at: now,
            mirrored: None,
        }
    }

    /// Adds what `rate` refilled since the last time, up to `burst` seconds of it (nothing
    /// while the balance is a fresh copy of the leader's).
    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let fresh = self
            .mirrored
            .is_some_and(|m| now.saturating_duration_since(m) < MIRROR_FRESH);
        if !fresh {
            let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
            self.balance = (self.balance + rate * elapsed).min(rate * burst);
        }
        self.at = now;
    }
}

/// One limit of a target: what it is, its rate (units per second) and its burst (seconds).
type Rule = (Limit, f64, f64);

/// The limits `share` of `meta`'s table (`index` `None`, local indexes included) or of its
/// global index `index` has for reads or writes.
fn rules(
    meta: &TableMeta,
    index: Option<&IndexDef>,
    write: bool,
    fraction: f64,
) -> [Option<Rule>; 2] {
    match meta.billing.mode {
        BillingMode::Provisioned => {
            let units = match index {
                None if write => meta.billing.write_capacity_units,
                None => meta.billing.read_capacity_units,
                Some(def) => match meta.throughput_of(def.id) {
                    Some(t) if write => t.write_capacity_units,
                    Some(t) => t.read_capacity_units,
                    None => return [None, None],
                },
            };
            let per_partition = if write {
                MAX_PARTITION_WRITE_UNITS
            } else {
                MAX_PARTITION_READ_UNITS
            };
            [
                Some((Limit::Provisioned, units as f64 * fraction, BURST_SECS)),
                Some((Limit::KeyRange, per_partition as f64, 1.0)),
            ]
        }
        BillingMode::PayPerRequest => {
            let on_demand = match index {
                None => meta.on_demand,
                Some(def) => meta
                    .capacity_of(def.id)
                    .map(|c| c.on_demand)
                    .unwrap_or_default(),
            };
            let max = if write {
                on_demand.max_write_request_units
            } else {
                on_demand.max_read_request_units
            };
            [
                max.map(|m| (Limit::MaxOnDemand, m as f64 * fraction, 1.0)),
                None,
            ]
        }
    }
}

/// Whether nothing of `meta` is ever throttled (an on-demand table without maxima): the common
/// case skips the buckets altogether.
pub(crate) fn unlimited(meta: &TableMeta) -> bool {
    meta.billing.mode == BillingMode::PayPerRequest
        && meta.on_demand.is_unlimited()
        && meta
            .index_capacity
            .iter()
            .all(|c| c.on_demand.is_unlimited())
}

/// The global indexes a write to `meta` may write (those being deleted are not written).
fn global_indexes(meta: &TableMeta) -> impl Iterator<Item = &IndexDef> {
    meta.indexes
        .iter()
        .filter(|d| d.kind == IndexKind::Global && d.status != IndexStatus::Deleting)
}

/// Read units served here from a partition another node leads, for that leader's buckets
/// (`cluster/read_units.rs`): the table, the partition, and the global index read (`None`: the
/// table).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub(crate) struct ReadReport {
    pub(crate) table: String,
    pub(crate) group: u64,
    pub(crate) index: Option<u32>,
}

/// The node's buckets, one per (partition, table or global index, read or write, limit).
#[derive(Default)]
pub(crate) struct Throttles {
    buckets: Mutex<HashMap<Key, Bucket>>,
    /// Read units not yet reported to their partitions' leaders.
    reports: Mutex<HashMap<ReadReport, f64>>,
    /// Wakes the reporter when the first units of a round are noted.
    pub(crate) reported: tokio::sync::Notify,
}

impl Throttles {
    /// Admits a request drawing from `share` of `meta`'s table (`index` `None`) or global index,
    /// and takes `reserve` units from its buckets at once: what the request costs at least, so
    /// that requests admitted together cannot all pass on one unit of credit. The rest is
    /// charged once the request ran ([`Throttles::charge`] with the difference).
    ///
    /// # Errors
    /// The first exhausted limit, as DynamoDB's `ThrottlingReason`.
    pub(crate) fn admit(
        &self,
        meta: &TableMeta,
        share: Share,
        index: Option<&IndexDef>,
        write: bool,
        reserve: f64,
    ) -> Result<(), Throttled> {
        self.check(meta, share, index, write)?;
        self.charge(meta, share, index, write, reserve);
        Ok(())
    }

    /// Whether every bucket of the target is above zero.
    fn check(
        &self,
        meta: &TableMeta,
        share: Share,
        index: Option<&IndexDef>,
        write: bool,
    ) -> Result<(), Throttled> {
        self.each(meta, share, index, write, |bucket| bucket.balance > 0.0)
            .map_or(Ok(()), |limit| {
                Err(Throttled::new(meta, index, write, limit))
            })
    }

    /// Takes `units` from the buckets of `share` of `meta`'s table or global index.
    pub(crate) fn charge(
        &self,
        meta: &TableMeta,
        share: Share,
        index: Option<&IndexDef>,
        write: bool,
        units: f64,
    ) {
        self.each(meta, share, index, write, |bucket| {
            bucket.balance -= units;
            true
        });
    }

    /// Refills each bucket of the target and runs `f` on it; the limit of the first bucket `f`
    /// returns `false` for.
    fn each(
        &self,
        meta: &TableMeta,
        share: Share,
        index: Option<&IndexDef>,
        write: bool,
        mut f: impl FnMut(&mut Bucket) -> bool,
    ) -> Option<Limit> {
        let rules = rules(meta, index, write, share.fraction);
        if rules.iter().all(Option::is_none) {
            return None;
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| now.saturating_duration_since(b.at).as_secs_f64() < IDLE_SECS);
        }
        for (limit, rate, burst) in rules.into_iter().flatten() {
            let key = Key {
                group: share.group,
                index: index.map(|d| d.id),
                write,
                limit,
            };
            let bucket = buckets.entry(key).or_insert_with(|| Bucket::new(rate, now));
            bucket.refill(rate, burst, now);
            if !f(bucket) {
                return Some(limit);
            }
        }
        None
    }

    /// The balances of the buckets of `share` of `meta`'s table or global index, in the order
    /// of its limits (what a leader tells the replicas that report reads to it).
    pub(crate) fn balances(
        &self,
        meta: &TableMeta,
        share: Share,
        index: Option<&IndexDef>,
        write: bool,
    ) -> Vec<f64> {
        let mut out = Vec::with_capacity(2);
        self.each(meta, share, index, write, |bucket| {
            out.push(bucket.balance);
            true
        });
        out
    }

    /// Sets this replica's buckets of `share` to the leader's `balances` ([`Throttles::balances`]):
    /// what every replica served counts against each.
    pub(crate) fn mirror(
        &self,
        meta: &TableMeta,
        share: Share,
        index: Option<&IndexDef>,
        write: bool,
        balances: &[f64],
    ) {
        let mut leader = balances.iter();
        let now = Instant::now();
        self.each(meta, share, index, write, |bucket| {
            if let Some(b) = leader.next() {
                bucket.balance = *b;
                bucket.mirrored = Some(now);
            }
            true
        });
    }

    /// Notes `units` read here from a partition another node leads.
    pub(crate) fn report(&self, read: ReadReport, units: f64) {
        *self.reports.lock().entry(read).or_default() += units;
        self.reported.notify_one();
    }

    /// The read units noted since the last call.
    pub(crate) fn take_reports(&self) -> Vec<(ReadReport, f64)> {
        self.reports.lock().drain().collect()
    }

    /// Admits an item write to `share` of `meta`: the table's buckets and every global index's
    /// (the write may change any of them; which ones is known only once it ran). Takes the
    /// write's least cost, [`WRITE_RESERVE`], from the table's.
    ///
    /// # Errors
    /// The first exhausted limit.
    pub(crate) fn admit_write(&self, meta: &TableMeta, share: Share) -> Result<(), Throttled> {
        self.check(meta, share, None, true)?;
        for def in global_indexes(meta) {
            self.check(meta, share, Some(def), true)?;
        }
        self.charge(meta, share, None, true, WRITE_RESERVE);
        Ok(())
    }

    /// Gives back the reservation of an admitted write that was not proposed.
    pub(crate) fn cancel_write(&self, meta: &TableMeta, share: Share) {
        self.charge(meta, share, None, true, -WRITE_RESERVE);
    }

    /// Charges an item write to `share` of `meta` with its outcome: what `ConsumedCapacity`
    /// reports for it (the table's units with its local indexes' to the table, each global
    /// index's to the index), or, for a failed condition, the existing item's size. Other
    /// refusals wrote nothing and cost nothing. Every unit counts `factor` times (2 for a
    /// transaction's prepare).
    pub(crate) fn charge_write(
        &self,
        meta: &TableMeta,
        share: Share,
        outcome: &Result<Applied, ApplyError>,
        factor: f64,
    ) {
        let size = |i: Option<&shoal_types::Item>| i.map(item_size).unwrap_or(0);
        let (mut table, applied) = match outcome {
            Ok(a) => (
                write_units(size(a.old.as_ref()).max(size(a.new.as_ref()))),
                Some(a),
            ),
            Err(ApplyError::ConditionalCheckFailed { item }) => {
                (write_units(size(item.as_ref())), None)
            }
            // Refused before it wrote anything: costs nothing.
            Err(_) => (0.0, None),
        };
        if let Some(a) = applied {
            for (def, units) in index_write_units(meta, a.old.as_ref(), a.new.as_ref()) {
                if def.kind == IndexKind::Global {
                    self.charge(meta, share, Some(def), true, units * factor);
                } else {
                    table += units;
                }
            }
        }
        self.charge(meta, share, None, true, table * factor - WRITE_RESERVE);
    }
}

/// A read admitted on a partition: what to charge once it ran.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadMeter {
    share: Share,
    consistent: bool,
    /// Taken at admission: the least the read costs.
    reserved: f64,
}

impl crate::backend::NodeBackend {
    /// Admits a read of the local replica `part` of `table` (its global index `index`, else
    /// the table and its local indexes); `None` when nothing of the table is throttled or the
    /// node serves no cluster.
    ///
    /// # Errors
    /// [`DataError::Throttled`] when the partition's read capacity is exhausted.
    pub(crate) fn admit_read(
        &self,
        table: &TableMeta,
        part: &crate::catalog::PartitionRecord,
        index: Option<&IndexDef>,
        consistent: bool,
    ) -> Result<Option<ReadMeter>, DataError> {
        if unlimited(table) {
            return Ok(None);
        }
        let Ok(cluster) = self.cluster() else {
            return Ok(None);
        };
        let share = Share::of(part.id, part.hash_start, part.hash_end);
        let reserved = shoal_catalog::capacity::read_units(0, consistent);
        if let Err(refused) = cluster
            .throttles
            .admit(table, share, index, false, reserved)
        {
            // Refused by this replica's copy of the leader's balance: ask the leader for a
            // fresh one (a report of nothing), so the next read is judged on it.
            if cluster.raft.leader(part.id) != Some(cluster.node_id) {
                let read = ReadReport {
                    table: table.name.clone(),
                    group: part.id,
                    index: index.map(|d| d.id),
                };
                cluster.throttles.report(read, 0.0);
            }
            return Err(DataError::Throttled(refused));
        }
        Ok(Some(ReadMeter {
            share,
            consistent,
            reserved,
        }))
    }

    /// Charges an admitted read of `bytes` (its `ConsumedCapacity`'s read units, less what
    /// its admission took).
    pub(crate) fn charge_read(
        &self,
        table: &TableMeta,
        meter: Option<ReadMeter>,
        index: Option<&IndexDef>,
        bytes: usize,
    ) {
        if let (Some(m), Ok(cluster)) = (meter, self.cluster()) {
            let units = shoal_catalog::capacity::read_units(bytes, m.consistent);
            cluster
                .throttles
                .charge(table, m.share, index, false, units - m.reserved);
            // Served by a replica the partition's leader is not: the leader counts it too, so
            // the limit holds across the replicas (see `cluster/read_units.rs`).
            if cluster.raft.leader(m.share.group) != Some(cluster.node_id) {
                let read = ReadReport {
                    table: table.name.clone(),
                    group: m.share.group,
                    index: index.map(|d| d.id),
                };
                cluster.throttles.report(read, units);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_catalog::{Billing, OnDemandThroughput};

    fn table(mode: BillingMode, rcu: u64, wcu: u64) -> TableMeta {
        let mut meta = crate::test_support::table_meta("t", &[]);
        meta.billing = Billing {
            mode,
            read_capacity_units: rcu,
            write_capacity_units: wcu,
            last_update_to_pay_per_request: None,
            last_increase: None,
            last_decrease: None,
            decreases_today: 0,
        };
        meta
    }

    const WHOLE: Share = Share {
        group: 1,
        fraction: 1.0,
    };

    #[test]
    fn a_new_bucket_holds_one_second_and_may_go_below_zero() {
        let t = Throttles::default();
        let meta = table(BillingMode::Provisioned, 10, 5);
        t.admit(&meta, WHOLE, None, true, 1.0).unwrap();
        // The charge after the run may take it below zero (refilling takes a while from there).
        t.charge(&meta, WHOLE, None, true, 4.5);
        let refused = t.admit(&meta, WHOLE, None, true, 1.0).unwrap_err();
        assert_eq!(refused.reason, "TableWriteProvisionedThroughputExceeded");
        assert_eq!(refused.resource, meta.arn);
        // Reads have their own bucket.
        t.admit(&meta, WHOLE, None, false, 1.0).unwrap();
    }

    #[test]
    fn unused_capacity_accumulates_up_to_300_seconds() {
        let mut bucket = Bucket::new(5.0, Instant::now());
        let later = bucket.at + std::time::Duration::from_secs(1000);
        bucket.refill(5.0, BURST_SECS, later);
        assert_eq!(bucket.balance, 1500.0);
        // A lower rate (UpdateTable) caps the credit at once.
        bucket.refill(1.0, BURST_SECS, later);
        assert_eq!(bucket.balance, 300.0);
    }

    #[test]
    fn a_fresh_copy_of_the_leaders_balance_does_not_refill_here() {
        let t = Throttles::default();
        let meta = table(BillingMode::Provisioned, 1000, 1000);
        t.mirror(&meta, WHOLE, None, false, &[-1.0, 5.0]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        // 1,000 units a second would have refilled 20 in 20 ms.
        assert!(t.admit(&meta, WHOLE, None, false, 1.0).is_err());
        assert!(t.balances(&meta, WHOLE, None, false)[0] < 0.0);
        // Stale (no report answered for a while): it refills here again.
        std::thread::sleep(MIRROR_FRESH);
        t.admit(&meta, WHOLE, None, false, 1.0).unwrap();
    }

    #[test]
    fn shares_split_the_table_by_hash_range() {
        let half = Share::of(2, 0, u64::MAX / 2);
        assert!((half.fraction - 0.5).abs() < 1e-9);
        assert_eq!(Share::of(1, 0, u64::MAX).fraction, 1.0);
    }

    #[test]
    fn on_demand_tables_throttle_only_at_their_maximum() {
        let t = Throttles::default();
        let mut meta = table(BillingMode::PayPerRequest, 0, 0);
        assert!(unlimited(&meta));
        t.charge(&meta, WHOLE, None, true, 1e9);
        t.admit(&meta, WHOLE, None, true, 1.0).unwrap();
        meta.on_demand = OnDemandThroughput {
            max_read_request_units: None,
            max_write_request_units: Some(2),
        };
        assert!(!unlimited(&meta));
        t.admit(&meta, WHOLE, None, true, 2.5).unwrap();
        let refused = t.admit(&meta, WHOLE, None, true, 1.0).unwrap_err();
        assert_eq!(refused.reason, "TableWriteMaxOnDemandThroughputExceeded");
        t.admit(&meta, WHOLE, None, false, 1.0).unwrap();
    }

    #[test]
    fn failed_conditions_cost_the_existing_item_and_other_refusals_nothing() {
        let t = Throttles::default();
        let meta = table(BillingMode::Provisioned, 1, 3);
        // 3 units: a refused write gives its reservation back...
        let refused = Err(ApplyError::Validation("no".into()));
        t.admit_write(&meta, WHOLE).unwrap();
        t.charge_write(&meta, WHOLE, &refused, 1.0);
        // ... writes admitted together each reserve their least cost: of 3 units, 4 get in
        // (the last takes the balance below zero), the fifth is refused ...
        for _ in 0..4 {
            t.admit_write(&meta, WHOLE).unwrap();
        }
        assert!(t.admit_write(&meta, WHOLE).is_err());
        // ... and a failed condition on an absent item costs that one unit, no more.
        let failed = Err(ApplyError::ConditionalCheckFailed { item: None });
        for _ in 0..4 {
            t.charge_write(&meta, WHOLE, &failed, 1.0);
        }
        assert!(t.admit_write(&meta, WHOLE).is_err());
        t.charge(&meta, WHOLE, None, true, -1.5);
        t.admit_write(&meta, WHOLE).unwrap();
    }
}
