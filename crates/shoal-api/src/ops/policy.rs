//! PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy: a table's resource-based policy,
//! stored in its `TableMeta` with a revision id and changed with compare-and-swap on the table's
//! version. A stream's ARN names the stream's own policy, kept in its `StreamDef`.

use std::sync::Arc;

use serde_json::{Value, json};
use shoal_policy::{Policy, PolicyKind};

use super::Ctx;
use super::validate::backend_error;
use crate::backend::{DataError, TableMeta};
use crate::error::{ApiError, ErrorKind, Violations};
use crate::input::Input;

/// `ExpectedRevisionId` that asks for a table without a policy (`PutResourcePolicy`).
const NO_POLICY: &str = "NO_POLICY";

/// What a `ResourceArn` names: its ARN, the table, and the table's stream when it is a stream's.
type Resource = (String, Arc<TableMeta>, Option<u32>);

/// `ResourceArn` (model constraints into `v`) and the table (or stream) it names.
///
/// # Errors
/// `ValidationException` for an ARN that is no table or stream of this region and account;
/// `ResourceNotFoundException` for a table or stream that does not exist.
async fn target(
    ctx: &Ctx<'_>,
    input: &Input<'_>,
    v: &mut Violations,
) -> Result<Option<Resource>, ApiError> {
    let Some(arn) = super::tags::resource_arn(input, v)? else {
        return Ok(None);
    };
    if arn.contains("/stream/") {
        let (meta, stream) = super::streams::stream_of(ctx, arn).await?;
        return Ok(Some((arn.to_string(), meta, Some(stream.id))));
    }
    let Some(name) = crate::authz::table_of_arn(ctx, arn, false) else {
        return Err(ApiError::validation(format!(
            "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
        )));
    };
    match ctx.backend.table(name).await {
        Ok(meta) => Ok(Some((arn.to_string(), meta, None))),
        Err(DataError::TableNotFound(_)) => Err(ApiError::new(
            ErrorKind::ResourceNotFound,
            format!("Requested resource not found: {arn} not found"),
        )),
        Err(e) => Err(backend_error(e)),
    }
}

/// `ExpectedRevisionId` (model constraints into `v`).
fn expected_revision<'a>(
    input: &Input<'a>,
    v: &mut Violations,
) -> Result<Option<&'a str>, ApiError> {
    let r = input.str("ExpectedRevisionId")?;
    if let Some(r) = r
        && (r.is_empty() || r.len() > 255)
    {
        v.constraint(
            r,
            "expectedRevisionId",
            "Member must have length between 1 and 255",
        );
    }
    Ok(r)
}

/// Validates a resource-based policy document (`PutResourcePolicy`, `CreateTable`).
///
/// # Errors
/// `ValidationException: Invalid resource-based policy: <why>`; the size limit is 20 KB,
/// whitespace counted.
pub fn validate_document(document: &str) -> Result<(), ApiError> {
    Policy::parse(document, PolicyKind::Resource)
        .map(|_| ())
        .map_err(|e| ApiError::validation(format!("Invalid resource-based policy: {e}")))
}

/// A new revision id: the current time in microseconds, above `previous` so it always changes
/// (DynamoDB's revision ids are decimal strings too; compare them as strings).
pub fn next_revision(previous: Option<&str>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let after = previous
        .and_then(|p| p.parse::<u128>().ok())
        .map_or(0, |p| p + 1);
    now.max(after).to_string()
}

fn not_found(arn: &str) -> ApiError {
    ApiError::new(
        ErrorKind::PolicyNotFound,
        format!("Resource-based policy not found for the provided ResourceArn: {arn}"),
    )
}

fn revision_mismatch(arn: &str, expected: &str, current: Option<&str>) -> ApiError {
    ApiError::new(
        ErrorKind::PolicyNotFound,
        match current {
            Some(current) => format!(
                "Resource-based policy not found for the provided ResourceArn: Requested update for policy with revision id {expected}, but the policy associated to target table {arn} has revision id {current}."
            ),
            None => format!(
                "Resource-based policy not found for the provided ResourceArn: Requested update for policy with revision id {expected}, but there is no policy associated to target table {arn}."
            ),
        },
    )
}

