//! Fuzz `shoal_partiql::parse`, the canonical printer, parameter binding and the conversion of
//! `WHERE` to a condition: must never panic, and whatever parses must print to text that parses
//! back to the same statement.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_partiql::{MAX_STATEMENT_LEN, Statement, UpdateAction, parse};
use shoal_types::{AttributeValue, Number};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(stmt) = parse(text) else { return };
    let canonical = stmt.to_string();
    if canonical.chars().count() <= MAX_STATEMENT_LEN {
        assert_eq!(parse(&canonical).as_ref(), Ok(&stmt), "{canonical}");
    }
    // Bind every value with parameters of one type (sets may refuse them; nothing may panic).
    let params = vec![AttributeValue::N(Number::from_i64(1)); stmt.parameter_count()];
    if let Some(w) = stmt.where_clause() {
        for (_, v) in w.equalities() {
            let _ = v.bind(&params);
        }
        if let Ok(c) = w.to_condition(&params) {
            let _ = c.evaluate(&Default::default());
        }
    }
    match &stmt {
        Statement::Insert(i) => {
            let _ = i.bind_item(&params);
        }
        Statement::Update(u) => {
            for a in &u.actions {
                if let UpdateAction::Set {
                    value: shoal_partiql::Expr::Value(v),
                    ..
                } = a
                {
                    let _ = v.bind(&params);
                }
            }
        }
        _ => {}
    }
});
