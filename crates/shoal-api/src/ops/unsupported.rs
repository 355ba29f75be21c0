//! Members of the API model that Shoal does not implement: a request that gives one is refused
//! with a `ValidationException` naming the member, never served as if the member were absent.
//!
//! Members a handler implements (`OnDemandThroughput`, `WarmThroughput` and
//! `StreamSpecification` among them, see `table.rs`, `index.rs` and `streams/spec.rs`) are not
//! listed here; `docs/COMPATIBILITY.md` lists both kinds per operation.

use super::Operation;
use crate::error::ApiError;
use crate::input::Input;

/// Top-level members refused outright, per operation.
fn refused(op: Operation) -> &'static [&'static str] {
    match op {
        Operation::CreateTable => &[
            "GlobalTableSourceArn",
            "GlobalTableSettingsReplicationMode",
            "VectorIndexes",
        ],
        Operation::UpdateTable => &[
            "ReplicaUpdates",
            "MultiRegionConsistency",
            "GlobalTableWitnessUpdates",
            "GlobalTableSettingsReplicationMode",
            "DisassociationProtectionEnabled",
            "VectorIndexUpdates",
        ],
        _ => &[],
    }
}

/// The error for a member Shoal does not implement.
pub fn not_supported(member: &str) -> ApiError {
    ApiError::validation(format!(
        "{member} is not supported by this version of Shoal"
    ))
}

/// Refuses the members of `op`'s input that Shoal does not implement (see the module docs).
/// Runs after the model constraints of the members Shoal implements, before anything else.
///
/// # Errors
/// `ValidationException`: `<Member> is not supported by this version of Shoal`, for the first
/// such member in the model's order.
pub fn check(op: Operation, input: &Input<'_>) -> Result<(), ApiError> {
    if let Some(member) = refused(op).iter().find(|m| input.has(m)) {
        return Err(not_supported(member));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn run(op: Operation, body: Value) -> Result<(), ApiError> {
        check(op, &Input::new(&body)?)
    }

    #[test]
    fn refused_members_are_named() {
        for (op, member) in [
            (Operation::CreateTable, "GlobalTableSourceArn"),
            (Operation::CreateTable, "VectorIndexes"),
            (Operation::UpdateTable, "ReplicaUpdates"),
            (Operation::UpdateTable, "VectorIndexUpdates"),
        ] {
            let e = run(op, json!({"TableName": "t", member: {}})).unwrap_err();
            assert_eq!(
                e.message,
                format!("{member} is not supported by this version of Shoal")
            );
        }
        assert!(run(Operation::PutItem, json!({"VectorIndexes": {}})).is_ok());
    }

    #[test]
    fn capacity_settings_are_left_to_the_handlers() {
        for op in [Operation::CreateTable, Operation::UpdateTable] {
            run(
                op,
                json!({
                    "WarmThroughput": {"ReadUnitsPerSecond": 20000},
                    "OnDemandThroughput": {"MaxReadRequestUnits": 10},
                    "GlobalSecondaryIndexes": [{"IndexName": "ix", "WarmThroughput": {}}],
                    "GlobalSecondaryIndexUpdates": [{"Update": {"IndexName": "ix", "OnDemandThroughput": {"MaxWriteRequestUnits": 5}}}],
                }),
            )
            .unwrap();
        }
    }
}
