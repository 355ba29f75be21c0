//! [`KeyRing`]: the node-side cache of unwrapped data keys (one per table, one for the node).

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::fsutil;
use crate::{CryptoError, DataKey, KeyId, KeyProvider, KmsClient, WrapAlgorithm, WrappedKey};

/// File name, inside the data directory, of the node data key wrapped by the master key
/// (see [`KeyRing::open_in`]). Not secret: useless without the key directory.
pub const NODE_KEY_FILE: &str = "node-key.json";

const NODE_CONTEXT: &[u8] = b"shoal/node-data-key/v1";
const TABLE_CONTEXT_PREFIX: &[u8] = b"shoal/table-data-key/v1\0";

/// The wrapping context of a table's data key: a wrapped key only unwraps for the table id it was made for.
pub fn table_context(table_id: &str) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(TABLE_CONTEXT_PREFIX.len() + table_id.len());
    ctx.extend_from_slice(TABLE_CONTEXT_PREFIX);
    ctx.extend_from_slice(table_id.as_bytes());
    ctx
}

/// Unwrapped data keys held by a running node, plus the [`KeyProvider`] that wraps them.
///
/// * Each table has its own data key, created with [`KeyRing::create_data_key`] at CreateTable; the caller
///   stores the returned [`WrappedKey`] in the table's catalog record and, on restart, hands it back through
///   [`KeyRing::load`]. [`KeyRing::data_key_for`] then serves it from memory.
/// * The node has one data key ([`KeyRing::node_key`]) for files shared by all tables (catalog, log).
/// * A table may have its data key wrapped by its own KMS key instead of the provider's master key
///   (DynamoDB's `SSESpecification.KMSMasterKeyId`): [`KeyRing::create_data_key_with`] and
///   [`KeyRing::rewrap_table_key`] take that key's ARN, and every unwrap dispatches on the wrapped key's
///   [`WrapAlgorithm`]: [`WrapAlgorithm::KmsEncrypt`] goes to the ring's [`KmsClient`] (see
///   [`KeyRing::open_in_with_kms`]), anything else to the provider.
///
/// Thread-safe; lookups take a read lock on a small map. Keys are zeroised when the last `Arc` drops.
pub struct KeyRing {
    provider: Arc<dyn KeyProvider>,
    kms: Option<Arc<KmsClient>>,
    node_key: Arc<DataKey>,
    tables: RwLock<HashMap<String, Arc<DataKey>>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("current_master_key", &self.provider.current_key_id())
            .field("tables", &self.loaded_tables())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Creates a key ring with a fresh node data key. Persist the returned wrapped node key and pass it to
    /// [`KeyRing::open`] on the next start.
    ///
    /// # Errors
    /// Errors of [`KeyProvider::wrap`] or of the random number generator.
    pub fn create(provider: Arc<dyn KeyProvider>) -> Result<(KeyRing, WrappedKey), CryptoError> {
        let node_key = DataKey::generate()?;
        let wrapped = provider.wrap(&node_key, NODE_CONTEXT)?;
        Ok((KeyRing::with_node_key(provider, None, node_key), wrapped))
    }

    /// Opens a key ring around an existing wrapped node data key.
    ///
    /// # Errors
    /// Errors of [`KeyProvider::unwrap`]: notably [`CryptoError::UnknownMasterKey`] naming the key directory
    /// when the node is started with the wrong key directory.
    pub fn open(
        provider: Arc<dyn KeyProvider>,
        node_key: &WrappedKey,
    ) -> Result<KeyRing, CryptoError> {
        let key = provider.unwrap(node_key, NODE_CONTEXT)?;
        Ok(KeyRing::with_node_key(provider, None, key))
    }

    /// Opens the key ring whose wrapped node key is stored in `data_dir/`[`NODE_KEY_FILE`], creating the node
    /// key (and the file, atomically, mode 0600) if the file does not exist.
    ///
    /// # Errors
    /// As [`KeyRing::open`]; [`CryptoError::Malformed`] for an unreadable node-key file;
    /// [`CryptoError::Io`] on file errors.
    pub fn open_in(
        provider: Arc<dyn KeyProvider>,
        data_dir: &Path,
    ) -> Result<KeyRing, CryptoError> {
        KeyRing::open_in_with_kms(provider, None, data_dir)
    }

