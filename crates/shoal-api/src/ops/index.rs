//! Secondary indexes in the control plane: `LocalSecondaryIndexes` and `GlobalSecondaryIndexes` of
//! CreateTable, `GlobalSecondaryIndexUpdates` of UpdateTable, and their descriptions.
//!
//! Model constraints (lengths, patterns, enums, required members) are collected as
//! [`Violations`]; the semantic rules (key schemas, projections, limits, throughput per billing
//! mode, on-demand maximums and warm throughput) follow, with DynamoDB's messages where its
//! documentation gives them.

use serde_json::{Map, Value, json};
use shoal_types::ScalarType;
use shoal_types::index::{IndexDef, IndexKind, IndexStatus, Projection, ProjectionType};
use shoal_types::index_key::{IndexKeySchema, KeyRole, MAX_HASH_ATTRS, MAX_RANGE_ATTRS};
use shoal_types::key::{KeyAttr, KeySchema};

use super::table::{
    OnDemandInput, ThroughputInput, WarmInput, build_key_structure, check_duplicate_definitions,
    check_throughput_limits, defined_key_attrs, key_schema_elems, now_seconds, on_demand_json,
    sustained_warm, throughput_from, warm_json,
};
use super::validate::{enum_value, name_constraints};
use crate::backend::{BillingMode, IndexThroughput, TableMeta, TableStats, TableStatus};
use crate::error::{ApiError, ErrorKind, Violations};
use crate::input::{Input, nested, opt_str};
use shoal_catalog::{IndexCapacity, WarmThroughput};

/// At most this many local secondary indexes per table.
pub const MAX_LOCAL_INDEXES: usize = 5;
/// At most this many global secondary indexes per table (DynamoDB's default quota).
pub const MAX_GLOBAL_INDEXES: usize = 20;
/// At most this many `NonKeyAttributes`, summed over all the indexes of a table.
pub const MAX_PROJECTED_ATTRIBUTES: usize = 100;
/// At most this many `NonKeyAttributes` in one index (the model's list constraint).
pub const MAX_NON_KEY_ATTRIBUTES: usize = 20;

/// `One or more parameter values were invalid: {msg}`.
fn invalid(msg: impl std::fmt::Display) -> ApiError {
    ApiError::validation(format!("One or more parameter values were invalid: {msg}"))
}

/// One index of a request (`LocalSecondaryIndex`, `GlobalSecondaryIndex`,
/// `CreateGlobalSecondaryIndexAction`) after its model constraints were checked.
pub struct IndexInput {
    pub name: String,
    /// `(AttributeName, KeyType)` in the order given.
    pub key_elems: Vec<(String, String)>,
    pub projection_type: Option<ProjectionType>,
    pub non_key: Option<Vec<String>>,
    pub throughput: Option<ThroughputInput>,
    /// `OnDemandThroughput` (global indexes only).
    pub on_demand: Option<OnDemandInput>,
    /// `WarmThroughput` (global indexes only).
    pub warm: Option<WarmInput>,
}

/// Reads one index definition; `field` is the model path of the element
/// (`globalSecondaryIndexes.1.member`). Returns `None` when a required member is missing (the
/// violation is recorded).
pub fn parse_index(
    el: &Value,
    field: &str,
    global: bool,
    v: &mut Violations,
) -> Result<Option<IndexInput>, ApiError> {
    let el = nested(el)?;
    let name = el.str("IndexName")?;
    let name_ok = match name {
        None => {
            v.missing(&format!("{field}.indexName"));
            false
        }
        Some(n) => name_constraints(n, &format!("{field}.indexName"), v),
    };
    // A GSI key may have up to 4 HASH and 4 RANGE elements; an LSI key is a table key.
    let max_elems = if global {
        MAX_HASH_ATTRS + MAX_RANGE_ATTRS
    } else {
        2
    };
    let key_elems = key_schema_elems(
        el.array("KeySchema")?,
        &format!("{field}.keySchema"),
        max_elems,
        v,
    )?;
    let mut projection_type = None;
    let mut non_key = None;
    let mut projection_ok = true;
    match el.object("Projection")? {
        None => {
            v.missing(&format!("{field}.projection"));
            projection_ok = false;
        }
        Some(_) => {
            let p = nested(el.raw("Projection").unwrap_or(&Value::Null))?;
            projection_type = match enum_value(
                p.str("ProjectionType")?,
                &format!("{field}.projection.projectionType"),
                &["ALL", "KEYS_ONLY", "INCLUDE"],
                v,
            ) {
                Some("ALL") => Some(ProjectionType::All),
                Some("KEYS_ONLY") => Some(ProjectionType::KeysOnly),
                Some("INCLUDE") => Some(ProjectionType::Include),
                _ => None,
            };
            if let Some(list) = p.array("NonKeyAttributes")? {
                let nk_field = format!("{field}.projection.nonKeyAttributes");
                if list.is_empty() {
                    v.constraint(
                        "[]",
                        &nk_field,
                        "Member must have length greater than or equal to 1",
                    );
                } else if list.len() > MAX_NON_KEY_ATTRIBUTES {
                    v.constraint(
                        &format!("{} elements", list.len()),
                        &nk_field,
                        "Member must have length less than or equal to 20",
                    );
                }
                let mut names = Vec::with_capacity(list.len());
                for (i, n) in list.iter().enumerate() {
                    let Some(n) = opt_str(Some(n))? else { continue };
                    let f = format!("{nk_field}.{}.member", i + 1);
                    if n.is_empty() {
                        v.constraint(n, &f, "Member must have length greater than or equal to 1");
                    } else if n.len() > 255 {
                        v.constraint(n, &f, "Member must have length less than or equal to 255");
                    }
                    names.push(n.to_string());
                }
                non_key = Some(names);
            }
        }
    }
    let throughput = if global {
        match el.object("ProvisionedThroughput")? {
            Some(obj) => Some(throughput_from(
                obj,
                &format!("{field}.provisionedThroughput"),
                v,
            )?),
            None => None,
        }
    } else {
        None
    };
    let (on_demand, warm) = if global {
        (
            OnDemandInput::parse(
                el.raw("OnDemandThroughput"),
                &format!("{field}.onDemandThroughput"),
            )?,
            WarmInput::parse(el.raw("WarmThroughput"), &format!("{field}.warmThroughput"))?,
        )
    } else {
        (None, None)
    };
    Ok(match (name, name_ok && projection_ok) {
        (Some(name), true) => Some(IndexInput {
            name: name.to_string(),
            key_elems,
            projection_type,
            non_key,
            throughput,
            on_demand,
            warm,
        }),
        _ => None,
    })
}

