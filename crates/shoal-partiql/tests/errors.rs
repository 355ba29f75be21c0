//! What does not parse, and the messages: every syntax error is DynamoDB's `ValidationException`
//! prefix with a detail and a position.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use shoal_partiql::{
    MAX_IN_OPERANDS, MAX_PATH_DEPTH, MAX_STATEMENT_LEN, NOT_WELL_FORMED, ParseError, parse,
};

/// `s` must fail with a message that starts with the prefix and contains `detail`.
fn syntax(s: &str, detail: &str) {
    let msg = err(s);
    assert!(
        msg.starts_with(&format!("{NOT_WELL_FORMED}: ")),
        "{:?}: {msg}",
        short(s)
    );
    assert!(
        msg.contains(detail),
        "{:?}: {msg:?} lacks {detail:?}",
        short(s)
    );
}

#[test]
fn empty_and_whitespace_statements() {
    assert_eq!(parse(""), Err(ParseError::Empty));
    assert_eq!(parse(" \n\t "), Err(ParseError::Empty));
    assert_eq!(
        err(""),
        "Statement wasn't well formed, can't be processed: the statement is empty"
    );
}

#[test]
fn statement_length_is_counted_in_characters() {
    let head = "SELECT * FROM t WHERE a = '";
    let fill = |n: usize, c: char| {
        let mut s = head.to_string();
        s.extend(std::iter::repeat_n(c, n - head.len() - 1));
        s.push('\'');
        s
    };
    // (Not `ok`: the canonical text, with quoted identifiers, would be over the limit.)
    parse(&fill(MAX_STATEMENT_LEN, 'x')).unwrap();
    // Two bytes each: 8192 characters are 16 KB, still within the limit.
    parse(&fill(MAX_STATEMENT_LEN, 'é')).unwrap();
    assert_eq!(
        parse(&fill(MAX_STATEMENT_LEN + 1, 'x')),
        Err(ParseError::TooLong { len: 8193 })
    );
    let msg = parse(&fill(MAX_STATEMENT_LEN + 1, 'é'))
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "Statement wasn't well formed, can't be processed: the statement is 8193 characters long; the maximum is 8192"
    );
}

#[test]
fn positions_are_line_and_column() {
    assert_eq!(
        parse("SELECT *\nFROM t\nWHERE a = = 1"),
        Err(ParseError::Syntax {
            detail: "unexpected '='; expected an expression".into(),
            line: 3,
            column: 11,
        })
    );
    assert_eq!(
        err("SELECT * FROM"),
        "Statement wasn't well formed, can't be processed: unexpected end of statement; expected a table name at line 1, column 14"
    );
}

#[test]
fn a_long_unexpected_token_is_shortened_in_the_message() {
    let long = "x".repeat(1000);
    assert_eq!(
        err(&format!("SELECT * FROM t WHERE a = 1 '{long}'")),
        format!(
            "{NOT_WELL_FORMED}: unexpected ''{}...'; expected end of statement at line 1, column 29",
            "x".repeat(39)
        )
    );
}

#[test]
fn statement_forms_refused() {
    syntax(
        "SELEC * FROM t",
        "expected SELECT, INSERT, UPDATE, DELETE or EXISTS",
    );
    syntax(
        "CREATE TABLE t",
        "expected SELECT, INSERT, UPDATE, DELETE or EXISTS",
    );
    syntax("SELECT * t", "expected FROM");
    syntax(
        "SELECT FROM t",
        "unexpected 'FROM'; expected '*' or attribute names",
    );
    syntax("SELECT *, a FROM t", "expected FROM");
    syntax("SELECT * FROM t;", "unexpected character ';'");
    syntax(
        "SELECT * FROM t WHERE a = 1 garbage",
        "expected end of statement",
    );
    syntax("SELECT * FROM t ORDER a", "expected BY");
    syntax("SELECT * FROM t.i", "both double-quoted");
    syntax("SELECT * FROM \"t\".i", "both double-quoted");
    syntax("SELECT * FROM t.\"i\"", "both double-quoted");
    syntax("SELECT * FROM \"\"", "expected a table name");
    syntax("EXISTS SELECT * FROM t", "expected '('");
    syntax("EXISTS(SELECT * FROM t", "expected ')'");
    syntax("EXISTS(INSERT INTO t VALUE {})", "expected SELECT");
    syntax("NOT SELECT * FROM t", "expected EXISTS");
    syntax("NOT EXISTS SELECT * FROM t", "expected '('");
    syntax("NOT EXISTS(DELETE FROM t WHERE a = 1)", "expected SELECT");
    syntax("NOT EXISTS(SELECT * FROM t", "expected ')'");
    syntax("INSERT t VALUE {'a': 1}", "expected INTO");
    syntax("INSERT INTO t VALUES {'a': 1}", "expected VALUE");
    syntax(
        "INSERT INTO t VALUE ?",
        "expected an item written as a tuple",
    );
    syntax(
        "INSERT INTO t VALUE {'a': 1}, {'a': 2}",
        "expected end of statement",
    );
    syntax(
        "INSERT INTO t VALUE {a: 1}",
        "expected an attribute name in single quotes",
    );
    syntax(
        "INSERT INTO t VALUE {'a': 1, 'a': 2}",
        "attribute name 'a' appears twice",
    );
    syntax("INSERT INTO t VALUE {'a' 1}", "expected ':'");
    syntax("INSERT INTO t VALUE {'a': 1 'b': 2}", "expected ',' or '}'");
}

