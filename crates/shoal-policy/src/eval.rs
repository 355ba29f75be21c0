//! Evaluation, as IAM does it for a principal and a resource of the same account: every
//! statement of the identity-based and the resource-based policy that applies to the request is
//! found; an explicit `Deny` in either wins, else an `Allow` in either grants, else the request
//! is denied implicitly.

use crate::condition::Context;
use crate::document::{Effect, Policy, Principals, Statement};
use crate::variables::Values;
use crate::wildcard;

/// The caller: an access key of this account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The access key id (`aws:username`, `aws:userid`).
    pub key_id: String,
    /// The account id (`aws:PrincipalAccount`).
    pub account: String,
    /// `arn:aws:iam::<account>:user/<key id>` (`aws:PrincipalArn`).
    pub arn: String,
}

impl Principal {
    /// The principal of access key `key_id` in `account`.
    pub fn access_key(key_id: &str, account: &str) -> Principal {
        Principal {
            key_id: key_id.to_string(),
            account: account.to_string(),
            arn: format!("arn:aws:iam::{account}:user/{key_id}"),
        }
    }
}

/// One authorization question: may `principal` perform `action` on `resource`?
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    /// `service:Action`, e.g. `dynamodb:GetItem`.
    pub action: &'a str,
    /// The resource's ARN (or `*` for actions without a resource).
    pub resource: &'a str,
    /// The request's condition keys; the principal's (`aws:username`, ...) are added here.
    pub context: &'a Context,
}

/// One policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A statement allows and none denies.
    Allow,
    /// No statement applies.
    NotApplicable,
    /// A statement denies (its `Sid`, if it has one).
    Deny { sid: Option<String> },
}

/// Where the identity's permissions come from.
#[derive(Debug, Clone, Copy)]
pub enum Identity<'a> {
    /// An access key without a policy: it may do everything (Shoal's behaviour before
    /// policies), though a resource-based policy's explicit deny still applies to it.
    FullAccess,
    /// An access key with a policy.
    Policy(&'a Policy),
}

/// The overall answer for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Nothing allows the request.
    ImplicitDeny,
    /// A statement denies it, in the identity-based policy or in the resource-based one.
    ExplicitDeny {
        in_resource_policy: bool,
    },
}

impl Verdict {
    /// DynamoDB's `AccessDeniedException` message for a refused request (`None` when allowed):
    /// `User: <arn> is not authorized to perform: <action> on resource: <arn> because no
    /// identity-based policy allows the <action> action`, or `... with an explicit deny in an
    /// identity-based policy` / `... in a resource-based policy`.
    pub fn message(&self, request: &Request<'_>) -> Option<String> {
        let head = format!(
            "User: {} is not authorized to perform: {} on resource: {}",
            request.principal.arn, request.action, request.resource
        );
        match self {
            Verdict::Allowed => None,
            Verdict::ImplicitDeny => Some(format!(
                "{head} because no identity-based policy allows the {} action",
                request.action
            )),
            Verdict::ExplicitDeny {
                in_resource_policy: false,
            } => Some(format!(
                "{head} with an explicit deny in an identity-based policy"
            )),
            Verdict::ExplicitDeny {
                in_resource_policy: true,
            } => Some(format!(
                "{head} with an explicit deny in a resource-based policy"
            )),
        }
    }
}

/// Evaluates `request` against the key's permissions and the resource's policy, if it has one.
/// An explicit deny in either wins; else an allow in either grants (same-account access needs
/// only one of them); else the request is implicitly denied.
pub fn authorize(
    identity: Identity<'_>,
    resource: Option<&Policy>,
    request: &Request<'_>,
) -> Verdict {
    let from_resource = resource.map_or(Decision::NotApplicable, |p| p.decide(request));
    if matches!(from_resource, Decision::Deny { .. }) {
        return Verdict::ExplicitDeny {
            in_resource_policy: true,
        };
    }
    let from_identity = match identity {
        Identity::FullAccess => Decision::Allow,
        Identity::Policy(p) => p.decide(request),
    };
    match (from_identity, from_resource) {
        (Decision::Deny { .. }, _) => Verdict::ExplicitDeny {
            in_resource_policy: false,
        },
        (Decision::Allow, _) | (_, Decision::Allow) => Verdict::Allowed,
        _ => Verdict::ImplicitDeny,
    }
}

impl Policy {
    /// This policy's own answer to `request`: `Deny` if a statement that applies denies, `Allow`
    /// if one allows, else `NotApplicable`.
    pub fn decide(&self, request: &Request<'_>) -> Decision {
        let mut context = request.context.clone();
        let p = request.principal;
        context.set("aws:username", p.key_id.clone());
        context.set("aws:userid", p.key_id.clone());
        context.set("aws:principalaccount", p.account.clone());
        context.set("aws:principalarn", p.arn.clone());
        context.set("aws:principaltype", "User");
        let values = Values {
            username: &p.key_id,
            user_id: &p.key_id,
            account: &p.account,
            principal_arn: &p.arn,
        };
        let mut allowed = false;
        for s in &self.statements {
            if !applies(s, request, &context, &values) {
                continue;
            }
            match s.effect {
                Effect::Deny => return Decision::Deny { sid: s.sid.clone() },
                Effect::Allow => allowed = true,
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::NotApplicable
        }
    }
}

fn applies(s: &Statement, request: &Request<'_>, context: &Context, values: &Values<'_>) -> bool {
    if let Some(principals) = &s.principals
        && !principal_matches(principals, s.effect, request.principal)
    {
        return false;
    }
    let action = s
        .actions
        .items
        .iter()
        .any(|a| wildcard::matches_ignore_case(a, request.action));
    if action == s.actions.negated {
        return false;
    }
    let resource = s.resources.items.iter().any(|r| {
        r.render(values)
            .is_some_and(|r| wildcard::matches(&r, request.resource))
    });
    if resource == s.resources.negated {
        return false;
    }
    s.conditions.iter().all(|c| c.holds(context, values))
}

/// Whether a resource-based statement names `principal`. Naming the account (its id or
/// `arn:aws:iam::<account>:root`) in an `Allow` grants nothing by itself (it delegates to the
/// account's identity-based policies, as in IAM); in a `Deny` it covers every key of the account.
fn principal_matches(p: &Principals, effect: Effect, principal: &Principal) -> bool {
    p.anyone
        || p.arns.contains(&principal.arn)
        || (effect == Effect::Deny && p.accounts.contains(&principal.account))
}
