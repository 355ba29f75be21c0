//! Round trips of the `DATA` payloads, and refusal of malformed ones.
#![allow(clippy::unwrap_used)]

use shoal_catalog::{DataError, QueryRequest, ScanRequest, TableStats};
use shoal_expr::{CompareOp, Condition, Operand, SortKeyCondition};
use shoal_storage::{Applied, ApplyError, Command, Page};
use shoal_types::{AttributeValue, Item};

use super::codec::{DataCall, DataReply, decode_result, encode_result};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn item(pairs: &[(&str, &str)]) -> Item {
    pairs.iter().map(|(k, v)| (k.to_string(), s(v))).collect()
}

fn filter() -> Condition {
    Condition::Compare {
        op: CompareOp::Ne,
        left: Operand::Value(s("a")),
        right: Operand::Value(s("b")),
    }
}

fn round_trip(call: &DataCall) -> DataCall {
    DataCall::decode(&call.encode()).unwrap()
}

/// One call of every kind.
fn sample_calls() -> Vec<DataCall> {
    vec![
        DataCall::Get {
            table: "t".into(),
            key: item(&[("pk", "a")]),
            consistent: true,
        },
        DataCall::Query {
            table: "t".into(),
            request: QueryRequest {
                partition_key: s("a"),
                sort_prefix: Vec::new(),
                sort: Some(SortKeyCondition::Between(s("b"), s("c"))),
                forward: false,
                exclusive_start: Some(item(&[("pk", "a"), ("sk", "b")])),
                limit: Some(7),
                byte_limit: 1 << 20,
                filter: Some(filter()),
                consistent: false,
                index: Some(3),
            },
        },
        DataCall::Query {
            table: "t".into(),
            request: QueryRequest {
                partition_key: AttributeValue::L(vec![s("a"), s("b")]),
                sort_prefix: vec![s("x"), s("y")],
                sort: Some(SortKeyCondition::BeginsWith(s("p"))),
                forward: true,
                exclusive_start: None,
                limit: None,
                byte_limit: 1 << 20,
                filter: None,
                consistent: false,
                index: Some(4),
            },
        },
        DataCall::Scan {
            table: "t".into(),
            request: ScanRequest {
                hash_start: 5,
                hash_end: u64::MAX,
                exclusive_start: None,
                limit: None,
                byte_limit: 1000,
                filter: None,
                consistent: true,
                index: None,
            },
        },
        DataCall::Write {
            table: "t".into(),
            command: Command::Put {
                item: item(&[("pk", "a"), ("v", "x")]),
                condition: Some(filter()),
            },
        },
        DataCall::CollectionSize {
            table: "t".into(),
            partition_key: s("a"),
        },
        DataCall::Stats {
            table: "t".into(),
            index: Some(2),
        },
        DataCall::IndexActive {
            table: "t".into(),
            index: 4,
        },
    ]
}

#[test]
fn every_call_round_trips() {
    for call in sample_calls() {
        assert_eq!(format!("{:?}", round_trip(&call)), format!("{call:?}"));
    }
}

