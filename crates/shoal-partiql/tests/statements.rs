//! Every statement of the developer guide's PartiQL pages parses to the expected tree (and its
//! canonical text parses back to the same tree).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use shoal_partiql::{
    ArithOp, CompareOp, Delete, Expr, Function, Insert, IsTest, OrderBy, Projection, Returning,
    Select, Statement, Update, UpdateAction, Value,
};

fn select(s: &str) -> Select {
    match ok(s) {
        Statement::Select(sel) => sel,
        other => panic!("not a SELECT: {other:?}"),
    }
}

fn eq(name: &str, value: Value) -> Expr {
    Expr::Compare {
        op: CompareOp::Eq,
        left: Box::new(p(name)),
        right: Box::new(v(value)),
    }
}

#[test]
fn select_from_an_index() {
    let s = select("SELECT * \nFROM \"TableName\".\"IndexName\"");
    assert_eq!(
        s,
        Select {
            projection: Projection::All,
            table: "TableName".into(),
            index: Some("IndexName".into()),
            where_clause: None,
            order_by: vec![],
        }
    );
}

#[test]
fn select_conditions_from_the_select_page() {
    let s = select("SELECT * \nFROM \"Orders\" \nWHERE OrderID = 100");
    assert_eq!(s.where_clause, Some(eq("OrderID", num("100"))));
    assert_eq!(s.table, "Orders");

    let s = select("SELECT * FROM \"Orders\" WHERE OrderID = 100 and Address='some address'");
    assert_eq!(
        s.where_clause,
        Some(Expr::And(vec![
            eq("OrderID", num("100")),
            eq("Address", str_("some address"))
        ]))
    );

    let s = select("SELECT * FROM \"Orders\" WHERE OrderID = 100 or pk = 200");
    assert_eq!(
        s.where_clause,
        Some(Expr::Or(vec![
            eq("OrderID", num("100")),
            eq("pk", num("200"))
        ]))
    );

    let s = select("SELECT * FROM \"Orders\" WHERE OrderID IN [100, 300, 234]");
    assert_eq!(
        s.where_clause,
        Some(Expr::In {
            value: Box::new(p("OrderID")),
            list: vec![num("100"), num("300"), num("234")],
        })
    );

    for w in [
        "OrderID > 1",
        "Address='some address'",
        "OrderID = 100 OR Address='some address'",
        "Total > 500",
        "Total IN [500, 600]",
    ] {
        ok(&format!("SELECT * FROM \"Orders\" WHERE {w}"));
    }
}

#[test]
fn select_examples_with_projection_order_by_and_document_paths() {
    let s = select("SELECT OrderID, Total\nFROM \"Orders\"\nWHERE OrderID = 1");
    assert_eq!(
        s.projection,
        Projection::Paths(vec![path(&["OrderID"]), path(&["Total"])])
    );
    ok("SELECT OrderID, Total FROM \"Orders\" WHERE OrderID = 1 OR OrderID = 2");

    let s = select(
        "SELECT OrderID, Total FROM \"Orders\" WHERE OrderID IN [1, 2, 3] ORDER BY OrderID DESC",
    );
    assert_eq!(
        s.order_by,
        vec![OrderBy {
            path: path(&["OrderID"]),
            descending: true
        }]
    );
    let s = select("SELECT * FROM t ORDER BY a ASC, b, c desc");
    let desc: Vec<bool> = s.order_by.iter().map(|o| o.descending).collect();
    assert_eq!(desc, [false, false, true]);

    let s = select("SELECT OrderID, Total \nFROM \"Orders\" \nWHERE Total BETWEEN 500 AND 600");
    assert_eq!(
        s.where_clause,
        Some(Expr::Between {
            value: Box::new(p("Total")),
            low: Box::new(v(num("500"))),
            high: Box::new(v(num("600"))),
        })
    );

    let s = select(
        "SELECT Devices.FireStick.DateWatched[0] \nFROM WatchList \nWHERE CustomerID= 'C1' AND MovieID= 'M1'",
    );
    assert_eq!(
        s.projection,
        Projection::Paths(vec![path(&["Devices", "FireStick", "DateWatched", "[0]"])])
    );
    assert_eq!(s.table, "WatchList");

    let s = select(
        "SELECT Devices \nFROM WatchList \nWHERE Devices.FireStick.DateWatched[0] >= '12/12/19'",
    );
    assert_eq!(
        s.where_clause,
        Some(Expr::Compare {
            op: CompareOp::Ge,
            left: Box::new(Expr::Path(path(&[
                "Devices",
                "FireStick",
                "DateWatched",
                "[0]"
            ]))),
            right: Box::new(v(str_("12/12/19"))),
        })
    );
}

