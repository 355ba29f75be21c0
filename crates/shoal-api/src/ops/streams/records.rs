//! `GetShardIterator` (a position in a shard) and `GetRecords` (the records from a position,
//! and the iterator to continue with).

use serde_json::{Map, Value, json};
use shoal_catalog::{ChangeRecord, RecordsFrom, ShardId, StreamDef, parse_sequence_number};
use shoal_types::json::item_to_json;

use super::iterator::{ShardIterator, now_ms};
use super::{
    check_limit, check_shard_id, check_stream_arn, read_error, shard_not_found, stream_of,
};
use crate::error::{ApiError, Violations};
use crate::input::Input;
use crate::ops::Ctx;
use crate::ops::unsupported::not_supported;
use crate::ops::validate::enum_value;

/// Records one `GetRecords` returns when the request gives no `Limit` (and at most).
const MAX_RECORDS: i64 = 1000;

/// `GetShardIterator`: an iterator at `TRIM_HORIZON` (the oldest record kept), `LATEST` (after
/// the newest record: only later changes), `AT_SEQUENCE_NUMBER` or `AFTER_SEQUENCE_NUMBER` of
/// shard `ShardId` of stream `StreamArn`. `AT_TIMESTAMP` is not supported.
///
/// # Errors
/// `ValidationException` for model constraints, a `SequenceNumber` missing for (or given with)
/// the iterator type, or one that is no sequence number; `ResourceNotFoundException` for a
/// stream or shard that does not exist; `TrimmedDataAccessException` for a sequence number
/// whose record was trimmed.
pub async fn get_shard_iterator(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let arn = input.str("StreamArn")?;
    match arn {
        Some(a) => check_stream_arn(a, "streamArn", &mut v),
        None => v.missing("streamArn"),
    }
    let shard = input.str("ShardId")?;
    match shard {
        Some(s) => check_shard_id(s, "shardId", &mut v),
        None => v.missing("shardId"),
    }
    let given_kind = input.str("ShardIteratorType")?;
    if given_kind.is_none() {
        v.missing("shardIteratorType");
    }
    let kind = enum_value(
        given_kind,
        "shardIteratorType",
        &[
            "TRIM_HORIZON",
            "LATEST",
            "AT_SEQUENCE_NUMBER",
            "AFTER_SEQUENCE_NUMBER",
            "AT_TIMESTAMP",
        ],
        &mut v,
    );
    let seq = input.str("SequenceNumber")?;
    if let Some(s) = seq {
        if s.len() < 21 {
            v.constraint(
                s,
                "sequenceNumber",
                "Member must have length greater than or equal to 21",
            );
        } else if s.len() > 40 {
            v.constraint(
                s,
                "sequenceNumber",
                "Member must have length less than or equal to 40",
            );
        }
    }
    v.into_result()?;
    let (arn, shard, kind) = (
        arn.unwrap_or_default(),
        shard.unwrap_or_default(),
        kind.unwrap_or_default(),
    );
    let from = match (kind, seq) {
        ("AT_TIMESTAMP", _) => return Err(not_supported("ShardIteratorType AT_TIMESTAMP")),
        ("TRIM_HORIZON", None) => RecordsFrom::TrimHorizon,
        ("LATEST", None) => RecordsFrom::Latest,
        ("TRIM_HORIZON" | "LATEST", Some(_)) => {
            return Err(ApiError::validation(format!(
                "Invalid SequenceNumber: SequenceNumber must not be specified when \
                 ShardIteratorType is {kind}"
            )));
        }
        (_, None) => {
            return Err(ApiError::validation(format!(
                "Invalid SequenceNumber: SequenceNumber must be specified when \
                 ShardIteratorType is {kind}"
            )));
        }
        (_, Some(s)) => {
            let n = parse_sequence_number(s)
                .ok_or_else(|| ApiError::validation(format!("Invalid SequenceNumber: {s}")))?;
            if kind == "AT_SEQUENCE_NUMBER" {
                RecordsFrom::At(n)
            } else {
                RecordsFrom::After(n)
            }
        }
    };

    let (meta, stream) = stream_of(ctx, arn).await?;
    let shard = ShardId::parse(shard).ok_or_else(shard_not_found)?;
    // One read checks the shard and the position, and tells where LATEST is now.
    let page = ctx
        .backend
        .stream_records(&meta, &stream, shard, from, 1)
        .await
        .map_err(|e| read_error(e, arn))?;
    let from = match (from, page.next) {
        (RecordsFrom::Latest, Some(last)) => RecordsFrom::After(last),
        (from, _) => from,
    };
    let it = ShardIterator {
        stream_arn: arn.to_string(),
        shard,
        from,
        issued_ms: now_ms(),
    };
    Ok(json!({ "ShardIterator": it.encode() }))
}