/// Reads a list member of index definitions (`LocalSecondaryIndexes`, `GlobalSecondaryIndexes`).
pub fn parse_index_list(
    input: &Input<'_>,
    member: &str,
    field: &str,
    global: bool,
    v: &mut Violations,
) -> Result<Option<Vec<IndexInput>>, ApiError> {
    let Some(list) = input.array(member)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, el) in list.iter().enumerate() {
        if let Some(ix) = parse_index(el, &format!("{field}.{}.member", i + 1), global, v)? {
            out.push(ix);
        }
    }
    Ok(Some(out))
}

/// The attributes an index entry carries besides the key attributes, and the projection rules:
/// `NonKeyAttributes` only with INCLUDE (and required there), no duplicates, no key attributes.
fn build_projection(
    ix: &IndexInput,
    table_keys: &KeySchema,
    index_keys: &IndexKeySchema,
) -> Result<Projection, ApiError> {
    let Some(kind) = ix.projection_type else {
        return Err(invalid(format!(
            "ProjectionType must be specified for index: {}",
            ix.name
        )));
    };
    match (kind, &ix.non_key) {
        (ProjectionType::Include, None) => Err(invalid(format!(
            "ProjectionType is INCLUDE, but NonKeyAttributes is not specified for index: {}",
            ix.name
        ))),
        (ProjectionType::All | ProjectionType::KeysOnly, Some(_)) => Err(invalid(format!(
            "ProjectionType is {}, but NonKeyAttributes is specified for index: {}",
            kind.as_str(),
            ix.name
        ))),
        (ProjectionType::Include, Some(names)) => {
            for (i, n) in names.iter().enumerate() {
                if names.iter().skip(i + 1).any(|m| m == n) {
                    return Err(invalid(format!(
                        "Duplicate attribute in NonKeyAttributes: {n} for index: {}",
                        ix.name
                    )));
                }
                if table_keys.is_key_attr(n) || index_keys.is_key_attr(n) {
                    return Err(invalid(format!(
                        "NonKeyAttributes must not contain key attributes: {n} is a key attribute of index: {}",
                        ix.name
                    )));
                }
            }
            Ok(Projection {
                kind,
                non_key_attributes: names.clone(),
            })
        }
        (kind, None) => Ok(Projection {
            kind,
            non_key_attributes: Vec::new(),
        }),
    }
}

/// Checks one index against the table and the attribute definitions and builds its definition
/// (id 0: the caller numbers it).
fn build_index(
    ix: &IndexInput,
    kind: IndexKind,
    table_keys: &KeySchema,
    defs: &[(String, Option<ScalarType>)],
) -> Result<IndexDef, ApiError> {
    let key_schema = match kind {
        IndexKind::Global => build_global_key_schema(&ix.key_elems, defs)?,
        IndexKind::Local => {
            let key_schema = build_key_structure(&ix.key_elems, defs)?;
            if key_schema.hash.name != table_keys.hash.name {
                return Err(invalid(format!(
                    "Index KeySchema does not have the same leading hash key as table KeySchema for index: {}. index hash key: {}, table hash key: {}",
                    ix.name, key_schema.hash.name, table_keys.hash.name
                )));
            }
            if key_schema.range.is_none() {
                return Err(invalid(format!(
                    "Index KeySchema does not have a range key for index: {}",
                    ix.name
                )));
            }
            key_schema.into()
        }
    };
    let projection = build_projection(ix, table_keys, &key_schema)?;
    Ok(IndexDef {
        id: 0,
        name: ix.name.clone(),
        kind,
        key_schema,
        projection,
        status: IndexStatus::Active,
        backfilling: false,
    })
}

