//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use shoal_partiql::{DocPath, Expr, PathElem, Statement, Value, parse};
use shoal_types::Number;

/// Parses `s`, which must parse, and checks that its canonical text parses back to it.
pub fn ok(s: &str) -> Statement {
    let stmt = parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"));
    let text = stmt.to_string();
    let again = parse(&text).unwrap_or_else(|e| panic!("canonical {text:?} should parse: {e}"));
    assert_eq!(again, stmt, "canonical text {text:?} of {s:?}");
    stmt
}

/// The error message for `s`, which must not parse.
pub fn err(s: &str) -> String {
    match parse(s) {
        Ok(stmt) => panic!("{s:?} should not parse, got {stmt:?}"),
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
