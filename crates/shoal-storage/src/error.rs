//! [`StorageError`]: what can go wrong below the state machine.

use std::path::PathBuf;

/// An error from a storage engine or from decoding what it stored.
///
/// The variants separate the cases an operator must tell apart: a wrong encryption key
/// ([`StorageError::WrongKey`]), damaged bytes ([`StorageError::Corrupt`]), the file system
/// ([`StorageError::Io`]) and any other database failure ([`StorageError::Sqlite`]).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database file cannot be read with the given key: SQLCipher reports "file is not a
    /// database" when the key is wrong (or the file is not a SQLCipher database at all).
    #[error("wrong encryption key for {path} (or not a database file): {message}")]
    WrongKey {
        /// The database file.
        path: PathBuf,
        /// SQLite's message.
        message: String,
    },
    /// Stored bytes do not decode: a damaged page, a malformed stored item or metadata row.
    #[error("corrupt data: {context}")]
    Corrupt {
        /// What was being read and why it failed.
        context: String,
    },
    /// A file-system operation failed (open, remove, disk full, I/O error reported by SQLite).
    #[error("I/O error: {context}: {source}")]
    Io {
        /// The operation and the file.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Any other SQLite/SQLCipher failure.
    #[error("database error: {context}: {source}")]
    Sqlite {
        /// The operation that failed.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// A key passed to a read does not carry the table's key attributes with their schema types.
    #[error("invalid key: {0}")]
    InvalidKey(String),
}

impl StorageError {
    /// Maps a SQLite error raised while doing `context`, separating corruption and I/O failures.
    pub(crate) fn sqlite(context: &'static str, err: rusqlite::Error) -> StorageError {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt) => StorageError::Corrupt {
                context: format!("{context}: {err}"),
            },
            Some(ErrorCode::SystemIoFailure | ErrorCode::DiskFull | ErrorCode::CannotOpen) => {
                StorageError::Io {
                    context: context.to_string(),
                    source: std::io::Error::other(err.to_string()),
                }
            }
            _ => StorageError::Sqlite {
                context,
                source: err,
            },
        }
    }
}
