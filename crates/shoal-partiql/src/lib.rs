//! DynamoDB's PartiQL subset, pure (no I/O, no execution): lexer, recursive-descent parser,
//! syntax tree, canonical printer and parameter binding. `ExecuteStatement`,
//! `BatchExecuteStatement` and `ExecuteTransaction` build on it.
//!
//! - [`parse`] → [`Statement`]: [`Select`] (also inside [`Statement::Exists`] and
//!   [`Statement::NotExists`]), [`Insert`],
//!   [`Update`], [`Delete`]; every failure is a [`ParseError`] whose `Display` is the
//!   `ValidationException` message (`Statement wasn't well formed, can't be processed: ...`).
//! - [`Expr`] is a `WHERE` condition or a `SET` value; [`Expr::equalities`] lists the
//!   `path = value` conjuncts an executor needs to find the key, and [`Expr::to_condition`]
//!   turns a `WHERE` clause into shoal-expr's [`Condition`](shoal_expr::Condition) (parameters
//!   bound) to evaluate against items. Paths are shoal-expr's [`DocPath`] and comparison
//!   operators its [`CompareOp`].
//! - [`Value`] is a literal or a `?` parameter (numbered in order of appearance);
//!   [`Value::bind`] / [`Insert::bind_item`] turn it and the request's `Parameters` into
//!   shoal-types' [`AttributeValue`](shoal_types::AttributeValue) / [`Item`](shoal_types::Item); a
//!   [`BindError`] otherwise.
//! - `Display` on [`Statement`], [`Expr`] and [`Value`] prints canonical text that parses back
//!   to the same tree.
//!
//! ```
//! use shoal_partiql::{Statement, Value, parse};
//! use shoal_types::AttributeValue;
//!
//! let stmt = parse(r#"SELECT OrderID, Total FROM "Orders" WHERE OrderID = ? AND Total > 10"#)
//!     .unwrap();
//! assert_eq!(stmt.table(), "Orders");
//! assert_eq!(stmt.parameter_count(), 1);
//! let eqs = stmt.where_clause().unwrap().equalities();
//! assert_eq!(eqs.len(), 1);
//! assert_eq!(eqs[0].0.top(), "OrderID");
//! assert_eq!(eqs[0].1, &Value::Param(0));
//! let key = eqs[0].1.bind(&[AttributeValue::N("7".parse().unwrap())]).unwrap();
//! assert!(matches!(key, AttributeValue::N(_)));
//! assert!(parse("SELECT * FROM").is_err());
//! ```
//!
//! What parses (from the developer guide's PartiQL pages): `SELECT * | path, ... FROM table |
//! "table"."index" [WHERE ...] [ORDER BY path [ASC|DESC], ...]`; `[NOT] EXISTS(SELECT ...)`;
//! `INSERT INTO table VALUE {'name': value, ...}`; `UPDATE table (SET path = value[, ...] |
//! REMOVE path[, ...])... WHERE ... [RETURNING (ALL|MODIFIED) (OLD|NEW) *]`; `DELETE FROM
//! table WHERE ... [RETURNING ALL OLD *]`. Conditions: `= <> < <= > >=`, `[NOT] BETWEEN`,
//! `[NOT] IN [...]`, `IS [NOT] MISSING|NULL`, `AND`, `OR`, `NOT`, parentheses, `begins_with`,
//! `contains`, `attribute_type`, `size`; values: `+`, `-`, `list_append`, `set_add`,
//! `set_delete`. Keywords are case-insensitive and never bare identifiers (double-quote an
//! attribute named `value`). Whether a statement fits a table (key given, index exists, types)
//! is the executor's question.
//!
//! Not accepted (the pages do not document them): `--` and `/* */` comments, `!=`, a trailing
//! `;`, several items per `INSERT` (`VALUES`, `VALUE ?`), expressions inside collection
//! literals (`[a, 1 + 2]`), `a['key']` paths, projections other than paths, functions other
//! than the seven above, `IS` tests other than `MISSING` and `NULL`, unary minus on anything
//! but a number.
//!
//! Limits: statements ≤ [`MAX_STATEMENT_LEN`] characters, nesting ≤ [`MAX_NESTING`] levels
//! (checked before recursing: deep input is an error, not a stack overflow), ≤
//! [`MAX_PARAMETERS`] parameters, ≤ [`MAX_IN_OPERANDS`] `IN` values, paths ≤
//! [`MAX_PATH_DEPTH`] dereferences with list indexes ≤ [`MAX_LIST_INDEX`].

mod ast;
mod bind;
mod condition;
mod display;
mod error;
mod expr;
mod lexer;
mod limits;
mod literal;
mod parser;
mod walk;

pub use ast::{
    ArithOp, Delete, Expr, Function, Insert, IsTest, OrderBy, Projection, Returning, Select,
    Statement, Update, UpdateAction, Value,
};
pub use display::PathDisplay;
pub use error::{BindError, NOT_WELL_FORMED, ParseError};
pub use limits::{
    MAX_IN_OPERANDS, MAX_LIST_INDEX, MAX_NESTING, MAX_PARAMETERS, MAX_PATH_DEPTH, MAX_STATEMENT_LEN,
};
pub use shoal_expr::{CompareOp, DocPath, PathElem};

/// Parses one PartiQL statement.
///
/// Runs in time linear in the statement's length (itself bounded) and recursion bounded by
/// [`MAX_NESTING`].
///
/// # Errors
/// A [`ParseError`]: empty or too long, a syntax error (with line and column), nested too
/// deeply, too many parameters, or a number literal DynamoDB cannot store.
pub fn parse(statement: &str) -> Result<Statement, ParseError> {
    parser::parse_statement(statement)
}
