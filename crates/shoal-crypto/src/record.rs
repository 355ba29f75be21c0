//! The record cipher: AES-256-GCM for individually sealed records (the future Raft log, outbox and stream
//! records).
//!
//! # Nonces: per-stream subkeys and counters
//! A GCM nonce must never repeat under one key. Random 96-bit nonces are only safe up to 2^32 messages per key
//! (NIST SP 800-38D), which a busy log could reach under a data key that rotates every 30 days. Counter nonces
//! have no such limit, but a counter restarts after a crash, and Raft log indexes are *rewritten* when a
//! follower's log is truncated, so neither the process counter nor the log index is unique under a long-lived
//! key.
//!
//! Shoal therefore seals records in *streams*. Each stream (a log segment file, for instance) gets a random
//! 128-bit [`StreamId`], stored in plaintext in the segment header, and its own subkey
//! `HKDF-SHA256(ikm = data key, salt = stream id, info = "shoal/record-key/v1")`. Within a stream the nonce is
//! `0u32 ‖ seq (u64, big-endian)` with `seq` a strictly increasing counter ([`RecordSealer`] keeps it). A writer
//! never resumes an old stream after a restart or truncation: it starts a new one. Two streams share a subkey
//! only if their random ids collide, about 2^-64 after 2^32 streams.
//!
//! # Record layout
//! `version (1) = 0x01 ‖ seq (8, big-endian) ‖ ciphertext ‖ tag (16)`: 25 bytes of overhead. The version and
//! `seq` are authenticated (the header is part of the AAD and `seq` forms the nonce). Callers should put the
//! record's position (e.g. log index and term) in the `aad` so records cannot be swapped or replayed
//! elsewhere undetected. Any change to a sealed record makes [`open`] fail with [`CryptoError::Corrupt`];
//! it never returns altered plaintext.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use zeroize::Zeroize;

use crate::key::{KEY_LEN, fill_random};
use crate::{CryptoError, DataKey};

/// Length of a [`StreamId`] in bytes.
pub const STREAM_ID_LEN: usize = 16;
/// Bytes a sealed record adds to its plaintext.
pub const RECORD_OVERHEAD: usize = HEADER_LEN + TAG_LEN;

const RECORD_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 8;
const TAG_LEN: usize = 16;
const RECORD_KEY_INFO: &[u8] = b"shoal/record-key/v1";

/// The random, public id of a record stream; selects the stream's subkey. Store it with the stream (e.g. in
/// the segment header).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId([u8; STREAM_ID_LEN]);

impl StreamId {
    /// A fresh random stream id.
    ///
    /// # Errors
    /// [`CryptoError::Library`] if the random number generator fails.
    pub fn generate() -> Result<StreamId, CryptoError> {
        let mut id = [0u8; STREAM_ID_LEN];
        fill_random(&mut id)?;
        Ok(StreamId(id))
    }

    /// A stream id read back from storage.
    pub fn from_bytes(bytes: [u8; STREAM_ID_LEN]) -> StreamId {
        StreamId(bytes)
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8; STREAM_ID_LEN] {
        &self.0
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({})", hex::encode(self.0))
    }
}

/// The subkey of one record stream, derived from a data key. `Debug` shows only the stream id.
pub struct RecordKey {
    aead: LessSafeKey,
    stream: StreamId,
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordKey")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl RecordKey {
    /// Derives the subkey of stream `stream` from `data_key` (see the module docs).
    ///
    /// # Errors
    /// [`CryptoError::Library`] if the key derivation fails.
    pub fn derive(data_key: &DataKey, stream: StreamId) -> Result<RecordKey, CryptoError> {
        let prk = Salt::new(HKDF_SHA256, &stream.0).extract(data_key.as_bytes());
        let mut sub = [0u8; KEY_LEN];
        let filled = prk
            .expand(&[RECORD_KEY_INFO], HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut sub));
        let key = filled.and_then(|()| UnboundKey::new(&AES_256_GCM, &sub));
        sub.zeroize();
        let key = key.map_err(|_| CryptoError::Library("record key derivation failed"))?;
        Ok(RecordKey {
            aead: LessSafeKey::new(key),
            stream,
        })
    }

    /// The stream this key belongs to.
    pub fn stream_id(&self) -> StreamId {
        self.stream
    }
}

fn nonce_for(seq: u64) -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[NONCE_LEN - 8..].copy_from_slice(&seq.to_be_bytes());
    Nonce::assume_unique_for_key(nonce)
}

fn full_aad(header: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(header.len() + aad.len());
    full.extend_from_slice(header);
    full.extend_from_slice(aad);
    full
}

