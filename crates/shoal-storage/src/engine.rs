//! The [`Engine`] trait: an ordered byte map with atomic, index-stamped batches.

use std::any::Any;

use crate::StorageError;

/// A key and its value, as returned by [`Engine::scan`].
pub type Entry = (Vec<u8>, Vec<u8>);

/// One of the engine's separate keyspaces. Keys of different spaces never collide or mix in a
/// scan; a [`WriteBatch`] writes any of them atomically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    /// Items (storage keys `hash ‖ pk ‖ sk`) and the partition's metadata (keys shorter than
    /// 8 bytes). What [`Engine::get`] and [`Engine::scan`] read.
    Items,
    /// Secondary index entries (`index_id ‖ index key ‖ table key`) and per-index metadata.
    Index,
    /// The outbox of global secondary index updates, keyed by sequence number (u64 BE).
    Outbox,
}

impl Space {
    /// Every space, in a fixed order.
    pub const ALL: [Space; 3] = [Space::Items, Space::Index, Space::Outbox];
}

/// A storage engine: an ordered map of byte keys to byte values with atomic batches.
/// One per partition replica.
///
/// Keys compare as unsigned bytes (lexicographically, a prefix before its extensions).
/// Implementations: [`crate::SqlCipherEngine`] (encrypted file, production) and
/// [`crate::MemEngine`] (tests).
pub trait Engine: Send + Sync + 'static {
    /// The value stored under `key` in [`Space::Items`], if any.
    ///
    /// # Errors
    /// I/O or database failures.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.get_in(Space::Items, key)
    }

    /// Entries of [`Space::Items`] with `start <= key < end` (`None` = unbounded), ascending or
    /// (when `reverse`) descending, at most `limit` of them.
    ///
    /// # Errors
    /// I/O or database failures.
    fn scan(
        &self,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.scan_in(Space::Items, start, end, reverse, limit)
    }

    /// The value stored under `key` in `space`, if any.
    ///
    /// # Errors
    /// I/O or database failures.
    fn get_in(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// As [`Engine::get_in`] when it can answer without waiting for a connection (one is idle,
    /// no rekey is running); `None` otherwise, and the caller should use [`Engine::get_in`]
    /// from a thread that may block. For callers on an async worker that read in place rather
    /// than hand the read to a blocking thread.
    ///
    /// The default answers [`Engine::get_in`] (engines whose reads never wait long).
    fn try_get_in(
        &self,
        space: Space,
        key: &[u8],
    ) -> Option<Result<Option<Vec<u8>>, StorageError>> {
        Some(self.get_in(space, key))
    }

    /// As [`Engine::get_in`], read the way the next [`Engine::write`] will see the store: for
    /// the single writer deciding a batch against the current state (conditions, old items,
    /// counters). Must not be called while a write is in progress on another thread of the same
    /// caller (callers serialize it with their writes).
    ///
    /// [`crate::SqlCipherEngine`] reads through its writer connection, whose page cache
    /// survives its own commits (a reader's cache is dropped whenever another connection
    /// commits), and which then modifies the very pages it just read. The default answers
    /// [`Engine::get_in`].
    ///
    /// # Errors
    /// I/O or database failures.
    fn get_for_write(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.get_in(space, key)
    }

    /// As [`Engine::scan`], in `space`.
    ///
    /// # Errors
    /// I/O or database failures.
    fn scan_in(
        &self,
        space: Space,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError>;

    /// Applies all puts and deletes (of every space) atomically and records `applied_index` in
    /// the same transaction. Within a space, deletes are applied before puts, so a key in both
    /// ends up with its put value.
    /// Durable (fsync'd) before it returns when the engine was opened with [`Durability::Sync`].
    ///
    /// # Errors
    /// I/O or database failures; on error nothing of the batch is visible.
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError>;

    /// The `applied_index` of the last successful [`Engine::write`] (0 for a new engine).
    ///
    /// # Errors
    /// I/O or database failures.
    fn applied_index(&self) -> Result<u64, StorageError>;

    /// Makes every write that returned so far durable (for an engine opened with
    /// [`Durability::Relaxed`]: fsyncs what its writes left in the OS's cache). The default
    /// does nothing (engines that keep nothing on disk).
    ///
    /// # Errors
    /// I/O failures: the writes may then not be durable, and the caller must not count on them.
    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Re-encrypts the whole store under `new_key` (data-key rotation). Concurrent reads and
    /// writes wait while it runs and then proceed under the new key; none fails because of it.
    /// Atomic: after a crash the store opens with either the old or the new key, never a mix.
    /// Engines that keep nothing on disk do nothing.
    ///
    /// # Errors
    /// I/O or database failures; on error the store stays readable with the old key.
    fn rekey(&self, new_key: &[u8; 32]) -> Result<(), StorageError>;

    /// A consistent, point-in-time view of every space and the applied index, that later writes
    /// do not change (a read transaction of its own). For streaming a snapshot out while the
    /// engine keeps applying. The caller makes sure no write is in progress when it is taken.
    ///
    /// # Errors
    /// I/O or database failures; engines without the feature say so.
    fn read_view(&self) -> Result<Box<dyn ReadView>, StorageError> {
        Err(unsupported("read views"))
    }

    /// A new, empty engine of the same kind and key, apart from this one (a staging file next
    /// to it), for a snapshot streamed in. [`Engine::adopt`] swaps it in. A staging engine left
    /// by a crash is removed by the next `stage` (and when the engine opens).
    ///
    /// # Errors
    /// I/O or database failures; engines without the feature say so.
    fn stage(&self) -> Result<Box<dyn Engine>, StorageError> {
        Err(unsupported("staging"))
    }

    /// Replaces this engine's whole content with `staged` (from [`Engine::stage`] on this
    /// engine), atomically: after a crash the engine opens with the old or the new content.
    /// Reads and writes wait while it runs.
    ///
    /// # Errors
    /// I/O or database failures (the old content stays); a `staged` engine of another kind.
    fn adopt(&self, staged: Box<dyn Engine>) -> Result<(), StorageError> {
        drop(staged);
        Err(unsupported("staging"))
    }

    /// The engine as `Any`, for [`Engine::adopt`] to recover its staged engine's type.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// A consistent view of an engine at one point in time ([`Engine::read_view`]).
pub trait ReadView: Send {
    /// As [`Engine::scan_in`], in the view.
    ///
    /// # Errors
    /// I/O or database failures.
    fn scan_in(
        &self,
        space: Space,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError>;

    /// The applied index of the view.
    fn applied_index(&self) -> u64;
}

fn unsupported(what: &str) -> StorageError {
    StorageError::Io {
        context: format!("{what} are not supported by this engine"),
        source: std::io::Error::from(std::io::ErrorKind::Unsupported),
    }
}

/// A set of puts and deletes written atomically, stamped with the Raft index it applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// Keys of [`Space::Items`] to set (inserted or overwritten).
    pub puts: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys of [`Space::Items`] to remove (absent keys are ignored).
    pub deletes: Vec<Vec<u8>>,
    /// Keys of the other spaces to set.
    pub space_puts: Vec<(Space, Vec<u8>, Vec<u8>)>,
    /// Keys of the other spaces to remove.
    pub space_deletes: Vec<(Space, Vec<u8>)>,
    /// The index recorded as applied in the same transaction.
    pub applied_index: u64,
}

impl WriteBatch {
    /// An empty batch that only records `applied_index`.
    pub fn new(applied_index: u64) -> Self {
        WriteBatch {
            applied_index,
            ..WriteBatch::default()
        }
    }

    /// Adds a put in [`Space::Items`].
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> &mut Self {
        self.puts.push((key, value));
        self
    }

    /// Adds a delete in [`Space::Items`].
    pub fn delete(&mut self, key: Vec<u8>) -> &mut Self {
        self.deletes.push(key);
        self
    }

    /// Adds a put in `space`.
    pub fn put_in(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) -> &mut Self {
        match space {
            Space::Items => self.puts.push((key, value)),
            other => self.space_puts.push((other, key, value)),
        }
        self
    }

    /// Adds a delete in `space`.
    pub fn delete_in(&mut self, space: Space, key: Vec<u8>) -> &mut Self {
        match space {
            Space::Items => self.deletes.push(key),
            other => self.space_deletes.push((other, key)),
        }
        self
    }

    /// The puts of `space`, in insertion order.
    pub fn puts_in(&self, space: Space) -> impl Iterator<Item = (&[u8], &[u8])> {
        let items = self
            .puts
            .iter()
            .filter(move |_| space == Space::Items)
            .map(|(k, v)| (k.as_slice(), v.as_slice()));
        let others = self
            .space_puts
            .iter()
            .filter(move |(s, _, _)| *s == space && space != Space::Items)
            .map(|(_, k, v)| (k.as_slice(), v.as_slice()));
        items.chain(others)
    }

    /// The deletes of `space`, in insertion order.
    pub fn deletes_in(&self, space: Space) -> impl Iterator<Item = &[u8]> {
        let items = self
            .deletes
            .iter()
            .filter(move |_| space == Space::Items)
            .map(Vec::as_slice);
        let others = self
            .space_deletes
            .iter()
            .filter(move |(s, _)| *s == space && space != Space::Items)
            .map(|(_, k)| k.as_slice());
        items.chain(others)
    }

    /// True when the batch changes no key (it still records its index).
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty()
            && self.deletes.is_empty()
            && self.space_puts.is_empty()
            && self.space_deletes.is_empty()
    }
}

/// When a write becomes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every [`Engine::write`] is fsync'd before it returns (SQLite `synchronous=FULL`).
    /// Use while the partition file is the only durable log.
    #[default]
    Sync,
    /// Writes reach the OS before returning but are fsync'd only at checkpoints and by
    /// [`Engine::sync`] (`synchronous=NORMAL`): a crash of the machine may lose the latest
    /// batches, never corrupt the file. For use behind a Raft log that replays from
    /// `applied_index` and keeps its entries until a sync made them durable here.
    Relaxed,
}
