//! Fixtures shared by the unit tests of this crate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use shoal_catalog::{Billing, BillingMode, TableMeta, TableStatus};
use shoal_types::ScalarType;
use shoal_types::key::{KeyAttr, KeySchema};

use crate::NodeConfig;

/// A string key attribute called `name`.
pub(crate) fn attr(name: &str) -> KeyAttr {
    KeyAttr {
        name: name.into(),
        ty: ScalarType::S,
    }
}

/// An on-demand table `name` keyed by the string `pk`, with `extra` string attributes defined
/// besides it and no indexes.
pub(crate) fn table_meta(name: &str, extra: &[&str]) -> TableMeta {
    let mut attribute_definitions = vec![("pk".into(), ScalarType::S)];
    attribute_definitions.extend(extra.iter().map(|a| (a.to_string(), ScalarType::S)));
    TableMeta {
        name: name.to_string(),
        id: format!("id-{name}"),
        arn: format!("arn:aws:dynamodb:us-east-1:000000000000:table/{name}"),
        key_schema: KeySchema {
            hash: attr("pk"),
            range: None,
        },
        attribute_definitions,
        created_at: 0.0,
        status: TableStatus::Active,
        billing: Billing {
            mode: BillingMode::PayPerRequest,
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
        resource_policy: None,
        version: 1,
        sse: None,
        indexes: Vec::new(),
        next_index_id: 1,
        index_throughput: Vec::new(),
        on_demand: Default::default(),
        warm: None,
        index_capacity: Vec::new(),
        time_to_live: None,
        streams: Vec::new(),
        initial_stream: None,
    }
}

/// A node configuration with its data and keys inside `dir`.
pub(crate) fn config(dir: &tempfile::TempDir) -> NodeConfig {
    NodeConfig {
        data_dir: dir.path().join("data"),
        keys_dir: dir.path().join("keys"),
        ..NodeConfig::default()
    }
}

/// A node serving `config`'s directories on free ports (table DDL and writes need its cluster).
pub(crate) async fn running(config: &NodeConfig) -> crate::RunningNode {
    let config = NodeConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        ..config.clone()
    };
    crate::Node::start(config).await.unwrap()
}
