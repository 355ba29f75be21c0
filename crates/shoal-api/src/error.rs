//! [`ApiError`]: every error a client can see, with its DynamoDB `__type` and HTTP status.
//!
//! This is the only place where errors become DynamoDB error names. Lower layers' errors reach the
//! client with their own code only where a handler maps them explicitly; anything else is an
//! `InternalServerError` whose details are logged, never sent.

use http::StatusCode;

/// The DynamoDB error types Shoal returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Validation,
    Serialization,
    UnknownOperation,
    MissingAuthenticationToken,
    UnrecognizedClient,
    InvalidSignature,
    IncompleteSignature,
    AccessDenied,
    ResourceNotFound,
    ResourceInUse,
    /// A resource-based policy that is not there (or not at the `ExpectedRevisionId`).
    PolicyNotFound,
    ConditionalCheckFailed,
    /// A PartiQL `INSERT` of an item whose primary key exists.
    DuplicateItem,
    LimitExceeded,
    /// A table's or global index's throughput (provisioned, on-demand maximum, or per
    /// partition) is exhausted (HTTP 400, retried with backoff by the SDKs).
    ProvisionedThroughputExceeded,
    ItemCollectionSizeLimitExceeded,
    /// A TransactWriteItems or TransactGetItems that applied nothing, with its
    /// `CancellationReasons`.
    TransactionCanceled,
    /// A PutItem, UpdateItem, DeleteItem (or a BatchWriteItem write) on an item a transaction
    /// holds.
    TransactionConflict,
    /// A TransactWriteItems whose `ClientRequestToken` names a transaction still running.
    TransactionInProgress,
    /// A TransactWriteItems whose `ClientRequestToken` was used for another request within the
    /// last 10 minutes.
    IdempotentParameterMismatch,
    RequestEntityTooLarge,
    /// Overload: the server's queue of work is full (HTTP 400, retried with backoff by the SDKs).
    Throttling,
    /// The client did not send its request body in time (HTTP 408, retried by the SDKs).
    RequestTimeout,
    /// A DynamoDB Streams shard iterator older than 15 minutes (`GetRecords`).
    ExpiredIterator,
    /// DynamoDB Streams records (or a position among them) that were trimmed.
    TrimmedDataAccess,
    InternalServerError,
}

impl ErrorKind {
    /// The name after `#` in `__type`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Validation => "ValidationException",
            ErrorKind::Serialization => "SerializationException",
            ErrorKind::UnknownOperation => "UnknownOperationException",
            ErrorKind::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorKind::UnrecognizedClient => "UnrecognizedClientException",
            ErrorKind::InvalidSignature => "InvalidSignatureException",
            ErrorKind::IncompleteSignature => "IncompleteSignatureException",
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::ResourceInUse => "ResourceInUseException",
            ErrorKind::PolicyNotFound => "PolicyNotFoundException",
            ErrorKind::ConditionalCheckFailed => "ConditionalCheckFailedException",
            ErrorKind::DuplicateItem => "DuplicateItemException",
            ErrorKind::LimitExceeded => "LimitExceededException",
            ErrorKind::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            ErrorKind::ItemCollectionSizeLimitExceeded => {
                "ItemCollectionSizeLimitExceededException"
            }
            ErrorKind::TransactionCanceled => "TransactionCanceledException",
            ErrorKind::TransactionConflict => "TransactionConflictException",
            ErrorKind::TransactionInProgress => "TransactionInProgressException",
            ErrorKind::IdempotentParameterMismatch => "IdempotentParameterMismatchException",
            ErrorKind::RequestEntityTooLarge => "RequestEntityTooLargeException",
            ErrorKind::Throttling => "ThrottlingException",
            ErrorKind::RequestTimeout => "RequestTimeoutException",
            ErrorKind::ExpiredIterator => "ExpiredIteratorException",
            ErrorKind::TrimmedDataAccess => "TrimmedDataAccessException",
            ErrorKind::InternalServerError => "InternalServerError",
        }
    }

    /// The member that carries the message in the error body: `Message` for the exceptions
    /// whose model shape names it so (DynamoDB writes it capitalized for them), `message`
    /// otherwise.
    pub fn message_member(self) -> &'static str {
        match self {
            ErrorKind::TransactionCanceled
            | ErrorKind::TransactionInProgress
            | ErrorKind::IdempotentParameterMismatch => "Message",
            _ => "message",
        }
    }

    /// The HTTP status DynamoDB answers with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::RequestEntityTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An error answered to the client: its kind, DynamoDB's message, and for conditional-check