#[test]
fn update_and_delete_forms_refused() {
    syntax("UPDATE t WHERE k = 1", "expected SET or REMOVE");
    syntax("UPDATE t SET a = 1", "expected WHERE");
    syntax("UPDATE t SET a 1 WHERE k = 1", "expected '='");
    syntax("UPDATE t SET a = 1 = 2 WHERE k = 1", "expected WHERE");
    syntax(
        "UPDATE t SET a = 1 WHERE k = 1 RETURNING ALL *",
        "expected OLD or NEW",
    );
    syntax(
        "UPDATE t SET a = 1 WHERE k = 1 RETURNING NEW *",
        "expected ALL or MODIFIED",
    );
    syntax(
        "UPDATE t SET a = 1 WHERE k = 1 RETURNING ALL NEW",
        "expected '*'",
    );
    syntax("UPDATE t REMOVE a = 1 WHERE k = 1", "expected WHERE");
    syntax("DELETE t WHERE k = 1", "expected FROM");
    syntax("DELETE FROM t", "expected WHERE");
    syntax(
        "DELETE FROM t WHERE k = 1 RETURNING ALL NEW *",
        "DELETE supports only RETURNING ALL OLD *",
    );
    syntax(
        "DELETE FROM t WHERE k = 1 RETURNING MODIFIED OLD *",
        "DELETE supports only RETURNING ALL OLD *",
    );
}

#[test]
fn conditions_refused() {
    syntax("SELECT * FROM t WHERE a", "expected a condition");
    syntax("SELECT * FROM t WHERE a + 1", "expected a condition");
    syntax("SELECT * FROM t WHERE a = 1 AND b", "expected a condition");
    syntax("SELECT * FROM t WHERE 'x' OR a = 1", "expected a condition");
    syntax("SELECT * FROM t WHERE NOT size(a)", "expected a condition");
    syntax(
        "SELECT * FROM t WHERE a = b = c",
        "expected end of statement",
    );
    syntax("SELECT * FROM t WHERE a IS b", "expected MISSING or NULL");
    syntax("SELECT * FROM t WHERE a IN 1", "expected a list of values");
    syntax("SELECT * FROM t WHERE a IN []", "expected a value");
    syntax("SELECT * FROM t WHERE a IN [b]", "expected a value");
    syntax("SELECT * FROM t WHERE a IN [1, 2)", "expected ',' or ']'");
    syntax("SELECT * FROM t WHERE a BETWEEN 1 OR 2", "expected AND");
    syntax("SELECT * FROM t WHERE a != 1", "unexpected character '!'");
    syntax(
        "SELECT * FROM t WHERE a = 1 -- comment",
        "expected a number after '-'",
    );
    syntax(
        "SELECT * FROM t WHERE a = 1 # x",
        "unexpected character '#'",
    );
    syntax("SELECT * FROM t WHERE (a = 1", "expected ')'");
    syntax(
        "SELECT * FROM t WHERE a = - b",
        "expected a number after '-'",
    );
    syntax(
        "SELECT * FROM t WHERE a = 1 AND",
        "unexpected end of statement",
    );
    syntax(
        "SELECT * FROM t WHERE a = 'abc",
        "unterminated string literal",
    );
    syntax(
        "SELECT * FROM \"t WHERE a = 1",
        "unterminated quoted identifier",
    );
    let list = vec!["1"; MAX_IN_OPERANDS].join(", ");
    ok(&format!("SELECT * FROM t WHERE a IN [{list}]"));
    syntax(
        &format!("SELECT * FROM t WHERE a IN [{list}, 1]"),
        "IN takes at most 100 values",
    );
}

