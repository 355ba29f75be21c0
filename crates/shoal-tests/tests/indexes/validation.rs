//! Secondary indexes in the control plane and the request checks that involve them, through the
//! AWS SDK against a real node: CreateTable/UpdateTable validation with DynamoDB's error types
//! and messages, the index descriptions of CreateTable/DescribeTable/UpdateTable, and the
//! index-related rejections of Query, Scan, PutItem and BatchWriteItem.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    BillingMode, CreateGlobalSecondaryIndexAction, DeleteGlobalSecondaryIndexAction,
    GlobalSecondaryIndex, GlobalSecondaryIndexUpdate, IndexStatus, KeyType, LocalSecondaryIndex,
    Projection, ProjectionType, ProvisionedThroughput, PutRequest, ReturnConsumedCapacity,
    ReturnItemCollectionMetrics, ScalarAttributeType, Select, UpdateGlobalSecondaryIndexAction,
    WriteRequest,
};
use shoal_tests::*;

use crate::support::{gsi, projection as proj};

use ScalarAttributeType::{N, S};

fn lsi(name: &str, hash: &str, range: Option<&str>, p: Projection) -> LocalSecondaryIndex {
    let mut b = LocalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key_elem(hash, KeyType::Hash))
        .projection(p);
    if let Some(r) = range {
        b = b.key_schema(key_elem(r, KeyType::Range));
    }
    b.build().unwrap()
}

fn throughput(r: i64, w: i64) -> ProvisionedThroughput {
    ProvisionedThroughput::builder()
        .read_capacity_units(r)
        .write_capacity_units(w)
        .build()
        .unwrap()
}

/// Sends the CreateTable `req`: it must fail with a ValidationException saying `message` and
/// leave no table behind.
async fn must_reject_create(client: &Client, req: CreateTableFluentBuilder, message: &str) {
    let name = req.get_table_name().clone().unwrap_or_default();
    assert_validation(req.send().await, message);
    assert_code(
        client.describe_table().table_name(&name).send().await,
        "ResourceNotFoundException",
    );
}

/// A CreateTable of an on-demand table keyed `pk` (S) + `sk` (N) with extra attribute
/// definitions `attrs`.
fn create(
    client: &Client,
    name: &str,
    attrs: &[(&str, ScalarAttributeType)],
) -> CreateTableFluentBuilder {
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr_def("pk", S))
        .attribute_definitions(attr_def("sk", N))
        .key_schema(key_elem("pk", KeyType::Hash))
        .key_schema(key_elem("sk", KeyType::Range));
    for (a, t) in attrs {
        req = req.attribute_definitions(attr_def(a, t.clone()));
    }
    req
}

/// A CreateTable of [`create`] with LSI `by_date` (pk, date) INCLUDE `lsi_include`, GSI
/// `by_city` (city, age) KEYS_ONLY and GSI `by_owner` (owner) ALL.
fn create_indexed(client: &Client, name: &str, lsi_include: &[&str]) -> CreateTableFluentBuilder {
    create(
        client,
        name,
        &[("date", S), ("city", S), ("age", N), ("owner", S)],
    )
    .local_secondary_indexes(lsi(
        "by_date",
        "pk",
        Some("date"),
        proj(ProjectionType::Include, lsi_include),
    ))
    .global_secondary_indexes(gsi(
        "by_city",
        "city",
        Some("age"),
        proj(ProjectionType::KeysOnly, &[]),
    ))
    .global_secondary_indexes(gsi(
        "by_owner",
        "owner",
        None,
        proj(ProjectionType::All, &[]),
    ))
}

/// The table every query test uses: LSI `by_date` (pk, date) INCLUDE [title], GSI `by_city`
/// (city, age) KEYS_ONLY, GSI `by_owner` (owner) ALL.
async fn indexed_table(client: &Client, name: &str) {
    let r = create_indexed(client, name, &["title"]).send().await;
    if let Err(e) = r {
        panic!("CreateTable {name}: {}", describe_error(&e));
    }
    must_wait_active(client, name).await;
}

