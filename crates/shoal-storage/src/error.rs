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
    #[error(
        "cannot decrypt {path}: wrong encryption key, or the file is damaged (corrupt) or not a \
         database: {message}"
    )]
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
    /// The file system has no space left (SQLite's `SQLITE_FULL`, `ENOSPC`): the write that hit
    /// it was rolled back and nothing of it is visible. Writes can resume once space is freed.
    #[error("disk full: {context}")]
    DiskFull {
        /// The operation and SQLite's message.
        context: String,
    },
    /// A file-system operation failed (open, remove, I/O error reported by SQLite).
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
    /// The secondary index id is not set on the partition (or not of the kind required).
    #[error("unknown secondary index id {0}")]
    UnknownIndex(u32),
}

impl StorageError {
    /// Maps a SQLite error raised while doing `context`, separating corruption and I/O failures.
    pub(crate) fn sqlite(context: &'static str, err: rusqlite::Error) -> StorageError {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt) => StorageError::Corrupt {
                context: format!("{context}: {err}"),
            },
            Some(ErrorCode::DiskFull) => StorageError::DiskFull {
                context: format!("{context}: {err}"),
            },
            Some(ErrorCode::SystemIoFailure | ErrorCode::CannotOpen) => StorageError::Io {
                context: context.to_string(),
                source: std::io::Error::other(err.to_string()),
            },
            _ => StorageError::Sqlite {
                context,
                source: err,
            },
        }
    }

    /// A copy of this error for reporting the same failure to several callers (a failed group
    /// commit fails every command of its batch). Variants whose source cannot be cloned keep
    /// their message: an [`StorageError::Sqlite`] copy keeps SQLite's error code.
    pub fn duplicate(&self) -> StorageError {
        match self {
            StorageError::WrongKey { path, message } => StorageError::WrongKey {
                path: path.clone(),
                message: message.clone(),
            },
            StorageError::Corrupt { context } => StorageError::Corrupt {
                context: context.clone(),
            },
            StorageError::DiskFull { context } => StorageError::DiskFull {
                context: context.clone(),
            },
            StorageError::Io { context, source } => StorageError::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            StorageError::Sqlite { context, source } => StorageError::Sqlite {
                context,
                source: match source {
                    rusqlite::Error::SqliteFailure(code, message) => {
                        rusqlite::Error::SqliteFailure(*code, message.clone())
                    }
                    other => rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                        Some(other.to_string()),
                    ),
                },
            },
            StorageError::InvalidKey(m) => StorageError::InvalidKey(m.clone()),
            StorageError::UnknownIndex(id) => StorageError::UnknownIndex(*id),
        }
    }

    /// Names the file the error happened in (when the message does not already), so a
    /// corrupt page or a full disk is reported with the partition file it concerns.
    pub fn in_file(self, path: &std::path::Path) -> StorageError {
        let at = |context: String| {
            let shown = path.display().to_string();
            if context.contains(&shown) {
                context
            } else {
                format!("{context} (file {shown})")
            }
        };
        match self {
            StorageError::Corrupt { context } => StorageError::Corrupt {
                context: at(context),
            },
            StorageError::DiskFull { context } => StorageError::DiskFull {
                context: at(context),
            },
            StorageError::Io { context, source } => StorageError::Io {
                context: at(context),
                source,
            },
            other => other,
        }
    }
}