/// `GetRecords`: up to `Limit` (1 to 1,000, default 1,000) records from the iterator's
/// position, and `NextShardIterator` after them (absent once a closed shard is read to its
/// end).
///
/// # Errors
/// `ValidationException` for model constraints or an iterator Shoal did not issue;
/// `ExpiredIteratorException` for one older than 15 minutes; `ResourceNotFoundException` for a
/// stream or shard gone; `TrimmedDataAccessException` when the position was trimmed.
pub async fn get_records(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let raw = input.str("ShardIterator")?;
    match raw {
        None => v.missing("shardIterator"),
        Some(s) if s.is_empty() => v.constraint(
            s,
            "shardIterator",
            "Member must have length greater than or equal to 1",
        ),
        Some(s) if s.len() > 2048 => v.constraint(
            s,
            "shardIterator",
            "Member must have length less than or equal to 2048",
        ),
        Some(_) => {}
    }
    let limit = input.i64("Limit")?;
    check_limit(limit, MAX_RECORDS, &mut v);
    v.into_result()?;
    let it = ShardIterator::parse(raw.unwrap_or_default(), now_ms())?;
    let limit = limit.unwrap_or(MAX_RECORDS) as usize;

    let (meta, stream) = stream_of(ctx, &it.stream_arn).await?;
    let page = ctx
        .backend
        .stream_records(&meta, &stream, it.shard, it.from, limit)
        .await
        .map_err(|e| read_error(e, &it.stream_arn))?;
    let region = ctx.backend.region();
    let records: Vec<Value> = page
        .records
        .iter()
        .map(|r| record_json(r, &stream, it.shard, region))
        .collect();
    let mut out = Map::new();
    out.insert("Records".into(), records.into());
    if let Some(next) = page.next {
        let next = ShardIterator {
            from: RecordsFrom::After(next),
            issued_ms: now_ms(),
            ..it
        };
        out.insert("NextShardIterator".into(), next.encode().into());
    }
    Ok(Value::Object(out))
}

/// One `Record` of `GetRecords`.
fn record_json(r: &ChangeRecord, stream: &StreamDef, shard: ShardId, region: &str) -> Value {
    let mut d = Map::new();
    // Whole seconds, as DynamoDB reports it.
    d.insert(
        "ApproximateCreationDateTime".into(),
        json!(r.created_ms / 1000),
    );
    d.insert("Keys".into(), item_to_json(&r.keys));
    if let Some(new) = &r.new {
        d.insert("NewImage".into(), item_to_json(new));
    }
    if let Some(old) = &r.old {
        d.insert("OldImage".into(), item_to_json(old));
    }
    d.insert(
        "SequenceNumber".into(),
        shoal_catalog::sequence_number(r.seq).into(),
    );
    d.insert("SizeBytes".into(), json!(r.size_bytes));
    d.insert("StreamViewType".into(), stream.view_type.as_str().into());
    let mut record = Map::new();
    // Unique within the stream: the shard's partition and the record's sequence number.
    record.insert(
        "eventID".into(),
        format!("{:016x}{:016x}", shard.partition, r.seq).into(),
    );
    record.insert("eventName".into(), r.event.as_str().into());
    record.insert("eventVersion".into(), "1.1".into());
    record.insert("eventSource".into(), "aws:dynamodb".into());
    record.insert("awsRegion".into(), region.into());
    record.insert("dynamodb".into(), d.into());
    if r.by_service {
        record.insert(
            "userIdentity".into(),
            // The model's `Identity` members (Lambda's event format spells them in lower case).
            json!({"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}),
        );
    }
    Value::Object(record)
}