/// Seals one record with sequence number `seq`.
///
/// The caller must never use the same `seq` twice with the same `key` (use [`RecordSealer`], which keeps the
/// counter). Output layout and guarantees: see the module docs.
///
/// # Errors
/// [`CryptoError::Library`] if the cipher fails (e.g. a plaintext beyond GCM's 64 GiB limit).
pub fn seal(
    key: &RecordKey,
    seq: u64,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(RECORD_OVERHEAD + plaintext.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(&seq.to_be_bytes());
    let aad = full_aad(&out, aad);
    let mut body = plaintext.to_vec();
    key.aead
        .seal_in_place_append_tag(nonce_for(seq), Aad::from(aad), &mut body)
        .map_err(|_| CryptoError::Library("AES-256-GCM seal failed"))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Opens a record sealed by [`seal`] under the same `key` and `aad`; returns the plaintext.
///
/// # Errors
/// [`CryptoError::Corrupt`] if any byte of the record was changed, or the key (stream) or `aad` differ;
/// [`CryptoError::Malformed`] if it is shorter than [`RECORD_OVERHEAD`] or has an unknown version byte.
pub fn open(key: &RecordKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let seq = sealed_seq(sealed)?;
    let (header, body) = sealed.split_at(HEADER_LEN);
    let mut buf = body.to_vec();
    let plain_len = key
        .aead
        .open_in_place(nonce_for(seq), Aad::from(full_aad(header, aad)), &mut buf)
        .map(|plain| plain.len())
        .map_err(|_| CryptoError::corrupt("record"))?;
    buf.truncate(plain_len);
    Ok(buf)
}

/// The (authenticated only by [`open`]) sequence number in a sealed record's header.
///
/// # Errors
/// [`CryptoError::Malformed`] if the record is too short or has an unknown version byte.
pub fn sealed_seq(sealed: &[u8]) -> Result<u64, CryptoError> {
    if sealed.len() < RECORD_OVERHEAD {
        return Err(CryptoError::malformed(
            "record",
            format!(
                "{} bytes, shorter than the {RECORD_OVERHEAD}-byte minimum",
                sealed.len()
            ),
        ));
    }
    let (version, rest) = sealed.split_at(1);
    if version != [RECORD_VERSION] {
        return Err(CryptoError::malformed(
            "record",
            format!(
                "unknown version byte {:#04x}",
                version.first().copied().unwrap_or(0)
            ),
        ));
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(rest.get(..8).unwrap_or(&[0; 8]));
    Ok(u64::from_be_bytes(seq))
}

/// A writer's handle on one record stream: a [`RecordKey`] with a fresh random [`StreamId`] and the nonce
/// counter, so every [`RecordSealer::seal`] uses a new nonce. Thread-safe.
#[derive(Debug)]
pub struct RecordSealer {
    key: RecordKey,
    next_seq: AtomicU64,
}

impl RecordSealer {
    /// Starts a new stream under `data_key`. Store [`RecordSealer::stream_id`] with the stream so readers can
    /// [`RecordKey::derive`] the key.
    ///
    /// # Errors
    /// [`CryptoError::Library`] if the random number generator or key derivation fails.
    pub fn new(data_key: &DataKey) -> Result<RecordSealer, CryptoError> {
        Ok(RecordSealer {
            key: RecordKey::derive(data_key, StreamId::generate()?)?,
            next_seq: AtomicU64::new(0),
        })
    }

    /// The stream's id.
    pub fn stream_id(&self) -> StreamId {
        self.key.stream
    }

    /// The stream's key, e.g. to [`open`] records written by this sealer.
    pub fn key(&self) -> &RecordKey {
        &self.key
    }

    /// Seals a record with the next sequence number.
    ///
    /// # Errors
    /// [`CryptoError::NonceExhausted`] after 2^64 - 1 records; errors of [`seal`].
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let seq = self
            .next_seq
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_add(1))
            .map_err(|_| CryptoError::NonceExhausted)?;
        seal(&self.key, seq, aad, plaintext)
    }
}

/// Seals one small standalone secret (an access key's secret, for instance) under `key`, binding `aad`:
/// a fresh random [`StreamId`] selects a subkey used for this one record only (sequence 0), so no nonce is
/// ever reused however many secrets are sealed. Output: `stream id (16) ‖ record` ([`seal`]'s layout).
///
/// # Errors
/// [`CryptoError::Library`] if the random number generator, key derivation or cipher fails.
pub fn seal_secret(key: &DataKey, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let stream = StreamId::generate()?;
    let record = seal(&RecordKey::derive(key, stream)?, 0, aad, secret)?;
    let mut out = Vec::with_capacity(STREAM_ID_LEN + record.len());
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(&record);
    Ok(out)
}

/// Opens a secret sealed by [`seal_secret`] under the same `key` and `aad`. The plaintext is zeroised when
/// dropped.
///
/// # Errors
/// [`CryptoError::Corrupt`] if a byte was changed or the key or `aad` differ; [`CryptoError::Malformed`] if
/// it is too short.
pub fn open_secret(
    key: &DataKey,
    aad: &[u8],
    sealed: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < STREAM_ID_LEN + RECORD_OVERHEAD {
        return Err(CryptoError::malformed(
            "sealed secret",
            format!("{} bytes, too short", sealed.len()),
        ));
    }
    let (stream, record) = sealed.split_at(STREAM_ID_LEN);
    let mut id = [0u8; STREAM_ID_LEN];
    id.copy_from_slice(stream);
    let plain = open(&RecordKey::derive(key, StreamId(id))?, aad, record)?;
    Ok(zeroize::Zeroizing::new(plain))
}

#[cfg(test)]
mod secret_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let key = DataKey::generate().unwrap();
        let a = seal_secret(&key, b"ctx-a", b"the secret").unwrap();
        let b = seal_secret(&key, b"ctx-a", b"the secret").unwrap();
        assert_ne!(
            a, b,
            "two seals of one secret must differ (fresh stream each)"
        );
        assert!(!a.windows(10).any(|w| w == b"the secret"));
        assert_eq!(
            open_secret(&key, b"ctx-a", &a).unwrap().as_slice(),
            b"the secret"
        );
        assert!(matches!(
            open_secret(&key, b"ctx-b", &a),
            Err(CryptoError::Corrupt { .. })
        ));
        let other = DataKey::generate().unwrap();
        assert!(open_secret(&other, b"ctx-a", &a).is_err());
        let mut tampered = a.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert!(open_secret(&key, b"ctx-a", &tampered).is_err());
        assert!(open_secret(&key, b"ctx-a", &a[..20]).is_err());
    }
}
