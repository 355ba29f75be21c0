//! Validation of items and keys, with DynamoDB's error types and messages.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType};
use shoal_tests::*;

const MISSING: &str = "Requested resource not found";
const KEY_MISMATCH: &str = "The provided key element does not match the schema";

async fn node_with_tables() -> (TestNode, Client) {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "tbl_h").await;
    must_create_hash_range_table(&client, "tbl_hr").await;
    (node, client)
}

async fn put(client: &Client, table: &str, it: Item) -> Result<(), ApiError> {
    match client
        .put_item()
        .table_name(table)
        .set_item(Some(it))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => Err(api_error::<(), _>(Err(e))),
    }
}

#[track_caller]
fn expect_validation(r: Result<(), ApiError>, fragment: &str) {
    match r {
        Ok(()) => panic!("expected ValidationException containing {fragment:?}, got success"),
        Err(e) => {
            assert_eq!(e.code, "ValidationException", "{e:?}");
            assert_eq!(e.status, Some(400));
            assert!(
                e.message.contains(fragment),
                "message {:?} does not contain {fragment:?}",
                e.message
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_with_wrong_key_type_is_rejected() {
    let (_node, client) = node_with_tables().await;
    let r = put(&client, "tbl_h", item([("pk", n("1"))])).await;
    expect_validation(
        r,
        "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_without_key_attribute_is_rejected() {
    let (_node, client) = node_with_tables().await;
    expect_validation(
        put(&client, "tbl_h", item([("other", s("x"))])).await,
        "One or more parameter values were invalid: Missing the key pk in the item",
    );
    expect_validation(
        put(&client, "tbl_hr", item([("pk", s("x"))])).await,
        "One or more parameter values were invalid: Missing the key sk in the item",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_with_missing_extra_or_mistyped_key_does_not_match_schema() {
    let (_node, client) = node_with_tables().await;
    let keys = [
        ("tbl_hr", item([("pk", s("a"))])),
        ("tbl_h", item([("pk", s("a")), ("extra", s("b"))])),
        (
            "tbl_hr",
            item([("pk", s("a")), ("sk", n("1")), ("extra", s("b"))]),
        ),
        ("tbl_h", item([("pk", n("1"))])),
        ("tbl_h", item([("other", s("a"))])),
    ];
    for (table, key) in keys {
        let r = client
            .get_item()
            .table_name(table)
            .set_key(Some(key.clone()))
            .send()
            .await;
        let err = assert_code(r, "ValidationException");
        assert_eq!(err.message, KEY_MISMATCH, "key {key:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_update_check_the_key_schema_too() {
    let (_node, client) = node_with_tables().await;
    let r = client
        .delete_item()
        .table_name("tbl_hr")
        .key("pk", s("a"))
        .send()
        .await;
    assert_eq!(assert_code(r, "ValidationException").message, KEY_MISMATCH);
    let r = client
        .update_item()
        .table_name("tbl_h")
        .key("pk", s("a"))
        .key("x", s("b"))
        .update_expression("SET v = :v")
        .expression_attribute_values(":v", s("1"))
        .send()
        .await;
    assert_eq!(assert_code(r, "ValidationException").message, KEY_MISMATCH);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_string_key_is_rejected() {
    let (_node, client) = node_with_tables().await;
    expect_validation(
        put(&client, "tbl_h", item([("pk", s(""))])).await,
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk",
    );
    let r = client
        .get_item()
        .table_name("tbl_h")
        .key("pk", s(""))
        .send()
        .await;
    assert_validation(r, "cannot contain an empty string value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_binary_key_is_rejected() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_table(&client, "bin", ("pk", ScalarAttributeType::B), None).await;
    let r = put(&client, "bin", item([("pk", b(Vec::<u8>::new()))])).await;
    expect_validation(r, "Key: pk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_over_400_kb_is_rejected() {
    let (_node, client) = node_with_tables().await;
    let big = "x".repeat(400 * 1024);
    expect_validation(
        put(
            &client,
            "tbl_h",
            item([("pk", s("a")), ("data", s(big.as_str()))]),
        )
        .await,
        "Item size has exceeded the maximum allowed size",
    );
    assert_eq!(
        must_get(&client, "tbl_h", item([("pk", s("a"))])).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_of_exactly_400_kb_is_accepted() {
    let (_node, client) = node_with_tables().await;
    // Size = attribute name lengths + value lengths: "pk"(2) + "a"(1) + "data"(4) + payload.
    let payload = "y".repeat(400 * 1024 - 2 - 1 - 4);
    put(
        &client,
        "tbl_h",
        item([("pk", s("a")), ("data", s(payload.as_str()))]),
    )
    .await
    .unwrap();
    let got = must_get(&client, "tbl_h", item([("pk", s("a"))]))
        .await
        .unwrap();
    assert_eq!(got.get("data"), Some(&s(payload.as_str())));
    // One more byte is too much.
    let payload = "y".repeat(400 * 1024 - 2 - 1 - 4 + 1);
    expect_validation(
        put(
            &client,
            "tbl_h",
            item([("pk", s("a")), ("data", s(payload.as_str()))]),
        )
        .await,
        "Item size has exceeded the maximum allowed size",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_that_grows_item_past_400_kb_is_rejected() {
    let (_node, client) = node_with_tables().await;
    let half = "z".repeat(250 * 1024);
    must_put(
        &client,
        "tbl_h",
        item([("pk", s("a")), ("one", s(half.as_str()))]),
    )
    .await;
    let r = client
        .update_item()
        .table_name("tbl_h")
        .key("pk", s("a"))
        .update_expression("SET two = :v")
        .expression_attribute_values(":v", s(half.as_str()))
        .send()
        .await;
    assert_validation(r, "Item size");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_key_up_to_2048_bytes_is_accepted_and_longer_rejected() {
    let (_node, client) = node_with_tables().await;
    let ok = "k".repeat(2048);
    put(&client, "tbl_h", item([("pk", s(ok.as_str()))]))
        .await
        .unwrap();
    let too_long = "k".repeat(2049);
    let r = put(&client, "tbl_h", item([("pk", s(too_long.as_str()))])).await;
    expect_validation(
        r,
        "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_key_up_to_1024_bytes_is_accepted_and_longer_rejected() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_table(
        &client,
        "tbl_hs",
        ("pk", ScalarAttributeType::S),
        Some(("sk", ScalarAttributeType::S)),
    )
    .await;
    let ok = "r".repeat(1024);
    put(
        &client,
        "tbl_hs",
        item([("pk", s("a")), ("sk", s(ok.as_str()))]),
    )
    .await
    .unwrap();
    let too_long = "r".repeat(1025);
    expect_validation(
        put(
            &client,
            "tbl_hs",
            item([("pk", s("a")), ("sk", s(too_long.as_str()))]),
        )
        .await,
        "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_sets_are_rejected() {
    let (_node, client) = node_with_tables().await;
    // DynamoDB words the empty binary set differently.
    let r = put(
        &client,
        "tbl_h",
        item([("pk", s("a")), ("set", AttributeValue::Bs(vec![]))]),
    )
    .await;
    let err = r.expect_err("binary set");
    assert_eq!(err.code, "ValidationException", "{err:?}");
    assert_eq!(
        err.message,
        "One or more parameter values were invalid: Binary sets should not be empty"
    );
    for (empty, kind) in [
        (AttributeValue::Ss(vec![]), "string set"),
        (AttributeValue::Ns(vec![]), "number set"),
    ] {
        let r = put(&client, "tbl_h", item([("pk", s("a")), ("set", empty)])).await;
        // DynamoDB: "One or more parameter values were invalid: An string set  may not be empty"
        let err = r.expect_err(kind);
        assert_eq!(err.code, "ValidationException", "{kind}: {err:?}");
        assert!(
            err.message
                .starts_with("One or more parameter values were invalid: An ")
                && err.message.contains(kind)
                && err.message.ends_with("may not be empty"),
            "{kind}: message {:?}",
            err.message
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sets_with_duplicate_values_are_rejected() {
    let (_node, client) = node_with_tables().await;
    for dup in [ss(["a", "a"]), ns(["1", "1.0"]), bs([vec![1u8], vec![1u8]])] {
        let r = put(
            &client,
            "tbl_h",
            item([("pk", s("a")), ("set", dup.clone())]),
        )
        .await;
        expect_validation(r, "contains duplicates");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_numbers_are_rejected() {
    let (_node, client) = node_with_tables().await;
    for bad in [
        "abc", "", "1.2.3", "1e", "--1", "0x10", "NaN", "Infinity", " 1",
    ] {
        let r = put(&client, "tbl_h", item([("pk", s("a")), ("v", n(bad))])).await;
        let err = r.expect_err(bad);
        assert_eq!(err.code, "ValidationException", "{bad:?}: {err:?}");
    }
    let r = put(&client, "tbl_h", item([("pk", s("a")), ("v", n("abc"))])).await;
    expect_validation(
        r,
        "The parameter cannot be converted to a numeric value: abc",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_with_more_than_38_significant_digits_are_rejected() {
    let (_node, client) = node_with_tables().await;
    let digits39 = "1".repeat(39);
    expect_validation(
        put(
            &client,
            "tbl_h",
            item([("pk", s("a")), ("v", n(digits39.as_str()))]),
        )
        .await,
        "Attempting to store more than 38 significant digits in a Number",
    );
    // Leading and trailing zeros are not significant.
    let padded = format!("000{}000", "1".repeat(38));
    put(
        &client,
        "tbl_h",
        item([("pk", s("a")), ("v", n(padded.as_str()))]),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_outside_the_exponent_range_are_rejected() {
    let (_node, client) = node_with_tables().await;
    expect_validation(
        put(&client, "tbl_h", item([("pk", s("a")), ("v", n("1E+126"))])).await,
        "Number overflow. Attempting to store a number with magnitude larger than supported range",
    );
    expect_validation(
        put(&client, "tbl_h", item([("pk", s("a")), ("v", n("1E-131"))])).await,
        "Number underflow. Attempting to store a number with magnitude smaller than supported range",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_deeper_than_32_levels_is_rejected() {
    let (_node, client) = node_with_tables().await;
    put(
        &client,
        "tbl_h",
        item([("pk", s("a")), ("deep", nested_maps(31))]),
    )
    .await
    .unwrap();
    expect_validation(
        put(
            &client,
            "tbl_h",
            item([("pk", s("b")), ("deep", nested_maps(33))]),
        )
        .await,
        "Nesting Levels have exceeded supported limits",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_operations_on_unknown_table_are_resource_not_found() {
    let (_node, client) = node_with_tables().await;
    let get = client
        .get_item()
        .table_name("nope")
        .key("pk", s("a"))
        .send()
        .await;
    assert_eq!(
        assert_code(get, "ResourceNotFoundException").message,
        MISSING
    );
    let r = put(&client, "nope", item([("pk", s("a"))])).await;
    let err = r.unwrap_err();
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        ("ResourceNotFoundException", MISSING)
    );
    let del = client
        .delete_item()
        .table_name("nope")
        .key("pk", s("a"))
        .send()
        .await;
    assert_eq!(
        assert_code(del, "ResourceNotFoundException").message,
        MISSING
    );
    let upd = client
        .update_item()
        .table_name("nope")
        .key("pk", s("a"))
        .update_expression("SET v = :v")
        .expression_attribute_values(":v", s("x"))
        .send()
        .await;
    assert_eq!(
        assert_code(upd, "ResourceNotFoundException").message,
        MISSING
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updating_a_key_attribute_is_rejected() {
    let (_node, client) = node_with_tables().await;
    must_put(&client, "tbl_h", item([("pk", s("a"))])).await;
    for expr in ["SET pk = :v", "REMOVE pk"] {
        let mut req = client
            .update_item()
            .table_name("tbl_h")
            .key("pk", s("a"))
            .update_expression(expr);
        if expr.contains(":v") {
            req = req.expression_attribute_values(":v", s("b"));
        }
        assert_validation(
            req.send().await,
            "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expression_errors_are_validation_errors() {
    let (_node, client) = node_with_tables().await;
    let syntax = client
        .update_item()
        .table_name("tbl_h")
        .key("pk", s("a"))
        .update_expression("SET = oops")
        .send()
        .await;
    assert_validation(syntax, "Invalid UpdateExpression");
    let undefined = client
        .put_item()
        .table_name("tbl_h")
        .item("pk", s("a"))
        .condition_expression("v = :missing")
        .send()
        .await;
    assert_validation(
        undefined,
        "An expression attribute value used in expression is not defined",
    );
    let unused = client
        .put_item()
        .table_name("tbl_h")
        .item("pk", s("a"))
        .condition_expression("attribute_not_exists(pk)")
        .expression_attribute_values(":unused", s("x"))
        .send()
        .await;
    assert_validation(
        unused,
        "Value provided in ExpressionAttributeValues unused in expressions",
    );
    let reserved = client
        .update_item()
        .table_name("tbl_h")
        .key("pk", s("a"))
        .update_expression("SET status = :v")
        .expression_attribute_values(":v", s("x"))
        .send()
        .await;
    assert_validation(reserved, "reserved keyword");
}

/// Non-key attribute names may be up to 64 KB (65,535 bytes, the API model's limit) in every
/// place a name appears: items, keys of updates and projections through placeholders, legacy
/// maps. One byte more is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_key_attribute_names_may_be_64_kb() {
    let node = TestNode::start().await;
    let client = node.client();
    must_create_hash_table(&client, "names").await;
    let long = "a".repeat(65_535);
    must_put(
        &client,
        "names",
        item([("pk", s("k")), (long.as_str(), s("v"))]),
    )
    .await;
    let got = must_get(&client, "names", item([("pk", s("k"))]))
        .await
        .expect("item");
    assert_eq!(got.get(&long), Some(&s("v")));
    let out = client
        .update_item()
        .table_name("names")
        .key("pk", s("k"))
        .update_expression("SET #n = :w")
        .condition_expression("attribute_exists(#n)")
        .expression_attribute_names("#n", &long)
        .expression_attribute_values(":w", s("w"))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
        .send()
        .await
        .unwrap();
    assert_eq!(out.attributes().and_then(|a| a.get(&long)), Some(&s("w")));
    let got = client
        .get_item()
        .table_name("names")
        .key("pk", s("k"))
        .projection_expression("#n")
        .expression_attribute_names("#n", &long)
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().and_then(|i| i.get(&long)), Some(&s("w")));
    let got = client
        .get_item()
        .table_name("names")
        .key("pk", s("k"))
        .attributes_to_get(&long)
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().map(|i| i.len()), Some(1));

    let too_long = "a".repeat(65_536);
    let r = client
        .put_item()
        .table_name("names")
        .item("pk", s("k2"))
        .item(&too_long, s("v"))
        .send()
        .await;
    assert_validation(r, "Member must have length less than or equal to 65535");
}
