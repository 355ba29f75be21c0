//! The `Condition` element: operators, set qualifiers, `...IfExists`, and the condition keys
//! Shoal supplies.
//!
//! A condition block `{"ForAllValues:StringLike": {"dynamodb:Attributes": ["a*", "b"]}}` holds
//! one [`Condition`] per key; the conditions of a statement are ANDed, the values of one key are
//! ORed. Semantics follow IAM:
//!
//! - A key missing from the request: a positive operator is false, a negated one (`...Not...`,
//!   `NotIpAddress`) true; `...IfExists` makes any operator true; `ForAllValues:` is true and
//!   `ForAnyValue:` false.
//! - `ForAllValues:` — every request value matches some condition value (for a negated operator:
//!   none); `ForAnyValue:` — at least one does (for a negated operator: at least one matches
//!   none).
//! - Without a qualifier a key has one value; the multivalued keys (`dynamodb:LeadingKeys`,
//!   `dynamodb:Attributes`) must have a qualifier: a policy that omits it is refused, since
//!   `StringEquals` on several partition keys would allow a request when any one of them matched.

use std::net::IpAddr;

use serde_json::Value;

use crate::error::{PolicyError, invalid, unsupported};
use crate::ip::Cidr;
use crate::variables::{self, Text};
use crate::wildcard;

/// A condition key Shoal puts into the request context (lowercase, as IAM compares key names
/// case-insensitively). `aws:ResourceTag/<tag key>` is the other family.
pub const KNOWN_KEYS: &[&str] = &[
    "dynamodb:leadingkeys",
    "dynamodb:attributes",
    "dynamodb:select",
    "dynamodb:returnvalues",
    "dynamodb:returnconsumedcapacity",
    "dynamodb:enclosingoperation",
    "dynamodb:fulltablescan",
    "aws:sourceip",
    "aws:username",
    "aws:userid",
    "aws:principalarn",
    "aws:principalaccount",
    "aws:principaltype",
];

/// Keys with several values per request: they need `ForAllValues:` or `ForAnyValue:`.
const MULTIVALUED: &[&str] = &["dynamodb:leadingkeys", "dynamodb:attributes"];

/// The prefix of the resource-tag keys (lowercase).
pub const RESOURCE_TAG_PREFIX: &str = "aws:resourcetag/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    Single,
    ForAllValues,
    ForAnyValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    IpAddress,
    Bool,
    Null,
}

#[derive(Debug, Clone)]
enum Operand {
    Text(Text),
    Cidr(Cidr),
    Bool(bool),
}

/// One operator applied to one key.
#[derive(Debug, Clone)]
pub struct Condition {
    qualifier: Qualifier,
    op: Op,
    negated: bool,
    if_exists: bool,
    /// Lowercase.
    key: String,
    values: Vec<Operand>,
}

/// The request's condition keys: lowercase key name → its values (one for single-valued keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    values: std::collections::BTreeMap<String, Vec<String>>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Context {
        Context::default()
    }

    /// Sets a single-valued key (`key` in any case).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values
            .insert(key.to_ascii_lowercase(), vec![value.into()]);
    }

    /// Sets a multivalued key (`key` in any case). An empty list is the same as an absent key.
    pub fn set_all(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_ascii_lowercase(), values);
    }

    /// The values of `key` (lowercase); `None` when the request has none.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values
            .get(key)
            .map(Vec::as_slice)
            .filter(|v| !v.is_empty())
    }
}

/// Parses one operator's block: `{"key": value-or-values, ...}`.
pub(crate) fn parse_block(
    operator: &str,
    block: &Value,
    with_variables: bool,
) -> Result<Vec<Condition>, PolicyError> {
    let (qualifier, rest) = if let Some(r) = operator.strip_prefix("ForAllValues:") {
        (Qualifier::ForAllValues, r)
    } else if let Some(r) = operator.strip_prefix("ForAnyValue:") {
        (Qualifier::ForAnyValue, r)
    } else {
        (Qualifier::Single, operator)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (rest, false),
    };
    let (op, negated) = match base {
        "StringEquals" => (Op::StringEquals, false),
        "StringNotEquals" => (Op::StringEquals, true),
        "StringEqualsIgnoreCase" => (Op::StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Op::StringEqualsIgnoreCase, true),
        "StringLike" => (Op::StringLike, false),
        "StringNotLike" => (Op::StringLike, true),
        "IpAddress" => (Op::IpAddress, false),
        "NotIpAddress" => (Op::IpAddress, true),
        "Bool" => (Op::Bool, false),
        "Null" => (Op::Null, false),
        b if b.starts_with("Numeric")
            || b.starts_with("Date")
            || b.starts_with("Arn")
            || b == "BinaryEquals" =>
        {
            return Err(unsupported(format!(
                "condition operator {operator}: Shoal has no condition key of that type (supported: String*, IpAddress, NotIpAddress, Bool, Null, with ForAllValues:/ForAnyValue: and ...IfExists)"
            )));
        }
        _ => {
            return Err(invalid(format!("unknown condition operator {operator}")));
        }
    };
    if op == Op::Null && (if_exists || qualifier != Qualifier::Single) {
        return Err(invalid(format!(
            "condition operator {operator}: Null takes neither a set qualifier nor IfExists"
        )));
    }
    let Some(keys) = block.as_object() else {
        return Err(invalid(format!(
            "the condition block of {operator} must be an object of condition keys"
        )));
    };
    if keys.is_empty() {
        return Err(invalid(format!(
            "the condition block of {operator} names no condition key"
        )));
    }
    let mut out = Vec::with_capacity(keys.len());
    for (key, values) in keys {
        let lower = key.to_ascii_lowercase();
        check_key(key, &lower)?;
        if MULTIVALUED.contains(&lower.as_str()) && qualifier == Qualifier::Single && op != Op::Null
        {
            return Err(invalid(format!(
                "{key} has several values per request: use ForAllValues:{operator} (every value must match) or ForAnyValue:{operator}"
            )));
        }
        let texts = scalar_list(values).ok_or_else(|| {
            invalid(format!(
                "the value of {key} under {operator} must be a string, a boolean, a number or a non-empty list of them"
            ))
        })?;
        let mut operands = Vec::with_capacity(texts.len());
        for text in texts {
            operands.push(match op {
                Op::IpAddress => Operand::Cidr(Cidr::parse(&text).ok_or_else(|| {
                    invalid(format!(
                        "{operator}: {text:?} is not an IP address or CIDR block"
                    ))
                })?),
                Op::Bool | Op::Null => match text.to_ascii_lowercase().as_str() {
                    "true" => Operand::Bool(true),
                    "false" => Operand::Bool(false),
                    _ => {
                        return Err(invalid(format!(
                            "{operator}: {text:?} is not true or false"
                        )));
                    }
                },
                _ => Operand::Text(variables::parse(&text, with_variables)?),
            });
        }
        out.push(Condition {
            qualifier,
            op,
            negated,
            if_exists,
            key: lower,
            values: operands,
        });
    }
    Ok(out)
}

