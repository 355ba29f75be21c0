//! The replication wire codec: commands and outcomes round-trip exactly (property tests over
//! nested conditions, updates and items), and truncated, garbage or unknown-version input is
//! rejected with an error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use shoal_expr::{CompareOp, Condition, DocPath, Operand, PathElem, Update, UpdateValue};
use shoal_storage::wire::{
    MAX_COMMAND_LEN, MAX_DEPTH, WIRE_VERSION, WireError, decode_command, decode_outcome,
    encode_command, encode_command_checked, encode_outcome,
};
use shoal_storage::{Applied, ApplyError, Command, StorageError, TxOp, TxPrimary, TxToken};
use shoal_types::{AttributeValue, Item, Number};

// ---- strategies ----

fn number() -> impl Strategy<Value = Number> {
    (any::<bool>(), any::<u64>(), -130i32..=120).prop_filter_map("out of range", |(neg, m, e)| {
        let sign = if neg { "-" } else { "" };
        format!("{sign}{m}E{e}").parse::<Number>().ok()
    })
}

fn string() -> impl Strategy<Value = String> {
    "[a-c\u{0}\u{7f}\u{e9}\u{10000}]{0,6}"
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![Just(0u8), Just(0x80u8), Just(0xFFu8), any::<u8>()],
        0..6,
    )
}

fn attribute_value() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        string().prop_map(AttributeValue::S),
        number().prop_map(AttributeValue::N),
        bytes().prop_map(AttributeValue::B),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null),
        btree_set(string(), 1..4).prop_map(|s| AttributeValue::Ss(s.into_iter().collect())),
        btree_set(number(), 1..4).prop_map(|s| AttributeValue::Ns(s.into_iter().collect())),
        btree_set(bytes(), 1..4).prop_map(|s| AttributeValue::Bs(s.into_iter().collect())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            btree_map(string(), inner.clone(), 0..4).prop_map(AttributeValue::M),
            vec(inner, 0..4).prop_map(AttributeValue::L),
        ]
    })
}

fn item() -> impl Strategy<Value = Item> {
    btree_map(string(), attribute_value(), 0..5)
}

fn path() -> impl Strategy<Value = DocPath> {
    (
        string(),
        vec(
            prop_oneof![
                string().prop_map(PathElem::Name),
                prop_oneof![0usize..5, Just(usize::MAX)].prop_map(PathElem::Index),
            ],
            0..4,
        ),
    )
        .prop_map(|(top, rest)| {
            let mut elems = vec![PathElem::Name(top)];
            elems.extend(rest);
            DocPath { elems }
        })
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        path().prop_map(Operand::Path),
        attribute_value().prop_map(Operand::Value),
        path().prop_map(Operand::Size),
    ]
}

fn compare_op() -> impl Strategy<Value = CompareOp> {
    prop_oneof![
        Just(CompareOp::Eq),
        Just(CompareOp::Ne),
        Just(CompareOp::Lt),
        Just(CompareOp::Le),
        Just(CompareOp::Gt),
        Just(CompareOp::Ge),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    let leaf = prop_oneof![
        (compare_op(), operand(), operand()).prop_map(|(op, left, right)| Condition::Compare {
            op,
            left,
            right
        }),
        (operand(), operand(), operand()).prop_map(|(value, low, high)| Condition::Between {
            value,
            low,
            high
        }),
        (operand(), vec(operand(), 0..4)).prop_map(|(value, list)| Condition::In { value, list }),
        path().prop_map(Condition::AttributeExists),
        path().prop_map(Condition::AttributeNotExists),
        (path(), operand()).prop_map(|(p, o)| Condition::AttributeType(p, o)),
        (operand(), operand()).prop_map(|(a, b)| Condition::BeginsWith(a, b)),
        (operand(), operand()).prop_map(|(a, b)| Condition::Contains(a, b)),
    ];
    leaf.prop_recursive(5, 24, 2, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Condition::And),
            vec(inner.clone(), 0..5).prop_map(Condition::Or),
            inner.prop_map(|c| Condition::Not(Box::new(c))),
        ]
    })
}

