//! [`ParseError`] (a statement that does not parse) and [`BindError`] (parameters that do not fit
//! a parsed statement). Both are DynamoDB `ValidationException`s; `Display` is the message.

use shoal_types::NumberError;

use crate::limits::{MAX_NESTING, MAX_PARAMETERS, MAX_STATEMENT_LEN};

/// The prefix DynamoDB puts on every message about a statement that does not parse.
pub const NOT_WELL_FORMED: &str = "Statement wasn't well formed, can't be processed";

/// Why a statement was refused by [`crate::parse`]. Every variant is a `ValidationException`;
/// `Display` gives the message for the response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The statement is empty or only whitespace.
    #[error("{NOT_WELL_FORMED}: the statement is empty")]
    Empty,
    /// The statement is longer than [`MAX_STATEMENT_LEN`] characters.
    #[error(
        "{NOT_WELL_FORMED}: the statement is {len} characters long; the maximum is {MAX_STATEMENT_LEN}"
    )]
    TooLong {
        /// Length in characters (Unicode scalar values), or a lower bound when counting stopped.
        len: usize,
    },
    /// A syntax error at `line`:`column` (1-based; columns count characters).
    #[error("{NOT_WELL_FORMED}: {detail} at line {line}, column {column}")]
    Syntax {
        /// What was wrong, e.g. `unexpected token ','; expected an expression`.
        detail: String,
        line: usize,
        column: usize,
    },
    /// Parentheses, `NOT`, function calls and collection literals nested past [`MAX_NESTING`].
    #[error(
        "{NOT_WELL_FORMED}: the statement is nested too deeply (more than {MAX_NESTING} levels) at line {line}, column {column}"
    )]
    TooDeep { line: usize, column: usize },
    /// More than [`MAX_PARAMETERS`] `?` parameters.
    #[error("{NOT_WELL_FORMED}: the statement has more than {MAX_PARAMETERS} parameters")]
    TooManyParameters,
    /// A number literal DynamoDB cannot store (too many digits, out of range). The message is
    /// the one DynamoDB gives for such a number anywhere.
    #[error("{source}")]
    Number {
        #[from]
        source: NumberError,
    },
}

/// Why parameters or literals could not be turned into attribute values (see
/// [`crate::Value::bind`]) or a `WHERE` clause into a condition (see
/// [`crate::Expr::to_condition`]). Every variant is a `ValidationException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// The request's `Parameters` and the statement's `?` count differ.
    #[error("Number of parameters in request and statement don't match.")]
    ParameterCount {
        /// `?` in the statement.
        expected: usize,
        /// Values in the request.
        given: usize,
    },
    /// A set literal whose elements are not all strings, all numbers or all binaries.
    #[error(
        "A set may only hold strings, numbers or binary values, all of one type; found {found}"
    )]
    SetElementType {
        /// The offending element's type (`S`, `N`, `B`, `BOOL`, `NULL`, `L`, `M`, ...).
        found: &'static str,
    },
    /// A set literal with the same element twice.
    #[error("Input collection contains duplicates.")]
    DuplicateSetElement,
    /// Something [`crate::Expr::to_condition`] cannot express as a condition (e.g. arithmetic
    /// in a `WHERE` clause).
    #[error("Unsupported condition: {what}")]
    Unsupported {
        /// What, e.g. `arithmetic in a condition`.
        what: String,
    },
}
