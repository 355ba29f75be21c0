//! IAM's JSON policy language, as Shoal enforces it. Pure: no I/O.
//!
//! - [`Policy::parse`] validates a document of a [`PolicyKind`] (an access key's identity-based
//!   policy, or a table's resource-based policy) within its size limit
//!   ([`IDENTITY_POLICY_MAX_CHARS`], [`RESOURCE_POLICY_MAX_BYTES`]), refusing anything it would
//!   not enforce ([`PolicyError::Unsupported`]) rather than ignoring it.
//! - [`authorize`] answers one [`Request`] (a [`Principal`], an action, a resource ARN and the
//!   request's condition keys in a [`Context`]) with a [`Verdict`], whose
//!   [`Verdict::message`] is DynamoDB's `AccessDeniedException` text.
//! - [`wildcard`] (`*`, `?`) and [`ip`] (CIDR blocks) are the matching primitives; [`arn`] builds
//!   the ARNs Shoal's resources have.
//!
//! ```
//! use shoal_policy::{Context, Identity, Policy, PolicyKind, Principal, Request, Verdict, authorize};
//!
//! let policy = Policy::parse(r#"{
//!     "Version": "2012-10-17",
//!     "Statement": [{
//!         "Effect": "Allow",
//!         "Action": ["dynamodb:GetItem", "dynamodb:Query"],
//!         "Resource": "arn:aws:dynamodb:*:*:table/Scores",
//!         "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["${aws:username}"]}}
//!     }]
//! }"#, PolicyKind::Identity)?;
//! let me = Principal::access_key("AKIAEXAMPLE", "000000000000");
//! let mut context = Context::new();
//! context.set_all("dynamodb:LeadingKeys", vec!["AKIAEXAMPLE".into()]);
//! let request = Request {
//!     principal: &me,
//!     action: "dynamodb:GetItem",
//!     resource: "arn:aws:dynamodb:us-east-1:000000000000:table/Scores",
//!     context: &context,
//! };
//! assert_eq!(authorize(Identity::Policy(&policy), None, &request), Verdict::Allowed);
//! # Ok::<(), shoal_policy::PolicyError>(())
//! ```

pub mod arn;
mod condition;
mod document;
mod error;
mod eval;
pub mod ip;
mod variables;
pub mod wildcard;

pub use condition::{Context, KNOWN_KEYS, RESOURCE_TAG_PREFIX};
pub use document::{
    Effect, IDENTITY_POLICY_MAX_CHARS, Policy, PolicyKind, RESOURCE_POLICY_MAX_BYTES,
};
pub use error::PolicyError;
pub use eval::{Decision, Identity, Principal, Request, Verdict, authorize};

#[cfg(test)]
mod tests;