fn update_value() -> impl Strategy<Value = UpdateValue> {
    let leaf = prop_oneof![
        path().prop_map(UpdateValue::Path),
        attribute_value().prop_map(UpdateValue::Value),
    ];
    leaf.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            (path(), inner.clone()).prop_map(|(p, v)| UpdateValue::IfNotExists(p, Box::new(v))),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| UpdateValue::ListAppend(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| UpdateValue::Plus(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| UpdateValue::Minus(Box::new(a), Box::new(b))),
        ]
    })
}

fn update() -> impl Strategy<Value = Update> {
    (
        vec((path(), update_value()), 0..3),
        vec(path(), 0..3),
        vec((path(), attribute_value()), 0..3),
        vec((path(), attribute_value()), 0..3),
    )
        .prop_map(|(set, remove, add, delete)| Update {
            set,
            remove,
            add,
            delete,
        })
}

fn tx_op() -> impl Strategy<Value = TxOp> {
    prop_oneof![
        (item(), proptest::option::of(condition()))
            .prop_map(|(item, condition)| TxOp::Put { item, condition }),
        (item(), update(), proptest::option::of(condition())).prop_map(
            |(key, update, condition)| TxOp::Update {
                key,
                update,
                condition
            }
        ),
        (item(), proptest::option::of(condition()))
            .prop_map(|(key, condition)| TxOp::Delete { key, condition }),
        (item(), condition()).prop_map(|(key, condition)| TxOp::Check { key, condition }),
    ]
}

fn token() -> impl Strategy<Value = Option<TxToken>> {
    proptest::option::of(
        (any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(key, request)| TxToken { key, request }),
    )
}

/// The transaction commands.
fn tx_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (
            any::<[u8; 16]>(),
            any::<u64>(),
            string(),
            item(),
            token(),
            tx_op()
        )
            .prop_map(|(txid, ts, table, key, token, op)| Command::TxPrepare {
                txid,
                ts,
                primary: TxPrimary { table, key },
                token,
                op,
            }),
        (any::<[u8; 16]>(), item(), any::<bool>())
            .prop_map(|(txid, key, commit)| Command::TxResolve { txid, key, commit }),
        (
            any::<[u8; 16]>(),
            item(),
            any::<bool>(),
            any::<u64>(),
            token()
        )
            .prop_map(|(txid, key, commit, ts, token)| Command::TxDecide {
                txid,
                key,
                commit,
                ts,
                token,
            }),
        (any::<[u8; 16]>(), item()).prop_map(|(txid, key)| Command::TxForget { txid, key }),
        (any::<[u8; 16]>(), item(), any::<u64>()).prop_map(|(txid, key, ts)| Command::TxRead {
            txid,
            key,
            ts
        }),
        (any::<[u8; 16]>(), item()).prop_map(|(txid, key)| Command::TxCheck { txid, key }),
        (any::<[u8; 16]>(), item()).prop_map(|(txid, key)| Command::TxRelease { txid, key }),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        tx_command(),
        (item(), proptest::option::of(condition()))
            .prop_map(|(item, condition)| Command::Put { item, condition }),
        (item(), proptest::option::of(condition()))
            .prop_map(|(key, condition)| Command::Delete { key, condition }),
        (item(), update(), proptest::option::of(condition())).prop_map(
            |(key, update, condition)| Command::Update {
                key,
                update,
                condition
            }
        ),
    ]
}

fn message() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 :é\u{0}]{0,20}"
}