    /// As [`KeyRing::open_in`], with a KMS client for data keys wrapped by KMS keys other than (or as well
    /// as) the provider's: tables with their own KMS key, and a node key wrapped by KMS.
    ///
    /// # Errors
    /// As [`KeyRing::open_in`]; KMS errors ([`CryptoError::Kms`], [`CryptoError::KmsTransport`]) for a
    /// KMS-wrapped node key.
    pub fn open_in_with_kms(
        provider: Arc<dyn KeyProvider>,
        kms: Option<Arc<KmsClient>>,
        data_dir: &Path,
    ) -> Result<KeyRing, CryptoError> {
        let path = data_dir.join(NODE_KEY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let wrapped = WrappedKey::from_json(&text).map_err(|e| {
                    CryptoError::malformed(
                        format!("node key file {}", path.display()),
                        e.to_string(),
                    )
                })?;
                let key = unwrap_dispatch(&provider, kms.as_deref(), &wrapped, NODE_CONTEXT)?;
                Ok(KeyRing::with_node_key(provider, kms, key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (mut ring, wrapped) = KeyRing::create(provider)?;
                save_node_key(data_dir, &wrapped)?;
                ring.kms = kms;
                Ok(ring)
            }
            Err(e) => Err(CryptoError::io(path, e)),
        }
    }

    fn with_node_key(
        provider: Arc<dyn KeyProvider>,
        kms: Option<Arc<KmsClient>>,
        node_key: DataKey,
    ) -> KeyRing {
        KeyRing {
            provider,
            kms,
            node_key: Arc::new(node_key),
            tables: RwLock::new(HashMap::new()),
        }
    }

    /// The master-key provider.
    pub fn provider(&self) -> &Arc<dyn KeyProvider> {
        &self.provider
    }

    /// The KMS client for per-table KMS keys, if the node has a KMS endpoint configured.
    pub fn kms(&self) -> Option<&Arc<KmsClient>> {
        self.kms.as_ref()
    }

    /// Unwraps with KMS or the provider, depending on how `wrapped` was wrapped.
    fn unwrap_any(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey, CryptoError> {
        unwrap_dispatch(&self.provider, self.kms.as_deref(), wrapped, context)
    }

    /// Wraps a table key under `kms_key` (a KMS key ARN) if given, else under the provider's master key.
    fn wrap_table_key(
        &self,
        key: &DataKey,
        table_id: &str,
        kms_key: Option<&KeyId>,
    ) -> Result<WrappedKey, CryptoError> {
        let ctx = table_context(table_id);
        match kms_key {
            None => self.provider.wrap(key, &ctx),
            Some(arn) => match &self.kms {
                Some(kms) => kms.encrypt_key(arn.as_str(), key, &ctx),
                None => Err(CryptoError::KmsNotConfigured {
                    key_id: arn.clone(),
                }),
            },
        }
    }

    /// The node's data key, for files shared by all tables (catalog, log).
    pub fn node_key(&self) -> Arc<DataKey> {
        Arc::clone(&self.node_key)
    }

    /// Wraps the node key under the provider's current master key (after [`KeyProvider::rotate`]); persist
    /// the result (e.g. with [`save_node_key`]) before retiring the old master key.
    ///
    /// # Errors
    /// Errors of [`KeyProvider::wrap`].
    pub fn rewrap_node_key(&self) -> Result<WrappedKey, CryptoError> {
        self.provider.wrap(&self.node_key, NODE_CONTEXT)
    }

    /// The cached data key of `table_id`.
    ///
    /// # Errors
    /// [`CryptoError::NoDataKey`] if it was neither created nor loaded since the ring was opened (or was
    /// destroyed).
    pub fn data_key_for(&self, table_id: &str) -> Result<Arc<DataKey>, CryptoError> {
        self.tables
            .read()
            .get(table_id)
            .cloned()
            .ok_or_else(|| CryptoError::NoDataKey {
                table_id: table_id.to_string(),
            })
    }

    /// Unwraps a table's stored data key and caches it; returns the cached key if already loaded.
    ///
    /// # Errors
    /// Errors of [`KeyProvider::unwrap`]; a wrapped key made for another table id fails with
    /// [`CryptoError::Corrupt`].
    pub fn load(&self, table_id: &str, wrapped: &WrappedKey) -> Result<Arc<DataKey>, CryptoError> {
        if let Some(key) = self.tables.read().get(table_id) {
            return Ok(Arc::clone(key));
        }
        let key = Arc::new(self.unwrap_any(wrapped, &table_context(table_id))?);
        let mut tables = self.tables.write();
        Ok(Arc::clone(
            tables.entry(table_id.to_string()).or_insert(key),
        ))
    }

    /// Generates a new data key for a new table, caches it, and returns it with its wrapped form (to store in
    /// the table's catalog record).
    ///
    /// # Errors
    /// [`CryptoError::DataKeyExists`] if `table_id` already has a key in the ring; errors of
    /// [`KeyProvider::wrap`].
    pub fn create_data_key(
        &self,
        table_id: &str,
    ) -> Result<(Arc<DataKey>, WrappedKey), CryptoError> {
        self.create_data_key_with(table_id, None)
    }

    /// As [`KeyRing::create_data_key`], wrapping the new key under the KMS key `kms_key` (its ARN, see
    /// [`KmsClient::describe_key`]) when given, else under the provider's master key. Blocks on KMS.
    ///
    /// # Errors
    /// As [`KeyRing::create_data_key`]; [`CryptoError::KmsNotConfigured`] if `kms_key` is given and the ring
    /// has no KMS client; KMS errors.
    pub fn create_data_key_with(
        &self,
        table_id: &str,
        kms_key: Option<&KeyId>,
    ) -> Result<(Arc<DataKey>, WrappedKey), CryptoError> {
        let key = DataKey::generate()?;
        let wrapped = self.wrap_table_key(&key, table_id, kms_key)?;
        let key = Arc::new(key);
        let mut tables = self.tables.write();
        if tables.contains_key(table_id) {
            return Err(CryptoError::DataKeyExists {
                table_id: table_id.to_string(),
            });
        }
        tables.insert(table_id.to_string(), Arc::clone(&key));
        Ok((key, wrapped))
    }

    /// Wraps a table's (loaded) data key again, under the KMS key `kms_key` if given, else under the
    /// provider's current master key: switching a table between its own KMS key and the default. The data
    /// key does not change, so no file is rewritten; persist the result in place of the old wrapped key.
    ///
    /// # Errors
    /// [`CryptoError::NoDataKey`] if the table's key is not loaded; as [`KeyRing::create_data_key_with`].
    pub fn rewrap_table_key(
        &self,
        table_id: &str,
        kms_key: Option<&KeyId>,
    ) -> Result<WrappedKey, CryptoError> {
        let key = self.data_key_for(table_id)?;
        self.wrap_table_key(&key, table_id, kms_key)
    }

    /// Replaces a table's data key with a fresh one (data-key rotation) and returns
    /// `(new key, new wrapped key, old key)`. From now on [`KeyRing::data_key_for`] returns the new key; the
    /// caller re-encrypts the table's files from the old key to the new one (e.g. SQLCipher `PRAGMA rekey`),
    /// keeping the old `Arc` for files not yet re-encrypted, and persists the new wrapped key before it
    /// drops the old one.
    ///
    /// # Errors
    /// [`CryptoError::NoDataKey`] if the table has no key in the ring; errors of [`KeyProvider::wrap`].
    pub fn rotate_data_key(
        &self,
        table_id: &str,
    ) -> Result<(Arc<DataKey>, WrappedKey, Arc<DataKey>), CryptoError> {
        self.rotate_data_key_with(table_id, None)
    }

    /// As [`KeyRing::rotate_data_key`], wrapping the new key under the table's own KMS key `kms_key` (ARN)
    /// when it has one (use this for tables with an `SSESpecification` KMS key, or they would fall back to
    /// the provider's master key).
    ///
    /// # Errors
    /// As [`KeyRing::rotate_data_key`]; KMS errors.
    pub fn rotate_data_key_with(
        &self,
        table_id: &str,
        kms_key: Option<&KeyId>,
    ) -> Result<(Arc<DataKey>, WrappedKey, Arc<DataKey>), CryptoError> {
        let key = DataKey::generate()?;
        let wrapped = self.wrap_table_key(&key, table_id, kms_key)?;
        let key = Arc::new(key);
        let mut tables = self.tables.write();
        let slot = tables
            .get_mut(table_id)
            .ok_or_else(|| CryptoError::NoDataKey {
                table_id: table_id.to_string(),
            })?;
        let old = std::mem::replace(slot, Arc::clone(&key));
        Ok((key, wrapped, old))
    }

    /// Forgets a table's data key (DeleteTable). The caller deletes the wrapped copy from the catalog; once
    /// both are gone and every `Arc` handed out has dropped, the table's files cannot be decrypted.
    /// Returns whether a key was cached.
    pub fn destroy(&self, table_id: &str) -> bool {
        self.tables.write().remove(table_id).is_some()
    }

    /// Re-wraps data keys under the provider's current master key (master-key rotation). Each entry is
    /// unwrapped with whichever master key wrapped it and wrapped again with the current one; the data keys
    /// themselves, and so the files, do not change. The output is in input order.
    ///
    /// Keys wrapped by a KMS key that is not the provider's current key belong to tables with their own KMS
    /// key (`SSESpecification`): they are returned unchanged (KMS rotates that key's material itself).
    ///
    /// # Errors
    /// The first failure aborts the whole batch; do not retire the old master key until a batch succeeded
    /// and its output is persisted.
    pub fn rewrap_all(
        &self,
        wrapped: impl IntoIterator<Item = (String, WrappedKey)>,
    ) -> Result<Vec<(String, WrappedKey)>, CryptoError> {
        wrapped
            .into_iter()
            .map(|(table_id, old)| {
                if old.algorithm == WrapAlgorithm::KmsEncrypt
                    && old.key_id_of_wrapping_key != self.provider.current_key_id()
                {
                    return Ok((table_id, old));
                }
                let ctx = table_context(&table_id);
                let key = self.unwrap_any(&old, &ctx)?;
                let new = self.provider.wrap(&key, &ctx)?;
                Ok((table_id, new))
            })
            .collect()
    }

    /// Ids of tables whose data keys are cached, sorted.
    pub fn loaded_tables(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.tables.read().keys().cloned().collect();
        ids.sort();
        ids
    }
}

/// Unwraps a KMS-wrapped key with `kms` (or, without one, the provider, which may itself be KMS), anything
/// else with the provider.
fn unwrap_dispatch(
    provider: &Arc<dyn KeyProvider>,
    kms: Option<&KmsClient>,
    wrapped: &WrappedKey,
    context: &[u8],
) -> Result<DataKey, CryptoError> {
    match (wrapped.algorithm, kms) {
        (WrapAlgorithm::KmsEncrypt, Some(kms)) => kms.decrypt_key(wrapped, context),
        _ => provider.unwrap(wrapped, context),
    }
}

/// Writes `wrapped` to `data_dir/`[`NODE_KEY_FILE`] atomically (mode 0600), creating `data_dir` if needed.
///
/// # Errors
/// [`CryptoError::Io`] on file errors.
pub fn save_node_key(data_dir: &Path, wrapped: &WrappedKey) -> Result<(), CryptoError> {
    fs::create_dir_all(data_dir).map_err(|e| CryptoError::io(data_dir, e))?;
    fsutil::write_atomic(data_dir, NODE_KEY_FILE, wrapped.to_json()?.as_bytes())
}
