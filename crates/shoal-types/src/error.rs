//! [`TypeError`]: why a value from a request is not acceptable.

/// A value from a request that cannot be accepted. The API layer maps `Serialization` to
/// `SerializationException` and `Validation` to `ValidationException`; the message is DynamoDB's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    /// The JSON has the wrong shape or type for the field (e.g. `{"S": 5}`).
    #[error("{0}")]
    Serialization(String),
    /// The JSON is well formed but the value breaks a DynamoDB rule (empty set, bad number, ...).
    #[error("{0}")]
    Validation(String),
}
