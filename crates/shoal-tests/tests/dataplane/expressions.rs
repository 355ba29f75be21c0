//! Update, condition and projection expressions end to end: what each clause does to a stored
//! item, and the errors DynamoDB reports for malformed expressions.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use shoal_tests::*;

use crate::support::*;

type UpdateResult = Result<UpdateItemOutput, SdkError<UpdateItemError, HttpResponse>>;

/// Node with table `e` (pk S) holding `start` under key `pk = "k"` (the key is added).
async fn with_item(start: Vec<(&str, AttributeValue)>) -> (TestNode, Client) {
    let (node, client) = node_with_table("expr", None).await;
    let mut it = item(start);
    it.insert("pk".into(), s("k"));
    must_put(&client, "expr", it).await;
    (node, client)
}

/// UpdateItem on `pk = "k"` with `expr`, placeholders `#x` → names, `:x` → values.
async fn update(
    client: &Client,
    expr: &str,
    names: &[(&str, &str)],
    values: Vec<(&str, AttributeValue)>,
) -> UpdateResult {
    let mut req = client
        .update_item()
        .table_name("expr")
        .key("pk", s("k"))
        .update_expression(expr);
    for (k, v) in names {
        req = req.expression_attribute_names(*k, *v);
    }
    for (k, v) in values {
        req = req.expression_attribute_values(k, v);
    }
    req.send().await
}

/// [`update`] that must succeed.
async fn must_update(
    client: &Client,
    expr: &str,
    names: &[(&str, &str)],
    values: Vec<(&str, AttributeValue)>,
) {
    if let Err(e) = update(client, expr, names, values).await {
        panic!("UpdateItem {expr:?}: {}", describe_error(&e));
    }
}

/// The stored item `pk = "k"` without its key.
async fn stored(client: &Client) -> Item {
    let mut it = must_get(client, "expr", key_s("k"))
        .await
        .expect("item exists");
    it.remove("pk");
    it
}

/// Whether `cond` holds for item `pk = "k"`: runs a conditional UpdateItem and maps success to
/// true and ConditionalCheckFailedException to false.
async fn holds(client: &Client, cond: &str, values: Vec<(&str, AttributeValue)>) -> bool {
    let mut req = client
        .update_item()
        .table_name("expr")
        .key("pk", s("k"))
        .update_expression("SET #probe = :probe")
        .condition_expression(cond)
        .expression_attribute_names("#probe", "probe")
        .expression_attribute_values(":probe", boolean(true));
    for (k, v) in values {
        req = req.expression_attribute_values(k, v);
    }
    match req.send().await {
        Ok(_) => true,
        Err(e) => {
            let err = api_error(Err::<(), _>(e));
            assert_eq!(
                err.code, "ConditionalCheckFailedException",
                "condition {cond:?} failed with an unexpected error: {err:?}"
            );
            false
        }
    }
}

