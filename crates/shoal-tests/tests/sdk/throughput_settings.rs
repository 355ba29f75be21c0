//! `OnDemandThroughput` (request-unit maximums of an on-demand table or global index) and
//! `WarmThroughput` (the units per second it sustains at once) on CreateTable, UpdateTable and
//! GSI definitions, as DescribeTable shows them, their validation, and a restart.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexDescription, GlobalSecondaryIndexUpdate, IndexStatus, KeyType,
    OnDemandThroughput, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType,
    TableDescription, TableStatus, UpdateGlobalSecondaryIndexAction, WarmThroughput,
};
use shoal_tests::*;

fn maxima(read: Option<i64>, write: Option<i64>) -> OnDemandThroughput {
    OnDemandThroughput::builder()
        .set_max_read_request_units(read)
        .set_max_write_request_units(write)
        .build()
}

fn warm(read: Option<i64>, write: Option<i64>) -> WarmThroughput {
    WarmThroughput::builder()
        .set_read_units_per_second(read)
        .set_write_units_per_second(write)
        .build()
}

fn provisioned(read: i64, write: i64) -> ProvisionedThroughput {
    ProvisionedThroughput::builder()
        .read_capacity_units(read)
        .write_capacity_units(write)
        .build()
        .unwrap()
}

/// A CreateTable of `name` with partition key `pk`.
fn create(client: &Client, name: &str, mode: BillingMode) -> CreateTableFluentBuilder {
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .key_schema(key_elem("pk", KeyType::Hash))
        .billing_mode(mode)
}

/// A global index `name` on `g` (`S`, to define), projecting everything.
fn gsi(name: &str) -> aws_sdk_dynamodb::types::builders::GlobalSecondaryIndexBuilder {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key_elem("g", KeyType::Hash))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
}

fn index<'a>(t: &'a TableDescription, name: &str) -> &'a GlobalSecondaryIndexDescription {
    t.global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some(name))
        .unwrap_or_else(|| panic!("no index {name} in {t:?}"))
}

/// `(MaxReadRequestUnits, MaxWriteRequestUnits)` as described.
fn described_maxima(o: Option<&OnDemandThroughput>) -> (Option<i64>, Option<i64>) {
    let o = o.expect("OnDemandThroughput described");
    (o.max_read_request_units(), o.max_write_request_units())
}

/// `(ReadUnitsPerSecond, WriteUnitsPerSecond, Status)` of a table.
fn table_warm(t: &TableDescription) -> (i64, i64, TableStatus) {
    let w = t.warm_throughput().expect("WarmThroughput described");
    (
        w.read_units_per_second().unwrap(),
        w.write_units_per_second().unwrap(),
        w.status().unwrap().clone(),
    )
}

/// `(ReadUnitsPerSecond, WriteUnitsPerSecond, Status)` of a global index.
fn index_warm(i: &GlobalSecondaryIndexDescription) -> (i64, i64, IndexStatus) {
    let w = i.warm_throughput().expect("index WarmThroughput described");
    (
        w.read_units_per_second().unwrap(),
        w.write_units_per_second().unwrap(),
        w.status().unwrap().clone(),
    )
}

async fn describe(client: &Client, name: &str) -> TableDescription {
    client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
}

/// Waits (at most 20 s) until the table and all its indexes are `ACTIVE`.
async fn wait_all_active(client: &Client, name: &str) -> TableDescription {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = must_wait_active(client, name).await;
        if t.global_secondary_indexes()
            .iter()
            .all(|i| i.index_status() == Some(&IndexStatus::Active))
        {
            return t;
        }
        assert!(Instant::now() < deadline, "indexes of {name} not ACTIVE");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn update_index(
    client: &Client,
    table: &str,
    action: UpdateGlobalSecondaryIndexAction,
) -> TableDescription {
    let out = client
        .update_table()
        .table_name(table)
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder().update(action).build(),
        )
        .send()
        .await
        .unwrap();
    out.table_description.unwrap()
}

