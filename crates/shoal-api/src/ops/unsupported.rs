//! Members of the API model that Shoal does not implement: a request that gives one is refused
//! with a `ValidationException` naming the member, never served as if the member were absent.
//!
//! Two members are accepted in the one form that asks for what Shoal does anyway:
//! `OnDemandThroughput` with every given maximum `-1` ("no maximum": Shoal does not throttle), and
//! a CreateTable `StreamSpecification` with `StreamEnabled: false` (no stream). Members a handler
//! implements are not listed here; `docs/COMPATIBILITY.md` lists both kinds per operation.

use serde_json::Value;

use super::Operation;
use crate::error::{ApiError, Violations};
use crate::input::{Input, nested};

/// Top-level members refused outright, per operation.
fn refused(op: Operation) -> &'static [&'static str] {
    match op {
        Operation::CreateTable => &[
            "WarmThroughput",
            "GlobalTableSourceArn",
            "GlobalTableSettingsReplicationMode",
            "VectorIndexes",
        ],
        Operation::UpdateTable => &[
            "StreamSpecification",
            "ReplicaUpdates",
            "MultiRegionConsistency",
            "GlobalTableWitnessUpdates",
            "WarmThroughput",
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
/// such member in the model's order; the constraint errors of `OnDemandThroughput` and
/// `StreamSpecification`.
pub fn check(op: Operation, input: &Input<'_>) -> Result<(), ApiError> {
    if let Some(member) = refused(op).iter().find(|m| input.has(m)) {
        return Err(not_supported(member));
    }
    match op {
        Operation::CreateTable => {
            stream_specification(input)?;
            on_demand_throughput(input.raw("OnDemandThroughput"), "onDemandThroughput")?;
            for (i, el) in list(input, "GlobalSecondaryIndexes")?.iter().enumerate() {
                index_throughputs(el, &format!("globalSecondaryIndexes.{}.member", i + 1))?;
            }
        }
        Operation::UpdateTable => {
            on_demand_throughput(input.raw("OnDemandThroughput"), "onDemandThroughput")?;
            for (i, el) in list(input, "GlobalSecondaryIndexUpdates")?
                .iter()
                .enumerate()
            {
                let el = nested(el)?;
                for action in ["Create", "Update"] {
                    if let Some(def) = el.raw(action) {
                        index_throughputs(
                            def,
                            &format!(
                                "globalSecondaryIndexUpdates.{}.member.{}",
                                i + 1,
                                action.to_ascii_lowercase()
                            ),
                        )?;
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn list<'a>(input: &Input<'a>, member: &str) -> Result<&'a [Value], ApiError> {
    Ok(input.array(member)?.map(Vec::as_slice).unwrap_or(&[]))
}

/// `WarmThroughput` and `OnDemandThroughput` of one global secondary index definition.
fn index_throughputs(def: &Value, field: &str) -> Result<(), ApiError> {
    let def = nested(def)?;
    if def.has("WarmThroughput") {
        return Err(not_supported("WarmThroughput"));
    }
    on_demand_throughput(
        def.raw("OnDemandThroughput"),
        &format!("{field}.onDemandThroughput"),
    )
}

/// `OnDemandThroughput`: at least one of its maximums, each a number; accepted only when every
/// given maximum is `-1` (no maximum), which is what Shoal does.
fn on_demand_throughput(raw: Option<&Value>, field: &str) -> Result<(), ApiError> {
    let Some(raw) = raw else {
        return Ok(());
    };
    let spec = nested(raw)?;
    let read = spec.i64("MaxReadRequestUnits")?;
    let write = spec.i64("MaxWriteRequestUnits")?;
    if read.is_none() && write.is_none() {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: at least one of MaxReadRequestUnits and MaxWriteRequestUnits must be specified in '{field}'"
        )));
    }
    if [read, write].into_iter().flatten().any(|n| n != -1) {
        return Err(ApiError::validation(
            "OnDemandThroughput with a maximum is not supported by this version of Shoal: it does not throttle; only -1 (no maximum) is accepted",
        ));
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
    use serde_json::json;

    use super::*;

    fn run(op: Operation, body: Value) -> Result<(), ApiError> {
        check(op, &Input::new(&body)?)
    }

    #[test]
    fn refused_members_are_named() {
        for (op, member) in [
            (Operation::CreateTable, "WarmThroughput"),
            (Operation::CreateTable, "GlobalTableSourceArn"),
            (Operation::UpdateTable, "ReplicaUpdates"),
            (Operation::UpdateTable, "VectorIndexUpdates"),
        ] {
            let e = run(op, json!({"TableName": "t", member: {}})).unwrap_err();
            assert_eq!(
                e.message,
                format!("{member} is not supported by this version of Shoal")
            );
        }
        assert!(run(Operation::PutItem, json!({"WarmThroughput": {}})).is_ok());
    }

    #[test]
    fn on_demand_throughput_is_accepted_only_without_a_maximum() {
        let create = |odt: Value| run(Operation::CreateTable, json!({"OnDemandThroughput": odt}));
        create(json!({"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": -1})).unwrap();
        create(json!({"MaxReadRequestUnits": -1})).unwrap();
        assert!(create(json!({"MaxReadRequestUnits": 10})).is_err());
        assert!(create(json!({})).is_err());
        let gsi = |odt: Value| {
            run(
                Operation::UpdateTable,
                json!({"GlobalSecondaryIndexUpdates": [{"Update": {"IndexName": "ix", "OnDemandThroughput": odt}}]}),
            )
        };
        gsi(json!({"MaxWriteRequestUnits": -1})).unwrap();
        assert!(gsi(json!({"MaxWriteRequestUnits": 5})).is_err());
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