/// One result of every kind, with the call each answers.
fn sample_results() -> Vec<(DataCall, Result<DataReply, DataError>)> {
    let get = DataCall::Get {
        table: "t".into(),
        key: item(&[("pk", "a")]),
        consistent: false,
    };
    let scan = DataCall::Scan {
        table: "t".into(),
        request: ScanRequest {
            hash_start: 0,
            hash_end: u64::MAX,
            exclusive_start: None,
            limit: None,
            byte_limit: 1,
            filter: None,
            consistent: false,
            index: None,
        },
    };
    let write = DataCall::Write {
        table: "t".into(),
        command: Command::Delete {
            key: item(&[("pk", "a")]),
            condition: None,
        },
    };
    let stats = DataCall::Stats {
        table: "t".into(),
        index: None,
    };
    let (get, scan, write, stats) = (&get, &scan, &write, &stats);
    let cases: Vec<(&DataCall, Result<DataReply, DataError>)> = vec![
        (get, Ok(DataReply::Item(Some(item(&[("pk", "a")]))))),
        (get, Ok(DataReply::Item(None))),
        (
            scan,
            Ok(DataReply::Page(Page {
                items: vec![item(&[("pk", "a")]), item(&[("pk", "b")])],
                scanned_count: 3,
                scanned_bytes: 99,
                last_evaluated_key: Some(item(&[("pk", "b")])),
            })),
        ),
        (
            write,
            Ok(DataReply::Applied(Applied {
                old: Some(item(&[("pk", "a")])),
                new: None,
            })),
        ),
        (
            stats,
            Ok(DataReply::Stats(TableStats {
                item_count: 4,
                size_bytes: 5,
            })),
        ),
        (
            write,
            Err(DataError::Apply(ApplyError::ConditionalCheckFailed {
                item: Some(item(&[("pk", "a")])),
            })),
        ),
        (get, Err(DataError::TableNotFound("t".into()))),
        (
            get,
            Err(DataError::Unavailable("catching up: retry".into())),
        ),
        (get, Err(DataError::Internal("x".into()))),
        (get, Err(DataError::IndexNotFound("i".into()))),
    ];
    cases
        .into_iter()
        .map(|(call, result)| (call.clone(), result))
        .collect()
}

#[test]
fn results_round_trip_with_their_errors() {
    for (call, result) in sample_results() {
        let want = format!("{result:?}");
        let got = decode_result(&call, &encode_result(result)).unwrap();
        assert_eq!(format!("{got:?}"), want);
    }
}

/// The `DATA` payloads are part of the cluster protocol (`shoal_rpc::PROTOCOL_VERSION`, carried
/// in every frame): checked-in encodings of the sample decode to it, and the sample still
/// encodes to them byte for byte, so a payload change without a protocol version bump fails.
/// After a deliberate change: bump the version, keep reading the old payloads, and write new
/// fixtures with `SHOAL_WRITE_FIXTURES=1 cargo test -p shoal-node --lib remote`.
#[test]
fn data_payload_fixtures_of_the_protocol_version_still_hold() {
    let version = shoal_rpc::frame::PROTOCOL_VERSION;
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("src/remote/fixtures/data-v{version}.hex"));
    let mut lines: Vec<String> = sample_calls()
        .iter()
        .map(|c| hex::encode(c.encode()))
        .collect();
    lines.push(String::new());
    lines.extend(
        sample_results()
            .into_iter()
            .map(|(_, r)| hex::encode(encode_result(r))),
    );
    let now = lines.join("\n") + "\n";
    if std::env::var_os("SHOAL_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &now).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap();
    let (calls, results) = checked_in.split_once("\n\n").unwrap();
    for (line, want) in calls.lines().zip(sample_calls()) {
        let got = DataCall::decode(&hex::decode(line).unwrap()).unwrap();
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
    }
    for (line, (call, want)) in results.lines().zip(sample_results()) {
        let got = decode_result(&call, &hex::decode(line).unwrap()).unwrap();
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
    }
    assert!(
        now == checked_in,
        "the DATA payload encoding changed but the protocol version ({version}) did not"
    );
}

/// Partition stats are a call added within protocol version 1 (old payloads are unchanged; it is
/// sent only for tables of several partitions, which exist once every member reads metadata
/// format 3): it round-trips, with its reply.
#[test]
fn partition_stats_round_trip() {
    let call = DataCall::PartitionStats {
        table: "t".into(),
        partition: 7,
        index: Some(3),
    };
    assert_eq!(format!("{:?}", round_trip(&call)), format!("{call:?}"));
    let reply = Ok(DataReply::Stats(shoal_catalog::TableStats {
        item_count: 3,
        size_bytes: 99,
    }));
    let want = format!("{reply:?}");
    let got = decode_result(&call, &encode_result(reply)).unwrap();
    assert_eq!(format!("{got:?}"), want);
}

