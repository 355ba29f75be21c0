//! The master-key boundary: the [`KeyProvider`] trait, master key metadata, and [`MemoryKeyProvider`].

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::key::MasterKey;
use crate::wrapped::{unwrap_with, wrap_with};
use crate::{CryptoError, DataKey, KeyId, WrappedKey};

/// Where master keys live and how data keys are wrapped under them.
///
/// Master keys never leave the provider: callers hand it a [`DataKey`] to wrap and get a [`WrappedKey`]
/// back, or the reverse. Implementations: [`crate::FileKeyProvider`] (the default, key files in a directory
/// separate from the data directory) and [`MemoryKeyProvider`] (tests). A KMS-backed provider (AWS KMS JSON
/// API: `Encrypt`/`Decrypt` with an `EncryptionContext`) implements this same trait; it is not built yet.
///
/// `context` is bound into the wrapping (AEAD associated data for the built-in providers, the KMS
/// encryption context for a KMS provider): unwrapping with a different context fails. Shoal passes a string
/// naming the key's owner (see [`crate::KeyRing`]), so a wrapped key cannot be moved to another table.
pub trait KeyProvider: Send + Sync {
    /// Wraps `key` under the current master key, binding `context`.
    ///
    /// # Errors
    /// [`CryptoError::Library`] if the cipher fails; provider-specific errors (I/O, remote service).
    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<WrappedKey, CryptoError>;

    /// Unwraps `wrapped` with the master key it names, checking `context`.
    ///
    /// # Errors
    /// [`CryptoError::Corrupt`] if the ciphertext was altered, or the context or master key differ from
    /// those used to wrap; [`CryptoError::UnknownMasterKey`] / [`CryptoError::RetiredMasterKey`] if the
    /// provider does not hold that master key (any more); [`CryptoError::Malformed`] for a structurally
    /// invalid wrapped key.
    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey, CryptoError>;

    /// Id of the master key that [`KeyProvider::wrap`] uses now.
    fn current_key_id(&self) -> KeyId;

    /// Creates a new master key and makes it current. Older master keys stay available for unwrapping until
    /// [`KeyProvider::retire`]d, so rotation needs no downtime: rotate, re-wrap every data key
    /// ([`crate::KeyRing::rewrap_all`]), persist the new wrapped keys, then retire the old master key.
    ///
    /// # Errors
    /// Provider-specific (for the file provider, I/O on the key directory). On error the current key is
    /// unchanged.
    fn rotate(&self) -> Result<KeyId, CryptoError>;

    /// Destroys an old master key's material; keys still wrapped by it become unrecoverable (unwrapping them
    /// gives [`CryptoError::RetiredMasterKey`]). Retiring an already retired key is a no-op.
    ///
    /// # Errors
    /// [`CryptoError::RetireCurrent`] for the current key, [`CryptoError::UnknownMasterKey`] for an id the
    /// provider never had, provider-specific I/O errors.
    fn retire(&self, id: &KeyId) -> Result<(), CryptoError>;

    /// Every master key the provider knows, oldest first, with its state.
    fn master_keys(&self) -> Vec<MasterKeyInfo>;
}

/// The life-cycle state of a master key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MasterKeyState {
    /// Its material is held; it can unwrap (and, if it is the current key, wrap).
    Active,
    /// Its material was destroyed by [`KeyProvider::retire`]; only the id is remembered.
    Retired,
}

/// Public metadata about one master key (no key material).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKeyInfo {
    /// The key id.
    pub id: KeyId,
    /// Active or retired.
    pub state: MasterKeyState,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
    /// Retirement time, seconds since the Unix epoch, if retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<u64>,
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The in-memory state shared by the built-in providers: master key metadata and material.
pub(crate) struct MasterKeySet {
    /// Human-readable location used in error messages (e.g. `key directory /var/lib/shoal-keys`).
    pub(crate) location: String,
    pub(crate) current: KeyId,
    pub(crate) infos: Vec<MasterKeyInfo>,
    pub(crate) material: HashMap<KeyId, MasterKey>,
}

