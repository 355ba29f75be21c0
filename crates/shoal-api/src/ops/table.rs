//! Table operations: CreateTable, DescribeTable, ListTables, DeleteTable, UpdateTable.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use shoal_catalog::{OnDemandThroughput, WarmThroughput};
use shoal_types::ScalarType;
use shoal_types::key::{KeyAttr, KeySchema};

use super::Ctx;
use super::index;
use super::validate::{backend_error, enum_value, table_name};
use crate::backend::{
    Billing, BillingMode, DataError, KmsKeyError, TableMeta, TableSse, TableStats, TableStatus,
};
use crate::error::{ApiError, ErrorKind, Violations};
use crate::input::{Input, nested, opt_i64, opt_str};

/// At most this many tags on one resource (DynamoDB's quota).
pub const MAX_TAGS: usize = 50;

/// Now, in seconds since the epoch with millisecond precision.
pub fn now_seconds() -> f64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // Millisecond precision, as DynamoDB reports.
    (d.as_millis() as f64) / 1000.0
}

/// The `TableDescription` JSON of a table; `index_stats` are the item counts and sizes of its
/// secondary indexes by [`shoal_types::index::IndexDef::id`] (see [`index_stats`]).
pub fn describe_json(
    meta: &TableMeta,
    stats: TableStats,
    index_stats: &[(u32, TableStats)],
    status: TableStatus,
) -> Value {
    let mut t = Map::new();
    let defs: Vec<Value> = meta
        .attribute_definitions
        .iter()
        .map(|(n, ty)| json!({"AttributeName": n, "AttributeType": ty.as_str()}))
        .collect();
    t.insert("AttributeDefinitions".into(), defs.into());
    t.insert("TableName".into(), meta.name.clone().into());
    t.insert("KeySchema".into(), index::key_schema_json(&meta.key_schema));
    t.insert("TableStatus".into(), status.as_str().into());
    t.insert("CreationDateTime".into(), json!(meta.created_at));
    let mut pt = Map::new();
    if let Some(ts) = meta.billing.last_increase {
        pt.insert("LastIncreaseDateTime".into(), json!(ts));
    }
    if let Some(ts) = meta.billing.last_decrease {
        pt.insert("LastDecreaseDateTime".into(), json!(ts));
    }
    pt.insert(
        "NumberOfDecreasesToday".into(),
        json!(meta.billing.decreases_today),
    );
    pt.insert(
        "ReadCapacityUnits".into(),
        json!(meta.billing.read_capacity_units),
    );
    pt.insert(
        "WriteCapacityUnits".into(),
        json!(meta.billing.write_capacity_units),
    );
    t.insert("ProvisionedThroughput".into(), pt.into());
    t.insert("TableSizeBytes".into(), json!(stats.size_bytes));
    t.insert("ItemCount".into(), json!(stats.item_count));
    t.insert("TableArn".into(), meta.arn.clone().into());
    t.insert("TableId".into(), meta.id.clone().into());
    index::describe_indexes(&mut t, meta, index_stats, status);
    super::streams::spec::describe(meta, &mut t);
    let mut bms = Map::new();
    bms.insert("BillingMode".into(), meta.billing.mode.as_str().into());
    if let Some(ts) = meta.billing.last_update_to_pay_per_request {
        bms.insert("LastUpdateToPayPerRequestDateTime".into(), json!(ts));
    }
    t.insert("BillingModeSummary".into(), bms.into());
    // The maximums apply, and are shown, only on-demand (a PROVISIONED table keeps them for when
    // it switches back).
    if meta.billing.mode == BillingMode::PayPerRequest {
        t.insert("OnDemandThroughput".into(), on_demand_json(&meta.on_demand));
    }
    t.insert(
        "WarmThroughput".into(),
        warm_json(table_warm(meta), status.as_str()),
    );
    if let Some(class) = &meta.table_class {
        t.insert("TableClassSummary".into(), json!({"TableClass": class}));
    }
    t.insert(
        "DeletionProtectionEnabled".into(),
        meta.deletion_protection.into(),
    );
    // Only tables with a KMS key have an SSEDescription; the default (AWS owned key) has none.
    if let Some(sse) = &meta.sse {
        t.insert(
            "SSEDescription".into(),
            json!({
                "Status": "ENABLED",
                "SSEType": "KMS",
                "KMSMasterKeyArn": sse.kms_master_key_arn,
            }),
        );
    }
    Value::Object(t)
}

/// Item count and size of each secondary index of the table. An index whose stats cannot be read
/// (being created or dropped, or the table just deleted) counts as empty.
pub async fn index_stats(ctx: &Ctx<'_>, meta: &TableMeta) -> Vec<(u32, TableStats)> {
    let mut out = Vec::with_capacity(meta.indexes.len());
    for def in &meta.indexes {
        let stats = match ctx.backend.index_stats(&meta.name, def.id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(index = def.id, cause = %e, "index stats unavailable");
                TableStats::default()
            }
        };
        out.push((def.id, stats));
    }
    out
}

/// An `SSESpecification` after its model constraints were checked.
struct SseInput<'a> {
    enabled: Option<bool>,
    sse_type: Option<&'a str>,
    key_id: Option<&'a str>,
}

/// Reads `SSESpecification` (model constraints go to `v`).
fn sse_specification<'a>(
    input: &Input<'a>,
    v: &mut Violations,
) -> Result<Option<SseInput<'a>>, ApiError> {
    let Some(raw) = input.raw("SSESpecification") else {
        return Ok(None);
    };
    let spec = nested(raw)?;
    let enabled = spec.bool("Enabled")?;
    let raw_type = spec.str("SSEType")?;
    let sse_type = enum_value(raw_type, "sSESpecification.sSEType", &["AES256", "KMS"], v);
    let key_id = spec.str("KMSMasterKeyId")?;
    Ok(Some(SseInput {
        enabled,
        sse_type,
        key_id,
    }))
}

