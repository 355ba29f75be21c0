//! DynamoDB Streams through the official `aws-sdk-dynamodbstreams` client on the node's own
//! endpoint: `StreamSpecification` in CreateTable, UpdateTable and DescribeTable; ListStreams,
//! DescribeStream, GetShardIterator and GetRecords with their errors; the records of each
//! kind of write and each view type.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    BillingMode, KeyType, Put, PutRequest, ScalarAttributeType, StreamSpecification,
    StreamViewType, TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodbstreams as streams;
use serde_json::json;
use shoal_tests::*;
use streams::types::{
    OperationType, Record, Shard, ShardFilter, ShardFilterType, ShardIteratorType,
};

fn spec(view: StreamViewType) -> StreamSpecification {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(view)
        .build()
        .unwrap()
}

fn disabled() -> StreamSpecification {
    StreamSpecification::builder()
        .stream_enabled(false)
        .build()
        .unwrap()
}

/// Creates table `name` (string `pk`, on demand) with a stream of `view`, waits until it is
/// active, and returns the stream's ARN.
async fn create_with_stream(client: &Client, name: &str, view: StreamViewType) -> String {
    let out = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .key_schema(key_elem("pk", KeyType::Hash))
        .stream_specification(spec(view.clone()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable {name}: {}", describe_error(&e)));
    let t = out.table_description.unwrap();
    let s = t.stream_specification.unwrap();
    assert!(s.stream_enabled);
    assert_eq!(s.stream_view_type, Some(view));
    let arn = t.latest_stream_arn.unwrap();
    let label = t.latest_stream_label.unwrap();
    assert_eq!(arn, format!("{}/stream/{label}", t.table_arn.unwrap()));
    let described = must_wait_active(client, name).await;
    assert_eq!(described.latest_stream_arn.as_deref(), Some(arn.as_str()));
    arn
}

/// Every shard of the stream (DescribeStream, paged one shard at a time to exercise paging).
async fn all_shards(sc: &streams::Client, arn: &str) -> Vec<Shard> {
    let mut shards = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let d = sc
            .describe_stream()
            .stream_arn(arn)
            .limit(1)
            .set_exclusive_start_shard_id(start.take())
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeStream: {}", describe_error(&e)))
            .stream_description
            .unwrap();
        shards.extend(d.shards.unwrap_or_default());
        match d.last_evaluated_shard_id {
            Some(last) => start = Some(last),
            None => return shards,
        }
    }
}

/// A shard iterator of `kind` (with `seq` for the sequence-number kinds).
async fn iterator(
    sc: &streams::Client,
    arn: &str,
    shard: &str,
    kind: ShardIteratorType,
    seq: Option<&str>,
) -> String {
    sc.get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_sequence_number(seq.map(str::to_string))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetShardIterator: {}", describe_error(&e)))
        .shard_iterator
        .unwrap()
}

/// Reads a shard from `it` until a read returns no record; the records and the iterator to
/// go on with.
async fn drain(sc: &streams::Client, mut it: String, limit: Option<i32>) -> (Vec<Record>, String) {
    let mut out = Vec::new();
    loop {
        let r = sc
            .get_records()
            .shard_iterator(&it)
            .set_limit(limit)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetRecords: {}", describe_error(&e)));
        let records = r.records.unwrap_or_default();
        if let Some(l) = limit {
            assert!(records.len() <= l as usize, "{} > Limit {l}", records.len());
        }
        let next = r
            .next_shard_iterator
            .expect("an open shard always has a NextShardIterator");
        if records.is_empty() {
            return (out, next);
        }
        out.extend(records);
        it = next;
    }
}

/// Every record of the stream from the trim horizon, shard after shard.
async fn read_all(sc: &streams::Client, arn: &str) -> Vec<Record> {
    let mut out = Vec::new();
    for shard in all_shards(sc, arn).await {
        let id = shard.shard_id.unwrap();
        let it = iterator(sc, arn, &id, ShardIteratorType::TrimHorizon, None).await;
        out.extend(drain(sc, it, None).await.0);
    }
    out
}

/// [`read_all`] until it returns `n` records (replicas apply, and so record, a moment after
/// the write is acknowledged elsewhere in a cluster); at most 10 s.
async fn wait_records(sc: &streams::Client, arn: &str, n: usize) -> Vec<Record> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let records = read_all(sc, arn).await;
        if records.len() >= n || Instant::now() > deadline {
            assert_eq!(records.len(), n, "records: {records:#?}");
            return records;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (10 s at most) for DescribeStream to report `want`, and returns how many times it
/// reported something else first.
async fn wait_status(sc: &streams::Client, arn: &str, want: streams::types::StreamStatus) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut before = 0;
    loop {
        let status = sc
            .describe_stream()
            .stream_arn(arn)
            .send()
            .await
            .unwrap()
            .stream_description
            .unwrap()
            .stream_status
            .unwrap();
        if status == want {
            return before;
        }
        assert!(Instant::now() < deadline, "still {status:?}, not {want:?}");
        before += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The records of item `pk`, in stream order.
fn of_key<'a>(records: &'a [Record], pk: &str) -> Vec<&'a Record> {
    records
        .iter()
        .filter(|r| {
            r.dynamodb
                .as_ref()
                .and_then(|d| d.keys.as_ref())
                .and_then(|k| k.get("pk"))
                .and_then(|v| v.as_s().ok())
                .is_some_and(|v| v == pk)
        })
        .collect()
}

/// A stream image as `attribute → string or number text`.
fn image(
    m: Option<&HashMap<String, streams::types::AttributeValue>>,
) -> Option<Vec<(String, String)>> {
    let mut v: Vec<(String, String)> = m?
        .iter()
        .map(|(k, v)| {
            let text = match v {
                streams::types::AttributeValue::S(s) | streams::types::AttributeValue::N(s) => {
                    s.clone()
                }
                other => format!("{other:?}"),
            };
            (k.clone(), text)
        })
        .collect();
    v.sort();
    Some(v)
}

fn pairs(p: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
    let mut v: Vec<(String, String)> = p
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    Some(v)
}

fn event(r: &Record) -> OperationType {
    r.event_name.clone().unwrap()
}

async fn put(client: &Client, table: &str, pk: &str, v: &str) {
    must_put(client, table, item([("pk", s(pk)), ("v", s(v))])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_view_type_records_its_images_of_insert_modify_and_remove() {
    let node = TestNode::start().await;
    let client = node.client();
    let sc = node.streams_client();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for (name, view) in [
        ("st_keys", StreamViewType::KeysOnly),
        ("st_new", StreamViewType::NewImage),
        ("st_old", StreamViewType::OldImage),
        ("st_both", StreamViewType::NewAndOldImages),
    ] {
        let arn = create_with_stream(&client, name, view.clone()).await;
        put(&client, name, "a", "1").await;
        client
            .update_item()
            .table_name(name)
            .key("pk", s("a"))
            .update_expression("SET v = :v")
            .expression_attribute_values(":v", s("2"))
            .send()
            .await
            .unwrap();
        must_delete(&client, name, item([("pk", s("a"))])).await;
        let records = wait_records(&sc, &arn, 3).await;
        let events: Vec<_> = records.iter().map(event).collect();
        assert_eq!(
            events,
            [
                OperationType::Insert,
                OperationType::Modify,
                OperationType::Remove
            ],
            "{name}"
        );
        let (keeps_new, keeps_old) = match view {
            StreamViewType::KeysOnly => (false, false),
            StreamViewType::NewImage => (true, false),
            StreamViewType::OldImage => (false, true),
            _ => (true, true),
        };
        let expected = [
            (None, Some([("pk", "a"), ("v", "1")])),
            (
                Some([("pk", "a"), ("v", "1")]),
                Some([("pk", "a"), ("v", "2")]),
            ),
            (Some([("pk", "a"), ("v", "2")]), None),
        ];
        let mut last_seq = 0u128;
        let mut ids = std::collections::HashSet::new();
        for (r, (old, new)) in records.iter().zip(expected) {
            assert_eq!(r.event_version.as_deref(), Some("1.1"));
            assert_eq!(r.event_source.as_deref(), Some("aws:dynamodb"));
            assert_eq!(r.aws_region.as_deref(), Some(REGION));
            assert!(r.user_identity.is_none());
            assert!(ids.insert(r.event_id.clone().unwrap()), "eventID repeated");
            let d = r.dynamodb.as_ref().unwrap();
            assert_eq!(
                d.stream_view_type,
                Some(streams::types::StreamViewType::from(view.as_str()))
            );
            assert_eq!(image(d.keys.as_ref()), pairs(&[("pk", "a")]));
            let want = |i: Option<[(&str, &str); 2]>, kept: bool| {
                i.filter(|_| kept).and_then(|i| pairs(&i))
            };
            assert_eq!(
                image(d.new_image.as_ref()),
                want(new, keeps_new),
                "{name} new"
            );
            assert_eq!(
                image(d.old_image.as_ref()),
                want(old, keeps_old),
                "{name} old"
            );
            let seq = d.sequence_number.as_deref().unwrap();
            assert!((21..=40).contains(&seq.len()), "{seq}");
            let seq: u128 = seq.parse().unwrap();
            assert!(seq > last_seq, "sequence numbers grow");
            last_seq = seq;
            assert!(d.size_bytes.unwrap() > 0);
            let at = d.approximate_creation_date_time.unwrap().as_secs_f64();
            assert!(at >= started.floor() - 1.0 && at < started + 300.0, "{at}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_unchanging_writes_record_nothing_transactions_and_batches_do() {
    let node = TestNode::start().await;
    let client = node.client();
    let sc = node.streams_client();
    let arn = create_with_stream(&client, "st_w", StreamViewType::NewAndOldImages).await;
    put(&client, "st_w", "a", "1").await;
    // A failed conditional write changes nothing and is not recorded.
    let failed = client
        .put_item()
        .table_name("st_w")
        .item("pk", s("a"))
        .item("v", s("9"))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    assert_code(failed, "ConditionalCheckFailedException");
    // Neither is a write that leaves the item as it was (the developer guide: "If you perform a
    // PutItem or UpdateItem operation that does not change any data in an item, DynamoDB
    // Streams does not write a stream record for that operation").
    put(&client, "st_w", "a", "1").await;
    // A transaction's writes and a batch's are recorded like single writes.
    client
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("st_w")
                        .item("pk", s("t1"))
                        .item("v", s("x"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("st_w")
                        .item("pk", s("a"))
                        .item("v", s("2"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("TransactWriteItems: {}", describe_error(&e)));
    let puts: Vec<WriteRequest> = ["b1", "b2", "b3"]
        .iter()
        .map(|pk| {
            WriteRequest::builder()
                .put_request(PutRequest::builder().item("pk", s(*pk)).build().unwrap())
                .build()
        })
        .collect();
    client
        .batch_write_item()
        .request_items("st_w", puts)
        .send()
        .await
        .unwrap();
    let records = wait_records(&sc, &arn, 6).await;
    let a = of_key(&records, "a");
    assert_eq!(a.len(), 2, "{a:#?}");
    assert_eq!(event(a[0]), OperationType::Insert);
    assert_eq!(event(a[1]), OperationType::Modify);
    let d = a[1].dynamodb.as_ref().unwrap();
    assert_eq!(
        image(d.old_image.as_ref()),
        pairs(&[("pk", "a"), ("v", "1")])
    );
    assert_eq!(
        image(d.new_image.as_ref()),
        pairs(&[("pk", "a"), ("v", "2")])
    );
    for pk in ["t1", "b1", "b2", "b3"] {
        let r = of_key(&records, pk);
        assert_eq!(r.len(), 1, "{pk}");
        assert_eq!(event(r[0]), OperationType::Insert);
    }
    let ids: std::collections::HashSet<_> = records.iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(ids.len(), records.len(), "eventIDs are unique");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iterators_latest_at_and_after_sequence_numbers_and_paging() {
    let node = TestNode::start().await;
    let client = node.client();
    let sc = node.streams_client();
    let arn = create_with_stream(&client, "st_it", StreamViewType::KeysOnly).await;
    // Every write to one item, so they are all in one shard.
    for v in 0..5 {
        put(&client, "st_it", "k", &v.to_string()).await;
    }
    let records = wait_records(&sc, &arn, 5).await;
    let seqs: Vec<String> = records
        .iter()
        .map(|r| {
            r.dynamodb
                .as_ref()
                .unwrap()
                .sequence_number
                .clone()
                .unwrap()
        })
        .collect();
    // The shard that has the item's records.
    let mut shard = None;
    for s in all_shards(&sc, &arn).await {
        let id = s.shard_id.unwrap();
        let it = iterator(&sc, &arn, &id, ShardIteratorType::TrimHorizon, None).await;
        if !drain(&sc, it, None).await.0.is_empty() {
            shard = Some(id);
        }
    }
    let shard = shard.unwrap();

    // Paging: Limit 2 returns 2, 2, 1, then nothing, each with a NextShardIterator.
    let it = iterator(&sc, &arn, &shard, ShardIteratorType::TrimHorizon, None).await;
    let mut sizes = Vec::new();
    let mut it = it;
    loop {
        let r = sc
            .get_records()
            .shard_iterator(&it)
            .limit(2)
            .send()
            .await
            .unwrap();
        let n = r.records.unwrap_or_default().len();
        it = r.next_shard_iterator.unwrap();
        if n == 0 {
            break;
        }
        sizes.push(n);
    }
    assert_eq!(sizes, [2, 2, 1]);

    // AT_SEQUENCE_NUMBER includes that record, AFTER_SEQUENCE_NUMBER starts after it.
    let seq_of = |rs: &[Record]| -> Vec<String> {
        rs.iter()
            .map(|r| {
                r.dynamodb
                    .as_ref()
                    .unwrap()
                    .sequence_number
                    .clone()
                    .unwrap()
            })
            .collect()
    };
    let at = iterator(
        &sc,
        &arn,
        &shard,
        ShardIteratorType::AtSequenceNumber,
        Some(&seqs[2]),
    )
    .await;
    assert_eq!(seq_of(&drain(&sc, at, None).await.0), seqs[2..]);
    let after = iterator(
        &sc,
        &arn,
        &shard,
        ShardIteratorType::AfterSequenceNumber,
        Some(&seqs[2]),
    )
    .await;
    assert_eq!(seq_of(&drain(&sc, after, None).await.0), seqs[3..]);

    // LATEST sees nothing already written, then what is written after it was issued.
    let latest = iterator(&sc, &arn, &shard, ShardIteratorType::Latest, None).await;
    let (none, latest) = drain(&sc, latest, None).await;
    assert!(none.is_empty(), "{none:#?}");
    put(&client, "st_it", "k", "later").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let later = loop {
        let (r, _) = drain(&sc, latest.clone(), None).await;
        if !r.is_empty() || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(later.len(), 1, "{later:#?}");
    assert!(seq_of(&later)[0] > seqs[4]);
    // The iterator after the last record, read again, still finds nothing new.
    let (again, _) = drain(&sc, latest, None).await;
    assert_eq!(seq_of(&again), seq_of(&later));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_and_re_enabling_makes_a_new_stream_and_keeps_the_old_readable() {
    let node = TestNode::start().await;
    let client = node.client();
    let sc = node.streams_client();
    let first = create_with_stream(&client, "st_re", StreamViewType::NewImage).await;
    put(&client, "st_re", "a", "1").await;
    wait_records(&sc, &first, 1).await;

    let out = client
        .update_table()
        .table_name("st_re")
        .stream_specification(disabled())
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateTable: {}", describe_error(&e)));
    let t = out.table_description.unwrap();
    assert_eq!(t.latest_stream_arn.as_deref(), Some(first.as_str()));
    assert!(!t.stream_specification.unwrap().stream_enabled);
    let t = must_wait_active(&client, "st_re").await;
    assert!(!t.stream_specification.unwrap().stream_enabled);
    assert_eq!(t.latest_stream_arn.as_deref(), Some(first.as_str()));
    // DISABLING until every partition applied the change in its log, then DISABLED.
    wait_status(&sc, &first, streams::types::StreamStatus::Disabled).await;
    // Disabled: later writes are not recorded, earlier ones stay readable.
    put(&client, "st_re", "b", "1").await;
    let d = sc
        .describe_stream()
        .stream_arn(&first)
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap();
    assert_eq!(
        d.stream_status,
        Some(streams::types::StreamStatus::Disabled)
    );
    assert_eq!(wait_records(&sc, &first, 1).await.len(), 1);

    let out = client
        .update_table()
        .table_name("st_re")
        .stream_specification(spec(StreamViewType::KeysOnly))
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateTable: {}", describe_error(&e)));
    let t = out.table_description.unwrap();
    let second = t.latest_stream_arn.unwrap();
    assert_ne!(second, first);
    assert_ne!(t.latest_stream_label.as_deref(), first.rsplit('/').next());
    let s = t.stream_specification.unwrap();
    assert!(s.stream_enabled);
    assert_eq!(s.stream_view_type, Some(StreamViewType::KeysOnly));
    must_wait_active(&client, "st_re").await;
    // ENABLING until every partition applied the change in its log: what is written from then
    // on has records.
    wait_status(&sc, &second, streams::types::StreamStatus::Enabled).await;
    put(&client, "st_re", "c", "1").await;
    let records = wait_records(&sc, &second, 1).await;
    assert_eq!(of_key(&records, "c").len(), 1);
    assert_eq!(wait_records(&sc, &first, 1).await.len(), 1);

    let d = sc
        .describe_stream()
        .stream_arn(&second)
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap();
    assert_eq!(d.stream_status, Some(streams::types::StreamStatus::Enabled));
    assert_eq!(
        d.stream_view_type,
        Some(streams::types::StreamViewType::KeysOnly)
    );
    let listed = sc.list_streams().table_name("st_re").send().await.unwrap();
    let arns: Vec<String> = listed
        .streams
        .unwrap()
        .into_iter()
        .map(|s| s.stream_arn.unwrap())
        .collect();
    assert_eq!(arns, [first.clone(), second.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_table_stream_errors_are_dynamodbs() {
    let node = TestNode::start().await;
    let client = node.client();
    let arn = create_with_stream(&client, "st_v", StreamViewType::NewImage).await;
    let update = |spec: StreamSpecification| {
        client
            .update_table()
            .table_name("st_v")
            .stream_specification(spec)
            .send()
    };
    let e = assert_code(
        update(spec(StreamViewType::OldImage)).await,
        "ValidationException",
    );
    assert_eq!(
        e.message,
        format!("Table already has an enabled stream: {arn}")
    );
    update(disabled()).await.unwrap();
    must_wait_active(&client, "st_v").await;
    assert_validation(update(disabled()).await, "does not have an enabled stream");
    let no_view = StreamSpecification::builder()
        .stream_enabled(true)
        .build()
        .unwrap();
    assert_validation(update(no_view.clone()).await, "StreamViewType");

    // CreateTable: a stream needs its view type; StreamEnabled false is no stream.
    let create = |name: &str, spec: StreamSpecification| {
        client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
            .key_schema(key_elem("pk", KeyType::Hash))
            .stream_specification(spec)
            .send()
    };
    assert_validation(create("st_nv", no_view).await, "StreamViewType");
    let t = create("st_off", disabled())
        .await
        .unwrap()
        .table_description
        .unwrap();
    assert!(t.stream_specification.is_none());
    assert!(t.latest_stream_arn.is_none());
    // Model constraints, sent raw (the SDK requires StreamEnabled).
    for (spec, fragment) in [
        (
            json!({}),
            "Value null at 'streamSpecification.streamEnabled' failed to satisfy constraint: Member must not be null",
        ),
        (
            json!({"StreamEnabled": true, "StreamViewType": "ALL"}),
            "Value 'ALL' at 'streamSpecification.streamViewType' failed to satisfy constraint: Member must satisfy enum value set",
        ),
    ] {
        let r = node
            .signed_request(
                "UpdateTable",
                &json!({"TableName": "st_off", "StreamSpecification": spec}),
            )
            .send(node.addr())
            .await;
        assert_eq!(r.error_type().as_deref(), Some("ValidationException"));
        let m = r.error_message().unwrap();
        assert!(m.contains(fragment), "{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_streams_filters_and_pages_describe_stream_describes() {
    let node = TestNode::start().await;
    let client = node.client();
    let sc = node.streams_client();
    let mut arns = Vec::new();
    for name in ["st_l1", "st_l2", "st_l3"] {
        arns.push(create_with_stream(&client, name, StreamViewType::NewAndOldImages).await);
    }
    must_create_hash_table(&client, "st_none").await;
    arns.sort();
    let all = sc.list_streams().send().await.unwrap();
    assert!(all.last_evaluated_stream_arn.is_none());
    let listed: Vec<_> = all.streams.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|s| s.stream_arn.clone().unwrap())
            .collect::<Vec<_>>(),
        arns
    );
    for s in &listed {
        let arn = s.stream_arn.as_deref().unwrap();
        let table = s.table_name.as_deref().unwrap();
        assert!(arn.contains(&format!(":table/{table}/stream/")));
        assert!(arn.ends_with(s.stream_label.as_deref().unwrap()));
    }
    // One at a time.
    let mut paged = Vec::new();
    let mut start = None;
    loop {
        let page = sc
            .list_streams()
            .limit(1)
            .set_exclusive_start_stream_arn(start.take())
            .send()
            .await
            .unwrap();
        paged.extend(
            page.streams
                .unwrap()
                .into_iter()
                .map(|s| s.stream_arn.unwrap()),
        );
        match page.last_evaluated_stream_arn {
            Some(last) => start = Some(last),
            None => break,
        }
    }
    assert_eq!(paged, arns);
    let one = sc.list_streams().table_name("st_l2").send().await.unwrap();
    assert_eq!(one.streams.unwrap().len(), 1);
    let none = sc
        .list_streams()
        .table_name("st_none")
        .send()
        .await
        .unwrap();
    assert!(none.streams.unwrap().is_empty());
    let e = assert_code(
        sc.list_streams().table_name("st_missing").send().await,
        "ResourceNotFoundException",
    );
    assert!(e.message.contains("st_missing"), "{e:?}");

    // DescribeStream.
    let arn = listed[0].stream_arn.clone().unwrap();
    let table = listed[0].table_name.clone().unwrap();
    let d = sc
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap();
    assert_eq!(d.stream_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(d.stream_label, listed[0].stream_label);
    assert_eq!(d.stream_status, Some(streams::types::StreamStatus::Enabled));
    assert_eq!(
        d.stream_view_type,
        Some(streams::types::StreamViewType::NewAndOldImages)
    );
    assert_eq!(d.table_name.as_deref(), Some(table.as_str()));
    let ks = d.key_schema.unwrap();
    assert_eq!(ks.len(), 1);
    assert_eq!(ks[0].attribute_name, "pk");
    assert_eq!(ks[0].key_type, streams::types::KeyType::Hash);
    assert!(d.creation_request_date_time.is_some());
    let shards = d.shards.unwrap();
    assert!(!shards.is_empty());
    assert!(d.last_evaluated_shard_id.is_none());
    for s in &shards {
        let id = s.shard_id.as_deref().unwrap();
        assert!((28..=65).contains(&id.len()), "{id}");
        let range = s.sequence_number_range.as_ref().unwrap();
        assert!(range.starting_sequence_number.is_some());
        // No split happened: every shard is open and has no parent.
        assert!(range.ending_sequence_number.is_none());
        assert!(s.parent_shard_id.is_none());
    }
    assert_eq!(all_shards(&sc, &arn).await, shards);
    // No shard has children yet.
    let children = sc
        .describe_stream()
        .stream_arn(&arn)
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::ChildShards)
                .shard_id(shards[0].shard_id.clone().unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap();
    assert!(children.shards.unwrap_or_default().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_errors_are_dynamodbs() {
    let node = TestNode::start().await;
    let client = node.client();
    let sc = node.streams_client();
    let arn = create_with_stream(&client, "st_e", StreamViewType::KeysOnly).await;
    let shard = all_shards(&sc, &arn).await[0].shard_id.clone().unwrap();

    let unknown = format!("{arn}1");
    let e = assert_code(
        sc.describe_stream().stream_arn(&unknown).send().await,
        "ResourceNotFoundException",
    );
    assert_eq!(
        e.message,
        format!("Requested resource not found: Stream: {unknown} not found")
    );
    let gone_table = arn.replace("table/st_e/", "table/st_gone/");
    assert_code(
        sc.get_shard_iterator()
            .stream_arn(&gone_table)
            .shard_id(&shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await,
        "ResourceNotFoundException",
    );
    let e = assert_code(
        sc.get_shard_iterator()
            .stream_arn(&arn)
            .shard_id("shardId-00000000000000009999-000000000000")
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await,
        "ResourceNotFoundException",
    );
    assert!(e.message.contains("Shard"), "{e:?}");
    let it = |kind: ShardIteratorType, seq: Option<&str>| {
        sc.get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(&shard)
            .shard_iterator_type(kind)
            .set_sequence_number(seq.map(str::to_string))
            .send()
    };
    assert_validation(
        it(ShardIteratorType::AtSequenceNumber, None).await,
        "SequenceNumber",
    );
    assert_validation(
        it(ShardIteratorType::AfterSequenceNumber, None).await,
        "SequenceNumber",
    );
    let seq = "000000000000000000001";
    assert_validation(
        it(ShardIteratorType::TrimHorizon, Some(seq)).await,
        "SequenceNumber",
    );
    assert_validation(
        it(ShardIteratorType::Latest, Some(seq)).await,
        "SequenceNumber",
    );
    assert_validation(
        it(
            ShardIteratorType::AtSequenceNumber,
            Some("abcdefghijklmnopqrstu"),
        )
        .await,
        "SequenceNumber",
    );
    assert_validation(
        it(ShardIteratorType::AtSequenceNumber, Some("1")).await,
        "Member must have length greater than or equal to 21",
    );

    let e = assert_code(
        sc.get_records().shard_iterator("garbage").send().await,
        "ValidationException",
    );
    assert!(e.message.starts_with("Invalid ShardIterator"), "{e:?}");
    let good = iterator(&sc, &arn, &shard, ShardIteratorType::TrimHorizon, None).await;
    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    assert_code(
        sc.get_records().shard_iterator(&tampered).send().await,
        "ValidationException",
    );
    assert_validation(
        sc.get_records()
            .shard_iterator(&good)
            .limit(1001)
            .send()
            .await,
        "Member must have value less than or equal to 1000",
    );
    assert_validation(
        sc.get_records().shard_iterator(&good).limit(0).send().await,
        "Member must have value greater than or equal to 1",
    );
    assert_validation(
        sc.describe_stream()
            .stream_arn(&arn)
            .limit(101)
            .send()
            .await,
        "Member must have value less than or equal to 100",
    );
    assert_validation(
        sc.list_streams().limit(0).send().await,
        "Member must have value greater than or equal to 1",
    );
    assert_validation(
        sc.describe_stream().stream_arn("arn:short").send().await,
        "streamArn",
    );
    // Deleting the table removes its stream.
    client
        .delete_table()
        .table_name("st_e")
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = sc.describe_stream().stream_arn(&arn).send().await;
        if r.is_err() || Instant::now() > deadline {
            assert_code(r, "ResourceNotFoundException");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_code(
        sc.get_records().shard_iterator(&good).send().await,
        "ResourceNotFoundException",
    );

    // The Streams operations are Streams' only: DynamoDB's target does not know them.
    let r = node
        .signed_request("GetRecords", &json!({}))
        .send(node.addr())
        .await;
    assert_eq!(r.error_type().as_deref(), Some("UnknownOperationException"));
}

/// A new key with `policy`: its DynamoDB and Streams clients, once the node knows it.
async fn key_with_stream_policy(
    node: &TestNode,
    policy: serde_json::Value,
) -> (Client, streams::Client) {
    let request = shoal_node::control::Request::CreateKey {
        policy: Some(policy.to_string()),
    };
    let data_dir = node.data_dir();
    let answer =
        tokio::task::spawn_blocking(move || shoal_node::control::send(&data_dir, &request))
            .await
            .unwrap()
            .unwrap();
    let shoal_node::control::Response::KeyCreated { ref id, ref secret } = answer else {
        panic!("CreateKey did not create a key");
    };
    let client = node.client_with_key(id, secret);
    let sc = streams_client_for(&node.endpoint(), id, secret);
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = sc.list_streams().table_name("st_p").send().await {
        assert!(
            describe_error(&e).contains("UnrecognizedClient") && Instant::now() < deadline,
            "{}",
            describe_error(&e)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (client, sc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_operations_are_authorized_on_the_stream_arn() {
    let node = TestNode::start().await;
    let admin = node.client();
    let admin_sc = node.streams_client();
    let mine = create_with_stream(&admin, "st_p", StreamViewType::NewImage).await;
    let theirs = create_with_stream(&admin, "st_q", StreamViewType::NewImage).await;
    put(&admin, "st_p", "a", "1").await;
    put(&admin, "st_q", "a", "1").await;
    wait_records(&admin_sc, &mine, 1).await;
    wait_records(&admin_sc, &theirs, 1).await;
    let (_, sc) = key_with_stream_policy(
        &node,
        json!({
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "dynamodb:ListStreams",
                        "dynamodb:DescribeStream",
                        "dynamodb:GetShardIterator",
                        "dynamodb:GetRecords"
                    ],
                    "Resource": "arn:aws:dynamodb:*:*:table/st_p/stream/*"
                }
            ]
        }),
    )
    .await;
    // Its own table's stream: every operation.
    let listed = sc.list_streams().table_name("st_p").send().await.unwrap();
    assert_eq!(listed.streams.unwrap().len(), 1);
    let records = read_all(&sc, &mine).await;
    assert_eq!(records.len(), 1);
    // Another table's stream, or every table's: refused.
    let denied = |e: ApiError, what: &str| {
        assert_eq!(e.code, "AccessDeniedException", "{what}: {e:?}");
        assert!(e.message.contains(what), "{what}: {e:?}");
    };
    denied(
        api_error(sc.list_streams().send().await),
        "dynamodb:ListStreams",
    );
    denied(
        api_error(sc.describe_stream().stream_arn(&theirs).send().await),
        "dynamodb:DescribeStream",
    );
    let shard = all_shards(&admin_sc, &theirs).await[0]
        .shard_id
        .clone()
        .unwrap();
    denied(
        api_error(
            sc.get_shard_iterator()
                .stream_arn(&theirs)
                .shard_id(&shard)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await,
        ),
        "dynamodb:GetShardIterator",
    );
    // An iterator of the other stream, issued to the admin: its records are refused too.
    let it = iterator(
        &admin_sc,
        &theirs,
        &shard,
        ShardIteratorType::TrimHorizon,
        None,
    )
    .await;
    denied(
        api_error(sc.get_records().shard_iterator(&it).send().await),
        "dynamodb:GetRecords",
    );
}