fn storage_error() -> impl Strategy<Value = StorageError> {
    prop_oneof![
        message().prop_map(|context| StorageError::Corrupt { context }),
        message().prop_map(|context| StorageError::DiskFull { context }),
        (message(), message()).prop_map(|(p, message)| StorageError::WrongKey {
            path: p.into(),
            message
        }),
        (message(), message()).prop_map(|(context, m)| StorageError::Io {
            context,
            source: std::io::Error::other(m),
        }),
        message().prop_map(StorageError::InvalidKey),
        any::<u32>().prop_map(StorageError::UnknownIndex),
        (
            prop_oneof![
                Just(rusqlite::ffi::SQLITE_BUSY),
                Just(rusqlite::ffi::SQLITE_IOERR_READ)
            ],
            message()
        )
            .prop_map(|(code, m)| StorageError::Sqlite {
                context: "writing a batch",
                source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(m)),
            }),
    ]
}

fn outcome() -> impl Strategy<Value = Result<Applied, ApplyError>> {
    prop_oneof![
        (proptest::option::of(item()), proptest::option::of(item()))
            .prop_map(|(old, new)| Ok(Applied { old, new })),
        proptest::option::of(item())
            .prop_map(|item| Err(ApplyError::ConditionalCheckFailed { item })),
        message().prop_map(|m| Err(ApplyError::Validation(m))),
        Just(()).prop_map(|()| Err(ApplyError::ItemCollectionSizeLimitExceeded)),
        (0u8..5).prop_map(|k| Err(match k {
            0 => ApplyError::TransactionConflict,
            1 => ApplyError::TransactionAborted,
            2 => ApplyError::TxAlreadyCommitted,
            3 => ApplyError::TxTokenMismatch,
            _ => ApplyError::TxInProgress,
        })),
        storage_error().prop_map(|e| Err(ApplyError::Storage(e))),
    ]
}

// ---- helpers ----

fn enc_cmd(c: &Command) -> Vec<u8> {
    let mut out = Vec::new();
    encode_command(c, &mut out);
    out
}

fn enc_out(r: &Result<Applied, ApplyError>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_outcome(r, &mut out);
    out
}

/// The parts of an outcome a caller relies on: the items, the variant and the message.
fn outcome_view(r: &Result<Applied, ApplyError>) -> String {
    match r {
        Ok(a) => format!("ok {:?} {:?}", a.old, a.new),
        Err(ApplyError::ConditionalCheckFailed { item }) => format!("ccf {item:?}"),
        Err(ApplyError::Storage(e)) => {
            let variant = format!("{e:?}");
            let variant = variant.split([' ', '(', '{']).next().unwrap_or_default();
            format!("storage {variant}")
        }
        Err(e) => format!("err {e:?}"),
    }
}

fn storage_message_kept(original: &StorageError, decoded: &StorageError) -> bool {
    match (original, decoded) {
        (StorageError::Sqlite { source, .. }, StorageError::Sqlite { source: d, .. }) => {
            let code = |s: &rusqlite::Error| match s {
                rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code),
                _ => None,
            };
            code(source) == code(d) && decoded.to_string().contains(&source.to_string())
        }
        _ => original.to_string() == decoded.to_string(),
    }
}