/// Checks an `SSESpecification`'s semantics and resolves its KMS key: `None` for the default encryption
/// (Enabled false or absent: DynamoDB's AWS owned key), else the table's KMS key. `Enabled` true without a
/// `KMSMasterKeyId` is DynamoDB's AWS managed key `alias/aws/dynamodb` (the backend decides what stands for
/// it). `SSEType` or `KMSMasterKeyId` without `Enabled` imply it.
async fn resolve_sse(ctx: &Ctx<'_>, spec: &SseInput<'_>) -> Result<Option<TableSse>, ApiError> {
    if spec.sse_type == Some("AES256") {
        return Err(ApiError::validation(
            "One or more parameter values were invalid: Unsupported SSEType: AES256. The only supported SSEType is KMS",
        ));
    }
    let wants_kms = spec.sse_type.is_some() || spec.key_id.is_some();
    match spec.enabled {
        Some(false) if wants_kms => {
            return Err(ApiError::validation(
                "One or more parameter values were invalid: SSEType and KMSMasterKeyId can only be specified when SSESpecification.Enabled is true",
            ));
        }
        Some(false) => return Ok(None),
        None if !wants_kms => return Ok(None),
        _ => {}
    }
    if spec.key_id.is_some_and(|k| k.trim().is_empty()) {
        return Err(ApiError::validation(
            "One or more parameter values were invalid: KMSMasterKeyId must not be empty",
        ));
    }
    match ctx.backend.resolve_kms_key(spec.key_id).await {
        Ok(arn) => Ok(Some(TableSse {
            kms_master_key_arn: arn,
        })),
        Err(KmsKeyError::Unusable(message)) => Err(ApiError::validation(message)),
        Err(KmsKeyError::Data(e)) => Err(backend_error(e)),
    }
}

/// A `ProvisionedThroughput` after its model constraints were checked.
pub struct ThroughputInput {
    pub read: Option<i64>,
    pub write: Option<i64>,
}

fn provisioned_throughput(
    input: &Input<'_>,
    v: &mut Violations,
) -> Result<Option<ThroughputInput>, ApiError> {
    match input.object("ProvisionedThroughput")? {
        Some(obj) => Ok(Some(throughput_from(obj, "provisionedThroughput", v)?)),
        None => Ok(None),
    }
}

/// Reads a `ProvisionedThroughput` object; `field` is its model path.
pub fn throughput_from(
    obj: &Map<String, Value>,
    field: &str,
    v: &mut Violations,
) -> Result<ThroughputInput, ApiError> {
    let read = opt_i64(obj.get("ReadCapacityUnits"))?;
    let write = opt_i64(obj.get("WriteCapacityUnits"))?;
    for (val, member) in [(read, "readCapacityUnits"), (write, "writeCapacityUnits")] {
        let f = format!("{field}.{member}");
        match val {
            None => v.missing(&f),
            Some(n) if n < 1 => v.constraint(
                &n.to_string(),
                &f,
                "Member must have value greater than or equal to 1",
            ),
            Some(_) => {}
        }
    }
    Ok(ThroughputInput { read, write })
}

/// DynamoDB's warm throughput of a new table or global index, in read and write units per
/// second: a table created on-demand (or switched to it) instantly sustains at least 12,000
/// reads and 4,000 writes per second (developer guide, "Initial throughput for on-demand
/// capacity mode").
pub const DEFAULT_WARM: WarmThroughput = WarmThroughput {
    read_units_per_second: 12_000,
    write_units_per_second: 4_000,
};

/// An `OnDemandThroughput` of a request (of the table or of a global index) as given.
pub struct OnDemandInput {
    pub read: Option<i64>,
    pub write: Option<i64>,
    /// Its model path (`onDemandThroughput`, `globalSecondaryIndexes.1.member.onDemandThroughput`).
    pub field: String,
}

impl OnDemandInput {
    /// Reads the member `raw` (absent: `None`); `field` is its model path.
    ///
    /// # Errors
    /// `SerializationException` for a member of the wrong JSON type.
    pub fn parse(raw: Option<&Value>, field: &str) -> Result<Option<OnDemandInput>, ApiError> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let spec = nested(raw)?;
        Ok(Some(OnDemandInput {
            read: spec.i64("MaxReadRequestUnits")?,
            write: spec.i64("MaxWriteRequestUnits")?,
            field: field.to_string(),
        }))
    }

    /// DynamoDB's rules: at least one of the two maximums; each `-1` (no maximum) or at least 1.
    ///
    /// # Errors
    /// `ValidationException` naming the member that breaks a rule.
    pub fn check(&self) -> Result<(), ApiError> {
        let field = &self.field;
        if self.read.is_none() && self.write.is_none() {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: at least one of MaxReadRequestUnits and MaxWriteRequestUnits must be specified in '{field}'"
            )));
        }
        for (value, member) in [
            (self.read, "MaxReadRequestUnits"),
            (self.write, "MaxWriteRequestUnits"),
        ] {
            if let Some(n) = value
                && n != -1
                && n < 1
            {
                return Err(ApiError::validation(format!(
                    "One or more parameter values were invalid: {member} in '{field}' must be greater than or equal to 1, or -1 to remove the maximum; got {n}"
                )));
            }
        }
        Ok(())
    }

    /// Whether it sets a maximum (a member other than `-1`).
    pub fn sets_maximum(&self) -> bool {
        [self.read, self.write]
            .into_iter()
            .flatten()
            .any(|n| n != -1)
    }

    /// `current` with the given maximums: `-1` removes one, a number sets it, an absent member
    /// keeps it. Call after [`OnDemandInput::check`].
    pub fn apply(&self, current: OnDemandThroughput) -> OnDemandThroughput {
        let merge = |given: Option<i64>, current: Option<u64>| match given {
            None => current,
            Some(n) => u64::try_from(n).ok().filter(|n| *n >= 1),
        };
        OnDemandThroughput {
            max_read_request_units: merge(self.read, current.max_read_request_units),
            max_write_request_units: merge(self.write, current.max_write_request_units),
        }
    }
}

/// The `OnDemandThroughput` of a description: each maximum, `-1` for none.
pub fn on_demand_json(o: &OnDemandThroughput) -> Value {
    let units = |n: Option<u64>| n.map_or(json!(-1), |n| json!(n));
    json!({
        "MaxReadRequestUnits": units(o.max_read_request_units),
        "MaxWriteRequestUnits": units(o.max_write_request_units),
    })
}