fn key_names(ks: &[aws_sdk_dynamodb::types::KeySchemaElement]) -> Vec<(String, String)> {
    ks.iter()
        .map(|k| {
            (
                k.attribute_name().to_string(),
                k.key_type().as_str().to_string(),
            )
        })
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

// ---------------------------------------------------------------------------------------------
// CreateTable and DescribeTable shapes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_with_indexes_describes_them() {
    let node = TestNode::start().await;
    let client = node.client();
    let out = create_indexed(&client, "ix_describe", &["title", "body"])
        .send()
        .await
        .unwrap();
    let created = out.table_description.unwrap();
    // While the table is being created, its global indexes are too (and show no Backfilling).
    for g in created.global_secondary_indexes() {
        assert_eq!(g.index_status(), Some(&IndexStatus::Creating), "{g:?}");
        assert_eq!(g.backfilling(), None, "{g:?}");
    }

    let t = must_wait_active(&client, "ix_describe").await;
    let arn = t.table_arn().unwrap().to_string();
    let mut defs: Vec<(String, String)> = t
        .attribute_definitions()
        .iter()
        .map(|d| {
            (
                d.attribute_name().to_string(),
                d.attribute_type().as_str().to_string(),
            )
        })
        .collect();
    defs.sort();
    assert_eq!(
        defs,
        [
            pair("age", "N"),
            pair("city", "S"),
            pair("date", "S"),
            pair("owner", "S"),
            pair("pk", "S"),
            pair("sk", "N"),
        ]
    );

    let lsis = t.local_secondary_indexes();
    assert_eq!(lsis.len(), 1);
    let l = &lsis[0];
    assert_eq!(l.index_name(), Some("by_date"));
    assert_eq!(
        key_names(l.key_schema()),
        [pair("pk", "HASH"), pair("date", "RANGE")]
    );
    let p = l.projection().unwrap();
    assert_eq!(p.projection_type(), Some(&ProjectionType::Include));
    assert_eq!(p.non_key_attributes(), ["title", "body"]);
    assert_eq!(l.item_count(), Some(0));
    assert_eq!(l.index_size_bytes(), Some(0));
    assert_eq!(l.index_arn(), Some(format!("{arn}/index/by_date").as_str()));

    let gsis = t.global_secondary_indexes();
    assert_eq!(gsis.len(), 2);
    let city = gsis
        .iter()
        .find(|g| g.index_name() == Some("by_city"))
        .unwrap();
    assert_eq!(
        key_names(city.key_schema()),
        [pair("city", "HASH"), pair("age", "RANGE")]
    );
    let p = city.projection().unwrap();
    assert_eq!(p.projection_type(), Some(&ProjectionType::KeysOnly));
    assert!(p.non_key_attributes().is_empty());
    assert_eq!(city.index_status(), Some(&IndexStatus::Active));
    assert_eq!(
        city.backfilling(),
        None,
        "indexes made by CreateTable show no Backfilling"
    );
    let pt = city.provisioned_throughput().unwrap();
    assert_eq!(pt.read_capacity_units(), Some(0));
    assert_eq!(pt.write_capacity_units(), Some(0));
    assert_eq!(pt.number_of_decreases_today(), Some(0));
    assert_eq!(city.item_count(), Some(0));
    assert_eq!(city.index_size_bytes(), Some(0));
    assert_eq!(
        city.index_arn(),
        Some(format!("{arn}/index/by_city").as_str())
    );
    let owner = gsis
        .iter()
        .find(|g| g.index_name() == Some("by_owner"))
        .unwrap();
    assert_eq!(key_names(owner.key_schema()), [pair("owner", "HASH")]);
    assert_eq!(
        owner.projection().unwrap().projection_type(),
        Some(&ProjectionType::All)
    );

    // A table without indexes has neither list.
    must_create_hash_table(&client, "ix_plain").await;
    let plain = client
        .describe_table()
        .table_name("ix_plain")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert!(plain.local_secondary_indexes.is_none());
    assert!(plain.global_secondary_indexes.is_none());

    // DeleteTable's description carries the indexes too.
    let deleted = client
        .delete_table()
        .table_name("ix_describe")
        .send()
        .await
        .unwrap()
        .table_description
        .unwrap();
    assert_eq!(deleted.local_secondary_indexes().len(), 1);
    assert_eq!(deleted.global_secondary_indexes().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_tables_need_throughput_per_global_index() {
    let node = TestNode::start().await;
    let client = node.client();
    let provisioned = |name: &str| {
        client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::Provisioned)
            .provisioned_throughput(throughput(5, 5))
            .attribute_definitions(attr_def("pk", S))
            .attribute_definitions(attr_def("city", S))
            .key_schema(key_elem("pk", KeyType::Hash))
    };
    let r = provisioned("ix_prov")
        .global_secondary_indexes(gsi("by_city", "city", None, proj(ProjectionType::All, &[])))
        .send()
        .await;
    assert_validation(
        r,
        "One or more parameter values were invalid: ProvisionedThroughput must be specified for index: by_city",
    );

    let mut with_tp = gsi("by_city", "city", None, proj(ProjectionType::All, &[]));
    with_tp.provisioned_throughput = Some(throughput(7, 3));
    provisioned("ix_prov")
        .global_secondary_indexes(with_tp.clone())
        .send()
        .await
        .unwrap();
    let t = must_wait_active(&client, "ix_prov").await;
    let pt = t.global_secondary_indexes()[0]
        .provisioned_throughput()
        .unwrap();
    assert_eq!(pt.read_capacity_units(), Some(7));
    assert_eq!(pt.write_capacity_units(), Some(3));

    // On-demand tables must not give it.
    let req = client
        .create_table()
        .table_name("ix_ondemand")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr_def("pk", S))
        .attribute_definitions(attr_def("city", S))
        .key_schema(key_elem("pk", KeyType::Hash))
        .global_secondary_indexes(with_tp);
    must_reject_create(
        &client,
        req,
        "One or more parameter values were invalid: ProvisionedThroughput should not be specified for index: by_city when BillingMode is PAY_PER_REQUEST",
    )
    .await;

    // UpdateTable: a GSI's throughput changes with an Update action.
    let out = client
        .update_table()
        .table_name("ix_prov")
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .update(
                    UpdateGlobalSecondaryIndexAction::builder()
                        .index_name("by_city")
                        .provisioned_throughput(throughput(9, 4))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let pt = out.table_description.unwrap().global_secondary_indexes()[0]
        .provisioned_throughput()
        .unwrap()
        .clone();
    assert_eq!(pt.read_capacity_units(), Some(9));
    assert_eq!(pt.write_capacity_units(), Some(4));
    assert!(pt.last_increase_date_time().is_some());
}

// ---------------------------------------------------------------------------------------------
// CreateTable validation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_index_rules() {
    let node = TestNode::start().await;
    let client = node.client();
    let all = || proj(ProjectionType::All, &[]);

    // The table needs a sort key.
    let req = client
        .create_table()
        .table_name("ix_lsi")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr_def("pk", S))
        .attribute_definitions(attr_def("date", S))
        .key_schema(key_elem("pk", KeyType::Hash))
        .local_secondary_indexes(lsi("by_date", "pk", Some("date"), all()));
    must_reject_create(
        &client,
        req,
        "One or more parameter values were invalid: Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
    )
    .await;

    // Same partition key as the table.
    let req = create(&client, "ix_lsi", &[("date", S), ("other", S)]).local_secondary_indexes(lsi(
        "by_date",
        "other",
        Some("date"),
        all(),
    ));
    must_reject_create(
        &client,
        req,
        "One or more parameter values were invalid: Index KeySchema does not have the same leading hash key as table KeySchema for index: by_date. index hash key: other, table hash key: pk",
    )
    .await;

    // A sort key is required.
    let req =
        create(&client, "ix_lsi", &[]).local_secondary_indexes(lsi("by_date", "pk", None, all()));
    must_reject_create(
        &client,
        req,
        "One or more parameter values were invalid: Index KeySchema does not have a range key for index: by_date",
    )
    .await;

    // At most 5.
    let names = ["a1", "a2", "a3", "a4", "a5", "a6"];
    let mut req = create(&client, "ix_lsi", &names.map(|n| (n, S)));
    for n in names {
        req = req.local_secondary_indexes(lsi(&format!("ix_{n}"), "pk", Some(n), all()));
    }
    assert_validation(
        req.send().await,
        "One or more parameter values were invalid: Number of LocalSecondaryIndexes exceeds per-table limit of 5",
    );
    let mut req = create(
        &client,
        "ix_lsi5",
        &names[..5].iter().map(|n| (*n, S)).collect::<Vec<_>>(),
    );
    for n in &names[..5] {
        req = req.local_secondary_indexes(lsi(&format!("ix_{n}"), "pk", Some(n), all()));
    }
    req.send().await.unwrap();

    // An empty list.
    let req = create(&client, "ix_lsi", &[]).set_local_secondary_indexes(Some(Vec::new()));
    must_reject_create(
        &client,
        req,
        "One or more parameter values were invalid: List of LocalSecondaryIndexes is empty",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_index_key_and_definition_rules() {
    let node = TestNode::start().await;
    let client = node.client();
    let all = || proj(ProjectionType::All, &[]);

    // Every index key attribute must be defined.
    let req = create(&client, "ix_gsi", &[]).global_secondary_indexes(gsi(
        "by_city",
        "city",
        None,
        all(),
    ));
    must_reject_create(
        &client,
        req,
        "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [city], AttributeDefinitions: [pk, sk]",
    )
    .await;

    // No definition may go unused.
    let req = create(&client, "ix_gsi", &[("city", S), ("unused", N)])
        .global_secondary_indexes(gsi("by_city", "city", None, all()));
    must_reject_create(
        &client,
        req,
        "One or more parameter values were invalid: Some AttributeDefinitions are not used. AttributeDefinitions: [pk, sk, city, unused], keys used: [pk, sk, city]",
    )
    .await;

    // Hash first, range second, different names.
    let bad = GlobalSecondaryIndex::builder()
        .index_name("by_city")
        .key_schema(key_elem("city", KeyType::Range))
        .projection(all())
        .build()
        .unwrap();
    let req = create(&client, "ix_gsi", &[("city", S)]).global_secondary_indexes(bad);
    must_reject_create(
        &client,
        req,
        "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
    )
    .await;
    let req = create(&client, "ix_gsi", &[("city", S)]).global_secondary_indexes(gsi(
        "by_city",
        "city",
        Some("city"),
        all(),
    ));
    must_reject_create(
        &client,
        req,
        "Invalid KeySchema: Both the Hash Key and the Range Key element in the KeySchema have the same name",
    )
    .await;

    // Names unique across local and global indexes.
    let req = create(&client, "ix_gsi", &[("city", S)])
        .local_secondary_indexes(lsi("dup", "pk", Some("city"), all()))
        .global_secondary_indexes(gsi("dup", "city", None, all()));
    must_reject_create(
        &client,
        req,
        "One or more parameter values were invalid: Duplicate index name: dup",
    )
    .await;

    // At most 20 global indexes.
    let mut req = create(&client, "ix_gsi", &[("city", S)]);
    for i in 0..21 {
        req = req.global_secondary_indexes(gsi(&format!("g{i:02}"), "city", None, all()));
    }
    assert_validation(
        req.send().await,
        "One or more parameter values were invalid: Number of GlobalSecondaryIndexes exceeds per-table limit of 20",
    );

    // Index names follow the model: 3-255 characters of [a-zA-Z0-9_.-].
    let req = create(&client, "ix_gsi", &[("city", S)]).global_secondary_indexes(gsi(
        "ab",
        "city",
        None,
        all(),
    ));
    must_reject_create(
        &client,
        req,
        "1 validation error detected: Value 'ab' at 'globalSecondaryIndexes.1.member.indexName' failed to satisfy constraint: Member must have length greater than or equal to 3",
    )
    .await;
    let req = create(&client, "ix_gsi", &[("city", S)]).global_secondary_indexes(gsi(
        "by city",
        "city",
        None,
        all(),
    ));
    must_reject_create(
        &client,
        req,
        "Value 'by city' at 'globalSecondaryIndexes.1.member.indexName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_rules() {
    let node = TestNode::start().await;
    let client = node.client();
    let one = |p: Projection| {
        create(&client, "ix_proj", &[("city", S)])
            .global_secondary_indexes(gsi("by_city", "city", None, p))
    };

    let req = one(Projection::builder()
        .projection_type(ProjectionType::Include)
        .build());
    must_reject_create(
        &client,
        req,
        "One or more parameter values were invalid: ProjectionType is INCLUDE, but NonKeyAttributes is not specified for index: by_city",
    )
    .await;
    let r = one(proj(ProjectionType::KeysOnly, &["title"])).send().await;
    assert_validation(
        r,
        "One or more parameter values were invalid: ProjectionType is KEYS_ONLY, but NonKeyAttributes is specified for index: by_city",
    );
    let r = one(proj(ProjectionType::All, &["title"])).send().await;
    assert_validation(
        r,
        "One or more parameter values were invalid: ProjectionType is ALL, but NonKeyAttributes is specified for index: by_city",
    );
    let r = one(Projection::builder().build()).send().await;
    assert_validation(
        r,
        "One or more parameter values were invalid: ProjectionType must be specified for index: by_city",
    );
    let req = one(proj(ProjectionType::Include, &["title", "title"]));
    must_reject_create(
        &client,
        req,
        "One or more parameter values were invalid: Duplicate attribute in NonKeyAttributes: title for index: by_city",
    )
    .await;
    let r = one(proj(ProjectionType::Include, &["sk"])).send().await;
    assert_validation(
        r,
        "One or more parameter values were invalid: NonKeyAttributes must not contain key attributes: sk is a key attribute of index: by_city",
    );

    // At most 20 NonKeyAttributes per index (model) and 100 summed over all indexes.
    let many: Vec<String> = (0..21).map(|i| format!("a{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let r = one(proj(ProjectionType::Include, &refs)).send().await;
    assert_validation(
        r,
        "Value '21 elements' at 'globalSecondaryIndexes.1.member.projection.nonKeyAttributes' failed to satisfy constraint: Member must have length less than or equal to 20",
    );
    let mut req = create(&client, "ix_proj", &[("city", S)]);
    for g in 0..6 {
        let attrs: Vec<String> = (0..20).map(|i| format!("g{g}_{i}")).collect();
        let refs: Vec<&str> = attrs.iter().map(String::as_str).collect();
        req = req.global_secondary_indexes(gsi(
            &format!("idx{g}"),
            "city",
            None,
            proj(ProjectionType::Include, &refs),
        ));
    }
    assert_validation(
        req.send().await,
        "One or more parameter values were invalid: The number of NonKeyAttributes summed across all secondary indexes (120) exceeds the limit of 100",
    );

    // 100 in total is fine.
    let mut req = create(&client, "ix_proj", &[("city", S)]);
    for g in 0..5 {
        let attrs: Vec<String> = (0..20).map(|i| format!("g{g}_{i}")).collect();
        let refs: Vec<&str> = attrs.iter().map(String::as_str).collect();
        req = req.global_secondary_indexes(gsi(
            &format!("idx{g}"),
            "city",
            None,
            proj(ProjectionType::Include, &refs),
        ));
    }
    req.send().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// UpdateTable GlobalSecondaryIndexUpdates

fn create_action(name: &str, hash: &str) -> GlobalSecondaryIndexUpdate {
    GlobalSecondaryIndexUpdate::builder()
        .create(
            CreateGlobalSecondaryIndexAction::builder()
                .index_name(name)
                .key_schema(key_elem(hash, KeyType::Hash))
                .projection(proj(ProjectionType::Include, &["title"]))
                .build()
                .unwrap(),
        )
        .build()
}

fn delete_action(name: &str) -> GlobalSecondaryIndexUpdate {
    GlobalSecondaryIndexUpdate::builder()
        .delete(
            DeleteGlobalSecondaryIndexAction::builder()
                .index_name(name)
                .build()
                .unwrap(),
        )
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_table_creates_and_deletes_global_indexes() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_range_table(&client, "ix_upd").await;

    // The new index's key attributes must be in the request's AttributeDefinitions.
    let r = client
        .update_table()
        .table_name("ix_upd")
        .global_secondary_index_updates(create_action("by_city", "city"))
        .send()
        .await;
    assert_validation(
        r,
        "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [city]",
    );
    // One create or delete per call.
    let r = client
        .update_table()
        .table_name("ix_upd")
        .attribute_definitions(attr_def("city", S))
        .attribute_definitions(attr_def("owner", S))
        .global_secondary_index_updates(create_action("by_city", "city"))
        .global_secondary_index_updates(create_action("by_owner", "owner"))
        .send()
        .await;
    let e = assert_code(r, "LimitExceededException");
    assert_eq!(
        e.message,
        "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table"
    );
    // Deleting or updating an index the table does not have.
    let r = client
        .update_table()
        .table_name("ix_upd")
        .global_secondary_index_updates(delete_action("nope"))
        .send()
        .await;
    let e = assert_code(r, "ResourceNotFoundException");
    assert!(e.message.contains("nope"), "{e:?}");

    let out = client
        .update_table()
        .table_name("ix_upd")
        .attribute_definitions(attr_def("city", S))
        .global_secondary_index_updates(create_action("by_city", "city"))
        .send()
        .await
        .unwrap();
    let t = out.table_description.unwrap();
    let mut defs: Vec<&str> = t
        .attribute_definitions()
        .iter()
        .map(|d| d.attribute_name())
        .collect();
    defs.sort();
    assert_eq!(defs, ["city", "pk", "sk"]);
    let g = &t.global_secondary_indexes()[0];
    assert_eq!(g.index_name(), Some("by_city"));
    assert_eq!(g.index_status(), Some(&IndexStatus::Creating));
    assert_eq!(g.backfilling(), Some(true));
    assert_eq!(g.projection().unwrap().non_key_attributes(), ["title"]);
    assert_eq!(key_names(g.key_schema()), [pair("city", "HASH")]);

    // Creating it again: it exists.
    let r = client
        .update_table()
        .table_name("ix_upd")
        .attribute_definitions(attr_def("city", S))
        .global_secondary_index_updates(create_action("by_city", "city"))
        .send()
        .await;
    let e = api_error(r);
    assert!(
        e.message
            .contains("Attempting to create an index which already exists")
            || e.message.contains("Only 1 online index"),
        "{e:?}"
    );

    // Deleting it shows DELETING (or it is already gone once the node dropped it).
    let out = client
        .update_table()
        .table_name("ix_upd")
        .global_secondary_index_updates(delete_action("by_city"))
        .send()
        .await
        .unwrap();
    let t = out.table_description.unwrap();
    for g in t.global_secondary_indexes() {
        assert_eq!(g.index_status(), Some(&IndexStatus::Deleting), "{g:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_table_global_index_action_rules() {
    let node = TestNode::start().await;
    let client = node.client();
    indexed_table(&client, "ix_rules").await;

    // An update names one action.
    let r = client
        .update_table()
        .table_name("ix_rules")
        .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().build())
        .send()
        .await;
    assert_validation(
        r,
        "One of GlobalSecondaryIndexUpdate.Create, GlobalSecondaryIndexUpdate.Update or GlobalSecondaryIndexUpdate.Delete must be specified",
    );
    // Local indexes cannot be deleted.
    let r = client
        .update_table()
        .table_name("ix_rules")
        .global_secondary_index_updates(delete_action("by_date"))
        .send()
        .await;
    assert_code(r, "ResourceNotFoundException");
    // Throughput on an on-demand table's index.
    let r = client
        .update_table()
        .table_name("ix_rules")
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .update(
                    UpdateGlobalSecondaryIndexAction::builder()
                        .index_name("by_city")
                        .provisioned_throughput(throughput(1, 1))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await;
    assert_validation(
        r,
        "ProvisionedThroughput should not be specified for index: by_city when BillingMode is PAY_PER_REQUEST",
    );
    // Switching to PROVISIONED needs throughput for every global index.
    let r = client
        .update_table()
        .table_name("ix_rules")
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(throughput(5, 5))
        .send()
        .await;
    assert_validation(
        r,
        "One or more parameter values were invalid: ProvisionedThroughput must be specified for index: by_",
    );
    let update = |name: &str| {
        GlobalSecondaryIndexUpdate::builder()
            .update(
                UpdateGlobalSecondaryIndexAction::builder()
                    .index_name(name)
                    .provisioned_throughput(throughput(2, 3))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let out = client
        .update_table()
        .table_name("ix_rules")
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(throughput(5, 5))
        .global_secondary_index_updates(update("by_city"))
        .global_secondary_index_updates(update("by_owner"))
        .send()
        .await
        .unwrap();
    for g in out.table_description.unwrap().global_secondary_indexes() {
        let pt = g.provisioned_throughput().unwrap();
        assert_eq!(
            (pt.read_capacity_units(), pt.write_capacity_units()),
            (Some(2), Some(3)),
            "{g:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Query and Scan

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_and_scan_index_validation() {
    let node = TestNode::start().await;
    let client = node.client();
    indexed_table(&client, "ix_q").await;
    let city = || {
        client
            .query()
            .table_name("ix_q")
            .index_name("by_city")
            .key_condition_expression("city = :c")
            .expression_attribute_values(":c", s("Oslo"))
    };
    let scan_index = |index: &str| client.scan().table_name("ix_q").index_name(index);

    assert_validation(
        client
            .query()
            .table_name("ix_q")
            .index_name("nope")
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("a"))
            .send()
            .await,
        "The table does not have the specified index: nope",
    );
    assert_validation(
        scan_index("nope").send().await,
        "The table does not have the specified index: nope",
    );
    assert_validation(
        city().consistent_read(true).send().await,
        "Consistent reads are not supported on global secondary indexes",
    );
    assert_validation(
        scan_index("by_owner").consistent_read(true).send().await,
        "Consistent reads are not supported on global secondary indexes",
    );
    // The key condition is on the index's keys.
    assert_validation(
        client
            .query()
            .table_name("ix_q")
            .index_name("by_city")
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s("a"))
            .send()
            .await,
        "Query condition missed key schema element: city",
    );
    assert_validation(
        city()
            .filter_expression("age > :a")
            .expression_attribute_values(":a", n("1"))
            .send()
            .await,
        "Filter Expression can only contain non-primary key attributes: Primary key attribute: age",
    );
    // A KEYS_ONLY global index cannot return whole items or other attributes.
    assert_validation(
        city().select(Select::AllAttributes).send().await,
        "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index by_city because its projection type is not ALL",
    );
    assert_validation(
        city().projection_expression("pk, title").send().await,
        "Global secondary index by_city does not project the requested attribute: title",
    );
    // Its projected attributes are fine.
    city()
        .projection_expression("pk, sk, city, age")
        .send()
        .await
        .unwrap();
    city()
        .select(Select::AllProjectedAttributes)
        .send()
        .await
        .unwrap();
    // ALL_PROJECTED_ATTRIBUTES needs an index.
    assert_validation(
        client
            .scan()
            .table_name("ix_q")
            .select(Select::AllProjectedAttributes)
            .send()
            .await,
        "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
    );
    // The start key of an index read holds the table's and the index's keys.
    let table_key = item([("pk", s("a")), ("sk", n("1"))]);
    assert_validation(
        city()
            .set_exclusive_start_key(Some(table_key.clone()))
            .send()
            .await,
        "The provided starting key is invalid: The provided key element does not match the schema",
    );
    assert_validation(
        scan_index("by_city")
            .set_exclusive_start_key(Some(table_key.clone()))
            .send()
            .await,
        "The provided starting key is invalid: The provided key element does not match the schema",
    );
    let mut full = table_key;
    full.insert("city".into(), s("Oslo"));
    full.insert("age".into(), n("3"));
    city()
        .set_exclusive_start_key(Some(full.clone()))
        .send()
        .await
        .unwrap();
    full.insert("city".into(), s("Bergen"));
    assert_validation(
        city().set_exclusive_start_key(Some(full)).send().await,
        "The provided starting key does not match the key condition",
    );
    // A local index allows strongly consistent reads, and a table read still names no index.
    client
        .query()
        .table_name("ix_q")
        .index_name("by_date")
        .key_condition_expression("pk = :p AND #d > :d")
        .expression_attribute_names("#d", "date")
        .expression_attribute_values(":p", s("a"))
        .expression_attribute_values(":d", s("2020"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();

    // ConsumedCapacity INDEXES names the index read.
    let out = city()
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .unwrap();
    let cc = out.consumed_capacity.unwrap();
    assert_eq!(cc.table_name(), Some("ix_q"));
    let gsis = cc.global_secondary_indexes.unwrap();
    assert!(gsis.contains_key("by_city"), "{gsis:?}");
}

// ---------------------------------------------------------------------------------------------
// Writes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_check_index_key_types() {
    let node = TestNode::start().await;
    let client = node.client();
    indexed_table(&client, "ix_w").await;
    let put = |it: Item| {
        client
            .put_item()
            .table_name("ix_w")
            .set_item(Some(it))
            .send()
    };

    assert_validation(
        put(item([("pk", s("a")), ("sk", n("1")), ("city", n("5"))])).await,
        "One or more parameter values were invalid: Type mismatch for Index Key city Expected: S Actual: N IndexName: by_city",
    );
    assert_validation(
        put(item([
            ("pk", s("a")),
            ("sk", n("1")),
            ("date", boolean(true)),
        ]))
        .await,
        "One or more parameter values were invalid: Type mismatch for Index Key date Expected: S Actual: BOOL IndexName: by_date",
    );
    assert_validation(
        put(item([("pk", s("a")), ("sk", n("1")), ("owner", s(""))])).await,
        "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty string value. IndexName: by_owner, IndexKey: owner",
    );
    let batch = client
        .batch_write_item()
        .request_items(
            "ix_w",
            vec![
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item([("pk", s("b")), ("sk", n("1"))])))
                            .build()
                            .unwrap(),
                    )
                    .build(),
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item([
                                ("pk", s("b")),
                                ("sk", n("2")),
                                ("age", s("x")),
                            ])))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            ],
        )
        .send()
        .await;
    assert_validation(
        batch,
        "Type mismatch for Index Key age Expected: N Actual: S IndexName: by_city",
    );
    // Nothing of the rejected batch was written.
    assert!(
        must_get(&client, "ix_w", item([("pk", s("b")), ("sk", n("1"))]))
            .await
            .is_none()
    );

    // Items without the index keys are fine (sparse indexes), and so is a well-typed one.
    must_put(
        &client,
        "ix_w",
        item([("pk", s("a")), ("sk", n("1")), ("x", n("1"))]),
    )
    .await;
    must_put(
        &client,
        "ix_w",
        item([
            ("pk", s("a")),
            ("sk", n("2")),
            ("city", s("Oslo")),
            ("age", n("3")),
            ("date", s("2024-01-01")),
            ("owner", s("me")),
        ]),
    )
    .await;
}

/// Regression: index key values over the key size limits were accepted (only table keys were
/// checked). A GSI partition key over 2048 bytes and an LSI sort key over 1024 bytes are
/// refused on PutItem and on UpdateItem, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_check_index_key_sizes() {
    let node = TestNode::start().await;
    let client = node.client();
    indexed_table(&client, "ix_z").await;
    let put = |it: Item| {
        client
            .put_item()
            .table_name("ix_z")
            .set_item(Some(it))
            .send()
    };
    let hash_msg = "Size of hashkey has exceeded the maximum size limit of2048 bytes";
    let range_msg = "Aggregated size of all range keys has exceeded the size limit of 1024 bytes";
    assert_validation(
        put(item([
            ("pk", s("a")),
            ("sk", n("1")),
            ("owner", s("o".repeat(2049))),
        ]))
        .await,
        hash_msg,
    );
    assert_validation(
        put(item([
            ("pk", s("a")),
            ("sk", n("1")),
            ("date", s("d".repeat(1025))),
        ]))
        .await,
        range_msg,
    );
    assert!(
        must_get(&client, "ix_z", item([("pk", s("a")), ("sk", n("1"))]))
            .await
            .is_none()
    );
    // At the limits they are fine.
    must_put(
        &client,
        "ix_z",
        item([
            ("pk", s("a")),
            ("sk", n("1")),
            ("owner", s("o".repeat(2048))),
            ("date", s("d".repeat(1024))),
        ]),
    )
    .await;
    let r = client
        .update_item()
        .table_name("ix_z")
        .set_key(Some(item([("pk", s("a")), ("sk", n("1"))])))
        .update_expression("SET #o = :o")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":o", s("o".repeat(2049)))
        .send()
        .await;
    assert_validation(r, hash_msg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_collection_metrics_on_tables_with_local_indexes() {
    let node = TestNode::start().await;
    let client = node.client();
    indexed_table(&client, "ix_m").await;
    let out = client
        .put_item()
        .table_name("ix_m")
        .set_item(Some(item([
            ("pk", s("a")),
            ("sk", n("1")),
            ("date", s("d")),
        ])))
        .return_item_collection_metrics(ReturnItemCollectionMetrics::Size)
        .send()
        .await
        .unwrap();
    let m = out.item_collection_metrics.expect("ItemCollectionMetrics");
    assert_eq!(m.item_collection_key.unwrap(), item([("pk", s("a"))]));
    assert_eq!(m.size_estimate_range_gb.unwrap(), [0.0, 1.0]);

    let out = client
        .update_item()
        .table_name("ix_m")
        .set_key(Some(item([("pk", s("a")), ("sk", n("1"))])))
        .update_expression("SET title = :t")
        .expression_attribute_values(":t", s("hello"))
        .return_item_collection_metrics(ReturnItemCollectionMetrics::Size)
        .send()
        .await
        .unwrap();
    assert!(out.item_collection_metrics.is_some());
    let out = client
        .delete_item()
        .table_name("ix_m")
        .set_key(Some(item([("pk", s("a")), ("sk", n("1"))])))
        .return_item_collection_metrics(ReturnItemCollectionMetrics::Size)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.item_collection_metrics
            .unwrap()
            .item_collection_key
            .unwrap(),
        item([("pk", s("a"))])
    );
    let out = client
        .batch_write_item()
        .request_items(
            "ix_m",
            vec![
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item([("pk", s("c")), ("sk", n("1"))])))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            ],
        )
        .return_item_collection_metrics(ReturnItemCollectionMetrics::Size)
        .send()
        .await
        .unwrap();
    let per_table = out.item_collection_metrics.unwrap();
    assert_eq!(per_table["ix_m"].len(), 1);
    assert_eq!(
        per_table["ix_m"][0].item_collection_key.clone().unwrap(),
        item([("pk", s("c"))])
    );

    // Without local indexes there is nothing to report.
    must_create_hash_range_table(&client, "ix_nolsi").await;
    let out = client
        .put_item()
        .table_name("ix_nolsi")
        .set_item(Some(item([("pk", s("a")), ("sk", n("1"))])))
        .return_item_collection_metrics(ReturnItemCollectionMetrics::Size)
        .send()
        .await
        .unwrap();
    assert!(out.item_collection_metrics.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_capacity_counts_the_index_entries_written() {
    let node = TestNode::start().await;
    let client = node.client();
    indexed_table(&client, "ix_cap").await;
    let full = item([
        ("pk", s("a")),
        ("sk", n("1")),
        ("city", s("Oslo")),
        ("age", n("3")),
        ("date", s("2024")),
        ("owner", s("me")),
    ]);
    let out = client
        .put_item()
        .table_name("ix_cap")
        .set_item(Some(full))
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .unwrap();
    let cc = out.consumed_capacity.unwrap();
    // The item and one entry in each of the three indexes.
    assert_eq!(cc.capacity_units(), Some(4.0));
    assert_eq!(cc.table().unwrap().capacity_units(), Some(1.0));
    let lsis = cc.local_secondary_indexes.unwrap();
    assert_eq!(lsis["by_date"].capacity_units(), Some(1.0));
    let gsis = cc.global_secondary_indexes.unwrap();
    assert_eq!(gsis["by_city"].capacity_units(), Some(1.0));
    assert_eq!(gsis["by_owner"].capacity_units(), Some(1.0));

    // Changing an index key rewrites that index's entry: delete the old one, put the new one.
    // by_owner (ALL) sees a changed entry; by_date's INCLUDE projection does not change.
    let out = client
        .update_item()
        .table_name("ix_cap")
        .set_key(Some(item([("pk", s("a")), ("sk", n("1"))])))
        .update_expression("SET city = :c")
        .expression_attribute_values(":c", s("Bergen"))
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .unwrap();
    let cc = out.consumed_capacity.unwrap();
    assert_eq!(cc.capacity_units(), Some(4.0));
    let gsis = cc.global_secondary_indexes.unwrap();
    assert_eq!(gsis["by_city"].capacity_units(), Some(2.0));
    assert_eq!(gsis["by_owner"].capacity_units(), Some(1.0));
    assert_eq!(
        cc.local_secondary_indexes.unwrap()["by_date"].capacity_units(),
        Some(0.0)
    );

    // TOTAL gives the sum only; a deleted item leaves every index once.
    let out = client
        .delete_item()
        .table_name("ix_cap")
        .set_key(Some(item([("pk", s("a")), ("sk", n("1"))])))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let cc = out.consumed_capacity.unwrap();
    assert_eq!(cc.capacity_units(), Some(4.0));
    assert!(cc.global_secondary_indexes.is_none());
}
