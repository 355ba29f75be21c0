//! Join tokens, cluster-wide: [`create`] makes a new token and replicates its secret's SHA-256
//! and expiry through the metadata group (the previous token is revoked by that), so any member
//! can admit a joining node; [`check`] is what a member decides when a node asks to join.
//!
//! No node stores a token: the text exists only in the output of the command that created it
//! (and, for the first token, the bootstrap node's stdout).

use std::time::Duration;

use shoal_meta::{JoinTokenRecord, MetaCommand, MetaState};
use shoal_rpc::JoinToken;
use shoal_rpc::pki::{digests_equal, secret_digest, unix_now};

use super::Cluster;
use crate::NodeError;

/// How long a token is valid unless told otherwise (the first token too): 24 hours.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest validity accepted: 365 days.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// A new join token, as handed to the operator.
pub struct CreatedToken {
    /// The token text (`SHOAL2-...`). Secret.
    pub token: String,
    /// Seconds since the Unix epoch after which it admits no node.
    pub expires_at: u64,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Checks a validity period.
///
/// # Errors
/// [`NodeError::Admin`] when `ttl` is under a second or over [`MAX_TTL`].
pub fn validate_ttl(ttl: Duration) -> Result<(), NodeError> {
    if ttl < Duration::from_secs(1) || ttl > MAX_TTL {
        return Err(NodeError::Admin(format!(
            "a join token's validity must be between 1 second and {} days",
            MAX_TTL.as_secs() / 86_400
        )));
    }
    Ok(())
}

/// Creates a join token valid for `ttl`, replicated to every member; the previous token stops
/// admitting nodes once this returns.
///
/// # Errors
/// An invalid `ttl`, or the metadata group did not take the change (no leader reachable).
pub(crate) async fn create(cluster: &Cluster, ttl: Duration) -> Result<CreatedToken, NodeError> {
    validate_ttl(ttl)?;
    let now = unix_now();
    let expires_at = now.saturating_add(ttl.as_secs());
    let id = &cluster.identity;
    let token = JoinToken::generate(&id.cluster_id, &id.ca, expires_at);
    let record = JoinTokenRecord {
        secret_sha256: hex::encode(token.secret_digest()),
        created_at: now,
        expires_at,
    };
    cluster
        .meta_propose(MetaCommand::SetJoinToken { token: record })
        .await
        .map_err(|e| {
            NodeError::Admin(format!("the cluster did not take the new join token: {e}"))
        })?;
    tracing::info!(
        expires_at = %rfc3339(expires_at),
        "created a new join token; the previous one is revoked"
    );
    Ok(CreatedToken {
        token: token.to_string(),
        expires_at,
    })
}

/// Why a member refuses a join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The cluster has no join token (created before tokens were replicated).
    NoToken,
    /// The token was the cluster's, and expired at this time.
    Expired(u64),
    /// The token was replaced by a newer one.
    Revoked,
    /// The secret is not any token of this cluster's.
    Unknown,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const NEW: &str = "create a new one with `shoal cluster join-token` on a member";
        match self {
            Refusal::NoToken => write!(f, "this cluster has no valid join token; {NEW}"),
            Refusal::Expired(at) => {
                write!(f, "the join token expired at {}; {NEW}", rfc3339(*at))
            }
            Refusal::Revoked => {
                write!(
                    f,
                    "the join token was revoked (a newer one was created); {NEW}"
                )
            }
            Refusal::Unknown => write!(f, "the join token is not this cluster's"),
        }
    }
}

/// Whether `secret` (a joining node's) is the cluster's valid join token at `now`.
///
/// # Errors
/// The [`Refusal`].
pub(crate) fn check(meta: &MetaState, secret: &[u8], now: u64) -> Result<(), Refusal> {
    let digest = secret_digest(secret);
    let matches = |hex_digest: &str| {
        hex::decode(hex_digest).is_ok_and(|stored| digests_equal(&stored, &digest))
    };
    if let Some(current) = &meta.join_token
        && matches(&current.secret_sha256)
    {
        return if now < current.expires_at {
            Ok(())
        } else {
            Err(Refusal::Expired(current.expires_at))
        };
    }
    if meta.revoked_join_tokens.iter().any(|d| matches(d)) {
        return Err(Refusal::Revoked);
    }
    if meta.join_token.is_none() {
        return Err(Refusal::NoToken);
    }
    Err(Refusal::Unknown)
}

/// Seconds since the Unix epoch as RFC 3339 (UTC), or the number when out of range.
pub fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(secret: &[u8], expires_at: u64) -> JoinTokenRecord {
        JoinTokenRecord {
            secret_sha256: hex::encode(secret_digest(secret)),
            created_at: 0,
            expires_at,
        }
    }

    #[test]
    fn members_admit_only_the_current_unexpired_token() {
        let mut meta = MetaState::default();
        assert_eq!(check(&meta, b"a", 10), Err(Refusal::NoToken));
        meta.apply(MetaCommand::SetJoinToken {
            token: record(b"a", 100),
        });
        assert_eq!(check(&meta, b"a", 99), Ok(()));
        assert_eq!(check(&meta, b"a", 100), Err(Refusal::Expired(100)));
        assert_eq!(check(&meta, b"x", 10), Err(Refusal::Unknown));
        meta.apply(MetaCommand::SetJoinToken {
            token: record(b"b", 200),
        });
        assert_eq!(check(&meta, b"a", 10), Err(Refusal::Revoked));
        assert_eq!(check(&meta, b"b", 10), Ok(()));
        assert!(
            Refusal::Expired(0)
                .to_string()
                .contains("1970-01-01T00:00:00Z")
        );
        assert!(
            Refusal::Revoked
                .to_string()
                .contains("shoal cluster join-token")
        );
    }

    #[test]
    fn validity_is_bounded() {
        assert!(validate_ttl(Duration::ZERO).is_err());
        assert!(validate_ttl(Duration::from_secs(1)).is_ok());
        assert!(validate_ttl(DEFAULT_TTL).is_ok());
        assert!(validate_ttl(MAX_TTL).is_ok());
        assert!(validate_ttl(MAX_TTL + Duration::from_secs(1)).is_err());
    }
}