/// A global index's key schema: 1-4 `HASH` elements then 0-4 `RANGE` elements, no attribute
/// twice ([`IndexKeySchema::check_shape`]), every attribute defined.
fn build_global_key_schema(
    elems: &[(String, String)],
    defs: &[(String, Option<ScalarType>)],
) -> Result<IndexKeySchema, ApiError> {
    let role = |kt: &str| {
        if kt == "HASH" {
            KeyRole::Hash
        } else {
            KeyRole::Range
        }
    };
    let shape: Vec<(&str, KeyRole)> = elems.iter().map(|(n, kt)| (n.as_str(), role(kt))).collect();
    IndexKeySchema::check_shape(&shape).map_err(|e| ApiError::validation(e.to_string()))?;
    let attrs: Vec<KeyAttr> = defined_key_attrs(elems, defs)?;
    let elements = attrs
        .into_iter()
        .zip(shape.iter().map(|(_, r)| *r))
        .collect();
    IndexKeySchema::from_elements(elements).map_err(|e| ApiError::validation(e.to_string()))
}

/// The `ProvisionedThroughput` rules of a global index for the table's billing mode: required
/// for PROVISIONED, forbidden for PAY_PER_REQUEST. Returns the units to store.
fn index_throughput(
    ix_name: &str,
    throughput: Option<&ThroughputInput>,
    mode: BillingMode,
) -> Result<Option<(u64, u64)>, ApiError> {
    match (mode, throughput) {
        (BillingMode::PayPerRequest, None) => Ok(None),
        (BillingMode::PayPerRequest, Some(_)) => Err(invalid(format!(
            "ProvisionedThroughput should not be specified for index: {ix_name} when BillingMode is PAY_PER_REQUEST"
        ))),
        (BillingMode::Provisioned, None) => Err(invalid(format!(
            "ProvisionedThroughput must be specified for index: {ix_name}"
        ))),
        (
            BillingMode::Provisioned,
            Some(ThroughputInput {
                read: Some(r),
                write: Some(w),
            }),
        ) => {
            check_throughput_limits(*r, *w)?;
            Ok(Some((*r as u64, *w as u64)))
        }
        (BillingMode::Provisioned, Some(_)) => Err(invalid(
            "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
        )),
    }
}

fn new_throughput(index: u32, units: (u64, u64)) -> IndexThroughput {
    IndexThroughput {
        index,
        read_capacity_units: units.0,
        write_capacity_units: units.1,
        last_increase: None,
        last_decrease: None,
        decreases_today: 0,
    }
}

/// The warm throughput the global index `index` sustains at once (see
/// [`super::table::sustained_warm`]).
pub fn index_warm(meta: &TableMeta, index: u32) -> WarmThroughput {
    let tp = meta.throughput_of(index);
    sustained_warm(
        meta.capacity_of(index).and_then(|c| c.warm),
        tp.map_or(0, |t| t.read_capacity_units),
        tp.map_or(0, |t| t.write_capacity_units),
    )
}

/// Applies a global index's `OnDemandThroughput` and `WarmThroughput` (either may be absent) to
/// `capacity`, its current settings (empty for a new index): the rules of each member, then the
/// billing mode's (a maximum only for an on-demand table; `-1` is accepted in either mode), then
/// warm throughput only growing from `current_warm`, what the index sustains now.
fn apply_index_settings(
    name: &str,
    on_demand: Option<&OnDemandInput>,
    warm: Option<&WarmInput>,
    mode: BillingMode,
    capacity: &mut IndexCapacity,
    current_warm: WarmThroughput,
) -> Result<(), ApiError> {
    if let Some(o) = on_demand {
        o.check()?;
        if mode == BillingMode::Provisioned && o.sets_maximum() {
            return Err(invalid(format!(
                "OnDemandThroughput with a maximum (other than -1) should not be specified for index: {name} when BillingMode is PROVISIONED"
            )));
        }
        capacity.on_demand = o.apply(capacity.on_demand);
    }
    if let Some(w) = warm {
        w.check()?;
        capacity.warm = Some(w.apply(current_warm, &format!("index: {name}"))?);
    }
    Ok(())
}

/// Stores `capacity` as the settings of its index: replaces the index's entry, or removes it
/// when nothing is set.
fn store_capacity(meta: &mut TableMeta, capacity: IndexCapacity) {
    meta.index_capacity.retain(|c| c.index != capacity.index);
    if !capacity.on_demand.is_unlimited() || capacity.warm.is_some() {
        meta.index_capacity.push(capacity);
    }
}

