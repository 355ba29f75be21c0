//! Fuzz `parse_update` and `Update::apply`: must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_expr::{ExprContext, parse_update};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (names, values) = (common::names(), common::values());
    let mut ctx = ExprContext::new(Some(&names), Some(&values));
    if let Ok(u) = parse_update(text, &mut ctx) {
        let mut item = common::item();
        let _ = u.apply(&mut item);
        let _ = u.updated_paths().apply(&item);
        let _ = u.top_level_names();
    }
});
