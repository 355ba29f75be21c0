//! Mapping storage failures of a partition to the API's errors.

use std::path::Path;

use shoal_catalog::DataError;
use shoal_storage::{ApplyError, StorageError};

/// A storage failure of the partition in `path`, for the API: typed (so disk-full and corruption
/// reach the client as such) and naming the file (for the log).
pub(crate) fn storage_failure(e: StorageError, path: &Path) -> DataError {
    if let StorageError::UnknownIndex(id) = e {
        // The index went away between validation and the read.
        return DataError::IndexNotFound(id.to_string());
    }
    DataError::Apply(ApplyError::Storage(e.in_file(path)))
}

/// A failed replicated write's storage error (already naming its file), for the API.
pub(crate) fn replicated_failure(e: StorageError) -> DataError {
    if let StorageError::UnknownIndex(id) = e {
        return DataError::IndexNotFound(id.to_string());
    }
    DataError::Apply(ApplyError::Storage(e))
}
