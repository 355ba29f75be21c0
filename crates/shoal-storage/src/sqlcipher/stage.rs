//! Read views (a snapshot streamed out) and staging files (a snapshot streamed in) of a
//! [`SqlCipherEngine`].
//!
//! - A read view is a connection of its own holding one read transaction: WAL mode keeps what
//!   it sees fixed while the writer goes on. The engine keeps a handle on each and closes them
//!   before it replaces or re-encrypts its file (the view then answers an error).
//! - A staging engine lives in `<file>.staging`, under the same key. Adopting it checkpoints
//!   and closes it, closes every connection of the engine, renames the staging file over the
//!   engine's file (atomic: a crash leaves the old or the new file) and reopens.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rusqlite::Connection;

use super::open::{checkpoint, open_keyed, rekey_pragma};
use super::{SqlCipherEngine, read_applied_index, scan_on};
use crate::{Entry, ReadView, Space, StorageError};

/// The staging file of the engine at `path`.
pub(crate) fn staging_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".staging");
    PathBuf::from(name)
}

type ViewConn = Arc<Mutex<Option<Connection>>>;

/// The connections of the read views handed out.
#[derive(Default)]
pub(crate) struct Views {
    open: Mutex<Vec<Weak<Mutex<Option<Connection>>>>>,
}

impl Views {
    fn register(&self, conn: &ViewConn) {
        let mut open = self.open.lock();
        open.retain(|w| w.strong_count() > 0);
        open.push(Arc::downgrade(conn));
    }

    /// Closes every view's connection (their next read fails).
    pub(crate) fn close_all(&self) {
        for view in std::mem::take(&mut *self.open.lock()) {
            if let Some(conn) = view.upgrade() {
                drop(conn.lock().take());
            }
        }
    }
}

/// A read transaction on a connection of its own.
struct SqlView {
    conn: ViewConn,
    applied_index: u64,
}

impl ReadView for SqlView {
    fn scan_in(
        &self,
        space: Space,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let conn = self.conn.lock();
        let conn = conn.as_ref().ok_or_else(|| StorageError::Io {
            context: "reading a snapshot view".to_string(),
            source: std::io::Error::other(
                "the view was closed: its file was replaced or re-encrypted",
            ),
        })?;
        scan_on(conn, space, start, end, false, limit)
    }

    fn applied_index(&self) -> u64 {
        self.applied_index
    }
}

impl Drop for SqlView {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.lock().as_ref() {
            let _ = conn.execute_batch("COMMIT");
        }
    }
}

fn io(context: String, e: std::io::Error) -> StorageError {
    StorageError::Io { context, source: e }
}

impl SqlCipherEngine {
    /// A read view: a new connection, `BEGIN`, and a first read that fixes its snapshot.
    pub(super) fn open_view(&self) -> Result<Box<dyn ReadView>, StorageError> {
        let conn = open_keyed(&self.path, &self.readers.key(), self.readers.durability())?;
        conn.execute_batch("BEGIN")
            .map_err(|e| StorageError::sqlite("beginning a snapshot read", e))?;
        let applied_index = read_applied_index(&conn)?;
        let conn = Arc::new(Mutex::new(Some(conn)));
        self.views.register(&conn);
        Ok(Box::new(SqlView {
            conn,
            applied_index,
        }))
    }

    /// A new, empty engine in the staging file (an old one is removed first).
    pub(super) fn open_staging(&self) -> Result<SqlCipherEngine, StorageError> {
        let path = staging_path(&self.path);
        SqlCipherEngine::destroy(&path)?;
        SqlCipherEngine::open(&path, &self.readers.key(), self.readers.durability())
    }

    /// Swaps the staging engine's file in for this engine's.
    pub(super) fn adopt_staging(&self, staged: SqlCipherEngine) -> Result<(), StorageError> {
        let from = staging_path(&self.path);
        if staged.path != from {
            return Err(StorageError::Corrupt {
                context: format!(
                    "{} is not the staging file of {}",
                    staged.path.display(),
                    self.path.display()
                ),
            });
        }
        let mut writer = self.writer.lock();
        let paused = self.readers.pause();
        self.views.close_all();
        let key = self.readers.key();
        {
            let staged_writer = staged.writer.lock();
            if *staged.readers.key() != *key {
                // The engine was re-encrypted while the snapshot streamed in.
                checkpoint(&staged_writer, "before re-encrypting the staged snapshot")?;
                rekey_pragma(&staged_writer, &key)?;
            }
            checkpoint(&staged_writer, "before adopting the staged snapshot")?;
        }
        drop(staged);
        // Close the current file: the last connection checkpoints and removes its WAL.
        let placeholder = Connection::open_in_memory()
            .map_err(|e| StorageError::sqlite("opening a placeholder connection", e))?;
        let old = std::mem::replace(&mut *writer, placeholder);
        let _ = checkpoint(&old, "before replacing the file");
        drop(old);
        for suffix in ["-wal", "-shm"] {
            for base in [&self.path, &from] {
                let mut name = base.as_os_str().to_owned();
                name.push(suffix);
                match std::fs::remove_file(PathBuf::from(name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(io(format!("removing {suffix} of {}", base.display()), e));
                    }
                }
            }
        }
        std::fs::rename(&from, &self.path).map_err(|e| {
            io(
                format!("renaming {} to {}", from.display(), self.path.display()),
                e,
            )
        })?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io(format!("syncing {}", dir.display()), e))?;
        }
        let conn = open_keyed(&self.path, &key, self.readers.durability())?;
        super::open::init_schema(&conn)?;
        let applied = read_applied_index(&conn)?;
        *writer = conn;
        self.applied_index.store(applied, Ordering::Release);
        drop(paused);
        Ok(())
    }
}
