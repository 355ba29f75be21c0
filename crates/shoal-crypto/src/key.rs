//! Key material types: [`DataKey`] (secret, zeroised on drop) and [`KeyId`] (a public, stable name).

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::CryptoError;

/// Length in bytes of every symmetric key in the hierarchy (AES-256).
pub const KEY_LEN: usize = 32;

/// Fills `out` from AWS-LC's CSPRNG.
pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::fill(out).map_err(|_| CryptoError::Library("random number generator failed"))
}

/// A 256-bit data key: the key of one table's SQLCipher files, or the node's key for shared files
/// (catalog, log).
///
/// The bytes are zeroised when the value is dropped. `Debug` prints `DataKey(<redacted>)`; there is no
/// `Display`, and no serde implementation, so a data key can only reach disk wrapped (see
/// [`crate::WrappedKey`]).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; KEY_LEN]);

impl DataKey {
    /// Generates a fresh random key.
    ///
    /// # Errors
    /// [`CryptoError::Library`] if the system random number generator fails.
    pub fn generate() -> Result<DataKey, CryptoError> {
        let mut key = DataKey([0; KEY_LEN]);
        fill_random(&mut key.0)?;
        Ok(key)
    }

    /// Wraps existing key bytes. The caller should zeroise its own copy.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> DataKey {
        DataKey(bytes)
    }

    /// Copies a key from a slice of exactly [`KEY_LEN`] bytes, without leaving a stack copy behind.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<DataKey> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let mut key = DataKey([0; KEY_LEN]);
        key.0.copy_from_slice(bytes);
        Some(key)
    }

    /// The raw key bytes, e.g. to key a SQLCipher connection (`PRAGMA key = "x'…'"`). Do not log or persist
    /// them; zeroise any copy (for example the hex string of the pragma) when done.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// Constant-time comparison, so comparing keys leaks nothing through timing.
impl PartialEq for DataKey {
    fn eq(&self, other: &DataKey) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.0, &other.0).is_ok()
    }
}

impl Eq for DataKey {}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A master key (key-encryption key). Crate-private: master keys never leave their provider.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MasterKey(pub(crate) [u8; KEY_LEN]);

impl MasterKey {
    pub(crate) fn generate() -> Result<MasterKey, CryptoError> {
        let mut key = MasterKey([0; KEY_LEN]);
        fill_random(&mut key.0)?;
        Ok(key)
    }
}

impl MasterKey {
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<MasterKey> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let mut key = MasterKey([0; KEY_LEN]);
        key.0.copy_from_slice(bytes);
        Some(key)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// The stable, public name of a key, e.g. `mk-3f9a0c1b2d4e5f60` for a file-provider master key (or, for a
/// future KMS provider, the KMS key ARN). Recorded in every [`crate::WrappedKey`] so the right master key
/// can be found after rotation. Not secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// Wraps an id string as given.
    pub fn new(id: impl Into<String>) -> KeyId {
        KeyId(id.into())
    }

    /// Generates a new random master key id: `mk-` followed by 16 hex digits.
    ///
    /// # Errors
    /// [`CryptoError::Library`] if the random number generator fails.
    pub fn generate_master() -> Result<KeyId, CryptoError> {
        let mut raw = [0u8; 8];
        fill_random(&mut raw)?;
        Ok(KeyId(format!("mk-{}", hex::encode(raw))))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this id is safe to use as a file name: non-empty, at most 128 bytes, ASCII alphanumerics and
    /// `-`/`_` only.
    pub(crate) fn is_file_safe(&self) -> bool {
        !self.0.is_empty()
            && self.0.len() <= 128
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
