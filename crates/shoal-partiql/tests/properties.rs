//! Properties: generated statements print to text that parses back to the same tree (parameters
//! numbered in order of appearance), and no input makes the parser panic; whatever parses
//! round-trips through its canonical text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use proptest::prelude::*;
use shoal_partiql::{
    ArithOp, CompareOp, Delete, DocPath, Expr, Function, Insert, IsTest, MAX_STATEMENT_LEN,
    OrderBy, PathElem, Projection, Returning, Select, Statement, Update, UpdateAction, Value,
    parse,
};
use shoal_types::Number;

// ---- generators ----------------------------------------------------------------------------

/// Names with the characters that need quoting: spaces, dots, both quotes, non-ASCII.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
        1 => "[a-z .\"'é?-]{1,6}",
        1 => prop::sample::select(vec!["value", "select", "SET", "size", "and"]).prop_map(String::from),
    ]
}

fn path() -> impl Strategy<Value = DocPath> {
    (
        name(),
        prop::collection::vec(
            prop_oneof![
                name().prop_map(PathElem::Name),
                prop_oneof![0..20usize, Just(shoal_partiql::MAX_LIST_INDEX)]
                    .prop_map(PathElem::Index),
            ],
            0..3,
        ),
    )
        .prop_map(|(first, rest)| {
            let mut elems = vec![PathElem::Name(first)];
            elems.extend(rest);
            DocPath { elems }
        })
}

fn number() -> impl Strategy<Value = Number> {
    (any::<i64>(), -20i32..20).prop_map(|(m, e)| format!("{m}E{e}").parse().unwrap())
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z '\"?é<>]{0,6}".prop_map(Value::Str),
        number().prop_map(Value::Num),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(Value::Param(0)),
    ]
}

/// A non-empty set literal the parser accepts: distinct strings, distinct numbers, parameters.
fn set() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::collection::btree_set("[a-z']{0,4}", 1..4)
            .prop_map(|ss| Value::Set(ss.into_iter().map(Value::Str).collect())),
        prop::collection::btree_set(any::<i32>(), 1..4).prop_map(|ns| {
            Value::Set(
                ns.into_iter()
                    .map(|n| Value::Num(Number::from_i64(n.into())))
                    .collect(),
            )
        }),
        (1..3usize).prop_map(|n| Value::Set(vec![Value::Param(0); n])),
    ]
}

fn tuple_of(v: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::vec(("[a-z' ]{0,4}", v), 0..4).prop_map(|entries| {
        let mut seen = std::collections::HashSet::new();
        entries
            .into_iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .collect()
    })
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![scalar(), set()].prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            tuple_of(inner).prop_map(Value::Tuple),
        ]
    })
}

fn compare_op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ])
}

/// A value expression: a path, a literal, arithmetic, a function call (or, rarely, a
/// parenthesised comparison).
fn operand() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        3 => path().prop_map(Expr::Path),
        2 => value().prop_map(Expr::Value),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::collection::vec(
                    (
                        prop::sample::select(vec![ArithOp::Add, ArithOp::Sub]),
                        inner.clone()
                    ),
                    1..3
                )
            )
                .prop_map(|(first, rest)| Expr::Arith {
                    first: Box::new(first),
                    rest
                }),
            inner.clone().prop_map(|a| Expr::Call {
                func: Function::Size,
                args: vec![a]
            }),
            (
                prop::sample::select(vec![
                    Function::ListAppend,
                    Function::SetAdd,
                    Function::SetDelete,
                    Function::BeginsWith,
                ]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(func, a, b)| Expr::Call {
                    func,
                    args: vec![a, b]
                }),
            (compare_op(), inner.clone(), inner).prop_map(|(op, l, r)| Expr::Compare {
                op,
                left: Box::new(l),
                right: Box::new(r)
            }),
        ]
    })
}

fn condition() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        4 => (compare_op(), operand(), operand()).prop_map(|(op, l, r)| Expr::Compare {
            op,
            left: Box::new(l),
            right: Box::new(r)
        }),
        1 => (operand(), operand(), operand()).prop_map(|(v, l, h)| Expr::Between {
            value: Box::new(v),
            low: Box::new(l),
            high: Box::new(h)
        }),
        1 => (operand(), prop::collection::vec(value(), 1..4)).prop_map(|(v, list)| Expr::In {
            value: Box::new(v),
            list
        }),
        1 => (
            operand(),
            prop::sample::select(vec![IsTest::Missing, IsTest::Null]),
            any::<bool>()
        )
            .prop_map(|(v, test, negated)| Expr::Is {
                value: Box::new(v),
                test,
                negated
            }),
        1 => (
            prop::sample::select(vec![
                Function::BeginsWith,
                Function::Contains,
                Function::AttributeType
            ]),
            operand(),
            operand()
        )
            .prop_map(|(func, a, b)| Expr::Call {
                func,
                args: vec![a, b]
            }),
        1 => any::<bool>().prop_map(|b| Expr::Value(Value::Bool(b))),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|c| Expr::Not(Box::new(c))),
        ]
    })
}