fn no_capacity(index: u32) -> IndexCapacity {
    IndexCapacity {
        index,
        on_demand: Default::default(),
        warm: None,
    }
}

/// [`super::table`]'s warm-throughput rule for the global indexes: an index of `next` that
/// would sustain less than it does in `current` keeps what it sustains there.
pub fn keep_index_warm(current: &TableMeta, next: &mut TableMeta) {
    let ids: Vec<u32> = next
        .indexes
        .iter()
        .filter(|d| d.kind == IndexKind::Global && d.status != IndexStatus::Deleting)
        .map(|d| d.id)
        .filter(|id| current.indexes.iter().any(|d| d.id == *id))
        .collect();
    for id in ids {
        let (before, after) = (index_warm(current, id), index_warm(next, id));
        if after.read_units_per_second < before.read_units_per_second
            || after.write_units_per_second < before.write_units_per_second
        {
            let mut capacity = next.capacity_of(id).copied().unwrap_or(no_capacity(id));
            capacity.warm = Some(WarmThroughput {
                read_units_per_second: before
                    .read_units_per_second
                    .max(after.read_units_per_second),
                write_units_per_second: before
                    .write_units_per_second
                    .max(after.write_units_per_second),
            });
            store_capacity(next, capacity);
        }
    }
}

/// Names of every attribute used as a key by the table or the given indexes, in first-use order.
fn used_key_names<'a>(
    table_keys: &'a KeySchema,
    indexes: impl Iterator<Item = &'a IndexKeySchema>,
) -> Vec<&'a str> {
    let mut used: Vec<&str> = Vec::new();
    let index_attrs = indexes.flat_map(IndexKeySchema::attrs);
    for a in table_keys.attrs().chain(index_attrs) {
        if !used.contains(&a.name.as_str()) {
            used.push(&a.name);
        }
    }
    used
}

/// `Some AttributeDefinitions are not used` unless every definition is a key of the table or
/// of an index.
fn check_unused_definitions(
    defs: &[(String, Option<ScalarType>)],
    used: &[&str],
) -> Result<(), ApiError> {
    if defs.iter().all(|(n, _)| used.contains(&n.as_str())) {
        return Ok(());
    }
    let names: Vec<&str> = defs.iter().map(|(n, _)| n.as_str()).collect();
    Err(invalid(format!(
        "Some AttributeDefinitions are not used. AttributeDefinitions: [{}], keys used: [{}]",
        names.join(", "),
        used.join(", ")
    )))
}

fn check_projected_total<'a>(indexes: impl Iterator<Item = &'a IndexDef>) -> Result<(), ApiError> {
    let total: usize = indexes.map(|i| i.projection.non_key_attributes.len()).sum();
    if total > MAX_PROJECTED_ATTRIBUTES {
        return Err(invalid(format!(
            "The number of NonKeyAttributes summed across all secondary indexes ({total}) exceeds the limit of {MAX_PROJECTED_ATTRIBUTES}"
        )));
    }
    Ok(())
}

/// An index of a CreateTable, built: its definition, its provisioned units and, for a global
/// one, its request (for `OnDemandThroughput` and `WarmThroughput`).
type Built<'a> = (IndexDef, Option<(u64, u64)>, Option<&'a IndexInput>);

