//! Table definitions: [`TableMeta`] (what DescribeTable reports and what every replica of the
//! table follows), its billing and encryption settings, and [`TableStats`].

use serde::{Deserialize, Serialize};
use shoal_types::ScalarType;
use shoal_types::index::IndexDef;
use shoal_types::key::KeySchema;

/// `TableStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl TableStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TableStatus::Creating => "CREATING",
            TableStatus::Active => "ACTIVE",
            TableStatus::Updating => "UPDATING",
            TableStatus::Deleting => "DELETING",
        }
    }
}

/// `BillingMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BillingMode {
    Provisioned,
    PayPerRequest,
}

impl BillingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::Provisioned => "PROVISIONED",
            BillingMode::PayPerRequest => "PAY_PER_REQUEST",
        }
    }
}

/// Billing settings and the provisioned-throughput history DescribeTable reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Billing {
    pub mode: BillingMode,
    pub read_capacity_units: u64,
    pub write_capacity_units: u64,
    /// Seconds since the epoch.
    pub last_update_to_pay_per_request: Option<f64>,
    pub last_increase: Option<f64>,
    pub last_decrease: Option<f64>,
    pub decreases_today: u64,
}

/// A table encrypted under its own KMS key (DynamoDB's `SSEDescription` with `SSEType` `KMS`): the table's
/// data key is wrapped by this KMS key instead of the node's master key. Tables without it
/// ([`TableMeta::sse`] `None`) use the default encryption, DynamoDB's "AWS owned key".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSse {
    /// ARN of the KMS key (`KMSMasterKeyArn`).
    pub kms_master_key_arn: String,
}

/// The key id in the ARN of Shoal's stand-in for DynamoDB's AWS managed key (never a real KMS
/// key id: those are UUIDs or `mrk-` ids).
const SHOAL_MANAGED_KEY_ID: &str = "shoal-managed";

impl TableSse {
    /// `SSESpecification.Enabled` without a `KMSMasterKeyId` on a node with no KMS: DynamoDB would
    /// use its AWS managed key; Shoal wraps the table's data key with its own master keys (as for
    /// every table) and describes it as `SSEType` `KMS` with this ARN, so templates that ask for
    /// it (CloudFormation, CDK, Terraform) work.
    pub fn shoal_managed(region: &str, account_id: &str) -> TableSse {
        TableSse {
            kms_master_key_arn: format!(
                "arn:aws:kms:{region}:{account_id}:key/{SHOAL_MANAGED_KEY_ID}"
            ),
        }
    }

    /// Whether this is [`TableSse::shoal_managed`]: no KMS key wraps the data key.
    pub fn is_shoal_managed(&self) -> bool {
        self.kms_master_key_arn
            .strip_suffix(SHOAL_MANAGED_KEY_ID)
            .is_some_and(|rest| rest.starts_with("arn:aws:kms:") && rest.ends_with(":key/"))
    }

    /// The KMS key that wraps the table's data key, `None` when Shoal's master keys do.
    pub fn kms_key_arn(&self) -> Option<&str> {
        (!self.is_shoal_managed()).then_some(self.kms_master_key_arn.as_str())
    }
}

/// One table's catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableMeta {
    pub name: String,
    /// A UUID, `TableId`.
    pub id: String,
    pub arn: String,
    pub key_schema: KeySchema,
    /// `AttributeDefinitions` in the order given at creation.
    pub attribute_definitions: Vec<(String, ScalarType)>,
    /// Seconds since the epoch, `CreationDateTime`.
    pub created_at: f64,
    pub status: TableStatus,
    pub billing: Billing,
    pub deletion_protection: bool,
    pub table_class: Option<String>,
    /// Tags in insertion order (keys unique).
    pub tags: Vec<(String, String)>,
    /// Bumped on every change; [`crate::DataPlane::replace_table`] compares it.
    pub version: u64,
    /// The table's own KMS key, if its `SSESpecification` chose one. A backend re-wraps the table's data
    /// key when [`crate::DataPlane::replace_table`] changes this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<TableSse>,
    /// Secondary indexes (local and global), in creation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexDef>,
    /// The id the next new index gets ([`IndexDef::id`]s are never reused).
    #[serde(default)]
    pub next_index_id: u32,
    /// Provisioned throughput of each global secondary index (PROVISIONED tables only; empty for
    /// PAY_PER_REQUEST tables and for local indexes, which share the table's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub index_throughput: Vec<IndexThroughput>,
    /// The table's resource-based policy (`PutResourcePolicy`, `CreateTable`'s
    /// `ResourcePolicy`), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<TablePolicy>,
    /// `OnDemandThroughput` of the table: its request-unit maxima, enforced while the table is
    /// PAY_PER_REQUEST (kept, but not enforced, while it is PROVISIONED, as DynamoDB does).
    #[serde(default, skip_serializing_if = "OnDemandThroughput::is_unlimited")]
    pub on_demand: OnDemandThroughput,
    /// `WarmThroughput` as last asked for; `None` when it never was (DescribeTable then reports
    /// the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<WarmThroughput>,
    /// `OnDemandThroughput` and `WarmThroughput` of the global secondary indexes that have either
    /// (at most one entry per index).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub index_capacity: Vec<IndexCapacity>,
    /// The Time to Live attribute while TTL is enabled (`UpdateTimeToLive`); `None` while it is
    /// disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live: Option<String>,
    /// The table's streams, oldest first: the last one is the latest (`LatestStreamArn`), and
    /// the table writes records to it while it is enabled. Disabled ones are kept while their
    /// records may be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<crate::StreamDef>,
    /// The stream CreateTable enabled (its id and view type), never changed: every partition
    /// of the table starts its log writing records for it, so writes right after CreateTable
    /// have them (later changes go through each partition's log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_stream: Option<(u32, crate::StreamViewType)>,
}