fn returning() -> impl Strategy<Value = Returning> {
    prop::sample::select(vec![
        Returning::AllOld,
        Returning::ModifiedOld,
        Returning::AllNew,
        Returning::ModifiedNew,
    ])
}

fn select() -> impl Strategy<Value = Select> {
    (
        prop_oneof![
            Just(Projection::All),
            prop::collection::vec(path(), 1..3).prop_map(Projection::Paths),
        ],
        name(),
        prop::option::of(name()),
        prop::option::of(condition()),
        prop::collection::vec(
            (path(), any::<bool>()).prop_map(|(path, descending)| OrderBy { path, descending }),
            0..3,
        ),
    )
        .prop_map(
            |(projection, table, index, where_clause, order_by)| Select {
                projection,
                table,
                index,
                where_clause,
                order_by,
            },
        )
}

fn statement() -> impl Strategy<Value = Statement> {
    prop_oneof![
        select().prop_map(Statement::Select),
        select().prop_map(Statement::Exists),
        select().prop_map(Statement::NotExists),
        (name(), tuple_of(value()))
            .prop_map(|(table, item)| Statement::Insert(Insert { table, item })),
        (
            name(),
            prop::collection::vec(
                prop_oneof![
                    (path(), operand()).prop_map(|(path, value)| UpdateAction::Set { path, value }),
                    path().prop_map(UpdateAction::Remove),
                ],
                1..4
            ),
            condition(),
            prop::option::of(returning()),
        )
            .prop_map(|(table, actions, where_clause, returning)| {
                Statement::Update(Update {
                    table,
                    actions,
                    where_clause,
                    returning,
                })
            }),
        (name(), condition(), any::<bool>()).prop_map(|(table, where_clause, ret)| {
            Statement::Delete(Delete {
                table,
                where_clause,
                returning: ret.then_some(Returning::AllOld),
            })
        }),
    ]
}

// ---- renumbering parameters in order of appearance (a model of the parser's numbering) -------

fn number_value(v: &mut Value, next: &mut usize) {
    match v {
        Value::Param(n) => {
            *n = *next;
            *next += 1;
        }
        Value::List(vs) | Value::Set(vs) => vs.iter_mut().for_each(|v| number_value(v, next)),
        Value::Tuple(kvs) => kvs.iter_mut().for_each(|(_, v)| number_value(v, next)),
        _ => {}
    }
}

fn number_expr(e: &mut Expr, next: &mut usize) {
    match e {
        Expr::Path(_) => {}
        Expr::Value(v) => number_value(v, next),
        Expr::Call { args, .. } => args.iter_mut().for_each(|a| number_expr(a, next)),
        Expr::Arith { first, rest } => {
            number_expr(first, next);
            rest.iter_mut().for_each(|(_, e)| number_expr(e, next));
        }
        Expr::Compare { left, right, .. } => {
            number_expr(left, next);
            number_expr(right, next);
        }
        Expr::Between { value, low, high } => {
            number_expr(value, next);
            number_expr(low, next);
            number_expr(high, next);
        }
        Expr::In { value, list } => {
            number_expr(value, next);
            list.iter_mut().for_each(|v| number_value(v, next));
        }
        Expr::Is { value, .. } => number_expr(value, next),
        Expr::And(cs) | Expr::Or(cs) => cs.iter_mut().for_each(|c| number_expr(c, next)),
        Expr::Not(c) => number_expr(c, next),
    }
}

/// Numbers the parameters of `stmt` 0, 1, ... in order of appearance; returns how many.
fn number_params(stmt: &mut Statement) -> usize {
    let mut next = 0;
    match stmt {
        Statement::Select(s) | Statement::Exists(s) | Statement::NotExists(s) => {
            if let Some(w) = &mut s.where_clause {
                number_expr(w, &mut next);
            }
        }
        Statement::Insert(i) => i
            .item
            .iter_mut()
            .for_each(|(_, v)| number_value(v, &mut next)),
        Statement::Update(u) => {
            for a in &mut u.actions {
                if let UpdateAction::Set { value, .. } = a {
                    number_expr(value, &mut next);
                }
            }
            number_expr(&mut u.where_clause, &mut next);
        }
        Statement::Delete(d) => number_expr(&mut d.where_clause, &mut next),
    }
    next
}

