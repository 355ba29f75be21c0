//! Policy variables: `${aws:username}` in a `Resource` or a string condition value is replaced
//! by the caller's value when the request is evaluated (only in `"Version": "2012-10-17"`
//! policies; in older ones the text is literal, as in IAM).
//!
//! Supported: `${aws:username}` and `${aws:userid}` (the access key id), `${aws:PrincipalAccount}`,
//! `${aws:PrincipalArn}`. Any other `${...}` (other keys, defaults, the `${*}` escapes) is refused
//! when the policy is set.

use std::borrow::Cow;

use crate::error::{PolicyError, unsupported};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Username,
    UserId,
    Account,
    PrincipalArn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(Var),
}

/// A string that may hold policy variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    parts: Vec<Part>,
}

/// The values variables take for one request.
#[derive(Debug, Clone, Copy)]
pub struct Values<'a> {
    pub username: &'a str,
    pub user_id: &'a str,
    pub account: &'a str,
    pub principal_arn: &'a str,
}

/// Parses `text`; with `enabled` false (older policy versions) it is all literal.
pub(crate) fn parse(text: &str, enabled: bool) -> Result<Text, PolicyError> {
    if !enabled || !text.contains("${") {
        return Ok(Text {
            parts: vec![Part::Literal(text.to_string())],
        });
    }
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            parts.push(Part::Literal(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(unsupported(format!(
                "{text:?}: a policy variable ${{...}} is not closed"
            )));
        };
        let name = &after[..end];
        let var = match name.to_ascii_lowercase().as_str() {
            "aws:username" => Var::Username,
            "aws:userid" => Var::UserId,
            "aws:principalaccount" => Var::Account,
            "aws:principalarn" => Var::PrincipalArn,
            _ => {
                return Err(unsupported(format!(
                    "policy variable ${{{name}}} (supported: ${{aws:username}}, ${{aws:userid}}, ${{aws:PrincipalAccount}}, ${{aws:PrincipalArn}})"
                )));
            }
        };
        parts.push(Part::Var(var));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_string()));
    }
    Ok(Text { parts })
}

impl Text {
    /// Literal text, without variables.
    pub(crate) fn literal(text: &str) -> Text {
        Text {
            parts: vec![Part::Literal(text.to_string())],
        }
    }

    /// The text with the request's values in place of its variables.
    pub fn render(&self, values: &Values<'_>) -> Option<Cow<'_, str>> {
        if let [Part::Literal(s)] = self.parts.as_slice() {
            return Some(Cow::Borrowed(s));
        }
        let mut out = String::new();
        for part in &self.parts {
            out.push_str(match part {
                Part::Literal(s) => s,
                Part::Var(Var::Username) => values.username,
                Part::Var(Var::UserId) => values.user_id,
                Part::Var(Var::Account) => values.account,
                Part::Var(Var::PrincipalArn) => values.principal_arn,
            });
        }
        Some(Cow::Owned(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Values<'static> = Values {
        username: "AKIAUSER",
        user_id: "AKIAUSER",
        account: "000000000000",
        principal_arn: "arn:aws:iam::000000000000:user/AKIAUSER",
    };

    fn render(text: &str, enabled: bool) -> Result<String, PolicyError> {
        Ok(parse(text, enabled)?
            .render(&V)
            .map(|c| c.into_owned())
            .unwrap_or_default())
    }

    #[test]
    fn substitutes_known_variables() {
        assert_eq!(render("u-${aws:username}", true), Ok("u-AKIAUSER".into()));
        assert_eq!(
            render("${aws:PrincipalAccount}/${aws:userid}", true),
            Ok("000000000000/AKIAUSER".into())
        );
        assert_eq!(
            render("u-${aws:username}", false),
            Ok("u-${aws:username}".into())
        );
        assert!(render("${www.amazon.com:user_id}", true).is_err());
        assert!(render("${*}", true).is_err());
        assert!(render("${aws:username", true).is_err());
    }
}
