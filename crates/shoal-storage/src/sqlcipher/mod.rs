//! [`SqlCipherEngine`]: one encrypted SQLite (SQLCipher) database file per partition replica.

mod open;
mod pool;
mod stage;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::{Durability, Engine, Entry, Space, StorageError, WriteBatch};
use open::{checkpoint, init_schema, open_keyed, rekey_pragma, verify_key};
use pool::ReaderPool;

/// Reader connections per engine (opened on demand).
const MAX_READERS: usize = 4;

/// An [`Engine`] on one SQLCipher database file (AES-256 pages with HMAC).
///
/// Layout: a rowid table `kv(id, k UNIQUE, v)` for [`Space::Items`], two more of the same shape
/// (`ix` for [`Space::Index`], `ob` for [`Space::Outbox`]), 4 KB pages (HMAC-SHA256) in WAL
/// mode, and a `meta` row holding the applied index, written in the same transaction as each
/// batch. One writer
/// connection behind a mutex; up to four reader connections read beside it.
///
/// Every byte of the file, the WAL and the shared-memory index that holds data is ciphertext;
/// a wrong key fails [`SqlCipherEngine::open`] with [`StorageError::WrongKey`].
pub struct SqlCipherEngine {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: ReaderPool,
    applied_index: AtomicU64,
    /// The connections of the read views handed out ([`Engine::read_view`]), closed before the
    /// file is replaced or re-encrypted.
    views: stage::Views,
    /// The staging files of this engine that a staging engine still holds.
    staging: stage::LiveStaging,
    /// Set on a staging engine: marks its file live in its engine's `staging` until dropped.
    /// Declared last, so the connections above close first.
    guard: Option<stage::StagingGuard>,
}