/// The indexes of a CreateTable, checked against the table's key schema, its attribute
/// definitions and its billing mode. Fills `meta.indexes`, `meta.next_index_id`,
/// `meta.index_throughput` and `meta.index_capacity`. Also checks that no attribute definition
/// is unused (the plain table's count rule is checked by the caller when there are no indexes).
pub fn create_table_indexes(
    meta: &mut TableMeta,
    defs: &[(String, Option<ScalarType>)],
    local: Option<&[IndexInput]>,
    global: Option<&[IndexInput]>,
) -> Result<(), ApiError> {
    let mut built: Vec<Built<'_>> = Vec::new();
    if let Some(local) = local {
        if local.is_empty() {
            return Err(invalid("List of LocalSecondaryIndexes is empty"));
        }
        if meta.key_schema.range.is_none() {
            return Err(invalid(
                "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
            ));
        }
        for ix in local {
            built.push((
                build_index(ix, IndexKind::Local, &meta.key_schema, defs)?,
                None,
                None,
            ));
        }
        if local.len() > MAX_LOCAL_INDEXES {
            return Err(invalid(format!(
                "Number of LocalSecondaryIndexes exceeds per-table limit of {MAX_LOCAL_INDEXES}"
            )));
        }
    }
    if let Some(global) = global {
        if global.is_empty() {
            return Err(invalid("List of GlobalSecondaryIndexes is empty"));
        }
        for ix in global {
            let def = build_index(ix, IndexKind::Global, &meta.key_schema, defs)?;
            let units = index_throughput(&ix.name, ix.throughput.as_ref(), meta.billing.mode)?;
            built.push((def, units, Some(ix)));
        }
        if global.len() > MAX_GLOBAL_INDEXES {
            return Err(invalid(format!(
                "Number of GlobalSecondaryIndexes exceeds per-table limit of {MAX_GLOBAL_INDEXES}"
            )));
        }
    }
    for (i, (a, _, _)) in built.iter().enumerate() {
        if built.iter().skip(i + 1).any(|(b, _, _)| b.name == a.name) {
            return Err(invalid(format!("Duplicate index name: {}", a.name)));
        }
    }
    check_projected_total(built.iter().map(|(d, _, _)| d))?;
    let used = used_key_names(
        &meta.key_schema,
        built.iter().map(|(d, _, _)| &d.key_schema),
    );
    check_unused_definitions(defs, &used)?;
    let mut next = meta.next_index_id.max(1);
    for (mut def, units, request) in built {
        def.id = next;
        next += 1;
        if let Some(units) = units {
            meta.index_throughput.push(new_throughput(def.id, units));
        }
        if let Some(ix) = request {
            let mut capacity = no_capacity(def.id);
            let (r, w) = units.unwrap_or((0, 0));
            apply_index_settings(
                &ix.name,
                ix.on_demand.as_ref(),
                ix.warm.as_ref(),
                meta.billing.mode,
                &mut capacity,
                sustained_warm(None, r, w),
            )?;
            store_capacity(meta, capacity);
        }
        meta.indexes.push(def);
    }
    meta.next_index_id = next;
    Ok(())
}

/// One `GlobalSecondaryIndexUpdate` of UpdateTable.
pub enum GsiUpdate {
    Create(IndexInput),
    Update {
        name: String,
        throughput: Option<ThroughputInput>,
        on_demand: Option<OnDemandInput>,
        warm: Option<WarmInput>,
    },
    Delete(String),
}

/// Reads `GlobalSecondaryIndexUpdates` (model constraints go to `v`).
pub fn parse_gsi_updates(
    input: &Input<'_>,
    v: &mut Violations,
) -> Result<Option<Vec<GsiUpdate>>, ApiError> {
    let Some(list) = input.array("GlobalSecondaryIndexUpdates")? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, el) in list.iter().enumerate() {
        let field = format!("globalSecondaryIndexUpdates.{}.member", i + 1);
        let el = nested(el)?;
        let actions = ["Create", "Update", "Delete"]
            .into_iter()
            .filter(|a| el.has(a))
            .count();
        if actions != 1 {
            return Err(invalid(
                "One of GlobalSecondaryIndexUpdate.Create, GlobalSecondaryIndexUpdate.Update or GlobalSecondaryIndexUpdate.Delete must be specified, and only one",
            ));
        }
        if let Some(raw) = el.raw("Create") {
            if let Some(ix) = parse_index(raw, &format!("{field}.create"), true, v)? {
                out.push(GsiUpdate::Create(ix));
            }
        } else if let Some(raw) = el.raw("Update") {
            let u = nested(raw)?;
            let f = format!("{field}.update");
            let name = index_name_member(&u, &f, v)?;
            let throughput = match u.object("ProvisionedThroughput")? {
                Some(obj) => Some(throughput_from(
                    obj,
                    &format!("{f}.provisionedThroughput"),
                    v,
                )?),
                None => None,
            };
            let on_demand = OnDemandInput::parse(
                u.raw("OnDemandThroughput"),
                &format!("{f}.onDemandThroughput"),
            )?;
            let warm = WarmInput::parse(u.raw("WarmThroughput"), &format!("{f}.warmThroughput"))?;
            if let Some(name) = name {
                out.push(GsiUpdate::Update {
                    name,
                    throughput,
                    on_demand,
                    warm,
                });
            }
        } else if let Some(raw) = el.raw("Delete") {
            let d = nested(raw)?;
            if let Some(name) = index_name_member(&d, &format!("{field}.delete"), v)? {
                out.push(GsiUpdate::Delete(name));
            }
        }
    }
    Ok(Some(out))
}

fn index_name_member(
    el: &Input<'_>,
    field: &str,
    v: &mut Violations,
) -> Result<Option<String>, ApiError> {
    match el.str("IndexName")? {
        None => {
            v.missing(&format!("{field}.indexName"));
            Ok(None)
        }
        Some(n) => Ok(name_constraints(n, &format!("{field}.indexName"), v).then(|| n.to_string())),
    }
}

fn index_not_found(table: &str, index: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceNotFound,
        format!("Requested resource not found: Index: {index} not found for table: {table}"),
    )
}

fn index_being_deleted(index: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceInUse,
        format!(
            "Attempt to change a resource which is still in use: Index is being deleted: {index}"
        ),
    )
}

fn one_online_index() -> ApiError {
    ApiError::new(
        ErrorKind::LimitExceeded,
        "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table",
    )
}

