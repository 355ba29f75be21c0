//! Parsing and validating a policy document into a [`Policy`].
//!
//! Grammar (IAM's): an object with `Version` (`2012-10-17` or `2008-10-17`; absent means
//! `2008-10-17`), optional `Id`, and `Statement` (one object or an array). A statement has
//! `Sid` (optional), `Effect` (`Allow`/`Deny`), exactly one of `Action`/`NotAction`, exactly one
//! of `Resource`/`NotResource`, `Principal` (resource-based policies only, required there), and
//! `Condition` (optional). Anything else is refused with a message naming it.

use serde_json::{Map, Value};

use crate::condition::{self, Condition};
use crate::error::{PolicyError, invalid, unsupported};
use crate::variables::{self, Text};

/// IAM's limit on a managed policy: 6,144 characters, whitespace not counted. Applies to the
/// policies of access keys.
pub const IDENTITY_POLICY_MAX_CHARS: usize = 6_144;

/// DynamoDB's limit on a resource-based policy: 20 KB, whitespace counted.
pub const RESOURCE_POLICY_MAX_BYTES: usize = 20 * 1024;

/// Which kind of policy a document is: it decides the size limit and whether `Principal` is
/// required (resource-based) or refused (identity-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Attached to an access key.
    Identity,
    /// Attached to a table (`PutResourcePolicy`, `CreateTable`'s `ResourcePolicy`).
    Resource,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action` (positive) or `NotAction` (negated); likewise for resources.
#[derive(Debug, Clone)]
pub(crate) struct Patterns<T> {
    pub negated: bool,
    pub items: Vec<T>,
}

/// Who a resource-based statement applies to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Principals {
    /// `"*"` or `{"AWS": "*"}`: everyone.
    pub anyone: bool,
    /// Account ids named (bare or as `arn:aws:iam::<account>:root`).
    pub accounts: Vec<String>,
    /// Other principal ARNs named (`arn:aws:iam::<account>:user/<name>`), exact.
    pub arns: Vec<String>,
}

/// One statement.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    /// Action patterns (`service:Name`, wildcards), compared without regard to case.
    pub actions: Patterns<String>,
    /// Resource ARN patterns (wildcards, policy variables), compared exactly.
    pub resources: Patterns<Text>,
    /// Resource-based policies only.
    pub principals: Option<Principals>,
    pub conditions: Vec<Condition>,
}

/// A parsed, validated policy. Evaluate it with [`crate::authorize`] or [`Policy::decide`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) kind: PolicyKind,
    pub(crate) statements: Vec<Statement>,
}

impl Policy {
    /// Parses and validates `text` as a policy of `kind`.
    ///
    /// # Errors
    /// [`PolicyError::TooLarge`] past [`IDENTITY_POLICY_MAX_CHARS`] (whitespace not counted) or
    /// [`RESOURCE_POLICY_MAX_BYTES`]; [`PolicyError::NotJson`]; [`PolicyError::Invalid`] for a
    /// document IAM would refuse; [`PolicyError::Unsupported`] for IAM features Shoal does not
    /// enforce (other condition keys or operators, `NotPrincipal`, non-AWS principals).
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        match kind {
            PolicyKind::Identity => {
                let chars = text.chars().filter(|c| !c.is_whitespace()).count();
                if chars > IDENTITY_POLICY_MAX_CHARS {
                    return Err(PolicyError::TooLarge {
                        size: chars,
                        limit: IDENTITY_POLICY_MAX_CHARS,
                        unit: "characters (whitespace not counted)",
                    });
                }
            }
            PolicyKind::Resource => {
                if text.len() > RESOURCE_POLICY_MAX_BYTES {
                    return Err(PolicyError::TooLarge {
                        size: text.len(),
                        limit: RESOURCE_POLICY_MAX_BYTES,
                        unit: "bytes",
                    });
                }
            }
        }
        let doc: Value =
            serde_json::from_str(text).map_err(|e| PolicyError::NotJson(e.to_string()))?;
        let Some(doc) = doc.as_object() else {
            return Err(invalid("a policy document is a JSON object"));
        };
        let mut version_2012 = false;
        let mut statements = None;
        for (k, v) in doc {
            match k.as_str() {
                "Version" => match v.as_str() {
                    Some("2012-10-17") => version_2012 = true,
                    Some("2008-10-17") => {}
                    _ => {
                        return Err(invalid(format!(
                            "Version must be \"2012-10-17\" or \"2008-10-17\", not {v}"
                        )));
                    }
                },
                "Id" => {
                    if !v.is_string() {
                        return Err(invalid("Id must be a string"));
                    }
                }
                "Statement" => statements = Some(v),
                other => {
                    return Err(invalid(format!(
                        "unknown top-level element {other:?} (expected Version, Id, Statement)"
                    )));
                }
            }
        }
        let list: Vec<&Value> = match statements {
            None => return Err(invalid("the policy has no Statement")),
            Some(Value::Array(a)) if a.is_empty() => {
                return Err(invalid("the policy's Statement list is empty"));
            }
            Some(Value::Array(a)) => a.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            Some(_) => {
                return Err(invalid(
                    "Statement must be an object or an array of objects",
                ));
            }
        };
        let statements = list
            .into_iter()
            .enumerate()
            .map(|(i, s)| parse_statement(s, i, kind, version_2012))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy { kind, statements })
    }

    /// A policy whose one statement denies every action on every resource to everyone: what a
    /// caller uses in place of a stored document that no longer parses (fail closed).
    pub fn deny_all(kind: PolicyKind) -> Policy {
        Policy {
            kind,
            statements: vec![Statement {
                sid: Some("ShoalDenyAll".into()),
                effect: Effect::Deny,
                actions: Patterns {
                    negated: false,
                    items: vec!["*".into()],
                },
                resources: Patterns {
                    negated: false,
                    items: vec![Text::literal("*")],
                },
                principals: (kind == PolicyKind::Resource).then(|| Principals {
                    anyone: true,
                    ..Principals::default()
                }),
                conditions: Vec::new(),
            }],
        }
    }

    /// The kind this policy was parsed as.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// Whether any statement has a condition on `key` (lowercase): the caller need not compute
    /// costly keys (`dynamodb:Attributes`) no policy looks at.
    pub fn uses_key(&self, key: &str) -> bool {
        self.statements
            .iter()
            .flat_map(|s| &s.conditions)
            .any(|c| c.key() == key || (key.ends_with('/') && c.key().starts_with(key)))
    }
}

fn parse_statement(
    v: &Value,
    index: usize,
    kind: PolicyKind,
    version_2012: bool,
) -> Result<Statement, PolicyError> {
    let Some(obj) = v.as_object() else {
        return Err(invalid(format!("Statement {} is not an object", index + 1)));
    };
    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("Sid must be a string")),
    };
    let name = sid.as_deref().map_or_else(
        || format!("Statement {}", index + 1),
        |s| format!("Statement {s:?}"),
    );
    for k in obj.keys() {
        match k.as_str() {
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource"
            | "Condition" | "Principal" => {}
            "NotPrincipal" => {
                return Err(unsupported(format!(
                    "{name}: NotPrincipal (name the principals with Principal)"
                )));
            }
            other => {
                return Err(invalid(format!("{name}: unknown element {other:?}")));
            }
        }
    }
    let effect = match obj.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => {
            return Err(invalid(format!(
                "{name}: Effect must be \"Allow\" or \"Deny\""
            )));
        }
    };
    let actions = one_of(obj, "Action", "NotAction", &name)?;
    for a in &actions.items {
        check_action(a, &name)?;
    }
    let actions = Patterns {
        negated: actions.negated,
        items: actions.items,
    };
    let resources = one_of(obj, "Resource", "NotResource", &name)?;
    let mut texts = Vec::with_capacity(resources.items.len());
    for r in &resources.items {
        if r != "*" && !is_arn_pattern(r) {
            return Err(invalid(format!(
                "{name}: resource {r:?} is neither \"*\" nor an ARN (arn:aws:dynamodb:<region>:<account>:table/<name>...)"
            )));
        }
        texts.push(variables::parse(r, version_2012)?);
    }
    let resources = Patterns {
        negated: resources.negated,
        items: texts,
    };
    let principals = match (kind, obj.get("Principal")) {
        (PolicyKind::Identity, Some(_)) => {
            return Err(invalid(format!(
                "{name}: an access key's policy must not name a Principal (it applies to its key)"
            )));
        }
        (PolicyKind::Identity, None) => None,
        (PolicyKind::Resource, None) => {
            return Err(invalid(format!(
                "{name}: a resource-based policy statement must name a Principal"
            )));
        }
        (PolicyKind::Resource, Some(p)) => Some(parse_principal(p, &name)?),
    };
    let mut conditions = Vec::new();
    if let Some(c) = obj.get("Condition") {
        let Some(ops) = c.as_object() else {
            return Err(invalid(format!("{name}: Condition must be an object")));
        };
        for (op, block) in ops {
            conditions.extend(condition::parse_block(op, block, version_2012)?);
        }
    }
    Ok(Statement {
        sid,
        effect,
        actions,
        resources,
        principals,
        conditions,
    })
}

/// Exactly one of `positive`/`negative`, as a non-empty list of strings.
fn one_of(
    obj: &Map<String, Value>,
    positive: &str,
    negative: &str,
    name: &str,
) -> Result<Patterns<String>, PolicyError> {
    let (negated, v) = match (obj.get(positive), obj.get(negative)) {
        (Some(v), None) => (false, v),
        (None, Some(v)) => (true, v),
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "{name}: has both {positive} and {negative}"
            )));
        }
        (None, None) => {
            return Err(invalid(format!("{name}: needs {positive} or {negative}")));
        }
    };
    let which = if negated { negative } else { positive };
    let items = strings(v).ok_or_else(|| {
        invalid(format!(
            "{name}: {which} must be a string or a non-empty array of strings"
        ))
    })?;
    Ok(Patterns { negated, items })
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) if !a.is_empty() => {
            a.iter().map(|e| e.as_str().map(str::to_owned)).collect()
        }
        _ => None,
    }
}

fn check_action(a: &str, name: &str) -> Result<(), PolicyError> {
    if a == "*" {
        return Ok(());
    }
    let ok = a.split_once(':').is_some_and(|(service, action)| {
        !service.is_empty()
            && service
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !action.is_empty()
            && action
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?' || c == '-')
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{name}: action {a:?} is not \"*\" nor service:Action (e.g. dynamodb:GetItem, dynamodb:Get*)"
        )))
    }
}

/// `arn:partition:service:region:account:resource` with wildcards allowed in any part.
fn is_arn_pattern(r: &str) -> bool {
    r.starts_with("arn:") && r.splitn(6, ':').count() == 6
}

fn parse_principal(v: &Value, name: &str) -> Result<Principals, PolicyError> {
    let mut p = Principals::default();
    let aws = match v {
        Value::String(s) if s == "*" => {
            p.anyone = true;
            return Ok(p);
        }
        Value::Object(o) => {
            if let Some(other) = o.keys().find(|k| k.as_str() != "AWS") {
                return Err(unsupported(format!(
                    "{name}: principal type {other:?} (Shoal's principals are access keys: use {{\"AWS\": ...}})"
                )));
            }
            o.get("AWS")
                .ok_or_else(|| invalid(format!("{name}: Principal is empty")))?
        }
        _ => {
            return Err(invalid(format!(
                "{name}: Principal must be \"*\" or {{\"AWS\": ...}}"
            )));
        }
    };
    let list = strings(aws).ok_or_else(|| {
        invalid(format!(
            "{name}: Principal AWS must be a string or a non-empty array of strings"
        ))
    })?;
    for s in list {
        if s == "*" {
            p.anyone = true;
        } else if s.len() == 12 && s.chars().all(|c| c.is_ascii_digit()) {
            p.accounts.push(s);
        } else if let Some(rest) = s.strip_prefix("arn:aws:iam::") {
            match rest.split_once(':') {
                Some((account, "root")) => p.accounts.push(account.to_string()),
                Some((_, resource)) if !resource.is_empty() && !s.contains('*') => p.arns.push(s),
                _ => {
                    return Err(invalid(format!(
                        "{name}: principal {s:?} is not arn:aws:iam::<account>:root or arn:aws:iam::<account>:user/<access key id> (no wildcards)"
                    )));
                }
            }
        } else {
            return Err(invalid(format!(
                "{name}: principal {s:?} is not \"*\", an account id or an IAM ARN"
            )));
        }
    }
    Ok(p)
}
