//! Multi-attribute GSI keys (up to 4 HASH and 4 RANGE attributes): CreateTable and
//! DescribeTable echo the key schema in order, items lacking a key attribute are not indexed,
//! Query takes equality on every HASH attribute and conditions on a left prefix of the RANGE
//! attributes (both directions, paged), Scan, legacy KeyConditions, the refusals, and the
//! backfill of such an index added by UpdateTable.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ComparisonOperator, Condition, CreateGlobalSecondaryIndexAction,
    GlobalSecondaryIndex, GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType,
    ProjectionType, ScalarAttributeType,
};
use shoal_tests::*;

use crate::support::*;

const T: &str = "orders";
const IX: &str = "by_tenant_region";

/// A GSI (ALL projection) with key schema `elems` in the given order.
fn multi_gsi(name: &str, elems: &[(&str, KeyType)]) -> GlobalSecondaryIndex {
    let mut g = GlobalSecondaryIndex::builder()
        .index_name(name)
        .projection(projection(ProjectionType::All, &[]));
    for (a, kt) in elems {
        g = g.key_schema(key_elem(a, kt.clone()));
    }
    g.build().expect("GlobalSecondaryIndex")
}

/// The four-attribute key of [`IX`]: HASH tenant, area; RANGE ymd, seq.
fn ix_elems() -> Vec<(&'static str, KeyType)> {
    vec![
        ("tenant", KeyType::Hash),
        ("area", KeyType::Hash),
        ("ymd", KeyType::Range),
        ("seq", KeyType::Range),
    ]
}

fn key_names(ks: &[KeySchemaElement]) -> Vec<(String, String)> {
    ks.iter()
        .map(|e| {
            (
                e.attribute_name().to_string(),
                e.key_type().as_str().to_string(),
            )
        })
        .collect()
}

fn want_names(elems: &[(&str, KeyType)]) -> Vec<(String, String)> {
    elems
        .iter()
        .map(|(a, kt)| (a.to_string(), kt.as_str().to_string()))
        .collect()
}

fn attrs() -> Vec<(&'static str, ScalarAttributeType)> {
    vec![
        ("tenant", ScalarAttributeType::S),
        ("area", ScalarAttributeType::S),
        ("ymd", ScalarAttributeType::S),
        ("seq", ScalarAttributeType::N),
    ]
}

fn order(tenant: &str, area: &str, ymd: u32, seq: u32) -> Item {
    item([
        ("pk", s(format!("{tenant}-{area}-{ymd}-{seq}"))),
        ("tenant", s(tenant)),
        ("area", s(area)),
        ("ymd", s(format!("d{ymd}"))),
        ("seq", n(seq.to_string())),
    ])
}

/// Every full order: 2 tenants × 2 regions × days 1..=3 × seqs 1..=4 (48 items).
fn full_orders() -> Vec<Item> {
    let mut out = Vec::new();
    for tenant in ["t1", "t2"] {
        for area in ["eu", "us"] {
            for ymd in 1..=3 {
                for seq in 1..=4 {
                    out.push(order(tenant, area, ymd, seq));
                }
            }
        }
    }
    out
}

/// Items lacking one key attribute each: never indexed.
fn sparse_orders() -> Vec<Item> {
    ["tenant", "area", "ymd", "seq"]
        .iter()
        .map(|missing| {
            let mut it = order("t1", "eu", 9, 9);
            it.insert("pk".into(), s(format!("sparse-{missing}")));
            it.remove(*missing);
            it
        })
        .collect()
}

fn pks(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|it| str_of(it, "pk").to_string())
        .collect()
}

/// The pks of the t1/eu orders with `keep(ymd, seq)`, in index order (ymd, then seq).
fn t1_eu(keep: impl Fn(u32, u32) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    for ymd in 1..=3 {
        for seq in 1..=4 {
            if keep(ymd, seq) {
                out.push(format!("t1-eu-{ymd}-{seq}"));
            }
        }
    }
    out
}