/// Applies `GlobalSecondaryIndexUpdates` to `next` (the table as it will be stored; its billing
/// mode is already the target one). `request_defs` are the UpdateTable's `AttributeDefinitions`.
/// `switching_to_provisioned`: the call changes the billing mode to PROVISIONED, so every global
/// index needs throughput from an Update or Create action of this call.
pub fn apply_gsi_updates(
    next: &mut TableMeta,
    updates: &[GsiUpdate],
    request_defs: Option<&[(String, Option<ScalarType>)]>,
    switching_to_provisioned: bool,
) -> Result<(), ApiError> {
    let table = next.name.clone();
    // Each index at most once per call.
    let names: Vec<&str> = updates
        .iter()
        .map(|u| match u {
            GsiUpdate::Create(ix) => ix.name.as_str(),
            GsiUpdate::Update { name, .. } | GsiUpdate::Delete(name) => name.as_str(),
        })
        .collect();
    for (i, n) in names.iter().enumerate() {
        if names.iter().skip(i + 1).any(|m| m == n) {
            return Err(invalid(format!(
                "Only one global secondary index update per index is allowed simultaneously. Index: {n}"
            )));
        }
    }
    // One online create or delete at a time: in this call, and while another one runs (deleting
    // the index that is being created is allowed).
    let online = updates
        .iter()
        .filter(|u| !matches!(u, GsiUpdate::Update { .. }))
        .count();
    if online > 1 {
        return Err(one_online_index());
    }
    let now = now_seconds();
    for update in updates {
        match update {
            GsiUpdate::Create(ix) => {
                if next.indexes.iter().any(|i| i.status != IndexStatus::Active) {
                    return Err(one_online_index());
                }
                if next.index(&ix.name).is_some() {
                    return Err(invalid(format!(
                        "Attempting to create an index which already exists: {}",
                        ix.name
                    )));
                }
                let Some(request_defs) = request_defs else {
                    let keys: Vec<&str> = ix.key_elems.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(invalid(format!(
                        "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: []",
                        keys.join(", ")
                    )));
                };
                check_duplicate_definitions(request_defs)?;
                // An attribute keeps its type: the request may repeat an existing definition but
                // not change it.
                for (n, ty) in request_defs {
                    if let (Some(ty), Some((_, existing))) =
                        (ty, next.attribute_definitions.iter().find(|(m, _)| m == n))
                        && existing != ty
                        && key_in_use(next, n)
                    {
                        return Err(invalid(format!(
                            "Cannot change the type of attribute {n} in AttributeDefinitions: it is defined as {} and used as a key",
                            existing.as_str()
                        )));
                    }
                }
                let mut def = build_index(ix, IndexKind::Global, &next.key_schema, request_defs)?;
                let units = index_throughput(&ix.name, ix.throughput.as_ref(), next.billing.mode)?;
                let live = next
                    .indexes
                    .iter()
                    .filter(|i| i.kind == IndexKind::Global && i.status != IndexStatus::Deleting)
                    .count();
                if live >= MAX_GLOBAL_INDEXES {
                    return Err(ApiError::new(
                        ErrorKind::LimitExceeded,
                        format!(
                            "Subscriber limit exceeded: The table already has the maximum of {MAX_GLOBAL_INDEXES} global secondary indexes"
                        ),
                    ));
                }
                check_projected_total(next.indexes.iter().chain(std::iter::once(&def)))?;
                let used = used_key_names(
                    &next.key_schema,
                    next.indexes
                        .iter()
                        .filter(|i| i.status != IndexStatus::Deleting)
                        .map(|i| &i.key_schema)
                        .chain(std::iter::once(&def.key_schema)),
                );
                check_unused_definitions(request_defs, &used)?;
                def.id = next.next_index_id.max(1);
                def.status = IndexStatus::Creating;
                def.backfilling = true;
                next.next_index_id = def.id + 1;
                if let Some(units) = units {
                    next.index_throughput.push(new_throughput(def.id, units));
                }
                let mut capacity = no_capacity(def.id);
                let (r, w) = units.unwrap_or((0, 0));
                apply_index_settings(
                    &ix.name,
                    ix.on_demand.as_ref(),
                    ix.warm.as_ref(),
                    next.billing.mode,
                    &mut capacity,
                    sustained_warm(None, r, w),
                )?;
                // AttributeDefinitions: the keys of the table and of every index still in use.
                let mut defs: Vec<(String, ScalarType)> = Vec::new();
                for name in used {
                    let ty = request_defs
                        .iter()
                        .find(|(n, _)| n == name)
                        .and_then(|(_, t)| *t)
                        .or_else(|| {
                            next.attribute_definitions
                                .iter()
                                .find(|(n, _)| n == name)
                                .map(|(_, t)| *t)
                        });
                    if let Some(ty) = ty {
                        defs.push((name.to_string(), ty));
                    }
                }
                next.attribute_definitions = defs;
                store_capacity(next, capacity);
                next.indexes.push(def);
            }
            GsiUpdate::Delete(name) => {
                let Some(pos) = next
                    .indexes
                    .iter()
                    .position(|i| i.kind == IndexKind::Global && &i.name == name)
                else {
                    return Err(index_not_found(&table, name));
                };
                let status = next.indexes[pos].status;
                if status == IndexStatus::Deleting {
                    return Err(index_being_deleted(name));
                }
                // Another index being created or deleted blocks this one.
                if next
                    .indexes
                    .iter()
                    .enumerate()
                    .any(|(i, ix)| i != pos && ix.status != IndexStatus::Active)
                {
                    return Err(one_online_index());
                }
                next.indexes[pos].status = IndexStatus::Deleting;
                next.indexes[pos].backfilling = false;
            }
            GsiUpdate::Update {
                name,
                throughput,
                on_demand,
                warm,
            } => {
                let Some(def) = next
                    .indexes
                    .iter()
                    .find(|i| i.kind == IndexKind::Global && &i.name == name)
                else {
                    return Err(index_not_found(&table, name));
                };
                if def.status == IndexStatus::Deleting {
                    return Err(index_being_deleted(name));
                }
                let id = def.id;
                let settings = on_demand.is_some() || warm.is_some();
                // Warm throughput grows from what the index sustains before this update.
                let current_warm = index_warm(next, id);
                if throughput.is_some() || !settings {
                    let Some(units) =
                        index_throughput(name, throughput.as_ref(), next.billing.mode)?
                    else {
                        // PAY_PER_REQUEST without throughput: the update has nothing to change.
                        return Err(invalid(format!(
                            "Update for index: {name} changes nothing: its table's BillingMode is PAY_PER_REQUEST, which has no ProvisionedThroughput to update (give OnDemandThroughput or WarmThroughput)"
                        )));
                    };
                    update_provisioned(next, id, name, units, switching_to_provisioned, now)?;
                }
                if settings {
                    let mut capacity = next.capacity_of(id).copied().unwrap_or(no_capacity(id));
                    apply_index_settings(
                        name,
                        on_demand.as_ref(),
                        warm.as_ref(),
                        next.billing.mode,
                        &mut capacity,
                        current_warm,
                    )?;
                    store_capacity(next, capacity);
                }
            }
        }
    }
    if switching_to_provisioned {
        for ix in next
            .indexes
            .iter()
            .filter(|i| i.kind == IndexKind::Global && i.status != IndexStatus::Deleting)
        {
            if next.throughput_of(ix.id).is_none() {
                return Err(invalid(format!(
                    "ProvisionedThroughput must be specified for index: {}",
                    ix.name
                )));
            }
        }
    }
    Ok(())
}

