//! `StreamSpecification` in CreateTable and UpdateTable, and the stream members of a
//! `TableDescription` (`StreamSpecification`, `LatestStreamArn`, `LatestStreamLabel`).
//!
//! Enabling a stream adds a new [`StreamDef`] to [`TableMeta::streams`] (a stream disabled and
//! enabled again is a new stream, with a new label and ARN); disabling one sets its
//! `disabled_at`. Disabled streams stay listed (and readable) for
//! [`STREAM_RETENTION_SECS`]; older ones are dropped whenever the list changes, except the
//! latest, which `DescribeTable` keeps naming.

use serde_json::{Map, Value, json};
use shoal_catalog::{STREAM_RETENTION_SECS, StreamDef, StreamViewType};

use crate::backend::TableMeta;
use crate::error::{ApiError, Violations};
use crate::input::{Input, nested};
use crate::ops::validate::enum_value;

/// The `StreamViewType` values, as the model lists them.
const VIEW_TYPES: &[&str] = &["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"];

/// A `StreamSpecification` as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    /// `StreamEnabled`.
    pub enabled: bool,
    /// `StreamViewType`, when given.
    pub view: Option<StreamViewType>,
}

/// Reads the request's `StreamSpecification`: model constraints (`StreamEnabled` required,
/// `StreamViewType` one of the four) go to `v`. `None` when absent or invalid.
///
/// # Errors
/// `SerializationException` for members of the wrong JSON type.
pub fn parse(input: &Input<'_>, v: &mut Violations) -> Result<Option<StreamSpec>, ApiError> {
    let Some(raw) = input.raw("StreamSpecification").filter(|r| !r.is_null()) else {
        return Ok(None);
    };
    let spec = nested(raw)?;
    let enabled = spec.bool("StreamEnabled")?;
    if enabled.is_none() {
        v.missing("streamSpecification.streamEnabled");
    }
    let given = spec.str("StreamViewType")?;
    let view = enum_value(given, "streamSpecification.streamViewType", VIEW_TYPES, v)
        .and_then(StreamViewType::parse);
    if given.is_some() && view.is_none() {
        return Ok(None);
    }
    Ok(enabled.map(|enabled| StreamSpec { enabled, view }))
}

/// The view type of an enabled stream.
///
/// # Errors
/// `ValidationException` when `StreamEnabled` is true without a `StreamViewType`.
fn required_view(spec: &StreamSpec) -> Result<StreamViewType, ApiError> {
    spec.view.ok_or_else(|| {
        ApiError::validation(
            "One or more parameter values were invalid: You must specify a StreamViewType when \
             enabling a stream",
        )
    })
}