// ---- properties ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn commands_round_trip(cmd in command()) {
        let bytes = enc_cmd(&cmd);
        prop_assert_eq!(bytes[0], WIRE_VERSION);
        let decoded = decode_command(&bytes).unwrap();
        prop_assert_eq!(format!("{decoded:?}"), format!("{cmd:?}"));
        prop_assert_eq!(enc_cmd(&decoded), bytes);
    }

    #[test]
    fn checked_encoding_is_the_encoding_of_every_valid_command(cmd in command()) {
        prop_assert_eq!(encode_command_checked(&cmd).unwrap(), enc_cmd(&cmd));
    }

    #[test]
    fn outcomes_round_trip(r in outcome()) {
        let bytes = enc_out(&r);
        let decoded = decode_outcome(&bytes).unwrap();
        prop_assert_eq!(outcome_view(&decoded), outcome_view(&r));
        match (&r, &decoded) {
            (Err(ApplyError::Storage(a)), Err(ApplyError::Storage(b))) => {
                prop_assert!(storage_message_kept(a, b), "{a} vs {b}");
            }
            (a, b) => prop_assert_eq!(format!("{a:?}"), format!("{b:?}")),
        }
    }

    #[test]
    fn truncated_commands_are_errors(cmd in command()) {
        let bytes = enc_cmd(&cmd);
        for cut in 0..bytes.len() {
            prop_assert!(decode_command(&bytes[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
    }

    #[test]
    fn truncated_outcomes_are_errors(r in outcome()) {
        let bytes = enc_out(&r);
        for cut in 0..bytes.len() {
            prop_assert!(decode_outcome(&bytes[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
    }

    #[test]
    fn garbage_never_panics(mut bytes in vec(any::<u8>(), 0..256), versioned in any::<bool>()) {
        if versioned && !bytes.is_empty() {
            bytes[0] = WIRE_VERSION;
        }
        let _ = decode_command(&bytes);
        let _ = decode_outcome(&bytes);
    }

    #[test]
    fn corrupted_encodings_never_panic(cmd in command(), at in any::<prop::sample::Index>(), b in any::<u8>()) {
        let mut bytes = enc_cmd(&cmd);
        let i = at.index(bytes.len());
        bytes[i] = b;
        let _ = decode_outcome(&bytes);
        // Whatever a replica accepts, a leader may propose: it passes the checked encoder, and
        // its encoding is stable from there on.
        if let Ok(decoded) = decode_command(&bytes) {
            let again = encode_command_checked(&decoded).unwrap();
            prop_assert_eq!(enc_cmd(&decode_command(&again).unwrap()), again);
        }
    }
}

// ---- examples ----

#[test]
fn unknown_version_is_rejected() {
    let cmd = Command::Delete {
        key: [("pk".to_string(), AttributeValue::S("a".into()))]
            .into_iter()
            .collect(),
        condition: None,
    };
    let mut bytes = enc_cmd(&cmd);
    bytes[0] = 2;
    assert_eq!(
        decode_command(&bytes).unwrap_err(),
        WireError::UnknownVersion(2)
    );
    let mut bytes = enc_out(&Ok(Applied::default()));
    bytes[0] = 0;
    assert_eq!(
        decode_outcome(&bytes).unwrap_err(),
        WireError::UnknownVersion(0)
    );
    assert_eq!(decode_command(&[]).unwrap_err(), WireError::Truncated);
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = enc_out(&Err(ApplyError::ItemCollectionSizeLimitExceeded));
    bytes.push(0);
    assert_eq!(
        decode_outcome(&bytes).unwrap_err(),
        WireError::TrailingBytes(1)
    );
}

#[test]
fn huge_counts_do_not_allocate() {
    // Put, an item length of u64::MAX-ish: must fail fast without allocating.
    let mut bytes = vec![WIRE_VERSION, 1];
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert!(decode_command(&bytes).is_err());
    // Update with an empty item and a SET count far above the input.
    let mut bytes = vec![WIRE_VERSION, 3, 1, 0];
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(decode_command(&bytes).is_err());
}

#[test]
fn deep_nesting_is_bounded() {
    // NOT NOT NOT ... 100k deep: an error (too deep), not a stack overflow.
    let mut bytes = vec![WIRE_VERSION, 2, 1, 0, 1];
    bytes.extend(std::iter::repeat_n(11u8, 100_000));
    assert!(matches!(decode_command(&bytes), Err(WireError::TooDeep(_))));
}

#[test]
fn invalid_paths_are_rejected() {
    // Delete, empty key item, condition: attribute_exists(<path starting with an index>).
    let bytes = vec![WIRE_VERSION, 2, 1, 0, 1, 4, 1, 1, 0];
    assert!(matches!(
        decode_command(&bytes),
        Err(WireError::Malformed { .. })
    ));
    // ... and an empty path.
    let bytes = vec![WIRE_VERSION, 2, 1, 0, 1, 4, 0];
    assert!(decode_command(&bytes).is_err());
}

#[test]
fn storage_errors_keep_the_variant_the_api_maps() {
    let cases = [
        StorageError::DiskFull {
            context: "writing a batch: database or disk is full".into(),
        },
        StorageError::Corrupt {
            context: "stored item: encoded item is truncated".into(),
        },
        StorageError::UnknownIndex(7),
    ];
    for e in cases {
        let msg = e.to_string();
        let bytes = enc_out(&Err(ApplyError::Storage(e)));
        let Err(ApplyError::Storage(d)) = decode_outcome(&bytes).unwrap() else {
            panic!("not a storage error");
        };
        assert_eq!(d.to_string(), msg);
        match (msg.as_str(), &d) {
            (m, StorageError::DiskFull { .. }) if m.starts_with("disk full") => {}
            (m, StorageError::Corrupt { .. }) if m.starts_with("corrupt") => {}
            (_, StorageError::UnknownIndex(7)) => {}
            (_, other) => panic!("wrong variant {other:?}"),
        }
    }
}

#[test]
fn deep_update_values_are_bounded() {
    // Update, empty key, one SET of `a` = a + (a + (a + ...)) 100k deep: too deep, no overflow.
    let mut bytes = vec![WIRE_VERSION, 3, 1, 0, 1, 1, 0, 1, b'a'];
    for _ in 0..100_000 {
        bytes.extend_from_slice(&[5, 1, 1, 0, 1, b'a']);
    }
    assert!(matches!(decode_command(&bytes), Err(WireError::TooDeep(_))));
}

// ---- maximum sizes: what the API can build must encode, decode and come back the same ----

fn s(x: &str) -> AttributeValue {
    AttributeValue::S(x.to_string())
}

/// A value nested `depth` levels deep (alternating maps and lists), `depth` = 0 a string.
fn nested(depth: usize) -> AttributeValue {
    let mut v = s("leaf");
    for i in 0..depth {
        v = if i % 2 == 0 {
            AttributeValue::L(vec![v])
        } else {
            AttributeValue::M(Item::from([("k".to_string(), v)]))
        };
    }
    v
}

/// A condition `depth` levels deep (`NOT`, `AND` and `OR` around one comparison).
fn deep_condition(depth: usize) -> Condition {
    let mut c = Condition::AttributeExists(DocPath::attr("a"));
    for i in 1..depth {
        c = match i % 3 {
            0 => Condition::Not(Box::new(c)),
            1 => Condition::And(vec![c, Condition::AttributeExists(DocPath::attr("b"))]),
            _ => Condition::Or(vec![Condition::AttributeNotExists(DocPath::attr("c")), c]),
        };
    }
    c
}

/// `a = a + :v + :v ...`: an update value `depth` levels deep.
fn deep_update_value(depth: usize) -> UpdateValue {
    let mut v = UpdateValue::Path(DocPath::attr("a"));
    for _ in 1..depth {
        v = UpdateValue::Plus(Box::new(v), Box::new(UpdateValue::Value(s("1"))));
    }
    v
}

fn put(item: Item, condition: Option<Condition>) -> Command {
    Command::Put { item, condition }
}

fn update_cmd(update: Update, condition: Option<Condition>) -> Command {
    Command::Update {
        key: Item::from([("pk".to_string(), s("k"))]),
        update,
        condition,
    }
}

fn set(path: DocPath, value: UpdateValue) -> Update {
    Update {
        set: vec![(path, value)],
        ..Update::default()
    }
}

/// Encodes with the checked encoder, decodes, and checks the decoded command is the same.
fn round_trips(cmd: &Command) -> usize {
    let bytes = encode_command_checked(cmd).expect("a valid command must encode");
    let decoded = decode_command(&bytes).unwrap();
    assert!(
        enc_cmd(&decoded) == bytes,
        "the decoded command differs from the one encoded"
    );
    bytes.len()
}

/// Commands with sizes drawn up to the largest the API builds: a string up to 400 KB, up to
/// 20,000 attributes, values nested up to 32 levels, legacy condition lists of up to 100,000
/// entries, and `AttributeUpdates` of up to 100,000 entries, in every command kind.
fn large_command() -> impl Strategy<Value = Command> {
    (
        0usize..=400 * 1024,
        0usize..=20_000,
        0usize..=32,
        0usize..=100_000,
        0usize..=100_000,
        0u8..3,
    )
        .prop_map(|(text, attrs, depth, conditions, updates, kind)| {
            let mut item: Item = (0..attrs).map(|i| (format!("a{i}"), s("v"))).collect();
            item.insert("big".to_string(), s(&"x".repeat(text)));
            item.insert("deep".to_string(), nested(depth));
            let list: Vec<Condition> = (0..conditions)
                .map(|i| Condition::Compare {
                    op: CompareOp::Eq,
                    left: Operand::Path(DocPath::attr(format!("c{i}"))),
                    right: Operand::Value(nested(depth)),
                })
                .collect();
            let condition = Some(if conditions % 2 == 0 {
                Condition::And(list)
            } else {
                Condition::Or(list)
            });
            match kind {
                0 => Command::Put { item, condition },
                1 => Command::Delete {
                    key: item,
                    condition,
                },
                _ => Command::Update {
                    key: Item::from([("pk".to_string(), s("k"))]),
                    update: Update {
                        set: (0..updates)
                            .map(|i| (DocPath::attr(format!("u{i}")), UpdateValue::Value(s("v"))))
                            .collect(),
                        remove: (0..updates / 2)
                            .map(|i| DocPath::attr(format!("r{i}")))
                            .collect(),
                        add: vec![(DocPath::attr("n"), nested(depth))],
                        delete: Vec::new(),
                    },
                    condition,
                },
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn commands_up_to_the_largest_sizes_round_trip(cmd in large_command()) {
        let bytes = encode_command_checked(&cmd).expect("a command the API can build must encode");
        prop_assert!(bytes.len() <= MAX_COMMAND_LEN);
        let decoded = decode_command(&bytes).unwrap();
        prop_assert!(enc_cmd(&decoded) == bytes, "the decoded command differs from the one encoded");
    }
}

#[test]
fn the_largest_commands_the_api_builds_round_trip() {
    // An item of 400 KB (DynamoDB's item limit) in one attribute, and spread over 20,000.
    round_trips(&put(
        Item::from([("big".to_string(), s(&"x".repeat(400 * 1024)))]),
        None,
    ));
    let many: Item = (0..20_000)
        .map(|i| (format!("a{i}"), s("0123456789")))
        .collect();
    round_trips(&put(many.clone(), None));
    // Values nested 32 levels (DynamoDB's limit) in the item, in a condition and in an update.
    let deep = Item::from([("d".to_string(), nested(32))]);
    let eq_deep = Condition::Compare {
        op: CompareOp::Eq,
        left: Operand::Path(DocPath::attr("d")),
        right: Operand::Value(nested(32)),
    };
    round_trips(&put(deep.clone(), Some(eq_deep.clone())));
    round_trips(&update_cmd(
        set(DocPath::attr("d"), UpdateValue::Value(nested(32))),
        Some(eq_deep),
    ));
    // 100,000 legacy `Expected` entries and a 16 MB `ScanFilter`-sized AND: one flat level.
    let expected: Vec<Condition> = (0..100_000)
        .map(|i| Condition::Compare {
            op: CompareOp::Eq,
            left: Operand::Path(DocPath::attr(format!("attr{i}"))),
            right: Operand::Value(s("value")),
        })
        .collect();
    let len = round_trips(&put(many, Some(Condition::And(expected.clone()))));
    assert!(len < MAX_COMMAND_LEN);
    round_trips(&update_cmd(
        Update::default(),
        Some(Condition::Or(expected)),
    ));
    // `AttributeUpdates` with 100,000 entries.
    let u = Update {
        set: (0..100_000)
            .map(|i| (DocPath::attr(format!("a{i}")), UpdateValue::Value(s("v"))))
            .collect(),
        remove: (0..50_000)
            .map(|i| DocPath::attr(format!("r{i}")))
            .collect(),
        add: (0..50_000)
            .map(|i| (DocPath::attr(format!("n{i}")), s("1")))
            .collect(),
        delete: (0..50_000)
            .map(|i| (DocPath::attr(format!("s{i}")), s("1")))
            .collect(),
    };
    round_trips(&update_cmd(u, None));
    // A path of 32 dereferences, an IN of 100 operands, the deepest update value of an
    // expression (300 `+`), and conditions at the decoder's depth limit.
    let mut path = DocPath::attr("p");
    for i in 0..32 {
        path.elems.push(if i % 2 == 0 {
            PathElem::Index(usize::MAX)
        } else {
            PathElem::Name("n".repeat(255))
        });
    }
    let in_100 = Condition::In {
        value: Operand::Size(path.clone()),
        list: (0..100)
            .map(|i| Operand::Value(s(&i.to_string())))
            .collect(),
    };
    round_trips(&update_cmd(
        set(path, deep_update_value(shoal_expr::MAX_OPERATORS + 1)),
        Some(in_100),
    ));
    round_trips(&put(Item::new(), Some(deep_condition(MAX_DEPTH))));
    round_trips(&update_cmd(
        set(DocPath::attr("a"), deep_update_value(MAX_DEPTH)),
        None,
    ));
}

#[test]
fn checked_encoding_refuses_what_a_replica_could_not_decode() {
    let too_deep = put(Item::new(), Some(deep_condition(MAX_DEPTH + 1)));
    assert!(matches!(
        encode_command_checked(&too_deep),
        Err(WireError::TooDeep(_))
    ));
    let too_deep = update_cmd(
        set(DocPath::attr("a"), deep_update_value(MAX_DEPTH + 1)),
        None,
    );
    assert!(matches!(
        encode_command_checked(&too_deep),
        Err(WireError::TooDeep(_))
    ));
    // A value nested past the item codec's limit (64) is refused, in the item and in a condition.
    let deep_item = put(Item::from([("d".to_string(), nested(65))]), None);
    assert!(matches!(
        encode_command_checked(&deep_item),
        Err(WireError::Value { .. })
    ));
    let deep_value = put(
        Item::new(),
        Some(Condition::Contains(
            Operand::Path(DocPath::attr("a")),
            Operand::Value(nested(65)),
        )),
    );
    assert!(encode_command_checked(&deep_value).is_err());
    // A path that breaks `DocPath`'s invariant.
    let bad_path = put(
        Item::new(),
        Some(Condition::AttributeExists(DocPath { elems: vec![] })),
    );
    assert!(encode_command_checked(&bad_path).is_err());
    // Over the size limit.
    let huge = put(
        Item::from([("big".to_string(), s(&"x".repeat(MAX_COMMAND_LEN)))]),
        None,
    );
    assert!(matches!(
        encode_command_checked(&huge),
        Err(WireError::TooLarge { .. })
    ));
}

#[test]
fn binary_and_or_of_earlier_builds_still_decode() {
    // Put, empty item, condition: AND(9) of attribute_exists(a), OR(10) of two attribute_exists.
    let exists = |n: u8| [4u8, 1, 0, 1, n];
    let mut bytes = vec![WIRE_VERSION, 1, 1, 0, 1, 9];
    bytes.extend(exists(b'a'));
    bytes.push(10);
    bytes.extend(exists(b'b'));
    bytes.extend(exists(b'c'));
    let Command::Put {
        condition: Some(Condition::And(operands)),
        ..
    } = decode_command(&bytes).unwrap()
    else {
        panic!("not an AND");
    };
    assert_eq!(operands.len(), 2);
    assert!(matches!(&operands[1], Condition::Or(or) if or.len() == 2));
}

#[test]
fn a_huge_and_count_does_not_allocate() {
    // Put, empty item, condition: AND of u32::MAX operands with nothing after: an error.
    let mut bytes = vec![WIRE_VERSION, 1, 1, 0, 1, 12];
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(decode_command(&bytes).is_err());
}