#[test]
fn malformed_payloads_are_refused_not_trusted() {
    let call = DataCall::Get {
        table: "t".into(),
        key: item(&[("pk", "a")]),
        consistent: true,
    };
    let bytes = call.encode();
    for cut in 0..bytes.len() {
        assert!(
            DataCall::decode(&bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(DataCall::decode(&trailing).is_err());
    assert!(DataCall::decode(&[99]).is_err());
    // A page claiming more items than the bytes could hold.
    let scan = DataCall::Stats {
        table: "t".into(),
        index: None,
    };
    let mut lie = vec![0u8];
    lie.extend_from_slice(&u64::MAX.to_be_bytes());
    let as_scan = DataCall::Scan {
        table: "t".into(),
        request: ScanRequest {
            hash_start: 0,
            hash_end: 0,
            exclusive_start: None,
            limit: None,
            byte_limit: 1,
            filter: None,
            consistent: false,
            index: None,
        },
    };
    assert!(decode_result(&as_scan, &lie).is_err());
    assert!(decode_result(&scan, &[0]).is_err());
}

#[test]
fn queries_without_a_sort_prefix_keep_the_encoding_earlier_nodes_read() {
    let query = |sort_prefix: Vec<AttributeValue>| DataCall::Query {
        table: "t".into(),
        request: QueryRequest {
            partition_key: s("a"),
            sort_prefix,
            sort: None,
            forward: true,
            exclusive_start: None,
            limit: None,
            byte_limit: 1,
            filter: None,
            consistent: false,
            index: None,
        },
    };
    // Tag 2 is the Query call of every version; 8 only carries a sort prefix.
    assert_eq!(query(Vec::new()).encode().first(), Some(&2));
    assert_eq!(query(vec![s("x")]).encode().first(), Some(&8));
}

/// The calls of sharded global indexes are added within protocol version 1 like partition stats
/// (old payloads are unchanged; they are sent only once every member reads metadata format 5):
/// they round-trip, a shard call wraps only a Query or a Scan, and nothing after it.
#[test]
fn shard_and_index_built_calls_round_trip() {
    let calls = sample_calls();
    let query = calls
        .iter()
        .find(|c| matches!(c, DataCall::Query { .. }))
        .unwrap()
        .clone();
    let scan = calls
        .iter()
        .find(|c| matches!(c, DataCall::Scan { .. }))
        .unwrap()
        .clone();
    for inner in [query, scan] {
        let call = DataCall::Shard {
            start: 7,
            end: u64::MAX - 3,
            call: Box::new(inner),
        };
        assert_eq!(
            format!("{:?}", round_trip(&call)),
            format!("{call:?}"),
            "shard call"
        );
        let page = Ok(DataReply::Page(Page {
            items: vec![item(&[("pk", "a")])],
            scanned_count: 1,
            scanned_bytes: 3,
            last_evaluated_key: Some(item(&[("pk", "a")])),
        }));
        let got = decode_result(&call, &encode_result(page)).unwrap();
        assert!(matches!(got, Ok(DataReply::Page(p)) if p.scanned_count == 1));
    }
    let built = DataCall::IndexBuilt {
        table: "t".into(),
        index: 3,
        partition: 12,
    };
    assert_eq!(format!("{:?}", round_trip(&built)), format!("{built:?}"));
    let got = decode_result(&built, &encode_result(Ok(DataReply::Size(1)))).unwrap();
    assert!(matches!(got, Ok(DataReply::Size(1))));

    let wrapped_get = DataCall::Shard {
        start: 0,
        end: 1,
        call: Box::new(calls[0].clone()),
    };
    assert!(DataCall::decode(&wrapped_get.encode()).is_err());
    let nested = DataCall::Shard {
        start: 0,
        end: 1,
        call: Box::new(DataCall::Shard {
            start: 0,
            end: 1,
            call: Box::new(calls[1].clone()),
        }),
    };
    assert!(DataCall::decode(&nested.encode()).is_err());
    let mut trailing = built.encode();
    trailing.push(0);
    assert!(DataCall::decode(&trailing).is_err());
}
