//! Fuzz `parse_condition` and `Condition::evaluate`: must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_expr::{ConditionKind, ExprContext, parse_condition};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (names, values) = (common::names(), common::values());
    let mut ctx = ExprContext::new(Some(&names), Some(&values));
    if let Ok(c) = parse_condition(text, &mut ctx, ConditionKind::Filter) {
        let _ = c.evaluate(&common::item());
        let _ = c.evaluate(&Default::default());
        let _ = ctx.check_all_used();
    }
});
