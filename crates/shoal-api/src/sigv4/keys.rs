//! Secrets, the key-store seam, and the verified identity.

use zeroize::Zeroizing;

/// A secret access key.
///
/// The memory holding it is zeroised on drop, and `Debug` prints `SecretKey(<redacted>)`, so it never
/// reaches a log by accident.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<String>);

impl SecretKey {
    /// Wraps a secret access key.
    pub fn new(secret: String) -> Self {
        Self(Zeroizing::new(secret))
    }

    /// The secret itself; callers must not log or persist it unwrapped.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Where the verifier finds the secret for an access key id; the node's key store implements it.
///
/// Called once per verified request, so it should be a cheap in-memory lookup.
pub trait KeyLookup: Send + Sync {
    /// The secret for `access_key_id`, or `None` if the key is unknown or disabled.
    fn secret_for(&self, access_key_id: &str) -> Option<SecretKey>;
}

/// The authenticated caller of a request whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The access key id the request was signed with.
    pub access_key_id: String,
}