impl std::fmt::Debug for SqlCipherEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlCipherEngine")
            .field("path", &self.path)
            .field("applied_index", &self.applied_index.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SqlCipherEngine {
    /// Opens (creating if absent) the database at `path`, encrypted with the raw 256-bit `key`.
    ///
    /// # Errors
    /// [`StorageError::WrongKey`] when the file exists but `key` does not decrypt it (or it is
    /// not a database); [`StorageError::Io`] when the file cannot be opened or created.
    pub fn open(path: &Path, key: &[u8; 32], durability: Durability) -> Result<Self, StorageError> {
        // Snapshots being streamed in when the node stopped: never adopted, so garbage.
        stage::remove_staging_files(path)?;
        Self::open_file(path, key, durability)
    }

    /// Opens (creating if absent) the database at `path`, leaving staging files alone.
    fn open_file(
        path: &Path,
        key: &[u8; 32],
        durability: Durability,
    ) -> Result<Self, StorageError> {
        let writer = open_keyed(path, key, durability)?;
        init_schema(&writer)?;
        let applied = read_applied_index(&writer)?;
        Ok(SqlCipherEngine {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: ReaderPool::new(path.to_path_buf(), *key, durability, MAX_READERS),
            applied_index: AtomicU64::new(applied),
            views: stage::Views::default(),
            staging: stage::LiveStaging::default(),
            guard: None,
        })
    }

    /// Removes the database at `path` and its `-wal` and `-shm` files. Missing files are fine.
    /// The engine must not be open.
    ///
    /// # Errors
    /// [`StorageError::Io`] when a file exists and cannot be removed.
    pub fn destroy(path: &Path) -> Result<(), StorageError> {
        let mut files = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            files.push(PathBuf::from(name));
        }
        for file in files {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(StorageError::Io {
                        context: format!("removing {}", file.display()),
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read_applied_index(conn: &Connection) -> Result<u64, StorageError> {
    let index: Option<i64> = conn
        .query_row("SELECT applied_index FROM meta WHERE id = 0", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| StorageError::sqlite("reading the applied index", e))?;
    match index {
        Some(i) => Ok(u64::from_be_bytes(i.to_be_bytes())),
        None => Err(StorageError::Corrupt {
            context: "the meta row with the applied index is missing".to_string(),
        }),
    }
}

/// SQLite stores integers as i64; indexes are stored bit-for-bit.
fn index_to_sql(index: u64) -> i64 {
    i64::from_be_bytes(index.to_be_bytes())
}

fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The SQL table of a space.
fn table(space: Space) -> &'static str {
    match space {
        Space::Items => "kv",
        Space::Index => "ix",
        Space::Outbox => "ob",
    }
}

/// The SELECT for each combination of bounds and direction, in `space`'s table.
fn scan_sql(space: Space, has_start: bool, has_end: bool, reverse: bool) -> String {
    let bounds = match (has_start, has_end) {
        (false, false) => "",
        (true, false) => "WHERE k >= ?2 ",
        (false, true) => "WHERE k < ?3 ",
        (true, true) => "WHERE k >= ?2 AND k < ?3 ",
    };
    let order = if reverse { "DESC" } else { "ASC" };
    format!(
        "SELECT k, v FROM {} {bounds}ORDER BY k {order} LIMIT ?1",
        table(space)
    )
}

/// The value under `key` in `space`, read on `conn`.
fn get_on(conn: &Connection, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
    let sql = match space {
        Space::Items => "SELECT v FROM kv WHERE k = ?1",
        Space::Index => "SELECT v FROM ix WHERE k = ?1",
        Space::Outbox => "SELECT v FROM ob WHERE k = ?1",
    };
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| StorageError::sqlite("preparing get", e))?;
    stmt.query_row([key], |r| r.get::<_, Vec<u8>>(0))
        .optional()
        .map_err(|e| StorageError::sqlite("get", e))
}

/// Entries of `space` with `start <= key < end`, as [`Engine::scan_in`], on `conn`.
fn scan_on(
    conn: &Connection,
    space: Space,
    start: Option<&[u8]>,
    end: Option<&[u8]>,
    reverse: bool,
    limit: usize,
) -> Result<Vec<Entry>, StorageError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let sql = scan_sql(space, start.is_some(), end.is_some(), reverse);
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(|e| StorageError::sqlite("preparing scan", e))?;
    // Parameters keep fixed numbers (?1 limit, ?2 start, ?3 end) in every statement shape.
    for (i, bound) in [(2, start), (3, end)] {
        if let Some(b) = bound {
            stmt.raw_bind_parameter(i, b)
                .map_err(|e| StorageError::sqlite("binding scan bounds", e))?;
        }
    }
    stmt.raw_bind_parameter(1, limit_to_sql(limit))
        .map_err(|e| StorageError::sqlite("binding scan limit", e))?;
    let mut rows = stmt.raw_query();
    let mut out = Vec::with_capacity(limit.min(1024));
    while let Some(row) = rows.next().map_err(|e| StorageError::sqlite("scan", e))? {
        let k: Vec<u8> = row
            .get(0)
            .map_err(|e| StorageError::sqlite("scan key", e))?;
        let v: Vec<u8> = row
            .get(1)
            .map_err(|e| StorageError::sqlite("scan value", e))?;
        out.push((k, v));
    }
    Ok(out)
}

impl Engine for SqlCipherEngine {
    fn get_in(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let reader = self.readers.get()?;
        get_on(reader.conn()?, space, key)
    }

    /// `None` when no reader connection is idle (all busy, none opened yet, or a rekey is
    /// running): opening one or waiting for one is left to a blocking thread.
    fn try_get_in(
        &self,
        space: Space,
        key: &[u8],
    ) -> Option<Result<Option<Vec<u8>>, StorageError>> {
        let reader = self.readers.try_get()?;
        Some(reader.conn().and_then(|conn| get_on(conn, space, key)))
    }

    /// Reads on the writer connection (waits for a write or rekey in progress). Its page
    /// cache is still valid after its own commits, unlike a reader's, and the pages it reads
    /// are those the next write modifies: under group commit this avoids re-decrypting the
    /// b-tree path of every written key.
    fn get_for_write(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let conn = self.writer.lock();
        get_on(&conn, space, key)
    }

    fn scan_in(
        &self,
        space: Space,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let reader = self.readers.get()?;
        scan_on(reader.conn()?, space, start, end, reverse, limit)
    }

    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        let mut conn = self.writer.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StorageError::sqlite("beginning a write", e))?;
        {
            for space in Space::ALL {
                let mut deletes = batch.deletes_in(space).peekable();
                if deletes.peek().is_some() {
                    let sql = format!("DELETE FROM {} WHERE k = ?1", table(space));
                    let mut del = tx
                        .prepare_cached(&sql)
                        .map_err(|e| StorageError::sqlite("preparing delete", e))?;
                    for key in deletes {
                        del.execute([key])
                            .map_err(|e| StorageError::sqlite("delete", e))?;
                    }
                }
                let mut puts = batch.puts_in(space).peekable();
                if puts.peek().is_some() {
                    let sql = format!(
                        "INSERT INTO {} (k, v) VALUES (?1, ?2) \
                         ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                        table(space)
                    );
                    let mut put = tx
                        .prepare_cached(&sql)
                        .map_err(|e| StorageError::sqlite("preparing put", e))?;
                    for (key, value) in puts {
                        put.execute(params![key, value])
                            .map_err(|e| StorageError::sqlite("put", e))?;
                    }
                }
            }
            let mut meta = tx
                .prepare_cached("UPDATE meta SET applied_index = ?1 WHERE id = 0")
                .map_err(|e| StorageError::sqlite("preparing the applied index update", e))?;
            meta.execute([index_to_sql(batch.applied_index)])
                .map_err(|e| StorageError::sqlite("recording the applied index", e))?;
        }
        tx.commit()
            .map_err(|e| StorageError::sqlite("committing a write", e))?;
        self.applied_index
            .store(batch.applied_index, Ordering::Release);
        Ok(())
    }

    fn applied_index(&self) -> Result<u64, StorageError> {
        Ok(self.applied_index.load(Ordering::Acquire))
    }

    /// Fsyncs the write-ahead log and the database file: every transaction committed so far is
    /// in one of them (the WAL is only rewound after a checkpoint copied it into the database
    /// file and synced it). The writer is held, so no commit is half-written meanwhile.
    fn sync(&self) -> Result<(), StorageError> {
        let _writer = self.writer.lock();
        let mut wal = self.path.as_os_str().to_os_string();
        wal.push("-wal");
        for file in [std::path::PathBuf::from(wal), self.path.clone()] {
            let synced = std::fs::File::open(&file).and_then(|f| f.sync_data());
            match synced {
                Ok(()) => {}
                // No WAL (nothing written since the last checkpoint closed it).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && file != self.path => {}
                Err(source) => {
                    return Err(StorageError::Io {
                        context: format!("syncing {}", file.display()),
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Takes the writer (writes wait), pauses the reader pool and closes every reader (reads
    /// wait once the in-flight ones are done), runs `PRAGMA rekey` between two WAL checkpoints,
    /// and resumes readers with the new key. Takes about as long as rewriting the file.
    fn rekey(&self, new_key: &[u8; 32]) -> Result<(), StorageError> {
        let writer = self.writer.lock();
        let paused = self.readers.pause();
        // A read view's transaction would block the checkpoints (its snapshot transfer fails and
        // is retried).
        self.views.close_all();
        checkpoint(&writer, "before the rekey")?;
        rekey_pragma(&writer, new_key)?;
        // From here the file is under the new key, whatever happens next.
        paused.set_key(new_key);
        checkpoint(&writer, "after the rekey")?;
        verify_key(&writer, &self.path)
    }

    fn read_view(&self) -> Result<Box<dyn crate::ReadView>, StorageError> {
        self.open_view()
    }

    fn stage(&self) -> Result<Box<dyn Engine>, StorageError> {
        Ok(Box::new(self.open_staging()?))
    }

    fn adopt(&self, staged: Box<dyn Engine>) -> Result<(), StorageError> {
        let staged = staged
            .into_any()
            .downcast::<SqlCipherEngine>()
            .map_err(|_| StorageError::Corrupt {
                context: "a staged engine of another kind".to_string(),
            })?;
        self.adopt_staging(*staged)
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn put(engine: &SqlCipherEngine, index: u64, key: &[u8], value: &[u8]) {
        let mut batch = WriteBatch::new(index);
        batch.put(key.to_vec(), value.to_vec());
        engine.write(&batch).unwrap();
    }

    /// A relaxed engine's writes are in its WAL, not yet fsync'd; `sync` fsyncs the WAL and the
    /// file (also when there is no WAL), and a reopen sees every write.
    #[test]
    fn a_relaxed_engine_syncs_its_wal_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let engine = SqlCipherEngine::open(&path, &KEY, Durability::Relaxed).expect("open");
        for i in 1..=20u64 {
            put(&engine, i, format!("k{i}").as_bytes(), b"v");
        }
        assert!(
            dir.path().join("p.db-wal").exists(),
            "writes are in the WAL"
        );
        engine.sync().expect("sync");
        // Closing checkpoints the WAL into the file and removes it.
        drop(engine);
        let engine = SqlCipherEngine::open(&path, &KEY, Durability::Relaxed).expect("reopen");
        assert_eq!(engine.applied_index().unwrap(), 20);
        engine.sync().expect("sync without a WAL");
        assert_eq!(engine.get(b"k20").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn try_get_never_opens_or_waits_for_a_reader_and_sees_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let engine =
            SqlCipherEngine::open(&dir.path().join("p.db"), &KEY, Durability::Sync).expect("open");
        put(&engine, 1, b"k", b"v1");
        // No reader opened yet: the caller must go to a blocking thread.
        assert!(engine.try_get_in(Space::Items, b"k").is_none());
        assert_eq!(engine.get(b"k").unwrap(), Some(b"v1".to_vec()));
        // Now one is idle.
        assert_eq!(
            engine.try_get_in(Space::Items, b"k").unwrap().unwrap(),
            Some(b"v1".to_vec())
        );
        put(&engine, 2, b"k", b"v2");
        assert_eq!(
            engine.try_get_in(Space::Items, b"k").unwrap().unwrap(),
            Some(b"v2".to_vec())
        );
        // While a rekey has the readers paused, nothing is handed out.
        {
            let _paused = engine.readers.pause();
            assert!(engine.try_get_in(Space::Items, b"k").is_none());
        }
        assert_eq!(engine.get(b"k").unwrap(), Some(b"v2".to_vec()));
    }

    fn staging_files_in(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".staging") && !n.ends_with("-wal") && !n.ends_with("-shm"))
            .count()
    }

    /// A snapshot transfer that starts while an earlier one waits to be adopted (Raft offers a
    /// snapshot again before the first is installed) gets a file of its own: adopting the first
    /// installs exactly its content. An abandoned staging file goes at the next staging, and
    /// every one goes when the engine opens.
    #[test]
    fn a_second_staging_never_touches_one_waiting_to_be_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let engine =
            SqlCipherEngine::open(&dir.path().join("p.db"), &KEY, Durability::Sync).expect("open");
        put(&engine, 1, b"old", b"1");
        let first = engine.stage().unwrap();
        let mut batch = WriteBatch::new(5);
        batch.put(b"a".to_vec(), b"first".to_vec());
        first.write(&batch).unwrap();
        let second = engine.stage().unwrap();
        let mut batch = WriteBatch::new(6);
        batch.put(b"b".to_vec(), b"second".to_vec());
        second.write(&batch).unwrap();
        assert_eq!(staging_files_in(dir.path()), 2);
        engine.adopt(first).unwrap();
        assert_eq!(engine.get(b"a").unwrap(), Some(b"first".to_vec()));
        assert_eq!(engine.get(b"old").unwrap(), None);
        assert_eq!(engine.get(b"b").unwrap(), None);
        assert_eq!(Engine::applied_index(&engine).unwrap(), 5);
        drop(second);
        let third = engine.stage().unwrap();
        assert_eq!(staging_files_in(dir.path()), 1, "the abandoned file stayed");
        // A staging engine of another engine is refused.
        let other =
            SqlCipherEngine::open(&dir.path().join("q.db"), &KEY, Durability::Sync).expect("open");
        assert!(other.adopt(third).is_err());
        drop(engine);
        let engine =
            SqlCipherEngine::open(&dir.path().join("p.db"), &KEY, Durability::Sync).expect("open");
        assert_eq!(staging_files_in(dir.path()), 0);
        assert_eq!(engine.get(b"a").unwrap(), Some(b"first".to_vec()));
    }

    #[test]
    fn get_for_write_reads_what_the_writer_committed() {
        let dir = tempfile::tempdir().unwrap();
        let engine =
            SqlCipherEngine::open(&dir.path().join("p.db"), &KEY, Durability::Sync).expect("open");
        assert_eq!(engine.get_for_write(Space::Items, b"k").unwrap(), None);
        put(&engine, 1, b"k", b"v1");
        assert_eq!(
            engine.get_for_write(Space::Items, b"k").unwrap(),
            Some(b"v1".to_vec())
        );
        let mut batch = WriteBatch::new(2);
        batch.delete(b"k".to_vec());
        batch.put_in(Space::Index, b"i".to_vec(), b"x".to_vec());
        engine.write(&batch).unwrap();
        assert_eq!(engine.get_for_write(Space::Items, b"k").unwrap(), None);
        assert_eq!(
            engine.get_for_write(Space::Index, b"i").unwrap(),
            Some(b"x".to_vec())
        );
        // Readers agree.
        assert_eq!(
            engine.get_in(Space::Index, b"i").unwrap(),
            Some(b"x".to_vec())
        );
    }
}
