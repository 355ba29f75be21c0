//! On-disk formats of the key directory: the `keys.json` manifest and the `<id>.key` master key files.

use std::collections::HashSet;
use std::path::Path;

use aws_lc_rs::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::fsutil;
use crate::key::{KEY_LEN, MasterKey};
use crate::provider::{MasterKeyInfo, MasterKeyState};
use crate::{CryptoError, KeyId};

/// File name of the manifest inside the key directory.
pub const MANIFEST_FILE: &str = "keys.json";

const MANIFEST_FORMAT: &str = "shoal-keys";
const MANIFEST_VERSION: u32 = 1;
const KEY_FILE_MAGIC: &[u8; 8] = b"SHOALMK1";
pub(super) const KEY_FILE_SUFFIX: &str = ".key";
const KEY_FILE_LEN: usize = KEY_FILE_MAGIC.len() + KEY_LEN + 32;

/// The `keys.json` manifest: which master keys exist, their states, and which one is current.
#[derive(Serialize, Deserialize)]
pub(super) struct Manifest {
    format: String,
    version: u32,
    pub(super) current: KeyId,
    pub(super) keys: Vec<MasterKeyInfo>,
}

impl Manifest {
    /// Parses and validates a manifest read from `dir`. Every error names `dir`.
    pub(super) fn parse(dir: &Path, text: &str) -> Result<Manifest, CryptoError> {
        let manifest: Manifest = serde_json::from_str(text)
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
        let corrupt =
            |why: String| CryptoError::key_dir(dir, format!("keys.json is corrupt: {why}"));
        let mut seen = HashSet::new();
        for info in &manifest.keys {
            if !info.id.is_file_safe() {
                return Err(corrupt(format!(
                    "invalid master key id {:?}",
                    info.id.as_str()
                )));
            }
            if !seen.insert(&info.id) {
                return Err(corrupt(format!("master key {} listed twice", info.id)));
            }
        }
        let current_ok = manifest
            .keys
            .iter()
            .any(|i| i.id == manifest.current && i.state == MasterKeyState::Active);
        if !current_ok {
            return Err(corrupt(format!(
                "current master key {} is not an active key",
                manifest.current
            )));
        }
        Ok(manifest)
    }

    /// Atomically writes the manifest for `current` and `keys` into `dir`.
    pub(super) fn write(
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
}

/// File name of a master key file.
pub(super) fn key_file_name(id: &KeyId) -> String {
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

/// The bytes of a master key file. The caller zeroises them after writing.
pub(super) fn encode_key_file(id: &KeyId, key: &MasterKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(KEY_FILE_LEN);
    out.extend_from_slice(KEY_FILE_MAGIC);
    out.extend_from_slice(&key.0);
    out.extend_from_slice(&key_file_checksum(id, &key.0));
    out
}

/// Decodes a master key file of key `id` read from `dir`; a damaged file is a [`CryptoError::KeyDir`]
/// naming the directory and the file.
pub(super) fn decode_key_file(
    dir: &Path,
    id: &KeyId,
    bytes: &[u8],
) -> Result<MasterKey, CryptoError> {
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
