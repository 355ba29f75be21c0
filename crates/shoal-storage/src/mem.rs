//! [`MemEngine`]: the in-memory engine used by tests.

use std::collections::BTreeMap;
use std::ops::Bound;

use parking_lot::RwLock;

use crate::{Engine, Entry, ReadView, Space, StorageError, WriteBatch};

/// An [`Engine`] on a `BTreeMap` under a `RwLock`. Same semantics as the SQLCipher engine,
/// nothing persisted. Never fails.
#[derive(Debug, Default)]
pub struct MemEngine {
    inner: RwLock<MemState>,
}

#[derive(Debug, Default, Clone)]
struct MemState {
    /// One map per [`Space`], in [`Space::ALL`] order.
    maps: [BTreeMap<Vec<u8>, Vec<u8>>; 3],
    applied_index: u64,
}

fn slot(space: Space) -> usize {
    match space {
        Space::Items => 0,
        Space::Index => 1,
        Space::Outbox => 2,
    }
}

impl MemEngine {
    /// An empty engine with applied index 0.
    pub fn new() -> Self {
        MemEngine::default()
    }
}

impl Engine for MemEngine {
    fn get_in(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.inner.read().maps[slot(space)].get(key).cloned())
    }

    fn scan_in(
        &self,
        space: Space,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        if let (Some(s), Some(e)) = (start, end)
            && s >= e
        {
            return Ok(Vec::new());
        }
        let lower = start.map_or(Bound::Unbounded, Bound::Included);
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let state = self.inner.read();
        let range = state.maps[slot(space)].range::<[u8], _>((lower, upper));
        let clone = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
        Ok(if reverse {
            range.rev().take(limit).map(clone).collect()
        } else {
            range.take(limit).map(clone).collect()
        })
    }

    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        let mut state = self.inner.write();
        for space in Space::ALL {
            let map = &mut state.maps[slot(space)];
            for key in batch.deletes_in(space) {
                map.remove(key);
            }
            for (key, value) in batch.puts_in(space) {
                map.insert(key.to_vec(), value.to_vec());
            }
        }
        state.applied_index = batch.applied_index;
        Ok(())
    }

    fn applied_index(&self) -> Result<u64, StorageError> {
        Ok(self.inner.read().applied_index)
    }

    /// Nothing is encrypted in memory: a no-op.
    fn rekey(&self, _new_key: &[u8; 32]) -> Result<(), StorageError> {
        Ok(())
    }

    /// A copy of the maps.
    fn read_view(&self) -> Result<Box<dyn ReadView>, StorageError> {
        Ok(Box::new(MemEngine {
            inner: RwLock::new(self.inner.read().clone()),
        }))
    }

    fn stage(&self) -> Result<Box<dyn Engine>, StorageError> {
        Ok(Box::new(MemEngine::new()))
    }

    fn adopt(&self, staged: Box<dyn Engine>) -> Result<(), StorageError> {
        let staged =
            staged
                .into_any()
                .downcast::<MemEngine>()
                .map_err(|_| StorageError::Corrupt {
                    context: "a staged engine of another kind".to_string(),
                })?;
        *self.inner.write() = staged.inner.into_inner();
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

impl ReadView for MemEngine {
    fn scan_in(
        &self,
        space: Space,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        Engine::scan_in(self, space, start, end, false, limit)
    }

    fn applied_index(&self) -> u64 {
        self.inner.read().applied_index
    }
}
