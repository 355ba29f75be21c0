//! Deep and wide client input (issue #12, items 1, 5 and 8): legacy conditions with hundreds of
//! thousands of entries, values nested past 32 levels, updates that would nest an item deeper,
//! expressions at every limit and one past it, huge projections, long attribute names. Bodies
//! are built as text (a `serde_json::Value` thousands of levels deep is itself recursive) and
//! sent signed over raw HTTP.
//!
//! The server is the real `shoal` binary, `target/<profile>/shoal` (`SHOAL_BIN` overrides it),
//! so a stack overflow shows as a dead process: after its worst cases every test checks that
//! the process is alive, printed no panic, and still answers. Run:
//!
//! ```text
//! cargo build -p shoal && cargo test -p shoal-tests --test hostile depth::
//! ```
//!
//! With `SHOAL_TEST_CLUSTER=3` the same requests go to an in-process 3-node cluster instead,
//! where every write is replicated to and applied by three replicas (a stack overflow there
//! aborts the whole test binary, so it cannot pass either).

use std::net::SocketAddr;
use std::path::PathBuf;

use shoal_tests::*;

/// DynamoDB's request size limit.
const MAX_BODY: usize = 16 * 1024 * 1024;
const NESTING: &str = "Nesting Levels have exceeded supported limits";

