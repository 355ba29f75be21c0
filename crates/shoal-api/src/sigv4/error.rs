//! The authentication errors a client can receive, with DynamoDB's type names and messages.

/// Why a request was not authenticated.
///
/// Every variant is a client error that DynamoDB answers with HTTP 400; [`AuthError::type_name`] is the
/// short `__type` name and [`AuthError::message`] the `message` text, both as DynamoDB returns them.
/// Messages never contain a secret key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The request carries no `Authorization` header (presigned query-string requests count as unsigned).
    #[error("{0}")]
    MissingAuthenticationToken(String),
    /// The access key id is not known to this node.
    #[error("{0}")]
    UnrecognizedClient(String),
    /// The signature, its scope, its date or its signed-header list is wrong.
    #[error("{0}")]
    InvalidSignature(String),
    /// The `Authorization` header or the request date is missing or malformed.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The caller is authenticated but not allowed to perform the request (raised by policy checks,
    /// never by [`crate::sigv4::Verifier::verify`]).
    #[error("{0}")]
    AccessDenied(String),
}

impl AuthError {
    /// The short error type name, e.g. `"MissingAuthenticationTokenException"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken(_) => "MissingAuthenticationTokenException",
            Self::UnrecognizedClient(_) => "UnrecognizedClientException",
            Self::InvalidSignature(_) => "InvalidSignatureException",
            Self::IncompleteSignature(_) => "IncompleteSignatureException",
            Self::AccessDenied(_) => "AccessDeniedException",
        }
    }

    /// The fully qualified `__type` DynamoDB sends for this error; authentication errors live in the
    /// `com.amazon.coral.service` namespace, e.g. `"com.amazon.coral.service#UnrecognizedClientException"`.
    pub fn qualified_type_name(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken(_) => {
                "com.amazon.coral.service#MissingAuthenticationTokenException"
            }
            Self::UnrecognizedClient(_) => "com.amazon.coral.service#UnrecognizedClientException",
            Self::InvalidSignature(_) => "com.amazon.coral.service#InvalidSignatureException",
            Self::IncompleteSignature(_) => "com.amazon.coral.service#IncompleteSignatureException",
            Self::AccessDenied(_) => "com.amazon.coral.service#AccessDeniedException",
        }
    }

    /// The human-readable message, exactly as sent to the client.
    pub fn message(&self) -> &str {
        match self {
            Self::MissingAuthenticationToken(m)
            | Self::UnrecognizedClient(m)
            | Self::InvalidSignature(m)
            | Self::IncompleteSignature(m)
            | Self::AccessDenied(m) => m,
        }
    }

    /// The HTTP status for this error: always 400 Bad Request, as in DynamoDB.
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::BAD_REQUEST
    }

    pub(crate) fn missing_token() -> Self {
        Self::MissingAuthenticationToken("Request is missing Authentication Token".to_owned())
    }

    pub(crate) fn unrecognized_client() -> Self {
        Self::UnrecognizedClient(
            "The security token included in the request is invalid.".to_owned(),
        )
    }

    pub(crate) fn signature_mismatch() -> Self {
        Self::InvalidSignature(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details."
                .to_owned(),
        )
    }
}