#[test]
fn insert_examples() {
    let stmt =
        ok("INSERT INTO \"Music\" value {'Artist' : 'Acme Band','SongTitle' : 'PartiQL Rocks'}");
    assert_eq!(
        stmt,
        Statement::Insert(Insert {
            table: "Music".into(),
            item: vec![
                ("Artist".into(), str_("Acme Band")),
                ("SongTitle".into(), str_("PartiQL Rocks")),
            ],
        })
    );

    let stmt = ok(
        "INSERT INTO TypesTable value {'primarykey':'1', \n'NumberType':1,\n'MapType' : {'entryname1': 'value', 'entryname2': 4}, \n'ListType': [1,'stringval'], \n'NumberSetType':<<1,34,32,4.5>>, \n'StringSetType':<<'stringval','stringval2'>>\n}",
    );
    let Statement::Insert(insert) = stmt else {
        panic!()
    };
    assert_eq!(insert.item.len(), 6);
    assert_eq!(
        insert.item[2].1,
        Value::Tuple(vec![
            ("entryname1".into(), str_("value")),
            ("entryname2".into(), num("4")),
        ])
    );
    assert_eq!(
        insert.item[4].1,
        Value::Set(vec![num("1"), num("34"), num("32"), num("4.5")])
    );

    // The batch page quotes its parameters ('?' is then a string); the transaction page does not.
    assert_eq!(
        ok("INSERT INTO \"Music\" value {'Artist':'?','SongTitle':'?'}").parameter_count(),
        0
    );
    let stmt = ok("INSERT INTO Music value {'Artist':?,'SongTitle':'?'}");
    assert_eq!(stmt.parameter_count(), 1);
    let Statement::Insert(insert) = stmt else {
        panic!()
    };
    assert_eq!(insert.item[0].1, Value::Param(0));
}

fn update(s: &str) -> Update {
    match ok(s) {
        Statement::Update(u) => u,
        other => panic!("not an UPDATE: {other:?}"),
    }
}

