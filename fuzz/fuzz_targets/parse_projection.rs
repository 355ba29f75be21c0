//! Fuzz `parse_projection` and `Projection::apply`: must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_expr::{ExprContext, parse_projection};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let names = common::names();
    let mut ctx = ExprContext::new(Some(&names), None);
    if let Ok(p) = parse_projection(text, &mut ctx) {
        let _ = p.apply(&common::item());
        let _ = p.top_level_names().count();
    }
});
