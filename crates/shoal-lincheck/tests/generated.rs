//! Property tests: histories generated from a sequential register with random overlapping
//! intervals are linearizable; corrupting one read's value is always detected.

use proptest::prelude::*;
use shoal_lincheck::{CheckResult, Event, Op, Ret, check};

#[derive(Clone, Debug)]
enum Gen {
    Read,
    Write(Option<u8>),
    Cas(Option<u8>, Option<u8>),
}

#[derive(Clone, Debug)]
struct GenOp {
    op: Gen,
    key: u8,
    /// How far before its linearization point the call is, and after it the return.
    before: u64,
    after: u64,
    /// 0..=9: 0 = the result is lost (Unknown); 1 = lost and the op never happened.
    fate: u8,
}

fn value() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![1 => Just(None), 4 => (0u8..4).prop_map(Some)]
}

fn gen_op() -> impl Strategy<Value = GenOp> {
    let op = prop_oneof![
        3 => Just(Gen::Read),
        2 => value().prop_map(Gen::Write),
        2 => (value(), value()).prop_map(|(e, v)| Gen::Cas(e, v)),
    ];
    (op, 0u8..2, 0u64..60, 0u64..60, 0u8..10).prop_map(|(op, key, before, after, fate)| GenOp {
        op,
        key,
        before,
        after,
        fate,
    })
}

fn name(v: Option<u8>) -> Option<String> {
    v.map(|b| format!("v{b}"))
}

/// Runs the ops in order on a sequential register per key; op i takes effect at time 100 + 10 i,
/// inside its interval [point - before, point + after].
fn history(ops: &[GenOp]) -> Vec<Event> {
    let mut state = [None::<u8>; 2];
    let mut out = Vec::new();
    for (i, g) in ops.iter().enumerate() {
        let point = 100 + 10 * i as u64;
        let reg = &mut state[g.key as usize];
        let lost = g.fate == 0;
        let never = g.fate == 1 && !matches!(g.op, Gen::Read);
        let (op, ret) = match g.op {
            Gen::Read => (Op::Read, Ret::Read(name(*reg))),
            Gen::Write(v) => {
                if !never {
                    *reg = v;
                }
                (Op::Write(name(v)), Ret::Ok)
            }
            Gen::Cas(e, v) => {
                let ok = *reg == e;
                if ok && !never {
                    *reg = v;
                }
                let op = Op::CondWrite {
                    expect: name(e),
                    value: name(v),
                };
                (op, if ok { Ret::Ok } else { Ret::CondFailed })
            }
        };
        let (ret, ret_at) = if lost || never {
            (Ret::Unknown, u64::MAX)
        } else {
            (ret, point + g.after)
        };
        out.push(Event {
            client: i as u64,
            key: format!("k{}", g.key),
            op,
            ret,
            call: point - g.before,
            ret_at,
        });
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn generated_histories_are_linearizable(ops in prop::collection::vec(gen_op(), 0..40)) {
        let h = history(&ops);
        prop_assert_eq!(check(&h), CheckResult::Ok);
    }

    #[test]
    fn corrupted_read_is_detected(
        ops in prop::collection::vec(gen_op(), 1..40),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut h = history(&ops);
        let reads: Vec<usize> = (0..h.len())
            .filter(|&i| matches!(h[i].ret, Ret::Read(_)))
            .collect();
        prop_assume!(!reads.is_empty());
        let i = reads[pick.index(reads.len())];
        h[i].ret = Ret::Read(Some("never-written".into()));
        let key = h[i].key.clone();
        match check(&h) {
            CheckResult::Violation { key: k, .. } => prop_assert_eq!(k, key),
            other => prop_assert!(false, "corruption not detected: {:?}", other),
        }
    }
}

#[test]
fn long_history_checks_quickly() {
    // 3000 ops on one key with ~12 overlapping at any time, 5% lost results.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    let ops: Vec<GenOp> = (0..3000)
        .map(|_| {
            let op = match rnd(3) {
                0 => Gen::Read,
                1 => Gen::Write(Some(rnd(5) as u8)),
                _ => Gen::Cas(Some(rnd(5) as u8), Some(rnd(5) as u8)),
            };
            GenOp {
                op,
                key: 0,
                before: rnd(60),
                after: rnd(60),
                fate: if rnd(20) == 0 { 0 } else { 5 },
            }
        })
        .collect();
    let h = history(&ops);
    let started = std::time::Instant::now();
    assert_eq!(check(&h), CheckResult::Ok);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}