impl TableMeta {
    /// The stream the table writes records to, if one is enabled.
    pub fn stream(&self) -> Option<&crate::StreamDef> {
        self.streams.last().filter(|s| s.enabled())
    }

    /// The resource-based policy of the table (`stream` `None`) or of its stream with id
    /// `stream`.
    pub fn policy_of(&self, stream: Option<u32>) -> Option<&TablePolicy> {
        match stream {
            None => self.resource_policy.as_ref(),
            Some(id) => self
                .streams
                .iter()
                .find(|s| s.id == id)
                .and_then(|s| s.resource_policy.as_ref()),
        }
    }

    /// The stream with ARN `arn`, if the table has it.
    pub fn stream_by_arn(&self, arn: &str) -> Option<&crate::StreamDef> {
        self.streams.iter().find(|s| s.arn(&self.arn) == arn)
    }
}

/// `OnDemandThroughput`: the most request units a table (or global index) in on-demand mode may
/// use per second; `None` is no maximum (`-1` on the wire).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnDemandThroughput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_read_request_units: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_write_request_units: Option<u64>,
}

impl OnDemandThroughput {
    /// Whether neither maximum is set.
    pub fn is_unlimited(&self) -> bool {
        self.max_read_request_units.is_none() && self.max_write_request_units.is_none()
    }
}

/// `WarmThroughput`: the read and write units per second a table (or global index) is asked to
/// sustain at once. Shoal has no cold partitions to warm: the values are kept and described.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmThroughput {
    pub read_units_per_second: u64,
    pub write_units_per_second: u64,
}

/// The on-demand maxima and warm throughput of one global secondary index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexCapacity {
    /// [`IndexDef::id`] of the index.
    pub index: u32,
    #[serde(default, skip_serializing_if = "OnDemandThroughput::is_unlimited")]
    pub on_demand: OnDemandThroughput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<WarmThroughput>,
}

/// A table's resource-based policy: the document as the client sent it (validated by the API
/// before it is stored) and its revision id, which changes whenever the document does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TablePolicy {
    /// The JSON policy document, verbatim.
    pub document: String,
    /// `RevisionId`: opaque, unique per stored document.
    pub revision_id: String,
}

/// The provisioned throughput of one global secondary index and its history
/// (`ProvisionedThroughput` of a `GlobalSecondaryIndexDescription`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexThroughput {
    /// [`IndexDef::id`] of the index.
    pub index: u32,
    pub read_capacity_units: u64,
    pub write_capacity_units: u64,
    /// Seconds since the epoch.
    #[serde(default)]
    pub last_increase: Option<f64>,
    #[serde(default)]
    pub last_decrease: Option<f64>,
    #[serde(default)]
    pub decreases_today: u64,
}

impl TableMeta {
    /// The index named `name`, if the table has one.
    pub fn index(&self, name: &str) -> Option<&IndexDef> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// The provisioned throughput of the global index `index`, if it has one.
    pub fn throughput_of(&self, index: u32) -> Option<&IndexThroughput> {
        self.index_throughput.iter().find(|t| t.index == index)
    }

    /// The on-demand maxima and warm throughput of the global index `index`, if it has either.
    pub fn capacity_of(&self, index: u32) -> Option<&IndexCapacity> {
        self.index_capacity.iter().find(|c| c.index == index)
    }

    /// Whether the table has local secondary indexes (item collections are limited and
    /// `ReturnItemCollectionMetrics` reports on them).
    pub fn has_local_indexes(&self) -> bool {
        self.indexes
            .iter()
            .any(|i| i.kind == shoal_types::index::IndexKind::Local)
    }
}

/// Item count and size of a table, summed over its partitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    pub item_count: u64,
    pub size_bytes: u64,
}