#[test]
fn update_examples() {
    let base = "UPDATE \"Music\" \nSET AwardsWon=1 \nSET AwardDetail={'Grammys':[2020, 2018]}  \nWHERE Artist='Acme Band' AND SongTitle='PartiQL Rocks'";
    let u = update(base);
    assert_eq!(u.table, "Music");
    assert_eq!(
        u.actions,
        vec![
            UpdateAction::Set {
                path: path(&["AwardsWon"]),
                value: v(num("1")),
            },
            UpdateAction::Set {
                path: path(&["AwardDetail"]),
                value: v(Value::Tuple(vec![(
                    "Grammys".into(),
                    Value::List(vec![num("2020"), num("2018")])
                )])),
            },
        ]
    );
    assert_eq!(u.returning, None);
    assert_eq!(
        u.where_clause.equalities(),
        vec![
            (&path(&["Artist"]), &str_("Acme Band")),
            (&path(&["SongTitle"]), &str_("PartiQL Rocks")),
        ]
    );
    for (suffix, r) in [
        ("RETURNING ALL OLD *", Returning::AllOld),
        ("RETURNING ALL NEW *", Returning::AllNew),
        ("returning modified old *", Returning::ModifiedOld),
        ("RETURNING MODIFIED NEW *", Returning::ModifiedNew),
    ] {
        assert_eq!(update(&format!("{base}\n{suffix}")).returning, Some(r));
    }

    let u = update(
        "UPDATE \"Music\" \nSET AwardDetail.Grammys =list_append(AwardDetail.Grammys,[2016])  \nWHERE Artist='Acme Band' AND SongTitle='PartiQL Rocks'",
    );
    assert_eq!(
        u.actions,
        vec![UpdateAction::Set {
            path: path(&["AwardDetail", "Grammys"]),
            value: Expr::Call {
                func: Function::ListAppend,
                args: vec![
                    Expr::Path(path(&["AwardDetail", "Grammys"])),
                    v(Value::List(vec![num("2016")])),
                ],
            },
        }]
    );

    let u = update(
        "UPDATE \"Music\" \nREMOVE AwardDetail.Grammys[2]   \nWHERE Artist='Acme Band' AND SongTitle='PartiQL Rocks'",
    );
    assert_eq!(
        u.actions,
        vec![UpdateAction::Remove(path(&[
            "AwardDetail",
            "Grammys",
            "[2]"
        ]))]
    );

    ok(
        "UPDATE \"Music\" \nSET AwardDetail.BillBoard=[2020] \nWHERE Artist='Acme Band' AND SongTitle='PartiQL Rocks'",
    );
    let u = update(
        "UPDATE \"Music\" \nSET BandMembers =<<'member1', 'member2'>> \nWHERE Artist='Acme Band' AND SongTitle='PartiQL Rocks'",
    );
    assert_eq!(
        u.actions,
        vec![UpdateAction::Set {
            path: path(&["BandMembers"]),
            value: v(Value::Set(vec![str_("member1"), str_("member2")])),
        }]
    );
    let u = update(
        "UPDATE \"Music\" \nSET BandMembers =set_add(BandMembers, <<'newbandmember'>>) \nWHERE Artist='Acme Band' AND SongTitle='PartiQL Rocks'",
    );
    assert!(matches!(
        &u.actions[0],
        UpdateAction::Set {
            value: Expr::Call {
                func: Function::SetAdd,
                ..
            },
            ..
        }
    ));

    // The batch and transaction pages' lower-case `where`.
    ok(
        "UPDATE \"Music\" set AwardDetail.BillBoard=[2020] where Artist='Acme Band' and SongTitle='PartiQL Rocks'",
    );
}

#[test]
fn update_examples_from_the_data_types_page() {
    let u = update(
        "UPDATE TypesTable \nSET NumberType=NumberType + 100 \nSET MapType.NewMapEntry=[2020, 'stringvalue', 2.4]\nSET ListType = LIST_APPEND(ListType, [4, <<'string1', 'string2'>>])\nSET NumberSetType= SET_ADD(NumberSetType, <<345, 48.4>>)\nSET StringSetType = SET_ADD(StringSetType, <<'stringsetvalue1', 'stringsetvalue2'>>)\nWHERE primarykey='1'",
    );
    assert_eq!(u.actions.len(), 5);
    assert_eq!(
        u.actions[0],
        UpdateAction::Set {
            path: path(&["NumberType"]),
            value: Expr::Arith {
                first: Box::new(p("NumberType")),
                rest: vec![(ArithOp::Add, v(num("100")))],
            },
        }
    );
    assert!(matches!(
        &u.actions[2],
        UpdateAction::Set {
            value: Expr::Call {
                func: Function::ListAppend,
                ..
            },
            ..
        }
    ));

    let u = update(
        "UPDATE TypesTable \nSET NumberType=NumberType - 1\nREMOVE ListType[1]\nREMOVE MapType.NewMapEntry\nSET NumberSetType = SET_DELETE( NumberSetType, <<345>>)\nSET StringSetType = SET_DELETE( StringSetType, <<'stringsetvalue1'>>)\nWHERE primarykey='1'",
    );
    assert_eq!(u.actions.len(), 5);
    assert_eq!(
        u.actions[1],
        UpdateAction::Remove(path(&["ListType", "[1]"]))
    );
    assert!(matches!(
        &u.actions[4],
        UpdateAction::Set {
            value: Expr::Call {
                func: Function::SetDelete,
                ..
            },
            ..
        }
    ));
}