/// The `shoal` binary under test.
fn shoal_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("SHOAL_BIN") {
        return PathBuf::from(bin);
    }
    // target/<profile>/deps/hostile-<hash> → target/<profile>/shoal
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("shoal"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build -p shoal` first (or set SHOAL_BIN)",
        bin.display()
    );
    bin
}

/// The server under test: a real `shoal` process, or an in-process cluster in cluster mode.
enum Node {
    Process(Box<ProcessNode>),
    Cluster(Box<TestNode>),
}

impl Node {
    fn addr(&self) -> SocketAddr {
        match self {
            Node::Process(p) => p.addr(),
            Node::Cluster(c) => c.addr(),
        }
    }

    fn signing(&self) -> Signing {
        Signing::new(ADMIN_KEY_ID, ADMIN_SECRET)
    }

    /// For a process: that it has not exited (a crashed child stays a zombie until reaped, so
    /// its `/proc` state is `Z`) and printed no panic; the panic message shows what happened.
    fn assert_alive(&self) {
        let Node::Process(p) = self else { return };
        let pid = p.pid().expect("the process was started");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // `pid (comm) state ...`: the state follows the last `)`.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        assert!(
            matches!(state, Some(s) if s != "Z" && s != "X"),
            "shoal (pid {pid}) is no longer running; stderr:\n{}",
            p.stderr()
        );
        assert!(
            !p.stderr().contains("panicked"),
            "shoal panicked; stderr:\n{}",
            p.stderr()
        );
    }
}

/// A node with table `hostile` (string key `pk`) holding the item `{pk: "alive", v: 1}`.
async fn node() -> Node {
    let node = if cluster_mode() {
        Node::Cluster(Box::new(TestNode::start().await))
    } else {
        Node::Process(Box::new(
            ProcessNode::builder(shoal_bin())
                .admin_key(ADMIN_KEY_ID, ADMIN_SECRET)
                .start()
                .await,
        ))
    };
    let client = client_for(
        &format!("http://{}", node.addr()),
        ADMIN_KEY_ID,
        ADMIN_SECRET,
    );
    must_create_hash_table(&client, "hostile").await;
    must_put(
        &client,
        "hostile",
        item([("pk", s("alive")), ("v", n("1"))]),
    )
    .await;
    node
}

/// Sends a signed `op` with `body` and returns the answer. If none comes, the failure says
/// whether the process died (with its stderr) before saying that the connection failed.
async fn call(node: &Node, op: &str, body: impl Into<Vec<u8>>) -> RawResponse {
    let req = RawRequest::dynamodb(node.addr(), op, body).signed(&node.signing());
    let mut conn = RawConnection::connect(node.addr()).await;
    let answer = match conn.try_write(&req.to_bytes()).await {
        Ok(()) => conn.read_response_within(RAW_TIMEOUT).await,
        Err(e) => Err(e.to_string()),
    };
    if answer.is_err() {
        // Give a crashing process a moment to exit.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    node.assert_alive();
    answer.unwrap_or_else(|e| panic!("{op}: no answer: {e}"))
}

#[track_caller]
fn ok(r: &RawResponse) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[track_caller]
fn assert_error(r: &RawResponse, kind: &str, msg: &str) {
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error_type().as_deref(), Some(kind), "{}", r.text());
    assert_eq!(r.error_message().as_deref(), Some(msg));
}

#[track_caller]
fn invalid(r: &RawResponse, msg: &str) {
    assert_error(r, "ValidationException", msg);
}

/// The node is alive and still answers: health check, and the item written at start reads back.
async fn still_serving(node: &Node) {
    node.assert_alive();
    assert!(health_ok(node.addr()).await, "health check failed");
    let r = call(
        node,
        "GetItem",
        r#"{"TableName":"hostile","Key":{"pk":{"S":"alive"}},"ConsistentRead":true}"#,
    )
    .await;
    assert_eq!(ok(&r)["Item"]["v"]["N"], "1");
}

/// `{"S":"leaf"}` inside `depth` levels of `M` / `L` (alternating, a map outermost).
fn nested(depth: usize) -> String {
    let mut v = String::from(r#"{"S":"leaf"}"#);
    for i in (0..depth).rev() {
        v = if i % 2 == 0 {
            format!(r#"{{"M":{{"k":{v}}}}}"#)
        } else {
            format!(r#"{{"L":[{v}]}}"#)
        };
    }
    v
}

/// `{"name0":spec,...}` with `count` entries of `spec(i)`.
fn map_of(count: usize, mut entry: impl FnMut(usize) -> String) -> String {
    let mut out = String::with_capacity(count * 40);
    out.push('{');
    for i in 0..count {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&entry(i));
    }
    out.push('}');
    out
}

/// As many `"a<i>":<spec>` entries as fit in a 16 MB body around `prefix` ... `suffix`.
fn fill_16mb(prefix: &str, spec: &str, suffix: &str) -> (String, usize) {
    let mut body = String::with_capacity(MAX_BODY);
    body.push_str(prefix);
    body.push('{');
    let mut count = 0;
    loop {
        let entry = format!("{}\"a{count:08}\":{spec}", if count > 0 { "," } else { "" });
        if body.len() + entry.len() + 1 + suffix.len() > MAX_BODY {
            break;
        }
        body.push_str(&entry);
        count += 1;
    }
    body.push('}');
    body.push_str(suffix);
    (body, count)
}

fn expected_absent(count: usize) -> String {
    map_of(count, |i| format!(r#""e{i}":{{"Exists":false}}"#))
}

// ---- item 1: legacy conditions of any size ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_and_query_filters_of_4000_entries_and_of_16_mb() {
    let node = node().await;
    let null = r#"{"ComparisonOperator":"NULL"}"#;
    let filter = map_of(4000, |i| format!(r#""a{i}":{null}"#));
    for op in ["AND", "OR"] {
        let body = format!(
            r#"{{"TableName":"hostile","ScanFilter":{filter},"ConditionalOperator":"{op}"}}"#
        );
        assert_eq!(ok(&call(&node, "Scan", body).await)["Count"], 1);
    }
    let body = format!(
        r#"{{"TableName":"hostile","KeyConditions":{{"pk":{{"ComparisonOperator":"EQ","AttributeValueList":[{{"S":"alive"}}]}}}},"QueryFilter":{filter}}}"#
    );
    assert_eq!(ok(&call(&node, "Query", body).await)["Count"], 1);

    // As many entries as a 16 MB request holds (about 400,000).
    let (body, count) = fill_16mb(r#"{"TableName":"hostile","ScanFilter":"#, null, "}");
    assert!(count > 390_000, "{count}");
    assert_eq!(ok(&call(&node, "Scan", body).await)["Count"], 1);
    let (body, _) = fill_16mb(
        r#"{"TableName":"hostile","KeyConditions":{"pk":{"ComparisonOperator":"EQ","AttributeValueList":[{"S":"alive"}]}},"QueryFilter":"#,
        r#"{"ComparisonOperator":"NOT_NULL"}"#,
        r#","ConditionalOperator":"OR"}"#,
    );
    // Every a<i> is absent, so no entry holds: the item is filtered out.
    let out = ok(&call(&node, "Query", body).await);
    assert_eq!(
        (out["Count"].clone(), out["ScannedCount"].clone()),
        (0.into(), 1.into())
    );
    still_serving(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_with_100_000_entries_guards_put_update_and_delete() {
    let node = node().await;
    let expected = expected_absent(100_000);
    let put = format!(
        r#"{{"TableName":"hostile","Item":{{"pk":{{"S":"k"}},"v":{{"N":"1"}}}},"Expected":{expected}}}"#
    );
    ok(&call(&node, "PutItem", put).await);
    let update = format!(
        r#"{{"TableName":"hostile","Key":{{"pk":{{"S":"k"}}}},"AttributeUpdates":{{"v":{{"Action":"ADD","Value":{{"N":"1"}}}}}},"Expected":{expected},"ReturnValues":"ALL_NEW"}}"#
    );
    assert_eq!(
        ok(&call(&node, "UpdateItem", update).await)["Attributes"]["v"]["N"],
        "2"
    );
    // One entry out of 100,000 fails: the whole condition fails.
    let failing = expected.replacen(r#""e0":{"Exists":false}"#, r#""v":{"Exists":false}"#, 1);
    let delete =
        format!(r#"{{"TableName":"hostile","Key":{{"pk":{{"S":"k"}}}},"Expected":{failing}}}"#);
    assert_error(
        &call(&node, "DeleteItem", delete).await,
        "ConditionalCheckFailedException",
        "The conditional request failed",
    );
    let delete = format!(
        r#"{{"TableName":"hostile","Key":{{"pk":{{"S":"k"}}}},"Expected":{expected},"ReturnValues":"ALL_OLD"}}"#
    );
    assert_eq!(
        ok(&call(&node, "DeleteItem", delete).await)["Attributes"]["v"]["N"],
        "2"
    );
    // With OR, one holding entry among 100,000 failing ones is enough.
    let or = map_of(100_000, |i| {
        format!(r#""e{i}":{{"Exists":true,"Value":{{"S":"x"}}}}"#)
    })
    .replacen(
        r#""e0":{"Exists":true,"Value":{"S":"x"}}"#,
        r#""pk":{"Exists":false}"#,
        1,
    );
    let put = format!(
        r#"{{"TableName":"hostile","Item":{{"pk":{{"S":"k"}}}},"Expected":{or},"ConditionalOperator":"OR"}}"#
    );
    ok(&call(&node, "PutItem", put).await);
    still_serving(&node).await;
}

/// Item 5: 1,000 to 20,000 `Expected` entries were committed to the Raft log, then refused by
/// every replica as undecodable. Each write must now be applied and read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_with_1000_to_20000_expected_entries_are_applied_by_the_replicas() {
    let node = node().await;
    for count in [1_000, 5_000, 20_000] {
        let put = format!(
            r#"{{"TableName":"hostile","Item":{{"pk":{{"S":"k{count}"}},"n":{{"N":"{count}"}}}},"Expected":{}}}"#,
            expected_absent(count)
        );
        ok(&call(&node, "PutItem", put).await);
        let get = format!(
            r#"{{"TableName":"hostile","Key":{{"pk":{{"S":"k{count}"}}}},"ConsistentRead":true}}"#
        );
        assert_eq!(
            ok(&call(&node, "GetItem", get).await)["Item"]["n"]["N"],
            count.to_string()
        );
    }
    still_serving(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_updates_with_very_many_entries() {
    let node = node().await;
    // 30,000 attributes fit in 400 KB; 300,000 do not.
    let updates = |count| map_of(count, |i| format!(r#""a{i}":{{"Value":{{"N":"1"}}}}"#));
    let body = format!(
        r#"{{"TableName":"hostile","Key":{{"pk":{{"S":"wide"}}}},"AttributeUpdates":{}}}"#,
        updates(30_000)
    );
    ok(&call(&node, "UpdateItem", body).await);
    let get = r#"{"TableName":"hostile","Key":{"pk":{"S":"wide"}},"ConsistentRead":true}"#;
    assert_eq!(
        ok(&call(&node, "GetItem", get).await)["Item"]
            .as_object()
            .unwrap()
            .len(),
        30_001
    );
    let body = format!(
        r#"{{"TableName":"hostile","Key":{{"pk":{{"S":"wide2"}}}},"AttributeUpdates":{}}}"#,
        updates(300_000)
    );
    invalid(
        &call(&node, "UpdateItem", body).await,
        "Item size to update has exceeded the maximum allowed size",
    );
    still_serving(&node).await;
}

// ---- nested values ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_nested_past_32_levels_are_refused_everywhere() {
    let node = node().await;
    let put =
        |v: &str| format!(r#"{{"TableName":"hostile","Item":{{"pk":{{"S":"deep"}},"d":{v}}}}}"#);
    ok(&call(&node, "PutItem", put(&nested(32))).await);
    let get = r#"{"TableName":"hostile","Key":{"pk":{"S":"deep"}},"ConsistentRead":true}"#;
    assert!(ok(&call(&node, "GetItem", get).await)["Item"]["d"]["M"].is_object());
    for depth in [33, 100, 5_000, 100_000] {
        invalid(&call(&node, "PutItem", put(&nested(depth))).await, NESTING);
        // In ExpressionAttributeValues.
        let body = format!(
            r#"{{"TableName":"hostile","Item":{{"pk":{{"S":"x"}}}},"ConditionExpression":"d <> :v","ExpressionAttributeValues":{{":v":{}}}}}"#,
            nested(depth)
        );
        let r = call(&node, "PutItem", body).await;
        // Past serde_json's 128 levels the body cannot be parsed at all: the bare message.
        let msg = if depth < 60 {
            format!("ExpressionAttributeValues contains invalid value: {NESTING} for key :v")
        } else {
            NESTING.to_string()
        };
        invalid(&r, &msg);
        // In an Expected value and in an AttributeValueList.
        let body = format!(
            r#"{{"TableName":"hostile","Item":{{"pk":{{"S":"x"}}}},"Expected":{{"d":{{"Value":{}}}}}}}"#,
            nested(depth)
        );
        invalid(&call(&node, "PutItem", body).await, NESTING);
        let body = format!(
            r#"{{"TableName":"hostile","ScanFilter":{{"d":{{"ComparisonOperator":"EQ","AttributeValueList":[{}]}}}}}}"#,
            nested(depth)
        );
        invalid(&call(&node, "Scan", body).await, NESTING);
    }
    still_serving(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_cannot_nest_an_item_past_32_levels() {
    let node = node().await;
    ok(&call(
        &node,
        "PutItem",
        r#"{"TableName":"hostile","Item":{"pk":{"S":"u"},"a":{"M":{}}}}"#,
    )
    .await);
    let set = |v: &str| {
        format!(
            r#"{{"TableName":"hostile","Key":{{"pk":{{"S":"u"}}}},"UpdateExpression":"SET a.b = :v","ExpressionAttributeValues":{{":v":{v}}}}}"#
        )
    };
    // `a` is one level: a value of 32 levels under it makes 33.
    invalid(&call(&node, "UpdateItem", set(&nested(32))).await, NESTING);
    ok(&call(&node, "UpdateItem", set(&nested(31))).await);
    // Repeating updates cannot grow it either: a path of 32 dereferences into the 32 levels.
    let path: String = (0..31)
        .map(|i| if i % 2 == 0 { ".k" } else { "[0]" })
        .collect();
    let deeper = format!(
        r#"{{"TableName":"hostile","Key":{{"pk":{{"S":"u"}}}},"UpdateExpression":"SET a.b{path} = :v","ExpressionAttributeValues":{{":v":{{"L":[]}}}}}}"#
    );
    invalid(&call(&node, "UpdateItem", deeper).await, NESTING);
    let get = r#"{"TableName":"hostile","Key":{"pk":{"S":"u"}},"ConsistentRead":true}"#;
    assert!(ok(&call(&node, "GetItem", get).await)["Item"]["a"]["M"]["b"]["M"].is_object());
    still_serving(&node).await;
}

// ---- expressions at every limit and one past it ----

fn condition_put(expr: &str, values: &str) -> String {
    format!(
        r#"{{"TableName":"hostile","Item":{{"pk":{{"S":"e"}}}},"ConditionExpression":"{expr}","ExpressionAttributeValues":{values}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expressions_at_their_limits_pass_and_one_past_fail() {
    let node = node().await;
    let v = r#"{":v":{"N":"1"}}"#;
    // 4 KB.
    let pad = |len: usize| format!("attribute_not_exists(zz){}", " ".repeat(len - 24));
    ok(&call(
        &node,
        "PutItem",
        condition_put(&pad(4096), v)
            .replace(r#","ExpressionAttributeValues":{":v":{"N":"1"}}"#, ""),
    )
    .await);
    invalid(
        &call(&node, "PutItem", condition_put(&pad(4097), v)).await,
        "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: 4097",
    );
    // 300 operators: NOT and 150 comparisons joined by 149 ORs; then 151 and 150 ORs.
    let ors = |k: usize| {
        (0..k)
            .map(|i| format!("a{i} = :v"))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    ok(&call(
        &node,
        "PutItem",
        condition_put(&format!("NOT ({})", ors(150)), v),
    )
    .await);
    invalid(
        &call(&node, "PutItem", condition_put(&(ors(151)), v)).await,
        "Invalid ConditionExpression: The expression contains too many operators; the maximum allowed is: 300, operator count: 301",
    );
    // 32 nested levels (each group more than another group: `((...))` alone is refused as
    // redundant parentheses).
    let groups = |k: usize| format!("{}a <> :v{}", "(a <> :v AND ".repeat(k), ")".repeat(k));
    ok(&call(&node, "PutItem", condition_put(&groups(32), v)).await);
    let parens = |k: usize| format!("{}a <> :v{}", "(".repeat(k), ")".repeat(k));
    invalid(
        &call(&node, "PutItem", condition_put(&parens(33), v)).await,
        "Invalid ConditionExpression: The expression has too many nested levels; the maximum allowed is: 32",
    );
    let nots = |k: usize| format!("{}a <> :v", "NOT ".repeat(k));
    ok(&call(&node, "PutItem", condition_put(&nots(32), v)).await);
    invalid(
        &call(&node, "PutItem", condition_put(&nots(33), v)).await,
        "Invalid ConditionExpression: The expression has too many nested levels; the maximum allowed is: 32",
    );
    // A key condition nested 33 deep, and update functions nested 32 and 33 deep.
    invalid(
        &call(
            &node,
            "Query",
            format!(
                r#"{{"TableName":"hostile","KeyConditionExpression":"{}pk = :v{}","ExpressionAttributeValues":{{":v":{{"S":"a"}}}}}}"#,
                "(".repeat(33),
                ")".repeat(33)
            ),
        )
        .await,
        "Invalid KeyConditionExpression: The expression has too many nested levels; the maximum allowed is: 32",
    );
    let appends = |k: usize| {
        format!(
            r#"{{"TableName":"hostile","Key":{{"pk":{{"S":"f"}}}},"UpdateExpression":"SET l = {}:l{}","ExpressionAttributeValues":{{":l":{{"L":[{{"N":"1"}}]}}}},"ReturnValues":"UPDATED_NEW"}}"#,
            "list_append(".repeat(k),
            ", :l)".repeat(k)
        )
    };
    let out = ok(&call(&node, "UpdateItem", appends(32)).await);
    assert_eq!(
        out["Attributes"]["l"]["L"].as_array().map(Vec::len),
        Some(33)
    );
    invalid(
        &call(&node, "UpdateItem", appends(33)).await,
        "Invalid UpdateExpression: The expression has too many nested levels; the maximum allowed is: 32",
    );
    // IN with 100 operands, 101.
    let ins = |k: usize| format!("NOT a IN ({})", vec![":v"; k].join(","));
    ok(&call(&node, "PutItem", condition_put(&ins(100), v)).await);
    invalid(
        &call(&node, "PutItem", condition_put(&ins(101), v)).await,
        "Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101",
    );
    // Paths of 32 dereferences, 33.
    let path = |k: usize| {
        format!(
            "attribute_not_exists(a{})",
            ".b[0]".repeat(k / 2) + &".b".repeat(k % 2)
        )
    };
    ok(&call(
        &node,
        "PutItem",
        condition_put(&path(32), v).replace(r#","ExpressionAttributeValues":{":v":{"N":"1"}}"#, ""),
    )
    .await);
    invalid(
        &call(
            &node,
            "PutItem",
            condition_put(&path(33), v)
                .replace(r#","ExpressionAttributeValues":{":v":{"N":"1"}}"#, ""),
        )
        .await,
        "Invalid ConditionExpression: The document path has too many nesting levels; nesting levels: 33",
    );
    // The longest update expression: `SET a = :v + :v + ...` with 300 `+`.
    let plus = |k: usize| format!("SET a = {}", vec![":v"; k + 1].join(" + "));
    let update = |e: &str| {
        format!(
            r#"{{"TableName":"hostile","Key":{{"pk":{{"S":"e"}}}},"UpdateExpression":"{e}","ExpressionAttributeValues":{v},"ReturnValues":"UPDATED_NEW"}}"#
        )
    };
    assert_eq!(
        ok(&call(&node, "UpdateItem", update(&plus(300))).await)["Attributes"]["a"]["N"],
        "301"
    );
    invalid(
        &call(&node, "UpdateItem", update(&plus(301))).await,
        "Invalid UpdateExpression: The expression contains too many operators; the maximum allowed is: 300, operator count: 301",
    );
    still_serving(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_projections_and_attribute_lists() {
    let node = node().await;
    let get = |extra: &str| {
        format!(
            r#"{{"TableName":"hostile","Key":{{"pk":{{"S":"alive"}}}},"ConsistentRead":true,{extra}}}"#
        )
    };
    // As many paths as 4 KB holds (about 800), and one byte more.
    let mut paths = String::from("v");
    let mut i = 0;
    while paths.len() + format!(",p{i}").len() <= 4096 {
        paths.push_str(&format!(",p{i}"));
        i += 1;
    }
    let out = ok(&call(
        &node,
        "GetItem",
        get(&format!(r#""ProjectionExpression":"{paths}""#)),
    )
    .await);
    assert_eq!(out["Item"]["v"]["N"], "1");
    let over = format!("{paths},q");
    invalid(
        &call(
            &node,
            "GetItem",
            get(&format!(r#""ProjectionExpression":"{over}""#)),
        )
        .await,
        &format!(
            "Invalid ProjectionExpression: Expression size has exceeded the maximum allowed size; expression size: {}",
            over.len()
        ),
    );
    // Paths with the most dereferences, and one more.
    let deref = |k: usize| format!("v{}", "[0]".repeat(k));
    ok(&call(
        &node,
        "Scan",
        format!(
            r#"{{"TableName":"hostile","ProjectionExpression":"{}"}}"#,
            deref(32)
        ),
    )
    .await);
    invalid(
        &call(
            &node,
            "Scan",
            format!(
                r#"{{"TableName":"hostile","ProjectionExpression":"{}"}}"#,
                deref(33)
            ),
        )
        .await,
        "Invalid ProjectionExpression: The document path has too many nesting levels; nesting levels: 33",
    );
    // AttributesToGet of a whole 16 MB request (about 1.6 million names): answered at once.
    let mut body = String::with_capacity(MAX_BODY);
    body.push_str(r#"{"TableName":"hostile","Key":{"pk":{"S":"alive"}},"AttributesToGet":["v""#);
    let mut i = 0;
    while body.len() + 20 < MAX_BODY {
        body.push_str(&format!(",\"a{i}\""));
        i += 1;
    }
    body.push_str("]}");
    let started = std::time::Instant::now();
    let out = ok(&call(&node, "GetItem", body.clone()).await);
    assert_eq!(out["Item"]["v"]["N"], "1");
    eprintln!(
        "AttributesToGet of {i} names answered in {:?}",
        started.elapsed()
    );
    // ... and a duplicate at its very end is still found.
    let dup = body.replacen("]}", r#","v"]}"#, 1);
    if dup.len() <= MAX_BODY {
        invalid(
            &call(&node, "GetItem", dup).await,
            "One or more parameter values were invalid: Duplicate value in attribute name: v",
        );
    }
    still_serving(&node).await;
}

// ---- item 8: attribute names of at most 65,535 bytes ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_names_longer_than_65535_bytes_are_refused() {
    let node = node().await;
    let longest = "n".repeat(65_535);
    let long = "n".repeat(65_536);
    let keys_msg = |field: &str| {
        format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 65535]"
        )
    };
    // The longest non-key name is fine (key names are at most 255, checked by CreateTable).
    ok(&call(
        &node,
        "PutItem",
        format!(
            r#"{{"TableName":"hostile","Item":{{"pk":{{"S":"name"}},"{longest}":{{"S":"x"}}}}}}"#
        ),
    )
    .await);
    let r = call(
        &node,
        "PutItem",
        format!(r#"{{"TableName":"hostile","Item":{{"pk":{{"S":"name"}},"{long}":{{"S":"x"}}}}}}"#),
    )
    .await;
    invalid(&r, &keys_msg("item"));
    let r = call(
        &node,
        "GetItem",
        format!(r#"{{"TableName":"hostile","Key":{{"{long}":{{"S":"x"}}}}}}"#),
    )
    .await;
    invalid(&r, &keys_msg("key"));
    // Nested map keys too.
    let r = call(&node, "PutItem", format!(r#"{{"TableName":"hostile","Item":{{"pk":{{"S":"name"}},"m":{{"M":{{"{long}":{{"S":"x"}}}}}}}}}}"#)).await;
    invalid(
        &r,
        "1 validation error detected: Map keys must satisfy constraint: [Member must have length less than or equal to 65535]",
    );
    let r = call(&node, "PutItem", format!(r#"{{"TableName":"hostile","Item":{{"pk":{{"S":"name"}}}},"Expected":{{"{long}":{{"Exists":false}}}}}}"#)).await;
    invalid(&r, &keys_msg("expected"));
    let r = call(
        &node,
        "Scan",
        format!(
            r#"{{"TableName":"hostile","ScanFilter":{{"{long}":{{"ComparisonOperator":"NULL"}}}}}}"#
        ),
    )
    .await;
    invalid(&r, &keys_msg("scanFilter"));
    let r = call(&node, "Query", format!(r#"{{"TableName":"hostile","KeyConditions":{{"pk":{{"ComparisonOperator":"EQ","AttributeValueList":[{{"S":"alive"}}]}}}},"QueryFilter":{{"{long}":{{"ComparisonOperator":"NULL"}}}}}}"#)).await;
    invalid(&r, &keys_msg("queryFilter"));
    let r = call(&node, "UpdateItem", format!(r#"{{"TableName":"hostile","Key":{{"pk":{{"S":"name"}}}},"AttributeUpdates":{{"{long}":{{"Action":"DELETE"}}}}}}"#)).await;
    invalid(&r, &keys_msg("attributeUpdates"));
    let r = call(&node, "GetItem", format!(r#"{{"TableName":"hostile","Key":{{"pk":{{"S":"name"}}}},"AttributesToGet":["{long}"]}}"#)).await;
    invalid(
        &r,
        "1 validation error detected: Value at 'attributesToGet' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 65535]",
    );
    let r = call(&node, "GetItem", format!(r##"{{"TableName":"hostile","Key":{{"pk":{{"S":"name"}}}},"ProjectionExpression":"#n","ExpressionAttributeNames":{{"#n":"{long}"}}}}"##)).await;
    invalid(
        &r,
        "1 validation error detected: Value at 'expressionAttributeNames' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 65535]",
    );
    let r = call(&node, "GetItem", format!(r##"{{"TableName":"hostile","Key":{{"pk":{{"S":"name"}}}},"ProjectionExpression":"#n","ExpressionAttributeNames":{{"#n":"{longest}"}}}}"##)).await;
    assert!(ok(&r)["Item"][&longest]["S"].is_string());
    still_serving(&node).await;
}