/// Sets the provisioned throughput of the global index `id` (`name`) to `(r, w)`, with DynamoDB's
/// "will not change" error and the increase and decrease history (none when the table is
/// `switching` to PROVISIONED).
fn update_provisioned(
    next: &mut TableMeta,
    id: u32,
    name: &str,
    (r, w): (u64, u64),
    switching: bool,
    now: f64,
) -> Result<(), ApiError> {
    match next.index_throughput.iter_mut().find(|t| t.index == id) {
        Some(t) if !switching => {
            let (cr, cw) = (t.read_capacity_units, t.write_capacity_units);
            if r == cr && w == cw {
                return Err(ApiError::validation(format!(
                    "The provisioned throughput for the index {name} will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for the index: {cr}. Requested ReadCapacityUnits: {r}. Current WriteCapacityUnits provisioned for the index: {cw}. Requested WriteCapacityUnits: {w}. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits."
                )));
            }
            if r > cr || w > cw {
                t.last_increase = Some(now);
            }
            if r < cr || w < cw {
                t.last_decrease = Some(now);
                t.decreases_today += 1;
            }
            t.read_capacity_units = r;
            t.write_capacity_units = w;
        }
        Some(t) => {
            t.read_capacity_units = r;
            t.write_capacity_units = w;
        }
        None => next.index_throughput.push(new_throughput(id, (r, w))),
    }
    Ok(())
}

/// Whether `name` is a key attribute of the table or of an index that is not being deleted.
fn key_in_use(meta: &TableMeta, name: &str) -> bool {
    meta.key_schema.is_key_attr(name)
        || meta
            .indexes
            .iter()
            .any(|i| i.status != IndexStatus::Deleting && i.key_schema.is_key_attr(name))
}

/// `KeySchema` JSON of a table.
pub fn key_schema_json(schema: &KeySchema) -> Value {
    key_elements_json(std::slice::from_ref(&schema.hash), schema.range.as_slice())
}

/// `KeySchema` JSON of an index: every `HASH` element, then every `RANGE` element, in schema
/// order.
pub fn index_key_schema_json(schema: &IndexKeySchema) -> Value {
    key_elements_json(schema.hash(), schema.range())
}

