//! Provisioned capacity is enforced: PROVISIONED tables and their global indexes answer
//! `ProvisionedThroughputExceededException` (with `ThrottlingReasons`) beyond their capacity,
//! batches return what was throttled unprocessed, UpdateTable takes effect at once, and the SDK's
//! default retries converge on the provisioned rate.
//!
//! A new bucket holds one second of its rate (burst credit is capacity left unused, and a new
//! table has none yet), so the tests see throttling within a second or two.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    KeysAndAttributes, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType,
};
use shoal_tests::*;

use crate::support::*;

const THROTTLED: &str = "ProvisionedThroughputExceededException";

fn throughput(read: i64, write: i64) -> ProvisionedThroughput {
    ProvisionedThroughput::builder()
        .read_capacity_units(read)
        .write_capacity_units(write)
        .build()
        .unwrap()
}

/// Creates the PROVISIONED table `name` (partition key `pk`) with `read`/`write` units and,
/// when `gsi` gives its units, a global index `by_g` on `g` with them.
async fn create_provisioned(
    client: &Client,
    name: &str,
    (read, write): (i64, i64),
    gsi: Option<(i64, i64)>,
) {
    let mut create = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(throughput(read, write))
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .key_schema(key_elem("pk", KeyType::Hash));
    if let Some((r, w)) = gsi {
        create = create
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("g")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("by_g")
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name("g")
                            .key_type(KeyType::Hash)
                            .build()
                            .unwrap(),
                    )
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .provisioned_throughput(throughput(r, w))
                    .build()
                    .unwrap(),
            );
    }
    create.send().await.unwrap();
    must_wait_active(client, name).await;
}

/// The SDK's default retry behaviour (standard mode: 3 attempts, exponential backoff with
/// jitter), which the tests' clients otherwise disable.
fn retrying_client(node: &TestNode) -> Client {
    let base = node.client();
    let config = base
        .config()
        .to_builder()
        .retry_config(RetryConfig::standard())
        .build();
    Client::from_conf(config)
}

