//! Data-key rotation of one partition replica: [`Partition::rekey`].

use crate::{Partition, StorageError};

impl Partition {
    /// Re-encrypts the partition's store under `new_key` (see [`crate::Engine::rekey`]). Runs
    /// while the partition serves: concurrent `apply` and reads wait for it and then continue
    /// under the new key. Blocking; call it off the async threads.
    ///
    /// # Errors
    /// Engine failures; on error before the re-encryption committed, the store keeps its old
    /// key.
    pub fn rekey(&self, new_key: &[u8; 32]) -> Result<(), StorageError> {
        self.engine.rekey(new_key)
    }
}
