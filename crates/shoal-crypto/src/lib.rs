//! Shoal's key hierarchy: envelope encryption of everything the node writes to disk.
//!
//! ```text
//!   master key  (KeyProvider: FileKeyProvider in ./shoal-keys, or KmsKeyProvider; or a table's own KMS key)
//!      │  wraps (AES-256-GCM, context = owner, e.g. the table id)
//!      ├── table data key  (one per table; wrapped copy in the table's catalog record)
//!      │      └── keys that table's SQLCipher files (items, indexes, streams)
//!      └── node data key   (one per node; wrapped copy in <data dir>/node-key.json)
//!             ├── keys the node's shared SQLCipher files (catalog, metadata)
//!             └── seals log records (record cipher, per-stream HKDF subkeys)
//! ```
//!
//! * **Master keys** never leave their [`KeyProvider`]. The default [`FileKeyProvider`] keeps them in a key
//!   directory (default [`DEFAULT_KEYS_DIR`], mode 0700, files 0600) separate from the data directory, so a
//!   copy of the data directory alone is useless. [`MemoryKeyProvider`] is for tests. [`KmsKeyProvider`]
//!   keeps the master key in AWS KMS (or a KMS-compatible server): wrapping is KMS `Encrypt`/`Decrypt` with
//!   the context as encryption context ([`kms`]).
//! * **Per-table KMS keys**: a [`KeyRing`] may also hold a [`KmsClient`] ([`KeyRing::open_in_with_kms`]);
//!   a table whose `SSESpecification` names a KMS key has its data key wrapped by that key
//!   ([`KeyRing::create_data_key_with`], [`KeyRing::rewrap_table_key`]), whatever the node's provider is.
//!   Unwrapping dispatches on [`WrappedKey::algorithm`].
//! * **Data keys** ([`DataKey`], 256 bits) are generated locally, stored only wrapped ([`WrappedKey`]), and
//!   cached unwrapped in the node's [`KeyRing`]. Deleting a table forgets its data key
//!   ([`KeyRing::destroy`]) and the caller deletes the wrapped copy, so lingering files become unreadable.
//! * **Master-key rotation** needs no downtime and touches no data file: [`KeyProvider::rotate`] makes a new
//!   current master key, [`KeyRing::rewrap_all`] / [`KeyRing::rewrap_node_key`] re-wrap the data keys, the
//!   caller persists them, then [`KeyProvider::retire`] destroys the old master key.
//! * **Records** (the Raft log and other append-only streams) are sealed with AES-256-GCM by [`seal`] /
//!   [`open`] under a per-stream subkey with counter nonces ([`RecordSealer`]); see [`record`] for why that
//!   is nonce-safe. Tampering gives [`CryptoError::Corrupt`], never altered data.
//!
//! Secrets are zeroised on drop (`zeroize`), have no `Display`, print as `<redacted>` under `Debug`, and are
//! never logged.
//!
//! ```
//! use std::sync::Arc;
//! use shoal_crypto::{FileKeyProvider, KeyProvider, KeyRing};
//!
//! # fn main() -> Result<(), shoal_crypto::CryptoError> {
//! # let tmp = tempfile::tempdir().map_err(|e| shoal_crypto::CryptoError::Library("tempdir"))?;
//! # let (keys_dir, data_dir) = (tmp.path().join("keys"), tmp.path().join("data"));
//! let provider: Arc<dyn KeyProvider> = Arc::new(FileKeyProvider::open_or_create(&keys_dir)?);
//! let ring = KeyRing::open_in(provider, &data_dir)?;
//! let (key, wrapped) = ring.create_data_key("table-1")?; // store `wrapped` in the catalog
//! // ... key SQLCipher with key.as_bytes() ...
//! # let _ = (key, wrapped);
//! # Ok(())
//! # }
//! ```

mod error;
mod file_provider;
mod fsutil;
mod key;
mod keyring;
pub mod kms;
mod provider;
pub mod record;
mod wrapped;

pub use error::CryptoError;
pub use file_provider::{DEFAULT_KEYS_DIR, FileKeyProvider, MANIFEST_FILE};
pub use key::{DataKey, KEY_LEN, KeyId};
pub use keyring::{KeyRing, NODE_KEY_FILE, save_node_key, table_context};
pub use kms::{KmsClient, KmsConfig, KmsCredentials, KmsKeyInfo, KmsKeyProvider};
pub use provider::{KeyProvider, MasterKeyInfo, MasterKeyState, MemoryKeyProvider};
pub use record::{RecordKey, RecordSealer, StreamId, open, seal};
pub use wrapped::{WrapAlgorithm, WrappedKey};