/// A CreateTable `StreamSpecification` on the new table's `meta` (which has no stream yet):
/// `StreamEnabled: true` enables one, `false` leaves none.
///
/// # Errors
/// `ValidationException` when a stream is enabled without a `StreamViewType`.
pub fn create(meta: &mut TableMeta, spec: Option<StreamSpec>, now: f64) -> Result<(), ApiError> {
    match spec {
        Some(s) if s.enabled => {
            let view = required_view(&s)?;
            enable(meta, view, now);
            // Every partition starts its log with it: writes right after CreateTable have
            // records.
            meta.initial_stream = meta.streams.last().map(|s| (s.id, s.view_type));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// An UpdateTable `StreamSpecification` on `next` (the table's definition being changed).
///
/// # Errors
/// `ValidationException` when enabling a stream on a table with an enabled one, enabling
/// without a `StreamViewType`, or disabling on a table without an enabled stream.
pub fn update(next: &mut TableMeta, spec: StreamSpec, now: f64) -> Result<(), ApiError> {
    if spec.enabled {
        if let Some(current) = next.stream() {
            return Err(ApiError::validation(format!(
                "Table already has an enabled stream: {}",
                current.arn(&next.arn)
            )));
        }
        let view = required_view(&spec)?;
        enable(next, view, now);
    } else {
        let Some(current) = next.streams.last_mut().filter(|s| s.enabled()) else {
            return Err(ApiError::validation(format!(
                "Table does not have an enabled stream: {}",
                next.name
            )));
        };
        current.disabled_at = Some(now);
    }
    prune(next, now);
    Ok(())
}

/// Adds a new enabled stream to `meta`, created `now` (seconds): its id follows the last one,
/// its label is its creation time to the millisecond, a millisecond after the previous
/// stream's if that one is as recent (labels, hence ARNs, are unique within the table).
fn enable(meta: &mut TableMeta, view: StreamViewType, now: f64) {
    let now_ms = (now * 1000.0).round() as u64;
    let (id, created_ms) = match meta.streams.last() {
        Some(last) => {
            let last_ms = (last.created_at * 1000.0).round() as u64;
            (last.id + 1, now_ms.max(last_ms + 1))
        }
        None => (1, now_ms),
    };
    meta.streams.push(StreamDef {
        id,
        label: label(created_ms),
        view_type: view,
        created_at: created_ms as f64 / 1000.0,
        disabled_at: None,
        resource_policy: None,
    });
}

/// Drops the disabled streams whose records are all past retention (disabled more than
/// [`STREAM_RETENTION_SECS`] before `now`), keeping the latest stream always.
fn prune(meta: &mut TableMeta, now: f64) {
    let horizon = now - STREAM_RETENTION_SECS as f64;
    let last = meta.streams.last().map(|s| s.id);
    meta.streams
        .retain(|s| Some(s.id) == last || s.disabled_at.is_none_or(|at| at >= horizon));
}

/// Whether `stream` may still be read (`ListStreams` lists it): enabled, or disabled less
/// than [`STREAM_RETENTION_SECS`] before `now`.
pub fn kept(stream: &StreamDef, now: f64) -> bool {
    stream
        .disabled_at
        .is_none_or(|at| at >= now - STREAM_RETENTION_SECS as f64)
}

/// `StreamLabel`: `YYYY-MM-DDThh:mm:ss.sss` (UTC) of `ms` since the epoch.
pub fn label(ms: u64) -> String {
    let t = time::OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(ms as i64);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Adds the stream members of a `TableDescription` for `meta`, when it has or had a stream:
/// `StreamSpecification` (the latest stream's: `{StreamEnabled: false}` once disabled),
/// `LatestStreamArn` and `LatestStreamLabel`.
pub fn describe(meta: &TableMeta, t: &mut Map<String, Value>) {
    let Some(latest) = meta.streams.last() else {
        return;
    };
    let spec = if latest.enabled() {
        json!({"StreamEnabled": true, "StreamViewType": latest.view_type.as_str()})
    } else {
        json!({"StreamEnabled": false})
    };
    t.insert("StreamSpecification".into(), spec);
    t.insert("LatestStreamArn".into(), latest.arn(&meta.arn).into());
    t.insert("LatestStreamLabel".into(), latest.label.clone().into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_utc_to_the_millisecond() {
        assert_eq!(label(0), "1970-01-01T00:00:00.000");
        assert_eq!(label(1_431_379_293_291), "2015-05-11T21:21:33.291");
    }

    fn table() -> TableMeta {
        use shoal_types::ScalarType;
        use shoal_types::key::{KeyAttr, KeySchema};
        TableMeta {
            name: "t".into(),
            id: "1".into(),
            arn: "arn:aws:dynamodb:us-east-1:000000000000:table/t".into(),
            key_schema: KeySchema {
                hash: KeyAttr {
                    name: "pk".into(),
                    ty: ScalarType::S,
                },
                range: None,
            },
            attribute_definitions: vec![("pk".into(), ScalarType::S)],
            created_at: 0.0,
            status: crate::backend::TableStatus::Active,
            billing: crate::backend::Billing {
                mode: crate::backend::BillingMode::PayPerRequest,
                read_capacity_units: 0,
                write_capacity_units: 0,
                last_update_to_pay_per_request: None,
                last_increase: None,
                last_decrease: None,
                decreases_today: 0,
            },
            deletion_protection: false,
            table_class: None,
            tags: Vec::new(),
            version: 1,
            sse: None,
            indexes: Vec::new(),
            next_index_id: 1,
            index_throughput: Vec::new(),
            resource_policy: None,
            on_demand: Default::default(),
            warm: None,
            index_capacity: Vec::new(),
            time_to_live: None,
            streams: Vec::new(),
            initial_stream: None,
        }
    }

    #[test]
    fn enabling_twice_disabling_twice_and_re_enabling() {
        let mut t = table();
        let on = StreamSpec {
            enabled: true,
            view: Some(StreamViewType::NewImage),
        };
        let off = StreamSpec {
            enabled: false,
            view: None,
        };
        update(&mut t, on, 1000.0).unwrap();
        let first = t.stream().unwrap().clone();
        assert_eq!(first.id, 1);
        assert!(
            update(&mut t, on, 1001.0)
                .unwrap_err()
                .message
                .starts_with("Table already has an enabled stream: ")
        );
        update(&mut t, off, 1002.0).unwrap();
        assert!(t.stream().is_none());
        assert!(update(&mut t, off, 1003.0).is_err());
        // Re-enabled within the same millisecond: a later label all the same.
        update(&mut t, on, 1002.0).unwrap();
        let second = t.stream().unwrap().clone();
        assert_eq!(second.id, 2);
        assert!(second.label > first.label);
        assert_eq!(t.streams.len(), 2);
        // A day later the first is past retention and dropped at the next change.
        update(&mut t, off, 1002.0 + 2.0 * STREAM_RETENTION_SECS as f64).unwrap();
        assert_eq!(t.streams.len(), 1);
        assert_eq!(t.streams[0].id, 2);
        assert!(
            update(
                &mut t,
                StreamSpec {
                    enabled: true,
                    view: None
                },
                5e9
            )
            .is_err()
        );
    }
}
