//! `ListStreams` (the streams of the account's tables, or of one table) and `DescribeStream`
//! (one stream, its status and its shards).

use serde_json::{Map, Value, json};
use shoal_catalog::{ShardId, ShardInfo, sequence_number};

use super::{check_limit, check_shard_id, check_stream_arn, read_error, stream_of};
use crate::error::{ApiError, ErrorKind, Violations};
use crate::input::{Input, nested};
use crate::ops::Ctx;
use crate::ops::table::now_seconds;
use crate::ops::validate::{backend_error, enum_value, table_name};

/// Streams (and shards) one page lists when the request gives no `Limit`.
const DEFAULT_LIMIT: i64 = 100;

/// `ListStreams`: the streams still readable of every table (or of `TableName`), ordered by
/// ARN, `Limit` (1 to 100, default 100) per page, `LastEvaluatedStreamArn` when more remain.
///
/// # Errors
/// `ValidationException` for model constraints; `ResourceNotFoundException` for a `TableName`
/// that does not exist.
pub async fn list_streams(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let table = match input.str("TableName")? {
        Some(t) => table_name(Some(t), "tableName", &mut v),
        None => None,
    };
    let limit = input.i64("Limit")?;
    check_limit(limit, 100, &mut v);
    let start = input.str("ExclusiveStartStreamArn")?;
    if let Some(s) = start {
        check_stream_arn(s, "exclusiveStartStreamArn", &mut v);
    }
    v.into_result()?;
    let limit = limit.unwrap_or(DEFAULT_LIMIT) as usize;

    let names = match table {
        Some(name) => vec![name.to_string()],
        None => ctx.backend.list_tables().await.map_err(backend_error)?,
    };
    let now = now_seconds();
    let mut streams = Vec::new();
    for name in &names {
        let meta = match ctx.backend.table(name).await {
            Ok(meta) => meta,
            Err(crate::backend::DataError::TableNotFound(_)) if table.is_some() => {
                return Err(ApiError::new(
                    ErrorKind::ResourceNotFound,
                    format!("Requested resource not found: Table: {name} not found"),
                ));
            }
            // Deleted since it was listed.
            Err(crate::backend::DataError::TableNotFound(_)) => continue,
            Err(e) => return Err(backend_error(e)),
        };
        for s in meta.streams.iter().filter(|s| super::spec::kept(s, now)) {
            streams.push((s.arn(&meta.arn), meta.name.clone(), s.label.clone()));
        }
    }
    streams.sort();
    let rest: Vec<_> = streams
        .into_iter()
        .filter(|(arn, _, _)| start.is_none_or(|s| arn.as_str() > s))
        .collect();
    let page: Vec<Value> = rest
        .iter()
        .take(limit)
        .map(|(arn, table, label)| json!({"StreamArn": arn, "TableName": table, "StreamLabel": label}))
        .collect();
    let mut out = Map::new();
    out.insert("Streams".into(), page.into());
    if rest.len() > limit
        && let Some((arn, _, _)) = rest.get(limit - 1)
    {
        out.insert("LastEvaluatedStreamArn".into(), arn.clone().into());
    }
    Ok(Value::Object(out))
}