/// One put of `pk`: `Ok(true)` applied, `Ok(false)` throttled (checked to be DynamoDB's
/// error with the table's reason).
async fn try_put(client: &Client, table: &str, pk: &str) -> Result<bool, String> {
    match client
        .put_item()
        .table_name(table)
        .item("pk", s(pk))
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(e))
            if e.err().is_provisioned_throughput_exceeded_exception() =>
        {
            Ok(false)
        }
        Err(e) => Err(describe_error(&e)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5_wcu_table_under_50_puts_a_second_is_throttled_and_sdk_retries_converge() {
    let node = TestNode::start().await;
    let client = node.client();
    create_provisioned(&client, "thr", (5, 5), None).await;

    // 1. 50 puts a second for 4 s, no retries: about 5 a second get through.
    let started = Instant::now();
    let (mut applied, mut throttled) = (0u32, 0u32);
    for i in 0..200 {
        let due = started + Duration::from_millis(20 * i);
        tokio::time::sleep_until(due.into()).await;
        match try_put(&client, "thr", &format!("a{i}")).await.unwrap() {
            true => applied += 1,
            false => throttled += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!("50 puts/s for {elapsed:.1} s, no retries: {applied} applied, {throttled} throttled");
    assert!(throttled > 0, "no put was throttled");
    // One second of credit to start with, then 5 units a second (each put is one unit; the
    // last admitted one may take the balance below zero).
    let most = 5.0 + 5.0 * elapsed + 1.0;
    assert!(
        f64::from(applied) <= most,
        "{applied} puts applied in {elapsed:.1} s, at most {most:.0} allowed"
    );
    assert!(
        applied >= 10,
        "only {applied} puts applied in {elapsed:.1} s"
    );

    // The error is DynamoDB's, with its ThrottlingReasons.
    let table_arn = client
        .describe_table()
        .table_name("thr")
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .table_arn
        .unwrap();
    let refused = loop {
        match client
            .put_item()
            .table_name("thr")
            .item("pk", s("probe"))
            .send()
            .await
        {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    let SdkError::ServiceError(service) = &refused else {
        panic!("not a service error: {}", describe_error(&refused));
    };
    assert_eq!(service.raw().status().as_u16(), 400);
    let err = service.err();
    assert!(
        err.is_provisioned_throughput_exceeded_exception(),
        "{}",
        describe_error(&refused)
    );
    let aws_sdk_dynamodb::operation::put_item::PutItemError::ProvisionedThroughputExceededException(
        e,
    ) = err
    else {
        unreachable!();
    };
    assert_eq!(
        e.message(),
        Some(
            "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."
        )
    );
    let reasons = e.throttling_reasons();
    assert_eq!(reasons.len(), 1);
    assert_eq!(
        reasons[0].reason(),
        Some("TableWriteProvisionedThroughputExceeded")
    );
    assert_eq!(reasons[0].resource(), Some(table_arn.as_str()));

    // 2. The same offered load through the SDK's default retries, each writer going on with
    // its item until it is written: every write converges, at the provisioned rate.
    let retrying = retrying_client(&node);
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let client = retrying.clone();
        writers.push(tokio::spawn(async move {
            let mut gave_up = 0u32;
            for i in 0..10u64 {
                // 4 writers, one put each every 80 ms: 50 a second offered.
                let due = started + Duration::from_millis(80 * i + 20 * w);
                tokio::time::sleep_until(due.into()).await;
                while !try_put(&client, "thr", &format!("b{w}-{i}")).await.unwrap() {
                    gave_up += 1;
                }
            }
            gave_up
        }));
    }
    let mut gave_up = 0;
    for w in writers {
        gave_up += w.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "40 puts offered at 50/s with the SDK's standard retries: all written in {elapsed:.1} s ({:.1}/s); the SDK gave up {gave_up} times (retried again)",
        40.0 / elapsed
    );
    // 40 units at 5 a second, from a balance at or below one unit: the load took about 8 s,
    // which only throttling (and the SDK retrying it) explains.
    assert!(
        elapsed >= 40.0 / 5.0 - 2.0,
        "40 writes at 5 WCU finished in {elapsed:.1} s"
    );
    let items = scan_items(
        &scan_pages(|start| {
            client
                .scan()
                .table_name("thr")
                .consistent_read(true)
                .set_exclusive_start_key(start)
        })
        .await,
    );
    let written = items
        .iter()
        .filter(|it| str_of(it, "pk").starts_with('b'))
        .count();
    assert_eq!(written, 40, "every retried write is in the table once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_table_takes_effect_at_once() {
    let node = TestNode::start().await;
    let client = node.client();
    create_provisioned(&client, "upd", (1, 1), None).await;
    let mut i = 0;
    while try_put(&client, "upd", &format!("k{i}")).await.unwrap() {
        i += 1;
        assert!(i < 50, "a 1-WCU table took 50 puts at once");
    }
    client
        .update_table()
        .table_name("upd")
        .provisioned_throughput(throughput(1, 1000))
        .send()
        .await
        .unwrap();
    // The next second allows 1,000: 100 puts go through without a refusal.
    for i in 0..100 {
        assert!(
            try_put(&client, "upd", &format!("m{i}")).await.unwrap(),
            "put {i} was throttled after the capacity was raised"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_throttled_and_cost_what_consumed_capacity_reports() {
    let node = TestNode::start().await;
    let client = node.client();
    create_provisioned(&client, "rdt", (2, 100), None).await;
    must_put(&client, "rdt", item([("pk", s("a"))])).await;
    // 2 RCU: a strongly consistent read is 1 unit, an eventually consistent one half. Within
    // well under a second, 2 units of credit give 2 consistent reads (the third admitted one
    // takes the balance below zero at most once), or 4 eventually consistent ones.
    let get = |consistent: bool| {
        client
            .get_item()
            .table_name("rdt")
            .key("pk", s("a"))
            .consistent_read(consistent)
            .send()
    };
    let mut served = 0;
    let refused = loop {
        match get(true).await {
            Ok(_) => served += 1,
            Err(e) => break e,
        }
        assert!(served < 20, "2 RCU served 20 consistent reads at once");
    };
    assert!(served >= 1, "no read served");
    let err = api_error(Err::<(), _>(refused));
    assert_eq!(err.code, THROTTLED);
    assert_eq!(err.status, Some(400));

    // A batch of reads on a throttled table: nothing processed is the error itself.
    let batch = client
        .batch_get_item()
        .request_items(
            "rdt",
            KeysAndAttributes::builder()
                .keys(key_s("a"))
                .consistent_read(true)
                .build()
                .unwrap(),
        )
        .send()
        .await;
    assert_code(batch, THROTTLED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_index_out_of_write_capacity_throttles_the_table_writes() {
    let node = TestNode::start().await;
    let client = node.client();
    create_provisioned(&client, "gsix", (100, 1000), Some((100, 1))).await;
    let mut i = 0;
    let refused = loop {
        match client
            .put_item()
            .table_name("gsix")
            .item("pk", s(format!("k{i}")))
            .item("g", s("x"))
            .send()
            .await
        {
            Ok(_) => i += 1,
            Err(e) => break e,
        }
        assert!(i < 50, "a 1-WCU index took 50 writes at once");
    };
    let SdkError::ServiceError(service) = &refused else {
        panic!("not a service error: {}", describe_error(&refused));
    };
    let aws_sdk_dynamodb::operation::put_item::PutItemError::ProvisionedThroughputExceededException(
        e,
    ) = service.err()
    else {
        panic!("not throttled: {}", describe_error(&refused));
    };
    let reasons = e.throttling_reasons();
    assert_eq!(
        reasons[0].reason(),
        Some("IndexWriteProvisionedThroughputExceeded")
    );
    assert!(
        reasons[0]
            .resource()
            .unwrap()
            .ends_with(":table/gsix/index/by_g"),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_writes_return_throttled_items_unprocessed() {
    let node = TestNode::start().await;
    let client = node.client();
    create_provisioned(&client, "bwt", (10, 3), None).await;
    // 3 units of credit: of 25 one-unit puts sent at once, at least 3 and far from all are
    // written; the rest come back unprocessed, and writing them later completes the batch.
    let items: Vec<Item> = (0..25)
        .map(|i| item([("pk", s(format!("k{i}")))]))
        .collect();
    let out = batch_write(&client, "bwt", items.iter().cloned().map(put_req).collect())
        .send()
        .await
        .unwrap();
    let left = out
        .unprocessed_items()
        .and_then(|u| u.get("bwt"))
        .map(Vec::len)
        .unwrap_or(0);
    assert!(left > 0, "a 3-WCU table wrote 25 items at once");
    assert!(left <= 22, "only {} of 25 written", 25 - left);
    // Resending what came back, as a client does with backoff, completes the batch.
    let mut pending = out.unprocessed_items.unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(requests) = pending.remove("bwt").filter(|r| !r.is_empty()) {
        assert!(Instant::now() < deadline, "the batch never completed");
        tokio::time::sleep(Duration::from_millis(300)).await;
        pending = match batch_write(&client, "bwt", requests.clone()).send().await {
            Ok(out) => out.unprocessed_items.unwrap_or_default(),
            // Nothing processed at all is the error itself: resend all of it.
            Err(e) => {
                assert_eq!(api_error(Err::<(), _>(e)).code, THROTTLED);
                [("bwt".to_string(), requests)].into()
            }
        };
    }
    // One consistent Scan (one read unit: the table is small) finds every item once.
    let scanned = scan_items(
        &scan_pages(|start| {
            client
                .scan()
                .table_name("bwt")
                .consistent_read(true)
                .set_exclusive_start_key(start)
        })
        .await,
    );
    let mut keys: Vec<&str> = scanned.iter().map(|it| str_of(it, "pk")).collect();
    keys.sort_unstable();
    let mut expected: Vec<&str> = items.iter().map(|it| str_of(it, "pk")).collect();
    expected.sort_unstable();
    assert_eq!(keys, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_tables_throttle_at_their_maximum_and_only_there() {
    use aws_sdk_dynamodb::types::OnDemandThroughput;
    let node = TestNode::start().await;
    let client = node.client();
    client
        .create_table()
        .table_name("odm")
        .billing_mode(BillingMode::PayPerRequest)
        .on_demand_throughput(
            OnDemandThroughput::builder()
                .max_write_request_units(2)
                .build(),
        )
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .key_schema(key_elem("pk", KeyType::Hash))
        .send()
        .await
        .unwrap();
    must_wait_active(&client, "odm").await;
    let mut i = 0;
    let refused = loop {
        match client
            .put_item()
            .table_name("odm")
            .item("pk", s(format!("k{i}")))
            .send()
            .await
        {
            Ok(_) => i += 1,
            Err(e) => break e,
        }
        assert!(
            i < 50,
            "a table of at most 2 write units a second took 50 puts at once"
        );
    };
    let SdkError::ServiceError(service) = &refused else {
        panic!("not a service error: {}", describe_error(&refused));
    };
    let aws_sdk_dynamodb::operation::put_item::PutItemError::ProvisionedThroughputExceededException(
        e,
    ) = service.err()
    else {
        panic!("not throttled: {}", describe_error(&refused));
    };
    assert_eq!(
        e.throttling_reasons()[0].reason(),
        Some("TableWriteMaxOnDemandThroughputExceeded")
    );
    // Reads have no maximum: 50 strongly consistent reads at once are served.
    for _ in 0..50 {
        client
            .get_item()
            .table_name("odm")
            .key("pk", s("k0"))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
    }
    // Removing the maximum (-1) takes effect at once.
    client
        .update_table()
        .table_name("odm")
        .on_demand_throughput(
            OnDemandThroughput::builder()
                .max_write_request_units(-1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    for i in 0..100 {
        assert!(
            try_put(&client, "odm", &format!("m{i}")).await.unwrap(),
            "put {i} throttled with no maximum"
        );
    }
}

/// Reads through every node of the cluster (SHOAL_TEST_CLUSTER=3: the partition's leader and
/// two other replicas, each serving from its own replica) count against one read capacity:
/// the replicas report what they serve to the leader and take its balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_through_every_node_count_against_one_limit() {
    let node = TestNode::start().await;
    let client = node.client();
    create_provisioned(&client, "spread", (10, 10), None).await;
    must_put(&client, "spread", item([("pk", s("a"))])).await;
    let members = node.member_addrs();
    let started = Instant::now();
    let run_for = Duration::from_secs(5);
    let mut readers = Vec::new();
    for addr in &members {
        let reader = client_for(&format!("http://{addr}"), ADMIN_KEY_ID, ADMIN_SECRET);
        readers.push(tokio::spawn(async move {
            let (mut served, mut throttled) = (0u32, 0u32);
            while started.elapsed() < run_for {
                match reader
                    .get_item()
                    .table_name("spread")
                    .key("pk", s("a"))
                    .send()
                    .await
                {
                    Ok(_) => served += 1,
                    Err(e) => {
                        assert_eq!(api_error(Err::<(), _>(e)).code, THROTTLED);
                        throttled += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            (served, throttled)
        }));
    }
    let mut served = 0;
    for r in readers {
        let (s, t) = r.await.unwrap();
        eprintln!("reader: {s} served, {t} throttled");
        assert!(t > 0, "a reader was never throttled");
        served += s;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Each eventually consistent read is half a unit. One limit: the second of credit each
    // replica starts with, 10 units a second, and the slack of the reports' interval. (Each
    // replica on its own would allow members × (10 + 10 × elapsed).)
    let units = f64::from(served) / 2.0;
    let most = 10.0 * members.len() as f64 + 10.0 * elapsed + 10.0;
    eprintln!(
        "{units} read units served through {} nodes in {elapsed:.1} s (one limit allows {most:.0})",
        members.len()
    );
    assert!(
        units <= most,
        "{units} read units served through {} nodes in {elapsed:.1} s; one limit allows {most:.0}",
        members.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_count_twice_and_are_throttled_too() {
    use aws_sdk_dynamodb::types::{Get, Put, TransactGetItem, TransactWriteItem};
    let node = TestNode::start().await;
    let client = node.client();
    create_provisioned(&client, "txt", (4, 4), None).await;
    must_put(&client, "txt", item([("pk", s("a"))])).await;
    // A transactional read costs twice a consistent read (2 units of the 4 per second), a
    // transactional write twice a write: the buckets run dry after a couple of each.
    let get = || {
        client
            .transact_get_items()
            .transact_items(
                TransactGetItem::builder()
                    .get(
                        Get::builder()
                            .table_name("txt")
                            .key("pk", s("a"))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
    };
    let mut served = 0;
    let refused = loop {
        match get().await {
            Ok(_) => served += 1,
            Err(e) => break e,
        }
        assert!(served < 20, "4 RCU served 20 transactional reads at once");
    };
    assert!(served >= 1, "no transactional read served");
    let err = api_error(Err::<(), _>(refused));
    assert_eq!(err.code, "TransactionCanceledException", "{err:?}");
    assert!(
        err.message.contains("ProvisionedThroughputExceeded"),
        "{err:?}"
    );
    let put = |n: usize| {
        client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name("txt")
                            .item("pk", s(format!("w{n}")))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
    };
    let mut written = 0;
    let refused = loop {
        match put(written).await {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 20, "4 WCU took 20 transactional writes at once");
    };
    assert!(written >= 1, "no transactional write served");
    let err = api_error(Err::<(), _>(refused));
    assert_eq!(err.code, "TransactionCanceledException", "{err:?}");
    assert!(
        err.message.contains("ProvisionedThroughputExceeded"),
        "{err:?}"
    );
}