// ---- SET ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_with_arithmetic_adds_and_subtracts_numbers() {
    let (_node, client) = with_item(vec![("qty", n("10")), ("price", n("2.5"))]).await;
    must_update(
        &client,
        "SET qty = qty + :one, price = price - :d, amount = qty + price",
        &[],
        vec![(":one", n("1")), (":d", n("0.75"))],
    )
    .await;
    let it = stored(&client).await;
    // Every operand is read from the item as it was before the update.
    assert_same_item(
        Some(&it),
        &item([
            ("qty", n("11")),
            ("price", n("1.75")),
            ("amount", n("12.5")),
        ]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arithmetic_on_a_missing_attribute_is_rejected() {
    let (_node, client) = with_item(vec![]).await;
    let r = update(&client, "SET qty = qty + :one", &[], vec![(":one", n("1"))]).await;
    assert_validation(
        r,
        "The provided expression refers to an attribute that does not exist in the item",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arithmetic_on_a_string_is_rejected() {
    let (_node, client) = with_item(vec![("name", s("x"))]).await;
    let r = update(
        &client,
        "SET #n = #n + :one",
        &[("#n", "name")],
        vec![(":one", n("1"))],
    )
    .await;
    assert_validation(
        r,
        "An operand in the update expression has an incorrect data type",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arithmetic_beyond_the_number_range_is_rejected() {
    let max = "9E+125";
    let (_node, client) = with_item(vec![("big", n(max))]).await;
    let r = update(&client, "SET big = big + :v", &[], vec![(":v", n(max))]).await;
    assert_validation(
        r,
        "Number overflow. Attempting to store a number with magnitude larger than supported range",
    );
    let r = update(&client, "ADD big :v", &[], vec![(":v", n(max))]).await;
    assert_validation(r, "Number overflow");
    assert!(same_value(
        stored(&client).await.get("big").unwrap(),
        &n(max)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arithmetic_result_with_more_than_38_significant_digits_is_rejected() {
    let nines = "9".repeat(38);
    let (_node, client) = with_item(vec![("big", n(nines.clone()))]).await;
    // 10^38 has one significant digit and is fine; adding 0.5 needs 39 digits.
    must_update(&client, "SET ok = big + :one", &[], vec![(":one", n("1"))]).await;
    let r = update(
        &client,
        "SET big = big + :half",
        &[],
        vec![(":half", n("0.5"))],
    )
    .await;
    assert_code(r, "ValidationException");
    assert!(same_value(
        stored(&client).await.get("big").unwrap(),
        &n(nines)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_append_appends_and_prepends() {
    let (_node, client) = with_item(vec![("l", list([n("1"), n("2")]))]).await;
    must_update(
        &client,
        "SET l = list_append(l, :tail), front = list_append(:head, l)",
        &[],
        vec![(":tail", list([n("3")])), (":head", list([s("h")]))],
    )
    .await;
    let it = stored(&client).await;
    assert_eq!(it.get("l"), Some(&list([n("1"), n("2"), n("3")])));
    assert_eq!(it.get("front"), Some(&list([s("h"), n("1"), n("2")])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_not_exists_keeps_existing_values_and_fills_missing_ones() {
    let (_node, client) = with_item(vec![("created", s("first"))]).await;
    for _ in 0..2 {
        must_update(
            &client,
            "SET created = if_not_exists(created, :now), hits = if_not_exists(hits, :zero) + :one",
            &[],
            vec![(":now", s("second")), (":zero", n("0")), (":one", n("1"))],
        )
        .await;
    }
    let it = stored(&client).await;
    assert_eq!(it.get("created"), Some(&s("first")));
    assert!(same_value(it.get("hits").unwrap(), &n("2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_on_nested_map_paths_changes_only_that_path() {
    let (_node, client) = with_item(vec![(
        "info",
        map([
            ("address", map([("city", s("Oslo")), ("zip", s("0150"))])),
            ("age", n("40")),
        ]),
    )])
    .await;
    must_update(
        &client,
        "SET info.address.city = :c, info.#new = :v",
        &[("#new", "new.key")],
        vec![(":c", s("Bergen")), (":v", boolean(true))],
    )
    .await;
    let it = stored(&client).await;
    assert_same_item(
        Some(&it),
        &item([(
            "info",
            map([
                ("address", map([("city", s("Bergen")), ("zip", s("0150"))])),
                ("age", n("40")),
                ("new.key", boolean(true)),
            ]),
        )]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_below_a_missing_map_is_rejected() {
    let (_node, client) = with_item(vec![("info", map([("a", n("1"))]))]).await;
    let r = update(
        &client,
        "SET info.nothere.x = :v",
        &[],
        vec![(":v", n("1"))],
    )
    .await;
    assert_validation(
        r,
        "The document path provided in the update expression is invalid for update",
    );
    let r = update(&client, "SET absent.x = :v", &[], vec![(":v", n("1"))]).await;
    assert_validation(
        r,
        "The document path provided in the update expression is invalid for update",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_list_index_replaces_and_index_past_the_end_appends() {
    let (_node, client) = with_item(vec![("l", list([s("a"), s("b"), s("c")]))]).await;
    must_update(
        &client,
        "SET l[1] = :x, l[10] = :y",
        &[],
        vec![(":x", s("B")), (":y", s("z"))],
    )
    .await;
    assert_eq!(
        stored(&client).await.get("l"),
        Some(&list([s("a"), s("B"), s("c"), s("z")]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_nested_path_inside_list_elements() {
    let (_node, client) = with_item(vec![(
        "orders",
        list([map([("id", n("1")), ("parts", list([s("x")]))])]),
    )])
    .await;
    must_update(
        &client,
        "SET orders[0].parts[1] = :y, orders[0].paid = :t",
        &[],
        vec![(":y", s("y")), (":t", boolean(true))],
    )
    .await;
    assert_same_item(
        Some(&stored(&client).await),
        &item([(
            "orders",
            list([map([
                ("id", n("1")),
                ("parts", list([s("x"), s("y")])),
                ("paid", boolean(true)),
            ])]),
        )]),
    );
}

// ---- REMOVE ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_list_elements_shifts_the_rest() {
    let (_node, client) = with_item(vec![
        ("l", list([s("a"), s("b"), s("c"), s("d")])),
        ("gone", s("x")),
        ("m", map([("keep", n("1")), ("drop", n("2"))])),
    ])
    .await;
    must_update(
        &client,
        "REMOVE l[1], l[2], gone, m.#d, nothere",
        &[("#d", "drop")],
        vec![],
    )
    .await;
    let it = stored(&client).await;
    // Indexes refer to the list before the update: b and c go.
    assert_same_item(
        Some(&it),
        &item([
            ("l", list([s("a"), s("d")])),
            ("m", map([("keep", n("1"))])),
        ]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_of_an_index_past_the_end_changes_nothing() {
    let (_node, client) = with_item(vec![("l", list([s("a")]))]).await;
    must_update(&client, "REMOVE l[5]", &[], vec![]).await;
    assert_eq!(stored(&client).await.get("l"), Some(&list([s("a")])));
}

// ---- ADD / DELETE ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_to_a_number_and_to_a_missing_number() {
    let (_node, client) = with_item(vec![("cnt", n("5"))]).await;
    must_update(&client, "ADD cnt :d, fresh :d", &[], vec![(":d", n("-2"))]).await;
    let it = stored(&client).await;
    assert!(same_value(it.get("cnt").unwrap(), &n("3")));
    assert!(same_value(it.get("fresh").unwrap(), &n("-2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_to_a_string_set_merges_and_creates() {
    let (_node, client) = with_item(vec![("tags", ss(["a", "b"]))]).await;
    must_update(
        &client,
        "ADD tags :more, newtags :more",
        &[],
        vec![(":more", ss(["b", "c"]))],
    )
    .await;
    let it = stored(&client).await;
    assert!(same_value(it.get("tags").unwrap(), &ss(["a", "b", "c"])));
    assert!(same_value(it.get("newtags").unwrap(), &ss(["b", "c"])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_of_a_mismatched_type_is_rejected() {
    let (_node, client) = with_item(vec![("tags", ss(["a"])), ("name", s("x"))]).await;
    let r = update(&client, "ADD tags :n", &[], vec![(":n", ns(["1"]))]).await;
    assert_validation(
        r,
        "An operand in the update expression has an incorrect data type",
    );
    let r = update(
        &client,
        "ADD #n :one",
        &[("#n", "name")],
        vec![(":one", n("1"))],
    )
    .await;
    assert_validation(
        r,
        "An operand in the update expression has an incorrect data type",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_set_elements_and_an_emptied_set_disappears() {
    let (_node, client) = with_item(vec![
        ("tags", ss(["a", "b", "c"])),
        ("nums", ns(["1", "2"])),
    ])
    .await;
    must_update(
        &client,
        "DELETE tags :rm, nums :all",
        &[],
        vec![(":rm", ss(["b", "zzz"])), (":all", ns(["1", "2"]))],
    )
    .await;
    let it = stored(&client).await;
    assert!(same_value(it.get("tags").unwrap(), &ss(["a", "c"])));
    assert!(!it.contains_key("nums"), "an empty set is removed: {it:?}");
}

/// `DELETE` "supports only Set data types" (Expressions.UpdateExpressions.md): a set operand
/// against a stored string, number, set of another type or list is DynamoDB's type error, and
/// the item is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_from_a_mismatched_type_is_rejected() {
    let start = vec![
        ("str", s("a")),
        ("num", n("1")),
        ("nums", ns(["1", "2"])),
        ("tags", ss(["a"])),
        ("lst", list([s("a")])),
    ];
    let (_node, client) = with_item(start.clone()).await;
    for (expr, v) in [
        ("DELETE str :v", ss(["a"])),
        ("DELETE num :v", ss(["1"])),
        ("DELETE num :v", ns(["1"])),
        ("DELETE nums :v", ss(["1"])),
        ("DELETE tags :v", ns(["1"])),
        ("DELETE lst :v", ss(["a"])),
    ] {
        let r = update(&client, expr, &[], vec![(":v", v)]).await;
        assert_validation(
            r,
            "An operand in the update expression has an incorrect data type",
        );
    }
    let it = stored(&client).await;
    for (name, v) in &start {
        assert!(same_value(it.get(*name).unwrap(), v), "{name}: {it:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_four_clauses_in_one_update() {
    let (_node, client) = with_item(vec![
        ("a", n("1")),
        ("b", s("x")),
        ("c", n("10")),
        ("d", ss(["p", "q"])),
    ])
    .await;
    must_update(
        &client,
        "SET a = :two REMOVE b ADD c :five DELETE d :p",
        &[],
        vec![(":two", n("2")), (":five", n("5")), (":p", ss(["p"]))],
    )
    .await;
    assert_same_item(
        Some(&stored(&client).await),
        &item([("a", n("2")), ("c", n("15")), ("d", ss(["q"]))]),
    );
}

// ---- rejected update expressions ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_update_paths_are_rejected() {
    let (_node, client) = with_item(vec![("a", map([("b", n("1"))]))]).await;
    let r = update(&client, "SET a = :x REMOVE a.b", &[], vec![(":x", n("1"))]).await;
    assert_validation(r, "Two document paths overlap with each other");
    let r = update(
        &client,
        "SET a = :x, a = :y",
        &[],
        vec![(":x", n("1")), (":y", n("2"))],
    )
    .await;
    assert_validation(r, "Two document paths overlap with each other");
    let r = update(
        &client,
        "SET a.b = :x ADD a :y",
        &[],
        vec![(":x", n("1")), (":y", n("2"))],
    )
    .await;
    assert_validation(r, "Two document paths overlap with each other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_update_paths_are_rejected() {
    let (_node, client) = with_item(vec![("a", map([("b", n("1"))]))]).await;
    let r = update(
        &client,
        "SET a.b = :x, a[0] = :y",
        &[],
        vec![(":x", n("1")), (":y", n("2"))],
    )
    .await;
    assert_validation(r, "Two document paths conflict with each other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clause_used_twice_is_rejected() {
    let (_node, client) = with_item(vec![]).await;
    let r = update(&client, "SET a = :x SET b = :x", &[], vec![(":x", n("1"))]).await;
    assert_validation(
        r,
        "The \"SET\" section can only be used once in an update expression",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updating_a_key_attribute_is_rejected() {
    let (_node, client) = with_item(vec![]).await;
    let r = update(&client, "SET pk = :x", &[], vec![(":x", s("other"))]).await;
    assert_validation(
        r,
        "Cannot update attribute pk. This attribute is part of the key",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syntax_errors_name_the_expression() {
    let (_node, client) = with_item(vec![]).await;
    let r = update(&client, "SET a = ", &[], vec![]).await;
    assert_validation(r, "Invalid UpdateExpression: Syntax error");
    let r = client
        .put_item()
        .table_name("expr")
        .item("pk", s("k"))
        .condition_expression("a = = :x")
        .expression_attribute_values(":x", n("1"))
        .send()
        .await;
    assert_validation(r, "Invalid ConditionExpression: Syntax error");
}

// ---- placeholders and reserved words ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_placeholders_are_rejected() {
    let (_node, client) = with_item(vec![]).await;
    let r = update(
        &client,
        "SET a = :x",
        &[],
        vec![(":x", n("1")), (":unused", n("2"))],
    )
    .await;
    assert_validation(
        r,
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}",
    );
    let r = update(
        &client,
        "SET a = :x",
        &[("#unused", "b")],
        vec![(":x", n("1"))],
    )
    .await;
    assert_validation(
        r,
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#unused}",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undefined_placeholders_are_rejected() {
    let (_node, client) = with_item(vec![]).await;
    let r = update(&client, "SET a = :missing", &[], vec![]).await;
    assert_validation(
        r,
        "An expression attribute value used in expression is not defined; attribute value: :missing",
    );
    let r = update(&client, "SET #missing = :x", &[], vec![(":x", n("1"))]).await;
    assert_validation(
        r,
        "An expression attribute name used in the document path is not defined; attribute name: #missing",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_words_must_be_written_as_name_placeholders() {
    let (_node, client) = with_item(vec![]).await;
    let r = update(&client, "SET status = :x", &[], vec![(":x", s("open"))]).await;
    assert_validation(
        r,
        "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status",
    );
    let r = client
        .get_item()
        .table_name("expr")
        .key("pk", s("k"))
        .projection_expression("name")
        .send()
        .await;
    assert_validation(
        r,
        "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: name",
    );
    must_update(
        &client,
        "SET #s = :x",
        &[("#s", "status")],
        vec![(":x", s("open"))],
    )
    .await;
    assert_eq!(stored(&client).await.get("status"), Some(&s("open")));
}

// ---- conditions ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_type_checks_the_stored_type() {
    let (_node, client) = with_item(vec![
        ("str", s("x")),
        ("num", n("1")),
        ("sset", ss(["a"])),
        ("lst", list([])),
        ("mp", map::<&str>([])),
        ("nul", null()),
        ("flag", boolean(false)),
    ])
    .await;
    for (attr, ty) in [
        ("str", "S"),
        ("num", "N"),
        ("sset", "SS"),
        ("lst", "L"),
        ("mp", "M"),
        ("nul", "NULL"),
        ("flag", "BOOL"),
    ] {
        assert!(
            holds(
                &client,
                &format!("attribute_type({attr}, :t)"),
                vec![(":t", s(ty))]
            )
            .await,
            "{attr} should be {ty}"
        );
        assert!(
            !holds(
                &client,
                &format!("attribute_type({attr}, :t)"),
                vec![(":t", s("B"))]
            )
            .await,
            "{attr} is not B"
        );
    }
    assert!(!holds(&client, "attribute_type(absent, :t)", vec![(":t", s("S"))]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_type_with_an_invalid_type_is_rejected() {
    let (_node, client) = with_item(vec![("str", s("x"))]).await;
    let r = client
        .update_item()
        .table_name("expr")
        .key("pk", s("k"))
        .update_expression("SET a = :t")
        .condition_expression("attribute_type(str, :t)")
        .expression_attribute_values(":t", s("STRING"))
        .send()
        .await;
    assert_code(r, "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begins_with_and_contains_on_strings_sets_and_lists() {
    let (_node, client) = with_item(vec![
        ("title", s("Hello world")),
        ("tags", ss(["red", "blue"])),
        ("l", list([n("1"), s("two")])),
    ])
    .await;
    let c = &client;
    assert!(holds(c, "begins_with(title, :p)", vec![(":p", s("Hell"))]).await);
    assert!(!holds(c, "begins_with(title, :p)", vec![(":p", s("world"))]).await);
    assert!(holds(c, "contains(title, :p)", vec![(":p", s("o w"))]).await);
    assert!(!holds(c, "contains(title, :p)", vec![(":p", s("xyz"))]).await);
    assert!(holds(c, "contains(tags, :p)", vec![(":p", s("red"))]).await);
    assert!(!holds(c, "contains(tags, :p)", vec![(":p", s("re"))]).await);
    assert!(holds(c, "contains(l, :p)", vec![(":p", s("two"))]).await);
    assert!(holds(c, "contains(l, :p)", vec![(":p", n("1.0"))]).await);
    assert!(!holds(c, "contains(l, :p)", vec![(":p", s("1"))]).await);
    assert!(!holds(c, "contains(absent, :p)", vec![(":p", s("a"))]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_measures_strings_binaries_sets_lists_and_maps() {
    let (_node, client) = with_item(vec![
        ("str", s("hello!")),
        ("bin", b(vec![1u8, 2, 3])),
        ("nums", ns(["1", "2", "3", "4"])),
        ("lst", list([n("1"), n("2")])),
        ("mp", map([("a", n("1"))])),
    ])
    .await;
    let c = &client;
    assert!(holds(c, "size(str) = :v", vec![(":v", n("6"))]).await);
    assert!(holds(c, "size(bin) = :v", vec![(":v", n("3"))]).await);
    assert!(holds(c, "size(nums) = :v", vec![(":v", n("4"))]).await);
    assert!(holds(c, "size(lst) < :v", vec![(":v", n("3"))]).await);
    assert!(holds(c, "size(mp) = :v", vec![(":v", n("1"))]).await);
    assert!(!holds(c, "size(absent) >= :v", vec![(":v", n("0"))]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_between_and_boolean_operators_with_precedence() {
    let (_node, client) = with_item(vec![("color", s("red")), ("price", n("15"))]).await;
    let c = &client;
    let v = |pairs: &[(&'static str, AttributeValue)]| pairs.to_vec();
    let colors = [(":a", s("blue")), (":b", s("red")), (":c", s("green"))];
    assert!(holds(c, "color IN (:a, :b, :c)", v(&colors)).await);
    assert!(
        !holds(
            c,
            "color IN (:a, :c)",
            v(&[colors[0].clone(), colors[2].clone()])
        )
        .await
    );
    let bounds = [(":lo", n("10")), (":hi", n("20"))];
    assert!(holds(c, "price BETWEEN :lo AND :hi", v(&bounds)).await);
    assert!(!holds(c, "price BETWEEN :lo AND :lo", v(&bounds[..1])).await);
    // AND binds tighter than OR: false OR (true AND true).
    let mixed = [(":r", s("red")), (":g", s("green")), (":p", n("15"))];
    assert!(holds(c, "color = :g OR color = :r AND price = :p", v(&mixed)).await);
    // Parentheses change the grouping: (false OR true) AND false.
    assert!(!holds(c, "(color = :g OR color = :r) AND price <> :p", v(&mixed)).await);
    // NOT binds tighter than AND.
    assert!(
        holds(
            c,
            "NOT color = :g AND price = :p",
            v(&[mixed[1].clone(), mixed[2].clone()])
        )
        .await
    );
    assert!(
        !holds(
            c,
            "NOT (color = :r AND price = :p)",
            v(&[mixed[0].clone(), mixed[2].clone()])
        )
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comparison_of_different_types_is_false_not_an_error() {
    let (_node, client) = with_item(vec![("price", n("15"))]).await;
    assert!(!holds(&client, "price = :v", vec![(":v", s("15"))]).await);
    assert!(!holds(&client, "price < :v", vec![(":v", s("99"))]).await);
    assert!(holds(&client, "price <> :v", vec![(":v", s("15"))]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_on_nested_paths() {
    let (_node, client) = with_item(vec![(
        "info",
        map([("tags", list([s("a"), s("b")])), ("n", n("3"))]),
    )])
    .await;
    let c = &client;
    assert!(holds(c, "info.tags[1] = :b", vec![(":b", s("b"))]).await);
    assert!(holds(c, "attribute_exists(info.n)", vec![]).await);
    assert!(holds(c, "attribute_not_exists(info.tags[5])", vec![]).await);
    assert!(holds(c, "size(info.tags) = :two", vec![(":two", n("2"))]).await);
}

// ---- projections ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_item_projection_returns_nested_paths_and_list_elements() {
    let (_node, client) = with_item(vec![
        (
            "info",
            map([("a", map([("b", n("1")), ("c", n("2"))])), ("d", n("3"))]),
        ),
        (
            "l",
            list([s("x"), map([("y", s("deep")), ("z", s("no"))]), s("w")]),
        ),
        ("plain", s("p")),
    ])
    .await;
    let out = client
        .get_item()
        .table_name("expr")
        .key("pk", s("k"))
        .projection_expression("info.a.c, l[1].y, l[2], plain, absent, info.absent")
        .send()
        .await
        .unwrap();
    assert_same_item(
        out.item.as_ref(),
        &item([
            ("info", map([("a", map([("c", n("2"))]))])),
            // Projected list elements are compacted in index order.
            ("l", list([map([("y", s("deep"))]), s("w")])),
            ("plain", s("p")),
        ]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_projection_paths_are_rejected() {
    let (_node, client) = with_item(vec![("a", map([("b", n("1"))]))]).await;
    let r = client
        .get_item()
        .table_name("expr")
        .key("pk", s("k"))
        .projection_expression("a, a.b")
        .send()
        .await;
    assert_validation(r, "Two document paths overlap with each other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn between_with_lower_bound_above_upper_bound_is_rejected() {
    let (_node, client) = with_item(vec![("price", n("15"))]).await;
    let r = client
        .update_item()
        .table_name("expr")
        .key("pk", s("k"))
        .update_expression("SET a = :lo")
        .condition_expression("price BETWEEN :hi AND :lo")
        .expression_attribute_values(":lo", n("10"))
        .expression_attribute_values(":hi", n("20"))
        .send()
        .await;
    assert_validation(
        r,
        "The BETWEEN operator requires upper bound to be greater than or equal to lower bound",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expression_attribute_values_without_expressions_are_rejected() {
    let (_node, client) = with_item(vec![]).await;
    let r = client
        .put_item()
        .table_name("expr")
        .item("pk", s("k"))
        .expression_attribute_values(":x", n("1"))
        .send()
        .await;
    assert_validation(
        r,
        "ExpressionAttributeValues can only be specified when using expressions",
    );
    let r = client
        .get_item()
        .table_name("expr")
        .key("pk", s("k"))
        .expression_attribute_names("#x", "x")
        .send()
        .await;
    assert_validation(
        r,
        "ExpressionAttributeNames can only be specified when using expressions",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_update_expression_is_rejected() {
    let (_node, client) = with_item(vec![]).await;
    let r = update(&client, "", &[], vec![]).await;
    assert_validation(
        r,
        "Invalid UpdateExpression: The expression can not be empty;",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expressions_over_four_kilobytes_are_rejected() {
    let (_node, client) = with_item(vec![("a", n("1"))]).await;
    let long = vec!["a = :x"; 700].join(" OR ");
    assert!(long.len() > 4096);
    let r = client
        .update_item()
        .table_name("expr")
        .key("pk", s("k"))
        .update_expression("SET b = :x")
        .condition_expression(long)
        .expression_attribute_values(":x", n("1"))
        .send()
        .await;
    assert_validation(
        r,
        "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_with_more_than_one_hundred_operands_is_rejected() {
    let (_node, client) = with_item(vec![("a", n("1"))]).await;
    let mut req = client
        .update_item()
        .table_name("expr")
        .key("pk", s("k"))
        .update_expression("SET b = :v0");
    let names: Vec<String> = (0..101).map(|i| format!(":v{i}")).collect();
    for name in &names {
        req = req.expression_attribute_values(name, n("1"));
    }
    let r = req
        .condition_expression(format!("a IN ({})", names.join(", ")))
        .send()
        .await;
    assert_code(r, "ValidationException");
    // Exactly 100 operands is fine.
    let mut req = client
        .update_item()
        .table_name("expr")
        .key("pk", s("k"))
        .update_expression("SET b = :v0");
    for name in &names[..100] {
        req = req.expression_attribute_values(name, n("1"));
    }
    req.condition_expression(format!("a IN ({})", names[..100].join(", ")))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begins_with_a_number_operand_is_rejected() {
    let (_node, client) = with_item(vec![("title", s("123"))]).await;
    let r = client
        .update_item()
        .table_name("expr")
        .key("pk", s("k"))
        .update_expression("SET b = :v")
        .condition_expression("begins_with(title, :v)")
        .expression_attribute_values(":v", n("1"))
        .send()
        .await;
    assert_validation(
        r,
        "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_a_non_set_operand_is_rejected() {
    let (_node, client) = with_item(vec![("tags", ss(["a"]))]).await;
    let r = update(&client, "DELETE tags :v", &[], vec![(":v", s("a"))]).await;
    assert_validation(r, "Incorrect operand type for operator or function");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_append_of_a_non_list_is_rejected() {
    let (_node, client) = with_item(vec![("l", list([n("1")])), ("str", s("x"))]).await;
    let r = update(
        &client,
        "SET l = list_append(l, :v)",
        &[],
        vec![(":v", s("a"))],
    )
    .await;
    assert_code(r, "ValidationException");
    let r = update(
        &client,
        "SET l = list_append(str, :v)",
        &[],
        vec![(":v", list([]))],
    )
    .await;
    assert_validation(
        r,
        "An operand in the update expression has an incorrect data type",
    );
    assert_eq!(stored(&client).await.get("l"), Some(&list([n("1")])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_projection_path_twice_is_rejected() {
    let (_node, client) = with_item(vec![("a", n("1"))]).await;
    let r = client
        .get_item()
        .table_name("expr")
        .key("pk", s("k"))
        .projection_expression("a, a")
        .send()
        .await;
    assert_validation(r, "Two document paths overlap with each other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_with_a_failed_condition_changes_nothing() {
    let (_node, client) = with_item(vec![("a", n("1")), ("l", list([s("x")]))]).await;
    let r = client
        .update_item()
        .table_name("expr")
        .key("pk", s("k"))
        .update_expression("SET a = :two REMOVE l[0]")
        .condition_expression("a = :two")
        .expression_attribute_values(":two", n("2"))
        .send()
        .await;
    assert_code(r, "ConditionalCheckFailedException");
    assert_same_item(
        Some(&stored(&client).await),
        &item([("a", n("1")), ("l", list([s("x")]))]),
    );
}
