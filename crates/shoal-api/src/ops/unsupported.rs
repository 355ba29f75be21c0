//! Members of the API model that Shoal does not implement: a request that gives one is refused
//! with a `ValidationException` naming the member, never served as if the member were absent.
//!
//! One member is accepted in the one form that asks for what Shoal does anyway: a CreateTable
//! `StreamSpecification` with `StreamEnabled: false` (no stream). Members a handler implements
//! (`OnDemandThroughput` and `WarmThroughput` among them, see `table.rs` and `index.rs`) are not
//! listed here; `docs/COMPATIBILITY.md` lists both kinds per operation.

use super::Operation;
use crate::error::{ApiError, Violations};
use crate::input::{Input, nested};

/// Top-level members refused outright, per operation.
fn refused(op: Operation) -> &'static [&'static str] {
    match op {
        Operation::CreateTable => &[
            "GlobalTableSourceArn",
            "GlobalTableSettingsReplicationMode",
            "VectorIndexes",
        ],
        Operation::UpdateTable => &[
            "StreamSpecification",
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
/// such member in the model's order; the constraint errors of `StreamSpecification`.
pub fn check(op: Operation, input: &Input<'_>) -> Result<(), ApiError> {
    if let Some(member) = refused(op).iter().find(|m| input.has(m)) {
        return Err(not_supported(member));
    }
    if op == Operation::CreateTable {
        stream_specification(input)?;
    }
    Ok(())
}

/// A CreateTable `StreamSpecification`: `StreamEnabled` is required; `false` (no stream) is
/// accepted, a stream is not supported.
fn stream_specification(input: &Input<'_>) -> Result<(), ApiError> {
    let Some(raw) = input.raw("StreamSpecification") else {
        return Ok(());
    };
    let spec = nested(raw)?;
    let enabled = spec.bool("StreamEnabled")?;
    let mut v = Violations::default();
    if enabled.is_none() {
        v.missing("streamSpecification.streamEnabled");
    }
    super::validate::enum_value(
        spec.str("StreamViewType")?,
        "streamSpecification.streamViewType",
        &["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"],
        &mut v,
    );
    v.into_result()?;
    if enabled == Some(true) {
        return Err(not_supported("StreamSpecification"));
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

    #[test]
    fn a_disabled_stream_is_accepted_and_an_enabled_one_refused() {
        let create =
            |spec: Value| run(Operation::CreateTable, json!({"StreamSpecification": spec}));
        create(json!({"StreamEnabled": false})).unwrap();
        assert_eq!(
            create(json!({"StreamEnabled": true, "StreamViewType": "NEW_IMAGE"}))
                .unwrap_err()
                .message,
            "StreamSpecification is not supported by this version of Shoal"
        );
        assert!(create(json!({})).is_err());
    }
}
