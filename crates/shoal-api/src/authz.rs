//! Authorization: every DynamoDB request is checked against the caller's policy and the
//! resource-based policy of each table (or stream) it touches, before the operation runs.
//!
//! [`check`] names the (action, resource) pairs of the request ([`targets`]), fills each one's
//! condition keys ([`context`]), and asks [`shoal_policy::authorize`]. A key without a policy
//! keeps full access ([`shoal_policy::Identity::FullAccess`]): a request it signs costs one table
//! lookup per table named, to find a resource-based policy's explicit deny. Admin keys may always
//! read, replace and delete resource-based policies (as the account root may in DynamoDB), so a
//! policy cannot lock the cluster's operators out of a table.

mod context;
mod targets;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use shoal_policy::{Identity, Policy, PolicyKind, Principal, Request, Verdict};

use crate::backend::TableMeta;
use crate::error::{ApiError, ErrorKind};
use crate::ops::{Ctx, Operation};

pub(crate) use targets::table_of_arn;

/// Parsed resource-based policies by table id and revision id (together they name one document
/// for good: revision ids are unique per table only), so a request does not parse its table's
/// policy again. Bounded: cleared when full.
#[derive(Default)]
pub struct PolicyCache {
    parsed: Mutex<HashMap<(String, String), Arc<Policy>>>,
}

/// Entries kept before the cache starts over.
const CACHE_ENTRIES: usize = 1024;

impl PolicyCache {
    /// The parsed resource-based policy of `meta` (`stream` `None`) or of its stream `stream`,
    /// if it has one. A stored document that no longer parses (it was validated when stored)
    /// counts as a policy that denies everything except to admin keys, and is logged.
    fn of(&self, meta: &TableMeta, stream: Option<u32>) -> Option<Arc<Policy>> {
        let stored = meta.policy_of(stream)?;
        let owner = match stream {
            None => meta.id.clone(),
            Some(id) => format!("{}/stream/{id}", meta.id),
        };
        let key = (owner, stored.revision_id.clone());
        if let Some(p) = self.parsed.lock().get(&key) {
            return Some(Arc::clone(p));
        }
        let policy = match Policy::parse(&stored.document, PolicyKind::Resource) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::error!(table = %meta.name, error = %e, "a stored resource-based policy does not parse; denying every request to the table");
                Arc::new(Policy::deny_all(PolicyKind::Resource))
            }
        };
        let mut parsed = self.parsed.lock();
        if parsed.len() >= CACHE_ENTRIES {
            parsed.clear();
        }
        parsed.insert(key, Arc::clone(&policy));
        Some(policy)
    }
}

/// One thing the request does: an action on a resource, with the table it belongs to (when it
/// names one this node knows) and, for item operations, what to read the condition keys from.
pub(crate) struct Target {
    pub action: String,
    pub resource: String,
    pub table: Option<Arc<TableMeta>>,
    /// The stream of `table` the resource is (its resource-based policy applies, not the
    /// table's).
    pub stream: Option<u32>,
    pub part: context::Part,
}

/// Checks that the caller may perform `op` with `body`.
///
/// # Errors
/// `AccessDeniedException` with DynamoDB's message for the first refused (action, resource);
/// `ValidationException` when an expression the policy's conditions need cannot be parsed (the
/// operation would refuse it too).
pub async fn check(ctx: &Ctx<'_>, op: Operation, body: &serde_json::Value) -> Result<(), ApiError> {
    let key_id = &ctx.identity.access_key_id;
    let identity_policy = ctx.backend.key_policy(key_id);
    let managing_policy = matches!(
        op,
        Operation::PutResourcePolicy
            | Operation::GetResourcePolicy
            | Operation::DeleteResourcePolicy
    );
    // `is_admin` is not free (it lists the keys): asked only where it matters.
    if managing_policy && ctx.backend.is_admin(key_id) {
        return Ok(());
    }
    let targets = targets::of(ctx, op, body).await;
    // Built once a target has a policy to evaluate (a key without a policy on tables without
    // one costs nothing more).
    let mut principal = None;
    for target in &targets {
        let resource_policy = target
            .table
            .as_deref()
            .and_then(|m| ctx.policies.of(m, target.stream));
        let (identity, resource) = match (&identity_policy, &resource_policy) {
            (None, None) => continue,
            (None, Some(r)) => (Identity::FullAccess, Some(r.as_ref())),
            (Some(i), r) => (Identity::Policy(i.as_ref()), r.as_deref()),
        };
        let needs = |key: &str| {
            identity_policy.as_ref().is_some_and(|p| p.uses_key(key))
                || resource.is_some_and(|p| p.uses_key(key))
        };
        let context = context::build(ctx, op, body, target, &needs)?;
        let principal: &Principal = principal
            .get_or_insert_with(|| Principal::access_key(key_id, ctx.backend.account_id()));
        let request = Request {
            principal,
            action: &target.action,
            resource: &target.resource,
            context: &context,
        };
        let verdict = shoal_policy::authorize(identity, resource, &request);
        if let Some(message) = verdict.message(&request) {
            tracing::debug!(access_key_id = %key_id, action = %target.action, resource = %target.resource, ?verdict, "request denied by policy");
            return Err(ApiError::new(ErrorKind::AccessDenied, message));
        }
        debug_assert_eq!(verdict, Verdict::Allowed);
    }
    Ok(())
}