/// A table and an index that never set either are described with no maximum (-1) and DynamoDB's
/// default warm throughput (12,000 reads and 4,000 writes per second); a PROVISIONED table
/// sustains at least its provisioned units and shows no `OnDemandThroughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_are_described() {
    let node = TestNode::start().await;
    let client = node.client();
    let out = create(&client, "plain", BillingMode::PayPerRequest)
        .attribute_definitions(attr_def("g", ScalarAttributeType::S))
        .global_secondary_indexes(gsi("by_g").build().unwrap())
        .send()
        .await
        .unwrap()
        .table_description
        .unwrap();
    assert_eq!(
        described_maxima(out.on_demand_throughput()),
        (Some(-1), Some(-1))
    );
    assert_eq!(table_warm(&out), (12_000, 4_000, TableStatus::Creating));
    let t = wait_all_active(&client, "plain").await;
    assert_eq!(
        described_maxima(t.on_demand_throughput()),
        (Some(-1), Some(-1))
    );
    assert_eq!(table_warm(&t), (12_000, 4_000, TableStatus::Active));
    let ix = index(&t, "by_g");
    assert_eq!(
        described_maxima(ix.on_demand_throughput()),
        (Some(-1), Some(-1))
    );
    assert_eq!(index_warm(ix), (12_000, 4_000, IndexStatus::Active));

    create(&client, "prov", BillingMode::Provisioned)
        .provisioned_throughput(provisioned(13_000, 5))
        .attribute_definitions(attr_def("g", ScalarAttributeType::S))
        .global_secondary_indexes(
            gsi("by_g")
                .provisioned_throughput(provisioned(5, 4_500))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let t = wait_all_active(&client, "prov").await;
    assert!(t.on_demand_throughput().is_none(), "{t:?}");
    assert_eq!(table_warm(&t), (13_000, 4_000, TableStatus::Active));
    let ix = index(&t, "by_g");
    assert!(ix.on_demand_throughput().is_none());
    assert_eq!(index_warm(ix), (12_000, 4_500, IndexStatus::Active));
}

/// Maximums and warm throughput set by CreateTable (table and index) are described back;
/// UpdateTable changes each alone (a valid change by itself), keeps the member it does not
/// give, and `-1` removes a maximum; an index created by UpdateTable takes its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_created_described_and_updated() {
    let node = TestNode::start().await;
    let client = node.client();
    create(&client, "capped", BillingMode::PayPerRequest)
        .on_demand_throughput(maxima(Some(100), Some(50)))
        .warm_throughput(warm(Some(20_000), Some(5_000)))
        .attribute_definitions(attr_def("g", ScalarAttributeType::S))
        .global_secondary_indexes(
            gsi("by_g")
                .on_demand_throughput(maxima(None, Some(10)))
                .warm_throughput(warm(Some(15_000), None))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let t = wait_all_active(&client, "capped").await;
    assert_eq!(
        described_maxima(t.on_demand_throughput()),
        (Some(100), Some(50))
    );
    assert_eq!(table_warm(&t), (20_000, 5_000, TableStatus::Active));
    let ix = index(&t, "by_g");
    assert_eq!(
        described_maxima(ix.on_demand_throughput()),
        (Some(-1), Some(10))
    );
    assert_eq!(index_warm(ix), (15_000, 4_000, IndexStatus::Active));

    // OnDemandThroughput alone: the read maximum removed, the write one kept.
    let out = client
        .update_table()
        .table_name("capped")
        .on_demand_throughput(maxima(Some(-1), None))
        .send()
        .await
        .unwrap()
        .table_description
        .unwrap();
    assert_eq!(
        described_maxima(out.on_demand_throughput()),
        (Some(-1), Some(50))
    );
    assert_eq!(table_warm(&out).2, TableStatus::Updating);
    must_wait_active(&client, "capped").await;
    // WarmThroughput alone: the write units raised, the read ones kept.
    client
        .update_table()
        .table_name("capped")
        .warm_throughput(warm(None, Some(6_000)))
        .send()
        .await
        .unwrap();
    let t = must_wait_active(&client, "capped").await;
    assert_eq!(table_warm(&t), (20_000, 6_000, TableStatus::Active));
    assert_eq!(
        described_maxima(t.on_demand_throughput()),
        (Some(-1), Some(50))
    );

    // The index's own, by an Update action without ProvisionedThroughput.
    update_index(
        &client,
        "capped",
        UpdateGlobalSecondaryIndexAction::builder()
            .index_name("by_g")
            .on_demand_throughput(maxima(Some(30), Some(-1)))
            .warm_throughput(warm(None, Some(4_500)))
            .build()
            .unwrap(),
    )
    .await;
    let t = wait_all_active(&client, "capped").await;
    let ix = index(&t, "by_g");
    assert_eq!(
        described_maxima(ix.on_demand_throughput()),
        (Some(30), Some(-1))
    );
    assert_eq!(index_warm(ix), (15_000, 4_500, IndexStatus::Active));

    // An index created by UpdateTable with both.
    client
        .update_table()
        .table_name("capped")
        .attribute_definitions(attr_def("h", ScalarAttributeType::N))
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .create(
                    CreateGlobalSecondaryIndexAction::builder()
                        .index_name("by_h")
                        .key_schema(key_elem("h", KeyType::Hash))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::KeysOnly)
                                .build(),
                        )
                        .on_demand_throughput(maxima(Some(7), Some(8)))
                        .warm_throughput(warm(Some(13_000), Some(4_100)))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let t = wait_all_active(&client, "capped").await;
    let ix = index(&t, "by_h");
    assert_eq!(
        described_maxima(ix.on_demand_throughput()),
        (Some(7), Some(8))
    );
    assert_eq!(index_warm(ix), (13_000, 4_100, IndexStatus::Active));
    assert_eq!(
        described_maxima(index(&t, "by_g").on_demand_throughput()),
        (Some(30), Some(-1))
    );
}