// ---- properties ----------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_statements_round_trip_through_their_text(mut stmt in statement()) {
        let count = number_params(&mut stmt);
        let text = stmt.to_string();
        prop_assume!(text.chars().count() <= MAX_STATEMENT_LEN);
        let parsed = parse(&text);
        prop_assert!(parsed.is_ok(), "{text}: {:?}", parsed);
        let parsed = parsed.unwrap();
        prop_assert_eq!(&parsed, &stmt, "{}", text);
        prop_assert_eq!(parsed.parameter_count(), count);
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        if let Ok(stmt) = parse(&s) {
            let _ = stmt.to_string();
        }
    }

    #[test]
    fn token_soup_never_panics_and_whatever_parses_round_trips(
        words in prop::collection::vec(prop::sample::select(SOUP.to_vec()), 0..40)
    ) {
        check_no_panic(&words.join(" "))?;
        check_no_panic(&words.concat())?;
    }

    #[test]
    fn mutated_documented_statements_never_panic(
        seed in prop::sample::select(SEEDS.to_vec()),
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(SOUP.to_vec()), any::<bool>()), 1..6),
    ) {
        let mut text = seed.to_string();
        for (at, word, delete) in edits {
            let cut = (0..=text.len()).filter(|i| text.is_char_boundary(*i)).collect::<Vec<_>>();
            let i = cut[at.index(cut.len())];
            if delete {
                let j = cut.iter().copied().find(|j| *j > i).unwrap_or(i);
                text.replace_range(i..j, "");
            } else {
                text.insert_str(i, word);
            }
        }
        check_no_panic(&text)?;
    }
}

/// Parses `text`; if it parses, its canonical text must parse back to the same tree (when
/// that text is within the length limit).
fn check_no_panic(text: &str) -> Result<(), TestCaseError> {
    if let Ok(stmt) = parse(text) {
        let canonical = stmt.to_string();
        if canonical.chars().count() <= MAX_STATEMENT_LEN {
            let again = parse(&canonical);
            prop_assert!(
                again.is_ok(),
                "{} -> {}: {:?}",
                short(text),
                short(&canonical),
                again
            );
            prop_assert_eq!(again.unwrap(), stmt);
        }
    }
    Ok(())
}

const SOUP: &[&str] = &[
    "SELECT",
    "*",
    "FROM",
    "\"t\"",
    ".",
    "\"i\"",
    "WHERE",
    "a",
    "b",
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "IS",
    "MISSING",
    "NULL",
    "TRUE",
    "false",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "<<",
    ">>",
    ",",
    ":",
    "?",
    "'s'",
    "'",
    "\"",
    "1",
    "-2.5e3",
    "+",
    "-",
    "size",
    "begins_with",
    "list_append",
    "set_add",
    "INSERT",
    "INTO",
    "VALUE",
    "UPDATE",
    "SET",
    "REMOVE",
    "DELETE",
    "RETURNING",
    "ALL",
    "MODIFIED",
    "OLD",
    "NEW",
    "ORDER",
    "BY",
    "DESC",
    "EXISTS",
    "x.y[0]",
    "é",
    "\n",
    "99999999999999999999999999999999999999999",
];

const SEEDS: &[&str] = &[
    "SELECT OrderID, Total FROM \"Orders\" WHERE OrderID IN [1, 2, 3] ORDER BY OrderID DESC",
    "SELECT * FROM \"Orders\" WHERE \"OrderID\"=1 AND size(\"Image\") >300",
    "SELECT Devices.FireStick.DateWatched[0] FROM WatchList WHERE CustomerID= 'C1' AND MovieID= 'M1'",
    "INSERT INTO TypesTable value {'primarykey':'1', 'NumberType':1, 'MapType' : {'entryname1': 'value', 'entryname2': 4}, 'ListType': [1,'stringval'], 'NumberSetType':<<1,34,32,4.5>>}",
    "UPDATE TypesTable SET NumberType=NumberType + 100 SET ListType = LIST_APPEND(ListType, [4, <<'string1', 'string2'>>]) REMOVE MapType.NewMapEntry WHERE primarykey='1' RETURNING ALL OLD *",
    "DELETE FROM \"Music\" WHERE \"Artist\" = 'Acme Band' AND \"SongTitle\" = 'PartiQL Rocks' RETURNING ALL OLD *",
    "EXISTS(SELECT * FROM \"Music\" where Artist='No One You Know' and SongTitle='Call Me Today' and Awards is  MISSING)",
    "NOT EXISTS(SELECT * FROM \"Music\" WHERE Artist = ? AND SongTitle = ?)",
    "SELECT * FROM t WHERE NOT (a BETWEEN ? AND ? OR b NOT IN (1, 'x')) AND c IS NOT NULL",
];

#[test]
fn generated_sets_and_tuples_are_what_the_parser_accepts() {
    // Sanity check of the generators' helpers on fixed input.
    let stmt = ok("INSERT INTO t VALUE {'a': <<?, ?>>, 'b': <<1, 2>>}");
    assert_eq!(stmt.parameter_count(), 2);
    let mut copy = stmt.clone();
    assert_eq!(number_params(&mut copy), 2);
    assert_eq!(copy, stmt);
    assert_eq!(num("1"), Value::Num(Number::from_i64(1)));
}
