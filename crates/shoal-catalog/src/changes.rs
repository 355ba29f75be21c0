//! Table changes as pure functions: what a new definition becomes when it meets the current one.

use shoal_types::index::IndexStatus;

use crate::TableMeta;

/// Carries the node's own index transitions made since the client read the table (an index
/// that became `Active`, a deleted one that is gone) over to `next`, the client's new
/// definition based on an older read. Client changes (a new `Creating` index, `Deleting`) stay.
pub fn rebase_indexes(next: &mut TableMeta, current: &TableMeta) {
    next.indexes.retain_mut(|d| {
        match current.indexes.iter().find(|c| c.id == d.id) {
            Some(c) => {
                if c.status == IndexStatus::Active && d.status == IndexStatus::Creating {
                    d.status = IndexStatus::Active;
                    d.backfilling = false;
                }
                true
            }
            // Not in the current definition: new (Creating), or deleted by the node meanwhile.
            None => d.status != IndexStatus::Deleting,
        }
    });
    let ids: Vec<u32> = next.indexes.iter().map(|d| d.id).collect();
    next.index_throughput.retain(|t| ids.contains(&t.index));
    next.index_capacity.retain(|c| ids.contains(&c.index));
}

/// The definition after global index `index` finished its backfill: `Active`, not backfilling.
/// Not a client change, so the version stays (a concurrent UpdateTable must not fail on it).
pub fn index_active(current: &TableMeta, index: u32) -> TableMeta {
    let mut next = current.clone();
    for d in next.indexes.iter_mut().filter(|d| d.id == index) {
        d.status = IndexStatus::Active;
        d.backfilling = false;
    }
    next
}

/// The definition after a deleted global index's data is gone: the index is dropped.
pub fn index_dropped(current: &TableMeta, index: u32) -> TableMeta {
    let mut next = current.clone();
    next.indexes.retain(|d| d.id != index);
    next.index_throughput.retain(|t| t.index != index);
    next
}