/// A `WarmThroughput` of a request (of the table or of a global index) as given.
pub struct WarmInput {
    pub read: Option<i64>,
    pub write: Option<i64>,
    /// Its model path (`warmThroughput`, `globalSecondaryIndexes.1.member.warmThroughput`).
    pub field: String,
}

impl WarmInput {
    /// Reads the member `raw` (absent: `None`); `field` is its model path.
    ///
    /// # Errors
    /// `SerializationException` for a member of the wrong JSON type.
    pub fn parse(raw: Option<&Value>, field: &str) -> Result<Option<WarmInput>, ApiError> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let spec = nested(raw)?;
        Ok(Some(WarmInput {
            read: spec.i64("ReadUnitsPerSecond")?,
            write: spec.i64("WriteUnitsPerSecond")?,
            field: field.to_string(),
        }))
    }

    /// At least one of the two members, each at least 1.
    ///
    /// # Errors
    /// `ValidationException` naming the member that breaks a rule.
    pub fn check(&self) -> Result<(), ApiError> {
        let field = &self.field;
        if self.read.is_none() && self.write.is_none() {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: at least one of ReadUnitsPerSecond and WriteUnitsPerSecond must be specified in '{field}'"
            )));
        }
        for (value, member) in [
            (self.read, "ReadUnitsPerSecond"),
            (self.write, "WriteUnitsPerSecond"),
        ] {
            if let Some(n) = value
                && n < 1
            {
                return Err(ApiError::validation(format!(
                    "One or more parameter values were invalid: {member} in '{field}' must be greater than or equal to 1; got {n}"
                )));
            }
        }
        Ok(())
    }

    /// The warm throughput asked for, from what the table or index (`of`: `table: <name>`,
    /// `index: <name>`) sustains now (`current`, see [`sustained_warm`]): an absent member keeps
    /// its current value. Warm throughput only grows (DynamoDB does not merge the partitions it
    /// warmed), so a value below the current one is refused. Call after [`WarmInput::check`].
    ///
    /// # Errors
    /// `ValidationException` for a value lower than the current one.
    pub fn apply(&self, current: WarmThroughput, of: &str) -> Result<WarmThroughput, ApiError> {
        let merge = |given: Option<i64>, current: u64, member: &str| match given {
            None => Ok(current),
            Some(n) => match u64::try_from(n) {
                Ok(n) if n >= current => Ok(n),
                _ => Err(ApiError::validation(format!(
                    "One or more parameter values were invalid: WarmThroughput can only be increased: the requested {member} ({n}) is lower than the current {current} of {of}"
                ))),
            },
        };
        Ok(WarmThroughput {
            read_units_per_second: merge(
                self.read,
                current.read_units_per_second,
                "ReadUnitsPerSecond",
            )?,
            write_units_per_second: merge(
                self.write,
                current.write_units_per_second,
                "WriteUnitsPerSecond",
            )?,
        })
    }
}

/// The warm throughput a table or global index sustains at once: what was asked for (DynamoDB's
/// [`DEFAULT_WARM`] when nothing was, never less), and at least its provisioned units (`read`,
/// `write`; 0 on-demand).
pub fn sustained_warm(asked: Option<WarmThroughput>, read: u64, write: u64) -> WarmThroughput {
    let asked = asked.unwrap_or(DEFAULT_WARM);
    WarmThroughput {
        read_units_per_second: asked
            .read_units_per_second
            .max(DEFAULT_WARM.read_units_per_second)
            .max(read),
        write_units_per_second: asked
            .write_units_per_second
            .max(DEFAULT_WARM.write_units_per_second)
            .max(write),
    }
}

/// The warm throughput of the table (see [`sustained_warm`]).
pub fn table_warm(meta: &TableMeta) -> WarmThroughput {
    sustained_warm(
        meta.warm,
        meta.billing.read_capacity_units,
        meta.billing.write_capacity_units,
    )
}

/// The `WarmThroughput` of a description with its `Status`.
pub fn warm_json(w: WarmThroughput, status: &str) -> Value {
    json!({
        "ReadUnitsPerSecond": w.read_units_per_second,
        "WriteUnitsPerSecond": w.write_units_per_second,
        "Status": status,
    })
}

/// Warm throughput never decreases: where `next` would sustain less than `current` does (its
/// provisioned throughput lowered, or switched to on-demand: the guide's "a table previously
/// provisioned with 10,000 WCU ... will be able to sustain at least 10,000 write units/sec"), it
/// keeps what `current` sustains, for the table and each of its global indexes.
fn keep_warm(current: &TableMeta, next: &mut TableMeta) {
    let (before, after) = (table_warm(current), table_warm(next));
    if after.read_units_per_second < before.read_units_per_second
        || after.write_units_per_second < before.write_units_per_second
    {
        next.warm = Some(WarmThroughput {
            read_units_per_second: before
                .read_units_per_second
                .max(after.read_units_per_second),
            write_units_per_second: before
                .write_units_per_second
                .max(after.write_units_per_second),
        });
    }
    index::keep_index_warm(current, next);
}

/// The rules of the table's `OnDemandThroughput` and `WarmThroughput` themselves (see
/// [`OnDemandInput::check`], [`WarmInput::check`]).
fn check_settings(
    on_demand: Option<&OnDemandInput>,
    warm: Option<&WarmInput>,
) -> Result<(), ApiError> {
    if let Some(o) = on_demand {
        o.check()?;
    }
    if let Some(w) = warm {
        w.check()?;
    }
    Ok(())
}

/// The table's on-demand maximums after `given` (checked) for a table in `mode`: maximums are
/// for on-demand tables ("based on your table's capacity mode", as the model says of an index's
/// `OnDemandThroughput`), so a PROVISIONED table is refused one; `-1` (no maximum) is accepted
/// in either mode.
fn table_on_demand(
    given: Option<&OnDemandInput>,
    mode: BillingMode,
    current: OnDemandThroughput,
) -> Result<OnDemandThroughput, ApiError> {
    let Some(given) = given else {
        return Ok(current);
    };
    if mode == BillingMode::Provisioned && given.sets_maximum() {
        return Err(ApiError::validation(
            "One or more parameter values were invalid: OnDemandThroughput with a maximum (other than -1) cannot be specified when BillingMode is PROVISIONED",
        ));
    }
    Ok(given.apply(current))
}

