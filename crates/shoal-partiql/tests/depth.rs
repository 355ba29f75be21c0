//! Nothing a client writes recurses without bound: nesting past `MAX_NESTING` is refused before
//! the parser recurses into it, and long `AND`/`OR`/`+` chains are flat.
//!
//! Stack budget: in a debug build the worst shape, parentheses, takes about 6 KiB of stack per
//! level (seven small frames: OR, AND, NOT, predicate, operand, primary, parenthesis), so the 64
//! levels allowed fit in about 384 KiB; an optimised build needs far less. The nesting tests run
//! on a 512 KiB thread, a quarter of a Tokio worker's 2 MiB: recursion past the limit (the
//! inputs below nest over 1,000 levels) would overflow it and abort the test binary. The flat
//! chains run on 256 KiB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use std::time::{Duration, Instant};

use common::*;
use shoal_partiql::{Expr, MAX_NESTING, MAX_STATEMENT_LEN, ParseError, Statement, parse};

/// Runs `f` on a thread with a `kib` KiB stack; an overflow aborts the test binary loudly.
fn on_stack(kib: usize, f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(kib * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

/// `prefix` + `open` × n + `middle` + `close` × n + `suffix`, with n as large as fits in the
/// statement length limit.
fn deepest(prefix: &str, open: &str, middle: &str, close: &str, suffix: &str) -> (String, usize) {
    let fixed = prefix.len() + middle.len() + suffix.len();
    let n = (MAX_STATEMENT_LEN - fixed) / (open.len() + close.len());
    (nest(prefix, open, middle, close, suffix, n), n)
}

fn nest(prefix: &str, open: &str, middle: &str, close: &str, suffix: &str, n: usize) -> String {
    format!(
        "{prefix}{}{middle}{}{suffix}",
        open.repeat(n),
        close.repeat(n)
    )
}

/// The nesting shapes a client can write (parentheses, `NOT`, function calls, lists, tuples,
/// sets in lists, `IN` lists), with the most repetitions of `open` that parse: `MAX_NESTING`
/// when each takes one level, fewer when the middle adds one (a set, `list_append`'s list),
/// more when the first is no level (the `IN` list), half when each takes two (`(NOT `).
type Shape = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    usize,
);
const SHAPES: &[Shape] = &[
    ("SELECT * FROM t WHERE ", "(", "a = 1", ")", "", MAX_NESTING),
    (
        "SELECT * FROM t WHERE ",
        "NOT ",
        "a = 1",
        "",
        "",
        MAX_NESTING,
    ),
    (
        "SELECT * FROM t WHERE ",
        "size(",
        "a",
        ")",
        " > 1",
        MAX_NESTING,
    ),
    ("SELECT * FROM t WHERE a = ", "[", "1", "]", "", MAX_NESTING),
    ("INSERT INTO t VALUE ", "{'a': ", "1", "}", "", MAX_NESTING),
    (
        "UPDATE t SET a = ",
        "[",
        "<<1>>",
        "]",
        " WHERE k = 1",
        MAX_NESTING - 1,
    ),
    (
        "SELECT * FROM t WHERE a IN ",
        "[",
        "1",
        "]",
        "",
        MAX_NESTING + 1,
    ),
    ("SELECT * FROM t WHERE a = ", "(", "1", ")", "", MAX_NESTING),
    (
        "UPDATE t SET a = ",
        "list_append(",
        "a",
        ", [1])",
        " WHERE k = 1",
        MAX_NESTING - 1,
    ),
    (
        "SELECT * FROM t WHERE ",
        "(NOT ",
        "a = 1",
        ")",
        "",
        MAX_NESTING / 2,
    ),
];

#[test]
fn the_deepest_statements_that_fit_are_refused_quickly_on_a_small_stack() {
    on_stack(512, || {
        for &(prefix, open, middle, close, suffix, _) in SHAPES {
            let (text, n) = deepest(prefix, open, middle, close, suffix);
            assert!(n > 5 * MAX_NESTING, "{prefix}{open}: only {n} levels fit");
            let start = Instant::now();
            let e = parse(&text).unwrap_err();
            assert!(
                matches!(e, ParseError::TooDeep { .. }),
                "{prefix}{open}...: {e}"
            );
            assert!(start.elapsed() < Duration::from_secs(1));
            assert!(
                e.to_string()
                    .contains("nested too deeply (more than 64 levels)")
            );
        }
    });
}

#[test]
fn a_deep_statement_past_the_length_limit_is_refused_before_lexing() {
    on_stack(256, || {
        let text = nest("SELECT * FROM t WHERE ", "(", "a = 1", ")", "", 1_000_000);
        let start = Instant::now();
        assert!(matches!(parse(&text), Err(ParseError::TooLong { .. })));
        assert!(start.elapsed() < Duration::from_secs(1));
    });
}

#[test]
fn nesting_up_to_the_limit_parses_prints_and_drops_on_a_small_stack() {
    on_stack(512, || {
        for &(prefix, open, middle, close, suffix, most) in SHAPES {
            let text = nest(prefix, open, middle, close, suffix, most);
            let stmt = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", short(&text)));
            assert_eq!(parse(&stmt.to_string()).unwrap(), stmt);
            drop(stmt);
            let text = nest(prefix, open, middle, close, suffix, most + 1);
            assert!(
                matches!(parse(&text), Err(ParseError::TooDeep { .. })),
                "{}",
                short(&text)
            );
        }
    });
}

#[test]
fn an_item_nested_32_levels_deep_inserts() {
    // DynamoDB's own limit on item nesting, inside the statement's tuple.
    let text = nest(
        "INSERT INTO t VALUE {'k': 1, 'a': ",
        "[",
        "'leaf'",
        "]",
        "}",
        32,
    );
    assert!(matches!(ok(&text), Statement::Insert(_)));
}

#[test]
fn long_chains_are_flat() {
    on_stack(256, || {
        let conjuncts = vec!["a = ?"; 600].join(" AND ");
        let stmt = parse(&format!("SELECT * FROM t WHERE {conjuncts}")).unwrap();
        assert_eq!(stmt.parameter_count(), 600);
        let w = stmt.where_clause().unwrap();
        assert_eq!(w.conjuncts().len(), 600);
        assert_eq!(w.equalities().len(), 600);
        assert_eq!(parse(&stmt.to_string()).unwrap(), stmt);

        let disjuncts = vec!["a = 1"; 800].join(" OR ");
        let stmt = parse(&format!("SELECT * FROM t WHERE {disjuncts}")).unwrap();
        assert!(matches!(stmt.where_clause(), Some(Expr::Or(ds)) if ds.len() == 800));

        let sum = vec!["1"; 1900].join("+");
        let stmt = parse(&format!("UPDATE t SET a = {sum} WHERE k = 1")).unwrap();
        let Statement::Update(u) = &stmt else {
            panic!()
        };
        assert!(matches!(
            &u.actions[0],
            shoal_partiql::UpdateAction::Set { value: Expr::Arith { rest, .. }, .. } if rest.len() == 1899
        ));
        assert_eq!(parse(&stmt.to_string()).unwrap(), stmt);
    });
}