/// Expression attribute values.
type Values = Vec<(&'static str, AttributeValue)>;

fn vals(pairs: &[(&'static str, AttributeValue)]) -> Values {
    pairs.to_vec()
}

fn hash_values() -> Values {
    vals(&[(":t", s("t1")), (":r", s("eu"))])
}

async fn setup() -> (TestNode, Client) {
    let node = TestNode::start().await;
    let client = node.client();
    let desc = must_create_indexed_table(
        &client,
        T,
        None,
        &attrs(),
        vec![],
        vec![multi_gsi(IX, &ix_elems())],
    )
    .await;
    let g = &desc.global_secondary_indexes()[0];
    assert_eq!(key_names(g.key_schema()), want_names(&ix_elems()));
    (node, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_attribute_gsi_indexes_full_items_and_answers_prefix_queries() {
    let (_node, client) = setup().await;
    let described = describe_gsi(&client, T, IX).await.expect("described");
    assert_eq!(key_names(described.key_schema()), want_names(&ix_elems()));

    must_batch_put(&client, T, full_orders()).await;
    must_batch_put(&client, T, sparse_orders()).await;
    // A key attribute of the wrong type is refused, naming the index.
    let mut wrong = order("t1", "eu", 1, 1);
    wrong.insert("seq".into(), s("one"));
    assert_validation(
        client
            .put_item()
            .table_name(T)
            .set_item(Some(wrong))
            .send()
            .await,
        "Type mismatch for Index Key seq Expected: N Actual: S IndexName: by_tenant_region",
    );

    // The whole partition (t1, eu): 12 orders by ymd then seq, both directions, paged.
    let all = t1_eu(|_, _| true);
    eventually(
        Duration::from_secs(10),
        "index holds the orders",
        || async {
            let got = scan_all(&client, T, Some(IX), None, None).await;
            if got.len() == 48 {
                Ok(())
            } else {
                Err(format!("{} entries", got.len()))
            }
        },
    )
    .await;
    let q = "tenant = :t AND area = :r";
    for limit in [None, Some(1), Some(5)] {
        let fwd = query_all(&client, T, Some(IX), q, &hash_values(), true, limit, false).await;
        assert_eq!(pks(&fwd), all, "forward, limit {limit:?}");
        let back = query_all(&client, T, Some(IX), q, &hash_values(), false, limit, false).await;
        let mut rev = all.clone();
        rev.reverse();
        assert_eq!(pks(&back), rev, "backward, limit {limit:?}");
    }

    // Sort conditions: a prefix of equalities, then one condition on the next attribute.
    let cases: Vec<(&str, Values, Vec<String>)> = vec![
        (
            "tenant = :t AND area = :r AND ymd = :d",
            vals(&[(":d", s("d2"))]),
            t1_eu(|d, _| d == 2),
        ),
        (
            "tenant = :t AND area = :r AND ymd > :d",
            vals(&[(":d", s("d1"))]),
            t1_eu(|d, _| d > 1),
        ),
        (
            "tenant = :t AND area = :r AND begins_with(ymd, :d)",
            vals(&[(":d", s("d"))]),
            t1_eu(|_, _| true),
        ),
        (
            "area = :r AND ymd = :d AND seq BETWEEN :lo AND :hi AND tenant = :t",
            vals(&[(":d", s("d2")), (":lo", n("2")), (":hi", n("3"))]),
            t1_eu(|d, q| d == 2 && (2..=3).contains(&q)),
        ),
        (
            "tenant = :t AND area = :r AND ymd = :d AND seq >= :lo",
            vals(&[(":d", s("d3")), (":lo", n("3"))]),
            t1_eu(|d, q| d == 3 && q >= 3),
        ),
        (
            "tenant = :t AND area = :r AND ymd = :d AND seq = :lo",
            vals(&[(":d", s("d1")), (":lo", n("4"))]),
            t1_eu(|d, q| d == 1 && q == 4),
        ),
    ];
    for (text, extra, want) in cases {
        let mut values = hash_values();
        values.extend(extra);
        for forward in [true, false] {
            let got = query_all(&client, T, Some(IX), text, &values, forward, Some(2), false).await;
            let mut want = want.clone();
            if !forward {
                want.reverse();
            }
            assert_eq!(pks(&got), want, "{text} forward={forward}");
        }
    }

    // A page's LastEvaluatedKey holds the table key and every index key attribute.
    let page = client
        .query()
        .table_name(T)
        .index_name(IX)
        .key_condition_expression(q)
        .expression_attribute_values(":t", s("t1"))
        .expression_attribute_values(":r", s("eu"))
        .limit(3)
        .send()
        .await
        .unwrap_or_else(|e| panic!("Query: {}", describe_error(&e)));
    let mut lek: Vec<String> = page.last_evaluated_key().unwrap().keys().cloned().collect();
    lek.sort();
    assert_eq!(lek, ["area", "pk", "seq", "tenant", "ymd"]);

    // Legacy KeyConditions take the same rules.
    let eq = |v: AttributeValue| {
        Condition::builder()
            .comparison_operator(ComparisonOperator::Eq)
            .attribute_value_list(v)
            .build()
            .unwrap()
    };
    let out = client
        .query()
        .table_name(T)
        .index_name(IX)
        .key_conditions("tenant", eq(s("t1")))
        .key_conditions("area", eq(s("eu")))
        .key_conditions("ymd", eq(s("d3")))
        .send()
        .await
        .unwrap_or_else(|e| panic!("Query KeyConditions: {}", describe_error(&e)));
    assert_eq!(pks(out.items()), t1_eu(|d, _| d == 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_attribute_key_conditions_are_checked() {
    let (_node, client) = setup().await;
    let query = |text: &'static str, values: Values| {
        let client = client.clone();
        async move {
            let mut req = client
                .query()
                .table_name(T)
                .index_name(IX)
                .key_condition_expression(text);
            for (k, v) in values {
                req = req.expression_attribute_values(k, v);
            }
            req.send().await
        }
    };
    assert_validation(
        query("tenant = :t", vals(&[(":t", s("t1"))])).await,
        "Query condition missed key schema element: area",
    );
    assert_validation(
        query(
            "area = :r AND ymd = :d",
            vals(&[(":r", s("eu")), (":d", s("d1"))]),
        )
        .await,
        "Query condition missed key schema element: tenant",
    );
    let mut v = hash_values();
    v.push((":q", n("1")));
    assert_validation(
        query("tenant = :t AND area = :r AND seq = :q", v).await,
        "the condition on sort key attribute seq needs an equality condition on the sort key attribute ymd before it",
    );
    let mut v = hash_values();
    v.extend(vals(&[(":d", s("d1")), (":q", n("1"))]));
    assert_validation(
        query("tenant = :t AND area = :r AND ymd > :d AND seq = :q", v).await,
        "only the last sort key attribute with a condition may use a condition other than equality",
    );
    assert_validation(
        query(
            "tenant = :t AND area < :x",
            vals(&[(":t", s("t1")), (":x", s("a"))]),
        )
        .await,
        "Query key condition not supported",
    );
    // A start key from another partition is refused.
    let mut start = order("t2", "eu", 1, 1);
    start.retain(|k, _| ["pk", "tenant", "area", "ymd", "seq"].contains(&k.as_str()));
    assert_validation(
        client
            .query()
            .table_name(T)
            .index_name(IX)
            .key_condition_expression("tenant = :t AND area = :r")
            .expression_attribute_values(":t", s("t1"))
            .expression_attribute_values(":r", s("eu"))
            .set_exclusive_start_key(Some(start))
            .send()
            .await,
        "The provided starting key does not match the key condition",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_multi_attribute_key_schemas_are_refused() {
    let node = TestNode::start().await;
    let client = node.client();
    let defs: Vec<(&str, ScalarAttributeType)> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|n| (*n, ScalarAttributeType::S))
        .collect();
    let create = |elems: Vec<(&'static str, KeyType)>| {
        let client = client.clone();
        let defs = defs.clone();
        async move {
            let mut req = client
                .create_table()
                .table_name("bad")
                .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
                .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
                .key_schema(key_elem("pk", KeyType::Hash))
                .global_secondary_indexes(multi_gsi("gix", &elems));
            for (a, t) in defs {
                req = req.attribute_definitions(attr_def(a, t));
            }
            req.send().await
        }
    };
    use KeyType::{Hash as H, Range as R};
    assert_validation(
        create(vec![("a", H), ("b", H), ("c", H), ("d", H), ("e", H)]).await,
        "A key schema may have at most 4 HASH key elements",
    );
    assert_validation(
        create(vec![
            ("pk", H),
            ("a", R),
            ("b", R),
            ("c", R),
            ("d", R),
            ("e", R),
        ])
        .await,
        "A key schema may have at most 4 RANGE key elements",
    );
    assert_validation(
        create(vec![("a", H), ("b", R), ("c", H)]).await,
        "HASH key elements must come before RANGE key elements; c is a HASH key element after a RANGE key element",
    );
    assert_validation(
        create(vec![("a", H), ("b", H), ("a", R)]).await,
        "The attribute a appears more than once in the KeySchema",
    );
    assert_validation(
        create(vec![("a", R), ("b", H)]).await,
        "The first KeySchemaElement is not a HASH key type",
    );
    // More than 8 elements is a model constraint.
    assert_validation(
        create(vec![
            ("a", H),
            ("b", H),
            ("c", H),
            ("d", H),
            ("e", R),
            ("f", R),
            ("pk", R),
            ("x", R),
            ("y", R),
        ])
        .await,
        "Member must have length less than or equal to 8",
    );
    // The table's own key keeps one HASH and at most one RANGE.
    assert_validation(
        client
            .create_table()
            .table_name("bad")
            .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
            .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
            .attribute_definitions(attr_def("a", ScalarAttributeType::S))
            .key_schema(key_elem("pk", KeyType::Hash))
            .key_schema(key_elem("a", KeyType::Hash))
            .send()
            .await,
        "The second KeySchemaElement is not a RANGE key type",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_table_backfills_a_multi_attribute_gsi() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, T).await;
    must_batch_put(&client, T, full_orders()).await;
    must_batch_put(&client, T, sparse_orders()).await;

    let elems = vec![
        ("area", KeyType::Hash),
        ("tenant", KeyType::Hash),
        ("seq", KeyType::Range),
    ];
    let mut action = CreateGlobalSecondaryIndexAction::builder()
        .index_name("by_region_tenant")
        .projection(projection(ProjectionType::KeysOnly, &[]));
    for (a, kt) in &elems {
        action = action.key_schema(key_elem(a, kt.clone()));
    }
    let mut req = client
        .update_table()
        .table_name(T)
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .create(action.build().unwrap())
                .build(),
        );
    for (a, t) in attrs().into_iter().filter(|(a, _)| *a != "ymd") {
        req = req.attribute_definitions(attr_def(a, t));
    }
    let out = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateTable: {}", describe_error(&e)));
    let desc = out.table_description.unwrap();
    let g = desc
        .global_secondary_indexes()
        .iter()
        .find(|g| g.index_name() == Some("by_region_tenant"))
        .expect("the new index is described");
    assert_eq!(key_names(g.key_schema()), want_names(&elems));

    eventually(Duration::from_secs(20), "index ACTIVE", || async {
        match describe_gsi(&client, T, "by_region_tenant").await {
            Some(g) if g.index_status() == Some(&IndexStatus::Active) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let g = describe_gsi(&client, T, "by_region_tenant").await.unwrap();
    assert_eq!(key_names(g.key_schema()), want_names(&elems));
    // The full orders and the one sparse order that has area, tenant and seq.
    assert_eq!(g.item_count(), Some(49), "backfilled");

    let got = query_all(
        &client,
        T,
        Some("by_region_tenant"),
        "area = :r AND tenant = :t AND seq <= :q",
        &vals(&[(":r", s("us")), (":t", s("t2")), (":q", n("2"))]),
        true,
        Some(4),
        false,
    )
    .await;
    let seqs: Vec<String> = got
        .iter()
        .map(|it| match it.get("seq") {
            Some(AttributeValue::N(v)) => v.clone(),
            other => panic!("seq {other:?}"),
        })
        .collect();
    assert_eq!(seqs, ["1", "1", "1", "2", "2", "2"]);
    assert!(got.iter().all(|it| str_of(it, "pk").starts_with("t2-us-")));
    assert_eq!(
        scan_all(&client, T, Some("by_region_tenant"), None, None)
            .await
            .len(),
        49
    );
}