/// `CreateTable`.
pub async fn create_table(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let name = table_name(input.str("TableName")?, "tableName", &mut v);

    let defs = match attribute_definitions(input, &mut v)? {
        Some(defs) => defs,
        None => {
            v.missing("attributeDefinitions");
            Vec::new()
        }
    };
    let key_elems = key_schema_elems(input.array("KeySchema")?, "keySchema", 2, &mut v)?;

    let billing_mode = enum_value(
        input.str("BillingMode")?,
        "billingMode",
        &["PROVISIONED", "PAY_PER_REQUEST"],
        &mut v,
    );
    let throughput = provisioned_throughput(input, &mut v)?;
    let table_class = enum_value(
        input.str("TableClass")?,
        "tableClass",
        &["STANDARD", "STANDARD_INFREQUENT_ACCESS"],
        &mut v,
    );
    let deletion_protection = input.bool("DeletionProtectionEnabled")?.unwrap_or(false);
    let tags = parse_tags(input.array("Tags")?, "tags", &mut v)?;
    let sse_spec = sse_specification(input, &mut v)?;
    let resource_policy = input.str("ResourcePolicy")?;
    let stream_spec = super::streams::spec::parse(input, &mut v)?;
    let on_demand = OnDemandInput::parse(input.raw("OnDemandThroughput"), "onDemandThroughput")?;
    let warm = WarmInput::parse(input.raw("WarmThroughput"), "warmThroughput")?;
    let local = index::parse_index_list(
        input,
        "LocalSecondaryIndexes",
        "localSecondaryIndexes",
        false,
        &mut v,
    )?;
    let global = index::parse_index_list(
        input,
        "GlobalSecondaryIndexes",
        "globalSecondaryIndexes",
        true,
        &mut v,
    )?;
    v.into_result()?;
    super::unsupported::check(super::Operation::CreateTable, input)?;
    let name = name.ok_or_else(|| ApiError::validation("Invalid table name"))?;
    check_settings(on_demand.as_ref(), warm.as_ref())?;

    // Semantic checks, in DynamoDB's order.
    let has_indexes = local.is_some() || global.is_some();
    let key_schema = build_key_schema(&key_elems, &defs, !has_indexes)?;
    let billing = match billing_mode.unwrap_or("PROVISIONED") {
        "PAY_PER_REQUEST" => {
            if throughput.is_some() {
                return Err(ApiError::validation(
                    "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ));
            }
            Billing {
                mode: BillingMode::PayPerRequest,
                read_capacity_units: 0,
                write_capacity_units: 0,
                last_update_to_pay_per_request: Some(now_seconds()),
                last_increase: None,
                last_decrease: None,
                decreases_today: 0,
            }
        }
        _ => {
            let Some(ThroughputInput {
                read: Some(r),
                write: Some(w),
            }) = throughput
            else {
                return Err(ApiError::validation(
                    "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
                ));
            };
            check_throughput_limits(r, w)?;
            Billing {
                mode: BillingMode::Provisioned,
                read_capacity_units: r as u64,
                write_capacity_units: w as u64,
                last_update_to_pay_per_request: None,
                last_increase: None,
                last_decrease: None,
                decreases_today: 0,
            }
        }
    };

    let on_demand = table_on_demand(on_demand.as_ref(), billing.mode, Default::default())?;
    let warm = match &warm {
        Some(w) => Some(w.apply(
            sustained_warm(
                None,
                billing.read_capacity_units,
                billing.write_capacity_units,
            ),
            &format!("table: {name}"),
        )?),
        None => None,
    };
    let sse = match &sse_spec {
        Some(spec) => resolve_sse(ctx, spec).await?,
        None => None,
    };
    let resource_policy = match resource_policy {
        Some(document) => {
            super::policy::validate_document(document)?;
            Some(shoal_catalog::TablePolicy {
                document: document.to_string(),
                revision_id: super::policy::next_revision(None),
            })
        }
        None => None,
    };

    let id = uuid::Uuid::new_v4().to_string();
    let arn = table_arn(ctx, name);
    let mut meta = TableMeta {
        name: name.to_string(),
        id,
        arn,
        key_schema,
        attribute_definitions: defs
            .iter()
            .filter_map(|(n, t)| t.map(|t| (n.clone(), t)))
            .collect(),
        created_at: now_seconds(),
        status: TableStatus::Creating,
        billing,
        deletion_protection,
        table_class: table_class.map(str::to_string),
        tags,
        version: 1,
        sse,
        indexes: Vec::new(),
        next_index_id: 1,
        index_throughput: Vec::new(),
        on_demand,
        warm,
        index_capacity: Vec::new(),
        time_to_live: None,
        resource_policy,
        streams: Vec::new(),
        initial_stream: None,
    };
    let created_at = meta.created_at;
    super::streams::spec::create(&mut meta, stream_spec, created_at)?;
    if has_indexes {
        index::create_table_indexes(&mut meta, &defs, local.as_deref(), global.as_deref())?;
    }
    let stored = ctx.backend.create_table(meta).await.map_err(|e| match e {
        // A DeleteTable of the same name won the race before the table opened: the name is
        // in use by that deletion (DynamoDB refuses either side with ResourceInUse).
        DataError::TableNotFound(name) => ApiError::new(
            ErrorKind::ResourceInUse,
            format!(
                "Attempt to change a resource which is still in use: Table is being deleted: {name}"
            ),
        ),
        other => backend_error(other),
    })?;
    Ok(
        json!({ "TableDescription": describe_json(&stored, TableStats::default(), &[], TableStatus::Creating) }),
    )
}

/// `AttributeDefinitions` as given: name and type (`None` for an invalid type, already reported).
pub type AttrDefs = Vec<(String, Option<ScalarType>)>;

/// Reads `AttributeDefinitions` (model constraints go to `v`); `None` when absent.
fn attribute_definitions(
    input: &Input<'_>,
    v: &mut Violations,
) -> Result<Option<AttrDefs>, ApiError> {
    let Some(list) = input.array("AttributeDefinitions")? else {
        return Ok(None);
    };
    let mut defs = Vec::with_capacity(list.len());
    for (i, el) in list.iter().enumerate() {
        let el = nested(el)?;
        let an = el.str("AttributeName")?;
        let at = el.str("AttributeType")?;
        let field = format!("attributeDefinitions.{}.member", i + 1);
        if an.is_none() {
            v.missing(&format!("{field}.attributeName"));
        }
        match at {
            None => v.missing(&format!("{field}.attributeType")),
            Some(t) => {
                enum_value(
                    Some(t),
                    &format!("{field}.attributeType"),
                    &["B", "N", "S"],
                    v,
                );
            }
        }
        check_attr_name_len(an, &format!("{field}.attributeName"), v);
        if let Some(an) = an {
            defs.push((an.to_string(), at.and_then(ScalarType::parse)));
        }
    }
    Ok(Some(defs))
}

/// Reads a `KeySchema` list as `(AttributeName, KeyType)` pairs; `field` is its model path
/// (`keySchema`, `globalSecondaryIndexes.1.member.keySchema`); `max` elements at most (2 for a
/// table or LSI, 8 for a GSI).
pub fn key_schema_elems(
    list: Option<&Vec<Value>>,
    field: &str,
    max: usize,
    v: &mut Violations,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut key_elems: Vec<(String, String)> = Vec::new();
    let Some(list) = list else {
        v.missing(field);
        return Ok(key_elems);
    };
    if list.is_empty() {
        v.constraint(
            "[]",
            field,
            "Member must have length greater than or equal to 1",
        );
    }
    if list.len() > max {
        v.constraint(
            &format!("{} elements", list.len()),
            field,
            &format!("Member must have length less than or equal to {max}"),
        );
    }
    for (i, el) in list.iter().enumerate() {
        let el = nested(el)?;
        let an = el.str("AttributeName")?;
        let kt = el.str("KeyType")?;
        let f = format!("{field}.{}.member", i + 1);
        if an.is_none() {
            v.missing(&format!("{f}.attributeName"));
        }
        check_attr_name_len(an, &format!("{f}.attributeName"), v);
        match kt {
            None => v.missing(&format!("{f}.keyType")),
            Some(t) => {
                enum_value(Some(t), &format!("{f}.keyType"), &["HASH", "RANGE"], v);
            }
        }
        if let (Some(an), Some(kt)) = (an, kt) {
            key_elems.push((an.to_string(), kt.to_string()));
        }
    }
    Ok(key_elems)
}

fn check_attr_name_len(name: Option<&str>, field: &str, v: &mut Violations) {
    if let Some(n) = name {
        if n.is_empty() {
            v.constraint(
                n,
                field,
                "Member must have length greater than or equal to 1",
            );
        } else if n.len() > 255 {
            v.constraint(
                n,
                field,
                "Member must have length less than or equal to 255",
            );
        }
    }
}

/// The account limit on provisioned units (`LimitExceededException`).
pub fn check_throughput_limits(read: i64, write: i64) -> Result<(), ApiError> {
    const MAX: i64 = 40_000;
    if read > MAX || write > MAX {
        return Err(ApiError::new(
            ErrorKind::LimitExceeded,
            format!(
                "Subscriber limit exceeded: Provisioned throughput for the table exceeds the account limit of {MAX} units"
            ),
        ));
    }
    Ok(())
}

/// The table's key schema. `exact_definitions`: every attribute definition must be a key of the
/// table (a table without indexes; with indexes the index module checks that none is unused).
fn build_key_schema(
    elems: &[(String, String)],
    defs: &[(String, Option<ScalarType>)],
    exact_definitions: bool,
) -> Result<KeySchema, ApiError> {
    check_duplicate_definitions(defs)?;
    let schema = build_key_structure(elems, defs)?;
    if exact_definitions && defs.len() != elems.len() {
        return Err(ApiError::validation(
            "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ));
    }
    Ok(schema)
}

/// No attribute may be defined twice in `AttributeDefinitions`.
pub fn check_duplicate_definitions(defs: &[(String, Option<ScalarType>)]) -> Result<(), ApiError> {
    for (i, (n, _)) in defs.iter().enumerate() {
        if defs.iter().skip(i + 1).any(|(m, _)| m == n) {
            return Err(ApiError::validation(format!(
                "Invalid Request: Attribute name {n} was defined more than once in AttributeDefinitions"
            )));
        }
    }
    Ok(())
}

/// A key schema (of the table or of an index) from its elements: HASH first, an optional RANGE
/// of another name, every attribute defined.
pub fn build_key_structure(
    elems: &[(String, String)],
    defs: &[(String, Option<ScalarType>)],
) -> Result<KeySchema, ApiError> {
    let (hash, range) = match elems {
        [h] => (h, None),
        [h, r] => (h, Some(r)),
        _ => {
            return Err(ApiError::validation(
                "Invalid KeySchema: Some index key attribute have no definition",
            ));
        }
    };
    if hash.1 != "HASH" {
        return Err(ApiError::validation(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ));
    }
    if let Some(r) = range {
        if r.0 == hash.0 {
            return Err(ApiError::validation(
                "Invalid KeySchema: Both the Hash Key and the Range Key element in the KeySchema have the same name",
            ));
        }
        if r.1 != "RANGE" {
            return Err(ApiError::validation(
                "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
            ));
        }
    }
    let attrs = defined_key_attrs(elems, defs)?;
    let mut attrs = attrs.into_iter();
    let hash = attrs
        .next()
        .ok_or_else(|| ApiError::validation("Invalid KeySchema"))?;
    Ok(KeySchema {
        hash,
        range: attrs.next(),
    })
}

/// The key attributes named by `elems`, in order, with their types from the attribute
/// definitions.
///
/// # Errors
/// `Some index key attributes are not defined in AttributeDefinitions. Keys: [...],
/// AttributeDefinitions: [...]` naming the undefined ones.
pub fn defined_key_attrs(
    elems: &[(String, String)],
    defs: &[(String, Option<ScalarType>)],
) -> Result<Vec<KeyAttr>, ApiError> {
    let lookup = |name: &str| defs.iter().find(|(n, _)| n == name).and_then(|(_, t)| *t);
    let undefined: Vec<&str> = elems
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| lookup(n).is_none())
        .collect();
    if !undefined.is_empty() {
        let def_names: Vec<&str> = defs.iter().map(|(n, _)| n.as_str()).collect();
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
            undefined.join(", "),
            def_names.join(", ")
        )));
    }
    Ok(elems
        .iter()
        .filter_map(|(name, _)| {
            lookup(name).map(|ty| KeyAttr {
                name: name.clone(),
                ty,
            })
        })
        .collect())
}