/// failures the item when `ReturnValuesOnConditionCheckFailure=ALL_OLD` asked for it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// Extra members of the error body (e.g. `Item`).
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            extra: None,
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::Validation, message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::Serialization, message)
    }

    /// `ResourceNotFoundException: Requested resource not found` (item and table operations).
    pub fn resource_not_found() -> Self {
        ApiError::new(ErrorKind::ResourceNotFound, "Requested resource not found")
    }

    /// `ProvisionedThroughputExceededException` with DynamoDB's message for `t` and its
    /// `ThrottlingReasons`.
    pub fn throttled(t: &shoal_catalog::capacity::Throttled) -> Self {
        let mut err = ApiError::new(ErrorKind::ProvisionedThroughputExceeded, t.message());
        let mut extra = serde_json::Map::new();
        extra.insert(
            "ThrottlingReasons".into(),
            serde_json::json!([{"reason": t.reason, "resource": t.resource}]),
        );
        err.extra = Some(extra);
        err
    }

    /// An internal failure: the client sees a generic message; the cause is logged here.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        ApiError::new(ErrorKind::InternalServerError, "Internal server error")
    }

    /// The JSON error body: `{"__type": "com.amazonaws.dynamodb.v20120810#Name", "message": ...}`.
    /// An empty message is left out, as DynamoDB leaves it out of the errors it answers without
    /// one (a body that is not JSON, an unknown operation).
    pub fn body(&self) -> Vec<u8> {
        let mut obj = serde_json::Map::new();
        obj.insert(
            "__type".into(),
            format!("com.amazonaws.dynamodb.v20120810#{}", self.kind.name()).into(),
        );
        if !self.message.is_empty() {
            obj.insert(
                self.kind.message_member().into(),
                self.message.clone().into(),
            );
        }
        if let Some(extra) = &self.extra {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        serde_json::to_vec(&obj).unwrap_or_default()
    }
}

impl From<shoal_types::TypeError> for ApiError {
    fn from(e: shoal_types::TypeError) -> Self {
        match e {
            shoal_types::TypeError::Serialization(m) => ApiError::serialization(m),
            shoal_types::TypeError::Validation(m) => ApiError::validation(m),
        }
    }
}

impl From<shoal_expr::ExprError> for ApiError {
    fn from(e: shoal_expr::ExprError) -> Self {
        ApiError::validation(e.message)
    }
}

/// Collects model-constraint violations and reports them as DynamoDB does:
/// `2 validation errors detected: Value '' at 'tableName' failed to satisfy constraint: ...; ...`.
///
/// A missing required top-level member is reported alone, before any constraint, in DynamoDB's
/// newer wording: `The parameter 'TableName' is required but was not specified.` (the first
/// one missing, in the order the handler checks them). A missing nested member keeps the
/// `Value null at 'field' ... Member must not be null` form.
#[derive(Debug, Default)]
pub struct Violations {
    list: Vec<String>,
    /// The first missing required top-level member, by its model name.
    required: Option<String>,
}

impl Violations {
    pub fn push(&mut self, violation: String) {
        self.list.push(violation);
    }

    /// A required member is missing. `field` is its path as DynamoDB's constraint messages
    /// write it (`tableName`, `requestItems.t.member.keys`).
    pub fn missing(&mut self, field: &str) {
        if !field.contains('.') {
            if self.required.is_none() {
                let mut chars = field.chars();
                let member: String = chars
                    .next()
                    .map(|c| c.to_ascii_uppercase())
                    .into_iter()
                    .chain(chars)
                    .collect();
                self.required = Some(member);
            }
            return;
        }
        self.push(format!(
            "Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ));
    }

    /// A constraint on a present value; `value` is shown as DynamoDB shows it.
    pub fn constraint(&mut self, value: &str, field: &str, constraint: &str) {
        self.push(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// As [`Violations::into_result`], leaving `self` empty (for checks that must report the
    /// violations found so far before going on).
    pub fn take_result(&mut self) -> Result<(), ApiError> {
        std::mem::take(self).into_result()
    }

    pub fn into_result(self) -> Result<(), ApiError> {
        if let Some(member) = self.required {
            return Err(ApiError::validation(format!(
                "The parameter '{member}' is required but was not specified."
            )));
        }
        match self.list.len() {
            0 => Ok(()),
            1 => Err(ApiError::validation(format!(
                "1 validation error detected: {}",
                self.list.join("; ")
            ))),
            n => Err(ApiError::validation(format!(
                "{n} validation errors detected: {}",
                self.list.join("; ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_top_level_member_is_reported_alone_in_the_newer_wording() {
        let mut v = Violations::default();
        v.constraint(
            "ab",
            "tableName",
            "Member must have length greater than or equal to 3",
        );
        v.missing("key");
        v.missing("item");
        let e = v.into_result().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Validation);
        assert_eq!(
            e.message,
            "The parameter 'Key' is required but was not specified."
        );
    }

    #[test]
    fn nested_missing_members_and_constraints_keep_the_counted_form() {
        let mut v = Violations::default();
        v.missing("requestItems.t.member.keys");
        v.constraint(
            "0",
            "limit",
            "Member must have value greater than or equal to 1",
        );
        assert_eq!(
            v.into_result().unwrap_err().message,
            "2 validation errors detected: Value null at 'requestItems.t.member.keys' failed to \
             satisfy constraint: Member must not be null; Value '0' at 'limit' failed to satisfy \
             constraint: Member must have value greater than or equal to 1"
        );
        assert!(Violations::default().into_result().is_ok());
    }
}