/// Replaces the policy of the table (`stream` `None`) or of its stream `stream`, with
/// compare-and-swap on the table's version.
async fn store(
    ctx: &Ctx<'_>,
    meta: &TableMeta,
    stream: Option<u32>,
    policy: Option<shoal_catalog::TablePolicy>,
) -> Result<(), ApiError> {
    let mut next = meta.clone();
    match stream {
        None => next.resource_policy = policy,
        Some(id) => {
            if let Some(s) = next.streams.iter_mut().find(|s| s.id == id) {
                s.resource_policy = policy;
            }
        }
    }
    next.version = meta.version + 1;
    ctx.backend
        .replace_table(meta.version, next)
        .await
        .map_err(backend_error)?;
    Ok(())
}

/// `PutResourcePolicy`. `ConfirmRemoveSelfResourceAccess` is accepted and has no effect: admin
/// keys can always change a table's policy, so no policy locks the operators out.
pub async fn put_resource_policy(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let document = input.str("Policy")?;
    if document.is_none() {
        v.missing("policy");
    }
    let expected = expected_revision(input, &mut v)?;
    input.bool("ConfirmRemoveSelfResourceAccess")?;
    let target = target(ctx, input, &mut v).await?;
    v.into_result()?;
    let (Some((arn, meta, stream)), Some(document)) = (target, document) else {
        return Err(ApiError::validation("Invalid ResourceArn"));
    };
    validate_document(document)?;
    let current = meta.policy_of(stream);
    match (expected, current) {
        (None, _) => {}
        (Some(NO_POLICY), None) => {}
        (Some(NO_POLICY), Some(c)) => {
            return Err(ApiError::new(
                ErrorKind::PolicyNotFound,
                format!(
                    "Resource-based policy not found for the provided ResourceArn: Requested update for a table without a policy (NO_POLICY), but the policy associated to target table {arn} has revision id {}.",
                    c.revision_id
                ),
            ));
        }
        (Some(e), Some(c)) if e == c.revision_id => {}
        (Some(e), c) => {
            return Err(revision_mismatch(
                &arn,
                e,
                c.map(|c| c.revision_id.as_str()),
            ));
        }
    }
    // Idempotent: the same document keeps its revision.
    if let Some(c) = current
        && c.document == document
    {
        return Ok(json!({ "RevisionId": c.revision_id }));
    }
    let revision_id = next_revision(current.map(|c| c.revision_id.as_str()));
    store(
        ctx,
        &meta,
        stream,
        Some(shoal_catalog::TablePolicy {
            document: document.to_string(),
            revision_id: revision_id.clone(),
        }),
    )
    .await?;
    Ok(json!({ "RevisionId": revision_id }))
}

/// `GetResourcePolicy`.
pub async fn get_resource_policy(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let target = target(ctx, input, &mut v).await?;
    v.into_result()?;
    let Some((arn, meta, stream)) = target else {
        return Err(ApiError::validation("Invalid ResourceArn"));
    };
    match meta.policy_of(stream) {
        Some(p) => Ok(json!({ "Policy": p.document, "RevisionId": p.revision_id })),
        None => Err(not_found(&arn)),
    }
}

/// `DeleteResourcePolicy`: idempotent without `ExpectedRevisionId`; with one, the policy must be
/// there at that revision. Answers the revision id of the policy it deleted.
pub async fn delete_resource_policy(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let expected = expected_revision(input, &mut v)?;
    let target = target(ctx, input, &mut v).await?;
    v.into_result()?;
    let Some((arn, meta, stream)) = target else {
        return Err(ApiError::validation("Invalid ResourceArn"));
    };
    let current = meta.policy_of(stream);
    if let Some(e) = expected
        && current.is_none_or(|c| c.revision_id != e)
    {
        return Err(match current {
            None => not_found(&arn),
            Some(c) => revision_mismatch(&arn, e, Some(&c.revision_id)),
        });
    }
    let Some(current) = current else {
        return Ok(json!({}));
    };
    let revision_id = current.revision_id.clone();
    store(ctx, &meta, stream, None).await?;
    Ok(json!({ "RevisionId": revision_id }))
}
