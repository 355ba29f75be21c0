//! [`WrappedKey`]: a data key encrypted under a master key, and the AES-256-GCM wrapping used by the
//! built-in providers (KMS-wrapped keys, [`WrapAlgorithm::KmsEncrypt`], are made by [`crate::kms`]).
//!
//! # Why AES-256-GCM rather than AES-KWP
//! AES-KWP (RFC 5649) is deterministic and needs no nonce, but it has no associated data. Shoal binds every
//! wrapped key to its *context* (for a table key, the table id), so that a wrapped key copied from one table's
//! catalog record to another's fails to unwrap instead of silently keying the wrong files. AES-256-GCM gives
//! that binding through its AAD. Each wrap uses a fresh random 96-bit nonce; a master key wraps at most a few
//! keys per table per rotation, many orders of magnitude below the 2^32 random-nonce limit of NIST SP 800-38D.
//!
//! Layout of [`WrappedKey::ciphertext`] for [`WrapAlgorithm::Aes256Gcm`]: `nonce (12) ‖ encrypted key (32) ‖
//! tag (16)`, 60 bytes. The AAD is `"shoal-wrap-v1" ‖ 0x00 ‖ master key id ‖ 0x00 ‖ context`.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::key::{KEY_LEN, MasterKey, fill_random};
use crate::{CryptoError, DataKey, KeyId};

const TAG_LEN: usize = 16;
const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
const WRAP_DOMAIN: &[u8] = b"shoal-wrap-v1";

/// The algorithm a [`WrappedKey`] was wrapped with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WrapAlgorithm {
    /// AES-256-GCM, random 96-bit nonce, context as AAD (see the module docs).
    #[serde(rename = "AES-256-GCM")]
    Aes256Gcm,
    /// AWS KMS `Encrypt` under the KMS key whose ARN is [`WrappedKey::key_id_of_wrapping_key`]; the
    /// ciphertext is KMS's opaque `CiphertextBlob`, the context is passed as the encryption context
    /// (see [`crate::KmsClient`]). Unwrapped by KMS `Decrypt`.
    #[serde(rename = "KMS")]
    KmsEncrypt,
}

impl fmt::Display for WrapAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WrapAlgorithm::Aes256Gcm => f.write_str("AES-256-GCM"),
            WrapAlgorithm::KmsEncrypt => f.write_str("KMS"),
        }
    }
}

/// A data key encrypted ("wrapped") under a master key. Safe to store next to the data it protects (in the
/// catalog, or in the node-key file of the data directory): without the master key it is useless.
///
/// Serialises to JSON as
/// `{"key_id_of_wrapping_key":"mk-…","algorithm":"AES-256-GCM","ciphertext":"<base64>"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// Id of the master key that wrapped this key.
    pub key_id_of_wrapping_key: KeyId,
    /// How it was wrapped.
    pub algorithm: WrapAlgorithm,
    /// The wrapped bytes (layout depends on `algorithm`), base64 in JSON.
    #[serde(with = "base64_bytes")]
    pub ciphertext: Vec<u8>,
}

impl WrappedKey {
    /// Serialises to the JSON form shown on [`WrappedKey`].
    ///
    /// # Errors
    /// Never in practice; serde_json errors are mapped to [`CryptoError::Malformed`].
    pub fn to_json(&self) -> Result<String, CryptoError> {
        serde_json::to_string(self)
            .map_err(|e| CryptoError::malformed("wrapped key", e.to_string()))
    }

    /// Parses the JSON form.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] if the text is not a wrapped key.
    pub fn from_json(text: &str) -> Result<WrappedKey, CryptoError> {
        serde_json::from_str(text).map_err(|e| CryptoError::malformed("wrapped key", e.to_string()))
    }
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

fn aad_for(key_id: &KeyId, context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_DOMAIN.len() + key_id.as_str().len() + context.len() + 2);
    aad.extend_from_slice(WRAP_DOMAIN);
    aad.push(0);
    aad.extend_from_slice(key_id.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(context);
    aad
}

fn aead_key(master: &MasterKey) -> Result<LessSafeKey, CryptoError> {
    UnboundKey::new(&AES_256_GCM, &master.0)
        .map(LessSafeKey::new)
        .map_err(|_| CryptoError::Library("cannot build AES-256-GCM key"))
}

/// Wraps `key` under `master` (whose id is `key_id`), binding `context`.
pub(crate) fn wrap_with(
    master: &MasterKey,
    key_id: &KeyId,
    key: &DataKey,
    context: &[u8],
) -> Result<WrappedKey, CryptoError> {
    let aead = aead_key(master)?;
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let mut buf = Vec::with_capacity(WRAPPED_LEN);
    buf.extend_from_slice(&nonce);
    let mut body = Vec::with_capacity(KEY_LEN + TAG_LEN);
    body.extend_from_slice(key.as_bytes());
    let sealed = aead.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad_for(key_id, context)),
        &mut body,
    );
    if sealed.is_err() {
        body.zeroize();
        return Err(CryptoError::Library("AES-256-GCM seal failed"));
    }
    buf.extend_from_slice(&body);
    Ok(WrappedKey {
        key_id_of_wrapping_key: key_id.clone(),
        algorithm: WrapAlgorithm::Aes256Gcm,
        ciphertext: buf,
    })
}

/// Unwraps `wrapped` with `master`, checking `context`.
pub(crate) fn unwrap_with(
    master: &MasterKey,
    wrapped: &WrappedKey,
    context: &[u8],
) -> Result<DataKey, CryptoError> {
    match wrapped.algorithm {
        WrapAlgorithm::Aes256Gcm => {}
        WrapAlgorithm::KmsEncrypt => {
            return Err(CryptoError::KmsNotConfigured {
                key_id: wrapped.key_id_of_wrapping_key.clone(),
            });
        }
    }
    if wrapped.ciphertext.len() != WRAPPED_LEN {
        return Err(CryptoError::malformed(
            "wrapped key",
            format!(
                "ciphertext is {} bytes, expected {WRAPPED_LEN}",
                wrapped.ciphertext.len()
            ),
        ));
    }
    let (nonce, body) = wrapped.ciphertext.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| CryptoError::Library("bad nonce length"))?;
    let aead = aead_key(master)?;
    let mut buf = body.to_vec();
    let result = match aead.open_in_place(
        nonce,
        Aad::from(aad_for(&wrapped.key_id_of_wrapping_key, context)),
        &mut buf,
    ) {
        Ok(plain) => DataKey::from_slice(plain)
            .ok_or(CryptoError::Library("unwrapped key has the wrong length")),
        Err(_) => Err(CryptoError::corrupt(format!(
            "wrapped key (master key {})",
            wrapped.key_id_of_wrapping_key
        ))),
    };
    buf.zeroize();
    result
}