/// `DescribeStream`: the stream's description with its shards (parents before children),
/// `Limit` (1 to 100, default 100) shards per page after `ExclusiveStartShardId`, only the
/// children of `ShardFilter.ShardId` with a `CHILD_SHARDS` filter.
///
/// # Errors
/// `ValidationException` for model constraints; `ResourceNotFoundException` for a stream that
/// does not exist.
pub async fn describe_stream(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let arn = input.str("StreamArn")?;
    match arn {
        Some(a) => check_stream_arn(a, "streamArn", &mut v),
        None => v.missing("streamArn"),
    }
    let limit = input.i64("Limit")?;
    check_limit(limit, 100, &mut v);
    let start = input.str("ExclusiveStartShardId")?;
    if let Some(s) = start {
        check_shard_id(s, "exclusiveStartShardId", &mut v);
    }
    let filter = match input.raw("ShardFilter").filter(|f| !f.is_null()) {
        Some(raw) => {
            let f = nested(raw)?;
            let kind = enum_value(
                f.str("Type")?,
                "shardFilter.type",
                &["CHILD_SHARDS"],
                &mut v,
            );
            let shard = f.str("ShardId")?;
            if let Some(s) = shard {
                check_shard_id(s, "shardFilter.shardId", &mut v);
            }
            Some((kind, shard))
        }
        None => None,
    };
    v.into_result()?;
    let arn = arn.unwrap_or_default();
    let limit = limit.unwrap_or(DEFAULT_LIMIT) as usize;
    let parent = match filter {
        None => None,
        Some((Some(_), Some(shard))) => Some(shard),
        Some((None, _)) => {
            return Err(ApiError::validation(
                "ShardFilter Type must be specified: CHILD_SHARDS",
            ));
        }
        Some((Some(_), None)) => {
            return Err(ApiError::validation(
                "ShardFilter ShardId must be specified when the ShardFilter Type is CHILD_SHARDS",
            ));
        }
    };

    let (meta, stream) = stream_of(ctx, arn).await?;
    let report = ctx
        .backend
        .stream_shards(&meta, &stream)
        .await
        .map_err(|e| read_error(e, arn))?;
    let status = report.status(&stream);
    let shards: Vec<ShardInfo> = match parent {
        Some(p) => {
            let p = ShardId::parse(p);
            report
                .shards
                .into_iter()
                .filter(|s| p.is_some() && s.parent == p)
                .collect()
        }
        None => report.shards,
    };
    let rest: &[ShardInfo] = match start {
        None => &shards,
        Some(start) => match shards.iter().position(|s| s.id.to_string() == start) {
            Some(i) => shards.get(i + 1..).unwrap_or_default(),
            // A shard no longer listed: those after it in id order.
            None => {
                let first = shards
                    .iter()
                    .position(|s| s.id.to_string().as_str() > start)
                    .unwrap_or(shards.len());
                shards.get(first..).unwrap_or_default()
            }
        },
    };
    let page: Vec<Value> = rest.iter().take(limit).map(shard_json).collect();

    let mut d = Map::new();
    d.insert("StreamArn".into(), arn.into());
    d.insert("StreamLabel".into(), stream.label.clone().into());
    // ENABLING / DISABLING until every partition applied the change in its log.
    d.insert("StreamStatus".into(), status.into());
    d.insert("StreamViewType".into(), stream.view_type.as_str().into());
    d.insert("CreationRequestDateTime".into(), json!(stream.created_at));
    d.insert("TableName".into(), meta.name.clone().into());
    d.insert(
        "KeySchema".into(),
        crate::ops::index::key_schema_json(&meta.key_schema),
    );
    d.insert("Shards".into(), page.into());
    if rest.len() > limit
        && let Some(last) = rest.get(limit - 1)
    {
        d.insert("LastEvaluatedShardId".into(), last.id.to_string().into());
    }
    Ok(json!({ "StreamDescription": d }))
}

/// A `Shard` of a `StreamDescription`.
fn shard_json(s: &ShardInfo) -> Value {
    let mut range = Map::new();
    range.insert(
        "StartingSequenceNumber".into(),
        sequence_number(s.starting_seq).into(),
    );
    if let Some(end) = s.ending_seq {
        range.insert("EndingSequenceNumber".into(), sequence_number(end).into());
    }
    let mut shard = Map::new();
    shard.insert("ShardId".into(), s.id.to_string().into());
    if let Some(p) = s.parent {
        shard.insert("ParentShardId".into(), p.to_string().into());
    }
    shard.insert("SequenceNumberRange".into(), range.into());
    Value::Object(shard)
}
