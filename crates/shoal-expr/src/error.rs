//! [`ExprError`] and [`ExprKind`], the expression parameter an error is reported for.

/// An invalid expression or a failed update. Always a DynamoDB `ValidationException`; `message`
/// is DynamoDB's exact text (e.g. `Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "a ="`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    /// DynamoDB's message, ready for the `message` field of the error response.
    pub message: String,
}

impl ExprError {
    /// An error with exactly this message.
    pub fn new(message: impl Into<String>) -> Self {
        ExprError {
            message: message.into(),
        }
    }
}

/// Which request parameter an expression came from; names the `Invalid ...Expression:` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprKind {
    Condition,
    Filter,
    KeyCondition,
    Projection,
    Update,
}

impl ExprKind {
    /// The parameter name, e.g. `ConditionExpression`.
    pub fn param_name(self) -> &'static str {
        match self {
            ExprKind::Condition => "ConditionExpression",
            ExprKind::Filter => "FilterExpression",
            ExprKind::KeyCondition => "KeyConditionExpression",
            ExprKind::Projection => "ProjectionExpression",
            ExprKind::Update => "UpdateExpression",
        }
    }

    /// `Invalid <Param>: <detail>`.
    pub(crate) fn invalid(self, detail: impl std::fmt::Display) -> ExprError {
        ExprError::new(format!("Invalid {}: {}", self.param_name(), detail))
    }
}