fn key_elements_json(hash: &[KeyAttr], range: &[KeyAttr]) -> Value {
    let hash = hash.iter().map(|a| (a, "HASH"));
    let range = range.iter().map(|a| (a, "RANGE"));
    hash.chain(range)
        .map(|(a, kt)| json!({"AttributeName": a.name, "KeyType": kt}))
        .collect::<Vec<_>>()
        .into()
}

fn projection_json(p: &Projection) -> Value {
    let mut o = Map::new();
    o.insert("ProjectionType".into(), p.kind.as_str().into());
    if p.kind == ProjectionType::Include {
        o.insert("NonKeyAttributes".into(), json!(p.non_key_attributes));
    }
    Value::Object(o)
}

/// `LocalSecondaryIndexes` and `GlobalSecondaryIndexes` of a `TableDescription`, added to `t`.
/// `stats` gives each index's item count and size (by id; missing ones count as empty);
/// `table_status` is the status the description shows: a table being created shows its global
/// indexes CREATING, a table being deleted shows them DELETING.
pub fn describe_indexes(
    t: &mut Map<String, Value>,
    meta: &TableMeta,
    stats: &[(u32, TableStats)],
    table_status: TableStatus,
) {
    let mut local = Vec::new();
    let mut global = Vec::new();
    for def in &meta.indexes {
        let st = stats
            .iter()
            .find(|(id, _)| *id == def.id)
            .map(|(_, s)| *s)
            .unwrap_or_default();
        let mut o = Map::new();
        o.insert("IndexName".into(), def.name.clone().into());
        o.insert("KeySchema".into(), index_key_schema_json(&def.key_schema));
        o.insert("Projection".into(), projection_json(&def.projection));
        // Global indexes have a status and their own throughput; local ones share the table's.
        if def.kind == IndexKind::Global {
            let status = match table_status {
                TableStatus::Creating => IndexStatus::Creating,
                TableStatus::Deleting => IndexStatus::Deleting,
                _ => def.status,
            };
            o.insert("IndexStatus".into(), status.as_str().into());
            // Only indexes added by UpdateTable show Backfilling, and only while created.
            if status == IndexStatus::Creating && table_status != TableStatus::Creating {
                o.insert("Backfilling".into(), def.backfilling.into());
            }
            let mut pt = Map::new();
            let tp = meta.throughput_of(def.id);
            if let Some(ts) = tp.and_then(|t| t.last_increase) {
                pt.insert("LastIncreaseDateTime".into(), json!(ts));
            }
            if let Some(ts) = tp.and_then(|t| t.last_decrease) {
                pt.insert("LastDecreaseDateTime".into(), json!(ts));
            }
            pt.insert(
                "NumberOfDecreasesToday".into(),
                json!(tp.map(|t| t.decreases_today).unwrap_or(0)),
            );
            pt.insert(
                "ReadCapacityUnits".into(),
                json!(tp.map(|t| t.read_capacity_units).unwrap_or(0)),
            );
            pt.insert(
                "WriteCapacityUnits".into(),
                json!(tp.map(|t| t.write_capacity_units).unwrap_or(0)),
            );
            o.insert("ProvisionedThroughput".into(), pt.into());
            if meta.billing.mode == BillingMode::PayPerRequest {
                let on_demand = meta
                    .capacity_of(def.id)
                    .map(|c| c.on_demand)
                    .unwrap_or_default();
                o.insert("OnDemandThroughput".into(), on_demand_json(&on_demand));
            }
            // The model: the status of an index's warm throughput is UPDATING or ACTIVE.
            let warm_status = match status {
                IndexStatus::Creating => "UPDATING",
                _ => "ACTIVE",
            };
            o.insert(
                "WarmThroughput".into(),
                warm_json(index_warm(meta, def.id), warm_status),
            );
        }
        o.insert("IndexSizeBytes".into(), json!(st.size_bytes));
        o.insert("ItemCount".into(), json!(st.item_count));
        o.insert(
            "IndexArn".into(),
            format!("{}/index/{}", meta.arn, def.name).into(),
        );
        match def.kind {
            IndexKind::Local => local.push(Value::Object(o)),
            IndexKind::Global => global.push(Value::Object(o)),
        }
    }
    if !local.is_empty() {
        t.insert("LocalSecondaryIndexes".into(), local.into());
    }
    if !global.is_empty() {
        t.insert("GlobalSecondaryIndexes".into(), global.into());
    }
}

/// The index key check of a write: every present index key attribute of an item must have the
/// index's type and must not be empty (DynamoDB rejects the write; a missing one just leaves the
/// item out of the index).
pub fn check_index_keys(meta: &TableMeta, item: &shoal_types::Item) -> Result<(), ApiError> {
    for def in meta
        .indexes
        .iter()
        .filter(|i| i.status != IndexStatus::Deleting)
    {
        def.check_item(item)?;
    }
    Ok(())
}
