//! Opening and keying one SQLCipher connection, and the schema.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use zeroize::Zeroizing;

use crate::{Durability, StorageError};

/// Page size of partition files (SQLCipher encrypts and authenticates whole pages). Measured
/// here (`tests/sqlcipher_bench.rs`, 1 KB values): 4 KB pages match 16 KB pages for 100-row
/// batches (~36 k inserts/s) and double one-row commits (11.5 k/s vs 5.9 k/s; every commit
/// re-encrypts each dirty page) and point reads that miss the cache (each miss decrypts a page).
pub(crate) const PAGE_SIZE: u32 = 4096;

/// HMAC of each page: SHA-256 uses the SHA extensions of current x86 and ARM CPUs and measured
/// 1.3-2x faster than SQLCipher's default SHA-512 for reads and writes.
const HMAC_ALGORITHM: &str = "HMAC_SHA256";

/// Page cache per connection, in KiB (SQLite's negative `cache_size`). Filled only as pages are
/// read; a cache miss costs a page decryption, so this bounds the decrypted working set.
const CACHE_KIB: u32 = 16 * 1024;

/// Prepared statements kept per connection (the engine uses about 35 distinct ones: get, put,
/// delete and eight scan shapes per space, and the applied-index update).
const STATEMENT_CACHE: usize = 64;

/// The schema: values live in rowid tables so new rows append; only the small `UNIQUE` key
/// index is written at random. `kv` holds items, `ix` secondary index entries and `ob` the
/// outbox (created on open when missing, so files of older versions gain them).
/// `meta` holds the single row with the applied index.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS kv (
        id INTEGER PRIMARY KEY,
        k BLOB NOT NULL UNIQUE,
        v BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS ix (
        id INTEGER PRIMARY KEY,
        k BLOB NOT NULL UNIQUE,
        v BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS ob (
        id INTEGER PRIMARY KEY,
        k BLOB NOT NULL UNIQUE,
        v BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS meta (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        applied_index INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO meta (id, applied_index) VALUES (0, 0);
";

/// Opens a connection to `path`, keys it with the raw 32-byte `key` and checks the key by
/// reading `sqlite_master`.
pub(crate) fn open_keyed(
    path: &Path,
    key: &[u8; 32],
    durability: Durability,
) -> Result<Connection, StorageError> {
    let mut attempt = 1;
    loop {
        match open_keyed_once(path, key, durability) {
            Err(e) if attempt < KEY_ATTEMPTS && is_transient_key_failure(&e) => {
                tracing::warn!(path = %path.display(), attempt, error = %e, "keying the file failed; opening it again");
                attempt += 1;
                std::thread::sleep(Duration::from_millis(10 * u64::from(attempt)));
            }
            other => return other,
        }
    }
}

/// How many times [`open_keyed`] tries to key a connection.
const KEY_ATTEMPTS: u32 = 3;

/// Whether keying failed inside SQLCipher's codec set-up (its generic "An error occurred with
/// PRAGMA key" error: a new file's salt comes from OpenSSL's `RAND_bytes`, and a run of the
/// parallel storage tests saw it fail once, on a fresh file with a valid key). Nothing has been
/// read or written at that point, so a fresh connection may try again. A wrong key is not this
/// error: it fails later, in [`verify_key`].
fn is_transient_key_failure(e: &StorageError) -> bool {
    matches!(e, StorageError::Sqlite { context, .. } if *context == KEYING)
}

/// The context of a failed `PRAGMA key`.
const KEYING: &str = "setting the encryption key";

fn open_keyed_once(
    path: &Path,
    key: &[u8; 32],
    durability: Durability,
) -> Result<Connection, StorageError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| StorageError::Io {
        context: format!("opening {}", path.display()),
        source: std::io::Error::other(e.to_string()),
    })?;
    // The key must be the first statement on the connection; the cipher settings must follow
    // before the first page is read or written, and be the same on every open.
    let pragma = Zeroizing::new(format!(
        "PRAGMA key = \"x'{}'\"; PRAGMA cipher_page_size = {PAGE_SIZE}; \
         PRAGMA cipher_hmac_algorithm = {HMAC_ALGORITHM};",
        hex(key).as_str()
    ));
    conn.execute_batch(&pragma)
        .map_err(|e| StorageError::sqlite(KEYING, e))?;
    verify_key(&conn, path)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| StorageError::sqlite("setting busy_timeout", e))?;
    let synchronous = match durability {
        Durability::Sync => "FULL",
        Durability::Relaxed => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA temp_store = MEMORY; \
         PRAGMA cache_size = -{CACHE_KIB};"
    ))
    .map_err(|e| StorageError::sqlite("setting pragmas", e))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Reads `sqlite_master`: with a wrong key SQLCipher cannot authenticate page 1 and reports
/// "file is not a database", which becomes [`StorageError::WrongKey`].
pub(crate) fn verify_key(conn: &Connection, path: &Path) -> Result<(), StorageError> {
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            Err(StorageError::WrongKey {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        }
        Err(e) => Err(StorageError::sqlite("verifying the encryption key", e)),
    }
}

/// Switches the file to WAL mode and creates the schema (idempotent). Run once, on the writer.
pub(crate) fn init_schema(conn: &Connection) -> Result<(), StorageError> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| StorageError::sqlite("enabling WAL mode", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::Io {
            context: "enabling WAL mode".to_string(),
            source: std::io::Error::other(format!("journal_mode is {mode}, not wal")),
        });
    }
    conn.execute_batch(SCHEMA)
        .map_err(|e| StorageError::sqlite("creating the schema", e))
}

/// Re-encrypts every page of the database under `new_key` with SQLCipher's `PRAGMA rekey`.
/// Run it on the writer while no other connection is open, between two [`checkpoint`]s (before:
/// no frame under the old key outlives the rekey; after: the main file holds only pages under
/// the new key). The rekey itself is one transaction: a crash leaves the old or the new key,
/// never a mix.
pub(crate) fn rekey_pragma(conn: &Connection, new_key: &[u8; 32]) -> Result<(), StorageError> {
    let pragma = Zeroizing::new(format!("PRAGMA rekey = \"x'{}'\";", hex(new_key).as_str()));
    conn.execute_batch(&pragma)
        .map_err(|e| StorageError::sqlite("re-encrypting with the new key", e))
}

/// `PRAGMA wal_checkpoint(TRUNCATE)`; fails if the checkpoint could not copy every frame.
pub(crate) fn checkpoint(conn: &Connection, when: &str) -> Result<(), StorageError> {
    let (busy, _log, _copied): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(|e| StorageError::sqlite("checkpointing the WAL", e))?;
    if busy != 0 {
        return Err(StorageError::Io {
            context: format!("checkpointing the WAL {when}"),
            source: std::io::Error::other("the checkpoint was blocked by another connection"),
        });
    }
    Ok(())
}

/// Lowercase hex of the key, for `PRAGMA key = "x'...'"`; zeroised when dropped.
fn hex(bytes: &[u8]) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}
