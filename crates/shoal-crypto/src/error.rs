//! [`CryptoError`]: every failure of the key hierarchy and the record cipher.

use std::path::PathBuf;

use crate::KeyId;

/// An error from key management or from sealing/opening data.
///
/// Messages never contain key material. Errors that concern a key directory name the directory, so an operator
/// who sees the node refuse to start knows where to look.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Authenticated decryption failed: the data was tampered with or torn, or it was sealed under a different
    /// key or context. Never returned as data.
    #[error(
        "{what} failed authentication (corrupt, tampered, or sealed with a different key or context)"
    )]
    Corrupt {
        /// What was being decrypted, e.g. `"record"` or `"wrapped key for table t1"`.
        what: String,
    },

    /// Input that is structurally invalid (too short, unknown version byte, bad encoding).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed.
        what: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A wrapped key names a master key that the provider does not have.
    #[error(
        "master key {id} is not known to {location}; is this the right key directory / key provider?"
    )]
    UnknownMasterKey {
        /// The master key id recorded in the wrapped key.
        id: KeyId,
        /// The provider's location (for the file provider, the key directory).
        location: String,
    },

    /// A wrapped key names a master key that was retired (its material destroyed) after rotation.
    #[error(
        "master key {id} in {location} has been retired; data keys wrapped by it can no longer be unwrapped"
    )]
    RetiredMasterKey {
        /// The retired master key id.
        id: KeyId,
        /// The provider's location.
        location: String,
    },

    /// `retire` was asked to retire the key currently used for wrapping.
    #[error("master key {id} is the current wrapping key and cannot be retired; rotate first")]
    RetireCurrent {
        /// The current master key id.
        id: KeyId,
    },

    /// The key directory is missing, empty, unreadable, corrupt, or has unsafe contents.
    #[error("key directory {}: {reason}", dir.display())]
    KeyDir {
        /// The key directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// An I/O error on a key file.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The key ring has no data key loaded for this table.
    #[error("no data key is loaded for table {table_id}")]
    NoDataKey {
        /// The table id.
        table_id: String,
    },

    /// [`crate::KeyRing::create_data_key`] was called for a table that already has a data key loaded.
    #[error("table {table_id} already has a data key")]
    DataKeyExists {
        /// The table id.
        table_id: String,
    },

    /// A record sealer used up its nonce space; start a new stream (new [`crate::RecordSealer`]).
    #[error("record nonce sequence exhausted; start a new record stream")]
    NonceExhausted,

    /// The operating system's random number generator or the cipher library failed.
    #[error("cryptographic library failure: {0}")]
    Library(&'static str),

    /// AWS KMS (or a KMS-compatible server) answered a request with an error, e.g. `NotFoundException`,
    /// `DisabledException`, `AccessDeniedException`, `InvalidCiphertextException` (wrong encryption context
    /// or a ciphertext made by another key).
    #[error("KMS {operation} with key {key} at {endpoint} failed: {error_type}: {message}")]
    Kms {
        /// The KMS endpoint URL.
        endpoint: String,
        /// The KMS operation, e.g. `Decrypt`.
        operation: &'static str,
        /// The key id, ARN or alias the request named (`-` if none).
        key: String,
        /// The KMS error type (`__type` without its namespace), e.g. `DisabledException`.
        error_type: String,
        /// KMS's message.
        message: String,
    },

    /// A KMS request could not be completed: the endpoint is unreachable, timed out, or did not answer like
    /// KMS.
    #[error("KMS {operation} at {endpoint} failed: {reason}")]
    KmsTransport {
        /// The KMS endpoint URL.
        endpoint: String,
        /// The KMS operation.
        operation: &'static str,
        /// What went wrong.
        reason: String,
    },

    /// A data key is wrapped by a KMS key, but this node has no KMS endpoint configured.
    #[error(
        "data key is wrapped by KMS key {key_id}, but no KMS endpoint is configured (--kms-endpoint / SHOAL_KMS_ENDPOINT)"
    )]
    KmsNotConfigured {
        /// The KMS key that wrapped the data key.
        key_id: KeyId,
    },

    /// A failure specific to a key provider (for example a remote KMS being unreachable).
    #[error("key provider {provider}: {message}")]
    Provider {
        /// The provider name.
        provider: String,
        /// What went wrong.
        message: String,
    },
}

impl CryptoError {
    /// For [`CryptoError::Kms`], the KMS error type (e.g. `NotFoundException`); `None` for other errors.
    pub fn kms_error_type(&self) -> Option<&str> {
        match self {
            CryptoError::Kms { error_type, .. } => Some(error_type),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> CryptoError {
        CryptoError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn key_dir(dir: impl Into<PathBuf>, reason: impl Into<String>) -> CryptoError {
        CryptoError::KeyDir {
            dir: dir.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> CryptoError {
        CryptoError::Corrupt { what: what.into() }
    }

    pub(crate) fn malformed(what: impl Into<String>, reason: impl Into<String>) -> CryptoError {
        CryptoError::Malformed {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