fn check_key(key: &str, lower: &str) -> Result<(), PolicyError> {
    if KNOWN_KEYS.contains(&lower) {
        return Ok(());
    }
    if let Some(tag) = lower.strip_prefix(RESOURCE_TAG_PREFIX) {
        if tag.is_empty() || tag.len() > 128 {
            return Err(invalid(format!("{key}: a tag key is 1 to 128 characters")));
        }
        return Ok(());
    }
    Err(unsupported(format!(
        "condition key {key} (Shoal supplies dynamodb:LeadingKeys, dynamodb:Attributes, dynamodb:Select, dynamodb:ReturnValues, dynamodb:ReturnConsumedCapacity, dynamodb:EnclosingOperation, dynamodb:FullTableScan, aws:SourceIp, aws:ResourceTag/<key>, aws:username, aws:userid, aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType)"
    )))
}

/// A JSON scalar or a non-empty array of scalars, as strings (IAM accepts `true` and `5`).
fn scalar_list(v: &Value) -> Option<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match v {
        Value::Array(a) if !a.is_empty() => a.iter().map(one).collect(),
        Value::Array(_) => None,
        other => one(other).map(|s| vec![s]),
    }
}

impl Condition {
    /// The condition key (lowercase).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether the request satisfies the condition.
    pub(crate) fn holds(&self, context: &Context, vars: &variables::Values<'_>) -> bool {
        let present = context.get(&self.key);
        if self.op == Op::Null {
            // `"Null": {"k": "true"}` holds when the key is absent, `"false"` when present.
            return self
                .values
                .iter()
                .any(|v| matches!(v, Operand::Bool(b) if *b == present.is_none()));
        }
        let Some(values) = present else {
            if self.if_exists {
                return true;
            }
            return match self.qualifier {
                Qualifier::ForAllValues => true,
                Qualifier::ForAnyValue => false,
                Qualifier::Single => self.negated,
            };
        };
        let matches_some =
            |v: &String| self.values.iter().any(|o| self.operand_matches(o, v, vars));
        match (self.qualifier, self.negated) {
            (Qualifier::Single, false) | (Qualifier::ForAnyValue, false) => {
                values.iter().any(matches_some)
            }
            (Qualifier::Single, true) => !values.iter().any(matches_some),
            (Qualifier::ForAllValues, false) => values.iter().all(matches_some),
            (Qualifier::ForAllValues, true) => !values.iter().any(matches_some),
            (Qualifier::ForAnyValue, true) => values.iter().any(|v| !matches_some(v)),
        }
    }

    /// Whether `value` (from the request) matches `operand` under the positive form of the
    /// operator.
    fn operand_matches(
        &self,
        operand: &Operand,
        value: &str,
        vars: &variables::Values<'_>,
    ) -> bool {
        match (self.op, operand) {
            (Op::StringEquals, Operand::Text(t)) => t.render(vars).is_some_and(|t| t == value),
            (Op::StringEqualsIgnoreCase, Operand::Text(t)) => t
                .render(vars)
                .is_some_and(|t| t.to_lowercase() == value.to_lowercase()),
            (Op::StringLike, Operand::Text(t)) => {
                t.render(vars).is_some_and(|t| wildcard::matches(&t, value))
            }
            (Op::IpAddress, Operand::Cidr(c)) => {
                value.parse::<IpAddr>().is_ok_and(|ip| c.contains(ip))
            }
            (Op::Bool, Operand::Bool(b)) => {
                value.eq_ignore_ascii_case(if *b { "true" } else { "false" })
            }
            _ => false,
        }
    }
}
