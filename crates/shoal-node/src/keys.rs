//! Access keys: the admin key created on first start and the keys `shoal keys` manages.
//!
//! Stored in `<data-dir>/access-keys.json` with mode 0600, replaced atomically (write + rename).
//! Each secret is sealed (AES-256-GCM, see `shoal_crypto::record::seal_secret`) under the node
//! data key, which is itself wrapped by the master key, with the key id bound as associated
//! data: the file holds no secret in the clear, and a sealed secret moved to another id does not
//! open. A file written by an earlier version, with plaintext secrets, is converted when opened.
//!
//! Only the process holding the data directory's LOCK writes the file: the running node, which
//! `shoal keys` reaches through the control socket (see [`crate::control`]), or `shoal keys`
//! itself when no node runs. Secrets are zeroised when dropped and never logged.
//!
//! A key may carry an IAM policy (`shoal keys create --policy FILE`, `shoal keys set-policy`),
//! validated by `shoal-policy` before it is stored and kept parsed for the API
//! ([`KeyStore::policy`]); a key without one may do everything.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};
use rand::Rng;
use serde::{Deserialize, Serialize};
use shoal_api::sigv4::{KeyLookup, SecretKey};
use shoal_crypto::DataKey;
use shoal_policy::{Policy, PolicyKind};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::NodeError;

/// Associated-data prefix of a sealed secret; the access key id follows.
const SECRET_CONTEXT_PREFIX: &[u8] = b"shoal/access-key-secret/v1\0";

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

/// One key as stored: the secret sealed under the node key (hex), never in the clear.
#[derive(Serialize, Deserialize, Clone)]
struct StoredKey {
    id: String,
    /// `seal_secret(node key, context(id), secret)`, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_secret: Option<String>,
    /// The plaintext secret of a file written before secrets were sealed: read once, converted,
    /// never written.
    #[serde(default, skip_serializing)]
    secret: Option<String>,
    /// Seconds since the epoch.
    created: u64,
    admin: bool,
    /// The key's IAM policy document; `None`: full access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
}

impl Drop for StoredKey {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

/// Public facts about one access key (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The access key id.
    pub id: String,
    /// Creation time, seconds since the epoch.
    pub created: u64,
    /// Whether this is the node's admin key.
    pub admin: bool,
    /// The key's IAM policy document; `None`: the key may do everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// A local key the cluster does not know yet, to propose to it.
pub(crate) struct Unshared {
    pub key: AccessKey,
    pub admin: bool,
    pub policy: Option<String>,
}

/// Parses an access key's policy document.
///
/// # Errors
/// `NodeError::Keys` saying why the document is refused (see `shoal_policy::PolicyError`).
pub fn parse_policy(document: &str) -> Result<Arc<Policy>, NodeError> {
    Policy::parse(document, PolicyKind::Identity)
        .map(Arc::new)
        .map_err(|e| NodeError::Keys(format!("the policy is refused: {e}")))
}

/// The first metadata format whose readers know `MetaCommand::SetAccessKeyPolicy`: the format
/// after 2 (the one every binary with policies writes once its members all read it). A binary of
/// format 2 may predate policies, so while any member reads only format 2 a policy change is not
/// proposed: such a member could not apply it.
const POLICY_META_FORMAT: u64 = 3;

/// Whether access-key policies may be proposed to `meta`'s cluster now (see
/// [`POLICY_META_FORMAT`]). Binaries whose newest format is 2 propose them regardless: they are
/// the development builds that introduced policies, before the format was raised.
pub(crate) fn policies_shareable(meta: &shoal_meta::MetaState) -> bool {
    shoal_meta::META_FORMAT_VERSION < POLICY_META_FORMAT
        || meta.write_format() >= POLICY_META_FORMAT
}

/// The refusal when [`policies_shareable`] says no.
pub(crate) fn policies_not_shareable() -> NodeError {
    NodeError::Keys(
        "access-key policies need every node of the cluster to run a version that has them: upgrade the other nodes first".into(),
    )
}

/// A stored policy, parsed; one that no longer parses (it was validated when stored) denies
/// everything rather than granting full access.
fn parse_stored(id: &str, document: &str) -> Arc<Policy> {
    parse_policy(document).unwrap_or_else(|e| {
        tracing::error!(access_key_id = %id, error = %e, "a stored access-key policy does not parse; the key is denied everything");
        Arc::new(Policy::deny_all(PolicyKind::Identity))
    })
}

/// The parsed policies of `keys` (id → policy), for keys that have one.
fn parse_all<'a>(keys: impl IntoIterator<Item = &'a StoredKey>) -> HashMap<String, Arc<Policy>> {
    keys.into_iter()
        .filter_map(|k| Some((k.id.clone(), parse_stored(&k.id, k.policy.as_deref()?))))
        .collect()
}

fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

fn secret_context(id: &str) -> Vec<u8> {
    let mut ctx = SECRET_CONTEXT_PREFIX.to_vec();
    ctx.extend_from_slice(id.as_bytes());
    ctx
}

fn read_file(path: &Path) -> Result<KeyFile, NodeError> {
    match fs::read(path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            serde_json::from_slice(&bytes).map_err(|e| {
                NodeError::Keys(format!("{} is not a valid key file: {e}", path.display()))
            })
        }
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

/// The access keys of a data directory: the sealed file and, in memory, the unsealed secrets
/// the SigV4 verifier looks up.
pub struct KeyStore {
    path: PathBuf,
    node_key: Arc<DataKey>,
    /// The file as last written; held while changing it, so changes do not interleave.
    file: Mutex<KeyFile>,
    /// Access key id → secret (zeroised when the last reference drops).
    secrets: RwLock<Arc<HashMap<String, Zeroizing<String>>>>,
    /// Access key id → its parsed policy (keys without one are absent).
    policies: RwLock<Arc<HashMap<String, Arc<Policy>>>>,
    /// Keys this node is sharing with the cluster (the key, then its policy: two metadata
    /// commands). While the cluster holds such a key without its policy, the local policy
    /// stays: taking the cluster's "none" would give the key full access in between.
    sharing: Arc<Mutex<HashSet<String>>>,
}

/// Key `id` is being shared with the cluster until this is dropped ([`KeyStore::begin_share`]).
pub(crate) struct Sharing {
    id: String,
    set: Arc<Mutex<HashSet<String>>>,
}

impl Drop for Sharing {
    fn drop(&mut self) {
        self.set.lock().remove(&self.id);
    }
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("path", &self.path)
            .field("keys", &self.secrets.read().len())
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Opens the key file of `data_dir`, unsealing every secret with `node_key`; a file with
    /// plaintext secrets (earlier versions) is rewritten sealed. With `admin`, that key is stored
    /// (replacing a previous admin key of another id). Without it, when the file has no key and
    /// `create_admin` is set, an admin key is generated and returned so the caller can show it
    /// once.
    ///
    /// # Errors
    /// The file cannot be read or written, or a secret does not unseal (damaged file, or a
    /// node key other than the one it was sealed with).
    pub fn open(
        data_dir: &Path,
        node_key: Arc<DataKey>,
        admin: Option<&AccessKey>,
        create_admin: bool,
    ) -> Result<(KeyStore, Option<AccessKey>), NodeError> {
        let path = key_path(data_dir);
        let mut file = read_file(&path)?;
        let mut changed = false;
        // Seal the plaintext secrets of an earlier version's file.
        for key in &mut file.keys {
            if let Some(plain) = key.secret.take() {
                let plain = Zeroizing::new(plain);
                key.sealed_secret = Some(seal(&node_key, &key.id, &plain)?);
                changed = true;
            }
        }
        if changed {
            tracing::info!(path = %path.display(), "access-key secrets sealed with the node key");
        }
        let store = KeyStore {
            path,
            node_key,
            file: Mutex::new(KeyFile::default()),
            secrets: RwLock::new(Arc::new(HashMap::new())),
            policies: RwLock::new(Arc::new(HashMap::new())),
            sharing: Arc::default(),
        };
        let mut secrets = store.unseal_all(&file)?;
        let mut created = None;
        match admin {
            Some(admin) => {
                let present = secrets
                    .get(&admin.id)
                    .is_some_and(|s| s.as_str() == admin.secret.as_str());
                if !present {
                    file.keys.retain(|k| k.id != admin.id);
                    file.keys.push(store.stored(admin, true)?);
                    secrets.insert(admin.id.clone(), Zeroizing::new(admin.secret.clone()));
                    changed = true;
                }
            }
            None if file.keys.is_empty() && create_admin => {
                let key = AccessKey::generate();
                file.keys.push(store.stored(&key, true)?);
                secrets.insert(key.id.clone(), Zeroizing::new(key.secret.clone()));
                created = Some(key);
                changed = true;
            }
            None => {}
        }
        if changed || (create_admin && !store.path.exists()) {
            write_file(&store.path, &file)?;
        }
        *store.policies.write() = Arc::new(parse_all(&file.keys));
        *store.file.lock() = file;
        *store.secrets.write() = Arc::new(secrets);
        Ok((store, created))
    }

    fn unseal_all(&self, file: &KeyFile) -> Result<HashMap<String, Zeroizing<String>>, NodeError> {
        let mut map = HashMap::with_capacity(file.keys.len());
        for key in &file.keys {
            let sealed = key.sealed_secret.as_deref().ok_or_else(|| {
                NodeError::Keys(format!(
                    "{}: access key {} has no secret",
                    self.path.display(),
                    key.id
                ))
            })?;
            let bad = |e: &dyn std::fmt::Display| {
                NodeError::Keys(format!(
                    "{}: the secret of access key {} cannot be unsealed with this node's key: {e}",
                    self.path.display(),
                    key.id
                ))
            };
            let raw = Zeroizing::new(hex::decode(sealed).map_err(|e| bad(&e))?);
            let plain =
                shoal_crypto::record::open_secret(&self.node_key, &secret_context(&key.id), &raw)
                    .map_err(|e| bad(&e))?;
            let text = std::str::from_utf8(&plain).map_err(|e| bad(&e))?;
            map.insert(key.id.clone(), Zeroizing::new(text.to_string()));
        }
        Ok(map)
    }

    fn stored(&self, key: &AccessKey, admin: bool) -> Result<StoredKey, NodeError> {
        Ok(StoredKey {
            id: key.id.clone(),
            sealed_secret: Some(seal(&self.node_key, &key.id, &key.secret)?),
            secret: None,
            created: now_secs(),
            admin,
            policy: None,
        })
    }

    /// Creates a new (non-admin) key without a policy (full access); see
    /// [`KeyStore::create_with_policy`].
    ///
    /// # Errors
    /// The key file cannot be written.
    pub fn create(&self) -> Result<AccessKey, NodeError> {
        self.create_with_policy(None)
    }

    /// Creates a new (non-admin) key with `policy` (an IAM policy document; `None`: full
    /// access), stores it durably, and returns it: the only time its secret leaves the node.
    ///
    /// # Errors
    /// The policy is refused (invalid, too large, unsupported); the key file cannot be written.
    pub fn create_with_policy(&self, policy: Option<&str>) -> Result<AccessKey, NodeError> {
        let parsed = policy.map(parse_policy).transpose()?;
        let key = AccessKey::generate();
        let mut file = self.file.lock();
        let mut stored = self.stored(&key, false)?;
        stored.policy = policy.map(str::to_owned);
        file.keys.push(stored);
        if let Err(e) = write_file(&self.path, &file) {
            file.keys.retain(|k| k.id != key.id);
            return Err(e);
        }
        if let Some(parsed) = parsed {
            let mut policies = HashMap::clone(&self.policies.read());
            policies.insert(key.id.clone(), parsed);
            *self.policies.write() = Arc::new(policies);
        }
        let mut secrets = HashMap::clone(&self.secrets.read());
        secrets.insert(key.id.clone(), Zeroizing::new(key.secret.clone()));
        *self.secrets.write() = Arc::new(secrets);
        tracing::info!(access_key_id = %key.id, policy = policy.is_some(), "access key created");
        Ok(key)
    }

    /// Sets the policy of key `id` (`None` removes it: full access again), durably; it applies
    /// to the key's next request. `Ok(false)` if there is no such key.
    ///
    /// # Errors
    /// The policy is refused; the key file cannot be written.
    pub fn set_policy(&self, id: &str, policy: Option<&str>) -> Result<bool, NodeError> {
        let parsed = policy.map(parse_policy).transpose()?;
        let mut file = self.file.lock();
        let Some(pos) = file.keys.iter().position(|k| k.id == id) else {
            return Ok(false);
        };
        let previous = file.keys.get(pos).and_then(|k| k.policy.clone());
        if let Some(k) = file.keys.get_mut(pos) {
            k.policy = policy.map(str::to_owned);
        }
        if let Err(e) = write_file(&self.path, &file) {
            if let Some(k) = file.keys.get_mut(pos) {
                k.policy = previous;
            }
            return Err(e);
        }
        let mut policies = HashMap::clone(&self.policies.read());
        match parsed {
            Some(p) => policies.insert(id.to_string(), p),
            None => policies.remove(id),
        };
        *self.policies.write() = Arc::new(policies);
        tracing::info!(access_key_id = %id, policy = policy.is_some(), "access key policy set");
        Ok(true)
    }

    /// The parsed policy of key `id`; `None` when it has none (or there is no such key).
    /// Cheap: one read lock and a map lookup.
    pub fn policy(&self, id: &str) -> Option<Arc<Policy>> {
        self.policies.read().get(id).cloned()
    }

    /// Makes the local keys match the cluster's: adds `keys` missing here, deletes `deleted`
    /// ones still here. Returns the local keys the cluster does not know yet (to propose).
    ///
    /// # Errors
    /// The key file cannot be written.
    pub(crate) fn sync(
        &self,
        keys: &std::collections::BTreeMap<String, shoal_meta::AccessKeyEntry>,
        deleted: &std::collections::BTreeSet<String>,
    ) -> Result<Vec<Unshared>, NodeError> {
        let mut file = self.file.lock();
        let before = file.keys.len();
        let mut secrets = HashMap::clone(&self.secrets.read());
        file.keys.retain(|k| !deleted.contains(&k.id));
        secrets.retain(|id, _| !deleted.contains(id));
        let mut changed = file.keys.len() != before;
        for (id, entry) in keys {
            if secrets.get(id).is_some_and(|s| s.as_str() == entry.secret) {
                // The cluster's policy is the key's policy (once this node shared it whole).
                let half_shared = entry.policy.is_none() && self.sharing.lock().contains(id);
                if let Some(k) = file.keys.iter_mut().find(|k| k.id == *id)
                    && k.policy != entry.policy
                    && !half_shared
                {
                    k.policy.clone_from(&entry.policy);
                    changed = true;
                }
                continue;
            }
            let key = AccessKey {
                id: id.clone(),
                secret: entry.secret.clone(),
            };
            file.keys.retain(|k| k.id != *id);
            let mut stored = self.stored(&key, entry.admin)?;
            stored.policy.clone_from(&entry.policy);
            file.keys.push(stored);
            secrets.insert(id.clone(), Zeroizing::new(entry.secret.clone()));
            changed = true;
        }
        if changed {
            write_file(&self.path, &file)?;
            *self.secrets.write() = Arc::new(secrets.clone());
            *self.policies.write() = Arc::new(parse_all(&file.keys));
        }
        Ok(file
            .keys
            .iter()
            .filter(|k| !keys.contains_key(&k.id))
            .filter_map(|k| {
                let secret = secrets.get(&k.id)?;
                Some(Unshared {
                    key: AccessKey {
                        id: k.id.clone(),
                        secret: String::clone(secret),
                    },
                    admin: k.admin,
                    policy: k.policy.clone(),
                })
            })
            .collect())
    }

    /// Marks key `id` as being shared with the cluster until the returned guard drops (the
    /// share finished, or failed: the key is offered again); `None` if it already is.
    pub(crate) fn begin_share(&self, id: &str) -> Option<Sharing> {
        self.sharing.lock().insert(id.to_owned()).then(|| Sharing {
            id: id.to_owned(),
            set: Arc::clone(&self.sharing),
        })
    }

    /// Every key, in creation order (no secrets).
    pub fn list(&self) -> Vec<KeyInfo> {
        self.file
            .lock()
            .keys
            .iter()
            .map(|k| KeyInfo {
                id: k.id.clone(),
                created: k.created,
                admin: k.admin,
                policy: k.policy.clone(),
            })
            .collect()
    }

    /// Deletes a key durably; it stops authenticating at once. `Ok(false)` if there was none
    /// with that id.
    ///
    /// # Errors
    /// The key file cannot be written.
    pub fn delete(&self, id: &str) -> Result<bool, NodeError> {
        let mut file = self.file.lock();
        let Some(pos) = file.keys.iter().position(|k| k.id == id) else {
            return Ok(false);
        };
        let removed = file.keys.remove(pos);
        if let Err(e) = write_file(&self.path, &file) {
            file.keys.insert(pos, removed);
            return Err(e);
        }
        let mut policies = HashMap::clone(&self.policies.read());
        policies.remove(id);
        *self.policies.write() = Arc::new(policies);
        let mut secrets = HashMap::clone(&self.secrets.read());
        secrets.remove(id);
        *self.secrets.write() = Arc::new(secrets);
        tracing::info!(access_key_id = %id, "access key deleted");
        Ok(true)
    }
}

fn seal(node_key: &DataKey, id: &str, secret: &str) -> Result<String, NodeError> {
    shoal_crypto::record::seal_secret(node_key, &secret_context(id), secret.as_bytes())
        .map(hex::encode)
        .map_err(|e| NodeError::Keys(format!("cannot seal the secret of {id}: {e}")))
}

impl KeyLookup for KeyStore {
    fn secret_for(&self, access_key_id: &str) -> Option<SecretKey> {
        let secrets = self.secrets.read().clone();
        secrets
            .get(access_key_id)
            .map(|s| SecretKey::new(String::clone(s)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::{BTreeMap, BTreeSet};

    use shoal_meta::AccessKeyEntry;

    use super::*;

    const READ_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}]}"#;

    fn store(dir: &Path) -> KeyStore {
        let node_key = Arc::new(DataKey::generate().unwrap());
        KeyStore::open(dir, node_key, None, false).unwrap().0
    }

    #[test]
    fn policies_are_stored_parsed_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let node_key = Arc::new(DataKey::generate().unwrap());
        let (keys, _) = KeyStore::open(dir.path(), Arc::clone(&node_key), None, false).unwrap();
        let full = keys.create().unwrap();
        let limited = keys.create_with_policy(Some(READ_ONLY)).unwrap();
        assert!(keys.policy(&full.id).is_none());
        assert!(keys.policy(&limited.id).is_some());
        // Refused documents change nothing.
        assert!(keys.create_with_policy(Some("{}")).is_err());
        assert_eq!(keys.list().len(), 2);
        assert!(keys.set_policy(&full.id, Some("not json")).is_err());
        assert!(keys.policy(&full.id).is_none());

        assert!(keys.set_policy(&full.id, Some(READ_ONLY)).unwrap());
        assert!(keys.set_policy(&limited.id, None).unwrap());
        assert!(!keys.set_policy("AKIANOSUCHKEY", None).unwrap());
        drop(keys);
        let (again, _) = KeyStore::open(dir.path(), node_key, None, false).unwrap();
        assert!(again.policy(&full.id).is_some());
        assert!(again.policy(&limited.id).is_none());
        let listed: Vec<bool> = again.list().iter().map(|k| k.policy.is_some()).collect();
        assert_eq!(listed, vec![true, false]);
    }

    #[test]
    fn sync_takes_the_clusters_policies_and_offers_local_ones() {
        let dir = tempfile::tempdir().unwrap();
        let keys = store(dir.path());
        let local = keys.create_with_policy(Some(READ_ONLY)).unwrap();
        let shared = keys.create().unwrap();
        let mut cluster = BTreeMap::new();
        cluster.insert(
            shared.id.clone(),
            AccessKeyEntry {
                secret: shared.secret.clone(),
                admin: false,
                policy: Some(READ_ONLY.to_string()),
            },
        );
        cluster.insert(
            "AKIAFROMCLUSTER".to_string(),
            AccessKeyEntry {
                secret: "s".repeat(40),
                admin: false,
                policy: Some(READ_ONLY.to_string()),
            },
        );
        let unshared = keys.sync(&cluster, &BTreeSet::new()).unwrap();
        assert!(keys.policy(&shared.id).is_some());
        assert!(keys.policy("AKIAFROMCLUSTER").is_some());
        // The key the cluster does not know is offered with its policy.
        assert_eq!(unshared.len(), 1);
        assert_eq!(unshared[0].key.id, local.id);
        assert_eq!(unshared[0].policy.as_deref(), Some(READ_ONLY));

        // The cluster removing a policy removes it here.
        if let Some(e) = cluster.get_mut(&shared.id) {
            e.policy = None;
        }
        keys.sync(&cluster, &BTreeSet::new()).unwrap();
        assert!(keys.policy(&shared.id).is_none());
    }
}
