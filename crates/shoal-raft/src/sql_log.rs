//! The shared Raft log of one node in a SQLCipher file ([`SqlLogStore`]).
//!
//! One encrypted SQLite database (same cipher settings as the storage engine's partition files:
//! raw 32-byte key, 4 KiB cipher pages, HMAC-SHA256, WAL, `synchronous = FULL`) holds the log
//! entries and the per-group hard state, conf state and snapshot position of every group of the
//! node. Every [`LogStore::write`] is one transaction, so one fsync covers all groups of a round.
//!
//! Entries are stored column-wise (term, type, data, context) rather than as encoded protobuf
//! messages, so the file format does not depend on the protobuf library.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use raft::eraftpb::{Entry, HardState};
use rusqlite::{Connection, ErrorCode, OpenFlags, params};

use crate::seg_log::{decode_conf, encode_conf, entry_kind, kind_entry_type};
use crate::{GroupId, GroupState, GroupWrite, LogBatch, LogStore, RaftError};

/// SQLCipher page size (as the storage engine's partition files).
const PAGE_SIZE: u32 = 4096;

/// HMAC of each page (as the storage engine's partition files: faster than the SHA-512 default).
const HMAC_ALGORITHM: &str = "HMAC_SHA256";

/// `entries` holds every group's log entries, `groups` one row per group with its hard state,
/// conf state and the position of the snapshot the log restarts after.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS entries (
        grp INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        term INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        data BLOB NOT NULL,
        context BLOB NOT NULL,
        PRIMARY KEY (grp, idx)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS groups (
        grp INTEGER PRIMARY KEY,
        hs_term INTEGER NOT NULL DEFAULT 0,
        hs_vote INTEGER NOT NULL DEFAULT 0,
        hs_commit INTEGER NOT NULL DEFAULT 0,
        conf BLOB NOT NULL DEFAULT x'',
        snap_index INTEGER NOT NULL DEFAULT 0,
        snap_term INTEGER NOT NULL DEFAULT 0
    );
";

/// The durable Raft log of all groups of one node, in a SQLCipher database file.
pub struct SqlLogStore {
    conn: Connection,
}

impl std::fmt::Debug for SqlLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlLogStore").finish_non_exhaustive()
    }
}

/// Maps a SQLite error to [`RaftError::Log`] with what was being done.
fn log_err(context: &str, e: rusqlite::Error) -> RaftError {
    RaftError::Log(format!("{context}: {e}"))
}

/// SQLite integers are signed: u64 values are stored bit for bit.
fn to_sql(v: u64) -> i64 {
    v as i64
}

/// The inverse of [`to_sql`].
fn from_sql(v: i64) -> u64 {
    v as u64
}

impl SqlLogStore {
    /// Opens (or creates) the log database at `path`, encrypted with the raw 32-byte `key`.
    /// A wrong key (or a file that is not a log database) is a [`RaftError::Log`].
    pub fn open(path: &Path, key: &[u8; 32]) -> Result<SqlLogStore, RaftError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| log_err(&format!("opening {}", path.display()), e))?;
        // The key must be the first statement; the cipher settings must follow before the first
        // page is read or written, and be the same on every open.
        let mut pragma = String::with_capacity(160);
        pragma.push_str("PRAGMA key = \"x'");
        for b in key {
            let _ = write!(pragma, "{b:02x}");
        }
        let _ = write!(
            pragma,
            "'\"; PRAGMA cipher_page_size = {PAGE_SIZE}; \
             PRAGMA cipher_hmac_algorithm = {HMAC_ALGORITHM};"
        );
        let keyed = conn.execute_batch(&pragma);
        // Best effort: do not leave the hex key in freed memory.
        let mut bytes = pragma.into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
        keyed.map_err(|e| log_err("setting the encryption key", e))?;
        match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        }) {
            Ok(_) => {}
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
                return Err(RaftError::Log(format!(
                    "cannot open the raft log {}: wrong key or not a log database ({e})",
                    path.display()
                )));
            }
            Err(e) => return Err(log_err("verifying the encryption key", e)),
        }
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| log_err("setting busy_timeout", e))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| log_err("enabling WAL mode", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(RaftError::Log(format!(
                "enabling WAL mode: the journal mode stayed {mode}"
            )));
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;")
            .map_err(|e| log_err("setting pragmas", e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| log_err("creating the log schema", e))?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(SqlLogStore { conn })
    }
}

