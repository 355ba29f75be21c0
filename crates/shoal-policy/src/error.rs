//! [`PolicyError`]: why a policy document is refused.

/// A policy document that cannot be used. Every refusal happens when the policy is set
/// (`shoal keys set-policy`, `PutResourcePolicy`, `CreateTable`), never while requests are
/// evaluated: a stored policy always evaluates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document is larger than its kind allows.
    #[error("the policy document is too large: {size} {unit}, the limit is {limit}")]
    TooLarge {
        size: usize,
        limit: usize,
        /// What is counted: "characters (whitespace not counted)" or "bytes".
        unit: &'static str,
    },
    /// The document is not JSON.
    #[error("the policy document is not valid JSON: {0}")]
    NotJson(String),
    /// The document is JSON but not a valid policy.
    #[error("invalid policy document: {0}")]
    Invalid(String),
    /// The document is valid IAM, but uses something Shoal does not enforce; it is refused
    /// rather than half-enforced.
    #[error("unsupported in Shoal's policies: {0}")]
    Unsupported(String),
}

pub(crate) fn invalid(message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid(message.into())
}

pub(crate) fn unsupported(message: impl Into<String>) -> PolicyError {
    PolicyError::Unsupported(message.into())
}
