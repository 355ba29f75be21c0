//! Signing-key derivation and the bounded per-access-key cache.
//!
//! kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
//! The key changes once a day per access key, so the verifier keeps the latest one per access key
//! (tagged with the date and the secret it came from, so a rotated secret is never served stale).

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::hmac;
use parking_lot::Mutex;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::SecretKey;

/// How many access keys the cache holds before it is emptied and refilled.
pub const SIGNING_KEY_CACHE_CAPACITY: usize = 1024;

/// HMAC-SHA256 of `data` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(tag.as_ref());
    out
}

/// Derives the SigV4 signing key for `secret` on `date` (`yyyymmdd`) in `region` for `service`.
pub(crate) fn derive_signing_key(
    secret: &SecretKey,
    date: &str,
    region: &str,
    service: &str,
) -> Zeroizing<[u8; 32]> {
    let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret.expose().len()));
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.expose().as_bytes());
    let k_date = hmac_sha256(&k_secret, date.as_bytes());
    let k_region = hmac_sha256(&*k_date, region.as_bytes());
    let k_service = hmac_sha256(&*k_region, service.as_bytes());
    hmac_sha256(&*k_service, b"aws4_request")
}

struct Entry {
    date: String,
    secret: Zeroizing<Box<[u8]>>,
    key: Arc<hmac::Key>,
}

/// Signing keys per access key id for one region and service.
pub(crate) struct SigningKeyCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl SigningKeyCache {
    pub fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The HMAC key for `(access_key_id, date)`, derived on a miss or when `secret` differs from the
    /// secret the cached key was derived from.
    pub fn get(
        &self,
        access_key_id: &str,
        secret: &SecretKey,
        date: &str,
        region: &str,
        service: &str,
    ) -> Arc<hmac::Key> {
        let secret_bytes = secret.expose().as_bytes();
        if let Some(entry) = self.entries.lock().get(access_key_id)
            && entry.date == date
            && bool::from(entry.secret.ct_eq(secret_bytes))
        {
            return Arc::clone(&entry.key);
        }
        let raw = derive_signing_key(secret, date, region, service);
        let key = Arc::new(hmac::Key::new(hmac::HMAC_SHA256, &*raw));
        let mut entries = self.entries.lock();
        if entries.len() >= SIGNING_KEY_CACHE_CAPACITY && !entries.contains_key(access_key_id) {
            entries.clear();
        }
        entries.insert(
            access_key_id.to_owned(),
            Entry {
                date: date.to_owned(),
                secret: Zeroizing::new(secret_bytes.into()),
                key: Arc::clone(&key),
            },
        );
        key
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signing-key example from the AWS SigV4 documentation.
    #[test]
    fn derives_documented_signing_key() {
        let secret = SecretKey::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned());
        let key = derive_signing_key(&secret, "20150830", "us-east-1", "iam");
        assert_eq!(
            hex::encode(*key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn cache_rederives_when_secret_or_date_changes() {
        let cache = SigningKeyCache::new();
        let a = SecretKey::new("a".to_owned());
        let b = SecretKey::new("b".to_owned());
        let sign = |k: &hmac::Key| hex::encode(hmac::sign(k, b"x").as_ref());
        let k1 = sign(&cache.get("AK", &a, "20240101", "r", "s"));
        assert_eq!(sign(&cache.get("AK", &a, "20240101", "r", "s")), k1);
        assert_ne!(sign(&cache.get("AK", &b, "20240101", "r", "s")), k1);
        assert_ne!(sign(&cache.get("AK", &b, "20240102", "r", "s")), k1);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn cache_is_bounded() {
        let cache = SigningKeyCache::new();
        let s = SecretKey::new("s".to_owned());
        for i in 0..SIGNING_KEY_CACHE_CAPACITY + 10 {
            cache.get(&format!("AK{i}"), &s, "20240101", "r", "s");
        }
        assert!(cache.len() <= SIGNING_KEY_CACHE_CAPACITY);
    }
}
