//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use shoal_partiql::{DocPath, Expr, PathElem, Statement, Value, parse};
use shoal_types::Number;

/// At most 300 characters of `s`, for failure messages about long statements.
pub fn short(s: &str) -> String {
    let mut out: String = s.chars().take(300).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

/// Parses `s`, which must parse, and checks that its canonical text parses back to it.
pub fn ok(s: &str) -> Statement {
    let stmt = parse(s).unwrap_or_else(|e| panic!("{:?} should parse: {e}", short(s)));
    let text = stmt.to_string();
    let again =
        parse(&text).unwrap_or_else(|e| panic!("canonical {:?} should parse: {e}", short(&text)));
    assert!(
        again == stmt,
        "canonical text {:?} of {:?}",
        short(&text),
        short(s)
    );
    stmt
}

/// The error message for `s`, which must not parse.
pub fn err(s: &str) -> String {
    match parse(s) {
        Ok(_) => panic!("{:?} should parse", short(s)),
        Err(e) => e.to_string(),
    }
}

/// A path from dotted names and `[n]` indexes: `path(&["a", "[1]", "b"])`.
pub fn path(parts: &[&str]) -> DocPath {
    DocPath {
        elems: parts
            .iter()
            .map(
                |p| match p.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
                    Some(i) => PathElem::Index(i.parse().unwrap()),
                    None => PathElem::Name(p.to_string()),
                },
            )
            .collect(),
    }
}

pub fn p(name: &str) -> Expr {
    Expr::Path(path(&[name]))
}

pub fn num(n: &str) -> Value {
    Value::Num(n.parse::<Number>().unwrap())
}

pub fn str_(s: &str) -> Value {
    Value::Str(s.to_string())
}

pub fn v(value: Value) -> Expr {
    Expr::Value(value)
}
