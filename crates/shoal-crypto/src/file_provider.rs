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

use aws_lc_rs::digest::{SHA256, digest};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::fsutil::{self, TMP_SUFFIX};
use crate::key::{KEY_LEN, MasterKey};
use crate::provider::{MasterKeyInfo, MasterKeySet, MasterKeyState};
use crate::{CryptoError, DataKey, KeyId, KeyProvider, WrappedKey};

/// Default key directory, relative to the working directory: `./shoal-keys`.
pub const DEFAULT_KEYS_DIR: &str = "shoal-keys";

/// File name of the manifest inside the key directory.
pub const MANIFEST_FILE: &str = "keys.json";

const MANIFEST_FORMAT: &str = "shoal-keys";
const MANIFEST_VERSION: u32 = 1;
const KEY_FILE_MAGIC: &[u8; 8] = b"SHOALMK1";
const KEY_FILE_SUFFIX: &str = ".key";
const KEY_FILE_LEN: usize = KEY_FILE_MAGIC.len() + KEY_LEN + 32;

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    current: KeyId,
    keys: Vec<MasterKeyInfo>,
}

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

fn key_file_name(id: &KeyId) -> String {
    format!("{}{KEY_FILE_SUFFIX}", id.as_str())
}

fn key_file_checksum(id: &KeyId, key: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(KEY_FILE_MAGIC.len() + id.as_str().len() + key.len());
    input.extend_from_slice(KEY_FILE_MAGIC);
    input.extend_from_slice(id.as_str().as_bytes());
    input.extend_from_slice(key);
    let sum = digest(&SHA256, &input).as_ref().to_vec();
    input.zeroize();
    sum
}

fn encode_key_file(id: &KeyId, key: &MasterKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(KEY_FILE_LEN);
    out.extend_from_slice(KEY_FILE_MAGIC);
    out.extend_from_slice(&key.0);
    out.extend_from_slice(&key_file_checksum(id, &key.0));
    out
}

fn decode_key_file(dir: &Path, id: &KeyId, bytes: &[u8]) -> Result<MasterKey, CryptoError> {
    let name = key_file_name(id);
    let corrupt =
        |why: &str| CryptoError::key_dir(dir, format!("master key file {name} is corrupt ({why})"));
    if bytes.len() != KEY_FILE_LEN {
        return Err(corrupt(&format!(
            "{} bytes, expected {KEY_FILE_LEN}",
            bytes.len()
        )));
    }
    let (magic, rest) = bytes.split_at(KEY_FILE_MAGIC.len());
    let (key, sum) = rest.split_at(KEY_LEN);
    if magic != KEY_FILE_MAGIC {
        return Err(corrupt("bad magic"));
    }
    if key_file_checksum(id, key) != sum {
        return Err(corrupt("checksum mismatch"));
    }
    MasterKey::from_slice(key).ok_or_else(|| corrupt("bad key length"))
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
                    "has master key files but no keys.json manifest; restore keys.json from a backup"
                } else {
                    "has no keys.json manifest; it is not a Shoal key directory (or its keys were deleted)"
                };
                return Err(CryptoError::key_dir(dir, reason));
            }
            Err(e) => return Err(CryptoError::io(manifest_path, e)),
        };
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| CryptoError::key_dir(dir, format!("keys.json is corrupt: {e}")))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(CryptoError::key_dir(
                dir,
                format!(
                    "keys.json has format {:?}, expected {MANIFEST_FORMAT:?}",
                    manifest.format
                ),
            ));
        }
        if manifest.version != MANIFEST_VERSION {
            return Err(CryptoError::key_dir(
                dir,
                format!(
                    "keys.json has version {}, this build supports version {MANIFEST_VERSION}",
                    manifest.version
                ),
            ));
        }
        Self::validate_manifest(dir, &manifest)?;

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

    fn validate_manifest(dir: &Path, manifest: &Manifest) -> Result<(), CryptoError> {
        let mut seen = std::collections::HashSet::new();
        for info in &manifest.keys {
            if !info.id.is_file_safe() {
                return Err(CryptoError::key_dir(
                    dir,
                    format!(
                        "keys.json is corrupt: invalid master key id {:?}",
                        info.id.as_str()
                    ),
                ));
            }
            if !seen.insert(&info.id) {
                return Err(CryptoError::key_dir(
                    dir,
                    format!("keys.json is corrupt: master key {} listed twice", info.id),
                ));
            }
        }
        let current_ok = manifest
            .keys
            .iter()
            .any(|i| i.id == manifest.current && i.state == MasterKeyState::Active);
        if !current_ok {
            return Err(CryptoError::key_dir(
                dir,
                format!(
                    "keys.json is corrupt: current master key {} is not an active key",
                    manifest.current
                ),
            ));
        }
        Ok(())
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
        Self::write_manifest(dir, &set.current, &set.infos)?;
        tracing::info!(dir = %dir.display(), key_id = %id, "created key directory with a new master key");
        Ok(FileKeyProvider {
            dir: dir.to_path_buf(),
            set: RwLock::new(set),
        })
    }

    fn write_manifest(
        dir: &Path,
        current: &KeyId,
        keys: &[MasterKeyInfo],
    ) -> Result<(), CryptoError> {
        let manifest = Manifest {
            format: MANIFEST_FORMAT.to_string(),
            version: MANIFEST_VERSION,
            current: current.clone(),
            keys: keys.to_vec(),
        };
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| CryptoError::key_dir(dir, format!("cannot encode keys.json: {e}")))?;
        fsutil::write_atomic(dir, MANIFEST_FILE, text.as_bytes())
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
        if let Err(e) = Self::write_manifest(&self.dir, &id, &infos) {
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
        Self::write_manifest(&self.dir, &set.current, &infos)?;
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
