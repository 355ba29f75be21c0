//! CI smoke for the fuzz targets: thousands of random and mutated strings through every parser
//! (and, when they parse, through the evaluators). Nothing may panic.

mod common;
use std::collections::HashMap;

use common::*;
use proptest::prelude::*;
use shoal_expr::{
    ConditionKind, ExprContext, parse_condition, parse_key_condition, parse_projection,
    parse_update,
};
use shoal_types::key::{KeyAttr, KeySchema};
use shoal_types::{AttributeValue, ScalarType};

const SEEDS: &[&str] = &[
    "a = :v AND (b < :w OR NOT attribute_exists(#a.b[1]))",
    "begins_with(#a, :s) and contains(c, :v) or size(l) BETWEEN :v AND :w",
    "a IN (:v, :w, :s) AND attribute_type(m.x, :t)",
    "SET a = list_append(if_not_exists(l, :l), :l), b = b + :v REMOVE c[2], m.x ADD n :v DELETE ss :ss",
    "SET l[5] = :v, #a = :w - a",
    "a, b.c, l[0][1], #b.x",
    "pk = :s AND sk BETWEEN :v AND :w",
];

fn fixtures() -> (HashMap<String, String>, HashMap<String, AttributeValue>) {
    let names = names(&[("#a", "a"), ("#b", "b.c")]);
    let vals = values(&[
        (":v", n("1")),
        (":w", n("99999999999999999999999999999999999999")),
        (":s", s("a")),
        (":t", s("N")),
        (":l", l(vec![n("1")])),
        (":ss", ss(&["x"])),
    ]);
    (names, vals)
}

fn sample_item() -> shoal_types::Item {
    item(&[
        ("a", n("99999999999999999999999999999999999999")),
        ("b", s("abc")),
        ("l", l(vec![l(vec![n("1"), n("2")]), s("x")])),
        ("m", m(&[("x", ss(&["x", "y"]))])),
        ("ss", ss(&["x"])),
        ("n", n("-1E-130")),
    ])
}

fn run_all(text: &str) {
    let (names, vals) = fixtures();
    let it = sample_item();
    let mut ctx = ExprContext::new(Some(&names), Some(&vals));
    if let Ok(c) = parse_condition(text, &mut ctx, ConditionKind::Condition) {
        let _ = c.evaluate(&it);
        let _ = c.evaluate(&shoal_types::Item::new());
    }
    if let Ok(u) = parse_update(text, &mut ctx) {
        let mut copy = it.clone();
        let _ = u.apply(&mut copy);
        let _ = u.updated_paths().apply(&copy);
        let _ = u.top_level_names();
    }
    if let Ok(p) = parse_projection(text, &mut ctx) {
        let _ = p.apply(&it);
        let _ = p.top_level_names().count();
    }
    if let Ok(k) = parse_key_condition(text, &mut ctx) {
        let schema = KeySchema {
            hash: KeyAttr {
                name: "pk".into(),
                ty: ScalarType::S,
            },
            range: Some(KeyAttr {
                name: "sk".into(),
                ty: ScalarType::N,
            }),
        };
        if let Ok(r) = k.resolve(&schema)
            && let Some(sort) = r.sort
        {
            let _ = sort.matches(&n("1"));
        }
    }
    let _ = ctx.check_all_used();
}

/// A seed expression with random byte-level edits (insert, delete, replace).
fn mutated() -> impl Strategy<Value = String> {
    let alphabet: Vec<char> = "aAzZ09_#:.,[]()=<>+- \t\u{e9}$\"'".chars().collect();
    (
        prop::sample::select(SEEDS.to_vec()),
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                0u8..3,
                prop::sample::select(alphabet),
            ),
            1..6,
        ),
    )
        .prop_map(|(seed, edits)| {
            let mut chars: Vec<char> = seed.chars().collect();
            for (idx, op, c) in edits {
                let at = idx.index(chars.len() + 1);
                match op {
                    0 => chars.insert(at, c),
                    1 if at < chars.len() => {
                        chars.remove(at);
                    }
                    _ if at < chars.len() => chars[at] = c,
                    _ => chars.push(c),
                }
            }
            chars.into_iter().collect()
        })
}

fn tokens_soup() -> impl Strategy<Value = String> {
    let words = vec![
        "a",
        "b",
        "#a",
        "#b",
        "#zz",
        ":v",
        ":w",
        ":s",
        ":l",
        ":ss",
        ":nope",
        "(",
        ")",
        "[",
        "]",
        "[0]",
        "[99999999999999999999999]",
        ",",
        ".",
        "=",
        "<>",
        "<",
        "<=",
        ">",
        ">=",
        "+",
        "-",
        "AND",
        "OR",
        "NOT",
        "BETWEEN",
        "IN",
        "SET",
        "REMOVE",
        "ADD",
        "DELETE",
        "size(",
        "contains(",
        "begins_with(",
        "attribute_exists(",
        "attribute_type(",
        "list_append(",
        "if_not_exists(",
        "status",
        "l",
        "m",
        "x",
    ];
    prop::collection::vec(prop::sample::select(words), 0..25).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_strings_never_panic(text in "\\PC{0,80}") {
        run_all(&text);
    }

    #[test]
    fn mutated_expressions_never_panic(text in mutated()) {
        run_all(&text);
    }

    #[test]
    fn token_soup_never_panics(text in tokens_soup()) {
        run_all(&text);
    }
}

#[test]
fn seeds_parse_where_expected() {
    let (names, vals) = fixtures();
    let mut ctx = ExprContext::new(Some(&names), Some(&vals));
    parse_condition(SEEDS[0], &mut ctx, ConditionKind::Condition).unwrap();
    parse_update(SEEDS[3], &mut ctx).unwrap();
    parse_projection(SEEDS[5], &mut ctx).unwrap();
    parse_key_condition(SEEDS[6], &mut ctx).unwrap();
}
