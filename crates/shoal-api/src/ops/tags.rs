//! TagResource, UntagResource, ListTagsOfResource.

use serde_json::{Value, json};

use super::Ctx;
use super::table::{MAX_TAGS, parse_tags};
use super::validate::backend_error;
use crate::backend::{DataError, TableMeta};
use crate::error::{ApiError, ErrorKind, Violations};
use crate::input::Input;

/// The `ResourceArn` member, present and 1 to 1283 characters long (else the violation is
/// recorded in `v` and `None` returned).
pub(super) fn resource_arn<'a>(
    input: &Input<'a>,
    v: &mut Violations,
) -> Result<Option<&'a str>, ApiError> {
    let Some(arn) = input.str("ResourceArn")? else {
        v.missing("resourceArn");
        return Ok(None);
    };
    if arn.is_empty() || arn.len() > 1283 {
        v.constraint(
            arn,
            "resourceArn",
            if arn.is_empty() {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 1283"
            },
        );
        return Ok(None);
    }
    Ok(Some(arn))
}

/// Resolves `ResourceArn` to the table it names: it must be a table ARN of this region and account.
async fn table_by_arn(
    ctx: &Ctx<'_>,
    input: &Input<'_>,
    v: &mut Violations,
) -> Result<Option<(String, std::sync::Arc<TableMeta>)>, ApiError> {
    let Some(arn) = resource_arn(input, v)? else {
        return Ok(None);
    };
    let prefix = format!(
        "arn:aws:dynamodb:{}:{}:table/",
        ctx.backend.region(),
        ctx.backend.account_id()
    );
    let Some(name) = arn
        .strip_prefix(&prefix)
        .filter(|n| !n.is_empty() && !n.contains('/'))
    else {
        return Err(ApiError::validation(format!(
            "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
        )));
    };
    match ctx.backend.table(name).await {
        Ok(meta) => Ok(Some((arn.to_string(), meta))),
        Err(DataError::TableNotFound(_)) => Err(ApiError::new(
            ErrorKind::ResourceNotFound,
            format!("Requested resource not found: ResourcArn: {arn} not found"),
        )),
        Err(e) => Err(backend_error(e)),
    }
}

/// Applies a change to a table's tags with compare-and-swap on its version.
async fn change_tags(
    ctx: &Ctx<'_>,
    meta: &TableMeta,
    change: impl Fn(&mut Vec<(String, String)>),
) -> Result<(), ApiError> {
    let mut next = meta.clone();
    change(&mut next.tags);
    if next.tags.len() > MAX_TAGS {
        return Err(ApiError::new(
            ErrorKind::LimitExceeded,
            format!("The number of tags exceeds the limit of {MAX_TAGS}"),
        ));
    }
    next.version = meta.version + 1;
    ctx.backend
        .replace_table(meta.version, next)
        .await
        .map_err(backend_error)?;
    Ok(())
}

/// `TagResource`.
pub async fn tag_resource(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let tags = parse_tags(input.array("Tags")?, "tags", &mut v)?;
    if !input.has("Tags") {
        v.missing("tags");
    }
    let target = table_by_arn(ctx, input, &mut v).await?;
    v.into_result()?;
    let Some((_, meta)) = target else {
        return Err(ApiError::validation("Invalid ResourceArn"));
    };
    change_tags(ctx, &meta, |existing| {
        for (k, val) in &tags {
            match existing.iter_mut().find(|(ek, _)| ek == k) {
                Some(slot) => slot.1 = val.clone(),
                None => existing.push((k.clone(), val.clone())),
            }
        }
    })
    .await?;
    Ok(json!({}))
}

/// `UntagResource`.
pub async fn untag_resource(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let mut keys: Vec<String> = Vec::new();
    match input.array("TagKeys")? {
        None => v.missing("tagKeys"),
        Some(list) => {
            for (i, el) in list.iter().enumerate() {
                match el.as_str() {
                    Some(k) if !k.is_empty() && k.chars().count() <= 128 => {
                        keys.push(k.to_string())
                    }
                    Some(k) => v.constraint(
                        k,
                        &format!("tagKeys.{}.member", i + 1),
                        "Member must have length between 1 and 128",
                    ),
                    None => return Err(crate::input::type_mismatch(el, "String")),
                }
            }
        }
    }
    let target = table_by_arn(ctx, input, &mut v).await?;
    v.into_result()?;
    let Some((_, meta)) = target else {
        return Err(ApiError::validation("Invalid ResourceArn"));
    };
    change_tags(ctx, &meta, |existing| {
        existing.retain(|(k, _)| !keys.contains(k))
    })
    .await?;
    Ok(json!({}))
}

/// `ListTagsOfResource` (all tags fit in one page: at most 50).
pub async fn list_tags_of_resource(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let target = table_by_arn(ctx, input, &mut v).await?;
    input.str("NextToken")?;
    v.into_result()?;
    let Some((_, meta)) = target else {
        return Err(ApiError::validation("Invalid ResourceArn"));
    };
    let tags: Vec<Value> = meta
        .tags
        .iter()
        .map(|(k, val)| json!({"Key": k, "Value": val}))
        .collect();
    Ok(json!({ "Tags": tags }))
}