/// The rules of each member, refused with `ValidationException` before anything changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_settings_are_refused() {
    let node = TestNode::start().await;
    let client = node.client();
    let on_demand = || create(&client, "bad", BillingMode::PayPerRequest);

    let r = on_demand()
        .on_demand_throughput(maxima(None, None))
        .send()
        .await;
    assert_validation(
        r,
        "One or more parameter values were invalid: at least one of MaxReadRequestUnits and MaxWriteRequestUnits must be specified in 'onDemandThroughput'",
    );
    for bad in [0, -2] {
        let r = on_demand()
            .on_demand_throughput(maxima(Some(bad), Some(5)))
            .send()
            .await;
        assert_validation(
            r,
            &format!(
                "One or more parameter values were invalid: MaxReadRequestUnits in 'onDemandThroughput' must be greater than or equal to 1, or -1 to remove the maximum; got {bad}"
            ),
        );
    }
    let r = on_demand()
        .attribute_definitions(attr_def("g", ScalarAttributeType::S))
        .global_secondary_indexes(
            gsi("by_g")
                .on_demand_throughput(maxima(None, Some(0)))
                .build()
                .unwrap(),
        )
        .send()
        .await;
    assert_validation(
        r,
        "MaxWriteRequestUnits in 'globalSecondaryIndexes.1.member.onDemandThroughput' must be greater than or equal to 1",
    );
    let r = on_demand().warm_throughput(warm(None, None)).send().await;
    assert_validation(
        r,
        "One or more parameter values were invalid: at least one of ReadUnitsPerSecond and WriteUnitsPerSecond must be specified in 'warmThroughput'",
    );
    let r = on_demand()
        .warm_throughput(warm(Some(0), None))
        .send()
        .await;
    assert_validation(
        r,
        "One or more parameter values were invalid: ReadUnitsPerSecond in 'warmThroughput' must be greater than or equal to 1; got 0",
    );
    let r = on_demand()
        .warm_throughput(warm(Some(100), None))
        .send()
        .await;
    assert_validation(
        r,
        "One or more parameter values were invalid: WarmThroughput can only be increased: the requested ReadUnitsPerSecond (100) is lower than the current 12000 of table: bad",
    );
    let r = on_demand()
        .attribute_definitions(attr_def("g", ScalarAttributeType::S))
        .global_secondary_indexes(
            gsi("by_g")
                .warm_throughput(warm(None, Some(10)))
                .build()
                .unwrap(),
        )
        .send()
        .await;
    assert_validation(
        r,
        "the requested WriteUnitsPerSecond (10) is lower than the current 4000 of index: by_g",
    );
    // A maximum is for on-demand tables; -1 (no maximum) is accepted in either mode.
    let r = create(&client, "bad", BillingMode::Provisioned)
        .provisioned_throughput(provisioned(5, 5))
        .on_demand_throughput(maxima(Some(10), None))
        .send()
        .await;
    assert_validation(
        r,
        "One or more parameter values were invalid: OnDemandThroughput with a maximum (other than -1) cannot be specified when BillingMode is PROVISIONED",
    );
    let r = create(&client, "bad", BillingMode::Provisioned)
        .provisioned_throughput(provisioned(5, 5))
        .attribute_definitions(attr_def("g", ScalarAttributeType::S))
        .global_secondary_indexes(
            gsi("by_g")
                .provisioned_throughput(provisioned(5, 5))
                .on_demand_throughput(maxima(Some(10), None))
                .build()
                .unwrap(),
        )
        .send()
        .await;
    assert_validation(
        r,
        "One or more parameter values were invalid: OnDemandThroughput with a maximum (other than -1) should not be specified for index: by_g when BillingMode is PROVISIONED",
    );
    assert!(must_list_all_tables(&client).await.is_empty());

    create(&client, "prov", BillingMode::Provisioned)
        .provisioned_throughput(provisioned(5, 5))
        .on_demand_throughput(maxima(Some(-1), Some(-1)))
        .attribute_definitions(attr_def("g", ScalarAttributeType::S))
        .global_secondary_indexes(
            gsi("by_g")
                .provisioned_throughput(provisioned(5, 5))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    wait_all_active(&client, "prov").await;
    let r = client
        .update_table()
        .table_name("prov")
        .on_demand_throughput(maxima(None, Some(3)))
        .send()
        .await;
    assert_validation(r, "cannot be specified when BillingMode is PROVISIONED");
    let r = client
        .update_table()
        .table_name("prov")
        .warm_throughput(warm(Some(11_999), None))
        .send()
        .await;
    assert_validation(r, "lower than the current 12000 of table: prov");
    let r = client
        .update_table()
        .table_name("prov")
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .update(
                    UpdateGlobalSecondaryIndexAction::builder()
                        .index_name("by_g")
                        .on_demand_throughput(maxima(Some(4), None))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await;
    assert_validation(
        r,
        "should not be specified for index: by_g when BillingMode is PROVISIONED",
    );
    // Nothing to change is still refused with DynamoDB's message.
    let r = client.update_table().table_name("prov").send().await;
    assert_validation(r, "At least one of ProvisionedThroughput, BillingMode");
    let t = describe(&client, "prov").await;
    assert_eq!(table_warm(&t), (12_000, 4_000, TableStatus::Active));
}

/// A PROVISIONED table keeps its on-demand maximums (not described, not enforced) for when it
/// switches back; warm throughput never decreases: a table switched to on-demand sustains at
/// least what it had provisioned (the developer guide's "8,000 WCU and 24,000 RCU" example).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_modes_keeps_the_settings() {
    let node = TestNode::start().await;
    let client = node.client();
    create(&client, "switched", BillingMode::PayPerRequest)
        .on_demand_throughput(maxima(Some(100), None))
        .send()
        .await
        .unwrap();
    must_wait_active(&client, "switched").await;
    client
        .update_table()
        .table_name("switched")
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(provisioned(24_000, 8_000))
        .send()
        .await
        .unwrap();
    let t = must_wait_active(&client, "switched").await;
    assert!(t.on_demand_throughput().is_none());
    assert_eq!(table_warm(&t), (24_000, 8_000, TableStatus::Active));
    client
        .update_table()
        .table_name("switched")
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let t = must_wait_active(&client, "switched").await;
    assert_eq!(
        described_maxima(t.on_demand_throughput()),
        (Some(100), Some(-1))
    );
    assert_eq!(table_warm(&t), (24_000, 8_000, TableStatus::Active));
}

/// The settings are part of the table's stored metadata: a restarted node describes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_survive_a_restart() {
    let mut node = TestNode::start().await;
    let client = node.client();
    create(&client, "kept", BillingMode::PayPerRequest)
        .on_demand_throughput(maxima(Some(40), Some(20)))
        .warm_throughput(warm(Some(30_000), Some(9_000)))
        .attribute_definitions(attr_def("g", ScalarAttributeType::S))
        .global_secondary_indexes(
            gsi("by_g")
                .on_demand_throughput(maxima(Some(5), None))
                .warm_throughput(warm(None, Some(7_000)))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    wait_all_active(&client, "kept").await;
    node.restart().await;
    let client = node.client();
    let t = wait_all_active(&client, "kept").await;
    assert_eq!(
        described_maxima(t.on_demand_throughput()),
        (Some(40), Some(20))
    );
    assert_eq!(table_warm(&t), (30_000, 9_000, TableStatus::Active));
    let ix = index(&t, "by_g");
    assert_eq!(
        described_maxima(ix.on_demand_throughput()),
        (Some(5), Some(-1))
    );
    assert_eq!(index_warm(ix), (12_000, 7_000, IndexStatus::Active));
}