/// Parses a `Tags` list: keys 1-128 and values 0-256 characters, at most 50, keys unique.
pub fn parse_tags(
    list: Option<&Vec<Value>>,
    field: &str,
    v: &mut Violations,
) -> Result<Vec<(String, String)>, ApiError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let mut tags: Vec<(String, String)> = Vec::with_capacity(list.len());
    for (i, el) in list.iter().enumerate() {
        let el = nested(el)?;
        let key = opt_str(el.raw("Key"))?;
        let value = opt_str(el.raw("Value"))?;
        let f = format!("{field}.{}.member", i + 1);
        match key {
            None => v.missing(&format!("{f}.key")),
            Some(k) if k.is_empty() || k.chars().count() > 128 => v.constraint(
                k,
                &format!("{f}.key"),
                if k.is_empty() {
                    "Member must have length greater than or equal to 1"
                } else {
                    "Member must have length less than or equal to 128"
                },
            ),
            _ => {}
        }
        match value {
            None => v.missing(&format!("{f}.value")),
            Some(val) if val.chars().count() > 256 => v.constraint(
                val,
                &format!("{f}.value"),
                "Member must have length less than or equal to 256",
            ),
            _ => {}
        }
        if let (Some(k), Some(val)) = (key, value) {
            match tags.iter_mut().find(|(existing, _)| existing == k) {
                Some(slot) => slot.1 = val.to_string(),
                None => tags.push((k.to_string(), val.to_string())),
            }
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ApiError::new(
            ErrorKind::LimitExceeded,
            format!("The number of tags exceeds the limit of {MAX_TAGS}"),
        ));
    }
    Ok(tags)
}

