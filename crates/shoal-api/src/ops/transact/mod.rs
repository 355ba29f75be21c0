//! TransactWriteItems and TransactGetItems: the request is parsed and validated here as the
//! single-item operations validate theirs (model constraints, expressions, tables, keys, sizes,
//! one action per item), then handed whole to the data plane
//! ([`shoal_catalog::DataPlane::transact_write`], [`shoal_catalog::DataPlane::transact_get`]),
//! which applies every action or none.
//!
//! - `parse.rs`: `TransactItems`, each action's members and expressions, `ClientRequestToken`.
//! - `write.rs`, `get.rs`: the two handlers, their capacity (twice the units of the
//!   non-transactional operation: DynamoDB prepares, then commits, each item).
//! - `token.rs`: the hashed `ClientRequestToken` ([`shoal_catalog::TxToken`]).
//! - `errors.rs`: `TransactionCanceledException` with its `CancellationReasons`, and the
//!   idempotency errors.
//!
//! PartiQL's `ExecuteTransaction` ([`crate::ops::partiql`]) reuses the token, the errors and
//! the write capacity charged here.

pub(crate) mod errors;
mod get;
pub(crate) mod parse;
pub(crate) mod token;
pub(crate) mod write;

pub use get::transact_get_items;
pub use write::transact_write_items;
