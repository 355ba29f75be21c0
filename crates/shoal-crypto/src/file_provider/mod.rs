//! [`FileKeyProvider`]: master keys as files in a key directory kept apart from the data directory.
//!
//! Layout of the key directory (mode 0700, every file 0600, every write atomic and fsync'd):
//!
//! ```text
//! shoal-keys/
//!   keys.json          manifest: {"format":"shoal-keys","version":1,"current":"mk-…",
//!                                  "keys":[{"id":"mk-…","state":"active","created_at":1700000000}, …]}
//!   mk-3f9a0c1b2d4e5f60.key   72 bytes: "SHOALMK1" ‖ key (32) ‖ SHA-256("SHOALMK1" ‖ id ‖ key)
//! ```
//!
//! The checksum in each key file lets a damaged key file be reported as such, instead of as every wrapped
//! key failing authentication.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use parking_lot::RwLock;
use zeroize::Zeroize;

use crate::fsutil::{self, TMP_SUFFIX};
use crate::key::MasterKey;
use crate::provider::{MasterKeyInfo, MasterKeySet, MasterKeyState};
use crate::{CryptoError, DataKey, KeyId, KeyProvider, WrappedKey};

/// Default key directory, relative to the working directory: `./shoal-keys`.
pub const DEFAULT_KEYS_DIR: &str = "shoal-keys";

mod format;

pub use format::MANIFEST_FILE;
use format::{KEY_FILE_SUFFIX, Manifest, decode_key_file, encode_key_file, key_file_name};

/// The default [`KeyProvider`]: master keys stored as files in a key directory.
///
/// Keep the key directory on a different volume from, or at least outside, the data directory: a copy of
/// the data directory alone is then useless. Losing the key directory loses the data.
///
/// One process at a time may use a key directory (there is no cross-process lock).
pub struct FileKeyProvider {
    dir: PathBuf,
    set: RwLock<MasterKeySet>,
}

impl std::fmt::Debug for FileKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKeyProvider")
            .field("dir", &self.dir)
            .field("current", &self.set.read().current)
            .finish_non_exhaustive()
    }
}

fn location(dir: &Path) -> String {
    format!("key directory {}", dir.display())
}

fn warn_if_loose(path: &Path, what: &str) -> Result<(), CryptoError> {
    let loose = fsutil::loose_mode_bits(path)?;
    if loose != 0 {
        tracing::warn!(
            path = %path.display(),
            mode_bits = format!("{loose:03o}"),
            "{what} is accessible to group/others; restrict it to the owner (chmod go-rwx)"
        );
    }
    Ok(())
}