#[test]
fn comma_separated_set_and_remove_lists() {
    let u = update("UPDATE t SET a = 1, b = ? REMOVE c, d[0] SET e = 'x' WHERE k = 1");
    assert_eq!(u.actions.len(), 5);
    assert!(matches!(u.actions[3], UpdateAction::Remove(_)));
}

#[test]
fn delete_examples() {
    let stmt = ok(
        "DELETE FROM \"Music\" WHERE \"Artist\" = 'Acme Band' AND \"SongTitle\" = 'PartiQL Rocks'",
    );
    assert_eq!(
        stmt,
        Statement::Delete(Delete {
            table: "Music".into(),
            where_clause: Expr::And(vec![
                eq("Artist", str_("Acme Band")),
                eq("SongTitle", str_("PartiQL Rocks")),
            ]),
            returning: None,
        })
    );
    let stmt = ok(
        "DELETE FROM \"Music\" WHERE \"Artist\" = 'Acme Band' AND \"SongTitle\" = 'PartiQL Rocks' RETURNING ALL OLD *",
    );
    let Statement::Delete(d) = stmt else { panic!() };
    assert_eq!(d.returning, Some(Returning::AllOld));
}

#[test]
fn function_examples() {
    let s = select("SELECT * FROM \"Music\" WHERE attribute_type(\"Artist\", 'S')");
    assert_eq!(
        s.where_clause,
        Some(Expr::Call {
            func: Function::AttributeType,
            args: vec![p("Artist"), v(str_("S"))],
        })
    );
    let s = select(
        "SELECT * FROM \"Orders\" WHERE \"OrderID\"=1 AND begins_with(\"Address\", '7834 24th')",
    );
    assert_eq!(s.where_clause.as_ref().unwrap().equalities().len(), 1);
    ok("SELECT * FROM \"Orders\" WHERE \"OrderID\"=1 AND contains(\"Address\", 'Kirkland')");
    let s = select("SELECT * FROM Music WHERE \"Awards\" is MISSING");
    assert_eq!(
        s.where_clause,
        Some(Expr::Is {
            value: Box::new(p("Awards")),
            test: IsTest::Missing,
            negated: false,
        })
    );
    let s = select("SELECT * FROM \"Orders\" WHERE \"OrderID\"=1 AND size(\"Image\") >300");
    let w = s.where_clause.unwrap();
    assert_eq!(
        w.conjuncts()[1],
        Expr::Compare {
            op: CompareOp::Gt,
            left: Box::new(Expr::Call {
                func: Function::Size,
                args: vec![p("Image")],
            }),
            right: Box::new(v(num("300"))),
        }
    );
    let s = select("SELECT * FROM t WHERE a IS NOT MISSING AND b is null AND c IS NOT NULL");
    let tests: Vec<(IsTest, bool)> = s
        .where_clause
        .unwrap()
        .conjuncts()
        .iter()
        .map(|c| match c {
            Expr::Is { test, negated, .. } => (*test, *negated),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        tests,
        [
            (IsTest::Missing, true),
            (IsTest::Null, false),
            (IsTest::Null, true)
        ]
    );
}

#[test]
fn exists_examples_from_the_transactions_page() {
    let stmt = ok(
        "EXISTS(\n    SELECT * FROM \"Music\" \n    WHERE \"Artist\" = 'Acme Band' AND \"SongTitle\" = 'PartiQL Rocks')",
    );
    assert!(matches!(stmt, Statement::Exists(_)));
    assert!(!stmt.is_read());
    assert_eq!(stmt.table(), "Music");
    let stmt = ok(
        "EXISTS(SELECT * FROM \"Music\" where Artist='No One You Know' and SongTitle='Call Me Today' and Awards is  MISSING)",
    );
    let w = stmt.where_clause().unwrap();
    assert_eq!(w.conjuncts().len(), 3);
    assert_eq!(w.equalities().len(), 2);
    ok(
        "SELECT non_existent_projected_attribute FROM \"Music\" WHERE Artist='No One You Know' and SongTitle='Call Me Today'",
    );
}

#[test]
fn not_exists_is_the_negated_condition_check() {
    let stmt = ok("not exists ( SELECT * FROM \"Music\" WHERE Artist = ? AND SongTitle = 'x')");
    let Statement::NotExists(s) = &stmt else {
        panic!("not NOT EXISTS: {stmt:?}");
    };
    assert_eq!(s.table, "Music");
    assert!(!stmt.is_read());
    assert_eq!(stmt.table(), "Music");
    assert_eq!(stmt.parameter_count(), 1);
    assert_eq!(stmt.where_clause().unwrap().equalities().len(), 2);
    assert_eq!(
        stmt.to_string(),
        "NOT EXISTS(SELECT * FROM \"Music\" WHERE \"Artist\" = ? AND \"SongTitle\" = 'x')"
    );
    assert_eq!(ok(&stmt.to_string()), stmt);
}

#[test]
fn keywords_are_case_insensitive_and_quoted_identifiers_may_be_keywords() {
    let a = ok(
        "select * from \"T\" where \"value\" = 1 AnD \"select\" <> 'x' oR NOT b between 1 and 2",
    );
    let b = ok(
        "SELECT * FROM \"T\" WHERE \"value\" = 1 AND \"select\" <> 'x' OR NOT b BETWEEN 1 AND 2",
    );
    assert_eq!(a, b);
    let s = select(r#"SELECT "a.b", "we""ird"."x y"[3] FROM "my-table.v2""#);
    assert_eq!(
        s.projection,
        Projection::Paths(vec![path(&["a.b"]), path(&["we\"ird", "x y", "[3]"])])
    );
    assert_eq!(s.table, "my-table.v2");
}

#[test]
fn operators_and_precedence() {
    let s = select("SELECT * FROM t WHERE a = 1 OR b = 2 AND NOT c = 3");
    let Some(Expr::Or(ors)) = s.where_clause else {
        panic!()
    };
    assert!(matches!(&ors[1], Expr::And(ands) if matches!(ands[1], Expr::Not(_))));

    let s = select(
        "SELECT * FROM t WHERE (a = 1 OR b = 2) AND c <= -3.5e2 AND d < e - 1 + f AND g >= 'x'",
    );
    let w = s.where_clause.unwrap();
    assert_eq!(w.conjuncts().len(), 4);
    assert!(matches!(w.conjuncts()[0], Expr::Or(_)));
    assert_eq!(w.equalities(), vec![]);
    assert!(matches!(
        &w.conjuncts()[1],
        Expr::Compare { op: CompareOp::Le, right, .. } if **right == v(num("-350"))
    ));

    // NOT IN / NOT BETWEEN are NOT (...).
    let s = select("SELECT * FROM t WHERE a NOT IN (1, 2) AND b NOT BETWEEN 1 AND 2");
    let w = s.where_clause.unwrap();
    assert!(matches!(&w.conjuncts()[0], Expr::Not(inner) if matches!(**inner, Expr::In { .. })));
    assert!(
        matches!(&w.conjuncts()[1], Expr::Not(inner) if matches!(**inner, Expr::Between { .. }))
    );

    // A parenthesised AND stays one operand of the AND around it.
    let s = select("SELECT * FROM t WHERE a = 1 AND (b = 2 AND c = 3)");
    assert_eq!(s.where_clause.unwrap().conjuncts().len(), 2);
}

#[test]
fn literals() {
    let u = update(
        "UPDATE t SET a = TRUE, b = false, c = NULL, d = [], e = {}, f = {'x': [1, {'y': <<?>>}]}, g = 'it''s', h = -0.0 WHERE k = ?",
    );
    let values: Vec<&Expr> = u
        .actions
        .iter()
        .map(|a| match a {
            UpdateAction::Set { value, .. } => value,
            UpdateAction::Remove(_) => panic!(),
        })
        .collect();
    assert_eq!(values[0], &v(Value::Bool(true)));
    assert_eq!(values[1], &v(Value::Bool(false)));
    assert_eq!(values[2], &v(Value::Null));
    assert_eq!(values[3], &v(Value::List(vec![])));
    assert_eq!(values[4], &v(Value::Tuple(vec![])));
    assert_eq!(
        values[5],
        &v(Value::Tuple(vec![(
            "x".into(),
            Value::List(vec![
                num("1"),
                Value::Tuple(vec![("y".into(), Value::Set(vec![Value::Param(0)]))])
            ])
        )]))
    );
    assert_eq!(values[6], &v(str_("it's")));
    assert_eq!(values[7], &v(num("0")));
    assert_eq!(
        u.where_clause.equalities(),
        vec![(&path(&["k"]), &Value::Param(1))]
    );
}

#[test]
fn parameters_are_numbered_in_order_of_appearance() {
    let stmt = ok(
        "UPDATE t SET a = ?, b = [?, {'c': ?}] REMOVE x SET d = list_append(?, ?) WHERE k = ? AND ? = s AND r IN [?, ?]",
    );
    assert_eq!(stmt.parameter_count(), 9);
    // The canonical text keeps the order, so the numbers survive a round trip.
    let text = stmt.to_string();
    assert_eq!(text.matches('?').count(), 9);
    let Statement::Update(u) = stmt else { panic!() };
    assert_eq!(
        u.where_clause.equalities(),
        vec![
            (&path(&["k"]), &Value::Param(5)),
            (&path(&["s"]), &Value::Param(6))
        ]
    );
    let UpdateAction::Set { value, .. } = &u.actions[1] else {
        panic!()
    };
    assert_eq!(
        value,
        &v(Value::List(vec![
            Value::Param(1),
            Value::Tuple(vec![("c".into(), Value::Param(2))])
        ]))
    );
    assert!(ok("SELECT * FROM t").check_parameters(0).is_ok());
}

#[test]
fn table_index_and_read_or_write() {
    let cases = [
        ("SELECT * FROM \"t\".\"i\"", "t", Some("i"), true),
        ("SELECT * FROM t", "t", None, true),
        ("INSERT INTO \"t\" VALUE {'k': 1}", "t", None, false),
        ("UPDATE t SET a = 1 WHERE k = 1", "t", None, false),
        ("DELETE FROM t WHERE k = 1", "t", None, false),
    ];
    for (s, table, index, read) in cases {
        let stmt = ok(s);
        assert_eq!(stmt.table(), table, "{s}");
        assert_eq!(stmt.index(), index, "{s}");
        assert_eq!(stmt.is_read(), read, "{s}");
    }
}

#[test]
fn canonical_text_quotes_identifiers_and_upper_cases_keywords() {
    let stmt = ok("select a.b[1] from t where x = 'it''s' and y in [1, <<'a'>>] order by x desc");
    assert_eq!(
        stmt.to_string(),
        r#"SELECT "a"."b"[1] FROM "t" WHERE "x" = 'it''s' AND "y" IN [1, <<'a'>>] ORDER BY "x" DESC"#
    );
    let stmt = ok(
        "update t set a = (b - (c + 1)) + 2 where (k = 1 or k = 2) and not not j is not null returning modified new *",
    );
    assert_eq!(
        stmt.to_string(),
        r#"UPDATE "t" SET "a" = ("b" - ("c" + 1)) + 2 WHERE ("k" = 1 OR "k" = 2) AND NOT NOT "j" IS NOT NULL RETURNING MODIFIED NEW *"#
    );
}
