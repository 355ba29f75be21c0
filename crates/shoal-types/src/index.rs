//! Secondary index definitions shared by the API, storage and node layers.
//!
//! A table has up to 5 local secondary indexes (LSI: the table's partition key, another sort key,
//! stored in the base partition and written in the same apply as the item) and up to 20 global
//! secondary indexes (GSI: their own partition and sort keys, stored as a separately partitioned
//! index table, updated asynchronously through a durable outbox). A GSI key may have up to four
//! partition and four sort attributes ([`IndexKeySchema`]).

use serde::{Deserialize, Serialize};

use crate::index_key::IndexKeySchema;
use crate::key::KeySchema;
use crate::{Item, TypeError};

/// Local or global.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexKind {
    /// `LocalSecondaryIndexes`: same partition key as the table, stored with the base items.
    Local,
    /// `GlobalSecondaryIndexes`: own keys, own partitions, eventually consistent.
    Global,
}

/// `ProjectionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProjectionType {
    /// Only the table's and the index's key attributes.
    KeysOnly,
    /// The key attributes plus [`Projection::non_key_attributes`].
    Include,
    /// Every attribute.
    All,
}

impl ProjectionType {
    /// The DynamoDB name (`KEYS_ONLY`, `INCLUDE`, `ALL`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectionType::KeysOnly => "KEYS_ONLY",
            ProjectionType::Include => "INCLUDE",
            ProjectionType::All => "ALL",
        }
    }
}

/// `Projection`: which attributes an index entry carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projection {
    pub kind: ProjectionType,
    /// `NonKeyAttributes` (only with [`ProjectionType::Include`]), in the order given.
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

/// `IndexStatus` of a global secondary index (local indexes are always active).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexStatus {
    /// Being created; with `backfilling` while existing items are copied in.
    Creating,
    Active,
    Deleting,
}

impl IndexStatus {
    /// The DynamoDB name.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexStatus::Creating => "CREATING",
            IndexStatus::Active => "ACTIVE",
            IndexStatus::Deleting => "DELETING",
        }
    }
}

/// One secondary index of a table, as stored in the catalog and handed to storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    /// Unique within the table, never reused (a deleted index's entries may linger until
    /// cleaned); storage keys index entries by it.
    pub id: u32,
    /// `IndexName`.
    pub name: String,
    pub kind: IndexKind,
    /// The index's key schema (for an LSI the partition key is the table's and there is one
    /// sort key; a GSI may have several attributes of each kind).
    pub key_schema: IndexKeySchema,
    pub projection: Projection,
    pub status: IndexStatus,
    /// True while a new GSI is being backfilled (`Backfilling` in DescribeTable).
    #[serde(default)]
    pub backfilling: bool,
}

impl IndexDef {
    /// Checks the index key attributes of an item about to be written (`PutItem`, the result of
    /// `UpdateItem`): an attribute that is present must have the index key's type and must not be
    /// an empty string or binary. Missing attributes are fine (the item is not indexed).
    ///
    /// # Errors
    /// `TypeError::Validation` with DynamoDB's message, checking the key attributes in schema
    /// order (partition attributes first): `One or more parameter values were invalid: Type mismatch for Index Key {attr}
    /// Expected: {S} Actual: {N} IndexName: {index}`, or for an empty value `One or more
    /// parameter values are not valid. A value specified for a secondary index key is not
    /// supported. The AttributeValue for a key attribute cannot contain an empty string value.
    /// IndexName: {index}, IndexKey: {attr}`; an index key value over the key size limits
    /// (each partition attribute 2048 bytes, the sort attributes together 1024 bytes) with the
    /// table keys' messages.
    pub fn check_item(&self, item: &Item) -> Result<(), TypeError> {
        for attr in self.key_schema.attrs() {
            let Some(v) = item.get(&attr.name) else {
                continue;
            };
            if v.scalar_type() != Some(attr.ty) {
                return Err(TypeError::Validation(format!(
                    "One or more parameter values were invalid: Type mismatch for Index Key {} \
                     Expected: {} Actual: {} IndexName: {}",
                    attr.name,
                    attr.ty.as_str(),
                    v.type_name(),
                    self.name
                )));
            }
            if let Some(kind) = crate::key::empty_kind(v) {
                return Err(TypeError::Validation(format!(
                    "One or more parameter values are not valid. A value specified for a \
                     secondary index key is not supported. The AttributeValue for a key \
                     attribute cannot contain an empty {kind} value. IndexName: {}, IndexKey: {}",
                    self.name, attr.name
                )));
            }
        }
        // An index key value is a key value: the table keys' size limits apply to it.
        self.key_schema.check_key_sizes(item)
    }