impl FileKeyProvider {
    /// Opens the key directory `dir`, or, if it does not exist or is empty, creates it (mode 0700) with a
    /// first master key. Use this on a node's first start (empty data directory).
    ///
    /// # Errors
    /// As [`FileKeyProvider::open`] for an existing non-empty directory; [`CryptoError::Io`] if it cannot be
    /// created or written.
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<FileKeyProvider, CryptoError> {
        let dir = dir.as_ref();
        let fresh = match fs::read_dir(dir) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(CryptoError::io(dir, e)),
        };
        if fresh {
            Self::create(dir)
        } else {
            Self::open(dir)
        }
    }

    /// Opens an existing key directory, refusing anything but a complete, valid one. Use this when the data
    /// directory already holds data: generating new keys then would only hide the real problem.
    ///
    /// Finishes interrupted work: removes leftover temporary files and key files of retired keys. Warns (via
    /// `tracing`) if the directory or a key file is accessible to group or others.
    ///
    /// # Errors
    /// [`CryptoError::KeyDir`] naming `dir` if it is missing, not a directory, has no or a corrupt/unsupported
    /// `keys.json`, or a master key file is missing or corrupt; [`CryptoError::Io`] on read errors.
    pub fn open(dir: impl AsRef<Path>) -> Result<FileKeyProvider, CryptoError> {
        let dir = dir.as_ref();
        let meta = match fs::metadata(dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CryptoError::key_dir(
                    dir,
                    "does not exist; the node needs the master keys it was first started with \
                     (point --keys-dir / SHOAL_KEYS_DIR at them)",
                ));
            }
            Err(e) => return Err(CryptoError::io(dir, e)),
        };
        if !meta.is_dir() {
            return Err(CryptoError::key_dir(dir, "is not a directory"));
        }
        warn_if_loose(dir, "key directory")?;

        let manifest_path = dir.join(MANIFEST_FILE);
        let text = match fs::read_to_string(&manifest_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let has_keys = fs::read_dir(dir)
                    .map_err(|e| CryptoError::io(dir, e))?
                    .filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().ends_with(KEY_FILE_SUFFIX));
                let reason = if has_keys {
                    "has master key files but no keys.json manifest; restore keys.json from a backup \
                     (or, if the node's very first start was interrupted, empty the directory)"
                } else {
                    "has no keys.json manifest; it is not a Shoal key directory (or its keys were deleted)"
                };
                return Err(CryptoError::key_dir(dir, reason));
            }
            Err(e) => return Err(CryptoError::io(manifest_path, e)),
        };
        let manifest = Manifest::parse(dir, &text)?;

        let mut material = HashMap::new();
        for info in &manifest.keys {
            let name = key_file_name(&info.id);
            let path = dir.join(&name);
            match info.state {
                MasterKeyState::Active => {
                    let mut bytes = match fs::read(&path) {
                        Ok(bytes) => bytes,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            return Err(CryptoError::key_dir(
                                dir,
                                format!("master key file {name} listed in keys.json is missing"),
                            ));
                        }
                        Err(e) => return Err(CryptoError::io(path, e)),
                    };
                    let key = decode_key_file(dir, &info.id, &bytes);
                    bytes.zeroize();
                    warn_if_loose(&path, "master key file")?;
                    material.insert(info.id.clone(), key?);
                }
                // Finish a retire interrupted between the manifest update and the file removal.
                MasterKeyState::Retired => fsutil::remove_durably(dir, &name)?,
            }
        }
        Self::remove_temp_files(dir)?;

        Ok(FileKeyProvider {
            dir: dir.to_path_buf(),
            set: RwLock::new(MasterKeySet {
                location: location(dir),
                current: manifest.current,
                infos: manifest.keys,
                material,
            }),
        })
    }

    fn remove_temp_files(dir: &Path) -> Result<(), CryptoError> {
        for entry in fs::read_dir(dir).map_err(|e| CryptoError::io(dir, e))? {
            let entry = entry.map_err(|e| CryptoError::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(TMP_SUFFIX) {
                fsutil::remove_durably(dir, &name)?;
            }
        }
        Ok(())
    }

    fn create(dir: &Path) -> Result<FileKeyProvider, CryptoError> {
        fsutil::create_private_dir(dir)?;
        let id = KeyId::generate_master()?;
        let key = MasterKey::generate()?;
        let mut set = MasterKeySet {
            location: location(dir),
            current: id.clone(),
            infos: Vec::new(),
            material: HashMap::new(),
        };
        let mut file = encode_key_file(&id, &key);
        let written = fsutil::write_atomic(dir, &key_file_name(&id), &file);
        file.zeroize();
        written?;
        set.add_current(id.clone(), key);
        Manifest::write(dir, &set.current, &set.infos)?;
        tracing::info!(dir = %dir.display(), key_id = %id, "created key directory with a new master key");
        Ok(FileKeyProvider {
            dir: dir.to_path_buf(),
            set: RwLock::new(set),
        })
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl KeyProvider for FileKeyProvider {
    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<WrappedKey, CryptoError> {
        self.set.read().wrap(key, context)
    }

    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey, CryptoError> {
        self.set.read().unwrap(wrapped, context)
    }

    fn current_key_id(&self) -> KeyId {
        self.set.read().current.clone()
    }

    /// Writes the new key file first, then the manifest naming it current; a crash in between leaves an
    /// unused key file and the old key current.
    fn rotate(&self) -> Result<KeyId, CryptoError> {
        let mut set = self.set.write();
        let id = KeyId::generate_master()?;
        let key = MasterKey::generate()?;
        let name = key_file_name(&id);
        let mut file = encode_key_file(&id, &key);
        let written = fsutil::write_atomic(&self.dir, &name, &file);
        file.zeroize();
        written?;
        let mut infos = set.infos.clone();
        infos.push(MasterKeyInfo {
            id: id.clone(),
            state: MasterKeyState::Active,
            created_at: crate::provider::now_unix(),
            retired_at: None,
        });
        if let Err(e) = Manifest::write(&self.dir, &id, &infos) {
            let _ = fsutil::remove_durably(&self.dir, &name);
            return Err(e);
        }
        set.infos = infos;
        set.material.insert(id.clone(), key);
        set.current = id.clone();
        tracing::info!(dir = %self.dir.display(), key_id = %id, "rotated master key");
        Ok(id)
    }

    /// Records the retirement in the manifest first, then deletes the key file; a crash in between is
    /// finished by the next [`FileKeyProvider::open`].
    fn retire(&self, id: &KeyId) -> Result<(), CryptoError> {
        let mut set = self.set.write();
        if !set.check_retire(id)? {
            return Ok(());
        }
        let now = crate::provider::now_unix();
        let infos: Vec<MasterKeyInfo> = set
            .infos
            .iter()
            .map(|i| {
                let mut i = i.clone();
                if &i.id == id {
                    i.state = MasterKeyState::Retired;
                    i.retired_at = Some(now);
                }
                i
            })
            .collect();
        Manifest::write(&self.dir, &set.current, &infos)?;
        set.mark_retired(id);
        set.infos = infos;
        if let Err(e) = fsutil::remove_durably(&self.dir, &key_file_name(id)) {
            tracing::warn!(dir = %self.dir.display(), key_id = %id, error = %e,
                "retired master key file could not be removed now; it will be removed on next open");
        }
        tracing::info!(dir = %self.dir.display(), key_id = %id, "retired master key");
        Ok(())
    }

    fn master_keys(&self) -> Vec<MasterKeyInfo> {
        self.set.read().infos.clone()
    }
}