#[test]
fn keywords_must_be_quoted_to_be_names() {
    syntax(
        "SELECT * FROM t WHERE value = 1",
        "unexpected keyword 'value'; expected an expression (an attribute named value must be double-quoted: \"value\")",
    );
    syntax("SELECT select FROM t", "'select' is a keyword");
    syntax(
        "UPDATE t SET a.order = 1 WHERE k = 1",
        "'order' is a keyword",
    );
    syntax("SELECT * FROM from", "expected a table name");
    ok("SELECT \"select\" FROM \"from\" WHERE \"value\" = 1 AND a.\"order\" = 2");
    // Words of the grammar that are not keywords stay usable as names.
    ok("SELECT size, old, new, modified, contains FROM t WHERE size = 1");
}

#[test]
fn functions_refused() {
    syntax(
        "SELECT * FROM t WHERE attribute_exists(a)",
        "unsupported function 'attribute_exists'",
    );
    syntax(
        "SELECT * FROM t WHERE upper(a) = 'A'",
        "unsupported function 'upper'",
    );
    syntax(
        "SELECT * FROM t WHERE size(a, b) > 1",
        "function size takes 1 argument(s), not 2",
    );
    syntax(
        "SELECT * FROM t WHERE begins_with(a) ",
        "function begins_with takes 2 argument(s), not 1",
    );
    syntax(
        "SELECT * FROM t WHERE contains() ",
        "function contains takes 2 argument(s), not 0",
    );
    syntax(
        "UPDATE t SET a = list_append(a) WHERE k = 1",
        "function list_append takes 2",
    );
    syntax("SELECT * FROM t WHERE exists(a)", "expected an expression");
}

#[test]
fn paths_refused() {
    syntax("SELECT a. FROM t", "'FROM' is a keyword");
    syntax("SELECT a.1 FROM t", "expected an attribute name");
    syntax("SELECT a[ FROM t", "expected a list index");
    syntax("SELECT a[-1] FROM t", "expected a list index");
    syntax("SELECT a[1.5] FROM t", "expected a list index");
    syntax("SELECT a['k'] FROM t", "expected a list index");
    syntax(
        "SELECT a[2147483648] FROM t",
        "expected a list index from 0 to 2147483647",
    );
    ok("SELECT a[2147483647] FROM t");
    syntax("SELECT \"\" FROM t", "expected an attribute name");
    let deep = format!("a{}", ".b".repeat(MAX_PATH_DEPTH));
    ok(&format!("SELECT {deep} FROM t"));
    syntax(
        &format!("SELECT {deep}[0] FROM t"),
        "a document path may have at most 32 dereferences",
    );
}

#[test]
fn literals_refused() {
    syntax("UPDATE t SET a = <<>> WHERE k = 1", "a set cannot be empty");
    syntax(
        "UPDATE t SET a = <<1, 'x'>> WHERE k = 1",
        "must all be strings or all numbers",
    );
    syntax(
        "UPDATE t SET a = <<'x', 'x'>> WHERE k = 1",
        "a set holds each element once",
    );
    syntax(
        "UPDATE t SET a = <<1, 1.0>> WHERE k = 1",
        "a set holds each element once",
    );
    syntax(
        "UPDATE t SET a = <<[1]>> WHERE k = 1",
        "a set holds only strings, numbers or parameters",
    );
    syntax(
        "UPDATE t SET a = <<TRUE>> WHERE k = 1",
        "a set holds only strings",
    );
    syntax(
        "UPDATE t SET a = <<1 2>> WHERE k = 1",
        "expected ',' or '>>'",
    );
    syntax("UPDATE t SET a = [1 2] WHERE k = 1", "expected ',' or ']'");
    syntax("UPDATE t SET a = [1,] WHERE k = 1", "expected a value");
    syntax(
        "UPDATE t SET a = MISSING WHERE k = 1",
        "expected an expression",
    );
    syntax("UPDATE t SET a = 1e WHERE k = 1", "expected WHERE");
}

#[test]
fn numbers_dynamodb_cannot_store_get_its_messages() {
    assert_eq!(
        err("UPDATE t SET a = 1E126 WHERE k = 1"),
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    );
    assert_eq!(
        err("UPDATE t SET a = 1E-131 WHERE k = 1"),
        "Number underflow. Attempting to store a number with magnitude smaller than supported range"
    );
    assert_eq!(
        err(&format!("SELECT * FROM t WHERE a = {}", "1".repeat(39))),
        "Attempting to store more than 38 significant digits in a Number"
    );
    ok(&format!("SELECT * FROM t WHERE a = -{}", "9".repeat(38)));
    ok("SELECT * FROM t WHERE a = 9.9999999999999999999999999999999999999E+125");
}
