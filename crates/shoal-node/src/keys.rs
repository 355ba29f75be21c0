//! Access keys: the admin key created on first start and the keys `shoal keys` manages.
//!
//! Stored in `<data-dir>/access-keys.json` with mode 0600, replaced atomically (write + rename).
//! The running node re-reads the file when it changes, so keys created or deleted by the CLI take
//! effect within about a second. Secrets are zeroised when dropped and never logged.
//! (The encryption issue wraps the secrets with the master key.)

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use parking_lot::{Mutex, RwLock};
use rand::Rng;
use serde::{Deserialize, Serialize};
use shoal_api::sigv4::{KeyLookup, SecretKey};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::NodeError;

/// How often a running node looks for changes to the key file.
const REFRESH_INTERVAL_MS: u64 = 250;

/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "access-keys.json";

/// An access key id and its secret.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl AccessKey {
    /// A new random key: `AKIA` + 16 characters, and a 40-character secret.
    pub fn generate() -> AccessKey {
        const ID: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut rng = rand::rng();
        let pick = |alphabet: &[u8], rng: &mut rand::rngs::ThreadRng| -> char {
            let i = rng.random_range(0..alphabet.len());
            alphabet.get(i).copied().map(char::from).unwrap_or('A')
        };
        let id: String = "AKIA"
            .chars()
            .chain((0..16).map(|_| pick(ID, &mut rng)))
            .collect();
        let secret: String = (0..40).map(|_| pick(SECRET, &mut rng)).collect();
        AccessKey { id, secret }
    }
}

#[derive(Serialize, Deserialize, Default)]
struct KeyFile {
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize, Clone)]
struct StoredKey {
    id: String,
    secret: String,
    /// Seconds since the epoch.
    created: u64,
    admin: bool,
}

impl Drop for StoredKey {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

fn read_file(path: &Path) -> Result<KeyFile, NodeError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            NodeError::Keys(format!("{} is not a valid key file: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyFile::default()),
        Err(e) => Err(NodeError::Keys(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn write_file(path: &Path, file: &KeyFile) -> Result<(), NodeError> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(file).map_err(|e| NodeError::Keys(e.to_string()))?;
    let io = |e: std::io::Error| NodeError::Keys(format!("cannot write {}: {e}", path.display()));
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Creates a new key in the data directory's key file and returns it.
pub fn create_key(data_dir: &Path) -> Result<AccessKey, NodeError> {
    fs::create_dir_all(data_dir)
        .map_err(|e| NodeError::Keys(format!("cannot create {}: {e}", data_dir.display())))?;
    let path = key_path(data_dir);
    let mut file = read_file(&path)?;
    let key = AccessKey::generate();
    file.keys.push(StoredKey {
        id: key.id.clone(),
        secret: key.secret.clone(),
        created: now_secs(),
        admin: false,
    });
    write_file(&path, &file)?;
    Ok(key)
}

/// Lists `(access key id, created seconds, admin)` of every key.
pub fn list_keys(data_dir: &Path) -> Result<Vec<(String, u64, bool)>, NodeError> {
    let file = read_file(&key_path(data_dir))?;
    Ok(file
        .keys
        .iter()
        .map(|k| (k.id.clone(), k.created, k.admin))
        .collect())
}

/// Deletes a key; `Ok(false)` if there was none with that id.
pub fn delete_key(data_dir: &Path, id: &str) -> Result<bool, NodeError> {
    let path = key_path(data_dir);
    let mut file = read_file(&path)?;
    let before = file.keys.len();
    file.keys.retain(|k| k.id != id);
    if file.keys.len() == before {
        return Ok(false);
    }
    write_file(&path, &file)?;
    Ok(true)
}

/// The node's view of the key file, reloaded when the file changes.
pub struct KeyStore {
    path: PathBuf,
    keys: RwLock<Arc<HashMap<String, String>>>,
    /// When the store was opened; `next_check_ms` counts from it.
    opened: Instant,
    /// Milliseconds after `opened` before which the file is not looked at again (lock-free
    /// check on every request).
    next_check_ms: AtomicU64,
    /// The file's modification time when it was last read; held only while re-checking.
    seen_mtime: Mutex<Option<SystemTime>>,
}

impl KeyStore {
    /// Opens the key store. With `admin`, that key is stored (replacing a previous admin key of
    /// another id); without it and with no key at all, an admin key is generated and returned so the
    /// caller can show it once.
    pub fn open(
        data_dir: &Path,
        admin: Option<&AccessKey>,
    ) -> Result<(KeyStore, Option<AccessKey>), NodeError> {
        let path = key_path(data_dir);
        let mut file = read_file(&path)?;
        let mut created = None;
        let mut changed = false;
        match admin {
            Some(admin) => {
                let present = file
                    .keys
                    .iter()
                    .any(|k| k.id == admin.id && k.secret == admin.secret);
                if !present {
                    file.keys.retain(|k| k.id != admin.id);
                    file.keys.push(StoredKey {
                        id: admin.id.clone(),
                        secret: admin.secret.clone(),
                        created: now_secs(),
                        admin: true,
                    });
                    changed = true;
                }
            }
            None if file.keys.is_empty() => {
                let key = AccessKey::generate();
                file.keys.push(StoredKey {
                    id: key.id.clone(),
                    secret: key.secret.clone(),
                    created: now_secs(),
                    admin: true,
                });
                created = Some(key);
                changed = true;
            }
            None => {}
        }
        if changed || !path.exists() {
            write_file(&path, &file)?;
        }
        let store = KeyStore {
            path,
            keys: RwLock::new(Arc::new(HashMap::new())),
            opened: Instant::now(),
            next_check_ms: AtomicU64::new(REFRESH_INTERVAL_MS),
            seen_mtime: Mutex::new(None),
        };
        store.install(&file);
        *store.seen_mtime.lock() = store.mtime();
        Ok((store, created))
    }

    fn install(&self, file: &KeyFile) {
        let map: HashMap<String, String> = file
            .keys
            .iter()
            .map(|k| (k.id.clone(), k.secret.clone()))
            .collect();
        *self.keys.write() = Arc::new(map);
    }

    fn mtime(&self) -> Option<SystemTime> {
        fs::metadata(&self.path).and_then(|m| m.modified()).ok()
    }

    /// Re-reads the file if it changed; looks at it at most every 250 ms.
    fn refresh(&self) {
        let now_ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.next_check_ms.load(Ordering::Relaxed);
        if now_ms < due
            || self
                .next_check_ms
                .compare_exchange(
                    due,
                    now_ms + REFRESH_INTERVAL_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let mtime = self.mtime();
        let mut seen = self.seen_mtime.lock();
        if mtime == *seen {
            return;
        }
        *seen = mtime;
        match read_file(&self.path) {
            Ok(file) => self.install(&file),
            Err(e) => tracing::warn!(error = %e, "keeping the previous access keys"),
        }
    }
}

impl KeyLookup for KeyStore {
    fn secret_for(&self, access_key_id: &str) -> Option<SecretKey> {
        self.refresh();
        let keys = self.keys.read().clone();
        keys.get(access_key_id).map(|s| SecretKey::new(s.clone()))
    }
}