pub fn table_arn(ctx: &Ctx<'_>, name: &str) -> String {
    format!(
        "arn:aws:dynamodb:{}:{}:table/{}",
        ctx.backend.region(),
        ctx.backend.account_id(),
        name
    )
}

fn required_table_name<'a>(input: &Input<'a>) -> Result<&'a str, ApiError> {
    let mut v = Violations::default();
    let name = table_name(input.str("TableName")?, "tableName", &mut v);
    v.into_result()?;
    name.ok_or_else(|| ApiError::validation("Invalid table name"))
}

/// `DescribeTable`.
pub async fn describe_table(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let name = required_table_name(input)?;
    let meta = ctx
        .backend
        .table(name)
        .await
        .map_err(|e| not_found_table(e, name))?;
    let stats = ctx
        .backend
        .table_stats(name)
        .await
        .map_err(|e| not_found_table(e, name))?;
    let ix = index_stats(ctx, &meta).await;
    Ok(json!({ "Table": describe_json(&meta, stats, &ix, meta.status) }))
}

/// DescribeTable/DeleteTable/UpdateTable name the table in their not-found message.
fn not_found_table(e: crate::backend::DataError, name: &str) -> ApiError {
    match e {
        crate::backend::DataError::TableNotFound(_) => ApiError::new(
            ErrorKind::ResourceNotFound,
            format!("Requested resource not found: Table: {name} not found"),
        ),
        other => backend_error(other),
    }
}

/// `ListTables`.
pub async fn list_tables(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let limit = input.i64("Limit")?;
    if let Some(l) = limit {
        if l < 1 {
            v.constraint(
                &l.to_string(),
                "limit",
                "Member must have value greater than or equal to 1",
            );
        } else if l > 100 {
            v.constraint(
                &l.to_string(),
                "limit",
                "Member must have value less than or equal to 100",
            );
        }
    }
    let start = input.str("ExclusiveStartTableName")?;
    if let Some(s) = start {
        let mut sv = Violations::default();
        table_name(Some(s), "exclusiveStartTableName", &mut sv);
        sv.into_result()?;
    }
    v.into_result()?;
    let limit = limit.unwrap_or(100) as usize;
    let names = ctx.backend.list_tables().await.map_err(backend_error)?;
    let rest: Vec<&String> = match start {
        Some(s) => names.iter().filter(|n| n.as_str() > s).collect(),
        None => names.iter().collect(),
    };
    let page: Vec<&String> = rest.iter().take(limit).copied().collect();
    let mut out = Map::new();
    out.insert("TableNames".into(), json!(page));
    if rest.len() > limit
        && let Some(last) = page.last()
    {
        out.insert("LastEvaluatedTableName".into(), json!(last));
    }
    Ok(Value::Object(out))
}

/// `DeleteTable`.
pub async fn delete_table(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let name = required_table_name(input)?;
    let meta = ctx
        .backend
        .table(name)
        .await
        .map_err(|e| not_found_table(e, name))?;
    if meta.deletion_protection {
        return Err(ApiError::validation(format!(
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first. Table: {name}"
        )));
    }
    let ix = index_stats(ctx, &meta).await;
    let (meta, stats) = ctx
        .backend
        .delete_table(name)
        .await
        .map_err(|e| not_found_table(e, name))?;
    Ok(json!({ "TableDescription": deleted_json(&meta, stats, &ix) }))
}

