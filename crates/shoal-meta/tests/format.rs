//! The metadata formats: checked-in fixtures of every format version decode to their sample,
//! and the current version's sample still encodes to its fixtures byte for byte, so a format
//! change without a version bump fails here.
//!
//! After a deliberate format change: bump `META_FORMAT_VERSION`, add the new version to
//! `sample` below, then write its fixtures with
//! `SHOAL_WRITE_FIXTURES=1 cargo test -p shoal-meta --test format` and check them in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use shoal_catalog::{Billing, BillingMode, TableMeta, TableStatus};
use shoal_meta::format::FormatError;
use shoal_meta::{
    JoinTokenRecord, META_FORMAT_VERSION, Member, MemberState, MetaCommand, MetaState,
    decode_command, decode_state, encode_command, encode_state,
};
use shoal_types::ScalarType;
use shoal_types::key::{KeyAttr, KeySchema};

fn table(name: &str, version: u64) -> TableMeta {
    TableMeta {
        name: name.to_string(),
        id: format!("id-{name}"),
        arn: format!("arn:aws:dynamodb:us-east-1:000000000000:table/{name}"),
        key_schema: KeySchema {
            hash: KeyAttr {
                name: "pk".into(),
                ty: ScalarType::S,
            },
            range: Some(KeyAttr {
                name: "sk".into(),
                ty: ScalarType::N,
            }),
        },
        attribute_definitions: vec![("pk".into(), ScalarType::S), ("sk".into(), ScalarType::N)],
        created_at: 1_700_000_000.5,
        status: TableStatus::Active,
        billing: Billing {
            mode: BillingMode::PayPerRequest,
            read_capacity_units: 0,
            write_capacity_units: 0,
            last_update_to_pay_per_request: None,
            last_increase: None,
            last_decrease: None,
            decreases_today: 0,
        },
        deletion_protection: true,
        table_class: Some("STANDARD".into()),
        tags: vec![("team".into(), "blue".into())],
        resource_policy: None,
        version,
        sse: None,
        indexes: Vec::new(),
        next_index_id: 1,
        index_throughput: Vec::new(),
        on_demand: Default::default(),
        warm: None,
        index_capacity: Vec::new(),
        time_to_live: None,
        streams: Vec::new(),
        initial_stream: None,
    }
}

/// One of every command, as format `version` could write it.
fn sample(version: u64) -> Vec<MetaCommand> {
    let instance = |s: &str| {
        if version >= 2 {
            s.to_string()
        } else {
            String::new()
        }
    };
    let format = version;
    let mut commands = vec![
        MetaCommand::Init {
            cluster_id: "cluster-1".into(),
            first: Member {
                id: 1,
                api_addr: "10.0.0.1:8000".into(),
                cluster_addr: "10.0.0.1:9000".into(),
                joined_at: 1_700_000_000,
                state: MemberState::Active,
                instance: String::new(),
                format,
            },
        },
        MetaCommand::AddMember {
            api_addr: "10.0.0.2:8000".into(),
            cluster_addr: "10.0.0.2:9000".into(),
            joined_at: 1_700_000_100,
            instance: instance("5f0c6a1e-2b7d-4c1a-9d3e-0a1b2c3d4e5f"),
            format,
        },
        MetaCommand::AddMember {
            api_addr: "10.0.0.3:8000".into(),
            cluster_addr: "10.0.0.3:9000".into(),
            joined_at: 1_700_000_200,
            instance: instance("b1e2c3d4-0000-4000-8000-000000000003"),
            format: 1,
        },
        MetaCommand::UpdateMember {
            id: 2,
            api_addr: "10.0.0.2:8001".into(),
            cluster_addr: "10.0.0.2:9001".into(),
            format: (version >= 2).then_some(2),
        },
        MetaCommand::CreateTable {
            meta: table("orders", 1),
            partitions: 1,
        },
        MetaCommand::ReplaceTable {
            expected_version: 1,
            meta: table("orders", 2),
        },
        MetaCommand::SetTable {
            meta: table("orders", 3),
        },
        MetaCommand::CreateTable {
            meta: table("gone", 1),
            partitions: 1,
        },
        MetaCommand::DeleteTable {
            name: "gone".into(),
            id: "id-gone".into(),
        },
        MetaCommand::PutAccessKey {
            id: "AKIDEXAMPLE".into(),
            secret: "secret".into(),
            admin: true,
        },
        MetaCommand::PutAccessKey {
            id: "AKIDOTHER".into(),
            secret: "other".into(),
            admin: false,
        },
        MetaCommand::DeleteAccessKey {
            id: "AKIDOTHER".into(),
        },
        MetaCommand::SetJoinToken {
            token: JoinTokenRecord {
                secret_sha256: "ab".repeat(32),
                created_at: 1_700_000_300,
                expires_at: 1_700_086_700,
            },
        },
        MetaCommand::SetReplicas {
            table_id: "id-orders".into(),
            partition: 1,
            generation: 0,
            replicas: vec![1, 2, 3],
        },
        MetaCommand::DecommissionMember { id: 3 },
        MetaCommand::RemoveMember { id: 3 },
    ];
    if version >= 2 {
        commands.push(MetaCommand::DeclareDead { id: 2 });
    }
    if version >= 3 {
        commands.push(MetaCommand::CreateTable {
            meta: table("wide", 1),
            partitions: 4,
        });
        commands.push(MetaCommand::SetAccessKeyPolicy {
            id: "AKIDEXAMPLE".into(),
            policy: Some(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}]}"#
                    .into(),
            ),
        });
    }
    if version >= 4 {
        commands.push(MetaCommand::SplitPartition {
            table_id: "id-wide".into(),
            partition: 3,
            epoch: 13,
            at: 1 << 61,
        });
        commands.push(MetaCommand::SplitSettled {
            table_id: "id-wide".into(),
            partition: 7,
        });
    }
    commands
}

