//! Turning SDK results into the DynamoDB error a test expects.

use std::fmt::Debug;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The DynamoDB error a request failed with, as the SDK saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// Error code (`__type` after the `#`), e.g. `ResourceNotFoundException`.
    pub code: String,
    /// Error message.
    pub message: String,
    /// HTTP status, if a response was received.
    pub status: Option<u16>,
}

/// Unwraps the error of a failed SDK call.
///
/// # Panics
/// If the call succeeded, or failed without a service response (connection or timeout
/// errors), with a message naming `what`.
pub fn api_error<T: Debug, E>(result: Result<T, SdkError<E, HttpResponse>>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(v) => panic!("expected an error, got success: {v:?}"),
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            if !matches!(e, SdkError::ServiceError(_)) {
                panic!("expected a service error, got {}", describe_error(&e));
            }
            ApiError {
                code: e.code().unwrap_or_default().to_string(),
                message: e.message().unwrap_or_default().to_string(),
                status,
            }
        }
    }
}

/// Asserts that `result` failed with error code `code` and status 400; returns the error for
/// further checks on the message.
///
/// # Panics
/// If it succeeded or failed differently.
#[track_caller]
pub fn assert_code<T: Debug, E>(
    result: Result<T, SdkError<E, HttpResponse>>,
    code: &str,
) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let err = api_error(result);
    assert_eq!(err.code, code, "unexpected error code: {err:?}");
    assert_eq!(err.status, Some(400), "unexpected status: {err:?}");
    err
}

/// Asserts that `result` failed with `ValidationException` (status 400) whose message contains
/// `fragment`.
///
/// # Panics
/// If it did not.
#[track_caller]
pub fn assert_validation<T: Debug, E>(result: Result<T, SdkError<E, HttpResponse>>, fragment: &str)
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let err = assert_code(result, "ValidationException");
    assert!(
        err.message.contains(fragment),
        "ValidationException message {:?} does not contain {fragment:?}",
        err.message
    );
}

/// A one-line description of an SDK error for panic messages: `Code: message (HTTP status)` for
/// service errors, the full error chain otherwise.
pub fn describe_error<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match e {
        SdkError::ServiceError(_) => format!(
            "{}: {} (HTTP {})",
            e.code().unwrap_or("<no code>"),
            e.message().unwrap_or("<no message>"),
            e.raw_response()
                .map(|r| r.status().as_u16().to_string())
                .unwrap_or_default()
        ),
        other => format!("{}", DisplayErrorContext(other)),
    }
}
