//! DynamoDB expressions, pure (no I/O): lexer, recursive-descent parser, placeholder
//! substitution and evaluation.
//!
//! - [`parse_condition`] → [`Condition`] (`ConditionExpression`, `FilterExpression`), evaluated
//!   with [`Condition::evaluate`].
//! - [`parse_projection`] → [`Projection`], applied with [`Projection::apply`].
//! - [`parse_update`] → [`Update`], applied with [`Update::apply`].
//! - [`parse_key_condition`] → [`KeyCondition`], checked against a key schema with
//!   [`KeyCondition::resolve`] (a table) or [`KeyCondition::resolve_index`] (an index, possibly
//!   with multi-attribute keys) into a [`ResolvedKeyCondition`].
//! - [`ExprContext`] holds one request's `ExpressionAttributeNames` / `Values` and reports unused
//!   ones; every failure is an [`ExprError`] carrying DynamoDB's exact `ValidationException` text.
//!
//! - [`legacy`] converts `Expected`, `QueryFilter` / `ScanFilter`, `KeyConditions` and
//!   `AttributeUpdates` into the same trees.
//!
//! Parsed trees are self-contained (placeholders substituted) and `Clone`.
//!
//! ```
//! use std::collections::HashMap;
//! use shoal_expr::{ConditionKind, ExprContext, parse_condition};
//! use shoal_types::{AttributeValue, Item};
//!
//! let values = HashMap::from([(":min".to_string(), AttributeValue::N("10".parse().unwrap()))]);
//! let mut ctx = ExprContext::new(None, Some(&values));
//! let cond = parse_condition("Price >= :min", &mut ctx, ConditionKind::Condition).unwrap();
//! ctx.check_all_used().unwrap();
//! let item = Item::from([("Price".to_string(), AttributeValue::N("12".parse().unwrap()))]);
//! assert!(cond.evaluate(&item));
//! ```
//!
//! Limits (ServiceQuotas): expression ≤ 4 KB, placeholders ≤ 255 bytes, ≤ 300 operators and
//! functions, document paths ≤ 32 dereferences, list indexes ≤ 2,147,483,647, `IN` ≤ 100 operands,
//! nesting ≤ 32 levels.

pub mod compare;
mod condition;
mod context;
mod error;
mod key_condition;
pub mod legacy;
mod lexer;
mod parser;
mod path;
mod projection;
pub mod reserved;
mod update;
mod update_apply;

pub use condition::{
    CompareOp, Condition, ConditionKind, MAX_IN_OPERANDS, Operand, parse_condition,
};
pub use context::{ExprContext, MAX_PLACEHOLDER_LEN};
pub use error::{ExprError, ExprKind};
pub use key_condition::{
    KeyCondition, KeyPart, ResolvedKeyCondition, SortKeyCondition, parse_key_condition,
};
pub use parser::{MAX_EXPRESSION_LEN, MAX_LIST_INDEX, MAX_NESTING, MAX_OPERATORS, MAX_PATH_DEPTH};
pub use path::{DocPath, PathElem};
pub use projection::{Projection, parse_projection};
pub use update::{Update, UpdateValue, parse_update};