/// Applies one group's part of a batch inside the open transaction.
fn write_group(tx: &rusqlite::Transaction<'_>, w: &GroupWrite) -> Result<(), RaftError> {
    let grp = to_sql(w.group);
    if w.removed {
        tx.prepare_cached("DELETE FROM entries WHERE grp = ?1")
            .and_then(|mut s| s.execute(params![grp]))
            .map_err(|e| log_err("removing a group's entries", e))?;
        tx.prepare_cached("DELETE FROM groups WHERE grp = ?1")
            .and_then(|mut s| s.execute(params![grp]))
            .map_err(|e| log_err("removing a group", e))?;
        return Ok(());
    }
    tx.prepare_cached("INSERT OR IGNORE INTO groups (grp) VALUES (?1)")
        .and_then(|mut s| s.execute(params![grp]))
        .map_err(|e| log_err("creating a group", e))?;
    if let Some((index, term, cs)) = &w.snapshot {
        tx.prepare_cached("DELETE FROM entries WHERE grp = ?1")
            .and_then(|mut s| s.execute(params![grp]))
            .map_err(|e| log_err("resetting a group's log to a snapshot", e))?;
        tx.prepare_cached(
            "UPDATE groups SET snap_index = ?2, snap_term = ?3, conf = ?4 WHERE grp = ?1",
        )
        .and_then(|mut s| s.execute(params![grp, to_sql(*index), to_sql(*term), encode_conf(cs)]))
        .map_err(|e| log_err("recording a snapshot", e))?;
    }
    if let Some(first) = w.entries.first() {
        tx.prepare_cached("DELETE FROM entries WHERE grp = ?1 AND idx >= ?2")
            .and_then(|mut s| s.execute(params![grp, to_sql(first.index)]))
            .map_err(|e| log_err("truncating a conflicting log suffix", e))?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO entries (grp, idx, term, kind, data, context) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(|e| log_err("preparing the entry insert", e))?;
        for e in &w.entries {
            insert
                .execute(params![
                    grp,
                    to_sql(e.index),
                    to_sql(e.term),
                    i64::from(entry_kind(e.entry_type)),
                    &e.data[..],
                    &e.context[..],
                ])
                .map_err(|err| log_err("appending log entries", err))?;
        }
    }
    if let Some(hs) = &w.hard_state {
        tx.prepare_cached(
            "UPDATE groups SET hs_term = ?2, hs_vote = ?3, hs_commit = ?4 WHERE grp = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                grp,
                to_sql(hs.term),
                to_sql(hs.vote),
                to_sql(hs.commit)
            ])
        })
        .map_err(|e| log_err("writing a hard state", e))?;
    }
    if let Some(cs) = &w.conf_state {
        tx.prepare_cached("UPDATE groups SET conf = ?2 WHERE grp = ?1")
            .and_then(|mut s| s.execute(params![grp, encode_conf(cs)]))
            .map_err(|e| log_err("writing a conf state", e))?;
    }
    if let Some(to) = w.compact_to {
        tx.prepare_cached("DELETE FROM entries WHERE grp = ?1 AND idx < ?2")
            .and_then(|mut s| s.execute(params![grp, to_sql(to)]))
            .map_err(|e| log_err("compacting a log", e))?;
    }
    Ok(())
}

impl LogStore for SqlLogStore {
    fn load(&mut self) -> Result<Vec<(GroupId, GroupState)>, RaftError> {
        let mut groups = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT grp, hs_term, hs_vote, hs_commit, conf, snap_index, snap_term \
                     FROM groups ORDER BY grp",
                )
                .map_err(|e| log_err("reading groups", e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                    ))
                })
                .map_err(|e| log_err("reading groups", e))?;
            for row in rows {
                let (grp, term, vote, commit, conf, snap_index, snap_term) =
                    row.map_err(|e| log_err("reading groups", e))?;
                let hard_state = HardState {
                    term: from_sql(term),
                    vote: from_sql(vote),
                    commit: from_sql(commit),
                    ..HardState::default()
                };
                groups.push((
                    from_sql(grp),
                    GroupState {
                        hard_state,
                        conf_state: decode_conf(&conf)?,
                        snapshot_index: from_sql(snap_index),
                        snapshot_term: from_sql(snap_term),
                        entries: Vec::new(),
                    },
                ));
            }
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT idx, term, kind, data, context FROM entries \
                 WHERE grp = ?1 AND idx > ?2 ORDER BY idx",
            )
            .map_err(|e| log_err("reading entries", e))?;
        for (grp, state) in &mut groups {
            let rows = stmt
                .query_map(params![to_sql(*grp), to_sql(state.snapshot_index)], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                    ))
                })
                .map_err(|e| log_err("reading entries", e))?;
            for row in rows {
                let (idx, term, kind, data, context) =
                    row.map_err(|e| log_err("reading entries", e))?;
                state.entries.push(Entry {
                    index: from_sql(idx),
                    term: from_sql(term),
                    entry_type: kind_entry_type(u8::try_from(kind).unwrap_or(u8::MAX))?,
                    data: data.into(),
                    context: context.into(),
                    ..Entry::default()
                });
            }
        }
        Ok(groups)
    }

    fn write(&mut self, batch: &LogBatch) -> Result<(), RaftError> {
        if batch.groups.is_empty() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction()
            .map_err(|e| log_err("starting a log write", e))?;
        for w in &batch.groups {
            write_group(&tx, w)?;
        }
        tx.commit()
            .map_err(|e| log_err("committing a log write", e))
    }
}
