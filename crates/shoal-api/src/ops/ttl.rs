//! `UpdateTimeToLive` and `DescribeTimeToLive`: the table's TTL attribute, kept in the catalog.
//! The nodes keep an expiry index on it and delete what expired (`shoal-node/src/ttl.rs`);
//! DescribeTimeToLive says `ENABLING` / `DISABLING` until every partition has built (or
//! dropped) that index.

use serde_json::{Value, json};

use super::Ctx;
use super::validate::{backend_error, table_name};
use crate::backend::DataError;
use crate::error::{ApiError, ErrorKind, Violations};
use crate::input::Input;

/// How many times a change is retried when the catalog entry changed under it.
const ATTEMPTS: usize = 5;

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceNotFound,
        format!("Requested resource not found: Table: {name} not found"),
    )
}

fn found(e: DataError, name: &str) -> ApiError {
    match e {
        DataError::TableNotFound(_) => not_found(name),
        other => backend_error(other),
    }
}

/// `UpdateTimeToLive`.
pub async fn update_time_to_live(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let name = table_name(input.str("TableName")?, "tableName", &mut v);
    let spec = match input.raw("TimeToLiveSpecification") {
        Some(raw) => Some(crate::input::nested(raw)?),
        None => {
            v.missing("timeToLiveSpecification");
            None
        }
    };
    let enabled = match &spec {
        Some(s) => {
            let e = s.bool("Enabled")?;
            if e.is_none() {
                v.missing("timeToLiveSpecification.enabled");
            }
            e
        }
        None => None,
    };
    let attribute = match &spec {
        Some(s) => {
            let a = s.str("AttributeName")?;
            match a {
                None => v.missing("timeToLiveSpecification.attributeName"),
                Some(a) if a.is_empty() || a.len() > 255 => v.constraint(
                    a,
                    "timeToLiveSpecification.attributeName",
                    "Member must have length less than or equal to 255, Member must have \
                     length greater than or equal to 1",
                ),
                Some(_) => {}
            }
            a
        }
        None => None,
    };
    v.into_result()?;
    let (Some(name), Some(enabled), Some(attribute)) = (name, enabled, attribute) else {
        return Err(ApiError::validation("Invalid TimeToLiveSpecification"));
    };
    for _ in 0..ATTEMPTS {
        let meta = ctx.backend.table(name).await.map_err(|e| found(e, name))?;
        match (&meta.time_to_live, enabled) {
            (Some(_), true) => {
                return Err(ApiError::validation("TimeToLive is already enabled"));
            }
            (None, false) => {
                return Err(ApiError::validation("TimeToLive is already disabled"));
            }
            (Some(current), false) if current != attribute => {
                return Err(ApiError::validation(format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName \
                     is {current}"
                )));
            }
            _ => {}
        }
        let mut next = (*meta).clone();
        next.time_to_live = enabled.then(|| attribute.to_string());
        next.version = meta.version + 1;
        match ctx.backend.replace_table(meta.version, next).await {
            Ok(_) => {
                return Ok(json!({
                    "TimeToLiveSpecification": {
                        "AttributeName": attribute,
                        "Enabled": enabled,
                    }
                }));
            }
            // Another change landed first: decide again on the new entry.
            Err(DataError::Conflict(_)) => {}
            Err(e) => return Err(found(e, name)),
        }
    }
    Err(ApiError::new(
        ErrorKind::ResourceInUse,
        format!(
            "Attempt to change a resource which is still in use: Table: {name} is being updated"
        ),
    ))
}

/// `DescribeTimeToLive`.
pub async fn describe_time_to_live(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let name = table_name(input.str("TableName")?, "tableName", &mut v);
    v.into_result()?;
    let Some(name) = name else {
        return Err(ApiError::validation("Invalid table name"));
    };
    let meta = ctx.backend.table(name).await.map_err(|e| found(e, name))?;
    // ENABLING / DISABLING until every partition has built (or dropped) its expiry index.
    let settled = ctx
        .backend
        .time_to_live_settled(&meta)
        .await
        .map_err(|e| found(e, name))?;
    Ok(match (&meta.time_to_live, settled) {
        (Some(attribute), settled) => json!({
            "TimeToLiveDescription": {
                "TimeToLiveStatus": if settled { "ENABLED" } else { "ENABLING" },
                "AttributeName": attribute,
            }
        }),
        (None, true) => json!({ "TimeToLiveDescription": { "TimeToLiveStatus": "DISABLED" } }),
        (None, false) => json!({ "TimeToLiveDescription": { "TimeToLiveStatus": "DISABLING" } }),
    })
}