    /// The index entry of `item`, or `None` when the item lacks one of the index's key
    /// attributes (every one of a multi-attribute key) or has it with another type (sparse
    /// index: the item is not indexed).
    ///
    /// The entry holds the table's key attributes, the index's key attributes and the projected
    /// attributes.
    pub fn entry(&self, table: &KeySchema, item: &Item) -> Option<Item> {
        for attr in self.key_schema.attrs() {
            let v = item.get(&attr.name)?;
            if v.scalar_type() != Some(attr.ty) {
                return None;
            }
        }
        Some(
            item.iter()
                .filter(|(name, _)| self.projects(table, name))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// Whether the index's entries carry the top-level attribute `name`: a key attribute of the
    /// table (`table`) or of the index, or a projected one.
    pub fn projects(&self, table: &KeySchema, name: &str) -> bool {
        table.is_key_attr(name)
            || self.key_schema.is_key_attr(name)
            || match self.projection.kind {
                ProjectionType::All => true,
                ProjectionType::KeysOnly => false,
                ProjectionType::Include => {
                    self.projection.non_key_attributes.iter().any(|a| a == name)
                }
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyAttr;
    use crate::{AttributeValue, ScalarType};

    fn attr(name: &str, ty: ScalarType) -> KeyAttr {
        KeyAttr {
            name: name.to_string(),
            ty,
        }
    }

    fn def(kind: ProjectionType, include: &[&str]) -> IndexDef {
        IndexDef {
            id: 1,
            name: "by_city".to_string(),
            kind: IndexKind::Global,
            key_schema: KeySchema {
                hash: attr("city", ScalarType::S),
                range: Some(attr("age", ScalarType::N)),
            }
            .into(),
            projection: Projection {
                kind,
                non_key_attributes: include.iter().map(|s| s.to_string()).collect(),
            },
            status: IndexStatus::Active,
            backfilling: false,
        }
    }

    fn table() -> KeySchema {
        KeySchema {
            hash: attr("pk", ScalarType::S),
            range: None,
        }
    }

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_string())
    }

    fn n(v: &str) -> AttributeValue {
        AttributeValue::N(v.parse().unwrap())
    }

    #[test]
    fn projections_keep_exactly_their_attributes() {
        let it = item(&[
            ("pk", s("a")),
            ("city", s("Oslo")),
            ("age", n("3")),
            ("name", s("x")),
            ("other", s("y")),
        ]);
        let keys: Vec<_> = def(ProjectionType::KeysOnly, &[])
            .entry(&table(), &it)
            .unwrap()
            .into_keys()
            .collect();
        assert_eq!(keys, ["age", "city", "pk"]);
        let keys: Vec<_> = def(ProjectionType::Include, &["name"])
            .entry(&table(), &it)
            .unwrap()
            .into_keys()
            .collect();
        assert_eq!(keys, ["age", "city", "name", "pk"]);
        assert_eq!(def(ProjectionType::All, &[]).entry(&table(), &it), Some(it));
    }

    #[test]
    fn check_item_rejects_wrong_types_and_empty_values_with_dynamodbs_messages() {
        let d = def(ProjectionType::All, &[]);
        assert_eq!(d.check_item(&item(&[("pk", s("a"))])), Ok(()));
        assert_eq!(
            d.check_item(&item(&[
                ("pk", s("a")),
                ("city", s("Oslo")),
                ("age", n("3"))
            ])),
            Ok(())
        );
        assert_eq!(
            d.check_item(&item(&[("pk", s("a")), ("city", n("1"))])),
            Err(TypeError::Validation(
                "One or more parameter values were invalid: Type mismatch for Index Key city \
                 Expected: S Actual: N IndexName: by_city"
                    .to_string()
            ))
        );
        assert_eq!(
            d.check_item(&item(&[("pk", s("a")), ("age", s("x"))])),
            Err(TypeError::Validation(
                "One or more parameter values were invalid: Type mismatch for Index Key age \
                 Expected: N Actual: S IndexName: by_city"
                    .to_string()
            ))
        );
        assert_eq!(
            d.check_item(&item(&[("pk", s("a")), ("city", s(""))])),
            Err(TypeError::Validation(
                "One or more parameter values are not valid. A value specified for a secondary \
                 index key is not supported. The AttributeValue for a key attribute cannot \
                 contain an empty string value. IndexName: by_city, IndexKey: city"
                    .to_string()
            ))
        );
    }

    #[test]
    fn check_item_refuses_index_key_values_over_the_key_size_limits() {
        let d = def(ProjectionType::All, &[]);
        // The size of an S key value is its UTF-8 length.
        let at_limit = "c".repeat(2048);
        assert_eq!(
            d.check_item(&item(&[("pk", s("a")), ("city", s(&at_limit))])),
            Ok(())
        );
        let over = "c".repeat(2049);
        assert_eq!(
            d.check_item(&item(&[("pk", s("a")), ("city", s(&over))])),
            Err(TypeError::Validation(
                "One or more parameter values were invalid: Size of hashkey has exceeded the \
                 maximum size limit of2048 bytes"
                    .to_string()
            ))
        );
        let mut lsi = def(ProjectionType::All, &[]);
        lsi.kind = IndexKind::Local;
        lsi.key_schema = KeySchema {
            hash: attr("pk", ScalarType::S),
            range: Some(attr("city", ScalarType::S)),
        }
        .into();
        assert_eq!(
            lsi.check_item(&item(&[("pk", s("a")), ("city", s(&"c".repeat(1024)))])),
            Ok(())
        );
        assert_eq!(
            lsi.check_item(&item(&[("pk", s("a")), ("city", s(&"c".repeat(1025)))])),
            Err(TypeError::Validation(
                "One or more parameter values were invalid: Aggregated size of all range keys \
                 has exceeded the size limit of 1024 bytes"
                    .to_string()
            ))
        );
    }

    #[test]
    fn items_without_the_index_keys_are_not_indexed() {
        let d = def(ProjectionType::All, &[]);
        assert_eq!(
            d.entry(&table(), &item(&[("pk", s("a")), ("city", s("Oslo"))])),
            None
        );
        assert_eq!(
            d.entry(
                &table(),
                &item(&[("pk", s("a")), ("city", n("1")), ("age", n("1"))])
            ),
            None
        );
    }

    #[test]
    fn multi_attribute_keys_index_only_items_with_every_key_attribute() {
        use crate::index_key::{IndexKeySchema, KeyRole};
        let mut d = def(ProjectionType::KeysOnly, &[]);
        d.key_schema = IndexKeySchema::from_elements(vec![
            (attr("city", ScalarType::S), KeyRole::Hash),
            (attr("zip", ScalarType::S), KeyRole::Hash),
            (attr("age", ScalarType::N), KeyRole::Range),
            (attr("rank", ScalarType::N), KeyRole::Range),
        ])
        .unwrap();
        let full = item(&[
            ("pk", s("a")),
            ("city", s("Oslo")),
            ("zip", s("0150")),
            ("age", n("3")),
            ("rank", n("1")),
            ("name", s("x")),
        ]);
        let keys: Vec<_> = d.entry(&table(), &full).unwrap().into_keys().collect();
        assert_eq!(keys, ["age", "city", "pk", "rank", "zip"]);
        let mut sparse = full.clone();
        sparse.remove("rank");
        assert_eq!(d.entry(&table(), &sparse), None);
        assert_eq!(d.check_item(&sparse), Ok(()));
        let mut wrong = full;
        wrong.insert("zip".into(), n("150"));
        assert_eq!(d.entry(&table(), &wrong), None);
        assert_eq!(
            d.check_item(&wrong),
            Err(TypeError::Validation(
                "One or more parameter values were invalid: Type mismatch for Index Key zip \
                 Expected: S Actual: N IndexName: by_city"
                    .to_string()
            ))
        );
    }
}