/// The `TableDescription` DeleteTable answers: DynamoDB's shape (the API model's example) is
/// shorter than DescribeTable's: name, `DELETING`, the throughput without its history, size
/// and count, plus the table's identity (ARN, id, billing mode, SSE) and its secondary indexes
/// (the example's table has none). No key schema, attribute definitions or creation time.
fn deleted_json(meta: &TableMeta, stats: TableStats, index_stats: &[(u32, TableStats)]) -> Value {
    let mut t = Map::new();
    t.insert("TableName".into(), meta.name.clone().into());
    t.insert("TableStatus".into(), TableStatus::Deleting.as_str().into());
    t.insert(
        "ProvisionedThroughput".into(),
        json!({
            "NumberOfDecreasesToday": meta.billing.decreases_today,
            "ReadCapacityUnits": meta.billing.read_capacity_units,
            "WriteCapacityUnits": meta.billing.write_capacity_units,
        }),
    );
    t.insert("TableSizeBytes".into(), json!(stats.size_bytes));
    t.insert("ItemCount".into(), json!(stats.item_count));
    t.insert("TableArn".into(), meta.arn.clone().into());
    t.insert("TableId".into(), meta.id.clone().into());
    index::describe_indexes(&mut t, meta, index_stats, TableStatus::Deleting);
    super::streams::spec::describe(meta, &mut t);
    t.insert(
        "BillingModeSummary".into(),
        json!({"BillingMode": meta.billing.mode.as_str()}),
    );
    if let Some(sse) = &meta.sse {
        t.insert(
            "SSEDescription".into(),
            json!({
                "Status": "ENABLED",
                "SSEType": "KMS",
                "KMSMasterKeyArn": sse.kms_master_key_arn,
            }),
        );
    }
    Value::Object(t)
}

