//! Read views (a snapshot streamed out) and staging files (a snapshot streamed in) of a
//! [`SqlCipherEngine`].
//!
//! - A read view is a connection of its own holding one read transaction: WAL mode keeps what
//!   it sees fixed while the writer goes on. The engine keeps a handle on each and closes them
//!   before it replaces or re-encrypts its file (the view then answers an error).
//! - A staging engine lives in a file of its own, `<file>.staging-<n>`, under the same key, so
//!   two snapshots streamed in one after the other never share a file: a second transfer that
//!   starts while the first is being adopted cannot truncate it. Adopting one checkpoints and
//!   closes it, closes every connection of the engine, renames the staging file over the
//!   engine's file (atomic: a crash leaves the old or the new file) and reopens.
//! - The engine knows which staging files are live (a staging engine holds a [`StagingGuard`]);
//!   the next [`SqlCipherEngine::open_staging`] removes any other (an abandoned transfer's), and
//!   opening the engine removes them all (a crash's).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rusqlite::Connection;

use super::open::{checkpoint, open_keyed, rekey_pragma};
use super::{SqlCipherEngine, read_applied_index, scan_on};
use crate::{Entry, ReadView, Space, StorageError};

/// Numbers the staging files of this process.
static NEXT_STAGING: AtomicU64 = AtomicU64::new(1);

/// The prefix of the staging files' names of the engine at `path`.
fn staging_prefix(path: &Path) -> std::ffi::OsString {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".staging");
    name
}

/// The staging files next to the engine at `path` (any number, from any process).
fn staging_files(path: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let prefix = staging_prefix(path);
    let prefix = prefix.as_encoded_bytes();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(format!("listing {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name();
        let bytes = name.as_encoded_bytes();
        // The database of a staging file (its -wal, -shm and -journal go with it).
        if bytes.starts_with(prefix)
            && !["-wal", "-shm", "-journal"]
                .iter()
                .any(|s| bytes.ends_with(s.as_bytes()))
        {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Removes every staging file of the engine at `path` (it must not be open).
pub(crate) fn remove_staging_files(path: &Path) -> Result<(), StorageError> {
    for file in staging_files(path)? {
        SqlCipherEngine::destroy(&file)?;
    }
    Ok(())
}

/// The staging files of an engine that a staging engine still holds.
pub(crate) type LiveStaging = Arc<Mutex<HashSet<PathBuf>>>;

/// Held by a staging engine: its file is live until the guard drops.
pub(crate) struct StagingGuard {
    live: LiveStaging,
    path: PathBuf,
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        self.live.lock().remove(&self.path);
    }
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
        let mut live = self.staging.lock();
        for file in staging_files(&self.path)? {
            if !live.contains(&file) {
                SqlCipherEngine::destroy(&file)?;
            }
        }
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(
            ".staging-{}",
            NEXT_STAGING.fetch_add(1, Ordering::Relaxed)
        ));
        let path = PathBuf::from(name);
        SqlCipherEngine::destroy(&path)?;
        let mut engine =
            SqlCipherEngine::open_file(&path, &self.readers.key(), self.readers.durability())?;
        live.insert(path.clone());
        engine.guard = Some(StagingGuard {
            live: Arc::clone(&self.staging),
            path,
        });
        Ok(engine)
    }

    /// Swaps the staging engine's file in for this engine's.
    pub(super) fn adopt_staging(&self, staged: SqlCipherEngine) -> Result<(), StorageError> {
        let from = staged.path.clone();
        let ours = staged
            .guard
            .as_ref()
            .is_some_and(|g| Arc::ptr_eq(&g.live, &self.staging));
        if !ours {
            return Err(StorageError::Corrupt {
                context: format!(
                    "{} is not the staging file of {}",
                    staged.path.display(),
                    self.path.display()
                ),
            });
        }
        let mut staged = staged;
        // Its file stays live until it has been renamed over the engine's.
        let guard = staged.guard.take();
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
        drop(guard);
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
