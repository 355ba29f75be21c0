//! Transactions maintain secondary indexes as single writes do: a committed TransactWriteItems
//! puts, moves and deletes local and global index entries; a canceled one changes none.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, ProjectionType, Put, ScalarAttributeType,
    TransactWriteItem, Update,
};
use shoal_tests::*;

use crate::support::*;

const T: &str = "tx_indexed";

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn key(pk: &str, sk: &str) -> std::collections::HashMap<String, AttributeValue> {
    [("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))]
        .into_iter()
        .collect()
}

#[tokio::test]
async fn transactions_maintain_local_and_global_indexes() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_indexed_table(
        &client,
        T,
        Some(("sk", ScalarAttributeType::S)),
        &[
            ("color", ScalarAttributeType::S),
            ("size", ScalarAttributeType::S),
        ],
        vec![lsi("by_size", "size", projection(ProjectionType::All, &[]))],
        vec![gsi(
            "by_color",
            "color",
            None,
            projection(ProjectionType::All, &[]),
        )],
    )
    .await;
    let put = |pk: &str, sk: &str, color: &str, size: &str| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(T)
                    .set_item(Some(
                        [
                            ("pk".to_string(), s(pk)),
                            ("sk".to_string(), s(sk)),
                            ("color".to_string(), s(color)),
                            ("size".to_string(), s(size)),
                        ]
                        .into_iter()
                        .collect(),
                    ))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    client
        .transact_write_items()
        .transact_items(put("a", "1", "red", "S"))
        .transact_items(put("a", "2", "blue", "M"))
        .transact_items(put("b", "1", "red", "L"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));

    let gsi_keys = |color: &'static str| {
        let client = client.clone();
        async move {
            let items = query_all(
                &client,
                T,
                Some("by_color"),
                "color = :c",
                &[(":c", s(color))],
                true,
                None,
                false,
            )
            .await;
            let mut keys: Vec<String> = items
                .iter()
                .map(|i| format!("{}/{}", str_of(i, "pk"), str_of(i, "sk")))
                .collect();
            keys.sort();
            keys
        }
    };
    eventually(Duration::from_secs(10), "GSI after the commit", || async {
        let red = gsi_keys("red").await;
        let blue = gsi_keys("blue").await;
        if red == ["a/1", "b/1"] && blue == ["a/2"] {
            Ok(())
        } else {
            Err(format!("red {red:?}, blue {blue:?}"))
        }
    })
    .await;
    let lsi_a = query_all(
        &client,
        T,
        Some("by_size"),
        "pk = :p",
        &[(":p", s("a"))],
        true,
        None,
        true,
    )
    .await;
    let sizes: Vec<&str> = lsi_a.iter().map(|i| str_of(i, "size")).collect();
    assert_eq!(sizes, ["M", "S"], "LSI after the commit");

    // Move a/1 to blue (update), delete b/1, under a condition check that holds.
    client
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(T)
                        .set_key(Some(key("a", "1")))
                        .update_expression("SET color = :b, #size = :xl")
                        .expression_attribute_names("#size", "size")
                        .expression_attribute_values(":b", s("blue"))
                        .expression_attribute_values(":xl", s("XL"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(T)
                        .set_key(Some(key("b", "1")))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(T)
                        .set_key(Some(key("a", "2")))
                        .condition_expression("color = :b")
                        .expression_attribute_values(":b", s("blue"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    // A canceled transaction (its check fails) changes no index.
    let canceled = client
        .transact_write_items()
        .transact_items(put("c", "1", "red", "S"))
        .transact_items(
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(T)
                        .set_key(Some(key("a", "2")))
                        .condition_expression("color = :r")
                        .expression_attribute_values(":r", s("red"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await;
    assert!(canceled.is_err(), "the failed check must cancel");
    eventually(
        Duration::from_secs(10),
        "GSI after the second commit",
        || async {
            let red = gsi_keys("red").await;
            let blue = gsi_keys("blue").await;
            if red.is_empty() && blue == ["a/1", "a/2"] {
                Ok(())
            } else {
                Err(format!("red {red:?}, blue {blue:?}"))
            }
        },
    )
    .await;
    let lsi_a = query_all(
        &client,
        T,
        Some("by_size"),
        "pk = :p",
        &[(":p", s("a"))],
        true,
        None,
        true,
    )
    .await;
    let sizes: Vec<&str> = lsi_a.iter().map(|i| str_of(i, "size")).collect();
    assert_eq!(sizes, ["M", "XL"], "LSI after the second commit");
    let lsi_b = query_all(
        &client,
        T,
        Some("by_size"),
        "pk = :p",
        &[(":p", s("b"))],
        true,
        None,
        true,
    )
    .await;
    assert!(lsi_b.is_empty(), "the deleted item left its LSI entry");
    let lsi_c = query_all(
        &client,
        T,
        Some("by_size"),
        "pk = :p",
        &[(":p", s("c"))],
        true,
        None,
        true,
    )
    .await;
    assert!(lsi_c.is_empty(), "the canceled put left an LSI entry");
}