/// The state `sample(version)` leads to.
fn sample_state(version: u64) -> MetaState {
    let mut state = MetaState::default();
    for c in sample(version) {
        state.apply(c);
    }
    state
}

fn fixtures(version: u64) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("v{version}"))
}

fn read_lines(version: u64) -> Vec<String> {
    let path = fixtures(version).join("commands.jsonl");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

fn read_state(version: u64) -> String {
    let path = fixtures(version).join("state.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn fixtures_of_every_format_decode_to_their_sample() {
    for version in 1..=META_FORMAT_VERSION {
        let lines = read_lines(version);
        let expected = sample(version);
        assert_eq!(
            lines.len(),
            expected.len(),
            "format {version}: fixture lines"
        );
        for (line, want) in lines.iter().zip(&expected) {
            let got = decode_command(line.as_bytes())
                .unwrap_or_else(|e| panic!("format {version}: {line}: {e}"));
            assert_eq!(&got, want, "format {version}: {line}");
        }
        let state = decode_state(read_state(version).trim().as_bytes())
            .unwrap_or_else(|e| panic!("format {version} state: {e}"));
        assert_eq!(state, sample_state(version), "format {version} state");
    }
}

#[test]
fn the_current_format_still_encodes_its_sample_to_its_fixtures() {
    let encoded: Vec<String> = sample(META_FORMAT_VERSION)
        .iter()
        .map(|c| String::from_utf8(encode_command(c, META_FORMAT_VERSION)).unwrap())
        .collect();
    let state = String::from_utf8(encode_state(
        &sample_state(META_FORMAT_VERSION),
        META_FORMAT_VERSION,
    ))
    .unwrap();
    if std::env::var_os("SHOAL_WRITE_FIXTURES").is_some() {
        let dir = fixtures(META_FORMAT_VERSION);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("commands.jsonl"), encoded.join("\n") + "\n").unwrap();
        std::fs::write(dir.join("state.json"), state.clone() + "\n").unwrap();
    }
    let bump = "the metadata encoding changed but META_FORMAT_VERSION did not: bump it, keep \
                reading the old format, and add fixtures (see this file's header)";
    assert_eq!(encoded, read_lines(META_FORMAT_VERSION), "{bump}: commands");
    assert_eq!(
        state,
        read_state(META_FORMAT_VERSION).trim(),
        "{bump}: state"
    );
}

#[test]
fn a_newer_format_is_refused_and_junk_is_malformed() {
    let newer = format!(
        r#"{{"format":{},"command":{{"RemoveMember":{{"id":3}}}}}}"#,
        META_FORMAT_VERSION + 1
    );
    let err = decode_command(newer.as_bytes()).unwrap_err();
    assert!(matches!(err, FormatError::TooNew { .. }), "{err}");
    assert!(err.to_string().contains("upgrade"), "{err}");
    for junk in [
        &b"not json"[..],
        br#"{"format":2}"#,
        br#"{"format":"two","command":{}}"#,
        br#"{"format":2,"command":{"NoSuchCommand":{}}}"#,
    ] {
        assert!(
            matches!(decode_command(junk), Err(FormatError::Malformed { .. })),
            "{}",
            String::from_utf8_lossy(junk)
        );
    }
}

/// During a rolling upgrade the cluster writes the oldest format a member reads: format 1 (what
/// the previous binary reads) until every member said it reads format 2.
#[test]
fn the_cluster_writes_the_oldest_format_a_member_reads() {
    let mut state = sample_state(1);
    assert_eq!(state.write_format(), 1);
    let c = MetaCommand::RemoveMember { id: 9 };
    assert_eq!(
        encode_command(&c, state.write_format()),
        br#"{"RemoveMember":{"id":9}}"#
    );
    let ids: Vec<u64> = state.members.keys().copied().collect();
    for id in &ids {
        assert_eq!(state.write_format(), 1, "before member {id} upgraded");
        let m = state.members[id].clone();
        state.apply(MetaCommand::UpdateMember {
            id: *id,
            api_addr: m.api_addr,
            cluster_addr: m.cluster_addr,
            format: Some(2),
        });
    }
    assert_eq!(state.write_format(), 2);
    let enveloped = encode_command(&c, state.write_format());
    assert!(enveloped.starts_with(br#"{"format":2,"#));
    assert_eq!(decode_command(&enveloped).unwrap(), c);
    // The state written for older binaries reads back the same.
    let bare = encode_state(&state, 1);
    assert_eq!(decode_state(&bare).unwrap(), state);
}