/// `UpdateTable`: billing mode, provisioned throughput, on-demand maximums, warm throughput,
/// deletion protection, table class, SSE key, stream, global secondary indexes.
pub async fn update_table(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let name = table_name(input.str("TableName")?, "tableName", &mut v);
    let billing_mode = enum_value(
        input.str("BillingMode")?,
        "billingMode",
        &["PROVISIONED", "PAY_PER_REQUEST"],
        &mut v,
    );
    let throughput = provisioned_throughput(input, &mut v)?;
    let table_class = enum_value(
        input.str("TableClass")?,
        "tableClass",
        &["STANDARD", "STANDARD_INFREQUENT_ACCESS"],
        &mut v,
    );
    let deletion_protection = input.bool("DeletionProtectionEnabled")?;
    let sse_spec = sse_specification(input, &mut v)?;
    let request_defs = attribute_definitions(input, &mut v)?;
    let gsi_updates = index::parse_gsi_updates(input, &mut v)?.filter(|u| !u.is_empty());
    let stream_spec = super::streams::spec::parse(input, &mut v)?;
    let on_demand = OnDemandInput::parse(input.raw("OnDemandThroughput"), "onDemandThroughput")?;
    let warm = WarmInput::parse(input.raw("WarmThroughput"), "warmThroughput")?;
    v.into_result()?;
    super::unsupported::check(super::Operation::UpdateTable, input)?;
    let name = name.ok_or_else(|| ApiError::validation("Invalid table name"))?;
    check_settings(on_demand.as_ref(), warm.as_ref())?;
    // DynamoDB's message predates OnDemandThroughput and WarmThroughput; each is a change too.
    if billing_mode.is_none()
        && throughput.is_none()
        && on_demand.is_none()
        && warm.is_none()
        && table_class.is_none()
        && deletion_protection.is_none()
        && sse_spec.is_none()
        && gsi_updates.is_none()
        && stream_spec.is_none()
    {
        return Err(ApiError::validation(
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
        ));
    }

    let current = ctx
        .backend
        .table(name)
        .await
        .map_err(|e| not_found_table(e, name))?;
    // Deleting the global index that is being created is allowed while the table is busy.
    let only_deletes = gsi_updates
        .as_ref()
        .is_some_and(|u| u.iter().all(|u| matches!(u, index::GsiUpdate::Delete(_))))
        && billing_mode.is_none()
        && throughput.is_none()
        && on_demand.is_none()
        && warm.is_none()
        && table_class.is_none()
        && deletion_protection.is_none()
        && sse_spec.is_none()
        && stream_spec.is_none();
    if current.status != TableStatus::Active
        && !(only_deletes && current.status == TableStatus::Updating)
    {
        return Err(ApiError::new(
            ErrorKind::ResourceInUse,
            format!(
                "Attempt to change a resource which is still in use: Table is being updated: {name}"
            ),
        ));
    }
    let mut next = (*current).clone();
    let now = now_seconds();
    let target_mode = match billing_mode {
        Some("PAY_PER_REQUEST") => BillingMode::PayPerRequest,
        Some(_) => BillingMode::Provisioned,
        None => current.billing.mode,
    };
    let switching_to_provisioned =
        target_mode == BillingMode::Provisioned && current.billing.mode != BillingMode::Provisioned;
    match target_mode {
        BillingMode::PayPerRequest => {
            if throughput.is_some() {
                return Err(ApiError::validation(
                    "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ));
            }
            if current.billing.mode != BillingMode::PayPerRequest {
                next.billing.mode = BillingMode::PayPerRequest;
                next.billing.read_capacity_units = 0;
                next.billing.write_capacity_units = 0;
                next.billing.last_update_to_pay_per_request = Some(now);
                next.index_throughput.clear();
            }
        }
        BillingMode::Provisioned => {
            let switching = current.billing.mode != BillingMode::Provisioned;
            match throughput {
                None if switching => {
                    return Err(ApiError::validation(
                        "One or more parameter values were invalid: ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
                    ));
                }
                None => {}
                Some(ThroughputInput {
                    read: Some(r),
                    write: Some(w),
                }) => {
                    check_throughput_limits(r, w)?;
                    let (r, w) = (r as u64, w as u64);
                    let (cr, cw) = (
                        current.billing.read_capacity_units,
                        current.billing.write_capacity_units,
                    );
                    if !switching && r == cr && w == cw {
                        return Err(ApiError::validation(format!(
                            "The provisioned throughput for the table will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for the table: {cr}. Requested ReadCapacityUnits: {r}. Current WriteCapacityUnits provisioned for the table: {cw}. Requested WriteCapacityUnits: {w}. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits."
                        )));
                    }
                    if !switching && (r > cr || w > cw) {
                        next.billing.last_increase = Some(now);
                    }
                    if !switching && (r < cr || w < cw) {
                        next.billing.last_decrease = Some(now);
                        next.billing.decreases_today += 1;
                    }
                    next.billing.mode = BillingMode::Provisioned;
                    next.billing.read_capacity_units = r;
                    next.billing.write_capacity_units = w;
                }
                Some(_) => {
                    return Err(ApiError::validation(
                        "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
                    ));
                }
            }
        }
    }
    next.on_demand = table_on_demand(on_demand.as_ref(), target_mode, current.on_demand)?;
    if let Some(w) = &warm {
        next.warm = Some(w.apply(table_warm(&current), &format!("table: {name}"))?);
    }
    if let Some(class) = table_class {
        next.table_class = Some(class.to_string());
    }
    if let Some(dp) = deletion_protection {
        next.deletion_protection = dp;
    }
    if let Some(spec) = stream_spec {
        super::streams::spec::update(&mut next, spec, now)?;
    }
    // Switching to a KMS key or back re-wraps the table's data key (the backend does it in
    // `replace_table`); the data itself is not rewritten.
    if let Some(spec) = &sse_spec {
        next.sse = resolve_sse(ctx, spec).await?;
    }
    match &gsi_updates {
        Some(updates) => index::apply_gsi_updates(
            &mut next,
            updates,
            request_defs.as_deref(),
            switching_to_provisioned,
        )?,
        None if switching_to_provisioned => {
            index::apply_gsi_updates(&mut next, &[], None, true)?;
        }
        None => {}
    }
    keep_warm(&current, &mut next);
    next.version = current.version + 1;
    let stored = ctx
        .backend
        .replace_table(current.version, next)
        .await
        .map_err(|e| not_found_table(e, name))?;
    let stats = ctx
        .backend
        .table_stats(name)
        .await
        .map_err(|e| not_found_table(e, name))?;
    let ix = index_stats(ctx, &stored).await;
    Ok(json!({ "TableDescription": describe_json(&stored, stats, &ix, TableStatus::Updating) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_demand(v: Value) -> OnDemandInput {
        OnDemandInput::parse(Some(&v), "onDemandThroughput")
            .unwrap()
            .unwrap()
    }

    fn warm(v: Value) -> WarmInput {
        WarmInput::parse(Some(&v), "warmThroughput")
            .unwrap()
            .unwrap()
    }

    #[test]
    fn on_demand_maximums_are_minus_one_or_at_least_one() {
        on_demand(json!({"MaxReadRequestUnits": -1}))
            .check()
            .unwrap();
        on_demand(json!({"MaxWriteRequestUnits": 1}))
            .check()
            .unwrap();
        let none = on_demand(json!({})).check().unwrap_err();
        assert!(none.message.contains("at least one of MaxReadRequestUnits"));
        for bad in [0, -2] {
            let e = on_demand(json!({"MaxReadRequestUnits": 5, "MaxWriteRequestUnits": bad}))
                .check()
                .unwrap_err();
            assert_eq!(
                e.message,
                format!(
                    "One or more parameter values were invalid: MaxWriteRequestUnits in 'onDemandThroughput' must be greater than or equal to 1, or -1 to remove the maximum; got {bad}"
                )
            );
        }
        assert!(
            OnDemandInput::parse(Some(&json!({"MaxReadRequestUnits": "5"})), "f").is_err(),
            "a string is a SerializationException"
        );
    }

    #[test]
    fn on_demand_sets_removes_and_keeps_maximums() {
        let current = OnDemandThroughput {
            max_read_request_units: Some(10),
            max_write_request_units: Some(20),
        };
        let next = on_demand(json!({"MaxReadRequestUnits": -1})).apply(current);
        assert_eq!(next.max_read_request_units, None);
        assert_eq!(next.max_write_request_units, Some(20));
        let next = on_demand(json!({"MaxWriteRequestUnits": 7})).apply(current);
        assert_eq!(next.max_write_request_units, Some(7));
        assert!(!on_demand(json!({"MaxReadRequestUnits": -1})).sets_maximum());
        assert!(
            on_demand(json!({"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": 3})).sets_maximum()
        );
        assert_eq!(
            table_on_demand(
                Some(&on_demand(json!({"MaxReadRequestUnits": 5}))),
                BillingMode::Provisioned,
                Default::default()
            )
            .unwrap_err()
            .message,
            "One or more parameter values were invalid: OnDemandThroughput with a maximum (other than -1) cannot be specified when BillingMode is PROVISIONED"
        );
        assert_eq!(
            on_demand_json(&next),
            json!({"MaxReadRequestUnits": 10, "MaxWriteRequestUnits": 7})
        );
        assert_eq!(
            on_demand_json(&OnDemandThroughput::default()),
            json!({"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": -1})
        );
    }

    #[test]
    fn warm_throughput_is_positive_and_only_grows() {
        assert!(warm(json!({})).check().is_err());
        assert_eq!(
            warm(json!({"ReadUnitsPerSecond": 0}))
                .check()
                .unwrap_err()
                .message,
            "One or more parameter values were invalid: ReadUnitsPerSecond in 'warmThroughput' must be greater than or equal to 1; got 0"
        );
        let current = sustained_warm(None, 0, 0);
        assert_eq!(current, DEFAULT_WARM);
        let w = warm(json!({"ReadUnitsPerSecond": 20_000}))
            .apply(current, "table: t")
            .unwrap();
        assert_eq!(
            (w.read_units_per_second, w.write_units_per_second),
            (20_000, 4_000)
        );
        let e = warm(json!({"WriteUnitsPerSecond": 3_999}))
            .apply(current, "table: t")
            .unwrap_err();
        assert_eq!(
            e.message,
            "One or more parameter values were invalid: WarmThroughput can only be increased: the requested WriteUnitsPerSecond (3999) is lower than the current 4000 of table: t"
        );
        // Provisioned units above the defaults raise what the table sustains.
        let provisioned = sustained_warm(None, 24_000, 8_000);
        assert_eq!(
            (
                provisioned.read_units_per_second,
                provisioned.write_units_per_second
            ),
            (24_000, 8_000)
        );
    }
}