impl MasterKeySet {
    pub(crate) fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<WrappedKey, CryptoError> {
        let master = self
            .material
            .get(&self.current)
            .ok_or_else(|| self.missing(&self.current))?;
        wrap_with(master, &self.current, key, context)
    }

    pub(crate) fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &[u8],
    ) -> Result<DataKey, CryptoError> {
        let id = &wrapped.key_id_of_wrapping_key;
        let master = self.material.get(id).ok_or_else(|| self.missing(id))?;
        unwrap_with(master, wrapped, context)
    }

    pub(crate) fn missing(&self, id: &KeyId) -> CryptoError {
        match self.infos.iter().find(|i| &i.id == id) {
            Some(info) if info.state == MasterKeyState::Retired => CryptoError::RetiredMasterKey {
                id: id.clone(),
                location: self.location.clone(),
            },
            _ => CryptoError::UnknownMasterKey {
                id: id.clone(),
                location: self.location.clone(),
            },
        }
    }

    /// Checks that `id` may be retired. `Ok(false)` if it is already retired (no-op).
    pub(crate) fn check_retire(&self, id: &KeyId) -> Result<bool, CryptoError> {
        if id == &self.current {
            return Err(CryptoError::RetireCurrent { id: id.clone() });
        }
        match self.infos.iter().find(|i| &i.id == id) {
            None => Err(CryptoError::UnknownMasterKey {
                id: id.clone(),
                location: self.location.clone(),
            }),
            Some(info) => Ok(info.state == MasterKeyState::Active),
        }
    }

    /// Marks `id` retired and drops (zeroises) its material.
    pub(crate) fn mark_retired(&mut self, id: &KeyId) {
        let now = now_unix();
        for info in self.infos.iter_mut().filter(|i| &i.id == id) {
            info.state = MasterKeyState::Retired;
            info.retired_at = Some(now);
        }
        self.material.remove(id);
    }

    pub(crate) fn add_current(&mut self, id: KeyId, key: MasterKey) {
        self.infos.push(MasterKeyInfo {
            id: id.clone(),
            state: MasterKeyState::Active,
            created_at: now_unix(),
            retired_at: None,
        });
        self.material.insert(id.clone(), key);
        self.current = id;
    }
}

/// A provider holding master keys in memory only: for tests and throw-away nodes. Everything wrapped by it
/// is lost when it is dropped.
pub struct MemoryKeyProvider {
    set: RwLock<MasterKeySet>,
}

impl MemoryKeyProvider {
    /// Creates a provider with one fresh master key.
    ///
    /// # Errors
    /// [`CryptoError::Library`] if the random number generator fails.
    pub fn new() -> Result<MemoryKeyProvider, CryptoError> {
        let id = KeyId::generate_master()?;
        let mut set = MasterKeySet {
            location: "in-memory key provider".to_string(),
            current: id.clone(),
            infos: Vec::new(),
            material: HashMap::new(),
        };
        set.add_current(id, MasterKey::generate()?);
        Ok(MemoryKeyProvider {
            set: RwLock::new(set),
        })
    }
}

impl std::fmt::Debug for MemoryKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryKeyProvider")
            .field("current", &self.set.read().current)
            .finish_non_exhaustive()
    }
}

impl KeyProvider for MemoryKeyProvider {
    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<WrappedKey, CryptoError> {
        self.set.read().wrap(key, context)
    }

    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey, CryptoError> {
        self.set.read().unwrap(wrapped, context)
    }

    fn current_key_id(&self) -> KeyId {
        self.set.read().current.clone()
    }

    fn rotate(&self) -> Result<KeyId, CryptoError> {
        let id = KeyId::generate_master()?;
        let key = MasterKey::generate()?;
        self.set.write().add_current(id.clone(), key);
        Ok(id)
    }

    fn retire(&self, id: &KeyId) -> Result<(), CryptoError> {
        let mut set = self.set.write();
        if set.check_retire(id)? {
            set.mark_retired(id);
        }
        Ok(())
    }

    fn master_keys(&self) -> Vec<MasterKeyInfo> {
        self.set.read().infos.clone()
    }
}
